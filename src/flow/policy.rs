//! Per-target policies: what the *receiving* host does when copies of the same bytes disagree
//! (IP fragments, TCP segments) and which RSTs it believes, chosen by its address (Snort's
//! frag3/stream5 `policy`, Suricata's `host-os-policy`). Configured by CIDR in the rules
//! directory (`rules/hosts.toml`, see rules/README.md); resolved once per flow (and once per
//! fragmented datagram) from the receiver's address, never per packet.

use super::receiver::RstPolicy;
use crate::decode::defrag::FragPolicy;
use std::collections::HashMap;
use std::net::IpAddr;

/// Which copy of a byte a target keeps when two segments (or fragments) both carry it and it has
/// not delivered it yet. `new` and `old` are the (start, end) of the two copies' segments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverlapRule {
    /// The copy that arrived first (Snort/Suricata "first"; the sensor's default).
    #[default]
    First,
    /// The copy that arrived last ("last").
    Last,
    /// The copy whose segment starts first, the earlier arrival on a tie (FreeBSD `tcp_reass` and
    /// `ip_reass`: a preceding segment keeps its bytes, succeeding ones are trimmed; Suricata's
    /// BSD and Windows policies).
    Bsd,
    /// As BSD, except that on the same start the longer segment wins (Linux
    /// `tcp_data_queue_ofo`: a new segment covering a queued one from the same sequence number
    /// replaces it; one covered by it is dropped).
    Linux,
}

impl OverlapRule {
    /// Whether the new copy's bytes replace the old copy's where they overlap.
    pub fn new_wins(self, new: (u64, u64), old: (u64, u64)) -> bool {
        match self {
            OverlapRule::First => false,
            OverlapRule::Last => true,
            OverlapRule::Bsd => new.0 < old.0,
            OverlapRule::Linux => new.0 < old.0 || (new.0 == old.0 && new.1 > old.1),
        }
    }
}

/// What a TCP receiver does with overlapping undelivered copies that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOverlap {
    /// The target's rule is known.
    Rule(OverlapRule),
    /// The target's rule is not known: the sensor does not bet on one copy (`overlap_ambiguous`,
    /// see README "When packets disagree").
    Ambiguous,
}

impl Default for TcpOverlap {
    fn default() -> TcpOverlap {
        TcpOverlap::Rule(OverlapRule::First)
    }
}

/// A target's stack as the rules name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostOs {
    First,
    Last,
    Bsd,
    Linux,
    Windows,
    /// Not known: overlaps with different bytes are `overlap_ambiguous`.
    Unknown,
}

impl HostOs {
    pub const NAMES: &'static str = "first, last, bsd, linux, windows, unknown";

    pub fn parse(s: &str) -> Option<HostOs> {
        Some(match s {
            "first" => HostOs::First,
            "last" => HostOs::Last,
            "bsd" => HostOs::Bsd,
            "linux" => HostOs::Linux,
            "windows" => HostOs::Windows,
            "unknown" => HostOs::Unknown,
            _ => return None,
        })
    }
}

/// Everything the sensor decides by the receiving host. Three bytes: a flow keeps one per
/// direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetPolicy {
    pub frag_v4: FragPolicy,
    pub frag_v6: FragPolicy,
    pub tcp: TcpOverlap,
    pub rst: RstPolicy,
}

impl Default for TargetPolicy {
    /// For hosts no rule names: IPv4 and IPv6 fragments that disagree drop the datagram (current
    /// Linux, Windows, RFC 5722), the first TCP copy wins, RSTs must match exactly (RFC 5961).
    fn default() -> TargetPolicy {
        TargetPolicy {
            frag_v4: FragPolicy::Drop,
            frag_v6: FragPolicy::Drop,
            tcp: TcpOverlap::default(),
            rst: RstPolicy::ExactMatch,
        }
    }
}

