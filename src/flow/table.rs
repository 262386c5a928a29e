//! The flow table: bidirectional TCP connections keyed by their 5-tuple, each with two reassembled
//! directions and an application parser chosen on its first payload bytes.
//!
//! Time is packet time. Flows end on FIN from both sides or RST (kept briefly afterwards so
//! retransmissions do not start a new flow), on idle timeouts, when evicted by [`MAX_FLOWS`], or
//! at the end of input; every way out flushes the reassembler and closes the parser, so nothing
//! buffered is lost silently.
//!
//! Every segment first passes the receiver's checks ([`super::receiver`]): what the endpoint
//! would drop never reaches reassembly. Flows sit on one recency list per class ([`Class`]), so
//! expiring and evicting cost O(1) per flow, and a flood of flows that never carried data is
//! evicted before any connection that did.

use super::lru::Lists;
use super::policy::{HostPolicies, TargetPolicy, TcpOverlap};
use super::reassembly::{Budget, Chunk, DirStats, Report, StreamDir};
use super::receiver::Sender;
use super::shadow::Shadow;
use super::suspect::{Fate, Suspect, MAX_SUSPECT_BYTES_TOTAL, MAX_SUSPECT_SEGMENTS_PER_FLOW};
use super::{ConnId, Direction, FlowCtx, ParserFactory, StreamParser, Uid};
use crate::decode::checksum::{ChecksumMode, SenderChecksums};
use crate::decode::TcpSegment;
use crate::event::{AnomalyKind, ConnFields};
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::maps::KeyedMap;
use serde::Serialize;
use std::net::IpAddr;
use std::sync::Arc;

/// Connections tracked at once, over all workers (each worker's table holds its share, see
/// [`flows_per_worker`]); beyond it a flow is closed early: the longest idle of those already
/// closed, else of those that never carried data, else of the rest. About 500 bytes each with
/// their index (plus buffered data), so the tables stay under 64 MiB whatever the number of
/// workers.
pub const MAX_FLOWS: usize = 131_072;

/// One worker's share of [`MAX_FLOWS`] when `workers` engines split the host pairs.
pub fn flows_per_worker(workers: usize) -> usize {
    (MAX_FLOWS / workers.max(1)).max(64)
}
/// A flow that carried data and then went quiet this long (packet time) is closed.
pub const IDLE_TIMEOUT_ESTABLISHED_SECS: u64 = 3600;
/// A flow that never carried payload (SYN scans, lone ACKs) is closed after this long.
pub const IDLE_TIMEOUT_UNESTABLISHED_SECS: u64 = 120;
/// After FIN from both sides or RST, the tuple is kept this long to absorb retransmissions.
pub const IDLE_TIMEOUT_CLOSED_SECS: u64 = 30;
/// Bytes held while the parser cannot be chosen yet (the first segments are tiny).
pub const SNIFF_BYTES: usize = 16;

/// Ports whose side is the server when no SYN was seen.
const SERVER_PORTS: [u16; 3] = [445, 139, 135];

/// The 5-tuple in a canonical order, so both directions find the same flow. Addresses are held
/// as numbers rather than `IpAddr`s: ordering and hashing the enum (a tag and a byte array) cost
/// about 50 instructions per segment, as much as the rest of the lookup (docs/PERF.md, "Session
/// 6: flow layer").
///
/// Packed to 4-byte alignment: an index entry (key and slot) stays 44 bytes, as with `IpAddr`s
/// (`u128` addresses would align it to 16 and grow it to 64; see `flow_state_stays_small`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
struct FlowKey {
    /// The lower endpoint's address, then the higher's, each as a number (an IPv4 address in the
    /// low 32 bits) in two 64-bit halves, high first.
    addrs: [u64; 4],
    /// The lower endpoint's port in the high half, the higher's in the low half.
    ports: u32,
    /// So that an IPv4 address never meets the IPv6 address of the same number.
    v6: bool,
}

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let (addrs, ports, v6) = (self.addrs, self.ports, self.v6);
        for a in addrs {
            h.write_u64(a);
        }
        h.write_u64(u64::from(ports) | u64::from(v6) << 32);
    }
}

impl FlowKey {
    fn of(seg: &TcpSegment<'_>) -> FlowKey {
        FlowKey::between((seg.src, seg.sport), (seg.dst, seg.dport))
    }

    /// A flow's key from its endpoints (not stored in the flow: 40 bytes of every flow).
    fn of_conn(c: &ConnId) -> FlowKey {
        FlowKey::between((c.orig_h, c.orig_p), (c.resp_h, c.resp_p))
    }

