//! The flow table: bidirectional TCP connections keyed by their 5-tuple, each with two reassembled
//! directions and an application parser chosen on its first payload bytes.
//!
//! Time is packet time. Flows end on FIN from both sides or RST (kept briefly afterwards so
//! retransmissions do not start a new flow), on idle timeouts, when evicted by [`MAX_FLOWS`], or
//! at the end of input; every way out flushes the reassembler and closes the parser, so nothing
//! buffered is lost silently.

use super::reassembly::{Budget, Chunk, DirStats, Report, StreamDir};
use super::{ConnId, Direction, FlowCtx, ParserFactory, StreamParser, Uid};
use crate::decode::TcpSegment;
use crate::event::ConnFields;
use crate::sink::Sink;
use crate::time::Ts;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::net::IpAddr;

/// Connections tracked at once, over all workers (each worker's table holds its share, see
/// [`flows_per_worker`]); beyond it the longest-idle ones are closed early. About 380 bytes each
/// (plus buffered data), so the tables stay under ~50 MiB whatever the number of workers.
pub const MAX_FLOWS: usize = 131_072;

/// One worker's share of [`MAX_FLOWS`] when `workers` engines split the host pairs.
pub fn flows_per_worker(workers: usize) -> usize {
    (MAX_FLOWS / workers.max(1)).max(64)
}
/// How many flows one eviction closes (a batch, so a flood does not cost a scan per packet).
pub const FLOW_EVICTION_BATCH: usize = MAX_FLOWS / 64;
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

/// The 5-tuple in a canonical order, so both directions find the same flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl FlowKey {
    fn of(seg: &TcpSegment<'_>) -> FlowKey {
        let a = (seg.src, seg.sport);
        let b = (seg.dst, seg.dport);
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }
}

enum App {
    /// No payload yet, or fewer than SNIFF_BYTES of it (held in `sniff`).
    Undecided {
        sniff: Vec<u8>,
        dir: Direction,
    },
    Parser(Box<dyn StreamParser>),
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
}

struct Flow {
    ctx: FlowCtx,
    dirs: [StreamDir; 2],
    /// Payload bytes not reassembled because the flow is ignored, per direction.
    skipped: [u64; 2],
    app: App,
    first_seen: Ts,
    last_seen: Ts,
    packets: u64,
    syn_seen: bool,
    had_payload: bool,
    fin: [bool; 2],
    /// FIN both ways or RST: parser closed, kept only to absorb stragglers.
    closed: bool,
    /// FIN both ways seen while a hole was still open: closed once the hole fills (or times out).
    ending: bool,
}

