// Sketch of `src/cmd/live.rs` for the lead (issue 6). Not compiled from here: move it over the stub.
// Checked on a scratch merge of the `live` and `pipeline` branches (pipeline at 51aead6): builds
// without warnings, and in the netns setup of tests/live_netns.rs, replaying
// captures/lab/a_psexec_default.pcap, `live -i IFACE --flows` wrote the same flow summary as
// `read a_psexec_default.pcap --flows -` (123 packets, 60862/4431 bytes delivered, end fin);
// SIGTERM gave exit 0 after engine.finish; root dropped to nobody.
// Still to do: clap args in cli.rs instead of PassThroughArgs, --workers through the multi-worker
// runner (the capture thread sends each packet to the shard of its host pair), detection + alerts
// writer (tests/live_netns.rs::live_command_alerts_on_replayed_psexec expects an alert line naming
// impacket-psexec, and a stderr line naming the interface once it is open), and memory in the
// stats line.
//! `psexec-sensor live -i IFACE [--bpf EXPR] [--user USER] [--events PATH|-]`.
//! Sketch (issue 6): one engine on the capture thread; the multi-worker runner replaces the
//! `engine.process` call with a send to the shard of the packet's host pair.

use super::EXIT_BAD_INPUT;
use crate::capture::live::{drop_privileges, LiveCapture, LiveConfig, PrivilegeDrop, Read, StopFlag, DEFAULT_USER};
use crate::capture::Packet;
use crate::cli::PassThroughArgs;
use crate::event::Event;
use crate::output::json::JsonLines;
use crate::pipeline::{Engine, EngineConfig, EventConsumer};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const STATS_EVERY: Duration = Duration::from_secs(10);

struct Out {
    events: JsonLines,
    flows: bool,
}
impl EventConsumer for Out {
    fn event(&mut self, _index: u64, ev: Event) {
        // DETECTION HOOK: detector.on_event(&ev) → alerts writer.
        let _ = self.events.write(&ev);
    }
    fn flow_ended(&mut self, _index: u64, flow: &crate::flow::table::FlowSummary) {
        if self.flows {
            let _ = self.events.write(flow);
        }
    }
}

pub fn run(args: PassThroughArgs) -> ExitCode {
    let (mut iface, mut bpf, mut user, mut events) = (None, None, DEFAULT_USER.to_string(), None);
    let mut flows = false;
    let mut it = args.args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-i" | "--interface" => iface = it.next(),
            "--bpf" => bpf = it.next(),
            "--user" => user = it.next().unwrap_or_default(),
            "--events" => events = it.next(),
            "--flows" => flows = true,
            _ => {
                eprintln!("psexec-sensor: live: unknown argument {a}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    let Some(iface) = iface else {
        eprintln!("psexec-sensor: live: -i IFACE is required");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let mut cfg = LiveConfig::new(iface);
    cfg.bpf = bpf;
    let stop = StopFlag::new();
    if let Err(e) = stop.install_signal_handlers() {
        eprintln!("psexec-sensor: live: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let mut cap = match LiveCapture::open(&cfg, stop.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("psexec-sensor: live: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    // Outputs are opened before dropping root (they may live where only root writes).
    let events = match events.as_deref() {
        None | Some("-") => JsonLines::stdout(),
        Some(p) => match JsonLines::create(std::path::Path::new(p)) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("psexec-sensor: live: {p}: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
    };
    if !user.is_empty() {
        match drop_privileges(&user) {
            Ok(d @ PrivilegeDrop::UserMissing { .. }) => eprintln!("psexec-sensor: live: {d}"),
            Ok(d) => eprintln!("psexec-sensor: live: {d}"),
            Err(e) => {
                eprintln!("psexec-sensor: live: {e}");
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    eprintln!("psexec-sensor: live: listening on {} (linktype {}, filter {:?})", cap.interface(), cap.linktype(), cfg.effective_bpf());
    let mut engine = Engine::new(EngineConfig { flow_summaries: flows, ..EngineConfig::default() });
    let mut out = Out { events, flows };
    let mut pkt = Packet::empty();
    let mut index = 0u64;
    let mut next_stats = Instant::now() + STATS_EVERY;
    let status = loop {
        match cap.next_into(&mut pkt) {
            Ok(Read::Packet) => {
                engine.process(index, &pkt, &mut out);
                index += 1;
            }
            Ok(Read::Idle) => {}
            Ok(Read::Stopped) => break ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("psexec-sensor: live: {e}");
                break ExitCode::from(EXIT_BAD_INPUT);
            }
        }
        if Instant::now() >= next_stats {
            next_stats += STATS_EVERY;
            if let Ok(k) = cap.stats() {
                eprintln!("psexec-sensor: live: packets {index}, kernel received {} dropped {} if_dropped {}, flows {}", k.received, k.dropped, k.if_dropped, engine.flows_open());
            }
        }
    };
    // SIGINT/SIGTERM: close every flow so parsers flush, write what is pending.
    engine.finish(&mut out);
    let _ = out.events.flush();
    if let Ok(k) = cap.stats() {
        eprintln!("psexec-sensor: live: stopped: packets {index}, kernel received {} dropped {} if_dropped {}", k.received, k.dropped, k.if_dropped);
    }
    status
}
