//! The SMB2 state machine over whole conversations from the lab captures, checked against each
//! capture's `.truth.json`. A tiny test-only reader pulls TCP payloads out of the (plain Ethernet /
//! IPv4, in order) lab pcaps so this test does not depend on the flow layer.

use psexec_sensor::event::{Event, FileAction, SmbFiles};
use psexec_sensor::flow::{ConnId, Direction, FlowCtx, StreamParser, Uid};
use psexec_sensor::sink::Sink;
use psexec_sensor::smb::{SmbParser, SmbShared};
use psexec_sensor::time::Ts;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

fn lab(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/lab").join(name)
}

struct Seg {
    ts: Ts,
    conn: ConnId,
    dir: Direction,
    seq: u32,
    syn: bool,
    payload: Vec<u8>,
}

/// Ethernet / IPv4 / TCP segments to or from port 445 (pcap, or pcapng with microsecond time).
fn segments(path: &PathBuf) -> Vec<Seg> {
    let data = std::fs::read(path).expect("capture");
    let mut frames: Vec<(Ts, u32, &[u8])> = Vec::new();
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        use pcap_parser::pcapng::Block;
        let (_, cap) = pcap_parser::pcapng::parse_pcapng(&data).expect("pcapng");
        for sec in &cap.sections {
            let mut links = Vec::new();
            for b in &sec.blocks {
                match b {
                    Block::InterfaceDescription(i) => links.push(u32::from(i.linktype.0 as u16)),
                    Block::EnhancedPacket(e) => {
                        let t = (u64::from(e.ts_high) << 32 | u64::from(e.ts_low)) * 1000;
                        let lt = links.get(e.if_id as usize).copied().unwrap_or(1);
                        frames.push((Ts(t), lt, &e.data[..(e.caplen as usize).min(e.data.len())]));
                    }
                    _ => {}
                }
            }
        }
    } else {
        let (_, cap) = pcap_parser::pcap::parse_pcap(&data).expect("pcap");
        let lt = cap.header.network.0 as u32;
        for b in cap.blocks {
            frames.push((Ts(u64::from(b.ts_sec) * 1_000_000_000 + u64::from(b.ts_usec) * 1000), lt, b.data));
        }
    }
    let mut out = Vec::new();
    for (ts, linktype, f) in frames {
        let ip = match linktype {
            1 => {
                let mut at = 12;
                while f.get(at..at + 2) == Some(&[0x81, 0x00]) || f.get(at..at + 2) == Some(&[0x88, 0xa8]) {
                    at += 4;
                }
                if f.get(at..at + 2) != Some(&[0x08, 0x00]) {
                    continue;
                }
                &f[at + 2..]
            }
            113 if f.get(14..16) == Some(&[0x08, 0x00]) => &f[16..],
            101 | 228 => f,
            _ => continue,
        };
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        // TSO captures carry IP total length 0 on oversized segments: trust the frame then.
        let raw_total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let total = if raw_total == 0 { ip.len() } else { raw_total.min(ip.len()) };
        if ip[9] != 6 || total < ihl + 20 {
            continue;
        }
        let src = IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
        let tcp = &ip[ihl..total];
        let sp = u16::from_be_bytes([tcp[0], tcp[1]]);
        let dp = u16::from_be_bytes([tcp[2], tcp[3]]);
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let doff = usize::from(tcp[12] >> 4) * 4;
        let syn = tcp[13] & 0x02 != 0;
        let (conn, dir) = if dp == 445 {
            (ConnId { orig_h: src, orig_p: sp, resp_h: dst, resp_p: dp }, Direction::ToServer)
        } else if sp == 445 {
            (ConnId { orig_h: dst, orig_p: dp, resp_h: src, resp_p: sp }, Direction::ToClient)
        } else {
            continue;
        };
        out.push(Seg { ts, conn, dir, seq, syn, payload: tcp[doff.min(tcp.len())..].to_vec() });
    }
    out
}

