//! The size inference (`detect::inferred`) over the capture corpus, without the SMB layer: a small
//! test-only walker turns each capture into the events the SMB layer emits for messages it cannot
//! read. For encrypted messages (0xFD) it reads the transform header (OriginalMessageSize,
//! SessionId, nonce); for cleartext SMB2 messages (0xFE) after SESSION_SETUP it takes the NetBIOS
//! length as the plaintext size, i.e. measures cleartext captures as if they were encrypted (the
//! issue measured both to be the same message for message). Expectations come from the captures'
//! `.truth.json` files.
//!
//! Walker limits (fine for this corpus, checked by the tests): classic pcap only (the one pcapng
//! in the corpus is skipped), Ethernet/IPv4(/VLAN), TCP port 445, segments in order (a
//! retransmission is trimmed, a hole resynchronises on the next NetBIOS+SMB header).

use psexec_sensor::detect::inferred::{
    Inference, InferenceConfig, InferredConfidence, InferredTechnique,
};
use psexec_sensor::event::{ConnFields, Event, SmbAuth, SmbOpaque, SmbVersion};
use psexec_sensor::flow::Uid;
use psexec_sensor::time::Ts;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures")
}

#[derive(Default)]
struct Stream {
    next_seq: Option<u32>,
    buf: Vec<u8>,
}

struct Flow {
    conn: ConnFields,
    dirs: [Stream; 2],
}

fn u16le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64le(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// What a sniffer without keys learns from a capture, as events. None when the file is not a
/// classic Ethernet pcap.
fn opaque_events(path: &Path) -> Option<Vec<Event>> {
    let raw = std::fs::read(path).ok()?;
    let data = if path.extension().is_some_and(|e| e == "gz") {
        let mut d = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut d).ok()?;
        d
    } else {
        raw
    };
    let (mut rest, header) = pcap_parser::parse_pcap_header(&data).ok()?;
    if header.network.0 != 1 {
        return None;
    }
    let nanos = header.is_nanosecond_precision();
    let mut flows: HashMap<(Ipv4Addr, u16, Ipv4Addr), Flow> = HashMap::new();
    let mut events = Vec::new();
    while !rest.is_empty() {
        let Ok((r, frame)) = pcap_parser::parse_pcap_frame(rest) else {
            break;
        };
        rest = r;
        let sub = if nanos {
            u64::from(frame.ts_usec)
        } else {
            u64::from(frame.ts_usec) * 1000
        };
        let ts = Ts(u64::from(frame.ts_sec) * 1_000_000_000 + sub);
        let _ = packet(frame.data, ts, &mut flows, &mut events);
    }
    Some(events)
}

