//! The SMB parser (framer + SMB2 state machine) on hand-built conversations.

use super::records::tests::*;
use super::records::*;
use crate::event::{AnomalyKind, Event, FileAction, SmbFiles};
use crate::flow::{ConnId, Direction, FlowCtx, StreamParser, Uid};
use crate::sink::Sink;
use crate::smb::{SmbParser, SmbShared, MAX_SMB_MESSAGE_BUFFER};
use crate::time::Ts;
use sha2::{Digest, Sha256};

pub(super) const SID: u64 = 0x1000_0000_0001;
pub(super) const IPC: u32 = 1;
pub(super) const ADMIN: u32 = 2;

pub(super) fn ctx() -> FlowCtx {
    let conn = ConnId {
        orig_h: "192.0.2.10".parse().unwrap(),
        orig_p: 50000,
        resp_h: "192.0.2.20".parse().unwrap(),
        resp_p: 445,
    };
    FlowCtx {
        conn,
        uid: Uid::new(&conn, 1),
    }
}

pub(super) fn nb(msg: &[u8]) -> Vec<u8> {
    let n = msg.len() as u32;
    let mut v = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    v.extend_from_slice(msg);
    v
}

/// A conversation: (direction, NetBIOS-framed bytes).
pub(super) type Conv = Vec<(Direction, Vec<u8>)>;

pub(super) fn req(c: &mut Conv, m: Vec<u8>) {
    c.push((Direction::ToServer, nb(&m)));
}
pub(super) fn resp(c: &mut Conv, m: Vec<u8>) {
    c.push((Direction::ToClient, nb(&m)));
}

pub(super) fn run(conv: &Conv, piece: usize) -> (Vec<Event>, Sink) {
    let mut p = SmbParser::new(ctx(), SmbShared::default());
    let mut sink = Sink::new();
    for (i, (dir, bytes)) in conv.iter().enumerate() {
        let ts = Ts::from_secs(100 + i as u64);
        if piece == 0 {
            p.data(ts, *dir, bytes, &mut sink);
        } else {
            for c in bytes.chunks(piece) {
                p.data(ts, *dir, c, &mut sink);
            }
        }
    }
    p.close(Ts::from_secs(1000), &mut sink);
    (std::mem::take(&mut sink.events), sink)
}

pub(super) fn files(ev: &[Event]) -> Vec<&SmbFiles> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbFiles(f) = e {
                Some(f)
            } else {
                None
            }
        })
        .collect()
}

pub(super) fn of(ev: &[Event], a: FileAction) -> Vec<&SmbFiles> {
    files(ev)
        .into_iter()
        .filter(|f| f.action == Some(a))
        .collect()
}

/// Negotiate, NTLM session setup, IPC$ and ADMIN$ trees.
pub(super) fn login(c: &mut Conv) {
    req(c, negotiate_request(&[0x202, 0x311]));
    resp(c, negotiate_response(0x311, Some(2)));
    let mut neg = crate::smb::ntlmssp::NTLMSSP_SIGNATURE.to_vec();
    neg.extend_from_slice(&1u32.to_le_bytes());
    req(c, session_setup_request(1, 0, &neg));
    resp(
        c,
        session_setup_response(
            1,
            SID,
            crate::smb::status::STATUS_MORE_PROCESSING_REQUIRED,
            0,
        ),
    );
    let auth = crate::smb::ntlmssp::tests::build_auth("admin", "LAB", "KALI", true, 24);
    req(c, session_setup_request(2, SID, &auth));
    resp(c, session_setup_response(2, SID, 0, 0));
    req(c, tree_connect_request(3, SID, "\\\\192.0.2.20\\IPC$"));
    resp(c, tree_connect_response(3, SID, IPC, SHARE_TYPE_PIPE, 0));
    req(c, tree_connect_request(4, SID, "\\\\192.0.2.20\\ADMIN$"));
    resp(c, tree_connect_response(4, SID, ADMIN, SHARE_TYPE_DISK, 0));
}

pub(super) fn exe(n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
    v[0] = b'M';
    v[1] = b'Z';
    v
}

pub(super) fn sha_hex(b: &[u8]) -> String {
    crate::event::hex(&Sha256::digest(b))
}

