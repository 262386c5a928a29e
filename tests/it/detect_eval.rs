//! eval scoring on the real truth files with alerts made by the detector from hand-made sequences.

use crate::common::corpus::{repo_captures, shared_capture, shared_captures};
use crate::detect_util::*;
use psexec_sensor::eval::{discover, score, tool_accepts, Case, Report, Status, Truth, Verdict};
use psexec_sensor::event::alert::Alert;
use psexec_sensor::event::*;
use std::path::PathBuf;

fn case(rel: &str) -> Case {
    let capture = repo_captures().join(rel);
    let truth_path = PathBuf::from(format!("{}.truth.json", capture.display()));
    let truth = Truth::load(&truth_path).unwrap();
    Case {
        capture,
        truth_path,
        truth,
    }
}

#[test]
fn discovers_every_truth_file_with_its_capture() {
    let cases = discover(&[repo_captures()]).unwrap();
    let n_truth = walkdir_count(&repo_captures());
    assert!(cases.len() >= 12, "lab captures: {}", cases.len());
    assert!(cases.len() <= n_truth);
    let a = cases
        .iter()
        .find(|c| c.capture.ends_with("a_psexec_default.pcap"))
        .unwrap();
    assert_eq!(a.truth.verdict, Verdict::Positive);
    assert_eq!(a.truth.attacker_ip, Some(ip("192.0.2.10")));
    assert_eq!(a.truth.expect.services[0].name.as_deref(), Some("nUwj"));
    // the shared corpus parses too (every truth file, public ones included)
    let all = discover(&[shared_captures()]).unwrap();
    assert!(all.len() >= 60, "{}", all.len());
    assert!(all
        .iter()
        .any(|c| c.truth.tool.as_deref() == Some("sharpnopsexec")));
}

fn walkdir_count(d: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walkdir_count(&p);
        } else if p.to_string_lossy().ends_with(".truth.json") {
            n += 1;
        }
    }
    n
}

#[test]
fn psexec_lab_alert_scores_detected_with_all_fields_and_tool() {
    let c = case("lab/a_psexec_default.pcap");
    let mut s = Seq::new("192.0.2.10", "192.0.2.20");
    impacket_psexec(&mut s, 0.0);
    let sc = score(&c, &run(&s.done()));
    assert_eq!(sc.status, Status::Detected);
    assert!(sc.fields.iter().all(|f| f.ok), "{:#?}", sc.fields);
    assert!(sc.fields.iter().any(|f| f.field == "uploads[0].sha256"));
    assert!(sc
        .fields
        .iter()
        .any(|f| f.field == "services[0].binary_path"));
    assert_eq!(sc.attribution_ok, Some(true));
    assert!(sc.ok);
}

#[test]
fn wrong_pair_or_wrong_service_is_missed() {
    let c = case("lab/a_psexec_default.pcap");
    // right service, wrong source
    let mut s = Seq::new("192.0.2.99", "192.0.2.20");
    impacket_psexec(&mut s, 0.0);
    let sc = score(&c, &run(&s.done()));
    assert_eq!(sc.status, Status::Missed);
    assert!(!sc.ok);
    // right pair, wrong binary path
    let mut s = Seq::new("192.0.2.10", "192.0.2.20");
    s.create(0.0, "nUwj", "%systemroot%\\other.exe", None, "ok");
    let sc = score(&c, &run(&s.done()));
    assert_eq!(sc.status, Status::Missed);
    assert!(sc
        .fields
        .iter()
        .any(|f| f.field == "services[0].binary_path" && !f.ok));
    assert!(sc
        .fields
        .iter()
        .any(|f| f.field == "uploads[0].name" && !f.ok));
    let r = Report::new(vec![sc]);
    assert!(!r.all_ok());
    assert_eq!(r.totals.recall, 0.0);
}

