//! Issue 2 acceptance 4 and issue 3 acceptance 3: `psexec-sensor read` against tshark, on every
//! capture bundled in captures/ (the lab recordings and the licensed public ones):
//! - tree connect paths: `smb2.tree` of TREE_CONNECT requests (`smb.path` of SMB1 TREE_CONNECT_ANDX)
//!   equal the paths of our smb_mapping records, as multisets and in time order;
//! - created names: `smb2.filename` of CREATE requests (`smb.file` of SMB1 NT_CREATE_ANDX) equal the
//!   names of our FILE_OPEN / PIPE_OPEN records (one per CREATE, failed ones included), as multisets
//!   and in time order;
//! - bytes written: per file name, the SMB2 WRITE lengths tshark sees (FileId named by its CREATE)
//!   equal the bytes_written of our FILE_WRITE records;
//! - atsvc: the same opnums in order and the job command wherever tshark decodes one;
//! - svcctl: the requests tshark decodes (scripts/tshark_svcctl.sh) have the same opnums in the same
//!   order as our svcctl dce_rpc records, and the same service name and binary path wherever tshark
//!   decodes one.
//!
//! SMB3-encrypted lab captures are compared decrypted: tshark with the lab password, ours with it as
//! `--smb-keys`. Without tshark the test fails (scripts/setup.sh installs it).

use crate::common::read_events::{events_of, lab_keys, of_log, repo, s};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const LAB_PASSWORD: &str = "Passw0rd!Lab";

fn tshark_available() -> bool {
    Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Every capture that has a truth file (so: every capture, not its side files) under ../shared/captures (the same lab and licensed captures plus the
/// unlicensed public ones, which may be used from there but not copied into the project).
fn captures() -> Vec<PathBuf> {
    let root = crate::common::corpus::shared_captures();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(cap) = p.to_string_lossy().strip_suffix(".truth.json") {
                out.push(PathBuf::from(cap));
            }
        }
    }
    out.sort();
    out
}

fn is_lab_encrypted(cap: &Path) -> bool {
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.truth.json", cap.display())).unwrap(),
    )
    .unwrap();
    truth["visibility"] == "smb3-encrypted" && truth["source"]["lab"].is_string()
}

/// tshark's packets matching `filter`, as JSON objects of the requested fields (each an array of
/// strings: one entry per occurrence in the frame).
fn tshark_fields(
    cap: &Path,
    opts: &[String],
    filter: &str,
    fields: &[&str],
) -> Vec<BTreeMap<String, Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(cap)
        .args(opts)
        .arg("-Y")
        .arg(filter)
        .arg("-T")
        .arg("json");
    for f in fields {
        cmd.arg("-e").arg(f);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark on {}: {}",
        cap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Array(vec![]));
    v.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let layers = &p["_source"]["layers"];
            fields
                .iter()
                .map(|f| {
                    let vals = layers[*f]
                        .as_array()
                        .map(|a| a.iter().map(s).collect())
                        .unwrap_or_default();
                    (f.to_string(), vals)
                })
                .collect()
        })
        .collect()
}

/// Names compare without a leading backslash (SMB1 sends `\svcctl`, SMB2 `svcctl`).
fn norm_name(n: &str) -> String {
    n.trim_start_matches('\\').to_string()
}

/// Our records of one log kind sorted by time (ties keep output order).
fn by_time<'a>(ev: &'a [Value], log: &str, keep: impl Fn(&Value) -> bool) -> Vec<&'a Value> {
    let mut v: Vec<&Value> = of_log(ev, log).into_iter().filter(|e| keep(e)).collect();
    v.sort_by(|a, b| {
        a["ts"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&b["ts"].as_f64().unwrap_or(0.0))
    });
    v
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// What `a` has more of than `b`: "value ×n" per value (both sorted).
fn excess(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut distinct = a.to_vec();
    distinct.dedup();
    for x in distinct {
        let (na, nb) = (
            a.iter().filter(|y| **y == x).count(),
            b.iter().filter(|y| **y == x).count(),
        );
        if na > nb {
            out.push(format!("{x:?} ×{}", na - nb));
        }
    }
    out
}

