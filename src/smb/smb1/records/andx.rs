//! Parameter/data blocks (WordCount, words, ByteCount, bytes) and AndX chains.
//!
//! Anti-loop rule (as Suricata): each AndXOffset must be strictly greater than the offset of the
//! block that names it and inside the message; plus a depth cap (as Zeek). A chain therefore
//! always ends after at most MAX_ANDX_DEPTH blocks or msg.len() bytes of progress.

use super::{andx_header, cmd, Header, Smb1Error, SMB1_HEADER_LEN};
use crate::wire::num::{le_u16, le_u8};
use crate::wire::{clipped, parsed};
use nom::bytes::complete::take;
use nom::sequence::preceded;
use nom::{IResult, Parser};

/// Most blocks followed in one AndX chain (Zeek's `SMB::max_andx_depth`); a longer chain is a
/// `Smb1Error::AndxTooDeep` (an `AndxLoop` anomaly) and the rest of the message is ignored.
pub const MAX_ANDX_DEPTH: usize = 10;

/// NT_CREATE_ANDX extended response (MS-SMB 2.2.4.9.2): WordCount says 42, but 50 words follow.
const NT_CREATE_EXT_RESPONSE_WORDS: u8 = 42;
const NT_CREATE_EXT_RESPONSE_LEN: usize = 100;

/// One command's parameter and data blocks inside a message.
#[derive(Clone, Copy, Debug)]
pub struct Block<'a> {
    pub command: u8,
    /// Offset of the WordCount byte from the header start.
    pub offset: usize,
    pub word_count: u8,
    /// The parameter words (2 × WordCount bytes, except the NT_CREATE_ANDX extended response).
    pub words: &'a [u8],
    pub byte_count: u16,
    /// Offset of the first data byte from the header start.
    pub bytes_offset: usize,
    /// The data block, clipped to the message: shorter than byte_count when the message was cut
    /// (or, for a large WRITE_ANDX, when ByteCount is too small to count its data).
    pub bytes: &'a [u8],
}

impl<'a> Block<'a> {
    /// Parses the block of `command` whose WordCount byte is at `offset`.
    pub fn parse(
        msg: &'a [u8],
        offset: usize,
        command: u8,
        is_response: bool,
    ) -> Result<Block<'a>, Smb1Error> {
        let truncated = || Smb1Error::TruncatedBlock {
            command,
            offset,
            len: msg.len(),
        };
        let count: IResult<&[u8], u8> = preceded(take(offset), le_u8).parse(msg);
        let (after_count, word_count) = count.map_err(|_| truncated())?;
        let mut words_len = usize::from(word_count) * 2;
        // Windows and Samba send 100 bytes under WordCount 42; fall back to 84 if they are not
        // there.
        if is_response
            && command == cmd::NT_CREATE_ANDX
            && word_count == NT_CREATE_EXT_RESPONSE_WORDS
            && after_count.len() >= NT_CREATE_EXT_RESPONSE_LEN + 2
        {
            words_len = NT_CREATE_EXT_RESPONSE_LEN;
        }
        let block: IResult<&[u8], (&[u8], u16)> = (take(words_len), le_u16).parse(after_count);
        let (data, (words, byte_count)) = block.map_err(|_| truncated())?;
        Ok(Block {
            command,
            offset,
            word_count,
            words,
            byte_count,
            bytes_offset: msg.len() - data.len(),
            bytes: clipped(data, 0, usize::from(byte_count)),
        })
    }

    /// Offset just past the data block as ByteCount states it (not clipped).
    pub fn bytes_end(&self) -> usize {
        self.bytes_offset + usize::from(self.byte_count)
    }

    /// Whether the message ended before ByteCount bytes.
    pub fn bytes_truncated(&self) -> bool {
        self.bytes.len() < usize::from(self.byte_count)
    }

    /// (AndXCommand, AndXOffset) of an AndX command's block; `None` when it has no AndX header
    /// (not an AndX command, or an error response with WordCount 0).
    pub fn andx(&self) -> Option<(u8, u16)> {
        if cmd::is_andx(self.command) {
            parsed(andx_header(self.words))
        } else {
            None
        }
    }
}

enum Next {
    Block(u8, usize),
    Fail(Smb1Error),
    Done,
}