impl Flow {
    fn direction_of(&self, seg: &TcpSegment<'_>) -> Direction {
        if seg.src == self.ctx.conn.orig_h && seg.sport == self.ctx.conn.orig_p {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    fn idle_timeout(&self) -> u64 {
        if self.closed || self.ending {
            IDLE_TIMEOUT_CLOSED_SECS
        } else if self.had_payload {
            IDLE_TIMEOUT_ESTABLISHED_SECS
        } else {
            IDLE_TIMEOUT_UNESTABLISHED_SECS
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
                App::Parser(_) => "parsed",
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

/// One worker's flows.
pub struct FlowTable {
    flows: FxHashMap<FlowKey, Flow>,
    budget: Budget,
    last_sweep: Ts,
    max_flows: usize,
    /// Collect a [`FlowSummary`] for every flow that ends (off by default).
    pub keep_summaries: bool,
    pub summaries: Vec<FlowSummary>,
    /// `tcp.segments` and `tcp.payload_bytes` not yet added to the sink: a named-counter update
    /// costs a map search, too much twice per packet; they are added at every sweep (once per
    /// second of packet time), at `expire` and at `finish`.
    pending_segments: u64,
    pending_payload_bytes: u64,
}

impl Default for FlowTable {
    fn default() -> Self {
        FlowTable::new()
    }
}

impl FlowTable {
    pub fn new() -> FlowTable {
        FlowTable {
            flows: FxHashMap::default(),
            budget: Budget::default(),
            last_sweep: Ts(0),
            max_flows: MAX_FLOWS,
            keep_summaries: false,
            summaries: Vec::new(),
            pending_segments: 0,
            pending_payload_bytes: 0,
        }
    }

    /// A table with a smaller flow cap (tests, constrained deployments); at least 1.
    pub fn with_max_flows(n: usize) -> FlowTable {
        FlowTable {
            max_flows: n.max(1),
            ..FlowTable::new()
        }
    }

    /// Flows currently tracked (including closed ones waiting out their straggler timeout).
    pub fn len(&self) -> usize {
        self.flows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
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
        self.pending_segments += 1;
        self.sweep(ts, factory, sink);
        let key = FlowKey::of(seg);
        // A new SYN on a finished tuple is a new connection (port reuse).
        if seg.flags.syn && !seg.flags.ack {
            if let Some(old) = self.flows.get(&key) {
                let restart = old.closed || old.fin.iter().any(|f| *f) || {
                    // A SYN from the server side, or data already flowed with another ISN.
                    old.had_payload && old.direction_of(seg) == Direction::ToServer && old.syn_seen
                };
                if restart {
                    sink.count("flows.port_reuse", 1);
                    self.remove_and_close(&key, ts, "port-reuse", factory, sink);
                }
            }
        }
        if !self.flows.contains_key(&key) {
            if self.flows.len() >= self.max_flows {
                self.evict(ts, factory, sink);
            }
            let conn = orient(seg);
            let uid = Uid::for_first_segment(&conn, seg);
            sink.count("flows", 1);
            self.flows.insert(
                key,
                Flow {
                    ctx: FlowCtx { conn, uid },
                    dirs: [StreamDir::new(), StreamDir::new()],
                    skipped: [0, 0],
                    app: App::Undecided {
                        sniff: Vec::new(),
                        dir: Direction::ToServer,
                    },
                    first_seen: ts,
                    last_seen: ts,
                    packets: 0,
                    syn_seen: false,
                    had_payload: false,
                    fin: [false, false],
                    closed: false,
                    ending: false,
                },
            );
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        flow.last_seen = ts;
        flow.packets += 1;
        let dir = flow.direction_of(seg);
        if flow.closed {
            sink.count("tcp.after_close_segments", 1);
            return;
        }
        let Flow {
            ctx,
            dirs,
            app,
            skipped,
            ..
        } = flow;
        let rep = Report { ctx, ts };
        if seg.flags.syn {
            flow.syn_seen = true;
            dirs[dir.index()].syn(seg.seq);
        }
        let has_payload = !seg.payload.is_empty() || seg.missing > 0;
        if has_payload {
            flow.had_payload = true;
            self.pending_payload_bytes += seg.payload.len() as u64;
            if matches!(app, App::Ignored) {
                skipped[dir.index()] += seg.payload.len() as u64;
            } else {
                // Data on a SYN (TCP Fast Open) starts after the SYN's own sequence number.
                let data_seq = if seg.flags.syn {
                    seg.seq.wrapping_add(1)
                } else {
                    seg.seq
                };
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
            let mut out =
                |c: Chunk<'_>, sink: &mut Sink| deliver(app, factory, rep.ctx, ts, other, c, sink);
            dirs[other.index()].acked(seg.ack, &mut self.budget, &rep, sink, &mut out);
        }
        if seg.flags.fin {
            let data_seq = if seg.flags.syn {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            };
            dirs[dir.index()].fin(data_seq, seg.payload.len() + seg.missing as usize);
            flow.fin[dir.index()] = true;
        }
        if seg.flags.rst && !dirs[dir.index()].rst_in_window(seg.seq) {
            // A reset far from where the stream is cannot be from the real endpoint: an
            // injected RST must not blind us to the rest of the connection.
            sink.count("tcp.rst_out_of_window", 1);
        }
        let end = if seg.flags.rst && dirs[dir.index()].rst_in_window(seg.seq) {
            Some("rst")
        } else if flow.fin[0] && flow.fin[1] {
            Some("fin")
        } else {
            None
        };
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

    /// Add the per-packet counters held back (see `pending_segments`) to `sink`.
    pub fn flush_counters(&mut self, sink: &mut Sink) {
        if self.pending_segments > 0 {
            sink.count("tcp.segments", std::mem::take(&mut self.pending_segments));
        }
        if self.pending_payload_bytes > 0 {
            sink.count(
                "tcp.payload_bytes",
                std::mem::take(&mut self.pending_payload_bytes),
            );
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
            .map(|(k, f)| (*k, f.first_seen, f.ctx.uid))
            .collect();
        all.sort_by_key(|(_, t, u)| (*t, u.0));
        for (k, _, _) in all {
            self.remove_and_close(&k, ts, "end-of-input", factory, sink);
        }
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
        if let Some(mut f) = self.flows.remove(key) {
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
        }
    }

    /// Close flows idle past their timeout at time `now` without a packet (a live capture that
    /// went quiet).
    pub fn expire(&mut self, now: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        self.flush_counters(sink);
        self.sweep(now, factory, sink);
    }

    /// Close flows idle past their timeout (checked once per second of packet time).
    fn sweep(&mut self, now: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        if now.0 < self.last_sweep.0.saturating_add(1_000_000_000) {
            return;
        }
        self.last_sweep = now;
        self.flush_counters(sink);
        let mut expired: Vec<(Ts, u64, FlowKey, bool)> = self
            .flows
            .iter()
            .filter(|(_, f)| f.last_seen.saturating_add_secs(f.idle_timeout()) < now)
            .map(|(k, f)| (f.last_seen, f.ctx.uid.0, *k, f.closed))
            .collect();
        expired.sort_by_key(|(t, u, _, _)| (*t, *u));
        for (last, _, k, closed) in expired {
            if !closed {
                sink.count("flows.idle_timeout", 1);
            }
            // Closed at the time it went idle, not at the packet that noticed.
            let end = if self.flows.get(&k).is_some_and(|f| f.ending) {
                "fin"
            } else {
                "idle"
            };
            self.remove_and_close(&k, last, end, factory, sink);
        }
    }

    /// The table is full: close the longest-idle batch of flows (their parsers flush first).
    fn evict(&mut self, ts: Ts, factory: &mut dyn ParserFactory, sink: &mut Sink) {
        let mut by_idle: Vec<(Ts, u64, FlowKey)> = self
            .flows
            .iter()
            .map(|(k, f)| (f.last_seen, f.ctx.uid.0, *k))
            .collect();
        let n = (self.max_flows / 64)
            .clamp(1, FLOW_EVICTION_BATCH)
            .min(by_idle.len().max(1));
        if by_idle.len() > n {
            by_idle.select_nth_unstable(n - 1);
            by_idle.truncate(n);
        }
        by_idle.sort();
        for (_, _, k) in by_idle {
            if let Some(f) = self.flows.get(&k) {
                let conn = ConnFields::new(ts, f.ctx.uid, &f.ctx.conn);
                sink.cap_reached(
                    "MAX_FLOWS",
                    ts,
                    Some(conn),
                    "tcp",
                    "longest-idle flow closed early",
                );
            }
            self.remove_and_close(&k, ts, "evicted", factory, sink);
        }
    }
}

/// Hand one chunk of in-order stream to the flow's parser, choosing the parser first if needed.
fn deliver(
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
    if let App::Undecided { sniff, dir } = app {
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
    *app = match factory.parser_for(ctx, dir, first) {
        Some(p) => {
            sink.count("flows.parsed", 1);
            App::Parser(p)
        }
        None => {
            sink.count("flows.ignored", 1);
            App::Ignored
        }
    };
}

fn feed(app: &mut App, ts: Ts, dir: Direction, chunk: Chunk<'_>, sink: &mut Sink) {
    if let App::Parser(p) = app {
        match chunk {
            Chunk::Data(b) if !b.is_empty() => p.data(ts, dir, b, sink),
            Chunk::Data(_) => {}
            Chunk::Gap(n) => p.gap(ts, dir, n, sink),
        }
    }
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
    if let App::Parser(p) = app {
        p.close(ts, sink);
    }
    flow.closed = true;
    if let Some(s) = summaries {
        s.push(flow.summary(end));
    }
}

#[cfg(test)]
mod tests;