    fn between(a: (IpAddr, u16), b: (IpAddr, u16)) -> FlowKey {
        let number = |ip: IpAddr| match ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let v6 = a.0.is_ipv6() || b.0.is_ipv6();
        let (a, b) = ((number(a.0), a.1), (number(b.0), b.1));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        FlowKey {
            addrs: [
                (lo.0 >> 64) as u64,
                lo.0 as u64,
                (hi.0 >> 64) as u64,
                hi.0 as u64,
            ],
            ports: u32::from(lo.1) << 16 | u32::from(hi.1),
            v6,
        }
    }
}

enum App {
    /// No payload yet, or fewer than SNIFF_BYTES of it (held in `sniff`). `shadow`: a receiver's
    /// overlap rule is unknown, so the parser gets a [`Shadow`].
    Undecided {
        sniff: Vec<u8>,
        dir: Direction,
        shadow: bool,
    },
    Parser(Box<dyn StreamParser>, Option<Box<Shadow>>),
    /// Not a protocol we parse: its bytes are skipped, not buffered.
    Ignored,
}

/// What one flow carried, reported when it ends (with `--flows`, and in tests).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FlowSummary {
    #[serde(flatten)]
    pub conn: ConnFields,
    pub last_ts: Ts,
    /// "parsed" | "ignored" | "no-payload"
    pub app: &'static str,
    /// Why it ended: "fin" | "rst" | "idle" | "evicted" | "end-of-input" | "port-reuse".
    pub end: &'static str,
    pub packets: u64,
    pub orig_bytes_delivered: u64,
    pub resp_bytes_delivered: u64,
    pub orig_gap_bytes: u64,
    pub resp_gap_bytes: u64,
    pub orig_skipped_bytes: u64,
    pub resp_skipped_bytes: u64,
    pub syn_seen: bool,
    /// What the sensor believed of each sender's checksums ("validated" | "offloaded" |
    /// "unknown"; see `decode::checksum::ChecksumAuto`).
    pub orig_checksums: SenderChecksums,
    pub resp_checksums: SenderChecksums,
}

struct Flow {
    ctx: FlowCtx,
    /// The policy of each direction's receiver (by [`Direction::index`]): to-server is the
    /// responder's, to-client the originator's.
    receivers: [TargetPolicy; 2],
    dirs: [StreamDir; 2],
    /// What each direction's receiver knows of its sender (checksums, SND.NXT, FIN).
    senders: [Sender; 2],
    /// Payload bytes not reassembled because the flow is ignored, per direction.
    skipped: [u64; 2],
    app: App,
    first_seen: Ts,
    last_seen: Ts,
    packets: u64,
    syn_seen: bool,
    /// Per direction: its SYN was seen (so the sensor knows its every byte from the start).
    dir_syn: [bool; 2],
    had_payload: bool,
    fin: [bool; 2],
    /// FIN both ways or RST: parser closed, kept only to absorb stragglers.
    closed: bool,
    /// FIN both ways seen while a hole was still open: closed once the hole fills (or times out).
    ending: bool,
}

/// The recency list a flow is on: expiry and eviction take each list's front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Closed (FIN both ways or RST), kept to absorb stragglers: evicted first.
    Closed = 0,
    /// Never carried data (half-open, never answered, scans, lone ACKs): evicted next.
    Embryonic = 1,
    /// Carried data: evicted only when nothing else is left.
    Established = 2,
}

const CLASSES: [Class; 3] = [Class::Closed, Class::Embryonic, Class::Established];

