//! SMB3 multichannel through the parser: two connections of one session sharing names through
//! the worker's registry ([`crate::smb::registry`]), and the registry emptying as they end.

use super::records::tests::*;
use super::records::*;
use super::state_tests::*;
use crate::event::{Event, FileAction};
use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::smb::{SmbParser, SmbShared};
use crate::time::Ts;

const FID: FileId = 0x77;

fn channel(port: u16) -> FlowCtx {
    let mut c = ctx();
    c.conn.orig_p = port;
    c
}

fn feed(p: &mut SmbParser, conv: &Conv, ts: u64, sink: &mut Sink) {
    for (i, (d, bytes)) in conv.iter().enumerate() {
        p.data(Ts::from_secs(ts + i as u64), *d, bytes, sink);
    }
}

/// Channel A: login, trees, CREATE of `name` on ADMIN$ answered with [`FID`].
fn channel_a(name: &str) -> Conv {
    let mut c = Conv::new();
    login(&mut c);
    req(&mut c, create_request(5, SID, ADMIN, name, 0, 0));
    resp(&mut c, create_response(5, SID, ADMIN, FID, 0, 0));
    c
}

/// Channel B binds to the session (SESSION_SETUP with its SessionId).
fn channel_b_binds() -> Conv {
    let mut c = Conv::new();
    req(&mut c, session_setup_request(1, SID, b"bind"));
    resp(&mut c, session_setup_response(1, SID, 0, 0));
    c
}

fn write_on_b(body: &[u8]) -> Conv {
    let mut c = Conv::new();
    req(&mut c, write_request(9, SID, ADMIN, FID, 0, body, 0));
    resp(&mut c, simple_response(WRITE, 9, SID, ADMIN, 0, 0, 16));
    c
}

fn counts(shared: &SmbShared) -> (usize, usize) {
    let g = shared.names.lock().unwrap();
    (g.sessions(), g.names())
}

/// Channel A of a session opened `file`; channel B bound to the same session and connected the
/// same trees.
fn two_channels(file: &str) -> (SmbShared, Sink, SmbParser, SmbParser) {
    let shared = SmbShared::default();
    let mut sink = Sink::new();
    let mut a = SmbParser::new(channel(57092), shared.clone());
    let mut b = SmbParser::new(channel(57093), shared.clone());
    feed(&mut a, &channel_a(file), 100, &mut sink);
    feed(&mut b, &channel_b_binds(), 200, &mut sink);
    (shared, sink, a, b)
}

fn the_write(ev: &[Event]) -> (String, String) {
    let w = of(ev, FileAction::FileWrite);
    assert_eq!(w.len(), 1, "{ev:#?}");
    (w[0].name.clone(), w[0].share.clone())
}

/// A handle opened on A, A gone (without a CLOSE), then written on B: B still names it, and
/// B's end empties the registry.
#[test]
fn a_handle_outlives_its_channel_while_the_session_lives_on_another() {
    let (shared, mut sink, mut a, mut b) = two_channels("chan.exe");
    assert_eq!(
        counts(&shared),
        (1, 3),
        "one session: two trees and a handle"
    );
    a.close(Ts::from_secs(300), &mut sink);
    drop(a);
    assert_eq!(counts(&shared), (1, 3), "B keeps the session");
    sink.events.clear();
    feed(&mut b, &write_on_b(&exe(100)), 400, &mut sink);
    b.close(Ts::from_secs(500), &mut sink);
    assert_eq!(
        the_write(&sink.events),
        ("chan.exe".into(), "ADMIN$".into())
    );
    assert_eq!(
        counts(&shared),
        (0, 0),
        "the last channel took the session with it"
    );
}

/// Without B the session ends with A, and a later connection reusing the SessionId learns
/// nothing stale.
#[test]
fn the_registry_empties_when_the_only_connection_closes() {
    let shared = SmbShared::default();
    let mut sink = Sink::new();
    let mut a = SmbParser::new(channel(57092), shared.clone());
    feed(&mut a, &channel_a("gone.exe"), 100, &mut sink);
    assert_eq!(counts(&shared), (1, 3));
    a.close(Ts::from_secs(300), &mut sink);
    assert_eq!(counts(&shared), (0, 0));
    let mut b = SmbParser::new(channel(57093), shared.clone());
    sink.events.clear();
    feed(&mut b, &channel_b_binds(), 400, &mut sink);
    feed(&mut b, &write_on_b(&exe(100)), 500, &mut sink);
    b.close(Ts::from_secs(600), &mut sink);
    assert_eq!(the_write(&sink.events).0, "<unknown>");
}

