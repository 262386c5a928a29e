//! Capture archives read as one capture (issue 13): a capture cut into many files (by packet
//! count, by time, with names out of time order, overlapping in time) gives exactly the alerts and
//! events of the whole file; the same attack hours apart is two alerts whatever the file names;
//! unrelated captures in one directory give the technique alerts each gives alone.

use crate::common::corpus::repo_captures;
use serde_json::Value;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("archives-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn capture(rel: &str) -> PathBuf {
    let p = repo_captures().join(rel);
    assert!(p.is_file(), "bundled capture missing: {}", p.display());
    p
}

/// What `read` wrote: alerts and events, as JSON text in output order.
#[derive(Debug, PartialEq)]
struct Output {
    alerts: Vec<String>,
    events: Vec<String>,
}

impl Output {
    fn technique(&self) -> Vec<Value> {
        self.alerts
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["kind"] == "technique")
            .collect()
    }
}

fn read(inputs: &[PathBuf], workers: u16, tag: &str) -> Output {
    read_checked(inputs, workers, tag, true)
}

/// [`read`], where some inputs may be bad (exit status 2).
fn read_any(inputs: &[PathBuf], workers: u16, tag: &str) -> Output {
    read_checked(inputs, workers, tag, false)
}

fn read_checked(inputs: &[PathBuf], workers: u16, tag: &str, clean: bool) -> Output {
    let dir = scratch(tag);
    let (alerts, events) = (dir.join("alerts.json"), dir.join("events.json"));
    let mut args: Vec<OsString> = vec!["read".into()];
    args.extend(inputs.iter().map(|p| p.clone().into_os_string()));
    for (k, v) in [
        ("--alerts", alerts.as_os_str()),
        ("--events", events.as_os_str()),
        ("--workers", std::ffi::OsStr::new(&workers.to_string())),
    ] {
        args.push(k.into());
        args.push(v.to_owned());
    }
    args.push("--no-summary".into());
    let o = Command::new(BIN).args(&args).output().expect("binary runs");
    assert!(
        o.status.success() || (!clean && o.status.code() == Some(2)),
        "read {inputs:?}: {:?}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    Output {
        alerts: lines_of(&alerts),
        events: lines_of(&events),
    }
}

fn lines_of(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `editcap ARGS whole DIR/part.pcap` (Wireshark's own splitter); the files it wrote.
fn editcap(whole: &Path, args: &[&str], dir: &Path) -> Vec<PathBuf> {
    let o = Command::new("editcap")
        .args(args)
        .arg(whole)
        .arg(dir.join("part.pcap"))
        .output()
        .expect("editcap (wireshark-common, installed by scripts/setup.sh) must be installed");
    assert!(
        o.status.success(),
        "editcap: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    files_in(dir)
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Renames the parts so that name order is the reverse of time order.
fn reverse_names(parts: &[PathBuf], dir: &Path) -> Vec<PathBuf> {
    let n = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let to = dir.join(format!("capture-{:05}.pcap", n - i));
            std::fs::rename(p, &to).unwrap();
            to
        })
        .collect()
}

/// Classic pcap records of `whole` (header, then each record's bytes).
fn pcap_records(whole: &Path) -> (Vec<u8>, Vec<Vec<u8>>) {
    let b = std::fs::read(whole).unwrap();
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "little-endian µs pcap");
    let mut recs = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        recs.push(b[at..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    (b[..24].to_vec(), recs)
}

/// Deals the records of `whole` round-robin into `k` files: every file spans the whole capture,
/// so they all overlap in time and only a merge by timestamp restores the capture. Records with
/// the same timestamp go to one file: across files their order is not defined (a merge can only
/// break the tie by file), and a receiver-side check may rightly see an ACK overtake its data.
fn deal(whole: &Path, k: usize, dir: &Path) -> Vec<PathBuf> {
    let (header, recs) = pcap_records(whole);
    let mut files: Vec<Vec<u8>> = vec![header; k];
    let mut file = 0;
    for (i, r) in recs.iter().enumerate() {
        if i > 0 && recs[i - 1][..8] != r[..8] {
            file = (file + 1) % k;
        }
        files[file].extend_from_slice(r);
    }
    files
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let p = dir.join(format!("dealt-{i}.pcap"));
            std::fs::write(&p, bytes).unwrap();
            p
        })
        .collect()
}

/// `whole` with every timestamp moved `secs` later.
fn shifted(whole: &Path, secs: u32, to: &Path) {
    let (header, recs) = pcap_records(whole);
    let mut out = header;
    for mut r in recs {
        let t = u32::from_le_bytes(r[..4].try_into().unwrap()) + secs;
        r[..4].copy_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&r);
    }
    std::fs::write(to, out).unwrap();
}

