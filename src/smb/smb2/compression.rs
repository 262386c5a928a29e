//! SMB 3.1.1 compression transform (MS-SMB2 2.2.42): the unchained and chained headers as nom
//! records, and the rebuilding of the original message from them.

use super::records::COMPRESSION_MAGIC;
use crate::wire::num::{le_u16, le_u32, le_u8};
use crate::wire::parsed;
use nom::bytes::complete::{tag, take};
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

/// Why a compressed message was not rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecompressError {
    /// A header or payload is cut short or inconsistent.
    Malformed,
    /// The algorithm's data does not decode.
    Corrupt(Algorithm),
    /// LZ4 or an unknown algorithm: no decompressor here.
    Unsupported(Algorithm),
    /// The rebuilt message would pass the caller's cap (or its own OriginalCompressedSegmentSize).
    TooLarge,
}

/// Rebuilds the original SMB2 message from a compression transform (MS-SMB2 3.1.4.4 /
/// 3.3.5.2.x): unchained, the Offset bytes after the header as they are followed by the rest
/// decompressed with the header's algorithm; chained, every payload in order. The output never
/// exceeds `max_out` (nor what the header says it should be), whatever the input claims.
pub fn decompress(msg: &[u8], max_out: usize) -> Result<Vec<u8>, DecompressError> {
    let (rest, h) = parse_compression_header(msg).map_err(|_| DecompressError::Malformed)?;
    let segment = h.original_size as usize;
    let mut out = Vec::new();
    if !h.chained() {
        // Offset bytes stay as they are, the rest decompresses to OriginalCompressedSegmentSize.
        let offset = h.offset_or_length as usize;
        let cap = offset.saturating_add(segment);
        if cap > max_out {
            return Err(DecompressError::TooLarge);
        }
        let (plain, compressed) = (rest.get(..offset), rest.get(offset..));
        let (Some(plain), Some(compressed)) = (plain, compressed) else {
            return Err(DecompressError::Malformed);
        };
        out.extend_from_slice(plain);
        decode(h.algorithm, compressed, segment, cap, &mut out)?;
        return Ok(out);
    }
    // Chained: OriginalCompressedSegmentSize is the whole message's size; payload headers
    // start at offset 8.
    if segment > max_out {
        return Err(DecompressError::TooLarge);
    }
    let mut at = msg.get(8..).ok_or(DecompressError::Malformed)?;
    while !at.is_empty() {
        let (next, p) = parse_chained_payload(at).map_err(|_| DecompressError::Malformed)?;
        let expect = p.original_size.map_or(p.data.len(), |s| s as usize);
        decode(p.algorithm, p.data, expect, segment, &mut out)?;
        at = next;
    }
    Ok(out)
}

/// Decodes one payload of `algorithm` onto `out`, which never grows past `cap`. `expect` is the
/// payload's own uncompressed size where the format states it.
fn decode(
    algorithm: Algorithm,
    data: &[u8],
    expect: usize,
    cap: usize,
    out: &mut Vec<u8>,
) -> Result<(), DecompressError> {
    let room = cap.saturating_sub(out.len());
    match algorithm {
        Algorithm::None => {
            if data.len() > room {
                return Err(DecompressError::TooLarge);
            }
            out.extend_from_slice(data);
        }
        Algorithm::PatternV1 => {
            let p = parsed(parse_pattern_v1(data)).ok_or(DecompressError::Malformed)?;
            let reps = p.repetitions as usize;
            if reps > room {
                return Err(DecompressError::TooLarge);
            }
            out.resize(out.len() + reps, p.pattern);
        }
        Algorithm::Lz77 => super::xpress::decompress_lz77(data, room, out)
            .map_err(|_| DecompressError::Corrupt(algorithm))?,
        Algorithm::Lz77Huffman => {
            // The crate stops at the size it is given; it may overshoot by one match, so the
            // size asked for is the room left, and the result is checked again.
            let want = expect.min(room);
            let plain = xpress_huffman::decompress(data, want)
                .map_err(|_| DecompressError::Corrupt(algorithm))?;
            if plain.len() > room {
                return Err(DecompressError::TooLarge);
            }
            out.extend_from_slice(&plain);
        }
        Algorithm::Lznt1 => decode_lznt1(data, room, out)?,
        Algorithm::Lz4 | Algorithm::Unknown(_) => {
            return Err(DecompressError::Unsupported(algorithm))
        }
    }
    Ok(())
}