/// Multiset and then order: the first difference found, described.
fn same_list(what: &str, theirs: &[String], ours: &[String]) -> Option<String> {
    let (t, o) = (sorted(theirs), sorted(ours));
    if t != o {
        let (only_t, only_o) = (excess(&t, &o), excess(&o, &t));
        return Some(format!(
            "{what}: {} from tshark, {} ours; tshark only [{}]; ours only [{}]",
            t.len(),
            o.len(),
            only_t.join(", "),
            only_o.join(", ")
        ));
    }
    if theirs != ours {
        let i = theirs
            .iter()
            .zip(ours)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Some(format!(
            "{what}: same multiset, order differs from #{i}: tshark {:?} ours {:?}",
            &theirs[i..],
            &ours[i..]
        ));
    }
    None
}

/// Values of SMB2 and of SMB1 requests, kept apart (our records say which version they came from).
#[derive(Default)]
struct ByVersion {
    smb2: Vec<String>,
    smb1: Vec<String>,
}

/// The paths of TREE_CONNECT requests and the names of CREATE requests, from one tshark run.
///
/// tshark also fills these fields from its own tracking: an SMB1 header whose TID it has seen gets a
/// generated `[Path]` ahead of a TREE_CONNECT_ANDX's own path, and a READ_ANDX chained after
/// NT_CREATE_ANDX gets the `[File Name]` of the FID it reads after the CREATE's name. So a frame's
/// request paths are its last ones and its created names its first ones, one per request; `problems`
/// gets a note when a frame has fewer values than requests.
fn trees_and_creates(
    cap: &Path,
    opts: &[String],
    problems: &mut Vec<String>,
) -> (ByVersion, ByVersion) {
    let pk = tshark_fields(
        cap,
        opts,
        "((smb2.cmd == 3 || smb2.cmd == 5) && smb2.flags.response == 0) || ((smb.cmd == 0x75 || smb.cmd == 0xa2) && smb.flags.response == 0)",
        &["frame.number", "smb2.cmd", "smb2.tree", "smb2.filename", "smb.cmd", "smb.path", "smb.file"],
    );
    let (mut trees, mut names) = (ByVersion::default(), ByVersion::default());
    for p in pk {
        let count = |field: &str, codes: &[&str]| {
            p[field]
                .iter()
                .filter(|c| codes.contains(&c.as_str()))
                .count()
        };
        let wanted = [
            (
                "smb2.tree",
                count("smb2.cmd", &["3"]),
                false,
                &mut trees.smb2,
            ),
            (
                "smb.path",
                count("smb.cmd", &["0x75", "117"]),
                false,
                &mut trees.smb1,
            ),
            (
                "smb2.filename",
                count("smb2.cmd", &["5"]),
                true,
                &mut names.smb2,
            ),
            (
                "smb.file",
                count("smb.cmd", &["0xa2", "162"]),
                true,
                &mut names.smb1,
            ),
        ];
        for (field, n, first, into) in wanted {
            let v = &p[field];
            if v.len() < n {
                problems.push(format!(
                    "frame {:?}: {} {field} values for {n} requests",
                    p["frame.number"],
                    v.len()
                ));
            }
            let chosen = if first {
                &v[..n.min(v.len())]
            } else {
                &v[v.len().saturating_sub(n)..]
            };
            into.extend(
                chosen
                    .iter()
                    .map(|x| if first { norm_name(x) } else { x.clone() }),
            );
        }
    }
    (trees, names)
}

/// Bytes written per file name over SMB2, as tshark sees them: WRITE requests' `smb2.write_length`,
/// named through their FileId by the CREATE response that returned it (paired with its request by
/// stream and MessageId). Writes on pipes (an IPC$ tree, or DCE-RPC in the frame) are left out: we
/// log pipe traffic as dce_rpc, not as FILE_WRITE.
fn written_bytes(cap: &Path, opts: &[String]) -> BTreeMap<String, u64> {
    let pk = tshark_fields(
        cap,
        opts,
        "smb2.cmd == 5 || (smb2.cmd == 9 && smb2.flags.response == 0)",
        &[
            "tcp.stream",
            "smb2.cmd",
            "smb2.flags.response",
            "smb2.msg_id",
            "smb2.filename",
            "smb2.fid",
            "smb2.write_length",
            "smb2.tree",
            "dcerpc.ver",
        ],
    );
    let (mut asked, mut names, mut bytes) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for p in pk {
        let stream = p["tcp.stream"].first().cloned().unwrap_or_default();
        let response = p["smb2.flags.response"]
            .first()
            .is_some_and(|r| r == "1" || r == "True");
        let creates: Vec<&String> = p["smb2.cmd"]
            .iter()
            .zip(&p["smb2.msg_id"])
            .filter(|(c, _)| *c == "5")
            .map(|(_, m)| m)
            .collect();
        if p["smb2.cmd"].iter().any(|c| c == "9") && !response {
            let pipe = p["smb2.tree"]
                .iter()
                .any(|t| t.to_ascii_uppercase().ends_with("\\IPC$"))
                || !p["dcerpc.ver"].is_empty();
            if !pipe {
                for (fid, len) in p["smb2.fid"].iter().zip(&p["smb2.write_length"]) {
                    let name = names
                        .get(fid)
                        .cloned()
                        .unwrap_or_else(|| format!("<FileId {fid}>"));
                    *bytes.entry(name).or_default() += len.parse::<u64>().unwrap_or(0);
                }
            }
        } else if !response {
            for (m, f) in creates.iter().zip(&p["smb2.filename"]) {
                asked.insert((stream.clone(), (*m).clone()), f.clone());
            }
        } else {
            for (m, fid) in creates.iter().zip(&p["smb2.fid"]) {
                if let Some(n) = asked.get(&(stream.clone(), (*m).clone())) {
                    names.insert(fid.clone(), n.clone());
                }
            }
        }
    }
    bytes
}