impl Flow {
    fn direction_of(&self, seg: &TcpSegment<'_>) -> Direction {
        if seg.src == self.ctx.conn.orig_h && seg.sport == self.ctx.conn.orig_p {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    fn class(&self) -> Class {
        if self.closed || self.ending {
            Class::Closed
        } else if self.had_payload {
            Class::Established
        } else {
            Class::Embryonic
        }
    }

    fn idle_timeout(&self) -> u64 {
        match self.class() {
            Class::Closed => IDLE_TIMEOUT_CLOSED_SECS,
            Class::Established => IDLE_TIMEOUT_ESTABLISHED_SECS,
            Class::Embryonic => IDLE_TIMEOUT_UNESTABLISHED_SECS,
        }
    }

    fn summary(&self, end: &'static str) -> FlowSummary {
        let s = |d: &DirStats| (d.delivered, d.gap_bytes);
        let (ob, og) = s(&self.dirs[0].stats);
        let (rb, rg) = s(&self.dirs[1].stats);
        FlowSummary {
            conn: ConnFields::new(self.first_seen, self.ctx.uid, &self.ctx.conn),
            last_ts: self.last_seen,
            app: match self.app {
                App::Parser(..) => "parsed",
                App::Ignored => "ignored",
                App::Undecided { .. } => "no-payload",
            },
            end,
            packets: self.packets,
            orig_bytes_delivered: ob,
            resp_bytes_delivered: rb,
            orig_gap_bytes: og,
            resp_gap_bytes: rg,
            orig_skipped_bytes: self.skipped[0],
            resp_skipped_bytes: self.skipped[1],
            syn_seen: self.syn_seen,
            orig_checksums: self.senders[0].decision(),
            resp_checksums: self.senders[1].decision(),
        }
    }
}

/// Decide who the client is from the first packet seen of a flow.
fn orient(seg: &TcpSegment<'_>) -> ConnId {
    let fwd = ConnId {
        orig_h: seg.src,
        orig_p: seg.sport,
        resp_h: seg.dst,
        resp_p: seg.dport,
    };
    let rev = ConnId {
        orig_h: seg.dst,
        orig_p: seg.dport,
        resp_h: seg.src,
        resp_p: seg.sport,
    };
    if seg.flags.syn {
        return if seg.flags.ack { rev } else { fwd };
    }
    let d_srv = SERVER_PORTS.contains(&seg.dport);
    let s_srv = SERVER_PORTS.contains(&seg.sport);
    if d_srv && !s_srv {
        fwd
    } else if s_srv && !d_srv {
        rev
    } else if seg.dport < seg.sport {
        fwd
    } else if seg.sport < seg.dport {
        rev
    } else {
        fwd
    }
}

/// Packet time between two looks for idle flows. Public so that sharded readers can sweep every
/// worker at the same frames (`pipeline::SweepPacer`).
pub const SWEEP_EVERY_NS: u64 = 1_000_000_000;

/// How the receivers behave, for every target (what depends on the target is in
/// [`super::policy`], chosen per flow from [`FlowTable::set_hosts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiverPolicy {
    pub checksums: ChecksumMode,
}

/// Counters bumped for (nearly) every packet or new flow, held as plain fields: a named-counter
/// update costs a map search. Added to the sink at every sweep (once per second of packet time),
/// at `expire` and at `finish`.
#[derive(Default)]
struct Pending {
    segments: u64,
    payload_bytes: u64,
    flows: u64,
    /// Flows without data evicted for room: counted (as `MAX_FLOWS`); only the first of each
    /// second of packet time is also reported as an event.
    quiet_evictions: u64,
    quiet_eviction_reported: bool,
}

/// One worker's flows.
pub struct FlowTable {
    /// Flow key → slot in `flows`. Keyed per process and per map: the 5-tuples are chosen by
    /// whoever sends the packets (see `crate::wire::maps`).
    index: KeyedMap<FlowKey, u32>,
    /// The last flow a segment was looked up for, tried before `index`: consecutive segments of
    /// one connection (a bulk transfer and its ACKs) are the common case, and comparing one key
    /// costs a fraction of hashing and probing. Cleared whenever a flow leaves the table (its
    /// slot is then reused by another).
    last: Option<(FlowKey, u32)>,
    flows: Lists<Flow, 3>,
    /// Segments held for the receiver's ACK to settle, by flow slot (see [`super::suspect`]).
    suspects: KeyedMap<u32, Vec<Suspect>>,
    suspect_bytes: usize,
    budget: Budget,
    last_sweep: Ts,
    max_flows: usize,
    pub policy: ReceiverPolicy,
    /// Per-target policies by receiving address (`rules/hosts.toml`).
    hosts: Arc<HostPolicies>,
    /// Collect a [`FlowSummary`] for every flow that ends (off by default).
    pub keep_summaries: bool,
    pub summaries: Vec<FlowSummary>,
    pending: Pending,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::new()
    }
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable {
            index: KeyedMap::default(),
            last: None,
            flows: Lists::default(),
            suspects: KeyedMap::default(),
            suspect_bytes: 0,
            budget: Budget::default(),
            last_sweep: Ts(0),
            max_flows: MAX_FLOWS,
            policy: ReceiverPolicy::default(),
            hosts: Arc::default(),
            keep_summaries: false,
            summaries: Vec::new(),
            pending: Pending::default(),
        }
    }

    /// A table with a smaller flow cap (tests, constrained deployments); at least 1.
    pub fn with_max_flows(n: usize) -> FlowTable {
        FlowTable {
            max_flows: n.max(1),
            ..FlowTable::new()
        }
    }

    /// Per-target policies by receiving address, taken by flows created from now on.
    pub fn set_hosts(&mut self, hosts: Arc<HostPolicies>) {
        self.hosts = hosts;
    }

    /// Flows currently tracked (including closed ones waiting out their straggler timeout).
    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    /// Out-of-order bytes buffered across every flow.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used
    }

    /// One TCP segment at packet time `ts`.
    pub fn segment(
        &mut self,
        ts: Ts,
        seg: &TcpSegment<'_>,
        factory: &mut dyn ParserFactory,
        sink: &mut Sink,
    ) {
        self.pending.segments += 1;
        self.sweep(ts, factory, sink);
        let key = FlowKey::of(seg);
        let mut found = self.lookup(&key);
        // A new SYN on a finished tuple is a new connection (port reuse).
        if let (Some(old_id), true) = (found, seg.flags.syn && !seg.flags.ack) {
            if let Some(old) = self.flows.get(old_id) {
                let restart = old.closed || old.fin.iter().any(|f| *f) || {
                    // A SYN from the server side, or data already flowed with another ISN.
                    old.had_payload && old.direction_of(seg) == Direction::ToServer && old.syn_seen
                };
                if restart {
                    sink.count("flows.port_reuse", 1);
                    self.remove_and_close(&key, ts, "port-reuse", factory, sink);
                    found = None;
                }
            }
        }
        let id = match found {
            Some(id) => id,
            None => self.insert(key, seg, ts, factory, sink),
        };
        let Some(flow) = self.flows.get_mut(id) else {
            return;
        };
        let dir = flow.direction_of(seg);
        if flow.closed {
            flow.last_seen = ts;
            flow.packets += 1;
            sink.count("tcp.after_close_segments", 1);
            self.flows.touch(id, Class::Closed as usize);
            return;
        }
        let (me, peer) = (dir.index(), dir.flip().index());
        let peer_fully_seen = flow.dir_syn[peer] && flow.dirs[peer].stats.gap_bytes == 0;
        let mut peer_sender = flow.senders[peer];
        let held = if self.suspects.is_empty() {
            None
        } else {
            self.suspects.get(&id)
        };
        if let Some(held) = held {
            // An ACK may acknowledge a held segment: that is how it gets confirmed.
            for h in held.iter().filter(|h| h.dir == dir.flip()) {
                peer_sender.sent_up_to(h.seq.wrapping_add(h.payload.len() as u32));
            }
        }
        let my_fin = flow.dirs[me].fin_seq();
        if let Err(why) = flow.senders[me].accept(
            seg,
            &peer_sender,
            peer_fully_seen,
            my_fin,
            self.policy.checksums,
        ) {
            // What the endpoint drops neither feeds the stream nor keeps the flow alive.
            sink.count("tcp.segments_refused", 1);
            let conn = ConnFields::new(ts, flow.ctx.uid, &flow.ctx.conn);
            sink.anomaly(ts, Some(conn), why.kind(), "tcp", why.detail());
            let data = !seg.payload.is_empty() && !seg.flags.syn && !seg.flags.rst;
            if why.may_be_capture_artifact() && data && !matches!(flow.app, App::Ignored) {
                self.hold(id, dir, seg, ts, sink);
            }
            return;
        }
        let shift = super::receiver::window_shift(&flow.senders[me], &flow.senders[peer]);
        flow.senders[me].sent(seg, shift);
        flow.last_seen = ts;
        flow.packets += 1;
        self.deliver_segment(id, dir, ts, seg, factory, sink);
        if let Some(flow) = self.flows.get(id) {
            let class = flow.class();
            self.flows.touch(id, class as usize);
        }
    }

    /// The slot of `key`'s flow: the last one looked up, else one index lookup (a flood makes
    /// every lookup a cache miss).
    fn lookup(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((k, id)) = self.last {
            if k == *key {
                return Some(id);
            }
        }
        let id = self.index.get(key).copied()?;
        self.last = Some((*key, id));
        Some(id)
    }

    /// A new flow for `seg`'s tuple, making room first if the table is full.
    fn insert(
        &mut self,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        ts: Ts,
        factory: &mut dyn ParserFactory,
        sink: &mut Sink,
    ) -> u32 {
        if self.index.len() >= self.max_flows {
            self.evict_one(ts, factory, sink);
        }
        let conn = orient(seg);
        let uid = Uid::for_first_segment(&conn, seg);
        self.pending.flows += 1;
        // Once per flow, not per packet: to the server, the responder receives.
        let receivers = if self.hosts.is_empty() {
            [TargetPolicy::default(); 2]
        } else {
            [
                self.hosts.lookup(conn.resp_h),
                self.hosts.lookup(conn.orig_h),
            ]
        };
        let flow = Flow {
            ctx: FlowCtx { conn, uid },
            receivers,
            dirs: [
                StreamDir::with_overlap(receivers[0].tcp),
                StreamDir::with_overlap(receivers[1].tcp),
            ],
            senders: [Sender::default(), Sender::default()],
            skipped: [0, 0],
            app: App::Undecided {
                sniff: Vec::new(),
                dir: Direction::ToServer,
                shadow: receivers.iter().any(|r| r.tcp == TcpOverlap::Ambiguous),
            },
            first_seen: ts,
            last_seen: ts,
            packets: 0,
            syn_seen: false,
            dir_syn: [false, false],
            had_payload: false,
            fin: [false, false],
            closed: false,
            ending: false,
        };
        let id = self.flows.insert(Class::Embryonic as usize, flow);
        self.index.insert(key, id);
        self.last = Some((key, id));
        id
    }

    /// A segment the receiver accepted: SYN, data, ACK, FIN, RST, in that order.
    fn deliver_segment(
        &mut self,
        id: u32,
        dir: Direction,
        ts: Ts,
        seg: &TcpSegment<'_>,
        factory: &mut dyn ParserFactory,
        sink: &mut Sink,
    ) {
        let Some(flow) = self.flows.get_mut(id) else {
            return;
        };
        let Flow {
            ctx,
            dirs,
            app,
            skipped,
            receivers,
            ..
        } = flow;
        let rep = Report { ctx, ts };
        if seg.flags.syn {
            flow.syn_seen = true;
            flow.dir_syn[dir.index()] = true;
            dirs[dir.index()].syn(seg.seq);
        }
        // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
        let data_seq = if seg.flags.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let has_payload = !seg.payload.is_empty() || seg.missing > 0;
        if has_payload {
            flow.had_payload = true;
            self.pending.payload_bytes += seg.payload.len() as u64;
            if matches!(app, App::Ignored) {
                skipped[dir.index()] += seg.payload.len() as u64;
            } else {
                let mut out = |c: Chunk<'_>, sink: &mut Sink| {
                    deliver(app, factory, rep.ctx, ts, dir, c, sink)
                };
                dirs[dir.index()].segment(
                    data_seq,
                    seg.payload,
                    seg.missing,
                    &mut self.budget,
                    &rep,
                    sink,
                    &mut out,
                );
            }
        }
        if seg.flags.ack && !matches!(app, App::Ignored) {
            let other = dir.flip();
            let held = if self.suspects.is_empty() {
                None
            } else {
                self.suspects.get_mut(&id)
            };
            if let Some(held) = held {
                // The receiver's ACK settles the segments held from the other direction.
                let next = dirs[other.index()].next_seq();
                let mut taken: Vec<Suspect> = Vec::new();
                for h in std::mem::take(held) {
                    if h.dir != other {
                        held.push(h);
                        continue;
                    }
                    match h.fate(next, seg.ack) {
                        Fate::Wait => held.push(h),
                        Fate::Superseded => {
                            sink.count("tcp.held_segments_superseded", 1);
                            self.suspect_bytes -= h.payload.len();
                        }
                        Fate::Confirmed => {
                            sink.count("tcp.held_segments_confirmed", 1);
                            self.suspect_bytes -= h.payload.len();
                            taken.push(h);
                        }
                    }
                }
                if held.is_empty() {
                    self.suspects.remove(&id);
                }
                let base = next.unwrap_or_else(|| taken.first().map_or(0, |h| h.seq));
                taken.sort_by_key(|h| h.seq.wrapping_sub(base));
                for h in taken {
                    if let Some(a) = h.ack {
                        flow.senders[dir.index()].sent_up_to(a);
                    }
                    let end = h.seq.wrapping_add(h.payload.len() as u32);
                    flow.senders[other.index()].sent_up_to(end);
                    let mut out = |c: Chunk<'_>, sink: &mut Sink| {
                        deliver(app, factory, rep.ctx, ts, other, c, sink)
                    };
                    dirs[other.index()].segment(
                        h.seq,
                        &h.payload,
                        0,
                        &mut self.budget,
                        &rep,
                        sink,
                        &mut out,
                    );
                }
            }
            // Nothing buffered (the in-order common case): the ACK cannot release anything, so
            // the reassembler is not called.
            if dirs[other.index()].buffered_segments() > 0 {
                let mut out = |c: Chunk<'_>, sink: &mut Sink| {
                    deliver(app, factory, rep.ctx, ts, other, c, sink)
                };
                dirs[other.index()].acked(seg.ack, &mut self.budget, &rep, sink, &mut out);
            }
        }
        if seg.flags.fin {
            let len = seg.payload.len() + seg.missing as usize;
            dirs[dir.index()].fin(data_seq, len);
            flow.fin[dir.index()] = true;
        }
        let mut end = None;
        if seg.flags.rst {
            let peer_ack = flow.senders[dir.flip().index()].last_ack();
            let policy = receivers[dir.index()].rst;
            if dirs[dir.index()].rst_accepted(seg.seq, peer_ack, policy) {
                end = Some("rst");
            } else {
                // An injected RST must not blind us to the rest of the connection: outside the
                // window no stack takes it, and inside it an RFC 5961 stack answers with a
                // challenge ACK and goes on.
                sink.anomaly(
                    ts,
                    rep.conn(),
                    AnomalyKind::RstIgnored,
                    "tcp",
                    "RST not at the receiver's next sequence number: connection goes on",
                );
            }
        } else if flow.fin[0] && flow.fin[1] {
            end = Some("fin");
        }
        let summaries = self.keep_summaries.then_some(&mut self.summaries);
        if end == Some("rst") {
            close_flow(flow, &mut self.budget, ts, "rst", factory, sink, summaries);
        } else if end.is_some() || flow.ending {
            // After both FINs a reordered segment may still be on its way: wait for the holes to
            // fill (or for the closed timeout).
            flow.ending = true;
            if !flow.dirs.iter().any(|d| d.has_hole()) {
                close_flow(flow, &mut self.budget, ts, "fin", factory, sink, summaries);
            }
        }
    }

    /// Keep a refused segment that may be a capture artifact until the receiver's ACK settles it
    /// (see [`super::suspect`]), within the caps.
    fn hold(&mut self, id: u32, dir: Direction, seg: &TcpSegment<'_>, ts: Ts, sink: &mut Sink) {
        let held = self.suspects.entry(id).or_default();
        let cap = if held.len() >= MAX_SUSPECT_SEGMENTS_PER_FLOW {
            Some("MAX_SUSPECT_SEGMENTS_PER_FLOW")
        } else if self.suspect_bytes + seg.payload.len() > MAX_SUSPECT_BYTES_TOTAL {
            Some("MAX_SUSPECT_BYTES_TOTAL")
        } else {
            None
        };
        if let Some(cap) = cap {
            let conn = self
                .flows
                .get(id)
                .map(|f| ConnFields::new(ts, f.ctx.uid, &f.ctx.conn));
            sink.cap_reached(cap, ts, conn, "tcp", "refused segment dropped, not held");
            if held.is_empty() {
                self.suspects.remove(&id);
            }
            return;
        }
        sink.count("tcp.held_segments", 1);
        self.suspect_bytes += seg.payload.len();
        held.push(Suspect {
            dir,
            seq: seg.seq,
            ack: seg.flags.ack.then_some(seg.ack),
            payload: seg.payload.to_vec(),
        });
    }

    /// Add the per-packet counters held back (see [`Pending`]) to `sink`.
    pub fn flush_counters(&mut self, sink: &mut Sink) {
        let p = std::mem::take(&mut self.pending);
        for (name, n) in [
            ("tcp.segments", p.segments),
            ("tcp.payload_bytes", p.payload_bytes),
            ("flows", p.flows),
            ("MAX_FLOWS", p.quiet_evictions),
            ("flows.evicted_without_data", p.quiet_evictions),
        ] {
            if n > 0 {
                sink.count(name, n);
            }
        }
    }

    /// Close every flow (end of input), oldest first so output order does not depend on hashing.
    pub fn finish(&mut self, ts: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        // Flows already idle past their timeout end as "idle", whether or not a packet came
        // along to notice (so the outcome does not depend on how packets were sharded).
        self.flush_counters(sink);
        self.last_sweep = Ts(0);
        self.sweep(ts, factory, sink);
        let mut all: Vec<(FlowKey, Ts, Uid)> = self
            .flows
            .iter()
            .map(|(_, f)| (FlowKey::of_conn(&f.ctx.conn), f.first_seen, f.ctx.uid))
            .collect();
        all.sort_by_key(|(_, t, u)| (*t, u.0));
        for (k, _, _) in all {
            self.remove_and_close(&k, ts, "end-of-input", factory, sink);
        }
        self.flush_counters(sink);
        self.last_sweep = Ts(0);
    }

    fn remove_and_close(
        &mut self,
        key: &FlowKey,
        ts: Ts,
        end: &'static str,
        factory: &mut dyn ParserFactory,
        sink: &mut Sink,
    ) {
        let Some(id) = self.index.remove(key) else {
            return;
        };
        if self.last.is_some_and(|(_, l)| l == id) {
            self.last = None;
        }
        let held = if self.suspects.is_empty() {
            None
        } else {
            self.suspects.remove(&id)
        };
        if let Some(held) = held {
            // Never acknowledged by the receiver: it did not take them either.
            sink.count("tcp.held_segments_unconfirmed", held.len() as u64);
            self.suspect_bytes -= held.iter().map(|h| h.payload.len()).sum::<usize>();
        }
        if let Some(mut f) = self.flows.remove(id) {
            if !f.closed {
                let at = if f.last_seen > ts { f.last_seen } else { ts };
                close_flow(
                    &mut f,
                    &mut self.budget,
                    at,
                    end,
                    factory,
                    sink,
                    self.keep_summaries.then_some(&mut self.summaries),
                );
            }
            for d in &mut f.dirs {
                d.discard(&mut self.budget);
            }
            count_checksum_decisions(&f, sink);
        }
    }

    /// Close flows idle past their timeout at time `now` without a packet (a live capture that
    /// went quiet).
    pub fn expire(&mut self, now: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        self.flush_counters(sink);
        self.sweep(now, factory, sink);
    }

    /// Close flows idle past their timeout (checked once per second of packet time). Each class
    /// list is in last-seen order with one timeout, so the expired flows are a prefix of each:
    /// taken oldest first across the three, by (last seen, uid), as the flows went idle.
    ///
    /// The time check is inlined into every caller and the sweep itself is not: it is due once
    /// per second of packet time, and the call with its register saves for every segment cost
    /// more than the check (docs/PERF.md, "Session 6: flow layer").
    #[inline(always)]
    fn sweep(&mut self, now: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        if now.0 >= self.last_sweep.0.saturating_add(SWEEP_EVERY_NS) {
            self.sweep_due(now, factory, sink);
        }
    }

    #[inline(never)]
    fn sweep_due(&mut self, now: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        self.last_sweep = now;
        self.flush_counters(sink);
        loop {
            let next = CLASSES
                .iter()
                .filter_map(|c| {
                    let f = self.flows.get(self.flows.front(*c as usize)?)?;
                    let expired = f.last_seen.saturating_add_secs(f.idle_timeout()) < now;
                    expired.then_some((f.last_seen, f.ctx.uid.0, f.ctx.conn, f.closed, f.ending))
                })
                .min_by_key(|(t, u, ..)| (*t, *u));
            let Some((last, _, conn, closed, ending)) = next else {
                break;
            };
            let key = FlowKey::of_conn(&conn);
            if !closed {
                sink.count("flows.idle_timeout", 1);
            }
            // Closed at the time it went idle, not at the packet that noticed.
            let end = if ending { "fin" } else { "idle" };
            self.remove_and_close(&key, last, end, factory, sink);
        }
    }

    /// The table is full: close one flow, the longest idle of the first non-empty class (closed,
    /// then never carried data, then carried data). Only the last is reported one by one: the
    /// others lose nothing a parser saw, and a flood must not cost an event per flow.
    fn evict_one(&mut self, ts: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        let Some((class, id)) = CLASSES
            .iter()
            .find_map(|c| Some((*c, self.flows.front(*c as usize)?)))
        else {
            return;
        };
        let Some(f) = self.flows.get(id) else {
            return;
        };
        let key = FlowKey::of_conn(&f.ctx.conn);
        if class == Class::Established {
            let conn = ConnFields::new(ts, f.ctx.uid, &f.ctx.conn);
            sink.cap_reached(
                "MAX_FLOWS",
                ts,
                Some(conn),
                "tcp",
                "longest-idle flow closed early",
            );
        } else if !self.pending.quiet_eviction_reported {
            self.pending.quiet_eviction_reported = true;
            sink.cap_reached(
                "MAX_FLOWS",
                ts,
                None,
                "tcp",
                "flows that never carried data closed for room (the rest of this second counted)",
            );
            sink.count("flows.evicted_without_data", 1);
        } else {
            self.pending.quiet_evictions += 1;
        }
        self.remove_and_close(&key, ts, "evicted", factory, sink);
    }
}

