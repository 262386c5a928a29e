//! Evasion suite: the lab's PsExec-style captures, reshaped the ways an attacker (or a network)
//! can reshape them, must give the same technique alert with the same facts (technique, tool,
//! source, target, service name, binary path, uploads by name / size / SHA-256) as the original,
//! and the same svcctl calls in the dce_rpc events.

#[path = "common/reshape.rs"]
mod reshape;

use reshape::*;
use std::path::PathBuf;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/lab").join(name)
}

const A: &str = "a_psexec_default.pcap";
const C: &str = "c_smbexec.pcap";
const K1: &str = "k1_psexec_large_upload.pcap";
const I1: &str = "i1_smb1_psexec.pcap";

/// The original's facts (asserted non-trivial: a technique alert with a service name).
fn baseline(name: &str) -> (Vec<Facts>, Vec<(String, Option<String>, Option<String>)>) {
    let segs = read_segments(&lab(name));
    let o = run(&frames(&segs, Net::V4));
    let f = facts(&o.alerts);
    assert!(!f.is_empty(), "{name}: no technique alert on the original");
    assert!(f.iter().all(|x| x.service_name.is_some() && x.binary_path.is_some()), "{name}: {f:?}");
    let calls = service_calls(&o.events);
    assert!(!calls.is_empty(), "{name}: no svcctl call with a service name");
    (f, calls)
}

/// Reshape at the TCP/IP level and compare with the original.
fn same_after(name: &str, what: &str, reshape: impl Fn(&[Seg]) -> Vec<Seg>, net: Net) {
    let (want, want_calls) = baseline(name);
    let segs = read_segments(&lab(name));
    let o = run(&frames(&reshape(&segs), net));
    let v6 = matches!(net, Net::V6 | Net::V6Frag(_));
    let want = if v6 { facts_v6(&want) } else { want };
    assert_eq!(facts(&o.alerts), want, "{name} {what}: technique alert facts differ");
    assert_eq!(service_calls(&o.events), want_calls, "{name} {what}: svcctl calls differ");
}

/// Reshape at the SMB level (per-connection messages, fresh TCP sequence numbers).
fn same_after_smb(name: &str, what: &str, rewrite: impl Fn(&mut Vec<Conn>), mss: usize) {
    let (want, want_calls) = baseline(name);
    let segs = read_segments(&lab(name));
    let (mut conns, other) = smb_conns(&segs);
    rewrite(&mut conns);
    let o = run(&frames(&rebuild(&conns, &other, mss), Net::V4));
    assert_eq!(facts(&o.alerts), want, "{name} {what}: technique alert facts differ");
    assert_eq!(service_calls(&o.events), want_calls, "{name} {what}: svcctl calls differ");
}

// --- the harness itself can fail: a corrupting reshape must change the outcome ---------------

#[test]
fn a_corrupted_stream_is_noticed() {
    let (want, _) = baseline(A);
    let segs = read_segments(&lab(A));
    // Last-copy-wins garbage: only the corrupted copies (no originals).
    let bad: Vec<Seg> = segs
        .iter()
        .map(|s| {
            let mut s = s.clone();
            for b in s.payload.iter_mut().skip(100) {
                *b ^= 0x5a;
            }
            s
        })
        .collect();
    let o = run(&frames(&bad, Net::V4));
    assert_ne!(facts(&o.alerts), want);
}

#[test]
fn repacketized_unchanged_is_the_same() {
    for name in [A, C] {
        same_after_smb(name, "repacketized", |_| {}, 1460);
    }
}

// --- TCP ---------------------------------------------------------------------------------------

#[test]
fn one_byte_segments() {
    for name in [A, C] {
        same_after(name, "1-byte segments", |s| split(s, 1), Net::V4);
    }
}

#[test]
fn segments_reordered() {
    for name in [A, C, K1] {
        same_after(name, "reordered", |s| reorder(&split(s, 536), 5), Net::V4);
    }
}

#[test]
fn segments_duplicated() {
    for name in [A, C, K1] {
        same_after(name, "duplicated", duplicate, Net::V4);
    }
}

#[test]
fn overlapping_segments_with_different_data_first_wins() {
    for name in [A, C, K1] {
        same_after(name, "overlapping", overlap, Net::V4);
    }
}

#[test]
fn reordered_duplicated_and_overlapping_at_once() {
    // Overlap last: a differing copy must never arrive before the original bytes it overlaps
    // (then it would be the first copy, and first wins).
    same_after(A, "mixed", |s| overlap(&duplicate(&reorder(&split(s, 97), 7))), Net::V4);
}

// --- IP ------------------------------------------------------------------------------------------

#[test]
fn ipv4_fragments() {
    for name in [A, C] {
        same_after(name, "IPv4 fragments", |s| s.to_vec(), Net::V4Frag(64));
    }
    same_after(K1, "IPv4 fragments", |s| s.to_vec(), Net::V4Frag(1480));
}

#[test]
fn ipv6() {
    for name in [A, C, K1] {
        same_after(name, "IPv6", |s| s.to_vec(), Net::V6);
    }
}

