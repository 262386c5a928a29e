//! Identity of a connection as the rest of the sensor sees it: Zeek's `conn_id` and `uid`.

use crate::decode::TcpSegment;
use serde::{Serialize, Serializer};
use std::net::IpAddr;

/// Which way bytes travel: from the originator (client) to the responder (server), or back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    pub fn flip(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
    pub fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }
}

/// Zeek's `conn_id`: originator (client) and responder (server) endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

/// A connection's unique id, written like Zeek's (`C` + base62). Derived from the 5-tuple and the
/// content of the packet that opened the flow (the client's sequence number), never from time: every
/// worker, every run and every sensor that sees the same packets, even half a millisecond later on
/// another tap, gives the same id to the same flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Uid(pub u64);

impl Uid {
    /// The uid of a TCP flow opened by `seg` (oriented as `conn`). The client's initial sequence
    /// number tells two connections on one 4-tuple apart (port reuse); a SYN carries it as `seq`, a
    /// SYN-ACK as `ack - 1`. A flow picked up mid-stream uses the client's current sequence number,
    /// read from whichever side the first segment came from.
    pub fn for_first_segment(conn: &ConnId, seg: &TcpSegment<'_>) -> Uid {
        let from_client = seg.src == conn.orig_h && seg.sport == conn.orig_p;
        let client_seq = match (from_client, seg.flags.syn && seg.flags.ack) {
            (true, _) => seg.seq,
            (false, true) => seg.ack.wrapping_sub(1),
            (false, false) => seg.ack,
        };
        Uid::new(conn, u64::from(client_seq))
    }

    /// The uid of `conn` told apart from others on the same tuple by `salt`.
    pub fn new(conn: &ConnId, salt: u64) -> Uid {
        // FNV-1a over the tuple and time: stable across platforms and runs (std's hasher is not).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h ^= x as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        match conn.orig_h {
            IpAddr::V4(a) => eat(&a.octets()),
            IpAddr::V6(a) => eat(&a.octets()),
        }
        match conn.resp_h {
            IpAddr::V4(a) => eat(&a.octets()),
            IpAddr::V6(a) => eat(&a.octets()),
        }
        eat(&conn.orig_p.to_be_bytes());
        eat(&conn.resp_p.to_be_bytes());
        eat(&salt.to_be_bytes());
        Uid(h)
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut buf = [b'0'; 11];
        let mut v = self.0;
        for slot in buf.iter_mut().rev() {
            *slot = ALPHABET[(v % 62) as usize];
            v /= 62;
        }
        f.write_str("C")?;
        f.write_str(std::str::from_utf8(&buf).unwrap_or("0"))
    }
}

impl Serialize for Uid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What an application parser knows about the connection it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowCtx {
    pub conn: ConnId,
    pub uid: Uid,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn uid_is_stable_and_zeek_shaped() {
        let c = ConnId {
            orig_h: "192.0.2.10".parse().unwrap(),
            orig_p: 50000,
            resp_h: "192.0.2.20".parse().unwrap(),
            resp_p: 445,
        };
        let a = Uid::new(&c, 1).to_string();
        assert_eq!(a, Uid::new(&c, 1).to_string());
        assert_ne!(a, Uid::new(&c, 2).to_string());
        assert_eq!(a.len(), 12);
        assert!(a.starts_with('C'));
    }

    #[test]
    fn syn_and_syn_ack_give_the_client_isn() {
        use crate::decode::TcpFlags;
        let c = ConnId {
            orig_h: "192.0.2.10".parse().unwrap(),
            orig_p: 50000,
            resp_h: "192.0.2.20".parse().unwrap(),
            resp_p: 445,
        };
        let seg = |to_server: bool, seq: u32, ack: u32, syn: bool, ackf: bool| TcpSegment {
            src: if to_server { c.orig_h } else { c.resp_h },
            dst: if to_server { c.resp_h } else { c.orig_h },
            sport: if to_server { c.orig_p } else { c.resp_p },
            dport: if to_server { c.resp_p } else { c.orig_p },
            seq,
            ack,
            flags: TcpFlags {
                syn,
                ack: ackf,
                fin: false,
                rst: false,
            },
            payload: &[],
            missing: 0,
            checksum: crate::decode::checksum::Verdict::Unknown,
            window: 65535,
            wscale: None,
        };
        let syn = Uid::for_first_segment(&c, &seg(true, 1000, 0, true, false));
        let syn_ack = Uid::for_first_segment(&c, &seg(false, 77, 1001, true, true));
        assert_eq!(syn, syn_ack);
        let mid_client = Uid::for_first_segment(&c, &seg(true, 5000, 9, false, true));
        let mid_server = Uid::for_first_segment(&c, &seg(false, 9, 5000, false, true));
        assert_eq!(mid_client, mid_server);
        assert_ne!(syn, mid_client, "another ISN is another connection");
    }
}
