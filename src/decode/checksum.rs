//! Internet checksums (RFC 1071) of IPv4 headers and of TCP / UDP over IPv4 and IPv6, and the
//! `auto` decision of whether a sender's checksums can be believed.
//!
//! Headers are summed with etherparse's `checksum::u64_16bit_word`; payloads with [`sum_words`],
//! ours because it runs over every byte of every packet and etherparse's eight-bytes-per-add loop
//! with its carry per add cost 13% of the end-to-end benchmark, where a carry-free sum of 32-bit
//! words that the compiler vectorizes costs a fraction of that (RFC 1071 §2: the sum may be taken
//! over any word size and byte order and folded at the end). A receiver drops a segment whose checksum is wrong (RFC 9293
//! §3.1; Linux `tcp_v4_rcv` → `tcp_checksum_complete` → discard, counted as `InCsumErrors`; an
//! IPv4 header with a bad checksum is dropped in `ip_rcv_core`), so a copy with a bad checksum
//! never reaches the application and must not reach the sensor's reassembly either.
//!
//! But a capture taken on a host with checksum offload holds that host's outgoing packets before
//! the NIC fills the checksum in: every one of them looks bad although the wire carried it good.
//! Suricata's `checksum-validation: auto` answers with a capture-wide ratio; that is too coarse
//! here (an offloaded capture is bad in one direction only, and an attacker would add bad decoys
//! until the ratio flips), so the decision is per sender: [`ChecksumAuto`].

use etherparse::checksum::u64_16bit_word as sum16;
use std::net::IpAddr;

/// What a packet's checksum says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Verdict {
    Good,
    Bad,
    /// Not checkable: the capture cut the packet short, or the sender left the (UDP over IPv4)
    /// checksum out.
    #[default]
    Unknown,
}

impl Verdict {
    /// Good only when both are good; Bad when either is bad.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Bad, _) | (_, Verdict::Bad) => Verdict::Bad,
            (Verdict::Good, Verdict::Good) => Verdict::Good,
            _ => Verdict::Unknown,
        }
    }
    fn of(ok: bool) -> Verdict {
        if ok {
            Verdict::Good
        } else {
            Verdict::Bad
        }
    }
}

/// An IPv4 header (options included) whose checksum field is part of `header`.
pub fn ipv4_header(header: &[u8]) -> Verdict {
    if header.len() < 20 {
        return Verdict::Unknown;
    }
    Verdict::of(sum16::ones_complement(sum16::add_slice(0, header)) == 0)
}

/// TCP or UDP (`proto` 6 or 17) header + payload, complete, between `src` and `dst`.
/// A UDP checksum of zero over IPv4 means "none" (RFC 768): Unknown.
pub fn transport(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> Verdict {
    if proto == UDP && src.is_ipv4() && segment.get(6..8) == Some(&[0, 0]) {
        return Verdict::Unknown;
    }
    match transport_sum(src, dst, proto, segment) {
        Some(sum) => Verdict::of(sum16::ones_complement(sum) == 0),
        None => Verdict::Unknown,
    }
}

/// `ipv4_header(header).and(transport(src, dst, TCP, segment))` for an IPv4 header without
/// options, summed straight from the header's bytes: the pseudo header's addresses are bytes
/// 12..20 of the header itself, so no `IpAddr` is built and matched, and the header is five word
/// additions instead of etherparse's pair-at-a-time loop. This runs for nearly every packet (the
/// header peek of `super::fast`); the separate calls cost about 1% of the end-to-end benchmark's
/// samples outside the payload sum itself (README "Performance").
pub fn ipv4_tcp(header: &[u8; 20], segment: &[u8]) -> Verdict {
    let words = |b: &[u8]| -> u64 {
        b.chunks_exact(4)
            .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .sum()
    };
    let ip = Verdict::of(sum16::ones_complement(words(header)) == 0);
    let Ok(len) = u16::try_from(segment.len()) else {
        return ip.and(Verdict::Unknown);
    };
    let sum = ipv4_pseudo(words(&header[12..20]), TCP, len) + fold_to_32(sum_words(segment));
    ip.and(Verdict::of(sum16::ones_complement(sum) == 0))
}

/// The IPv4 pseudo header (RFC 9293 §3.1) summed: `addresses` (the sum of source and
/// destination), zero, protocol, 16-bit length.
fn ipv4_pseudo(addresses: u64, proto: u8, len: u16) -> u64 {
    let [hi, lo] = len.to_be_bytes();
    addresses + u64::from(u32::from_ne_bytes([0, proto, hi, lo]))
}

/// The checksum field bytes for a TCP or UDP `segment` whose checksum field is zero (frame
/// builders; a computed zero is sent as 0xffff, which UDP requires, RFC 768). The words were
/// summed in native order, so the result goes back in native order.
pub fn transport_field(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> [u8; 2] {
    let sum = transport_sum(src, dst, proto, segment).unwrap_or(0);
    sum16::ones_complement_with_no_zero(sum).to_ne_bytes()
}

/// The IPv4 header checksum field bytes for `header` whose checksum field is zero.
pub fn ipv4_header_field(header: &[u8]) -> [u8; 2] {
    sum16::ones_complement(sum16::add_slice(0, header)).to_ne_bytes()
}

/// The unfolded sum of the pseudo header and `segment` (None: mixed address families or a
/// segment too long for its length field).
fn transport_sum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> Option<u64> {
    let len = u32::try_from(segment.len()).ok()?;
    let sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let addresses =
                u32::from_ne_bytes(s.octets()) as u64 + u32::from_ne_bytes(d.octets()) as u64;
            ipv4_pseudo(addresses, proto, u16::try_from(len).ok()?)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let s = sum16::add_slice(0, &s.octets());
            let s = sum16::add_slice(s, &d.octets());
            // IPv6 pseudo header (RFC 8200 §8.1): 32-bit length, three zero bytes, next header.
            let s = sum16::add_4bytes(s, len.to_be_bytes());
            sum16::add_4bytes(s, [0, 0, 0, proto])
        }
        _ => return None,
    };
    Some(fold_to_32(sum) + fold_to_32(sum_words(segment)))
}