fn packet(
    eth: &[u8],
    ts: Ts,
    flows: &mut HashMap<(Ipv4Addr, u16, Ipv4Addr), Flow>,
    events: &mut Vec<Event>,
) -> Option<()> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes(eth.get(off..off + 2)?.try_into().ok()?);
    if ethertype == 0x8100 {
        off += 4;
        ethertype = u16::from_be_bytes(eth.get(off..off + 2)?.try_into().ok()?);
    }
    if ethertype != 0x0800 {
        return None;
    }
    let ip = eth.get(off + 2..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes(ip.get(2..4)?.try_into().ok()?));
    if *ip.get(9)? != 6 {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let tcp = ip.get(ihl..total.min(ip.len()))?;
    let sport = u16::from_be_bytes(tcp.get(0..2)?.try_into().ok()?);
    let dport = u16::from_be_bytes(tcp.get(2..4)?.try_into().ok()?);
    let seq = u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?);
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    let payload = tcp.get(doff..)?;
    let (client, cport, server, to_server) = if dport == 445 {
        (src, sport, dst, true)
    } else if sport == 445 {
        (dst, dport, src, false)
    } else {
        return None;
    };
    let n = flows.len() as u64;
    let flow = flows
        .entry((client, cport, server))
        .or_insert_with(|| Flow {
            conn: ConnFields {
                ts,
                uid: Uid(n + 1),
                orig_h: IpAddr::V4(client),
                orig_p: cport,
                resp_h: IpAddr::V4(server),
                resp_p: 445,
            },
            dirs: Default::default(),
        });
    let st = &mut flow.dirs[usize::from(!to_server)];
    if flags & 0x02 != 0 {
        st.next_seq = Some(seq.wrapping_add(1));
        return Some(());
    }
    if payload.is_empty() {
        return Some(());
    }
    match st.next_seq {
        Some(next) if seq == next => st.buf.extend_from_slice(payload),
        Some(next) if (next.wrapping_sub(seq) as i32) > 0 => {
            // Retransmission: keep only what is new.
            let skip = next.wrapping_sub(seq) as usize;
            if skip < payload.len() {
                st.buf.extend_from_slice(&payload[skip..]);
            }
        }
        _ => {
            // First data seen (midstream) or a hole: start over here and resynchronise.
            st.buf.clear();
            st.buf.extend_from_slice(payload);
        }
    }
    let end = seq.wrapping_add(payload.len() as u32);
    st.next_seq = Some(match st.next_seq {
        Some(next) if (end.wrapping_sub(next) as i32) < 0 => next,
        _ => end,
    });
    let conn = ConnFields { ts, ..flow.conn };
    loop {
        let st = &mut flow.dirs[usize::from(!to_server)];
        if st.buf.len() < 8 {
            break;
        }
        let smb = |b: &[u8]| b.len() >= 4 && b[1..4] == *b"SMB" && matches!(b[0], 0xfc..=0xff);
        if st.buf[0] != 0 || !smb(&st.buf[4..]) {
            match (1..st.buf.len().saturating_sub(7))
                .find(|&i| st.buf[i] == 0 && smb(&st.buf[i + 4..]))
            {
                Some(i) => {
                    st.buf.drain(..i);
                }
                None => {
                    let keep = st.buf.len().saturating_sub(7);
                    st.buf.drain(..keep);
                    break;
                }
            }
        }
        let len =
            (usize::from(st.buf[1]) << 16) | (usize::from(st.buf[2]) << 8) | usize::from(st.buf[3]);
        if st.buf.len() < 4 + len {
            break;
        }
        let msg: Vec<u8> = st.buf.drain(..4 + len).skip(4).collect();
        smb_message(&msg, conn, to_server, events);
    }
    Some(())
}

fn nonce_form(nonce: &[u8]) -> &'static str {
    if nonce.len() >= 11 && nonce[..11].iter().all(u8::is_ascii_alphabetic) {
        "ascii-letters"
    } else if nonce.len() >= 11 && nonce[6..11].iter().all(|&b| b == 0) {
        "counter"
    } else {
        "random"
    }
}

fn smb_message(
    msg: &[u8],
    conn: ConnFields,
    to_server: bool,
    events: &mut Vec<Event>,
) -> Option<()> {
    let len = u32::try_from(msg.len()).ok()?;
    match msg.first()? {
        0xfd => {
            events.push(Event::SmbOpaque(SmbOpaque {
                conn,
                session_id: u64le(msg, 44)?,
                to_server,
                original_size: u32le(msg, 36)?,
                wire_size: len,
                kind: "encrypted",
                nonce_form: nonce_form(msg.get(20..36)?),
            }));
        }
        0xfe => {
            let cmd = u16le(msg, 12)?;
            let sid = u64le(msg, 40)?;
            if cmd == 1 && to_server {
                if let Some(auth) = ntlm_auth(msg) {
                    events.push(Event::SmbAuth(SmbAuth {
                        conn,
                        session_id: Some(sid),
                        user: Some(auth.0),
                        domain: Some(auth.1),
                        workstation: Some(auth.2),
                        auth: "ntlmssp",
                        dialect: "<unknown>".into(),
                        status: "STATUS_SUCCESS".into(),
                        smb_version: SmbVersion::Smb2,
                        user_source: None,
                        ticket: None,
                    }));
                }
            }
            if cmd >= 2 && sid != 0 {
                // Cleartext measured as if encrypted: the whole NetBIOS message (compound chains
                // included) is what OriginalMessageSize would say. There is no nonce.
                events.push(Event::SmbOpaque(SmbOpaque {
                    conn,
                    session_id: sid,
                    to_server,
                    original_size: len,
                    wire_size: len + 52,
                    kind: "encrypted",
                    nonce_form: "random",
                }));
            }
        }
        _ => {}
    }
    Some(())
}

