//! Caps under load: generated captures that try to make the sensor grow without bound (a million
//! SYN-only flows; huge declared lengths at every layer) must be read to the end with peak RSS
//! under a documented bound (README.md, "Caps"), and the caps must say they were reached.
//!
//! Peak RSS is the child's maximum resident set size, measured with `/usr/bin/time -f %M` when it
//! exists, else by polling `/proc/<pid>/status` VmHWM (a high-water mark, so polling only misses
//! growth in the last few milliseconds).

use psexec_sensor::dcerpc::ndr::uuid_bytes_le;
use psexec_sensor::decode::build;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

/// Peak RSS bound for a million SYN-only flows: MAX_FLOWS (131,072) flows of state plus the
/// reader's buffers and the binary. Documented in README.md, "Caps".
const MILLION_FLOWS_RSS_BOUND_KB: u64 = 256 * 1024;
/// Peak RSS bound for the huge-lengths capture: nothing may be sized by a declared length, so this
/// is a small process plus the bounded buffers (SMB message 256 KiB, DCE-RPC PDU 64 KiB, stubs
/// 1 MiB). Documented in README.md, "Caps".
const HUGE_LENGTHS_RSS_BOUND_KB: u64 = 64 * 1024;

fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("caps-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

struct PcapWriter<W: Write> {
    w: W,
    ts_us: u64,
}

impl<W: Write> PcapWriter<W> {
    fn new(mut w: W) -> PcapWriter<W> {
        w.write_all(&[
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ])
        .unwrap();
        PcapWriter {
            w,
            ts_us: 1_700_000_000_000_000,
        }
    }
    fn frame(&mut self, data: &[u8]) {
        self.ts_us += 10;
        let mut h = Vec::with_capacity(16);
        h.extend_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        h.extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.w.write_all(&h).unwrap();
        self.w.write_all(data).unwrap();
    }
    /// A raw record header with any caplen (for the absurd-length record).
    fn raw_record_header(&mut self, caplen: u32, origlen: u32) {
        self.ts_us += 10;
        let mut h = Vec::new();
        h.extend_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        h.extend_from_slice(&caplen.to_le_bytes());
        h.extend_from_slice(&origlen.to_le_bytes());
        self.w.write_all(&h).unwrap();
    }
}

#[allow(clippy::too_many_arguments)] // one argument per TCP/IP header field a case sets
fn tcp4(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    build::ether(
        0x0800,
        &build::ipv4(
            src,
            dst,
            6,
            &build::tcp(sport, dport, seq, ack, flags, payload),
        ),
    )
}

struct Run {
    status: std::process::ExitStatus,
    peak_rss_kb: u64,
    stderr: String,
    events: String,
}

/// `psexec-sensor read FILE --events EVENTS`, measuring the child's peak RSS.
fn read_measured(cap: &Path, dir: &Path) -> Run {
    let events = dir.join("events.json");
    let time_out = dir.join("time.txt");
    let use_time = Path::new("/usr/bin/time").exists();
    let mut cmd = if use_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&time_out).arg(BIN);
        c
    } else {
        Command::new(BIN)
    };
    cmd.arg("read")
        .arg(cap)
        .arg("--events")
        .arg(&events)
        .arg("--alerts")
        .arg(dir.join("alerts.json"));
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("sensor runs");
    let mut hwm = 0u64;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !use_time {
            if let Ok(st) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
                if let Some(l) = st.lines().find(|l| l.starts_with("VmHWM:")) {
                    let kb: u64 = l
                        .split_whitespace()
                        .nth(1)
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(0);
                    hwm = hwm.max(kb);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let peak_rss_kb = if use_time {
        let t = std::fs::read_to_string(&time_out).unwrap();
        t.lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back()
            .expect("time's %M")
    } else {
        hwm
    };
    Run {
        status,
        peak_rss_kb,
        stderr,
        events: std::fs::read_to_string(&events).unwrap_or_default(),
    }
}

fn caps_reached(events: &str) -> Vec<String> {
    let mut v: Vec<String> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e.get("cap").and_then(|c| c.as_str()).map(str::to_string))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn a_million_syn_only_flows_stay_bounded() {
    let dir = scratch("syn");
    let cap = dir.join("million-syn.pcap");
    {
        let mut w = PcapWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&cap).unwrap(),
        ));
        for i in 0u32..1_000_000 {
            let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            let sport = 1024 + (i % 60_000) as u16;
            w.frame(&tcp4(
                src,
                build::B4,
                sport,
                445,
                i.wrapping_mul(2_654_435_761),
                0,
                build::SYN,
                &[],
            ));
        }
    }
    let r = read_measured(&cap, &dir);
    eprintln!("million SYN flows: peak RSS {} KiB", r.peak_rss_kb);
    assert!(r.status.success(), "exit {:?}: {}", r.status, r.stderr);
    assert!(
        r.peak_rss_kb < MILLION_FLOWS_RSS_BOUND_KB,
        "peak RSS {} KiB over the bound {} KiB",
        r.peak_rss_kb,
        MILLION_FLOWS_RSS_BOUND_KB
    );
    assert!(
        caps_reached(&r.events).contains(&"MAX_FLOWS".to_string()),
        "{:?}",
        caps_reached(&r.events)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const C: [u8; 4] = build::A4;
const S: [u8; 4] = build::B4;

/// One TCP connection: handshake, then `(to_server, payload)` in order, then FINs.
fn conn(w: &mut PcapWriter<impl Write>, sport: u16, dport: u16, msgs: &[(bool, Vec<u8>)]) {
    let (mut cs, mut ss) = (1000u32, 900_000u32);
    w.frame(&tcp4(C, S, sport, dport, cs, 0, build::SYN, &[]));
    w.frame(&tcp4(
        S,
        C,
        dport,
        sport,
        ss,
        cs + 1,
        build::SYN | build::ACK,
        &[],
    ));
    cs += 1;
    ss += 1;
    for (to_server, p) in msgs {
        for piece in p.chunks(1460) {
            if *to_server {
                w.frame(&tcp4(C, S, sport, dport, cs, ss, build::ACK, piece));
                cs = cs.wrapping_add(piece.len() as u32);
            } else {
                w.frame(&tcp4(S, C, dport, sport, ss, cs, build::ACK, piece));
                ss = ss.wrapping_add(piece.len() as u32);
            }
        }
    }
    w.frame(&tcp4(
        C,
        S,
        sport,
        dport,
        cs,
        ss,
        build::FIN | build::ACK,
        &[],
    ));
    w.frame(&tcp4(
        S,
        C,
        dport,
        sport,
        ss,
        cs + 1,
        build::FIN | build::ACK,
        &[],
    ));
}

fn nbss(len: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    v.extend_from_slice(body);
    v
}

fn smb2_header(command: u16, mid: u64) -> Vec<u8> {
    let mut h = b"\xfeSMB".to_vec();
    h.extend_from_slice(&64u16.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // credit charge
    h.extend_from_slice(&0u32.to_le_bytes()); // status
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // credits
    h.extend_from_slice(&0u32.to_le_bytes()); // flags
    h.extend_from_slice(&0u32.to_le_bytes()); // next command
    h.extend_from_slice(&mid.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes()); // reserved
    h.extend_from_slice(&1u32.to_le_bytes()); // tree id
    h.extend_from_slice(&0x1234u64.to_le_bytes()); // session id
    h.extend_from_slice(&[0; 16]);
    h
}

/// SMB2 WRITE request declaring `length` bytes (the data that follows is what the caller sends).
fn smb2_write(length: u32, mid: u64) -> Vec<u8> {
    let mut m = smb2_header(9, mid);
    m.extend_from_slice(&49u16.to_le_bytes());
    m.extend_from_slice(&0x70u16.to_le_bytes());
    m.extend_from_slice(&length.to_le_bytes());
    m.extend_from_slice(&0u64.to_le_bytes());
    m.extend_from_slice(&[0x11; 16]); // FileId
    m.extend_from_slice(&[0; 16]); // channel, remaining, wci offset/len, flags
    m
}

fn dce_header(ptype: u8, flags: u8, frag_len: u16, call_id: u32) -> Vec<u8> {
    let mut h = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
    h.extend_from_slice(&frag_len.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&call_id.to_le_bytes());
    h
}

fn syntax(uuid: &str, ver: u32) -> Vec<u8> {
    let mut v = uuid_bytes_le(uuid).unwrap().to_vec();
    v.extend_from_slice(&ver.to_le_bytes());
    v
}

fn with_len(mut pdu: Vec<u8>) -> Vec<u8> {
    let n = pdu.len() as u16;
    pdu[8..10].copy_from_slice(&n.to_le_bytes());
    pdu
}

const SVCCTL: &str = "367abb81-9844-35f1-ad32-98f038001003";
const NDR: &str = "8a885d04-1ceb-11c9-9fe8-08002b104860";

fn bind() -> Vec<u8> {
    let mut p = dce_header(11, 3, 0, 1);
    p.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0]);
    p.extend_from_slice(&syntax(SVCCTL, 2));
    p.extend_from_slice(&syntax(NDR, 2));
    with_len(p)
}

