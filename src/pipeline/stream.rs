//! The multi-core pipeline shared by `read` and `live`: one capture thread, N engine workers, and
//! the caller's thread merging their output back into packet order.
//!
//! ```text
//!  capture thread (source)           workers (one Engine each)          caller's thread (merger)
//!  index, shard by host pair ──Job──▶ process, tag output with index ──Reply──▶ k-way merge ─▶ consumer
//!       ▲                     bounded           │                     bounded      (detection, output)
//!       └──────── spent packet buffers ◀────────┘ (recycled, no per-packet allocation)
//! ```
//!
//! * Sharding: `decode::host_pair_hash` of the frame's host pair modulo N, so both directions,
//!   every fragment and every connection between two hosts meet on one worker (one attack, one
//!   engine). Frames without an IP host pair go to worker 0.
//! * Indices: every packet gets the next index; so does every control step (end of an input, a
//!   live clock tick, a capture anomaly), which all workers (or worker 0) handle under that
//!   reserved index. Every index belongs to exactly one job stream position.
//! * Watermarks: each job carries `upto`, the next index the source will hand out; a worker that
//!   finished a job has produced everything it ever will for indices below `upto`. The source
//!   sends every worker a job (possibly without packets) at least every [`WATERMARK_EVERY`]
//!   indices, and on every control step, so the watermarks of idle workers move too.
//! * Merge: the merger keeps each worker's output in a queue (already in index order) and releases
//!   items below the smallest watermark, smallest index first, worker order on equal indices (which
//!   only happens for control steps). Output is thus a pure function of the input: the same for
//!   every run, and the same records as one engine (see `Engine` docs for the one difference, the
//!   position of idle-timeout closings, which sharding cannot change in this design either).
//! * Backpressure: all channels are bounded, so memory is bounded by `workers × (FILE_JOB_QUEUE
//!   or LIVE_JOB_QUEUE) × BATCH_PACKETS` frames (recycled buffers above
//!   [`MAX_RECYCLED_FRAME_BYTES`] are freed) plus the merger's reorder queues (which hold at most
//!   what the workers produced for those frames). Reading files, the source blocks when a
//!   worker's queue is full; live ([`Mode::Live`]) it drops the batch instead and counts the
//!   frames in `channel_drops` (the kernel keeps capturing; a stall must not back up into it).

use super::{Engine, EngineConfig, EventConsumer, FileOutcome, FINISH_INDEX};
use crate::capture::file::merge::{Merge, Plan, Step};
use crate::capture::file::CaptureReader;
use crate::capture::LINKTYPE_ETHERNET;
use crate::capture::{Frame, Packet};
use crate::decode::host_pair;
use crate::event::Event;
use crate::flow::table::FlowSummary;
use crate::sink::Counters;
use crate::time::Ts;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames per job sent to one worker (amortises channel cost; small enough to keep latency low).
pub const BATCH_PACKETS: usize = 256;
/// Jobs waiting per worker before the source blocks (files): enough to ride out a slow packet,
/// few enough to keep frames in flight (and RSS) small.
pub const FILE_JOB_QUEUE: usize = 4;
/// Jobs waiting per worker before the source drops (live): a burst of ~16k frames per worker
/// is absorbed here before `channel_drops` counts anything.
pub const LIVE_JOB_QUEUE: usize = 64;
/// A recycled frame buffer larger than this is freed instead of reused: buffers only grow, and a
/// pool that once held a few offload-merged 64 KiB frames would otherwise stay that large.
pub const MAX_RECYCLED_FRAME_BYTES: usize = 4096;
/// Indices after which every worker gets a job (watermark), even one without frames.
pub const WATERMARK_EVERY: u64 = 4096;
/// Replies waiting for the merger.
pub const REPLY_QUEUE: usize = 64;
/// The merger calls [`Merged::wake`] at least this often while the run lasts.
pub const WAKE_EVERY: Duration = Duration::from_millis(100);

