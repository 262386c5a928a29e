//! Capture → decode → flows → parsers → events, for one worker ([`Engine`]), and the loop that
//! feeds it capture files ([`run_files`]).
//!
//! Multi-worker design (issue 6, [`stream`]): a capture thread assigns every packet a global index
//! and a shard (`decode::host_pair` + `decode::host_pair_hash` % N, so both directions, every
//! fragment and every connection between two hosts land on one worker); each worker owns an
//! `Engine` and calls `process(index, pkt, consumer)`. Events reach the consumer tagged with the
//! index of the packet that produced them (events from `finish` carry `u64::MAX`, which the
//! stream pipeline replaces by the index it reserved for the end of that input), so a merger
//! restores packet order across workers with a k-way merge on (index, worker).

pub mod files;
pub mod shards;
pub mod stream;

use crate::app::{AppFactory, EpmEndpoints};
use crate::capture::file::merge::{FileEnd, Merge, Plan, Step};
use crate::capture::file::{CaptureError, CaptureReader};
use crate::capture::{Frame, Packet};
use crate::decode::{Decoded, Decoder};
use crate::event::{AnomalyKind, Event};
use crate::flow::policy::HostPolicies;
use crate::flow::table::{FlowSummary, FlowTable};
use crate::flow::ParserFactory;
use crate::kerberos::exchange::KdcUdp;
use crate::sink::{Counters, Sink};
use crate::smb::SmbShared;
use crate::time::Ts;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use stream::Merged;

/// Index given to events produced at the end of input (after every packet).
pub const FINISH_INDEX: u64 = u64::MAX;

/// Where an engine's output goes: events in packet order, and (if asked) ended flows.
///
/// Detection plugs in as (or inside) a consumer: it sees every event in order.
pub trait EventConsumer {
    /// `index` is the packet that produced the event ([`FINISH_INDEX`] at the end of input).
    fn event(&mut self, index: u64, ev: Event);
    /// A flow ended (only when [`EngineConfig::flow_summaries`] is on).
    fn flow_ended(&mut self, _index: u64, _flow: &FlowSummary) {}
}

/// Collects everything (tests, small tools).
#[derive(Default, Debug)]
pub struct Collect {
    pub events: Vec<(u64, Event)>,
    pub flows: Vec<FlowSummary>,
}

impl EventConsumer for Collect {
    fn event(&mut self, index: u64, ev: Event) {
        self.events.push((index, ev));
    }
    fn flow_ended(&mut self, _index: u64, flow: &FlowSummary) {
        self.flows.push(flow.clone());
    }
}

#[derive(Clone, Default)]
pub struct EngineConfig {
    pub smb: SmbShared,
    /// Report a [`FlowSummary`] for every flow that ends.
    pub flow_summaries: bool,
    /// Override of `flow::table::MAX_FLOWS` (None: the default).
    pub max_flows: Option<usize>,
    /// Per-target policies by receiving address (`Rules::hosts`, from `rules/hosts.toml`).
    pub hosts: Arc<HostPolicies>,
}

/// One worker's whole state.
pub struct Engine {
    decoder: Decoder,
    flows: FlowTable,
    factory: Box<dyn ParserFactory>,
    /// Endpoints learned from endpoint-mapper answers (shared with [`AppFactory`]).
    epm: Option<Rc<RefCell<EpmEndpoints>>>,
    sink: Sink,
    /// Kerberos over UDP (the only UDP read): its request ↔ reply pairing.
    kdc_udp: KdcUdp,
    last_ts: Ts,
    /// Frames and bytes seen: plain fields, not named counters, because they change on every
    /// packet (a named counter is a map lookup); folded in by [`Engine::counters`].
    packets: u64,
    bytes: u64,
}

