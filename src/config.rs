//! Arguments and config file → one validated setup (the model is ripgrep's low-level arguments →
//! high-level arguments step). For `live`: a TOML file (`--config FILE`) can say everything the
//! command line can; a flag given on the command line wins over the file, the file over the
//! defaults. Every value is checked here, once, so the command itself only runs.
//!
//! ```toml
//! interfaces = ["eth1", "eth2"]    # -i, repeated: both halves of a tap, seen as one link
//! capture = "afpacket"             # or "pcap" (libpcap; always used for "any")
//! bpf = "tcp port 445 or tcp port 135 or tcp portrange 49152-65535"
//! workers = 4
//! ring_mib = 64                    # AF_PACKET ring per worker and interface
//! alerts = "/var/log/psexec-sensor/alerts.json"
//! events = "/var/log/psexec-sensor/events.json"
//! rotate_size_mb = 512
//! rotate_interval = 86400
//! rules = "/etc/psexec-sensor/rules"
//! smb_keys = "/etc/psexec-sensor/smb-keys"
//! sensor_name = "dc-span-1"
//! eve = "/var/log/psexec-sensor/eve.json"
//! log_dir = "/var/log/psexec-sensor/zeek"
//! log_format = "tsv"                # or "json" (the default)
//! community_id_seed = 0
//! user = "psexec-sensor"
//! pidfile = "/run/psexec-sensor/psexec-sensor.pid"
//! stats_interval = 60
//! alert_after = 60
//! ```

use crate::cli::{EngineArgs, LiveArgs};
use crate::output::logdir::LogFormat;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Unprivileged user taken after the interfaces and outputs are open, when started as root.
pub const DEFAULT_USER: &str = "nobody";
/// Per-socket AF_PACKET ring when neither flag nor file names one.
pub const DEFAULT_RING_MIB: u32 = 64;
/// Largest ring one socket may ask for (the kernel pins it in memory).
pub const MAX_RING_MIB: u32 = 4096;
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 60;
pub const DEFAULT_ALERT_AFTER_SECS: u64 = 60;
/// Largest config file read (a config is a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How frames are captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureMode {
    /// AF_PACKET fanout, one ring per worker and interface (Linux; not for `any`).
    #[default]
    Afpacket,
    /// libpcap, one capture thread (portable; `-i any`).
    Pcap,
}

impl std::str::FromStr for CaptureMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "afpacket" | "af-packet" | "af_packet" => Ok(CaptureMode::Afpacket),
            "pcap" | "libpcap" => Ok(CaptureMode::Pcap),
            other => Err(format!("unknown capture mode {other:?} (afpacket or pcap)")),
        }
    }
}

/// The config file, as written. Unknown keys are errors (a typo must not be ignored silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveFile {
    pub interfaces: Option<Vec<String>>,
    pub capture: Option<CaptureMode>,
    pub bpf: Option<String>,
    pub workers: Option<u16>,
    pub ring_mib: Option<u32>,
    pub events: Option<PathBuf>,
    pub alerts: Option<PathBuf>,
    pub rotate_size_mb: Option<u64>,
    pub rotate_interval: Option<u64>,
    pub rules: Option<PathBuf>,
    pub smb_keys: Option<PathBuf>,
    pub sensor_name: Option<String>,
    pub eve: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub community_id_seed: Option<u16>,
    pub user: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub stats_interval: Option<u64>,
    pub alert_after: Option<u64>,
}

/// The outputs `read` and `live` share beyond alerts and events (`output::formats`), checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatsSetup {
    /// Names this sensor in its records (the `sensor` field; EVE `host`; live's stats lines).
    pub sensor_name: Option<String>,
    pub community_id_seed: u16,
    pub log_dir: Option<PathBuf>,
    pub log_format: LogFormat,
    pub eve: Option<PathBuf>,
    /// `None`: files start afresh (`read`). `Some`: appended to, reopened on SIGHUP and rotated
    /// by this policy (`live`).
    pub live: Option<Rotation>,
}

