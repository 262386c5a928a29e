//! Detection state over long runs: what grows with the number of hosts is expired by packet time
//! or capped by a named constant, and the end-of-run host summaries still cover every source.

use crate::detect_util::*;
use psexec_sensor::detect::matcher::{MAX_SOURCE_TARGETS, MAX_VISIBILITY_KEYS};
use psexec_sensor::detect::{Detector, Rules, MAX_RETIRED_SOURCES};
use psexec_sensor::event::alert::{Alert, HostSummary};
use psexec_sensor::event::*;
use std::net::{IpAddr, Ipv4Addr};

const HOUR: f64 = 3600.0;

fn addr(net: u8, i: u32) -> String {
    Ipv4Addr::new(10, net, (i >> 8) as u8, i as u8).to_string()
}

fn feed(d: &mut Detector, events: Vec<Event>, out: &mut Vec<Alert>) {
    for e in &events {
        d.on_event(e, out);
    }
}

fn summaries(a: &[Alert]) -> Vec<&HostSummary> {
    a.iter()
        .filter_map(|a| {
            if let Alert::HostSummary(h) = a {
                Some(h)
            } else {
                None
            }
        })
        .collect()
}

fn visibility(t: f64, src: &str, dst: &str, session: u64) -> Event {
    Event::SmbVisibility(SmbVisibility {
        conn: conn(t, src, dst, 445),
        session_id: session,
        kind: "encrypted",
        state: "start",
        cipher: Some("AES-128-GCM".into()),
        dialect: Some("SMB 3.1.1".into()),
        user: None,
        domain: None,
        workstation: None,
        messages: 1,
        bytes: 100,
        decrypted: false,
    })
}

/// A thousand attackers, one an hour for six weeks of packet time: live state holds only the
/// recent ones, the rest are retired, and the final summaries still name every attacker with
/// its target, user, tool and times.
#[test]
fn attackers_retire_and_every_one_is_summarized_at_the_end() {
    let n = 1000u32;
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    let mut max_live = (0, 0, 0);
    for i in 0..n {
        let mut s = Seq::new(&addr(1, i), &addr(2, i));
        impacket_psexec(&mut s, i as f64 * HOUR);
        feed(&mut d, s.done(), &mut out);
        let t = d.tables();
        max_live = (
            max_live.0.max(t.sources),
            max_live.1.max(t.pairs),
            max_live.2.max(t.visibility_keys),
        );
    }
    let t = d.tables();
    // Quiet for longer than the windows (600 s): retired. Pairs that authenticated are kept 24 h.
    assert!(max_live.0 <= 2, "live sources {max_live:?}");
    assert!(max_live.1 <= 26, "live pairs {max_live:?}");
    assert!(t.retired_sources >= n as usize - 2, "{t:?}");
    assert_eq!(
        techniques(&out).len(),
        n as usize - 1,
        "all but the last closed"
    );
    d.finish(&mut out);
    let hs = summaries(&out);
    assert_eq!(hs.len(), n as usize);
    // Written in address order, each with what happened.
    let mut want: Vec<IpAddr> = (0..n).map(|i| ip(&addr(1, i))).collect();
    want.sort();
    assert_eq!(hs.iter().map(|h| h.src_ip).collect::<Vec<_>>(), want);
    for h in &hs {
        let Some(IpAddr::V4(a)) = Some(h.src_ip) else {
            panic!()
        };
        let i = u32::from(a.octets()[2]) << 8 | u32::from(a.octets()[3]);
        assert!(h.is_final);
        assert_eq!((h.attacks, h.signals, h.suppressed), (1, 0, 0), "{h:?}");
        assert_eq!(h.targets, vec![ip(&addr(2, i))]);
        assert_eq!(h.tools, vec!["impacket-psexec".to_string()]);
        assert_eq!(h.users, vec!["WORKGROUP\\admin".to_string()]);
        assert_eq!(h.first_ts, ts(i as f64 * HOUR), "{h:?}");
        assert!(h.last_ts > h.first_ts);
    }
}

/// A retired source that comes back carries on: one summary, both attacks, both targets, the
/// first time of the first attack.
#[test]
fn a_retired_source_comes_back_whole() {
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    let mut s = Seq::new(ATT, VIC);
    impacket_psexec(&mut s, 0.0);
    feed(&mut d, s.done(), &mut out);
    // Someone else, two days later, lets time pass: the attacker is retired.
    // (The sweep that writes the attack's alert counts as seeing the source; the next one after
    // the windows retires it.)
    let mut other = Seq::new("192.0.2.99", "192.0.2.98");
    other.auth(2.0 * 24.0 * HOUR, "bob", "CORP");
    other.auth(2.0 * 24.0 * HOUR + 700.0, "bob", "CORP");
    feed(&mut d, other.done(), &mut out);
    assert_eq!(techniques(&out).len(), 1);
    let t = d.tables();
    assert_eq!((t.retired_sources, t.sources), (1, 0), "{t:?}");
    let mut again = Seq::new(ATT, "192.0.2.21");
    impacket_psexec(&mut again, 2.0 * 24.0 * HOUR + 800.0);
    feed(&mut d, again.done(), &mut out);
    assert_eq!(d.tables().retired_sources, 0, "unpacked again");
    d.finish(&mut out);
    let hs = summaries(&out);
    assert_eq!(hs.len(), 1, "{hs:?}");
    let h = hs[0];
    assert_eq!(h.src_ip, ip(ATT));
    assert_eq!(h.attacks, 2);
    assert_eq!(h.targets, vec![ip(VIC), ip("192.0.2.21")]);
    assert_eq!(h.first_ts, ts(0.0));
    assert!(h.last_ts >= ts(2.0 * 24.0 * HOUR + 800.0));
}

