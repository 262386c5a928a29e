//! Issue 16 part B, end to end through `psexec-sensor read --keytab`: the Kerberos lab captures
//! (captures/lab/l1..l5, Samba AD DC, impacket -k) with the keytab exported beside each:
//! - l1 psexec and l2 smbexec give technique alerts naming the ticket's client (user
//!   Administrator, domain PSXLAB.TEST), l3 atexec and l4 smbclient none;
//! - l5, the same psexec inside SMB3 encryption required by the server, decrypts with the keytab
//!   alone (no password, no session key) and alerts like l1, marked decrypted; without the keytab
//!   it does not decrypt;
//! - a bad keytab is a clear error and exit 2; no key byte reaches any output;
//! - l6 services.py (create, start, delete) and l7 atexec.py (against the lab's MS-TSCH responder,
//!   sealed DCE-RPC) give their technique alerts naming the client, with or without the keytab;
//! - l4's TGS-REQ with MIT's negative nonce gives its `kerberos` event.

use super::common::corpus::repo_captures;
use super::common::read_events::bin;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lab(name: &str) -> PathBuf {
    let p = repo_captures().join("lab").join(name);
    assert!(p.is_file(), "missing {}", p.display());
    p
}

fn keytab_of(cap: &Path) -> PathBuf {
    PathBuf::from(format!("{}.keytab", cap.display()))
}

