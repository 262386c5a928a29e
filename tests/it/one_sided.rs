//! One-sided captures: a span port or tap often delivers one direction of the victim's link only.
//! Every bundled capture (captures/lab and captures/public, with their truth files) is cut to the
//! packets *to* the victim (client→server) and *from* it (server→client).
//!
//! Server→client and negatives run on the shared corpus too (`../shared/captures`, with the
//! captures whose license keeps them out of the repository) and on the bundled ones it lacks.
//!
//! Client→server: every technique alert of the two-sided capture appears with the same
//! technique, source, target, service name, binary path, tool, uploads (name and size) and at
//! least its pipes; none says `failed` (nothing failing was seen) and each says `no_response`.
//! Server→client: responses carry no opnum, service name or path; the calls are inferred from
//! the answers' layouts and order (`dcerpc::response_shapes`, `detect::responses`). Every technique
//! alert of the two-sided capture appears (technique, source, target, `basis: responses`, `failed`
//! exactly when the two-sided one failed, the SCM / atsvc pipe the bind_ack named, the upload's
//! size), with service name and binary path null. Under packet privacy over TCP the interface is
//! the one the endpoint mapper's answer named for the port, and the answers are read by their
//! exact sizes; the captures where that cannot work are listed in [`SEALED_EXCEPTIONS`] with why.
//! No technique alert may appear on a negative from either half.

use crate::common::corpus::{repo_captures, shared_captures};
use crate::common::reshape::*;
use psexec_sensor::eval::{discover, Case, Verdict};
use psexec_sensor::event::alert::{Alert, Basis, TechniqueAlert};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures");
    let cases = discover(&[dir]).expect("bundled captures and truth files");
    assert!(cases.len() >= 20, "bundled corpus found: {}", cases.len());
    cases
}

/// The shared corpus and the bundled captures it does not hold (the Kerberos lab).
fn all_cases() -> Vec<Case> {
    let (shared, bundled) = (shared_captures(), repo_captures());
    let mut cases = discover(std::slice::from_ref(&shared)).expect("shared captures and truths");
    let have: BTreeSet<PathBuf> = cases
        .iter()
        .filter_map(|c| c.capture.strip_prefix(&shared).ok().map(PathBuf::from))
        .collect();
    cases.extend(
        discover(std::slice::from_ref(&bundled))
            .expect("bundled")
            .into_iter()
            .filter(|c| {
                c.capture
                    .strip_prefix(&bundled)
                    .is_ok_and(|rel| !have.contains(rel))
            }),
    );
    assert!(cases.len() >= 60, "corpus found: {}", cases.len());
    cases
}

/// Visible positives whose server half cannot give the technique alert, and why. Each must still
/// give none (the test fails when one starts to work, so the list stays true).
const SEALED_EXCEPTIONS: [(&str, &str); 3] = [
    (
        "dcerpc-dce-iface-01/20171220_smb_psexec_mimikatz_ticket_dump-s2.pcap",
        "svcctl over TCP under packet privacy, cut without the endpoint mapper's answer: the \
         server's half names only port 49155 (bind_ack) and ciphertext, nothing says svcctl",
    ),
    (
        "elcabezzonn/schtasks.pcap",
        "SchRpcRegisterTask under packet privacy: its answer (actual path + error-info pointer + \
         HRESULT) has the size of any string answer (SchRpcRetrieveTask, SchRpcGetSecurity, \
         SchRpcEnumTasks), so nothing in the server's half tells a registration from browsing",
    ),
    (
        "lab/l7_krb_atexec_tsch.pcap",
        "atexec.py over \\PIPE\\atsvc under Kerberos packet privacy: the registration's answer is \
         sized like any string answer, as in schtasks; the SchRpcRun answer after it (GUID + \
         HRESULT, 20 bytes) follows a SchRpcRetrieveTask as well when an administrator runs a \
         task from the console, so register-then-run by sizes is not raised",
    ),
];

fn techniques(alerts: &[Alert]) -> Vec<&TechniqueAlert> {
    alerts.iter().filter_map(Alert::as_technique).collect()
}

/// What must survive losing the responses, per technique alert.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Core {
    technique: String,
    src: String,
    dst: String,
    service_name: Option<String>,
    binary_path: Option<String>,
    tool: String,
    uploads: Vec<(String, u64)>,
}

