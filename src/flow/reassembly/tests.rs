use super::*;
use crate::flow::policy::TcpOverlap;
use crate::flow::{ConnId, Uid};

/// What came out of a direction: bytes with holes written as `gap(n)` markers.
#[derive(Default, Debug)]
struct Out {
    data: Vec<u8>,
    chunks: Vec<String>,
}

struct Harness {
    dir: StreamDir,
    budget: Budget,
    sink: Sink,
    out: Out,
    ctx: FlowCtx,
}

impl Harness {
    fn new() -> Harness {
        let conn = ConnId {
            orig_h: "192.0.2.1".parse().unwrap(),
            orig_p: 1,
            resp_h: "192.0.2.2".parse().unwrap(),
            resp_p: 445,
        };
        Harness {
            dir: StreamDir::new(),
            budget: Budget::default(),
            sink: Sink::new(),
            out: Out::default(),
            ctx: FlowCtx { conn, uid: Uid(1) },
        }
    }
    fn seg(&mut self, seq: u32, data: &[u8]) {
        let rep = Report {
            ctx: &self.ctx,
            ts: Ts(1),
        };
        let out = &mut self.out;
        self.dir.segment(
            seq,
            data,
            0,
            &mut self.budget,
            &rep,
            &mut self.sink,
            &mut |c, _| record(out, c),
        );
    }
    fn ack(&mut self, ack: u32) {
        let rep = Report {
            ctx: &self.ctx,
            ts: Ts(1),
        };
        let out = &mut self.out;
        self.dir
            .acked(ack, &mut self.budget, &rep, &mut self.sink, &mut |c, _| {
                record(out, c)
            });
    }
    fn flush(&mut self) {
        let rep = Report {
            ctx: &self.ctx,
            ts: Ts(1),
        };
        let out = &mut self.out;
        self.dir
            .flush(&mut self.budget, &rep, &mut self.sink, &mut |c, _| {
                record(out, c)
            });
    }
}

fn record(out: &mut Out, c: Chunk<'_>) {
    match c {
        Chunk::Data(d) => {
            out.data.extend_from_slice(d);
            out.chunks.push(String::from_utf8_lossy(d).into_owned());
        }
        Chunk::Gap(n) => {
            out.data.extend(std::iter::repeat_n(b'?', n as usize));
            out.chunks.push(format!("gap({n})"));
        }
        Chunk::Split { first, last } => {
            out.data.extend_from_slice(first);
            out.chunks.push(format!(
                "split({}|{})",
                String::from_utf8_lossy(first),
                String::from_utf8_lossy(last)
            ));
        }
    }
}

/// The stream a receiver following `overlap` builds from these segments (after a SYN at 0).
fn reassembled(overlap: TcpOverlap, segs: &[(u32, &[u8])]) -> (Vec<u8>, Vec<String>, Sink) {
    let mut h = Harness::new();
    h.dir = StreamDir::with_overlap(overlap);
    h.dir.syn(0);
    for (seq, data) in segs {
        h.seg(*seq, data);
    }
    h.flush();
    (h.out.data, h.out.chunks, h.sink)
}

