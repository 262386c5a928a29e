//! The whole engine (decode, defragmentation, flows, reassembly, SMB, DCE-RPC, TCP DCE-RPC,
//! endpoint mapper) fed a packet sequence cut from the input: each packet is
//! `[u16 LE length][u8 link type selector][u8 time step][frame]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::capture::{self, Packet};
use psexec_sensor::pipeline::{Collect, Engine, EngineConfig};
use psexec_sensor::time::Ts;

const LINKS: [u32; 8] = [
    capture::LINKTYPE_ETHERNET,
    capture::LINKTYPE_ETHERNET,
    capture::LINKTYPE_ETHERNET,
    capture::LINKTYPE_RAW,
    capture::LINKTYPE_LINUX_SLL,
    capture::LINKTYPE_LINUX_SLL2,
    capture::LINKTYPE_NULL,
    capture::LINKTYPE_IPV6,
];

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(EngineConfig {
        max_flows: Some(64),
        ..Default::default()
    });
    let mut out = Collect::default();
    let mut rest = data;
    let mut ts = 1_600_000_000_000_000_000u64;
    let mut index = 0u64;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let link = LINKS[usize::from(rest[2] & 7)];
        // Time steps up to ~4 minutes let idle timeouts fire inside one input.
        ts += u64::from(rest[3]) * 1_000_000_000;
        rest = &rest[4..];
        let n = len.min(rest.len());
        let pkt = Packet {
            ts: Ts(ts),
            linktype: link,
            orig_len: len as u32,
            data: rest[..n].to_vec(),
        };
        rest = &rest[n..];
        engine.process(index, &pkt, &mut out);
        index += 1;
        out.events.clear();
    }
    engine.finish(&mut out);
});