/// How the source treats a full worker queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Wait for the worker: every frame is processed (capture files).
    Files,
    /// Drop the batch and count its frames in `channel_drops` (live capture).
    Live,
}

/// What the merger hands the caller besides events in order.
pub trait Merged: EventConsumer {
    /// Called at least every [`WAKE_EVERY`] while the pipeline runs, between events (live: stats
    /// lines, detection clock). `status` gives the running counters.
    fn wake(&mut self, _status: &Status) {}
    /// The consumer cannot take more (e.g. its output failed): the source stops early.
    fn done(&self) -> bool {
        false
    }
}

/// Running counters, shared by all threads (read at any time; exact once the run is over).
#[derive(Debug, Default)]
pub struct Status {
    /// Frames handed to the pipeline (including those dropped on a full queue).
    pub packets: AtomicU64,
    /// Their bytes on the wire.
    pub bytes: AtomicU64,
    /// Frames dropped because a worker's queue was full ([`Mode::Live`] only).
    pub channel_drops: AtomicU64,
    /// Flows tracked per worker after its last job.
    pub flows_open: Vec<AtomicU64>,
    /// Per-worker frames, bytes and flows (live: the stats line).
    pub workers: Vec<WorkerCounts>,
    /// Set by the merger when the consumer is done; the source should stop.
    pub cancelled: AtomicBool,
}

/// One worker's running counters.
#[derive(Debug, Default)]
pub struct WorkerCounts {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    /// Flows the worker's engine has tracked since the start.
    pub flows: AtomicU64,
}

impl Status {
    pub fn flows_open(&self) -> u64 {
        self.flows_open
            .iter()
            .map(|f| f.load(Ordering::Relaxed))
            .sum()
    }
}

enum Control {
    /// End of one input whose last frame was at this time: close every flow.
    Finish(Ts),
    /// Live: time passes (close idle flows as of now).
    Tick(Ts),
    /// A capture-level problem (worker 0 reports it).
    Anomaly(Ts, String),
}

struct Job {
    packets: Vec<(u64, Packet)>,
    /// Done after the packets, under its own index.
    control: Option<(u64, Control)>,
    upto: u64,
}

// Events (up to ~400 bytes) are moved, not boxed: boxing would add an allocation per event,
// freed on another thread, which costs more than the copy.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Event(Event),
    Flow(FlowSummary),
}

/// What a worker sends the merger: its output for indices below `upto` (and all of it).
pub(super) struct Reply {
    pub worker: usize,
    pub items: Vec<(u64, Item)>,
    pub upto: u64,
    /// Sent once, when the worker ends.
    pub counters: Option<Counters>,
}

/// An engine's output, tagged with packet indices, on its way to the merger.
#[derive(Default)]
pub(super) struct Tagged(pub Vec<(u64, Item)>);

impl EventConsumer for Tagged {
    fn event(&mut self, index: u64, ev: Event) {
        self.0.push((index, Item::Event(ev)));
    }
    fn flow_ended(&mut self, index: u64, flow: &FlowSummary) {
        self.0.push((index, Item::Flow(flow.clone())));
    }
}

