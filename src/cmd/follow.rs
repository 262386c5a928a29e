//! `psexec-sensor read --follow DIR`: a directory still being written (tcpdump `-G`/`-C`/`-W`
//! rotation) read as one capture while it grows.
//!
//! A capture thread looks at the directory every [`FOLLOW_POLL`] (`capture::file::follow::Watcher`
//! says which files are complete), orders what became complete by first frame time and feeds it
//! to the engines (`pipeline::stream`, one input for the whole run: flows, SMB sessions and pipes
//! continue from one file to the next and end by idle timeout in capture time). Detection closes an
//! attack once it has been quiet for `--alert-after` seconds of capture time, as `live` does, and
//! outputs are flushed as the run goes.
//!
//! SIGINT/SIGTERM: the next look takes every capture not yet read, complete or not, reads it to
//! its end, then the input ends as in `read` (every flow closes, open attacks become alerts, the
//! summary is written). A file taken at the stop may end inside a record where its writer was
//! cut short: that is said on stderr but is not a bad file.

#[cfg(feature = "live")]
use super::read::end_of_run;
use super::read::{say, ReadOutput};
use super::EXIT_BAD_INPUT;
use crate::cli::ReadArgs;
use crate::pipeline::EngineConfig;
use std::path::Path;
use std::process::ExitCode;

/// How often the directory is looked at (one directory listing, no busy wait).
#[cfg(feature = "live")]
pub const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(250);

pub(super) fn run(
    dir: &Path,
    args: &ReadArgs,
    out: ReadOutput,
    cfg: EngineConfig,
    workers: usize,
) -> Result<ExitCode, ExitCode> {
    #[cfg(feature = "live")]
    {
        imp::run(dir, args, out, cfg, workers)
    }
    #[cfg(not(feature = "live"))]
    {
        let _ = (dir, args, out, cfg, workers);
        say("--follow: this build cannot catch signals (built without feature `live`)");
        Err(ExitCode::from(EXIT_BAD_INPUT))
    }
}

#[cfg(feature = "live")]
mod imp {
    use super::*;
    use crate::capture::file::follow::Watcher;
    use crate::capture::file::{merge, CaptureError};
    use crate::capture::live::StopFlag;
    use crate::pipeline::stream::{self, Feeder};
    use crate::pipeline::FileOutcome;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    pub(super) fn run(
        dir: &Path,
        args: &ReadArgs,
        mut out: ReadOutput,
        cfg: EngineConfig,
        workers: usize,
    ) -> Result<ExitCode, ExitCode> {
        let bad = |e: &dyn std::fmt::Display| {
            say(format_args!("{}: {e}", dir.display()));
            ExitCode::from(EXIT_BAD_INPUT)
        };
        let mut watcher =
            Watcher::new(dir, Duration::from_secs(args.settle)).map_err(|e| bad(&e))?;
        let stop = StopFlag::new();
        stop.install_signal_handlers().map_err(|e| bad(&e))?;
        say(format_args!(
            "following {} (a file is complete when a later one exists or after {} s without \
             change); SIGINT/SIGTERM reads what is left and stops",
            dir.display(),
            args.settle
        ));
        let (failed, counters) =
            stream::run(workers, stream::Mode::Files, &cfg, &mut out, |feeder| {
                follow(&mut watcher, &stop, feeder)
            });
        Ok(end_of_run(out, counters, failed, args.no_summary))
    }

    /// The capture thread: complete files into the pipeline until a stop; returns how many files
    /// were bad.
    fn follow(watcher: &mut Watcher, stop: &StopFlag, feeder: &mut Feeder) -> usize {
        let read_bytes = Arc::new(AtomicU64::new(0));
        let mut failed = 0;
        loop {
            // Read before the look: a stop that comes during it gets one more, complete look.
            let stopping = stop.is_stopped() || feeder.cancelled();
            let ready = watcher.poll(Instant::now(), stopping);
            if !ready.is_empty() {
                let plan = merge::plan(&ready);
                feeder.feed_merged(&plan, read_bytes.clone(), &mut |_| {}, &mut |o| {
                    failed += usize::from(report(o, stopping));
                });
                feeder.flush();
            }
            if stopping {
                break;
            }
            std::thread::sleep(FOLLOW_POLL);
        }
        if watcher.regrown_files() > 0 {
            say(format_args!(
                "{} files grew after they were read (their new part was not read: raise --settle \
                 above the writer's rotation period)",
                watcher.regrown_files()
            ));
            feeder
                .counters
                .add("capture.follow_regrown_files", watcher.regrown_files());
        }
        feeder.finish_input();
        failed
    }

    /// Says what went wrong with a file; whether it counts as a bad file (a file taken at the stop
    /// and cut inside its last record is where its writer was interrupted, not a bad file).
    fn report(o: &FileOutcome, stopping: bool) -> bool {
        match &o.error {
            None => false,
            Some(CaptureError::Truncated { .. }) if stopping => {
                say(format_args!(
                    "{}: read up to where its writer was at the stop ({} packets)",
                    o.path.display(),
                    o.packets
                ));
                false
            }
            Some(e) => {
                say(e);
                true
            }
        }
    }
}
