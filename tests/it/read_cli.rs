//! The built binary over real captures and over bad input.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

use crate::common::corpus::{repo_captures, shared_captures};

fn lab(name: &str) -> PathBuf {
    repo_captures().join("lab").join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("read_cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().expect("binary runs")
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// Every capture file below `dir` (by extension, for listing only: the binary decides by magic).
fn captures_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let n = p.file_name().unwrap().to_string_lossy().to_string();
                if [".pcap", ".pcapng", ".cap", ".pcap.gz"]
                    .iter()
                    .any(|x| n.ends_with(x))
                {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_capture_reads_cleanly() {
    let dirs = vec![repo_captures(), shared_captures()];
    for dir in dirs {
        let files = captures_in(&dir);
        assert!(!files.is_empty(), "no captures under {}", dir.display());
        for f in files {
            let out = scratch("all").join("flows.json");
            let o = run(&[
                os("read"),
                f.as_os_str(),
                os("--flows"),
                out.as_os_str(),
                os("--alerts"),
                os("/dev/null"),
            ]);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success(),
                "{}: exit {:?}\n{stderr}",
                f.display(),
                o.status.code()
            );
            assert!(
                !stderr.contains("psexec-sensor: "),
                "{}: {stderr}",
                f.display()
            );
            let flows = json_lines(&out);
            assert!(!flows.is_empty(), "{}: no TCP flows", f.display());
            let packets: u64 = stderr
                .lines()
                .find(|l| l.contains("packets"))
                .and_then(|l| l.split(", ").nth(1))
                .and_then(|p| p.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            assert!(packets > 0, "{}: {stderr}", f.display());
        }
    }
}

#[test]
fn bad_inputs_are_reported_and_good_ones_still_read() {
    let d = scratch("bad");
    let good = lab("c_smbexec.pcap");
    let missing = d.join("missing.pcap");
    let empty = d.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let wrong = d.join("wrong.pcap");
    std::fs::write(&wrong, b"GIF89a this is not a capture").unwrap();
    let truncated = d.join("truncated.pcap");
    let bytes = std::fs::read(lab("a_psexec_default.pcap")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let flows = d.join("flows.json");
    let events = d.join("events.json");
    let o = run(&[
        os("read"),
        missing.as_os_str(),
        empty.as_os_str(),
        wrong.as_os_str(),
        truncated.as_os_str(),
        good.as_os_str(),
        os("--flows"),
        flows.as_os_str(),
        os("--events"),
        events.as_os_str(),
        os("--alerts"),
        os("/dev/null"),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let line = |p: &Path, why: &str| {
        let want = format!("psexec-sensor: {}: {why}", p.display());
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "missing {want:?} in\n{stderr}"
        );
    };
    line(&missing, "no such file");
    line(&empty, "not a capture file: empty file");
    line(&wrong, "not a capture file: bad magic");
    line(&truncated, "truncated");
    // The good file (and the truncated one's packets before the cut) were processed.
    let flows = json_lines(&flows);
    let good_ports: Vec<u64> = flows
        .iter()
        .filter_map(|f| f["id.resp_p"].as_u64())
        .collect();
    assert!(good_ports.contains(&445), "{flows:?}");
    let tshark_good = tshark_streams(&good);
    let tshark_trunc = tshark_streams(&lab("a_psexec_default.pcap"));
    if let (Some(g), Some(t)) = (tshark_good, tshark_trunc) {
        let pairs = |m: &HashMap<DirKey, u64>| {
            let mut s: Vec<_> = m
                .keys()
                .map(|(a, ap, b, bp)| {
                    let (x, y) = ((a.clone(), *ap), (b.clone(), *bp));
                    if x <= y {
                        (x, y)
                    } else {
                        (y, x)
                    }
                })
                .collect();
            s.sort();
            s.dedup();
            s.len()
        };
        let with_payload = flows
            .iter()
            .filter(|f| {
                f["orig_bytes_delivered"].as_u64().unwrap_or(0)
                    + f["resp_bytes_delivered"].as_u64().unwrap_or(0)
                    + f["orig_skipped_bytes"].as_u64().unwrap_or(0)
                    + f["resp_skipped_bytes"].as_u64().unwrap_or(0)
                    > 0
            })
            .count();
        // The truncated copy lost part of its last packet only: every connection still shows.
        assert_eq!(
            with_payload,
            pairs(&g) + pairs(&t),
            "flows from both the good file and the truncated one"
        );
    }
    let events = json_lines(&events);
    assert!(
        events.iter().any(|e| e["log"] == "anomaly"
            && e["kind"] == "capture"
            && e["detail"].as_str().unwrap_or("").contains("truncated")),
        "{events:?}"
    );
}

#[test]
fn gzip_and_directories_give_the_same_flows() {
    let d = scratch("gz");
    let src = lab("c_smbexec.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let gz_path = d.join("sub").join("copy.pcap.gz");
    std::fs::create_dir_all(gz_path.parent().unwrap()).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &bytes).unwrap();
    std::fs::write(&gz_path, enc.finish().unwrap()).unwrap();
    std::fs::write(d.join("sub").join("copy.pcap.gz.truth.json"), b"{}").unwrap();
    let a = d.join("a.json");
    let b = d.join("b.json");
    let o1 = run(&[
        os("read"),
        src.as_os_str(),
        os("--flows"),
        a.as_os_str(),
        os("--no-summary"),
    ]);
    let o2 = run(&[
        os("read"),
        d.as_os_str(),
        os("--flows"),
        b.as_os_str(),
        os("--no-summary"),
    ]);
    assert!(
        o1.status.success() && o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    let (a, b) = (json_lines(&a), json_lines(&b));
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn live_usage_and_open_errors_are_reported() {
    // No interface (neither -i nor a config file): an error naming what to give.
    let o = run(&[os("live")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("-i IFACE"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&[os("live"), os("whatever")]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a stray argument is a usage error"
    );
    // An interface that does not exist (or no right to capture): exit 2 with the reason, no alerts.
    let o = run(&[
        os("live"),
        os("-i"),
        os("psx-no-such-if0"),
        os("--duration"),
        os("1"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("psx-no-such-if0"), "{err}");
    assert!(o.stdout.is_empty());
    let o = run(&[os("read")]);
    assert!(!o.status.success(), "read without inputs is a usage error");
}

/// Per direction (src, sport, dst, dport) → bytes covered by TCP payload (union of sequence
/// ranges), from tshark. None when tshark is absent.
type DirKey = (String, u64, String, u64);

fn tshark_streams(cap: &Path) -> Option<HashMap<DirKey, u64>> {
    let o = Command::new("tshark")
        .arg("-r")
        .arg(cap)
        .args(["-Y", "tcp.len > 0", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "tcp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
        ])
        .args(["-e", "tcp.dstport", "-e", "tcp.seq_raw", "-e", "tcp.len"])
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let mut segs: BTreeMap<DirKey, Vec<(u32, u64)>> = BTreeMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let p: Vec<&str> = l.split('|').collect();
        if p.len() < 8 {
            continue;
        }
        let src = if p[0].is_empty() { p[1] } else { p[0] };
        let dst = if p[3].is_empty() { p[4] } else { p[3] };
        let (Ok(sp), Ok(dp), Ok(seq), Ok(len)) = (
            p[2].parse(),
            p[5].parse(),
            p[6].parse::<u32>(),
            p[7].parse::<u64>(),
        ) else {
            continue;
        };
        segs.entry((src.into(), sp, dst.into(), dp))
            .or_default()
            .push((seq, len));
    }
    let mut out = HashMap::new();
    for (k, v) in segs {
        let base = v[0].0;
        let mut rel: Vec<(i64, i64)> = v
            .iter()
            .map(|(s, l)| (s.wrapping_sub(base) as i32 as i64, *l as i64))
            .collect();
        rel.sort();
        let (mut union, mut end) = (0i64, i64::MIN);
        for (s, l) in rel {
            let e = s + l;
            if s >= end {
                union += l;
                end = e;
            } else if e > end {
                union += e - end;
                end = e;
            }
        }
        out.insert(k, union as u64);
    }
    Some(out)
}

/// The bytes we hand the parsers per direction (plus the gaps we declare) cover exactly what
/// tshark sees on the wire, on lab captures and a large one.
#[test]
fn delivered_bytes_match_tshark() {
    let mut caps = vec![
        lab("a_psexec_default.pcap"),
        lab("f_benign_admin_upload.pcap"),
        lab("k1_psexec_large_upload.pcap"),
    ];
    {
        let s = shared_captures();
        for rel in [
            "public/elcabezzonn/remcom.pcap",
            "public/elcabezzonn/impacket_psexec.pcap.gz",
            "public/pcap-attack/LM_psexec_smb_dcerpc_epm_svcctl.pcapng",
            "public/suricata-verify/smb3-02-midstream/input.pcap",
            "public/zeek/smb3_multichannel.pcap",
        ] {
            caps.push(s.join(rel));
        }
    }
    for cap in caps {
        let tshark = tshark_streams(&cap)
            .expect("tshark is needed for this cross-check (scripts/setup.sh installs it)");
        let d = scratch("tshark");
        let flows = d.join("flows.json");
        let o = run(&[
            os("read"),
            cap.as_os_str(),
            os("--flows"),
            flows.as_os_str(),
            os("--no-summary"),
        ]);
        assert!(o.status.success());
        let flows = json_lines(&flows);
        let mut checked = 0;
        for f in flows.iter().filter(|f| f["app"] == "parsed") {
            let oh = f["id.orig_h"].as_str().unwrap().to_string();
            let rh = f["id.resp_h"].as_str().unwrap().to_string();
            let (op, rp) = (
                f["id.orig_p"].as_u64().unwrap(),
                f["id.resp_p"].as_u64().unwrap(),
            );
            let ours_o =
                f["orig_bytes_delivered"].as_u64().unwrap() + f["orig_gap_bytes"].as_u64().unwrap();
            let ours_r =
                f["resp_bytes_delivered"].as_u64().unwrap() + f["resp_gap_bytes"].as_u64().unwrap();
            let t_o = tshark
                .get(&(oh.clone(), op, rh.clone(), rp))
                .copied()
                .unwrap_or(0);
            let t_r = tshark.get(&(rh, rp, oh, op)).copied().unwrap_or(0);
            assert_eq!((ours_o, ours_r), (t_o, t_r), "{}: flow {f}", cap.display());
            checked += 1;
        }
        assert!(checked > 0, "{}: no parsed flows", cap.display());
    }
}

#[test]
fn events_to_stdout_are_json_lines() {
    let d = scratch("stdout");
    let truncated = d.join("cut.pcap");
    let bytes = std::fs::read(lab("c_smbexec.pcap")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let o = run(&[
        os("read"),
        truncated.as_os_str(),
        os("--events"),
        os("-"),
        os("--no-summary"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|v| v["log"] == "anomaly" && v["kind"] == "capture" && v["layer"] == "capture"),
        "{stdout}"
    );
    assert!(
        o.stderr.starts_with(b"psexec-sensor: "),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn reads_a_capture_from_stdin() {
    let d = scratch("stdin");
    let a = d.join("a.json");
    let b = d.join("b.json");
    let src = lab("c_smbexec.pcap");
    let o1 = run(&[
        os("read"),
        src.as_os_str(),
        os("--flows"),
        a.as_os_str(),
        os("--no-summary"),
    ]);
    let o2 = Command::new(BIN)
        .args([
            os("read"),
            os("-"),
            os("--flows"),
            b.as_os_str(),
            os("--no-summary"),
            // Standard input is read once, by a capture thread feeding both workers.
            os("--workers"),
            os("2"),
        ])
        .stdin(std::fs::File::open(&src).unwrap())
        .output()
        .unwrap();
    assert!(
        o1.status.success() && o2.status.success(),
        "{}",
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(json_lines(&a), json_lines(&b));
    assert!(!json_lines(&a).is_empty());
}

/// Sharded engines give the same flows, events and summary as one engine.
#[test]
fn workers_give_the_same_results() {
    let d = scratch("workers");
    let mut inputs = vec![repo_captures()];
    {
        let s = shared_captures();
        inputs.push(s.join("public/elcabezzonn"));
    }
    let mut outs = Vec::new();
    for n in ["1", "3"] {
        let flows = d.join(format!("flows-{n}.json"));
        let events = d.join(format!("events-{n}.json"));
        let mut args = vec![os("read")];
        args.extend(inputs.iter().map(|p| p.as_os_str()));
        args.extend([
            os("--workers"),
            os(n),
            os("--flows"),
            flows.as_os_str(),
            os("--events"),
            events.as_os_str(),
        ]);
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut f: Vec<String> = json_lines(&flows).iter().map(|v| v.to_string()).collect();
        f.sort();
        // The same events; flows that time out mid-input may be noticed at a different packet
        // with several workers, so their events are compared as a set.
        let mut e: Vec<String> = json_lines(&events).iter().map(|v| v.to_string()).collect();
        e.sort();
        let summary = String::from_utf8_lossy(&o.stderr).into_owned();
        outs.push((f, e, summary));
    }
    assert!(!outs[0].0.is_empty());
    assert_eq!(outs[0].0, outs[1].0, "flows differ");
    assert_eq!(outs[0].1, outs[1].1, "events differ");
    assert_eq!(outs[0].2, outs[1].2, "summaries differ");
}

#[test]
fn workers_report_bad_input_the_same_way() {
    let d = scratch("workers-bad");
    let truncated = d.join("cut.pcap");
    let bytes = std::fs::read(lab("a_psexec_default.pcap")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let missing = d.join("nope.pcap");
    let good = lab("c_smbexec.pcap");
    let mut results = Vec::new();
    for n in ["1", "2"] {
        let events = d.join(format!("ev-{n}.json"));
        let o = run(&[
            os("read"),
            truncated.as_os_str(),
            missing.as_os_str(),
            good.as_os_str(),
            os("--workers"),
            os(n),
            os("--events"),
            events.as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        results.push((
            String::from_utf8_lossy(&o.stderr).into_owned(),
            json_lines(&events),
        ));
    }
    assert_eq!(results[0], results[1]);
    assert!(results[0].0.contains("truncated"));
    assert!(results[0].1.iter().any(|e| e["kind"] == "capture"));
}

/// `--rules DIR` carries the host policies too: a bad hosts.toml is an error naming file and
/// line (exit 2); a good one (every host `unknown`) leaves a clean capture's alert as it was.
#[test]
fn host_policies_come_from_the_rules_directory() {
    let dir = scratch("hosts");
    std::fs::write(
        dir.join("hosts.toml"),
        "[[host]]\ncidr = [\"192.0.2.0/24\"]\npolicy = \"solaris\"\n",
    )
    .unwrap();
    let cap = lab("a_psexec_default.pcap");
    let args = |alerts: &Path| {
        vec![
            os("read").to_owned(),
            os("--no-summary").to_owned(),
            os("--rules").to_owned(),
            dir.clone().into_os_string(),
            os("--alerts").to_owned(),
            alerts.as_os_str().to_owned(),
            cap.clone().into_os_string(),
        ]
    };
    let alerts = dir.join("alerts.json");
    let a = args(&alerts);
    let o = run(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("hosts.toml:3"), "{stderr}");
    assert!(stderr.contains("unknown host policy"), "{stderr}");
    std::fs::write(
        dir.join("hosts.toml"),
        "[[host]]\ncidr = [\"0.0.0.0/0\", \"::/0\"]\npolicy = \"unknown\"\n",
    )
    .unwrap();
    let o = run(&a.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = json_lines(&alerts);
    assert!(
        got.iter().any(|v| v["technique"] == "service-create"),
        "{got:?}"
    );
}
