use super::*;
use crate::decode::TcpFlags;
use std::cell::RefCell;
use std::rc::Rc;

/// What a recording parser saw, per flow uid.
#[derive(Default, Debug)]
pub(crate) struct Seen {
    pub data: [Vec<u8>; 2],
    pub gaps: [u64; 2],
    pub closes: u32,
    pub first_dir: Option<Direction>,
    pub first_bytes: Vec<u8>,
    pub conn: Option<ConnId>,
}

pub(crate) type Log = Rc<RefCell<Vec<(Uid, Seen)>>>;

struct Recorder {
    log: Log,
    idx: usize,
}

impl StreamParser for Recorder {
    fn data(&mut self, _ts: Ts, dir: Direction, bytes: &[u8], _sink: &mut Sink) {
        self.log.borrow_mut()[self.idx].1.data[dir.index()].extend_from_slice(bytes);
    }
    fn gap(&mut self, _ts: Ts, dir: Direction, len: u64, _sink: &mut Sink) {
        self.log.borrow_mut()[self.idx].1.gaps[dir.index()] += len;
    }
    fn close(&mut self, _ts: Ts, _sink: &mut Sink) {
        self.log.borrow_mut()[self.idx].1.closes += 1;
    }
}

/// Parses every flow except those whose first bytes start with "IGNORE".
pub(crate) struct RecordingFactory {
    pub log: Log,
}

impl ParserFactory for RecordingFactory {
    fn parser_for(
        &mut self,
        ctx: &FlowCtx,
        first_dir: Direction,
        first: &[u8],
    ) -> Option<Box<dyn StreamParser>> {
        if first.starts_with(b"IGNORE") {
            return None;
        }
        let mut log = self.log.borrow_mut();
        let seen = Seen {
            first_dir: Some(first_dir),
            first_bytes: first.to_vec(),
            conn: Some(ctx.conn),
            ..Seen::default()
        };
        log.push((ctx.uid, seen));
        Some(Box::new(Recorder {
            log: self.log.clone(),
            idx: log.len() - 1,
        }))
    }
}

struct T {
    table: FlowTable,
    factory: RecordingFactory,
    sink: Sink,
    log: Log,
}

const C: &str = "192.0.2.10";
const S: &str = "192.0.2.20";

fn flags(s: &str) -> TcpFlags {
    TcpFlags {
        syn: s.contains('S'),
        ack: s.contains('A'),
        fin: s.contains('F'),
        rst: s.contains('R'),
    }
}

impl T {
    fn new() -> T {
        let log: Log = Rc::default();
        let mut table = FlowTable::new();
        table.keep_summaries = true;
        T {
            table,
            factory: RecordingFactory { log: log.clone() },
            sink: Sink::new(),
            log,
        }
    }
    /// The client (C:50000, ISN 100) has opened a connection to S:445 (ISN 900) at t=1: the
    /// client's next byte is 101, the server's 901.
    fn after_handshake() -> T {
        let mut t = T::new();
        t.pkt(1, (C, 50000), (S, 445), 100, 0, "S", b"");
        t.pkt(1, (S, 445), (C, 50000), 900, 101, "SA", b"");
        t
    }
    /// Client data on that connection at t=1, acknowledging the server's first byte.
    fn client_data(&mut self, seq: u32, payload: &[u8]) {
        self.pkt(1, (C, 50000), (S, 445), seq, 901, "A", payload);
    }
    #[allow(clippy::too_many_arguments)]
    fn pkt(
        &mut self,
        t: u64,
        src: (&str, u16),
        dst: (&str, u16),
        seq: u32,
        ack: u32,
        f: &str,
        payload: &[u8],
    ) {
        let seg = TcpSegment {
            src: src.0.parse().unwrap(),
            dst: dst.0.parse().unwrap(),
            sport: src.1,
            dport: dst.1,
            seq,
            ack,
            flags: flags(f),
            payload,
            missing: 0,
            checksum: crate::decode::checksum::Verdict::Unknown,
            window: 65535,
            wscale: None,
        };
        self.table
            .segment(Ts::from_secs(t), &seg, &mut self.factory, &mut self.sink);
    }
    fn finish(&mut self, t: u64) {
        self.table
            .finish(Ts::from_secs(t), &mut self.factory, &mut self.sink);
    }
}