/// User, domain and workstation of an NTLMSSP AUTHENTICATE message anywhere in the message.
fn ntlm_auth(msg: &[u8]) -> Option<(String, String, String)> {
    let at = msg.windows(8).position(|w| w == b"NTLMSSP\0")?;
    let m = msg.get(at..)?;
    if u32le(m, 8)? != 3 {
        return None;
    }
    let field = |off: usize| -> Option<String> {
        let l = usize::from(u16le(m, off)?);
        let o = usize::try_from(u32le(m, off + 4)?).ok()?;
        let b = m.get(o..o.checked_add(l)?)?;
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(String::from_utf16_lossy(&units))
    };
    Some((field(36)?, field(28)?, field(44)?))
}

fn infer(events: &[Event]) -> Vec<InferredTechnique> {
    let mut inf = Inference::new(InferenceConfig::default());
    let mut out = vec![];
    for e in events {
        inf.on_event(e, &mut out);
    }
    inf.finish(&mut out);
    out
}

fn truth(capture: &Path) -> serde_json::Value {
    let mut p = capture.as_os_str().to_owned();
    p.push(".truth.json");
    serde_json::from_slice(&std::fs::read(&p).expect("truth file")).expect("truth json")
}

fn opaque_count(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::SmbOpaque(_)))
        .count()
}

fn run(rel: &str) -> (Vec<Event>, Vec<InferredTechnique>, serde_json::Value) {
    let path = root().join(rel);
    let events =
        opaque_events(&path).unwrap_or_else(|| panic!("{rel}: not a classic Ethernet pcap"));
    let out = infer(&events);
    (events, out, truth(&path))
}

fn ip(v: &serde_json::Value) -> IpAddr {
    v.as_str().expect("ip in truth").parse().expect("ip")
}

#[test]
fn walker_reads_transform_headers_like_tshark() {
    // tshark -r j1 -Y smb2.header.transform.msg_size: 58 messages, 28 of them from the client, the upload
    // is 56432 bytes (64 + 48 + 56320).
    let (events, _, _) = run("lab/j1_psexec_opportunistic_enc.pcap");
    let sizes: Vec<(bool, u32, &str)> = events
        .iter()
        .filter_map(|e| match e {
            Event::SmbOpaque(o) => Some((o.to_server, o.original_size, o.nonce_form)),
            _ => None,
        })
        .collect();
    assert_eq!(sizes.len(), 58);
    assert_eq!(sizes.iter().filter(|s| s.0).count(), 28);
    assert!(sizes.iter().filter(|s| s.0).all(|s| s.2 == "ascii-letters"));
    assert!(sizes.iter().any(|s| s.0 && s.1 == 64 + 48 + 56_320));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::SmbAuth(a) if a.user.as_deref() == Some("admin"))));
}

