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
        let dir = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        dir.join(format!("psexec-fuzz-capture-{}.bin", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("temp file");
    if let Ok(mut r) = CaptureReader::open(p) {
        let mut pkt = Packet::empty();
        let mut n = 0u32;
        // Bounded: a fuzz input is small, but an error must end the loop, never spin.
        while let Ok(true) = r.next_packet(&mut pkt) {
            n += 1;
            if n > 1_000_000 {
                panic!("reader does not make progress");
            }
        }
    }
});
