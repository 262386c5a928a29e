//! `psexec-sensor live -i IFACE [-i IFACE2]`: a span port or tap through the same engines as
//! `read`, with counters on stderr, a clean stop on SIGINT/SIGTERM and output reopening on SIGHUP.
//!
//! Two ways in (README "Live capture"):
//! * AF_PACKET (default): N workers, each with its own TPACKET_V3 ring per interface, all rings of
//!   an interface in one fanout group whose classic BPF program hashes the host pair
//!   (`capture::live::fanout`); each worker's engine reads frames straight from its rings
//!   (`pipeline::shards`). Several interfaces: every worker merges its rings by capture time.
//! * libpcap (`--capture pcap`, and always for `-i any`): one capture thread hands frames to the
//!   sharded workers (`pipeline::stream`).
//!
//! Order of start: configuration (command line over `--config` file, checked, including that
//! `--user` exists), signal handlers, open the interfaces (root or CAP_NET_RAW), open outputs and
//! the pidfile (may be where only root writes), drop to `--user`, then start threads. On a stop
//! request (signal, `--duration`, `--count`) the workers close every flow (parsers flush),
//! detection writes every open attack instance and the host summaries, outputs are flushed, a
//! final counter line is written, exit 0.
//!
//! Timing: workers hand their output on at least every [`FLUSH_EVERY`] and let [`TICK_EVERY`] of
//! wall time pass in their engines (idle flows close); the merger gives the detector the same
//! clock, and a technique alert is written once its attack instance has been quiet for
//! `--alert-after` seconds (default 60) instead of the offline window of 600 s.

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

/// Longest a captured frame waits before the merger gets what it produced.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How often wall time is passed to the engines and the detector, and kernel counters read.
pub const TICK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(feature = "live")]
mod capture;
#[cfg(feature = "live")]
mod output;

#[cfg(feature = "live")]
fn say(what: impl std::fmt::Display) {
    eprintln!("psexec-sensor: live: {what}");
}

