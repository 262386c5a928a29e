//! Pieces every wire-format module shares, written once: turning a nom result into a value, a
//! buffer named by an (offset, length) pair, UTF-16LE and OEM text with a bound, a stable hash, and
//! the hash-map policy for keys that come off the wire.
//!
//! The record modules themselves (NetBIOS, SMB1, SMB2, NTLMSSP, DCE-RPC) are nom 8 parsers over
//! borrowed bytes; this module holds what they would otherwise each write by hand.

pub mod hash;
pub mod maps;
pub mod num;

use nom::bytes::complete::take;
use nom::sequence::preceded;
use nom::{IResult, Parser};

/// The value of a parse, or None when it failed: how state machines take a record.
pub fn parsed<I, T>(r: IResult<I, T>) -> Option<T> {
    r.ok().map(|(_, v)| v)
}

/// `len` bytes at `offset` from the start of `base`, or None when any of them lies outside.
/// SMB2, NTLMSSP and SMB1 name their variable parts this way, counting from a header or token start.
pub fn buffer_at(base: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    parsed(preceded(take(offset), take(len)).parse(base))
}

/// [`buffer_at`], empty when outside: a hostile offset loses only the one field.
pub fn buffer_or_empty(base: &[u8], offset: usize, len: usize) -> &[u8] {
    buffer_at(base, offset, len).unwrap_or(&[])
}

/// `len` bytes at `offset` from the start of `base`, clipped to what is present: a message cut
/// short (or a length that lies) yields the bytes that exist, never a read past them.
pub fn clipped(base: &[u8], offset: usize, len: usize) -> &[u8] {
    let tail = base.get(offset..).unwrap_or(&[]);
    tail.get(..len).unwrap_or(tail)
}

/// UTF-16LE to String (lossy: unpaired surrogates become U+FFFD, an odd last byte is dropped), at
/// most `max_chars` code units.
pub fn utf16le(b: &[u8], max_chars: usize) -> String {
    let pairs = b.chunks_exact(2).take(max_chars);
    // Names on the wire are nearly always ASCII: then the text is every other byte, collected
    // at its exact length (decoding char by char into a growing String cost ~650 instructions a
    // name on the bench slice).
    if pairs.clone().all(|c| c[1] == 0 && c[0].is_ascii()) {
        let ascii: Vec<u8> = pairs.map(|c| c[0]).collect();
        return String::from_utf8(ascii).unwrap_or_default();
    }
    let units = pairs.map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// OEM text read as Latin-1 (no code page is negotiated on the wire), at most `max_chars`.
pub fn latin1(b: &[u8], max_chars: usize) -> String {
    b.iter().take(max_chars).map(|&c| c as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ASCII shortcut and the decoder give the same text: ASCII, non-ASCII, surrogates, odd
    /// lengths and every cut.
    #[test]
    fn utf16le_ascii_shortcut_is_the_decoder() {
        let decode = |b: &[u8], max: usize| -> String {
            let units = b
                .chunks_exact(2)
                .take(max)
                .map(|c| u16::from_le_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect()
        };
        let mut x = 0x1234_5678_9abc_def1u64;
        for round in 0..3000 {
            let b: Vec<u8> = (0..(round % 41))
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match round % 3 {
                        0 if i % 2 == 1 => 0,
                        0 => (x as u8) & 0x7f,
                        1 if i % 2 == 1 => [0, 0, 0, 0xd8, 0xdc, 1][(x % 6) as usize],
                        _ => x as u8,
                    }
                })
                .collect();
            for max in [0, 3, 100] {
                assert_eq!(utf16le(&b, max), decode(&b, max), "{b:?}");
            }
        }
    }

    #[test]
    fn buffers_inside_and_outside() {
        let b = b"0123456789";
        assert_eq!(buffer_at(b, 2, 3), Some(&b"234"[..]));
        assert_eq!(buffer_at(b, 10, 0), Some(&b""[..]));
        assert_eq!(buffer_at(b, 8, 3), None);
        assert_eq!(buffer_at(b, usize::MAX, 1), None);
        assert_eq!(buffer_or_empty(b, 11, 0), b"");
        assert_eq!(clipped(b, 8, 3), b"89");
        assert_eq!(clipped(b, 11, 3), b"");
        assert_eq!(clipped(b, usize::MAX, usize::MAX), b"");
    }

    #[test]
    fn text_is_bounded_and_lossy() {
        let s: Vec<u8> = "ab\u{e9}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(utf16le(&s, 10), "ab\u{e9}");
        assert_eq!(utf16le(&s, 2), "ab");
        assert_eq!(utf16le(&[0x00, 0xd8, b'a', 0, 7], 10), "\u{fffd}a");
        assert_eq!(latin1(b"\xe9t\xe9", 2), "\u{e9}t");
    }
}