/// More quiet sources than MAX_RETIRED_SOURCES: the overflow is summarized when it retires
/// (final, counted as the cap), the rest at the end, none lost and none twice.
#[test]
fn retired_sources_are_capped_without_losing_a_summary() {
    let extra = 100u32;
    let n = MAX_RETIRED_SOURCES as u32 + extra;
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    let mut early = 0usize;
    for i in 0..n {
        // One unreadable session each, two seconds apart: 36 hours for all of them, so the
        // reported sessions (kept a day) stay under MAX_VISIBILITY_KEYS.
        let src = Ipv4Addr::from(0x0a00_0000u32 + i).to_string();
        d.on_event(&visibility(i as f64 * 2.0, &src, VIC, 1), &mut out);
        early += summaries(&out).len();
        out.retain(|a| !matches!(a, Alert::HostSummary(_)));
        assert!(d.tables().retired_sources <= MAX_RETIRED_SOURCES);
    }
    // Past the windows for the last ones, then the end.
    d.tick(ts(n as f64 * 2.0 + 2.0 * HOUR), &mut out);
    early += summaries(&out).len();
    out.retain(|a| !matches!(a, Alert::HostSummary(_)));
    assert_eq!(d.tables().retired_sources, MAX_RETIRED_SOURCES);
    assert_eq!(early, extra as usize);
    assert_eq!(d.stats().caps.get("MAX_VISIBILITY_KEYS"), None);
    assert_eq!(
        d.stats().caps.get("MAX_RETIRED_SOURCES").copied(),
        Some(early as u64)
    );
    d.finish(&mut out);
    let hs = summaries(&out);
    assert_eq!(hs.len() + early, n as usize);
    assert!(hs.iter().all(|h| h.is_final && h.unreadable_sessions == 1));
    let mut sink = psexec_sensor::sink::Sink::new();
    d.report_caps(&mut sink);
    assert_eq!(
        sink.counters.get("MAX_RETIRED_SOURCES"),
        early as u64,
        "{:?}",
        sink.counters
    );
}

/// One source attacking more than MAX_SOURCE_TARGETS hosts: the summary lists that many, the
/// attacks keep counting, the cap is counted.
#[test]
fn targets_per_source_are_capped() {
    let n = MAX_SOURCE_TARGETS as u32 + 5;
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    for i in 0..n {
        let mut s = Seq::new(ATT, &addr(3, i));
        impacket_psexec(&mut s, i as f64 * 1000.0);
        feed(&mut d, s.done(), &mut out);
    }
    d.finish(&mut out);
    let hs = summaries(&out);
    assert_eq!(hs.len(), 1);
    assert_eq!(hs[0].attacks, n);
    assert_eq!(hs[0].targets.len(), MAX_SOURCE_TARGETS);
    assert_eq!(d.stats().caps.get("MAX_SOURCE_TARGETS").copied(), Some(5));
}

/// Reported SMB3 sessions are forgotten a day after their last sign, so the table follows the
/// traffic, not the run; a session still signalling within the day is not reported twice.
#[test]
fn visibility_keys_expire_but_do_not_repeat() {
    let mut d = Detector::new(Rules::embedded());
    let mut out = vec![];
    for i in 0..500u32 {
        d.on_event(&visibility(i as f64 * 600.0, &addr(4, i), VIC, 7), &mut out);
        // The same session signals again an hour later: no second record.
        if i > 6 {
            d.on_event(
                &visibility(i as f64 * 600.0 + 1.0, &addr(4, i - 6), VIC, 7),
                &mut out,
            );
        }
        // A day of sessions (one per 600 s) plus the six refreshed an hour late, plus one.
        assert!(
            d.tables().visibility_keys <= 24 * 6 + 6 + 1,
            "{:?}",
            d.tables()
        );
    }
    let v = out
        .iter()
        .filter(|a| matches!(a, Alert::Visibility(_)))
        .count();
    assert_eq!(v, 500);
    assert!(d.tables().visibility_keys >= 24 * 6 - 1);
    const { assert!(MAX_VISIBILITY_KEYS > 24 * 6) };
}