/// The classic sequence: pipe open, upload in two writes, delete-on-close reopen.
fn psexec_like() -> (Conv, Vec<u8>) {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, IPC, "svcctl", 0, 0));
    resp(&mut c, create_response(5, SID, IPC, 0x51, 0, 0));
    req(
        &mut c,
        ioctl_request(6, SID, IPC, 0x51, b"\x05\x00\x0b\x03"),
    );
    resp(
        &mut c,
        ioctl_response(6, SID, IPC, 0x51, b"\x05\x00\x0c\x03", 0),
    );
    let body = exe(3000);
    req(&mut c, create_request(7, SID, ADMIN, "evil.exe", 0, 0));
    resp(&mut c, create_response(7, SID, ADMIN, 0x77, 0, 0));
    req(
        &mut c,
        write_request(8, SID, ADMIN, 0x77, 0, &body[..2000], 0),
    );
    resp(&mut c, simple_response(WRITE, 8, SID, ADMIN, 0, 0, 16));
    req(
        &mut c,
        write_request(9, SID, ADMIN, 0x77, 2000, &body[2000..], 0),
    );
    resp(&mut c, simple_response(WRITE, 9, SID, ADMIN, 0, 0, 16));
    req(&mut c, close_request(10, SID, ADMIN, 0x77, 0));
    resp(&mut c, simple_response(CLOSE, 10, SID, ADMIN, 0, 0, 60));
    req(
        &mut c,
        create_request(11, SID, ADMIN, "evil.exe", FILE_DELETE_ON_CLOSE, 0),
    );
    resp(&mut c, create_response(11, SID, ADMIN, 0x78, 0, 0));
    (c, body)
}

