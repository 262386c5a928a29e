//! Classic pcap records read straight out of one reused block buffer: the hot path of `read`.
//!
//! pcap-parser's reader parses each record through nom and shifts its circular buffer after every
//! record; here a record is 16 header bytes and its data, so we read large blocks, walk the records
//! in place and only move the partial record left at the end of a block. Handles the four standard
//! magics (µs/ns, either byte order); the "modified" format stays with pcap-parser.

use super::{DynRead, MAX_CAPTURE_RECORD_BYTES};
use crate::time::Ts;
use std::io::{self, Read};

/// Bytes asked of the stream per read: large enough that syscalls are rare, small enough to stay
/// in cache and keep memory flat.
pub(super) const READ_BLOCK_BYTES: usize = 1 << 20;

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// What the 24-byte file header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub big_endian: bool,
    pub nanos: bool,
    pub linktype: u32,
}

/// The file header at the start of `head`, when it is one of the four standard magics (the ones
/// this reader handles); None for anything else (pcap-parser then reports on it).
pub(super) fn header(head: &[u8]) -> Option<Header> {
    let h: &[u8; FILE_HEADER_LEN] = head.get(..FILE_HEADER_LEN)?.try_into().ok()?;
    let (big_endian, nanos) = match [h[0], h[1], h[2], h[3]] {
        [0xd4, 0xc3, 0xb2, 0xa1] => (false, false),
        [0x4d, 0x3c, 0xb2, 0xa1] => (false, true),
        [0xa1, 0xb2, 0xc3, 0xd4] => (true, false),
        [0xa1, 0xb2, 0x3c, 0x4d] => (true, true),
        _ => return None,
    };
    let lt = [h[20], h[21], h[22], h[23]];
    let linktype = if big_endian {
        u32::from_be_bytes(lt)
    } else {
        u32::from_le_bytes(lt)
    };
    Some(Header {
        big_endian,
        nanos,
        linktype,
    })
}

/// One record, borrowed from the reader's buffer.
pub(super) struct Record<'a> {
    pub ts: Ts,
    pub orig_len: u32,
    pub data: &'a [u8],
}

/// Why reading stopped early.
#[derive(Debug)]
pub(super) enum Stop {
    /// The stream ended inside a record.
    Truncated,
    /// A record declared a length the cap refuses.
    TooLarge,
    Io,
}

/// The header of the record at the front of the buffer, read once by [`LegacyReader::ready`] and
/// used by [`LegacyReader::take`] (a merge of several files asks for the time before it takes).
#[derive(Clone, Copy, Debug)]
struct Head {
    ts: Ts,
    /// Header and data.
    total: usize,
    orig_len: u32,
}

pub(super) struct LegacyReader {
    stream: DynRead,
    header: Header,
    buf: Vec<u8>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    eof: bool,
    /// Set by `ready` once the record at `start` is buffered whole; taken by `take`.
    head: Option<Head>,
}

impl LegacyReader {
    /// `head` is the start of the stream (already read, at least the file header); `rest` follows.
    /// The buffer holds `block` bytes (at least `head`; it grows for a larger record).
    pub fn new(header: Header, head: Vec<u8>, rest: DynRead, block: usize) -> LegacyReader {
        let mut buf = head;
        let end = buf.len();
        buf.resize(end.max(block), 0);
        LegacyReader {
            stream: rest,
            header,
            buf,
            start: FILE_HEADER_LEN.min(end),
            end,
            eof: false,
            head: None,
        }
    }

    pub fn linktype(&self) -> u32 {
        self.header.linktype
    }

    /// Ensure `want` unread bytes are buffered (false when the stream ends first).
    #[inline]
    fn fill(&mut self, want: usize) -> Result<bool, Stop> {
        // The common case (the record lies in the block already read) costs one compare.
        if self.end - self.start >= want {
            return Ok(true);
        }
        self.refill(want)
    }

