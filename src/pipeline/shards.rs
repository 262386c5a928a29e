//! Live capture spread by the kernel (AF_PACKET fanout): N threads, each reading its own sockets
//! straight into its own [`Engine`]; the caller's thread merges their output and runs detection,
//! as `stream` does for a single capture thread.
//!
//! ```text
//!  kernel fanout (host-pair hash)      worker threads (socket rings + Engine)    caller's thread
//!  ──frame──▶ ring of worker k ──borrowed──▶ engine k ──events, tagged──Reply──▶ merge ─▶ consumer
//! ```
//!
//! The kernel already put every frame between two hosts on one worker, so no frame crosses a
//! thread. There is no global packet order to restore: each worker's output stays in its own order
//! and the merger passes it on as it comes (every reply is final: `upto` is `u64::MAX`). A slow
//! consumer blocks the workers on the bounded reply queue; the rings then fill and the kernel
//! counts the drops, which the operator sees per socket.

use super::stream::{merge, Merged, Reply, Status, Tagged, WorkerCounts, REPLY_QUEUE};
use super::{Engine, EngineConfig, FINISH_INDEX};
use crate::capture::Frame;
use crate::sink::Counters;
use crate::time::Ts;
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One worker's engine and its way to the merger.
pub struct Shard {
    id: usize,
    engine: Engine,
    out: Tagged,
    /// Index of the next frame or control step (this worker's own sequence).
    next: u64,
    /// Latest time seen (frame or clock tick): flows close at this time at the end.
    clock: Ts,
    replies: Sender<Reply>,
    status: Arc<Status>,
    /// Frames and bytes not yet added to the shared counters (added once per flush, not per frame).
    unposted: (u64, u64),
    merger_gone: bool,
}

impl Shard {
    pub fn id(&self) -> usize {
        self.id
    }

    /// The running counters shared by all workers.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// One frame, borrowed from wherever the capture keeps it.
    pub fn frame(&mut self, f: Frame<'_>) {
        self.engine.process_frame(self.next, f, &mut self.out);
        self.next += 1;
        self.clock = self.clock.max(f.ts);
        self.unposted.0 += 1;
        self.unposted.1 += u64::from(f.orig_len);
    }

    /// Time passes (close flows idle past their timeouts as of `now`) and the counters are posted.
    pub fn tick(&mut self, now: Ts) {
        self.clock = self.clock.max(now);
        let mut tagged = Tagged::default();
        self.engine.advance_time(now, &mut tagged);
        self.take_control_output(tagged);
        self.counts()
            .flows
            .store(self.engine.flows_seen(), Ordering::Relaxed);
        if let Some(f) = self.status.flows_open.get(self.id) {
            f.store(self.engine.flows_open() as u64, Ordering::Relaxed);
        }
        self.flush();
    }

    /// Sends what the engine produced to the merger and posts the frame counters.
    pub fn flush(&mut self) {
        let (packets, bytes) = std::mem::take(&mut self.unposted);
        if packets > 0 {
            self.status.packets.fetch_add(packets, Ordering::Relaxed);
            self.status.bytes.fetch_add(bytes, Ordering::Relaxed);
            let me = self.counts();
            me.packets.fetch_add(packets, Ordering::Relaxed);
            me.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if self.out.0.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.out.0);
        self.send(items, None);
    }

    /// The consumer cannot take more (its output failed), or the merger is gone: stop reading.
    pub fn cancelled(&self) -> bool {
        self.merger_gone || self.status.cancelled.load(Ordering::Relaxed)
    }

    fn counts(&self) -> &WorkerCounts {
        &self.status.workers[self.id]
    }

    /// Output of a control step is tagged [`FINISH_INDEX`]; here it gets the next index.
    fn take_control_output(&mut self, tagged: Tagged) {
        let index = self.next;
        self.next += 1;
        self.out.0.extend(
            tagged
                .0
                .into_iter()
                .map(|(i, it)| (if i == FINISH_INDEX { index } else { i }, it)),
        );
    }

    fn send(&mut self, items: Vec<(u64, super::stream::Item)>, counters: Option<Counters>) {
        let reply = Reply {
            worker: self.id,
            items,
            upto: u64::MAX,
            counters,
        };
        if self.replies.send(reply).is_err() {
            self.merger_gone = true;
        }
    }

    /// End of input: every flow closes (parsers flush), the last output and the engine's counters
    /// go to the merger.
    fn finish(mut self) {
        let mut tagged = Tagged::default();
        self.engine.finish_at(self.clock, &mut tagged);
        self.take_control_output(tagged);
        self.counts()
            .flows
            .store(self.engine.flows_seen(), Ordering::Relaxed);
        if let Some(f) = self.status.flows_open.get(self.id) {
            f.store(0, Ordering::Relaxed);
        }
        self.flush();
        let counters = self.engine.counters();
        self.send(Vec::new(), Some(counters));
    }
}