#[test]
fn handshake_data_fin() {
    let mut t = T::after_handshake();
    t.client_data(101, b"request-bytes-long-enough");
    t.pkt(1, (S, 445), (C, 50000), 901, 126, "A", b"response");
    t.pkt(2, (C, 50000), (S, 445), 126, 909, "FA", b"");
    assert_eq!(t.log.borrow()[0].1.closes, 0);
    t.pkt(2, (S, 445), (C, 50000), 909, 127, "FA", b"");
    let log = t.log.borrow();
    assert_eq!(log.len(), 1);
    let seen = &log[0].1;
    assert_eq!(seen.data[0], b"request-bytes-long-enough");
    assert_eq!(seen.data[1], b"response");
    assert_eq!(seen.closes, 1);
    assert_eq!(seen.first_dir, Some(Direction::ToServer));
    assert_eq!(seen.first_bytes, b"request-bytes-long-enough");
    let conn = seen.conn.unwrap();
    assert_eq!((conn.orig_p, conn.resp_p), (50000, 445));
    let sum = &t.table.summaries[0];
    assert_eq!(
        (
            sum.end,
            sum.orig_bytes_delivered,
            sum.resp_bytes_delivered,
            sum.syn_seen
        ),
        ("fin", 25, 8, true)
    );
}

#[test]
fn syn_sender_is_client_even_from_a_server_port() {
    let mut t = T::new();
    t.pkt(1, (S, 445), (C, 50000), 1, 0, "S", b"");
    t.finish(2);
    let sum = &t.table.summaries[0];
    assert_eq!((sum.conn.orig_p, sum.conn.resp_p), (445, 50000));
    assert_eq!(sum.app, "no-payload");
}

#[test]
fn midstream_orientation_by_port_then_lower_port() {
    let mut t = T::new();
    // Server speaks first, no SYN: 445 makes it the server.
    t.pkt(
        1,
        (S, 445),
        (C, 50000),
        5000,
        1,
        "A",
        b"server-first-reply-bytes",
    );
    // No well-known port: the lower port is the server.
    t.pkt(
        1,
        ("10.0.0.1", 40000),
        ("10.0.0.2", 50000),
        1,
        1,
        "A",
        b"sixteen-plus-bytes!",
    );
    t.finish(2);
    let log = t.log.borrow();
    let c0 = log[0].1.conn.unwrap();
    assert_eq!((c0.orig_p, c0.resp_p), (50000, 445));
    assert_eq!(log[0].1.data[1], b"server-first-reply-bytes");
    assert_eq!(log[0].1.first_dir, Some(Direction::ToClient));
    let c1 = log[1].1.conn.unwrap();
    assert_eq!((c1.orig_p, c1.resp_p), (50000, 40000));
}

#[test]
fn rst_closes_and_port_reuse_makes_a_new_flow() {
    let mut t = T::new();
    t.pkt(1, (C, 50000), (S, 445), 100, 0, "S", b"");
    t.pkt(
        1,
        (C, 50000),
        (S, 445),
        101,
        0,
        "A",
        b"first connection data",
    );
    t.pkt(1, (S, 445), (C, 50000), 0, 0, "R", b"");
    assert_eq!(t.log.borrow()[0].1.closes, 1);
    t.pkt(1, (C, 50000), (S, 445), 101, 0, "A", b"straggler"); // absorbed, not a new flow
    t.pkt(3, (C, 50000), (S, 445), 7000, 0, "S", b"");
    t.pkt(
        3,
        (C, 50000),
        (S, 445),
        7001,
        0,
        "A",
        b"second connection data",
    );
    t.finish(4);
    let log = t.log.borrow();
    assert_eq!(log.len(), 2);
    assert_ne!(log[0].0, log[1].0, "a new uid");
    assert_eq!(log[0].1.data[0], b"first connection data");
    assert_eq!(log[1].1.data[0], b"second connection data");
    assert_eq!(log[1].1.closes, 1);
    assert_eq!(t.sink.counters.get("flows.port_reuse"), 1);
    assert_eq!(t.sink.counters.get("tcp.after_close_segments"), 1);
}

#[test]
fn idle_timeout_closes_with_buffered_data_flushed() {
    let mut t = T::new();
    t.pkt(1, (C, 50000), (S, 445), 100, 0, "S", b"");
    t.pkt(1, (C, 50000), (S, 445), 101, 0, "A", b"0123456789abcdefXYZ");
    t.pkt(1, (C, 50000), (S, 445), 130, 0, "A", b"after-a-hole");
    assert_eq!(t.table.buffered_bytes(), 12);
    // Another flow, much later, triggers the sweep.
    t.pkt(
        1 + IDLE_TIMEOUT_ESTABLISHED_SECS + 5,
        ("10.9.9.9", 1),
        ("10.9.9.8", 445),
        1,
        0,
        "S",
        b"",
    );
    let log = t.log.borrow();
    assert_eq!(log[0].1.closes, 1);
    assert_eq!(log[0].1.gaps[0], 10);
    assert_eq!(log[0].1.data[0], b"0123456789abcdefXYZafter-a-hole");
    assert_eq!(t.table.buffered_bytes(), 0);
    assert_eq!(t.table.summaries[0].end, "idle");
    assert_eq!(t.sink.counters.get("flows.idle_timeout"), 1);
}