#[test]
fn psexec_like_conversation() {
    let (c, body) = psexec_like();
    let (ev, sink) = run(&c, 0);
    let auth = ev
        .iter()
        .find_map(|e| {
            if let Event::SmbAuth(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(
        (
            auth.user.as_deref(),
            auth.domain.as_deref(),
            auth.workstation.as_deref()
        ),
        (Some("admin"), Some("LAB"), Some("KALI"))
    );
    assert_eq!(auth.dialect, "SMB 3.1.1");
    let maps: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbMapping(m) = e {
                Some((m.share.as_str(), m.share_type))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(maps, vec![("IPC$", "PIPE"), ("ADMIN$", "DISK")]);
    assert_eq!(of(&ev, FileAction::PipeOpen)[0].name, "svcctl");
    let w = of(&ev, FileAction::FileWrite);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (
            w[0].name.as_str(),
            w[0].bytes_written,
            w[0].write_count,
            w[0].pe
        ),
        ("evil.exe", Some(3000), Some(2), Some(true))
    );
    assert_eq!(w[0].sha256.as_deref(), Some(sha_hex(&body).as_str()));
    assert_eq!(w[0].path, "\\\\192.0.2.20\\ADMIN$");
    let d = of(&ev, FileAction::FileDelete);
    assert_eq!((d.len(), d[0].name.as_str()), (1, "evil.exe"));
    assert!(d[0].delete_on_close);
    assert_eq!(sink.counters.get("anomaly.malformed"), 0);
}

/// The NetBIOS stream cut at every byte boundary gives the same events.
#[test]
fn split_at_every_byte_boundary() {
    let (c, _) = psexec_like();
    let feed = |cut: Option<(usize, usize)>| {
        let mut p = SmbParser::new(ctx(), SmbShared::default());
        let mut sink = Sink::new();
        for (i, (dir, bytes)) in c.iter().enumerate() {
            let ts = Ts::from_secs(100 + i as u64);
            match cut {
                Some((m, at)) if m == i => {
                    p.data(ts, *dir, &bytes[..at], &mut sink);
                    p.data(ts, *dir, &bytes[at..], &mut sink);
                }
                _ => p.data(ts, *dir, bytes, &mut sink),
            }
        }
        p.close(Ts::from_secs(1000), &mut sink);
        sink.events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
    };
    let whole = feed(None);
    assert!(whole.len() >= 8);
    for (i, (_, bytes)) in c.iter().enumerate() {
        for at in 1..bytes.len() {
            assert_eq!(feed(Some((i, at))), whole, "message {i} cut at {at}");
        }
    }
    let (ev1, _) = run(&c, 1);
    let ev1: Vec<_> = ev1
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(ev1, whole);
}

/// CREATE + WRITE + CLOSE in one compound, the WRITE and CLOSE related (FileId all-ones): the
/// name must follow the handle (Suricata loses it here).
#[test]
fn compound_related_file_id_inherits_create() {
    let mut c = Conv::new();
    login(&mut c);
    let body = exe(500);
    let m = compound(&[
        create_request(20, SID, ADMIN, "tool.exe", 0, 0),
        write_request(
            21,
            u64::MAX,
            u32::MAX,
            FILE_ID_RELATED,
            0,
            &body,
            FLAG_RELATED,
        ),
        close_request(22, u64::MAX, u32::MAX, FILE_ID_RELATED, FLAG_RELATED),
    ]);
    req(&mut c, m);
    let r = compound(&[
        create_response(20, SID, ADMIN, 0x99, 0, 0),
        simple_response(WRITE, 21, SID, ADMIN, 0, FLAG_RELATED, 16),
        simple_response(CLOSE, 22, SID, ADMIN, 0, FLAG_RELATED, 60),
    ]);
    resp(&mut c, r);
    let (ev, _) = run(&c, 0);
    let w = of(&ev, FileAction::FileWrite);
    assert_eq!(w.len(), 1, "{ev:?}");
    assert_eq!(w[0].name, "tool.exe");
    assert_eq!(w[0].share, "ADMIN$");
    assert_eq!(w[0].fuid.as_deref(), Some(file_id_hex(0x99).as_str()));
    assert_eq!(w[0].sha256.as_deref(), Some(sha_hex(&body).as_str()));
    // closed by the compound's CLOSE response, not left for the flow end
    let write_ts = w[0].conn.ts;
    assert!(write_ts < Ts::from_secs(1000));
}

#[test]
fn rename_and_disposition_delete() {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(30, SID, ADMIN, "a.tmp", 0, 0));
    resp(&mut c, create_response(30, SID, ADMIN, 0x31, 0, 0));
    req(
        &mut c,
        set_info_request(
            31,
            SID,
            ADMIN,
            0x31,
            FILE_RENAME_INFORMATION,
            &rename_info("b.exe"),
        ),
    );
    resp(&mut c, simple_response(SET_INFO, 31, SID, ADMIN, 0, 0, 2));
    req(
        &mut c,
        set_info_request(32, SID, ADMIN, 0x31, FILE_DISPOSITION_INFORMATION, &[1]),
    );
    resp(
        &mut c,
        simple_response(SET_INFO, 32, SID, ADMIN, 0xC000_0022, 0, 8),
    );
    let (ev, _) = run(&c, 0);
    let r = of(&ev, FileAction::FileRename);
    assert_eq!(
        (r[0].name.as_str(), r[0].prev_name.as_deref()),
        ("b.exe", Some("a.tmp"))
    );
    let d = of(&ev, FileAction::FileDelete);
    assert_eq!(
        (d[0].name.as_str(), d[0].status.as_str()),
        ("b.exe", "STATUS_ACCESS_DENIED")
    );
}

/// Picked up after NEGOTIATE, SESSION_SETUP, TREE_CONNECT and CREATE: writes still counted,
/// under "<unknown>" names; a handle whose first bytes are DCE-RPC becomes a pipe.
#[test]
fn midstream_pickup_unknown_tree_and_handle() {
    let mut c = Conv::new();
    let body = exe(100);
    req(&mut c, write_request(50, SID, 7, 0x500, 0, &body, 0));
    resp(&mut c, simple_response(WRITE, 50, SID, 7, 0, 0, 16));
    req(
        &mut c,
        write_request(51, SID, 8, 0x600, 0, b"\x05\x00\x0b\x03\x10\x00\x00\x00", 0),
    );
    let (ev, _) = run(&c, 0);
    let w = of(&ev, FileAction::FileWrite);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].name.as_str(), w[0].path.as_str(), w[0].share.as_str()),
        ("<unknown>", "<unknown>", "<unknown>")
    );
    assert_eq!(w[0].bytes_written, Some(100));
    assert!(!ev.iter().any(|e| matches!(e, Event::SmbMapping(_))));
}

