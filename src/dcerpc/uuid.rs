//! The DCE UUID as a value (C706 appendix A): interface ids, transfer syntaxes, object ids.
//!
//! On the wire a UUID is time_low u32, time_mid u16, time_hi_and_version u16 in the data
//! representation's byte order, then eight bytes as they are; [`uuid`] reads that with nom.
//! The value keeps the canonical (textual, big-endian) byte order, so equal UUIDs compare equal
//! whichever byte order carried them.

use crate::wire::num::{u16 as num_u16, u32 as num_u32};
use nom::bytes::complete::take;
use nom::number::Endianness;
use nom::{IResult, Parser};

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// From the 128-bit number its text spells (`0x367abb81_9844_35f1_ad32_98f038001003`).
    pub const fn from_u128(v: u128) -> Uuid {
        Uuid(v.to_be_bytes())
    }

    /// From its text form (8-4-4-4-12 hex digits), or None.
    pub fn parse_str(s: &str) -> Option<Uuid> {
        let groups: Vec<&str> = s.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lens != [8, 4, 4, 4, 12] {
            return None;
        }
        let hex: String = groups.concat();
        u128::from_str_radix(&hex, 16).ok().map(Uuid::from_u128)
    }

    /// The 16 bytes of its little-endian NDR encoding.
    pub fn to_bytes_le(self) -> [u8; 16] {
        let mut b = self.0;
        b[0..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// A UUID in the byte order `e` (the PDU's or stub's data representation).
pub fn uuid(e: Endianness) -> impl Fn(&[u8]) -> IResult<&[u8], Uuid> {
    move |i| {
        let (i, (time_low, time_mid, time_hi, rest)) =
            (num_u32(e), num_u16(e), num_u16(e), take(8usize)).parse(i)?;
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&time_low.to_be_bytes());
        b[4..6].copy_from_slice(&time_mid.to_be_bytes());
        b[6..8].copy_from_slice(&time_hi.to_be_bytes());
        b[8..].copy_from_slice(rest);
        Ok((i, Uuid(b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVCCTL: Uuid = Uuid::from_u128(0x367abb81_9844_35f1_ad32_98f038001003);

    #[test]
    fn text_and_both_byte_orders() {
        assert_eq!(SVCCTL.to_string(), "367abb81-9844-35f1-ad32-98f038001003");
        assert_eq!(
            Uuid::parse_str("367abb81-9844-35f1-ad32-98f038001003"),
            Some(SVCCTL)
        );
        assert_eq!(Uuid::parse_str("367abb81-9844-35f1-ad3298f038001003"), None);
        assert_eq!(
            Uuid::parse_str("x67abb81-9844-35f1-ad32-98f038001003"),
            None
        );
        let le = SVCCTL.to_bytes_le();
        assert_eq!(le[..4], [0x81, 0xbb, 0x7a, 0x36]);
        assert_eq!(uuid(Endianness::Little)(&le).unwrap().1, SVCCTL);
        assert_eq!(uuid(Endianness::Big)(&SVCCTL.0).unwrap().1, SVCCTL);
        assert!(uuid(Endianness::Little)(&le[..15]).is_err());
    }
}
