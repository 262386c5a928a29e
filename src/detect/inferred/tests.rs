//! Synthetic sequences built from SMB2 / DCE-RPC arithmetic (see `shapes`), not copied from a
//! capture: each helper writes the messages a client and server exchange for one operation.

use super::shapes::*;
use super::*;
use crate::event::{SmbAuth, SmbVersion};

const CLIENT: &str = "192.0.2.10";
const SERVER: &str = "192.0.2.20";
const SID: u64 = 0x1234;

/// A sequence of opaque messages with a clock in milliseconds.
struct Seq {
    t_ms: u64,
    client: IpAddr,
    sid: u64,
    nonce: &'static str,
    events: Vec<Event>,
}

impl Seq {
    fn new() -> Seq {
        Seq {
            t_ms: 1_700_000_000_000,
            client: CLIENT.parse().unwrap(),
            sid: SID,
            nonce: "random",
            events: vec![],
        }
    }
    fn conn(&self) -> ConnFields {
        ConnFields {
            ts: Ts(self.t_ms * 1_000_000),
            uid: Uid(7),
            orig_h: self.client,
            orig_p: 50000,
            resp_h: SERVER.parse().unwrap(),
            resp_p: 445,
        }
    }
    fn msg(&mut self, to_server: bool, size: u32) -> &mut Seq {
        self.t_ms += 1;
        self.events.push(Event::SmbOpaque(SmbOpaque {
            conn: self.conn(),
            session_id: self.sid,
            to_server,
            original_size: size,
            wire_size: size.saturating_add(52),
            kind: "encrypted",
            nonce_form: if to_server { self.nonce } else { "counter" },
        }));
        self
    }
    fn pair(&mut self, req: u32, resp: u32) -> &mut Seq {
        self.msg(true, req).msg(false, resp)
    }
    fn wait_s(&mut self, s: u64) -> &mut Seq {
        self.t_ms += s * 1000;
        self
    }
    fn tree_connect(&mut self, path: &str) -> &mut Seq {
        self.pair(72 + 2 * path.len() as u32, 80)
    }
    fn create(&mut self, name: &str) -> &mut Seq {
        self.pair(IOCTL_REQUEST_FIXED + 2 * name.len() as u32, 152)
    }
    fn close(&mut self) -> &mut Seq {
        self.pair(CLOSE_REQUEST, CLOSE_RESPONSE)
    }
    fn upload(&mut self, bytes: u32) -> &mut Seq {
        self.pair(WRITE_REQUEST_FIXED + bytes, WRITE_RESPONSE)
    }
    /// impacket's pipe call: WRITE the request PDU, READ the response PDU.
    fn call_rw(&mut self, q: u32, r: u32) -> &mut Seq {
        self.pair(WRITE_REQUEST_FIXED + q, WRITE_RESPONSE)
            .pair(113, READ_RESPONSE_FIXED + r)
    }
    /// Windows' pipe call: one IOCTL FSCTL_PIPE_TRANSCEIVE.
    fn call_ioctl(&mut self, q: u32, r: u32) -> &mut Seq {
        self.pair(IOCTL_REQUEST_FIXED + q, IOCTL_RESPONSE_FIXED + r)
    }
    fn auth(&mut self, user: &str) -> &mut Seq {
        let conn = self.conn();
        self.events.push(Event::SmbAuth(SmbAuth {
            conn,
            session_id: Some(self.sid),
            user: Some(user.into()),
            domain: Some("LAB".into()),
            workstation: Some("ATTACKER".into()),
            auth: "ntlmssp",
            dialect: "SMB 3.1.1".into(),
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            user_source: None,
            ticket: None,
        }));
        self
    }
    fn run(&self, cfg: InferenceConfig) -> Vec<InferredTechnique> {
        let mut inf = Inference::new(cfg);
        let mut out = vec![];
        for e in &self.events {
            inf.on_event(e, &mut out);
        }
        inf.finish(&mut out);
        out
    }
}

/// Stub sizes of the svcctl calls, from [MS-SCMR] NDR layouts.
fn ndr_string(chars: u32) -> u32 {
    (12 + 2 * (chars + 1) + 3) & !3
}
fn open_scm_q() -> u32 {
    // unique pointer + "DUMMY", "ServicesActive", access
    DCE_CALL_HEADER + 4 + ndr_string(5) + 4 + ndr_string(14) + 4
}
fn open_service_q(name: u32) -> u32 {
    DCE_CALL_HEADER + 20 + ndr_string(name) + 4
}
fn create_service_q(name: u32, path: u32) -> u32 {
    DCE_CALL_HEADER + 20 + ndr_string(name) + 4 + ndr_string(name) + 16 + ndr_string(path) + 28
}