/// (opnum, service name, binary path) of every svcctl request tshark decodes; names are `None` on
/// frames that carry several requests (tshark's fields cannot be matched to their requests there).
fn tshark_svcctl(cap: &Path, opts: &[String]) -> Vec<(String, Option<String>, Option<String>)> {
    let script = repo().join("scripts/tshark_svcctl.sh");
    let out = Command::new("sh")
        .arg(script)
        .arg(cap)
        .args(opts)
        .output()
        .expect("sh runs");
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let opnums: Vec<&str> = f.first().unwrap_or(&"").split('\x1f').collect();
        let single = opnums.len() == 1;
        for op in opnums {
            let field = |i: usize| single.then(|| f.get(i).unwrap_or(&"").to_string());
            v.push((op.to_string(), field(1), field(2)));
        }
    }
    v
}

/// How many values tshark gave (tree paths, created names, svcctl requests): the test must compare
/// something, not agree on nothing.
#[derive(Default, Debug)]
struct Counts {
    trees: usize,
    names: usize,
    svcctl: usize,
    atsvc: usize,
    written: u64,
}

fn check_capture(cap: &Path, keys: &Path, counts: &mut Counts) -> Vec<String> {
    let encrypted = is_lab_encrypted(cap);
    let opts: Vec<String> = if encrypted {
        vec!["-o".into(), format!("ntlmssp.nt_password:{LAB_PASSWORD}")]
    } else {
        vec![]
    };
    let ev = events_of(cap, encrypted.then_some(keys));
    let mut problems = Vec::new();
    let version = |e: &Value, v: &str| e["smb_version"] == v;

    let (trees, names) = trees_and_creates(cap, &opts, &mut problems);
    counts.trees += trees.smb2.len() + trees.smb1.len();
    counts.names += names.smb2.len() + names.smb1.len();
    for (v, theirs) in [("SMB2", &trees.smb2), ("SMB1", &trees.smb1)] {
        let ours: Vec<String> = by_time(&ev, "smb_mapping", |e| version(e, v))
            .iter()
            .map(|e| s(&e["path"]))
            .collect();
        problems.extend(same_list(&format!("{v} tree connect paths"), theirs, &ours));
    }
    for (v, theirs) in [("SMB2", &names.smb2), ("SMB1", &names.smb1)] {
        let opens = |e: &Value| {
            version(e, v)
                && matches!(
                    e["action"].as_str(),
                    Some("SMB::FILE_OPEN") | Some("SMB::PIPE_OPEN")
                )
        };
        let ours: Vec<String> = by_time(&ev, "smb_files", opens)
            .iter()
            .map(|e| norm_name(&s(&e["name"])))
            .collect();
        problems.extend(same_list(&format!("{v} created names"), theirs, &ours));
    }

    let theirs = written_bytes(cap, &opts);
    counts.written += theirs.values().sum::<u64>();
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for e in of_log(&ev, "smb_files")
        .into_iter()
        .filter(|e| e["action"] == "SMB::FILE_WRITE" && version(e, "SMB2"))
    {
        *ours.entry(s(&e["name"])).or_default() += e["bytes_written"].as_u64().unwrap_or(0);
    }
    if theirs != ours {
        problems.push(format!(
            "SMB2 bytes written per file: tshark {theirs:?} ours {ours:?}"
        ));
    }

    let theirs = tshark_svcctl(cap, &opts);
    counts.svcctl += theirs.len();
    let ours: Vec<&Value> = by_time(&ev, "dce_rpc", |e| {
        e["endpoint"] == "svcctl"
            && !matches!(
                e["operation"].as_str(),
                Some("bind") | Some("alter_context")
            )
    });
    let (t_ops, o_ops): (Vec<String>, Vec<String>) = (
        theirs.iter().map(|t| t.0.clone()).collect(),
        ours.iter().map(|e| e["opnum"].to_string()).collect(),
    );
    if t_ops != o_ops {
        problems.push(format!("svcctl opnums: tshark {t_ops:?} ours {o_ops:?}"));
    } else {
        for ((op, name, path), e) in theirs.iter().zip(&ours) {
            if let Some(n) = name.as_deref().filter(|n| !n.is_empty()) {
                if s(&e["service_name"]) != n {
                    problems.push(format!(
                        "svcctl opnum {op}: service name tshark {n:?} ours {:?}",
                        s(&e["service_name"])
                    ));
                }
            }
            if let Some(p) = path.as_deref().filter(|p| !p.is_empty()) {
                if s(&e["binary_path"]) != p {
                    problems.push(format!(
                        "svcctl opnum {op}: binary path tshark {p:?} ours {:?}",
                        s(&e["binary_path"])
                    ));
                }
            }
        }
    }
    // atsvc (the `at` command's interface): opnums in order, and the job's command where tshark
    // decodes one
    let theirs = tshark_fields(
        cap,
        &opts,
        "atsvc && dcerpc.pkt_type == 0",
        &["atsvc.opnum", "atsvc.atsvc_JobInfo.command"],
    );
    counts.atsvc += theirs.len();
    let ours = by_time(&ev, "dce_rpc", |e| {
        e["endpoint"] == "atsvc" && e["opnum"].is_u64()
    });
    let t_ops: Vec<String> = theirs
        .iter()
        .flat_map(|p| p["atsvc.opnum"].clone())
        .collect();
    let o_ops: Vec<String> = ours.iter().map(|e| e["opnum"].to_string()).collect();
    if t_ops != o_ops {
        problems.push(format!("atsvc opnums: tshark {t_ops:?} ours {o_ops:?}"));
    } else {
        let single = theirs.iter().all(|p| p["atsvc.opnum"].len() == 1);
        for (p, e) in theirs.iter().zip(&ours).filter(|_| single) {
            if let Some(c) = p["atsvc.atsvc_JobInfo.command"].first() {
                if s(&e["command"]) != *c {
                    problems.push(format!(
                        "atsvc command: tshark {c:?} ours {:?}",
                        s(&e["command"])
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn trees_created_names_and_svcctl_calls_match_tshark() {
    assert!(
        tshark_available(),
        "tshark is needed for this cross-check (scripts/setup.sh installs it)"
    );
    let keys = lab_keys("tshark");
    let (mut failures, mut compared, mut counts) = (Vec::new(), 0, Counts::default());
    for cap in captures() {
        let name = cap
            .to_string_lossy()
            .rsplit("captures/")
            .next()
            .unwrap_or_default()
            .to_string();
        compared += 1;
        failures.extend(
            check_capture(&cap, &keys, &mut counts)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    let _ = std::fs::remove_file(&keys);
    eprintln!("compared {compared} captures; tshark values: {counts:?}");
    assert!(compared >= 20, "only {compared} captures compared");
    // the bundled captures alone: 40 tree connects, 300 CREATE names, 40 svcctl and 2 atsvc requests,
    // 8 MiB written
    let enough = counts.trees >= 40
        && counts.names >= 300
        && counts.svcctl >= 40
        && counts.atsvc >= 2
        && counts.written >= 8 << 20;
    assert!(enough, "too little compared: {counts:?}");
    assert!(
        failures.is_empty(),
        "{} differences from tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn list_comparison_reports_content_then_order() {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(same_list("x", &v(&["a", "b"]), &v(&["a", "b"])), None);
    assert!(same_list("x", &v(&["a", "b"]), &v(&["b", "a"]))
        .unwrap()
        .contains("order differs"));
    assert!(same_list("x", &v(&["a", "a"]), &v(&["a"]))
        .unwrap()
        .contains("tshark only [\"a\" ×1]; ours only []"));
}
