//! Evasion suite: the lab's PsExec-style captures, reshaped the ways an attacker (or a network)
//! can reshape them, must give the same technique alert with the same facts (technique, tool,
//! source, target, service name, binary path, uploads by name / size / SHA-256) as the original,
//! and the same svcctl calls in the dce_rpc events.

use crate::common::reshape::*;
use psexec_sensor::event::{Event, FileAction};
use std::path::PathBuf;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/lab")
        .join(name)
}

const A: &str = "a_psexec_default.pcap";
const C: &str = "c_smbexec.pcap";
const K1: &str = "k1_psexec_large_upload.pcap";
const I1: &str = "i1_smb1_psexec.pcap";

/// The original's facts (asserted non-trivial: a technique alert with a service name).
/// (upload name, service name, binary path) of one technique alert.
type AlertFacts = (String, Option<String>, Option<String>);

fn baseline(name: &str) -> (Vec<Facts>, Vec<AlertFacts>) {
    let segs = read_segments(&lab(name));
    let o = run(&frames(&segs, Net::V4));
    let f = facts(&o.alerts);
    assert!(!f.is_empty(), "{name}: no technique alert on the original");
    assert!(
        f.iter()
            .all(|x| x.service_name.is_some() && x.binary_path.is_some()),
        "{name}: {f:?}"
    );
    let calls = service_calls(&o.events);
    assert!(
        !calls.is_empty(),
        "{name}: no svcctl call with a service name"
    );
    (f, calls)
}

/// Reshape at the TCP/IP level and compare with the original.
fn same_after(name: &str, what: &str, reshape: impl Fn(&[Seg]) -> Vec<Seg>, net: Net) {
    let (want, want_calls) = baseline(name);
    let segs = read_segments(&lab(name));
    let o = run(&frames(&reshape(&segs), net));
    let v6 = matches!(net, Net::V6 | Net::V6Frag(_));
    let want = if v6 { facts_v6(&want) } else { want };
    assert_eq!(
        facts(&o.alerts),
        want,
        "{name} {what}: technique alert facts differ"
    );
    assert_eq!(
        service_calls(&o.events),
        want_calls,
        "{name} {what}: svcctl calls differ"
    );
}

/// Reshape at the SMB level (per-connection messages, fresh TCP sequence numbers).
fn same_after_smb(name: &str, what: &str, rewrite: impl Fn(&mut Vec<Conn>), mss: usize) {
    let (want, want_calls) = baseline(name);
    let segs = read_segments(&lab(name));
    let (mut conns, other) = smb_conns(&segs);
    rewrite(&mut conns);
    let o = run(&frames(&rebuild(&conns, &other, mss), Net::V4));
    assert_eq!(
        facts(&o.alerts),
        want,
        "{name} {what}: technique alert facts differ"
    );
    assert_eq!(
        service_calls(&o.events),
        want_calls,
        "{name} {what}: svcctl calls differ"
    );
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
    same_after(
        A,
        "mixed",
        |s| overlap(&duplicate(&reorder(&split(s, 97), 7))),
        Net::V4,
    );
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
    same_after(
        C,
        "IPv6 fragments of reordered small segments",
        |s| reorder(&split(s, 3), 4),
        Net::V6Frag(8),
    );
}

// --- SMB / DCE-RPC -------------------------------------------------------------------------------

#[test]
fn create_service_request_in_many_dcerpc_fragments() {
    for name in [A, C] {
        for n in [2, 7, 40] {
            same_after_smb(
                name,
                &format!("CreateServiceW in {n} fragments"),
                |c| {
                    assert!(
                        fragment_dcerpc_request(c, 12, n) >= 1,
                        "no CreateServiceW WRITE found"
                    )
                },
                1460,
            );
        }
    }
}

#[test]
fn upload_as_one_compound() {
    compound(A, usize::MAX);
}

