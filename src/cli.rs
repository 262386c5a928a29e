//! Command-line definitions (clap derive). Each command's body lives in `cmd/`, so commands can be
//! filled in without touching this file's neighbours.

use crate::output::logdir::LogFormat;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "psexec-sensor",
    version,
    about = "Detects PsExec-style lateral movement in SMB / DCE-RPC traffic"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read capture files (pcap, pcapng, .gz) or directories of them.
    Read(ReadArgs),
    /// Score the sensor against the .truth.json files beside captures.
    Eval(EvalArgs),
    /// Capture from a live interface (span port); alerts as JSON lines, counters on stderr.
    Live(LiveArgs),
    /// Write one self-contained HTML page of a run: host graph, timeline, evidence, tables.
    Report(ReportArgs),
}

/// What `read` and `live` share: outputs, rules, engine workers, decryption secrets.
#[derive(Debug, Args, Clone)]
pub struct EngineArgs {
    /// Write every protocol event as JSON lines to PATH ("-" for stdout).
    #[arg(long, value_name = "PATH|-")]
    pub events: Option<PathBuf>,
    /// Write alerts as JSON lines to PATH (default: stdout). Every JSON output also takes
    /// `syslog:` (RFC 5424 to /dev/log), `unix:SOCKET` and `unixgram:SOCKET`.
    #[arg(long, value_name = "PATH|-")]
    pub alerts: Option<PathBuf>,
    /// Detection rules directory (default: the built-in rules).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Engine worker threads, sharded by host pair (default: one per core; see README "Performance").
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// SMB3 decryption secrets (passwords, NT hashes or session keys).
    #[arg(long, value_name = "FILE")]
    pub smb_keys: Option<PathBuf>,
    /// MIT keytab with service keys: decrypts Kerberos tickets (the client's name), the SMB3
    /// keys of Kerberos sessions and Kerberos-sealed DCE-RPC (packet privacy); repeat for several
    /// files.
    #[arg(long, value_name = "FILE")]
    pub keytab: Vec<PathBuf>,
    /// Name written as `sensor` on every record (EVE: `host`); default: the host name.
    #[arg(long, value_name = "NAME")]
    pub sensor_name: Option<String>,
    /// Community ID seed (`community_id` on every connection record and alert).
    #[arg(long, value_name = "N")]
    pub community_id_seed: Option<u16>,
    /// Write Zeek's log layout to DIR: one file per log (smb_mapping.log, smb_files.log,
    /// dce_rpc.log, ntlm.log, kerberos.log, conn.log, notice.log, weird.log …).
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Format of the --log-dir logs [default: json].
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Write alerts, SMB/DCE-RPC records, flows and anomalies in Suricata's EVE form to PATH.
    #[arg(long, value_name = "PATH|-")]
    pub eve: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ReadArgs {
    /// Capture files or directories (searched recursively for captures); "-" reads standard input.
    /// All of them are one capture, read in time order (not in the order of names).
    #[arg(required_unless_present = "follow", value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Read a directory that is still being written (tcpdump -G/-C/-W rotation): each capture
    /// once it is complete (a later one exists, or it has not changed for --settle seconds), in
    /// time order, until SIGINT/SIGTERM, which reads what is left and stops.
    #[arg(long, value_name = "DIR", conflicts_with = "inputs")]
    pub follow: Option<PathBuf>,
    /// With --follow: seconds without change after which the newest file counts as complete
    /// (above the writer's rotation period when the link can be quiet for longer).
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "follow")]
    pub settle: u64,
    /// With --follow: write a technique alert once its attack has been quiet this many seconds of
    /// capture time (as `live`; reading files waits for the rules' whole window).
    #[arg(long, value_name = "SECS", default_value_t = 60, requires = "follow")]
    pub alert_after: u64,
    #[command(flatten)]
    pub common: EngineArgs,
    /// With --events, also write per-message records of unreadable (encrypted/compressed) SMB.
    #[arg(long, requires = "events")]
    pub events_all: bool,
    /// Write one JSON line per TCP connection when it ends (bytes per direction, gaps) to PATH.
    #[arg(long, value_name = "PATH|-")]
    pub flows: Option<PathBuf>,
    /// Do not print the summary on stderr at the end.
    #[arg(long)]
    pub no_summary: bool,
}