fn worker(
    id: usize,
    cfg: EngineConfig,
    jobs: Receiver<Job>,
    replies: Sender<Reply>,
    spent: Sender<Vec<(u64, Packet)>>,
    status: Arc<Status>,
) {
    let mut engine = Engine::new(cfg);
    for job in jobs {
        let mut out = Tagged::default();
        let mut packets = job.packets;
        for (i, p) in &packets {
            engine.process(*i, p, &mut out);
        }
        if let Some((index, c)) = job.control {
            let mut tagged = Tagged::default();
            match c {
                Control::Finish(ts) => engine.finish_at(ts, &mut tagged),
                Control::Tick(now) => engine.advance_time(now, &mut tagged),
                Control::Anomaly(ts, detail) => engine.capture_anomaly_at(ts, detail, &mut tagged),
            }
            // The engine tags end-of-input output FINISH_INDEX; here it has its own index.
            out.0.extend(
                tagged
                    .0
                    .into_iter()
                    .map(|(i, it)| (if i == FINISH_INDEX { index } else { i }, it)),
            );
        }
        if let Some(f) = status.flows_open.get(id) {
            f.store(engine.flows_open() as u64, Ordering::Relaxed);
        }
        if let Some(w) = status.workers.get(id) {
            let bytes: u64 = packets.iter().map(|(_, p)| u64::from(p.orig_len)).sum();
            w.packets.fetch_add(packets.len() as u64, Ordering::Relaxed);
            w.bytes.fetch_add(bytes, Ordering::Relaxed);
            w.flows.store(engine.flows_seen(), Ordering::Relaxed);
        }
        if !packets.is_empty() {
            // The source refills these buffers (no allocation per frame); if its return queue is
            // full, they are freed here.
            let _ = spent.try_send(std::mem::take(&mut packets));
        }
        if replies
            .send(Reply {
                worker: id,
                items: out.0,
                upto: job.upto,
                counters: None,
            })
            .is_err()
        {
            return;
        }
    }
    let _ = replies.send(Reply {
        worker: id,
        items: Vec::new(),
        upto: u64::MAX,
        counters: Some(engine.counters()),
    });
}

/// The capture thread's handle: give it frames, end of inputs, clock ticks.
pub struct Feeder {
    jobs: Vec<Sender<Job>>,
    batches: Vec<Vec<(u64, Packet)>>,
    spent: Receiver<Vec<(u64, Packet)>>,
    pool: Vec<Packet>,
    mode: Mode,
    next: u64,
    last_watermark: u64,
    /// Latest frame time of the current input.
    last_ts: Ts,
    status: Arc<Status>,
    /// The source's own counters (files, capture problems).
    pub counters: Counters,
    /// When files read through [`Self::feed_merged`] sweep every worker for idle flows.
    pacer: super::SweepPacer,
}

impl Feeder {
    /// The frame in `pkt` enters the pipeline; `pkt` gets an empty (recycled) buffer back.
    pub fn packet(&mut self, pkt: &mut Packet) {
        let n = self.jobs.len();
        let shard = if n == 1 { 0 } else { shard_of(pkt.frame(), n) };
        self.status.packets.fetch_add(1, Ordering::Relaxed);
        self.status
            .bytes
            .fetch_add(u64::from(pkt.orig_len), Ordering::Relaxed);
        self.last_ts = self.last_ts.max(pkt.ts);
        let spare = self.spare(pkt.linktype);
        let frame = std::mem::replace(pkt, spare);
        self.batches[shard].push((self.next, frame));
        self.next += 1;
        if self.batches[shard].len() >= BATCH_PACKETS {
            self.send(shard, None);
        }
        if self.next - self.last_watermark >= WATERMARK_EVERY {
            self.flush();
        }
    }

    /// Sends every worker what it has (live: call on a quiet link so output is not held back).
    pub fn flush(&mut self) {
        for w in 0..self.jobs.len() {
            self.send(w, None);
        }
        self.last_watermark = self.next;
    }

    /// End of one input: every worker closes its flows at the input's last frame time. The next
    /// input starts from a clean engine (its own clock, fragments and endpoint-mapper knowledge).
    pub fn finish_input(&mut self) {
        let ts = std::mem::replace(&mut self.last_ts, Ts(0));
        self.control_all(|| Control::Finish(ts));
    }

    /// Live: time is `now` (close flows idle past their timeouts).
    pub fn tick(&mut self, now: Ts) {
        self.control_all(|| Control::Tick(now));
    }

    /// A capture-level problem that did not stop reading (anomaly event, counted as such).
    pub fn capture_anomaly(&mut self, detail: String) {
        let index = self.reserve();
        let ts = self.last_ts;
        self.send_job(0, Some((index, Control::Anomaly(ts, detail))), true);
        self.flush();
    }

    /// Frames handed in so far.
    pub fn packets(&self) -> u64 {
        self.status.packets.load(Ordering::Relaxed)
    }