const SPLIT_CAPTURES: [&str; 4] = [
    "lab/a_psexec_default.pcap",
    "lab/k1_psexec_large_upload.pcap",
    "public/401trg/20171220_smb_psexec_add_user.pcap",
    "public/zeek/smb2.pcap",
];

#[test]
fn a_capture_cut_into_many_files_gives_the_whole_files_alerts_and_events() {
    for rel in SPLIT_CAPTURES {
        let whole = capture(rel);
        let tag = rel.replace('/', "_");
        let expected = read(std::slice::from_ref(&whole), 1, &format!("{tag}-whole"));
        assert!(!expected.events.is_empty(), "{rel}: events expected");
        let packets = pcap_records(&whole).1.len();
        // ~40 parts by packet count (pcapng, as editcap writes by default), one per 50 ms of
        // capture time (classic pcap), and overlapping files dealt packet by packet.
        let per_part = (packets / 40).max(2).to_string();
        let by_count = scratch(&format!("{tag}-count"));
        let count_parts = editcap(&whole, &["-c", &per_part], &by_count);
        let by_time = scratch(&format!("{tag}-time"));
        let time_parts = editcap(&whole, &["-F", "pcap", "-i", "0.05"], &by_time);
        let dealt_dir = scratch(&format!("{tag}-dealt"));
        let dealt = deal(&whole, 3, &dealt_dir);
        assert!(
            count_parts.len() >= 20,
            "{rel}: {} parts",
            count_parts.len()
        );
        assert!(time_parts.len() >= 2, "{rel}: {} parts", time_parts.len());
        let reversed = reverse_names(&count_parts, &by_count);
        for (how, inputs) in [
            ("by count, names against time", vec![by_count.clone()]),
            (
                "by count, given in reverse",
                reversed.iter().rev().cloned().collect(),
            ),
            ("by time", time_parts.clone()),
            ("dealt round-robin", dealt.clone()),
        ] {
            for workers in [1, 2] {
                let got = read(&inputs, workers, &format!("{tag}-parts"));
                assert_eq!(
                    got.alerts, expected.alerts,
                    "{rel} {how}, workers {workers}: alerts differ"
                );
                assert_eq!(
                    got.events.len(),
                    expected.events.len(),
                    "{rel} {how}, workers {workers}: event count"
                );
                assert_eq!(
                    got.events, expected.events,
                    "{rel} {how}, workers {workers}: events differ"
                );
            }
        }
    }
}

#[test]
fn the_same_attack_hours_apart_is_two_alerts_whatever_the_names() {
    let whole = capture("lab/a_psexec_default.pcap");
    let dir = scratch("shifted");
    // The later copy's name sorts first.
    let later = dir.join("0-later.pcap");
    shifted(&whole, 3 * 3600, &later);
    let earlier = dir.join("1-earlier.pcap");
    std::fs::copy(&whole, &earlier).unwrap();
    let one = read(std::slice::from_ref(&whole), 1, "shift-one").technique();
    assert_eq!(one.len(), 1, "{one:?}");
    for workers in [1, 2] {
        for inputs in [vec![dir.clone()], vec![later.clone(), earlier.clone()]] {
            let two = read(&inputs, workers, "shift-two").technique();
            assert_eq!(two.len(), 2, "workers {workers}: {two:?}");
            let ts = |a: &Value| a["ts"].as_f64().unwrap_or_else(|| panic!("ts in {a}"));
            assert!(
                (ts(&two[1]) - ts(&two[0]) - 3.0 * 3600.0).abs() < 1.0,
                "in time order, three hours apart: {two:?}"
            );
            for a in &two {
                let mut a = a.clone();
                let mut b = one[0].clone();
                for v in [&mut a, &mut b] {
                    strip_times(v);
                }
                assert_eq!(a, b, "each is the single capture's alert, moved in time");
            }
        }
    }
}

/// Drops every field that holds a time (they differ between a capture and its shifted copy).
fn strip_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| {
                !(k == "ts"
                    || k.ends_with("_ts")
                    || k.starts_with("ts_")
                    || k == "uid"
                    || k.ends_with("_uid")
                    || k == "uids"
                    || k == "id")
            });
            m.values_mut().for_each(strip_times);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}