/// LOGOFF on A withdraws the session's names: B's later write is not given the old name.
#[test]
fn logoff_withdraws_names_from_the_other_channels() {
    let (shared, mut sink, mut a, mut b) = two_channels("chan.exe");
    let mut off = Conv::new();
    let mut m = header(LOGOFF, 0, 0, 6, 0, SID);
    m.extend_from_slice(&[4, 0, 0, 0]);
    req(&mut off, m);
    resp(&mut off, simple_response(LOGOFF, 6, SID, 0, 0, 0, 4));
    feed(&mut a, &off, 300, &mut sink);
    assert_eq!(counts(&shared), (1, 0));
    sink.events.clear();
    feed(&mut b, &write_on_b(&exe(100)), 400, &mut sink);
    b.close(Ts::from_secs(500), &mut sink);
    assert_eq!(the_write(&sink.events).0, "<unknown>");
    drop(a);
    assert_eq!(counts(&shared), (0, 0));
}

/// TREE_DISCONNECT of ADMIN$ on A withdraws the tree and the handle opened on it; IPC$ stays.
#[test]
fn tree_disconnect_withdraws_the_tree_from_the_other_channels() {
    let shared = SmbShared::default();
    let mut sink = Sink::new();
    let mut a = SmbParser::new(channel(57092), shared.clone());
    feed(&mut a, &channel_a("chan.exe"), 100, &mut sink);
    let mut td = Conv::new();
    let mut m = header(TREE_DISCONNECT, 0, 0, 6, ADMIN, SID);
    m.extend_from_slice(&[4, 0, 0, 0]);
    req(&mut td, m);
    resp(
        &mut td,
        simple_response(TREE_DISCONNECT, 6, SID, ADMIN, 0, 0, 4),
    );
    feed(&mut a, &td, 300, &mut sink);
    assert_eq!(counts(&shared), (1, 1), "IPC$ only");
    let mut b = SmbParser::new(channel(57093), shared.clone());
    feed(&mut b, &channel_b_binds(), 400, &mut sink);
    sink.events.clear();
    feed(&mut b, &write_on_b(&exe(100)), 500, &mut sink);
    b.close(Ts::from_secs(600), &mut sink);
    assert_eq!(
        the_write(&sink.events),
        ("<unknown>".into(), "<unknown>".into())
    );
}

/// Thousands of connections, each its own session with a handle never closed, opened and
/// closed in turn (and one in ten dropped without a close): the registry ends empty.
#[test]
fn thousands_of_sessions_through_the_parser_leave_the_registry_empty() {
    let shared = SmbShared::default();
    let mut sink = Sink::new();
    for i in 0..2_000u16 {
        let sid = 0x1_0000 + u64::from(i);
        let mut c = Conv::new();
        req(&mut c, session_setup_request(1, sid, b"x"));
        resp(&mut c, session_setup_response(1, sid, 0, 0));
        req(&mut c, tree_connect_request(2, sid, "\\\\192.0.2.20\\C$"));
        resp(&mut c, tree_connect_response(2, sid, 7, SHARE_TYPE_DISK, 0));
        req(&mut c, create_request(3, sid, 7, "a.txt", 0, 0));
        resp(&mut c, create_response(3, sid, 7, u128::from(i), 0, 0));
        let mut p = SmbParser::new(channel(10_000 + i), shared.clone());
        feed(&mut p, &c, u64::from(i) * 10, &mut sink);
        if i % 10 != 0 {
            p.close(Ts::from_secs(u64::from(i) * 10 + 9), &mut sink);
        }
        drop(p);
        sink.events.clear();
    }
    assert_eq!(counts(&shared), (0, 0));
    assert_eq!(
        sink.counters.get("MAX_SHARED_HANDLES") + sink.counters.get("MAX_SHARED_SESSIONS"),
        0
    );
}

/// A related compound command's all-ones SessionId (its predecessor's session) joins nothing.
#[test]
fn a_related_compound_joins_no_extra_session() {
    let shared = SmbShared::default();
    let mut sink = Sink::new();
    let mut a = SmbParser::new(channel(57092), shared.clone());
    feed(&mut a, &channel_a("chan.exe"), 100, &mut sink);
    let first = create_request(7, SID, ADMIN, "b.txt", 0, 0);
    let second = close_request(8, u64::MAX - 1, u32::MAX, FILE_ID_RELATED, FLAG_RELATED);
    let msg = nb(&compound(&[first, second]));
    a.data(Ts::from_secs(200), Direction::ToServer, &msg, &mut sink);
    assert_eq!(counts(&shared).0, 1);
}
