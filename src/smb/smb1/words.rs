//! The parameter words of one command's block, behind a view that checks the WordCount once.
//!
//! Every SMB1 parser starts the same way: accept some WordCounts (an error response has 0),
//! then read little-endian fields at fixed offsets, then perhaps find counted sections
//! (setup words, transaction parameters and data) by offsets from the header start. `Words`
//! does the first part and reads that cannot panic (0 for bytes that are not there, which the
//! WordCount check makes unreachable for the offsets a parser names); `section` does the last.
//! A parser is then only the list of what is specific to its command.

use super::andx::Block;
use super::header::Smb1Error;
use super::strings::StrCursor;
use super::wire::{slice_clipped, u16_at, u32_at, u64_at, u8_at};

/// A command's parameter words whose WordCount a parser accepted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Words<'a> {
    command: u8,
    count: u8,
    w: &'a [u8],
}

impl<'a> Words<'a> {
    fn of(block: &Block<'a>) -> Words<'a> {
        Words {
            command: block.command,
            count: block.word_count,
            w: block.words,
        }
    }

    fn wrong_count(block: &Block<'_>) -> Smb1Error {
        Smb1Error::WordCount {
            command: block.command,
            got: block.word_count,
        }
    }

    /// The words when WordCount is at least `min`.
    pub(crate) fn at_least(block: &Block<'a>, min: u8) -> Result<Words<'a>, Smb1Error> {
        if block.word_count < min {
            return Err(Words::wrong_count(block));
        }
        Ok(Words::of(block))
    }

    /// The words when WordCount is one of `counts`.
    pub(crate) fn one_of(block: &Block<'a>, counts: &[u8]) -> Result<Words<'a>, Smb1Error> {
        if !counts.contains(&block.word_count) {
            return Err(Words::wrong_count(block));
        }
        Ok(Words::of(block))
    }

    /// A response's words: `Ok(None)` for an error response (WordCount 0), else as `one_of`.
    pub(crate) fn response(
        block: &Block<'a>,
        counts: &[u8],
    ) -> Result<Option<Words<'a>>, Smb1Error> {
        if block.word_count == 0 {
            return Ok(None);
        }
        Words::one_of(block, counts).map(Some)
    }

    /// A response's words: `Ok(None)` for an error response (WordCount 0), else as `at_least`.
    pub(crate) fn response_at_least(
        block: &Block<'a>,
        min: u8,
    ) -> Result<Option<Words<'a>>, Smb1Error> {
        if block.word_count == 0 {
            return Ok(None);
        }
        Words::at_least(block, min).map(Some)
    }

    /// The WordCount accepted.
    pub(crate) fn count(&self) -> u8 {
        self.count
    }

    pub(crate) fn u8(&self, off: usize) -> u8 {
        u8_at(self.w, off)
    }

    pub(crate) fn u16(&self, off: usize) -> u16 {
        u16_at(self.w, off)
    }

    pub(crate) fn u32(&self, off: usize) -> u32 {
        u32_at(self.w, off)
    }

    pub(crate) fn u64(&self, off: usize) -> u64 {
        u64_at(self.w, off)
    }

    /// A 32-bit count split into two 16-bit words (`High:Low`, as the large READ/WRITE counts).
    pub(crate) fn u32_split(&self, high_at: usize, low_at: usize) -> u32 {
        (u32::from(self.u16(high_at)) << 16) | u32::from(self.u16(low_at))
    }

    /// A 64-bit file offset whose high half is optional (`high_at` None: the short form).
    pub(crate) fn offset64(&self, low_at: usize, high_at: Option<usize>) -> u64 {
        let high = high_at.map_or(0, |at| self.u32(at));
        (u64::from(high) << 32) | u64::from(self.u32(low_at))
    }

    /// Counted setup words: the count (in words) is the byte at `count_at`, the words start at
    /// `start`. Err when the count says more words than the block holds.
    pub(crate) fn setup(&self, count_at: usize, start: usize) -> Result<&'a [u8], Smb1Error> {
        let len = usize::from(self.u8(count_at)) * 2;
        start
            .checked_add(len)
            .and_then(|end| self.w.get(start..end))
            .ok_or(Smb1Error::OutOfBounds {
                command: self.command,
                what: "setup words",
            })
    }
}

/// A section that `block` names by (offset from the header start, count): Err when a non-empty
/// section starts inside the header or parameter words; clipped to the message otherwise (a
/// short slice means the message was cut, never an out-of-bounds read).
pub(crate) fn section<'a>(
    msg: &'a [u8],
    block: &Block<'a>,
    what: &'static str,
    offset: usize,
    count: usize,
) -> Result<&'a [u8], Smb1Error> {
    if count > 0 && offset < block.bytes_offset {
        return Err(Smb1Error::OutOfBounds {
            command: block.command,
            what,
        });
    }
    Ok(slice_clipped(msg, offset, count))
}

