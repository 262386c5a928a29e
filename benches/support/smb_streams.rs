//! TCP payload streams of the (plain Ethernet / VLAN / SLL / raw IPv4) captures, fed straight
//! through SmbParser: only the SMB2 parser benchmark (benches/smb2_parser.rs, by `#[path]`) uses
//! this, to time the parser without the flow layer. Tests use `pipeline_run` (the real pipeline);
//! tests do not include it.
#![allow(dead_code)]

use psexec_sensor::event::Event;
use psexec_sensor::flow::{ConnId, Direction, FlowCtx, StreamParser, Uid};
use psexec_sensor::sink::Sink;
use psexec_sensor::smb::{SmbParser, SmbShared};
use psexec_sensor::time::Ts;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

pub struct Seg {
    pub ts: Ts,
    pub conn: ConnId,
    pub dir: Direction,
    pub seq: u32,
    pub syn: bool,
    pub payload: Vec<u8>,
}

/// Ethernet / IPv4 / TCP segments to or from port 445 (pcap, or pcapng with microsecond time).
pub fn segments(path: &PathBuf) -> Vec<Seg> {
    let data = std::fs::read(path).expect("capture");
    let mut frames: Vec<(Ts, u32, &[u8])> = Vec::new();
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        use pcap_parser::pcapng::Block;
        let (_, cap) = pcap_parser::pcapng::parse_pcapng(&data).expect("pcapng");
        for sec in &cap.sections {
            let mut links = Vec::new();
            for b in &sec.blocks {
                match b {
                    Block::InterfaceDescription(i) => links.push(u32::from(i.linktype.0 as u16)),
                    Block::EnhancedPacket(e) => {
                        let t = (u64::from(e.ts_high) << 32 | u64::from(e.ts_low)) * 1000;
                        let lt = links.get(e.if_id as usize).copied().unwrap_or(1);
                        frames.push((Ts(t), lt, &e.data[..(e.caplen as usize).min(e.data.len())]));
                    }
                    _ => {}
                }
            }
        }
    } else {
        let (_, cap) = pcap_parser::pcap::parse_pcap(&data).expect("pcap");
        let lt = cap.header.network.0 as u32;
        for b in cap.blocks {
            frames.push((
                Ts(u64::from(b.ts_sec) * 1_000_000_000 + u64::from(b.ts_usec) * 1000),
                lt,
                b.data,
            ));
        }
    }
    let mut out = Vec::new();
    for (ts, linktype, f) in frames {
        let ip = match linktype {
            1 => {
                let mut at = 12;
                while f.get(at..at + 2) == Some(&[0x81, 0x00])
                    || f.get(at..at + 2) == Some(&[0x88, 0xa8])
                {
                    at += 4;
                }
                if f.get(at..at + 2) != Some(&[0x08, 0x00]) {
                    continue;
                }
                &f[at + 2..]
            }
            113 if f.get(14..16) == Some(&[0x08, 0x00]) => &f[16..],
            101 | 228 => f,
            _ => continue,
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        // TSO captures carry IP total length 0 on oversized segments: trust the frame then.
        let raw_total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let total = if raw_total == 0 {
            ip.len()
        } else {
            raw_total.min(ip.len())
        };
        if ip[9] != 6 || total < ihl + 20 {
            continue;
        }
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let tcp = &ip[ihl..total];
        let sp = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dp = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let doff = usize::from(tcp[12] >> 4) * 4;
        let syn = tcp[13] & 0x02 != 0;
        let (conn, dir) = if dp == 445 {
            (
                ConnId {
                    orig_h: src,
                    orig_p: sp,
                    resp_h: dst,
                    resp_p: dp,
                },
                Direction::ToServer,
            )
        } else if sp == 445 {
            (
                ConnId {
                    orig_h: dst,
                    orig_p: dp,
                    resp_h: src,
                    resp_p: sp,
                },
                Direction::ToClient,
            )
        } else {
            continue;
        };
        out.push(Seg {
            ts,
            conn,
            dir,
            seq,
            syn,
            payload: tcp[doff.min(tcp.len())..].to_vec(),
        });
    }
    out
}

