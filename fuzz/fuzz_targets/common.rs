//! Input framing shared by the stream targets: the fuzz input is a sequence of chunks, each
//! `[u16 LE header][bytes]`; header bit 15 = direction (set: server→client), low 15 bits = length
//! (clamped to what is left). scripts/fuzz-seeds writes seeds in this format.
#![allow(dead_code)]

use psexec_sensor::flow::{ConnId, Direction, FlowCtx, Uid};

pub fn chunks(mut data: &[u8]) -> Vec<(Direction, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 2 {
        let h = u16::from_le_bytes([data[0], data[1]]);
        data = &data[2..];
        let dir = if h & 0x8000 != 0 {
            Direction::ToClient
        } else {
            Direction::ToServer
        };
        let n = usize::from(h & 0x7fff).min(data.len());
        out.push((dir, &data[..n]));
        data = &data[n..];
    }
    out
}

pub fn ctx() -> FlowCtx {
    let conn = ConnId {
        orig_h: "192.0.2.10".parse().unwrap(),
        orig_p: 49152,
        resp_h: "192.0.2.20".parse().unwrap(),
        resp_p: 445,
    };
    FlowCtx {
        conn,
        uid: Uid::new(&conn, 1),
    }
}
