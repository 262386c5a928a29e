//! The framer streaming WRITE data (src/smb/mod.rs with [`super::stream_plan`] and
//! [`super::state`]): split anywhere, compounds larger than the message buffer, lying data
//! offsets and lengths, gaps inside the data. Each checks the facts extracted (name, share,
//! bytes, SHA-256, date) against the bytes the test built.

use super::records::tests::*;
use super::records::*;
use super::state_tests::*;
use crate::event::{Event, FileAction, SmbFiles};
use crate::flow::{Direction, StreamParser};
use crate::sink::Sink;
use crate::smb::{SmbParser, SmbShared, MAX_SMB_MESSAGE_BUFFER, STREAM_WRITE_ABOVE};
use crate::time::Ts;

const FID: FileId = 0x77;
const NB: usize = 4;

/// A WRITE of `data` on ADMIN$ whose DataOffset leaves `pad` junk bytes after the fixed part
/// (junk that must never be hashed).
fn padded_write(mid: u64, offset: u64, data: &[u8], pad: usize) -> Vec<u8> {
    let mut m = write_request(mid, SID, ADMIN, FID, offset, &[], 0);
    m[66..68].copy_from_slice(&((WRITE_REQUEST_FIXED + pad) as u16).to_le_bytes());
    m[68..72].copy_from_slice(&(data.len() as u32).to_le_bytes());
    m.extend(std::iter::repeat_n(0xAA, pad));
    m.extend_from_slice(data);
    m
}

/// Login and a CREATE of `name` on ADMIN$ answered with handle [`FID`].
fn opened(name: &str) -> Conv {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, ADMIN, name, 0, 0));
    resp(&mut c, create_response(5, SID, ADMIN, FID, 0, 0));
    c
}

fn close_fid(c: &mut Conv, mid: u64, fid: FileId) {
    req(c, close_request(mid, SID, ADMIN, fid, 0));
    resp(c, simple_response(CLOSE, mid, SID, ADMIN, 0, 0, 60));
}

/// A parser that has seen `setup` (one piece per message, at 100 s + its index).
fn parser_after(setup: &Conv) -> (SmbParser, Sink) {
    let mut p = SmbParser::new(ctx(), SmbShared::default());
    let mut sink = Sink::new();
    for (i, (dir, bytes)) in setup.iter().enumerate() {
        p.data(Ts::from_secs(100 + i as u64), *dir, bytes, &mut sink);
    }
    (p, sink)
}

fn finish(mut p: SmbParser, mut sink: Sink, tail: &Conv, ts: u64) -> (Vec<Event>, Sink) {
    for (i, (dir, bytes)) in tail.iter().enumerate() {
        p.data(Ts::from_secs(ts + i as u64), *dir, bytes, &mut sink);
    }
    p.close(Ts::from_secs(1000), &mut sink);
    (std::mem::take(&mut sink.events), sink)
}

fn the_write(ev: &[Event]) -> &SmbFiles {
    let w = of(ev, FileAction::FileWrite);
    assert_eq!(w.len(), 1, "{ev:#?}");
    w[0]
}

