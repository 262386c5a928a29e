//! One direction of a TCP stream: sequence numbers → in-order bytes, with bounded buffering.
//!
//! In-order segments go straight to the consumer with no copy. Segments after a hole are buffered
//! (keyed by their offset from the stream start, a u64 that never wraps, so sequence wraparound
//! needs no special case) up to the caps below. Where buffered copies overlap, the receiver's
//! rule ([`super::policy::TcpOverlap`]) picks the bytes; a copy with different bytes is an
//! `overlap_different_data` anomaly. With an unknown receiver both versions are kept and handed
//! on together ([`Chunk::Split`], `overlap_ambiguous`). When a cap is reached, when the peer
//! acknowledges data we never saw, or when the flow ends, the hole is declared a gap and the stream
//! continues after it.

use super::policy::{OverlapRule, TcpOverlap};
use super::receiver::RstPolicy;
use super::FlowCtx;
use crate::event::{AnomalyKind, ConnFields};
use crate::sink::Sink;
use crate::time::Ts;
use std::collections::BTreeMap;

/// Out-of-order segments buffered per direction; beyond it the first hole becomes a gap.
pub const MAX_OOO_SEGMENTS_PER_DIRECTION: usize = 1024;
/// Out-of-order bytes buffered per direction; beyond it the first hole becomes a gap.
pub const MAX_REASSEMBLY_BYTES_PER_DIRECTION: usize = 4 << 20;
/// Out-of-order bytes buffered across every flow of a worker.
pub const MAX_REASSEMBLY_BYTES_TOTAL: usize = 64 << 20;
/// A segment starting further than this beyond the next expected byte is not part of the stream
/// (a corrupt or hostile sequence number), so it is dropped rather than buffered.
pub const MAX_SEQ_JUMP: u64 = 64 << 20;

/// A hole with data buffered after it that stays open this long (packet time, while more segments
/// keep coming) is declared lost: covers one-sided captures, where no ACK ever tells us.
pub const HOLE_TIMEOUT_SECS: u64 = 10;

/// ACKs past a hole (in separate packets) before it is declared lost. One is not enough: a capture
/// point may see the peer's ACK before the data it acknowledges.
pub const ACKS_PAST_HOLE_FOR_GAP: u32 = 3;

/// How far before / after the next expected byte a RST may be and still be believed by an
/// in-window (RFC 793) receiver.
const RST_WINDOW_BEHIND: i64 = 1 << 16;
const RST_WINDOW_AHEAD: i64 = 16 << 20;

/// What the reassembler hands on, in stream order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    Gap(u64),
    /// Bytes the receiver may have taken in either version (its overlap rule is unknown): the
    /// first copy's and the last copy's, of the same length.
    Split {
        first: &'a [u8],
        last: &'a [u8],
    },
}

/// Buffered bytes after a hole, with the segment they came from (its start and end offsets, for
/// the overlap rule) and, with an unknown receiver, the last copy's bytes where copies differed.
#[derive(Debug, Clone)]
struct Piece {
    bytes: Vec<u8>,
    origin: (u64, u64),
    last: Option<Vec<u8>>,
}

impl Piece {
    fn size(&self) -> usize {
        self.bytes.len() + self.last.as_ref().map_or(0, Vec::len)
    }

    /// Bytes `a..b` (offsets from the stream start; the piece starts at `at`).
    fn slice(&self, at: u64, a: u64, b: u64) -> Piece {
        let r = (a - at) as usize..(b - at) as usize;
        Piece {
            bytes: self.bytes[r.clone()].to_vec(),
            origin: self.origin,
            last: self.last.as_ref().map(|l| l[r].to_vec()),
        }
    }
}

/// Bytes buffered by every direction of one worker (checked against MAX_REASSEMBLY_BYTES_TOTAL).
#[derive(Debug, Default)]
pub struct Budget {
    pub used: usize,
}

/// Facts about one direction, for counters and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DirStats {
    pub delivered: u64,
    pub gap_bytes: u64,
    pub gaps: u32,
    pub retransmitted: u64,
    pub overlaps_different: u32,
}

