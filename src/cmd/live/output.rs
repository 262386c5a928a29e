//! The merger's side of `live`: detection over the merged events, the alert and event writers
//! (reopened on SIGHUP, rotated by size or age), and the counter lines on stderr.

use super::{say, wall_now, SocketStatus, TICK_EVERY};
use crate::capture::live::ReopenFlag;
use crate::config::CaptureMode;
use crate::detect::Detection;
use crate::event::alert::Alert;
use crate::event::Event;
use crate::flow::table::FlowSummary;
use crate::output::formats::Formats;
use crate::output::json::JsonLines;
use crate::pipeline::stream::{Merged, Status};
use crate::pipeline::EventConsumer;
use crate::time::Ts;
use serde::Serialize;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// One counter line on stderr (`{"log":"stats",...}`); the one with `final: true` is the summary
/// at exit. Totals first, then per socket and per worker.
#[derive(Serialize)]
struct StatsLine<'a> {
    log: &'static str,
    ts: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor: Option<&'a str>,
    /// The interfaces, comma-separated.
    interface: &'a str,
    capture: CaptureMode,
    #[serde(rename = "final")]
    is_final: bool,
    packets: u64,
    bytes: u64,
    kernel_received: u64,
    kernel_dropped: u64,
    kernel_if_dropped: u64,
    ring_freezes: u64,
    channel_drops: u64,
    flows: u64,
    flows_open: u64,
    rss_bytes: u64,
    alerts: u64,
    technique_alerts: u64,
    sockets: Vec<SocketLine<'a>>,
    workers: Vec<WorkerLine>,
}

#[derive(Serialize)]
struct SocketLine<'a> {
    interface: &'a str,
    worker: usize,
    received: u64,
    kernel_dropped: u64,
    if_dropped: u64,
    ring_freezes: u64,
    frames: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct WorkerLine {
    worker: usize,
    packets: u64,
    bytes: u64,
    flows: u64,
    flows_open: u64,
}

pub(super) struct LiveOutput {
    pub interfaces: String,
    pub sensor: Option<String>,
    pub capture: CaptureMode,
    pub events: Option<JsonLines>,
    pub alerts: AlertOut,
    /// Stamp (`--sensor-name`), `--log-dir`, `--eve`.
    pub formats: Formats,
    pub detection: Detection,
    pub pending: Vec<Alert>,
    /// The first failed write of the events file.
    pub write_error: Option<(String, io::Error)>,
    pub sockets: Arc<Vec<SocketStatus>>,
    pub reopen: ReopenFlag,
    pub stats_every: Duration,
    pub next_stats: Instant,
    pub next_tick: Instant,
}

/// The alert file and what was written to it.
pub(super) struct AlertOut {
    pub file: JsonLines,
    pub written: u64,
    pub technique: u64,
    pub error: Option<(String, io::Error)>,
}

impl AlertOut {
    pub fn new(file: JsonLines) -> AlertOut {
        AlertOut {
            file,
            written: 0,
            technique: 0,
            error: None,
        }
    }

    /// Writes and drains `pending` (stamped, and to `--log-dir` / `--eve`), counting what was
    /// written.
    fn write_all(&mut self, pending: &mut Vec<Alert>, formats: &mut Formats) {
        for alert in pending.drain(..) {
            if matches!(alert, Alert::Technique(_)) {
                self.technique += 1;
            }
            self.written += 1;
            if let Err(e) = self.file.write(&formats.stamp.alert(&alert)) {
                self.error.get_or_insert((self.file.path().to_owned(), e));
            }
            if let Err(e) = formats.alert(&alert) {
                self.error.get_or_insert(e);
            }
        }
    }
}

impl LiveOutput {
    fn write_pending(&mut self) {
        self.alerts.write_all(&mut self.pending, &mut self.formats);
    }

    /// The JSON lines files (`--events`, `--alerts`, `--eve`); `--log-dir` is `formats.log_dir`.
    fn writers(&mut self) -> impl Iterator<Item = &mut JsonLines> {
        [
            self.events.as_mut(),
            Some(&mut self.alerts.file),
            self.formats.eve.as_mut().map(|e| e.file()),
        ]
        .into_iter()
        .flatten()
    }

