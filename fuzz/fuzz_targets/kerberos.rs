//! Kerberos: the message records (rusticata's parser through `kerberos::records`), the GSS/SPNEGO
//! framing around an AP-REQ, and the KDC exchange over TCP (record marking) and UDP.
//! Input: selector byte, then bytes (selector 2: chunks `[u16 LE: bit 15 = KDC→client, low 15
//! bits = length][bytes]`, an empty chunk is a gap).
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::flow::{ConnId, Direction, FlowCtx, StreamParser, Uid};
use psexec_sensor::kerberos::{self, exchange::KdcTcp, gss, records};
use psexec_sensor::sink::Sink;
use psexec_sensor::time::Ts;

fuzz_target!(|data: &[u8]| {
    let [sel, rest @ ..] = data else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(m) = records::message(rest) {
                let _ = format!("{m:?}");
            }
            let _ = records::record_mark(rest);
        }
        1 => {
            let _ = gss::ap_req_bytes(rest);
            let _ = kerberos::presented(rest);
        }
        _ => {
            let ctx = FlowCtx {
                conn: ConnId {
                    orig_h: "192.0.2.1".parse().unwrap(),
                    orig_p: 50000,
                    resp_h: "192.0.2.88".parse().unwrap(),
                    resp_p: 88,
                },
                uid: Uid(1),
            };
            let mut p = KdcTcp::new(ctx);
            let mut sink = Sink::new();
            let mut i = rest;
            while let [a, b, tail @ ..] = i {
                let w = u16::from_le_bytes([*a, *b]);
                let dir = if w & 0x8000 != 0 {
                    Direction::ToClient
                } else {
                    Direction::ToServer
                };
                let n = usize::from(w & 0x7fff).min(tail.len());
                if n == 0 {
                    p.gap(Ts(1), dir, 10, &mut sink);
                } else {
                    p.data(Ts(1), dir, &tail[..n], &mut sink);
                }
                i = &tail[n..];
            }
            p.close(Ts(2), &mut sink);
        }
    }
});
