//! `psexec-sensor read FILE|DIR...`: capture files through the pipeline to events, alerts and a
//! summary.

use super::{EXIT_BAD_INPUT, EXIT_OUTPUT_ERROR};
use crate::capture::file::{expand_inputs, merge, read_once_is_best};
use crate::cli::ReadArgs;
use crate::config::{formats_setup, LiveFile};
use crate::detect::{Detection, Rules};
use crate::event::alert::Alert;
use crate::event::Event;
use crate::flow::table::FlowSummary;
use crate::output::formats::Formats;
use crate::output::json::JsonLines;
use crate::output::summary::Summary;
use crate::pipeline::files::{self, FileProgress};
use crate::pipeline::stream::{self, Merged};
use crate::pipeline::{run_merged, Engine, EngineConfig, EventConsumer, FileOutcome};
use crate::sink::Counters;
use crate::smb::SmbShared;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The stderr summary lists at most this many alerts (all of them are in the JSON output).
const MAX_SUMMARY_ALERT_LINES: usize = 200;

/// Inputs at least this large (compressed bytes) get a progress bar, on a terminal only.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

pub(crate) fn say(what: impl std::fmt::Display) {
    eprintln!("psexec-sensor: {what}");
}

/// The captures named by the command line (directories searched), and how many arguments named
/// none (each said on stderr).
pub(crate) fn capture_files(inputs: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let mut failed = 0usize;
    let mut files: Vec<PathBuf> = Vec::new();
    for input in inputs {
        let found = expand_inputs(std::slice::from_ref(input));
        if found.is_empty() {
            say(format_args!("{}: no capture files found", input.display()));
            failed += 1;
        }
        files.extend(found);
    }
    (files, failed)
}

/// Where everything the engine produces goes.
pub(super) struct ReadOutput {
    events: Option<JsonLines>,
    events_all: bool,
    alerts: JsonLines,
    flows: Option<JsonLines>,
    /// None with `--no-summary`: nothing would read it, so no event pays for it.
    summary: Option<Summary>,
    write_error: Option<(String, io::Error)>,
    detection: Detection,
    /// Alerts raised by the current event, written right away (reused buffer).
    pending: Vec<Alert>,
    /// The first [`MAX_SUMMARY_ALERT_LINES`] alerts' text, for the summary on stderr, and how
    /// many alerts there were in all.
    alert_lines: AlertLines,
    /// Stamp, `--log-dir`, `--eve`.
    formats: Formats,
    /// `--follow`: outputs are flushed as the run goes (it may last for days).
    flush_while_running: bool,
}

#[derive(Default)]
struct AlertLines {
    /// False with `--no-summary`: no line is kept.
    wanted: bool,
    lines: Vec<String>,
    total: u64,
}

/// Writes and drains `pending`, keeping the first lines of each for the summary on stderr.
fn write_alerts(
    pending: &mut Vec<Alert>,
    alerts: &mut JsonLines,
    formats: &mut Formats,
    alert_lines: &mut AlertLines,
    write_error: &mut Option<(String, io::Error)>,
) {
    for alert in pending.drain(..) {
        if !matches!(alert, Alert::HostSummary(_)) {
            alert_lines.total += 1;
            if alert_lines.wanted && alert_lines.lines.len() < MAX_SUMMARY_ALERT_LINES {
                alert_lines.lines.push(alert.human());
            }
        }
        if let Err(e) = alerts.write(&formats.stamp.alert(&alert)) {
            write_error.get_or_insert((alerts.path().to_owned(), e));
        }
        if let Err(e) = formats.alert(&alert) {
            write_error.get_or_insert(e);
        }
    }
}

impl ReadOutput {
    fn write_pending(&mut self) {
        write_alerts(
            &mut self.pending,
            &mut self.alerts,
            &mut self.formats,
            &mut self.alert_lines,
            &mut self.write_error,
        );
    }

    /// End of input: open attack instances and host summaries become alerts, written as they
    /// come rather than gathered first.
    fn finish_detection(&mut self) {
        let ReadOutput {
            detection,
            pending,
            alerts,
            formats,
            alert_lines,
            write_error,
            ..
        } = self;
        detection.finish_with(pending, &mut |p| {
            write_alerts(p, alerts, formats, alert_lines, write_error)
        });
        self.write_pending();
    }