#[test]
fn binary_path_contains_and_folded_calls_are_scored() {
    let c = case("lab/c_smbexec.pcap");
    let mut s = Seq::new("192.0.2.10", "192.0.2.20");
    s.open_scm(0.0, "DUMMY").create(
        0.1,
        "QwErAsDf",
        "%COMSPEC% /Q /c echo cd  ^> \\\\%COMPUTERNAME%\\C$\\__output_ZxCvBnMa 2^>^&1 > %SYSTEMROOT%\\PoIuYtRe.bat & %COMSPEC% /Q /c %SYSTEMROOT%\\PoIuYtRe.bat & del %SYSTEMROOT%\\PoIuYtRe.bat",
        None,
        "nca_s_op_rng_error",
    );
    let sc = score(&c, &run(&s.done()));
    assert_eq!(sc.status, Status::Detected);
    assert_eq!(sc.attribution_ok, Some(true));

    // CrackMapExec: two expected services with the same name and different paths, folded in one alert
    let shared = shared_capture("public/elcabezzonn/cme-smb-chip-douglas.pcap");
    let truth = Truth::load(&PathBuf::from(format!("{}.truth.json", shared.display()))).unwrap();
    let c = Case {
        capture: shared,
        truth_path: PathBuf::new(),
        truth: truth.clone(),
    };
    let mut s = Seq::new("192.168.1.109", "192.168.1.46");
    for (i, svc) in truth.expect.services.iter().enumerate() {
        s.create(
            i as f64 * 5.0,
            svc.name.as_deref().unwrap(),
            svc.binary_path.as_deref().unwrap(),
            None,
            "ok",
        );
    }
    let alerts = run(&s.done());
    assert_eq!(techniques(&alerts).len(), 1);
    let sc = score(&c, &alerts);
    assert_eq!(sc.status, Status::Detected);
    assert_eq!(
        sc.fields
            .iter()
            .filter(|f| f.field.ends_with("binary_path") && f.ok)
            .count(),
        2,
        "{:#?}",
        sc.fields
    );
    assert_eq!(sc.attribution_ok, Some(true));
    // only the first command seen: the second expected path is a wrong field
    let mut s = Seq::new("192.168.1.109", "192.168.1.46");
    let svc = &truth.expect.services[0];
    s.create(
        0.0,
        svc.name.as_deref().unwrap(),
        svc.binary_path.as_deref().unwrap(),
        None,
        "ok",
    );
    let sc = score(&c, &run(&s.done()));
    assert_eq!(sc.status, Status::Detected);
    assert!(sc
        .fields
        .iter()
        .any(|f| f.field == "services[1].binary_path" && !f.ok));
}

#[test]
fn negatives_with_signals_are_quiet_and_with_techniques_fail() {
    let c = case("lab/f_benign_admin_upload.pcap");
    let mut s = Seq::new("192.0.2.11", "192.0.2.20");
    s.tree(0.0, "ADMIN$")
        .write(0.1, "ADMIN$", "tool.exe", 56320, true, Some(SHA));
    let alerts = run(&s.done());
    let sc = score(&c, &alerts);
    assert_eq!(sc.status, Status::Quiet);
    assert_eq!(sc.signals, 1);
    assert!(sc.ok);
    s.write(0.1, "ADMIN$", "tool.exe", 56320, true, Some(SHA))
        .create(1.0, "Tool", "%SystemRoot%\\tool.exe", None, "ok");
    let bad = score(&c, &run(&s.done()));
    assert_eq!(bad.status, Status::FalseAlert);
    let r = Report::new(vec![sc, bad]);
    assert!(!r.all_ok());
    assert_eq!(r.totals.negatives, 2);
    assert_eq!(r.totals.negatives_alerting, 1);
    assert_eq!(r.totals.false_technique_alerts, 1);
}

#[test]
fn encrypted_positive_needs_a_visibility_record() {
    let c = case("lab/j1_psexec_opportunistic_enc.pcap");
    assert!(!c.truth.visible_positive());
    let silent = score(&c, &[]);
    assert_eq!(silent.status, Status::Silent);
    let mut s = Seq::new("192.0.2.13", "192.0.2.20");
    s.auth(0.0, "admin", "WORKGROUP");
    s.events.push(Event::SmbVisibility(SmbVisibility {
        conn: conn(0.1, "192.0.2.13", "192.0.2.20", 445),
        session_id: 1,
        kind: "encrypted",
        state: "start",
        cipher: None,
        dialect: None,
        user: None,
        domain: None,
        workstation: None,
        messages: 0,
        bytes: 0,
        decrypted: false,
    }));
    let alerts = run(&s.done());
    assert!(alerts.iter().any(|a| matches!(a, Alert::Visibility(_))));
    let sc = score(&c, &alerts);
    assert_eq!(sc.status, Status::Visibility);
    let r = Report::new(vec![sc]);
    assert!(r.all_ok());
    assert_eq!(r.totals.visible_positives, 0);
    assert_eq!(r.totals.recall, 1.0);
}

