//! A bounds-checked NDR reader for request/response stubs: a position over the stub whose
//! primitives are nom parsers (NDR alignment counts from the stub start, so the reader keeps it).
//!
//! NDR aligns every primitive to its size *relative to the start of the stub*, so the reader keeps
//! its own position over the whole stub. Both transfer syntaxes are covered: NDR 2.0 (4-byte
//! pointers and conformance counts) and NDR64 (8-byte pointers and counts, aligned to 8). The data
//! representation (drep) decides the integer byte order: big-endian stubs are legal and honoured.
//!
//! Every read returns `None` when the stub is too short or a count is inconsistent; nothing panics
//! and nothing is allocated beyond [`MAX_NDR_STRING_CHARS`] per string.

use crate::wire::num::{u16 as num_u16, u32 as num_u32, u64 as num_u64};
use nom::bytes::complete::take;
use nom::error::Error;
use nom::number::complete::be_u8;
use nom::number::Endianness;
use nom::Parser;

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

/// An RPC context handle: attributes u32 + uuid, 20 bytes as on the wire.
pub type ContextHandle = [u8; 20];

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

    /// Runs one nom parser at the current position and moves past what it consumed.
    fn run<T>(
        &mut self,
        mut p: impl Parser<&'a [u8], Output = T, Error = Error<&'a [u8]>>,
    ) -> Option<T> {
        let input = self.buf.get(self.pos..)?;
        let (rest, v) = p.parse(input).ok()?;
        self.pos = self.buf.len() - rest.len();
        Some(v)
    }

    fn endianness(&self) -> Endianness {
        if self.big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        }
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        self.run(take(n))
    }

    pub fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.run(be_u8)
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.align(2)?;
        self.run(num_u16(self.endianness()))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.align(4)?;
        self.run(num_u32(self.endianness()))
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.align(8)?;
        self.run(num_u64(self.endianness()))
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
    pub fn context_handle(&mut self) -> Option<ContextHandle> {
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

    /// A `[unique, size_is(argc)] STRING*` argument vector (StartService, SchRpcRun): referent id,
    /// then when non-null the conformant array of unique string pointers and the non-null strings
    /// in order. None when the stub ends inside the pointers; `Some(None)` for a null vector; the
    /// strings read stop at the first that does not parse, and at `max` (the rest is skipped).
    pub fn unique_string_array(&mut self, unit: usize, max: usize) -> Option<Option<Vec<String>>> {
        if self.pointer()? == 0 {
            return Some(None);
        }
        let n = usize::try_from(self.count()?).ok()?;
        let mut present = Vec::with_capacity(n.min(max));
        for i in 0..n {
            let p = self.pointer()?;
            if i < max {
                present.push(p != 0);
            }
        }
        let mut out = Vec::with_capacity(present.len());
        for _ in present.into_iter().filter(|&non_null| non_null) {
            match self.varying_string(unit) {
                Some(s) => out.push(s),
                None => break,
            }
        }
        Some(Some(out))
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

/// The 16 wire bytes (little-endian layout) of a textual UUID; for tests and fixtures.
pub fn uuid_bytes_le(s: &str) -> Option<[u8; 16]> {
    super::uuid::Uuid::parse_str(s).map(super::uuid::Uuid::to_bytes_le)
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
}