/// STATUS_PENDING interim responses keep the request waiting; the final one completes it.
#[test]
fn async_interim_then_final_response() {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, IPC, "srvsvc", 0, 0));
    let mut interim = create_response(5, SID, IPC, 0, 0x103, FLAG_ASYNC);
    interim.truncate(64);
    interim.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    resp(&mut c, interim);
    resp(&mut c, create_response(5, SID, IPC, 0x42, 0, FLAG_ASYNC));
    let (ev, sink) = run(&c, 0);
    let p = of(&ev, FileAction::PipeOpen);
    assert_eq!(p.len(), 1);
    assert_eq!(
        (p[0].name.as_str(), p[0].status.as_str()),
        ("srvsvc", "STATUS_SUCCESS")
    );
    assert_eq!(sink.counters.get("smb2.interim_responses"), 1);
}

/// A write larger than the message buffer streams, cut anywhere, and hashes the same.
#[test]
fn large_write_streams_in_pieces() {
    let mut c = Conv::new();
    login(&mut c);
    let body = exe(MAX_SMB_MESSAGE_BUFFER + 12_345);
    req(&mut c, create_request(5, SID, ADMIN, "big.exe", 0, 0));
    resp(&mut c, create_response(5, SID, ADMIN, 0x55, 0, 0));
    req(&mut c, write_request(6, SID, ADMIN, 0x55, 0, &body, 0));
    resp(&mut c, simple_response(WRITE, 6, SID, ADMIN, 0, 0, 16));
    for piece in [0usize, 1000, 4096] {
        let (ev, sink) = run(&c, piece);
        assert_eq!(sink.counters.get("smb2.streamed_messages"), 1);
        let w = of(&ev, FileAction::FileWrite);
        assert_eq!(w[0].bytes_written, Some(body.len() as u64));
        assert_eq!(
            w[0].sha256.as_deref(),
            Some(sha_hex(&body).as_str()),
            "piece {piece}"
        );
        assert_eq!(w[0].name, "big.exe");
    }
}

/// A gap inside a streamed write keeps framing (the hash is marked incomplete); a gap in a
/// buffered message resynchronises on the next NetBIOS + SMB header.
#[test]
fn gaps_inside_stream_and_resync() {
    let mut p = SmbParser::new(ctx(), SmbShared::default());
    let mut sink = Sink::new();
    let mut c = Conv::new();
    login(&mut c);
    for (i, (d, b)) in c.iter().enumerate() {
        p.data(Ts::from_secs(i as u64), *d, b, &mut sink);
    }
    let body = exe(MAX_SMB_MESSAGE_BUFFER + 5000);
    let w = nb(&write_request(6, SID, ADMIN, 0x55, 0, &body, 0));
    p.data(Ts(1), Direction::ToServer, &w[..1000], &mut sink);
    p.gap(Ts(1), Direction::ToServer, 5000, &mut sink);
    p.data(Ts(1), Direction::ToServer, &w[6000..], &mut sink);
    // a truncated CREATE, a gap, then garbage and a good CREATE: resync finds it
    let cr = nb(&create_request(7, SID, ADMIN, "after.txt", 0, 0));
    p.data(Ts(2), Direction::ToServer, &cr[..30], &mut sink);
    p.gap(Ts(2), Direction::ToServer, 100, &mut sink);
    p.data(
        Ts(2),
        Direction::ToServer,
        b"\x01\x02garbage\x00",
        &mut sink,
    );
    p.data(Ts(2), Direction::ToServer, &cr, &mut sink);
    p.data(
        Ts(3),
        Direction::ToClient,
        &nb(&create_response(7, SID, ADMIN, 0x66, 0, 0)),
        &mut sink,
    );
    p.close(Ts(4), &mut sink);
    let ev = std::mem::take(&mut sink.events);
    let w = of(&ev, FileAction::FileWrite);
    let big = w
        .iter()
        .find(|f| f.fuid.as_deref() == Some(file_id_hex(0x55).as_str()))
        .unwrap();
    assert_eq!(big.bytes_written, Some(body.len() as u64));
    assert_eq!(big.hash_complete, Some(false));
    assert!(of(&ev, FileAction::FileOpen)
        .iter()
        .any(|f| f.name == "after.txt"));
    assert_eq!(sink.counters.get("anomaly.gap"), 1);
    assert!(sink.counters.get("smb.resync") >= 1);
}