/// A decoy buffered after a hole, then the real bytes from one byte earlier, then the hole's
/// byte: the receivers' rules (Suricata's stream-tcp-list.c, Linux `tcp_data_queue_ofo`, FreeBSD
/// `tcp_reass`) pick different copies.
#[test]
fn overlap_rules_pick_the_copy_the_receiver_keeps() {
    use crate::flow::policy::OverlapRule::*;
    let segs: [(u32, &[u8]); 3] = [(3, b"xxxx"), (2, b"REAL"), (1, b"A")];
    for (rule, want) in [
        (First, &b"ARxxxx"[..]),
        (Last, b"AREALx"),
        (Bsd, b"AREALx"),
        (Linux, b"AREALx"),
    ] {
        let (data, _, sink) = reassembled(TcpOverlap::Rule(rule), &segs);
        assert_eq!(
            String::from_utf8_lossy(&data),
            String::from_utf8_lossy(want),
            "{rule:?}"
        );
        assert_eq!(
            sink.counters.get("anomaly.overlap_different_data"),
            1,
            "{rule:?}"
        );
        assert_eq!(sink.counters.get("anomaly.overlap_ambiguous"), 0);
    }
    // The same start: BSD keeps the first copy, Linux the longer new one, "last" the new one.
    let segs: [(u32, &[u8]); 3] = [(2, b"xx"), (2, b"REAL"), (1, b"A")];
    for (rule, want) in [
        (First, &b"AxxAL"[..]),
        (Bsd, b"AxxAL"),
        (Linux, b"AREAL"),
        (Last, b"AREAL"),
    ] {
        let (data, _, _) = reassembled(TcpOverlap::Rule(rule), &segs);
        assert_eq!(
            String::from_utf8_lossy(&data),
            String::from_utf8_lossy(want),
            "{rule:?}"
        );
    }
    // An in-order segment starts before anything buffered: it wins except under "first".
    let segs: [(u32, &[u8]); 2] = [(3, b"xx"), (1, b"REAL")];
    let (data, _, _) = reassembled(TcpOverlap::Rule(Bsd), &segs);
    assert_eq!(data, b"REAL");
    let (data, _, _) = reassembled(TcpOverlap::Rule(First), &segs);
    assert_eq!(data, b"RExx");
}

/// An unknown receiver: where copies differ both are handed on, the first copy read on.
#[test]
fn ambiguous_overlap_hands_on_both_copies() {
    let segs: [(u32, &[u8]); 3] = [(3, b"xxxx"), (2, b"REAL"), (1, b"A")];
    let (data, chunks, sink) = reassembled(TcpOverlap::Ambiguous, &segs);
    assert_eq!(data, b"ARxxxx");
    assert_eq!(chunks, ["A", "R", "split(xxx|EAL)", "x"], "{data:?}");
    assert_eq!(sink.counters.get("anomaly.overlap_ambiguous"), 1);
    // Copies that agree are no ambiguity.
    let segs: [(u32, &[u8]); 3] = [(3, b"EAL"), (2, b"REAL"), (1, b"A")];
    let (data, chunks, sink) = reassembled(TcpOverlap::Ambiguous, &segs);
    assert_eq!(data, b"AREAL");
    assert!(chunks.iter().all(|c| !c.starts_with("split")), "{chunks:?}");
    assert_eq!(sink.counters.get("anomaly.overlap_ambiguous"), 0);
}

#[test]
fn in_order_after_syn() {
    let mut h = Harness::new();
    h.dir.syn(999);
    h.seg(1000, b"hello ");
    h.seg(1006, b"world");
    assert_eq!(h.out.data, b"hello world");
    assert_eq!(h.dir.stats.delivered, 11);
}

#[test]
fn out_of_order_is_buffered_then_delivered_in_order() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(7, b"CD");
    h.seg(5, b"AB");
    assert!(h.out.data.is_empty(), "hole at 1..5 not yet filled");
    assert_eq!(h.dir.buffered_segments(), 2);
    assert_eq!(h.budget.used, 4);
    h.seg(1, b"0123");
    assert_eq!(h.out.data, b"0123ABCD");
    assert_eq!(h.budget.used, 0);
    h.seg(1, b"0123"); // duplicate of delivered data
    h.flush();
    assert_eq!(h.out.data, b"0123ABCD");
    assert_eq!(h.dir.stats.gaps, 0);
    assert_eq!(h.dir.stats.retransmitted, 4);
}

#[test]
fn reordered_with_in_order_start_delivers_immediately() {
    let mut h = Harness::new();
    h.dir.syn(100);
    h.seg(106, b"def");
    h.seg(101, b"abc");
    assert_eq!(h.out.data, b"abc", "nothing for 104..106 yet");
    h.seg(104, b"XY");
    assert_eq!(h.out.data, b"abcXYdef");
    assert_eq!(h.budget.used, 0);
}

