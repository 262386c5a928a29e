//! Kerberos (issue 16) on the shared captures: the KDC exchanges against tshark's `kerberos.*`
//! fields, and the ticket → user join against the TGS-REPs tshark shows for the presented tickets.

use crate::common::corpus::shared_capture;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

/// Shared captures with a TGS-REP (`tshark -Y kerberos.msg_type==13`).
const WITH_TGS_REP: [&str; 10] = [
    "public/elcabezzonn/schtasks.pcap",
    "public/elcabezzonn/multiple_psexecs_with_cmds_netstat_ipconfig.pcap.gz",
    "public/elcabezzonn/smbexec.pcap.gz",
    "public/elcabezzonn/ipconf1.pcap.gz",
    "public/elcabezzonn/ipconf3.pcap.gz",
    "public/elcabezzonn/ipconfig_all.pcap.gz",
    "public/elcabezzonn/netstat.pcap.gz",
    "public/elcabezzonn/more_netshare.pcap.gz",
    "public/elcabezzonn/normal_share_traversal.pcap.gz",
    "public/suricata-verify/dcerpc-ctxids/input.pcap",
];

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("psexec-it-kerberos-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `read` with `workers`: (alerts, events).
fn read(cap: &Path, workers: &str, tag: &str) -> (Vec<Value>, Vec<Value>) {
    let d = scratch(tag);
    let (alerts, events) = (d.join("alerts.json"), d.join("events.json"));
    let o = Command::new(BIN)
        .arg("read")
        .arg(cap)
        .args(["--workers", workers, "--alerts"])
        .arg(&alerts)
        .arg("--events")
        .arg(&events)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (lines(&alerts), lines(&events))
}

/// tshark's fields of the frames matching `filter`, one row per frame, `|`-separated occurrences.
pub(super) fn tshark(cap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(cap)
        .args(["-Y", filter, "-T", "fields", "-E", "occurrence=a"]);
    cmd.args(["-E", "aggregator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

#[test]
fn schtasks_alert_names_the_kerberos_user() {
    let cap = shared_capture("public/elcabezzonn/schtasks.pcap");
    let (alerts, events) = read(&cap, "1", "schtasks-1");
    let from_46: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["kind"] == "technique" && a["src_ip"] == "192.168.1.46")
        .collect();
    assert_eq!(from_46.len(), 1, "{alerts:?}");
    let a = from_46[0];
    assert_eq!(a["user"], "Administrator");
    assert_eq!(a["domain"], "PICKLESWORTH.LOCAL");
    assert_eq!(a["auth"], "kerberos");
    assert_eq!(a["user_source"], "kerberos_tgs_rep");
    // The other direction presents a ticket the DC issued to itself (never on the wire).
    let back = alerts
        .iter()
        .find(|a| a["kind"] == "technique" && a["src_ip"] == "192.168.1.195")
        .expect("the task registered back");
    assert_eq!(back["user_source"], "unseen");
    assert!(back.get("user").is_none());
    // Two workers: the KDC exchange and the session may be on different workers; the records
    // are the same.
    let (alerts2, events2) = read(&cap, "2", "schtasks-2");
    assert_eq!(alerts, alerts2);
    assert_eq!(events, events2);
}

/// Every KDC exchange tshark sees is one record with its fields (client, service, error, cipher).
#[test]
fn kdc_exchanges_match_tshark() {
    let cap = shared_capture("public/elcabezzonn/schtasks.pcap");
    let (_, events) = read(&cap, "1", "kdc");
    let ours: Vec<&Value> = events.iter().filter(|e| e["log"] == "kerberos").collect();
    // Replies and errors, in order: (client port, message type, cname, sname, error, etype).
    let theirs = tshark(
        &cap,
        "kerberos.msg_type == 11 || kerberos.msg_type == 13 || kerberos.msg_type == 30",
        &[
            "tcp.dstport",
            "kerberos.msg_type",
            "kerberos.CNameString",
            "kerberos.crealm",
            "kerberos.error_code",
            "kerberos.etype",
        ],
    );
    assert!(theirs.len() >= 8, "{theirs:?}");
    assert_eq!(ours.len(), theirs.len(), "{ours:?}");
    for (k, t) in ours.iter().zip(&theirs) {
        assert_eq!(k["id.orig_p"].to_string(), t[0], "{k} vs {t:?}");
        match t[1].as_str() {
            "30" => {
                assert_eq!(k["success"], false);
                let code: i64 = t[4].parse().unwrap();
                let name = k["error_msg"].as_str().unwrap();
                // KDC_ERR_PREAUTH_REQUIRED 25, KDC_ERR_BADOPTION 13 (RFC 4120 §7.5.9).
                let expect = match code {
                    25 => "KDC_ERR_PREAUTH_REQUIRED",
                    13 => "KDC_ERR_BADOPTION",
                    other => panic!("error code {other} not in this capture before"),
                };
                assert_eq!(name, expect);
            }
            typ => {
                assert_eq!(k["success"], true);
                assert_eq!(k["request_type"], if typ == "11" { "AS" } else { "TGS" });
                assert_eq!(k["client"], format!("{}/{}", t[2], t[3]));
                // The ticket's etype is the first one tshark lists in a reply.
                let etype = t[5].split('|').next().unwrap();
                assert_eq!(etype, "18");
                assert_eq!(k["cipher"], "aes256-cts-hmac-sha1-96");
            }
        }
    }
}

/// On every shared capture with a TGS-REP: the sessions and binds the sensor names from Kerberos
/// are exactly those whose presented ticket tshark finds in a TGS-REP, with its cname / crealm.
#[test]
fn joined_users_match_the_tgs_reps_tshark_sees() {
    let mut joined_anywhere = 0;
    for rel in WITH_TGS_REP {
        let cap = shared_capture(rel);
        // Ticket cipher (the first cipher of a TGS-REP) → cname@crealm.
        let mut issued: BTreeMap<String, String> = BTreeMap::new();
        for r in tshark(
            &cap,
            "kerberos.msg_type == 13",
            &["kerberos.cipher", "kerberos.CNameString", "kerberos.crealm"],
        ) {
            let cipher = r[0].split('|').next().unwrap().to_string();
            issued.entry(cipher).or_insert(format!("{}@{}", r[1], r[2]));
        }
        // AP-REQs outside the KDC (SMB session setups, DCE-RPC binds): their ticket's cipher.
        let mut expected: BTreeSet<String> = BTreeSet::new();
        for r in tshark(
            &cap,
            "kerberos.msg_type == 14 && !(tcp.port == 88) && !(udp.port == 88)",
            &["kerberos.cipher"],
        ) {
            for cipher in r[0].split('|').step_by(2) {
                if let Some(who) = issued.get(cipher) {
                    expected.insert(who.clone());
                }
            }
        }
        let (_, events) = read(&cap, "1", "join");
        let ours: BTreeSet<String> = events
            .iter()
            .filter(|e| e["user_source"] == "kerberos_tgs_rep")
            .map(|e| {
                format!(
                    "{}@{}",
                    e["user"].as_str().unwrap(),
                    e["domain"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(ours, expected, "{rel}");
        joined_anywhere += ours.len();
        // Every Kerberos session or bind says how its user was learned.
        for e in &events {
            let kerberos_session = e["auth"] == "kerberos"
                || (e["operation"] == "bind"
                    && e["auth_type"] == "spnego"
                    && e["user"].is_string());
            if kerberos_session && e["log"] == "smb_auth" {
                assert!(e["user_source"].is_string(), "{rel}: {e}");
            }
        }
    }
    assert!(joined_anywhere >= 3, "{joined_anywhere}");
}
