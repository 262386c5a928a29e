//! Plain LZ77 ("LZXpress", MS-XCA 2.3/2.4) decompression with an output bound.
//!
//! Written here rather than taken from a crate: the one maintained Rust decoder of this format
//! (rust-lzxpress, used in the tests as an independent encoder and decoder) has no output bound,
//! and a single match in this format may claim a 32-bit length, so a few hostile bytes would make
//! it allocate gigabytes. This decoder stops at `room` bytes. The format is a byte stream with
//! 32-bit flag words; nom buys nothing for it (the length nibbles are shared between two matches).

/// Why the stream did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XpressError {
    /// Cut short inside a flag word or match.
    Truncated,
    /// A match reaches before the start of the output, or a length is inconsistent.
    Corrupt,
    /// The output would pass the bound.
    TooLarge,
}

struct Input<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn u8(&mut self) -> Result<u8, XpressError> {
        let v = *self.b.get(self.pos).ok_or(XpressError::Truncated)?;
        self.pos += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, XpressError> {
        Ok(u16::from(self.u8()?) | u16::from(self.u8()?) << 8)
    }
    fn u32(&mut self) -> Result<u32, XpressError> {
        Ok(u32::from(self.u16()?) | u32::from(self.u16()?) << 16)
    }
}

/// Decodes `data` onto the end of `out`, adding at most `room` bytes.
pub fn decompress_lz77(data: &[u8], room: usize, out: &mut Vec<u8>) -> Result<(), XpressError> {
    let start = out.len();
    let limit = start.saturating_add(room);
    let mut inp = Input { b: data, pos: 0 };
    let (mut flags, mut flag_count) = (0u32, 0u32);
    // Where the next shared length nibble is (its high half is for the match after).
    let mut half_byte: Option<usize> = None;
    loop {
        if flag_count == 0 {
            if inp.done() {
                return Ok(());
            }
            flags = inp.u32()?;
            flag_count = 32;
        }
        flag_count -= 1;
        if flags & (1 << flag_count) == 0 {
            if inp.done() {
                return Ok(());
            }
            if out.len() >= limit {
                return Err(XpressError::TooLarge);
            }
            out.push(inp.u8()?);
            continue;
        }
        if inp.done() {
            return Ok(());
        }
        let match_bytes = inp.u16()?;
        let offset = usize::from(match_bytes / 8) + 1;
        let mut length = usize::from(match_bytes % 8);
        if length == 7 {
            length = match half_byte.take() {
                None => {
                    let at = inp.pos;
                    half_byte = Some(at);
                    usize::from(inp.u8()? % 16)
                }
                Some(at) => usize::from(data[at] / 16),
            };
            if length == 15 {
                length = usize::from(inp.u8()?);
                if length == 255 {
                    length = usize::from(inp.u16()?);
                    if length == 0 {
                        length = inp.u32()? as usize;
                    }
                    length = length.checked_sub(15 + 7).ok_or(XpressError::Corrupt)?;
                }
                length += 15;
            }
            length += 7;
        }
        length += 3;
        if offset > out.len() - start {
            return Err(XpressError::Corrupt);
        }
        if length > limit - out.len() {
            return Err(XpressError::TooLarge);
        }
        // Overlapping copies repeat the last `offset` bytes, byte by byte.
        let from = out.len() - offset;
        for k in 0..length {
            let b = out[from + k];
            out.push(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(data: &[u8], room: usize) -> Result<Vec<u8>, XpressError> {
        let mut out = Vec::new();
        decompress_lz77(data, room, &mut out).map(|()| out)
    }

    // MS-XCA 3.1 (LZ77 example 1 and 2).
    #[test]
    fn ms_xca_examples() {
        let mut one = vec![0x3f, 0, 0, 0];
        one.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
        assert_eq!(run(&one, 1000).unwrap(), b"abcdefghijklmnopqrstuvwxyz");
        let two = [
            0xff, 0xff, 0xff, 0x1f, 0x61, 0x62, 0x63, 0x17, 0x00, 0x0f, 0xff, 0x26, 0x01,
        ];
        assert_eq!(run(&two, 1000).unwrap(), b"abc".repeat(100));
        assert_eq!(run(&two, 299), Err(XpressError::TooLarge));
    }

    #[test]
    fn hostile_lengths_and_offsets_are_bounded() {
        // One literal, then a match claiming a 32-bit length: refused at the bound, no allocation.
        let bomb = [
            0x00, 0x00, 0x00, 0x40, b'a', 0x07, 0x00, 0x0f, 0xff, 0x00, 0x00, 0xff, 0xff, 0xff,
            0x7f,
        ];
        assert_eq!(run(&bomb, 1 << 20), Err(XpressError::TooLarge));
        // A match reaching before the output.
        assert_eq!(
            run(&[0, 0, 0, 0x80, 0x08, 0x00], 100),
            Err(XpressError::Corrupt)
        );
        for n in 0..bomb.len() {
            let _ = run(&bomb[..n], 1 << 20);
        }
    }
}
