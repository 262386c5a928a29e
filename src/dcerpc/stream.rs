//! One direction's byte stream → whole PDUs, framed by frag_length, whatever the cuts: a PDU split
//! over several SMB writes / TCP segments, or several PDUs in one write.
//!
//! Only the unfinished tail of the stream is buffered, and a PDU is at most 65535 bytes
//! (frag_length is a u16), so the buffer is bounded by [`MAX_PDU_BUFFER`]. After a gap or garbage
//! the framer hunts for the next plausible common header.

use super::pdu::{parse_header, Header, HEADER_LEN};
use crate::wire::parsed;

/// The buffer never holds more than one (partial) PDU: frag_length is 16 bits.
pub const MAX_PDU_BUFFER: usize = u16::MAX as usize;

/// What the framer found in a chunk of bytes. A PDU is lent, not copied: most come straight out
/// of the bytes pushed (a copy each cost a malloc, a memcpy and a free per PDU).
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    Pdu(&'a [u8]),
    /// `n` bytes did not look like DCE-RPC and were skipped while resynchronising.
    Skipped(usize),
}

#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Set after a gap or garbage: look for a header instead of trusting the next bytes.
    hunting: bool,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// Bytes were lost: drop the partial PDU and hunt for the next header.
    pub fn gap(&mut self) {
        self.buf.clear();
        self.hunting = true;
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; calls `out` with every whole PDU (and skip notices) in stream order.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut dyn FnMut(Framed<'_>)) {
        // Complete a PDU left over from earlier writes first.
        while !self.buf.is_empty() {
            let take = self
                .needed()
                .saturating_sub(self.buf.len())
                .min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() < HEADER_LEN {
                return; // every byte went into the partial header
            }
            match self.buf_header() {
                None => {
                    // The buffered start was not a header after all: rescan it with the new bytes.
                    let mut pending = std::mem::take(&mut self.buf);
                    pending.extend_from_slice(bytes);
                    self.hunting = true;
                    return self.scan(&pending, out);
                }
                Some(h) if self.buf.len() >= h.frag_len as usize => {
                    let pdu = std::mem::take(&mut self.buf);
                    out(Framed::Pdu(&pdu));
                }
                Some(_) if bytes.is_empty() => return,
                Some(_) => {}
            }
        }
        self.scan(bytes, out);
    }

    /// Bytes needed for the buffered PDU: a header first, then frag_length.
    fn needed(&self) -> usize {
        match self.buf_header() {
            Some(h) => h.frag_len as usize,
            None => HEADER_LEN,
        }
    }

    fn buf_header(&self) -> Option<Header> {
        parsed(parse_header(&self.buf))
    }

    /// Frames PDUs straight out of `bytes` (no copy) and buffers only an unfinished tail.
    fn scan(&mut self, bytes: &[u8], out: &mut dyn FnMut(Framed<'_>)) {
        let mut pos = 0usize;
        let mut skipped = 0usize;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            if rest.len() < HEADER_LEN {
                if could_start_header(rest) {
                    break;
                }
                pos += 1;
                skipped += 1;
                continue;
            }
            match parsed(parse_header(rest)) {
                Some(h) if !self.hunting || plausible_resync(&h) => {
                    self.hunting = false;
                    if skipped > 0 {
                        out(Framed::Skipped(skipped));
                        skipped = 0;
                    }
                    let len = h.frag_len as usize;
                    if rest.len() < len {
                        break;
                    }
                    out(Framed::Pdu(&rest[..len]));
                    pos += len;
                }
                _ => {
                    self.hunting = true;
                    // No header starts before the next `05 00` (version 5.0): jump there rather
                    // than parse at every byte (pipe traffic that is not DCE-RPC, e.g. a remote
                    // console's output, is hunted through whole).
                    let next = 1 + next_candidate(&rest[1..]);
                    pos += next;
                    skipped += next;
                }
            }
        }
        if skipped > 0 {
            out(Framed::Skipped(skipped));
        }
        let tail = &bytes[pos..];
        if tail.len() <= MAX_PDU_BUFFER {
            self.buf.extend_from_slice(tail);
        }
    }
}

/// The first bytes (fewer than a header) could begin a PDU.
fn could_start_header(b: &[u8]) -> bool {
    match b {
        [] => true,
        [5] => true,
        [5, 0, rest @ ..] => rest
            .first()
            .is_none_or(|&t| t <= super::pdu::PTYPE_ORPHANED),
        _ => false,
    }
}

/// The offset of the first byte of `b` that could begin a header: `05 00`, or a `05` that ends
/// `b`; `b.len()` when there is none. Every other offset fails [`parse_header`] and
/// [`could_start_header`] alike, so skipping them changes nothing but the time taken.
fn next_candidate(b: &[u8]) -> usize {
    let mut from = 0;
    while let Some(i) = b.get(from..).and_then(|r| memchr::memchr(5, r)) {
        let at = from + i;
        if b.get(at + 1).is_none_or(|&minor| minor == 0) {
            return at;
        }
        from = at + 1;
    }
    b.len()
}

