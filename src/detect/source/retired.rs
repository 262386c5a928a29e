//! Sources that went quiet: what their end-of-run host summary needs, packed into one small byte
//! string each, so that a long run keeps a few dozen bytes per attacking host instead of its live
//! state (maps, sets, admin-connect history). A source that comes back is unpacked and carries on
//! exactly where it stopped, so the summaries written at the end do not depend on retirement.

use super::SourceState;
use crate::event::alert::Technique;
use crate::time::Ts;
use crate::wire::maps::KeyedMap;
use std::net::IpAddr;

/// Quiet sources whose host summary is kept (packed) for the end of the run. Beyond it the
/// summary of a source that goes quiet is written right away (final, `cap_reached`
/// "MAX_RETIRED_SOURCES"): nothing is lost, it is only written earlier. At ~150 bytes each this
/// is about 10 MiB at most.
pub const MAX_RETIRED_SOURCES: usize = 65_536;

/// Packed host-summary state by source address.
#[derive(Default)]
pub(super) struct Retired {
    map: KeyedMap<IpAddr, Box<[u8]>>,
}

impl Retired {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn is_full(&self) -> bool {
        self.map.len() >= MAX_RETIRED_SOURCES
    }

    /// Keep `s` packed (the caller checked [`Self::is_full`]).
    pub(super) fn put(&mut self, src: IpAddr, s: &SourceState) {
        self.map.insert(src, pack(s));
    }

    /// Unpack and forget a retired source, if it is one.
    pub(super) fn take(&mut self, src: &IpAddr) -> Option<SourceState> {
        self.map.remove(src).map(|b| unpack(&b))
    }

    /// Unpack without forgetting (end of run).
    pub(super) fn get(&self, src: &IpAddr) -> Option<SourceState> {
        self.map.get(src).map(|b| unpack(b))
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = &IpAddr> {
        self.map.keys()
    }
}

fn technique_bit(t: Technique) -> u8 {
    match t {
        Technique::ServiceCreate => 1,
        Technique::ServiceModify => 2,
        Technique::TaskCreate => 4,
    }
}

const TECHNIQUES: [Technique; 3] = [
    Technique::ServiceCreate,
    Technique::ServiceModify,
    Technique::TaskCreate,
];

fn put_ip(b: &mut Vec<u8>, ip: &IpAddr) {
    match ip {
        IpAddr::V4(a) => {
            b.push(4);
            b.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b.push(6);
            b.extend_from_slice(&a.octets());
        }
    }
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    b.extend_from_slice(&n.to_le_bytes());
    // Strings here are user and tool names (short); one longer than 4 GiB cannot exist in memory
    // next to this one, but cut it at the declared length all the same.
    b.extend_from_slice(s.as_bytes().get(..n as usize).unwrap_or(s.as_bytes()));
}

fn put_len(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Only what the host summary reads: counts, first/last time, targets, tools, techniques, users.
/// The sweep history (admin connects, last sweep alert) is older than the sweep window by the
/// time a source retires, so it would have been pruned anyway.
fn pack(s: &SourceState) -> Box<[u8]> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&s.first_ts.0.to_le_bytes());
    b.extend_from_slice(&s.last_ts.0.to_le_bytes());
    for n in [s.attacks, s.suppressed, s.signals, s.unreadable_sessions] {
        b.extend_from_slice(&n.to_le_bytes());
    }
    b.push(s.techniques.iter().fold(0u8, |m, t| m | technique_bit(*t)));
    put_len(&mut b, s.targets.len());
    for ip in &s.targets {
        put_ip(&mut b, ip);
    }
    put_len(&mut b, s.tools.len());
    for t in &s.tools {
        put_str(&mut b, t);
    }
    put_len(&mut b, s.users.len());
    for u in &s.users {
        put_str(&mut b, u);
    }
    b.into_boxed_slice()
}

/// A reader over our own packed bytes; every read is checked, so a bug shows as a shorter
/// summary, never a panic.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }
    fn ip(&mut self) -> Option<IpAddr> {
        match self.u8()? {
            4 => {
                let a: [u8; 4] = self.bytes(4)?.try_into().ok()?;
                Some(IpAddr::from(a))
            }
            6 => {
                let a: [u8; 16] = self.bytes(16)?.try_into().ok()?;
                Some(IpAddr::from(a))
            }
            _ => None,
        }
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        Some(String::from_utf8_lossy(self.bytes(n)?).into_owned())
    }
}

fn unpack(b: &[u8]) -> SourceState {
    let mut s = SourceState::default();
    let _ = unpack_into(&mut Reader(b), &mut s);
    s
}

fn unpack_into(r: &mut Reader<'_>, s: &mut SourceState) -> Option<()> {
    s.first_ts = Ts(r.u64()?);
    s.last_ts = Ts(r.u64()?);
    s.attacks = r.u32()?;
    s.suppressed = r.u32()?;
    s.signals = r.u32()?;
    s.unreadable_sessions = r.u32()?;
    let bits = r.u8()?;
    s.techniques = TECHNIQUES
        .into_iter()
        .filter(|t| bits & technique_bit(*t) != 0)
        .collect();
    for _ in 0..r.u32()? {
        s.targets.insert(r.ip()?);
    }
    for _ in 0..r.u32()? {
        s.tools.insert(r.string()?);
    }
    for _ in 0..r.u32()? {
        s.users.insert(r.string()?);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn sample() -> SourceState {
        let mut s = SourceState {
            first_ts: Ts(1_767_225_600_001_000_000),
            last_ts: Ts(1_767_225_700_000_000_000),
            attacks: 3,
            suppressed: 1,
            signals: 7,
            unreadable_sessions: 2,
            ..SourceState::default()
        };
        s.targets.insert(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)));
        s.targets
            .insert(IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9)));
        s.tools.insert("impacket-psexec".into());
        s.tools.insert("sysinternals-psexec".into());
        s.techniques.insert(Technique::ServiceCreate);
        s.techniques.insert(Technique::TaskCreate);
        s.users.insert("CONTOSO\\Administrator".into());
        s.users.insert("ünïcode user".into());
        s
    }

    fn summary_fields(s: &SourceState) -> String {
        format!(
            "{:?} {:?} {} {} {} {} {:?} {:?} {:?} {:?}",
            s.first_ts,
            s.last_ts,
            s.attacks,
            s.suppressed,
            s.signals,
            s.unreadable_sessions,
            s.targets,
            s.tools,
            s.techniques,
            s.users
        )
    }

    #[test]
    fn pack_unpack_keeps_every_summary_field() {
        let s = sample();
        let b = pack(&s);
        let back = unpack(&b);
        assert_eq!(summary_fields(&back), summary_fields(&s));
        assert!(back.techniques.contains(&Technique::TaskCreate));
        assert!(!back.techniques.contains(&Technique::ServiceModify));
        // Compact: the point of retiring.
        assert!(b.len() < 160, "{} bytes", b.len());
    }

    #[test]
    fn truncated_bytes_give_a_partial_state_not_a_panic() {
        let b = pack(&sample());
        for n in 0..b.len() {
            let s = unpack(&b[..n]);
            assert!(s.users.len() < 2 || n == b.len());
        }
    }

    #[test]
    fn take_forgets_get_keeps() {
        let mut r = Retired::default();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        r.put(ip, &sample());
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(&ip).map(|s| s.attacks), Some(3));
        assert_eq!(r.len(), 1);
        assert_eq!(r.take(&ip).map(|s| s.signals), Some(7));
        assert_eq!(r.len(), 0);
        assert!(r.take(&ip).is_none());
    }
}
