//! DCE-RPC connection-oriented PDUs (framing, bind/alter, fragments, auth trailers, stub decoders)
//! through `dcerpc::Conversation`: the first byte picks the transport, the rest is chunks of
//! both directions.
#![no_main]
#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use psexec_sensor::dcerpc::{Conversation, Transport};
use psexec_sensor::sink::Sink;
use psexec_sensor::time::Ts;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ctx = common::ctx();
    let mut conv = match sel & 3 {
        0 => Conversation::new(Transport::SmbPipe, Some("svcctl")),
        1 => Conversation::new(Transport::SmbPipe, Some("atsvc")),
        2 => Conversation::new(Transport::SmbPipe, None),
        _ => Conversation::new(Transport::Tcp, None),
    };
    let mut sink = Sink::new();
    let mut ts = 1_000_000_000u64;
    for (dir, bytes) in common::chunks(rest) {
        ts += 1000;
        if bytes.is_empty() {
            conv.gap(&ctx, Ts(ts), dir, &mut sink);
        } else {
            conv.data(&ctx, Ts(ts), dir, bytes, &mut sink);
        }
    }
    // Half of the runs let calls time out instead of closing.
    if sel & 4 != 0 {
        conv.timeout(&ctx, Ts(ts + 3_600_000_000_000), &mut sink);
    }
    conv.close(&ctx, Ts(ts + 1), &mut sink);
});