/// The sum of `data` as native-order 32-bit words (the last one zero-padded), without carries:
/// it cannot overflow below 2^32 words.
///
/// The same loop twice: compiled for AVX2 where the CPU has it (chosen at run time, as release
/// builds target baseline x86-64, i.e. SSE2). This sum runs over every payload byte; the AVX2
/// build sums 1460-byte segments at 58 GB/s instead of 37 on the bench machine and took 2% off
/// the end-to-end benchmark's CPU (README "Performance").
pub fn sum_words(data: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above), all the function requires.
        return unsafe { sum_words_avx2(data) };
    }
    sum_words_portable(data)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sum_words_avx2(data: &[u8]) -> u64 {
    sum_words_portable(data)
}

#[inline(always)]
fn sum_words_portable(data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(4);
    let body: u64 = words
        .by_ref()
        .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
        .sum();
    // The last word zero-padded by hand: a `copy_from_slice` of a variable length is a call to
    // `memcpy` for every packet.
    let last = match *words.remainder() {
        [a] => [a, 0, 0, 0],
        [a, b] => [a, b, 0, 0],
        [a, b, c] => [a, b, c, 0],
        _ => [0; 4],
    };
    body + u64::from(u32::from_ne_bytes(last))
}

/// `sum` folded to 32 bits with end-around carries (congruent modulo 0xffff, so the 16-bit fold
/// of the result equals that of `sum`), leaving room for the caller to add to it.
fn fold_to_32(sum: u64) -> u64 {
    let s = (sum >> 32) + (sum & 0xffff_ffff);
    (s >> 32) + (s & 0xffff_ffff)
}

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// What one sender's checksums have shown so far, and so whether a bad one is to be believed.
///
/// A sender either computes its checksums (then the capture shows them good, barring corruption)
/// or offloads them to a NIC on the capture host (then the capture shows every one bad). So:
/// once a sender has shown [`GOOD_CHECKSUMS_TO_VALIDATE`] good checksums it is validated for good,
/// and its bad packets are dropped as the endpoint drops them. Until then a bad checksum is taken
/// for offload and the packet is kept (counted as `checksum.bad_kept_unvalidated`).
///
/// Why two and not a ratio: an attacker adds decoys with bad checksums at will, so any ratio of
/// bad to good can be pushed past a threshold, while the good copies are the ones the endpoint
/// needs and cannot be left out; a TCP client's SYN and handshake ACK are two good packets before
/// its first byte of data. Why not one: an offloaded sender's field holds a partial sum that
/// matches the real checksum by chance about once in 65,536 packets; twice in one direction is
/// unlikely enough for any flow this sensor reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumAuto {
    good: u16,
    bad: u16,
}

/// Good checksums from one sender before its bad ones are dropped (see [`ChecksumAuto`]).
pub const GOOD_CHECKSUMS_TO_VALIDATE: u16 = 2;

/// Whether checksums are validated: `auto` (per sender, see [`ChecksumAuto`]), always, or never.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChecksumMode {
    #[default]
    Auto,
    Always,
    Never,
}

/// What the sensor believes a sender's checksums are, at the end of its traffic (reported).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderChecksums {
    /// Good ones seen: bad ones are dropped.
    Validated,
    /// Only bad ones (or fewer good than needed): taken for offload on the capture host.
    Offloaded,
    /// Nothing checkable seen.
    Unknown,
}

impl ChecksumAuto {
    /// Record one packet's verdict; returns whether the packet is to be believed (kept).
    pub fn keep(&mut self, v: Verdict, mode: ChecksumMode) -> bool {
        match v {
            Verdict::Good => {
                self.good = self.good.saturating_add(1);
                true
            }
            Verdict::Unknown => true,
            Verdict::Bad => {
                self.bad = self.bad.saturating_add(1);
                match mode {
                    ChecksumMode::Never => true,
                    ChecksumMode::Always => false,
                    ChecksumMode::Auto => !self.validated(),
                }
            }
        }
    }

    pub fn validated(&self) -> bool {
        self.good >= GOOD_CHECKSUMS_TO_VALIDATE
    }

    pub fn decision(&self) -> SenderChecksums {
        if self.validated() {
            SenderChecksums::Validated
        } else if self.bad > 0 {
            SenderChecksums::Offloaded
        } else {
            SenderChecksums::Unknown
        }
    }
}

#[cfg(test)]
mod tests;