/// LZNT1 (MS-XCA 2.5): chunks of at most 4 KiB of output, each with a 2-byte header (size - 1
/// in the low 12 bits, bit 15 set when compressed). Back-references stay inside a chunk, so the
/// `lznt1` crate decodes one chunk at a time and the cap is checked between chunks (the crate
/// itself has no output bound).
fn decode_lznt1(data: &[u8], room: usize, out: &mut Vec<u8>) -> Result<(), DecompressError> {
    const CHUNK_OUTPUT: usize = 4096;
    let start = out.len();
    let mut rest = data;
    while rest.len() >= 2 {
        let (next, header) =
            le_u16::<nom::error::Error<&[u8]>>(rest).map_err(|_| DecompressError::Malformed)?;
        if header == 0 {
            break; // end of stream
        }
        let size = usize::from(header & 0x0fff) + 1;
        let (after, _) = take::<_, _, nom::error::Error<&[u8]>>(size)(next)
            .map_err(|_| DecompressError::Corrupt(Algorithm::Lznt1))?;
        // One chunk decodes to at most 4 KiB; a lying chunk is bounded by its own few KiB of
        // input (at most a few MiB), and refused before it joins the output.
        let chunk = &rest[..2 + size];
        let mut plain = Vec::with_capacity(CHUNK_OUTPUT);
        lznt1::decompress(chunk, &mut plain)
            .map_err(|_| DecompressError::Corrupt(Algorithm::Lznt1))?;
        if plain.len() > CHUNK_OUTPUT {
            return Err(DecompressError::Corrupt(Algorithm::Lznt1));
        }
        if out.len() - start + plain.len() > room {
            return Err(DecompressError::TooLarge);
        }
        out.extend_from_slice(&plain);
        rest = after;
    }
    Ok(())
}

/// Encoders for tests (here and in the integration suite), independent of the decoders above.
#[cfg(any(test, feature = "test-support"))]
pub mod test_encoders {
    /// An LZ77+Huffman stream per MS-XCA 2.1/2.2 whose 512 codes are all 9 bits long (the
    /// 256-byte table of 4-bit lengths is all 0x99, so symbol i's canonical code is i): each
    /// symbol (a literal byte, or 256 + match header) with its extra offset bits (value, count),
    /// then the bit stream in 16-bit little-endian words, most significant bit first. One block:
    /// at most 64 KiB of output.
    pub fn huffman_flat9(symbols: &[(u16, Option<(u32, u32)>)]) -> Vec<u8> {
        let mut out = vec![0x99u8; 256];
        let mut bits: Vec<bool> = Vec::with_capacity(symbols.len() * 9 + 48);
        let put = |v: u32, n: u32, bits: &mut Vec<bool>| {
            for k in (0..n).rev() {
                bits.push(v >> k & 1 == 1);
            }
        };
        for &(sym, extra) in symbols {
            put(u32::from(sym), 9, &mut bits);
            if let Some((v, n)) = extra {
                put(v, n, &mut bits);
            }
        }
        while bits.len() % 16 != 0 {
            bits.push(false);
        }
        bits.extend([false; 32]);
        for w in bits.chunks(16) {
            let v = w.iter().fold(0u16, |a, &b| a << 1 | u16::from(b));
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }
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
        assert_eq!(decompress(&m, 100).unwrap(), b"abcd");
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
        assert_eq!(decompress(&c, 100).unwrap(), b"xyzzzzz");
        // pattern beyond the cap is refused
        assert_eq!(decompress(&c, 3), Err(DecompressError::TooLarge));
        // LZ4 is not implemented
        let mut l = m.clone();
        l[8] = 5;
        assert_eq!(
            decompress(&l, 100),
            Err(DecompressError::Unsupported(Algorithm::Lz4))
        );
    }