fn bind_ack() -> Vec<u8> {
    let mut p = dce_header(12, 3, 0, 1);
    p.extend_from_slice(&[0xb8, 0x10, 0xb8, 0x10, 1, 0, 0, 0]);
    p.extend_from_slice(&[4, 0, b'1', b'3', b'5', 0]);
    p.extend_from_slice(&[0, 0]); // align 4
    p.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&syntax(NDR, 2));
    with_len(p)
}

fn request(call_id: u32, flags: u8, alloc_hint: u32, opnum: u16, stub: &[u8]) -> Vec<u8> {
    let mut p = dce_header(0, flags, 0, call_id);
    p.extend_from_slice(&alloc_hint.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p.extend_from_slice(&opnum.to_le_bytes());
    p.extend_from_slice(stub);
    with_len(p)
}

#[test]
fn huge_declared_lengths_stay_bounded() {
    let dir = scratch("huge");
    let cap = dir.join("huge-lengths.pcap");
    {
        let mut w = PcapWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&cap).unwrap(),
        ));
        // NetBIOS session message declaring 0xFFFFFF bytes, of which 64 KiB arrive.
        conn(
            &mut w,
            40001,
            445,
            &[(true, nbss(0xff_ffff, &[0xfe; 64 * 1024]))],
        );
        // SMB2 WRITE declaring Length 4 GiB inside a NetBIOS message of 16 MiB, 512 KiB sent.
        let mut m = smb2_write(u32::MAX, 5);
        m.resize(m.len() + 512 * 1024, 0x4d);
        conn(&mut w, 40002, 445, &[(true, nbss(0xff_ffff, &m))]);
        // The same WRITE Length 4 GiB in a small, complete message (the length lies).
        let mut m = smb2_write(u32::MAX, 6);
        m.extend_from_slice(&[0x4d; 100]);
        conn(&mut w, 40003, 445, &[(true, nbss(m.len() as u32, &m))]);
        // DCE-RPC over TCP: bound to svcctl; a request fragment declaring frag_length 65535 and
        // alloc_hint 4 GiB of which 2000 bytes arrive; then CreateServiceW requests whose NDR
        // strings declare max_count / actual_count 2^32-1, and 5000 continuation fragments each
        // with alloc_hint 4 GiB (DCE-RPC fragments and stub caps).
        let mut huge = dce_header(0, 1, 65535, 2);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0, 0, 12, 0]);
        huge.resize(2000, 0x41);
        let mut stub = vec![0x22; 20]; // SCM handle
        stub.extend_from_slice(&u32::MAX.to_le_bytes());
        stub.extend_from_slice(&0u32.to_le_bytes());
        stub.extend_from_slice(&u32::MAX.to_le_bytes());
        stub.extend_from_slice(&[0x41; 64]);
        let mut msgs = vec![
            (true, bind()),
            (false, bind_ack()),
            (true, request(3, 3, u32::MAX, 12, &stub)),
        ];
        msgs.push((true, request(4, 1, u32::MAX, 12, &stub)));
        for _ in 0..5000 {
            msgs.push((true, request(4, 0, u32::MAX, 12, &[0x42; 1024])));
        }
        msgs.push((true, huge));
        conn(&mut w, 40004, 135, &msgs);
        // Finally a record whose caplen is absurd (the reader must refuse, not allocate).
        w.raw_record_header(0xffff_fff0, 0xffff_fff0);
        w.w.write_all(&[0u8; 64]).unwrap();
    }
    let r = read_measured(&cap, &dir);
    eprintln!(
        "huge lengths: peak RSS {} KiB; caps {:?}",
        r.peak_rss_kb,
        caps_reached(&r.events)
    );
    // The absurd record ends the file with an error: non-zero exit, a clear message, no panic.
    assert!(!r.status.success());
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("huge-lengths.pcap"),
        "{}",
        r.stderr
    );
    assert!(
        r.peak_rss_kb < HUGE_LENGTHS_RSS_BOUND_KB,
        "peak RSS {} KiB over the bound {} KiB",
        r.peak_rss_kb,
        HUGE_LENGTHS_RSS_BOUND_KB
    );
    // The stream before the bad record was processed, and the caps said so.
    let caps = caps_reached(&r.events);
    assert!(caps.iter().any(|c| c.starts_with("MAX_DCERPC")), "{caps:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