    /// The merger's consumer is done (its output failed): stop reading.
    pub fn cancelled(&self) -> bool {
        self.status.cancelled.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    fn reserve(&mut self) -> u64 {
        let i = self.next;
        self.next += 1;
        i
    }

    fn control_all(&mut self, c: impl Fn() -> Control) {
        let index = self.reserve();
        for w in 0..self.jobs.len() {
            self.send_job(w, Some((index, c())), true);
        }
        self.last_watermark = self.next;
    }

    fn send(&mut self, w: usize, control: Option<(u64, Control)>) {
        self.send_job(w, control, false);
    }

    /// `must`: never dropped (control steps), whatever the mode.
    fn send_job(&mut self, w: usize, control: Option<(u64, Control)>, must: bool) {
        let packets = std::mem::take(&mut self.batches[w]);
        let job = Job {
            packets,
            control,
            upto: self.next,
        };
        if self.mode == Mode::Files || must {
            let _ = self.jobs[w].send(job);
            return;
        }
        match self.jobs[w].try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                let lost = job.packets.len() as u64;
                self.status.channel_drops.fetch_add(lost, Ordering::Relaxed);
                self.pool.extend(job.packets.into_iter().map(|(_, p)| p));
            }
        }
    }

    fn spare(&mut self, linktype: u32) -> Packet {
        if self.pool.is_empty() {
            if let Ok(v) = self.spent.try_recv() {
                self.pool.extend(v.into_iter().map(|(_, p)| p));
            }
        }
        let mut p = self.pool.pop().unwrap_or_else(Packet::empty);
        if p.data.capacity() > MAX_RECYCLED_FRAME_BYTES {
            p.data = Vec::new();
        }
        p.linktype = linktype;
        p
    }

    /// Reads every planned file into the pipeline as one capture in time order
    /// (`capture::file::merge`), then ends the input once: flows continue across files.
    /// `on_packet` sees the number of frames handed in so far, `on_end` each file's outcome as it
    /// ends; returns how many ended with an error.
    pub fn run_merged(
        &mut self,
        plan: &Plan,
        progress: Arc<AtomicU64>,
        on_packet: &mut dyn FnMut(u64),
        on_end: &mut dyn FnMut(&FileOutcome),
    ) -> usize {
        let failed = self.feed_merged(plan, progress, on_packet, on_end);
        self.finish_input();
        failed
    }

    /// [`Self::run_merged`] without ending the input: more files may follow (`read --follow`).
    pub fn feed_merged(
        &mut self,
        plan: &Plan,
        progress: Arc<AtomicU64>,
        on_packet: &mut dyn FnMut(u64),
        on_end: &mut dyn FnMut(&FileOutcome),
    ) -> usize {
        let mut merge = Merge::new(plan, progress);
        let mut pkt = Packet::empty();
        let mut failed = 0;
        loop {
            if self.cancelled() {
                break;
            }
            match merge.next() {
                Step::Frame(frame) => {
                    if self.pacer.due(frame.ts) {
                        // Every worker looks for idle flows here (see `SweepPacer`).
                        self.tick(frame.ts);
                    }
                    pkt.copy_from(frame);
                    self.packet(&mut pkt);
                    on_packet(self.packets());
                }
                Step::Ended(end) => {
                    self.counters.add("files", 1);
                    if let Some(e) = end.error.as_ref().filter(|_| end.opened) {
                        self.capture_anomaly(e.to_string());
                    }
                    let skipped = end.unknown_interface_packets;
                    if skipped > 0 {
                        self.counters
                            .add("capture.unknown_interface_packets", skipped);
                        self.capture_anomaly(super::undescribed_interfaces(&end.path, skipped));
                    }
                    let outcome = FileOutcome::from(end);
                    failed += usize::from(outcome.error.is_some());
                    on_end(&outcome);
                }
                Step::End => break,
            }
        }
        if merge.deferred_files() > 0 {
            self.counters
                .add("capture.merge_deferred_files", merge.deferred_files());
        }
        failed
    }

    /// Reads one capture file into the pipeline, then ends it as an input ([`Self::finish_input`]).
    /// `on_packet` sees the number of frames handed in so far.
    pub fn run_file(
        &mut self,
        path: &Path,
        progress: Arc<AtomicU64>,
        on_packet: &mut dyn FnMut(u64),
    ) -> FileOutcome {
        self.counters.add("files", 1);
        let mut reader = match CaptureReader::open_with_progress(path, progress) {
            Ok(r) => r,
            Err(e) => {
                return FileOutcome {
                    path: path.to_owned(),
                    packets: 0,
                    error: Some(e),
                }
            }
        };
        let mut pkt = Packet::empty();
        let error = loop {
            if self.cancelled() {
                break None;
            }
            match reader.next_packet(&mut pkt) {
                Ok(true) => {
                    self.packet(&mut pkt);
                    on_packet(self.packets());
                }
                Ok(false) => break None,
                Err(e) => {
                    self.capture_anomaly(e.to_string());
                    break Some(e);
                }
            }
        };
        let skipped = reader.unknown_interface_packets();
        if skipped > 0 {
            self.counters
                .add("capture.unknown_interface_packets", skipped);
            self.capture_anomaly(super::undescribed_interfaces(path, skipped));
        }
        self.finish_input();
        FileOutcome {
            path: path.to_owned(),
            packets: reader.packets(),
            error,
        }
    }
}

