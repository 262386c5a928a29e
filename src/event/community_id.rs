//! Community ID v1 (<https://github.com/corelight/community-id-spec>): the flow hash that Zeek,
//! Suricata, Arkime and Elastic write, so records from different tools about one connection join.
//!
//! `base64(sha1(seed ‖ saddr ‖ daddr ‖ proto ‖ 0 ‖ sport ‖ dport))` with the endpoints ordered so
//! that both directions give the same hash, prefixed with the version, `1:`.

use base64::Engine as _;
use serde::{Serialize, Serializer};
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// IANA protocol numbers of the transports the sensor sees.
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// A computed Community ID: the 20-byte hash, written as `1:<base64>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommunityId([u8; 20]);

impl CommunityId {
    /// The v1 hash of one flow, either direction. Ports are those of TCP/UDP/SCTP; mixed address
    /// families cannot occur on one packet, and are hashed as given.
    pub fn v1(seed: u16, proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> CommunityId {
        let key = |e: &(IpAddr, u16)| (ip_octets(&e.0), e.1);
        let (ka, kb) = (key(&a), key(&b));
        // The spec orders by address, then by port when the addresses are equal.
        let (lo, hi) = if ka <= kb { (ka, kb) } else { (kb, ka) };
        let mut h = Sha1::new();
        h.update(seed.to_be_bytes());
        h.update(lo.0.as_slice());
        h.update(hi.0.as_slice());
        h.update([proto, 0]);
        h.update(lo.1.to_be_bytes());
        h.update(hi.1.to_be_bytes());
        CommunityId(h.finalize().into())
    }
}

/// Network-order bytes, IPv4 (4) before IPv6 (16) only by value: the spec compares bytes.
fn ip_octets(ip: &IpAddr) -> IpBytes {
    match ip {
        IpAddr::V4(a) => IpBytes::V4(a.octets()),
        IpAddr::V6(a) => IpBytes::V6(a.octets()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl IpBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            IpBytes::V4(b) => b,
            IpBytes::V6(b) => b,
        }
    }
}

impl std::fmt::Display for CommunityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("1:")?;
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl Serialize for CommunityId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The spec's own baseline (community-id-spec, baseline/baseline_deflt.log), TCP and UDP.
    #[test]
    fn matches_the_spec_baseline() {
        let tcp = CommunityId::v1(
            0,
            PROTO_TCP,
            (ip("128.232.110.120"), 34855),
            (ip("66.35.250.204"), 80),
        );
        assert_eq!(tcp.to_string(), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let udp = CommunityId::v1(
            0,
            PROTO_UDP,
            (ip("192.168.1.52"), 54585),
            (ip("8.8.8.8"), 53),
        );
        assert_eq!(udp.to_string(), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=");
    }

    #[test]
    fn direction_does_not_matter_and_the_seed_does() {
        let a = (ip("2001:db8::1"), 50000);
        let b = (ip("2001:db8::2"), 445);
        assert_eq!(
            CommunityId::v1(0, PROTO_TCP, a, b),
            CommunityId::v1(0, PROTO_TCP, b, a)
        );
        assert_ne!(
            CommunityId::v1(0, PROTO_TCP, a, b),
            CommunityId::v1(1, PROTO_TCP, a, b)
        );
        let same = (ip("192.0.2.1"), 1);
        let other = (ip("192.0.2.1"), 2);
        assert_eq!(
            CommunityId::v1(0, PROTO_UDP, same, other),
            CommunityId::v1(0, PROTO_UDP, other, same)
        );
    }
}
