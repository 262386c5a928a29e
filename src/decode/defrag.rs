//! IPv4 / IPv6 fragment reassembly with hard caps.
//!
//! Our own rather than etherparse's `IpDefragPool`, which documents that it is not safe against
//! memory exhaustion. A fragment carrying different bytes for bytes already held is a
//! `fragment_overlap` anomaly, and then the receiving host's [`FragPolicy`] decides (chosen by
//! its address when the datagram's first fragment arrives, `flow::policy`): by default the whole
//! datagram is dropped, as Linux (since 4.19), Windows (since Vista) and every IPv6 stack (RFC
//! 5722) do, and the sensor reads the sender's retransmission instead; Snort frag3's "first",
//! "last" and "bsd" remain for other targets.

use super::checksum::Verdict;
use crate::event::AnomalyKind;
use crate::flow::policy::{HostPolicies, OverlapRule};
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::maps::KeyedMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Datagrams being reassembled at once; beyond it the oldest is dropped.
pub const MAX_IP_FRAG_BUFFERS: usize = 1024;
/// Bytes held across every datagram being reassembled; beyond it the oldest is dropped.
pub const MAX_IP_FRAG_BYTES_TOTAL: usize = 16 << 20;
/// Largest reassembled payload (an IP datagram cannot exceed 64 KiB without jumbograms).
pub const MAX_IP_FRAG_DATAGRAM_BYTES: usize = 65_535;
/// Disjoint pieces one datagram may be held in (tiny-fragment evasion is bounded by this).
pub const MAX_IP_FRAG_PIECES: usize = 8192;
/// A datagram whose fragments stop arriving for this long (packet time) is dropped.
pub const IP_FRAG_TIMEOUT_SECS: u64 = 30;

/// What a target does when fragments overlap with different bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FragPolicy {
    /// Discard the datagram (Linux ≥ 4.19, Windows ≥ Vista, IPv6 per RFC 5722); the sender's
    /// retransmission brings the bytes again.
    #[default]
    Drop,
    /// The first copy of each byte wins (frag3 "first": old Windows, Solaris, HP-UX).
    First,
    /// The last copy wins (frag3 "last": Cisco IOS).
    Last,
    /// The fragment that starts first wins, the earlier arrival on the same offset (frag3 "bsd":
    /// FreeBSD `ip_reass` trims a new fragment by a preceding one and trims succeeding ones).
    Bsd,
    /// The target's rule is not known: an `overlap_ambiguous` anomaly, and the datagram is dropped
    /// rather than believed in either version; the sender's retransmission is read.
    Ambiguous,
}

impl FragPolicy {
    /// Which copy is kept while the datagram is assembled (Drop and Ambiguous drop it at the
    /// first disagreement, so their rule only decides between equal bytes).
    fn rule(self) -> OverlapRule {
        match self {
            FragPolicy::Last => OverlapRule::Last,
            FragPolicy::Bsd => OverlapRule::Bsd,
            FragPolicy::Drop | FragPolicy::First | FragPolicy::Ambiguous => OverlapRule::First,
        }
    }
}

/// Identity of one fragmented datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub proto: u8,
}

/// One fragment as the IP header describes it.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `data` in the original payload.
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
    /// This fragment's IPv4 header checksum (Unknown for IPv6).
    pub header_checksum: Verdict,
}

/// Bytes `start..end` of a datagram, and the fragment (its offset and end) they came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
    origin: (usize, usize),
}

#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    /// Sorted, disjoint byte ranges received, each with the fragment that provides it.
    pieces: Vec<Piece>,
    /// The receiving host's policy, chosen when the first fragment arrived.
    policy: FragPolicy,
    /// Known once the last fragment (more = false) arrived.
    total: Option<usize>,
    first_seen: Ts,
    last_seen: Ts,
    /// Every fragment's header checksum, combined: a datagram with one bad header is bad, and the
    /// flow decides whether its sender's bad checksums are believed.
    header_checksum: Verdict,
}

impl Datagram {
    fn complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        let mut at = 0;
        for p in &self.pieces {
            if p.start != at {
                return false;
            }
            at = p.end;
        }
        at == total
    }
}

#[derive(Debug, Default)]
pub struct Defragmenter {
    /// Keyed per process: addresses and IP ids are chosen by the sender.
    pending: KeyedMap<FragKey, Datagram>,
    bytes: usize,
    last_sweep: Ts,
    /// Policies by receiving host (`rules/hosts.toml`); empty: the defaults.
    hosts: Arc<HostPolicies>,
}