/// Command line over config file (`file`; `read` has none) for the shared outputs.
pub fn formats_setup(
    common: &EngineArgs,
    file: &LiveFile,
    live: Option<Rotation>,
) -> Result<FormatsSetup, String> {
    let log_dir = common.log_dir.clone().or_else(|| file.log_dir.clone());
    let log_format = common.log_format.or(file.log_format);
    if log_format.is_some() && log_dir.is_none() {
        return Err("a log format needs a log directory (--log-dir or `log_dir`)".into());
    }
    Ok(FormatsSetup {
        sensor_name: common
            .sensor_name
            .clone()
            .or_else(|| file.sensor_name.clone())
            .filter(|n| !n.trim().is_empty()),
        community_id_seed: common
            .community_id_seed
            .or(file.community_id_seed)
            .unwrap_or(0),
        log_dir,
        log_format: log_format.unwrap_or(LogFormat::Json),
        eve: common.eve.clone().or_else(|| file.eve.clone()),
        live,
    })
}

/// When an output file is moved aside and a new one started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: Option<u64>,
    pub every: Option<Duration>,
}

impl Rotation {
    /// Whether a file of `bytes` opened at `opened` is due (size reached or age passed).
    pub fn due(&self, bytes: u64, opened: std::time::Instant) -> bool {
        self.max_bytes.is_some_and(|m| bytes >= m)
            || self.every.is_some_and(|e| opened.elapsed() >= e)
    }
}

/// Everything `live` runs with, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSetup {
    pub interfaces: Vec<String>,
    pub capture: CaptureMode,
    /// `None`: the default filter; `Some("")`: none.
    pub bpf: Option<String>,
    /// `None`: one per core (capped, see `cmd::read::default_workers`).
    pub workers: Option<usize>,
    pub ring_mib: u32,
    pub events: Option<PathBuf>,
    pub alerts: Option<PathBuf>,
    pub rotation: Rotation,
    pub rules: Option<PathBuf>,
    pub smb_keys: Option<PathBuf>,
    /// Sensor name, `--log-dir`, `--eve`, Community ID seed.
    pub formats: FormatsSetup,
    /// Switch to this user once everything is open, when started as root; `None` keeps the
    /// starting user (`--user ''`).
    pub user: Option<String>,
    pub pidfile: Option<PathBuf>,
    pub stats_interval: Duration,
    pub alert_after: u64,
    pub duration: Option<Duration>,
    pub count: Option<u64>,
}

/// Reads and parses a config file.
pub fn read_live_file(path: &Path) -> Result<LiveFile, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "{}: larger than {MAX_CONFIG_BYTES} bytes",
            path.display()
        ));
    }
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Command line over config file over defaults, checked.
pub fn live_setup(args: &LiveArgs, file: LiveFile) -> Result<LiveSetup, String> {
    let common = &args.common;
    let rotate_size_mb = args.rotate_size_mb.or(file.rotate_size_mb);
    let rotate_interval = args.rotate_interval.or(file.rotate_interval);
    if rotate_size_mb == Some(0) || rotate_interval == Some(0) {
        return Err("rotation size and interval must be above 0 (leave them out for none)".into());
    }
    let rotation = Rotation {
        max_bytes: rotate_size_mb.map(|m| m.saturating_mul(1 << 20)),
        every: rotate_interval.map(Duration::from_secs),
    };
    let formats = formats_setup(common, &file, Some(rotation))?;
    let interfaces = if args.interfaces.is_empty() {
        file.interfaces.unwrap_or_default()
    } else {
        args.interfaces.clone()
    };
    if interfaces.is_empty() {
        return Err("no interface: give -i IFACE or `interfaces` in the config file".into());
    }
    if let Some(bad) = interfaces.iter().find(|i| i.is_empty() || i.len() > 15) {
        return Err(format!("bad interface name {bad:?}"));
    }
    let mut capture = args.capture.or(file.capture).unwrap_or_default();
    if interfaces.iter().any(|i| i == "any") {
        if interfaces.len() > 1 {
            return Err("`any` already means every interface: give it alone".into());
        }
        // AF_PACKET fanout needs one device per group; libpcap reads `any` as cooked frames.
        capture = CaptureMode::Pcap;
    }
    if capture == CaptureMode::Pcap && interfaces.len() > 1 {
        return Err(
            "several interfaces need --capture afpacket (libpcap reads one; or use -i any)".into(),
        );
    }
    let ring_mib = args.ring_mib.or(file.ring_mib).unwrap_or(DEFAULT_RING_MIB);
    if !(1..=MAX_RING_MIB).contains(&ring_mib) {
        return Err(format!(
            "ring_mib must be 1..={MAX_RING_MIB}, not {ring_mib}"
        ));
    }
    let workers = match common.workers.or(file.workers) {
        Some(0) => return Err("workers must be at least 1".into()),
        w => w.map(usize::from),
    };
    let stats_interval = args
        .stats_interval
        .or(file.stats_interval)
        .unwrap_or(DEFAULT_STATS_INTERVAL_SECS);
    if stats_interval == 0 {
        return Err("stats_interval must be at least 1 second".into());
    }
    let user = args
        .user
        .clone()
        .or(file.user)
        .unwrap_or_else(|| DEFAULT_USER.to_string());
    Ok(LiveSetup {
        interfaces,
        capture,
        bpf: args.bpf.clone().or(file.bpf),
        workers,
        ring_mib,
        events: common.events.clone().or(file.events),
        alerts: common.alerts.clone().or(file.alerts),
        rotation,
        rules: common.rules.clone().or(file.rules),
        smb_keys: common.smb_keys.clone().or(file.smb_keys),
        formats,
        user: (!user.is_empty()).then_some(user),
        pidfile: args.pidfile.clone().or(file.pidfile),
        stats_interval: Duration::from_secs(stats_interval),
        alert_after: args
            .alert_after
            .or(file.alert_after)
            .unwrap_or(DEFAULT_ALERT_AFTER_SECS),
        duration: args.duration.map(Duration::from_secs),
        count: args.count,
    })
}

