//! Issue 14 acceptance: outputs that Zeek, Suricata and SIEM pipelines take without glue.
//!
//! 1. `community_id` equals the `communityid` PyPI package's on every flow and alert of the
//!    shared captures (IPv4), of a lab capture moved onto IPv6, and on UDP tuples (the pipeline
//!    reassembles TCP only, so UDP is checked on the function itself).
//! 2. Every capture read twice, the second time with all timestamps 0.5 ms later: the same alert
//!    ids, uids and community ids.
//! 3. SigmaHQ's Zeek rules and the corrected ones, converted by pySigma's sqlite backend through
//!    the shipped pipeline, run on the `--log-dir` output of every shared capture.
//! 4. EVE validates against Suricata's schema (read from ../shared, never copied), and the TSV
//!    logs read back by their headers alone give the JSON logs' values.
//!
//! Python comes from the venv scripts/setup.sh makes (scripts/pyenv says where); without it these
//! tests fail, they do not skip.

use super::common::corpus::{repo as root, shared_captures};
use super::common::reshape::{frames, read_segments, Net};
use psexec_sensor::capture::file::CaptureReader;
use psexec_sensor::capture::Packet;
use psexec_sensor::event::community_id::{CommunityId, PROTO_UDP};
use psexec_sensor::event::zeek::LOG_SCHEMAS;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

/// The venv's python; fails loudly when scripts/setup.sh has not made it.
fn python() -> PathBuf {
    let o = Command::new("bash")
        .arg(root().join("scripts/pyenv"))
        .output()
        .expect("bash runs");
    let dir = PathBuf::from(String::from_utf8(o.stdout).unwrap().trim());
    let py = dir.join("bin/python");
    assert!(
        py.exists(),
        "no Python venv at {}: run scripts/setup.sh (it installs communityid, jsonschema, pySigma)",
        dir.display()
    );
    py
}

fn run_python(script: &str, args: &[&OsStr]) -> Value {
    let o = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("python prints JSON")
}

fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("outputs")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sensor<I: AsRef<OsStr>>(args: impl IntoIterator<Item = I>) {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "sensor failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every shared capture with its truth file.
fn truth_captures() -> Vec<(PathBuf, Value)> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(d).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".truth.json") {
                out.push(p);
            }
        }
    }
    let mut truths = Vec::new();
    walk(&shared_captures(), &mut truths);
    truths
        .into_iter()
        .map(|t| {
            let cap = PathBuf::from(t.to_string_lossy().trim_end_matches(".truth.json"));
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&t).unwrap()).unwrap();
            (cap, v)
        })
        .collect()
}

/// One read of every shared capture with every output, shared by the tests.
fn corpus() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = scratch("corpus");
        let shared = shared_captures();
        let p = |n: &str| d.join(n).into_os_string();
        let read = |outputs: &[(&str, std::ffi::OsString)]| {
            let mut args = vec!["read".into(), shared.clone().into_os_string()];
            args.extend(["--no-summary", "--sensor-name", "test-sensor"].map(Into::into));
            for (opt, val) in outputs {
                args.push(opt.into());
                args.push(val.clone());
            }
            sensor(args);
        };
        read(&[
            ("--flows", p("flows.json")),
            ("--alerts", p("alerts.json")),
            ("--events", p("events.json")),
            ("--eve", p("eve.json")),
            ("--log-dir", p("logs")),
        ]);
        read(&[
            ("--alerts", p("alerts-tsv-run.json")),
            ("--log-dir", p("tsv")),
            ("--log-format", "tsv".into()),
        ]);
        d
    })
}