fn json(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

/// A streamed WRITE cut at every position of its NetBIOS header, SMB2 header, fixed part and
/// padding, at a few inside its data, and one byte per segment: always the same events, the
/// data hashed without the padding, dated when the message ends (as if it had been buffered).
#[test]
fn streamed_write_split_at_every_awkward_boundary() {
    let setup = opened("up.exe");
    let data = exe(20_000);
    let pad = 24;
    let msg = nb(&padded_write(8, 0, &data, pad));
    let mut tail = Conv::new();
    close_fid(&mut tail, 9, FID);
    let run_cut = |pieces: &[&[u8]]| {
        let (mut p, mut sink) = parser_after(&setup);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.iter().enumerate() {
            p.data(
                Ts::from_secs(if i == last { 501 } else { 500 }),
                Direction::ToServer,
                piece,
                &mut sink,
            );
        }
        finish(p, sink, &tail, 502)
    };
    let (whole, sink) = run_cut(&[&msg]);
    assert_eq!(
        sink.counters.get("smb2.streamed_messages"),
        1,
        "the write streamed"
    );
    assert_eq!(sink.counters.get("anomaly.malformed"), 0);
    let w = the_write(&whole);
    assert_eq!(
        (
            w.name.as_str(),
            w.share.as_str(),
            w.bytes_written,
            w.write_count
        ),
        ("up.exe", "ADMIN$", Some(20_000), Some(1))
    );
    assert_eq!(w.sha256.as_deref(), Some(sha_hex(&data).as_str()));
    assert_eq!((w.pe, w.hash_complete), (Some(true), Some(true)));
    assert_eq!(
        w.first_write_ts,
        Some(Ts::from_secs(501)),
        "dated at the message end"
    );
    let whole = json(&whole);
    let data_at = NB + WRITE_REQUEST_FIXED + pad;
    let cuts = (1..data_at + 9)
        .chain((data_at + 9..msg.len()).step_by(997))
        .chain([msg.len() - 1]);
    for at in cuts {
        let (ev, sink) = run_cut(&[&msg[..at], &msg[at..]]);
        assert_eq!(json(&ev), whole, "cut at {at}");
        assert_eq!(sink.counters.get("smb2.streamed_messages"), 1);
    }
    let bytes: Vec<&[u8]> = msg.chunks(1).collect();
    let (ev, _) = run_cut(&bytes);
    assert_eq!(json(&ev), whole, "one byte per segment");
}

/// A buffered write and a streamed one give the same record but for the bytes.
#[test]
fn streamed_and_buffered_writes_say_the_same() {
    for n in [STREAM_WRITE_ABOVE, STREAM_WRITE_ABOVE + 1, 100_000] {
        let data = exe(n);
        let mut c = opened("same.exe");
        req(&mut c, padded_write(8, 0, &data, 8));
        resp(&mut c, simple_response(WRITE, 8, SID, ADMIN, 0, 0, 16));
        close_fid(&mut c, 9, FID);
        let (ev, sink) = run(&c, 0);
        assert_eq!(
            sink.counters.get("smb2.streamed_messages"),
            u64::from(n > STREAM_WRITE_ABOVE),
            "{n}"
        );
        let w = the_write(&ev);
        let written_at = Ts::from_secs(100 + c.len() as u64 - 4);
        assert_eq!(
            (w.bytes_written, w.first_write_ts, w.status.as_str()),
            (Some(n as u64), Some(written_at), "STATUS_SUCCESS")
        );
        assert_eq!(w.sha256.as_deref(), Some(sha_hex(&data).as_str()));
    }
}

/// CREATE + a related WRITE (FileId, SessionId and TreeId all-ones) in one compound larger than
/// the message buffer: the CREATE is buffered and handled, the WRITE's data streams to the
/// handle the CREATE opened (Zeek and Suricata skip or lose it).
#[test]
fn compound_create_and_related_write_larger_than_the_buffer() {
    let data = exe(MAX_SMB_MESSAGE_BUFFER + 40_000);
    let mut c = Conv::new();
    login(&mut c);
    req(
        &mut c,
        compound(&[
            create_request(20, SID, ADMIN, "big.exe", 0, 0),
            write_request(
                21,
                u64::MAX,
                u32::MAX,
                FILE_ID_RELATED,
                0,
                &data,
                FLAG_RELATED,
            ),
        ]),
    );
    resp(
        &mut c,
        compound(&[
            create_response(20, SID, ADMIN, 0x99, 0, 0),
            simple_response(WRITE, 21, SID, ADMIN, 0, FLAG_RELATED, 16),
        ]),
    );
    close_fid(&mut c, 22, 0x99);
    for piece in [0, 1460, 7] {
        let (ev, sink) = run(&c, piece);
        assert_eq!(
            sink.counters.get("MAX_SMB_MESSAGE_BUFFER"),
            0,
            "piece {piece}"
        );
        assert_eq!(sink.counters.get("smb2.streamed_messages"), 1);
        let open = of(&ev, FileAction::FileOpen);
        assert_eq!(
            (open.len(), open[0].name.as_str(), open[0].share.as_str()),
            (1, "big.exe", "ADMIN$")
        );
        let w = the_write(&ev);
        assert_eq!(
            (w.name.as_str(), w.share.as_str(), w.bytes_written),
            ("big.exe", "ADMIN$", Some(data.len() as u64))
        );
        assert_eq!(w.fuid.as_deref(), Some(file_id_hex(0x99).as_str()));
        assert_eq!(
            w.sha256.as_deref(),
            Some(sha_hex(&data).as_str()),
            "piece {piece}"
        );
        assert_eq!(w.session_id, Some(SID));
        // closed by its CLOSE, not at the flow end
        assert!(w.conn.ts < Ts::from_secs(1000));
    }
}

/// Large compounds that cannot stream stay a reported cap: the last command is not a WRITE,
/// or the commands before it do not fit the buffer.
#[test]
fn large_compounds_that_cannot_stream_are_a_cap() {
    let big = exe(MAX_SMB_MESSAGE_BUFFER + 10);
    let create = create_request(20, SID, ADMIN, "big.exe", 0, 0);
    let related_write =
        |mid, d: &[u8]| write_request(mid, u64::MAX, u32::MAX, FILE_ID_RELATED, 0, d, FLAG_RELATED);
    for m in [
        compound(&[
            create.clone(),
            related_write(21, &big),
            close_request(22, u64::MAX, u32::MAX, FILE_ID_RELATED, FLAG_RELATED),
        ]),
        compound(&[
            create.clone(),
            related_write(21, &big),
            related_write(22, b"MZ"),
        ]),
    ] {
        let mut c = Conv::new();
        login(&mut c);
        req(&mut c, m);
        let (ev, sink) = run(&c, 1460);
        assert_eq!(sink.counters.get("MAX_SMB_MESSAGE_BUFFER"), 1);
        assert!(of(&ev, FileAction::FileWrite).is_empty());
    }
}

/// DataOffset pointing into the header: the "data" is what is at that offset, for a buffered
/// write, a streamed one and one larger than the buffer alike.
#[test]
fn lying_data_offset_into_the_header() {
    for n in [3000, 6000, MAX_SMB_MESSAGE_BUFFER + 1000] {
        let mut m = write_request(8, SID, ADMIN, FID, 0, &exe(n), 0);
        m[66..68].copy_from_slice(&64u16.to_le_bytes());
        let want = m[64..64 + n].to_vec();
        let mut c = opened("lie.exe");
        req(&mut c, m);
        close_fid(&mut c, 9, FID);
        for piece in [0, 100] {
            let (ev, sink) = run(&c, piece);
            assert_eq!(
                sink.counters.get("smb2.streamed_messages"),
                u64::from(n > STREAM_WRITE_ABOVE),
                "{n}"
            );
            let w = the_write(&ev);
            assert_eq!(
                (w.bytes_written, w.hash_complete),
                (Some(n as u64), Some(true)),
                "{n}"
            );
            assert_eq!(
                w.sha256.as_deref(),
                Some(sha_hex(&want).as_str()),
                "{n} piece {piece}"
            );
            assert_eq!(sink.counters.get("anomaly.malformed"), 0);
        }
    }
}

/// DataOffset past the message end, or a Length beyond it: what is there counts, the hash is
/// incomplete, the lie is an anomaly, and the next message is read.
#[test]
fn lying_data_offset_or_length_past_the_end() {
    for n in [3000, 6000, MAX_SMB_MESSAGE_BUFFER + 1000] {
        for lie in ["offset", "length"] {
            let data = exe(n);
            let mut m = write_request(8, SID, ADMIN, FID, 0, &data, 0);
            let counted = if lie == "offset" {
                m[66..68].copy_from_slice(&u16::MAX.to_le_bytes());
                // what lies past that offset, if the message reaches it
                (m.len().saturating_sub(usize::from(u16::MAX))).min(n) as u64
            } else {
                m[68..72].copy_from_slice(&(n as u32 * 3).to_le_bytes());
                n as u64
            };
            let mut c = opened("lie.exe");
            req(&mut c, m);
            req(&mut c, create_request(10, SID, ADMIN, "after.txt", 0, 0));
            resp(&mut c, create_response(10, SID, ADMIN, 0x80, 0, 0));
            close_fid(&mut c, 9, FID);
            let (ev, sink) = run(&c, 1000);
            let w = the_write(&ev);
            assert_eq!(
                (w.bytes_written, w.hash_complete, w.sha256.as_deref()),
                (Some(counted), Some(false), None),
                "{lie} {n}"
            );
            assert_eq!(sink.counters.get("anomaly.malformed"), 1, "{lie} {n}");
            assert!(of(&ev, FileAction::FileOpen)
                .iter()
                .any(|f| f.name == "after.txt"));
        }
    }
}

/// A DataOffset far past the fixed part of a write larger than the buffer: the padding is
/// passed over, not taken for data.
#[test]
fn large_write_with_a_distant_data_offset() {
    let data = exe(MAX_SMB_MESSAGE_BUFFER + 100);
    let mut c = opened("far.exe");
    req(&mut c, padded_write(8, 0, &data, 9000));
    close_fid(&mut c, 9, FID);
    for piece in [0, 1460] {
        let (ev, _) = run(&c, piece);
        let w = the_write(&ev);
        assert_eq!(
            w.sha256.as_deref(),
            Some(sha_hex(&data).as_str()),
            "piece {piece}"
        );
        assert_eq!(w.bytes_written, Some(data.len() as u64));
    }
}

/// TCP gaps while a write streams: inside the data the framing holds (the hash is incomplete,
/// the missing bytes are counted, the next message is read without resynchronising); inside
/// the padding nothing is lost; past the message end the framer resynchronises.
#[test]
fn gaps_in_a_streamed_write() {
    let setup = opened("gap.exe");
    let data = exe(100_000);
    let pad = 16;
    let msg = nb(&padded_write(8, 0, &data, pad));
    let data_at = NB + WRITE_REQUEST_FIXED + pad;
    let mut tail = Conv::new();
    req(&mut tail, create_request(10, SID, ADMIN, "after.txt", 0, 0));
    resp(&mut tail, create_response(10, SID, ADMIN, 0x80, 0, 0));
    close_fid(&mut tail, 9, FID);

    // (gap start, gap length, hash survives)
    for (at, len, survives) in [
        (data_at + 30_000, 5000, false),
        (NB + WRITE_REQUEST_FIXED + 4, 10, true),
        (data_at, 1, false),
    ] {
        let (mut p, mut sink) = parser_after(&setup);
        p.data(
            Ts::from_secs(500),
            Direction::ToServer,
            &msg[..at],
            &mut sink,
        );
        p.gap(
            Ts::from_secs(500),
            Direction::ToServer,
            len as u64,
            &mut sink,
        );
        p.data(
            Ts::from_secs(501),
            Direction::ToServer,
            &msg[at + len..],
            &mut sink,
        );
        let (ev, sink) = finish(p, sink, &tail, 502);
        let w = the_write(&ev);
        assert_eq!(w.bytes_written, Some(data.len() as u64), "gap at {at}");
        assert_eq!(w.hash_complete, Some(survives), "gap at {at}");
        assert_eq!(w.sha256.is_some(), survives);
        if survives {
            assert_eq!(w.sha256.as_deref(), Some(sha_hex(&data).as_str()));
        }
        assert_eq!(w.first_write_ts, Some(Ts::from_secs(501)));
        assert_eq!(
            (
                sink.counters.get("anomaly.gap"),
                sink.counters.get("smb.resync")
            ),
            (0, 0),
            "framing kept"
        );
        assert!(of(&ev, FileAction::FileOpen)
            .iter()
            .any(|f| f.name == "after.txt"));
    }

    // A gap running past the write's end: the write ends there, the framer resynchronises.
    let (mut p, mut sink) = parser_after(&setup);
    p.data(
        Ts::from_secs(500),
        Direction::ToServer,
        &msg[..data_at + 1000],
        &mut sink,
    );
    p.gap(
        Ts::from_secs(500),
        Direction::ToServer,
        (msg.len() - data_at - 1000 + 50) as u64,
        &mut sink,
    );
    p.data(
        Ts::from_secs(501),
        Direction::ToServer,
        b"junk\x00\x01",
        &mut sink,
    );
    let (ev, sink) = finish(p, sink, &tail, 502);
    let w = the_write(&ev);
    assert_eq!(
        (w.bytes_written, w.hash_complete),
        (Some(data.len() as u64), Some(false))
    );
    assert_eq!(w.first_write_ts, Some(Ts::from_secs(500)));
    assert_eq!(sink.counters.get("anomaly.gap"), 1);
    assert!(sink.counters.get("smb.resync") >= 1);
    assert!(of(&ev, FileAction::FileOpen)
        .iter()
        .any(|f| f.name == "after.txt"));
}

/// Writes to a pipe, or to a handle or tree never seen opened, stay whole (DCE-RPC framing,
/// pipe sniffing and held open records need the message), whatever their size.
#[test]
fn pipe_and_unknown_handle_writes_are_not_streamed() {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, IPC, "svcctl", 0, 0));
    resp(&mut c, create_response(5, SID, IPC, 0x51, 0, 0));
    let mut rpc = b"\x05\x00\x00\x03\x10\x00\x00\x00".to_vec();
    rpc.resize(9000, 0);
    rpc[8..10].copy_from_slice(&9000u16.to_le_bytes());
    req(&mut c, write_request(6, SID, IPC, 0x51, 0, &rpc, 0));
    let body = exe(9000);
    req(&mut c, write_request(7, SID, 9, 0x600, 0, &body, 0));
    let (ev, sink) = run(&c, 1460);
    assert_eq!(sink.counters.get("smb2.streamed_messages"), 0);
    assert_eq!(sink.counters.get("smb.pipe_bytes_to_server"), 9000);
    let w = the_write(&ev);
    assert_eq!(
        (w.name.as_str(), w.bytes_written),
        ("<unknown>", Some(9000))
    );
    assert_eq!(w.sha256.as_deref(), Some(sha_hex(&body).as_str()));
}