/// Report what the sensor believed of each sender's checksums (the `auto` decision).
fn count_checksum_decisions(f: &Flow, sink: &mut Sink) {
    for s in &f.senders {
        match s.decision() {
            SenderChecksums::Validated => sink.count("checksum.senders_validated", 1),
            SenderChecksums::Offloaded => sink.count("checksum.senders_offload_assumed", 1),
            SenderChecksums::Unknown => {}
        }
    }
}

/// Hand one chunk of in-order stream to the flow's parser, choosing the parser first if needed.
///
/// Inlined into the reassembler's output closures, with the parser's own call at the end: a
/// chunk for a flow whose parser is chosen goes straight to it, while choosing one (once per
/// flow) is out of line. Each extra call level cost about 20 instructions per chunk
/// (docs/PERF.md, "Session 6: flow layer").
#[inline(always)]
fn deliver(
    app: &mut App,
    factory: &mut dyn ParserFactory,
    ctx: &FlowCtx,
    ts: Ts,
    dir: Direction,
    chunk: Chunk<'_>,
    sink: &mut Sink,
) {
    if matches!(app, App::Undecided { .. }) {
        deliver_undecided(app, factory, ctx, ts, dir, chunk, sink);
    } else {
        feed(app, ts, dir, chunk, sink);
    }
}

