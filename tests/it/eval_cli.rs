//! `psexec-sensor eval`: scores captures against their truth files and says so in its exit code.

use std::path::PathBuf;
use std::process::Command;

fn eval(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_psexec-sensor"))
        .arg("eval")
        .args(args)
        .output()
        .unwrap()
}

fn lab(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_detected_positive_and_a_quiet_negative_pass() {
    let o = eval(&[
        "--json",
        &lab("a_psexec_default.pcap"),
        &lab("f_benign_admin_upload.pcap"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let text = v.to_string();
    assert!(
        text.contains("a_psexec_default.pcap") && text.contains("f_benign_admin_upload.pcap"),
        "{text}"
    );
    assert!(text.contains("impacket-psexec"), "{text}");
}

#[test]
fn a_table_names_each_capture_and_the_totals() {
    let o = eval(&[&lab("c_smbexec.pcap"), &lab("h_benign_svc_query.pcap")]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("c_smbexec.pcap") && t.contains("ok detected"),
        "{t}"
    );
    assert!(
        t.contains("h_benign_svc_query.pcap") && t.contains("ok quiet"),
        "{t}"
    );
    assert!(t.contains("recall on visible positives 1/1"), "{t}");
}

#[test]
fn a_miss_fails_the_exit_code() {
    // A positive whose truth file is copied beside a benign capture: the sensor (rightly) stays
    // quiet, so eval must report the miss and exit non-zero.
    let dir = std::env::temp_dir().join(format!("psexec-eval-miss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("benign.pcap");
    std::fs::copy(lab("g_benign_browse_c.pcap"), &cap).unwrap();
    std::fs::copy(
        lab("a_psexec_default.pcap.truth.json"),
        dir.join("benign.pcap.truth.json"),
    )
    .unwrap();
    let o = eval(&[dir.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("MISSED"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_truth_files_is_an_error() {
    let o = eval(&["/nonexistent-dir-for-psexec-eval"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!o.stderr.is_empty());
}

/// `eval --json | head`: a reader that leaves early is not a crash (it used to exit 101).
#[test]
fn a_closed_stdout_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_psexec-sensor"))
        .arg("eval")
        .arg("--json")
        .arg(lab("a_psexec_default.pcap"))
        .arg(lab("f_benign_admin_upload.pcap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the report is written.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_ne!(
        o.status.code(),
        Some(101),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    assert_eq!(o.status.code(), Some(0), "the report's own verdict");
}

/// Every row of the table keeps its columns aligned, however long a cell is (it used to shift
/// the rest of the row when a capture name or wrong-field list passed the column cap).
#[test]
fn the_table_stays_aligned_with_long_cells() {
    let shared = super::common::corpus::shared_captures();
    let o = eval(&[shared.to_str().unwrap()]);
    let text = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
    let header = rows[0];
    let col = header.find("result").unwrap();
    let col_chars = header[..col].chars().count();
    assert!(rows.len() > 60);
    for r in &rows[1..] {
        let rest: String = r.chars().skip(col_chars).collect();
        assert!(
            ["ok ", "MISSED", "FALSE ALERT", "SILENT"]
                .iter()
                .any(|w| rest.starts_with(w)),
            "misaligned row: {r}"
        );
    }
}
