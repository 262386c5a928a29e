//! Issue 7 acceptance, end to end through `psexec-sensor read`:
//! - with the lab password, j1 (impacket psexec inside SMB3 encryption) gives the same technique
//!   alert as the cleartext a_psexec_default (service, binary path, upload with SHA-256, tool),
//!   marked decrypted; j3 (benign upload, encrypted) decrypts and stays without a technique alert;
//! - without keys, j1 raises an inferred technique alert, and j3, Zeek's smb3/smb311 and
//!   suricata-verify's smb3-02-midstream raise none, only visibility records;
//! - a wrong password gives a clear "could not derive keys" anomaly and no decrypted alert.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn keyfile(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("psexec-keys-{name}-{}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    p
}

/// (alerts, events) of one run.
fn run(cap: &Path, keys: Option<&Path>) -> (Vec<Value>, Vec<Value>) {
    // Tests run in parallel on the same capture: every run gets a file of its own.
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = cap.file_name().unwrap().to_string_lossy();
    let ev = std::env::temp_dir().join(format!("psexec-enc-ev-{}-{n}-{name}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_psexec-sensor"));
    c.arg("read")
        .arg(cap)
        .arg("--events")
        .arg(&ev)
        .arg("--no-summary");
    if let Some(k) = keys {
        c.arg("--smb-keys").arg(k);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = |t: &str| {
        t.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect::<Vec<Value>>()
    };
    let events = lines(&std::fs::read_to_string(&ev).unwrap());
    let _ = std::fs::remove_file(&ev);
    (lines(&String::from_utf8_lossy(&o.stdout)), events)
}

fn techniques(alerts: &[Value]) -> Vec<&Value> {
    alerts.iter().filter(|a| a["kind"] == "technique").collect()
}

fn truth(cap: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{}.truth.json", cap.display())).unwrap())
        .unwrap()
}

#[test]
fn decrypted_j1_alerts_like_cleartext_psexec() {
    let keys = keyfile("lab", "admin:Passw0rd!Lab\n");
    let j1 = repo("captures/lab/j1_psexec_opportunistic_enc.pcap");
    let (alerts, events) = run(&j1, Some(&keys));
    let (clear, _) = run(&repo("captures/lab/a_psexec_default.pcap"), None);
    let (t, c) = (techniques(&alerts), techniques(&clear));
    assert_eq!((t.len(), c.len()), (1, 1), "{alerts:?}");
    let (t, c) = (t[0], c[0]);
    let want = truth(&j1);
    assert_eq!(t["decrypted"], true);
    assert_eq!(t["service_name"], want["expect"]["services"][0]["name"]);
    assert_eq!(
        t["binary_path"],
        want["expect"]["services"][0]["binary_path"]
    );
    assert_eq!(t["src_ip"], want["attacker_ip"]);
    assert_eq!(t["dst_ip"], want["victim_ip"]);
    assert_eq!(
        t["uploads"][0]["name"],
        want["expect"]["uploads"][0]["name"]
    );
    assert_eq!(
        t["uploads"][0]["sha256"],
        want["expect"]["uploads"][0]["sha256"]
    );
    // The same technique, tool, evidence shape and upload as in cleartext.
    for f in ["technique", "tool", "basis", "severity"] {
        assert_eq!(t[f], c[f], "{f}");
    }
    assert_eq!(t["uploads"][0]["sha256"], c["uploads"][0]["sha256"]);
    assert_eq!(t["uploads"][0]["size"], c["uploads"][0]["size"]);
    assert!(t["reason"].as_str().unwrap().contains("decrypted"));
    assert!(
        !alerts.iter().any(|a| a["kind"] == "visibility"),
        "a decrypted session is not a blind spot"
    );
    assert!(events
        .iter()
        .any(|e| e["log"] == "smb_visibility" && e["decrypted"] == true));
    // Secrets never reach the output.
    let all = format!("{alerts:?}{events:?}");
    assert!(!all.contains("Passw0rd"));
}

#[test]
fn decrypted_benign_upload_stays_quiet() {
    let keys = keyfile("lab3", "admin:Passw0rd!Lab\n");
    let j3 = repo("captures/lab/j3_benign_upload_enc.pcap");
    let (alerts, events) = run(&j3, Some(&keys));
    assert!(techniques(&alerts).is_empty(), "{alerts:?}");
    // It really was decrypted: the uploads of its truth are visible as FILE_WRITEs.
    for u in truth(&j3)["expect"]["uploads"].as_array().unwrap() {
        assert!(
            events.iter().any(|e| e["action"] == "SMB::FILE_WRITE"
                && e["name"] == u["name"]
                && e["bytes_written"] == u["bytes"]),
            "{u}"
        );
    }
}

#[test]
fn without_keys_j1_is_inferred_and_benign_encrypted_sessions_are_only_visibility() {
    let (alerts, _) = run(&repo("captures/lab/j1_psexec_opportunistic_enc.pcap"), None);
    let t = techniques(&alerts);
    assert_eq!(t.len(), 1, "{alerts:?}");
    assert_eq!(t[0]["basis"], "inferred");
    assert_eq!(t[0]["src_ip"], "192.0.2.13");
    assert!(t[0]["reason"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("encrypt"));
    assert!(alerts
        .iter()
        .any(|a| a["kind"] == "visibility" && a["user"] == "admin"));
    for cap in [
        "captures/lab/j3_benign_upload_enc.pcap",
        "captures/public/zeek/smb3.pcap",
        "captures/public/zeek/smb311.pcap",
        "captures/public/suricata-verify/smb3-02-midstream/input.pcap",
    ] {
        let (alerts, _) = run(&repo(cap), None);
        assert!(techniques(&alerts).is_empty(), "{cap}: {alerts:?}");
        assert!(
            alerts.iter().any(|a| a["kind"] == "visibility"),
            "{cap}: no visibility record"
        );
    }
}

#[test]
fn wrong_password_says_so_and_decrypts_nothing() {
    let keys = keyfile("wrong", "admin:not-the-password\n");
    let (alerts, events) = run(
        &repo("captures/lab/j1_psexec_opportunistic_enc.pcap"),
        Some(&keys),
    );
    assert!(events.iter().any(|e| e["log"] == "anomaly"
        && e["kind"] == "decrypt"
        && e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("could not derive keys for session")));
    assert!(!techniques(&alerts).iter().any(|t| t["decrypted"] == true));
    assert!(!events.iter().any(|e| e["log"] == "dce_rpc"));
}

#[test]
fn a_bad_key_file_is_an_error_naming_file_and_line() {
    let keys = keyfile("bad", "# comment\nsession:zz:00\n");
    let o = Command::new(env!("CARGO_BIN_EXE_psexec-sensor"))
        .arg("read")
        .arg(repo("captures/lab/j1_psexec_opportunistic_enc.pcap"))
        .arg("--smb-keys")
        .arg(&keys)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("{}:2", keys.display())), "{err}");
}