#[test]
fn j1_encrypted_psexec_is_inferred() {
    let (_, out, t) = run("lab/j1_psexec_opportunistic_enc.pcap");
    assert_eq!(out.len(), 1, "{out:#?}");
    let x = &out[0];
    assert_eq!(x.src, ip(&t["attacker_ip"]));
    assert_eq!(x.dst, ip(&t["victim_ip"]));
    assert!(x.with_upload);
    assert_eq!(x.confidence, InferredConfidence::Medium);
    let truth_bytes = t["expect"]["uploads"][0]["bytes"]
        .as_u64()
        .expect("upload bytes");
    let size = x.upload_size.expect("upload size");
    assert_eq!(size, truth_bytes);
    assert!(x.upload_size_exact);
    assert_eq!(x.tool_hint, Some("impacket"));
    assert_eq!(x.user.as_deref(), Some("admin"));
    assert!(x.reason.contains("inferred from encrypted SMB3"));
    // The DCE-RPC fragment lengths tshark shows after decrypting j1 with the lab password
    // (`-o ntlmssp.nt_password:… -e dcerpc.cn_frag_len`): svcctl bind 72 / bind_ack 68,
    // OpenSCManagerW 104 / 48, OpenServiceW 72 / 48, CreateServiceW 204 / fault 32.
    let pdus = |role: &str| -> Vec<u32> {
        x.evidence
            .iter()
            .filter(|e| e.role == role)
            .filter_map(|e| e.inner)
            .collect()
    };
    assert_eq!(pdus("bind"), vec![72, 68]);
    assert_eq!(pdus("handle-call"), vec![104, 48, 72, 48]);
    assert_eq!(pdus("create-call"), vec![204, 32]);
    assert_eq!(pdus("upload"), vec![56_320]);
    // …carried by WRITE (112 + PDU) and READ responses (80 + PDU), as tshark shows.
    let create: Vec<u32> = x
        .evidence
        .iter()
        .filter(|e| e.role == "create-call")
        .map(|e| e.size)
        .collect();
    assert_eq!(create, vec![316, 80, 113, 112]);
}

#[test]
fn encrypted_benign_captures_raise_nothing() {
    for rel in [
        "lab/j3_benign_upload_enc.pcap",
        "public/zeek/smb3.pcap",
        "public/zeek/smb311.pcap",
        "public/suricata-verify/smb3-02-midstream/input.pcap",
    ] {
        let (events, out, t) = run(rel);
        assert_eq!(t["verdict"], "negative", "{rel}");
        assert!(
            opaque_count(&events) >= 20,
            "{rel}: walker saw only {} opaque messages",
            opaque_count(&events)
        );
        assert!(out.is_empty(), "{rel}: {out:#?}");
    }
}

#[test]
fn cleartext_psexec_measured_as_encrypted_is_inferred_with_its_upload() {
    for rel in [
        "lab/a_psexec_default.pcap",
        "lab/k1_psexec_large_upload.pcap",
    ] {
        let (_, out, t) = run(rel);
        assert_eq!(out.len(), 1, "{rel}: {out:#?}");
        let x = &out[0];
        assert_eq!(x.src, ip(&t["attacker_ip"]), "{rel}");
        assert_eq!(x.dst, ip(&t["victim_ip"]), "{rel}");
        assert!(x.with_upload, "{rel}");
        let truth_bytes: u64 = t["expect"]["uploads"]
            .as_array()
            .expect("uploads")
            .iter()
            .filter_map(|u| u["bytes"].as_u64())
            .sum();
        let size = x.upload_size.expect("upload size");
        assert!(
            (truth_bytes..=truth_bytes + 512).contains(&size),
            "{rel}: {size} vs {truth_bytes}"
        );
    }
}

#[test]
fn cleartext_service_creation_without_upload_is_low_confidence() {
    for rel in ["lab/e_services_create_start.pcap", "lab/c_smbexec.pcap"] {
        let (_, out, t) = run(rel);
        assert_eq!(t["verdict"], "positive", "{rel}");
        assert!(!out.is_empty(), "{rel}: nothing inferred");
        for x in &out {
            assert!(!x.with_upload, "{rel}");
            assert_eq!(x.confidence, InferredConfidence::Low, "{rel}");
            assert_eq!(x.src, ip(&t["attacker_ip"]), "{rel}");
        }
    }
}