impl TargetPolicy {
    /// The policy of a named stack, as current versions of it behave.
    pub fn of(os: HostOs) -> TargetPolicy {
        let rule = |r| TcpOverlap::Rule(r);
        let (frag_v4, tcp) = match os {
            HostOs::First => (FragPolicy::First, rule(OverlapRule::First)),
            HostOs::Last => (FragPolicy::Last, rule(OverlapRule::Last)),
            // FreeBSD `ip_reass` trims the new fragment by a preceding one and trims succeeding
            // ones: the same rule as its TCP queue.
            HostOs::Bsd => (FragPolicy::Bsd, rule(OverlapRule::Bsd)),
            // Linux since 4.19 (`ip_frag_queue`: IPFRAG_OVERLAP) and Windows since Vista drop the
            // whole datagram; Windows' TCP queue keeps the earlier-starting copy (Suricata's
            // Windows policy is BSD's).
            HostOs::Linux => (FragPolicy::Drop, rule(OverlapRule::Linux)),
            HostOs::Windows => (FragPolicy::Drop, rule(OverlapRule::Bsd)),
            HostOs::Unknown => (FragPolicy::Ambiguous, TcpOverlap::Ambiguous),
        };
        // RFC 5722: every IPv6 stack of these drops a datagram whose fragments overlap; "first",
        // "last" and "unknown" are the operator's words and kept as said.
        let frag_v6 = match os {
            HostOs::Bsd | HostOs::Linux | HostOs::Windows => FragPolicy::Drop,
            _ => frag_v4,
        };
        TargetPolicy {
            frag_v4,
            frag_v6,
            tcp,
            // RFC 5961 §3.2 challenge ACKs: Linux ≥ 3.6, Windows, FreeBSD ≥ 12. With an unknown
            // stack the connection is followed past a RST that is not exact (`rst_ignored`): had
            // the target reset, nothing more of it would come.
            rst: RstPolicy::ExactMatch,
        }
    }

    pub fn frag(&self, ip: IpAddr) -> FragPolicy {
        if ip.is_ipv6() {
            self.frag_v6
        } else {
            self.frag_v4
        }
    }
}

/// CIDR → policy, longest prefix first. Hand-written rather than a trie crate: the table holds a
/// handful of operator entries and is consulted once per new flow, so one hash map per prefix
/// length present (at most 33 for IPv4, 129 for IPv6, a few in practice) is all it needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostPolicies {
    /// (prefix length, masked address → policy), longest prefix first.
    v4: Vec<(u8, HashMap<u128, TargetPolicy>)>,
    v6: Vec<(u8, HashMap<u128, TargetPolicy>)>,
}