/// Why a fragment was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum FragOutcome {
    /// Stored; the datagram is not complete yet.
    Pending,
    /// The datagram is complete: its payload, and its fragments' header checksums combined.
    Complete(Vec<u8>, Verdict),
    /// Dropped (inconsistent or beyond a cap); already reported.
    Dropped,
}

impl Defragmenter {
    pub fn new() -> Defragmenter {
        Defragmenter::default()
    }

    /// Receiving hosts' policies: each datagram takes its destination's when it starts.
    pub fn set_hosts(&mut self, hosts: Arc<HostPolicies>) {
        self.hosts = hosts;
    }

    pub fn hosts(&self) -> &Arc<HostPolicies> {
        &self.hosts
    }

    /// Datagrams currently held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes currently held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn add(&mut self, ts: Ts, f: Fragment<'_>, sink: &mut Sink) -> FragOutcome {
        sink.count("ip.fragments", 1);
        self.sweep(ts, sink);
        let Some(end) = f.offset.checked_add(f.data.len()) else {
            return FragOutcome::Dropped;
        };
        if end > MAX_IP_FRAG_DATAGRAM_BYTES {
            sink.cap_reached(
                "MAX_IP_FRAG_DATAGRAM_BYTES",
                ts,
                None,
                "ip",
                format!("fragment ends at {end} ({} → {})", f.key.src, f.key.dst),
            );
            self.drop_key(&f.key);
            return FragOutcome::Dropped;
        }
        if !self.pending.contains_key(&f.key) {
            if self.pending.len() >= MAX_IP_FRAG_BUFFERS {
                sink.cap_reached(
                    "MAX_IP_FRAG_BUFFERS",
                    ts,
                    None,
                    "ip",
                    "oldest datagram dropped",
                );
                self.drop_oldest();
            }
            self.pending.insert(
                f.key,
                Datagram {
                    data: Vec::new(),
                    pieces: Vec::new(),
                    policy: self.hosts.lookup(f.key.dst).frag(f.key.dst),
                    total: None,
                    first_seen: ts,
                    last_seen: ts,
                    header_checksum: Verdict::Good,
                },
            );
        }
        while self.bytes + f.data.len() > MAX_IP_FRAG_BYTES_TOTAL && self.pending.len() > 1 {
            sink.cap_reached(
                "MAX_IP_FRAG_BYTES_TOTAL",
                ts,
                None,
                "ip",
                "oldest datagram dropped",
            );
            if !self.drop_oldest_except(&f.key) {
                break;
            }
        }
        let Some(d) = self.pending.get_mut(&f.key) else {
            return FragOutcome::Dropped;
        };
        d.last_seen = ts;
        d.header_checksum = if f.header_checksum == Verdict::Unknown {
            d.header_checksum
        } else {
            d.header_checksum.and(f.header_checksum)
        };
        if !f.more {
            match d.total {
                Some(t) if t != end => {
                    sink.anomaly(
                        ts,
                        None,
                        AnomalyKind::FragmentOverlap,
                        "ip",
                        "two different last fragments",
                    );
                }
                Some(_) => {}
                None => {
                    if d.pieces.last().is_some_and(|p| p.end > end) {
                        sink.anomaly(
                            ts,
                            None,
                            AnomalyKind::Malformed,
                            "ip",
                            "data beyond the last fragment",
                        );
                        self.drop_key(&f.key);
                        return FragOutcome::Dropped;
                    }
                    d.total = Some(end);
                }
            }
        }
        if d.total.is_some_and(|t| end > t) {
            sink.anomaly(
                ts,
                None,
                AnomalyKind::Malformed,
                "ip",
                "fragment beyond the last fragment",
            );
            return FragOutcome::Pending;
        }
        let grown = end.saturating_sub(d.data.len());
        if d.data.len() < end {
            d.data.resize(end, 0);
        }
        self.bytes += grown;
        let policy = d.policy;
        let differs = insert(d, f.offset, f.data, policy.rule());
        if differs {
            sink.anomaly(
                ts,
                None,
                AnomalyKind::FragmentOverlap,
                "ip",
                format!(
                    "overlapping fragments with different data ({} → {} id {}): {}",
                    f.key.src,
                    f.key.dst,
                    f.key.id,
                    match policy {
                        FragPolicy::Drop => "datagram dropped, the retransmission is read",
                        FragPolicy::First => "first copy kept",
                        FragPolicy::Last => "last copy kept",
                        FragPolicy::Bsd => "the earlier-starting fragment's copy kept",
                        FragPolicy::Ambiguous =>
                            "the target's policy is unknown: datagram dropped, the retransmission is read",
                    }
                ),
            );
            if policy == FragPolicy::Ambiguous {
                sink.anomaly(
                    ts,
                    None,
                    AnomalyKind::OverlapAmbiguous,
                    "ip",
                    format!(
                        "fragments of {} → {} id {} disagree and the target's policy is unknown",
                        f.key.src, f.key.dst, f.key.id
                    ),
                );
            }
            if matches!(policy, FragPolicy::Drop | FragPolicy::Ambiguous) {
                self.drop_key(&f.key);
                return FragOutcome::Dropped;
            }
        }
        if d.pieces.len() > MAX_IP_FRAG_PIECES {
            sink.cap_reached("MAX_IP_FRAG_PIECES", ts, None, "ip", "datagram dropped");
            self.drop_key(&f.key);
            return FragOutcome::Dropped;
        }
        if d.complete() {
            let Some(d) = self.pending.remove(&f.key) else {
                return FragOutcome::Dropped;
            };
            self.bytes = self.bytes.saturating_sub(d.data.len());
            sink.count("ip.reassembled", 1);
            return FragOutcome::Complete(d.data, d.header_checksum);
        }
        FragOutcome::Pending
    }

    /// Drop datagrams idle past the timeout (at most once per second of packet time).
    fn sweep(&mut self, now: Ts, sink: &mut Sink) {
        if self.pending.is_empty() || now.0 < self.last_sweep.0.saturating_add(1_000_000_000) {
            return;
        }
        self.last_sweep = now;
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|_, d| {
            let keep = d.last_seen.saturating_add_secs(IP_FRAG_TIMEOUT_SECS) >= now;
            if !keep {
                freed += d.data.len();
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        let gone = (before - self.pending.len()) as u64;
        if gone > 0 {
            sink.count("ip.frag_timeouts", gone);
        }
    }

    fn drop_key(&mut self, k: &FragKey) {
        if let Some(d) = self.pending.remove(k) {
            self.bytes = self.bytes.saturating_sub(d.data.len());
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(k) = self
            .pending
            .iter()
            .min_by_key(|(_, d)| d.first_seen)
            .map(|(k, _)| *k)
        {
            self.drop_key(&k);
        }
    }

    fn drop_oldest_except(&mut self, keep: &FragKey) -> bool {
        let k = self
            .pending
            .iter()
            .filter(|(k, _)| *k != keep)
            .min_by_key(|(_, d)| d.first_seen)
            .map(|(k, _)| *k);
        match k {
            Some(k) => {
                self.drop_key(&k);
                true
            }
            None => false,
        }
    }
}

/// Copy `data` at `offset` into the bytes not yet received, and over those held where `rule`
/// says the new fragment wins; compare it with those already held. Returns true when an overlap
/// carried different bytes. `d.data` is at least `offset + len` long.
fn insert(d: &mut Datagram, offset: usize, data: &[u8], rule: OverlapRule) -> bool {
    let end = offset + data.len();
    if offset >= end {
        return false;
    }
    let Datagram {
        data: buf, pieces, ..
    } = d;
    let new = Piece {
        start: offset,
        end,
        origin: (offset, end),
    };
    let wide = |r: (usize, usize)| (r.0 as u64, r.1 as u64);
    let take = |a: usize, b: usize, buf: &mut [u8]| {
        buf[a..b].copy_from_slice(&data[a - offset..b - offset]);
        Piece {
            start: a,
            end: b,
            ..new
        }
    };
    let mut differs = false;
    let mut out: Vec<Piece> = Vec::with_capacity(pieces.len() + 3);
    let mut pos = offset;
    for &p in pieces.iter() {
        if p.end <= offset || p.start >= end {
            out.push(p);
            continue;
        }
        // The part of the new fragment nobody held, before this piece.
        if p.start > pos {
            out.push(take(pos, p.start, buf));
        }
        if p.start < offset {
            out.push(Piece { end: offset, ..p });
        }
        let (a, b) = (p.start.max(offset), p.end.min(end));
        if buf[a..b] != data[a - offset..b - offset] {
            differs = true;
        }
        if rule.new_wins(wide(new.origin), wide(p.origin)) {
            out.push(take(a, b, buf));
        } else {
            out.push(Piece {
                start: a,
                end: b,
                ..p
            });
        }
        if p.end > end {
            out.push(Piece { start: end, ..p });
        }
        pos = pos.max(p.end);
    }
    if pos < end {
        out.push(take(pos, end, buf));
    }
    // Only the last piece pushed can be out of place (after pieces that start beyond `end`).
    out.sort_by_key(|p| p.start);
    *pieces = out;
    differs
}

#[cfg(test)]
mod tests;
