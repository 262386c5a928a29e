//! The insertion evasions of Ptacek & Newsham (1998), applied to a capture's segments: before (or
//! around) each of the attacker's real data segments, a copy the endpoint throws away but a naive
//! sensor believes. The decoys are "clean": the real bytes with every ASCII letter shifted by one
//! (`a`→`b`, `Z`→`A`), so share, pipe, file and service names keep their lengths and the SMB and
//! DCE-RPC framing stays valid: a sensor that believes a decoy reports another service, binary
//! or upload hash, and the tests notice.
//!
//! Each class says why the endpoint (the lab victim is Linux/Samba; Windows behaves the same on
//! each point) still receives exactly the real stream, so the reshaped capture is still the attack.
//! The attacker is the client: only segments towards the server ports are doubled.

use super::reshape::*;
use psexec_sensor::capture::{Packet, LINKTYPE_ETHERNET};
use psexec_sensor::decode::{build, checksum};
use std::collections::HashMap;
use std::net::IpAddr;

/// One frame to write: a segment, and what is wrong with it on purpose.
#[derive(Clone, Debug)]
pub struct Wire {
    pub seg: Seg,
    pub spoil: Spoil,
    /// The advertised window written in the TCP header (the builder's 65535 when None).
    pub window: Option<u16>,
    /// The window scale option a SYN carries (none on other segments).
    pub syn_shift: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spoil {
    None,
    /// The TCP checksum is off by one.
    TcpChecksum,
    /// The IPv4 header checksum is off by one (the TCP checksum is right).
    Ipv4Checksum,
    /// Sent as IPv4 fragments of `.0` bytes, preceded by fragments of the decoy covering all but
    /// the last fragment (the same IP id): the real fragments overlap them with other bytes.
    OverlappedFragments(usize),
}

pub fn clean(seg: Seg) -> Wire {
    Wire {
        seg,
        spoil: Spoil::None,
        window: None,
        syn_shift: Some(build::SYN_WINDOW_SHIFT),
    }
}

fn spoiled(seg: Seg, spoil: Spoil) -> Wire {
    Wire {
        seg,
        spoil,
        window: None,
        syn_shift: Some(build::SYN_WINDOW_SHIFT),
    }
}

/// Data from the attacker (the client) to the SMB server.
fn to_server(s: &Seg) -> bool {
    [445, 139].contains(&s.dport) && !s.payload.is_empty()
}

/// The real bytes with ASCII letters shifted by one: same length, same framing, other names.
pub fn decoy_bytes(p: &[u8]) -> Vec<u8> {
    p.iter()
        .map(|&b| match b {
            b'a'..=b'y' | b'A'..=b'Y' => b + 1,
            b'z' => b'a',
            b'Z' => b'A',
            _ => b,
        })
        .collect()
}

fn decoy_of(s: &Seg) -> Seg {
    let mut d = s.clone();
    d.payload = decoy_bytes(&s.payload);
    d
}

/// Every attacker data segment preceded by `decoy(segment)` (and followed by `after`).
fn around(
    segs: &[Seg],
    decoy: impl Fn(&Seg) -> Vec<Wire>,
    after: impl Fn(&Seg) -> Vec<Wire>,
) -> Vec<Wire> {
    let mut out = Vec::new();
    for s in segs {
        if to_server(s) {
            out.extend(decoy(s));
            out.push(clean(s.clone()));
            out.extend(after(s));
        } else {
            out.push(clean(s.clone()));
        }
    }
    out
}

fn nothing(_: &Seg) -> Vec<Wire> {
    Vec::new()
}

/// A decoy with a bad TCP checksum first. The endpoint verifies the checksum before anything
/// else and drops the segment silently (RFC 9293 §3.1; Linux `tcp_v4_rcv` → `tcp_checksum_complete`
/// → discard, counted in `TcpExtInCsumErrors`): the real copy is the first it accepts.
pub fn bad_tcp_checksum_decoys(segs: &[Seg]) -> Vec<Wire> {
    around(
        segs,
        |s| vec![spoiled(decoy_of(s), Spoil::TcpChecksum)],
        nothing,
    )
}

/// A decoy with a bad IPv4 header checksum first. IP drops it before TCP sees it (RFC 1122
/// §3.2.1.2 "MUST verify the IP header checksum… silently discard"; Linux `ip_rcv_core` →
/// `csum_error`).
pub fn bad_ipv4_checksum_decoys(segs: &[Seg]) -> Vec<Wire> {
    around(
        segs,
        |s| vec![spoiled(decoy_of(s), Spoil::Ipv4Checksum)],
        nothing,
    )
}

/// A decoy without the ACK flag first (checksums right). In a synchronized state "if the ACK bit
/// is off, drop the segment and return" (RFC 9293 §3.10.7.4, fifth check); Linux
/// `tcp_rcv_established` / `tcp_validate_incoming` discard `!ack && !rst && !syn`.
pub fn data_without_ack_decoys(segs: &[Seg]) -> Vec<Wire> {
    around(
        segs,
        |s| {
            let mut d = decoy_of(s);
            d.flags &= !build::ACK;
            vec![clean(d)]
        },
        nothing,
    )
}

/// A decoy acknowledging data the server never sent first (checksums right). "If the ACK acks
/// something not yet sent (SEG.ACK > SND.NXT) then send an ACK, drop the segment, and return"
/// (RFC 9293 §3.10.7.4; RFC 5961 §5.2); Linux `tcp_ack` returns `TCP_ACK_UNSENT_DATA` and the
/// segment is discarded.
pub fn ack_unsent_decoys(segs: &[Seg]) -> Vec<Wire> {
    around(
        segs,
        |s| {
            let mut d = decoy_of(s);
            d.ack = d.ack.wrapping_add(70_000);
            vec![clean(d)]
        },
        nothing,
    )
}

/// After each real segment, two resets "from the client": one at the exact next sequence number
/// with a bad TCP checksum (dropped as above), one inside the window but 1,000 bytes ahead of it
/// (right checksum). RFC 5961 §3.2 (Linux since 3.6, Windows since Vista): a RST not at exactly
/// RCV.NXT only draws a challenge ACK and the connection goes on.
pub fn rst_decoys(segs: &[Seg]) -> Vec<Wire> {
    around(segs, nothing, |s| {
        let next = s.seq.wrapping_add(s.payload.len() as u32);
        let rst = |seq: u32| {
            let mut r = s.clone();
            r.seq = seq;
            r.flags = build::RST | build::ACK;
            r.payload.clear();
            r
        };
        vec![
            spoiled(rst(next), Spoil::TcpChecksum),
            clean(rst(next.wrapping_add(1000))),
        ]
    })
}

/// Each attacker segment as overlapping IPv4 fragments: the decoy's fragments first (all but the
/// last), then the real fragments over them, then the sender's retransmission of the segment
/// whole. Linux (since 4.19, `ip_frag_queue` → `IPFRAG_OVERLAP`) and Windows since Vista drop a
/// datagram whose fragments overlap (RFC 5722 makes it a MUST for IPv6), so the datagram never
/// reaches TCP; the sender, unacknowledged, retransmits, and that copy is the one accepted. (A
/// last-wins stack would take the real bytes from the overlap instead, and drop the
/// retransmission as a duplicate: the same stream either way.)
pub fn overlapping_fragment_decoys(segs: &[Seg], frag: usize) -> Vec<Wire> {
    let mut out = Vec::new();
    for s in segs {
        if to_server(s) {
            out.push(spoiled(s.clone(), Spoil::OverlappedFragments(frag)));
        }
        // The real segment (or the retransmission after the fragments).
        out.push(clean(s.clone()));
    }
    out
}

/// Each attacker segment (of 3 bytes or more) out of order in three pieces: a decoy of all but
/// its first two bytes (after a hole), then the real bytes from its second byte on, overlapping the
/// decoy from one byte earlier, then the real first byte that fills the hole. A receiver keeps
/// the copy whose segment starts first (Linux `tcp_data_queue_ofo`: a queued segment is
/// replaced or trimmed by one starting before it; FreeBSD `tcp_reass` trims the succeeding
/// segment; Windows keeps the earlier-starting copy as BSD does, Suricata's Windows policy), so
/// the server receives exactly the real stream. A sensor that keeps the first copy (Snort/Suricata
/// "first") reads the decoy.
pub fn ooo_overlap_decoys(segs: &[Seg]) -> Vec<Wire> {
    let mut out = Vec::new();
    for s in segs {
        if !to_server(s) || s.payload.len() < 3 {
            out.push(clean(s.clone()));
            continue;
        }
        let piece = |from: usize, bytes: &[u8]| {
            let mut p = s.clone();
            p.seq = s.seq.wrapping_add(from as u32);
            p.payload = bytes[from..].to_vec();
            clean(p)
        };
        let decoy = decoy_bytes(&s.payload);
        out.push(piece(2, &decoy));
        out.push(piece(1, &s.payload));
        let mut first = s.clone();
        first.payload.truncate(1);
        out.push(clean(first));
    }
    out
}

/// The server's TCP port of an SMB connection segment, whichever way it goes.
fn server_side(s: &Seg) -> bool {
    [445, 139].contains(&s.sport)
}

/// The connection a segment belongs to, as (client, server).
fn conn_of(s: &Seg) -> ((IpAddr, u16), (IpAddr, u16)) {
    if server_side(s) {
        ((s.dst, s.dport), (s.src, s.sport))
    } else {
        ((s.src, s.sport), (s.dst, s.dport))
    }
}

/// Decoys beyond the receiver's advertised window. The server's windows are rewritten to be
/// exactly as wide as what the client sends before the server's next segment (its SYN-ACK
/// included; the SYNs carry no window scale option here, so no scaling, RFC 7323 §2.2), and each
/// attacker segment's decoy is sent one round earlier, before the server segment that opens the
/// window to it: it then starts at or beyond RCV.NXT + RCV.WND. The endpoint drops such a
/// segment (RFC 9293 §3.10.7.4 first check; Linux `tcp_sequence` / `tcp_data_queue`
/// "out_of_window"), so the real copy sent later, inside the window, is the one it takes. A
/// decoy whose round has no earlier window (the first after the SYN-ACK) is not sent.
pub fn beyond_window_decoys(segs: &[Seg]) -> Vec<Wire> {
    let smb = |s: &Seg| server_side(s) || [445, 139].contains(&s.dport);
    // Per server segment: the right edge its window must reach (the end of the client's data
    // up to the server's next segment), never moving back. Each attacker segment's decoy goes
    // before the server segment preceding its round, when an earlier server segment already set
    // a window; its ACK number is the server's SND.NXT there (so only the window can refuse it).
    let mut edge_of: Vec<Option<u32>> = vec![None; segs.len()];
    let mut decoys_before: Vec<Vec<Wire>> = vec![Vec::new(); segs.len()];
    let mut server_nxt: Vec<u32> = vec![0; segs.len()];
    let mut servers: HashMap<_, Vec<usize>> = HashMap::new();
    let mut edge_now: HashMap<_, u32> = HashMap::new();
    let mut nxt: HashMap<_, u32> = HashMap::new();
    for (i, s) in segs.iter().enumerate() {
        if !smb(s) {
            continue;
        }
        let c = conn_of(s);
        if server_side(s) {
            edge_of[i] = Some(edge_now.get(&c).copied().unwrap_or(s.ack));
            server_nxt[i] = nxt.get(&c).copied().unwrap_or(s.seq);
            let syn = u32::from(s.flags & build::SYN != 0);
            nxt.insert(c, s.seq.wrapping_add(s.payload.len() as u32 + syn));
            servers.entry(c).or_default().push(i);
        } else if to_server(s) {
            let end = s.seq.wrapping_add(s.payload.len() as u32);
            let e = edge_now.entry(c).or_insert(end);
            if end.wrapping_sub(*e) as i32 > 0 {
                *e = end;
            }
            let list = servers.get(&c).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&j) = list.last() {
                let cur = edge_of[j].unwrap_or(end);
                if end.wrapping_sub(cur) as i32 > 0 {
                    edge_of[j] = Some(end);
                }
            }
            if list.len() >= 2 {
                let j = list[list.len() - 1];
                let mut d = decoy_of(s);
                d.ts = segs[j].ts;
                d.ack = server_nxt[j];
                decoys_before[j].push(clean(d));
            }
        }
    }
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        out.append(&mut decoys_before[i]);
        let mut w = clean(s.clone());
        w.syn_shift = None;
        if let Some(edge) = edge_of[i] {
            w.window = Some(edge.wrapping_sub(s.ack).min(65535) as u16);
        }
        out.push(w);
    }
    out
}

