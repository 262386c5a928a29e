//! The capture-file reader (pcap, pcapng, gzip-wrapped): the input is written to a file (the
//! reader takes paths) and read to the end or to its first error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::capture::file::CaptureReader;
use psexec_sensor::capture::Packet;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            "/dev/shm".into()
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("psexec-fuzz-capture-{}.bin", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("temp file");
    // Read twice: into a Packet (copying) and borrowed (`next_frame`, the path `read` takes).
    // Both must agree frame for frame, and on where and how reading stops.
    let (Ok(mut a), Ok(mut b)) = (CaptureReader::open(p), CaptureReader::open(p)) else {
        return;
    };
    let (mut pkt, mut spare) = (Packet::empty(), Packet::empty());
    let mut n = 0u32;
    loop {
        let x = a.next_packet(&mut pkt);
        let y = b.next_frame(&mut spare);
        match (x, y) {
            (Ok(true), Ok(Some(f))) => {
                assert_eq!(
                    (pkt.ts, pkt.linktype, pkt.orig_len, pkt.data.as_slice()),
                    (f.ts, f.linktype, f.orig_len, f.data)
                );
            }
            (Ok(false), Ok(None)) => break,
            (Err(e1), Err(e2)) => {
                assert_eq!(e1.to_string(), e2.to_string());
                break;
            }
            (x, y) => panic!(
                "readers disagree: {:?} vs {:?}",
                x.map_err(|e| e.to_string()),
                y.map(|f| f.is_some()).map_err(|e| e.to_string())
            ),
        }
        n += 1;
        // Bounded: a fuzz input is small, but an error must end the loop, never spin.
        if n > 1_000_000 {
            panic!("reader does not make progress");
        }
    }
});
