//! Issue 2 acceptance 2 and issue 3 acceptance 1: the events of `psexec-sensor read` on every capture
//! of ../shared/captures (and the bundled copies in captures/) against each `.truth.json`:
//! - every share of `expect.tree_connects` appears in smb_mapping (case-insensitive last component);
//! - every pipe of `expect.pipes` appears as a PIPE_OPEN;
//! - every upload appears as FILE_WRITE on that share and name, with its byte count summed over
//!   handles, and with its SHA-256 where the truth gives one;
//! - every service of `expect.services` appears as a dce_rpc event with that name and binary path;
//! - every stub-encrypted positive has dce_rpc events on svcctl / the task scheduler with a creating
//!   or modifying opnum, marked stub_encrypted.
//!
//! SMB3-encrypted captures are read with the lab password when they are lab recordings (their truth
//! says so), and otherwise only have to be read without error.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_psexec-sensor")
}

fn roots() -> Vec<PathBuf> {
    vec![crate::common::corpus::shared_captures()]
}

fn truth_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".truth.json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs `read` on one capture and returns its events.
pub fn events_of(capture: &Path, keys: Option<&Path>) -> Vec<Value> {
    let dir = std::env::temp_dir().join(format!("psexec-truth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // unique per call: tests of this file run in parallel on the same captures
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = dir.join(format!(
        "{n}-{}.jsonl",
        capture.file_name().unwrap().to_string_lossy()
    ));
    let mut cmd = Command::new(bin());
    cmd.arg("read")
        .arg(capture)
        .arg("--events")
        .arg(&out)
        .arg("--alerts")
        .arg(dir.join(format!("{n}-alerts.jsonl")))
        .arg("--no-summary");
    if let Some(k) = keys {
        cmd.arg("--smb-keys").arg(k);
    }
    let st = cmd.output().unwrap();
    assert!(
        st.status.success(),
        "read {} failed: {}",
        capture.display(),
        String::from_utf8_lossy(&st.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(dir.join(format!("{n}-alerts.jsonl")));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("event line is JSON"))
        .collect()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn share_of(path_or_share: &str) -> String {
    path_or_share
        .rsplit('\\')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn pipe_norm(p: &str) -> String {
    let p = p.trim_start_matches('\\').to_ascii_lowercase();
    p.strip_prefix("pipe\\").unwrap_or(&p).to_string()
}

fn check(truth: &Value, ev: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let log = |e: &Value, n: &str| e["log"] == n;
    let expect = &truth["expect"];
    for t in expect["tree_connects"].as_array().into_iter().flatten() {
        let want = share_of(&s(t));
        if !ev
            .iter()
            .any(|e| log(e, "smb_mapping") && share_of(&s(&e["path"])) == want)
        {
            problems.push(format!("tree connect {want} missing"));
        }
    }
    for p in expect["pipes"].as_array().into_iter().flatten() {
        let want = pipe_norm(&s(p));
        if !ev.iter().any(|e| {
            log(e, "smb_files")
                && e["action"] == "SMB::PIPE_OPEN"
                && pipe_norm(&s(&e["name"])) == want
        }) {
            problems.push(format!("pipe {want} missing"));
        }
    }
    for u in expect["uploads"].as_array().into_iter().flatten() {
        let (share, name) = (
            share_of(&s(&u["share"])),
            s(&u["name"]).to_ascii_lowercase(),
        );
        let writes: Vec<&Value> = ev
            .iter()
            .filter(|e| {
                log(e, "smb_files")
                    && e["action"] == "SMB::FILE_WRITE"
                    // an empty truth share means the capture starts after the tree connect
                    && (share.is_empty() || share_of(&s(&e["share"])) == share)
                    && s(&e["name"]).trim_start_matches('\\').to_ascii_lowercase() == name
            })
            .collect();
        let bytes: u64 = writes
            .iter()
            .map(|e| e["bytes_written"].as_u64().unwrap_or(0))
            .sum();
        if Some(bytes) != u["bytes"].as_u64() {
            problems.push(format!(
                "upload {share}\\{name}: {bytes} bytes written, truth {}",
                u["bytes"]
            ));
        }
        if let Some(h) = u["sha256"].as_str() {
            if !writes.iter().any(|e| e["sha256"].as_str() == Some(h)) {
                problems.push(format!("upload {share}\\{name}: sha256 {h} missing"));
            }
        }
    }
    for sv in expect["services"].as_array().into_iter().flatten() {
        let name = sv["name"].as_str().map(str::to_ascii_lowercase);
        let found = ev.iter().any(|e| {
            log(e, "dce_rpc")
                && name
                    .as_ref()
                    .is_none_or(|n| s(&e["service_name"]).to_ascii_lowercase() == *n)
                && match (
                    sv["binary_path"].as_str(),
                    sv["binary_path_contains"].as_str(),
                ) {
                    (Some(p), _) => s(&e["binary_path"]).eq_ignore_ascii_case(p),
                    (None, Some(c)) => s(&e["binary_path"])
                        .to_ascii_lowercase()
                        .contains(&c.to_ascii_lowercase()),
                    (None, None) => true,
                }
        });
        if !found {
            problems.push(format!(
                "service {name:?} with binary path {} missing",
                sv["binary_path"]
                    .as_str()
                    .or(sv["binary_path_contains"].as_str())
                    .unwrap_or("-")
            ));
        }
    }
    if truth["verdict"] == "positive" && truth["visibility"] == "stub-encrypted" {
        let creating = |e: &&Value| {
            let op = e["opnum"].as_u64().unwrap_or(u64::MAX);
            match s(&e["endpoint"]).as_str() {
                "svcctl" => [12, 24, 44, 45, 60, 11, 23].contains(&op),
                "ITaskSchedulerService" => op == 1,
                "atsvc" => op == 0,
                _ => false,
            }
        };
        if !ev
            .iter()
            .filter(|e| log(e, "dce_rpc"))
            .filter(creating)
            .any(|e| e["stub_encrypted"] == true)
        {
            problems
                .push("no stub-encrypted creating/modifying svcctl or task-scheduler call".into());
        }
    }
    problems
}

/// The lab password, for SMB3-encrypted lab recordings (../shared/captures/README.md).
fn lab_keys(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("psexec-truth-keys-{tag}-{}", std::process::id()));
    std::fs::write(&p, "admin:Passw0rd!Lab\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

#[test]
fn events_match_every_truth_file() {
    let keys = lab_keys("main");
    let mut checked = 0;
    let mut failures = Vec::new();
    for root in roots() {
        for tp in truth_files(&root) {
            let truth: Value =
                serde_json::from_str(&std::fs::read_to_string(&tp).unwrap()).unwrap();
            let cap = PathBuf::from(tp.to_string_lossy().trim_end_matches(".truth.json"));
            let lab = truth["source"]["lab"].is_string();
            let encrypted = truth["visibility"] == "smb3-encrypted";
            let ev = events_of(&cap, (encrypted && lab).then_some(keys.as_path()));
            if encrypted && !lab {
                continue; // no secrets: nothing inside to check; read must still succeed
            }
            checked += 1;
            for p in check(&truth, &ev) {
                failures.push(format!("{}: {p}", cap.display()));
            }
        }
    }
    let _ = std::fs::remove_file(&keys);
    assert!(checked >= 10, "only {checked} captures checked");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