#[derive(Debug, Default)]
pub struct StreamDir {
    started: bool,
    /// Sequence number of the next byte expected (wraps).
    next_seq: u32,
    /// Offset of the next byte expected, from the stream start (never wraps).
    next_off: u64,
    /// Buffered segments after a hole: offset → bytes. Disjoint.
    ooo: BTreeMap<u64, Piece>,
    /// The receiver's rule for overlapping copies (resolved from its address at flow creation).
    overlap: TcpOverlap,
    ooo_bytes: usize,
    pub stats: DirStats,
    /// ACKs seen past the current hole (at `hole_at`): a hole is lost once this reaches
    /// [`ACKS_PAST_HOLE_FOR_GAP`].
    acks_past_hole: u32,
    hole_at: u64,
    /// Packet time at which the hole at `hole_at` was first seen (Ts(0): not yet).
    hole_since: Ts,
    /// Sequence number of this direction's FIN, once seen.
    fin_seq: Option<u32>,
}

/// Where anomalies of this direction are reported.
pub struct Report<'a> {
    pub ctx: &'a FlowCtx,
    pub ts: Ts,
}

impl Report<'_> {
    pub fn conn(&self) -> Option<ConnFields> {
        Some(ConnFields::new(self.ts, self.ctx.uid, &self.ctx.conn))
    }
}

impl StreamDir {
    pub fn new() -> StreamDir {
        StreamDir::default()
    }

