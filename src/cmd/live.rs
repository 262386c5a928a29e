//! `psexec-sensor live -i IFACE`: a span port through the same pipeline as `read`
//! (`pipeline::stream`: capture thread → N engine workers → merge in packet order → detection →
//! alerts), with counters on stderr and a clean stop on SIGINT/SIGTERM.
//!
//! Order of start: signal handlers, open the interface (needs root / CAP_NET_RAW), open outputs
//! (may be where only root writes), drop to `--user`, then start threads. On a stop request
//! (signal, `--duration`, `--count`) the capture thread ends its input: workers close every flow
//! (parsers flush), detection writes every open attack instance and the host summaries, outputs
//! are flushed, a final counter line is written, exit 0.
//!
//! Timing in live mode: the capture thread hands frames on at least every [`FLUSH_EVERY`] and
//! lets [`TICK_EVERY`] of wall time pass in the engines (idle flows close); the merger gives the
//! detector the same clock, and a technique alert is written once its attack instance has been
//! quiet for `--alert-after` seconds (default 60) instead of the offline window of 600 s.

use crate::cli::LiveArgs;
use std::process::ExitCode;

pub fn run(args: LiveArgs) -> ExitCode {
    #[cfg(feature = "live")]
    {
        imp::run(args)
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = args;
        eprintln!(
            "psexec-sensor: live: this build has no live capture (built without feature `live`)"
        );
        ExitCode::from(super::EXIT_BAD_INPUT)
    }
}

/// Longest a captured frame waits on the capture thread before workers get it.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How often wall time is passed to the engines and the detector, and kernel counters read.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(feature = "live")]
mod imp {
    use super::{FLUSH_EVERY, TICK_EVERY};
    use crate::capture::live::{
        drop_privileges, KernelStats, LiveCapture, LiveConfig, Read, StopFlag,
    };
    use crate::capture::Packet;
    use crate::cli::LiveArgs;
    use crate::cmd::read::{default_workers, load_rules, smb_shared};
    use crate::cmd::{EXIT_BAD_INPUT, EXIT_OUTPUT_ERROR};
    use crate::detect::Detection;
    use crate::event::alert::Alert;
    use crate::event::Event;
    use crate::flow::table::FlowSummary;
    use crate::output::formats::Formats;
    use crate::output::json::JsonLines;
    use crate::pipeline::stream::{self, Feeder, Merged, Status};
    use crate::pipeline::{EngineConfig, EventConsumer};
    use crate::time::Ts;
    use serde::Serialize;
    use std::io;
    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    fn say(what: impl std::fmt::Display) {
        eprintln!("psexec-sensor: live: {what}");
    }

    fn wall_now() -> Ts {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Resident memory of this process (bytes), from /proc/self/statm; 0 where unavailable.
    pub(crate) fn rss_bytes() -> u64 {
        let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
            return 0;
        };
        let pages: u64 = s
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        pages.saturating_mul(u64::try_from(page).unwrap_or(4096))
    }