fn truth(cap: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{}.truth.json", cap.display())).unwrap())
        .unwrap()
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("psexec-krblab-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `read CAP --events EV [--keytab K]`: (alerts, events, the whole process output).
fn run(cap: &Path, keytab: Option<&Path>, tag: &str) -> (Vec<Value>, Vec<Value>, Output, String) {
    let ev = scratch(tag).join("events.json");
    let mut c = Command::new(bin());
    c.arg("read").arg(cap).arg("--events").arg(&ev);
    if let Some(k) = keytab {
        c.arg("--keytab").arg(k);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events_text = std::fs::read_to_string(&ev).unwrap();
    let lines = |t: &str| -> Vec<Value> {
        t.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    (
        lines(&String::from_utf8_lossy(&o.stdout)),
        lines(&events_text),
        o,
        events_text,
    )
}

fn techniques(alerts: &[Value]) -> Vec<&Value> {
    alerts.iter().filter(|a| a["kind"] == "technique").collect()
}

fn assert_matches_truth(t: &Value, want: &Value) {
    let svc = &want["expect"]["services"][0];
    assert_eq!(t["service_name"], svc["name"], "{t:#}");
    assert_eq!(t["binary_path"], svc["binary_path"], "{t:#}");
    assert_eq!(t["src_ip"], want["attacker_ip"]);
    assert_eq!(t["dst_ip"], want["victim_ip"]);
    assert_eq!(t["user"], want["kerberos"]["user"], "{t:#}");
    assert_eq!(t["domain"], want["kerberos"]["realm"], "{t:#}");
}

#[test]
fn keytab_names_the_client_of_kerberos_psexec_and_smbexec() {
    for name in ["l1_krb_psexec.pcap", "l2_krb_smbexec.pcap"] {
        let cap = lab(name);
        let (alerts, events, _, _) = run(&cap, Some(&keytab_of(&cap)), name);
        let t = techniques(&alerts);
        assert_eq!(t.len(), 1, "{name}: {alerts:#?}");
        assert_matches_truth(t[0], &truth(&cap));
        let auth: Vec<&Value> = events.iter().filter(|e| e["log"] == "smb_auth").collect();
        assert!(!auth.is_empty(), "{name}");
        for a in auth {
            assert_eq!(a["auth"], "kerberos", "{a}");
            assert_eq!(a["user"], "Administrator", "{a}");
            assert_eq!(a["domain"], "PSXLAB.TEST", "{a}");
            assert_eq!(a["user_source"], "keytab", "the ticket was opened: {a}");
        }
    }
}

/// Without secrets: the lab captures hold the client's TGS-REP, so the join names the user.
#[test]
fn without_the_keytab_the_tgs_rep_names_the_client() {
    for name in ["l1_krb_psexec.pcap", "l2_krb_smbexec.pcap"] {
        let cap = lab(name);
        let (alerts, _, _, _) = run(&cap, None, name);
        let t = techniques(&alerts);
        assert_eq!(t.len(), 1, "{name}: {alerts:#?}");
        assert_matches_truth(t[0], &truth(&cap));
        assert_eq!(t[0]["auth"], "kerberos", "{name}: {:#}", t[0]);
        assert_eq!(
            t[0]["user_source"], "kerberos_tgs_rep",
            "{name}: {:#}",
            t[0]
        );
    }
}

#[test]
fn kerberos_negatives_stay_silent_with_the_keytab() {
    for name in ["l3_krb_atexec.pcap", "l4_krb_benign_smbclient.pcap"] {
        let cap = lab(name);
        assert_eq!(truth(&cap)["verdict"], "negative");
        let (alerts, events, _, _) = run(&cap, Some(&keytab_of(&cap)), name);
        assert!(techniques(&alerts).is_empty(), "{name}: {alerts:#?}");
        // smbclient authenticates mutually: the AP-REP's subkey is read, the user still named.
        assert!(
            events
                .iter()
                .any(|e| e["log"] == "smb_auth" && e["user"] == "Administrator"),
            "{name}"
        );
    }
}

#[test]
fn smb3_encrypted_kerberos_psexec_decrypts_with_the_keytab_like_cleartext() {
    let enc = lab("l5_krb_psexec_enc.pcap");
    let clear = lab("l1_krb_psexec.pcap");
    let (alerts, events, _, _) = run(&enc, Some(&keytab_of(&enc)), "l5");
    let (clear_alerts, _, _, _) = run(&clear, Some(&keytab_of(&clear)), "l1");
    let (t, c) = (techniques(&alerts), techniques(&clear_alerts));
    assert_eq!((t.len(), c.len()), (1, 1), "{alerts:#?}");
    let (t, c) = (t[0], c[0]);
    assert_eq!(t["decrypted"], true, "{t:#}");
    assert_matches_truth(t, &truth(&enc));
    // The same alert as in clear text, but for the names impacket drew at random.
    for field in [
        "technique",
        "attack",
        "severity",
        "basis",
        "user",
        "domain",
        "share",
        "tool",
    ] {
        assert_eq!(t[field], c[field], "{field}");
    }
    let (tu, cu) = (&t["uploads"], &c["uploads"]);
    assert_eq!(tu.as_array().unwrap().len(), 1, "{t:#}");
    assert_eq!(tu[0]["sha256"], cu[0]["sha256"]);
    assert_eq!(
        tu[0]["sha256"],
        truth(&enc)["expect"]["uploads"][0]["sha256"]
    );
    assert_eq!(tu[0]["name"], truth(&enc)["expect"]["uploads"][0]["name"]);
    // The keys came from the keytab, and the anomaly log says which key of whose ticket.
    let derived: Vec<&Value> = events
        .iter()
        .filter(|e| e["log"] == "anomaly" && e["kind"] == "decrypt")
        .collect();
    assert!(
        derived.iter().any(|e| {
            let m = e["message"]
                .as_str()
                .or(e["detail"].as_str())
                .unwrap_or_default();
            m.contains("derived SMB3 keys")
                && m.contains("Kerberos")
                && m.contains("Administrator@PSXLAB.TEST")
        }),
        "{derived:#?}"
    );
}

#[test]
fn without_the_keytab_l5_stays_encrypted() {
    let enc = lab("l5_krb_psexec_enc.pcap");
    let (alerts, _, _, _) = run(&enc, None, "l5-nokeys");
    assert!(alerts.iter().all(|a| a["decrypted"] != true), "{alerts:#?}");
}

#[test]
fn bad_keytabs_exit_2_with_the_file_named() {
    let d = scratch("bad");
    let cap = lab("l1_krb_psexec.pcap");
    let not = d.join("not-a.keytab");
    std::fs::write(&not, b"this is text, not a keytab").unwrap();
    let mut cut = std::fs::read(keytab_of(&cap)).unwrap();
    cut.truncate(50);
    let short = d.join("short.keytab");
    std::fs::write(&short, &cut).unwrap();
    for (k, want) in [
        (not.clone(), "not a keytab"),
        (short.clone(), "truncated or malformed"),
        (d.join("absent.keytab"), "absent.keytab"),
    ] {
        let o = Command::new(bin())
            .arg("read")
            .arg(&cap)
            .arg("--keytab")
            .arg(&k)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&k.display().to_string()) && err.contains(want),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
}

/// Every key of the keytab, and the ticket session keys and subkeys derived from it, stay out of
/// alerts, events, stderr and errors: searched as hex (both cases) and as JSON byte arrays.
#[test]
fn no_key_reaches_any_output() {
    let cap = lab("l5_krb_psexec_enc.pcap");
    let kt = keytab_of(&cap);
    let (_, _, o, events) = run(&cap, Some(&kt), "nokeys");
    let bytes = std::fs::read(&kt).unwrap();
    // The keys are the keytab's counted octet strings of 16 or 32 bytes after the key type.
    let mut keys = Vec::new();
    for w in 0..bytes.len().saturating_sub(4) {
        let ty = u16::from_be_bytes([bytes[w], bytes[w + 1]]);
        let len = u16::from_be_bytes([bytes[w + 2], bytes[w + 3]]) as usize;
        if matches!((ty, len), (17, 16) | (18, 32) | (23, 16)) && w + 4 + len <= bytes.len() {
            keys.push(bytes[w + 4..w + 4 + len].to_vec());
        }
    }
    assert_eq!(keys.len(), 3, "the three DC1$ keys");
    let outputs = [
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        events,
    ];
    for k in &keys {
        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
        let json: String = k
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",");
        for out in &outputs {
            let flat = out.replace(' ', "");
            assert!(
                !out.to_lowercase().contains(&hex[..16]),
                "key hex in output"
            );
            assert!(!flat.contains(&json), "key bytes in output");
        }
    }
}

/// Each alert of l6 and l7 against its truth, without secrets (the TGS-REPs name the client) and
/// with the keytab (the SMB session's ticket opened).
#[test]
fn kerberos_services_and_atexec_alerts_name_the_client() {
    for name in ["l6_krb_services.pcap", "l7_krb_atexec_tsch.pcap"] {
        let cap = lab(name);
        let want = truth(&cap);
        assert_eq!(want["verdict"], "positive");
        for keytab in [None, Some(keytab_of(&cap))] {
            let (alerts, events, _, _) = run(&cap, keytab.as_deref(), name);
            let t = techniques(&alerts);
            assert_eq!(t.len(), 1, "{name}: {alerts:#?}");
            let t = t[0];
            assert_eq!(t["technique"], want["technique"], "{name}: {t:#}");
            assert_eq!(t["src_ip"], want["attacker_ip"]);
            assert_eq!(t["dst_ip"], want["victim_ip"]);
            assert_eq!(t["user"], want["kerberos"]["user"], "{name}: {t:#}");
            assert_eq!(t["domain"], want["kerberos"]["realm"], "{name}: {t:#}");
            assert_eq!(t["auth"], "kerberos", "{name}: {t:#}");
            match keytab {
                None => assert_eq!(t["user_source"], "kerberos_tgs_rep", "{name}: {t:#}"),
                // The keytab opens the SMB session's ticket; a DCE-RPC bind's ticket may still be
                // named by its TGS-REP: either way the client is learned, never `unseen`.
                Some(_) => assert!(
                    t["user_source"] == "keytab" || t["user_source"] == "kerberos_tgs_rep",
                    "{name}: {t:#}"
                ),
            }
            let sessions: Vec<&Value> = events.iter().filter(|e| e["log"] == "smb_auth").collect();
            assert!(!sessions.is_empty(), "{name}");
            assert!(
                sessions.iter().all(|a| a["user"] == "Administrator"
                    && a["domain"] == "PSXLAB.TEST"
                    && a["auth"] == "kerberos"),
                "{name}: {sessions:#?}"
            );
            if name.starts_with("l6") {
                check_services_alert(t, &want, sessions.len());
            } else {
                check_atexec_alert(t, &want, &events, keytab.is_some());
            }
        }
    }
}

/// services.py: create (refused by Samba), then start and delete, which stop at OpenServiceW
/// because the service does not exist: three SMB sessions, one attempt on the wire.
fn check_services_alert(t: &Value, want: &Value, sessions: usize) {
    assert_matches_truth(t, want);
    assert_eq!(sessions, 3, "one session per services.py run");
    assert_eq!(t["failed"], true, "{t:#}");
    assert_eq!(t["started"], false, "{t:#}");
    assert_eq!(t["deleted"], false, "{t:#}");
    assert_eq!(t["pipes"], serde_json::json!(["svcctl"]));
}

/// atexec.py: a task registered, run and deleted over \pipe\atsvc, stubs sealed; the bind
/// presents a host/ ticket whose TGS-REP is in the capture.
fn check_atexec_alert(t: &Value, want: &Value, events: &[Value], keytab: bool) {
    assert_eq!(t["pipes"], want["expect"]["pipes"], "{t:#}");
    assert_eq!(
        (&t["started"], &t["deleted"]),
        (&Value::Bool(true), &Value::Bool(true))
    );
    let task = &want["tasks"][0]["name"];
    if keytab {
        // Opening the sealed stubs is not required here; if they are opened, the name is right.
        assert!(t["task_path"].is_null() || t["task_path"] == *task, "{t:#}");
    } else {
        assert_eq!(t["basis"], "stub-encrypted", "{t:#}");
        assert!(t["task_path"].is_null(), "the name is sealed: {t:#}");
    }
    let rpc: Vec<&Value> = events.iter().filter(|e| e["log"] == "dce_rpc").collect();
    let ops: Vec<&str> = rpc.iter().filter_map(|e| e["operation"].as_str()).collect();
    assert_eq!(
        ops,
        [
            "bind",
            "alter_context",
            "SchRpcRegisterTask",
            "SchRpcRun",
            "SchRpcGetLastRunInfo",
            "SchRpcDelete"
        ],
        "{rpc:#?}"
    );
    let bind = rpc[0];
    assert_eq!(bind["endpoint"], "ITaskSchedulerService");
    assert_eq!(bind["auth_level"], "privacy");
    assert_eq!(bind["user"], "Administrator", "{bind}");
    assert_eq!(bind["domain"], "PSXLAB.TEST", "{bind}");
    let services: Vec<&str> = events
        .iter()
        .filter(|e| e["log"] == "kerberos" && e["request_type"] == "TGS")
        .filter_map(|e| e["service"].as_str())
        .collect();
    assert_eq!(services, ["cifs/dc1.psxlab.test", "host/dc1.psxlab.test"]);
}

/// MIT's kvno sent l4's second TGS-REQ with a negative nonce (README "Kerberos"): it is read, so
/// the KDC's BADOPTION answer is logged as that request's outcome, not as a reply without one.
#[test]
fn mit_negative_nonce_request_gives_its_kerberos_event() {
    let cap = lab("l4_krb_benign_smbclient.pcap");
    let (_, events, _, _) = run(&cap, None, "l4-nonce");
    assert!(
        !events
            .iter()
            .any(|e| e["log"] == "anomaly" && e["layer"] == "kerberos"),
        "{events:#?}"
    );
    let krb: Vec<(&str, &str, bool, &str)> = events
        .iter()
        .filter(|e| e["log"] == "kerberos" && e["request_type"] == "TGS")
        .map(|e| {
            (
                e["service"].as_str().unwrap_or_default(),
                e["client"].as_str().unwrap_or_default(),
                e["success"].as_bool().unwrap(),
                e["error_msg"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        krb,
        [
            (
                "cifs/dc1.psxlab.test",
                "Administrator/PSXLAB.TEST",
                true,
                ""
            ),
            ("krbtgt/PSXLAB.TEST", "", false, "KDC_ERR_BADOPTION")
        ],
        "{events:#?}"
    );
}