/// [`deliver`] before the parser is chosen: gather the first bytes and choose.
#[inline(never)]
fn deliver_undecided(
    app: &mut App,
    factory: &mut dyn ParserFactory,
    ctx: &FlowCtx,
    ts: Ts,
    dir: Direction,
    chunk: Chunk<'_>,
    sink: &mut Sink,
) {
    if let App::Undecided {
        sniff,
        dir: first_dir,
        ..
    } = app
    {
        match chunk {
            Chunk::Data(b) if sniff.is_empty() || *first_dir == dir => {
                if sniff.is_empty() {
                    *first_dir = dir;
                }
                if sniff.is_empty() && b.len() >= SNIFF_BYTES {
                    // Enough to decide on the packet's own bytes: no copy.
                    decide(app, factory, ctx, dir, b, sink);
                    feed(app, ts, dir, Chunk::Data(b), sink);
                    return;
                }
                let take = (SNIFF_BYTES - sniff.len()).min(b.len());
                sniff.extend_from_slice(&b[..take]);
                if sniff.len() < SNIFF_BYTES {
                    return;
                }
                let first = std::mem::take(sniff);
                let d = *first_dir;
                decide(app, factory, ctx, d, &first, sink);
                feed(app, ts, d, Chunk::Data(&first), sink);
                feed(app, ts, dir, Chunk::Data(&b[take..]), sink);
                return;
            }
            Chunk::Gap(_) if sniff.is_empty() => {
                // A hole before any data: nothing to decide on yet; the parser (if any) starts
                // after it anyway.
                return;
            }
            Chunk::Split { first, .. } if sniff.is_empty() => {
                decide(app, factory, ctx, dir, first, sink);
            }
            _ => {
                // The other side speaks, or a hole: decide on what we have.
                flush_sniff(app, factory, ctx, ts, sink);
            }
        }
    }
    feed(app, ts, dir, chunk, sink);
}

