//! The SMB2 state machine over whole conversations from the lab captures, checked against each
//! capture's `.truth.json`. Captures run through the product's pipeline (`common::pipeline_run`:
//! capture, decode, flows and reassembly, parsers), whole or with their TCP segments cut or altered.

use crate::common::pipeline_run::run;
use psexec_sensor::event::{Event, FileAction, SmbFiles};
use serde_json::Value;
use std::path::PathBuf;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

fn truth(name: &str) -> Value {
    truth_at(&lab(&format!("{name}.truth.json")))
}

fn truth_at(p: &PathBuf) -> Value {
    let t = std::fs::read_to_string(p).expect("truth");
    serde_json::from_str(&t).expect("truth json")
}

fn files(ev: &[Event]) -> Vec<&SmbFiles> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbFiles(f) = e {
                Some(f)
            } else {
                None
            }
        })
        .collect()
}

fn shares(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbMapping(m) = e {
                Some(m.share.to_ascii_uppercase())
            } else {
                None
            }
        })
        .collect()
}

/// Every tree connect, pipe and upload the truth lists is in the events.
fn check_truth(capture: &str, ev: &[Event]) {
    check_truth_with(capture, &truth(capture), ev)
}

fn check_truth_with(capture: &str, t: &Value, ev: &[Event]) {
    let e = &t["expect"];
    let shares = shares(ev);
    for s in e["tree_connects"].as_array().unwrap() {
        let s = s.as_str().unwrap().to_ascii_uppercase();
        assert!(
            shares.contains(&s),
            "{capture}: share {s} not in {shares:?}"
        );
    }
    let fs = files(ev);
    for p in e["pipes"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(
            fs.iter().any(|f| f.action == Some(FileAction::PipeOpen)
                && f.name.eq_ignore_ascii_case(p)
                && f.status == "STATUS_SUCCESS"),
            "{capture}: PIPE_OPEN {p} missing"
        );
    }
    for u in e["uploads"].as_array().unwrap() {
        let name = u["name"].as_str().unwrap();
        // An empty share in the truth means the tree connect is not in the capture.
        let share = u["share"].as_str().unwrap();
        let writes: Vec<_> = fs
            .iter()
            .filter(|f| {
                f.action == Some(FileAction::FileWrite)
                    && f.name.trim_start_matches('\\').eq_ignore_ascii_case(name)
                    && (share.is_empty() || f.share.eq_ignore_ascii_case(share))
            })
            .collect();
        assert!(
            !writes.is_empty(),
            "{capture}: FILE_WRITE {share}\\{name} missing"
        );
        // The truth counts bytes per file; a file written through several handles sums them.
        let total: u64 = writes.iter().filter_map(|w| w.bytes_written).sum();
        assert_eq!(
            Some(total),
            u["bytes"].as_u64(),
            "{capture}: bytes of {name}"
        );
        if let Some(h) = u["sha256"].as_str() {
            assert!(
                writes
                    .iter()
                    .any(|w| w.sha256.as_deref() == Some(h) && w.hash_complete == Some(true)),
                "{capture}: sha256 of {name}"
            );
        }
        assert!(
            writes.iter().all(|w| w.status == "STATUS_SUCCESS"),
            "{capture}: status of {name}"
        );
    }
}

