//! Issue 4 acceptance 4: `read` on the lab's impacket psexec capture prints exactly one technique
//! alert naming impacket-psexec, the uploaded file with its SHA-256, the service and the binary
//! path (all as the truth file says), and a readable summary on stderr.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn psexec_capture_gives_one_complete_alert_and_a_summary() {
    let cap = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/lab/a_psexec_default.pcap");
    let truth: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.truth.json", cap.display())).unwrap(),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_psexec-sensor"))
        .arg("read")
        .arg(&cap)
        .output()
        .unwrap();
    assert!(o.status.success());
    let alerts: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t: Vec<&Value> = alerts.iter().filter(|a| a["kind"] == "technique").collect();
    assert_eq!(t.len(), 1, "{alerts:?}");
    let (t, x) = (t[0], &truth["expect"]);
    assert_eq!(t["tool"], truth["tool"]);
    assert_eq!(t["src_ip"], truth["attacker_ip"]);
    assert_eq!(t["dst_ip"], truth["victim_ip"]);
    assert_eq!(t["service_name"], x["services"][0]["name"]);
    assert_eq!(t["binary_path"], x["services"][0]["binary_path"]);
    assert_eq!(t["uploads"][0]["name"], x["uploads"][0]["name"]);
    assert_eq!(t["uploads"][0]["size"], x["uploads"][0]["bytes"]);
    assert_eq!(t["uploads"][0]["sha256"], x["uploads"][0]["sha256"]);
    assert_eq!(t["uploads"][0]["referenced"], true);
    assert_eq!(t["technique"], "service-create");
    assert!(t["attack"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "T1569.002"));
    assert!(!t["reason"].as_str().unwrap().is_empty());
    // Exactly one host summary for the attacker, naming the tool.
    let hs: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] == "host_summary")
        .collect();
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0]["attacks"], 1);
    // The human summary names the attack readably.
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "psexec-sensor summary",
        "alerts",
        "impacket-psexec",
        x["services"][0]["name"].as_str().unwrap(),
        "zeCGSXch.exe",
    ] {
        assert!(err.contains(want), "summary lacks {want}:\n{err}");
    }
}