/// The worker of a frame: a symmetric hash of its host pair (both directions, every fragment and
/// connection of two hosts on one worker), worker 0 without one. Ethernet + IPv4/IPv6 (up to two
/// VLAN tags) is read here without a full decode; anything else goes through `decode::host_pair`.
/// Both paths hash the same address bytes, so a host pair maps to one worker whichever is taken.
pub fn shard_of(pkt: Frame<'_>, n: usize) -> usize {
    let h = match fast_host_pair(pkt) {
        Some((a, b)) => pair_hash(a, b),
        None => match host_pair(pkt) {
            Some((IpAddr::V4(a), IpAddr::V4(b))) => pair_hash(&a.octets(), &b.octets()),
            Some((IpAddr::V6(a), IpAddr::V6(b))) => pair_hash(&a.octets(), &b.octets()),
            Some((a, b)) => pair_hash(&ip_bytes(a), &ip_bytes(b)),
            None => return 0,
        },
    };
    (h % n as u64) as usize
}

fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Source and destination address bytes of an Ethernet frame carrying IPv4 or IPv6.
fn fast_host_pair(pkt: Frame<'_>) -> Option<(&[u8], &[u8])> {
    if pkt.linktype != LINKTYPE_ETHERNET {
        return None;
    }
    let d = pkt.data;
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]);
    for _ in 0..2 {
        if ethertype == 0x8100 || ethertype == 0x88a8 {
            at += 4;
            ethertype = u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]);
        }
    }
    let ip = d.get(at + 2..)?;
    match ethertype {
        0x0800 if ip.first()? >> 4 == 4 => Some((ip.get(12..16)?, ip.get(16..20)?)),
        0x86dd if ip.first()? >> 4 == 6 => Some((ip.get(8..24)?, ip.get(24..40)?)),
        _ => None,
    }
}

