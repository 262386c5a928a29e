//! Reshaping captures for the evasion suite: read a capture's TCP segments, transform them at the
//! TCP level (reorder, duplicate, overlap, split) or at the SMB level (re-framed per-direction
//! streams: DCE-RPC request fragmentation, compounding, share-name case), and write them back as
//! frames on another network layer (IPv4, IPv4 fragments, IPv6, IPv6 fragments, VLAN).
//! Frames are built with `psexec_sensor::decode::build`, with correct IPv4 and TCP checksums (a
//! receiver drops a bad one, and so does the sensor once a sender has shown good ones).
#![allow(dead_code)]

use psexec_sensor::capture::file::CaptureReader;
use psexec_sensor::capture::{Packet, LINKTYPE_ETHERNET};
use psexec_sensor::decode::build;
use psexec_sensor::detect::{Detection, Rules};
use psexec_sensor::event::alert::{Alert, TechniqueAlert};
use psexec_sensor::event::Event;
use psexec_sensor::pipeline::{Collect, Engine, EngineConfig};
use psexec_sensor::time::Ts;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// One TCP segment of a capture (IPv4 or IPv6 addresses, any payload).
#[derive(Clone, Debug)]
pub struct Seg {
    pub ts: Ts,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: Vec<u8>,
}

impl Seg {
    fn flow(&self) -> (IpAddr, u16, IpAddr, u16) {
        (self.src, self.sport, self.dst, self.dport)
    }
}

/// The TCP segments of an Ethernet (optionally VLAN) / IPv4 capture, in capture order. Anything
/// else (ARP, UDP, …) is dropped: the lab captures are TCP only.
pub fn read_segments(path: &Path) -> Vec<Seg> {
    let mut r = CaptureReader::open(path).expect("capture opens");
    let mut pkt = Packet::empty();
    let mut out = Vec::new();
    while r.next_packet(&mut pkt).expect("capture reads") {
        assert_eq!(pkt.linktype, LINKTYPE_ETHERNET, "lab captures are Ethernet");
        if let Some(s) = parse_ether_tcp(pkt.ts, &pkt.data) {
            out.push(s);
        }
    }
    out
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn parse_ether_tcp(ts: Ts, f: &[u8]) -> Option<Seg> {
    let mut off = 12;
    while f.len() >= off + 2 && be16(f, off) == 0x8100 {
        off += 4;
    }
    if f.len() < off + 2 || be16(f, off) != 0x0800 {
        return None;
    }
    let ip = &f[off + 2..];
    if ip.len() < 20 || ip[9] != 6 {
        return None;
    }
    let ihl = usize::from(ip[0] & 15) * 4;
    let total = usize::from(be16(ip, 2)).min(ip.len());
    let tcp = &ip[ihl..total];
    let doff = usize::from(tcp[12] >> 4) * 4;
    Some(Seg {
        ts,
        src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
        dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
        sport: be16(tcp, 0),
        dport: be16(tcp, 2),
        seq: be32(tcp, 4),
        ack: be32(tcp, 8),
        flags: tcp[13],
        payload: tcp[doff..].to_vec(),
    })
}

// ---------------------------------------------------------------------------------------------
// TCP-level reshaping.

/// Every data segment cut into `n`-byte segments.
pub fn split(segs: &[Seg], n: usize) -> Vec<Seg> {
    let mut out = Vec::new();
    for s in segs {
        if s.payload.len() <= n {
            out.push(s.clone());
            continue;
        }
        for (i, piece) in s.payload.chunks(n).enumerate() {
            let mut p = s.clone();
            p.seq = s.seq.wrapping_add((i * n) as u32);
            p.payload = piece.to_vec();
            out.push(p);
        }
    }
    out
}

/// Every data segment sent twice.
pub fn duplicate(segs: &[Seg]) -> Vec<Seg> {
    let mut out = Vec::new();
    for s in segs {
        out.push(s.clone());
        if !s.payload.is_empty() {
            out.push(s.clone());
        }
    }
    out
}

/// Data segments permuted within windows of `k` (reversed): later bytes arrive before earlier
/// ones. A window only holds segments of one flow direction sent back to back (no data of the
/// other direction between them), as in a flight a network can reorder: a request never moves
/// behind its own response.
pub fn reorder(segs: &[Seg], k: usize) -> Vec<Seg> {
    let mut out = segs.to_vec();
    let mut run: Vec<usize> = Vec::new();
    let flush = |run: &mut Vec<usize>, out: &mut Vec<Seg>| {
        for w in run.chunks(k) {
            for (j, &pos) in w.iter().enumerate() {
                out[pos] = segs[w[w.len() - 1 - j]].clone();
            }
        }
        run.clear();
    };
    for (i, s) in segs.iter().enumerate() {
        if s.payload.is_empty() {
            continue;
        }
        if let Some(&r) = run.first() {
            if segs[r].flow() != s.flow() {
                flush(&mut run, &mut out);
            }
        }
        run.push(i);
    }
    flush(&mut run, &mut out);
    out
}

/// Overlaps with different data: each data segment is sent as its first half, then a segment
/// covering the second quarter of the first half (with *different* bytes) plus the rest (correct),
/// then the second half again. A first-copy-wins reassembler sees the original bytes; a
/// last-copy-wins one sees garbage.
pub fn overlap(segs: &[Seg]) -> Vec<Seg> {
    let mut out = Vec::new();
    for s in segs {
        let n = s.payload.len();
        if n < 8 {
            out.push(s.clone());
            continue;
        }
        let h = n / 2;
        let q = h / 2;
        let mut a = s.clone();
        a.payload = s.payload[..h].to_vec();
        let mut x = s.clone();
        x.seq = s.seq.wrapping_add(q as u32);
        x.payload = s.payload[q..].to_vec();
        for b in &mut x.payload[..h - q] {
            *b ^= 0xa5;
        }
        let mut b = s.clone();
        b.seq = s.seq.wrapping_add(h as u32);
        b.payload = s.payload[h..].to_vec();
        out.extend([a, x, b]);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Network layers.

#[derive(Clone, Copy, Debug)]
pub enum Net {
    V4,
    /// IPv4 fragments carrying at most this many payload bytes (multiple of 8), sent last first.
    V4Frag(usize),
    /// IPv4 addresses mapped into 2001:db8::/96.
    V6,
    /// IPv6 with fragment headers, at most this many payload bytes per fragment, last first.
    V6Frag(usize),
    /// IPv4 inside an 802.1Q tag with this VLAN id.
    Vlan(u16),
}

pub fn v6_of(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            IpAddr::V6(Ipv6Addr::from([
                0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, o[0], o[1], o[2], o[3],
            ]))
        }
        v6 => v6,
    }
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(x) => x.octets(),
        IpAddr::V6(_) => panic!("IPv4 expected"),
    }
}
fn v6(a: IpAddr) -> [u8; 16] {
    match v6_of(a) {
        IpAddr::V6(x) => x.octets(),
        IpAddr::V4(_) => unreachable!(),
    }
}