    /// Open attack instances and host summaries become alerts, written in batches as they come
    /// (a long run may have summaries for many hosts); then every writer is flushed.
    pub fn finish(&mut self) {
        let (alerts, formats) = (&mut self.alerts, &mut self.formats);
        self.detection
            .finish_with(&mut self.pending, &mut |p| alerts.write_all(p, formats));
        self.write_pending();
        if let Err(e) = self.formats.finish() {
            self.write_error.get_or_insert(e);
        }
        let mut failed = None;
        for w in self.writers() {
            if let Err(e) = w.flush() {
                failed.get_or_insert((w.path().to_owned(), e));
            }
        }
        if let Some(f) = failed {
            self.write_error.get_or_insert(f);
        }
    }

    /// SIGHUP: every file is reopened at its path. Detection state is not touched: an attack
    /// still open keeps its pending alert, which goes to the new file when it closes.
    fn reopen_outputs(&mut self) {
        let mut done = Vec::new();
        for w in self.writers() {
            match w.reopen() {
                Ok(()) => done.push(w.path().to_owned()),
                Err(e) => say(format_args!(
                    "{}: cannot reopen ({e}); still writing the old file",
                    w.path()
                )),
            }
        }
        if let Some(d) = self.formats.log_dir.as_mut() {
            let name = d.dir().display().to_string();
            match d.reopen() {
                Ok(()) => done.push(format!("{name}/*.log")),
                Err(e) => say(format_args!("{name}: cannot reopen ({e})")),
            }
        }
        if !done.is_empty() {
            say(format_args!("SIGHUP: reopened {}", done.join(", ")));
        }
    }

    fn rotate_due_outputs(&mut self) {
        for w in self.writers() {
            if w.rotation_due() {
                match w.rotate() {
                    Ok(Some(aside)) => {
                        say(format_args!("{}: rotated to {}", w.path(), aside.display()))
                    }
                    Ok(None) => {}
                    Err(e) => say(format_args!("{}: cannot rotate: {e}", w.path())),
                }
            }
        }
        if let Some(d) = self.formats.log_dir.as_mut() {
            match d.rotate_due() {
                Ok(moved) => {
                    for p in moved {
                        say(format_args!("{}: rotated", p.display()))
                    }
                }
                Err(e) => say(format_args!("{}: cannot rotate: {e}", d.dir().display())),
            }
        }
    }

    pub fn stats_line(&self, status: &Status, is_final: bool) {
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let sockets: Vec<SocketLine<'_>> = self
            .sockets
            .iter()
            .map(|s| SocketLine {
                interface: &s.interface,
                worker: s.worker,
                received: load(&s.received),
                kernel_dropped: load(&s.kernel_dropped),
                if_dropped: load(&s.if_dropped),
                ring_freezes: load(&s.ring_freezes),
                frames: load(&s.frames),
                bytes: load(&s.bytes),
            })
            .collect();
        let workers: Vec<WorkerLine> = status
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerLine {
                worker: i,
                packets: load(&w.packets),
                bytes: load(&w.bytes),
                flows: load(&w.flows),
                flows_open: status.flows_open.get(i).map_or(0, load),
            })
            .collect();
        let sum = |f: fn(&SocketLine<'_>) -> u64| sockets.iter().map(f).sum::<u64>();
        let line = StatsLine {
            log: "stats",
            ts: wall_now(),
            sensor: self.sensor.as_deref(),
            interface: &self.interfaces,
            capture: self.capture,
            is_final,
            packets: load(&status.packets),
            bytes: load(&status.bytes),
            kernel_received: sum(|s| s.received),
            kernel_dropped: sum(|s| s.kernel_dropped),
            kernel_if_dropped: sum(|s| s.if_dropped),
            ring_freezes: sum(|s| s.ring_freezes),
            channel_drops: load(&status.channel_drops),
            flows: workers.iter().map(|w| w.flows).sum(),
            flows_open: status.flows_open(),
            rss_bytes: rss_bytes(),
            alerts: self.alerts.written,
            technique_alerts: self.alerts.technique,
            sockets,
            workers,
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
        if self.reopen.take() {
            self.reopen_outputs();
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK_EVERY;
            self.detection.tick(wall_now(), &mut self.pending);
            self.write_pending();
            for w in self.writers() {
                let _ = w.flush();
            }
            let _ = self.formats.flush();
            self.rotate_due_outputs();
        }
        if now >= self.next_stats {
            self.next_stats = now + self.stats_every;
            self.stats_line(status, false);
        }
    }
    fn done(&self) -> bool {
        self.write_error.is_some() || self.alerts.error.is_some()
    }
}