fn flush_sniff(
    app: &mut App,
    factory: &mut dyn ParserFactory,
    ctx: &FlowCtx,
    ts: Ts,
    sink: &mut Sink,
) {
    if let App::Undecided { sniff, dir, .. } = app {
        if sniff.is_empty() {
            return;
        }
        let first = std::mem::take(sniff);
        let d = *dir;
        decide(app, factory, ctx, d, &first, sink);
        feed(app, ts, d, Chunk::Data(&first), sink);
    }
}

fn decide(
    app: &mut App,
    factory: &mut dyn ParserFactory,
    ctx: &FlowCtx,
    dir: Direction,
    first: &[u8],
    sink: &mut Sink,
) {
    let shadowed = matches!(app, App::Undecided { shadow: true, .. });
    *app = match factory.parser_for(ctx, dir, first) {
        Some(p) => {
            sink.count("flows.parsed", 1);
            let shadow = if shadowed {
                factory.parser_for(ctx, dir, first).map(Shadow::new)
            } else {
                None
            };
            App::Parser(p, shadow)
        }
        None => {
            sink.count("flows.ignored", 1);
            App::Ignored
        }
    };
}

#[inline(always)]
fn feed(app: &mut App, ts: Ts, dir: Direction, chunk: Chunk<'_>, sink: &mut Sink) {
    match app {
        App::Parser(p, None) => feed_parser(p.as_mut(), ts, dir, chunk, sink),
        App::Parser(p, Some(sh)) => feed_shadowed(p.as_mut(), sh, ts, dir, chunk, sink),
        _ => {}
    }
}

