//! The lab captures' ground truth (`<capture>.truth.json`) and the checks of protocol events
//! against it, shared by the SMB1 and SMB2 conversation tests.

use psexec_sensor::event::{Event, FileAction, SmbFiles};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A lab capture (or its truth file) in the project's captures/lab.
pub fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

/// The truth of lab capture `name`.
pub fn truth(name: &str) -> Value {
    truth_at(&lab(&format!("{name}.truth.json")))
}

pub fn truth_at(p: &Path) -> Value {
    let t = std::fs::read_to_string(p).expect("truth");
    serde_json::from_str(&t).expect("truth json")
}

/// Every smb_files record.
pub fn files(ev: &[Event]) -> Vec<&SmbFiles> {
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

/// Every tree connect's share, upper case.
pub fn shares(ev: &[Event]) -> Vec<String> {
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
pub fn check_truth(capture: &str, ev: &[Event]) {
    check_truth_with(capture, &truth(capture), ev)
}

pub fn check_truth_with(capture: &str, t: &Value, ev: &[Event]) {
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
