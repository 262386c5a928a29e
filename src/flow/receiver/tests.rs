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
    peer.sent(&seg(900, 0, "SA", b"", Verdict::Good)); // SND.NXT 901
    peer.sent(&seg(901, 101, "A", b"0123456789", Verdict::Good)); // 911
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