/// Runs `work` once per source on a thread of its own, each with a [`Shard`] (its engine), and
/// merges their output into `out` on this thread. `work` returns when its source is done (stop
/// request, error); its shard then closes every flow. Returns the engines' counters and each
/// `work`'s value, in source order.
pub fn run_shards<S: Send, T: Send>(
    sources: Vec<S>,
    cfg: &EngineConfig,
    out: &mut dyn Merged,
    work: impl Fn(S, &mut Shard) -> T + Sync,
) -> (Vec<T>, Arc<Status>, Counters) {
    let n = sources.len().max(1);
    let status = Arc::new(Status {
        flows_open: (0..n).map(|_| AtomicU64::new(0)).collect(),
        workers: (0..n).map(|_| WorkerCounts::default()).collect(),
        ..Status::default()
    });
    let (reply_tx, reply_rx) = bounded::<Reply>(REPLY_QUEUE);
    let work = &work;
    std::thread::scope(|s| {
        let mut handles = Vec::with_capacity(n);
        for (id, source) in sources.into_iter().enumerate() {
            let (cfg, replies, status) = (cfg.clone(), reply_tx.clone(), status.clone());
            let handle = std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn_scoped(s, move || {
                    // Built on its thread: an engine is not Send.
                    let mut shard = Shard {
                        id,
                        engine: Engine::new(cfg),
                        out: Tagged::default(),
                        next: 0,
                        clock: Ts(0),
                        replies,
                        status,
                        unposted: (0, 0),
                        merger_gone: false,
                    };
                    // A first, empty reply: the merger releases nothing until every worker spoke.
                    shard.send(Vec::new(), None);
                    let value = work(source, &mut shard);
                    shard.finish();
                    value
                })
                .expect("spawn worker thread");
            handles.push(handle);
        }
        drop(reply_tx);
        let totals = merge(n, &reply_rx, &status, out);
        let values = handles
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect();
        (values, status.clone(), totals)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{Packet, LINKTYPE_ETHERNET};
    use crate::decode::build::*;
    use crate::event::{AnomalyKind, Event};
    use crate::pipeline::Collect;

    fn frame(k: u8, seq: u32, payload: &[u8]) -> Packet {
        let data = ether(
            0x0800,
            &ipv4(
                [10, 0, 0, k],
                [10, 0, 1, 1],
                6,
                &tcp(50000, 445, seq, 0, ACK, payload),
            ),
        );
        Packet {
            ts: Ts::from_secs(u64::from(seq)),
            linktype: LINKTYPE_ETHERNET,
            orig_len: data.len() as u32,
            data,
        }
    }

    #[test]
    fn every_shards_output_reaches_the_consumer_with_its_counters() {
        // Three sources, each a set of connections with a hole (a gap anomaly when they close).
        let sources: Vec<Vec<Packet>> = (0..3u8)
            .map(|w| {
                (0..5u8)
                    .flat_map(|c| {
                        let k = w * 10 + c;
                        [frame(k, 1, b"\0\0\0\x04abcd"), frame(k, 300, b"later")]
                    })
                    .collect()
            })
            .collect();
        let mut one = Engine::new(EngineConfig::default());
        let mut alone = Collect::default();
        for (i, p) in sources.iter().flatten().enumerate() {
            one.process(i as u64, p, &mut alone);
        }
        one.finish(&mut alone);
        let mut out = Collect::default();
        let (values, status, counters) = run_shards(
            sources,
            &EngineConfig::default(),
            &mut out,
            |pkts, shard| {
                for p in &pkts {
                    shard.frame(p.frame());
                }
                shard.tick(Ts::from_secs(400));
                shard.id()
            },
        );
        assert_eq!(values, vec![0, 1, 2]);
        assert_eq!(counters.get("packets"), 30);
        assert_eq!(counters.get("flows"), 15);
        assert_eq!(status.packets.load(Ordering::Relaxed), 30);
        for w in &status.workers {
            assert_eq!(w.packets.load(Ordering::Relaxed), 10);
            assert_eq!(w.flows.load(Ordering::Relaxed), 5);
        }
        let gaps = |c: &Collect| {
            c.events
                .iter()
                .filter(|(_, e)| matches!(e, Event::Anomaly(a) if a.kind == AnomalyKind::Gap))
                .count()
        };
        assert!(gaps(&alone) >= 15, "every connection has a hole");
        assert_eq!(
            gaps(&out),
            gaps(&alone),
            "every connection closed and reported it"
        );
    }
}