    /// A direction whose receiver follows `overlap`.
    pub fn with_overlap(overlap: TcpOverlap) -> StreamDir {
        StreamDir {
            overlap,
            ..StreamDir::default()
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// Sequence number of the next byte expected, once the stream started.
    pub fn next_seq(&self) -> Option<u32> {
        self.started.then_some(self.next_seq)
    }

    /// Offset of the next byte expected, from the stream start.
    pub fn next_offset(&self) -> u64 {
        self.next_off
    }

    pub fn buffered_bytes(&self) -> usize {
        self.ooo_bytes
    }

    pub fn buffered_segments(&self) -> usize {
        self.ooo.len()
    }

    /// A SYN: the stream starts after its sequence number. A repeated SYN changes nothing.
    pub fn syn(&mut self, seq: u32) {
        if !self.started {
            self.started = true;
            self.next_seq = seq.wrapping_add(1);
        }
    }

    /// A FIN at `seq` after `len` payload bytes. The first one counts: the receiver takes no
    /// data after it (RFC 9293 §3.10.7.4, CLOSE-WAIT), so a later FIN cannot move it.
    pub fn fin(&mut self, seq: u32, len: usize) {
        if !self.started {
            self.started = true;
            self.next_seq = seq.wrapping_add(len as u32);
        }
        if self.fin_seq.is_none() {
            self.fin_seq = Some(seq.wrapping_add(len as u32));
        }
    }

    /// Sequence number of this direction's first FIN, once seen.
    pub fn fin_seq(&self) -> Option<u32> {
        self.fin_seq
    }

    /// Bytes are still missing: something is buffered after a hole, or the FIN lies beyond what
    /// was delivered.
    pub fn has_hole(&self) -> bool {
        if !self.ooo.is_empty() {
            return true;
        }
        match self.fin_seq {
            Some(f) => {
                let d = f.wrapping_sub(self.next_seq) as i32 as i64;
                d > 0 && (d as u64) <= MAX_SEQ_JUMP
            }
            None => false,
        }
    }

    /// Whether the receiver resets on a RST at `seq` from this direction. `peer_ack` is the
    /// receiver's last ACK number (its RCV.NXT as it announced it). Nothing known of this
    /// direction yet: believed.
    pub fn rst_accepted(&self, seq: u32, peer_ack: Option<u32>, policy: RstPolicy) -> bool {
        if !self.started {
            return true;
        }
        match policy {
            // RFC 5961 §3.2: exactly RCV.NXT. The receiver's RCV.NXT is where our stream is, or
            // what it last acknowledged (we may lag behind a hole), or just past a FIN.
            RstPolicy::ExactMatch => {
                seq == self.next_seq
                    || peer_ack == Some(seq)
                    || self.fin_seq.is_some_and(|f| f.wrapping_add(1) == seq)
            }
            // RFC 793: anywhere in the window (the window as a bound around the stream).
            RstPolicy::InWindow => {
                let diff = seq.wrapping_sub(self.next_seq) as i32 as i64;
                (-RST_WINDOW_BEHIND..=RST_WINDOW_AHEAD).contains(&diff)
            }
        }
    }

    fn advance(&mut self, n: u64) {
        self.next_off += n;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// A segment of this direction: `payload` at `seq`, followed by `missing` bytes the capture cut.
    ///
    /// The next expected bytes with nothing buffered (a bulk transfer's every segment) are
    /// delivered inline, where the caller's `out` is a known closure that inlines too; the rest
    /// is out of line. The single call with its seven arguments and register saves cost about
    /// 70 instructions per segment (docs/PERF.md, "Session 6: flow layer").
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        if self.started
            && seq == self.next_seq
            && missing == 0
            && !payload.is_empty()
            && self.ooo.is_empty()
        {
            self.deliver_in_order(payload, sink, out);
        } else {
            self.segment_slow(seq, payload, missing, budget, rep, sink, out);
        }
    }

    /// Hand on `payload`, the next expected bytes.
    #[inline(always)]
    fn deliver_in_order(
        &mut self,
        payload: &[u8],
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        self.advance(payload.len() as u64);
        self.stats.delivered += payload.len() as u64;
        out(Chunk::Data(payload), sink);
    }

    /// [`Self::segment`] for every other case.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn segment_slow(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        if payload.is_empty() && missing == 0 {
            return;
        }
        if !self.started {
            // Picked up midstream: the stream starts here.
            self.started = true;
            self.next_seq = seq;
        }
        let diff = seq.wrapping_sub(self.next_seq) as i32 as i64;
        let rel = self.next_off as i64 + diff;
        let len = payload.len() as i64;
        let end = rel + len;
        if end <= self.next_off as i64 {
            // Entirely before the next expected byte: a retransmission of delivered data.
            self.stats.retransmitted += payload.len() as u64;
            sink.count("tcp.retransmitted_bytes", payload.len() as u64);
            return;
        }
        // Trim what was already delivered.
        let (rel, payload) = if rel < self.next_off as i64 {
            let skip = (self.next_off as i64 - rel) as usize;
            self.stats.retransmitted += skip as u64;
            (self.next_off, payload.get(skip..).unwrap_or(&[]))
        } else {
            (rel as u64, payload)
        };
        if rel - self.next_off > MAX_SEQ_JUMP {
            sink.cap_reached(
                "MAX_SEQ_JUMP",
                rep.ts,
                rep.conn(),
                "tcp",
                format!(
                    "segment {} bytes beyond the next expected byte dropped",
                    rel - self.next_off
                ),
            );
            return;
        }
        if rel == self.next_off && self.ooo.is_empty() {
            // Fast path: in order, nothing buffered: hand over the packet's own bytes.
            if !payload.is_empty() {
                self.deliver_in_order(payload, sink, out);
            }
            if missing > 0 {
                self.declare_gap(missing as u64, rep, sink, out);
            }
            return;
        }
        self.insert(rel, payload, budget, rep, sink);
        self.drain(budget, sink, out);
        self.enforce_caps(budget, rep, sink, out);
        self.check_hole_age(budget, rep, sink, out);
    }

    /// Start or check the clock on the current hole; past [`HOLE_TIMEOUT_SECS`] it becomes a gap.
    fn check_hole_age(
        &mut self,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        loop {
            if self.ooo.is_empty() {
                return;
            }
            if self.hole_at != self.next_off || self.hole_since == Ts(0) {
                self.hole_at = self.next_off;
                self.acks_past_hole = 0;
                self.hole_since = rep.ts;
                return;
            }
            if self.hole_since.saturating_add_secs(HOLE_TIMEOUT_SECS) >= rep.ts {
                return;
            }
            let Some(first) = self.ooo.keys().next().copied() else {
                return;
            };
            self.declare_gap(first.saturating_sub(self.next_off), rep, sink, out);
            self.drain(budget, sink, out);
            // The next hole (if any) starts its own clock now.
            self.hole_since = Ts(0);
        }
    }

