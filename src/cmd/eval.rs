//! `psexec-sensor eval DIR...`: run every capture that has a `.truth.json` beside it through the
//! same pipeline and detection as `read`, score it (src/eval.rs), print a table or JSON, and exit
//! non-zero when a visible positive is missed or a negative raises a technique alert.

use super::read::{load_rules, smb_shared};
use super::{EXIT_BAD_INPUT, EXIT_OUTPUT_ERROR};
use crate::cli::EvalArgs;
use crate::detect::Detection;
use crate::eval::{discover, score, Report};
use crate::event::alert::Alert;
use crate::event::Event;
use crate::pipeline::{run_file, Engine, EngineConfig, EventConsumer};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Exit status when the sensor missed a visible positive or alerted on a negative.
pub const EXIT_EVAL_FAILED: u8 = 3;

struct Alerts {
    detection: Detection,
    alerts: Vec<Alert>,
}

impl EventConsumer for Alerts {
    fn event(&mut self, _index: u64, mut ev: Event) {
        self.detection.join(&mut ev);
        self.detection.on_event(&ev, &mut self.alerts);
    }
}

pub fn run(args: EvalArgs) -> ExitCode {
    let smb = match smb_shared(args.smb_keys.as_deref(), &[]) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let rules = match load_rules(args.rules.as_deref()) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let cases = match discover(&args.inputs) {
        Ok(c) if c.is_empty() => {
            eprintln!("psexec-sensor: eval: no capture with a .truth.json beside it found");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Ok(c) => c,
        Err(e) => {
            eprintln!("psexec-sensor: eval: {e:#}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut scores = Vec::with_capacity(cases.len());
    let mut unreadable = 0;
    for case in &cases {
        let mut engine = Engine::new(EngineConfig {
            smb: smb.clone(),
            flow_summaries: false,
            max_flows: None,
            hosts: Arc::new(rules.hosts.clone()),
        });
        let mut out = Alerts {
            detection: Detection::new(rules.clone()),
            alerts: Vec::new(),
        };
        let mut index = 0;
        let outcome = run_file(
            &mut engine,
            &case.capture,
            &mut index,
            Arc::new(AtomicU64::new(0)),
            &mut out,
            &mut |_| {},
        );
        if let Some(e) = outcome.error {
            eprintln!("psexec-sensor: {e}");
            unreadable += 1;
        }
        out.detection.finish(&mut out.alerts);
        scores.push(score(case, &out.alerts));
    }
    let report = Report::new(scores);
    let text = if args.json {
        let mut j = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
        j.push('\n');
        j
    } else {
        report.table()
    };
    // A reader that stops early (`eval --json | head`) closes the pipe: that is not an error.
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("psexec-sensor: eval: stdout: {e}");
            return ExitCode::from(EXIT_OUTPUT_ERROR);
        }
    }
    if unreadable > 0 {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_EVAL_FAILED)
    }
}
