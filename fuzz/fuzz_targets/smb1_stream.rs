//! SMB1 through the SMB parser: every chunk is one SMB1 message body (after the 4-byte
//! `FF 'SMB'` magic), wrapped here in a NetBIOS session header and the magic, so the fuzzer spends
//! its time inside SMB1 commands, AndX chains and transactions rather than on framing.
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
    let mut msg = Vec::new();
    for (dir, body) in common::chunks(data) {
        ts += 1000;
        let len = body.len() + 4;
        msg.clear();
        msg.extend_from_slice(&[0, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
        msg.extend_from_slice(b"\xffSMB");
        msg.extend_from_slice(body);
        p.data(Ts(ts), dir, &msg, &mut sink);
    }
    p.close(Ts(ts + 1), &mut sink);
});