fn bits(ip: IpAddr) -> (u128, u32) {
    match ip {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    let drop = width.saturating_sub(u32::from(prefix));
    if drop >= 128 {
        0
    } else {
        bits >> drop
    }
}

impl HostPolicies {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Map `addr/prefix` (host bits ignored) to `policy`. Returns the policy it replaced, if the
    /// same prefix was already mapped.
    pub fn insert(
        &mut self,
        addr: IpAddr,
        prefix: u8,
        policy: TargetPolicy,
    ) -> Option<TargetPolicy> {
        let (b, width) = bits(addr);
        let prefix = prefix.min(width as u8);
        let table = if addr.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        let at = match table.iter().position(|(p, _)| *p <= prefix) {
            Some(i) if table[i].0 == prefix => i,
            Some(i) => {
                table.insert(i, (prefix, HashMap::new()));
                i
            }
            None => {
                table.push((prefix, HashMap::new()));
                table.len() - 1
            }
        };
        table[at].1.insert(masked(b, width, prefix), policy)
    }

    /// The policy of the longest prefix holding `ip`; the default when none does.
    pub fn lookup(&self, ip: IpAddr) -> TargetPolicy {
        let table = if ip.is_ipv4() { &self.v4 } else { &self.v6 };
        if table.is_empty() {
            return TargetPolicy::default();
        }
        let (b, width) = bits(ip);
        table
            .iter()
            .find_map(|(p, m)| m.get(&masked(b, width, *p)).copied())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins_for_v4_and_v6_and_the_rest_get_the_default() {
        let mut t = HostPolicies::default();
        let (lin, win, unk) = (
            TargetPolicy::of(HostOs::Linux),
            TargetPolicy::of(HostOs::Windows),
            TargetPolicy::of(HostOs::Unknown),
        );
        assert_eq!(t.insert(ip("10.0.0.0"), 8, lin), None);
        // Host bits are ignored.
        assert_eq!(t.insert(ip("10.1.2.3"), 16, win), None);
        t.insert(ip("10.1.2.3"), 32, unk);
        t.insert(ip("2001:db8::"), 32, win);
        t.insert(ip("2001:db8:1::"), 48, lin);
        assert_eq!(t.lookup(ip("10.9.9.9")), lin);
        assert_eq!(t.lookup(ip("10.1.9.9")), win);
        assert_eq!(t.lookup(ip("10.1.2.3")), unk);
        assert_eq!(t.lookup(ip("11.0.0.1")), TargetPolicy::default());
        assert_eq!(t.lookup(ip("2001:db8:2::1")), win);
        assert_eq!(t.lookup(ip("2001:db8:1::5")), lin);
        assert_eq!(t.lookup(ip("2001:db9::1")), TargetPolicy::default());
        // An IPv4 prefix never matches an IPv6 address of the same bits.
        assert_eq!(t.lookup(ip("::a01:203")), TargetPolicy::default());
        // /0 is a catch-all for its family only.
        t.insert(ip("0.0.0.0"), 0, unk);
        assert_eq!(t.lookup(ip("192.0.2.1")), unk);
        assert_eq!(t.lookup(ip("10.1.9.9")), win);
        assert_eq!(t.lookup(ip("2001:db9::1")), TargetPolicy::default());
        // The same prefix again replaces (the rules loader reports it as an error).
        assert_eq!(t.insert(ip("10.0.0.0"), 8, win), Some(lin));
    }

    #[test]
    fn overlap_rules() {
        use OverlapRule::*;
        // New segment starts before the old one.
        assert!(!First.new_wins((0, 10), (5, 10)));
        assert!(Last.new_wins((5, 10), (0, 10)));
        assert!(Bsd.new_wins((0, 10), (5, 10)));
        assert!(Linux.new_wins((0, 10), (5, 10)));
        // Same start: only Linux prefers the longer new one.
        assert!(!Bsd.new_wins((5, 20), (5, 10)));
        assert!(Linux.new_wins((5, 20), (5, 10)));
        assert!(!Linux.new_wins((5, 10), (5, 10)));
        // Starts after: the old copy stays.
        assert!(!Bsd.new_wins((6, 30), (5, 10)));
        assert!(!Linux.new_wins((6, 30), (5, 10)));
    }

    #[test]
    fn named_stacks() {
        let l = TargetPolicy::of(HostOs::Linux);
        assert_eq!(l.frag(ip("10.0.0.1")), FragPolicy::Drop);
        assert_eq!(l.tcp, TcpOverlap::Rule(OverlapRule::Linux));
        let b = TargetPolicy::of(HostOs::Bsd);
        assert_eq!(b.frag(ip("10.0.0.1")), FragPolicy::Bsd);
        assert_eq!(b.frag(ip("::1")), FragPolicy::Drop);
        let u = TargetPolicy::of(HostOs::Unknown);
        assert_eq!(u.tcp, TcpOverlap::Ambiguous);
        assert_eq!(u.frag(ip("::1")), FragPolicy::Ambiguous);
        assert_eq!(HostOs::parse("windows"), Some(HostOs::Windows));
        assert_eq!(HostOs::parse("Windows"), None);
    }
}
