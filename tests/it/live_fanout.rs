//! `live` on AF_PACKET fanout, end to end inside network namespaces made by the test (helpers in
//! `live_netns`): the same technique alerts as `read` on the same captures with 1, 2 and 4 workers,
//! with a tap's two directions on two interfaces, and with the libpcap fallback; no kernel drop at the replay rate used
//! (libpcap's sendpacket, as fast as it goes); SIGHUP reopens outputs without losing the pending
//! alert; the sensor runs unprivileged with file capabilities and says which it lacks without them.
//!
//! Needs root and `ip netns` (fails otherwise, like `live_netns`). Every wait is bounded.
#![cfg(all(feature = "live", target_os = "linux"))]

use super::live_netns::{
    lab_capture, netns_or_skip, probe_args, run_sender, skip_reason, NetnsPair, Watched, PROBE_ENV,
    WAIT_CAPTURE, WAIT_READY,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const SENSOR: &str = env!("CARGO_BIN_EXE_psexec-sensor");
/// After the replay: long enough for the last ring block to be handed over (50 ms) and for the
/// merge hold with two interfaces (200 ms), with a wide margin on a busy machine.
const SETTLE: Duration = Duration::from_secs(2);
const WAIT_EXIT: Duration = Duration::from_secs(30);

fn able(test: &str) {
    if let Some(why) = skip_reason() {
        panic!("live_fanout::{test}: cannot run here ({why}); run as root, or --skip live_fanout");
    }
}

/// What makes two technique alerts the same finding.
fn finding(a: &Value) -> String {
    format!(
        "{} {}->{} tool={} service={} path={}",
        a["technique"], a["src_ip"], a["dst_ip"], a["tool"], a["service_name"], a["binary_path"]
    )
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn techniques(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|v| v["kind"] == "technique")
        .map(finding)
        .collect()
}

/// `read`'s technique alerts on `file`.
fn read_findings(file: &Path) -> BTreeSet<String> {
    let out = Command::new(SENSOR).arg("read").arg(file).output().unwrap();
    assert!(out.status.success(), "read {}: {out:?}", file.display());
    techniques(&json_lines(&String::from_utf8_lossy(&out.stdout)))
}

/// Starts `live` in the capture namespace and waits until it listens.
fn start_live(pair: &NetnsPair, args: &[&str]) -> Watched {
    let mut full = vec!["live", "--stats-interval", "1", "--ring-mib", "4"];
    full.extend_from_slice(args);
    let mut live = Watched::new(pair.spawn_in(&pair.cap_ns, Path::new(SENSOR), &full, &[]));
    let ready = live.wait_line(WAIT_READY, |l| l.contains("listening on"));
    assert!(
        ready.is_some(),
        "`live {args:?}` did not start:\n{}",
        live.transcript()
    );
    live
}

/// Stops `live` with SIGTERM; its exit must be clean. Returns its JSON lines (alerts on stdout,
/// stats on stderr).
fn stop_live(mut live: Watched, what: &str) -> Vec<Value> {
    std::thread::sleep(SETTLE);
    live.terminate();
    let status = live.finish(WAIT_EXIT);
    let log = live.transcript();
    assert!(
        status.is_some_and(|s| s.success()),
        "{what}: exit {status:?}:\n{log}"
    );
    json_lines(&log)
}

fn final_stats<'a>(records: &'a [Value], what: &str) -> &'a Value {
    let last = records
        .iter()
        .rfind(|v| v["log"] == "stats")
        .unwrap_or_else(|| panic!("{what}: no stats line"));
    assert_eq!(
        last["final"], true,
        "{what}: the last stats line is the summary"
    );
    last
}

fn replay_split(pair: &NetnsPair, links: &(String, String), file: &Path) {
    let me = std::env::current_exe().unwrap();
    let mut sender = Watched::new(pair.spawn_in(
        &pair.send_ns,
        &me,
        &probe_args(),
        &[
            (PROBE_ENV, "send_split"),
            ("PSX_IFACE", &pair.send_if),
            ("PSX_IFACE2", &links.1),
            ("PSX_FILE", file.to_str().unwrap()),
        ],
    ));
    let status = sender.finish(WAIT_CAPTURE);
    let log = sender.transcript();
    assert!(status.is_some_and(|s| s.success()), "split sender: {log}");
    assert!(
        !log.contains("on_a=0 ") && !log.contains("on_b=0"),
        "both links carried frames: {log}"
    );
}

