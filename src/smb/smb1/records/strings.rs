//! SMB1 strings: UTF-16LE (FLAGS2_UNICODE) aligned to 2 bytes from the header start, or OEM
//! bytes; NUL-terminated or of a given length. Views borrow the wire bytes; decoding is lossy
//! and bounded.

/// Longest string decoded, in wire bytes (2048 UTF-16 units: far beyond MAX_PATH). Longer
/// strings are cut here; `SmbStr::is_oversized` lets the state machine report the cap.
pub const MAX_STRING_BYTES: usize = 4096;

/// A string as it sits on the wire (terminator excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SmbStr<'a> {
    pub raw: &'a [u8],
    pub unicode: bool,
}

impl<'a> SmbStr<'a> {
    pub fn new(raw: &'a [u8], unicode: bool) -> SmbStr<'a> {
        SmbStr { raw, unicode }
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Longer than MAX_STRING_BYTES: `decode` returns a prefix.
    pub fn is_oversized(&self) -> bool {
        self.raw.len() > MAX_STRING_BYTES
    }

    /// Lossy text of at most MAX_STRING_BYTES wire bytes, trailing NULs dropped.
    pub fn decode(&self) -> String {
        let raw = self.raw.get(..MAX_STRING_BYTES).unwrap_or(self.raw);
        let mut s = if self.unicode {
            crate::wire::utf16le(raw, MAX_STRING_BYTES / 2)
        } else {
            // OEM code page unknown: ASCII is exact, the rest is replaced rather than guessed.
            String::from_utf8_lossy(raw).into_owned()
        };
        while s.ends_with('\0') {
            s.pop();
        }
        s
    }
}

/// A cursor over one message's bytes for the strings of a data block; offsets are absolute
/// (from the header start) so that Unicode alignment is computed as on the wire.
#[derive(Clone, Debug)]
pub struct StrCursor<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
    /// Where `msg[0]` sits from the header start (non-zero for a reassembled buffer).
    base: usize,
}

impl<'a> StrCursor<'a> {
    /// Reads `msg[pos..end]` (end clipped to the message).
    pub fn new(msg: &'a [u8], pos: usize, end: usize) -> StrCursor<'a> {
        let end = end.min(msg.len());
        StrCursor {
            msg,
            pos: pos.min(end),
            end,
            base: 0,
        }
    }

    /// Reads a separate buffer (reassembled transaction parameters, say) whose first byte was
    /// at `base` from the header start, so that alignment is still computed as on the wire.
    pub fn over(buf: &'a [u8], pos: usize, base: usize) -> StrCursor<'a> {
        StrCursor {
            msg: buf,
            pos: pos.min(buf.len()),
            end: buf.len(),
            base,
        }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.end - self.pos
    }

    /// Skips `n` bytes (clipped); false when fewer were there.
    pub fn skip(&mut self, n: usize) -> bool {
        let want = self.pos.saturating_add(n);
        self.pos = want.min(self.end);
        want <= self.end
    }

    /// Takes `n` bytes (clipped to what is there).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos;
        self.skip(n);
        self.msg.get(start..self.pos).unwrap_or(&[])
    }

    /// Skips the pad byte that puts a Unicode string on an even offset from the header start.
    pub fn align_unicode(&mut self, unicode: bool) {
        if unicode && self.base.wrapping_add(self.pos) % 2 == 1 {
            self.skip(1);
        }
    }

    /// A NUL-terminated string (aligned first if Unicode); runs to the end of the block when the
    /// terminator is missing.
    pub fn string(&mut self, unicode: bool) -> SmbStr<'a> {
        self.align_unicode(unicode);
        self.string_unaligned(unicode)
    }

    /// A NUL-terminated string read where the cursor is, without the alignment pad (the few
    /// fields that servers send unaligned, such as the negotiate response's domain name).
    pub fn string_unaligned(&mut self, unicode: bool) -> SmbStr<'a> {
        let rest = self.msg.get(self.pos..self.end).unwrap_or(&[]);
        let (len, term) = if unicode {
            match rest.chunks_exact(2).position(|c| c == [0, 0]) {
                Some(i) => (i * 2, 2),
                None => (rest.len() & !1, rest.len() & 1),
            }
        } else {
            match rest.iter().position(|&b| b == 0) {
                Some(i) => (i, 1),
                None => (rest.len(), 0),
            }
        };
        let s = SmbStr::new(rest.get(..len).unwrap_or(&[]), unicode);
        self.skip(len + term);
        s
    }

    /// An OEM (8-bit) NUL-terminated string, whatever FLAGS2 says (service names in tree
    /// connect, dialect names).
    pub fn oem_string(&mut self) -> SmbStr<'a> {
        self.string(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_alignment_is_relative_to_header_start() {
        // byte 0 is a pad at odd offset 1 → string starts at 2
        let msg = [0xAA, 0xEE, b'A', 0, b'B', 0, 0, 0, b'x', 0];
        let mut c = StrCursor::new(&msg, 1, msg.len());
        let s = c.string(true);
        assert_eq!(s.decode(), "AB");
        assert_eq!(c.pos(), 8);
        // OEM: no alignment
        let mut c = StrCursor::new(&msg, 1, msg.len());
        assert_eq!(c.string(false).raw, &[0xEE, b'A']);
        assert_eq!(c.pos(), 4);
    }

    #[test]
    fn unterminated_strings_stop_at_block_end() {
        let msg = [b'a', 0, b'b', 0, b'c'];
        let mut c = StrCursor::new(&msg, 0, 5);
        assert_eq!(c.string(true).decode(), "ab");
        assert_eq!(c.remaining(), 0);
        let mut c = StrCursor::new(b"abc", 0, 99);
        assert_eq!(c.string(false).decode(), "abc");
        let mut c = StrCursor::new(b"abc", 7, 99);
        assert!(c.string(false).is_empty());
    }

    #[test]
    fn decode_is_lossy_and_bounded() {
        // lone surrogate → replacement character
        assert_eq!(
            SmbStr::new(&[0x00, 0xD8, b'a', 0], true).decode(),
            "\u{FFFD}a"
        );
        assert_eq!(SmbStr::new(&[b'a', 0xFF], false).decode(), "a\u{FFFD}");
        assert_eq!(SmbStr::new(b"x\0\0", false).decode(), "x");
        let big = vec![b'a'; MAX_STRING_BYTES + 10];
        let s = SmbStr::new(&big, false);
        assert!(s.is_oversized());
        assert_eq!(s.decode().len(), MAX_STRING_BYTES);
    }
}
