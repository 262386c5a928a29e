//! Capture files on N workers with no frame hand-off: every worker reads the files itself and
//! keeps only the frames of its own host pairs.
//!
//! ```text
//!  worker k (one Engine each, k = 0..N)                         caller's thread (merger)
//!  read every file, index every frame,  ──Reply (tagged)──▶ k-way merge by index ─▶ consumer
//!  process the frames whose shard is k       bounded         (detection, output)
//! ```
//!
//! Why not one capture thread handing frames to the workers (`stream::run`, which `live` uses)?
//! For a file in the page cache, moving a frame to another core costs more than reading it again.
//! Measured on the 2-core bench machine (README, "Performance"): frames copied into jobs and sent
//! over channels cost 1.3–1.6× the CPU of one engine; one reader thread sharing 1 MiB blocks by
//! reference (no copy) still added ~0.3 s of CPU per 1.6 GB, as every frame's cache lines moved
//! from the reader's core to the worker's. Reading the file once per worker costs ~0.1 s of
//! kernel time per GB per worker, in parallel, with the bytes landing in the cache of the core
//! that uses them; a frame that is not the worker's own is skipped after a header peek
//! (`stream::shard_of`), in place in the reader's buffer (`CaptureReader::next_frame`).
//!
//! Indices need no coordination: every worker reads the same files in the same order, so frame
//! `i` is frame `i` everywhere, and the end of an input or a capture problem takes the index after
//! the last frame, the one `stream::Feeder` would reserve. The output is therefore the same
//! records in the same order as `stream::run` with the same N (and as one engine, see `stream`'s
//! notes on idle-timeout closings). Capture problems (a cut file, an unreadable one) are met by
//! every worker at the same frame; worker 0 alone reports them, counts files and drives the
//! progress callbacks.
//!
//! A stream that cannot be read twice (standard input) needs one reader, and a gzip file would be
//! decompressed by every worker (decompression then costs more than the hand-off): `read` sends
//! both through `stream::run` instead (`capture::file::read_once_is_best`).
//!
//! Memory: a worker whose shard is cheap could run far ahead of one whose shard is expensive, and
//! the merger would hold the fast worker's output until the slow one catches up. A worker more
//! than [`MAX_WORKER_LEAD`] frames ahead of the slowest waits (counted in `pipeline.lead_waits`),
//! so what the merger holds is bounded by what that many frames produce.

use super::stream::{merge, shard_of, Item, Merged, Reply, Status, Tagged, WATERMARK_EVERY};
use super::{undescribed_interfaces, Engine, EngineConfig, FileOutcome, SweepPacer};
use crate::capture::file::merge::{Merge, Plan, Step};
use crate::sink::Counters;
use crate::time::Ts;
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Frames a worker may be ahead of the slowest worker before it waits for it.
pub const MAX_WORKER_LEAD: u64 = 1 << 13;
/// Replies waiting for the merger (per run).
pub const FILES_REPLY_QUEUE: usize = 64;
/// How long a worker that is too far ahead sleeps before it looks again.
const LEAD_WAIT: Duration = Duration::from_micros(200);

/// What worker 0 tells the caller while it reads (progress bars, error lines). Called from a
/// worker thread.
pub trait FileProgress: Sync {
    /// `frames` frames of all files have been read so far (called every few thousand frames).
    fn frames(&self, _frames: u64) {}
    /// A file ended, possibly early.
    fn outcome(&self, _outcome: &FileOutcome) {}
}