/// What psexec does after authenticating: share enum on srvsvc, upload to ADMIN$, then svcctl.
fn psexec(s: &mut Seq, ioctl: bool, upload: impl Fn(&mut Seq)) {
    let call = |s: &mut Seq, q, r| {
        if ioctl {
            s.call_ioctl(q, r);
        } else {
            s.call_rw(q, r);
        }
    };
    s.tree_connect(r"\\192.0.2.20\IPC$")
        .create("svcctl")
        .create("srvsvc");
    call(s, BIND_ONE_CONTEXT, 68);
    call(s, 76, 316); // NetrShareEnum: large answer
    s.tree_connect(r"\\192.0.2.20\ADMIN$")
        .create("abcdefgh.exe");
    upload(s);
    call(s, BIND_ONE_CONTEXT, 68);
    call(s, open_scm_q(), HANDLE_REPLY);
    call(s, open_service_q(4), HANDLE_REPLY);
    call(s, create_service_q(4, 25), FAULT_PDU);
}

#[test]
fn impacket_psexec_write_read_is_inferred_with_upload() {
    let mut s = Seq::new();
    s.nonce = "ascii-letters";
    s.auth("admin");
    psexec(&mut s, false, |s| {
        s.upload(56_320).close();
    });
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    let t = &out[0];
    assert!(t.with_upload);
    assert_eq!(t.variant, "upload-then-service");
    assert_eq!(t.upload_size, Some(56_320));
    assert!(t.upload_size_exact);
    assert_eq!(t.confidence, InferredConfidence::Medium);
    assert_eq!(t.tool_hint, Some("impacket"));
    assert_eq!(t.src, CLIENT.parse::<IpAddr>().unwrap());
    assert_eq!(t.dst, SERVER.parse::<IpAddr>().unwrap());
    assert_eq!(t.session_id, SID);
    assert_eq!(t.user.as_deref(), Some("admin"));
    assert_eq!(t.domain.as_deref(), Some("LAB"));
    let create: Vec<_> = t
        .evidence
        .iter()
        .filter(|e| e.role == "create-call")
        .collect();
    assert_eq!(create[0].inner, Some(204));
    assert_eq!(create.last().unwrap().inner, Some(FAULT_PDU));
    assert!(t
        .evidence
        .iter()
        .any(|e| e.role == "upload" && e.inner == Some(56_320)));
    assert!(
        t.evidence
            .iter()
            .any(|e| e.role == "bind" && e.inner == Some(72)),
        "{t:#?}"
    );
    assert!(t.reason.contains("inferred from encrypted"));
    assert!(t.ts < t.ts_end);
}

#[test]
fn windows_shaped_ioctl_calls_and_compound_upload_are_inferred() {
    let mut s = Seq::new();
    psexec(&mut s, true, |s| {
        // CREATE + WRITE + CLOSE in one compound: each member 8-aligned.
        let create = (IOCTL_REQUEST_FIXED + 24 + 7) & !7;
        let write = (WRITE_REQUEST_FIXED + 56_320 + 7) & !7;
        s.pair(
            create + write + CLOSE_REQUEST,
            152 + WRITE_RESPONSE + CLOSE_RESPONSE,
        );
    });
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    let t = &out[0];
    assert!(t.with_upload);
    assert!(!t.upload_size_exact);
    let size = t.upload_size.unwrap();
    assert!((56_320..=56_320 + 512).contains(&size), "{size}");
    assert_eq!(t.tool_hint, None);
    assert!(t.evidence.iter().any(|e| e.what == "ioctl request"));
}

#[test]
fn chunked_upload_sums_and_interim_responses_are_followed() {
    let mut s = Seq::new();
    s.tree_connect(r"\\192.0.2.20\ADMIN$")
        .create("abcdefgh.exe");
    for _ in 0..8 {
        s.upload(1 << 20);
    }
    s.upload(56_320).close();
    s.call_rw(BIND_ONE_CONTEXT, 68);
    // Server answers the READ with STATUS_PENDING first.
    s.pair(WRITE_REQUEST_FIXED + open_scm_q(), 80)
        .pair(113, ERROR_RESPONSE)
        .msg(false, 80 + HANDLE_REPLY);
    s.call_rw(create_service_q(4, 25), CREATE_SERVICE_REPLY);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].upload_size, Some(8 * (1 << 20) + 56_320));
}

