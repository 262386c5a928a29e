//! What was written through one file handle: byte and write counts, whether it starts with "MZ",
//! and the SHA-256 of the contents, computed incrementally as the data streams past.
//!
//! The hash is of the file as it ends on disk, so it only means something when the writes cover
//! the file contiguously from offset 0. Writes that arrive ahead of the hashed prefix are held (at
//! most [`MAX_FILE_REORDER_BYTES`] per file) until the hole before them fills; a hole that never
//! fills or a held-back amount beyond the cap marks the hash incomplete.
//!
//! A write over bytes already hashed (a decoy of zeros or other content first, then the real one
//! at the same offsets: issue 18) changes what ends on disk. Buffering every upload to replay it
//! would cost memory per file and give up streaming, so the tracker keeps SHA-256 states instead:
//! a bounded list of checkpoints ([`MAX_FILE_HASH_CHECKPOINTS`], ~100 bytes each) taken where a
//! write starts at the end of the hashed prefix. A rewrite starting at a checkpoint (or at 0)
//! rewinds the hash to it and streams on; the hash is complete again once the rewritten bytes
//! reach the old end. A rewrite elsewhere, or one that stops short of the old end (the old bytes
//! after it are no longer known), marks the hash incomplete. Dialect-independent: SMB1 uses it.

use crate::time::Ts;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Out-of-order write data held per file while waiting for the hole before it to fill.
pub const MAX_FILE_REORDER_BYTES: usize = 4 * 1024 * 1024;

/// SHA-256 states kept per file at write boundaries, so that a rewrite can rewind the hash;
/// beyond it every other one is dropped (the offset-0 state needs none), so they thin out over
/// long uploads rather than stop.
pub const MAX_FILE_HASH_CHECKPOINTS: usize = 16;

