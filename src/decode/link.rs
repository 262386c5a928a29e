//! Link-layer headers that etherparse does not take directly: Linux cooked (SLL, SLL2) and BSD
//! NULL/LOOP. Each maps a frame to where the network layer starts.

use crate::capture::{
    Linktype, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP, LINKTYPE_NULL, LINKTYPE_RAW,
};

/// Some systems write raw IP with these DLT numbers instead of 101.
const LINKTYPE_RAW_BSD_12: Linktype = 12;
const LINKTYPE_RAW_BSD_14: Linktype = 14;

/// Where the network layer of a frame begins.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkStart<'a> {
    /// An Ethernet II frame (VLAN tags are handled by etherparse).
    Ethernet(&'a [u8]),
    /// A payload of the given EtherType (may itself be a VLAN tag).
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet (the version nibble says which).
    Ip(&'a [u8]),
    /// Not IP (ARP, other address family…): counted and skipped.
    NotIp,
    /// The link type is not one we decode.
    UnsupportedLinktype,
    /// The link header is shorter than its fixed size.
    Truncated,
}

/// Linux SLL: 16-byte header, protocol (EtherType) at offset 14.
const SLL_HEADER: usize = 16;
/// Linux SLL2: 20-byte header, protocol (EtherType) at offset 0.
const SLL2_HEADER: usize = 20;

/// BSD address families meaning IPv4 / IPv6 (IPv6 differs by OS: Linux 10, NetBSD/OpenBSD 24,
/// FreeBSD 28, macOS 30).
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub fn link_start(linktype: Linktype, data: &[u8]) -> LinkStart<'_> {
    match linktype {
        LINKTYPE_ETHERNET => LinkStart::Ethernet(data),
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 | LINKTYPE_RAW_BSD_12
        | LINKTYPE_RAW_BSD_14 => LinkStart::Ip(data),
        LINKTYPE_LINUX_SLL => match (be16(data, 14), data.get(SLL_HEADER..)) {
            (Some(proto), Some(rest)) => LinkStart::EtherType(proto, rest),
            _ => LinkStart::Truncated,
        },
        LINKTYPE_LINUX_SLL2 => match (be16(data, 0), data.get(SLL2_HEADER..)) {
            (Some(proto), Some(rest)) => LinkStart::EtherType(proto, rest),
            _ => LinkStart::Truncated,
        },
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            let (Some(h), Some(rest)) = (data.get(..4), data.get(4..)) else {
                return LinkStart::Truncated;
            };
            let h: [u8; 4] = [h[0], h[1], h[2], h[3]];
            // NULL is in the capturing host's byte order, LOOP in network order; accept either.
            let fam = [u32::from_le_bytes(h), u32::from_be_bytes(h)];
            if fam.contains(&AF_INET) || fam.iter().any(|f| AF_INET6.contains(f)) {
                LinkStart::Ip(rest)
            } else {
                LinkStart::NotIp
            }
        }
        _ => LinkStart::UnsupportedLinktype,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sll_protocol_at_14() {
        let mut f = vec![0u8; 16];
        f[14] = 0x08;
        f.extend_from_slice(b"IPDATA");
        assert_eq!(
            link_start(LINKTYPE_LINUX_SLL, &f),
            LinkStart::EtherType(0x0800, b"IPDATA")
        );
        assert_eq!(
            link_start(LINKTYPE_LINUX_SLL, &f[..10]),
            LinkStart::Truncated
        );
    }

    #[test]
    fn sll2_protocol_at_0() {
        let mut f = vec![0u8; 20];
        f[0] = 0x86;
        f[1] = 0xdd;
        f.extend_from_slice(b"V6");
        assert_eq!(
            link_start(LINKTYPE_LINUX_SLL2, &f),
            LinkStart::EtherType(0x86dd, b"V6")
        );
        assert_eq!(
            link_start(LINKTYPE_LINUX_SLL2, &f[..19]),
            LinkStart::Truncated
        );
    }

    #[test]
    fn null_and_loop_both_byte_orders_and_v6_families() {
        assert_eq!(
            link_start(LINKTYPE_NULL, &[2, 0, 0, 0, 0x45]),
            LinkStart::Ip(&[0x45])
        );
        assert_eq!(
            link_start(LINKTYPE_LOOP, &[0, 0, 0, 2, 0x45]),
            LinkStart::Ip(&[0x45])
        );
        for fam in [10u8, 24, 28, 30] {
            assert_eq!(
                link_start(LINKTYPE_NULL, &[fam, 0, 0, 0, 0x60]),
                LinkStart::Ip(&[0x60])
            );
            assert_eq!(
                link_start(LINKTYPE_LOOP, &[0, 0, 0, fam, 0x60]),
                LinkStart::Ip(&[0x60])
            );
        }
        assert_eq!(
            link_start(LINKTYPE_NULL, &[7, 0, 0, 0, 1]),
            LinkStart::NotIp
        );
        assert_eq!(link_start(LINKTYPE_NULL, &[2, 0]), LinkStart::Truncated);
    }

    #[test]
    fn raw_and_unknown() {
        for lt in [LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6] {
            assert_eq!(link_start(lt, b"x"), LinkStart::Ip(b"x"));
        }
        assert_eq!(link_start(9999, b"x"), LinkStart::UnsupportedLinktype);
    }
}