#[test]
fn max_flows_evicts_oldest_idle_and_closes_its_parser() {
    let mut t = T::new();
    t.table = FlowTable::with_max_flows(4);
    t.table.keep_summaries = true;
    for i in 0..4u16 {
        t.pkt(
            10 + i as u64,
            (C, 40000 + i),
            (S, 445),
            1,
            0,
            "A",
            b"payload-of-sixteen+",
        );
    }
    // Touch the first flow again so it is no longer the longest idle.
    t.pkt(20, (C, 40000), (S, 445), 20, 0, "A", b"more");
    t.pkt(21, (C, 49999), (S, 445), 1, 0, "A", b"payload-of-sixteen+");
    assert_eq!(t.table.len(), 4);
    assert_eq!(t.sink.counters.get("MAX_FLOWS"), 1);
    let evicted = &t.table.summaries[0];
    assert_eq!((evicted.end, evicted.conn.orig_p), ("evicted", 40001));
    assert_eq!(t.log.borrow()[1].1.closes, 1);
}

#[test]
fn ignored_flows_skip_bytes_without_buffering() {
    let mut t = T::new();
    t.pkt(
        1,
        (C, 50000),
        (S, 8080),
        1,
        0,
        "A",
        b"IGNORE this flow please",
    );
    t.pkt(
        1,
        (C, 50000),
        (S, 8080),
        1000,
        0,
        "A",
        b"far ahead: would be buffered",
    );
    assert_eq!(t.table.buffered_bytes(), 0);
    t.finish(2);
    assert!(t.log.borrow().is_empty());
    let sum = &t.table.summaries[0];
    assert_eq!(sum.app, "ignored");
    assert_eq!(sum.orig_skipped_bytes, 28);
    assert_eq!(t.sink.counters.get("flows.ignored"), 1);
}

#[test]
fn tiny_first_segments_are_gathered_before_choosing_the_parser() {
    let mut t = T::new();
    let msg = b"IGNORE-me-not? no: this decides late";
    // 1-byte segments: the factory must see at least SNIFF_BYTES, so "IGNORE" is recognised.
    for (i, b) in msg.iter().enumerate() {
        t.pkt(
            1,
            (C, 50000),
            (S, 9999),
            1 + i as u32,
            0,
            "A",
            std::slice::from_ref(b),
        );
    }
    t.finish(2);
    assert!(
        t.log.borrow().is_empty(),
        "the factory saw the whole 'IGNORE' prefix"
    );
    let mut t = T::new();
    let msg = b"0123456789abcdefghijklmnop";
    for (i, b) in msg.iter().enumerate().rev() {
        t.pkt(
            1,
            (C, 50000),
            (S, 445),
            1 + i as u32,
            0,
            "A",
            std::slice::from_ref(b),
        );
    }
    // Reverse order with no SYN: the stream starts at the first seen segment (the last byte), so
    // only once the earlier bytes are known as a hole… they are retransmissions before the start.
    t.finish(2);
    let log = t.log.borrow();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].1.data[0], b"p");
}

#[test]
fn finish_closes_in_first_seen_order() {
    let mut t = T::new();
    for i in 0..20u16 {
        t.pkt(
            1 + i as u64,
            (C, 40000 + ((i as u32 * 7919) % 1000) as u16),
            (S, 445),
            1,
            0,
            "A",
            b"sixteen bytes or more",
        );
    }
    t.finish(100);
    let ports: Vec<u16> = t.table.summaries.iter().map(|s| s.conn.orig_p).collect();
    let expected: Vec<u16> = (0..20u16)
        .map(|i| 40000 + ((i as u32 * 7919) % 1000) as u16)
        .collect();
    assert_eq!(ports, expected);
}

#[test]
fn injected_rst_out_of_window_is_ignored() {
    let mut t = T::after_handshake();
    t.client_data(101, b"first part of the stream ");
    // A forged reset "from the client" with a sequence number far from the stream.
    t.pkt(1, (C, 50000), (S, 445), 101 + 50_000_000, 0, "R", b"");
    t.client_data(126, b"and the rest");
    assert_eq!(t.log.borrow()[0].1.closes, 0);
    assert_eq!(t.sink.counters.get("anomaly.rst_ignored"), 1);
    // A real one closes.
    t.pkt(1, (C, 50000), (S, 445), 138, 0, "R", b"");
    let log = t.log.borrow();
    assert_eq!(log[0].1.data[0], b"first part of the stream and the rest");
    assert_eq!(log[0].1.closes, 1);
}

