//! Issue 16: DCE-RPC packet privacy under Kerberos, opened with a keytab, end to end through
//! `psexec-sensor read --keytab`. captures/lab/m1_krb_rpc_privacy.pcap is svcctl on \PIPE\svcctl
//! sealed with RFC 4121 AES256 wrap tokens (impacket's client against Samba's AD DC, SPNEGO →
//! krb5, auth level 6); m2_krb_rpc_cleartext.pcap the same client and calls without DCE-RPC auth.
//! - with the keytab, m1 gives the technique alert m2 gives (service, binary path, user, realm),
//!   marked decrypted; the calls' opnums are tshark's for m1 and their service name and binary
//!   path tshark's for m2 (tshark 4.0 decrypts the tickets but not these stubs);
//! - without it, m1 alerts as before, stub-encrypted; with a keytab of other keys, the same plus
//!   one `decrypt` anomaly;
//! - the shared stub-encrypted captures (no keytab of theirs exists) give the same alerts with a
//!   keytab as without;
//! - no key reaches any output.

use super::common::corpus::shared_capture;
use super::kerberos::tshark;
use super::kerberos_lab::{
    assert_matches_truth, assert_no_keytab_key_in_outputs, keytab_of, lab, run, techniques, truth,
};
use serde_json::Value;

const SEALED: &str = "m1_krb_rpc_privacy.pcap";
const CLEAR: &str = "m2_krb_rpc_cleartext.pcap";

fn svcctl_calls(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["log"] == "dce_rpc" && e["endpoint"] == "svcctl" && e["opnum"].is_u64())
        .collect()
}

#[test]
fn sealed_svcctl_with_the_keytab_alerts_like_its_cleartext_twin() {
    let (sealed, clear) = (lab(SEALED), lab(CLEAR));
    let (alerts, events, _, _) = run(&sealed, Some(&keytab_of(&sealed)), "m1");
    let (clear_alerts, _, _, _) = run(&clear, Some(&keytab_of(&clear)), "m2");
    let (t, c) = (techniques(&alerts), techniques(&clear_alerts));
    assert_eq!((t.len(), c.len()), (1, 1), "{alerts:#?}");
    let (t, c) = (t[0], c[0]);
    // The sealed service (truth `services`, outside `expect`: without the keytab it is unread)
    // is the twin's.
    assert_eq!(
        truth(&sealed)["services"],
        truth(&clear)["expect"]["services"]
    );
    assert_eq!(
        truth(&sealed)["kerberos"]["user"],
        truth(&clear)["kerberos"]["user"]
    );
    assert_matches_truth(t, &truth(&clear));
    assert_matches_truth(c, &truth(&clear));
    assert_eq!(t["decrypted"], true, "{t:#}");
    assert!(c.get("decrypted").is_none(), "{c:#}");
    for field in [
        "technique",
        "attack",
        "severity",
        "basis",
        "confidence",
        "service_name",
        "display_name",
        "binary_path",
        "start_type",
        "user",
        "domain",
        "auth",
        "tool",
        "started",
        "deleted",
        "failed",
    ] {
        assert_eq!(t[field], c[field], "{field}: {t:#}");
    }
    assert_eq!(t["basis"], "cleartext");
    // The bind named the ticket's client from the keytab; every call was opened.
    let bind = events
        .iter()
        .find(|e| e["log"] == "dce_rpc" && e["operation"] == "bind" && e["endpoint"] == "svcctl")
        .expect("svcctl bind");
    assert_eq!(bind["auth_level"], "privacy");
    assert_eq!(bind["user"], "Administrator", "{bind}");
    assert_eq!(bind["domain"], "PSXLAB.TEST", "{bind}");
    assert_eq!(bind["user_source"], "keytab", "{bind}");
    let calls = svcctl_calls(&events);
    assert_eq!(calls.len(), 6, "{calls:#?}");
    for call in &calls {
        assert_eq!(call["decrypted"], true, "{call}");
        assert_eq!(call["stub_encrypted"], false, "{call}");
    }
    // Responses opened too: the SCM handle OpenSCManagerW returned, ERROR_SERVICE_DOES_NOT_EXIST.
    assert_eq!(calls[0]["return_code"], 0);
    assert_eq!(calls[0]["response_handle"].as_str().map(str::len), Some(40));
    assert_eq!(calls[2]["operation"], "OpenServiceW");
    assert_eq!(calls[2]["return_code"], 1060);
}

/// The independent check: tshark's opnums of the sealed requests (readable outside the seal) and
/// tshark's decoding of the cleartext twin's CreateServiceW.
#[test]
fn decrypted_calls_agree_with_tshark() {
    let (sealed, clear) = (lab(SEALED), lab(CLEAR));
    let (_, events, _, _) = run(&sealed, Some(&keytab_of(&sealed)), "m1-tshark");
    let ours: Vec<String> = svcctl_calls(&events)
        .iter()
        .map(|c| c["opnum"].to_string())
        .collect();
    let requests = "svcctl && dcerpc.pkt_type == 0";
    let theirs: Vec<String> = tshark(&sealed, requests, &["svcctl.opnum"])
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(theirs, ["15", "12", "16", "19", "2", "0"]);
    let create = tshark(
        &clear,
        "svcctl.opnum == 12 && dcerpc.pkt_type == 0",
        &["svcctl.servicename", "svcctl.binarypathname"],
    );
    assert_eq!(create.len(), 1, "{create:?}");
    let ours = svcctl_calls(&events)
        .into_iter()
        .find(|c| c["operation"] == "CreateServiceW")
        .unwrap();
    assert_eq!(ours["service_name"], create[0][0].as_str());
    assert_eq!(ours["binary_path"], create[0][1].as_str());
}