#[cfg(feature = "live")]
fn wall_now() -> crate::time::Ts {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::time::Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Kernel and reader counters of one capture socket (AF_PACKET: one per worker and interface;
/// libpcap: one), written by the thread that reads it, read by the stats line.
#[cfg(feature = "live")]
#[derive(Debug, Default)]
pub(crate) struct SocketStatus {
    pub interface: String,
    pub worker: usize,
    pub received: std::sync::atomic::AtomicU64,
    pub kernel_dropped: std::sync::atomic::AtomicU64,
    pub if_dropped: std::sync::atomic::AtomicU64,
    pub ring_freezes: std::sync::atomic::AtomicU64,
    pub frames: std::sync::atomic::AtomicU64,
    pub bytes: std::sync::atomic::AtomicU64,
}

/// `--duration` and `--count`.
#[cfg(feature = "live")]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub duration: Option<std::time::Duration>,
    pub count: Option<u64>,
}

#[cfg(feature = "live")]
mod imp {
    use super::capture::{fanout_worker, pcap_loop, WorkerRings};
    use super::output::{AlertOut, LiveOutput};
    use super::{say, Limits, SocketStatus, TICK_EVERY};
    use crate::capture::live::afpacket::RingSocket;
    use crate::capture::live::fanout::host_pair_program;
    use crate::capture::live::{
        drop_privileges, user_exists, LiveCapture, LiveConfig, LiveError, ReopenFlag, StopFlag,
        DEFAULT_BPF,
    };
    use crate::cli::LiveArgs;
    use crate::cmd::read::{default_workers, load_rules, smb_shared};
    use crate::cmd::{EXIT_BAD_INPUT, EXIT_OUTPUT_ERROR};
    use crate::config::{live_from_args, CaptureMode, LiveSetup, Rotation};
    use crate::detect::Detection;
    use crate::output::formats::Formats;
    use crate::output::json::JsonLines;
    use crate::pipeline::shards::run_shards;
    use crate::pipeline::stream;
    use crate::pipeline::EngineConfig;
    use std::io;
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::Arc;
    use std::time::Instant;

    fn bad(e: impl std::fmt::Display) -> ExitCode {
        say(e);
        ExitCode::from(EXIT_BAD_INPUT)
    }

    /// Whether this process may create files in `dir`.
    fn writable_dir(dir: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `c` is a valid NUL-terminated path; access only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    }

    fn open_writer(path: &Path, kind: &str, rotation: Rotation) -> Result<JsonLines, ExitCode> {
        JsonLines::append(path, kind, rotation)
            .map_err(|e| bad(format_args!("{}: cannot write: {e}", path.display())))
    }

    /// The pid file, removed when the run ends.
    struct Pidfile(PathBuf);

    impl Pidfile {
        fn write(path: &Path) -> Result<Pidfile, ExitCode> {
            std::fs::write(path, format!("{}\n", std::process::id()))
                .map_err(|e| bad(format_args!("pidfile {}: {e}", path.display())))?;
            Ok(Pidfile(path.to_owned()))
        }
    }

    impl Drop for Pidfile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// What was opened: rings per worker, or one libpcap handle.
    enum Opened {
        Fanout(Vec<WorkerRings>),
        Pcap(LiveCapture),
    }

    /// AF_PACKET: for every interface, worker 0's socket first (it creates the fanout group and
    /// sets its program), then the others in worker order, so member k of every group is worker k.
    /// (A frame that arrives between a socket's bind and its joining the group lands on that
    /// socket: only in the first instant, before "listening on" is said.)
    fn open_rings(
        setup: &LiveSetup,
        workers: usize,
        bpf: Option<&str>,
        sockets: &mut Vec<SocketStatus>,
    ) -> Result<Vec<WorkerRings>, LiveError> {
        let program = host_pair_program();
        let mut rings: Vec<WorkerRings> = (0..workers)
            .map(|_| WorkerRings {
                sockets: Vec::new(),
                slots: Vec::new(),
            })
            .collect();
        for iface in &setup.interfaces {
            let mut group = None;
            for (w, r) in rings.iter_mut().enumerate() {
                let s = RingSocket::open(iface, setup.ring_mib, bpf, true)?;
                if workers > 1 {
                    group = Some(s.join_fanout(group, &program)?);
                }
                r.slots.push(sockets.len());
                sockets.push(SocketStatus {
                    interface: iface.clone(),
                    worker: w,
                    ..SocketStatus::default()
                });
                r.sockets.push(s);
            }
        }
        Ok(rings)
    }

    pub fn run(args: LiveArgs) -> ExitCode {
        match run_inner(args) {
            Ok(c) | Err(c) => c,
        }
    }

    fn run_inner(args: LiveArgs) -> Result<ExitCode, ExitCode> {
        let setup = live_from_args(&args).map_err(bad)?;
        if let Some(u) = &setup.user {
            match user_exists(u) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(bad(format_args!(
                        "no user {u:?} on this system: name an existing user with --user (or \
                         `user` in the config file), or --user '' to keep the starting user"
                    )))
                }
                Err(e) => return Err(bad(format_args!("looking up user {u:?}: {e}"))),
            }
        }
        let smb = smb_shared(setup.smb_keys.as_deref(), &setup.keytabs)?;
        let rules = load_rules(setup.rules.as_deref())?;
        let hosts = Arc::new(rules.hosts.clone());
        let stop = StopFlag::new();
        stop.install_signal_handlers().map_err(bad)?;
        let reopen = ReopenFlag::default();
        reopen.install_signal_handler().map_err(bad)?;
        let workers = setup.workers.unwrap_or_else(default_workers);
        let bpf = match setup.bpf.as_deref() {
            None => Some(DEFAULT_BPF),
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(s),
        };

        let mut sockets = Vec::new();
        let opened = match setup.capture {
            CaptureMode::Afpacket => {
                Opened::Fanout(open_rings(&setup, workers, bpf, &mut sockets).map_err(bad)?)
            }
            CaptureMode::Pcap => {
                let mut cfg = LiveConfig::new(setup.interfaces[0].clone());
                cfg.bpf = Some(bpf.unwrap_or("").to_string());
                sockets.push(SocketStatus {
                    interface: cfg.interface.clone(),
                    ..SocketStatus::default()
                });
                Opened::Pcap(LiveCapture::open(&cfg, stop.clone()).map_err(bad)?)
            }
        };
        // Outputs and pidfile before dropping root: they may live where only root writes.
        let events = setup
            .events
            .as_deref()
            .map(|p| open_writer(p, "event", setup.rotation))
            .transpose()?;
        let alerts = match &setup.alerts {
            Some(p) => open_writer(p, "alert", setup.rotation)?,
            None => JsonLines::stdout(),
        };
        // `--log-dir`, `--eve` and the record stamp (appended to, reopened, rotated).
        let formats = Formats::open(&setup.formats)
            .map_err(|(p, e)| bad(format_args!("{p}: cannot write: {e}")))?;
        let _pidfile = setup.pidfile.as_deref().map(Pidfile::write).transpose()?;
        if let Some(u) = &setup.user {
            say(drop_privileges(u).map_err(bad)?);
        }
        // `--log-dir` files are created as their first record comes, and again after SIGHUP or
        // rotation: by the user the sensor now runs as. Found out now, not at the first record.
        if let Some(d) = &setup.formats.log_dir {
            if !writable_dir(d) {
                return Err(bad(format_args!(
                    "{}: the sensor's user cannot create files here (log files are created after \
                     privileges are dropped): give the directory to that user (chown) or use \
                     --user ''",
                    d.display()
                )));
            }
        }
        let interfaces = setup.interfaces.join(",");
        say(format_args!(
            "listening on {interfaces} ({:?}, filter {:?}, {workers} worker{})",
            setup.capture,
            bpf.unwrap_or(""),
            if workers == 1 { "" } else { "s" }
        ));

        let mut detection = Detection::new(rules);
        detection.close_when_quiet(setup.alert_after);
        let sockets = Arc::new(sockets);
        let mut out = LiveOutput {
            interfaces,
            sensor: setup.formats.sensor_name.clone(),
            capture: setup.capture,
            events,
            alerts: AlertOut::new(alerts),
            formats,
            detection,
            pending: Vec::new(),
            write_error: None,
            sockets: sockets.clone(),
            reopen,
            stats_every: setup.stats_interval,
            next_stats: Instant::now() + setup.stats_interval,
            next_tick: Instant::now() + TICK_EVERY,
        };
        let ecfg = EngineConfig {
            smb,
            flow_summaries: out.formats.wants_flows(),
            max_flows: Some(crate::flow::table::flows_per_worker(workers)),
            hosts: hosts.clone(),
        };
        let limits = Limits {
            duration: setup.duration,
            count: setup.count,
        };
        let (status, read_error) = match opened {
            Opened::Fanout(rings) => {
                let (errors, status, _) = run_shards(rings, &ecfg, &mut out, |r, shard| {
                    fanout_worker(r, shard, &sockets, &stop, limits)
                });
                (status, errors.into_iter().flatten().next())
            }
            Opened::Pcap(cap) => {
                let (error, _) =
                    stream::run(workers, stream::Mode::Live, &ecfg, &mut out, |feeder| {
                        let e = pcap_loop(cap, feeder, &sockets[0], limits);
                        (feeder.status().clone(), e)
                    });
                error
            }
        };

        // The input has ended (every flow closed by the workers): open attacks become alerts.
        out.finish();
        out.stats_line(&status, true);
        if let Some((p, e)) = out.write_error.or(out.alerts.error) {
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
}