/// k1's 8 MiB upload: CREATE + the first 1 MiB WRITE as one related compound (FileId all-ones),
/// larger than `smb::MAX_SMB_MESSAGE_BUFFER`, the other WRITEs and the CLOSE on their own. The
/// CREATE is buffered, the WRITE's data streams to the handle it opened: the same alert (upload
/// name, size, SHA-256, tool) as the original, and an smb_files record whose name, share, bytes
/// and SHA-256 match the data the client wrote (read from the messages, not from the sensor).
#[test]
fn large_upload_starting_in_a_compound() {
    let (want, want_calls) = baseline(K1);
    let base = want[0].uploads[0]
        .0
        .rsplit(['\\', '/'])
        .next()
        .unwrap()
        .to_string();
    let segs = read_segments(&lab(K1));
    let (mut conns, other) = smb_conns(&segs);
    let data = uploaded_bytes(&conns, &base);
    let sha = sha_hex(&data);
    assert_eq!(want[0].uploads[0].1, data.len() as u64);
    assert_eq!(want[0].uploads[0].2.as_deref(), Some(sha.as_str()));
    assert!(compound_upload(&mut conns, &base, 1));
    let compounds: Vec<usize> = conns
        .iter()
        .flat_map(|c| &c.msgs)
        .filter(|m| {
            m.to_server && is_smb2(&m.body) && cmd(&m.body) == CREATE && le32(&m.body, 20) != 0
        })
        .map(|m| m.body.len())
        .collect();
    assert!(
        compounds.len() == 1 && compounds[0] > psexec_sensor::smb::MAX_SMB_MESSAGE_BUFFER,
        "{compounds:?}"
    );
    let o = run(&frames(&rebuild(&conns, &other, 1460), Net::V4));
    assert_eq!(facts(&o.alerts), want);
    assert_eq!(service_calls(&o.events), want_calls);
    let writes: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SmbFiles(f)
                if f.action == Some(FileAction::FileWrite)
                    && f.name.to_lowercase().ends_with(&base) =>
            {
                Some(f)
            }
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    let w = writes[0];
    assert_eq!(
        (w.share.as_str(), w.bytes_written, w.hash_complete),
        ("ADMIN$", Some(data.len() as u64), Some(true))
    );
    assert_eq!(w.sha256.as_deref(), Some(sha.as_str()));
    assert!(
        !o.events
            .iter()
            .any(|e| matches!(e, Event::Anomaly(a) if a.cap.is_some())),
        "no cap reached"
    );
}

/// A large compound that cannot stream (two 1 MiB WRITEs after the CREATE: the commands before
/// the last do not fit the buffer) is skipped, and the sensor says which cap cut it.
#[test]
fn large_compound_that_cannot_stream_is_reported() {
    let (want, _) = baseline(K1);
    let base = want[0].uploads[0]
        .0
        .rsplit(['\\', '/'])
        .next()
        .unwrap()
        .to_string();
    let segs = read_segments(&lab(K1));
    let (mut conns, other) = smb_conns(&segs);
    assert!(compound_upload(&mut conns, &base, 2));
    let o = run(&frames(&rebuild(&conns, &other, 1460), Net::V4));
    let caps: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Anomaly(a) => a.cap,
            _ => None,
        })
        .collect();
    assert!(caps.contains(&"MAX_SMB_MESSAGE_BUFFER"), "{caps:?}");
}

/// The bytes a client wrote to the file named `base` (by CREATE name, then its FileId), placed
/// by WRITE offset: the upload as it was on the wire.
fn uploaded_bytes(conns: &[Conn], base: &str) -> Vec<u8> {
    let le16 = |m: &[u8], at: usize| usize::from(u16::from_le_bytes([m[at], m[at + 1]]));
    let name_of = |m: &[u8]| {
        let (off, len) = (le16(m, SMB2_HDR + 44), le16(m, SMB2_HDR + 46));
        let u: Vec<u16> = m[off..off + len]
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        String::from_utf16_lossy(&u).to_lowercase()
    };
    let mut out = Vec::new();
    let mut found = false;
    for c in conns {
        let Some(create) = c.msgs.iter().find(|m| {
            m.to_server
                && is_smb2(&m.body)
                && cmd(&m.body) == CREATE
                && name_of(&m.body).ends_with(base)
        }) else {
            continue;
        };
        let response = c
            .msgs
            .iter()
            .rev()
            .find(|m| !m.to_server && is_smb2(&m.body) && mid(&m.body) == mid(&create.body))
            .expect("CREATE response");
        let fid = &response.body[SMB2_HDR + 64..SMB2_HDR + 80];
        for m in c.msgs.iter().filter(|m| {
            m.to_server
                && is_smb2(&m.body)
                && cmd(&m.body) == WRITE
                && &m.body[SMB2_HDR + 16..SMB2_HDR + 32] == fid
        }) {
            let b = &m.body;
            let (off, len) = (le16(b, SMB2_HDR + 2), le32(b, SMB2_HDR + 4) as usize);
            let at =
                u64::from_le_bytes(b[SMB2_HDR + 8..SMB2_HDR + 16].try_into().unwrap()) as usize;
            if out.len() < at + len {
                out.resize(at + len, 0);
            }
            out[at..at + len].copy_from_slice(&b[off..off + len]);
            found = true;
        }
    }
    assert!(found, "no WRITE to {base}");
    out
}

fn le32(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().unwrap())
}

fn sha_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn compound(name: &str, max_writes: usize) {
    {
        let (want, _) = baseline(name);
        let file = want[0].uploads.first().expect("an upload").0.clone();
        let base = file.rsplit(['\\', '/']).next().unwrap().to_string();
        same_after_smb(
            name,
            "CREATE+WRITE+CLOSE compound",
            |c| {
                assert!(
                    compound_upload(c, &base, max_writes),
                    "upload {base} not found"
                )
            },
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
            |c| {
                assert!(
                    replace_utf16_to_server(c, "ADMIN$", "admin$") >= 1,
                    "no ADMIN$ on the wire"
                )
            },
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
    let base = want[0].uploads[0]
        .0
        .rsplit(['\\', '/'])
        .next()
        .unwrap()
        .to_string();
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