#[test]
fn smbexec_like_without_upload_is_low_confidence() {
    let mut s = Seq::new();
    s.tree_connect(r"\\192.0.2.20\IPC$").create("svcctl");
    s.call_rw(BIND_ONE_CONTEXT, 68)
        .call_rw(open_scm_q(), HANDLE_REPLY);
    s.call_rw(create_service_q(8, 220), FAULT_PDU);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(!out[0].with_upload);
    assert_eq!(out[0].variant, "service-only");
    assert_eq!(out[0].confidence, InferredConfidence::Low);
    assert_eq!(out[0].upload_size, None);
    let cfg = InferenceConfig {
        report_service_only: false,
        ..InferenceConfig::default()
    };
    assert!(s.run(cfg).is_empty());
}

#[test]
fn benign_shapes_do_not_alert() {
    // Upload alone.
    let mut s = Seq::new();
    s.tree_connect(r"\\192.0.2.20\ADMIN$")
        .create("tool.exe")
        .upload(204_800)
        .close();
    s.create("notes.txt").upload(5_200).close();
    assert!(s.run(InferenceConfig::default()).is_empty());
    // Upload, then a share enumeration: bind and a call with a large answer.
    let mut s = Seq::new();
    s.upload(100_000)
        .close()
        .call_rw(BIND_ONE_CONTEXT, 68)
        .call_rw(76, 316)
        .call_rw(76, 316);
    assert!(s.run(InferenceConfig::default()).is_empty());
    // Upload, then a service query: bind, open SCM, open service, query status, close handles.
    let mut s = Seq::new();
    s.upload(100_000)
        .close()
        .call_rw(BIND_ONE_CONTEXT, 68)
        .call_rw(open_scm_q(), HANDLE_REPLY);
    s.call_rw(open_service_q(7), HANDLE_REPLY)
        .call_rw(44, 56)
        .call_rw(44, HANDLE_REPLY)
        .call_rw(44, HANDLE_REPLY);
    assert!(s.run(InferenceConfig::default()).is_empty());
    // A large request with a small reply but no bind and handle call before it.
    let mut s = Seq::new();
    s.upload(100_000)
        .close()
        .call_rw(create_service_q(4, 25), FAULT_PDU);
    assert!(s.run(InferenceConfig::default()).is_empty());
    // A create-sized call that is no larger than the handle calls before it.
    let mut s = Seq::new();
    s.upload(100_000)
        .close()
        .call_rw(BIND_ONE_CONTEXT, 68)
        .call_rw(300, HANDLE_REPLY)
        .call_rw(300, FAULT_PDU);
    assert!(s.run(InferenceConfig::default()).is_empty());
}

#[test]
fn upload_window_edges() {
    let go = |gap: u64| {
        let mut s = Seq::new();
        s.upload(56_320).close().wait_s(gap);
        s.call_rw(BIND_ONE_CONTEXT, 68)
            .call_rw(open_scm_q(), HANDLE_REPLY)
            .call_rw(create_service_q(4, 25), FAULT_PDU);
        s.run(InferenceConfig::default())
    };
    let near = go(119);
    assert_eq!(near.len(), 1);
    assert!(near[0].with_upload);
    let far = go(121);
    assert_eq!(far.len(), 1);
    assert!(
        !far[0].with_upload,
        "upload 121 s before the create call is outside the window"
    );
    assert_eq!(far[0].confidence, InferredConfidence::Low);
}

#[test]
fn sequence_window_edges() {
    let go = |gap: u64| {
        let mut s = Seq::new();
        s.upload(56_320).close();
        s.call_rw(BIND_ONE_CONTEXT, 68)
            .call_rw(open_scm_q(), HANDLE_REPLY)
            .wait_s(gap);
        s.call_rw(create_service_q(4, 25), FAULT_PDU);
        s.run(InferenceConfig::default())
    };
    assert_eq!(go(100).len(), 1);
    assert!(
        go(125).is_empty(),
        "bind more than 120 s before the create call"
    );
}

