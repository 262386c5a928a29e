//! Hand-built pcap / pcapng bytes through the reader.

use super::*;
use std::io::Write;
use std::sync::atomic::AtomicUsize;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory for one test.
pub(crate) fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!(
        "psexec-sensor-test-{}-{tag}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Classic pcap: `ns` picks the nanosecond magic; `be` big-endian.
pub(crate) fn pcap(linktype: u32, ns: bool, be: bool, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(&u32b(if ns { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&u16b(2));
    out.extend_from_slice(&u16b(4));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(0));
    out.extend_from_slice(&u32b(262144));
    out.extend_from_slice(&u32b(linktype));
    for (sec, frac, data) in recs {
        out.extend_from_slice(&u32b(*sec));
        out.extend_from_slice(&u32b(*frac));
        out.extend_from_slice(&u32b(data.len() as u32));
        out.extend_from_slice(&u32b(data.len() as u32 + 4)); // orig_len larger: snaplen cut
        out.extend_from_slice(data);
    }
    out
}

fn ng_block(out: &mut Vec<u8>, typ: u32, body: &[u8]) {
    let mut b = body.to_vec();
    while b.len() % 4 != 0 {
        b.push(0);
    }
    let len = (b.len() + 12) as u32;
    out.extend_from_slice(&typ.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&b);
    out.extend_from_slice(&len.to_le_bytes());
}

pub(crate) fn ng_shb(out: &mut Vec<u8>) {
    let mut b = Vec::new();
    b.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(out, 0x0A0D_0D0A, &b);
}

pub(crate) fn ng_idb(out: &mut Vec<u8>, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
    let mut b = Vec::new();
    b.extend_from_slice(&linktype.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&262144u32.to_le_bytes());
    if let Some(r) = tsresol {
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        b.extend_from_slice(&14u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&o.to_le_bytes());
    }
    b.extend_from_slice(&[0, 0, 0, 0]);
    ng_block(out, 1, &b);
}

pub(crate) fn ng_epb(out: &mut Vec<u8>, if_id: u32, ts_units: u64, data: &[u8]) {
    let mut b = Vec::new();
    b.extend_from_slice(&if_id.to_le_bytes());
    b.extend_from_slice(&((ts_units >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts_units as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    ng_block(out, 6, &b);
}

fn read_all(path: &Path) -> (Vec<Packet>, Option<CaptureError>) {
    let mut r = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    let mut p = Packet::empty();
    loop {
        match r.next_packet(&mut p) {
            Ok(true) => out.push(p.clone()),
            Ok(false) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn pcap_microseconds_little_endian() {
    let d = temp_dir("us");
    let f = write(
        &d,
        "a.pcap",
        &pcap(1, false, false, &[(10, 5, b"abc"), (11, 999_999, b"defg")]),
    );
    let (pkts, err) = read_all(&f);
    assert!(err.is_none());
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].ts, Ts(10_000_005_000));
    assert_eq!(pkts[0].data, b"abc");
    assert_eq!(pkts[0].orig_len, 7);
    assert_eq!(pkts[0].linktype, 1);
    assert_eq!(pkts[1].ts, Ts(11_999_999_000));
}

#[test]
fn pcap_nanoseconds_big_endian() {
    let d = temp_dir("ns");
    let f = write(
        &d,
        "a.pcap",
        &pcap(101, true, true, &[(3, 123_456_789, b"xyz")]),
    );
    let (pkts, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 1);
    assert_eq!(pkts[0].ts, Ts(3_123_456_789));
    assert_eq!(pkts[0].linktype, 101);
}

#[test]
fn pcapng_interfaces_resolution_offset_and_sections() {
    let mut b = Vec::new();
    ng_shb(&mut b);
    ng_idb(&mut b, 1, None, None); // if 0: Ethernet, default µs
    ng_idb(&mut b, 101, Some(9), Some(100)); // if 1: raw IP, ns, +100 s
    ng_epb(&mut b, 0, 5_000_001, b"eth");
    ng_epb(&mut b, 1, 7_000_000_002, b"raw");
    ng_epb(&mut b, 7, 1, b"bad"); // undescribed interface: skipped
                                  // A second section: interface ids start again.
    ng_shb(&mut b);
    ng_idb(&mut b, 113, Some(0x80 | 10), None); // 2^10 units per second
    ng_epb(&mut b, 0, 2048 * 3 + 512, b"sll");
    let d = temp_dir("ng");
    let f = write(&d, "a.pcapng", &b);
    let mut r = CaptureReader::open(&f).unwrap();
    assert_eq!(r.format(), Format::PcapNg);
    let mut p = Packet::empty();
    let mut got = Vec::new();
    while r.next_packet(&mut p).unwrap() {
        got.push(p.clone());
    }
    assert_eq!(r.unknown_interface_packets(), 1);
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].linktype, got[0].ts, &got[0].data[..]),
        (1, Ts(5_000_001_000), &b"eth"[..])
    );
    assert_eq!((got[1].linktype, got[1].ts), (101, Ts(107_000_000_002)));
    assert_eq!((got[2].linktype, got[2].ts), (113, Ts(6_500_000_000)));
}

#[test]
fn gzip_is_found_by_magic_not_by_name() {
    let raw = pcap(1, false, false, &[(1, 0, b"one"), (2, 0, b"two")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let bytes = gz.finish().unwrap();
    let d = temp_dir("gz");
    let f = write(&d, "no_extension", &bytes);
    let (pkts, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        pkts.iter().map(|p| p.data.clone()).collect::<Vec<_>>(),
        vec![b"one".to_vec(), b"two".to_vec()]
    );
    // Compressed (whatever the name) and standard input are read once for all workers; a plain
    // capture, a missing file or a one-byte file are not.
    assert!(read_once_is_best(&f));
    assert!(read_once_is_best(Path::new("-")));
    assert!(!read_once_is_best(&write(&d, "plain.pcap.gz", &raw)));
    assert!(!read_once_is_best(&d.join("missing")));
    assert!(!read_once_is_best(&write(&d, "one", &[0x1f])));
}

#[test]
fn truncated_last_record_keeps_earlier_packets() {
    let mut raw = pcap(
        1,
        false,
        false,
        &[(1, 0, b"good"), (2, 0, b"cut-in-the-middle")],
    );
    raw.truncate(raw.len() - 5);
    let d = temp_dir("trunc");
    let f = write(&d, "t.pcap", &raw);
    let (pkts, err) = read_all(&f);
    assert_eq!(pkts.len(), 1);
    let err = err.expect("truncation must be reported");
    assert!(
        matches!(err, CaptureError::Truncated { packets: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("t.pcap: truncated"), "{err}");
}

#[test]
fn bad_magic_empty_and_missing_are_errors() {
    let d = temp_dir("bad");
    let bad = write(&d, "bad.pcap", b"this is not a capture file at all");
    let empty = write(&d, "empty.pcap", b"");
    let missing = d.join("missing.pcap");
    match CaptureReader::open(&bad) {
        Err(e @ CaptureError::NotACapture { .. }) => {
            assert!(e.to_string().contains("bad magic"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    match CaptureReader::open(&empty) {
        Err(e @ CaptureError::NotACapture { .. }) => {
            assert!(e.to_string().contains("empty"), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        CaptureReader::open(&missing),
        Err(CaptureError::Missing { .. })
    ));
}

#[test]
fn absurd_record_length_is_refused_without_allocating_it() {
    let mut raw = pcap(1, false, false, &[(1, 0, b"ok")]);
    // A record header claiming 2 GiB of data, followed by a little.
    for v in [5u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    raw.extend_from_slice(&[0u8; 64]);
    let d = temp_dir("absurd");
    let f = write(&d, "a.pcap", &raw);
    let (pkts, err) = read_all(&f);
    assert_eq!(pkts.len(), 1);
    let err = err.expect("must fail");
    assert!(
        matches!(err, CaptureError::RecordTooLarge { packets: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("absurd record length"), "{err}");
}

#[test]
fn absurd_length_in_a_long_file_hits_the_buffer_cap() {
    // Enough data after the bogus header that the reader is not at end of file when it asks.
    let mut raw = pcap(1, false, false, &[(1, 0, b"ok")]);
    for v in [5u32, 0, 0x4000_0000, 0x4000_0000] {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    raw.extend_from_slice(&vec![0u8; MAX_CAPTURE_RECORD_BYTES + 1024]);
    let d = temp_dir("absurd2");
    let f = write(&d, "a.pcap", &raw);
    let (pkts, err) = read_all(&f);
    assert_eq!(pkts.len(), 1);
    assert!(
        matches!(err, Some(CaptureError::RecordTooLarge { .. })),
        "{err:?}"
    );
}

#[test]
fn pcapng_truncated_block() {
    let mut b = Vec::new();
    ng_shb(&mut b);
    ng_idb(&mut b, 1, None, None);
    ng_epb(&mut b, 0, 1, b"first");
    ng_epb(&mut b, 0, 2, b"second packet");
    b.truncate(b.len() - 6);
    let d = temp_dir("ngtrunc");
    let f = write(&d, "a.pcapng", &b);
    let (pkts, err) = read_all(&f);
    assert_eq!(pkts.len(), 1);
    assert!(
        matches!(err, Some(CaptureError::Truncated { packets: 1, .. })),
        "{err:?}"
    );
}

#[test]
fn large_records_grow_the_buffer() {
    let big = vec![0xabu8; 600_000];
    let raw = pcap(1, false, false, &[(1, 0, &big), (2, 0, b"after")]);
    let d = temp_dir("big");
    let f = write(&d, "a.pcap", &raw);
    let (pkts, err) = read_all(&f);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 2);
    assert_eq!(pkts[0].data.len(), 600_000);
    assert_eq!(pkts[1].data, b"after");
}

#[test]
fn directories_expand_recursively_sorted_and_by_magic() {
    let d = temp_dir("dir");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    write(&d, "b.pcap", &pcap(1, false, false, &[]));
    write(&d, "b.pcap.truth.json", b"{}");
    write(&d.join("sub"), "a.cap", &pcap(1, false, false, &[]));
    write(&d, "notes.txt", b"hello");
    let list = expand_inputs(std::slice::from_ref(&d));
    assert_eq!(list, vec![d.join("b.pcap"), d.join("sub").join("a.cap")]);
}

/// A big-endian pcapng section (as written on big-endian hosts).
#[test]
fn pcapng_big_endian_section() {
    fn block(out: &mut Vec<u8>, typ: u32, body: &[u8]) {
        let mut b = body.to_vec();
        while b.len() % 4 != 0 {
            b.push(0);
        }
        let len = (b.len() + 12) as u32;
        out.extend_from_slice(&typ.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&b);
        out.extend_from_slice(&len.to_be_bytes());
    }
    let mut f = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_be_bytes().to_vec();
    shb.extend_from_slice(&1u16.to_be_bytes());
    shb.extend_from_slice(&0u16.to_be_bytes());
    shb.extend_from_slice(&(-1i64).to_be_bytes());
    block(&mut f, 0x0A0D_0D0A, &shb);
    let mut idb = 229u16.to_be_bytes().to_vec(); // raw IPv6
    idb.extend_from_slice(&0u16.to_be_bytes());
    idb.extend_from_slice(&65535u32.to_be_bytes());
    idb.extend_from_slice(&9u16.to_be_bytes());
    idb.extend_from_slice(&1u16.to_be_bytes());
    idb.extend_from_slice(&[9, 0, 0, 0]); // ns
    idb.extend_from_slice(&[0, 0, 0, 0]);
    block(&mut f, 1, &idb);
    let ts: u64 = 1_700_000_000_123_456_789;
    let mut epb = 0u32.to_be_bytes().to_vec();
    epb.extend_from_slice(&((ts >> 32) as u32).to_be_bytes());
    epb.extend_from_slice(&(ts as u32).to_be_bytes());
    epb.extend_from_slice(&5u32.to_be_bytes());
    epb.extend_from_slice(&5u32.to_be_bytes());
    epb.extend_from_slice(b"12345");
    block(&mut f, 6, &epb);
    let d = temp_dir("ngbe");
    let p = write(&d, "be.pcapng", &f);
    let (pkts, err) = read_all(&p);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(pkts.len(), 1);
    assert_eq!(
        (pkts[0].linktype, pkts[0].ts, &pkts[0].data[..]),
        (229, Ts(ts), &b"12345"[..])
    );
}
