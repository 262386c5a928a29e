use super::*;
use crate::decode::checksum::Verdict;
use crate::decode::TcpFlags;

fn seg<'a>(seq: u32, ack: u32, f: &str, payload: &'a [u8], checksum: Verdict) -> TcpSegment<'a> {
    TcpSegment {
        src: "192.0.2.10".parse().unwrap(),
        dst: "192.0.2.20".parse().unwrap(),
        sport: 50000,
        dport: 445,
        seq,
        ack,
        flags: TcpFlags {
            syn: f.contains('S'),
            ack: f.contains('A'),
            fin: f.contains('F'),
            rst: f.contains('R'),
        },
        payload,
        missing: 0,
        checksum,
        window: 65535,
        wscale: None,
    }
}

const AUTO: ChecksumMode = ChecksumMode::Auto;

#[test]
fn data_without_ack_is_refused_but_a_syn_with_data_is_not() {
    let mut me = Sender::default();
    let peer = Sender::default();
    let s = seg(101, 0, "", b"data", Verdict::Good);
    assert_eq!(
        me.accept(&s, &peer, false, None, AUTO),
        Err(Refusal::DataWithoutAck)
    );
    let s = seg(100, 0, "S", b"tfo", Verdict::Good);
    assert_eq!(me.accept(&s, &peer, false, None, AUTO), Ok(()));
    // A bare ACK-less, data-less segment (a lone FIN is odd but carries nothing) passes.
    let s = seg(101, 0, "F", b"", Verdict::Good);
    assert_eq!(me.accept(&s, &peer, false, None, AUTO), Ok(()));
}

#[test]
fn acking_unsent_data_is_refused_exactly_when_the_peer_was_seen_whole() {
    let mut peer = Sender::default();
    peer.sent(&seg(900, 0, "SA", b"", Verdict::Good), 0); // SND.NXT 901
    peer.sent(&seg(901, 101, "A", b"0123456789", Verdict::Good), 0); // 911
    let mut me = Sender::default();
    let ok = seg(101, 911, "A", b"x", Verdict::Good);
    assert_eq!(me.accept(&ok, &peer, true, None, AUTO), Ok(()));
    let one_past = seg(101, 912, "A", b"x", Verdict::Good);
    assert_eq!(
        me.accept(&one_past, &peer, true, None, AUTO),
        Err(Refusal::AcksUnsentData)
    );
    // Picked up midway: the capture may have lost some of the peer's bytes.
    assert_eq!(me.accept(&one_past, &peer, false, None, AUTO), Ok(()));
    let far = seg(101, 911 + ACK_AHEAD_SLACK + 1, "A", b"x", Verdict::Good);
    assert_eq!(
        me.accept(&far, &peer, false, None, AUTO),
        Err(Refusal::AcksUnsentData)
    );
    // Wraparound: an ACK "behind" is not ahead.
    let behind = seg(101, 911u32.wrapping_sub(5000), "A", b"x", Verdict::Good);
    assert_eq!(me.accept(&behind, &peer, true, None, AUTO), Ok(()));
}

#[test]
fn data_at_or_after_the_fin_is_refused() {
    let mut me = Sender::default();
    let peer = Sender::default();
    let fin = Some(210); // FIN after byte 209
    assert_eq!(
        me.accept(
            &seg(210, 1, "A", b"late", Verdict::Good),
            &peer,
            false,
            fin,
            AUTO
        ),
        Err(Refusal::DataAfterFin)
    );
    assert_eq!(
        me.accept(
            &seg(205, 1, "A", b"fill", Verdict::Good),
            &peer,
            false,
            fin,
            AUTO
        ),
        Ok(())
    );
}

#[test]
fn bad_checksums_are_refused_once_the_sender_is_validated() {
    let mut me = Sender::default();
    let peer = Sender::default();
    let bad = seg(101, 1, "A", b"decoy", Verdict::Bad);
    assert_eq!(
        me.accept(&bad, &peer, false, None, AUTO),
        Ok(()),
        "offload assumed"
    );
    me.accept(
        &seg(100, 0, "S", b"", Verdict::Good),
        &peer,
        false,
        None,
        AUTO,
    )
    .unwrap();
    me.accept(
        &seg(101, 1, "A", b"", Verdict::Good),
        &peer,
        false,
        None,
        AUTO,
    )
    .unwrap();
    assert_eq!(
        me.accept(&bad, &peer, false, None, AUTO),
        Err(Refusal::BadChecksum)
    );
    assert_eq!(me.decision(), SenderChecksums::Validated);
}