#[test]
fn report_totals_table_and_json() {
    let a = case("lab/a_psexec_default.pcap");
    let mut s = Seq::new("192.0.2.10", "192.0.2.20");
    impacket_psexec(&mut s, 0.0);
    let good = score(&a, &run(&s.done()));
    let missed = score(&case("lab/e_services_create_start.pcap"), &[]);
    let quiet = score(&case("lab/h_benign_svc_query.pcap"), &[]);
    let r = Report::new(vec![good, missed, quiet]);
    assert_eq!(r.totals.visible_positives, 2);
    assert_eq!(r.totals.detected, 1);
    assert_eq!(r.totals.recall, 0.5);
    assert_eq!(r.totals.attribution_checked, 1);
    assert_eq!(r.totals.attribution_right, 1);
    assert!(r.totals.fields_checked >= 6);
    assert_eq!(r.totals.fields_right, r.totals.fields_checked);
    assert!(!r.all_ok());
    let table = r.table();
    assert!(
        table.contains("lab/a_psexec_default.pcap")
            && table.contains("MISSED")
            && table.contains("ok quiet"),
        "{table}"
    );
    assert!(table.contains("impacket-psexec/impacket-psexec"), "{table}");
    assert!(table.contains("recall on visible positives 1/2"), "{table}");
    let j = r.to_json();
    assert_eq!(j["totals"]["detected"], 1);
    assert_eq!(j["captures"][1]["status"], "missed");
    assert_eq!(j["ok"], false);
}

#[test]
fn tool_equivalences() {
    assert!(tool_accepts("smbexec-unknown", "unknown"));
    assert!(tool_accepts("smbexec-unknown", "impacket-smbexec"));
    assert!(!tool_accepts("smbexec-unknown", "impacket-psexec"));
    assert!(tool_accepts("unknown-malware", "unknown"));
    assert!(!tool_accepts("impacket-psexec", "unknown"));
}

#[test]
fn runs_far_apart_are_two_alerts_and_upload_bytes_sum_over_the_capture() {
    // elcabezzonn multiple_psexecs: PsExec run twice 16 minutes apart; the truth sums the bytes
    // written to PSEXESVC.exe over the whole capture.
    let path =
        shared_capture("public/elcabezzonn/multiple_psexecs_with_cmds_netstat_ipconfig.pcap.gz");
    let truth = Truth::load(&PathBuf::from(format!("{}.truth.json", path.display()))).unwrap();
    let c = Case {
        capture: path,
        truth_path: PathBuf::new(),
        truth,
    };
    let mut s = Seq::new("192.168.1.46", "192.168.1.195");
    for t0 in [0.0, 966.0] {
        s.tree(t0, "ADMIN$")
            .write(t0 + 0.1, "ADMIN$", "PSEXESVC.exe", 145568, true, None)
            .create(
                t0 + 0.2,
                "PSEXESVC",
                "%SystemRoot%\\PSEXESVC.exe",
                Some(&format!("h{t0}")),
                "ok",
            )
            .start(t0 + 0.3, &format!("h{t0}"))
            .pipe(t0 + 0.4, "PSEXESVC-WS-1234-stdin");
    }
    let alerts = run(&s.done());
    assert_eq!(techniques(&alerts).len(), 2);
    let sc = score(&c, &alerts);
    assert_eq!(sc.status, Status::Detected);
    assert!(sc.fields.iter().all(|f| f.ok), "{:#?}", sc.fields);
}

#[test]
fn smb3_encrypted_positives_score_the_technique_only() {
    // Inside SMB3 encryption names, paths and uploads are not on the wire: an alert from sizes
    // alone is checked on its technique, not marked wrong on fields nobody could read.
    let c = case("lab/j1_psexec_opportunistic_enc.pcap");
    let mut s = Seq::new("192.0.2.13", "192.0.2.20");
    s.call_on(
        1.0,
        "smb_pipe",
        "svcctl",
        12,
        "CreateServiceW",
        DceArgs::default(),
        "ok",
        true,
    );
    let sc = score(&c, &run(&s.done()));
    let names: Vec<&str> = sc.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(names, vec!["technique"], "{:#?}", sc.fields);
    assert!(sc.fields[0].ok);
}

#[test]
fn the_impacket_family_answers_for_an_impacket_script_only() {
    assert!(tool_accepts("impacket-psexec", "impacket-based"));
    assert!(tool_accepts("impacket-services", "impacket-based"));
    assert!(tool_accepts("impacket-psexec", "impacket-psexec"));
    assert!(!tool_accepts("impacket-psexec", "impacket-smbexec"));
    assert!(!tool_accepts("sysinternals-psexec", "impacket-based"));
}
