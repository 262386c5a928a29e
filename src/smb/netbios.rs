//! NetBIOS session service (RFC 1002 §4.3) framing as used by SMB over TCP 139 and 445.
//!
//! Every SMB message travels in a 4-byte header: type, then a length. RFC 1002 gives 17 bits
//! (7-bit flags + 16-bit length) and SMB2 "direct TCP" reserves 24 bits; we accept 24 because real
//! servers send up to 8 MiB messages and nothing is lost by being lenient on the top bits.

use crate::wire::parsed;
use nom::combinator::map_opt;
use nom::number::complete::{be_u24, be_u8};
use nom::{IResult, Parser};

/// Session message: the payload is one SMB message.
pub const NBSS_MESSAGE: u8 = 0x00;
pub const NBSS_SESSION_REQUEST: u8 = 0x81;
pub const NBSS_POSITIVE_RESPONSE: u8 = 0x82;
pub const NBSS_NEGATIVE_RESPONSE: u8 = 0x83;
pub const NBSS_RETARGET_RESPONSE: u8 = 0x84;
pub const NBSS_KEEPALIVE: u8 = 0x85;

/// Length of the NetBIOS session header.
pub const NBSS_HEADER_LEN: usize = 4;

/// Largest SMB message length we believe when resynchronising (SMB2 caps at 8 MiB of data plus
/// headers; SMB1 large writes stay below this too).
pub const MAX_PLAUSIBLE_NBSS_LEN: u32 = 16 * 1024 * 1024 - 1;

/// The NetBIOS session message types (RFC 1002 4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NbssKind {
    Message,
    SessionRequest,
    PositiveResponse,
    NegativeResponse,
    RetargetResponse,
    Keepalive,
}

impl NbssKind {
    pub fn from_wire(v: u8) -> Option<NbssKind> {
        Some(match v {
            NBSS_MESSAGE => NbssKind::Message,
            NBSS_SESSION_REQUEST => NbssKind::SessionRequest,
            NBSS_POSITIVE_RESPONSE => NbssKind::PositiveResponse,
            NBSS_NEGATIVE_RESPONSE => NbssKind::NegativeResponse,
            NBSS_RETARGET_RESPONSE => NbssKind::RetargetResponse,
            NBSS_KEEPALIVE => NbssKind::Keepalive,
            _ => return None,
        })
    }
}

/// A NetBIOS session header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NbssHeader {
    pub kind: NbssKind,
    pub length: u32,
}

/// The 4-byte header: a known type, then a 24-bit big-endian length. Fails on fewer than 4
/// bytes or an unknown type.
pub fn parse_nbss_header(b: &[u8]) -> IResult<&[u8], NbssHeader> {
    let (i, (kind, length)) = (map_opt(be_u8, NbssKind::from_wire), be_u24).parse(b)?;
    Ok((i, NbssHeader { kind, length }))
}

/// Whether `b` starts with an SMB-family magic: 0xFF/0xFE/0xFD/0xFC followed by "SMB".
pub fn is_smb_magic(b: &[u8]) -> bool {
    matches!(b.get(..4), Some([0xFC..=0xFF, b'S', b'M', b'B']))
}

/// Smallest SMB message worth resynchronising on (an SMB1 header is 32 bytes, SMB2 64, the
/// compression transform 16).
const MIN_SMB_MESSAGE: u32 = 16;

/// Finds the start of a plausible NetBIOS session message carrying SMB in `b` (Suricata's
/// `search_smb_record` idea): a 0x00 type byte, a length within bounds, and an SMB magic right
/// after the header. Returns the offset of the NetBIOS header.
pub fn find_nbss_smb_record(b: &[u8]) -> Option<usize> {
    let mut i = 0usize;
    while let Some(w) = b.get(i..i + NBSS_HEADER_LEN + 4) {
        if w[0] == NBSS_MESSAGE && is_smb_magic(&w[4..]) {
            if let Some(h) = parsed(parse_nbss_header(w)) {
                if (MIN_SMB_MESSAGE..=MAX_PLAUSIBLE_NBSS_LEN).contains(&h.length) {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_24_bit_length() {
        let h = parsed(parse_nbss_header(&[0x00, 0x01, 0x02, 0x03])).unwrap();
        assert_eq!(
            h,
            NbssHeader {
                kind: NbssKind::Message,
                length: 0x010203
            }
        );
        assert_eq!(
            parsed(parse_nbss_header(&[0x85, 0, 0, 0])).unwrap().kind,
            NbssKind::Keepalive
        );
        assert!(parsed(parse_nbss_header(&[0x00, 0, 0])).is_none());
        assert!(parsed(parse_nbss_header(&[0x42, 0, 0, 0])).is_none());
    }

    #[test]
    fn finds_record_after_garbage() {
        let mut b = vec![0xAAu8, 0x00, 0x13, 0x00, 0xFE, b'S'];
        let at = b.len();
        b.extend_from_slice(&[0x00, 0x00, 0x00, 0x48, 0xFE, b'S', b'M', b'B', 0x40, 0]);
        assert_eq!(find_nbss_smb_record(&b), Some(at));
        // implausible length (too short) is skipped
        assert_eq!(
            find_nbss_smb_record(&[0, 0, 0, 4, 0xFF, b'S', b'M', b'B']),
            None
        );
        assert!(is_smb_magic(b"\xfdSMB"));
        assert!(!is_smb_magic(b"\xfdSM"));
    }
}