/// Runs every SMB connection of the capture through SmbParser, feeding each segment cut into
/// pieces of `piece` bytes (0 = whole segments). Returns all events.
pub fn run(path: &PathBuf, piece: usize) -> (Vec<Event>, Sink) {
    run_segments(&in_order(segments(path)), piece)
}

/// Total TCP payload bytes of prepared segments.
pub fn payload_bytes(segs: &[Seg]) -> u64 {
    segs.iter().map(|s| s.payload.len() as u64).sum()
}

/// [`run`] over segments already read and ordered.
pub fn run_segments(segs: &[Seg], piece: usize) -> (Vec<Event>, Sink) {
    let mut parsers: HashMap<ConnId, (SmbParser, [Option<u32>; 2])> = HashMap::new();
    let mut sink = Sink::new();
    let mut events = Vec::new();
    let mut last = Ts(0);
    // One worker's shared SMB state: multichannel handles cross connections through it.
    let shared = SmbShared::default();
    for s in segs {
        last = s.ts;
        let (p, next) = parsers.entry(s.conn).or_insert_with(|| {
            let ctx = FlowCtx {
                conn: s.conn,
                uid: Uid::new(&s.conn, s.ts.0),
            };
            (SmbParser::new(ctx, shared.clone()), [None, None])
        });
        let i = s.dir.index();
        if s.syn {
            next[i] = Some(s.seq.wrapping_add(1));
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        let want = *next[i].get_or_insert(s.seq);
        let ahead = s.seq.wrapping_sub(want);
        let mut data = &s.payload[..];
        if ahead != 0 && ahead < 1 << 31 {
            p.gap(s.ts, s.dir, u64::from(ahead), &mut sink);
        } else if ahead != 0 {
            // retransmission: keep only what is new
            let old = want.wrapping_sub(s.seq) as usize;
            data = data.get(old..).unwrap_or(&[]);
        }
        let end = s.seq.wrapping_add(s.payload.len() as u32);
        if end.wrapping_sub(want) < 1 << 31 {
            next[i] = Some(end);
        }
        if piece == 0 {
            p.data(s.ts, s.dir, data, &mut sink);
        } else {
            for c in data.chunks(piece) {
                p.data(s.ts, s.dir, c, &mut sink);
            }
        }
        events.append(&mut sink.events);
    }
    let mut conns: Vec<_> = parsers.into_iter().collect();
    conns.sort_by_key(|(c, _)| c.orig_p);
    for (_, (mut p, _)) in conns {
        p.close(last, &mut sink);
    }
    events.append(&mut sink.events);
    (events, sink)
}

/// Puts segments that arrived ahead of a hole after the segment that fills it (a small window;
/// the public captures have a few out-of-order segments, the lab ones none).
pub fn in_order(segs: Vec<Seg>) -> Vec<Seg> {
    const WINDOW: usize = 64;
    let mut out: Vec<Seg> = Vec::with_capacity(segs.len());
    let mut next: HashMap<(ConnId, usize), u32> = HashMap::new();
    let mut held: Vec<Seg> = Vec::new();
    let release = |s: Seg, out: &mut Vec<Seg>, next: &mut HashMap<(ConnId, usize), u32>| {
        let k = (s.conn, s.dir.index());
        let end = s
            .seq
            .wrapping_add(s.payload.len() as u32)
            .wrapping_add(u32::from(s.syn));
        let e = next.entry(k).or_insert(end);
        if end.wrapping_sub(*e) < 1 << 31 {
            *e = end;
        }
        out.push(s);
    };
    for s in segs {
        let k = (s.conn, s.dir.index());
        let ahead = next
            .get(&k)
            .is_some_and(|&n| s.seq.wrapping_sub(n) != 0 && s.seq.wrapping_sub(n) < 1 << 31);
        if ahead && !s.payload.is_empty() && held.len() < WINDOW {
            held.push(s);
            continue;
        }
        release(s, &mut out, &mut next);
        loop {
            let pos = held.iter().position(|h| {
                next.get(&(h.conn, h.dir.index()))
                    .is_some_and(|&n| h.seq.wrapping_sub(n) >= 1 << 31 || h.seq == n)
            });
            match pos {
                Some(i) => {
                    let h = held.remove(i);
                    release(h, &mut out, &mut next);
                }
                None => break,
            }
        }
    }
    held.sort_by_key(|h| h.ts);
    out.extend(held);
    out
}
