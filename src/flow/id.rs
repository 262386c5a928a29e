//! Identity of a connection as the rest of the sensor sees it: Zeek's `conn_id` and `uid`.

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
/// time the flow was first seen, so every worker and every run gives the same id to the same flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Uid(pub u64);

impl Uid {
    pub fn new(conn: &ConnId, first_seen_ns: u64) -> Uid {
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
        eat(&first_seen_ns.to_be_bytes());
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
}