/// FNV-1a over the smaller address, then the larger: the same for both directions.
fn pair_hash(a: &[u8], b: &[u8]) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in lo.iter().chain([0xffu8].iter()).chain(hi) {
        h ^= u64::from(*x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // FNV's low bits mix poorly; the worker is taken modulo a small n.
    h ^ (h >> 29)
}

/// Tests and small tools take the merged output as it comes.
impl Merged for super::Collect {}

/// The merger's state: one queue per worker, each in index order, and each worker's watermark.
struct Merger {
    queues: Vec<VecDeque<(u64, Item)>>,
    upto: Vec<u64>,
}

impl Merger {
    fn take(&mut self, r: Reply) {
        self.queues[r.worker].extend(r.items);
        self.upto[r.worker] = r.upto;
    }

    /// Releases every item below the lowest watermark, in (index, worker) order.
    fn release(&mut self, out: &mut dyn EventConsumer) {
        let limit = self.upto.iter().copied().min().unwrap_or(u64::MAX);
        loop {
            let mut best: Option<(u64, usize)> = None;
            for (w, q) in self.queues.iter().enumerate() {
                if let Some((i, _)) = q.front() {
                    if *i < limit && best.is_none_or(|(bi, _)| *i < bi) {
                        best = Some((*i, w));
                    }
                }
            }
            let Some((index, w)) = best else { return };
            // Everything this worker has for this index goes out together.
            while let Some((i, _)) = self.queues[w].front() {
                if *i != index {
                    break;
                }
                if let Some((i, item)) = self.queues[w].pop_front() {
                    match item {
                        Item::Event(ev) => out.event(i, ev),
                        Item::Flow(f) => out.flow_ended(i, &f),
                    }
                }
            }
        }
    }
}

/// Runs `source` on a capture thread feeding `workers` (≥ 1) engines on threads of their own, and
/// merges their output into `out` on this thread in packet order. Returns the source's value and
/// the counters of all engines plus the source's own.
pub fn run<T: Send>(
    workers: usize,
    mode: Mode,
    cfg: &EngineConfig,
    out: &mut dyn Merged,
    source: impl FnOnce(&mut Feeder) -> T + Send,
) -> (T, Counters) {
    let n = workers.max(1);
    let status = Arc::new(Status {
        flows_open: (0..n).map(|_| AtomicU64::new(0)).collect(),
        workers: (0..n).map(|_| WorkerCounts::default()).collect(),
        ..Status::default()
    });
    let (reply_tx, reply_rx) = bounded::<Reply>(REPLY_QUEUE);
    let queue = match mode {
        Mode::Files => FILE_JOB_QUEUE,
        Mode::Live => LIVE_JOB_QUEUE,
    };
    let (spent_tx, spent_rx) = bounded::<Vec<(u64, Packet)>>(n * queue);
    std::thread::scope(|s| {
        let mut jobs = Vec::with_capacity(n);
        for id in 0..n {
            let (jt, jr) = bounded::<Job>(queue);
            let (c, rt, st, stat) = (
                cfg.clone(),
                reply_tx.clone(),
                spent_tx.clone(),
                status.clone(),
            );
            std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn_scoped(s, move || worker(id, c, jr, rt, st, stat))
                .expect("spawn worker thread");
            jobs.push(jt);
        }
        drop(reply_tx);
        drop(spent_tx);
        let feeder = Feeder {
            batches: (0..n).map(|_| Vec::with_capacity(BATCH_PACKETS)).collect(),
            jobs,
            spent: spent_rx,
            pool: Vec::new(),
            mode,
            next: 0,
            last_watermark: 0,
            last_ts: Ts(0),
            status: status.clone(),
            counters: Counters::default(),
            pacer: super::SweepPacer::default(),
        };
        let capture = std::thread::Builder::new()
            .name("capture".into())
            .spawn_scoped(s, move || {
                let mut feeder = feeder;
                let value = source(&mut feeder);
                feeder.flush();
                // Dropping the feeder closes the job queues: the workers report and end.
                (value, feeder.counters)
            })
            .expect("spawn capture thread");

        let mut totals = merge(n, &reply_rx, &status, out);
        let (value, source_counters) = capture.join().expect("capture thread");
        totals.merge(&source_counters);
        (value, totals)
    })
}

/// The caller's side of a run: takes the workers' replies until every worker has hung up,
/// releases their output to `out` in packet order, wakes `out` at least every [`WAKE_EVERY`], and
/// returns the sum of the counters the workers reported when they ended.
pub(super) fn merge(
    n: usize,
    reply_rx: &Receiver<Reply>,
    status: &Status,
    out: &mut dyn Merged,
) -> Counters {
    let mut merger = Merger {
        queues: (0..n).map(|_| VecDeque::new()).collect(),
        upto: vec![0; n],
    };
    let mut totals = Counters::default();
    let mut last_wake = Instant::now();
    loop {
        match reply_rx.recv_timeout(WAKE_EVERY) {
            Ok(r) => {
                if let Some(c) = &r.counters {
                    totals.merge(c);
                }
                merger.take(r);
                // Take whatever else is waiting before merging (fewer, longer merges).
                while let Ok(r) = reply_rx.try_recv() {
                    if let Some(c) = &r.counters {
                        totals.merge(c);
                    }
                    merger.take(r);
                }
                merger.release(out);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if out.done() {
            status.cancelled.store(true, Ordering::Relaxed);
        }
        if last_wake.elapsed() >= WAKE_EVERY {
            last_wake = Instant::now();
            out.wake(status);
        }
    }
    merger.upto.iter_mut().for_each(|u| *u = u64::MAX);
    merger.release(out);
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LINKTYPE_ETHERNET;
    use crate::decode::build::*;
    use crate::event::AnomalyKind;
    use crate::pipeline::Collect;

    fn frame(
        t: u64,
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Packet {
        let data = ether(
            0x0800,
            &ipv4(src, dst, 6, &tcp(sp, 445, seq, 0, flags, payload)),
        );
        Packet {
            ts: Ts::from_secs(t),
            linktype: LINKTYPE_ETHERNET,
            orig_len: data.len() as u32,
            data,
        }
    }

    /// Many host pairs, each a connection with a hole (a gap anomaly when it closes) and data.
    fn traffic() -> Vec<Packet> {
        let mut v = Vec::new();
        for k in 0..40u8 {
            let c = [10, 0, 0, k];
            let s = [10, 0, 1, k % 7];
            v.push(frame(1, c, s, 50000 + u16::from(k), 100, SYN, b""));
            v.push(frame(
                2,
                c,
                s,
                50000 + u16::from(k),
                101,
                ACK,
                b"\0\0\0\x04abcd",
            ));
            v.push(frame(3, c, s, 50000 + u16::from(k), 300, ACK, b"later"));
        }
        v
    }

    fn one_engine(pkts: &[Packet]) -> Collect {
        let mut e = Engine::new(EngineConfig {
            flow_summaries: true,
            ..Default::default()
        });
        let mut c = Collect::default();
        for (i, p) in pkts.iter().enumerate() {
            e.process(i as u64, p, &mut c);
        }
        e.finish(&mut c);
        c
    }

    fn pipelined(pkts: &[Packet], n: usize) -> (Collect, Counters) {
        let cfg = EngineConfig {
            flow_summaries: true,
            ..Default::default()
        };
        let mut out = Collect::default();
        let pk = pkts.to_vec();
        let ((), counters) = run(n, Mode::Files, &cfg, &mut out, move |f| {
            for mut p in pk {
                f.packet(&mut p);
            }
            f.finish_input();
        });
        (out, counters)
    }

    fn anomalies(c: &Collect) -> Vec<String> {
        c.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Anomaly(a) => Some(format!(
                    "{:?} {:?} {}",
                    a.conn.as_ref().map(|c| c.uid),
                    a.kind,
                    a.detail
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn any_worker_count_gives_one_engines_records_in_order() {
        let pkts = traffic();
        let one = one_engine(&pkts);
        let gaps = one
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Anomaly(a) if a.kind == AnomalyKind::Gap && a.layer == "tcp"))
            .count();
        assert_eq!(gaps, 40, "every connection has a hole");
        for n in [1, 2, 3, 8] {
            let (c, counters) = pipelined(&pkts, n);
            assert_eq!(counters.get("packets"), pkts.len() as u64);
            assert_eq!(counters.get("flows"), 40);
            assert_eq!(c.flows.len(), 40, "workers {n}");
            // Same multiset of records; in index order.
            let mut a = anomalies(&one);
            let mut b = anomalies(&c);
            a.sort();
            b.sort();
            assert_eq!(a, b, "workers {n}");
            assert!(
                c.events.windows(2).all(|w| w[0].0 <= w[1].0),
                "index order, workers {n}"
            );
        }
        // Deterministic: two runs with the same worker count agree exactly, record for record.
        let (x, _) = pipelined(&pkts, 3);
        let (y, _) = pipelined(&pkts, 3);
        assert_eq!(anomalies(&x), anomalies(&y));
    }

    #[test]
    fn both_directions_and_both_paths_shard_alike() {
        let there = frame(1, [10, 0, 0, 1], [10, 0, 1, 2], 50000, 1, ACK, b"x");
        let back = {
            let data = ether(
                0x0800,
                &ipv4(
                    [10, 0, 1, 2],
                    [10, 0, 0, 1],
                    6,
                    &tcp(445, 50000, 1, 0, ACK, b"y"),
                ),
            );
            Packet {
                ts: Ts(0),
                linktype: LINKTYPE_ETHERNET,
                orig_len: data.len() as u32,
                data,
            }
        };
        // The same packet as raw IPv4 (no Ethernet) takes the decoder's path.
        let raw = Packet {
            linktype: crate::capture::LINKTYPE_RAW,
            data: there.data[14..].to_vec(),
            ..there.clone()
        };
        assert!(fast_host_pair(there.frame()).is_some() && fast_host_pair(raw.frame()).is_none());
        let mut spread = [0usize; 4];
        for n in 2..=4 {
            assert_eq!(shard_of(there.frame(), n), shard_of(back.frame(), n));
            assert_eq!(shard_of(there.frame(), n), shard_of(raw.frame(), n));
        }
        for k in 0..64u8 {
            spread[shard_of(
                frame(1, [10, 0, 0, k], [10, 0, 1, 1], 1, 1, ACK, b"").frame(),
                4,
            )] += 1;
        }
        assert!(
            spread.iter().all(|c| *c >= 8),
            "host pairs spread over workers: {spread:?}"
        );
        let junk = Packet {
            data: vec![0; 5],
            ..there.clone()
        };
        assert_eq!(shard_of(junk.frame(), 3), 0);
    }

    #[test]
    fn control_steps_are_ordered_between_inputs() {
        let pkts = traffic();
        let cfg = EngineConfig::default();
        let mut out = Collect::default();
        let pk = pkts.clone();
        let (marks, _) = run(2, Mode::Files, &cfg, &mut out, move |f| {
            let mut marks = Vec::new();
            for _input in 0..2 {
                for p in &pk {
                    f.packet(&mut p.clone());
                }
                marks.push(f.next);
                f.finish_input();
            }
            marks
        });
        // Each input's gaps (closed at its finish) come out under its own finish index, first
        // input's before any of the second's.
        let gap_idx: Vec<u64> = out
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Anomaly(a) if a.kind == AnomalyKind::Gap && a.layer == "tcp"))
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(gap_idx.len(), 80);
        assert!(gap_idx[..40].iter().all(|i| *i == marks[0]));
        assert!(gap_idx[40..].iter().all(|i| *i == marks[1]));
    }

    #[test]
    fn live_mode_drops_when_a_worker_is_behind_and_counts_it() {
        // Whether a queue fills depends on thread timing; the accounting must hold either way.
        let cfg = EngineConfig::default();
        let mut out = Collect::default();
        let pkts = traffic();
        let (status, counters) = run(1, Mode::Live, &cfg, &mut out, move |f| {
            for _ in 0..50 {
                for p in &pkts {
                    f.packet(&mut p.clone());
                }
            }
            f.finish_input();
            f.status().clone()
        });
        let handed = status.packets.load(Ordering::Relaxed);
        let dropped = status.channel_drops.load(Ordering::Relaxed);
        assert_eq!(handed, 50 * 120);
        assert_eq!(
            counters.get("packets") + dropped,
            handed,
            "every frame processed or counted as dropped"
        );
    }
}