#[test]
fn retransmission_of_delivered_data_is_ignored() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"abcd");
    h.seg(1, b"abcd");
    h.seg(3, b"cdef"); // half old, half new
    assert_eq!(h.out.data, b"abcdef");
    assert_eq!(h.dir.stats.retransmitted, 6);
}

#[test]
fn overlap_same_data_is_quiet() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(5, b"efgh");
    h.seg(3, b"cdef");
    h.seg(1, b"ab");
    assert_eq!(h.out.data, b"abcdefgh");
    assert_eq!(h.sink.counters.get("anomaly.overlap_different_data"), 0);
}

#[test]
fn overlap_different_data_first_copy_wins_and_is_reported() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(5, b"efgh");
    h.seg(3, b"cdXY"); // "XY" conflicts with buffered "ef"
    h.seg(1, b"ab");
    assert_eq!(h.out.data, b"abcdefgh");
    assert_eq!(h.sink.counters.get("anomaly.overlap_different_data"), 1);
    assert_eq!(h.dir.stats.overlaps_different, 1);
}

#[test]
fn hole_becomes_gap_when_acked_past() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"abc");
    h.seg(10, b"jkl"); // 4..10 lost by the capture
    h.ack(8); // the peer has 4..8, which we never saw; 8..10 may still come
    assert_eq!(
        h.out.chunks,
        vec!["abc"],
        "one ACK may be reordered before its data"
    );
    h.ack(8);
    h.ack(8);
    assert_eq!(h.out.chunks, vec!["abc", "gap(4)"]);
    h.ack(13);
    h.ack(13);
    h.ack(13);
    assert_eq!(h.out.chunks, vec!["abc", "gap(4)", "gap(2)", "jkl"]);
    assert_eq!(h.sink.counters.get("anomaly.gap"), 2);
    assert_eq!(h.dir.stats.gap_bytes, 6);
}

#[test]
fn ack_seen_before_its_data_does_not_cause_a_gap() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"abc");
    h.seg(7, b"ghi");
    h.ack(10); // captured before the 4..7 segment it also acknowledges
    h.seg(4, b"def");
    assert_eq!(h.out.chunks, vec!["abc", "def", "ghi"]);
    assert_eq!(h.dir.stats.gaps, 0);
}

#[test]
fn ack_without_buffered_data_waits() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"abc");
    h.ack(50);
    assert_eq!(h.out.chunks, vec!["abc"]);
    h.seg(4, b"def");
    assert_eq!(h.out.data, b"abcdef");
}

#[test]
fn hole_becomes_gap_after_a_while_without_acks() {
    let mut h = Harness::new();
    h.dir.syn(0);
    let at = |h: &mut Harness, secs: u64, seq: u32, data: &[u8]| {
        let rep = Report {
            ctx: &h.ctx,
            ts: Ts::from_secs(secs),
        };
        let out = &mut h.out;
        h.dir.segment(
            seq,
            data,
            0,
            &mut h.budget,
            &rep,
            &mut h.sink,
            &mut |c, _| record(out, c),
        );
    };
    at(&mut h, 100, 1, b"ab");
    at(&mut h, 100, 5, b"ef"); // 3..5 missing, never acknowledged (one-sided capture)
    at(&mut h, 105, 7, b"gh");
    assert_eq!(h.out.chunks, vec!["ab"]);
    at(&mut h, 100 + HOLE_TIMEOUT_SECS + 1, 9, b"ij");
    assert_eq!(h.out.chunks, vec!["ab", "gap(2)", "ef", "gh", "ij"]);
}

#[test]
fn hole_becomes_gap_at_flush() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"ab");
    h.seg(6, b"fg");
    h.flush();
    assert_eq!(h.out.chunks, vec!["ab", "gap(3)", "fg"]);
}