/// Every negative capture of the corpus the walker can read (cleartext ones measured as if
/// encrypted) stays silent.
#[test]
fn no_negative_capture_in_the_corpus_alerts() {
    let mut checked = 0;
    let mut stack = vec![root()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("captures dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.to_string_lossy().to_string();
            if name.ends_with(".json")
                || name.ends_with(".yaml")
                || name.ends_with(".log")
                || name.ends_with(".md")
            {
                continue;
            }
            if !Path::new(&format!("{name}.truth.json")).exists()
                || truth(&p)["verdict"] != "negative"
            {
                continue;
            }
            // pcapng and gzip files are outside the walker (noted above).
            let Some(events) = opaque_events(&p) else {
                continue;
            };
            let out = infer(&events);
            assert!(out.is_empty(), "{name}: {out:#?}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} negative captures read");
}

/// Sysinternals PsExec from Windows (SMB 2.1, measured as if encrypted): pipelined 64 KiB writes
/// plus a tail, binds with WRITE+READ and calls with IOCTL transceive, the upload on one connection
/// and the service on another.
#[test]
fn windows_psexec_measured_as_encrypted_is_inferred_with_its_upload() {
    for rel in [
        "public/401trg/20171220_smb_psexec_add_user.pcap",
        "public/suricata-verify/smb2-07/20171220_smb_psexec_add_user.pcap",
    ] {
        let (_, out, t) = run(rel);
        assert_eq!(t["tool"], "sysinternals-psexec", "{rel}");
        let with: Vec<_> = out.iter().filter(|x| x.with_upload).collect();
        assert_eq!(with.len(), 1, "{rel}: {out:#?}");
        let truth_bytes = t["expect"]["uploads"][0]["bytes"]
            .as_u64()
            .expect("upload bytes");
        let size = with[0].upload_size.expect("upload size");
        // Pipelined 64 KiB writes, a 12 KiB one and a 2,208-byte tail.
        assert_eq!(size, truth_bytes, "{rel}");
        assert_eq!(with[0].tool_hint, None, "{rel}");
        assert!(
            with[0].evidence.iter().any(|e| e.what == "ioctl request"),
            "{rel}"
        );
    }
    // The same tool's service creation in a capture that starts after the upload.
    let (_, out, t) = run("public/suricata-verify/dcerpc-smb-test-01/input.pcap");
    assert_eq!(t["verdict"], "positive");
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(!out[0].with_upload);
    assert_eq!(out[0].confidence, InferredConfidence::Low);
}

/// A survey tool, not a check: `INFER_DIR=dir cargo test --test it inferred_captures::survey_directory
/// -- --ignored --nocapture` prints what is inferred for every classic pcap (with a `.truth.json`)
/// in `dir` (used for the elcabezzonn table in INFERENCE.md, after `editcap -F pcap`).
#[test]
#[ignore]
fn survey_directory() {
    let Ok(dir) = std::env::var("INFER_DIR").map(PathBuf::from) else {
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let n = p.to_string_lossy().to_string();
        if n.ends_with(".json") {
            continue;
        }
        let Some(ev) = opaque_events(&p) else {
            println!("== {n}: unreadable");
            continue;
        };
        let out = infer(&ev);
        let t = truth(&p);
        println!(
            "== {n} opaque={} verdict={} tool={}",
            opaque_count(&ev),
            t["verdict"],
            t["tool"]
        );
        for x in &out {
            println!(
                "   {} {:?} {:?} {}",
                x.variant, x.upload_size, x.tool_hint, x.reason
            );
        }
    }
}

/// The same inference fed by the real pipeline (capture → flow → SMB layer → events), so the
/// `smb_opaque` / `smb_auth` / `smb_visibility` contract between the layers is checked too.
fn pipeline_events(rel: &str) -> Vec<Event> {
    use psexec_sensor::pipeline::{run_file, Collect, Engine, EngineConfig};
    let mut engine = Engine::new(EngineConfig::default());
    let mut collect = Collect::default();
    let mut index = 0;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let outcome = run_file(
        &mut engine,
        &root().join(rel),
        &mut index,
        progress,
        &mut collect,
        &mut |_| {},
    );
    assert!(outcome.error.is_none(), "{rel}: {:?}", outcome.error);
    collect.events.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn end_to_end_j1_through_the_smb_layer() {
    let events = pipeline_events("lab/j1_psexec_opportunistic_enc.pcap");
    // The SMB layer sees the same 58 transform headers as the walker, with the same sizes.
    let walker =
        opaque_events(&root().join("lab/j1_psexec_opportunistic_enc.pcap")).expect("walker");
    let sizes = |ev: &[Event]| -> Vec<(bool, u32, &'static str)> {
        ev.iter()
            .filter_map(|e| match e {
                // The walker's counter/random split is rough; the client's letters are not.
                Event::SmbOpaque(o) => Some((
                    o.to_server,
                    o.original_size,
                    if o.to_server { o.nonce_form } else { "" },
                )),
                _ => None,
            })
            .collect()
    };
    assert_eq!(sizes(&events), sizes(&walker));
    let out = infer(&events);
    assert_eq!(out.len(), 1, "{out:#?}");
    let t = truth(&root().join("lab/j1_psexec_opportunistic_enc.pcap"));
    assert_eq!(out[0].src, ip(&t["attacker_ip"]));
    assert!(out[0].with_upload);
    assert_eq!(out[0].upload_size, Some(56_320));
    assert_eq!(out[0].tool_hint, Some("impacket"));
    assert_eq!(out[0].user.as_deref(), Some("admin"));
}

#[test]
fn end_to_end_encrypted_negatives_through_the_smb_layer() {
    for rel in [
        "lab/j3_benign_upload_enc.pcap",
        "public/zeek/smb3.pcap",
        "public/zeek/smb311.pcap",
        "public/suricata-verify/smb3-02-midstream/input.pcap",
    ] {
        let events = pipeline_events(rel);
        assert!(
            opaque_count(&events) >= 20,
            "{rel}: {} opaque",
            opaque_count(&events)
        );
        let out = infer(&events);
        assert!(out.is_empty(), "{rel}: {out:#?}");
    }
}

/// Live: a session that goes quiet without an end (the capture stops seeing it, the sensor keeps
/// running) completes on the clock, not at the next encrypted message or at stop.
#[test]
fn idle_sessions_complete_on_the_clock() {
    let (events, whole, _) = run("lab/j1_psexec_opportunistic_enc.pcap");
    assert_eq!(whole.len(), 1);
    let mut inf = Inference::new(InferenceConfig::default());
    let mut out = vec![];
    let mut last = psexec_sensor::time::Ts(0);
    for e in events
        .iter()
        .filter(|e| !matches!(e, Event::SmbVisibility(v) if v.state == "end"))
    {
        if let Some(c) = e.conn() {
            last = last.max(c.ts);
        }
        inf.on_event(e, &mut out);
    }
    let held = inf.sessions();
    assert!(held > 0, "the session is still held without its end");
    // Not yet idle: nothing changes.
    inf.tick(last.saturating_add_secs(1), &mut out);
    assert_eq!(inf.sessions(), held);
    let before = out.len();
    inf.tick(
        last.saturating_add_secs(InferenceConfig::default().session_idle_secs + 61),
        &mut out,
    );
    assert_eq!(
        inf.sessions(),
        0,
        "idle sessions are completed and dropped on the clock"
    );
    assert_eq!(
        out.len(),
        1,
        "the technique comes out once, by the tick or before it ({before} before)"
    );
    assert_eq!(
        (out[0].src, out[0].dst, out[0].upload_size),
        (whole[0].src, whole[0].dst, whole[0].upload_size)
    );
}