/// Iterates the blocks of one message: the header's command, then each AndX follower. Yields at
/// most MAX_ANDX_DEPTH blocks; after an `Err` it yields nothing more.
pub struct AndxChain<'a> {
    msg: &'a [u8],
    is_response: bool,
    next: Next,
    depth: usize,
}

impl<'a> AndxChain<'a> {
    pub fn new(msg: &'a [u8], header: &Header) -> AndxChain<'a> {
        AndxChain {
            msg,
            is_response: header.is_response(),
            next: Next::Block(header.command, SMB1_HEADER_LEN),
            depth: 0,
        }
    }
}

impl<'a> Iterator for AndxChain<'a> {
    type Item = Result<Block<'a>, Smb1Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (command, offset) = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return None,
            Next::Fail(e) => return Some(Err(e)),
            Next::Block(c, o) => (c, o),
        };
        self.depth += 1;
        if self.depth > MAX_ANDX_DEPTH {
            return Some(Err(Smb1Error::AndxTooDeep));
        }
        let block = match Block::parse(self.msg, offset, command, self.is_response) {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        self.next = match block.andx() {
            None | Some((cmd::NO_ANDX, _)) => Next::Done,
            Some((next_cmd, next_off)) => {
                let next = usize::from(next_off);
                if next <= offset {
                    Next::Fail(Smb1Error::AndxBackward {
                        current: offset,
                        next,
                    })
                } else if next >= self.msg.len() {
                    Next::Fail(Smb1Error::AndxPastEnd {
                        next,
                        len: self.msg.len(),
                    })
                } else {
                    Next::Block(next_cmd, next)
                }
            }
        };
        Some(Ok(block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, MsgBuilder};

    /// A SESSION_SETUP_ANDX (WC 12) block whose AndX header names `next` at `next_off`.
    fn andx_words(next: u8, next_off: u16, extra_words: usize) -> Vec<u8> {
        let mut w = vec![next, 0];
        w.extend_from_slice(&next_off.to_le_bytes());
        w.resize(4 + extra_words * 2, 0);
        w
    }

    #[test]
    fn single_non_andx_block() {
        let m = MsgBuilder::request(cmd::CLOSE)
            .words(&[0x34, 0x12, 0, 0, 0, 0])
            .build();
        let h = Header::parse(&m).unwrap();
        let blocks: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(blocks.len(), 1);
        let b = blocks[0].as_ref().unwrap();
        assert_eq!(
            (b.command, b.offset, b.word_count, b.byte_count),
            (cmd::CLOSE, 32, 3, 0)
        );
        assert_eq!(b.andx(), None);
    }

    #[test]
    fn forward_chain_of_two() {
        // TREE_CONNECT_ANDX (4 words, 3 data bytes) at 32 → ends at 32+1+8+2+3 = 46; CLOSE-like
        // second block must be an AndX command: use LOGOFF_ANDX (2 words) at 46.
        let mut m = MsgBuilder::request(cmd::TREE_CONNECT_ANDX)
            .words(&andx_words(cmd::LOGOFF_ANDX, 46, 2))
            .bytes(&[1, 2, 3])
            .build();
        m.extend_from_slice(&[2, 0xFF, 0, 0, 0, 0, 0]);
        let h = Header::parse(&m).unwrap();
        let blocks: Vec<_> = AndxChain::new(&m, &h).collect::<Result<_, _>>().unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].bytes, &[1, 2, 3]);
        assert_eq!(
            (blocks[1].command, blocks[1].offset, blocks[1].word_count),
            (cmd::LOGOFF_ANDX, 46, 2)
        );
    }