/// Reads the planned files (one capture in time order, `capture::file::merge`) on `workers` (≥ 1) threads, each processing its share of host pairs,
/// and merges their output into `out` on this thread in packet order. `read_bytes` is advanced by
/// the bytes worker 0 reads. Returns the number of files that ended with an error and the
/// counters of all engines. Every path must be readable more than once (not standard input).
pub fn run_files(
    workers: usize,
    cfg: &EngineConfig,
    plan: &Plan,
    read_bytes: Arc<AtomicU64>,
    progress: &dyn FileProgress,
    out: &mut dyn Merged,
) -> (usize, Counters) {
    let n = workers.max(1);
    let status = Arc::new(Status {
        flows_open: (0..n).map(|_| AtomicU64::new(0)).collect(),
        ..Status::default()
    });
    let reached: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let (reply_tx, reply_rx) = bounded::<Reply>(FILES_REPLY_QUEUE);
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(n);
        for id in 0..n {
            let (cfg, replies, status, reached) = (
                cfg.clone(),
                reply_tx.clone(),
                status.clone(),
                reached.clone(),
            );
            let read_bytes = if id == 0 {
                read_bytes.clone()
            } else {
                Arc::new(AtomicU64::new(0))
            };
            let handle = std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn_scoped(s, move || {
                    // The engine is built on its thread: parsers share state through `Rc`.
                    let w = ShardWorker {
                        id,
                        n,
                        engine: Engine::new(cfg),
                        replies,
                        status,
                        reached,
                        read_bytes,
                        index: 0,
                        sent_upto: 0,
                        out: Tagged::default(),
                        lead_waits: 0,
                    };
                    w.run(plan, progress)
                })
                .expect("spawn worker thread");
            handles.push(handle);
        }
        drop(reply_tx);
        let totals = merge(n, &reply_rx, &status, out);
        let failed = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .sum();
        (failed, totals)
    })
}

struct ShardWorker {
    id: usize,
    n: usize,
    engine: Engine,
    replies: Sender<Reply>,
    status: Arc<Status>,
    /// Per worker: the next index it will read (for [`MAX_WORKER_LEAD`]).
    reached: Arc<Vec<AtomicU64>>,
    read_bytes: Arc<AtomicU64>,
    /// The next frame or step index, the same in every worker.
    index: u64,
    /// The watermark last sent to the merger.
    sent_upto: u64,
    out: Tagged,
    lead_waits: u64,
}

impl ShardWorker {
    /// Reads the planned files as one capture (`capture::file::merge`), processing the frames of
    /// its own host pairs. Returns the number of files that ended with an error (worker 0; 0
    /// elsewhere).
    fn run(mut self, plan: &Plan, progress: &dyn FileProgress) -> usize {
        let lead = self.id == 0;
        let mut merge = Merge::new(plan, self.read_bytes.clone());
        let mut pacer = SweepPacer::default();
        let mut failed = 0;
        let mut last_ts = Ts(0);
        loop {
            if self.index % WATERMARK_EVERY == 0 {
                self.checkpoint();
                if lead {
                    progress.frames(self.index);
                }
                if self.status.cancelled.load(Ordering::Relaxed) {
                    break;
                }
            }
            match merge.next() {
                Step::Frame(frame) => {
                    last_ts = last_ts.max(frame.ts);
                    if pacer.due(frame.ts) {
                        // Every worker looks for idle flows here, under one index.
                        let ts = frame.ts;
                        self.step(|engine, out| engine.advance_time(ts, out));
                    }
                    if self.n == 1 || shard_of(frame, self.n) == self.id {
                        self.engine.process_frame(self.index, frame, &mut self.out);
                    }
                    self.index += 1;
                }
                Step::Ended(end) => {
                    // Every worker meets the end at the same frame; worker 0 alone reports it,
                    // under the indices `stream::Feeder::run_merged` would reserve.
                    if lead {
                        self.engine.sink.count("files", 1);
                    }
                    if let Some(e) = end.error.as_ref().filter(|_| end.opened) {
                        let detail = e.to_string();
                        self.step(|engine, out| {
                            if lead {
                                engine.capture_anomaly_at(last_ts, detail, out);
                            }
                        });
                    }
                    let skipped = end.unknown_interface_packets;
                    if skipped > 0 {
                        let detail = undescribed_interfaces(&end.path, skipped);
                        self.step(|engine, out| {
                            if lead {
                                engine
                                    .sink
                                    .count("capture.unknown_interface_packets", skipped);
                                engine.capture_anomaly_at(last_ts, detail, out);
                            }
                        });
                    }
                    if lead {
                        let outcome = FileOutcome::from(end);
                        failed += usize::from(outcome.error.is_some());
                        progress.outcome(&outcome);
                    }
                }
                Step::End => break,
            }
        }
        if lead && merge.deferred_files() > 0 {
            self.engine
                .sink
                .count("capture.merge_deferred_files", merge.deferred_files());
        }
        // Every worker closes its flows at the input's last frame time, under one index.
        self.step(|engine, out| engine.finish_at(last_ts, out));
        self.checkpoint();
        // Finished: nobody waits for this worker any more.
        self.reached[self.id].store(u64::MAX, Ordering::Relaxed);
        let mut counters = self.engine.counters();
        if self.lead_waits > 0 {
            counters.add("pipeline.lead_waits", self.lead_waits);
        }
        let _ = self.replies.send(Reply {
            worker: self.id,
            items: std::mem::take(&mut self.out.0),
            upto: u64::MAX,
            counters: Some(counters),
        });
        failed
    }