#[test]
fn data_on_syn_starts_after_the_syn() {
    let mut t = T::new();
    t.pkt(1, (C, 50000), (S, 445), 100, 0, "S", b"fast-open-data-0123");
    t.pkt(1, (C, 50000), (S, 445), 120, 0, "A", b"+more");
    t.finish(2);
    assert_eq!(t.log.borrow()[0].1.data[0], b"fast-open-data-0123+more");
}

#[test]
fn flow_state_stays_small() {
    // MAX_FLOWS flows must fit the memory budget (64 MiB at the default cap): a guard against
    // per-flow state creeping up. A flow costs its slab slot (the flow and 12 bytes of list
    // links) and its index entry (key, slot id and a control byte), counted twice because a
    // hash table may hold twice as many buckets as entries. (The table before the slab was one
    // map of whole flows, which at MAX_FLOWS held 262,144 buckets of ~400 bytes: 100 MiB.)
    let sz = std::mem::size_of::<Flow>() + 12 + 2 * (std::mem::size_of::<(FlowKey, u32)>() + 1);
    assert!(sz <= 512, "{sz}");
    assert!(sz * MAX_FLOWS <= 64 << 20, "{}", sz * MAX_FLOWS);
}

#[test]
fn fin_before_a_reordered_last_segment_waits_for_it() {
    let mut t = T::after_handshake();
    t.client_data(101, b"0123456789abcdef");
    // The client's last data segment is captured after both FINs.
    t.pkt(1, (C, 50000), (S, 445), 121, 901, "FA", b"");
    t.pkt(1, (S, 445), (C, 50000), 901, 122, "FA", b"");
    assert_eq!(t.log.borrow()[0].1.closes, 0, "a hole is still open");
    t.client_data(117, b"WXYZ");
    let log = t.log.borrow();
    assert_eq!(log[0].1.data[0], b"0123456789abcdefWXYZ");
    assert_eq!(log[0].1.closes, 1);
    assert_eq!(t.table.summaries[0].end, "fin");
}

#[test]
fn held_back_segment_counters_reach_the_sink_by_finish() {
    let mut t = T::new();
    t.pkt(0, (C, 50001), (S, 445), 100, 0, "S", b"");
    t.pkt(0, (C, 50001), (S, 445), 101, 0, "A", b"abcd");
    t.pkt(0, (S, 445), (C, 50001), 900, 105, "A", b"xyz");
    t.finish(0);
    assert_eq!(t.sink.counters.get("tcp.segments"), 3);
    assert_eq!(t.sink.counters.get("tcp.payload_bytes"), 7);
    // Nothing is counted twice by a later sweep.
    t.pkt(5, (C, 50002), (S, 445), 1, 0, "A", b"12");
    t.finish(5);
    assert_eq!(t.sink.counters.get("tcp.segments"), 4);
    assert_eq!(t.sink.counters.get("tcp.payload_bytes"), 9);
}

#[allow(clippy::too_many_arguments)]
fn pkt_checked(
    t: &mut T,
    src: (&str, u16),
    dst: (&str, u16),
    seq: u32,
    ack: u32,
    f: &str,
    payload: &[u8],
    checksum: crate::decode::checksum::Verdict,
) {
    let seg = TcpSegment {
        src: src.0.parse().unwrap(),
        dst: dst.0.parse().unwrap(),
        sport: src.1,
        dport: dst.1,
        seq,
        ack,
        flags: flags(f),
        payload,
        missing: 0,
        checksum,
        window: 65535,
        wscale: None,
    };
    t.table
        .segment(Ts::from_secs(1), &seg, &mut t.factory, &mut t.sink);
}