impl Engine {
    /// An engine with the sensor's parsers (SMB, DCE-RPC).
    pub fn new(cfg: EngineConfig) -> Engine {
        let mut smb = cfg.smb.clone();
        // A multichannel registry of its own: a session's channels join the same host pair, so
        // they meet on one worker; sharing one registry between workers would only make them
        // contend for its lock (and its caps would not be per worker, as documented).
        smb.names = Default::default();
        let factory = AppFactory::new(smb);
        let epm = factory.epm.clone();
        let mut e = Engine::with_factory(cfg, Box::new(factory));
        e.epm = Some(epm);
        e
    }

    /// An engine with another parser factory (tests, tools that want raw streams).
    pub fn with_factory(cfg: EngineConfig, factory: Box<dyn ParserFactory>) -> Engine {
        let mut flows = match cfg.max_flows {
            Some(n) => FlowTable::with_max_flows(n),
            None => FlowTable::new(),
        };
        flows.keep_summaries = cfg.flow_summaries;
        flows.set_hosts(cfg.hosts.clone());
        let mut decoder = Decoder::new();
        decoder.set_hosts(cfg.hosts);
        Engine {
            decoder,
            flows,
            factory,
            epm: None,
            sink: Sink::new(),
            kdc_udp: KdcUdp::default(),
            last_ts: Ts(0),
            packets: 0,
            bytes: 0,
        }
    }

    /// One captured frame.
    pub fn process(&mut self, index: u64, pkt: &Packet, out: &mut dyn EventConsumer) {
        self.process_frame(index, pkt.frame(), out);
    }

    /// One captured frame, borrowed (from a reader's buffer: no copy).
    pub fn process_frame(&mut self, index: u64, pkt: Frame<'_>, out: &mut dyn EventConsumer) {
        self.packets += 1;
        self.bytes += u64::from(pkt.orig_len);
        if pkt.ts > self.last_ts {
            self.last_ts = pkt.ts;
        }
        match self.decoder.decode_any(pkt, &mut self.sink) {
            Some(Decoded::Tcp(seg)) => {
                self.flows
                    .segment(pkt.ts, &seg, self.factory.as_mut(), &mut self.sink)
            }
            Some(Decoded::Udp(dg)) => {
                self.kdc_udp.checksums = self.flows.policy.checksums;
                self.kdc_udp.datagram(pkt.ts, &dg, &mut self.sink)
            }
            None => {}
        }
        self.drain(index, out);
    }

    /// A capture-level problem that did not stop reading (e.g. a truncated last record).
    pub fn capture_anomaly(&mut self, index: u64, detail: String, out: &mut dyn EventConsumer) {
        self.sink
            .anomaly(self.last_ts, None, AnomalyKind::Capture, "capture", detail);
        self.drain(index, out);
    }

    /// A capture-level problem seen by a reader that is not this engine's (the stream pipeline's
    /// capture thread), at the input's time `ts`; tagged [`FINISH_INDEX`].
    pub fn capture_anomaly_at(&mut self, ts: Ts, detail: String, out: &mut dyn EventConsumer) {
        self.sink
            .anomaly(ts, None, AnomalyKind::Capture, "capture", detail);
        self.drain(FINISH_INDEX, out);
    }

    /// Time passes without packets (live capture): close flows idle past their timeouts as of `now`.
    pub fn advance_time(&mut self, now: Ts, out: &mut dyn EventConsumer) {
        self.flows
            .expire(now, self.factory.as_mut(), &mut self.sink);
        self.drain(FINISH_INDEX, out);
    }

    /// Capture time `now` reached (a [`SweepPacer`] said so): close flows idle past their timeouts,
    /// output tagged `index`.
    pub fn pass_time(&mut self, index: u64, now: Ts, out: &mut dyn EventConsumer) {
        self.flows
            .expire(now, self.factory.as_mut(), &mut self.sink);
        self.drain(index, out);
    }

    /// End of input: close every flow (parsers flush what they hold). The engine can be reused.
    pub fn finish(&mut self, out: &mut dyn EventConsumer) {
        self.finish_at(self.last_ts, out);
    }