fn core(t: &TechniqueAlert) -> Core {
    let mut uploads: Vec<(String, u64)> = t
        .uploads
        .iter()
        .map(|u| (u.name.to_ascii_lowercase(), u.size))
        .collect();
    uploads.sort();
    Core {
        technique: t.technique.as_str().into(),
        src: t.src_ip.to_string(),
        dst: t.dst_ip.to_string(),
        service_name: t.service_name.clone(),
        binary_path: t.binary_path.clone(),
        tool: t.tool.clone(),
        uploads,
    }
}

fn pipes(ts: &[&TechniqueAlert]) -> BTreeSet<String> {
    ts.iter()
        .flat_map(|t| t.pipes.iter().map(|p| p.to_ascii_lowercase()))
        .collect()
}

/// A visible positive's technique alerts two-sided and from one half of its victim's link.
struct Halves {
    name: String,
    both: Outcome,
    half: Outcome,
}

fn halves(case: &Case, half: Half) -> Halves {
    let name = case.capture.display().to_string();
    let victim = case.truth.victim_ip.expect("positives name their victim");
    let all = read_packets(&case.capture);
    let both = run(&all);
    assert!(
        !techniques(&both.alerts).is_empty(),
        "{name}: no technique alert two-sided"
    );
    let half = run(&one_sided(&all, victim, half));
    Halves { name, both, half }
}

#[test]
fn client_to_server_only_gives_every_technique_alert_with_its_facts() {
    let mut checked = 0;
    for case in cases() {
        let t = &case.truth;
        if !t.visible_positive() {
            continue;
        }
        let Halves { name, both, half } = halves(&case, Half::To);
        let (want, got) = (techniques(&both.alerts), techniques(&half.alerts));
        let mut w: Vec<Core> = want.iter().map(|a| core(a)).collect();
        let mut g: Vec<Core> = got.iter().map(|a| core(a)).collect();
        w.sort();
        g.sort();
        assert_eq!(g, w, "{name}: client→server only");
        for a in &got {
            assert!(
                !a.failed,
                "{name}: `failed` without a response: {}",
                a.reason
            );
            assert!(a.no_response, "{name}: no_response not said: {}", a.reason);
            assert!(a.reason.contains("no response seen"), "{}", a.reason);
        }
        let (pw, pg) = (pipes(&want), pipes(&got));
        assert!(
            pg.is_superset(&pw),
            "{name}: pipes {pg:?} lack some of {pw:?}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "visible positives checked: {checked}");
}

#[test]
fn client_to_server_only_keeps_the_request_only_records() {
    // The svcctl pipe open, the upload and the tree connects of lab a (psexec.py over SMB2) and
    // i1 (over SMB1) are in the events although no CREATE / TREE_CONNECT response is.
    for (file, victim) in [
        ("lab/a_psexec_default.pcap", "192.0.2.20"),
        ("lab/i1_smb1_psexec.pcap", "192.0.2.20"),
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(file);
        let all = read_packets(&path);
        let o = run(&one_sided(&all, victim.parse().unwrap(), Half::To));
        use psexec_sensor::event::{Event, FileAction};
        let opens: Vec<(String, String, String)> = o
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SmbFiles(f)
                    if matches!(f.action, Some(FileAction::PipeOpen | FileAction::FileOpen)) =>
                {
                    Some((f.share.clone(), f.name.clone(), f.status.clone()))
                }
                _ => None,
            })
            .collect();
        let has = |share: &str, name: &str| {
            opens.iter().any(|(s, n, st)| {
                s.eq_ignore_ascii_case(share)
                    && n.to_ascii_lowercase().ends_with(name)
                    && st == "<no response>"
            })
        };
        assert!(has("IPC$", "svcctl"), "{file}: svcctl pipe open: {opens:?}");
        assert!(has("ADMIN$", ".exe"), "{file}: upload open: {opens:?}");
        let writes: Vec<(String, u64)> = o
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SmbFiles(f) if f.action == Some(FileAction::FileWrite) => {
                    Some((f.share.clone(), f.bytes_written.unwrap_or(0)))
                }
                _ => None,
            })
            .collect();
        assert!(
            writes.contains(&("ADMIN$".to_string(), 56_320)),
            "{file}: upload on ADMIN$: {writes:?}"
        );
        let mapped: Vec<(String, Option<u32>)> = o
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SmbMapping(m) => Some((m.share.to_ascii_uppercase(), m.tree_id)),
                _ => None,
            })
            .collect();
        assert!(
            mapped.iter().any(|(s, tid)| s == "ADMIN$" && tid.is_some()),
            "{file}: ADMIN$ tree connect linked to its tree id: {mapped:?}"
        );
    }
}