#[test]
fn a_bad_checksum_the_receiver_acknowledges_was_an_offload_artifact() {
    use crate::decode::checksum::Verdict::{Bad, Good};
    let mut t = T::new();
    let (c, s) = ((C, 50000), (S, 445));
    pkt_checked(&mut t, c, s, 100, 0, "S", b"", Good);
    pkt_checked(&mut t, s, c, 900, 101, "SA", b"", Good);
    pkt_checked(&mut t, c, s, 101, 901, "A", b"", Good); // validated: two good
                                                         // A decoy with a bad checksum, then the real copy: the decoy is superseded.
    pkt_checked(&mut t, c, s, 101, 901, "A", b"DECOY-decoy-DECOY", Bad);
    pkt_checked(&mut t, c, s, 101, 901, "A", b"real-bytes-here!!", Good);
    pkt_checked(&mut t, s, c, 901, 118, "A", b"", Good);
    // A super-segment whose checksum the NIC filled in: bad in the capture, acknowledged.
    pkt_checked(&mut t, c, s, 118, 901, "A", b"+offloaded", Bad);
    assert_eq!(t.log.borrow()[0].1.data[0], b"real-bytes-here!!");
    pkt_checked(&mut t, s, c, 901, 128, "A", b"", Good);
    // A bad one never acknowledged is dropped at the end.
    pkt_checked(&mut t, c, s, 128, 901, "A", b"never", Bad);
    t.finish(2);
    assert_eq!(t.log.borrow()[0].1.data[0], b"real-bytes-here!!+offloaded");
    let c = &t.sink.counters;
    assert_eq!(c.get("anomaly.bad_checksum"), 3);
    assert_eq!(
        (
            c.get("tcp.held_segments_superseded"),
            c.get("tcp.held_segments_confirmed"),
            c.get("tcp.held_segments_unconfirmed")
        ),
        (1, 1, 1)
    );
}

#[test]
fn data_acknowledging_what_the_capture_lost_is_taken_once_the_peer_acknowledges_it() {
    use crate::decode::checksum::Verdict::Good;
    let mut t = T::new();
    let (c, s) = ((C, 50000), (S, 445));
    pkt_checked(&mut t, c, s, 100, 0, "S", b"", Good);
    pkt_checked(&mut t, s, c, 900, 101, "SA", b"", Good);
    pkt_checked(&mut t, c, s, 101, 901, "A", b"request-sixteen+", Good);
    // The server's reply 901..911 is missing from the capture; the client acknowledges it
    // with more data: held (it seems to acknowledge unsent data) until the server acknowledges.
    pkt_checked(&mut t, c, s, 117, 911, "A", b"second-request!!", Good);
    assert_eq!(t.sink.counters.get("anomaly.ack_invalid"), 1);
    pkt_checked(&mut t, s, c, 911, 133, "A", b"", Good);
    // Believed now, so the client's next segments pass.
    pkt_checked(&mut t, c, s, 133, 911, "A", b"third", Good);
    t.finish(2);
    assert_eq!(
        t.log.borrow()[0].1.data[0],
        b"request-sixteen+second-request!!third"
    );
    assert_eq!(t.sink.counters.get("anomaly.ack_invalid"), 1);
}

#[test]
fn last_flow_cache_never_outlives_its_flow() {
    // With room for one flow, every new tuple evicts the last one and takes its slot: a stale
    // last-flow entry would send the first flow's next segment to the second flow.
    let mut t = T::new();
    t.table = FlowTable::with_max_flows(1);
    t.table.keep_summaries = true;
    t.pkt(1, (C, 40000), (S, 445), 1, 0, "A", b"first-flow-bytes-0");
    t.pkt(2, (C, 40001), (S, 445), 1, 0, "A", b"second-flow-bytes-");
    t.pkt(3, (C, 40000), (S, 445), 19, 0, "A", b"first-again-bytes-");
    // The reverse direction of the flow just looked up finds it through the cache.
    t.pkt(3, (S, 445), (C, 40000), 500, 37, "A", b"reply");
    t.finish(4);
    let log = t.log.borrow();
    assert_eq!(log.len(), 3, "the first tuple came back as a new flow");
    assert_eq!(log[1].1.data[0], b"second-flow-bytes-");
    assert_eq!(log[2].1.data[0], b"first-again-bytes-");
    assert_eq!(log[2].1.data[1], b"reply");
    let ends: Vec<_> = t.table.summaries.iter().map(|s| s.end).collect();
    assert_eq!(ends, ["evicted", "evicted", "end-of-input"]);
}

#[test]
fn flow_keys_are_canonical_and_keep_address_families_apart() {
    let v4: IpAddr = "0.0.1.2".parse().unwrap();
    let v6: IpAddr = "::102".parse().unwrap();
    let other: IpAddr = "0.0.0.9".parse().unwrap();
    let other6: IpAddr = "::9".parse().unwrap();
    let k = FlowKey::between((v4, 445), (other, 50000));
    assert_eq!(k, FlowKey::between((other, 50000), (v4, 445)));
    assert_ne!(k, FlowKey::between((v6, 445), (other6, 50000)));
    assert_ne!(k, FlowKey::between((v4, 50000), (other, 445)));
}