    /// End of input whose last packet was at `ts` (sharded engines close at the input's time,
    /// not at the last packet their own shard saw, so results do not depend on sharding).
    pub fn finish_at(&mut self, ts: Ts, out: &mut dyn EventConsumer) {
        let at = self.last_ts.max(ts);
        self.flows.finish(at, self.factory.as_mut(), &mut self.sink);
        self.kdc_udp.finish(&mut self.sink);
        self.drain(FINISH_INDEX, out);
        // Each input is its own world: its clock, its fragments, what the endpoint mapper said.
        self.last_ts = Ts(0);
        self.decoder.reset();
        if let Some(epm) = &self.epm {
            *epm.borrow_mut() = EpmEndpoints::default();
        }
    }

    /// Every named counter, with the frame and byte totals.
    pub fn counters(&self) -> Counters {
        let mut c = self.sink.counters.clone();
        c.add("packets", self.packets);
        c.add("bytes", self.bytes);
        c
    }

    /// Flows tracked since the start (or the last reset of the counters: never).
    pub fn flows_seen(&self) -> u64 {
        self.sink.counters.get("flows")
    }

    /// Flows tracked right now.
    pub fn flows_open(&self) -> usize {
        self.flows.len()
    }

    fn drain(&mut self, index: u64, out: &mut dyn EventConsumer) {
        if let Some(epm) = &self.epm {
            let mut epm = epm.borrow_mut();
            if !epm.is_empty() {
                epm.expire(self.last_ts);
            }
        }
        // Called after every packet, and most packets leave nothing behind: test before setting
        // up the loops (about 100 instructions a packet otherwise, docs/PERF.md session 6).
        if !self.sink.learned_endpoints.is_empty() {
            self.learn_endpoints();
        }
        if !self.sink.events.is_empty() {
            for ev in self.sink.events.drain(..) {
                out.event(index, ev);
            }
        }
        if !self.flows.summaries.is_empty() {
            for f in self.flows.summaries.drain(..) {
                out.flow_ended(index, &f);
            }
        }
    }

    /// Endpoints the endpoint mapper named since the last packet go to the flow layer's table.
    fn learn_endpoints(&mut self) {
        for x in std::mem::take(&mut self.sink.learned_endpoints) {
            if let Some(epm) = &self.epm {
                if epm
                    .borrow_mut()
                    .learn(x.server, x.port, x.uuid, self.last_ts)
                {
                    let detail = "oldest learned endpoint forgotten";
                    self.sink.cap_reached(
                        "MAX_EPM_ENDPOINTS",
                        self.last_ts,
                        None,
                        "dcerpc",
                        detail,
                    );
                }
            }
        }
    }
}

/// When idle flows are looked for, as a function of frame times alone: at the first frame at least
/// `flow::table::SWEEP_EVERY_NS` after the last look (the flow table's own rule). A reader that
/// sees every frame asks it before each one and sweeps every engine there, so engines that hold
/// different shards close idle flows at the same frames, and the output does not depend on the
/// worker count (an engine left without packets of its own would otherwise keep an idle flow
/// open until the end of the input, out of time order).
#[derive(Debug, Default)]
pub struct SweepPacer {
    last: Ts,
}

impl SweepPacer {
    /// Whether the engines sweep before the frame at `ts`.
    pub fn due(&mut self, ts: Ts) -> bool {
        if ts.0
            < self
                .last
                .0
                .saturating_add(crate::flow::table::SWEEP_EVERY_NS)
        {
            return false;
        }
        self.last = ts;
        true
    }
}

/// The anomaly text for pcapng packets whose interface was never described (or beyond
/// `MAX_PCAPNG_INTERFACES`).
pub fn undescribed_interfaces(path: &Path, skipped: u64) -> String {
    format!(
        "{}: {skipped} packets name an interface the file never described; skipped",
        path.display()
    )
}

/// What happened to one input file.
#[derive(Debug)]
pub struct FileOutcome {
    pub path: PathBuf,
    pub packets: u64,
    /// The file could not be read (to the end); packets before the problem were processed.
    pub error: Option<CaptureError>,
}

