//! What was written through one file handle: byte and write counts, whether it starts with "MZ",
//! and the SHA-256 of the contents, computed incrementally as the data streams past.
//!
//! The hash only means something when the writes cover the file contiguously from offset 0. Writes
//! that arrive ahead of the hashed prefix are held (at most [`MAX_FILE_REORDER_BYTES`] per file) until
//! the hole before them fills; a hole that never fills, a rewrite of hashed bytes, or a held-back
//! amount beyond the cap marks the hash incomplete. Dialect-independent: SMB1 uses it too.

use crate::time::Ts;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Out-of-order write data held per file while waiting for the hole before it to fill.
pub const MAX_FILE_REORDER_BYTES: usize = 4 * 1024 * 1024;

/// Why the hash was given up (None while it can still complete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashLoss {
    /// Held-back out-of-order data exceeded [`MAX_FILE_REORDER_BYTES`].
    ReorderCap,
    /// Bytes already hashed were written again.
    Rewrite,
    /// Data of a write was never seen (skipped on a gap).
    Missing,
}

#[derive(Clone)]
pub struct WriteTracker {
    pub bytes_written: u64,
    pub write_count: u64,
    pub first_write_ts: Option<Ts>,
    /// Highest offset + length written.
    pub size: u64,
    /// First two bytes at offset 0, once seen.
    head: [u8; 2],
    head_have: u8,
    hasher: Sha256,
    hashed_upto: u64,
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    lost: Option<HashLoss>,
}

impl Default for WriteTracker {
    fn default() -> WriteTracker {
        WriteTracker::new()
    }
}

impl std::fmt::Debug for WriteTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTracker")
            .field("bytes_written", &self.bytes_written)
            .field("hashed_upto", &self.hashed_upto)
            .field("lost", &self.lost)
            .finish()
    }
}

/// The summary logged for a handle's writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSummary {
    pub bytes_written: u64,
    pub write_count: u64,
    pub first_write_ts: Option<Ts>,
    pub size: u64,
    pub pe: bool,
    pub sha256: Option<String>,
    pub hash_complete: bool,
    pub hash_loss: Option<HashLoss>,
}

impl WriteTracker {
    pub fn new() -> WriteTracker {
        WriteTracker {
            bytes_written: 0,
            write_count: 0,
            first_write_ts: None,
            size: 0,
            head: [0; 2],
            head_have: 0,
            hasher: Sha256::new(),
            hashed_upto: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            lost: None,
        }
    }

    /// A write request of `len` bytes at `offset` begins; its data follows through [`Self::data`].
    pub fn begin_write(&mut self, ts: Ts, offset: u64, len: u64) {
        self.begin_write_unstamped(offset, len);
        self.stamp(ts);
    }

    /// [`Self::begin_write`] without its time: for a write whose data streams but which is dated
    /// when its message ends (as if it had been buffered whole), through [`Self::stamp`].
    pub fn begin_write_unstamped(&mut self, offset: u64, len: u64) {
        self.write_count += 1;
        self.size = self.size.max(offset.saturating_add(len));
    }

    /// The time of a write: the first one dates the file's writes.
    pub fn stamp(&mut self, ts: Ts) {
        self.first_write_ts.get_or_insert(ts);
    }

    /// Data of a write at absolute file `offset` (a chunk of the write, in order within it).
    pub fn data(&mut self, offset: u64, data: &[u8]) {
        self.bytes_written = self.bytes_written.saturating_add(data.len() as u64);
        self.note_head(offset, data);
        if self.lost.is_some() || data.is_empty() {
            return;
        }
        if offset == self.hashed_upto {
            self.hasher.update(data);
            self.hashed_upto = self.hashed_upto.saturating_add(data.len() as u64);
            self.drain_held();
        } else if offset < self.hashed_upto {
            let end = offset.saturating_add(data.len() as u64);
            if end <= self.hashed_upto {
                self.lose(HashLoss::Rewrite);
            } else {
                // Partly old, partly new: rewriting the hashed part changes the contents.
                self.lose(HashLoss::Rewrite);
            }
        } else if self.held_bytes.saturating_add(data.len()) > MAX_FILE_REORDER_BYTES {
            self.lose(HashLoss::ReorderCap);
        } else {
            self.held_bytes += data.len();
            // A later write to the same offset replaces an earlier held one (last writer wins).
            if let Some(old) = self.held.insert(offset, data.to_vec()) {
                self.held_bytes = self.held_bytes.saturating_sub(old.len());
            }
        }
    }

    /// `len` bytes of a write at `offset` were not seen (skipped on a gap).
    pub fn missing(&mut self, offset: u64, len: u64) {
        self.bytes_written = self.bytes_written.saturating_add(len);
        if len > 0 {
            let _ = offset;
            self.lose(HashLoss::Missing);
        }
    }

    /// The declared contents were not all there (a malformed write): no hash.
    pub fn mark_incomplete(&mut self) {
        self.lose(HashLoss::Missing);
    }