#[test]
fn fanout_workers_and_a_split_tap_alert_as_read_does() {
    able("fanout_workers_and_a_split_tap_alert_as_read_does");
    let captures = [
        "a_psexec_default.pcap",
        "i1_smb1_psexec.pcap",
        "e_services_create_start.pcap",
    ];
    let pair = netns_or_skip("fanout_workers_and_a_split_tap_alert_as_read_does").unwrap();
    let links = pair.add_link().expect("second veth pair");
    let me = std::env::current_exe().unwrap();
    for name in captures {
        let file = lab_capture(name);
        let expected = read_findings(&file);
        assert!(!expected.is_empty(), "{name}: read finds the technique");
        let mut flows_one_worker = None;
        // (workers, tap split over two links, capture mode)
        for (workers, two_links, mode) in [
            ("1", false, "afpacket"),
            ("2", false, "afpacket"),
            ("4", false, "afpacket"),
            ("2", true, "afpacket"),
            ("2", false, "pcap"),
        ] {
            let what = format!("{name}, {workers} workers, two links: {two_links}, {mode}");
            let mut args = vec![
                "-i",
                pair.cap_if.as_str(),
                "--workers",
                workers,
                "--capture",
                mode,
            ];
            if two_links {
                args.extend(["-i", links.0.as_str()]);
            }
            let live = start_live(&pair, &args);
            if two_links {
                replay_split(&pair, &links, &file);
            } else {
                run_sender(&pair, &me, &file);
            }
            let records = stop_live(live, &what);
            assert_eq!(techniques(&records), expected, "{what}");
            let st = final_stats(&records, &what);
            assert_eq!(st["kernel_dropped"], 0, "{what}: {st}");
            assert_eq!(st["ring_freezes"], 0, "{what}: {st}");
            assert_eq!(st["channel_drops"], 0, "{what}: {st}");
            let sockets = st["sockets"].as_array().unwrap();
            let n: usize = workers.parse().unwrap();
            let expect_sockets = if mode == "pcap" {
                1
            } else {
                n * if two_links { 2 } else { 1 }
            };
            assert_eq!(sockets.len(), expect_sockets, "{what}: {st}");
            let frames: u64 = sockets.iter().map(|s| s["frames"].as_u64().unwrap()).sum();
            assert_eq!(frames, st["packets"].as_u64().unwrap(), "{what}: {st}");
            assert_eq!(st["workers"].as_array().unwrap().len(), n, "{what}: {st}");
            // A connection split over two workers would be counted as a flow by each.
            let flows = st["flows"].as_u64().unwrap();
            if !two_links {
                assert_eq!(
                    *flows_one_worker.get_or_insert(flows),
                    flows,
                    "{what}: {st}"
                );
            }
            assert_eq!(st["flows_open"], 0, "{what}: every flow closed at the stop");
        }
    }
}