/// A classic pcap (microseconds) of `packets`, all of one link type, timestamps moved by
/// `shift_ns`.
fn write_pcap(path: &Path, packets: &[Packet], shift_ns: u64) {
    let linktype = packets.first().map_or(1, |p| p.linktype);
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&262_144u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
    for p in packets {
        assert_eq!(p.linktype, linktype);
        let ts_us = (p.ts.0 + shift_ns) / 1_000;
        out.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(p.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.orig_len.max(p.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&p.data);
    }
    std::fs::write(path, out).unwrap();
}

fn read_packets(path: &Path) -> Vec<Packet> {
    let mut r = CaptureReader::open(path).unwrap();
    let mut out = Vec::new();
    loop {
        let mut p = Packet::empty();
        match r.next_packet(&mut p) {
            Ok(true) => out.push(p),
            _ => break,
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Community ID against the reference implementation.

const COMMUNITYID_CHECK: &str = r#"
import json, sys, communityid
rows = json.load(open(sys.argv[1]))
bad = []
for r in rows:
    make = communityid.FlowTuple.make_tcp if r["proto"] == 6 else communityid.FlowTuple.make_udp
    got = communityid.CommunityID(r["seed"]).calc(make(r["saddr"], r["daddr"], r["sport"], r["dport"]))
    if got != r["cid"]:
        bad.append([r, got])
print(json.dumps({"checked": len(rows), "bad": bad[:20]}))
"#;

fn row(proto: u8, seed: u16, s: &Value, sp: &Value, d: &Value, dp: &Value, cid: &Value) -> Value {
    json!({"proto": proto, "seed": seed, "saddr": s, "sport": sp, "daddr": d, "dport": dp, "cid": cid})
}

#[test]
fn community_id_matches_the_communityid_package() {
    let d = corpus();
    let mut rows = Vec::new();
    for f in lines(&d.join("flows.json")) {
        rows.push(row(
            6,
            0,
            &f["id.orig_h"],
            &f["id.orig_p"],
            &f["id.resp_h"],
            &f["id.resp_p"],
            &f["community_id"],
        ));
    }
    let flows = rows.len();
    assert!(flows > 300, "{flows} flows in the shared captures");
    let mut alerts = 0;
    for a in lines(&d.join("alerts.json")) {
        if a.get("community_id").is_some() && a.get("src_port").is_some() {
            alerts += 1;
            rows.push(row(
                6,
                0,
                &a["src_ip"],
                &a["src_port"],
                &a["dst_ip"],
                &a["dst_port"],
                &a["community_id"],
            ));
        }
    }
    assert!(alerts >= 20, "{alerts} alerts with a community_id");
    for e in lines(&d.join("events.json")) {
        if let Some(cid) = e.get("community_id") {
            rows.push(row(
                6,
                0,
                &e["id.orig_h"],
                &e["id.orig_p"],
                &e["id.resp_h"],
                &e["id.resp_p"],
                cid,
            ));
        }
    }

    // IPv6 (no shared capture has it): a lab capture moved onto IPv6, read by the product, with
    // a non-default seed.
    let v6 = scratch("community-id-v6");
    let lab = shared_captures().join("lab/a_psexec_default.pcap");
    write_pcap(
        &v6.join("a_v6.pcap"),
        &frames(&read_segments(&lab), Net::V6),
        0,
    );
    sensor([
        OsStr::new("read"),
        v6.join("a_v6.pcap").as_os_str(),
        OsStr::new("--no-summary"),
        OsStr::new("--community-id-seed"),
        OsStr::new("7"),
        OsStr::new("--flows"),
        v6.join("flows.json").as_os_str(),
        OsStr::new("--alerts"),
        v6.join("alerts.json").as_os_str(),
    ]);
    let mut v6_rows = 0;
    for f in lines(&v6.join("flows.json")) {
        assert!(f["id.orig_h"].as_str().unwrap().contains(':'));
        v6_rows += 1;
        rows.push(row(
            6,
            7,
            &f["id.orig_h"],
            &f["id.orig_p"],
            &f["id.resp_h"],
            &f["id.resp_p"],
            &f["community_id"],
        ));
    }
    for a in lines(&v6.join("alerts.json")) {
        if a.get("src_port").is_some() {
            v6_rows += 1;
            rows.push(row(
                6,
                7,
                &a["src_ip"],
                &a["src_port"],
                &a["dst_ip"],
                &a["dst_port"],
                &a["community_id"],
            ));
        }
    }
    assert!(v6_rows >= 2, "IPv6 flows and alert: {v6_rows}");

    // UDP, IPv4 and IPv6, both orders of each tuple, equal addresses with different ports.
    let udp: [(&str, u16, &str, u16); 5] = [
        ("192.0.2.10", 137, "192.0.2.255", 137),
        ("192.168.1.52", 54585, "8.8.8.8", 53),
        ("2001:db8::1", 5353, "ff02::fb", 5353),
        ("fe80::1", 546, "ff02::1:2", 547),
        ("10.0.0.1", 40000, "10.0.0.1", 53),
    ];
    for (seed, (a, ap, b, bp)) in [0u16, 1, 65535]
        .into_iter()
        .flat_map(|s| udp.map(|t| (s, t)))
    {
        for ((s, sp), (d, dp)) in [((a, ap), (b, bp)), ((b, bp), (a, ap))] {
            let cid = CommunityId::v1(
                seed,
                PROTO_UDP,
                (s.parse().unwrap(), sp),
                (d.parse().unwrap(), dp),
            );
            rows.push(row(
                17,
                seed,
                &json!(s),
                &json!(sp),
                &json!(d),
                &json!(dp),
                &json!(cid.to_string()),
            ));
        }
    }

    let file = scratch("community-id").join("rows.json");
    std::fs::write(&file, serde_json::to_vec(&rows).unwrap()).unwrap();
    let r = run_python(COMMUNITYID_CHECK, &[file.as_os_str()]);
    assert_eq!(r["checked"], rows.len());
    assert_eq!(
        r["bad"],
        json!([]),
        "community ids differ from the communityid package"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Ids from content: the same packets 0.5 ms later give the same ids.

#[test]
fn alert_ids_uids_and_community_ids_survive_a_half_millisecond_shift() {
    let d = scratch("shift");
    let (orig, shifted) = (d.join("orig"), d.join("shifted"));
    std::fs::create_dir_all(&orig).unwrap();
    std::fs::create_dir_all(&shifted).unwrap();
    let mut written = 0;
    let caps = truth_captures();
    for (i, (cap, _)) in caps.iter().enumerate() {
        let pkts = read_packets(cap);
        if pkts.is_empty() || pkts.iter().any(|p| p.linktype != pkts[0].linktype) {
            continue;
        }
        let name = format!("{i:03}.pcap");
        write_pcap(&orig.join(&name), &pkts, 0);
        write_pcap(&shifted.join(&name), &pkts, 500_000);
        written += 1;
    }
    assert!(
        written + 3 >= caps.len(),
        "{written} of {} captures rewritten",
        caps.len()
    );
    let run = |dir: &Path, tag: &str| {
        let (a, e) = (
            d.join(format!("{tag}-alerts.json")),
            d.join(format!("{tag}-events.json")),
        );
        sensor([
            OsStr::new("read"),
            dir.as_os_str(),
            OsStr::new("--no-summary"),
            OsStr::new("--workers"),
            OsStr::new("1"),
            OsStr::new("--alerts"),
            a.as_os_str(),
            OsStr::new("--events"),
            e.as_os_str(),
        ]);
        (lines(&a), lines(&e))
    };
    let (a1, e1) = run(&orig, "orig");
    let (a2, e2) = run(&shifted, "shifted");
    let key = |a: &Value| {
        ["kind", "id", "uid", "community_id", "src_port", "dst_port"]
            .map(|k| a.get(k).map(Value::to_string).unwrap_or_default())
    };
    let ids = |xs: &[Value]| -> Vec<[String; 6]> {
        let mut v: Vec<_> = xs
            .iter()
            .filter(|a| a["kind"] != "host_summary")
            .map(key)
            .collect();
        v.sort();
        v
    };
    let (k1, k2) = (ids(&a1), ids(&a2));
    let techniques = a1.iter().filter(|a| a["kind"] == "technique").count();
    assert!(techniques >= 12, "{techniques} technique alerts");
    assert!(
        k1.iter()
            .filter(|k| k[0] != "\"visibility\"")
            .all(|k| k[1].len() > 2),
        "every technique and signal alert has an id"
    );
    assert_eq!(k1, k2, "alert ids, uids or community ids moved with time");
    let uids = |es: &[Value]| -> BTreeSet<String> {
        es.iter()
            .filter_map(|e| e.get("uid").map(Value::to_string))
            .collect()
    };
    assert_eq!(uids(&e1), uids(&e2), "event uids moved with time");
    // The shift was applied: the first technique alert's time moved by 0.5 ms.
    let first = |xs: &[Value]| {
        xs.iter()
            .filter(|a| a["kind"] == "technique")
            .map(|a| a["ts"].as_f64().unwrap())
            .fold(f64::MAX, f64::min)
    };
    assert!((first(&a2) - first(&a1) - 0.0005).abs() < 2e-6);
}

// ---------------------------------------------------------------------------------------------
// 3. Sigma rules through the shipped pipeline on the --log-dir output.

#[test]
fn sigma_rules_fire_on_the_positives_of_their_technique_and_no_other_negative() {
    let d = scratch("sigma");
    let caps = truth_captures();
    let mut dirs = Vec::new();
    for (i, (cap, _)) in caps.iter().enumerate() {
        let ld = d.join(format!("{i:03}"));
        sensor([
            OsStr::new("read"),
            cap.as_os_str(),
            OsStr::new("--no-summary"),
            OsStr::new("--alerts"),
            d.join(format!("{i:03}-alerts.json")).as_os_str(),
            OsStr::new("--log-dir"),
            ld.as_os_str(),
        ]);
        dirs.push(ld);
    }
    let sigma = root().join("sigma");
    let published = sigma.join("rules/sigmahq");
    let corrected = sigma.join("rules/corrected");
    let mut rules: Vec<PathBuf> = [&published, &corrected]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten().map(|e| e.path()))
        .collect();
    rules.sort();
    assert_eq!(rules.len(), 6, "{rules:?}");
    let mut args: Vec<&OsStr> = rules.iter().map(|r| r.as_os_str()).collect();
    args.push(OsStr::new("--"));
    args.extend(dirs.iter().map(|d| d.as_os_str()));
    let o = Command::new(python())
        .arg(sigma.join("run_rules.py"))
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let fired = |rule: &Path| -> BTreeSet<usize> {
        let m = &r["matches"][rule.to_str().unwrap()];
        dirs.iter()
            .enumerate()
            .filter(|(_, d)| m[d.to_str().unwrap()].as_u64().unwrap() > 0)
            .map(|(i, _)| i)
            .collect()
    };
    let name = |i: &usize| caps[*i].0.display().to_string();
    let names = |s: &BTreeSet<usize>| s.iter().map(name).collect::<Vec<_>>();
    let lower = |v: &Value| v.as_str().unwrap_or("").to_ascii_lowercase();
    let has = |t: &Value, list: &str, item: &str| {
        t["expect"][list]
            .as_array()
            .is_some_and(|xs| xs.iter().any(|x| lower(x) == item))
    };
    // The captures whose truth file satisfies `pred`.
    let select = |pred: &dyn Fn(&Value) -> bool| -> BTreeSet<usize> {
        (0..caps.len()).filter(|i| pred(&caps[*i].1)).collect()
    };
    // A rule fires on every capture in `expected` and on no negative outside `meant_for`.
    let check = |rule: &str,
                 fired: &BTreeSet<usize>,
                 expected: &BTreeSet<usize>,
                 meant_for: &dyn Fn(&Value) -> bool| {
        assert!(!expected.is_empty(), "{rule}: nothing to fire on");
        let missed: BTreeSet<usize> = expected.difference(fired).copied().collect();
        assert!(missed.is_empty(), "{rule} missed {:?}", names(&missed));
        let wrong: BTreeSet<usize> = fired
            .iter()
            .copied()
            .filter(|i| caps[*i].1["verdict"] == "negative" && !meant_for(&caps[*i].1))
            .collect();
        assert!(
            wrong.is_empty(),
            "{rule} fired on negatives {:?}",
            names(&wrong)
        );
    };
    let activity = |t: &Value| format!("{} {}", lower(&t["activity"]), lower(&t["notes"]));

    // atsvc: remote task creation through the \atsvc pipe on a visible IPC$ tree. A negative it
    // is meant for: an atexec attempt whose task never reached the server.
    let atsvc_rule = "zeek_smb_converted_win_atsvc_task.yml";
    check(
        atsvc_rule,
        &fired(&corrected.join(atsvc_rule)),
        &select(&|t| has(t, "pipes", "atsvc") && has(t, "tree_connects", "ipc$")),
        &|t| activity(t).contains("atexec"),
    );
    let published_atsvc = fired(&published.join(atsvc_rule));
    assert!(
        published_atsvc.is_empty(),
        "the published atsvc rule cannot fire"
    );

    // BZAR execution: task registration (atsvc NetrJobAdd, ITaskSchedulerService) is visible in
    // every task-create positive that is not SMB3-encrypted, stub-encrypted ones included (the
    // operation comes from the opnum). Negatives it is meant for: WMI/DCOM remote execution
    // (T1047).
    let bzar_rule = "zeek_dce_rpc_mitre_bzar_execution.yml";
    let bzar = fired(&corrected.join(bzar_rule));
    let tasks = select(&|t| t["technique"] == "task-create" && t["visibility"] != "smb3-encrypted");
    assert!(tasks.len() >= 4);
    check(bzar_rule, &bzar, &tasks, &|t| {
        activity(t).contains("wmi") || activity(t).contains("dcom")
    });
    // The correction is what catches at.exe: the published rule misses the NetrJobAdd-only ones.
    let at_exe = select(&|t| t["tool"] == "windows-at");
    assert!(!at_exe.is_empty() && at_exe.is_subset(&bzar));
    let published_bzar = fired(&published.join(bzar_rule));
    assert!(
        at_exe.is_disjoint(&published_bzar),
        "{:?}",
        names(&published_bzar)
    );

    // The renamed-PsExec rule (pipes ending -stdin/-stdout/-stderr not named PSEXESVC, as PAExec
    // or a renamed PsExec makes; no shared capture has one) fires on no negative; the
    // first-seen-pipe rule is a hunting rule (any unlisted pipe) and only has to convert and run.
    let renamed = fired(&published.join("zeek_smb_converted_win_susp_psexec.yml"));
    let wrong: BTreeSet<usize> = renamed
        .iter()
        .copied()
        .filter(|i| caps[*i].1["verdict"] == "negative")
        .collect();
    assert!(
        wrong.is_empty(),
        "renamed-PsExec rule fired on {:?}",
        names(&wrong)
    );
    assert_eq!(r["queries"].as_object().unwrap().len(), 6);
}

// ---------------------------------------------------------------------------------------------
// 4. EVE against Suricata's schema; TSV read back by its headers.

const EVE_CHECK: &str = r#"
import json, sys, collections
from jsonschema.validators import validator_for
schema = json.load(open(sys.argv[1]))
v = validator_for(schema)(schema)
types = collections.Counter()
errors = []
for n, line in enumerate(open(sys.argv[2])):
    rec = json.loads(line)
    types[rec.get("event_type")] += 1
    for e in v.iter_errors(rec):
        errors.append([n, rec.get("event_type"), e.message[:300], list(e.absolute_path)])
print(json.dumps({"types": types, "errors": errors[:20], "count": len(errors)}))
"#;

#[test]
fn eve_validates_against_suricatas_schema() {
    // Suricata's schema is GPL-2.0: read from ../shared, never copied into the project.
    let schema = shared_captures().join("../peers/suricata/eve-schema.json");
    assert!(schema.exists(), "{} is missing", schema.display());
    let eve = corpus().join("eve.json");
    let r = run_python(EVE_CHECK, &[schema.as_os_str(), eve.as_os_str()]);
    assert_eq!(
        r["count"], 0,
        "EVE records the schema rejects: {}",
        r["errors"]
    );
    for t in ["alert", "smb", "dcerpc", "flow"] {
        assert!(
            r["types"][t].as_u64().unwrap_or(0) > 0,
            "no {t} records: {}",
            r["types"]
        );
    }
    for rec in lines(&eve) {
        assert_eq!(rec["host"], "test-sensor");
        if rec["event_type"] == "alert" && rec.get("src_port").is_some() {
            assert!(rec["community_id"].as_str().unwrap().starts_with("1:"));
            assert!(rec["flow_id"].as_u64().is_some());
        }
    }
}

/// A Zeek ASCII log, read with nothing but its own headers.
struct ZeekLog {
    path: String,
    set_sep: String,
    empty: String,
    unset: String,
    fields: Vec<String>,
    types: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\\' {
            out.push(b'\\');
            i += 2;
        } else if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn parse_zeek_log(text: &str) -> ZeekLog {
    let mut it = text.lines();
    let first = it.next().unwrap();
    let sep = unescape(first.strip_prefix("#separator ").expect("#separator first"));
    let mut header = BTreeMap::new();
    let order = [
        "set_separator",
        "empty_field",
        "unset_field",
        "path",
        "open",
        "fields",
        "types",
    ];
    for want in order {
        let l = it.next().unwrap();
        let (k, v) = l.split_once(sep.as_str()).unwrap();
        assert_eq!(k, format!("#{want}"), "header order");
        header.insert(want, v.to_string());
    }
    let mut rows = Vec::new();
    let mut closed = false;
    for l in it {
        assert!(!closed, "nothing after #close");
        if let Some(rest) = l.strip_prefix("#close") {
            assert!(rest.starts_with(sep.as_str()));
            closed = true;
            continue;
        }
        rows.push(l.split(sep.as_str()).map(str::to_string).collect());
    }
    assert!(closed, "#close at the end");
    let split = |k: &str| {
        header[k]
            .split(sep.as_str())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    ZeekLog {
        path: header["path"].clone(),
        set_sep: header["set_separator"].clone(),
        empty: header["empty_field"].clone(),
        unset: header["unset_field"].clone(),
        fields: split("fields"),
        types: split("types"),
        rows,
    }
}

fn tsv_matches_json(log: &ZeekLog, cell: &str, ty: &str, v: Option<&Value>) -> bool {
    let v = v.filter(|v| !v.is_null());
    if cell == log.unset {
        return v.is_none();
    }
    let Some(v) = v else { return false };
    match ty {
        "time" | "interval" | "double" => {
            (cell.parse::<f64>().unwrap() - v.as_f64().unwrap()).abs() < 1e-6
        }
        "count" | "port" | "int" => cell.parse::<u64>().ok() == v.as_u64(),
        "bool" => (cell == "T") == v.as_bool().unwrap() && (cell == "T" || cell == "F"),
        t if t.starts_with("set[") || t.starts_with("vector[") => {
            let items: Vec<String> = if cell == log.empty {
                vec![]
            } else {
                cell.split(log.set_sep.as_str()).map(unescape).collect()
            };
            let want: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect();
            items == want
        }
        _ => {
            let text = if cell == log.empty {
                String::new()
            } else {
                unescape(cell)
            };
            Some(text.as_str()) == v.as_str()
        }
    }
}

#[test]
fn tsv_logs_follow_zeeks_format_and_read_back_to_the_json_logs() {
    let d = corpus();
    let mut checked_logs = 0;
    let mut checked_rows = 0;
    for e in std::fs::read_dir(d.join("tsv")).unwrap().flatten() {
        let log = parse_zeek_log(&std::fs::read_to_string(e.path()).unwrap());
        assert_eq!(e.file_name().to_string_lossy(), format!("{}.log", log.path));
        assert_eq!(log.fields.len(), log.types.len());
        let json = lines(&d.join("logs").join(e.file_name()));
        assert_eq!(log.rows.len(), json.len(), "{}: rows", log.path);
        for (row, rec) in log.rows.iter().zip(&json) {
            assert_eq!(row.len(), log.fields.len(), "{}: columns", log.path);
            assert_eq!(rec["_path"], log.path.as_str());
            for ((cell, name), ty) in row.iter().zip(&log.fields).zip(&log.types) {
                assert!(
                    tsv_matches_json(&log, cell, ty, rec.get(name.as_str())),
                    "{}: {name} ({ty}) is {cell:?} in TSV, {:?} in JSON",
                    log.path,
                    rec.get(name.as_str())
                );
            }
            checked_rows += 1;
        }
        checked_logs += 1;
    }
    assert!(
        checked_logs >= 6 && checked_rows > 1000,
        "{checked_logs} logs, {checked_rows} rows"
    );
}

// ---------------------------------------------------------------------------------------------
// Schemas in one place: docs/output-formats.md, LOG_SCHEMAS, the pipeline and the records agree.

/// `| `field` | type | … |` rows under each "### `NAME.log`" heading.
fn documented_logs(md: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for l in md.lines() {
        if l.starts_with("## ") {
            current = None;
            continue;
        }
        if let Some(h) = l.strip_prefix("### ") {
            current = h
                .trim()
                .strip_prefix('`')
                .and_then(|h| h.strip_suffix(".log`"))
                .map(str::to_string);
            continue;
        }
        let Some(log) = &current else { continue };
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        if cells.len() >= 4 && cells[1].starts_with('`') {
            out.entry(log.clone()).or_default().push((
                cells[1].trim_matches('`').to_string(),
                cells[2].trim_matches('`').to_string(),
            ));
        }
    }
    out
}

#[test]
fn documented_log_schemas_match_the_code_and_the_records() {
    let md = std::fs::read_to_string(root().join("docs/output-formats.md")).unwrap();
    let documented = documented_logs(&md);
    let code: BTreeMap<String, Vec<(String, String)>> = LOG_SCHEMAS
        .iter()
        .map(|s| {
            (
                s.path.to_string(),
                s.fields
                    .iter()
                    .map(|(f, t)| (f.to_string(), t.name().to_string()))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        documented, code,
        "docs/output-formats.md and event::zeek::LOG_SCHEMAS differ"
    );
    let pipeline = std::fs::read_to_string(root().join("sigma/psexec_sensor_pipeline.py")).unwrap();
    for s in LOG_SCHEMAS {
        assert!(
            pipeline.contains(&format!("\"{}\",", s.path)),
            "pipeline lacks {}",
            s.path
        );
    }
    // Every key of every record written is a documented column, with a value of its type.
    let d = corpus();
    for e in std::fs::read_dir(d.join("logs")).unwrap().flatten() {
        for rec in lines(&e.path()) {
            let path = rec["_path"].as_str().unwrap();
            let cols = &code[path];
            for (k, v) in rec.as_object().unwrap() {
                if k == "_path" {
                    continue;
                }
                let ty = cols
                    .iter()
                    .find(|c| &c.0 == k)
                    .unwrap_or_else(|| panic!("{path}.log has undocumented field {k}"));
                let ok = match ty.1.as_str() {
                    "time" | "interval" | "double" => v.is_f64() || v.is_u64(),
                    "count" | "port" => v.is_u64(),
                    "bool" => v.is_boolean(),
                    t if t.starts_with("set[") || t.starts_with("vector[") => v.is_array(),
                    _ => v.is_string(),
                };
                assert!(ok, "{path}.log {k} = {v} is not a {}", ty.1);
            }
        }
    }
    // The documented EVE keys cover what EVE records carry (top level and one level down).
    let eve_doc = md
        .split("## EVE")
        .nth(1)
        .expect("docs/output-formats.md has an EVE section");
    for rec in lines(&d.join("eve.json")) {
        for (k, v) in rec.as_object().unwrap() {
            assert!(
                eve_doc.contains(&format!("`{k}`")),
                "EVE key {k} undocumented"
            );
            if let Some(o) = v.as_object() {
                for k2 in o.keys() {
                    assert!(
                        eve_doc.contains(&format!("`{k}.{k2}`")),
                        "EVE key {k}.{k2} undocumented"
                    );
                }
            }
        }
    }
}

#[test]
fn every_record_names_its_sensor() {
    let d = corpus();
    for f in ["flows.json", "alerts.json", "events.json"] {
        let recs = lines(&d.join(f));
        assert!(!recs.is_empty(), "{f}");
        for r in recs {
            assert_eq!(r["sensor"], "test-sensor", "{f}: {r}");
        }
    }
}
