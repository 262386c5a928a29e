//! Live capture end to end, with no outside network: two network namespaces made for the test,
//! joined by a veth pair (198.51.100.1/24 and .2/24, inside the namespaces only). The capture side
//! runs in one namespace, a lab capture is replayed with libpcap's sendpacket from the other.
//!
//! The namespaces run copies of this test binary (`ip netns exec NS <this binary> probe_child`,
//! role chosen by environment variables), so the code under test is the crate's own
//! `capture::live`. Every wait is bounded; the namespaces (and with them the veth pair) are
//! deleted on drop, also when a test fails.
//!
//! Needs root and `ip netns`; otherwise each test fails saying why (leave them out with
//! `--skip live_netns`). Run alone: `cargo test --test it live_netns:: -- --nocapture`.
#![cfg(all(feature = "live", target_os = "linux"))]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use psexec_sensor::capture::live::{
    drop_privileges, LiveCapture, LiveConfig, PrivilegeDrop, Read, StopFlag, DEFAULT_BPF,
};

const PROBE_ENV: &str = "PSX_LIVE_PROBE";
const LINE_PREFIX: &str = "PSXPROBE ";
/// Longest the whole replay may take before the test gives up.
const WAIT_CAPTURE: Duration = Duration::from_secs(30);
const WAIT_READY: Duration = Duration::from_secs(15);
const WAIT_EXIT: Duration = Duration::from_secs(15);

fn lab_capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

// ---------------------------------------------------------------------------------------------
// Skipping