    #[test]
    fn looping_offset_is_an_error_not_a_hang() {
        // The block at 32 points back at itself.
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .words(&andx_words(cmd::SESSION_SETUP_ANDX, 32, 10))
            .build();
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        let e = items[1].clone().unwrap_err();
        assert_eq!(
            e,
            Smb1Error::AndxBackward {
                current: 32,
                next: 32
            }
        );
        assert!(e.is_andx_chain());

        // Two blocks pointing at each other: 32 → 60 → 40 (backwards).
        let mut m = MsgBuilder::request(cmd::LOGOFF_ANDX)
            .words(&andx_words(cmd::LOGOFF_ANDX, 60, 0))
            .build();
        m.resize(60, 0);
        m.extend_from_slice(&[2, cmd::LOGOFF_ANDX, 0, 40, 0, 0, 0]);
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].as_ref().unwrap().offset, 60);
        assert_eq!(
            items[2].clone().unwrap_err(),
            Smb1Error::AndxBackward {
                current: 60,
                next: 40
            }
        );
    }

    #[test]
    fn offset_past_the_end_is_an_error() {
        let m = MsgBuilder::request(cmd::NT_CREATE_ANDX)
            .words(&andx_words(cmd::WRITE_ANDX, 0x4000, 22))
            .build();
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[1].clone().unwrap_err(),
            Smb1Error::AndxPastEnd {
                next: 0x4000,
                len: m.len()
            }
        );
        // Exactly at the end is past it too (no room for a WordCount).
        let len = 32 + 1 + 8 + 2;
        let m = MsgBuilder::request(cmd::LOGOFF_ANDX)
            .words(&andx_words(cmd::LOGOFF_ANDX, len as u16, 2))
            .build();
        assert_eq!(m.len(), len);
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(
            items[1].clone().unwrap_err(),
            Smb1Error::AndxPastEnd { next: len, len }
        );
    }

    #[test]
    fn next_block_running_past_the_end_is_truncated() {
        // Offset inside the message, but its WordCount claims more words than remain.
        let mut m = MsgBuilder::request(cmd::LOGOFF_ANDX)
            .words(&andx_words(cmd::NT_CREATE_ANDX, 39, 0))
            .build();
        m.push(24);
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert!(matches!(
            items[1],
            Err(Smb1Error::TruncatedBlock {
                command: cmd::NT_CREATE_ANDX,
                offset: 39,
                ..
            })
        ));
    }

    #[test]
    fn depth_is_capped() {
        // 12 LOGOFF_ANDX blocks each pointing 7 bytes forward.
        let mut m = MsgBuilder::request(cmd::LOGOFF_ANDX)
            .words(&andx_words(cmd::LOGOFF_ANDX, 39, 0))
            .build();
        for i in 1..12u16 {
            let next = 32 + 7 * (i + 1);
            m.extend_from_slice(&[2, cmd::LOGOFF_ANDX, 0]);
            m.extend_from_slice(&next.to_le_bytes());
            m.extend_from_slice(&[0, 0]);
        }
        let h = Header::parse(&m).unwrap();
        let items: Vec<_> = AndxChain::new(&m, &h).collect();
        assert_eq!(items.len(), MAX_ANDX_DEPTH + 1);
        assert!(items[..MAX_ANDX_DEPTH].iter().all(|r| r.is_ok()));
        assert_eq!(
            items[MAX_ANDX_DEPTH].clone().unwrap_err(),
            Smb1Error::AndxTooDeep
        );
    }

    #[test]
    fn nt_create_extended_response_has_100_parameter_bytes() {
        // i1_smb1_psexec frame 18: WordCount 42, ByteCount 0 after 100 bytes (tshark: smb.bcc 0).
        let m = capture_msg("00000087ff534d42a20000000088034800000000000000000000000092f66e1798b000002aff00000000e66801000000000000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000200ff0500000000000000000000000000000000000000000000000000ff011f009b0112000000");
        let h = Header::parse(&m).unwrap();
        let blocks: Vec<_> = AndxChain::new(&m, &h).collect::<Result<_, _>>().unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].word_count, 42);
        assert_eq!(blocks[0].words.len(), 100);
        assert_eq!(blocks[0].byte_count, 0);
    }

    #[test]
    fn every_truncation_of_a_chain_is_an_error_or_fewer_blocks() {
        let mut m = MsgBuilder::request(cmd::TREE_CONNECT_ANDX)
            .words(&andx_words(cmd::LOGOFF_ANDX, 46, 2))
            .bytes(&[1, 2, 3])
            .build();
        m.extend_from_slice(&[2, 0xFF, 0, 0, 0, 0, 0]);
        for cut in 0..m.len() {
            let m = &m[..cut];
            if let Ok(h) = Header::parse(m) {
                let n = AndxChain::new(m, &h).take(100).count();
                assert!(n <= 2);
            }
        }
    }
}