/// `live`'s whole setup: the config file (if `--config`) under the command line.
pub fn live_from_args(args: &LiveArgs) -> Result<LiveSetup, String> {
    let file = match &args.config {
        Some(p) => read_live_file(p)?,
        None => LiveFile::default(),
    };
    live_setup(args, file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> LiveArgs {
        let mut v = vec!["psexec-sensor", "live"];
        v.extend_from_slice(extra);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Live(l) => l,
            _ => unreachable!(),
        }
    }

    fn file(text: &str) -> LiveFile {
        toml::from_str(text).unwrap()
    }

    const FULL: &str = r#"
        interfaces = ["eth1", "eth2"]
        capture = "afpacket"
        bpf = "tcp port 445"
        workers = 4
        ring_mib = 16
        events = "/var/log/s/events.json"
        alerts = "/var/log/s/alerts.json"
        rotate_size_mb = 100
        rotate_interval = 3600
        rules = "/etc/s/rules"
        smb_keys = "/etc/s/keys"
        sensor_name = "span-1"
        eve = "/var/log/s/eve.json"
        log_dir = "/var/log/s/zeek"
        log_format = "tsv"
        community_id_seed = 7
        user = "sensor"
        pidfile = "/run/s.pid"
        stats_interval = 10
        alert_after = 30
    "#;

    #[test]
    fn the_file_can_say_everything_the_command_line_can() {
        let s = live_setup(&args(&[]), file(FULL)).unwrap();
        assert_eq!(s.interfaces, ["eth1", "eth2"]);
        assert_eq!(s.capture, CaptureMode::Afpacket);
        assert_eq!(s.bpf.as_deref(), Some("tcp port 445"));
        assert_eq!((s.workers, s.ring_mib), (Some(4), 16));
        assert_eq!(s.events, Some("/var/log/s/events.json".into()));
        assert_eq!(s.alerts, Some("/var/log/s/alerts.json".into()));
        assert_eq!(s.rotation.max_bytes, Some(100 << 20));
        assert_eq!(s.rotation.every, Some(Duration::from_secs(3600)));
        assert_eq!(s.rules, Some("/etc/s/rules".into()));
        assert_eq!(s.smb_keys, Some("/etc/s/keys".into()));
        let f = &s.formats;
        assert_eq!(f.sensor_name.as_deref(), Some("span-1"));
        assert_eq!(f.eve, Some("/var/log/s/eve.json".into()));
        assert_eq!(f.log_dir, Some("/var/log/s/zeek".into()));
        assert_eq!((f.log_format, f.community_id_seed), (LogFormat::Tsv, 7));
        assert_eq!(
            f.live,
            Some(s.rotation),
            "live outputs append, reopen and rotate"
        );
        assert_eq!(s.user.as_deref(), Some("sensor"));
        assert_eq!(s.pidfile, Some("/run/s.pid".into()));
        assert_eq!((s.stats_interval.as_secs(), s.alert_after), (10, 30));
    }

    #[test]
    fn command_line_wins_over_the_file() {
        let a = args(&[
            "-i",
            "eth9",
            "--workers",
            "2",
            "--alerts",
            "a.json",
            "--bpf",
            "",
            "--user",
            "",
            "--stats-interval",
            "5",
            "--capture",
            "pcap",
            "--log-format",
            "json",
            "--community-id-seed",
            "0",
        ]);
        let s = live_setup(&a, file(FULL)).unwrap();
        assert_eq!(s.formats.log_format, LogFormat::Json);
        assert_eq!(
            s.formats.community_id_seed, 0,
            "an explicit 0 wins over the file"
        );
        assert_eq!(s.formats.log_dir, Some("/var/log/s/zeek".into()));
        assert_eq!(s.interfaces, ["eth9"]);
        assert_eq!(s.workers, Some(2));
        assert_eq!(s.alerts, Some("a.json".into()));
        assert_eq!(s.bpf.as_deref(), Some(""));
        assert_eq!(s.user, None, "--user '' keeps the starting user");
        assert_eq!(s.stats_interval.as_secs(), 5);
        assert_eq!(s.capture, CaptureMode::Pcap);
        assert_eq!(
            s.events,
            Some("/var/log/s/events.json".into()),
            "the rest from the file"
        );
    }

    #[test]
    fn defaults_without_a_file() {
        let s = live_setup(&args(&["-i", "eth1"]), LiveFile::default()).unwrap();
        assert_eq!(s.capture, CaptureMode::Afpacket);
        assert_eq!(s.user.as_deref(), Some(DEFAULT_USER));
        assert_eq!(s.ring_mib, DEFAULT_RING_MIB);
        assert_eq!(s.stats_interval.as_secs(), DEFAULT_STATS_INTERVAL_SECS);
        assert_eq!(s.rotation, Rotation::default());
        assert_eq!((s.bpf, s.workers, s.pidfile), (None, None, None));
    }

    #[test]
    fn any_takes_libpcap_and_bad_combinations_are_errors() {
        let s = live_setup(&args(&["-i", "any"]), LiveFile::default()).unwrap();
        assert_eq!(s.capture, CaptureMode::Pcap);
        for bad in [
            &["-i", "a", "-i", "b", "--capture", "pcap"][..],
            &["-i", "any", "-i", "eth1"],
            &["-i", "eth1", "--ring-mib", "0"],
            &["-i", "eth1", "--rotate-size", "0"],
            &["-i", "eth1", "--log-format", "tsv"],
            &["-i", "averyveryverylongname"],
            &[],
        ] {
            assert!(
                live_setup(&args(bad), LiveFile::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_in_the_file_are_errors() {
        assert!(
            toml::from_str::<LiveFile>("interface = \"eth1\"").is_err(),
            "typo"
        );
        assert!(toml::from_str::<LiveFile>("capture = \"dpdk\"").is_err());
        assert!(toml::from_str::<LiveFile>("workers = -1").is_err());
        let dir = std::env::temp_dir().join(format!("psx-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.toml");
        std::fs::write(&p, "workers = \"many\"").unwrap();
        let e = read_live_file(&p).unwrap_err();
        assert!(e.contains("bad.toml"), "{e}");
        assert!(read_live_file(&dir.join("missing.toml")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Every `live` flag has a config key of the same name, except the ones that only make sense
    /// for one run (and the config file itself); a new flag without a key fails here.
    #[test]
    fn every_live_flag_has_a_config_key() {
        use clap::CommandFactory;
        const RUN_ONLY: [&str; 4] = ["config", "duration", "count", "help"];
        let cli = Cli::command();
        let live = cli.find_subcommand("live").unwrap();
        let mut checked = 0;
        for arg in live.get_arguments() {
            let id = arg.get_id().as_str();
            if RUN_ONLY.contains(&id) || arg.is_positional() {
                continue;
            }
            // A key of the wrong type is "invalid type"; a missing key is "unknown field".
            let err = toml::from_str::<LiveFile>(&format!("{id} = {{}}")).unwrap_err();
            assert!(
                !err.to_string().contains("unknown field"),
                "--{id} has no config key: {err}"
            );
            checked += 1;
        }
        assert!(checked >= 20, "{checked}");
    }

    #[test]
    fn example_config_in_packaging_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/psexec-sensor.toml");
        let f = read_live_file(&p).unwrap();
        let s = live_setup(&args(&[]), f).unwrap();
        assert!(!s.interfaces.is_empty());
    }
}
