//! IPv4 / IPv6 fragment reassembly with hard caps.
//!
//! Our own rather than etherparse's `IpDefragPool`, which documents that it is not safe against
//! memory exhaustion. A fragment carrying different bytes for bytes already held is a
//! `fragment_overlap` anomaly, and then [`FragPolicy`] decides: by default the whole datagram is
//! dropped, as Linux (since 4.19), Windows (since Vista) and every IPv6 stack (RFC 5722) do, and
//! the sensor reads the sender's retransmission instead; Snort frag3's "first" and "last" remain
//! for older targets.

use super::checksum::Verdict;
use crate::event::AnomalyKind;
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::maps::KeyedMap;
use std::net::IpAddr;

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

#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    /// Sorted, disjoint, non-adjacent byte ranges received.
    have: Vec<(usize, usize)>,
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
        matches!(self.total, Some(t) if self.have.len() == 1 && self.have[0] == (0, t))
    }
}

#[derive(Debug, Default)]
pub struct Defragmenter {
    /// Keyed per process: addresses and IP ids are chosen by the sender.
    pending: KeyedMap<FragKey, Datagram>,
    bytes: usize,
    last_sweep: Ts,
    pub policy: FragPolicy,
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
                    have: Vec::new(),
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
                    if d.have.last().is_some_and(|&(_, e)| e > end) {
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
        let differs = insert(d, f.offset, f.data, self.policy == FragPolicy::Last);
        if differs {
            let policy = self.policy;
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
                    }
                ),
            );
            if policy == FragPolicy::Drop {
                self.drop_key(&f.key);
                return FragOutcome::Dropped;
            }
        }
        if d.have.len() > MAX_IP_FRAG_PIECES {
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

/// Copy `data` at `offset` into the bytes not yet received (and over those held too when
/// `last_wins`); compare it with those already held. Returns true when an overlap carried
/// different bytes. `d.data` is at least `offset + len` long.
fn insert(d: &mut Datagram, offset: usize, data: &[u8], last_wins: bool) -> bool {
    let end = offset + data.len();
    let mut differs = false;
    let mut pos = offset;
    for &(s, e) in &d.have {
        if e <= pos {
            continue;
        }
        if s >= end {
            break;
        }
        // Uncovered part before this range.
        if s > pos {
            let (a, b) = (pos, s.min(end));
            d.data[a..b].copy_from_slice(&data[a - offset..b - offset]);
        }
        // Covered part: compare.
        let (a, b) = (s.max(pos), e.min(end));
        if a < b && d.data[a..b] != data[a - offset..b - offset] {
            differs = true;
            if last_wins {
                d.data[a..b].copy_from_slice(&data[a - offset..b - offset]);
            }
        }
        pos = pos.max(e);
        if pos >= end {
            break;
        }
    }
    if pos < end {
        d.data[pos..end].copy_from_slice(&data[pos - offset..]);
    }
    merge_range(&mut d.have, offset, end);
    differs
}

/// Add [s, e) to sorted disjoint ranges, merging overlapping or adjacent ones.
fn merge_range(have: &mut Vec<(usize, usize)>, s: usize, e: usize) {
    if s >= e {
        return;
    }
    let mut ns = s;
    let mut ne = e;
    let first = have.partition_point(|&(_, re)| re < s);
    let mut last = first;
    while last < have.len() && have[last].0 <= e {
        ns = ns.min(have[last].0);
        ne = ne.max(have[last].1);
        last += 1;
    }
    have.splice(first..last, std::iter::once((ns, ne)));
}

#[cfg(test)]
mod tests;