    /// Everything written so far reaches the files.
    fn flush(&mut self) {
        for w in [
            self.events.as_mut(),
            Some(&mut self.alerts),
            self.flows.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Err(e) = w.flush() {
                let p = w.path().to_owned();
                self.write_error.get_or_insert((p, e));
            }
        }
    }

    fn record_error(&mut self, path: String, r: io::Result<()>) {
        if let Err(e) = r {
            if self.write_error.is_none() {
                self.write_error = Some((path, e));
            }
        }
    }
}

impl EventConsumer for ReadOutput {
    fn event(&mut self, _index: u64, mut ev: Event) {
        if self.write_error.is_some() {
            return;
        }
        self.detection.join(&mut ev);
        if let Some(s) = self.summary.as_mut() {
            s.observe(&ev);
        }
        if let Some(w) = self.events.as_mut() {
            if self.events_all || !matches!(ev, Event::SmbOpaque(_)) {
                let r = w.write(&self.formats.stamp.event(&ev));
                let p = w.path().to_owned();
                self.record_error(p, r);
            }
        }
        if let Err(e) = self.formats.event(&ev) {
            self.write_error.get_or_insert(e);
        }
        self.detection.on_event(&ev, &mut self.pending);
        self.write_pending();
    }

    fn flow_ended(&mut self, _index: u64, flow: &FlowSummary) {
        if let Some(w) = self.flows.as_mut() {
            let r = w.write(&self.formats.stamp.flow(flow));
            let p = w.path().to_owned();
            self.record_error(p, r);
        }
        if let Err(e) = self.formats.flow(flow) {
            self.write_error.get_or_insert(e);
        }
    }
}