    /// One counter line on stderr (`{"log":"stats",...}`).
    #[derive(Serialize)]
    struct StatsLine<'a> {
        log: &'static str,
        ts: Ts,
        interface: &'a str,
        #[serde(rename = "final")]
        is_final: bool,
        packets: u64,
        bytes: u64,
        kernel_received: u64,
        kernel_dropped: u64,
        kernel_if_dropped: u64,
        channel_drops: u64,
        flows_open: u64,
        rss_bytes: u64,
        alerts: u64,
        technique_alerts: u64,
    }

    /// Writes and drains `pending`, counting what was written.
    fn write_alerts(
        pending: &mut Vec<Alert>,
        alerts: &mut JsonLines,
        formats: &mut Formats,
        alerts_written: &mut u64,
        technique_alerts: &mut u64,
        write_error: &mut Option<(String, io::Error)>,
    ) {
        for alert in pending.drain(..) {
            if matches!(alert, Alert::Technique(_)) {
                *technique_alerts += 1;
            }
            *alerts_written += 1;
            if let Err(e) = alerts.write(&formats.stamp.alert(&alert)) {
                write_error.get_or_insert((alerts.path().to_owned(), e));
            }
            if let Err(e) = formats.alert(&alert) {
                write_error.get_or_insert(e);
            }
        }
    }

    struct LiveOutput {
        iface: String,
        events: Option<JsonLines>,
        alerts: JsonLines,
        /// Stamp, `--log-dir`, `--eve`.
        formats: Formats,
        detection: Detection,
        pending: Vec<Alert>,
        alerts_written: u64,
        technique_alerts: u64,
        write_error: Option<(String, io::Error)>,
        kernel: Arc<Mutex<KernelStats>>,
        stats_every: Duration,
        next_stats: Instant,
        next_tick: Instant,
    }

    impl LiveOutput {
        fn write_pending(&mut self) {
            let LiveOutput {
                pending,
                alerts,
                formats,
                alerts_written,
                technique_alerts,
                write_error,
                ..
            } = self;
            write_alerts(
                pending,
                alerts,
                formats,
                alerts_written,
                technique_alerts,
                write_error,
            );
        }

        /// Open attack instances and host summaries become alerts, written in batches as they
        /// come (a long run may have summaries for many hosts).
        fn finish_detection(&mut self) {
            let LiveOutput {
                detection,
                pending,
                alerts,
                formats,
                alerts_written,
                technique_alerts,
                write_error,
                ..
            } = self;
            detection.finish_with(pending, &mut |p| {
                write_alerts(
                    p,
                    alerts,
                    formats,
                    alerts_written,
                    technique_alerts,
                    write_error,
                )
            });
            self.write_pending();
        }

        fn stats_line(&self, status: &Status, is_final: bool) {
            let k = self.kernel.lock().map(|k| *k).unwrap_or_default();
            let line = StatsLine {
                log: "stats",
                ts: wall_now(),
                interface: &self.iface,
                is_final,
                packets: status.packets.load(Ordering::Relaxed),
                bytes: status.bytes.load(Ordering::Relaxed),
                kernel_received: k.received,
                kernel_dropped: k.dropped,
                kernel_if_dropped: k.if_dropped,
                channel_drops: status.channel_drops.load(Ordering::Relaxed),
                flows_open: status.flows_open(),
                rss_bytes: rss_bytes(),
                alerts: self.alerts_written,
                technique_alerts: self.technique_alerts,
            };
            if let Ok(s) = serde_json::to_string(&line) {
                eprintln!("{s}");
            }
        }
    }

    impl EventConsumer for LiveOutput {
        fn event(&mut self, _index: u64, ev: Event) {
            if let Some(w) = self.events.as_mut() {
                if !matches!(ev, Event::SmbOpaque(_)) {
                    if let Err(e) = w.write(&self.formats.stamp.event(&ev)) {
                        let p = w.path().to_owned();
                        self.write_error.get_or_insert((p, e));
                    }
                }
            }
            if let Err(e) = self.formats.event(&ev) {
                self.write_error.get_or_insert(e);
            }
            self.detection.on_event(&ev, &mut self.pending);
            self.write_pending();
        }

        fn flow_ended(&mut self, _index: u64, flow: &FlowSummary) {
            if let Err(e) = self.formats.flow(flow) {
                self.write_error.get_or_insert(e);
            }
        }
    }

    impl Merged for LiveOutput {
        fn wake(&mut self, status: &Status) {
            let now = Instant::now();
            if now >= self.next_tick {
                self.next_tick = now + TICK_EVERY;
                self.detection.tick(wall_now(), &mut self.pending);
                self.write_pending();
                if let Some(w) = self.events.as_mut() {
                    let _ = w.flush();
                }
                let _ = self.alerts.flush();
                let _ = self.formats.flush();
            }
            if now >= self.next_stats {
                self.next_stats = now + self.stats_every;
                self.stats_line(status, false);
            }
        }
        fn done(&self) -> bool {
            self.write_error.is_some()
        }
    }

    fn open_writer(path: &Path, kind: &str) -> Result<JsonLines, ExitCode> {
        JsonLines::create_for(path, kind).map_err(|e| {
            say(format_args!("{}: cannot write: {e}", path.display()));
            ExitCode::from(EXIT_BAD_INPUT)
        })
    }

    pub fn run(args: LiveArgs) -> ExitCode {
        match run_inner(args) {
            Ok(c) | Err(c) => c,
        }
    }

    fn run_inner(args: LiveArgs) -> Result<ExitCode, ExitCode> {
        let bad = |e: &dyn std::fmt::Display| {
            say(e);
            ExitCode::from(EXIT_BAD_INPUT)
        };
        let smb = smb_shared(args.common.smb_keys.as_deref())?;
        let rules = load_rules(args.common.rules.as_deref())?;
        let stop = StopFlag::new();
        stop.install_signal_handlers().map_err(|e| bad(&e))?;
        let mut cfg = LiveConfig::new(args.interface.clone());
        cfg.bpf = args.bpf.clone();
        let cap = LiveCapture::open(&cfg, stop.clone()).map_err(|e| bad(&e))?;
        // Outputs before dropping root: they may live where only root writes.
        let events = args
            .common
            .events
            .as_deref()
            .map(|p| open_writer(p, "event"))
            .transpose()?;
        let alerts = match &args.common.alerts {
            Some(p) => open_writer(p, "alert")?,
            None => JsonLines::stdout(),
        };
        let formats = Formats::open(&args.common)
            .map_err(|(p, e)| bad(&format_args!("{p}: cannot write: {e}")))?;
        if !args.user.is_empty() {
            let d = drop_privileges(&args.user).map_err(|e| bad(&e))?;
            say(d);
        }
        let workers = args
            .common
            .workers
            .map_or_else(default_workers, usize::from);
        say(format_args!(
            "listening on {} (linktype {}, filter {:?}, {workers} worker{})",
            cap.interface(),
            cap.linktype(),
            cfg.effective_bpf().unwrap_or(""),
            if workers == 1 { "" } else { "s" }
        ));

        let mut detection = Detection::new(rules);
        detection.close_when_quiet(args.alert_after);
        let kernel = Arc::new(Mutex::new(KernelStats::default()));
        let stats_every = Duration::from_secs(args.stats_interval);
        let mut out = LiveOutput {
            iface: args.interface.clone(),
            events,
            alerts,
            formats,
            detection,
            pending: Vec::new(),
            alerts_written: 0,
            technique_alerts: 0,
            write_error: None,
            kernel: kernel.clone(),
            stats_every,
            next_stats: Instant::now() + stats_every,
            next_tick: Instant::now() + TICK_EVERY,
        };
        let max_flows = Some(crate::flow::table::flows_per_worker(workers));
        let ecfg = EngineConfig {
            smb,
            flow_summaries: out.formats.wants_flows(),
            max_flows,
        };
        let limits = Limits {
            duration: args.duration.map(Duration::from_secs),
            count: args.count,
        };
        let (result, _counters) =
            stream::run(workers, stream::Mode::Live, &ecfg, &mut out, |feeder| {
                capture_loop(cap, feeder, &kernel, limits)
            });

        // The input has ended (every flow closed by the workers): open attacks become alerts.
        out.finish_detection();
        for w in [out.events.as_mut(), Some(&mut out.alerts)]
            .into_iter()
            .flatten()
        {
            if let Err(e) = w.flush() {
                let p = w.path().to_owned();
                out.write_error.get_or_insert((p, e));
            }
        }
        if let Err(e) = out.formats.finish() {
            out.write_error.get_or_insert(e);
        }
        let (status, read_error) = result;
        out.stats_line(&status, true);
        if let Some((p, e)) = out.write_error {
            if e.kind() != io::ErrorKind::BrokenPipe {
                say(format_args!("{p}: write failed: {e}"));
            }
            return Ok(ExitCode::from(EXIT_OUTPUT_ERROR));
        }
        if let Some(e) = read_error {
            say(e);
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
        Ok(ExitCode::SUCCESS)
    }

    #[derive(Clone, Copy)]
    struct Limits {
        duration: Option<Duration>,
        count: Option<u64>,
    }

    /// The capture thread: frames into the pipeline until a stop request, a limit or a read error;
    /// then the end of input (every flow closes). Returns the status and the error, if any.
    fn capture_loop(
        mut cap: LiveCapture,
        feeder: &mut Feeder,
        kernel: &Mutex<KernelStats>,
        limits: Limits,
    ) -> (Arc<Status>, Option<crate::capture::live::LiveError>) {
        let started = Instant::now();
        let mut pkt = Packet::empty();
        let mut last_flush = Instant::now();
        let mut next_tick = Instant::now() + TICK_EVERY;
        let update_kernel = |cap: &mut LiveCapture| {
            if let (Ok(k), Ok(mut shared)) = (cap.stats(), kernel.lock()) {
                *shared = k;
            }
        };
        let error = loop {
            match cap.next_into(&mut pkt) {
                Ok(Read::Packet) => {
                    feeder.packet(&mut pkt);
                    if limits.count.is_some_and(|n| feeder.packets() >= n) {
                        cap.stop_flag().stop();
                    }
                }
                Ok(Read::Idle) => {}
                Ok(Read::Stopped) => break None,
                Err(e) => break Some(e),
            }
            let now = Instant::now();
            if now.duration_since(last_flush) >= FLUSH_EVERY {
                last_flush = now;
                feeder.flush();
            }
            if now >= next_tick {
                next_tick = now + TICK_EVERY;
                feeder.tick(wall_now());
                update_kernel(&mut cap);
                if limits.duration.is_some_and(|d| started.elapsed() >= d) {
                    cap.stop_flag().stop();
                }
            }
            if feeder.cancelled() {
                cap.stop_flag().stop();
            }
        };
        feeder.finish_input();
        update_kernel(&mut cap);
        (feeder.status().clone(), error)
    }
}