/// The few header fields the overwrite class needs, for SMB2 and SMB1 alike.
mod upload {
    use super::*;

    const SMB1_HDR: usize = 32;
    const SMB1_WRITE_ANDX: u8 = 0x2F;
    const SMB1_NT_CREATE_ANDX: u8 = 0xA2;

    fn is_smb1(m: &[u8]) -> bool {
        m.len() > SMB1_HDR + 3 && m.starts_with(b"\xffSMB")
    }

    /// A single (not compounded, not AndX-chained) CREATE request.
    pub fn is_create(m: &[u8]) -> bool {
        if is_smb2(m) {
            return cmd(m) == CREATE && le32(m, 20) == 0;
        }
        is_smb1(m) && m[4] == SMB1_NT_CREATE_ANDX && m[SMB1_HDR + 1] == 0xFF
    }

    /// The name bytes of a CREATE request (UTF-16 or ASCII; only looked at for a '.').
    pub fn create_name(m: &[u8]) -> &[u8] {
        if is_smb2(m) {
            let (off, len) = (
                usize::from(le16(m, SMB2_HDR + 44)),
                usize::from(le16(m, SMB2_HDR + 46)),
            );
            return m.get(off..off + len).unwrap_or(&[]);
        }
        // NT_CREATE_ANDX: 24 parameter words, the byte count, then the name.
        m.get(SMB1_HDR + 1 + 48 + 2..).unwrap_or(&[])
    }

