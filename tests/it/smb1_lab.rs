//! The SMB1 state machine over whole conversations: the SMB1 lab captures checked against their
//! `.truth.json`, and Zeek's raw_ntlm_in_smb (macOS SMB1 client, bare NTLMSSP, TRANSACTION pipe
//! calls) against tshark's dissection. Captures run through the product's pipeline
//! (`common::pipeline_run`: capture, decode, flows and reassembly, parsers), whole or with their
//! TCP segments cut or altered.

use crate::common::pipeline_run::{run, run_segments, segments};
use crate::common::truth::{self, files, lab, truth};
use psexec_sensor::dcerpc::Transport;
use psexec_sensor::event::{DceRpc, Event, FileAction, SmbAuth, SmbMapping, SmbVersion};
use psexec_sensor::sink::Counters;
use std::path::PathBuf;

fn zeek(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/public/zeek")
        .join(name)
}

fn mappings(ev: &[Event]) -> Vec<&SmbMapping> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbMapping(m) = e {
                Some(m)
            } else {
                None
            }
        })
        .collect()
}

fn auths(ev: &[Event]) -> Vec<&SmbAuth> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbAuth(a) = e {
                Some(a)
            } else {
                None
            }
        })
        .collect()
}

/// Every tree connect, pipe and upload the truth lists is in the events, all of them SMB1.
fn check_truth(capture: &str, ev: &[Event]) {
    truth::check_truth(capture, ev);
    assert!(files(ev)
        .iter()
        .all(|f| f.smb_version == Some(SmbVersion::Smb1)));
    assert!(mappings(ev)
        .iter()
        .all(|m| m.smb_version == SmbVersion::Smb1));
}

fn no_anomalies(name: &str, counters: &Counters) {
    for k in [
        "anomaly.malformed",
        "anomaly.andx_loop",
        "anomaly.gap",
        "anomaly.wrong_direction",
    ] {
        assert_eq!(counters.get(k), 0, "{name}: {k}");
    }
}

#[test]
fn i1_smb1_psexec_matches_truth() {
    let cap = "i1_smb1_psexec.pcap";
    let (ev, counters) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    no_anomalies(cap, &counters);
    let fs = files(&ev);
    let w = fs
        .iter()
        .find(|f| f.action == Some(FileAction::FileWrite))
        .unwrap();
    assert_eq!(
        (w.name.as_str(), w.path.as_str(), w.pe),
        ("OIhuyfAI.exe", "\\\\192.0.2.20\\ADMIN$", Some(true))
    );
    assert_eq!(w.fuid.as_deref(), Some("e10c"));
    // impacket removes its binary with SMB_COM_DELETE
    assert!(fs.iter().any(|f| f.action == Some(FileAction::FileDelete)
        && f.name == "OIhuyfAI.exe"
        && f.status == "STATUS_SUCCESS"));
    let a = auths(&ev);
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (
            a[0].user.as_deref(),
            a[0].auth,
            a[0].status.as_str(),
            a[0].dialect.as_str()
        ),
        (Some("admin"), "ntlmssp", "STATUS_SUCCESS", "NT LM 0.12")
    );
    for m in mappings(&ev) {
        let (ty, svc) = if m.share == "IPC$" {
            ("PIPE", "IPC")
        } else {
            ("DISK", "A:")
        };
        assert_eq!(
            (m.share_type, m.service.as_deref()),
            (ty, Some(svc)),
            "{}",
            m.path
        );
    }
    // Pipe traffic went to the DCE-RPC conversations: WRITE_ANDX 72+76 (srvsvc) + 72+104+72+204
    // (svcctl) bytes, READ_ANDX 68+316+68+48+48+32 (tshark smb.data_len_low).
    assert_eq!(counters.get("smb1.pipe_bytes_to_server"), 600);
    assert_eq!(counters.get("smb1.pipe_bytes_to_client"), 580);
    // … and the DCE-RPC layer decoded the service creation the truth names (Samba refuses it).
    let want = &truth(cap)["expect"]["services"][0];
    let create = dce(&ev)
        .into_iter()
        .find(|d| d.endpoint == "svcctl" && d.operation == "CreateServiceW")
        .expect("svcctl CreateServiceW over the SMB1 pipe");
    assert_eq!(create.transport, Transport::SmbPipe);
    assert_eq!(create.args.service_name.as_deref(), want["name"].as_str());
    assert_eq!(
        create.args.binary_path.as_deref(),
        want["binary_path"].as_str()
    );
    assert_eq!(create.status, "nca_s_op_rng_error");
    let ops: Vec<&str> = dce(&ev)
        .iter()
        .filter(|d| d.endpoint == "srvsvc")
        .map(|d| d.operation.as_str())
        .collect();
    assert_eq!(ops, ["bind", "NetrShareEnum"]);
}