    /// A control step under its own index (what the engine tags end-of-input gets that index).
    fn step(&mut self, f: impl FnOnce(&mut Engine, &mut Tagged)) {
        let index = self.index;
        self.index += 1;
        let mut tagged = Tagged::default();
        f(&mut self.engine, &mut tagged);
        self.out
            .0
            .extend(tagged.0.into_iter().map(|(_, it): (u64, Item)| (index, it)));
    }

    /// Hands the merger what this worker has produced below `index`, then waits while it is too
    /// far ahead of the slowest worker.
    fn checkpoint(&mut self) {
        if self.index > self.sent_upto {
            let items = std::mem::take(&mut self.out.0);
            let reply = Reply {
                worker: self.id,
                items,
                upto: self.index,
                counters: None,
            };
            if self.replies.send(reply).is_err() {
                self.status.cancelled.store(true, Ordering::Relaxed);
            }
            self.sent_upto = self.index;
            if let Some(f) = self.status.flows_open.get(self.id) {
                f.store(self.engine.flows_open() as u64, Ordering::Relaxed);
            }
        }
        self.reached[self.id].store(self.index, Ordering::Relaxed);
        if self.n == 1 {
            return;
        }
        loop {
            let slowest = self
                .reached
                .iter()
                .map(|r| r.load(Ordering::Relaxed))
                .min()
                .unwrap_or(0);
            if self.index.saturating_sub(slowest) <= MAX_WORKER_LEAD
                || self.status.cancelled.load(Ordering::Relaxed)
            {
                return;
            }
            self.lead_waits += 1;
            std::thread::sleep(LEAD_WAIT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::merge::plan;
    use crate::decode::build::*;
    use crate::pipeline::stream::{self, Mode};
    use crate::pipeline::Collect;
    use std::path::PathBuf;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);
    impl FileProgress for Seen {
        fn outcome(&self, o: &FileOutcome) {
            self.0.lock().unwrap().push(format!(
                "{} {:?}",
                o.packets,
                o.error.as_ref().map(|e| e.to_string())
            ));
        }
    }

    /// Classic little-endian µs pcap of Ethernet frames.
    fn pcap(frames: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        for (t, d) in frames {
            for x in [*t, 0, d.len() as u32, d.len() as u32] {
                v.extend_from_slice(&x.to_le_bytes());
            }
            v.extend_from_slice(d);
        }
        v
    }

    /// Many host pairs: a connection each, with data and a hole (a gap anomaly at its end).
    fn traffic(seed: u8) -> Vec<(u32, Vec<u8>)> {
        let mut v = Vec::new();
        for k in 0..40u8 {
            let (c, s, sp) = ([10, seed, 0, k], [10, seed, 1, k % 7], 50000 + u16::from(k));
            let f = |seq, flags, payload: &[u8]| {
                ether(
                    0x0800,
                    &ipv4(c, s, 6, &tcp(sp, 445, seq, 0, flags, payload)),
                )
            };
            v.push((1, f(100, SYN, b"")));
            v.push((2, f(101, ACK, b"\0\0\0\x04abcd")));
            v.push((3 + u32::from(k), f(300, ACK, b"later")));
        }
        v
    }

    fn files(dir: &str) -> Vec<PathBuf> {
        let d = std::env::temp_dir().join(format!("psx-files-{dir}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let a = d.join("a.pcap");
        std::fs::write(&a, pcap(&traffic(0))).unwrap();
        // Cut inside its last record: every worker sees the error, one reports it.
        let b = d.join("b.pcap");
        let bytes = pcap(&traffic(1));
        std::fs::write(&b, &bytes[..bytes.len() - 3]).unwrap();
        let c = d.join("missing.pcap");
        let e = d.join("e.pcap");
        std::fs::write(&e, pcap(&traffic(2))).unwrap();
        vec![a, b, c, e]
    }

    fn by_shards(files: &[PathBuf], n: usize) -> (Vec<String>, Counters, Vec<String>) {
        let cfg = EngineConfig {
            flow_summaries: true,
            ..Default::default()
        };
        let mut out = Collect::default();
        let seen = Seen::default();
        let plan = plan(files);
        let (failed, counters) =
            run_files(n, &cfg, &plan, Arc::new(AtomicU64::new(0)), &seen, &mut out);
        assert_eq!(failed, 2, "the cut file and the missing one");
        (render(&out), counters, seen.0.into_inner().unwrap())
    }

    fn by_feeder(files: &[PathBuf], n: usize) -> Vec<String> {
        let cfg = EngineConfig {
            flow_summaries: true,
            ..Default::default()
        };
        let mut out = Collect::default();
        let plan = plan(files);
        stream::run(n, Mode::Files, &cfg, &mut out, |feeder| {
            feeder.run_merged(&plan, Arc::new(AtomicU64::new(0)), &mut |_| {}, &mut |_| {})
        });
        render(&out)
    }

    fn render(c: &Collect) -> Vec<String> {
        let mut v: Vec<String> = c
            .events
            .iter()
            .map(|(i, e)| format!("{i} {}", serde_json::to_string(e).unwrap()))
            .collect();
        v.extend(c.flows.iter().map(|f| format!("flow {f:?}")));
        v
    }

    #[test]
    fn same_records_in_the_same_order_as_the_capture_thread_pipeline() {
        let files = files("same");
        for n in [1, 2, 3] {
            let (ours, counters, outcomes) = by_shards(&files, n);
            assert_eq!(ours, by_feeder(&files, n), "workers {n}");
            // 40 + 39 whole + 40 frames; the cut file's last frame is lost.
            assert_eq!(counters.get("packets"), 120 + 119 + 120, "workers {n}");
            assert_eq!(counters.get("files"), 4);
            assert_eq!(outcomes.len(), 4, "worker 0 alone reports outcomes");
            let cut: Vec<&String> = outcomes
                .iter()
                .filter(|o| o.contains("truncated"))
                .collect();
            assert!(cut.len() == 1 && cut[0].contains("119"), "{outcomes:?}");
            let capture = ours
                .iter()
                .filter(|l| l.contains("\"kind\":\"capture\""))
                .count();
            assert_eq!(capture, 1, "the cut file's anomaly once, workers {n}");
            let gaps = ours
                .iter()
                .filter(|l| l.contains("\"kind\":\"gap\"") && l.contains("\"layer\":\"tcp\""))
                .count();
            // Every connection has a hole but the cut file's last one, whose "later" frame is lost.
            assert_eq!(gaps, 119, "workers {n}");
        }
    }
}