#[test]
fn upload_in_another_session_of_the_same_pair_counts_other_client_does_not() {
    let mut s = Seq::new();
    s.sid = 1;
    s.upload(56_320).close();
    s.sid = 2;
    s.call_ioctl(BIND_ONE_CONTEXT, 68)
        .call_ioctl(open_scm_q(), HANDLE_REPLY)
        .call_ioctl(create_service_q(4, 25), 52);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1);
    assert!(out[0].with_upload);
    assert_eq!(out[0].session_id, 2);

    let mut s = Seq::new();
    s.upload(56_320).close();
    s.client = "192.0.2.99".parse().unwrap();
    s.call_ioctl(BIND_ONE_CONTEXT, 68)
        .call_ioctl(open_scm_q(), HANDLE_REPLY)
        .call_ioctl(create_service_q(4, 25), 52);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1);
    assert!(!out[0].with_upload);
}

#[test]
fn one_upload_explains_one_creation() {
    let mut s = Seq::new();
    s.upload(56_320).close();
    for _ in 0..2 {
        s.call_rw(BIND_ONE_CONTEXT, 68)
            .call_rw(open_scm_q(), HANDLE_REPLY)
            .call_rw(create_service_q(4, 25), FAULT_PDU);
    }
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 2);
    assert!(out[0].with_upload);
    assert!(!out[1].with_upload);
}

#[test]
fn session_cap_is_reported_and_state_stays_bounded() {
    let mut inf = Inference::new(InferenceConfig::default());
    let mut out = vec![];
    let mut s = Seq::new();
    for sid in 0..(MAX_INFERENCE_SESSIONS as u64 + 5) {
        s.sid = sid;
        s.msg(true, 200);
    }
    for e in &s.events {
        inf.on_event(e, &mut out);
    }
    assert_eq!(inf.sessions.len(), MAX_INFERENCE_SESSIONS);
    let mut sink = Sink::new();
    inf.report_caps(&mut sink);
    assert_eq!(sink.counters.get("MAX_INFERENCE_SESSIONS"), 5);
}

#[test]
fn hostile_sizes_never_panic() {
    let mut inf = Inference::new(InferenceConfig::default());
    let mut out = vec![];
    let mut s = Seq::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let edges = [
        0,
        1,
        64,
        72,
        73,
        80,
        88,
        112,
        113,
        119,
        120,
        124,
        u32::MAX - 1,
        u32::MAX,
    ];
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = if i % 3 == 0 {
            edges[(x % edges.len() as u64) as usize]
        } else {
            (x % 70_000) as u32
        };
        s.sid = x % 3;
        s.msg(x & 1 == 0, size);
    }
    for e in &s.events {
        inf.on_event(e, &mut out);
    }
    inf.finish(&mut out);
    assert!(inf.sessions.is_empty());
    for t in &out {
        assert!(t.evidence.len() <= MAX_EVIDENCE);
    }
}

#[test]
fn file_tail_after_chunks_counts_but_a_bind_sized_write_does_not() {
    let mut s = Seq::new();
    s.upload(65_536)
        .upload(65_536)
        .upload(12_288)
        .upload(2_208)
        .close();
    s.call_rw(116, 92)
        .call_ioctl(56, HANDLE_REPLY)
        .call_ioctl(create_service_q(8, 30), CREATE_SERVICE_REPLY);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].upload_size, Some(65_536 * 2 + 12_288 + 2_208));
    // No CLOSE between the upload and the bind: the bind is still read as a bind.
    let mut s = Seq::new();
    s.upload(56_320)
        .call_rw(BIND_ONE_CONTEXT, 68)
        .call_rw(open_scm_q(), HANDLE_REPLY);
    s.call_rw(create_service_q(4, 25), FAULT_PDU);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert_eq!(out[0].upload_size, Some(56_320));
}

#[test]
fn reordered_and_interleaved_sequences_are_inferred() {
    // Upload between the bind and the first call; a share enumeration on another pipe between the
    // handle calls and the create call.
    let mut s = Seq::new();
    s.call_ioctl(BIND_ONE_CONTEXT, 68);
    s.create("abcdefgh.exe").upload(56_320).close();
    s.call_ioctl(open_scm_q(), HANDLE_REPLY)
        .call_ioctl(open_service_q(4), HANDLE_REPLY);
    s.call_ioctl(76, 316);
    s.call_ioctl(create_service_q(4, 25), CREATE_SERVICE_REPLY);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(out[0].with_upload);
}