fn dce(ev: &[Event]) -> Vec<&DceRpc> {
    ev.iter()
        .filter_map(|e| {
            if let Event::DceRpc(d) = e {
                Some(&**d)
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn i2_smb1_benign_upload_matches_truth() {
    let cap = "i2_smb1_benign_upload.pcap";
    let (ev, counters) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    no_anomalies(cap, &counters);
    let fs = files(&ev);
    assert!(!fs.iter().any(|f| f.action == Some(FileAction::PipeOpen)));
    // tool.exe came in two large WRITE_ANDX (DataLengthHigh 1)
    let w = fs
        .iter()
        .find(|f| f.action == Some(FileAction::FileWrite) && f.name == "tool.exe")
        .unwrap();
    assert_eq!((w.write_count, w.size), (Some(2), Some(204_800)));
    let a = auths(&ev);
    assert!(
        a.iter()
            .any(|a| a.user.as_deref() == Some("admin") && a.status == "STATUS_SUCCESS"),
        "{a:?}"
    );
}

#[test]
fn smb1_lab_captures_cut_at_every_few_bytes() {
    for cap in ["i1_smb1_psexec.pcap", "i2_smb1_benign_upload.pcap"] {
        let (whole, _) = run(&lab(cap), 0);
        for piece in [1usize, 5, 64] {
            let (ev, counters) = run(&lab(cap), piece);
            check_truth(cap, &ev);
            no_anomalies(cap, &counters);
            let f = |ev: &[Event]| {
                files(ev)
                    .iter()
                    .map(|f| (f.action, f.name.clone(), f.sha256.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(f(&ev), f(&whole), "{cap} piece {piece}");
        }
    }
}

/// Zeek's raw_ntlm_in_smb (tshark: users/pipes/paths/FIDs as below).
#[test]
fn raw_ntlm_in_smb_transactions_and_bare_ntlmssp() {
    let (ev, counters) = run(&zeek("raw_ntlm_in_smb.pcap"), 0);
    no_anomalies("raw_ntlm_in_smb", &counters);
    let a = auths(&ev);
    assert!(
        a.iter().any(|a| a.user.as_deref() == Some("test")
            && a.domain.as_deref() == Some("TEST-F7DFBC3FE9")
            && a.auth == "ntlmssp"
            && a.status == "STATUS_SUCCESS"),
        "{a:?}"
    );
    let fs = files(&ev);
    for p in ["srvsvc", "lsarpc"] {
        assert!(
            fs.iter().any(|f| f.action == Some(FileAction::PipeOpen)
                && f.name == p
                && f.status == "STATUS_SUCCESS"),
            "{p}"
        );
    }
    assert!(fs
        .iter()
        .any(|f| f.name == "mdssvc" && f.status == "STATUS_OBJECT_NAME_NOT_FOUND"));
    assert!(fs.iter().any(|f| f.action == Some(FileAction::FileOpen)
        && f.name == "Desktop.ini"
        && f.size == Some(182)
        && f.fuid.as_deref() == Some("4003")));
    let m: Vec<_> = mappings(&ev)
        .iter()
        .map(|m| (m.share.clone(), m.share_type, m.native_file_system.clone()))
        .collect();
    assert!(
        m.contains(&("MY PICTURES".into(), "DISK", Some("NTFS".into()))),
        "{m:?}"
    );
    // TransactNmPipe in and out (tshark smb.dc of the TRANSACTION requests and responses).
    assert_eq!(counters.get("smb1.pipe_transactions"), 7);
    assert_eq!(
        counters.get("smb1.pipe_bytes_to_server"),
        72 + 104 + 72 + 84 + 108 + 132 + 44
    );
    assert_eq!(
        counters.get("smb1.pipe_bytes_to_client"),
        68 + 416 + 68 + 124 + 48 + 160 + 48
    );
    // TransactNmPipe carried whole DCE-RPC calls (tshark: srvsvc NetrShareEnum; lsarpc
    // GetUserName, OpenPolicy2, LookupNames, Close).
    let ops: Vec<(&str, &str)> = dce(&ev)
        .iter()
        .map(|d| (d.endpoint.as_str(), d.operation.as_str()))
        .collect();
    for want in [
        ("srvsvc", "NetrShareEnum"),
        ("lsarpc", "LsarGetUserName"),
        ("lsarpc", "LsarOpenPolicy2"),
        ("lsarpc", "LsarLookupNames"),
        ("lsarpc", "LsarClose"),
    ] {
        assert!(ops.contains(&want), "{want:?} not in {ops:?}");
    }
}

/// `SMB1_LAB_DUMP=path/to/capture.pcap cargo test --test it smb1_lab::dump -- --nocapture` prints the
/// events and the alerts detection raises on them.
#[test]
fn dump() {
    if let Ok(cap) = std::env::var("SMB1_LAB_DUMP") {
        let (ev, counters) = run(&PathBuf::from(cap), 0);
        for e in &ev {
            println!("{}", serde_json::to_string(e).unwrap());
        }
        for a in psexec_sensor::detect::detect_all(psexec_sensor::detect::Rules::embedded(), &ev) {
            println!("{}", serde_json::to_string(&a).unwrap());
        }
        println!("{:?}", counters);
    }
}

/// Detection unchanged over SMB1: the psexec over SMB1 is the technique (service, binary path,
/// attacker and victim from the truth; the ADMIN$ upload and the user linked in); the benign SMB1
/// upload is not.
#[test]
fn technique_detected_over_smb1_and_not_on_the_benign_upload() {
    use psexec_sensor::detect::{detect_all, Rules};
    let cap = "i1_smb1_psexec.pcap";
    let t = truth(cap);
    let (ev, _) = run(&lab(cap), 0);
    let alerts = detect_all(Rules::embedded(), &ev);
    let tech: Vec<_> = alerts.iter().filter_map(|a| a.as_technique()).collect();
    assert_eq!(tech.len(), 1, "{alerts:?}");
    let a = tech[0];
    let svc = &t["expect"]["services"][0];
    assert_eq!(
        a.service_name.as_deref().map(str::to_ascii_lowercase),
        svc["name"].as_str().map(str::to_ascii_lowercase)
    );
    assert_eq!(
        a.binary_path.as_deref().map(str::to_ascii_lowercase),
        svc["binary_path"].as_str().map(str::to_ascii_lowercase)
    );
    assert_eq!(a.src_ip.to_string(), t["attacker_ip"].as_str().unwrap());
    assert_eq!(a.dst_ip.to_string(), t["victim_ip"].as_str().unwrap());
    assert_eq!(a.user.as_deref(), Some("admin"));
    assert!(
        a.uploads
            .iter()
            .any(|u| format!("{u:?}").contains("OIhuyfAI.exe")),
        "{:?}",
        a.uploads
    );

    let cap = "i2_smb1_benign_upload.pcap";
    let (ev, _) = run(&lab(cap), 0);
    let alerts = detect_all(Rules::embedded(), &ev);
    assert!(
        alerts.iter().all(|a| a.as_technique().is_none()),
        "{alerts:?}"
    );
}

/// Random byte flips in the SMB1 lab streams (headers, AndX offsets, counts, strings): the
/// parser reports what it cannot read and never panics.
#[test]
fn mutated_smb1_streams_do_not_panic() {
    for cap in ["i1_smb1_psexec.pcap", "i2_smb1_benign_upload.pcap"] {
        let mut seed = 0x2545_F491u32;
        for round in 0..40 {
            let mut segs = segments(&lab(cap));
            for s in segs.iter_mut().filter(|s| !s.payload.is_empty()) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if seed % 3 == 0 {
                    // Most flips land in the first 100 bytes, where headers and parameter words are.
                    let i = (seed as usize >> 8)
                        % s.payload
                            .len()
                            .min(if round % 2 == 0 { 100 } else { usize::MAX });
                    s.payload[i] ^= (seed >> 24) as u8 | 1;
                }
            }
            let (_ev, counters) = run_segments(&segs, if round % 3 == 0 { 7 } else { 0 });
            assert!(
                counters.get("smb1.messages") > 0 || counters.get("smb.resync") > 0,
                "{cap} round {round}"
            );
        }
    }
}