/// Runs every SMB connection of the capture through SmbParser, feeding each segment cut into
/// pieces of `piece` bytes (0 = whole segments). Returns all events.
fn run(path: &PathBuf, piece: usize) -> (Vec<Event>, Sink) {
    let mut parsers: HashMap<ConnId, (SmbParser, [Option<u32>; 2])> = HashMap::new();
    let mut sink = Sink::new();
    let mut events = Vec::new();
    let mut last = Ts(0);
    // One worker's shared SMB state: multichannel handles cross connections through it.
    let shared = SmbShared::default();
    for s in in_order(segments(path)) {
        last = s.ts;
        let (p, next) = parsers.entry(s.conn).or_insert_with(|| {
            let ctx = FlowCtx { conn: s.conn, uid: Uid::new(&s.conn, s.ts.0) };
            (SmbParser::new(ctx, shared.clone()), [None, None])
        });
        let i = s.dir.index();
        if s.syn {
            next[i] = Some(s.seq.wrapping_add(1));
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        let want = *next[i].get_or_insert(s.seq);
        let ahead = s.seq.wrapping_sub(want);
        let mut data = &s.payload[..];
        if ahead != 0 && ahead < 1 << 31 {
            p.gap(s.ts, s.dir, u64::from(ahead), &mut sink);
        } else if ahead != 0 {
            // retransmission: keep only what is new
            let old = want.wrapping_sub(s.seq) as usize;
            data = data.get(old..).unwrap_or(&[]);
        }
        let end = s.seq.wrapping_add(s.payload.len() as u32);
        if end.wrapping_sub(want) < 1 << 31 {
            next[i] = Some(end);
        }
        if piece == 0 {
            p.data(s.ts, s.dir, data, &mut sink);
        } else {
            for c in data.chunks(piece) {
                p.data(s.ts, s.dir, c, &mut sink);
            }
        }
        events.append(&mut sink.events);
    }
    let mut conns: Vec<_> = parsers.into_iter().collect();
    conns.sort_by_key(|(c, _)| c.orig_p);
    for (_, (mut p, _)) in conns {
        p.close(last, &mut sink);
    }
    events.append(&mut sink.events);
    (events, sink)
}

/// Puts segments that arrived ahead of a hole after the segment that fills it (a small window;
/// the public captures have a few out-of-order segments, the lab ones none).
fn in_order(segs: Vec<Seg>) -> Vec<Seg> {
    const WINDOW: usize = 64;
    let mut out: Vec<Seg> = Vec::with_capacity(segs.len());
    let mut next: HashMap<(ConnId, usize), u32> = HashMap::new();
    let mut held: Vec<Seg> = Vec::new();
    let release = |s: Seg, out: &mut Vec<Seg>, next: &mut HashMap<(ConnId, usize), u32>| {
        let k = (s.conn, s.dir.index());
        let end = s.seq.wrapping_add(s.payload.len() as u32).wrapping_add(u32::from(s.syn));
        let e = next.entry(k).or_insert(end);
        if end.wrapping_sub(*e) < 1 << 31 {
            *e = end;
        }
        out.push(s);
    };
    for s in segs {
        let k = (s.conn, s.dir.index());
        let ahead = next.get(&k).is_some_and(|&n| s.seq.wrapping_sub(n) != 0 && s.seq.wrapping_sub(n) < 1 << 31);
        if ahead && !s.payload.is_empty() && held.len() < WINDOW {
            held.push(s);
            continue;
        }
        release(s, &mut out, &mut next);
        loop {
            let pos = held.iter().position(|h| next.get(&(h.conn, h.dir.index())).is_some_and(|&n| h.seq.wrapping_sub(n) >= 1 << 31 || h.seq == n));
            match pos {
                Some(i) => {
                    let h = held.remove(i);
                    release(h, &mut out, &mut next);
                }
                None => break,
            }
        }
    }
    held.sort_by_key(|h| h.ts);
    out.extend(held);
    out
}

fn truth(name: &str) -> Value {
    truth_at(&lab(&format!("{name}.truth.json")))
}

fn truth_at(p: &PathBuf) -> Value {
    let t = std::fs::read_to_string(p).expect("truth");
    serde_json::from_str(&t).expect("truth json")
}

fn files(ev: &[Event]) -> Vec<&SmbFiles> {
    ev.iter().filter_map(|e| if let Event::SmbFiles(f) = e { Some(f) } else { None }).collect()
}

fn shares(ev: &[Event]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| if let Event::SmbMapping(m) = e { Some(m.share.to_ascii_uppercase()) } else { None })
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
        assert!(shares.contains(&s), "{capture}: share {s} not in {shares:?}");
    }
    let fs = files(ev);
    for p in e["pipes"].as_array().unwrap() {
        let p = p.as_str().unwrap();
        assert!(
            fs.iter().any(|f| f.action == Some(FileAction::PipeOpen) && f.name.eq_ignore_ascii_case(p) && f.status == "STATUS_SUCCESS"),
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
        assert!(!writes.is_empty(), "{capture}: FILE_WRITE {share}\\{name} missing");
        // The truth counts bytes per file; a file written through several handles sums them.
        let total: u64 = writes.iter().filter_map(|w| w.bytes_written).sum();
        assert_eq!(Some(total), u["bytes"].as_u64(), "{capture}: bytes of {name}");
        if let Some(h) = u["sha256"].as_str() {
            assert!(writes.iter().any(|w| w.sha256.as_deref() == Some(h) && w.hash_complete == Some(true)), "{capture}: sha256 of {name}");
        }
        assert!(writes.iter().all(|w| w.status == "STATUS_SUCCESS"), "{capture}: status of {name}");
    }
}

