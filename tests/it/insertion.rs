//! Insertion evasions (issue 18): every class of `common::insertion` applied to the lab's
//! attacks must leave the technique alert and its facts (service, binary path, uploads by name,
//! size and SHA-256) exactly as on the original capture, raise the anomaly that names the class,
//! and raise no technique alert on the benign control.

use crate::common::insertion::*;
use crate::common::reshape::*;
use psexec_sensor::event::{AnomalyKind, Event};
use psexec_sensor::flow::policy::{HostOs, HostPolicies, TargetPolicy};
use psexec_sensor::flow::receiver::RstPolicy;
use psexec_sensor::pipeline::EngineConfig;
use std::path::PathBuf;
use std::sync::Arc;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

const ATTACKS: [&str; 3] = [
    "a_psexec_default.pcap",
    "c_smbexec.pcap",
    "i1_smb1_psexec.pcap",
];
const BENIGN: &str = "f_benign_admin_upload.pcap";

type Class = (
    &'static str,
    fn(&[Seg]) -> Vec<Wire>,
    &'static [AnomalyKind],
);

fn fragments_24(segs: &[Seg]) -> Vec<Wire> {
    overlapping_fragment_decoys(segs, 24)
}

const CLASSES: [Class; 8] = [
    (
        "bad TCP checksum decoys",
        bad_tcp_checksum_decoys,
        &[AnomalyKind::BadChecksum],
    ),
    (
        "bad IPv4 checksum decoys",
        bad_ipv4_checksum_decoys,
        &[AnomalyKind::BadChecksum],
    ),
    (
        "data without ACK",
        data_without_ack_decoys,
        &[AnomalyKind::AckInvalid],
    ),
    (
        "ACK of unsent data",
        ack_unsent_decoys,
        &[AnomalyKind::AckInvalid],
    ),
    (
        "RST with bad checksum / in window, not exact",
        rst_decoys,
        &[AnomalyKind::BadChecksum, AnomalyKind::RstIgnored],
    ),
    (
        "overlapping IP fragments, later copy real, then the retransmission",
        fragments_24,
        &[AnomalyKind::FragmentOverlap],
    ),
    (
        "decoys beyond the advertised window, real data later inside it",
        beyond_window_decoys,
        &[AnomalyKind::OutOfWindow],
    ),
    ("nothing spoiled (control)", plain, &[]),
];

fn plain(segs: &[Seg]) -> Vec<Wire> {
    segs.iter().map(|s| clean(s.clone())).collect()
}

fn anomalies(events: &[Event], kind: AnomalyKind) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Anomaly(a) if a.kind == kind))
        .count()
}

#[test]
fn every_insertion_class_leaves_the_attack_as_the_endpoint_saw_it() {
    for name in ATTACKS {
        let segs = read_segments(&lab(name));
        let want = facts(&run(&frames(&segs, Net::V4)).alerts);
        assert!(
            want.iter()
                .any(|f| f.service_name.is_some() && f.binary_path.is_some()),
            "{name}: no technique alert with a service on the original: {want:?}"
        );
        for (what, reshape, expect) in CLASSES {
            let o = run(&wire_frames(&reshape(&segs)));
            assert_eq!(
                facts(&o.alerts),
                want,
                "{name}, {what}: technique alert facts differ"
            );
            for kind in expect {
                assert!(
                    anomalies(&o.events, *kind) > 0,
                    "{name}, {what}: no {kind:?} anomaly"
                );
            }
        }
    }
}

#[test]
fn reshaped_benign_uploads_raise_no_technique_alert() {
    let segs = read_segments(&lab(BENIGN));
    let base = run(&frames(&segs, Net::V4));
    assert!(
        base.events.iter().any(|e| matches!(e, Event::SmbFiles(_))),
        "the control uploads files"
    );
    for (what, reshape, expect) in CLASSES {
        let o = run(&wire_frames(&reshape(&segs)));
        assert!(
            facts(&o.alerts).is_empty(),
            "{what}: {:?}",
            facts(&o.alerts)
        );
        for kind in expect {
            assert!(
                anomalies(&o.events, *kind) > 0,
                "{what}: no {kind:?} anomaly"
            );
        }
    }
}

/// The harness can fail: believing the decoys changes the facts. Decoys alone (no real copy)
/// stand for what a sensor that believed them would report.
#[test]
fn a_sensor_that_believed_the_decoys_would_report_other_facts() {
    let segs = read_segments(&lab(ATTACKS[0]));
    let want = facts(&run(&frames(&segs, Net::V4)).alerts);
    let decoys: Vec<Seg> = segs
        .iter()
        .map(|s| {
            let mut d = s.clone();
            if [445, 139].contains(&s.dport) {
                d.payload = decoy_bytes(&s.payload);
            }
            d
        })
        .collect();
    assert_ne!(facts(&run(&frames(&decoys, Net::V4)).alerts), want);
}

/// One upload as smb_files reports it: (name, size, sha256, hash complete).
type Upload = (String, Option<u64>, Option<String>, Option<bool>);