impl From<FileEnd> for FileOutcome {
    fn from(e: FileEnd) -> FileOutcome {
        FileOutcome {
            path: e.path,
            packets: e.packets,
            error: e.error,
        }
    }
}

/// What the engine notes when one file of a merged run ends: the file counts, a reading error
/// or undescribed pcapng interfaces become capture anomalies (under `index`).
fn note_file_end(engine: &mut Engine, end: &FileEnd, index: u64, out: &mut dyn EventConsumer) {
    engine.sink.count("files", 1);
    if let Some(e) = end.error.as_ref().filter(|_| end.opened) {
        engine.capture_anomaly(index, e.to_string(), out);
    }
    if end.unknown_interface_packets > 0 {
        engine.sink.count(
            "capture.unknown_interface_packets",
            end.unknown_interface_packets,
        );
        engine.capture_anomaly(
            index,
            undescribed_interfaces(&end.path, end.unknown_interface_packets),
            out,
        );
    }
}

/// Read every planned file through `engine` as one capture in time order ([`merge`]): flows,
/// reassembly and SMB state continue across file boundaries and end by idle timeout in capture
/// time, or at the end of the last file. `on_end` sees each file's outcome as it ends; returns
/// how many ended with an error. `index` is the running packet index. Stops early when `out` is
/// done (its output failed).
pub fn run_merged<M: Merged>(
    engine: &mut Engine,
    plan: &Plan,
    index: &mut u64,
    progress: Arc<AtomicU64>,
    out: &mut M,
    on_packet: &mut dyn FnMut(u64),
    on_end: &mut dyn FnMut(&FileOutcome),
) -> usize {
    let mut merge = Merge::new(plan, progress);
    let mut pacer = SweepPacer::default();
    let mut failed = 0;
    loop {
        if *index % stream::WATERMARK_EVERY == 0 && out.done() {
            break;
        }
        match merge.next() {
            Step::Frame(frame) => {
                if pacer.due(frame.ts) {
                    engine.pass_time(*index, frame.ts, out);
                }
                engine.process_frame(*index, frame, out);
                *index += 1;
                on_packet(*index);
            }
            Step::Ended(end) => {
                note_file_end(engine, &end, *index, out);
                let outcome = FileOutcome::from(end);
                failed += usize::from(outcome.error.is_some());
                on_end(&outcome);
            }
            Step::End => break,
        }
    }
    if merge.deferred_files() > 0 {
        engine
            .sink
            .count("capture.merge_deferred_files", merge.deferred_files());
    }
    engine.finish(out);
    failed
}