/// Frames (Ethernet) for the segments.
pub fn frames(segs: &[Seg], net: Net) -> Vec<Packet> {
    let mut out = Vec::new();
    let mut ip_id: u32 = 0x1000;
    let mut push = |ts: Ts, data: Vec<u8>| {
        out.push(Packet {
            ts,
            linktype: LINKTYPE_ETHERNET,
            orig_len: data.len() as u32,
            data,
        });
    };
    for s in segs {
        let (src, dst) = match net {
            Net::V6 | Net::V6Frag(_) => (v6_of(s.src), v6_of(s.dst)),
            _ => (s.src, s.dst),
        };
        let tcp = build::tcp_checksummed(
            src, dst, s.sport, s.dport, s.seq, s.ack, s.flags, &s.payload,
        );
        ip_id = ip_id.wrapping_add(1);
        match net {
            Net::V4 => push(
                s.ts,
                build::ether(0x0800, &build::ipv4(v4(s.src), v4(s.dst), 6, &tcp)),
            ),
            Net::Vlan(vid) => {
                let ip = build::ipv4(v4(s.src), v4(s.dst), 6, &tcp);
                push(
                    s.ts,
                    build::ether(0x8100, &build::vlan_tag(vid, 0x0800, &ip)),
                )
            }
            Net::V6 => push(
                s.ts,
                build::ether(0x86dd, &build::ipv6(v6(s.src), v6(s.dst), 6, &tcp)),
            ),
            Net::V4Frag(n) | Net::V6Frag(n) => {
                assert!(n % 8 == 0 && n > 0);
                let pieces: Vec<(usize, &[u8])> =
                    tcp.chunks(n).enumerate().map(|(i, c)| (i * n, c)).collect();
                let last = pieces.len() - 1;
                // Last fragment first: the reassembler must not depend on arrival order.
                for (i, (off, piece)) in pieces.iter().enumerate().rev() {
                    let more = i != last;
                    let data = match net {
                        Net::V4Frag(_) => build::ether(
                            0x0800,
                            &build::ipv4_frag(
                                v4(s.src),
                                v4(s.dst),
                                6,
                                ip_id as u16,
                                *off,
                                more,
                                piece,
                            ),
                        ),
                        _ => build::ether(
                            0x86dd,
                            &build::ipv6_frag(v6(s.src), v6(s.dst), 6, ip_id, *off, more, piece),
                        ),
                    };
                    push(s.ts, data);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// SMB-level reshaping: per-connection message streams, re-packetized with fresh sequence numbers.

/// One NetBIOS session message (its payload, without the 4-byte header) of a connection.
#[derive(Clone, Debug)]
pub struct Msg {
    pub ts: Ts,
    pub to_server: bool,
    pub body: Vec<u8>,
}

/// One TCP connection as messages. Connections that are not NetBIOS session service (445/139)
/// stay raw segments.
#[derive(Clone, Debug)]
pub struct Conn {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub client_isn: u32,
    pub server_isn: u32,
    pub first_ts: Ts,
    pub msgs: Vec<Msg>,
}

/// Splits the capture into SMB connections (as messages) and everything else (raw segments).
/// Assumes a clean capture (the lab's): in-order data, retransmissions dropped by sequence number.
/// (client, server) endpoints of a connection.
type ConnKey = ((IpAddr, u16), (IpAddr, u16));

pub fn smb_conns(segs: &[Seg]) -> (Vec<Conn>, Vec<Seg>) {
    let mut conns: Vec<Conn> = Vec::new();
    let mut index: HashMap<ConnKey, usize> = HashMap::new();
    let mut next: Vec<[Option<u32>; 2]> = Vec::new();
    let mut bufs: Vec<[Vec<u8>; 2]> = Vec::new();
    let mut other = Vec::new();
    for s in segs {
        let is_smb = |p: u16| p == 445 || p == 139;
        if !is_smb(s.sport) && !is_smb(s.dport) {
            other.push(s.clone());
            continue;
        }
        let to_server = is_smb(s.dport);
        let (client, server) = if to_server {
            ((s.src, s.sport), (s.dst, s.dport))
        } else {
            ((s.dst, s.dport), (s.src, s.sport))
        };
        let ci = *index.entry((client, server)).or_insert_with(|| {
            conns.push(Conn {
                client,
                server,
                client_isn: 0,
                server_isn: 0,
                first_ts: s.ts,
                msgs: Vec::new(),
            });
            next.push([None, None]);
            bufs.push([Vec::new(), Vec::new()]);
            conns.len() - 1
        });
        let d = usize::from(!to_server);
        if s.flags & build::SYN != 0 {
            if to_server {
                conns[ci].client_isn = s.seq;
            } else {
                conns[ci].server_isn = s.seq;
            }
            next[ci][d] = Some(s.seq.wrapping_add(1));
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        let want = *next[ci][d].get_or_insert(s.seq);
        if s.seq != want {
            continue; // retransmission (clean captures only)
        }
        next[ci][d] = Some(want.wrapping_add(s.payload.len() as u32));
        let buf = &mut bufs[ci][d];
        buf.extend_from_slice(&s.payload);
        while buf.len() >= 4 {
            let n = (usize::from(buf[1]) << 16) | (usize::from(buf[2]) << 8) | usize::from(buf[3]);
            if buf.len() < 4 + n {
                break;
            }
            let body = buf[4..4 + n].to_vec();
            buf.drain(..4 + n);
            conns[ci].msgs.push(Msg {
                ts: s.ts,
                to_server,
                body,
            });
        }
    }
    (conns, other)
}

/// Segments for a connection: handshake, each message in segments of at most `mss` bytes, FINs.
pub fn packetize(c: &Conn, mss: usize) -> Vec<Seg> {
    let mut out = Vec::new();
    let (ch, cp) = c.client;
    let (sh, sp) = c.server;
    let mut cseq = c.client_isn;
    let mut sseq = c.server_isn;
    let seg = |ts: Ts, to_server: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]| {
        let (src, sport, dst, dport) = if to_server {
            (ch, cp, sh, sp)
        } else {
            (sh, sp, ch, cp)
        };
        Seg {
            ts,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            payload: payload.to_vec(),
        }
    };
    out.push(seg(c.first_ts, true, cseq, 0, build::SYN, &[]));
    out.push(seg(
        c.first_ts,
        false,
        sseq,
        cseq.wrapping_add(1),
        build::SYN | build::ACK,
        &[],
    ));
    cseq = cseq.wrapping_add(1);
    sseq = sseq.wrapping_add(1);
    out.push(seg(c.first_ts, true, cseq, sseq, build::ACK, &[]));
    let mut last_ts = c.first_ts;
    for m in &c.msgs {
        let mut wire = vec![
            0u8,
            (m.body.len() >> 16) as u8,
            (m.body.len() >> 8) as u8,
            m.body.len() as u8,
        ];
        assert!(m.body.len() < 1 << 24);
        wire.extend_from_slice(&m.body);
        for piece in wire.chunks(mss) {
            if m.to_server {
                out.push(seg(m.ts, true, cseq, sseq, build::ACK | build::PSH, piece));
                cseq = cseq.wrapping_add(piece.len() as u32);
            } else {
                out.push(seg(m.ts, false, sseq, cseq, build::ACK | build::PSH, piece));
                sseq = sseq.wrapping_add(piece.len() as u32);
            }
        }
        last_ts = m.ts;
    }
    out.push(seg(last_ts, true, cseq, sseq, build::FIN | build::ACK, &[]));
    out.push(seg(
        last_ts,
        false,
        sseq,
        cseq.wrapping_add(1),
        build::FIN | build::ACK,
        &[],
    ));
    out.push(seg(
        last_ts,
        true,
        cseq.wrapping_add(1),
        sseq.wrapping_add(1),
        build::ACK,
        &[],
    ));
    out
}

/// Re-packetized connections and the other segments, merged by time (stable).
pub fn rebuild(conns: &[Conn], other: &[Seg], mss: usize) -> Vec<Seg> {
    let mut all: Vec<Seg> = other.to_vec();
    for c in conns {
        all.extend(packetize(c, mss));
    }
    all.sort_by_key(|s| s.ts);
    all
}

// SMB2 header accessors (message = one SMB2 message or a compound chain).
pub const SMB2_HDR: usize = 64;
pub fn is_smb2(m: &[u8]) -> bool {
    m.len() >= SMB2_HDR && m.starts_with(b"\xfeSMB")
}
pub fn cmd(m: &[u8]) -> u16 {
    u16::from_le_bytes([m[12], m[13]])
}
pub fn mid(m: &[u8]) -> u64 {
    u64::from_le_bytes(m[24..32].try_into().unwrap())
}
pub fn set_mid(m: &mut [u8], v: u64) {
    m[24..32].copy_from_slice(&v.to_le_bytes());
}
pub fn le16(m: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([m[at], m[at + 1]])
}
pub fn le32(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().unwrap())
}
pub const WRITE: u16 = 9;
pub const CREATE: u16 = 5;
pub const CLOSE: u16 = 6;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn replace_all(hay: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= hay.len() {
        if &hay[i..i + from.len()] == from {
            hay[i..i + from.len()].copy_from_slice(to);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    n
}

/// Client messages: `from` (UTF-16 or ASCII) replaced by `to` (same length), e.g. share names in tree
/// connects. Returns how many were replaced.
pub fn replace_utf16_to_server(conns: &mut [Conn], from: &str, to: &str) -> usize {
    let (f, t) = (utf16(from), utf16(to));
    let mut n = 0;
    for c in conns {
        for m in c.msgs.iter_mut().filter(|m| m.to_server) {
            n += replace_all(&mut m.body, &f, &t);
            // SMB1 without the Unicode flag carries OEM (ASCII) strings.
            n += replace_all(&mut m.body, from.as_bytes(), to.as_bytes());
        }
    }
    n
}

/// The SMB2 WRITE (to a pipe) that carries a DCE-RPC request PDU with `opnum`, re-sent as `n`
/// request fragments in `n` WRITEs (first/last flags, alloc_hint = stub bytes left), each answered
/// by a copy of the original WRITE response. Fresh message ids for the extra WRITEs. Returns how
/// many requests were split.
pub fn fragment_dcerpc_request(conns: &mut [Conn], opnum: u16, n: usize) -> usize {
    let mut done = 0;
    let mut fresh_mid = 0x4000_0000u64;
    for c in conns {
        let mut out: Vec<Msg> = Vec::new();
        let msgs = std::mem::take(&mut c.msgs);
        let mut i = 0;
        while i < msgs.len() {
            let m = &msgs[i];
            let b = &m.body;
            let is_target = m.to_server && is_smb2(b) && cmd(b) == WRITE && le32(b, 20) == 0 && {
                let off = usize::from(le16(b, SMB2_HDR + 2));
                let len = le32(b, SMB2_HDR + 4) as usize;
                off + len <= b.len()
                    && len >= 24
                    && b[off] == 5
                    && b[off + 2] == 0
                    && le16(b, off + 22) == opnum
            };
            if !is_target {
                out.push(m.clone());
                i += 1;
                continue;
            }
            let off = usize::from(le16(b, SMB2_HDR + 2));
            let len = le32(b, SMB2_HDR + 4) as usize;
            let pdu = &b[off..off + len];
            assert_eq!(pdu[4] & 0xf0, 0x10, "little-endian PDUs only");
            assert_eq!(
                le16(pdu, 10),
                0,
                "unauthenticated PDUs only (the verifier would need re-signing)"
            );
            assert_eq!(pdu[3] & 3, 3, "a single-fragment request to start with");
            let stub = &pdu[24..];
            let resp = msgs[i + 1..]
                .iter()
                .find(|r| {
                    !r.to_server
                        && is_smb2(&r.body)
                        && cmd(&r.body) == WRITE
                        && mid(&r.body) == mid(b)
                })
                .expect("WRITE response")
                .clone();
            let piece = stub.len().div_ceil(n);
            let pieces: Vec<&[u8]> = stub.chunks(piece.max(1)).collect();
            let mut left = stub.len();
            for (k, p) in pieces.iter().enumerate() {
                let last = k + 1 == pieces.len();
                let mut frag = pdu[..24].to_vec();
                frag[3] = (pdu[3] & !3) | if k == 0 { 1 } else { 0 } | if last { 2 } else { 0 };
                frag[8..10].copy_from_slice(&((24 + p.len()) as u16).to_le_bytes());
                frag[16..20].copy_from_slice(&(left as u32).to_le_bytes());
                frag.extend_from_slice(p);
                left -= p.len();
                let mut w = b[..off].to_vec();
                w[SMB2_HDR + 4..SMB2_HDR + 8].copy_from_slice(&(frag.len() as u32).to_le_bytes());
                w.extend_from_slice(&frag);
                if !last {
                    set_mid(&mut w, fresh_mid);
                    let mut r = resp.body.clone();
                    set_mid(&mut r, fresh_mid);
                    fresh_mid += 1;
                    out.push(Msg {
                        ts: m.ts,
                        to_server: true,
                        body: w,
                    });
                    out.push(Msg {
                        ts: m.ts,
                        to_server: false,
                        body: r,
                    });
                } else {
                    out.push(Msg {
                        ts: m.ts,
                        to_server: true,
                        body: w,
                    });
                }
            }
            done += 1;
            i += 1;
        }
        c.msgs = out;
    }
    done
}

/// The upload of `name` (any case; CREATE, its WRITEs, CLOSE) re-sent as one related compound request
/// (the WRITEs and the CLOSE name FileId all-ones), answered by one compound response made of
/// the original (final) responses. At most `max_writes` WRITEs join the compound; the CLOSE joins
/// only when all of them did (the rest keep their own messages and the real FileId).
/// Returns whether it was found.
pub fn compound_upload(conns: &mut [Conn], name: &str, max_writes: usize) -> bool {
    let want = name.to_lowercase();
    for c in conns.iter_mut() {
        let Some(ci) = c.msgs.iter().position(|m| {
            m.to_server && is_smb2(&m.body) && cmd(&m.body) == CREATE && le32(&m.body, 20) == 0 && {
                let off = usize::from(le16(&m.body, SMB2_HDR + 44));
                let len = usize::from(le16(&m.body, SMB2_HDR + 46));
                m.body.get(off..off + len).is_some_and(|n| {
                    let u: Vec<u16> = n
                        .chunks_exact(2)
                        .map(|p| u16::from_le_bytes([p[0], p[1]]))
                        .collect();
                    String::from_utf16_lossy(&u).to_lowercase().ends_with(&want)
                })
            }
        }) else {
            continue;
        };
        let final_response = |msgs: &[Msg], id: u64| -> usize {
            // The last response with this id (an interim STATUS_PENDING may come first).
            (0..msgs.len())
                .rev()
                .find(|&j| !msgs[j].to_server && is_smb2(&msgs[j].body) && mid(&msgs[j].body) == id)
                .expect("response")
        };
        let create_mid = mid(&c.msgs[ci].body);
        let cr = final_response(&c.msgs, create_mid);
        let fid: [u8; 16] = c.msgs[cr].body[SMB2_HDR + 64..SMB2_HDR + 80]
            .try_into()
            .unwrap();
        let mut parts = vec![ci];
        let mut close_at = None;
        let mut writes = 0;
        for (j, m) in c.msgs.iter().enumerate().skip(ci + 1) {
            if !m.to_server || !is_smb2(&m.body) {
                continue;
            }
            match cmd(&m.body) {
                WRITE if m.body[SMB2_HDR + 16..SMB2_HDR + 32] == fid => {
                    writes += 1;
                    if writes <= max_writes {
                        parts.push(j);
                    }
                }
                CLOSE if m.body[SMB2_HDR + 8..SMB2_HDR + 24] == fid => {
                    if writes <= max_writes {
                        parts.push(j);
                    }
                    close_at = Some(j);
                    break;
                }
                _ => {}
            }
        }
        assert!(close_at.is_some(), "the upload is closed");
        let mut responses: Vec<usize> = Vec::new();
        for &p in &parts {
            let id = mid(&c.msgs[p].body);
            // Every response with this id goes (interims too); the final one joins the compound.
            for j in 0..c.msgs.len() {
                if !c.msgs[j].to_server && is_smb2(&c.msgs[j].body) && mid(&c.msgs[j].body) == id {
                    responses.push(j);
                }
            }
        }
        let finals: Vec<usize> = parts
            .iter()
            .map(|&p| final_response(&c.msgs, mid(&c.msgs[p].body)))
            .collect();
        let chain = |bodies: Vec<Vec<u8>>, fid_at: &dyn Fn(u16) -> Option<usize>| -> Vec<u8> {
            let mut out = Vec::new();
            let count = bodies.len();
            for (k, mut b) in bodies.into_iter().enumerate() {
                if k > 0 {
                    b[16] |= 0x04; // SMB2_FLAGS_RELATED_OPERATIONS
                    if let Some(at) = fid_at(cmd(&b)) {
                        b[at..at + 16].fill(0xff);
                    }
                }
                if k + 1 < count {
                    let padded = b.len().div_ceil(8) * 8;
                    b.resize(padded, 0);
                    b[20..24].copy_from_slice(&(padded as u32).to_le_bytes());
                } else {
                    b[20..24].fill(0);
                }
                out.extend_from_slice(&b);
            }
            out
        };
        let req_fid = |cmd: u16| match cmd {
            WRITE => Some(SMB2_HDR + 16),
            CLOSE => Some(SMB2_HDR + 8),
            _ => None,
        };
        let request = chain(
            parts.iter().map(|&p| c.msgs[p].body.clone()).collect(),
            &req_fid,
        );
        let response = chain(
            finals.iter().map(|&r| c.msgs[r].body.clone()).collect(),
            &|_| None,
        );
        let ts = c.msgs[ci].ts;
        let mut drop: Vec<usize> = parts.iter().chain(responses.iter()).copied().collect();
        drop.sort_unstable();
        drop.dedup();
        let mut out = Vec::new();
        for (j, m) in c.msgs.iter().enumerate() {
            if j == ci {
                out.push(Msg {
                    ts,
                    to_server: true,
                    body: request.clone(),
                });
                out.push(Msg {
                    ts,
                    to_server: false,
                    body: response.clone(),
                });
            }
            if drop.binary_search(&j).is_err() {
                out.push(m.clone());
            }
        }
        c.msgs = out;
        return true;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// One-sided captures.

/// Every packet of a capture (any format and link type the sensor reads), in capture order.
pub fn read_packets(path: &Path) -> Vec<Packet> {
    let mut r = CaptureReader::open(path).expect("capture opens");
    let mut out = Vec::new();
    let mut pkt = Packet::empty();
    while r.next_packet(&mut pkt).expect("capture reads") {
        out.push(pkt.clone());
    }
    out
}

/// Which half of a host's link a span port or tap delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    /// Only packets to the host (client→server for a server).
    To,
    /// Only packets from the host.
    From,
}

/// The packets one half of `host`'s link carries. Packets without IP addresses are dropped.
pub fn one_sided(packets: &[Packet], host: IpAddr, half: Half) -> Vec<Packet> {
    packets
        .iter()
        .filter(|p| {
            psexec_sensor::decode::host_pair(p.frame()).is_some_and(|(src, dst)| match half {
                Half::To => dst == host,
                Half::From => src == host,
            })
        })
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running the sensor in-process.

pub struct Outcome {
    pub events: Vec<Event>,
    pub alerts: Vec<Alert>,
}

/// The engine over the packets, then the detection stage with the embedded rules (what `read`
/// does: the matcher and the inferences from SMB3 sizes and from server responses).
pub fn run(packets: &[Packet]) -> Outcome {
    run_with(packets, EngineConfig::default())
}

/// As [`run`], with the engine configured (per-target policies, say).
pub fn run_with(packets: &[Packet], cfg: EngineConfig) -> Outcome {
    let mut engine = Engine::new(cfg);
    let mut out = Collect::default();
    for (i, p) in packets.iter().enumerate() {
        engine.process(i as u64, p, &mut out);
    }
    engine.finish(&mut out);
    let events: Vec<Event> = out.events.into_iter().map(|(_, e)| e).collect();
    let mut detection = Detection::new(Rules::embedded());
    let mut alerts = Vec::new();
    for e in &events {
        detection.on_event(e, &mut alerts);
    }
    detection.finish(&mut alerts);
    Outcome { events, alerts }
}

/// The facts an evasion must not change, per technique alert (sorted, addresses as given).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Facts {
    pub technique: String,
    pub tool: String,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub service_name: Option<String>,
    pub binary_path: Option<String>,
    /// (name, size, sha256)
    pub uploads: Vec<(String, u64, Option<String>)>,
}

pub fn facts(alerts: &[Alert]) -> Vec<Facts> {
    let mut v: Vec<Facts> = alerts
        .iter()
        .filter_map(Alert::as_technique)
        .map(facts_of)
        .collect();
    v.sort();
    v
}

fn facts_of(t: &TechniqueAlert) -> Facts {
    let mut uploads: Vec<_> = t
        .uploads
        .iter()
        .map(|u| (u.name.to_lowercase(), u.size, u.sha256.clone()))
        .collect();
    uploads.sort();
    Facts {
        technique: serde_json::to_value(t.technique)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string(),
        tool: t.tool.clone(),
        src_ip: t.src_ip,
        dst_ip: t.dst_ip,
        service_name: t.service_name.clone(),
        binary_path: t.binary_path.clone(),
        uploads,
    }
}

/// The same facts with addresses mapped to IPv6 (for the IPv6 variants).
pub fn facts_v6(f: &[Facts]) -> Vec<Facts> {
    let mut v: Vec<Facts> = f
        .iter()
        .cloned()
        .map(|mut x| {
            x.src_ip = v6_of(x.src_ip);
            x.dst_ip = v6_of(x.dst_ip);
            x
        })
        .collect();
    v.sort();
    v
}

/// (service_name, binary_path) of every dce_rpc event that carries them, sorted.
pub fn service_calls(events: &[Event]) -> Vec<(String, Option<String>, Option<String>)> {
    let mut v: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::DceRpc(d) if d.args.service_name.is_some() || d.args.binary_path.is_some() => {
                Some((
                    d.operation.clone(),
                    d.args.service_name.clone(),
                    d.args.binary_path.clone(),
                ))
            }
            _ => None,
        })
        .collect();
    v.sort();
    v
}