#[test]
fn bad_compound_and_wrong_direction_are_anomalies() {
    let mut c = Conv::new();
    let mut m = compound(&[
        create_request(1, SID, 1, "x", 0, 0),
        close_request(2, SID, 1, 5, 0),
    ]);
    m[20..24].copy_from_slice(&61u32.to_le_bytes());
    req(&mut c, m);
    resp(&mut c, create_request(3, SID, 1, "y", 0, 0));
    let (ev, _) = run(&c, 0);
    let kinds: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::Anomaly(a) = e {
                Some(a.kind)
            } else {
                None
            }
        })
        .collect();
    assert!(
        kinds.contains(&AnomalyKind::Malformed) && kinds.contains(&AnomalyKind::WrongDirection),
        "{kinds:?}"
    );
}

/// Compound depth is a cap (counted, reported by name), not a malformed chain.
#[test]
fn compound_depth_cap() {
    let mut c = Conv::new();
    let parts: Vec<Vec<u8>> = (0..(super::state::MAX_COMPOUND_COMMANDS as u64 + 5))
        .map(|mid| close_request(mid, SID, 1, 5, 0))
        .collect();
    req(&mut c, compound(&parts));
    let (_, sink) = run(&c, 0);
    assert_eq!(sink.counters.get("MAX_COMPOUND_COMMANDS"), 1);
    assert_eq!(sink.counters.get("anomaly.malformed"), 0);
    assert_eq!(
        sink.counters.get("smb2.commands"),
        super::state::MAX_COMPOUND_COMMANDS as u64
    );
}

#[test]
fn pending_request_cap() {
    let mut c = Conv::new();
    for mid in 0..(super::MAX_PENDING_SMB_REQUESTS as u64 + 10) {
        req(&mut c, read_request(mid, SID, 1, 5, 0, 10));
    }
    let (_, sink) = run(&c, 0);
    assert_eq!(sink.counters.get("MAX_PENDING_SMB_REQUESTS"), 10);
}

#[test]
fn tree_connect_without_response_is_logged_at_close() {
    let mut c = Conv::new();
    req(&mut c, tree_connect_request(3, SID, "\\\\srv\\C$"));
    let (ev, _) = run(&c, 0);
    let m = ev
        .iter()
        .find_map(|e| {
            if let Event::SmbMapping(m) = e {
                Some(m)
            } else {
                None
            }
        })
        .unwrap();
    assert_eq!(
        (m.share.as_str(), m.status.as_str(), m.share_type),
        ("C$", "<no response>", "UNKNOWN")
    );
}

/// Transform messages without keys: visibility start/end and one SmbOpaque each.
#[test]
fn transform_without_keys_is_opaque() {
    let mut c = Conv::new();
    login(&mut c);
    for (i, dir) in [Direction::ToServer, Direction::ToClient]
        .into_iter()
        .enumerate()
    {
        let mut t = vec![0u8; 52 + 100];
        t[..4].copy_from_slice(TRANSFORM_MAGIC);
        t[20..31].copy_from_slice(if i == 0 {
            b"abcdefghijk"
        } else {
            b"\x01\x00\x00\x00\x00\x00\x00\x00\x9a\x33\x10"
        });
        t[36..40].copy_from_slice(&100u32.to_le_bytes());
        t[44..52].copy_from_slice(&SID.to_le_bytes());
        c.push((dir, nb(&t)));
    }
    let (ev, _) = run(&c, 0);
    let o: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbOpaque(o) = e {
                Some(o)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(o.len(), 2);
    assert_eq!(
        (o[0].nonce_form, o[1].nonce_form),
        ("ascii-letters", "counter")
    );
    assert_eq!((o[0].original_size, o[0].wire_size), (100, 152));
    let v: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbVisibility(v) = e {
                Some((v.state, v.messages, v.user.clone()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        v,
        vec![
            ("start", 1, Some("admin".into())),
            ("end", 2, Some("admin".into()))
        ]
    );
}

/// A chained compression transform with NONE + Pattern_V1 payloads is rebuilt and parsed.
#[test]
fn compressed_chained_message_is_parsed() {
    let mut c = Conv::new();
    login(&mut c);
    let plain = tree_connect_request(9, SID, "\\\\192.0.2.20\\C$");
    let mut m = COMPRESSION_MAGIC.to_vec();
    m.extend_from_slice(&(plain.len() as u32 + 8).to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes());
    m.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    m.extend_from_slice(&plain);
    req(&mut c, m);
    let (ev, _) = run(&c, 0);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::SmbMapping(m) if m.share == "C$")));
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::SmbVisibility(v) if v.kind == "compressed" && v.decrypted)));
}