    fn unchained(alg: Algorithm, original: u32, offset: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = COMPRESSION_MAGIC.to_vec();
        m.extend_from_slice(&original.to_le_bytes());
        m.extend_from_slice(&alg.code().to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&(offset.len() as u32).to_le_bytes());
        m.extend_from_slice(offset);
        m.extend_from_slice(data);
        m
    }

    // MS-XCA 3.1 example 2 ("abc" x 100) as an unchained LZ77 message with a 4-byte
    // uncompressed prefix.
    #[test]
    fn unchained_lz77_ms_xca_example() {
        let lz = [
            0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
        ];
        let m = unchained(Algorithm::Lz77, 300, b"HEAD", &lz);
        let mut want = b"HEAD".to_vec();
        want.extend(b"abc".repeat(100));
        assert_eq!(decompress(&m, 1000).unwrap(), want);
        assert_eq!(decompress(&m, 303), Err(DecompressError::TooLarge));
        // The header says less than the data gives: refused, not overrun.
        let short = unchained(Algorithm::Lz77, 200, b"HEAD", &lz);
        assert_eq!(
            decompress(&short, 1000),
            Err(DecompressError::Corrupt(Algorithm::Lz77))
        );
    }

    // MS-XCA 3.5 LZNT1 example, chained after an uncompressed payload.
    #[test]
    fn chained_lznt1_ms_xca_example() {
        let text: &[u8] = b"F# F# G A A G F# E D D E F# F# E E F# F# G A A G F# E D D E F# E D D E E F# D E F# G F# D E F# G F# E D E A F# F# G A A G F# E D D E F# E D D\0";
        let lznt1: [u8; 59] = [
            0x38, 0xb0, 0x88, 0x46, 0x23, 0x20, 0x00, 0x20, 0x47, 0x20, 0x41, 0x00, 0x10, 0xa2,
            0x47, 0x01, 0xa0, 0x45, 0x20, 0x44, 0x00, 0x08, 0x45, 0x01, 0x50, 0x79, 0x00, 0xc0,
            0x45, 0x20, 0x05, 0x24, 0x13, 0x88, 0x05, 0xb4, 0x02, 0x4a, 0x44, 0xef, 0x03, 0x58,
            0x02, 0x8c, 0x09, 0x16, 0x01, 0x48, 0x45, 0x00, 0xbe, 0x00, 0x9e, 0x00, 0x04, 0x01,
            0x18, 0x90, 0x00,
        ];
        let mut m = COMPRESSION_MAGIC.to_vec();
        m.extend_from_slice(&(2 + text.len() as u32).to_le_bytes());
        // NONE "ok" (chained flag set in the first payload header)
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&COMPRESSION_FLAG_CHAINED.to_le_bytes());
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(b"ok");
        // LZNT1 with OriginalPayloadSize counted in Length
        m.extend_from_slice(&Algorithm::Lznt1.code().to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&(4 + lznt1.len() as u32).to_le_bytes());
        m.extend_from_slice(&(text.len() as u32).to_le_bytes());
        m.extend_from_slice(&lznt1);
        let mut want = b"ok".to_vec();
        want.extend_from_slice(text);
        assert_eq!(decompress(&m, 1000).unwrap(), want);
        for n in 0..m.len() {
            let _ = decompress(&m[..n], 1000);
        }
    }

    #[test]
    fn unchained_lz77_huffman() {
        // "abc", then a match of length 6 at offset 3: symbol 256 + (1 << 4 | (6 - 3)), one
        // extra offset bit (3 = 2^1 + 1).
        let stream = test_encoders::huffman_flat9(&[
            (u16::from(b'a'), None),
            (u16::from(b'b'), None),
            (u16::from(b'c'), None),
            (256 + (1 << 4) + 3, Some((1, 1))),
        ]);
        let m = unchained(Algorithm::Lz77Huffman, 9, b"", &stream);
        assert_eq!(decompress(&m, 100).unwrap(), b"abcabcabc");
        assert_eq!(decompress(&m, 8), Err(DecompressError::TooLarge));
    }
}