impl Merged for ReadOutput {
    fn wake(&mut self, _status: &stream::Status) {
        if self.flush_while_running {
            self.flush();
        }
    }
    fn done(&self) -> bool {
        self.write_error.is_some()
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn open_writer(path: &Path, kind: &str) -> Result<JsonLines, ExitCode> {
    JsonLines::create_for(path, kind).map_err(|e| {
        say(format_args!("{}: cannot write: {e}", path.display()));
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

/// Progress bar and error lines, driven by the first worker of a multi-worker read.
struct ReadProgress<'a> {
    bar: Option<&'a ProgressBar>,
    read_bytes: &'a AtomicU64,
}

impl FileProgress for ReadProgress<'_> {
    fn frames(&self, _frames: u64) {
        if let Some(b) = self.bar {
            b.set_position(self.read_bytes.load(Ordering::Relaxed));
        }
    }
    fn outcome(&self, outcome: &FileOutcome) {
        if let Some(b) = self.bar {
            b.set_message(file_name(&outcome.path));
        }
        if let Some(e) = &outcome.error {
            match self.bar {
                Some(b) => b.suspend(|| say(e)),
                None => say(e),
            }
        }
    }
}

pub fn run(args: ReadArgs) -> ExitCode {
    match run_inner(args) {
        Ok(c) | Err(c) => c,
    }
}

fn run_inner(args: ReadArgs) -> Result<ExitCode, ExitCode> {
    let formats = formats_setup(&args.common, &LiveFile::default(), None).map_err(|e| {
        say(e);
        ExitCode::from(EXIT_BAD_INPUT)
    })?;
    let smb = smb_shared(args.common.smb_keys.as_deref(), &args.common.keytab)?;
    let rules = load_rules(args.common.rules.as_deref())?;
    let hosts = Arc::new(rules.hosts.clone());

    let mut out = ReadOutput {
        events: args
            .common
            .events
            .as_deref()
            .map(|p| open_writer(p, "event"))
            .transpose()?,
        events_all: args.events_all,
        alerts: match &args.common.alerts {
            Some(p) => open_writer(p, "alert")?,
            None => JsonLines::stdout(),
        },
        flows: args
            .flows
            .as_deref()
            .map(|p| open_writer(p, "flow"))
            .transpose()?,
        summary: (!args.no_summary).then(Summary::new),
        write_error: None,
        detection: Detection::new(rules),
        pending: Vec::new(),
        alert_lines: AlertLines {
            wanted: !args.no_summary,
            ..AlertLines::default()
        },
        formats: Formats::open(&formats).map_err(|(p, e)| {
            say(format_args!("{p}: cannot write: {e}"));
            ExitCode::from(EXIT_BAD_INPUT)
        })?,
        flush_while_running: args.follow.is_some(),
    };
    let workers = args
        .common
        .workers
        .map_or_else(default_workers, usize::from);
    if let Some(dir) = &args.follow {
        // Live timing: an attack is written once quiet for --alert-after s of capture time.
        out.detection.close_when_quiet(args.alert_after);
        let cfg = EngineConfig {
            smb,
            flow_summaries: out.flows.is_some() || out.formats.wants_flows(),
            max_flows: Some(crate::flow::table::flows_per_worker(workers)),
            hosts: hosts.clone(),
        };
        return super::follow::run(dir, &args, out, cfg, workers);
    }

    let (files, mut failed) = capture_files(&args.inputs);

    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = if io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        ) {
            b.set_style(style);
        }
        Some(b)
    } else {
        None
    };

    let cfg = EngineConfig {
        smb,
        flow_summaries: out.flows.is_some() || out.formats.wants_flows(),
        max_flows: Some(crate::flow::table::flows_per_worker(workers)),
        hosts: hosts.clone(),
    };
    let read_bytes = Arc::new(AtomicU64::new(0));
    // One capture in time order (capture::file::merge), whatever the names and the order given.
    let plan = merge::plan(&files);
    let complain = |e: &dyn std::fmt::Display| match &bar {
        Some(b) => b.suspend(|| say(e)),
        None => say(e),
    };
    let mut ended = |o: &FileOutcome| {
        if let Some(b) = &bar {
            b.set_message(file_name(&o.path));
        }
        if let Some(e) = &o.error {
            complain(e);
        }
    };
    let tick = |i: u64| {
        if i % 4096 == 0 {
            if let Some(b) = &bar {
                b.set_position(read_bytes.load(Ordering::Relaxed));
            }
        }
    };
    let counters = if workers <= 1 {
        // One engine on this thread: the reference every worker count must agree with.
        let mut engine = Engine::new(cfg);
        let mut index = 0u64;
        failed += run_merged(
            &mut engine,
            &plan,
            &mut index,
            read_bytes.clone(),
            &mut out,
            &mut { tick },
            &mut ended,
        );
        engine.counters()
    } else if files.iter().any(|f| read_once_is_best(f)) {
        // Standard input can be read once, and a gzip file would be decompressed by every
        // worker: a capture thread reads and hands frames to `workers` engines, this thread
        // merges their output in packet order (pipeline::stream).
        let (f, counters) = stream::run(workers, stream::Mode::Files, &cfg, &mut out, |feeder| {
            feeder.run_merged(&plan, read_bytes.clone(), &mut { tick }, &mut ended)
        });
        failed += f;
        counters
    } else {
        // `workers` engines, each reading the files and keeping its own host pairs; this thread
        // merges their output in packet order (pipeline::files).
        let progress = ReadProgress {
            bar: bar.as_ref(),
            read_bytes: &read_bytes,
        };
        let (f, counters) = files::run_files(
            workers,
            &cfg,
            &plan,
            read_bytes.clone(),
            &progress,
            &mut out,
        );
        failed += f;
        counters
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }

    Ok(end_of_run(out, counters, failed, args.no_summary))
}

/// End of input: open attack instances and host summaries become alerts, outputs are flushed,
/// the summary goes to stderr; the exit status.
pub(super) fn end_of_run(
    mut out: ReadOutput,
    mut counters: Counters,
    failed: usize,
    no_summary: bool,
) -> ExitCode {
    out.finish_detection();
    let mut caps = crate::sink::Sink::new();
    out.detection.report_caps(&mut caps);
    counters.merge(&caps.counters);
    out.flush();
    if let Err(e) = out.formats.finish() {
        out.write_error.get_or_insert(e);
    }
    match &out.summary {
        Some(summary) if !no_summary => {
            eprint!("{}", summary.render(&counters, failed));
            eprint!("{}", render_alert_lines(&out.alert_lines));
        }
        _ => {}
    }
    if let Some((p, e)) = out.write_error {
        if e.kind() != io::ErrorKind::BrokenPipe {
            say(format_args!("{p}: write failed: {e}"));
        }
        return ExitCode::from(EXIT_OUTPUT_ERROR);
    }
    if failed > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--workers` when not given: one per core the process may use, at most [`MAX_DEFAULT_WORKERS`].
/// Reading files, each worker reads the input itself and keeps its own host pairs
/// (`pipeline::files`), so a second core adds throughput instead of hand-over cost (README,
/// "Performance"). The output is the same for every N.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_DEFAULT_WORKERS)
}

/// More default workers than this would mostly add readers of the same file: ask with
/// `--workers N` on larger machines.
pub(crate) const MAX_DEFAULT_WORKERS: usize = 8;

/// `--smb-keys` and `--keytab`: the decryption secrets, with a warning when others can read the
/// key file. A bad file is an error naming it, never quoting it.
pub(crate) fn smb_shared(keys: Option<&Path>, keytabs: &[PathBuf]) -> Result<SmbShared, ExitCode> {
    let mut smb = SmbShared::default();
    let mut store = crate::smb::crypto::KeyStore::default();
    if let Some(k) = keys {
        match crate::smb::crypto::KeyStore::load(k) {
            Ok((s, warnings)) => {
                for w in warnings {
                    say(format_args!("{}: {w}", k.display()));
                }
                store = s;
            }
            Err(e) => {
                say(format_args!("SMB keys: {e}"));
                return Err(ExitCode::from(EXIT_BAD_INPUT));
            }
        }
    }
    for k in keytabs {
        let loaded = crate::kerberos::keytab::Keytab::load(k).and_then(|kt| store.add_keytab(kt));
        if let Err(e) = loaded {
            say(format_args!("keytab: {e}"));
            return Err(ExitCode::from(EXIT_BAD_INPUT));
        }
    }
    if !store.is_empty() {
        smb.keys = Some(Arc::new(store));
    }
    Ok(smb)
}

/// `--rules DIR` layered over the embedded rules; errors name file, line and problem.
pub(crate) fn load_rules(dir: Option<&Path>) -> Result<Rules, ExitCode> {
    match dir {
        None => Ok(Rules::embedded()),
        Some(d) if !d.is_dir() => {
            say(format_args!("{}: rules directory not found", d.display()));
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
        Some(d) => Rules::load_dir_over_defaults(d).map_err(|e| {
            say(format_args!("rules: {e}"));
            ExitCode::from(EXIT_BAD_INPUT)
        }),
    }
}

fn render_alert_lines(alerts: &AlertLines) -> String {
    if alerts.total == 0 {
        return "  alerts     none\n".to_string();
    }
    let mut s = format!("  alerts     {}", alerts.total);
    if alerts.total > alerts.lines.len() as u64 {
        s.push_str(&format!(
            " (the first {} listed; all are in the alerts output)",
            alerts.lines.len()
        ));
    }
    s.push('\n');
    for l in &alerts.lines {
        for (i, part) in l.lines().enumerate() {
            s.push_str(if i == 0 { "    - " } else { "      " });
            s.push_str(part);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_every_alert_not_only_the_listed_ones() {
        let alerts = AlertLines {
            wanted: true,
            lines: vec!["a\n".into(); MAX_SUMMARY_ALERT_LINES],
            total: 342,
        };
        let s = render_alert_lines(&alerts);
        assert!(
            s.starts_with(&format!(
                "  alerts     342 (the first {MAX_SUMMARY_ALERT_LINES} listed"
            )),
            "{s}"
        );
        let few = AlertLines {
            wanted: true,
            lines: vec!["a\n".into()],
            total: 1,
        };
        assert!(render_alert_lines(&few).starts_with("  alerts     1\n"));
    }
}