    /// The handle a successful CREATE response opened.
    pub fn created_handle(r: &[u8]) -> Option<Vec<u8>> {
        if is_smb2(r) {
            return (le32(r, 8) == 0).then(|| r[SMB2_HDR + 64..SMB2_HDR + 80].to_vec());
        }
        // Status 0, then AndX (4 bytes), oplock level, FID.
        (is_smb1(r) && le32(r, 5) == 0 && r[SMB1_HDR] > 0)
            .then(|| r[SMB1_HDR + 6..SMB1_HDR + 8].to_vec())
    }

    /// A single WRITE request: its handle and where its data lies in the message.
    pub fn write(m: &[u8]) -> Option<(Vec<u8>, std::ops::Range<usize>)> {
        if is_smb2(m) {
            if cmd(m) != WRITE || le32(m, 20) != 0 {
                return None;
            }
            let off = usize::from(le16(m, SMB2_HDR + 2));
            let len = le32(m, SMB2_HDR + 4) as usize;
            return Some((m[SMB2_HDR + 16..SMB2_HDR + 32].to_vec(), off..off + len));
        }
        if !is_smb1(m) || m[4] != SMB1_WRITE_ANDX || m[SMB1_HDR + 1] != 0xFF {
            return None;
        }
        // WRITE_ANDX words: AndX (4), FID, Offset (4), Timeout (4), WriteMode, Remaining,
        // DataLengthHigh, DataLength, DataOffset (from the header start).
        let w = SMB1_HDR + 1;
        let len = (usize::from(le16(m, w + 18)) << 16) | usize::from(le16(m, w + 20));
        let off = usize::from(le16(m, w + 22));
        (off + len <= m.len()).then(|| (m[w + 4..w + 6].to_vec(), off..off + len))
    }