#[test]
fn no_technique_alert_on_a_negative_from_either_half() {
    let mut checked = 0;
    for case in all_cases() {
        let t = &case.truth;
        if t.verdict != Verdict::Negative {
            continue;
        }
        let all = read_packets(&case.capture);
        // The victim, or else every server of the capture (each half of each host's link).
        let hosts: BTreeSet<std::net::IpAddr> = match t.victim_ip {
            Some(v) => [v].into(),
            None => all
                .iter()
                .filter_map(|p| psexec_sensor::decode::host_pair(p.frame()))
                .map(|(_, dst)| dst)
                .collect(),
        };
        for h in hosts.iter().take(4) {
            for half in [Half::To, Half::From] {
                let o = run(&one_sided(&all, *h, half));
                let got = techniques(&o.alerts);
                assert!(
                    got.is_empty(),
                    "{}: {half:?} {h}: {:?}",
                    case.capture.display(),
                    got.iter().map(|a| &a.reason).collect::<Vec<_>>()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 44, "negatives checked: {checked}");
}

#[test]
fn server_to_client_only_gives_every_technique_alert_from_the_answers() {
    let (mut checked, mut excepted) = (0, 0);
    for case in all_cases() {
        let t = &case.truth;
        if !t.visible_positive() {
            continue;
        }
        let Halves { name, both, half } = halves(&case, Half::From);
        let (want, got) = (techniques(&both.alerts), techniques(&half.alerts));
        if let Some((_, why)) = SEALED_EXCEPTIONS.iter().find(|(f, _)| name.ends_with(f)) {
            assert!(
                got.is_empty(),
                "{name}: listed as impossible ({why}) but gave {:?}",
                got.iter().map(|a| &a.reason).collect::<Vec<_>>()
            );
            excepted += 1;
            continue;
        }
        let key = |a: &TechniqueAlert| (a.technique, a.src_ip, a.dst_ip, a.failed);
        let mut w: Vec<_> = want.iter().map(|a| key(a)).collect();
        let mut g: Vec<_> = got.iter().map(|a| key(a)).collect();
        w.sort();
        g.sort();
        assert_eq!(
            g, w,
            "{name}: server→client only (technique, src, dst, failed)"
        );
        for (a, b) in got.iter().zip(want.iter()) {
            assert_eq!(a.basis, Basis::Responses, "{name}");
            assert_eq!((&a.service_name, &a.binary_path), (&None, &None), "{name}");
            assert!(
                a.reason.contains("inferred from server responses only"),
                "{name}: {}",
                a.reason
            );
            // Over TCP the pipe is the server port the bind_ack names.
            let endpoint = |p: &String| {
                let p = p.to_ascii_lowercase();
                ["svcctl", "ntsvcs", "atsvc"].iter().any(|e| p.ends_with(e))
                    || (t.visibility == "stub-encrypted" && p.parse::<u16>().is_ok())
            };
            assert!(
                !a.pipes.is_empty() && a.pipes.iter().all(endpoint),
                "{name}: pipes {:?}",
                a.pipes
            );
            // The upload the two-sided alert names, by its size (the names were in the requests).
            if !b.uploads.is_empty() {
                assert!(
                    b.uploads
                        .iter()
                        .any(|u| a.reason.contains(&format!("{} bytes", u.size))),
                    "{name}: {} lacks one of {:?}",
                    a.reason,
                    b.uploads
                );
            }
        }
        // Under packet privacy the evidence says which sealed answers made the technique (or,
        // where the SCM refused the calls, as Samba refuses CreateService in lab m1, the fault).
        if t.visibility == "stub-encrypted" {
            for a in &got {
                assert!(
                    a.evidence.iter().any(|e| {
                        e.summary.starts_with("sealed svcctl answers: ")
                            || e.summary.starts_with("the SCM refused a call")
                    }),
                    "{name}: {:?}",
                    a.evidence
                );
            }
        }
        checked += 1;
    }
    assert_eq!(
        excepted,
        SEALED_EXCEPTIONS.len(),
        "every listed exception ran"
    );
    assert!(checked >= 22, "visible positives checked: {checked}");
}

#[test]
fn server_to_client_only_keeps_the_files_and_pipes_the_answers_show() {
    // lab a (impacket psexec over SMB2) and i1 (over SMB1), Samba's half: the upload's handle
    // (FileId, created, 56320 bytes written, no name), the svcctl pipe and the inferred calls.
    use psexec_sensor::dcerpc::response_shapes::InferredOp;
    use psexec_sensor::event::{CreateAction, Event, FileAction};
    for file in ["lab/a_psexec_default.pcap", "lab/i1_smb1_psexec.pcap"] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("captures")
            .join(file);
        let all = read_packets(&path);
        let o = run(&one_sided(&all, "192.0.2.20".parse().unwrap(), Half::From));
        let files: Vec<_> = o
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SmbFiles(f) => Some(f),
                _ => None,
            })
            .collect();
        let created: Vec<&String> = files
            .iter()
            .filter(|f| f.create_action == Some(CreateAction::Created))
            .filter_map(|f| f.fuid.as_ref())
            .collect();
        let upload = files
            .iter()
            .find(|f| f.action == Some(FileAction::FileWrite) && f.bytes_written == Some(56_320));
        let upload = upload.unwrap_or_else(|| panic!("{file}: no upload in {files:?}"));
        assert_eq!(upload.name, "<unknown>", "{file}");
        assert!(
            upload.fuid.as_ref().is_some_and(|id| created.contains(&id)),
            "{file}: the upload's handle was created: {created:?}"
        );
        let calls: Vec<(String, InferredOp)> = o
            .events
            .iter()
            .filter_map(|e| match e {
                Event::DceRpc(d) => Some((
                    d.named_pipe.clone()?.to_ascii_lowercase(),
                    d.inferred_operation?,
                )),
                _ => None,
            })
            .filter(|(p, _)| p.ends_with("svcctl"))
            .collect();
        assert_eq!(
            calls.iter().map(|c| c.1).collect::<Vec<_>>(),
            [
                InferredOp::OpenScManager,
                InferredOp::OpenService,
                InferredOp::Refused
            ],
            "{file}: {calls:?}"
        );
        let pipe_opens = files
            .iter()
            .filter(|f| f.action == Some(FileAction::PipeOpen) && f.fuid.is_some())
            .count();
        assert!(pipe_opens >= 2, "{file}: pipe opens {pipe_opens}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sealed svcctl over TCP, server half only, made up: no shared capture holds sealed SCM admin
// work (services.msc, sc), so its answers are built with the sizes [MS-SCMR] gives them.

const SERVER: &str = "192.168.10.10";
const CLIENT: &str = "192.168.10.31";
/// captures/public/401trg/20171220_smb_psexec_add_user.pcap frames 54, 56: the endpoint
/// mapper's bind_ack and its ept_map answer naming svcctl on 192.168.10.10:49163.
const EPM_BIND_ACK: &str = "05000c03100000005400000002000000d016d0166f08000004003133350000000200000000000000045d888aeb1cc9119fe808002b10486002000000030003000000000000000000000000000000000000000000";
const EPM_MAP_ANSWER: &str = "050002031000000098000000020000008000000000000000000000000000000000000000000000000000000001000000040000000000000001000000030000004b0000004b000000050013000d81bb7a364498f135ad3298f03800100302000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200c00b0100090400c0a80a0a0000000000";
const SCM_PORT: u16 = 49163;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).unwrap())
        .collect()
}