/// Acceptance 2: SIGHUP during a run with an open attack instance, after logrotate-style renames.
#[test]
fn sighup_reopens_outputs_and_keeps_the_pending_alert() {
    able("sighup_reopens_outputs_and_keeps_the_pending_alert");
    let pair = netns_or_skip("sighup_reopens_outputs_and_keeps_the_pending_alert").unwrap();
    let me = std::env::current_exe().unwrap();
    let dir = temp_dir("hup");
    // The output directories belong to the user the sensor drops to (as a service's would), so it
    // can create the new files after the renames.
    let logs = dir.join("zeek");
    std::fs::create_dir(&logs).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(chown.success());
    let (alerts, events, eve) = (
        dir.join("alerts.json"),
        dir.join("events.json"),
        dir.join("eve.json"),
    );
    let (smb_files, notice) = (logs.join("smb_files.log"), logs.join("notice.log"));
    let truth: Value = serde_json::from_slice(
        &std::fs::read(lab_capture("a_psexec_default.pcap.truth.json")).unwrap(),
    )
    .unwrap();
    let mut live = start_live(
        &pair,
        &[
            "-i",
            &pair.cap_if,
            "--workers",
            "2",
            "--alert-after",
            "600",
            "--alerts",
            alerts.to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--eve",
            eve.to_str().unwrap(),
            "--log-dir",
            logs.to_str().unwrap(),
            "--log-format",
            "tsv",
        ],
    );
    run_sender(&pair, &me, &lab_capture("a_psexec_default.pcap"));
    std::thread::sleep(SETTLE);
    let renamed = |p: &Path| PathBuf::from(format!("{}.1", p.display()));
    for p in [&alerts, &events, &eve, &smb_files] {
        if let Err(e) = std::fs::rename(p, renamed(p)) {
            let listing = Command::new("ls").arg("-lR").arg(&dir).output().unwrap();
            panic!(
                "{}: {e}\n{}\n{}",
                p.display(),
                String::from_utf8_lossy(&listing.stdout),
                live.transcript()
            );
        }
    }
    live.signal("HUP");
    let reopened = live.wait_line(WAIT_READY, |l| l.contains("SIGHUP: reopened"));
    assert!(
        reopened.is_some(),
        "no reopen after SIGHUP:\n{}",
        live.transcript()
    );
    run_sender(&pair, &me, &lab_capture("f_benign_admin_upload.pcap"));
    stop_live(live, "after SIGHUP");

    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (old_events, new_events) = (read(&renamed(&events)), read(&events));
    assert!(old_events.contains(truth["expect"]["services"][0]["name"].as_str().unwrap()));
    assert!(
        new_events.contains("notes.txt"),
        "the second replay went to the new file"
    );
    assert!(
        !old_events.contains("notes.txt"),
        "nothing of it went to the renamed file"
    );
    // --eve and --log-dir (TSV) were reopened too: the renamed files end before the second
    // replay, the new ones hold it (a TSV log under fresh headers), and the alert, written after
    // SIGHUP, is in the new EVE file and in notice.log (never renamed, appended to).
    let (old_eve, new_eve) = (read(&renamed(&eve)), read(&eve));
    assert!(old_eve.contains("\"event_type\":\"smb\"") && !old_eve.contains("notes.txt"));
    assert!(new_eve.contains("notes.txt"), "EVE after SIGHUP: {new_eve}");
    let (old_files, new_files) = (read(&renamed(&smb_files)), read(&smb_files));
    assert!(
        old_files
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("#close")),
        "{old_files}"
    );
    assert!(!old_files.contains("notes.txt"));
    assert!(
        new_files.starts_with("#separator") && new_files.contains("notes.txt"),
        "{new_files}"
    );
    let service = truth["expect"]["services"][0]["name"].as_str().unwrap();
    let eve_techniques: Vec<Value> = json_lines(&new_eve)
        .into_iter()
        .filter(|v| v["event_type"] == "alert" && v["alert"]["metadata"]["technique"].is_array())
        .collect();
    assert_eq!(
        eve_techniques.len(),
        1,
        "once, in the new EVE file: {new_eve}"
    );
    assert_eq!(
        eve_techniques[0]["alert"]["metadata"]["service_name"][0],
        service
    );
    assert!(json_lines(&old_eve)
        .iter()
        .all(|v| v["event_type"] != "alert"));
    let notices = read(&notice);
    assert!(
        notices.starts_with("#separator") && notices.contains("PsExec::Service_Create"),
        "notice.log: {notices}"
    );
    let old_alerts = json_lines(&read(&renamed(&alerts)));
    let new_alerts = json_lines(&read(&alerts));
    assert!(
        techniques(&old_alerts).is_empty(),
        "the alert was still pending at SIGHUP"
    );
    let written: Vec<&Value> = new_alerts
        .iter()
        .filter(|v| v["kind"] == "technique")
        .collect();
    assert_eq!(written.len(), 1, "written once: {new_alerts:?}");
    let a = written[0];
    let service = &truth["expect"]["services"][0];
    assert_eq!(a["src_ip"], truth["attacker_ip"], "{a}");
    assert_eq!(a["dst_ip"], truth["victim_ip"], "{a}");
    assert_eq!(a["service_name"], service["name"], "complete: {a}");
    assert_eq!(a["binary_path"], service["binary_path"], "complete: {a}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("psx-live-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // Readable and traversable by an unprivileged user (the capabilities test runs as nobody).
    Command::new("chmod").arg("755").arg(&d).status().unwrap();
    d
}

/// Without root: the message names the capabilities and setcap; with them granted on the binary
/// (file capabilities), an ordinary user captures and alerts.
#[test]
fn unprivileged_with_file_capabilities() {
    able("unprivileged_with_file_capabilities");
    let pair = netns_or_skip("unprivileged_with_file_capabilities").unwrap();
    let me = std::env::current_exe().unwrap();
    let dir = temp_dir("caps");
    let bin = dir.join("psexec-sensor");
    std::fs::copy(SENSOR, &bin).unwrap();
    let as_nobody = |extra: &[&str]| {
        let mut args = vec![
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            bin.to_str().unwrap(),
            "live",
            "-i",
            pair.cap_if.as_str(),
            "--user",
            "",
            "--ring-mib",
            "4",
        ];
        args.extend_from_slice(extra);
        pair.spawn_in(&pair.cap_ns, Path::new("setpriv"), &args, &[])
    };
    let mut denied = Watched::new(as_nobody(&[]));
    let status = denied.finish(WAIT_EXIT);
    let log = denied.transcript();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{log}");
    for needle in ["CAP_NET_RAW", "CAP_NET_ADMIN", "setcap"] {
        assert!(log.contains(needle), "{needle}: {log}");
    }

    let set = Command::new("setcap")
        .args(["cap_net_raw,cap_net_admin=eip", bin.to_str().unwrap()])
        .output()
        .expect("setcap (libcap2-bin, installed by scripts/setup.sh)");
    assert!(set.status.success(), "{set:?}");
    let mut live = Watched::new(as_nobody(&["--workers", "2"]));
    let ready = live.wait_line(WAIT_READY, |l| l.contains("listening on"));
    assert!(
        ready.is_some(),
        "with file capabilities:\n{}",
        live.transcript()
    );
    run_sender(&pair, &me, &lab_capture("a_psexec_default.pcap"));
    let records = stop_live(live, "unprivileged");
    assert_eq!(
        techniques(&records),
        read_findings(&lab_capture("a_psexec_default.pcap"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