#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// Directories (searched recursively) or captures with a `.truth.json` beside them.
    #[arg(required = true, value_name = "DIR|FILE")]
    pub inputs: Vec<PathBuf>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Detection rules directory (default: the built-in rules).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// SMB3 decryption secrets (by default eval measures what the sensor sees without them).
    #[arg(long, value_name = "FILE")]
    pub smb_keys: Option<PathBuf>,
    /// MIT keytab for every capture (repeatable): Kerberos tickets, SMB3 and DCE-RPC packet
    /// privacy, as with `read --keytab`.
    #[arg(long, value_name = "FILE")]
    pub keytab: Vec<PathBuf>,
    /// Also use the keytab each truth file names (its `keytab` field, beside the capture), as
    /// the Kerberos lab recordings have.
    #[arg(long)]
    pub truth_keytabs: bool,
}

/// `report`: from a run's JSON lines (`--alerts`, optionally `--events`) or straight from captures.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Capture files or directories to run the sensor over (instead of --alerts).
    #[arg(
        value_name = "FILE|DIR",
        required_unless_present = "alerts",
        conflicts_with = "alerts"
    )]
    pub inputs: Vec<PathBuf>,
    /// A run's alerts (JSON lines, as `read --alerts` writes them).
    #[arg(long, value_name = "PATH")]
    pub alerts: Option<PathBuf>,
    /// The same run's events (`read --events`): the records behind each alert's evidence.
    #[arg(long, value_name = "PATH", requires = "alerts")]
    pub events: Option<PathBuf>,
    /// Where to write the HTML page.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// With captures: detection rules directory (default: the built-in rules).
    #[arg(long, value_name = "DIR", conflicts_with = "alerts")]
    pub rules: Option<PathBuf>,
    /// With captures: SMB3 decryption secrets.
    #[arg(long, value_name = "FILE", conflicts_with = "alerts")]
    pub smb_keys: Option<PathBuf>,
    /// With captures: engine worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024),
          conflicts_with = "alerts")]
    pub workers: Option<u16>,
}

#[derive(Debug, Args, Clone)]
pub struct LiveArgs {
    /// Interface to capture on (promiscuous); repeat for the two halves of a tap (-i eth1 -i eth2).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// TOML config file; flags given here override it (see README "Deploying").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// afpacket (default: kernel fanout, one ring per worker) or pcap (libpcap; used for -i any).
    #[arg(long, value_name = "MODE")]
    pub capture: Option<crate::config::CaptureMode>,
    /// Capture filter (default: TCP 445, 139, 135 and 49152-65535; "" captures everything).
    #[arg(long, value_name = "EXPR", allow_hyphen_values = true)]
    pub bpf: Option<String>,
    #[command(flatten)]
    pub common: EngineArgs,
    /// AF_PACKET ring per worker and interface, in MiB (default 64).
    #[arg(long, value_name = "MIB")]
    pub ring_mib: Option<u32>,
    /// Seconds between counter lines on stderr (one more at exit; default 60).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_interval: Option<u64>,
    /// Write a technique alert once its attack has been quiet this many seconds (default 60;
    /// offline reading waits for the rules' whole window, 600 s by default).
    #[arg(long, value_name = "SECS")]
    pub alert_after: Option<u64>,
    /// When started as root, switch to this user once the interfaces and outputs are open
    /// (default nobody; "" keeps root). An unknown user is an error.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Write the process id to FILE (removed at exit).
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Move an output file aside (PATH.<unix time>) once it reaches this many MiB.
    #[arg(long = "rotate-size", value_name = "MIB")]
    pub rotate_size_mb: Option<u64>,
    /// Move output files aside every this many seconds.
    #[arg(long = "rotate-interval", value_name = "SECS")]
    pub rotate_interval: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Stop after this many packets.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_read() {
        let c = Cli::try_parse_from([
            "psexec-sensor",
            "read",
            "a.pcap",
            "dir",
            "--events",
            "-",
            "--events-all",
            "--workers",
            "2",
            "--no-summary",
        ])
        .unwrap();
        let Command::Read(r) = c.command else {
            panic!()
        };
        assert_eq!(
            r.inputs,
            vec![PathBuf::from("a.pcap"), PathBuf::from("dir")]
        );
        assert_eq!(r.common.events, Some(PathBuf::from("-")));
        assert!(r.events_all && r.no_summary);
        assert_eq!(r.common.workers, Some(2));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(Cli::try_parse_from(["psexec-sensor", "read"]).is_err());
        assert!(Cli::try_parse_from(["psexec-sensor", "read", "a", "--workers", "0"]).is_err());
        assert!(Cli::try_parse_from(["psexec-sensor", "read", "a", "--events-all"]).is_err());
        assert!(Cli::try_parse_from(["psexec-sensor", "frobnicate"]).is_err());
        assert!(
            Cli::try_parse_from(["psexec-sensor", "live", "-i", "x", "--stats-interval", "0"])
                .is_err()
        );
    }

