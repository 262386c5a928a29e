//! SMB 3.1.1 compression transform (MS-SMB2 2.2.42): the unchained and chained headers as nom
//! records, and the rebuilding of the original message from them.

use super::records::COMPRESSION_MAGIC;
use crate::wire::parsed;
use nom::bytes::complete::{tag, take};
use nom::number::complete::{le_u16, le_u32, le_u8};
use nom::{IResult, Parser};

/// Size of the unchained header (and of the chained one up to its first payload's data).
pub const COMPRESSION_HEADER_LEN: usize = 16;

/// The compression algorithms (MS-SMB2 2.2.3.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    None,
    Lznt1,
    Lz77,
    Lz77Huffman,
    PatternV1,
    Lz4,
    Unknown(u16),
}

impl Algorithm {
    pub fn from_wire(v: u16) -> Algorithm {
        match v {
            0 => Algorithm::None,
            1 => Algorithm::Lznt1,
            2 => Algorithm::Lz77,
            3 => Algorithm::Lz77Huffman,
            4 => Algorithm::PatternV1,
            5 => Algorithm::Lz4,
            other => Algorithm::Unknown(other),
        }
    }
    pub fn code(self) -> u16 {
        match self {
            Algorithm::None => 0,
            Algorithm::Lznt1 => 1,
            Algorithm::Lz77 => 2,
            Algorithm::Lz77Huffman => 3,
            Algorithm::PatternV1 => 4,
            Algorithm::Lz4 => 5,
            Algorithm::Unknown(v) => v,
        }
    }
    /// Chained payloads of these algorithms carry OriginalPayloadSize (MS-SMB2 2.2.42.2.1).
    fn has_original_size(self) -> bool {
        !matches!(self, Algorithm::None | Algorithm::PatternV1)
    }
}

pub const COMPRESSION_FLAG_CHAINED: u16 = 1;

/// The fields common to both header forms: OriginalCompressedSegmentSize, and the algorithm and
/// flags at bytes 8..12 (the unchained header's, or the chained form's first payload header's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionHeader {
    pub original_size: u32,
    pub algorithm: Algorithm,
    pub flags: u16,
    /// Unchained: bytes of uncompressed data right after the header. Chained: the first payload
    /// header's Length.
    pub offset_or_length: u32,
}

impl CompressionHeader {
    pub fn chained(&self) -> bool {
        self.flags & COMPRESSION_FLAG_CHAINED != 0
    }
}

pub fn parse_compression_header(b: &[u8]) -> IResult<&[u8], CompressionHeader> {
    let (i, (_, original_size, algorithm, flags, offset_or_length)) =
        (tag(&COMPRESSION_MAGIC[..]), le_u32, le_u16, le_u16, le_u32).parse(b)?;
    Ok((
        i,
        CompressionHeader {
            original_size,
            algorithm: Algorithm::from_wire(algorithm),
            flags,
            offset_or_length,
        },
    ))
}

/// One payload of a chained message (MS-SMB2 2.2.42.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainedPayload<'a> {
    pub algorithm: Algorithm,
    pub flags: u16,
    /// OriginalPayloadSize, for the algorithms that carry it.
    pub original_size: Option<u32>,
    /// The payload after its header (and OriginalPayloadSize), Length bytes in all.
    pub data: &'a [u8],
}

pub fn parse_chained_payload(i: &[u8]) -> IResult<&[u8], ChainedPayload<'_>> {
    let (i, (algorithm, flags, length)) = (le_u16, le_u16, le_u32).parse(i)?;
    let (rest, payload) = take(length)(i)?;
    let algorithm = Algorithm::from_wire(algorithm);
    // Length counts OriginalPayloadSize when present.
    let (data, original_size) = if algorithm.has_original_size() {
        le_u32(payload).map(|(d, s)| (d, Some(s)))?
    } else {
        (payload, None)
    };
    Ok((
        rest,
        ChainedPayload {
            algorithm,
            flags,
            original_size,
            data,
        },
    ))
}

/// PATTERN_V1 payload (MS-SMB2 2.2.42.2.2): one byte repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatternV1 {
    pub pattern: u8,
    pub repetitions: u32,
}

pub fn parse_pattern_v1(i: &[u8]) -> IResult<&[u8], PatternV1> {
    let (i, (pattern, _r1, _r2, repetitions)) = (le_u8, le_u8, le_u16, le_u32).parse(i)?;
    Ok((
        i,
        PatternV1 {
            pattern,
            repetitions,
        },
    ))
}

/// Appends `bytes` to `out` unless the total would pass `cap`.
fn push_capped(out: &mut Vec<u8>, bytes: &[u8], cap: usize) -> Option<()> {
    if out.len().saturating_add(bytes.len()) > cap {
        return None;
    }
    out.extend_from_slice(bytes);
    Some(())
}

/// Rebuilds a compressed message when it only uses the algorithms that need no decompressor:
/// unchained NONE, chained NONE and Pattern_V1 payloads. None for LZ77/LZNT1/Huffman/LZ4 (not
/// implemented) or malformed input. The output never exceeds `max_out`.
pub fn decompress_simple(msg: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let (rest, h) = parse_compression_header(msg).ok()?;
    let cap = (h.original_size as usize).min(max_out);
    if !h.chained() {
        if h.algorithm != Algorithm::None {
            return None;
        }
        return Some(rest.get(..rest.len().min(cap))?.to_vec());
    }
    let mut out = Vec::new();
    // Chained: payload headers start at offset 8.
    let mut at = msg.get(8..)?;
    while !at.is_empty() {
        let (next, p) = parse_chained_payload(at).ok()?;
        match p.algorithm {
            Algorithm::None => push_capped(&mut out, p.data, cap)?,
            Algorithm::PatternV1 => {
                let pat = parsed(parse_pattern_v1(p.data))?;
                let reps = pat.repetitions as usize;
                if out.len().saturating_add(reps) > cap {
                    return None;
                }
                out.resize(out.len() + reps, pat.pattern);
            }
            _ => return None,
        }
        at = next;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_simple_forms() {
        // unchained NONE
        let mut m = COMPRESSION_MAGIC.to_vec();
        m.extend_from_slice(&4u32.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(b"abcd");
        assert_eq!(decompress_simple(&m, 100).unwrap(), b"abcd");
        // chained: NONE "xy" then Pattern_V1 of 5 x 'z'
        let mut c = COMPRESSION_MAGIC.to_vec();
        c.extend_from_slice(&7u32.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&1u16.to_le_bytes());
        c.extend_from_slice(&2u32.to_le_bytes());
        c.extend_from_slice(b"xy");
        c.extend_from_slice(&4u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&8u32.to_le_bytes());
        c.extend_from_slice(&[b'z', 0, 0, 0, 5, 0, 0, 0]);
        let h = parsed(parse_compression_header(&c)).unwrap();
        assert!(h.chained());
        assert_eq!(decompress_simple(&c, 100).unwrap(), b"xyzzzzz");
        // pattern beyond the cap is refused
        assert!(decompress_simple(&c, 3).is_none());
        // LZ77 is not implemented
        let mut l = m.clone();
        l[8] = 2;
        assert!(decompress_simple(&l, 100).is_none());
    }
}
