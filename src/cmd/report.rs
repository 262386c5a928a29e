//! `psexec-sensor report`: one self-contained HTML page of a run, from its alerts and events files
//! or straight from captures (the sensor runs as `read` would, and the page is made from what it
//! finds).

use super::read::{capture_files, default_workers, load_rules, say, smb_shared};
use super::{EXIT_BAD_INPUT, EXIT_OUTPUT_ERROR};
use crate::cli::ReportArgs;
use crate::detect::Detection;
use crate::event::alert::Alert;
use crate::event::Event;
use crate::output::report::input::{AlertRecord, EventRecord, Lines, LogName};
use crate::output::report::{html, ReportBuilder, ReportData};
use crate::output::stamp::Stamp;
use crate::pipeline::files::{self, FileProgress};
use crate::pipeline::stream::Merged;
use crate::pipeline::{EngineConfig, EventConsumer, FileOutcome};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub fn run(args: ReportArgs) -> ExitCode {
    match run_inner(args) {
        Ok(c) | Err(c) => c,
    }
}

fn run_inner(args: ReportArgs) -> Result<ExitCode, ExitCode> {
    let (data, failed) = match &args.alerts {
        Some(alerts) => (from_files(alerts, args.events.as_deref())?, 0),
        None => from_captures(&args)?,
    };
    let written = File::create(&args.output).and_then(|f| {
        let mut w = BufWriter::new(f);
        html::render(&data, &mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    if let Err(e) = written {
        say(format_args!("{}: cannot write: {e}", args.output.display()));
        return Ok(ExitCode::from(EXIT_OUTPUT_ERROR));
    }
    say(format_args!(
        "{}: {} alerts, {} events behind them",
        args.output.display(),
        data.alerts.len(),
        data.events.len()
    ));
    Ok(if failed > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Feeds every JSON line of `path` to `each`; a line that is not one names file and line.
fn read_json_lines<T: DeserializeOwned>(
    path: &Path,
    reader: impl BufRead,
    mut each: impl FnMut(T),
) -> Result<(), ExitCode> {
    let mut lines = Lines::new(reader);
    loop {
        let fail = |line: u64, e: &dyn std::fmt::Display| {
            say(format_args!("{}:{line}: {e}", path.display()));
            ExitCode::from(EXIT_BAD_INPUT)
        };
        match lines.next_line() {
            Ok(Some(l)) => match serde_json::from_slice(l) {
                Ok(v) => each(v),
                Err(e) => return Err(fail(lines.line, &e)),
            },
            Ok(None) => return Ok(()),
            Err(e) => return Err(fail(lines.line, &e)),
        }
    }
}

fn open(path: &Path) -> Result<BufReader<File>, ExitCode> {
    File::open(path).map(BufReader::new).map_err(|e| {
        say(format_args!("{}: cannot read: {e}", path.display()));
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

fn from_files(alerts: &Path, events: Option<&Path>) -> Result<ReportData, ExitCode> {
    let inputs = std::iter::once(alerts).chain(events);
    let mut b = ReportBuilder::new(inputs.map(|p| p.display().to_string()).collect());
    // Alerts first: the events are then kept only where an alert's evidence names them.
    read_json_lines(alerts, open(alerts)?, |a: AlertRecord| b.add_alert(a))?;
    if let Some(events) = events {
        read_json_lines(events, open(events)?, |e: EventRecord| b.add_event(e))?;
    }
    Ok(b.finish())
}

/// A value written by the sensor, read back as the report reads its files: one schema path.
fn reread<T: Serialize, U: DeserializeOwned>(v: &T) -> Option<U> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .ok()
}

fn log_of(ev: &Event) -> LogName {
    match ev {
        Event::SmbMapping(_) => LogName::SmbMapping,
        Event::SmbFiles(_) => LogName::SmbFiles,
        Event::SmbAuth(_) => LogName::SmbAuth,
        Event::SmbVisibility(_) => LogName::SmbVisibility,
        Event::SmbOpaque(_) => LogName::SmbOpaque,
        Event::DceRpc(_) => LogName::DceRpc,
        Event::Kerberos(_) => LogName::Other,
        Event::Anomaly(_) => LogName::Anomaly,
    }
}

/// Events that may stand behind an alert, held in a file until the run's alerts are known (an
/// alert is written when its instance closes, long after its first events). The file is removed
/// when this is dropped.
struct Spill {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Spill {
    fn create() -> io::Result<Spill> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "psexec-sensor-report-{}-{nanos}.jsonl",
            std::process::id()
        ));
        let f = File::options().write(true).create_new(true).open(&path)?;
        Ok(Spill {
            path,
            out: Some(BufWriter::with_capacity(1 << 16, f)),
        })
    }

    fn write(&mut self, ev: &Event) -> io::Result<()> {
        if let Some(w) = self.out.as_mut() {
            serde_json::to_writer(&mut *w, ev).map_err(io::Error::other)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Done writing: the events, to read back.
    fn reader(&mut self) -> io::Result<BufReader<File>> {
        if let Some(w) = self.out.take() {
            w.into_inner().map_err(|e| e.into_error())?;
        }
        File::open(&self.path).map(BufReader::new)
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.out = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The consumer of a capture run: detection, counting, and the spill of joinable events.
struct CaptureRun {
    builder: ReportBuilder,
    detection: Detection,
    pending: Vec<Alert>,
    spill: Spill,
    stamp: Stamp,
    error: Option<io::Error>,
}

/// Alerts as `read --alerts` writes them (stamped with their connection), read back.
fn add_alerts(builder: &mut ReportBuilder, stamp: &Stamp, pending: &mut Vec<Alert>) {
    for a in pending.drain(..) {
        if let Some(rec) = reread(&stamp.alert(&a)) {
            builder.add_alert(rec);
        }
    }
}

impl EventConsumer for CaptureRun {
    fn event(&mut self, _index: u64, mut ev: Event) {
        self.detection.join(&mut ev);
        let log = log_of(&ev);
        self.builder.count_event(log);
        if log == LogName::Anomaly {
            if let Some(rec) = reread::<_, EventRecord>(&ev) {
                self.builder.anomaly(&rec);
            }
        } else if ReportBuilder::joinable(log) && self.error.is_none() {
            if let Err(e) = self.spill.write(&ev) {
                self.error = Some(e);
            }
        }
        self.detection.on_event(&ev, &mut self.pending);
        add_alerts(&mut self.builder, &self.stamp, &mut self.pending);
    }
}

impl Merged for CaptureRun {
    fn done(&self) -> bool {
        self.error.is_some()
    }
}

/// Capture problems, said as they happen (worker 0 reports them).
struct SayErrors;

impl FileProgress for SayErrors {
    fn outcome(&self, outcome: &FileOutcome) {
        if let Some(e) = &outcome.error {
            say(e);
        }
    }
}

fn from_captures(args: &ReportArgs) -> Result<(ReportData, usize), ExitCode> {
    if args.inputs.iter().any(|p| p.as_os_str() == "-") {
        say("report reads captures by path; for standard input run `read - --alerts A --events E` and `report --alerts A --events E`");
        return Err(ExitCode::from(EXIT_BAD_INPUT));
    }
    let smb = smb_shared(args.smb_keys.as_deref(), &[])?;
    let rules = load_rules(args.rules.as_deref())?;
    let hosts = std::sync::Arc::new(rules.hosts.clone());
    let (files, mut failed) = capture_files(&args.inputs);
    let spill = Spill::create().map_err(|e| {
        say(format_args!("cannot create a temporary file: {e}"));
        ExitCode::from(EXIT_OUTPUT_ERROR)
    })?;
    let inputs = args
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut run = CaptureRun {
        builder: ReportBuilder::new(inputs),
        detection: Detection::new(rules),
        pending: Vec::new(),
        spill,
        stamp: Stamp::new(None, 0),
        error: None,
    };
    let workers = args.workers.map_or_else(default_workers, usize::from);
    let cfg = EngineConfig {
        smb,
        flow_summaries: false,
        max_flows: Some(crate::flow::table::flows_per_worker(workers)),
        hosts,
    };
    let read_bytes = Arc::new(AtomicU64::new(0));
    // One capture in time order, as `read` takes it (capture::file::merge).
    let plan = crate::capture::file::merge::plan(&files);
    let (f, mut counters) =
        files::run_files(workers, &cfg, &plan, read_bytes, &SayErrors, &mut run);
    failed += f;

    // End of input: open attack instances become alerts.
    let CaptureRun {
        builder,
        detection,
        pending,
        stamp,
        ..
    } = &mut run;
    detection.finish_with(pending, &mut |p| add_alerts(builder, stamp, p));
    add_alerts(builder, stamp, pending);
    let mut caps = crate::sink::Sink::new();
    detection.report_caps(&mut caps);
    counters.merge(&caps.counters);
    for (name, n) in counters.by_name() {
        run.builder.count(name, n);
    }

    let spilled = match run.error.take() {
        Some(e) => Err(e),
        None => run.spill.reader(),
    };
    let reader = spilled.map_err(|e| {
        say(format_args!(
            "temporary file {}: {e}",
            run.spill.path.display()
        ));
        ExitCode::from(EXIT_OUTPUT_ERROR)
    })?;
    let path = run.spill.path.clone();
    read_json_lines(&path, reader, |e: EventRecord| run.builder.join_event(e))?;
    Ok((run.builder.finish(), failed))
}