/// Read `path` through `engine`, then close its flows (each file is its own world: captures of
/// different sessions must not merge because they reuse addresses and ports).
/// `index` is the running packet index across the whole run.
pub fn run_file(
    engine: &mut Engine,
    path: &Path,
    index: &mut u64,
    progress: Arc<AtomicU64>,
    out: &mut dyn EventConsumer,
    on_packet: &mut dyn FnMut(u64),
) -> FileOutcome {
    engine.sink.count("files", 1);
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
    let mut spare = Packet::empty();
    let error = loop {
        match reader.next_frame(&mut spare) {
            Ok(Some(frame)) => {
                engine.process_frame(*index, frame, out);
                *index += 1;
                on_packet(*index);
            }
            Ok(None) => break None,
            Err(e) => {
                engine.capture_anomaly(*index, e.to_string(), out);
                break Some(e);
            }
        }
    };
    let skipped = reader.unknown_interface_packets();
    if skipped > 0 {
        engine
            .sink
            .count("capture.unknown_interface_packets", skipped);
        engine.capture_anomaly(*index, undescribed_interfaces(path, skipped), out);
    }
    engine.finish(out);
    FileOutcome {
        path: path.to_owned(),
        packets: reader.packets(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LINKTYPE_ETHERNET;
    use crate::decode::build::*;

    #[allow(clippy::too_many_arguments)]
    fn frame(
        t: u64,
        src: [u8; 4],
        dst: [u8; 4],
        sp: u16,
        dp: u16,
        seq: u32,
        flags: u8,
        payload: &[u8],
    ) -> Packet {
        let data = ether(
            0x0800,
            &ipv4(src, dst, 6, &tcp(sp, dp, seq, 0, flags, payload)),
        );
        Packet {
            ts: Ts::from_secs(t),
            linktype: LINKTYPE_ETHERNET,
            orig_len: data.len() as u32,
            data,
        }
    }

    #[test]
    fn engine_counts_and_flushes_flows_with_events_tagged() {
        let mut e = Engine::new(EngineConfig {
            flow_summaries: true,
            ..Default::default()
        });
        let mut c = Collect::default();
        e.process(0, &frame(1, A4, B4, 50000, 445, 100, SYN, b""), &mut c);
        e.process(
            1,
            &frame(
                1,
                A4,
                B4,
                50000,
                445,
                101,
                ACK,
                b"\0\0\0\x10hello smb world!",
            ),
            &mut c,
        );
        // A hole, then data: a gap anomaly at finish.
        e.process(2, &frame(2, A4, B4, 50000, 445, 200, ACK, b"later"), &mut c);
        e.process(
            3,
            &frame(2, A4, B4, 1234, 80, 1, ACK, b"GET / HTTP/1.1\r\n\r\n"),
            &mut c,
        );
        e.finish(&mut c);
        assert_eq!(e.counters().get("packets"), 4);
        assert_eq!(e.counters().get("flows"), 2);
        assert_eq!(e.counters().get("flows.parsed"), 1);
        assert_eq!(e.counters().get("flows.ignored"), 1);
        let gaps: Vec<u64> = c
            .events
            .iter()
            .filter(|(_, ev)| matches!(ev, Event::Anomaly(a) if a.kind == AnomalyKind::Gap && a.layer == "tcp"))
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(gaps, vec![FINISH_INDEX]);
        assert_eq!(c.flows.len(), 2);
        let smb = c.flows.iter().find(|f| f.conn.resp_p == 445).unwrap();
        assert_eq!((smb.orig_bytes_delivered, smb.orig_gap_bytes), (20 + 5, 79));
        assert_eq!(e.flows_open(), 0);
    }

    #[test]
    fn endpoint_mapper_answers_teach_the_factory() {
        let mut e = Engine::new(EngineConfig::default());
        let mut c = Collect::default();
        let server: std::net::IpAddr = B4.into();
        // What the DCE-RPC layer does where it decodes an ept_map answer (dcerpc::tests covers
        // that half): the endpoint goes into the sink, not into the output.
        e.sink
            .learned_endpoints
            .push(crate::dcerpc::EpmExpectation {
                server,
                port: 49667,
                uuid: Some(crate::dcerpc::interfaces::SVCCTL.to_string()),
                endpoint: None,
            });
        e.drain(7, &mut c);
        assert!(c.events.is_empty() && e.sink.learned_endpoints.is_empty());
        assert!(e.epm.as_ref().unwrap().borrow().contains(server, 49667));
        // A later midstream connection to that port gets a parser although its bytes say nothing.
        e.process(
            8,
            &frame(
                3,
                A4,
                B4,
                50001,
                49667,
                5,
                ACK,
                b"not a PDU start, midstream!",
            ),
            &mut c,
        );
        e.finish(&mut c);
        assert_eq!(e.counters().get("flows.parsed"), 1);
    }

    #[test]
    fn advance_time_expires_idle_flows_without_packets() {
        let mut e = Engine::new(EngineConfig {
            flow_summaries: true,
            ..Default::default()
        });
        let mut c = Collect::default();
        e.process(0, &frame(1, A4, B4, 50000, 445, 100, SYN, b""), &mut c);
        e.advance_time(Ts::from_secs(2), &mut c);
        assert_eq!(e.flows_open(), 1);
        e.advance_time(Ts::from_secs(1000), &mut c);
        assert_eq!(e.flows_open(), 0);
        assert_eq!(c.flows[0].end, "idle");
    }
}
