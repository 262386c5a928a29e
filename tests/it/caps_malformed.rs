//! Malformed capture files beyond the basic ones in read_cli.rs (missing, empty, wrong magic,
//! truncated last record): absurd record and block lengths, broken section headers, short
//! headers, broken gzip. Each gives a clear one-line error naming the file and the problem, a
//! non-zero exit, and never a panic; packets before the problem are still processed. Files that
//! are odd but valid (header only, absurd snaplen, unknown link type) read with exit 0.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_psexec-sensor");

fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("caps_malformed-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const PCAP_HDR: [u8; 24] = [
    0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
];

/// The first record (header + frame) of a lab capture.
fn first_record() -> Vec<u8> {
    let b = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("captures/lab/c_smbexec.pcap"),
    )
    .unwrap();
    let rec = &b[24..];
    let n = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
    rec[..16 + n].to_vec()
}

fn record_header(caplen: u32, origlen: u32) -> Vec<u8> {
    [1u32, 0, caplen, origlen]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect()
}

fn shb(block_len: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x0A0D0D0Au32.to_le_bytes());
    b.extend_from_slice(&block_len.to_le_bytes());
    b.extend_from_slice(&0x1A2B3C4Du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    b.extend_from_slice(&block_len.to_le_bytes());
    b
}

fn idb() -> Vec<u8> {
    [1u32, 20]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .chain([1, 0, 0, 0])
        .chain(65535u32.to_le_bytes())
        .chain(20u32.to_le_bytes())
        .collect()
}

struct Outcome {
    code: Option<i32>,
    stderr: String,
    events: String,
}

fn read(path: &Path) -> Outcome {
    let events = path.with_extension("events.json");
    let o = Command::new(BIN)
        .arg("read")
        .arg(path)
        .arg("--events")
        .arg(&events)
        .arg("--alerts")
        .arg("/dev/null")
        .output()
        .expect("binary runs");
    Outcome {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        events: std::fs::read_to_string(&events).unwrap_or_default(),
    }
}

/// A non-zero exit and a line `psexec-sensor: PATH: <why>…`, no panic.
fn fails_clearly(path: &Path, why: &str) -> Outcome {
    let o = read(path);
    assert!(
        !o.stderr.contains("panicked"),
        "{}: panic\n{}",
        path.display(),
        o.stderr
    );
    assert_eq!(o.code, Some(2), "{}: {}", path.display(), o.stderr);
    let want = format!("psexec-sensor: {}: {why}", path.display());
    assert!(
        o.stderr.lines().any(|l| l.starts_with(&want)),
        "missing {want:?} in\n{}",
        o.stderr
    );
    o
}

fn reads_cleanly(path: &Path) -> Outcome {
    let o = read(path);
    assert!(
        !o.stderr.contains("panicked"),
        "{}: panic\n{}",
        path.display(),
        o.stderr
    );
    assert_eq!(o.code, Some(0), "{}: {}", path.display(), o.stderr);
    o
}

#[test]
fn absurd_lengths_and_broken_headers_fail_clearly() {
    let d = scratch("bad");
    let first = first_record();

    // A good packet, then a record claiming ~4 GiB.
    let p = d.join("huge_record.pcap");
    std::fs::write(
        &p,
        [
            &PCAP_HDR[..],
            &first,
            &record_header(0xffff_fff0, 0xffff_fff0),
            &[0; 100],
        ]
        .concat(),
    )
    .unwrap();
    let o = fails_clearly(&p, "absurd record length");
    // The good packet before it was counted as read.
    assert!(o.stderr.contains("after 1 good packets"), "{}", o.stderr);

    // pcapng: a block claiming ~4 GiB, and a block shorter than its own header.
    let p = d.join("huge_block.pcapng");
    std::fs::write(
        &p,
        [
            shb(28),
            idb(),
            6u32.to_le_bytes().to_vec(),
            0xffff_fff0u32.to_le_bytes().to_vec(),
            vec![0; 64],
        ]
        .concat(),
    )
    .unwrap();
    fails_clearly(&p, "absurd record length");
    let p = d.join("tiny_block.pcapng");
    std::fs::write(
        &p,
        [
            shb(28),
            idb(),
            6u32.to_le_bytes().to_vec(),
            8u32.to_le_bytes().to_vec(),
            vec![0; 64],
        ]
        .concat(),
    )
    .unwrap();
    fails_clearly(&p, "malformed record");

    // A section header whose length is smaller than a section header.
    let p = d.join("bad_shb.pcapng");
    std::fs::write(&p, [shb(12), vec![0; 40]].concat()).unwrap();
    fails_clearly(&p, "not a capture file");

    // A pcap file header cut short.
    let p = d.join("short_header.pcap");
    std::fs::write(&p, &PCAP_HDR[..10]).unwrap();
    fails_clearly(&p, "not a capture file");

    // gzip: garbage after the magic.
    let p = d.join("garbage.pcap.gz");
    std::fs::write(&p, [&[0x1f, 0x8b, 8, 0][..], &[0xff; 200]].concat()).unwrap();
    fails_clearly(&p, "not a capture file: gzip stream does not decompress");
}

#[test]
fn odd_but_valid_files_read() {
    let d = scratch("valid");
    let first = first_record();
    // Only a file header: no packets, nothing wrong.
    let p = d.join("header_only.pcap");
    std::fs::write(&p, PCAP_HDR).unwrap();
    reads_cleanly(&p);
    // snaplen 0xFFFFFFFF in the file header: only record lengths matter.
    let mut h = PCAP_HDR;
    h[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = d.join("huge_snaplen.pcap");
    std::fs::write(&p, [&h[..], &first].concat()).unwrap();
    reads_cleanly(&p);
    // A link type nobody knows: the packets are skipped, and the sensor says so.
    let mut h = PCAP_HDR;
    h[20..24].copy_from_slice(&0xdeadu32.to_le_bytes());
    let p = d.join("unknown_linktype.pcap");
    std::fs::write(&p, [&h[..], &first].concat()).unwrap();
    let o = reads_cleanly(&p);
    assert!(o.events.contains("\"log\":\"anomaly\""), "{}", o.events);
    // caplen 0 with a huge original length: an empty frame, not an allocation.
    let p = d.join("zero_caplen.pcap");
    std::fs::write(
        &p,
        [&PCAP_HDR[..], &record_header(0, 0xffff_fff0), &first].concat(),
    )
    .unwrap();
    let o = read(&p);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}