/// A write still streaming when the flow ends: what arrived is counted, the hash is incomplete,
/// and it is dated (at the flow end).
#[test]
fn flow_ends_inside_a_streamed_write() {
    let setup = opened("cut.exe");
    let data = exe(50_000);
    let msg = nb(&padded_write(8, 0, &data, 0));
    let (mut p, mut sink) = parser_after(&setup);
    p.data(
        Ts::from_secs(500),
        Direction::ToServer,
        &msg[..20_000],
        &mut sink,
    );
    let (ev, sink) = finish(p, sink, &Conv::new(), 600);
    let w = the_write(&ev);
    assert_eq!(
        w.bytes_written,
        Some(20_000 - (NB + WRITE_REQUEST_FIXED) as u64)
    );
    assert_eq!(
        (w.hash_complete, w.first_write_ts),
        (Some(false), Some(Ts::from_secs(1000)))
    );
    assert_eq!(sink.counters.get("anomaly.malformed"), 0);
}

/// Hostile bytes on the streaming paths never panic: a conversation with a streamed write, a
/// compound larger than the buffer and a large lone write, mutated (in headers and lengths
/// mostly) and fed in pseudo-random pieces with gaps, in both directions.
#[test]
fn hostile_bytes_on_streaming_paths_do_not_panic() {
    let mut c = opened("h.exe");
    req(&mut c, padded_write(8, 0, &exe(9000), 40));
    let big = exe(MAX_SMB_MESSAGE_BUFFER + 3000);
    req(
        &mut c,
        compound(&[
            create_request(20, SID, ADMIN, "b.exe", 0, 0),
            write_request(
                21,
                u64::MAX,
                u32::MAX,
                FILE_ID_RELATED,
                0,
                &big,
                FLAG_RELATED,
            ),
        ]),
    );
    req(&mut c, write_request(22, SID, ADMIN, FID, 0, &big, 0));
    let all: Vec<u8> = c
        .iter()
        .filter(|(d, _)| *d == Direction::ToServer)
        .flat_map(|(_, b)| b.clone())
        .collect();
    // where the interesting bytes are: every NetBIOS header and the 200 bytes after it
    let mut hot = Vec::new();
    let mut at = 0;
    while at + 4 <= all.len() {
        hot.push(at);
        at += 4
            + ((usize::from(all[at + 1]) << 16)
                | (usize::from(all[at + 2]) << 8)
                | usize::from(all[at + 3]));
    }
    let mut seed = 0x9e37_79b9u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (seed >> 8) as usize
    };
    for round in 0..60 {
        let mut m = all.clone();
        for _ in 0..6 {
            let i = (hot[next() % hot.len()] + next() % 200).min(m.len() - 1);
            m[i] = next() as u8;
        }
        let mut p = SmbParser::new(ctx(), SmbShared::default());
        let mut sink = Sink::new();
        let mut i = 0;
        for dir in [Direction::ToServer, Direction::ToClient] {
            while i < m.len() {
                let n = 1 + next() % if round % 2 == 0 { 3000 } else { 70_000 };
                let end = (i + n).min(m.len());
                if next() % 17 == 0 {
                    p.gap(Ts(1), dir, n as u64, &mut sink);
                } else {
                    p.data(Ts(1), dir, &m[i..end], &mut sink);
                }
                i = end;
            }
            i = 0;
        }
        p.close(Ts(2), &mut sink);
    }
}

/// A large write on a second channel to a handle opened on the first: not streamed (the handle
/// is adopted first, as a buffered write does), named and hashed.
#[test]
fn multichannel_write_above_the_stream_size_keeps_its_name() {
    let shared = SmbShared::default();
    let mut a = SmbParser::new(ctx(), shared.clone());
    let mut second = ctx();
    second.conn.orig_p = 50001;
    let mut b = SmbParser::new(second, shared);
    let mut sink = Sink::new();
    for (i, (d, bytes)) in opened("chan.exe").iter().enumerate() {
        a.data(Ts(i as u64), *d, bytes, &mut sink);
    }
    let body = exe(50_000);
    let m = nb(&write_request(1, SID, ADMIN, FID, 0, &body, 0));
    for piece in m.chunks(1460) {
        b.data(Ts(50), Direction::ToServer, piece, &mut sink);
    }
    b.close(Ts(60), &mut sink);
    let ev = std::mem::take(&mut sink.events);
    let w = the_write(&ev);
    assert_eq!(
        (w.name.as_str(), w.share.as_str(), w.bytes_written),
        ("chan.exe", "ADMIN$", Some(50_000))
    );
    assert_eq!(w.sha256.as_deref(), Some(sha_hex(&body).as_str()));
}