/// Hostile bytes never panic: every prefix and a few mutations of a conversation.
#[test]
fn hostile_bytes_do_not_panic() {
    let (c, _) = psexec_like();
    let all: Vec<u8> = c
        .iter()
        .filter(|(d, _)| *d == Direction::ToServer)
        .flat_map(|(_, b)| b.clone())
        .collect();
    let mut seed = 0x1234_5678u32;
    for _ in 0..200 {
        let mut m = all.clone();
        for _ in 0..8 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (seed as usize) % m.len();
            m[i] = (seed >> 16) as u8;
        }
        let mut p = SmbParser::new(ctx(), SmbShared::default());
        let mut sink = Sink::new();
        p.data(Ts(1), Direction::ToServer, &m, &mut sink);
        p.data(Ts(1), Direction::ToClient, &m, &mut sink);
        p.close(Ts(2), &mut sink);
    }
}

/// Multichannel: a handle opened on one connection and written on another keeps its name when
/// both parsers share one SmbShared; with separate ones it is "<unknown>".
#[test]
fn multichannel_handle_keeps_its_name() {
    for shared_state in [true, false] {
        let shared = SmbShared::default();
        let mut a = SmbParser::new(ctx(), shared.clone());
        let mut second = ctx();
        second.conn.orig_p = 50001;
        let mut b = SmbParser::new(
            second,
            if shared_state {
                shared.clone()
            } else {
                SmbShared::default()
            },
        );
        let mut sink = Sink::new();
        let mut c = Conv::new();
        login(&mut c);
        req(&mut c, create_request(5, SID, ADMIN, "chan.exe", 0, 0));
        resp(&mut c, create_response(5, SID, ADMIN, 0x88, 0, 0));
        for (i, (d, bytes)) in c.iter().enumerate() {
            a.data(Ts(i as u64), *d, bytes, &mut sink);
        }
        let body = exe(64);
        b.data(
            Ts(50),
            Direction::ToServer,
            &nb(&write_request(1, SID, ADMIN, 0x88, 0, &body, 0)),
            &mut sink,
        );
        b.close(Ts(60), &mut sink);
        let ev = std::mem::take(&mut sink.events);
        let w = of(&ev, FileAction::FileWrite);
        assert_eq!(w.len(), 1);
        if shared_state {
            assert_eq!(
                (w[0].name.as_str(), w[0].share.as_str()),
                ("chan.exe", "ADMIN$")
            );
        } else {
            assert_eq!(w[0].name, "<unknown>");
        }
    }
}

/// Offsets and lengths at the ends of their ranges do not overflow.
#[test]
fn extreme_write_offsets() {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, ADMIN, "x.bin", 0, 0));
    resp(&mut c, create_response(5, SID, ADMIN, 0x55, 0, 0));
    let mut w = write_request(6, SID, ADMIN, 0x55, u64::MAX - 3, b"MZMZMZMZ", 0);
    // claim more data than the message holds
    w[64 + 4..64 + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    req(&mut c, w);
    req(&mut c, write_request(7, SID, ADMIN, 0x55, 0, b"MZ", 0));
    let (ev, _) = run(&c, 0);
    let f = of(&ev, FileAction::FileWrite);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].hash_complete, Some(false));
    assert_eq!(f[0].pe, Some(true));
    // only the bytes really present count, not the lying Length
    assert_eq!(f[0].bytes_written, Some(10));
}

/// Two transform messages in one NetBIOS message are both accounted.
#[test]
fn two_transforms_in_one_netbios_message() {
    let mut c = Conv::new();
    let mut both = Vec::new();
    for size in [30u32, 40] {
        let mut t = vec![0u8; 52 + size as usize];
        t[..4].copy_from_slice(TRANSFORM_MAGIC);
        t[20..31].copy_from_slice(b"qwertyuiopa");
        t[36..40].copy_from_slice(&size.to_le_bytes());
        t[44..52].copy_from_slice(&SID.to_le_bytes());
        both.extend(t);
    }
    req(&mut c, both);
    let (ev, _) = run(&c, 0);
    let sizes: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbOpaque(o) = e {
                Some((o.original_size, o.wire_size))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(sizes, vec![(30, 82), (40, 92)]);
}