/// A bind_ack accepting NDR 2.0, with the port as secondary address.
fn bind_ack(call_id: u32, port: u16) -> Vec<u8> {
    let sec = format!("{port}\0");
    let mut body = vec![0xd0, 0x16, 0xd0, 0x16, 0x12, 0x34, 0, 0];
    body.extend_from_slice(&(sec.len() as u16).to_le_bytes());
    body.extend_from_slice(sec.as_bytes());
    while body.len() % 4 != 0 {
        body.push(0);
    }
    body.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&unhex("045d888aeb1cc9119fe808002b104860"));
    body.extend_from_slice(&2u32.to_le_bytes());
    pdu(12, call_id, &body, &[])
}

/// A response whose `len`-byte stub is sealed (NTLMSSP, packet privacy): ciphertext, padding
/// to 16, the sec_trailer and a 16-byte verifier.
fn sealed_answer(call_id: u32, len: usize) -> Vec<u8> {
    let pad = (16 - len % 16) % 16;
    let mut body = (len as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend((0..len + pad).map(|i| (i as u8).wrapping_mul(151) ^ 0x5a));
    let trailer = [10, 6, pad as u8, 0, 0, 0, 0, 0];
    pdu(2, call_id, &body, &trailer)
}

fn pdu(ptype: u8, call_id: u32, body: &[u8], trailer: &[u8]) -> Vec<u8> {
    let verifier: &[u8] = if trailer.is_empty() { &[] } else { &[0xab; 16] };
    let frag = 16 + body.len() + trailer.len() + verifier.len();
    let mut v = vec![5, 0, ptype, 3, 0x10, 0, 0, 0];
    v.extend_from_slice(&(frag as u16).to_le_bytes());
    v.extend_from_slice(&(verifier.len() as u16).to_le_bytes());
    v.extend_from_slice(&call_id.to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(trailer);
    v.extend_from_slice(verifier);
    v
}

/// The server's segments of one connection: SYN-ACK, then one PDU per segment.
fn server_conn(t0: u64, sport: u16, cport: u16, pdus: Vec<Vec<u8>>) -> Vec<Seg> {
    let (src, dst) = (SERVER.parse().unwrap(), CLIENT.parse().unwrap());
    let seg = |i: u64, seq: u32, flags: u8, payload: Vec<u8>| Seg {
        ts: psexec_sensor::time::Ts((t0 + i) * 1_000_000),
        src,
        dst,
        sport,
        dport: cport,
        seq,
        ack: 1000 + i as u32 * 100,
        flags,
        payload,
    };
    let mut out = vec![seg(0, 7000, 0x12, vec![])];
    let mut seq = 7001u32;
    for (i, p) in pdus.into_iter().enumerate() {
        let n = p.len() as u32;
        out.push(seg(i as u64 + 1, seq, 0x18, p));
        seq += n;
    }
    out
}

/// The endpoint mapper's answer, then sealed svcctl answers of these sizes on the port it named.
fn sealed_server_half(sizes: &[usize]) -> Outcome {
    let mut segs = server_conn(
        1_000,
        135,
        50_000,
        vec![unhex(EPM_BIND_ACK), unhex(EPM_MAP_ANSWER)],
    );
    let mut scm = vec![bind_ack(1, SCM_PORT)];
    scm.extend(
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| sealed_answer(i as u32 + 2, n)),
    );
    segs.extend(server_conn(2_000, SCM_PORT, 50_001, scm));
    run(&frames(&segs, Net::V4))
}

#[test]
fn sealed_scm_admin_work_from_the_server_half_raises_nothing() {
    // services.msc: OpenSCManagerW, REnumServicesStatusW, then per service OpenServiceW,
    // RQueryServiceConfigW (sizing call: 36-byte config + needed + status; then the config),
    // RQueryServiceConfig2W (sizing: empty array + needed + status; then 16 bytes: 28),
    // CloseServiceHandle; a start type set (ChangeServiceConfigW), the service started, its
    // status queried, handles closed.
    let admin = [
        24, 2400, 24, 44, 300, 12, 28, 24, 24, 44, 280, 8, 4, 32, 32, 24, 24,
    ];
    let o = sealed_server_half(&admin);
    let inferred: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e {
            psexec_sensor::event::Event::DceRpc(d) if d.stub_encrypted => {
                Some((d.endpoint.clone(), d.inferred_operation))
            }
            _ => None,
        })
        .collect();
    assert_eq!(inferred.len(), admin.len(), "{inferred:?}");
    assert!(
        inferred.iter().all(|(e, _)| e == "svcctl"),
        "svcctl learned from the ept_map answer: {inferred:?}"
    );
    let got = techniques(&o.alerts);
    assert!(
        got.is_empty(),
        "{:?}",
        got.iter().map(|a| &a.reason).collect::<Vec<_>>()
    );
    // The same association creating and starting a service does alert (so the test can fail).
    let o = sealed_server_half(&[24, 28, 24, 24, 4, 32, 24]);
    let got = techniques(&o.alerts);
    assert_eq!(got.len(), 1, "{:?}", o.alerts);
    assert_eq!(
        (got[0].technique.as_str(), got[0].basis),
        ("service-create", Basis::Responses)
    );
}