/// The uploads of a run's smb_files events.
fn uploads(events: &[Event]) -> Vec<Upload> {
    let mut v: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::SmbFiles(f) if f.write_count.is_some_and(|n| n > 0) => Some((
                f.name.to_lowercase(),
                f.size,
                f.sha256.clone(),
                f.hash_complete,
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn an_upload_overwritten_in_place_is_hashed_as_it_ends_on_disk() {
    // SMB2 (psexec, the benign control) and SMB1 (WRITE_ANDX) uploads.
    for name in [ATTACKS[0], ATTACKS[2], BENIGN] {
        let segs = read_segments(&lab(name));
        let base = run(&frames(&segs, Net::V4));
        let want = uploads(&base.events);
        assert!(
            want.iter().any(|u| u.3 == Some(true) && u.2.is_some()),
            "{name}: the original has a hashed upload: {want:?}"
        );
        let (wires, decoys) = overwritten_upload_decoys(&segs);
        assert!(decoys > 0, "{name}: no upload write to overwrite");
        let o = run(&wire_frames(&wires));
        for e in &o.events {
            if matches!(e, Event::Anomaly(_) | Event::SmbFiles(_)) {}
        }
        assert_eq!(
            uploads(&o.events),
            want,
            "{name}: uploads as they end on disk"
        );
        assert_eq!(facts(&o.alerts), facts(&base.alerts), "{name}: alert facts");
    }
}

/// Every host (both ends of the lab connections) following `os`.
fn every_host(os: HostOs) -> EngineConfig {
    let mut hosts = HostPolicies::default();
    hosts.insert("0.0.0.0".parse().unwrap(), 0, TargetPolicy::of(os));
    EngineConfig {
        hosts: Arc::new(hosts),
        ..EngineConfig::default()
    }
}

/// The same reshaped capture (decoys overlapped by real copies starting one byte earlier) read
/// for two receivers: a Linux, Windows or BSD server keeps the real bytes and the sensor told so
/// reports the attack as it was; told "first" (the default: Snort's and Suricata's "first") it
/// reads the decoys, and the facts differ. Told "unknown", it follows both copies: the real
/// facts come out, with `overlap_ambiguous`.
#[test]
fn per_target_tcp_overlap_policy_decides_which_copy_is_read() {
    for name in ATTACKS {
        let segs = read_segments(&lab(name));
        let want = facts(&run(&frames(&segs, Net::V4)).alerts);
        let frames = wire_frames(&ooo_overlap_decoys(&segs));
        for os in [HostOs::Linux, HostOs::Windows, HostOs::Bsd, HostOs::Last] {
            let o = run_with(&frames, every_host(os));
            assert_eq!(facts(&o.alerts), want, "{name}, {os:?}");
            assert!(
                anomalies(&o.events, AnomalyKind::OverlapDifferentData) > 0,
                "{name}, {os:?}"
            );
            assert_eq!(anomalies(&o.events, AnomalyKind::OverlapAmbiguous), 0);
        }
        let first = run_with(&frames, every_host(HostOs::First));
        assert_ne!(
            facts(&first.alerts),
            want,
            "{name}: first-wins reads the decoys"
        );
        let unknown = run_with(&frames, every_host(HostOs::Unknown));
        let got = facts(&unknown.alerts);
        for f in &want {
            assert!(
                got.contains(f),
                "{name}, unknown: {f:?} missing from {got:?}"
            );
        }
        assert!(
            anomalies(&unknown.events, AnomalyKind::OverlapAmbiguous) > 0,
            "{name}"
        );
    }
}

#[test]
fn reshaped_benign_overlaps_raise_no_technique_alert_for_any_policy() {
    let segs = read_segments(&lab(BENIGN));
    let frames = wire_frames(&ooo_overlap_decoys(&segs));
    for os in [HostOs::Linux, HostOs::First, HostOs::Unknown] {
        let o = run_with(&frames, every_host(os));
        assert!(
            facts(&o.alerts).is_empty(),
            "{os:?}: {:?}",
            facts(&o.alerts)
        );
    }
}

/// RSTs follow the receiver too: in the window but not exact, an RFC 5961 server (the default)
/// answers with a challenge ACK and the attack goes on; an RFC 793 server (`rst = "in-window"`)
/// resets, so nothing after the first RST reached it and the sensor ends the flow there.
#[test]
fn rst_acceptance_follows_the_receiver() {
    let segs = read_segments(&lab(ATTACKS[0]));
    let want = facts(&run(&frames(&segs, Net::V4)).alerts);
    let frames = wire_frames(&rst_decoys(&segs));
    let exact = run_with(&frames, every_host(HostOs::Windows));
    assert_eq!(facts(&exact.alerts), want);
    let mut in_window = TargetPolicy::of(HostOs::Windows);
    in_window.rst = RstPolicy::InWindow;
    let mut hosts = HostPolicies::default();
    hosts.insert("0.0.0.0".parse().unwrap(), 0, in_window);
    let cfg = EngineConfig {
        hosts: Arc::new(hosts),
        ..EngineConfig::default()
    };
    let reset = run_with(&frames, cfg);
    assert_ne!(facts(&reset.alerts), want);
    assert_eq!(anomalies(&reset.events, AnomalyKind::RstIgnored), 0);
}

/// Every other class read for `unknown` targets: the same facts (fragments that differ are
/// dropped and the retransmission read, with `overlap_ambiguous`); the second reading adds
/// nothing where the copies never differed.
#[test]
fn every_class_holds_for_unknown_targets() {
    for name in ATTACKS {
        let segs = read_segments(&lab(name));
        let want = facts(&run(&frames(&segs, Net::V4)).alerts);
        for (what, reshape, expect) in CLASSES {
            let o = run_with(&wire_frames(&reshape(&segs)), every_host(HostOs::Unknown));
            assert_eq!(facts(&o.alerts), want, "{name}, {what}");
            for kind in expect {
                assert!(anomalies(&o.events, *kind) > 0, "{name}, {what}: {kind:?}");
            }
            let fragments = expect.contains(&AnomalyKind::FragmentOverlap);
            assert_eq!(
                anomalies(&o.events, AnomalyKind::OverlapAmbiguous) > 0,
                fragments,
                "{name}, {what}"
            );
        }
    }
}