    fn note_head(&mut self, offset: u64, data: &[u8]) {
        let have = u64::from(self.head_have);
        if have >= 2 || offset > have {
            return;
        }
        for (i, &b) in data.iter().enumerate() {
            let pos = offset.saturating_add(i as u64);
            if pos >= 2 {
                break;
            }
            if pos == u64::from(self.head_have) {
                self.head[pos as usize] = b;
                self.head_have += 1;
            }
        }
    }

    fn drain_held(&mut self) {
        while let Some((&off, _)) = self.held.first_key_value() {
            if off > self.hashed_upto {
                break;
            }
            let Some(chunk) = self.held.remove(&off) else {
                break;
            };
            self.held_bytes = self.held_bytes.saturating_sub(chunk.len());
            let end = off.saturating_add(chunk.len() as u64);
            if off < self.hashed_upto {
                self.lose(HashLoss::Rewrite);
                return;
            }
            self.hasher.update(&chunk);
            self.hashed_upto = end;
        }
    }

    fn lose(&mut self, why: HashLoss) {
        if self.lost.is_none() {
            self.lost = Some(why);
        }
        self.held.clear();
        self.held_bytes = 0;
    }

    pub fn is_pe(&self) -> bool {
        self.head_have >= 2 && &self.head == b"MZ"
    }

    /// The bytes at offset 0 seen so far (up to 2).
    pub fn head(&self) -> &[u8] {
        self.head.get(..usize::from(self.head_have)).unwrap_or(&[])
    }

    /// Final summary. The hash is complete when nothing was lost, nothing is still held back,
    /// and the hashed prefix reaches the highest byte written.
    pub fn finish(&self) -> WriteSummary {
        let mut loss = self.lost;
        if loss.is_none() && (!self.held.is_empty() || self.hashed_upto < self.size) {
            loss = Some(HashLoss::Missing);
        }
        let complete = loss.is_none() && self.write_count > 0;
        let sha256 = complete.then(|| crate::event::hex(&self.hasher.clone().finalize()));
        WriteSummary {
            bytes_written: self.bytes_written,
            write_count: self.write_count,
            first_write_ts: self.first_write_ts,
            size: self.size,
            pe: self.is_pe(),
            sha256,
            hash_complete: complete,
            hash_loss: loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(b: &[u8]) -> String {
        crate::event::hex(&Sha256::digest(b))
    }

    fn content(n: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        v[0] = b'M';
        v[1] = b'Z';
        v
    }

    #[test]
    fn in_order_chunks_hash_like_the_whole() {
        let c = content(10_000);
        let mut t = WriteTracker::new();
        for (i, w) in c.chunks(4096).enumerate() {
            t.begin_write(Ts(1), (i * 4096) as u64, w.len() as u64);
            // each write itself arrives in uneven chunks
            let mut off = i * 4096;
            for piece in w.chunks(333) {
                t.data(off as u64, piece);
                off += piece.len();
            }
        }
        let s = t.finish();
        assert!(s.pe && s.hash_complete);
        assert_eq!(s.bytes_written, 10_000);
        assert_eq!(s.write_count, 3);
        assert_eq!(s.sha256.as_deref(), Some(sha(&c).as_str()));
    }

    #[test]
    fn out_of_order_within_cap_completes() {
        let c = content(9000);
        let mut t = WriteTracker::new();
        for &(a, b) in &[(6000, 9000), (3000, 6000), (0, 3000)] {
            t.begin_write(Ts(1), a as u64, (b - a) as u64);
            t.data(a as u64, &c[a..b]);
        }
        let s = t.finish();
        assert_eq!(s.sha256.as_deref(), Some(sha(&c).as_str()));
        assert!(s.pe);
    }

    #[test]
    fn holes_and_rewrites_mark_incomplete() {
        let c = content(100);
        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 50, 50);
        t.data(50, &c[50..]);
        let s = t.finish();
        assert!(!s.hash_complete && s.sha256.is_none() && !s.pe);

        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 0, 100);
        t.data(0, &c);
        t.begin_write(Ts(2), 0, 10);
        t.data(0, &c[..10]);
        assert_eq!(t.finish().hash_loss, Some(HashLoss::Rewrite));

        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 0, 100);
        t.data(0, &c[..40]);
        t.missing(40, 60);
        let s = t.finish();
        assert_eq!(s.bytes_written, 100);
        assert_eq!(s.hash_loss, Some(HashLoss::Missing));
    }

    #[test]
    fn reorder_cap_gives_up() {
        let mut t = WriteTracker::new();
        let big = vec![0u8; MAX_FILE_REORDER_BYTES / 2 + 1];
        t.data(10, &big);
        t.data(10 + big.len() as u64, &big);
        t.data(0, &[0u8; 10]);
        assert_eq!(t.finish().hash_loss, Some(HashLoss::ReorderCap));
    }
}