#[inline(always)]
fn feed_parser(
    p: &mut dyn StreamParser,
    ts: Ts,
    dir: Direction,
    chunk: Chunk<'_>,
    sink: &mut Sink,
) {
    match chunk {
        Chunk::Data(b) if !b.is_empty() => p.data(ts, dir, b, sink),
        Chunk::Data(_) => {}
        Chunk::Gap(n) => p.gap(ts, dir, n, sink),
        // The main reading takes the first copy; a shadow (if any) the last.
        Chunk::Split { first, .. } => p.data(ts, dir, first, sink),
    }
}

/// [`feed`] when a receiver's overlap rule is unknown: the shadow reads the chunk after the main
/// parser (rare, so out of line).
#[inline(never)]
fn feed_shadowed(
    p: &mut dyn StreamParser,
    sh: &mut Shadow,
    ts: Ts,
    dir: Direction,
    chunk: Chunk<'_>,
    sink: &mut Sink,
) {
    let before = sink.events.len();
    feed_parser(p, ts, dir, chunk, sink);
    sh.feed(ts, dir, chunk, before, sink);
}

fn close_flow(
    flow: &mut Flow,
    budget: &mut Budget,
    ts: Ts,
    end: &'static str,
    factory: &mut dyn ParserFactory,
    sink: &mut Sink,
    summaries: Option<&mut Vec<FlowSummary>>,
) {
    let Flow { ctx, dirs, app, .. } = flow;
    let rep = Report { ctx, ts };
    for dir in [Direction::ToServer, Direction::ToClient] {
        if matches!(app, App::Ignored) {
            dirs[dir.index()].discard(budget);
            continue;
        }
        let mut out =
            |c: Chunk<'_>, sink: &mut Sink| deliver(app, factory, rep.ctx, ts, dir, c, sink);
        dirs[dir.index()].flush(budget, &rep, sink, &mut out);
    }
    flush_sniff(app, factory, ctx, ts, sink);
    if let App::Parser(p, shadow) = app {
        let before = sink.events.len();
        p.close(ts, sink);
        if let Some(sh) = shadow {
            sh.close(ts, before, sink);
        }
    }
    flow.closed = true;
    if let Some(s) = summaries {
        s.push(flow.summary(end));
    }
}

#[cfg(test)]
mod tests;