fn auth_users(ev: &[Event]) -> Vec<(Option<String>, &'static str, String)> {
    ev.iter()
        .filter_map(|e| if let Event::SmbAuth(a) = e { Some((a.user.clone(), a.auth, a.status.clone())) } else { None })
        .collect()
}

#[test]
fn a_psexec_default_matches_truth() {
    let cap = "a_psexec_default.pcap";
    let (ev, sink) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    let fs = files(&ev);
    let upload = truth(cap)["expect"]["uploads"][0]["name"].as_str().unwrap().to_string();
    let w = fs.iter().find(|f| f.action == Some(FileAction::FileWrite) && f.name == upload).unwrap();
    assert_eq!(w.pe, Some(true));
    assert_eq!(w.path, "\\\\192.0.2.20\\ADMIN$");
    assert!(fs.iter().any(|f| f.action == Some(FileAction::FileDelete) && f.name == upload), "FILE_DELETE of {upload}");
    let auths = auth_users(&ev);
    assert!(auths.contains(&(Some("admin".into()), "ntlmssp", "STATUS_SUCCESS".into())), "{auths:?}");
    assert!(ev.iter().any(|e| matches!(e, Event::SmbAuth(a) if a.dialect == "SMB 3.1.1")));
    // IPC$ is a pipe share, ADMIN$ a disk share
    for e in &ev {
        if let Event::SmbMapping(m) = e {
            let want = if m.share == "IPC$" { "PIPE" } else { "DISK" };
            assert_eq!(m.share_type, want, "{}", m.path);
        }
    }
    assert_eq!(sink.counters.get("anomaly.malformed"), 0);
    assert_eq!(sink.counters.get("anomaly.gap"), 0);
    // the pipes' bytes went to their DCE-RPC conversations both ways
    assert!(sink.counters.get("smb.pipe_bytes_to_server") > 0 && sink.counters.get("smb.pipe_bytes_to_client") > 0, "{:?}", sink.counters);
}

#[test]
fn a_psexec_default_cut_at_every_few_bytes() {
    let cap = "a_psexec_default.pcap";
    let (whole, _) = run(&lab(cap), 0);
    for piece in [1usize, 3, 7, 100] {
        let (ev, _) = run(&lab(cap), piece);
        check_truth(cap, &ev);
        let f = |ev: &[Event]| files(ev).iter().map(|f| (f.action, f.name.clone(), f.sha256.clone())).collect::<Vec<_>>();
        assert_eq!(f(&ev), f(&whole), "piece {piece}");
    }
}

#[test]
fn k1_large_upload_streams() {
    let cap = "k1_psexec_large_upload.pcap";
    let (ev, sink) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    // the 1 MiB writes streamed rather than buffered
    assert!(sink.counters.get("smb2.streamed_messages") >= 8, "{:?}", sink.counters);
    let w = files(&ev).into_iter().find(|f| f.action == Some(FileAction::FileWrite) && f.name == "bigsvc.exe").unwrap();
    assert_eq!(w.write_count, Some(9));
}

#[test]
fn f_benign_admin_upload_smbclient_compounds() {
    let cap = "f_benign_admin_upload.pcap";
    let (ev, _) = run(&lab(cap), 0);
    check_truth(cap, &ev);
    assert!(!files(&ev).iter().any(|f| f.action == Some(FileAction::PipeOpen)));
}

