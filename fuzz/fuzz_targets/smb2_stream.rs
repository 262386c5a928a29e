//! NetBIOS session + SMB2/3 (and whatever else the SMB parser accepts) through the StreamParser
//! contract: chunks of both directions, in order, then close.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use psexec_sensor::flow::StreamParser;
use psexec_sensor::sink::Sink;
use psexec_sensor::smb::{SmbParser, SmbShared};
use psexec_sensor::time::Ts;

fuzz_target!(|data: &[u8]| {
    let mut p = SmbParser::new(common::ctx(), SmbShared::default());
    let mut sink = Sink::new();
    let mut ts = 1_000_000_000u64;
    for (dir, bytes) in common::chunks(data) {
        ts += 1000;
        if bytes.is_empty() {
            // An empty chunk stands for a hole in that direction.
            p.gap(Ts(ts), dir, 1460, &mut sink);
        } else {
            p.data(Ts(ts), dir, bytes, &mut sink);
        }
    }
    p.close(Ts(ts + 1), &mut sink);
});