/// The data block of `block` as a string cursor over `msg` (Unicode alignment counts from the
/// header start), ending where ByteCount says.
pub(crate) fn data_block<'a>(msg: &'a [u8], block: &Block<'a>) -> StrCursor<'a> {
    StrCursor::new(msg, block.bytes_offset, block.bytes_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::header::cmd;
    use crate::smb::smb1::test_util::{first_block, MsgBuilder, W};

    fn msg(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
        MsgBuilder::request(command)
            .words(words)
            .bytes(bytes)
            .build()
    }

    #[test]
    fn word_count_checks() {
        let m = msg(cmd::CLOSE, &W::new().u16(0x1234).u32(0).done(), &[]);
        let (_, b) = first_block(&m);
        assert_eq!(b.word_count, 3);
        assert_eq!(Words::one_of(&b, &[3]).unwrap().u16(0), 0x1234);
        assert_eq!(Words::at_least(&b, 3).unwrap().count(), 3);
        assert!(matches!(
            Words::at_least(&b, 4),
            Err(Smb1Error::WordCount {
                command: cmd::CLOSE,
                got: 3
            })
        ));
        assert!(matches!(
            Words::one_of(&b, &[2, 4]),
            Err(Smb1Error::WordCount {
                command: cmd::CLOSE,
                got: 3
            })
        ));
        assert!(matches!(
            Words::response(&b, &[4]),
            Err(Smb1Error::WordCount { .. })
        ));
        assert!(Words::response(&b, &[3]).unwrap().is_some());

        let m = msg(cmd::CLOSE, &[], &[]);
        let (_, b) = first_block(&m);
        assert!(Words::response(&b, &[3]).unwrap().is_none());
        assert!(Words::response_at_least(&b, 3).unwrap().is_none());
        assert!(Words::at_least(&b, 1).is_err());
    }

    #[test]
    fn reads_past_the_words_are_zero_not_panics() {
        let m = msg(
            cmd::CLOSE,
            &W::new().u16(0xBEEF).done(),
            &[0xAA, 0xBB, 0xCC, 0xDD],
        );
        let (_, b) = first_block(&m);
        let w = Words::at_least(&b, 0).unwrap();
        assert_eq!(w.u16(0), 0xBEEF);
        // Bytes after the words (ByteCount, data) are not words.
        assert_eq!((w.u8(2), w.u16(1), w.u32(0), w.u64(0)), (0, 0, 0, 0));
        assert_eq!(w.u16(usize::MAX), 0);
    }

    #[test]
    fn split_counts_and_offsets() {
        let words = W::new()
            .u16(0x0001)
            .u16(0x0002)
            .u32(0x1122_3344)
            .u32(0x5566_7788)
            .done();
        let m = msg(cmd::WRITE_ANDX, &words, &[]);
        let (_, b) = first_block(&m);
        let w = Words::at_least(&b, 6).unwrap();
        assert_eq!(w.u32_split(0, 2), 0x0001_0002);
        assert_eq!(w.offset64(4, None), 0x1122_3344);
        assert_eq!(w.offset64(4, Some(8)), 0x5566_7788_1122_3344);
    }

    #[test]
    fn setup_words_lying_count() {
        // Count byte 2 at offset 0, words from 2: exactly 2 words present.
        let m = msg(
            cmd::TRANSACTION,
            &W::new().u8(2).u8(0).u16(0x26).u16(0x4000).done(),
            &[],
        );
        let (_, b) = first_block(&m);
        let w = Words::at_least(&b, 3).unwrap();
        assert_eq!(w.setup(0, 2).unwrap(), &[0x26, 0, 0x00, 0x40]);
        // A count of 3 (or 255) words says more than the block holds.
        let m = msg(
            cmd::TRANSACTION,
            &W::new().u8(3).u8(0).u16(0x26).u16(0x4000).done(),
            &[],
        );
        let (_, b) = first_block(&m);
        let w = Words::at_least(&b, 3).unwrap();
        assert!(matches!(
            w.setup(0, 2),
            Err(Smb1Error::OutOfBounds {
                command: cmd::TRANSACTION,
                what: "setup words"
            })
        ));
        // A start past the words with a zero count is an empty slice only if it is in range.
        assert!(w.setup(usize::MAX, usize::MAX).is_err());
    }

    #[test]
    fn sections_inside_words_or_truncated() {
        let m = msg(cmd::TRANSACTION, &W::new().u16(0).done(), &[1, 2, 3, 4]);
        let (_, b) = first_block(&m);
        let at = b.bytes_offset;
        assert_eq!(section(&m, &b, "data offset", at + 1, 2).unwrap(), &[2, 3]);
        // Lying count: clipped to the message, never past it.
        assert_eq!(
            section(&m, &b, "data offset", at + 2, 60_000).unwrap(),
            &[3, 4]
        );
        assert_eq!(
            section(&m, &b, "data offset", usize::MAX, usize::MAX).unwrap(),
            &[] as &[u8]
        );
        // Pointing back into the header or words is an error unless the section is empty.
        assert!(matches!(
            section(&m, &b, "data offset", 4, 2),
            Err(Smb1Error::OutOfBounds {
                command: cmd::TRANSACTION,
                what: "data offset"
            })
        ));
        assert_eq!(section(&m, &b, "data offset", 4, 0).unwrap(), &[] as &[u8]);
    }
}
