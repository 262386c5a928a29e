//! Runs the real binary (`psexec-sensor read CAPTURE --events FILE`) and returns its events: the
//! oracle tests compare what a user gets, not what a library call returns.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_psexec-sensor")
}

pub use super::corpus::repo;

/// The events of `read` on one capture (with an SMB key file when given). Panics with read's stderr
/// when it does not exit 0.
pub fn events_of(capture: &Path, keys: Option<&Path>) -> Vec<Value> {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("psexec-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = capture.file_name().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("{n}-{name}.jsonl"));
    let alerts = dir.join(format!("{n}-alerts.jsonl"));
    let mut cmd = Command::new(bin());
    cmd.arg("read")
        .arg(capture)
        .arg("--events")
        .arg(&out)
        .arg("--alerts")
        .arg(&alerts)
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
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&alerts);
    text.lines()
        .map(|l| serde_json::from_str(l).expect("event line is JSON"))
        .collect()
}

/// The lab password as an `--smb-keys` file (mode 0600), unique per `tag`.
pub fn lab_keys(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("psexec-oracle-keys-{tag}-{}", std::process::id()));
    std::fs::write(&p, "admin:Passw0rd!Lab\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

/// A string field, "" when absent.
pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Events of one log kind, in output order.
pub fn of_log<'a>(ev: &'a [Value], log: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["log"] == log).collect()
}

/// The connection 4-tuple as Zeek writes it: `orig_h:orig_p>resp_h:resp_p`.
pub fn conn_key(e: &Value) -> String {
    format!(
        "{}:{}>{}:{}",
        s(&e["id.orig_h"]),
        e["id.orig_p"],
        s(&e["id.resp_h"]),
        e["id.resp_p"]
    )
}