    pub fn id(m: &[u8]) -> u64 {
        if is_smb2(m) {
            mid(m)
        } else {
            u64::from(le16(m, 30))
        }
    }

    pub fn set_id(m: &mut [u8], v: u64) {
        if is_smb2(m) {
            set_mid(m, v)
        } else {
            m[30..32].copy_from_slice(&(v as u16).to_le_bytes())
        }
    }

    /// The final response to request `m` (an interim STATUS_PENDING may come first).
    pub fn response<'a>(msgs: &'a [Msg], m: &Msg) -> Option<&'a Msg> {
        let same_kind = |r: &Msg| {
            (is_smb2(&r.body) && is_smb2(&m.body))
                || (is_smb1(&r.body) && is_smb1(&m.body) && r.body[4] == m.body[4])
        };
        msgs.iter()
            .rev()
            .find(|r| !r.to_server && same_kind(r) && id(&r.body) == id(&m.body))
    }
}

/// Every WRITE to a file (SMB2 WRITE or SMB1 WRITE_ANDX to a handle whose CREATE named a file
/// with an extension: not a pipe) preceded by a decoy WRITE of zeros at the same offset and
/// length, answered by a copy of the real WRITE's response. Two writes to the same offsets leave
/// the later one's bytes on disk (MS-SMB2 §3.3.5.13 and MS-CIFS §3.3.5.40: the server writes the
/// data at the offset; POSIX `pwrite` under Samba, NTFS on Windows), so the server ends with the
/// real file; a sensor that hashes bytes as written, or keeps the first copy, reports the zeros.
/// The decoys take fresh message ids (as `reshape::fragment_dcerpc_request` does); the attacker
/// holds the session key, so it signs them (the copies keep the original signature bytes, which
/// the sensor, without the key, never checks). Returns the wires and how many decoy writes went
/// in.
pub fn overwritten_upload_decoys(segs: &[Seg]) -> (Vec<Wire>, usize) {
    let (mut conns, other) = smb_conns(segs);
    // SMB1 message ids are 16 bits: fresh ones from the top, SMB2 ones far above the lab's.
    let fresh = |smb2: bool, n: &mut u64| {
        *n += 1;
        if smb2 {
            0x5000_0000 + *n
        } else {
            0xF000 + *n
        }
    };
    let mut issued = 0u64;
    let mut decoys = 0;
    for c in &mut conns {
        let mut files: Vec<Vec<u8>> = Vec::new();
        for m in c
            .msgs
            .iter()
            .filter(|m| m.to_server && upload::is_create(&m.body))
        {
            let named_file = upload::create_name(&m.body).contains(&b'.');
            let opened = upload::response(&c.msgs, m).and_then(|r| upload::created_handle(&r.body));
            if let Some(h) = opened.filter(|_| named_file) {
                files.push(h);
            }
        }
        let mut out = Vec::new();
        for m in &c.msgs {
            let target = m
                .to_server
                .then(|| upload::write(&m.body))
                .flatten()
                .filter(|(h, _)| files.contains(h));
            if let (Some((_, data)), Some(resp)) = (target, upload::response(&c.msgs, m)) {
                let id = fresh(is_smb2(&m.body), &mut issued);
                let mut w = m.body.clone();
                w[data].fill(0);
                upload::set_id(&mut w, id);
                let mut r = resp.body.clone();
                upload::set_id(&mut r, id);
                decoys += 1;
                out.push(Msg {
                    body: w,
                    ..m.clone()
                });
                out.push(Msg {
                    ts: m.ts,
                    to_server: false,
                    body: r,
                });
            }
            out.push(m.clone());
        }
        c.msgs = out;
    }
    let wires = rebuild(&conns, &other, 1460)
        .into_iter()
        .map(clean)
        .collect();
    (wires, decoys)
}