/// While hunting after a gap, accept only headers whose data representation looks like real traffic
/// (ASCII characters, IEEE floats, zero reserved bytes), to avoid locking onto `05 00` inside
/// stub data.
fn plausible_resync(h: &Header) -> bool {
    h.drep[1] == 0 && h.drep[2] == 0 && h.drep[3] == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcerpc::pdu::build::*;

    /// [`Framed`], owned.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Pdu(Vec<u8>),
        Skipped(usize),
    }

    fn collect(f: &mut Framer, chunks: &[&[u8]]) -> Vec<Got> {
        let mut v = Vec::new();
        for c in chunks {
            f.push(c, &mut |x| {
                v.push(match x {
                    Framed::Pdu(p) => Got::Pdu(p.to_vec()),
                    Framed::Skipped(n) => Got::Skipped(n),
                })
            });
        }
        v
    }

    #[test]
    fn two_pdus_in_one_write() {
        let a = pdu(0, 3, 1, &request_body(0, 15, &[1, 2, 3, 4]), None);
        let b = pdu(0, 3, 2, &request_body(0, 16, &[5, 6, 7, 8]), None);
        let both = [a.clone(), b.clone()].concat();
        let out = collect(&mut Framer::new(), &[&both]);
        assert_eq!(out, vec![Got::Pdu(a), Got::Pdu(b)]);
    }

    #[test]
    fn pdu_split_across_writes_at_every_cut() {
        let a = pdu(0, 3, 1, &request_body(0, 12, &[9; 40]), None);
        let b = pdu(2, 3, 1, &response_body(0, &[0; 8]), None);
        let all = [a.clone(), b.clone()].concat();
        for cut1 in 1..all.len() {
            let cut2 = (cut1 + 7).min(all.len());
            let out = collect(
                &mut Framer::new(),
                &[&all[..cut1], &all[cut1..cut2], &all[cut2..]],
            );
            assert_eq!(
                out,
                vec![Got::Pdu(a.clone()), Got::Pdu(b.clone())],
                "cut at {cut1}"
            );
        }
    }

    #[test]
    fn resyncs_after_gap_and_garbage() {
        let a = pdu(0, 3, 1, &request_body(0, 12, &[9; 40]), None);
        let b = pdu(0, 3, 2, &request_body(0, 19, &[1; 8]), None);
        let mut f = Framer::new();
        let mut out = collect(&mut f, &[&a[..30]]);
        assert!(out.is_empty());
        f.gap();
        // The rest of `a` arrives after the gap (its header is gone), then a whole `b`.
        out = collect(&mut f, &[&a[30..], &b]);
        assert_eq!(out.last(), Some(&Got::Pdu(b.clone())));
        assert!(matches!(out[0], Got::Skipped(n) if n == a.len() - 30));
        // Pure garbage never produces a PDU and never grows the buffer past a header's worth.
        let mut g = Framer::new();
        let junk = vec![0x41u8; 100_000];
        let out = collect(&mut g, &[&junk]);
        assert!(out.iter().all(|x| matches!(x, Got::Skipped(_))));
        assert!(g.buffered() < HEADER_LEN);
    }

    /// Skipping to the next `05 00` while hunting gives what trying every offset gives: the same
    /// PDUs and skip counts, whatever surrounds them and wherever the chunks are cut.
    #[test]
    fn hunting_skips_to_candidates_without_changing_the_result() {
        let a = pdu(0, 3, 1, &request_body(0, 12, &[5; 40]), None);
        let noise: Vec<u8> = (0..600u32)
            .map(|i| [5, 0, 5, 7, 0x41, 5][(i * 7 % 6) as usize])
            .collect();
        let stream = [
            &noise[..],
            &a,
            &noise[..17],
            &a,
            &[5, 0, 11][..],
            &a,
            &[5][..],
        ]
        .concat();
        let byte_by_byte = {
            let mut f = Framer::new();
            f.gap();
            let chunks: Vec<&[u8]> = stream.chunks(1).collect();
            merge_skips(collect(&mut f, &chunks))
        };
        assert_eq!(
            byte_by_byte
                .iter()
                .filter(|x| matches!(x, Got::Pdu(_)))
                .count(),
            3,
            "{byte_by_byte:?}"
        );
        for size in [2, 3, 16, 17, 100, stream.len()] {
            let mut f = Framer::new();
            f.gap();
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert_eq!(
                merge_skips(collect(&mut f, &chunks)),
                byte_by_byte,
                "chunks of {size}"
            );
        }
        assert_eq!(next_candidate(&[1, 5, 1, 5, 0]), 3);
        assert_eq!(next_candidate(&[1, 2, 5]), 2);
        assert_eq!(next_candidate(&[1, 2, 3]), 3);
    }

    /// Consecutive skip notices as one (their split depends on where the chunks were cut).
    fn merge_skips(v: Vec<Got>) -> Vec<Got> {
        let mut out: Vec<Got> = Vec::new();
        for x in v {
            match (out.last_mut(), x) {
                (Some(Got::Skipped(n)), Got::Skipped(m)) => *n += m,
                (_, x) => out.push(x),
            }
        }
        out
    }
}