/// Why the hash was given up (None while it can still complete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashLoss {
    /// Held-back out-of-order data exceeded [`MAX_FILE_REORDER_BYTES`].
    ReorderCap,
    /// Bytes already hashed were written again where no checkpoint is kept, or the rewrite did
    /// not reach the end of what was hashed before it.
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
    /// The furthest `hashed_upto` before a rewind: the hash is whole only once it is reached again.
    rewound_from: u64,
    /// (offset, the hash state of the bytes before it), ascending, never at 0.
    checkpoints: Vec<(u64, Sha256)>,
    held: BTreeMap<u64, Vec<u8>>,
    held_bytes: usize,
    lost: Option<HashLoss>,
    /// Times the checkpoints were thinned ([`MAX_FILE_HASH_CHECKPOINTS`] reached).
    thinned: u32,
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
    /// Times [`MAX_FILE_HASH_CHECKPOINTS`] was reached and every other checkpoint dropped
    /// (reported by the caller as that cap, once per file).
    pub checkpoints_thinned: u32,
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
            rewound_from: 0,
            checkpoints: Vec::new(),
            held: BTreeMap::new(),
            held_bytes: 0,
            lost: None,
            thinned: 0,
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
        if offset == self.hashed_upto && offset > 0 && self.lost.is_none() {
            self.checkpoint();
        }
    }

    /// Keep the hash state at `hashed_upto`, a write boundary.
    fn checkpoint(&mut self) {
        let at = self.hashed_upto;
        if self.checkpoints.last().is_some_and(|(o, _)| *o >= at) {
            return;
        }
        if self.checkpoints.len() >= MAX_FILE_HASH_CHECKPOINTS {
            self.thinned = self.thinned.saturating_add(1);
            let mut keep = false;
            self.checkpoints.retain(|_| {
                keep = !keep;
                keep
            });
        }
        self.checkpoints.push((at, self.hasher.clone()));
    }

    /// Rewind the hash to `offset` for a rewrite starting there; false when no state is kept.
    fn rewind(&mut self, offset: u64) -> bool {
        let state = if offset == 0 {
            self.checkpoints.clear();
            Sha256::new()
        } else {
            let Ok(i) = self.checkpoints.binary_search_by_key(&offset, |(o, _)| *o) else {
                return false;
            };
            self.checkpoints.truncate(i + 1);
            self.checkpoints[i].1.clone()
        };
        self.rewound_from = self.rewound_from.max(self.hashed_upto);
        self.hasher = state;
        self.hashed_upto = offset;
        true
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
        if offset < self.hashed_upto && !self.rewind(offset) {
            self.lose(HashLoss::Rewrite);
        } else if offset == self.hashed_upto {
            self.hasher.update(data);
            self.hashed_upto = self.hashed_upto.saturating_add(data.len() as u64);
            self.drain_held();
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

    /// The first two bytes as they end on disk: a later write over them replaces them.
    fn note_head(&mut self, offset: u64, data: &[u8]) {
        if offset > u64::from(self.head_have) {
            return;
        }
        for (i, &b) in data.iter().enumerate() {
            let pos = offset.saturating_add(i as u64);
            if pos >= 2 {
                break;
            }
            if pos <= u64::from(self.head_have) {
                self.head[pos as usize] = b;
                self.head_have = self.head_have.max(pos as u8 + 1);
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
        self.checkpoints = Vec::new();
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
        if loss.is_none() && self.hashed_upto < self.rewound_from {
            loss = Some(HashLoss::Rewrite);
        }
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
            checkpoints_thinned: self.thinned,
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

        // Rewritten at the start but not up to the old end: the old bytes after it are unknown.
        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 0, 100);
        t.data(0, &c);
        t.begin_write(Ts(2), 0, 10);
        t.data(0, &c[..10]);
        assert_eq!(t.finish().hash_loss, Some(HashLoss::Rewrite));

        // Rewritten inside a write, where no state was kept.
        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 0, 100);
        t.data(0, &c);
        t.begin_write(Ts(2), 30, 70);
        t.data(30, &c[30..]);
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

    /// Writes of `content` in `chunk`-byte writes, each streamed in 333-byte pieces.
    fn write_all(t: &mut WriteTracker, content: &[u8], chunk: usize) {
        for (i, w) in content.chunks(chunk).enumerate() {
            let at = (i * chunk) as u64;
            t.begin_write(Ts(1), at, w.len() as u64);
            for (j, piece) in w.chunks(333).enumerate() {
                t.data(at + (j * 333) as u64, piece);
            }
        }
    }

    #[test]
    fn an_upload_overwritten_in_place_hashes_as_it_ends_on_disk() {
        let real = content(10_000);
        // A decoy of zeros first, then the real content over it (same writes, or other sizes).
        for (decoy_chunk, real_chunk) in [(4096, 4096), (10_000, 1000), (1000, 4096)] {
            let mut t = WriteTracker::new();
            write_all(&mut t, &vec![0u8; real.len()], decoy_chunk);
            write_all(&mut t, &real, real_chunk);
            let s = t.finish();
            assert_eq!(
                s.sha256.as_deref(),
                Some(sha(&real).as_str()),
                "{decoy_chunk}"
            );
            assert!(s.hash_complete && s.pe);
            assert_eq!(s.size, 10_000);
            assert_eq!(s.bytes_written, 20_000);
        }
        // Only the second half rewritten, at a write boundary: the first half stays.
        let decoy = content(10_000)
            .iter()
            .map(|b| b ^ 0x55)
            .collect::<Vec<u8>>();
        let mut t = WriteTracker::new();
        t.begin_write(Ts(1), 0, 5000);
        t.data(0, &real[..5000]);
        t.begin_write(Ts(1), 5000, 5000);
        t.data(5000, &decoy[5000..]);
        t.begin_write(Ts(2), 5000, 5000);
        t.data(5000, &real[5000..]);
        assert_eq!(t.finish().sha256.as_deref(), Some(sha(&real).as_str()));
        // The real content first, a decoy after it: the decoy is what ends on disk.
        let mut t = WriteTracker::new();
        write_all(&mut t, &real, 4096);
        write_all(&mut t, &decoy, 4096);
        let s = t.finish();
        assert_eq!(s.sha256.as_deref(), Some(sha(&decoy).as_str()));
        assert!(!s.pe, "the head is the decoy's");
    }

    #[test]
    fn checkpoints_stay_bounded_and_thin_out() {
        let real = content(100 * 64);
        let mut t = WriteTracker::new();
        write_all(&mut t, &real, 64);
        assert!(t.checkpoints.len() <= MAX_FILE_HASH_CHECKPOINTS);
        // 99 write boundaries through 16 slots: thinned, and counted.
        assert!(t.finish().checkpoints_thinned > 0);
        let mut short = WriteTracker::new();
        write_all(&mut short, &real[..16 * 64], 64);
        assert_eq!(short.finish().checkpoints_thinned, 0);
        assert!(t.checkpoints.windows(2).all(|w| w[0].0 < w[1].0));
        // The last write boundary is always kept: rewriting the last write works.
        let last = t.checkpoints.last().map(|(o, _)| *o).unwrap_or_default();
        assert_eq!(last, 99 * 64);
        t.begin_write(Ts(2), last, 64);
        t.data(last, &real[last as usize..]);
        assert_eq!(t.finish().sha256.as_deref(), Some(sha(&real).as_str()));
    }
}