fn auth_users(ev: &[Event]) -> Vec<(Option<String>, &'static str, String)> {
    ev.iter()
        .filter_map(|e| {
            if let Event::SmbAuth(a) = e {
                Some((a.user.clone(), a.auth, a.status.clone()))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn a_psexec_default_matches_truth() {
    let cap = "a_psexec_default.pcap";
    let (ev, counters) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    let fs = files(&ev);
    let upload = truth(cap)["expect"]["uploads"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let w = fs
        .iter()
        .find(|f| f.action == Some(FileAction::FileWrite) && f.name == upload)
        .unwrap();
    assert_eq!(w.pe, Some(true));
    assert_eq!(w.path, "\\\\192.0.2.20\\ADMIN$");
    assert!(
        fs.iter()
            .any(|f| f.action == Some(FileAction::FileDelete) && f.name == upload),
        "FILE_DELETE of {upload}"
    );
    let auths = auth_users(&ev);
    assert!(
        auths.contains(&(Some("admin".into()), "ntlmssp", "STATUS_SUCCESS".into())),
        "{auths:?}"
    );
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::SmbAuth(a) if a.dialect == "SMB 3.1.1")));
    // IPC$ is a pipe share, ADMIN$ a disk share
    for e in &ev {
        if let Event::SmbMapping(m) = e {
            let want = if m.share == "IPC$" { "PIPE" } else { "DISK" };
            assert_eq!(m.share_type, want, "{}", m.path);
        }
    }
    assert_eq!(counters.get("anomaly.malformed"), 0);
    assert_eq!(counters.get("anomaly.gap"), 0);
    // the pipes' bytes went to their DCE-RPC conversations both ways
    assert!(
        counters.get("smb.pipe_bytes_to_server") > 0
            && counters.get("smb.pipe_bytes_to_client") > 0,
        "{:?}",
        counters
    );
}

#[test]
fn a_psexec_default_cut_at_every_few_bytes() {
    let cap = "a_psexec_default.pcap";
    let (whole, _) = run(&lab(cap), 0);
    for piece in [1usize, 3, 7, 100] {
        let (ev, _) = run(&lab(cap), piece);
        check_truth(cap, &ev);
        let f = |ev: &[Event]| {
            files(ev)
                .iter()
                .map(|f| (f.action, f.name.clone(), f.sha256.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(f(&ev), f(&whole), "piece {piece}");
    }
}

#[test]
fn k1_large_upload_streams() {
    let cap = "k1_psexec_large_upload.pcap";
    let (ev, counters) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    // the 1 MiB writes streamed rather than buffered
    assert!(
        counters.get("smb2.streamed_messages") >= 8,
        "{:?}",
        counters
    );
    let w = files(&ev)
        .into_iter()
        .find(|f| f.action == Some(FileAction::FileWrite) && f.name == "bigsvc.exe")
        .unwrap();
    assert_eq!(w.write_count, Some(9));
}

#[test]
fn f_benign_admin_upload_smbclient_compounds() {
    let cap = "f_benign_admin_upload.pcap";
    let (ev, _) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    assert!(!files(&ev)
        .iter()
        .any(|f| f.action == Some(FileAction::PipeOpen)));
}

#[test]
fn j1_encrypted_session_is_visible_as_such() {
    let cap = "j1_psexec_opportunistic_enc.pcap";
    let (ev, _) = run(&lab(cap), 0);
    let auths = auth_users(&ev);
    assert!(
        auths.iter().any(|(u, a, s)| u.as_deref() == Some("admin")
            && *a == "ntlmssp"
            && s == "STATUS_SUCCESS"),
        "{auths:?}"
    );
    let vis: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbVisibility(v) = e {
                Some(v)
            } else {
                None
            }
        })
        .collect();
    let start = vis
        .iter()
        .find(|v| v.state == "start" && v.kind == "encrypted")
        .expect("visibility start");
    assert_eq!(start.user.as_deref(), Some("admin"));
    assert!(start.cipher.is_some());
    let end = vis
        .iter()
        .find(|v| v.state == "end")
        .expect("visibility end");
    let opaque: Vec<_> = ev
        .iter()
        .filter_map(|e| {
            if let Event::SmbOpaque(o) = e {
                Some(o)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(end.messages, opaque.len() as u64);
    assert!(!opaque.is_empty());
    for o in &opaque {
        // measured on the lab captures: the wire size is the plaintext size plus the 52-byte header
        assert_eq!(o.wire_size, o.original_size + 52, "{o:?}");
        assert_eq!(o.session_id, start.session_id);
    }
    // impacket's client nonces are ASCII letters
    assert!(opaque
        .iter()
        .filter(|o| o.to_server)
        .all(|o| o.nonce_form == "ascii-letters"));
    // Samba's are counters
    assert!(opaque
        .iter()
        .filter(|o| !o.to_server)
        .all(|o| o.nonce_form == "counter"));
    // the upload is one big encrypted client message: 64 + 48 + the truth's byte count
    let bytes = truth(cap)["expect"]["uploads"][0]["bytes"]
        .as_u64()
        .unwrap() as u32;
    assert!(
        opaque
            .iter()
            .any(|o| o.to_server && o.original_size == 64 + 48 + bytes),
        "no upload-sized message"
    );
}

/// Every cleartext SMB2 lab capture: its truth holds, nothing malformed. SMB1-only captures are
/// only counted here (the SMB1 parser has its own tests).
#[test]
fn every_cleartext_lab_capture_matches_truth() {
    let mut checked = 0;
    for entry in std::fs::read_dir(lab("")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".pcap") {
            continue;
        }
        let t = truth(&name);
        let (ev, counters) = run(&path, 0);
        // l4's TGS-REQ with MIT's negative nonce included (README "Kerberos").
        assert_eq!(counters.get("anomaly.malformed"), 0, "{name}");
        if counters.get("smb2.commands") == 0 {
            assert!(
                counters.get("smb1.messages") > 0,
                "{name}: neither SMB2 nor SMB1"
            );
            continue;
        }
        if t["visibility"] == "cleartext" {
            check_truth(&name, &ev);
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} captures checked");
}

/// The public SMB2 captures (Zeek, Suricata-verify, 401trg): every cleartext SMB2 one meets its
/// truth; none makes the parser report malformed records.
#[test]
fn public_smb2_captures_match_truth() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/public");
    let mut stack = vec![root];
    let mut checked = Vec::new();
    let mut failed = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".cap") || name.ends_with(".pcapng")) {
                continue;
            }
            let truth_path = PathBuf::from(format!("{name}.truth.json"));
            let (ev, counters) = run(&p, 0);
            assert_eq!(counters.get("anomaly.malformed"), 0, "{name}");
            let t = truth_at(&truth_path);
            if counters.get("smb2.commands") == 0 || t["visibility"] != "cleartext" {
                continue;
            }
            match std::panic::catch_unwind(|| check_truth_with(&name, &t, &ev)) {
                Ok(()) => checked.push(name),
                Err(e) => failed.push(format!("{:?}", e.downcast_ref::<String>())),
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(checked.len() >= 8, "{checked:?}");
}

/// Kerberos in SESSION_SETUP is named as such (Zeek's kerberos445_auth capture).
#[test]
fn kerberos_session_setup() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/public/zeek/kerberos445_auth.pcapng");
    let (ev, _) = run(&p, 0);
    let auths = auth_users(&ev);
    assert!(!auths.is_empty());
    assert!(
        auths
            .iter()
            .any(|(u, a, s)| u.is_none() && *a == "kerberos" && s == "STATUS_SUCCESS"),
        "{auths:?}"
    );
}

/// Every DCE-RPC byte tshark finds on the lab captures' pipes reaches a pipe conversation, in each
/// direction (skipped when tshark is not installed).
#[test]
fn pipe_bytes_match_tshark() {
    for cap in [
        "a_psexec_default.pcap",
        "c_smbexec.pcap",
        "e_services_create_start.pcap",
        "h_benign_svc_query.pcap",
        "k1_psexec_large_upload.pcap",
    ] {
        let path = lab(cap);
        let Ok(out) = std::process::Command::new("tshark")
            .args([
                "-r",
                path.to_str().unwrap(),
                "-Y",
                "dcerpc",
                "-T",
                "fields",
                "-e",
                "tcp.srcport",
                "-e",
                "dcerpc.cn_frag_len",
            ])
            .output()
        else {
            panic!("tshark is needed for this cross-check (scripts/setup.sh installs it)");
        };
        let (mut to_server, mut to_client) = (0u64, 0u64);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut it = line.split('\t');
            let port = it.next().unwrap_or("");
            let total: u64 = it
                .next()
                .unwrap_or("")
                .split(',')
                .filter_map(|v| v.parse::<u64>().ok())
                .sum();
            if port == "445" {
                to_client += total;
            } else {
                to_server += total;
            }
        }
        assert!(to_server > 0, "{cap}: tshark saw no DCE-RPC");
        let (_, counters) = run(&path, 0);
        assert_eq!(counters.get("smb.pipe_bytes_to_server"), to_server, "{cap}");
        assert_eq!(counters.get("smb.pipe_bytes_to_client"), to_client, "{cap}");
    }
}

/// `SMB2_LAB_DUMP=capture.pcap cargo test --test it smb2_lab::dump -- --nocapture` prints the events.
#[test]
fn dump() {
    if let Ok(cap) = std::env::var("SMB2_LAB_DUMP") {
        let p = if cap.starts_with('/') {
            PathBuf::from(&cap)
        } else {
            lab(&cap)
        };
        let (ev, counters) = run(&p, 0);
        for e in ev {
            println!("{}", serde_json::to_string(&e).unwrap());
        }
        println!("{:?}", counters);
    }
}

/// Real conversations with bytes flipped here and there (both directions, including inside large
/// writes and encrypted messages) never panic, and the parser keeps producing events.
#[test]
fn mutated_lab_streams_do_not_panic() {
    use crate::common::pipeline_run::{run_segments, segments};
    for cap in [
        "a_psexec_default.pcap",
        "f_benign_admin_upload.pcap",
        "j1_psexec_opportunistic_enc.pcap",
    ] {
        let base = segments(&lab(cap));
        let mut seed = 0x9E37_79B9u32;
        for round in 0..40 {
            let mut segs = segments(&lab(cap));
            for s in segs.iter_mut().filter(|s| !s.payload.is_empty()) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                if seed % 4 == 0 {
                    let i = (seed as usize >> 8) % s.payload.len();
                    s.payload[i] ^= (seed >> 24) as u8 | 1;
                }
            }
            let (_ev, counters) = run_segments(&segs, if round % 2 == 0 { 0 } else { 13 });
            assert!(
                counters.get("smb2.commands") > 0 || counters.get("smb.resync") > 0,
                "{cap} round {round}"
            );
        }
        assert!(!base.is_empty());
    }
}