    #[cold]
    fn refill(&mut self, want: usize) -> Result<bool, Stop> {
        while self.end - self.start < want {
            if self.eof {
                return Ok(false);
            }
            if self.start > 0 {
                // Only the partial record at the end of the last block moves.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() < want {
                // want is bounded by MAX_CAPTURE_RECORD_BYTES (checked by the caller).
                self.buf.resize(want, 0);
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.stream.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Io),
            }
        }
        Ok(true)
    }

    /// The next record; Ok(None) at a clean end of the stream.
    pub fn next(&mut self) -> Result<Option<Record<'_>>, Stop> {
        Ok(self.ready()?.map(|_| self.take()))
    }

    /// Buffers the next record whole and returns its time, without consuming it (a merge of
    /// several files looks at every file's next time before it takes one); Ok(None) at a clean
    /// end of the stream. Calling it again before [`Self::take`] costs nothing.
    pub fn ready(&mut self) -> Result<Option<Ts>, Stop> {
        if let Some(h) = self.head {
            return Ok(Some(h.ts));
        }
        if !self.fill(RECORD_HEADER_LEN)? {
            return if self.end == self.start {
                Ok(None)
            } else {
                Err(Stop::Truncated)
            };
        }
        let Some(h) = self.record_header() else {
            return Err(Stop::Truncated);
        };
        if h.total >= MAX_CAPTURE_RECORD_BYTES {
            return Err(Stop::TooLarge);
        }
        if !self.fill(h.total)? {
            return Err(Stop::Truncated);
        }
        self.head = Some(h);
        Ok(Some(h.ts))
    }

    /// The 16-byte record header at `start` (buffered by the caller): time, length with data,
    /// original length.
    fn record_header(&self) -> Option<Head> {
        let b: &[u8; RECORD_HEADER_LEN] = self
            .buf
            .get(self.start..self.start + RECORD_HEADER_LEN)?
            .try_into()
            .ok()?;
        let word = |i: usize| {
            let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
            if self.header.big_endian {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let (sec, frac) = (u64::from(word(0)), u64::from(word(4)));
        // Same as units_to_ns for these two resolutions, without the 128-bit division.
        let frac_ns = if self.header.nanos {
            frac
        } else {
            frac * 1_000
        };
        Some(Head {
            ts: Ts((sec * 1_000_000_000).saturating_add(frac_ns)),
            total: RECORD_HEADER_LEN.saturating_add(word(8) as usize),
            orig_len: word(12),
        })
    }

    /// Consumes the record [`Self::ready`] buffered. Only after `ready` returned a time: anything
    /// else yields an empty record rather than reading past the buffer.
    pub fn take(&mut self) -> Record<'_> {
        let Some(h) = self.head.take() else {
            return Record {
                ts: Ts(0),
                orig_len: 0,
                data: &[],
            };
        };
        let at = self.start;
        let total = h.total.min(self.end - at);
        self.start += total;
        let data = self
            .buf
            .get(at + RECORD_HEADER_LEN..at + total)
            .unwrap_or(&[]);
        Record {
            ts: h.ts,
            orig_len: h.orig_len,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(be: bool, ns: bool, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let mut v = Vec::new();
        w(&mut v, if ns { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        v.extend_from_slice(&if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
        w(&mut v, 0);
        w(&mut v, 0);
        w(&mut v, 65535);
        w(&mut v, 113);
        for (s, f, d) in recs {
            w(&mut v, *s);
            w(&mut v, *f);
            w(&mut v, d.len() as u32);
            w(&mut v, d.len() as u32 + 4);
            v.extend_from_slice(d);
        }
        v
    }

    /// Feeds the stream one byte per read, so every record crosses a refill.
    struct Trickle(Vec<u8>, usize);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((&b, _)) = self.0.get(self.1..).and_then(|r| r.split_first()) else {
                return Ok(0);
            };
            let Some(slot) = buf.first_mut() else {
                return Ok(0);
            };
            *slot = b;
            self.1 += 1;
            Ok(1)
        }
    }

    fn reader(bytes: Vec<u8>, head_len: usize) -> LegacyReader {
        let h = header(&bytes).expect("standard header");
        let head = bytes[..head_len].to_vec();
        LegacyReader::new(
            h,
            head,
            Box::new(Trickle(bytes, head_len)),
            READ_BLOCK_BYTES,
        )
    }

    #[test]
    fn records_across_refills_in_both_byte_orders_and_resolutions() {
        for (be, ns) in [(false, false), (true, false), (false, true), (true, true)] {
            let big = vec![7u8; 3000];
            let bytes = file(be, ns, &[(10, 5, b"abc"), (11, 6, &big), (12, 7, b"")]);
            let mut r = reader(bytes, 24);
            assert_eq!(r.linktype(), 113);
            let mul = if ns { 1 } else { 1000 };
            let a = r.next().unwrap().unwrap();
            assert_eq!(
                (a.ts, a.orig_len, a.data),
                (Ts(10_000_000_000 + 5 * mul), 7, &b"abc"[..])
            );
            let b = r.next().unwrap().unwrap();
            assert_eq!((b.ts, b.data.len()), (Ts(11_000_000_000 + 6 * mul), 3000));
            assert!(b.data.iter().all(|&x| x == 7));
            let c = r.next().unwrap().unwrap();
            assert_eq!((c.ts, c.data.len()), (Ts(12_000_000_000 + 7 * mul), 0));
            assert!(r.next().unwrap().is_none());
        }
    }

    #[test]
    fn ready_reads_a_header_once_and_take_consumes_only_what_ready_announced() {
        let bytes = file(false, true, &[(3, 4, b"xy"), (5, 6, b"z")]);
        let mut r = reader(bytes, 24);
        assert_eq!(r.take().data, b"", "take before ready");
        assert_eq!(r.ready().unwrap(), Some(Ts(3_000_000_004)));
        assert_eq!(r.ready().unwrap(), Some(Ts(3_000_000_004)));
        let a = r.take();
        assert_eq!(
            (a.ts, a.orig_len, a.data),
            (Ts(3_000_000_004), 6, &b"xy"[..])
        );
        assert_eq!(r.take().data, b"", "a second take without ready");
        let b = r.next().unwrap().unwrap();
        assert_eq!((b.ts, b.data), (Ts(5_000_000_006), &b"z"[..]));
        assert!(r.ready().unwrap().is_none());
    }

    #[test]
    fn cut_records_and_absurd_lengths_stop_reading() {
        let bytes = file(false, false, &[(1, 0, b"abcdef")]);
        let cut = bytes[..bytes.len() - 2].to_vec();
        let n = cut.len();
        let mut r = reader(cut, n);
        assert!(matches!(r.next(), Err(Stop::Truncated)));
        let cut_header = bytes[..24 + 9].to_vec();
        let mut r = reader(cut_header, 24);
        assert!(matches!(r.next(), Err(Stop::Truncated)));
        let mut absurd = file(false, false, &[]);
        absurd.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        let mut r = reader(absurd, 24);
        assert!(matches!(r.next(), Err(Stop::TooLarge)));
    }

    #[test]
    fn only_the_four_standard_magics() {
        let mut modified = file(false, false, &[]);
        modified[..4].copy_from_slice(&[0x34, 0xcd, 0xb2, 0xa1]);
        assert_eq!(header(&modified), None);
        assert_eq!(header(&file(false, false, &[])[..23]), None);
        assert_eq!(
            header(&file(true, true, &[])),
            Some(Header {
                big_endian: true,
                nanos: true,
                linktype: 113
            })
        );
    }
}