    #[test]
    fn parses_report_from_files_or_captures() {
        let c = Cli::try_parse_from([
            "psexec-sensor",
            "report",
            "--alerts",
            "a.json",
            "--events",
            "e.json",
            "-o",
            "r.html",
        ])
        .unwrap();
        let Command::Report(r) = c.command else {
            panic!()
        };
        assert!(r.inputs.is_empty());
        assert_eq!(r.events, Some(PathBuf::from("e.json")));
        let c = Cli::try_parse_from(["psexec-sensor", "report", "dir", "-o", "r.html"]).unwrap();
        let Command::Report(r) = c.command else {
            panic!()
        };
        assert_eq!(r.inputs, vec![PathBuf::from("dir")]);
        for bad in [
            &["report", "-o", "r.html"][..],
            &["report", "dir"],
            &["report", "dir", "--alerts", "a", "-o", "r"],
            &["report", "--events", "e", "-o", "r"],
            &["report", "--alerts", "a", "--workers", "2", "-o", "r"],
        ] {
            let args = std::iter::once("psexec-sensor").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_output_formats() {
        let c = Cli::try_parse_from([
            "psexec-sensor",
            "read",
            "a.pcap",
            "--log-dir",
            "logs",
            "--log-format",
            "tsv",
            "--eve",
            "syslog:",
            "--sensor-name",
            "tap-1",
            "--community-id-seed",
            "5",
        ])
        .unwrap();
        let Command::Read(r) = c.command else {
            panic!()
        };
        assert_eq!(r.common.log_dir, Some(PathBuf::from("logs")));
        assert_eq!(r.common.log_format, Some(LogFormat::Tsv));
        assert_eq!(r.common.eve, Some(PathBuf::from("syslog:")));
        assert_eq!(r.common.sensor_name.as_deref(), Some("tap-1"));
        assert_eq!(r.common.community_id_seed, Some(5));
        assert!(Cli::try_parse_from([
            "psexec-sensor",
            "read",
            "a",
            "--community-id-seed",
            "65536"
        ])
        .is_err());
    }

    #[test]
    fn parses_live() {
        let c = Cli::try_parse_from([
            "psexec-sensor",
            "live",
            "-i",
            "eth1",
            "-i",
            "eth2",
            "--bpf",
            "tcp port 445",
            "--workers",
            "3",
            "--stats-interval",
            "5",
            "--user",
            "",
            "--count",
            "100",
            "--alerts",
            "a.json",
            "--pidfile",
            "/run/p.pid",
            "--config",
            "c.toml",
        ])
        .unwrap();
        let Command::Live(l) = c.command else {
            panic!()
        };
        assert_eq!(l.interfaces, ["eth1", "eth2"]);
        assert_eq!(l.bpf.as_deref(), Some("tcp port 445"));
        assert_eq!(
            (l.common.workers, l.stats_interval, l.count),
            (Some(3), Some(5), Some(100))
        );
        assert_eq!(l.user.as_deref(), Some(""));
        assert_eq!(l.common.alerts, Some(PathBuf::from("a.json")));
        assert_eq!(l.pidfile, Some(PathBuf::from("/run/p.pid")));
        assert_eq!(l.config, Some(PathBuf::from("c.toml")));
    }
}
