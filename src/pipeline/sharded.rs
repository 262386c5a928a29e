//! Several engines, one per thread, fed packets sharded by a symmetric hash of the host pair (so
//! both directions, every fragment and every connection between two hosts meet on one engine).
//!
//! Deterministic by construction: the reader hands out packets in rounds of [`ROUND_PACKETS`];
//! after each round every worker answers with the events it produced, tagged with packet indices,
//! and the round's events are released in packet order. The results therefore do not depend on
//! thread timing, and match one engine's, except that a flow which times out mid-input is noticed
//! at its own shard's next packet, so its closing events may sit at another position in the
//! stream (same records). Caps such as MAX_FLOWS apply per worker. (A round is a barrier; issue 6
//! may replace it with a streaming k-way merge and a capture thread.)

use super::{Engine, EngineConfig, EventConsumer, FileOutcome};
use crate::capture::file::CaptureReader;
use crate::capture::Packet;
use crate::decode::{host_pair, host_pair_hash};
use crate::event::{Anomaly, AnomalyKind, Event};
use crate::flow::table::FlowSummary;
use crate::sink::Counters;
use crate::time::Ts;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Packets read before the workers' results are merged and released.
pub const ROUND_PACKETS: usize = 4096;

enum Job {
    Packets(Vec<(u64, Packet)>),
    /// End of one input (whose last packet was at this time): close every flow.
    Finish(Ts),
    /// End of the run: report counters and stop.
    Stop,
}

#[derive(Default)]
struct Reply {
    events: Vec<(u64, Event)>,
    flows: Vec<(u64, FlowSummary)>,
    counters: Option<Counters>,
}

impl EventConsumer for Reply {
    fn event(&mut self, index: u64, ev: Event) {
        self.events.push((index, ev));
    }
    fn flow_ended(&mut self, index: u64, flow: &FlowSummary) {
        self.flows.push((index, flow.clone()));
    }
}

fn worker(cfg: EngineConfig, jobs: Receiver<Job>, replies: Sender<Reply>) {
    let mut engine = Engine::new(cfg);
    for job in jobs {
        let mut r = Reply::default();
        match job {
            Job::Packets(batch) => {
                for (i, p) in &batch {
                    engine.process(*i, p, &mut r);
                }
            }
            Job::Finish(ts) => engine.finish_at(ts, &mut r),
            Job::Stop => {
                r.counters = Some(engine.counters().clone());
                let _ = replies.send(r);
                return;
            }
        }
        if replies.send(r).is_err() {
            return;
        }
    }
}

/// N engines on N threads for the duration of a run.
pub struct Workers {
    jobs: Vec<Sender<Job>>,
    replies: Vec<Receiver<Reply>>,
    /// Counters of the reader itself (files).
    pub reader_counters: Counters,
}

impl Workers {
    /// Run `body` with `n` (≥ 1) worker engines; returns the body's value and the summed counters.
    pub fn scope<T>(n: usize, cfg: &EngineConfig, body: impl FnOnce(&mut Workers) -> T) -> (T, Counters) {
        let n = n.max(1);
        std::thread::scope(|s| {
            let mut w = Workers {
                jobs: Vec::new(),
                replies: Vec::new(),
                reader_counters: Counters::default(),
            };
            for _ in 0..n {
                let (jt, jr) = bounded::<Job>(2);
                let (rt, rr) = bounded::<Reply>(2);
                let c = cfg.clone();
                s.spawn(move || worker(c, jr, rt));
                w.jobs.push(jt);
                w.replies.push(rr);
            }
            let value = body(&mut w);
            let mut total = w.reader_counters.clone();
            for j in &w.jobs {
                let _ = j.send(Job::Stop);
            }
            for r in &w.replies {
                if let Ok(Reply {
                    counters: Some(c), ..
                }) = r.recv()
                {
                    total.merge(&c);
                }
            }
            (value, total)
        })
    }

    fn round(&mut self, batches: Vec<Vec<(u64, Packet)>>, out: &mut dyn EventConsumer) {
        for (j, b) in self.jobs.iter().zip(batches) {
            let _ = j.send(Job::Packets(b));
        }
        self.collect(out);
    }

    fn finish(&mut self, ts: Ts, out: &mut dyn EventConsumer) {
        for j in &self.jobs {
            let _ = j.send(Job::Finish(ts));
        }
        self.collect(out);
    }

    /// One reply from every worker, released in packet order (worker order within an index,
    /// which only happens for end-of-input events).
    fn collect(&mut self, out: &mut dyn EventConsumer) {
        let mut events = Vec::new();
        let mut flows = Vec::new();
        for r in &self.replies {
            if let Ok(reply) = r.recv() {
                events.extend(reply.events);
                flows.extend(reply.flows);
            }
        }
        events.sort_by_key(|(i, _)| *i);
        flows.sort_by_key(|(i, _)| *i);
        for (i, ev) in events {
            out.event(i, ev);
        }
        for (i, f) in flows {
            out.flow_ended(i, &f);
        }
    }

    /// Read one file through the workers (the sharded counterpart of [`super::run_file`]).
    pub fn run_file(
        &mut self,
        path: &Path,
        index: &mut u64,
        progress: Arc<AtomicU64>,
        out: &mut dyn EventConsumer,
        on_packet: &mut dyn FnMut(u64),
    ) -> FileOutcome {
        self.reader_counters.add("files", 1);
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
        let n = self.jobs.len();
        let mut batches: Vec<Vec<(u64, Packet)>> = (0..n).map(|_| Vec::new()).collect();
        let mut in_round = 0usize;
        let mut pkt = Packet::empty();
        let mut last_ts = Ts(0);
        let error = loop {
            match reader.next_packet(&mut pkt) {
                Ok(true) => {
                    let shard =
                        host_pair(&pkt).map_or(0, |(a, b)| (host_pair_hash(a, b) % n as u64) as usize);
                    last_ts = last_ts.max(pkt.ts);
                    batches[shard].push((*index, std::mem::replace(&mut pkt, Packet::empty())));
                    *index += 1;
                    on_packet(*index);
                    in_round += 1;
                    if in_round == ROUND_PACKETS {
                        let full = std::mem::replace(&mut batches, (0..n).map(|_| Vec::new()).collect());
                        self.round(full, out);
                        in_round = 0;
                    }
                }
                Ok(false) => break None,
                Err(e) => break Some(e),
            }
        };
        let rest = std::mem::take(&mut batches);
        self.round(rest, out);
        let mut capture_anomaly = |detail: String, counters: &mut Counters| {
            counters.add("anomaly.capture", 1);
            let a = Anomaly {
                ts: last_ts,
                conn: None,
                kind: AnomalyKind::Capture,
                layer: "capture",
                cap: None,
                detail,
            };
            out.event(*index, Event::Anomaly(a));
        };
        if let Some(e) = &error {
            capture_anomaly(e.to_string(), &mut self.reader_counters);
        }
        let skipped = reader.unknown_interface_packets();
        if skipped > 0 {
            self.reader_counters
                .add("capture.unknown_interface_packets", skipped);
            capture_anomaly(
                super::undescribed_interfaces(path, skipped),
                &mut self.reader_counters,
            );
        }
        self.finish(last_ts, out);
        FileOutcome {
            path: path.to_owned(),
            packets: reader.packets(),
            error,
        }
    }
}