    /// The peer acknowledged up to `ack`: bytes before it that we never saw are lost for good.
    /// Only acted on when data after the hole is buffered (otherwise the hole may still fill), and
    /// after [`ACKS_PAST_HOLE_FOR_GAP`] such ACKs.
    pub fn acked(
        &mut self,
        ack: u32,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        if !self.started || self.ooo.is_empty() {
            return;
        }
        let diff = ack.wrapping_sub(self.next_seq) as i32 as i64;
        if diff <= 0 || diff as u64 > MAX_SEQ_JUMP {
            return;
        }
        let acked_to = self.next_off + diff as u64;
        if self.hole_at != self.next_off {
            self.hole_at = self.next_off;
            self.acks_past_hole = 0;
            self.hole_since = Ts(0);
        }
        self.acks_past_hole += 1;
        if self.acks_past_hole < ACKS_PAST_HOLE_FOR_GAP {
            return;
        }
        while let Some(first) = self.ooo.keys().next().copied() {
            if self.next_off >= acked_to {
                break;
            }
            self.declare_gap(
                first.min(acked_to).saturating_sub(self.next_off),
                rep,
                sink,
                out,
            );
            self.drain(budget, sink, out);
        }
    }

    /// The flow ends: deliver everything buffered, declaring the holes before it as gaps.
    pub fn flush(
        &mut self,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        while let Some(first) = self.ooo.keys().next().copied() {
            if first > self.next_off {
                self.declare_gap(first - self.next_off, rep, sink, out);
            }
            self.drain(budget, sink, out);
        }
    }

    /// Drop whatever is buffered without delivering it, returning it to the budget.
    pub fn discard(&mut self, budget: &mut Budget) {
        budget.used = budget.used.saturating_sub(self.ooo_bytes);
        self.ooo.clear();
        self.ooo_bytes = 0;
    }

    fn declare_gap(
        &mut self,
        len: u64,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        if len == 0 {
            return;
        }
        self.advance(len);
        self.stats.gaps = self.stats.gaps.saturating_add(1);
        self.stats.gap_bytes += len;
        sink.count("tcp.gap_bytes", len);
        sink.anomaly(
            rep.ts,
            rep.conn(),
            AnomalyKind::Gap,
            "tcp",
            format!("{len} bytes missing"),
        );
        out(Chunk::Gap(len), sink);
    }