#[test]
fn ipv6_fragments() {
    for name in [A, C] {
        same_after(name, "IPv6 fragments", |s| s.to_vec(), Net::V6Frag(64));
    }
}

#[test]
fn vlan_tagged() {
    for name in [A, C, K1] {
        same_after(name, "VLAN", |s| s.to_vec(), Net::Vlan(42));
    }
}

#[test]
fn ipv6_fragments_of_reordered_one_byte_segments() {
    same_after(C, "IPv6 fragments of reordered small segments", |s| reorder(&split(s, 3), 4), Net::V6Frag(8));
}

// --- SMB / DCE-RPC -------------------------------------------------------------------------------

#[test]
fn create_service_request_in_many_dcerpc_fragments() {
    for name in [A, C] {
        for n in [2, 7, 40] {
            same_after_smb(
                name,
                &format!("CreateServiceW in {n} fragments"),
                |c| assert!(fragment_dcerpc_request(c, 12, n) >= 1, "no CreateServiceW WRITE found"),
                1460,
            );
        }
    }
}

#[test]
fn upload_as_one_compound() {
    compound(A, usize::MAX);
}

/// k1's 8 MiB upload: CREATE + the first 1 MiB WRITE as one related compound, the other WRITEs
/// and the CLOSE on their own.
///
/// KNOWN GAP: a compound larger than `smb::MAX_SMB_MESSAGE_BUFFER` (256 KiB) is skipped whole
/// (only single WRITE requests stream), so the CREATE (file name) and the first MiB are lost:
/// the alert names the upload `<unknown>`, without its hash, and the tool attribution drops to
/// impacket-services. Needs compound streaming in src/smb/mod.rs.
#[test]
#[ignore = "known gap: large compounds are skipped (MAX_SMB_MESSAGE_BUFFER); see doc comment"]
fn large_upload_starting_in_a_compound() {
    compound(K1, 1);
}

/// Until that gap is closed, the skip is at least not silent: the sensor says which cap cut it.
#[test]
fn large_compound_skip_is_reported() {
    let (want, _) = baseline(K1);
    let base = want[0].uploads[0].0.rsplit(['\\', '/']).next().unwrap().to_string();
    let segs = read_segments(&lab(K1));
    let (mut conns, other) = smb_conns(&segs);
    assert!(compound_upload(&mut conns, &base, 1));
    let o = run(&frames(&rebuild(&conns, &other, 1460), Net::V4));
    let caps: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            psexec_sensor::event::Event::Anomaly(a) => a.cap,
            _ => None,
        })
        .collect();
    assert!(caps.contains(&"MAX_SMB_MESSAGE_BUFFER"), "{caps:?}");
}

fn compound(name: &str, max_writes: usize) {
    {
        let (want, _) = baseline(name);
        let file = want[0].uploads.first().expect("an upload").0.clone();
        let base = file.rsplit(['\\', '/']).next().unwrap().to_string();
        same_after_smb(
            name,
            "CREATE+WRITE+CLOSE compound",
            |c| assert!(compound_upload(c, &base, max_writes), "upload {base} not found"),
            1460,
        );
    }
}

#[test]
fn admin_share_in_lower_case() {
    for name in [A, K1, I1] {
        same_after_smb(
            name,
            "admin$",
            |c| assert!(replace_utf16_to_server(c, "ADMIN$", "admin$") >= 1, "no ADMIN$ on the wire"),
            1460,
        );
    }
}

#[test]
fn fragments_compound_and_case_together_over_vlan_ipv6_small_segments() {
    let (want, want_calls) = baseline(A);
    let segs = read_segments(&lab(A));
    let (mut conns, other) = smb_conns(&segs);
    assert!(replace_utf16_to_server(&mut conns, "ADMIN$", "aDmIn$") >= 1);
    assert!(fragment_dcerpc_request(&mut conns, 12, 9) >= 1);
    let base = want[0].uploads[0].0.rsplit(['\\', '/']).next().unwrap().to_string();
    assert!(compound_upload(&mut conns, &base, usize::MAX));
    let segs = reorder(&rebuild(&conns, &other, 200), 3);
    let o = run(&frames(&segs, Net::V6));
    assert_eq!(facts(&o.alerts), facts_v6(&want));
    assert_eq!(service_calls(&o.events), want_calls);
}

// --- SMB1 ----------------------------------------------------------------------------------------

/// SMB1 PsExec.
#[test]
fn smb1_psexec_reshaped() {
    same_after(I1, "1-byte segments", |s| split(s, 1), Net::V4);
    same_after(I1, "reordered", |s| reorder(&split(s, 300), 5), Net::V4);
    same_after(I1, "overlapping", overlap, Net::V4);
    same_after(I1, "IPv4 fragments", |s| s.to_vec(), Net::V4Frag(64));
    same_after(I1, "IPv6 fragments", |s| s.to_vec(), Net::V6Frag(64));
    same_after(I1, "VLAN", |s| s.to_vec(), Net::Vlan(7));
}