// ---------------------------------------------------------------------------------------------

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(x) => x.octets(),
        IpAddr::V6(_) => panic!("the lab captures are IPv4"),
    }
}

fn packet(seg: &Seg, data: Vec<u8>) -> Packet {
    Packet {
        ts: seg.ts,
        linktype: LINKTYPE_ETHERNET,
        orig_len: data.len() as u32,
        data,
    }
}

/// Ethernet / IPv4 frames for the wires.
pub fn wire_frames(wires: &[Wire]) -> Vec<Packet> {
    let mut out = Vec::new();
    let mut ip_id: u16 = 0x4000;
    for w in wires {
        let s = &w.seg;
        let tcp = |payload: &[u8]| {
            let shift = w.syn_shift.filter(|_| s.flags & build::SYN != 0);
            let mut t = build::tcp_scaled(s.sport, s.dport, s.seq, s.ack, s.flags, shift, payload);
            if let Some(w) = w.window {
                t[14..16].copy_from_slice(&w.to_be_bytes());
            }
            let c = checksum::transport_field(s.src, s.dst, checksum::TCP, &t);
            t[16..18].copy_from_slice(&c);
            t
        };
        ip_id = ip_id.wrapping_add(1);
        match w.spoil {
            Spoil::None | Spoil::TcpChecksum | Spoil::Ipv4Checksum => {
                let mut t = tcp(&s.payload);
                if w.spoil == Spoil::TcpChecksum {
                    t[17] = t[17].wrapping_add(1);
                }
                let mut ip = build::ipv4(v4(s.src), v4(s.dst), 6, &t);
                if w.spoil == Spoil::Ipv4Checksum {
                    ip[11] = ip[11].wrapping_add(1);
                }
                out.push(packet(s, build::ether(0x0800, &ip)));
            }
            Spoil::OverlappedFragments(n) => {
                assert!(n % 8 == 0 && n > 0);
                let real = tcp(&s.payload);
                let pieces = real.len().div_ceil(n);
                // The decoy's fragments cover all but the last piece; its checksum is made right
                // for what a first-copy-wins reassembler builds (decoy pieces + the real last
                // piece), so only the overlap itself can give it away.
                let covered = (pieces.saturating_sub(1) * n).max(20);
                let mut first_wins = s.payload.clone();
                let decoy_payload = decoy_bytes(&s.payload);
                first_wins[..covered - 20].copy_from_slice(&decoy_payload[..covered - 20]);
                let decoy = tcp(&first_wins);
                let frag = |bytes: &[u8], i: usize| {
                    let (a, b) = (i * n, ((i + 1) * n).min(bytes.len()));
                    let ip = build::ipv4_frag(
                        v4(s.src),
                        v4(s.dst),
                        6,
                        ip_id,
                        a,
                        i + 1 < pieces,
                        &bytes[a..b],
                    );
                    packet(s, build::ether(0x0800, &ip))
                };
                for i in 0..pieces.saturating_sub(1) {
                    out.push(frag(&decoy, i));
                }
                for i in 0..pieces {
                    out.push(frag(&real, i));
                }
            }
        }
    }
    out
}