#[test]
fn without_the_keytab_the_sealed_calls_stay_stub_encrypted() {
    let sealed = lab(SEALED);
    let (alerts, events, _, _) = run(&sealed, None, "m1-nokeys");
    let t = techniques(&alerts);
    assert_eq!(t.len(), 1, "{alerts:#?}");
    assert_eq!(t[0]["basis"], "stub-encrypted", "{:#}", t[0]);
    assert!(t[0].get("decrypted").is_none());
    assert!(t[0].get("service_name").is_none());
    // The user still comes from the TGS-REP in the capture.
    assert_eq!(t[0]["user"], "Administrator");
    let calls = svcctl_calls(&events);
    assert_eq!(calls.len(), 6);
    assert!(calls.iter().all(|c| c["stub_encrypted"] == true));
}

/// A keytab with other keys (l1's, from an earlier provisioning of the same domain): nothing opens,
/// one typed anomaly says so, and the alert is the one without a keytab.
#[test]
fn a_keytab_of_other_keys_is_one_decrypt_anomaly() {
    let sealed = lab(SEALED);
    let other = keytab_of(&lab("l1_krb_psexec.pcap"));
    let (alerts, events, _, _) = run(&sealed, Some(&other), "m1-other");
    let (plain, _, _, _) = run(&sealed, None, "m1-plain");
    let t = techniques(&alerts);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["basis"], "stub-encrypted");
    assert_eq!(t[0]["service_name"], techniques(&plain)[0]["service_name"]);
    let rpc: Vec<&Value> = events
        .iter()
        .filter(|e| e["log"] == "anomaly" && e["kind"] == "decrypt" && e["layer"] == "dcerpc")
        .collect();
    assert_eq!(rpc.len(), 1, "{rpc:#?}");
    let detail = rpc[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("Kerberos bind not opened") && detail.contains("host/dc1.psxlab.test"),
        "{detail}"
    );
}

#[test]
fn shared_stub_encrypted_captures_are_unchanged_by_a_keytab() {
    let kt = keytab_of(&lab(SEALED));
    for rel in [
        "public/elcabezzonn/schtasks.pcap",
        "public/elcabezzonn/sharp-no-psexec.pcap",
        "public/pcap-attack/LM_psexec_smb_dcerpc_epm_svcctl.pcapng",
    ] {
        let cap = shared_capture(rel);
        let (with, _, _, _) = run(&cap, Some(&kt), "shared-kt");
        let (without, _, _, _) = run(&cap, None, "shared-nokt");
        let strip = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .filter(|a| a["kind"] != "host_summary")
                .collect()
        };
        let (with, without) = (strip(with), strip(without));
        assert!(!without.is_empty(), "{rel} alerts");
        assert_eq!(with, without, "{rel}");
    }
}

#[test]
fn no_key_reaches_any_output_from_sealed_rpc() {
    assert_no_keytab_key_in_outputs(SEALED);
}

/// `eval --truth-keytabs` scores each capture with the keytab its truth names: m1's sealed calls
/// are then read (impacket's client is recognised); `--keytab` takes one for every capture; a
/// keytab that is not one is exit 2 naming the file.
#[test]
fn eval_scores_with_the_keytab_a_truth_names() {
    use super::common::read_events::bin;
    let sealed = lab(SEALED);
    let eval = |extra: &[&std::ffi::OsStr]| -> (Option<i32>, Value) {
        let o = std::process::Command::new(bin())
            .arg("eval")
            .arg(&sealed)
            .arg("--json")
            .args(extra)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&o.stdout).unwrap_or(Value::Null);
        (o.status.code(), json)
    };
    let (code, without) = eval(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(without["captures"][0]["got_tool"], "unknown");
    let kt = keytab_of(&sealed);
    let with_truth: [&std::ffi::OsStr; 1] = ["--truth-keytabs".as_ref()];
    let with_flag: [&std::ffi::OsStr; 2] = ["--keytab".as_ref(), kt.as_os_str()];
    for extra in [&with_truth[..], &with_flag[..]] {
        let (code, with) = eval(extra);
        assert_eq!(code, Some(0), "{with:#}");
        assert_eq!(
            with["captures"][0]["got_tool"], "impacket-based",
            "{with:#}"
        );
        assert_eq!(with["captures"][0]["attribution_ok"], true);
    }
    let o = std::process::Command::new(bin())
        .arg("eval")
        .arg(&sealed)
        .arg("--keytab")
        .arg(&sealed)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("m1_krb_rpc_privacy.pcap"));
}