#[test]
fn j1_encrypted_session_is_visible_as_such() {
    let cap = "j1_psexec_opportunistic_enc.pcap";
    let (ev, _) = run(&lab(cap), 0);
    let auths = auth_users(&ev);
    assert!(auths.iter().any(|(u, a, s)| u.as_deref() == Some("admin") && *a == "ntlmssp" && s == "STATUS_SUCCESS"), "{auths:?}");
    let vis: Vec<_> = ev.iter().filter_map(|e| if let Event::SmbVisibility(v) = e { Some(v) } else { None }).collect();
    let start = vis.iter().find(|v| v.state == "start" && v.kind == "encrypted").expect("visibility start");
    assert_eq!(start.user.as_deref(), Some("admin"));
    assert!(start.cipher.is_some());
    let end = vis.iter().find(|v| v.state == "end").expect("visibility end");
    let opaque: Vec<_> = ev.iter().filter_map(|e| if let Event::SmbOpaque(o) = e { Some(o) } else { None }).collect();
    assert_eq!(end.messages, opaque.len() as u64);
    assert!(!opaque.is_empty());
    for o in &opaque {
        // measured on the lab captures: the wire size is the plaintext size plus the 52-byte header
        assert_eq!(o.wire_size, o.original_size + 52, "{o:?}");
        assert_eq!(o.session_id, start.session_id);
    }
    // impacket's client nonces are ASCII letters
    assert!(opaque.iter().filter(|o| o.to_server).all(|o| o.nonce_form == "ascii-letters"));
    // Samba's are counters
    assert!(opaque.iter().filter(|o| !o.to_server).all(|o| o.nonce_form == "counter"));
    // the upload is one big encrypted client message: 64 + 48 + the truth's byte count
    let bytes = truth(cap)["expect"]["uploads"][0]["bytes"].as_u64().unwrap() as u32;
    assert!(opaque.iter().any(|o| o.to_server && o.original_size == 64 + 48 + bytes), "no upload-sized message");
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
        let (ev, sink) = run(&path, 0);
        assert_eq!(sink.counters.get("anomaly.malformed"), 0, "{name}");
        if sink.counters.get("smb2.commands") == 0 {
            assert!(sink.counters.get("smb1.messages") > 0, "{name}: neither SMB2 nor SMB1");
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
            let (ev, sink) = run(&p, 0);
            assert_eq!(sink.counters.get("anomaly.malformed"), 0, "{name}");
            let t = truth_at(&truth_path);
            if sink.counters.get("smb2.commands") == 0 || t["visibility"] != "cleartext" {
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
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/public/zeek/kerberos445_auth.pcapng");
    let (ev, _) = run(&p, 0);
    let auths = auth_users(&ev);
    assert!(!auths.is_empty());
    assert!(auths.iter().any(|(u, a, s)| u.is_none() && *a == "kerberos" && s == "STATUS_SUCCESS"), "{auths:?}");
}

/// Every DCE-RPC byte tshark finds on the lab captures' pipes reaches a pipe conversation, in each
/// direction (skipped when tshark is not installed).
#[test]
fn pipe_bytes_match_tshark() {
    for cap in ["a_psexec_default.pcap", "c_smbexec.pcap", "e_services_create_start.pcap", "h_benign_svc_query.pcap", "k1_psexec_large_upload.pcap"] {
        let path = lab(cap);
        let Ok(out) = std::process::Command::new("tshark")
            .args(["-r", path.to_str().unwrap(), "-Y", "dcerpc", "-T", "fields", "-e", "tcp.srcport", "-e", "dcerpc.cn_frag_len"])
            .output()
        else {
            eprintln!("tshark not found: skipped");
            return;
        };
        let (mut to_server, mut to_client) = (0u64, 0u64);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut it = line.split('\t');
            let port = it.next().unwrap_or("");
            let total: u64 = it.next().unwrap_or("").split(',').filter_map(|v| v.parse::<u64>().ok()).sum();
            if port == "445" {
                to_client += total;
            } else {
                to_server += total;
            }
        }
        assert!(to_server > 0, "{cap}: tshark saw no DCE-RPC");
        let (_, sink) = run(&path, 0);
        assert_eq!(sink.counters.get("smb.pipe_bytes_to_server"), to_server, "{cap}");
        assert_eq!(sink.counters.get("smb.pipe_bytes_to_client"), to_client, "{cap}");
    }
}

/// `SMB2_LAB_DUMP=capture.pcap cargo test --test smb2_lab dump -- --nocapture` prints the events.
#[test]
fn dump() {
    if let Ok(cap) = std::env::var("SMB2_LAB_DUMP") {
        let p = if cap.starts_with('/') { PathBuf::from(&cap) } else { lab(&cap) };
        let (ev, sink) = run(&p, 0);
        for e in ev {
            println!("{}", serde_json::to_string(&e).unwrap());
        }
        println!("{:?}", sink.counters);
    }
}