/// Written past libtest's output capture, so a skip is visible in a plain `cargo test`.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn skip_reason() -> Option<String> {
    match Command::new("id").arg("-u").output() {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        Ok(_) => return Some("not root (network namespaces and packet capture need root)".into()),
        Err(e) => return Some(format!("cannot run `id -u`: {e}")),
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip netns` unavailable: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("`ip` (iproute2) not runnable: {e}")),
    }
}

/// Namespaces for a test; failing to make them (not root, or a container without CAP_SYS_ADMIN)
/// fails the test.
fn netns_or_skip(test: &str) -> Option<NetnsPair> {
    match NetnsPair::create() {
        Ok(p) => Some(p),
        // A check that cannot run must not pass: run as root where namespaces can be made (as CI
        // does), or leave these tests out by name (`--skip live_netns`).
        Err(e) => panic!("live_netns::{test}: cannot create network namespaces here: {e}"),
    }
}

macro_rules! skip_unless_able {
    ($test:expr) => {
        if let Some(why) = skip_reason() {
            panic!(
                "live_netns::{}: cannot run here ({}); run as root, or leave these tests out \
                 with `--skip live_netns`",
                $test, why
            );
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Namespaces

/// Two namespaces `<base>c` (capture side, interface `<base>c`) and `<base>s` (sender side),
/// one veth pair between them. Deleted on drop.
struct NetnsPair {
    cap_ns: String,
    send_ns: String,
    cap_if: String,
    send_if: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetnsPair {
    fn create() -> Result<NetnsPair, String> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        // Interface names are limited to 15 bytes: "psx" + pid (≤ 7) + seq + side.
        let base = format!(
            "psx{}n{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let pair = NetnsPair {
            cap_ns: format!("{base}c"),
            send_ns: format!("{base}s"),
            cap_if: format!("{base}c"),
            send_if: format!("{base}s"),
        };
        run(&["ip", "netns", "add", &pair.cap_ns])?;
        // From here on, Drop cleans up whatever exists.
        run(&["ip", "netns", "add", &pair.send_ns])?;
        run(&[
            "ip",
            "-n",
            &pair.cap_ns,
            "link",
            "add",
            &pair.cap_if,
            "type",
            "veth",
            "peer",
            "name",
            &pair.send_if,
            "netns",
            &pair.send_ns,
        ])?;
        for (ns, ifname, addr) in [
            (&pair.cap_ns, &pair.cap_if, "198.51.100.1/24"),
            (&pair.send_ns, &pair.send_if, "198.51.100.2/24"),
        ] {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", ifname])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(pair)
    }

    /// Runs `program args` inside namespace `ns`; `ip netns exec` execs it, so the child's pid
    /// is the program's (signals reach it directly).
    fn spawn_in(&self, ns: &str, program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().expect("spawn ip netns exec")
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for ns in [&self.cap_ns, &self.send_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child whose stdout and stderr lines arrive on a channel, killed on drop if still running.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Watched {
    fn new(mut child: Child) -> Watched {
        let (tx, rx) = mpsc::channel();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Watched {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits until a line satisfies `pred`, for at most `limit`.
    fn wait_line(&mut self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Waits for the exit for at most `limit` (then kills it), and collects the rest of its output.
    fn finish(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        // The reader threads end at EOF, shortly after exit.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(l);
        }
        status
    }

    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    fn transcript(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn probe_args() -> Vec<&'static str> {
    vec![
        // the test's path in the one integration binary (tests/it/main.rs)
        "live_netns::probe_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]
}

/// `key=value` fields of the probe line `PSXPROBE <tag> ...` (libtest may print its own
/// "test probe_child ... " before it on the same line).
fn fields(lines: &[String], tag: &str) -> Option<std::collections::HashMap<String, String>> {
    let marker = format!("{LINE_PREFIX}{tag}");
    let line = lines
        .iter()
        .find_map(|l| l.find(&marker).map(|at| &l[at..]))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// What the replay should produce

/// Order-independent digest of a multiset of frames: the wrapping sum of their FNV-1a hashes.
fn frame_digest(frame: &[u8]) -> u64 {
    frame.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

struct Expected {
    frames: u64,
    bytes: u64,
    digest: u64,
}

/// The frames of `file` that the default filter passes, read with libpcap and filtered by the
/// very BPF program the capture will run.
fn expected_from(file: &Path) -> Expected {
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).unwrap();
    let prog = dead.compile(DEFAULT_BPF, true).unwrap();
    let mut cap = pcap::Capture::from_file(file).unwrap();
    assert_eq!(
        cap.get_datalink(),
        pcap::Linktype::ETHERNET,
        "lab captures are Ethernet"
    );
    let mut e = Expected {
        frames: 0,
        bytes: 0,
        digest: 0,
    };
    while let Ok(p) = cap.next_packet() {
        if prog.filter(p.data) {
            e.frames += 1;
            e.bytes += p.data.len() as u64;
            e.digest = e.digest.wrapping_add(frame_digest(p.data));
        }
    }
    e
}

// ---------------------------------------------------------------------------------------------
// Child roles (run inside a namespace; ignored in a normal test run)

#[test]
#[ignore = "child role of the live_netns tests, started inside a network namespace"]
fn probe_child() {
    let Ok(role) = std::env::var(PROBE_ENV) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set"));
    let out = |s: String| {
        let mut o = std::io::stdout();
        let _ = writeln!(o, "{LINE_PREFIX}{s}");
        let _ = o.flush();
    };
    match role.as_str() {
        "capture" => {
            let expect: u64 = var("PSX_EXPECT").parse().unwrap();
            let max = Duration::from_secs(var("PSX_MAX_SECS").parse().unwrap());
            let stop = StopFlag::new();
            stop.install_signal_handlers().unwrap();
            let mut cap =
                LiveCapture::open(&LiveConfig::new(var("PSX_IFACE")), stop.clone()).unwrap();
            let dropped = drop_privileges(&var("PSX_USER")).unwrap();
            let uid = unsafe { libc::geteuid() };
            let drop_state = match dropped {
                PrivilegeDrop::Dropped { .. } => "dropped",
                PrivilegeDrop::UserMissing { .. } => "user-missing",
                PrivilegeDrop::NotRoot => "not-root",
            };
            out(format!(
                "READY linktype={} privileges={drop_state} euid={uid}",
                cap.linktype()
            ));
            let deadline = Instant::now() + max;
            let (mut frames, mut bytes, mut digest, mut truncated) = (0u64, 0u64, 0u64, 0u64);
            let mut announced = false;
            let mut last_ts = 0u64;
            let mut ts_backwards = 0u64;
            // One buffer for the whole run, as the sensor's capture thread uses it.
            let mut p = psexec_sensor::capture::Packet {
                ts: psexec_sensor::time::Ts(0),
                linktype: 0,
                orig_len: 0,
                data: Vec::new(),
            };
            loop {
                if Instant::now() > deadline {
                    stop.stop();
                }
                match cap.next_into(&mut p).unwrap() {
                    Read::Packet => {
                        frames += 1;
                        bytes += p.data.len() as u64;
                        digest = digest.wrapping_add(frame_digest(&p.data));
                        if p.orig_len as usize != p.data.len() {
                            truncated += 1;
                        }
                        if p.ts.0 < last_ts {
                            ts_backwards += 1;
                        }
                        last_ts = p.ts.0;
                    }
                    Read::Idle => {}
                    Read::Stopped => break,
                }
                if frames >= expect && !announced {
                    announced = true;
                    out(format!("GOT_ALL frames={frames}"));
                }
            }
            let st = cap.stats().unwrap();
            let by = if Instant::now() > deadline {
                "deadline"
            } else {
                "signal"
            };
            out(format!(
                "RESULT frames={frames} bytes={bytes} digest={digest} truncated={truncated} \
                 ts_backwards={ts_backwards} last_ts={last_ts} received={} dropped={} \
                 if_dropped={} stopped_by={by}",
                st.received, st.dropped, st.if_dropped
            ));
        }
        "send" => {
            let mut tx = pcap::Capture::from_device(var("PSX_IFACE").as_str())
                .unwrap()
                .open()
                .unwrap();
            let mut file = pcap::Capture::from_file(var("PSX_FILE")).unwrap();
            let (mut frames, mut bytes) = (0u64, 0u64);
            while let Ok(p) = file.next_packet() {
                tx.sendpacket(p.data).unwrap();
                frames += 1;
                bytes += p.data.len() as u64;
            }
            out(format!("SENT frames={frames} bytes={bytes}"));
        }
        other => panic!("unknown probe role {other}"),
    }
}

fn run_sender(pair: &NetnsPair, me: &Path, file: &Path) -> String {
    let file_s = file.to_str().unwrap();
    let mut sender = Watched::new(pair.spawn_in(
        &pair.send_ns,
        me,
        &probe_args(),
        &[
            (PROBE_ENV, "send"),
            ("PSX_IFACE", &pair.send_if),
            ("PSX_FILE", file_s),
        ],
    ));
    let status = sender.finish(WAIT_CAPTURE);
    assert!(
        status.is_some_and(|s| s.success()),
        "sender failed or hung ({status:?}):\n{}",
        sender.transcript()
    );
    sender.transcript()
}

// ---------------------------------------------------------------------------------------------
// Tests

/// The capture layer alone: every frame of the replay that the default filter passes arrives
/// intact (count, bytes, content digest), none is cut or dropped, the capture keeps working after
/// dropping root, and SIGTERM (even delivered twice) stops it cleanly.
#[test]
fn live_capture_sees_every_replayed_frame() {
    skip_unless_able!("live_capture_sees_every_replayed_frame");
    let pcap_file = lab_capture("a_psexec_default.pcap");
    let expected = expected_from(&pcap_file);
    assert!(
        expected.frames > 50,
        "the lab capture has SMB traffic to replay"
    );

    let Some(pair) = netns_or_skip("live_capture_sees_every_replayed_frame") else {
        return;
    };
    let me = std::env::current_exe().unwrap();
    let expect_s = expected.frames.to_string();
    let mut cap = Watched::new(pair.spawn_in(
        &pair.cap_ns,
        &me,
        &probe_args(),
        &[
            (PROBE_ENV, "capture"),
            ("PSX_IFACE", &pair.cap_if),
            ("PSX_EXPECT", &expect_s),
            ("PSX_MAX_SECS", "40"),
            ("PSX_USER", "nobody"),
        ],
    ));
    let ready = cap.wait_line(WAIT_READY, |l| l.contains(&format!("{LINE_PREFIX}READY")));
    assert!(
        ready.is_some(),
        "capture did not start:\n{}",
        cap.transcript()
    );

    let sent = run_sender(&pair, &me, &pcap_file);
    let got_all = cap.wait_line(WAIT_CAPTURE, |l| {
        l.contains(&format!("{LINE_PREFIX}GOT_ALL"))
    });
    // Twice, as `timeout` and some supervisors do: the second must not cut the clean stop short.
    cap.terminate();
    cap.terminate();
    let status = cap.finish(WAIT_EXIT);
    let log = cap.transcript();
    assert!(
        status.is_some_and(|s| s.success()),
        "capture exit {status:?}:\n{log}\nsender:\n{sent}"
    );
    assert!(
        got_all.is_some(),
        "capture never saw all {} frames:\n{log}",
        expected.frames
    );

    let ready = fields(&cap.seen, "READY").unwrap();
    assert_eq!(ready["linktype"], "1", "veth is Ethernet");
    if ready["privileges"] == "dropped" {
        assert_ne!(ready["euid"], "0", "root was dropped");
    } else {
        say(&format!(
            "live_netns: no user 'nobody' here, privilege drop not exercised ({})",
            ready["privileges"]
        ));
    }
    let r = fields(&cap.seen, "RESULT").unwrap_or_else(|| panic!("no RESULT line:\n{log}"));
    assert_eq!(
        r["stopped_by"], "signal",
        "SIGTERM ended the capture:\n{log}"
    );
    assert_eq!(r["frames"], expected.frames.to_string(), "frames:\n{log}");
    assert_eq!(r["bytes"], expected.bytes.to_string(), "bytes:\n{log}");
    assert_eq!(
        r["digest"],
        expected.digest.to_string(),
        "frame contents differ:\n{log}"
    );
    assert_eq!(r["truncated"], "0", "snaplen cut frames:\n{log}");
    assert_eq!(r["ts_backwards"], "0", "timestamps go forward:\n{log}");
    assert_eq!(r["dropped"], "0", "kernel drops:\n{log}");
    let received: u64 = r["received"].parse().unwrap();
    assert!(
        received >= expected.frames,
        "kernel counted {received} < {}:\n{log}",
        expected.frames
    );
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let last_ts: u64 = r["last_ts"].parse().unwrap();
    assert!(
        now_ns.abs_diff(last_ts) < 600 * 1_000_000_000,
        "live timestamps are capture-time nanoseconds near now: {last_ts} vs {now_ns}"
    );
}

/// The whole sensor: `psexec-sensor live` in one namespace (two workers, so the capture thread,
/// the sharded engines and the merge are all exercised), the lab's impacket psexec.py session
/// replayed from the other; after SIGTERM the sensor must have written the technique alert with
/// the tool, hosts, service name and binary path of the capture's truth file, and a final counter
/// line that saw every replayed frame the filter passes. Expects the `live` command to print,
/// once the interface is open, a line that names the interface ("listening on IFACE").
#[test]
fn live_command_alerts_on_replayed_psexec() {
    skip_unless_able!("live_command_alerts_on_replayed_psexec");
    let pcap_file = lab_capture("a_psexec_default.pcap");
    let truth: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lab_capture("a_psexec_default.pcap.truth.json")).unwrap(),
    )
    .unwrap();
    let expected = expected_from(&pcap_file);
    let Some(pair) = netns_or_skip("live_command_alerts_on_replayed_psexec") else {
        return;
    };
    let me = std::env::current_exe().unwrap();
    let sensor = Path::new(env!("CARGO_BIN_EXE_psexec-sensor"));
    let mut live = Watched::new(pair.spawn_in(
        &pair.cap_ns,
        sensor,
        &[
            "live",
            "-i",
            &pair.cap_if,
            "--workers",
            "2",
            "--stats-interval",
            "1",
        ],
        &[],
    ));
    let iface = pair.cap_if.clone();
    let ready = live.wait_line(WAIT_READY, |l| l.contains(&format!("listening on {iface}")));
    assert!(
        ready.is_some(),
        "`live` did not report the open interface:\n{}",
        live.transcript()
    );

    run_sender(&pair, &me, &pcap_file);
    // The sensor has no way to say "caught up" on a live link; its read timeout is 100 ms, so a
    // generous pause lets it see the last frames before the stop request.
    std::thread::sleep(Duration::from_secs(2));
    live.terminate();
    let status = live.finish(Duration::from_secs(30));
    let log = live.transcript();
    assert!(
        status.is_some_and(|s| s.success()),
        "`live` exit {status:?}:\n{log}"
    );

    let json: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    let service = &truth["expect"]["services"][0];
    let alert = json
        .iter()
        .find(|v| v["kind"] == "technique")
        .unwrap_or_else(|| panic!("no technique alert after SIGTERM:\n{log}"));
    assert_eq!(alert["tool"], truth["tool"], "{alert}");
    assert_eq!(alert["tool"], "impacket-psexec", "{alert}");
    assert_eq!(alert["technique"], truth["technique"], "{alert}");
    assert_eq!(alert["src_ip"], truth["attacker_ip"], "{alert}");
    assert_eq!(alert["dst_ip"], truth["victim_ip"], "{alert}");
    assert_eq!(alert["service_name"], service["name"], "{alert}");
    assert_eq!(alert["binary_path"], service["binary_path"], "{alert}");
    assert!(
        json.iter()
            .any(|v| v["kind"] == "host_summary" && v["final"] == true),
        "the end-of-input host summary is written on SIGTERM:\n{log}"
    );

    let stats: Vec<&serde_json::Value> = json.iter().filter(|v| v["log"] == "stats").collect();
    let last = stats
        .last()
        .unwrap_or_else(|| panic!("no stats line:\n{log}"));
    assert_eq!(
        last["final"], true,
        "the last stats line is the exit one:\n{log}"
    );
    assert_eq!(last["interface"], iface.as_str());
    assert!(
        last["packets"].as_u64().unwrap() >= expected.frames,
        "{last}"
    );
    assert!(last["bytes"].as_u64().unwrap() >= expected.bytes, "{last}");
    assert_eq!(last["kernel_dropped"], 0, "{last}");
    assert_eq!(last["channel_drops"], 0, "{last}");
    assert!(
        last["kernel_received"].as_u64().unwrap() >= expected.frames,
        "{last}"
    );
    assert!(last["rss_bytes"].as_u64().unwrap() > 0, "{last}");
    assert!(last["technique_alerts"].as_u64().unwrap() >= 1, "{last}");
    assert_eq!(
        last["flows_open"], 0,
        "every flow was closed at the stop:\n{log}"
    );
}