#[test]
fn snaplen_cut_tail_is_a_gap_and_the_stream_goes_on() {
    let mut h = Harness::new();
    h.dir.syn(0);
    let rep = Report {
        ctx: &h.ctx,
        ts: Ts(1),
    };
    let out = &mut h.out;
    // 4 bytes captured of a 10-byte segment.
    h.dir.segment(
        1,
        b"abcd",
        6,
        &mut h.budget,
        &rep,
        &mut h.sink,
        &mut |c, _| record(out, c),
    );
    h.seg(11, b"next");
    assert_eq!(h.out.chunks, vec!["abcd", "gap(6)", "next"]);
}

#[test]
fn midstream_pickup_starts_at_first_segment() {
    let mut h = Harness::new();
    h.seg(5_000_000, b"mid");
    h.seg(5_000_003, b"stream");
    assert_eq!(h.out.data, b"midstream");
}

#[test]
fn sequence_wraparound() {
    let mut h = Harness::new();
    h.dir.syn(u32::MAX - 3); // first byte at MAX-2
    h.seg(u32::MAX - 2, b"abc"); // MAX-2, MAX-1, MAX
    h.seg(4, b"hi"); // after a wrap: 0..4 missing
    h.seg(0, b"0123");
    assert_eq!(h.out.data, b"abc0123hi");
    // Out of order across the wrap, too.
    let mut h = Harness::new();
    h.dir.syn(u32::MAX - 1);
    h.seg(1, b"yz");
    h.seg(u32::MAX, b"wx");
    assert_eq!(h.out.data, b"wxyz");
}

#[test]
fn one_byte_segments_in_reverse() {
    let mut h = Harness::new();
    h.dir.syn(0);
    let text = b"one byte at a time";
    for (i, b) in text.iter().enumerate().rev() {
        h.seg(1 + i as u32, std::slice::from_ref(b));
    }
    assert_eq!(h.out.data, text);
    assert_eq!(h.out.chunks.len(), text.len());
    assert_eq!(h.budget.used, 0);
}

#[test]
fn segment_cap_declares_gap() {
    let mut h = Harness::new();
    h.dir.syn(0);
    // First byte (offset 0, seq 1) never arrives; every other byte after it does, in 1-byte
    // segments with holes, so nothing joins up.
    for i in 0..(MAX_OOO_SEGMENTS_PER_DIRECTION as u32 + 1) {
        h.seg(2 + 2 * i, b"x");
    }
    assert_eq!(h.sink.counters.get("MAX_OOO_SEGMENTS_PER_DIRECTION"), 1);
    assert!(h.dir.buffered_segments() <= MAX_OOO_SEGMENTS_PER_DIRECTION);
    assert_eq!(h.out.chunks[0], "gap(1)");
    assert_eq!(h.out.chunks[1], "x");
}

#[test]
fn byte_cap_declares_gap() {
    let mut h = Harness::new();
    h.dir.syn(0);
    let big = vec![7u8; 60_000];
    let mut seq = 1001u32; // the first 1000 bytes are lost
    while h.sink.counters.get("MAX_REASSEMBLY_BYTES_PER_DIRECTION") == 0 {
        h.seg(seq, &big);
        seq += big.len() as u32;
        assert!(seq < 100_000_000);
    }
    assert_eq!(h.out.chunks[0], "gap(1000)");
    assert!(h.dir.buffered_bytes() <= MAX_REASSEMBLY_BYTES_PER_DIRECTION);
    assert_eq!(h.budget.used, h.dir.buffered_bytes());
}

#[test]
fn absurd_jump_is_dropped() {
    let mut h = Harness::new();
    h.dir.syn(0);
    h.seg(1, b"a");
    h.seg(1 + (MAX_SEQ_JUMP as u32) + 10, b"far");
    assert_eq!(h.sink.counters.get("MAX_SEQ_JUMP"), 1);
    assert_eq!(h.dir.buffered_segments(), 0);
    h.seg(2, b"b");
    assert_eq!(h.out.data, b"ab");
}