fn with_window(mut s: TcpSegment<'_>, window: u16, wscale: Option<u8>) -> TcpSegment<'_> {
    s.window = window;
    s.wscale = wscale;
    s
}

/// Client and server after a handshake whose SYNs said `client_ws` / `server_ws`; the server then
/// acknowledges 101 with `window`.
fn after_handshake(client_ws: Option<u8>, server_ws: Option<u8>, window: u16) -> (Sender, Sender) {
    let (mut client, mut server) = (Sender::default(), Sender::default());
    client.sent(
        &with_window(seg(100, 0, "S", b"", Verdict::Good), 64240, client_ws),
        0,
    );
    server.sent(
        &with_window(seg(900, 101, "SA", b"", Verdict::Good), 0, server_ws),
        0,
    );
    let shift = window_shift(&server, &client);
    server.sent(
        &with_window(seg(901, 101, "A", b"", Verdict::Good), window, None),
        shift,
    );
    (client, server)
}

#[test]
fn data_starting_at_or_beyond_the_advertised_window_is_refused() {
    // Both SYNs carry the option: the server's windows are scaled by its own shift (7).
    let (mut client, server) = after_handshake(Some(8), Some(7), 10);
    let edge = 101 + (10 << 7);
    let last_in = seg(edge - 1, 901, "A", b"x", Verdict::Good);
    assert_eq!(client.accept(&last_in, &server, true, None, AUTO), Ok(()));
    let at_edge = seg(edge, 901, "A", b"x", Verdict::Good);
    assert_eq!(
        client.accept(&at_edge, &server, true, None, AUTO),
        Err(Refusal::BeyondWindow)
    );
    assert!(Refusal::BeyondWindow.may_be_capture_artifact());
    assert_eq!(Refusal::BeyondWindow.kind(), AnomalyKind::OutOfWindow);
    // One SYN without the option: no scaling at all (RFC 7323 §2.2).
    let (mut client, server) = after_handshake(None, Some(7), 10);
    let past = seg(101 + 10, 901, "A", b"x", Verdict::Good);
    assert_eq!(
        client.accept(&past, &server, true, None, AUTO),
        Err(Refusal::BeyondWindow)
    );
    // A zero window takes no data, even at RCV.NXT.
    let (mut client, server) = after_handshake(Some(7), Some(7), 0);
    let probe = seg(101, 901, "A", b"x", Verdict::Good);
    assert_eq!(
        client.accept(&probe, &server, true, None, AUTO),
        Err(Refusal::BeyondWindow)
    );
    // A retransmission before RCV.NXT, a SYN and a bare ACK are not judged by the window.
    let old = seg(50, 901, "A", b"x", Verdict::Good);
    assert_eq!(client.accept(&old, &server, true, None, AUTO), Ok(()));
    let bare = seg(5000, 901, "A", b"", Verdict::Good);
    assert_eq!(client.accept(&bare, &server, true, None, AUTO), Ok(()));
}

#[test]
fn the_window_edge_never_moves_back_and_a_pickup_assumes_the_largest_scale() {
    let (mut client, mut server) = after_handshake(Some(0), Some(0), 1000);
    // A later ACK with a smaller window (reordered by the capture point) keeps the edge.
    server.sent(
        &with_window(seg(901, 200, "A", b"", Verdict::Good), 100, None),
        0,
    );
    let in_old_edge = seg(1000, 901, "A", b"x", Verdict::Good);
    assert_eq!(
        client.accept(&in_old_edge, &server, true, None, AUTO),
        Ok(())
    );
    // No SYN seen: the window may be scaled by up to 14.
    let (a, b) = (Sender::default(), Sender::default());
    assert_eq!(window_shift(&a, &b), LARGEST_WINDOW_SHIFT);
    let mut server = Sender::default();
    server.sent(
        &with_window(seg(901, 101, "A", b"", Verdict::Good), 2, None),
        window_shift(&b, &a),
    );
    let mut client = Sender::default();
    let far = seg(101 + (2 << 14) - 1, 901, "A", b"x", Verdict::Good);
    assert_eq!(client.accept(&far, &server, false, None, AUTO), Ok(()));
    let beyond = seg(101 + (2 << 14), 901, "A", b"x", Verdict::Good);
    assert_eq!(
        client.accept(&beyond, &server, false, None, AUTO),
        Err(Refusal::BeyondWindow)
    );
}