    /// Store `payload` at `rel`: where nothing is buffered, as it is; where something is, the
    /// receiver's rule picks the copy (and an unknown receiver keeps both where they differ).
    fn insert(
        &mut self,
        rel: u64,
        payload: &[u8],
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
    ) {
        let end = rel + payload.len() as u64;
        if rel >= end {
            return;
        }
        let origin = (rel, end);
        let (rule, ambiguous) = match self.overlap {
            TcpOverlap::Rule(r) => (r, false),
            TcpOverlap::Ambiguous => (OverlapRule::First, true),
        };
        let fresh = |a: u64, b: u64| Piece {
            bytes: payload[(a - rel) as usize..(b - rel) as usize].to_vec(),
            origin,
            last: None,
        };
        // The buffered segment that starts before `rel` may overlap it.
        let start_key = self
            .ooo
            .range(..=rel)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(rel);
        let overlapped: Vec<u64> = self
            .ooo
            .range(start_key..end)
            .filter(|(k, v)| *k + v.bytes.len() as u64 > rel)
            .map(|(k, _)| *k)
            .collect();
        let mut differs = false;
        let mut pos = rel;
        let mut put: Vec<(u64, Piece)> = Vec::new();
        for k in overlapped {
            let Some(old) = self.ooo.remove(&k) else {
                continue;
            };
            self.ooo_bytes -= old.size();
            budget.used = budget.used.saturating_sub(old.size());
            let ke = k + old.bytes.len() as u64;
            if k > pos {
                put.push((pos, fresh(pos, k)));
            }
            if k < rel {
                put.push((k, old.slice(k, k, rel)));
            }
            let (a, b) = (k.max(rel), ke.min(end));
            let mid = old.slice(k, a, b);
            let new = &payload[(a - rel) as usize..(b - rel) as usize];
            let differ = mid.bytes != new;
            differs |= differ;
            let kept = if ambiguous {
                // The first copy read on, the last copy beside it wherever any copy differed.
                let last = (differ || mid.last.is_some()).then(|| new.to_vec());
                Piece { last, ..mid }
            } else if rule.new_wins(origin, mid.origin) {
                fresh(a, b)
            } else {
                mid
            };
            put.push((a, kept));
            if ke > end {
                put.push((end, old.slice(k, end, ke)));
            }
            pos = pos.max(ke);
        }
        if pos < end {
            put.push((pos, fresh(pos, end)));
        }
        if differs {
            self.stats.overlaps_different = self.stats.overlaps_different.saturating_add(1);
            let kept = match self.overlap {
                TcpOverlap::Rule(OverlapRule::First) => "first copy kept",
                TcpOverlap::Rule(OverlapRule::Last) => "last copy kept",
                TcpOverlap::Rule(_) => "the receiver's rule picks the earlier-starting copy",
                TcpOverlap::Ambiguous => "both copies followed",
            };
            sink.anomaly(
                rep.ts,
                rep.conn(),
                AnomalyKind::OverlapDifferentData,
                "tcp",
                format!(
                    "segment at offset {rel} overlaps buffered data with different bytes ({kept})"
                ),
            );
            if ambiguous {
                sink.anomaly(
                    rep.ts,
                    rep.conn(),
                    AnomalyKind::OverlapAmbiguous,
                    "tcp",
                    format!(
                        "segment at offset {rel}: copies differ and the receiver's overlap policy is unknown; both versions followed"
                    ),
                );
            }
        }
        for (a, piece) in put {
            self.ooo_bytes += piece.size();
            budget.used += piece.size();
            self.ooo.insert(a, piece);
        }
    }

    /// Deliver buffered segments that now continue the stream.
    fn drain(
        &mut self,
        budget: &mut Budget,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        while let Some(entry) = self.ooo.first_entry() {
            let k = *entry.key();
            if k > self.next_off {
                break;
            }
            let v = entry.remove();
            self.ooo_bytes -= v.size();
            budget.used = budget.used.saturating_sub(v.size());
            let ke = k + v.bytes.len() as u64;
            if ke > self.next_off {
                let skip = (self.next_off - k) as usize;
                let part = &v.bytes[skip..];
                self.advance(part.len() as u64);
                self.stats.delivered += part.len() as u64;
                match &v.last {
                    Some(last) => out(
                        Chunk::Split {
                            first: part,
                            last: &last[skip..],
                        },
                        sink,
                    ),
                    None => out(Chunk::Data(part), sink),
                }
            }
        }
    }

    fn enforce_caps(
        &mut self,
        budget: &mut Budget,
        rep: &Report<'_>,
        sink: &mut Sink,
        out: &mut dyn FnMut(Chunk<'_>, &mut Sink),
    ) {
        loop {
            let cap = if self.ooo.len() > MAX_OOO_SEGMENTS_PER_DIRECTION {
                "MAX_OOO_SEGMENTS_PER_DIRECTION"
            } else if self.ooo_bytes > MAX_REASSEMBLY_BYTES_PER_DIRECTION {
                "MAX_REASSEMBLY_BYTES_PER_DIRECTION"
            } else if budget.used > MAX_REASSEMBLY_BYTES_TOTAL && !self.ooo.is_empty() {
                "MAX_REASSEMBLY_BYTES_TOTAL"
            } else {
                return;
            };
            let Some(first) = self.ooo.keys().next().copied() else {
                return;
            };
            sink.cap_reached(cap, rep.ts, rep.conn(), "tcp", "hole declared a gap");
            self.declare_gap(first.saturating_sub(self.next_off), rep, sink, out);
            self.drain(budget, sink, out);
        }
    }
}

#[cfg(test)]
mod tests;
