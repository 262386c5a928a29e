//! A bounds-checked NDR reader for request/response stubs.
//!
//! NDR aligns every primitive to its size *relative to the start of the stub*, so the reader keeps
//! its own position over the whole stub. Both transfer syntaxes are covered: NDR 2.0 (4-byte
//! pointers and conformance counts) and NDR64 (8-byte pointers and counts, aligned to 8). The data
//! representation (drep) decides the integer byte order: big-endian stubs are legal and honoured.
//!
//! Every read returns `None` when the stub is too short or a count is inconsistent; nothing panics
//! and nothing is allocated beyond [`MAX_NDR_STRING_CHARS`] per string.

/// Longest string (in characters) we decode from a stub; longer ones are cut. Binary paths of
/// PowerShell launchers run to a few KiB, task XML to tens of KiB.
pub const MAX_NDR_STRING_CHARS: usize = 64 * 1024;

/// Which NDR flavour the stub uses (from the presentation context's negotiated transfer syntax).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Syntax {
    #[default]
    Ndr20,
    Ndr64,
}

#[derive(Clone, Debug)]
pub struct NdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
    syntax: Syntax,
}

impl<'a> NdrReader<'a> {
    pub fn new(buf: &'a [u8], big_endian: bool, syntax: Syntax) -> NdrReader<'a> {
        NdrReader {
            buf,
            pos: 0,
            big_endian,
            syntax,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    /// Align to `n` (a power of two) from the start of the stub.
    pub fn align(&mut self, n: usize) -> Option<()> {
        let mask = n.checked_sub(1)?;
        let next = self.pos.checked_add(mask)? & !mask;
        if next > self.buf.len() {
            return None;
        }
        self.pos = next;
        Some(())
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.align(2)?;
        let b: [u8; 2] = self.bytes(2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.align(4)?;
        let b: [u8; 4] = self.bytes(4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.align(8)?;
        let b: [u8; 8] = self.bytes(8)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// A conformance/variance count or size_t: u32 in NDR 2.0, u64 in NDR64.
    pub fn count(&mut self) -> Option<u64> {
        match self.syntax {
            Syntax::Ndr20 => self.u32().map(u64::from),
            Syntax::Ndr64 => self.u64(),
        }
    }

    /// A pointer's referent id (0 = null): 4 bytes in NDR 2.0, 8 in NDR64.
    pub fn pointer(&mut self) -> Option<u64> {
        self.count()
    }

    /// A 20-byte context handle (attributes u32 + uuid), aligned to 4.
    pub fn context_handle(&mut self) -> Option<[u8; 20]> {
        self.align(4)?;
        self.bytes(20)?.try_into().ok()
    }

    /// A conformant varying string: max_count, offset, actual_count, then `actual_count` elements
    /// of `unit` bytes (2 for UTF-16, 1 for ANSI). The trailing NUL is dropped.
    pub fn varying_string(&mut self, unit: usize) -> Option<String> {
        let max = self.count()?;
        let offset = self.count()?;
        let actual = self.count()?;
        // actual_count beyond max_count (or an offset that pushes past it) is malformed.
        if actual > max || offset > max.saturating_sub(actual) {
            return None;
        }
        let n = usize::try_from(actual).ok()?;
        let len = n.checked_mul(unit)?;
        let body = self.bytes(len)?;
        Some(decode_chars(body, unit, self.big_endian))
    }

    /// A `[unique, string]` pointer: referent id, then the string when non-null.
    pub fn unique_string(&mut self, unit: usize) -> Option<Option<String>> {
        if self.pointer()? == 0 {
            return Some(None);
        }
        self.varying_string(unit).map(Some)
    }

    /// A `[unique] DWORD*`.
    pub fn unique_u32(&mut self) -> Option<Option<u32>> {
        if self.pointer()? == 0 {
            return Some(None);
        }
        self.u32().map(Some)
    }

    /// A `[unique, size_is(n)] BYTE*`: referent id, then a conformant byte array when non-null.
    pub fn unique_byte_array(&mut self) -> Option<Option<&'a [u8]>> {
        if self.pointer()? == 0 {
            return Some(None);
        }
        let n = usize::try_from(self.count()?).ok()?;
        self.bytes(n).map(Some)
    }
}

/// UTF-16 or ANSI code units to a String, NUL-terminated, at most [`MAX_NDR_STRING_CHARS`].
pub fn decode_chars(body: &[u8], unit: usize, big_endian: bool) -> String {
    if unit == 2 {
        let units = body
            .chunks_exact(2)
            .map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .take_while(|&u| u != 0)
            .take(MAX_NDR_STRING_CHARS);
        char::decode_utf16(units)
            .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    } else {
        // ANSI strings in the A-variants are the client's code page; Latin-1 keeps every byte visible.
        body.iter()
            .take_while(|&&b| b != 0)
            .take(MAX_NDR_STRING_CHARS)
            .map(|&b| b as char)
            .collect()
    }
}

/// A UUID as stored in NDR / DCE-RPC headers: time_low u32, time_mid u16, time_hi u16 in the data
/// representation's byte order, then eight bytes as they are.
pub fn uuid_string(b: &[u8; 16], big_endian: bool) -> String {
    let (a, m, h) = if big_endian {
        (
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]),
        )
    } else {
        (
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
        )
    };
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        a, m, h, b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// The 16 wire bytes (little-endian layout) of a textual UUID; for tests and fixtures.
pub fn uuid_bytes_le(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, slot) in raw.iter_mut().enumerate() {
        *slot = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    raw[0..4].reverse();
    raw[4..6].reverse();
    raw[6..8].reverse();
    Some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wstr_le(s: &str) -> Vec<u8> {
        let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
        let mut v = Vec::new();
        v.extend_from_slice(&(units.len() as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(units.len() as u32).to_le_bytes());
        for u in units {
            v.extend_from_slice(&u.to_le_bytes());
        }
        v
    }

    #[test]
    fn reads_varying_string_and_aligns_after_it() {
        let mut b = wstr_le("nUwj"); // 12 + 10 bytes = 22
        b.extend_from_slice(&[0xaa, 0xaa]); // pad to 24
        b.extend_from_slice(&0x000f_01ffu32.to_le_bytes());
        let mut r = NdrReader::new(&b, false, Syntax::Ndr20);
        assert_eq!(r.varying_string(2).as_deref(), Some("nUwj"));
        assert_eq!(r.u32(), Some(0x000f_01ff));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn rejects_actual_count_above_max_and_short_bodies() {
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&[0x41, 0, 0x42, 0, 0x43, 0, 0x44, 0, 0, 0]);
        assert_eq!(
            NdrReader::new(&b, false, Syntax::Ndr20).varying_string(2),
            None
        );
        let mut short = wstr_le("abcdef");
        short.truncate(16);
        assert_eq!(
            NdrReader::new(&short, false, Syntax::Ndr20).varying_string(2),
            None
        );
        let huge = [0xffu8; 12];
        assert_eq!(
            NdrReader::new(&huge, false, Syntax::Ndr20).varying_string(2),
            None
        );
    }

    #[test]
    fn big_endian_integers_and_strings() {
        let mut b = Vec::new();
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(&[0, b'h', 0, b'i', 0, 0]);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        let mut r = NdrReader::new(&b, true, Syntax::Ndr20);
        assert_eq!(r.varying_string(2).as_deref(), Some("hi"));
        assert_eq!(r.u32(), Some(0x0102_0304));
    }

    #[test]
    fn ndr64_counts_and_pointers_are_eight_bytes_aligned() {
        let mut b = Vec::new();
        b.extend_from_slice(&0x0002_0000u32.to_le_bytes()); // a u32 first, so the pointer must align
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&0x0002_0004u64.to_le_bytes()); // referent
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&2u64.to_le_bytes());
        b.extend_from_slice(&[b'x', 0, 0, 0]);
        let mut r = NdrReader::new(&b, false, Syntax::Ndr64);
        assert_eq!(r.u32(), Some(0x0002_0000));
        assert_eq!(r.unique_string(2), Some(Some("x".to_string())));
    }

    #[test]
    fn uuid_round_trip() {
        let s = "367abb81-9844-35f1-ad32-98f038001003";
        let b = uuid_bytes_le(s).unwrap();
        assert_eq!(&b[..4], &[0x81, 0xbb, 0x7a, 0x36]);
        assert_eq!(uuid_string(&b, false), s);
    }
}