#[test]
fn unrelated_captures_in_one_directory_alert_as_each_alone() {
    // Different years, different hosts: nothing of one can fold into another.
    let picks = [
        "lab/a_psexec_default.pcap",
        "public/401trg/20171220_smb_psexec_add_user.pcap",
        "public/401trg/20171220_smb_at_schedule.pcap",
        "public/suricata-verify/dcerpc-ctxids/input.pcap",
        "public/zeek/smb2.pcap",
        "public/zeek/smb3_multichannel.pcap",
    ];
    let dir = scratch("unrelated");
    let mut alone = BTreeSet::new();
    for (i, rel) in picks.iter().enumerate() {
        let src = capture(rel);
        // Names in no particular relation to time.
        std::fs::copy(&src, dir.join(format!("{}-{i}.pcap", picks.len() - i))).unwrap();
        for a in read(&[src], 1, "unrelated-one").technique() {
            alone.insert(a.to_string());
        }
    }
    assert!(alone.len() >= 3, "positives among the picks: {alone:?}");
    for workers in [1, 2] {
        let together: BTreeSet<String> = read(std::slice::from_ref(&dir), workers, "unrelated-all")
            .technique()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(together, alone, "workers {workers}");
    }
}

/// `read --follow DIR` running in the background.
struct Follower {
    child: std::process::Child,
    stderr: std::io::BufReader<std::process::ChildStderr>,
    alerts: PathBuf,
    events: PathBuf,
}

impl Follower {
    fn start(dir: &Path, tag: &str) -> Follower {
        let out = scratch(tag);
        let (alerts, events) = (out.join("alerts.json"), out.join("events.json"));
        let child = Command::new(BIN)
            .arg("read")
            .arg("--follow")
            .arg(dir)
            .args(["--settle", "1", "--workers", "2", "--no-summary"])
            .arg("--alerts")
            .arg(&alerts)
            .arg("--events")
            .arg(&events)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary runs");
        let mut child = child;
        // Its first line comes once it catches signals: a stop before that would kill it.
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
        assert!(first.contains("following"), "{first:?}");
        Follower {
            child,
            stderr,
            alerts,
            events,
        }
    }

    /// SIGTERM, then what it wrote; it must stop cleanly (exit 0) within a minute.
    fn stop(mut self) -> Output {
        let pid = self.child.id().to_string();
        let k = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(k.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "--follow did not stop on SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        use std::io::Read;
        self.stderr.read_to_string(&mut err).unwrap();
        assert!(status.success(), "{status:?}\n{err}");
        Output {
            alerts: lines_of(&self.alerts),
            events: lines_of(&self.events),
        }
    }
}

/// Copies `part` into `dir` as a writer finishing a file would: written beside, renamed in.
fn arrive(part: &Path, dir: &Path) {
    let name = part.file_name().unwrap();
    let staging = dir.join(format!(".{}", name.to_string_lossy()));
    std::fs::copy(part, &staging).unwrap();
    std::fs::rename(&staging, dir.join(name)).unwrap();
}

#[test]
fn following_a_directory_as_files_arrive_gives_the_alerts_of_reading_it_whole() {
    let whole = capture("lab/k1_psexec_large_upload.pcap");
    let parts_dir = scratch("follow-parts");
    let parts = editcap(&whole, &["-F", "pcap", "-c", "400"], &parts_dir);
    assert!(parts.len() >= 10);
    let expected = read(std::slice::from_ref(&whole), 2, "follow-whole");
    assert_eq!(expected.technique().len(), 1);
    let dir = scratch("follow-dir");
    let f = Follower::start(&dir, "follow-out");
    for p in &parts {
        arrive(p, &dir);
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    // Let the sensor catch up, so that the stop finds nothing left (the other test stops early).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let got = f.stop();
    assert_eq!(got.alerts, expected.alerts);
    assert_eq!(got.events, expected.events);
}

#[test]
fn a_stop_mid_way_loses_nothing_of_what_had_arrived() {
    let whole = capture("lab/k1_psexec_large_upload.pcap");
    let parts_dir = scratch("stop-parts");
    let parts = editcap(&whole, &["-F", "pcap", "-c", "400"], &parts_dir);
    let dir = scratch("stop-dir");
    let f = Follower::start(&dir, "stop-out");
    let half = &parts[..parts.len() / 2];
    for p in half {
        arrive(p, &dir);
    }
    // The next file is being written when the stop comes: cut inside a record.
    let next = std::fs::read(&parts[half.len()]).unwrap();
    std::fs::write(dir.join("writing.pcap"), &next[..next.len() / 2 + 7]).unwrap();
    let got = f.stop();
    // Reading the same files (the cut one is a bad file there, exit 2) gives the same records.
    let mut inputs: Vec<PathBuf> = half.to_vec();
    inputs.push(dir.join("writing.pcap"));
    let expected = read_any(&inputs, 2, "stop-read");
    assert!(!expected.events.is_empty());
    assert_eq!(got.alerts, expected.alerts);
    assert_eq!(got.events, expected.events);
}