#[test]
fn authenticated_binding_with_verifiers_is_inferred() {
    // Three contexts + NTLMSSP NEGOTIATE in the bind, CHALLENGE in the ack; every call then carries
    // an 8-byte sec_trailer and a 16-byte signature (+ stub padding).
    let v = AUTH_VERIFIER_MIN;
    let mut s = Seq::new();
    s.upload(100_000).close();
    s.call_ioctl(160 + 8 + 40, 116 + 8 + 180)
        .call_ioctl(open_scm_q() + v, HANDLE_REPLY + v);
    s.call_ioctl(create_service_q(6, 40) + v + 4, CREATE_SERVICE_REPLY + v);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(out[0].with_upload);
}

#[test]
fn auth3_and_multi_fragment_requests_over_write_read() {
    let v = AUTH_VERIFIER_MIN;
    let mut s = Seq::new();
    s.upload(100_000).close();
    // Authenticated bind, then AUTH3: a write nobody answers with a read.
    s.call_rw(72 + 8 + 40, 68 + 8 + 200)
        .pair(WRITE_REQUEST_FIXED + 16 + 8 + 330, WRITE_RESPONSE);
    s.call_rw(open_scm_q() + v, HANDLE_REPLY + v);
    // A create request split into a full 1432-byte fragment and the rest.
    s.pair(WRITE_REQUEST_FIXED + 1432, WRITE_RESPONSE)
        .call_rw(900, CREATE_SERVICE_REPLY + v);
    let out = s.run(InferenceConfig::default());
    assert_eq!(out.len(), 1, "{out:#?}");
    let create: Vec<_> = out[0]
        .evidence
        .iter()
        .filter(|e| e.role == "create-call")
        .collect();
    assert_eq!(create[0].inner, Some(1432 + 900));
}

#[test]
fn upload_survives_the_end_of_its_connection() {
    use crate::event::SmbVisibility;
    let mut s = Seq::new();
    s.sid = 1;
    s.upload(56_320).close();
    let conn = s.conn();
    let end = |sid| {
        Event::SmbVisibility(SmbVisibility {
            conn,
            session_id: sid,
            kind: "encrypted",
            state: "end",
            cipher: None,
            dialect: None,
            user: None,
            domain: None,
            workstation: None,
            messages: 4,
            bytes: 1,
            decrypted: false,
        })
    };
    s.events.push(end(1));
    s.sid = 2;
    s.call_ioctl(BIND_ONE_CONTEXT, 68)
        .call_ioctl(open_scm_q(), HANDLE_REPLY);
    s.call_ioctl(create_service_q(4, 25), FAULT_PDU);
    s.events.push(end(2));
    let mut inf = Inference::new(InferenceConfig::default());
    let mut out = vec![];
    for e in &s.events {
        inf.on_event(e, &mut out);
    }
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(out[0].with_upload);
    // The upload was consumed and the service session ended: nothing is left.
    assert!(inf.sessions.is_empty());
}

#[test]
fn windows_style_browsing_after_a_copy_does_not_alert() {
    // CREATEs with request contexts (MxAc 24, QFid 24, RqLs v2 56 → padded) answered with response
    // contexts (MxAc 32, QFid 56, RqLs v2 76), directory listings, info queries, closes.
    let mut s = Seq::new();
    s.tree_connect(r"\\fileserver.example.com\Departments")
        .upload(1 << 20)
        .upload(1 << 20)
        .upload(300_000)
        .close();
    let names = [
        "Finance",
        r"Finance\Reports",
        r"Finance\Reports\2026\Q3-summary-final.xlsx",
        r"Finance\Budget\x",
    ];
    for round in 0..20u32 {
        for (i, n) in names.iter().enumerate() {
            let name = 2 * n.len() as u32 + 2 * round;
            let ctx = [24 + 24, 24 + 24 + 56, 24, 0][i % 4];
            let resp = 152 + [32 + 56, 32 + 56 + 76, 32, 0][i % 4];
            s.pair(IOCTL_REQUEST_FIXED + ((name + 7) & !7) + ctx, resp);
            s.pair(96 + 2, 72 + 8 + 104 * (round + 1)); // QUERY_DIRECTORY
            s.pair(104, 72 + 40); // QUERY_INFO basic
            s.close();
        }
    }
    assert!(s.run(InferenceConfig::default()).is_empty());
}
