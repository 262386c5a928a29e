use super::*;
use crate::flow::policy::{HostOs, TargetPolicy};

fn key() -> FragKey {
    FragKey {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.2".parse().unwrap(),
        id: 7,
        proto: 6,
    }
}
fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
    Fragment {
        key: key(),
        offset,
        more,
        data,
        header_checksum: Verdict::Unknown,
    }
}

/// A defragmenter whose receiving host (10.0.0.2) follows `os`.
fn for_target(os: HostOs) -> Defragmenter {
    let mut hosts = HostPolicies::default();
    hosts.insert(key().dst, 32, TargetPolicy::of(os));
    let mut d = Defragmenter::new();
    d.set_hosts(Arc::new(hosts));
    d
}

#[test]
fn in_order_and_out_of_order() {
    let payload: Vec<u8> = (0..40u8).collect();
    for order in [[0usize, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let mut d = Defragmenter::new();
        let mut s = Sink::new();
        let pieces = [
            frag(0, true, &payload[..16]),
            frag(16, true, &payload[16..32]),
            frag(32, false, &payload[32..]),
        ];
        let mut out = None;
        for (n, i) in order.iter().enumerate() {
            match d.add(Ts(1), pieces[*i], &mut s) {
                FragOutcome::Complete(v, _) => out = Some((n, v)),
                FragOutcome::Pending => {}
                FragOutcome::Dropped => panic!("dropped"),
            }
        }
        let (n, v) = out.expect("complete");
        assert_eq!(n, 2);
        assert_eq!(v, payload);
        assert_eq!(d.pending(), 0);
        assert_eq!(d.bytes(), 0);
    }
}

#[test]
fn overlap_same_data_is_quiet_different_is_anomaly_then_the_policy_decides() {
    let payload: Vec<u8> = (0..24u8).collect();
    let evil = [0xEEu8; 8];
    let mut last_wins = payload.clone();
    last_wins[8..16].copy_from_slice(&evil);
    for (policy, want) in [
        (HostOs::First, Some(payload.clone())),
        (HostOs::Last, Some(last_wins)),
        (HostOs::Linux, None),
        (HostOs::Unknown, None),
    ] {
        let mut d = for_target(policy);
        let mut s = Sink::new();
        assert_eq!(
            d.add(Ts(1), frag(0, true, &payload[..16]), &mut s),
            FragOutcome::Pending
        );
        assert_eq!(
            d.add(Ts(1), frag(8, true, &payload[8..16]), &mut s),
            FragOutcome::Pending
        );
        assert_eq!(s.counters.get("anomaly.fragment_overlap"), 0);
        let third = d.add(Ts(1), frag(8, true, &evil), &mut s);
        assert_eq!(s.counters.get("anomaly.fragment_overlap"), 1);
        let ambiguous = u64::from(policy == HostOs::Unknown);
        assert_eq!(s.counters.get("anomaly.overlap_ambiguous"), ambiguous);
        match want {
            None => {
                assert_eq!(third, FragOutcome::Dropped, "{policy:?}");
                assert_eq!((d.pending(), d.bytes()), (0, 0));
                // The retransmission, unfragmented or in clean fragments, goes through.
                for (off, more) in [(0, true), (16, false)] {
                    let end = if more { 16 } else { 24 };
                    let o = d.add(Ts(2), frag(off, more, &payload[off..end]), &mut s);
                    if !more {
                        assert_eq!(o, FragOutcome::Complete(payload.clone(), Verdict::Good));
                    }
                }
            }
            Some(w) => {
                assert_eq!(third, FragOutcome::Pending);
                match d.add(Ts(1), frag(16, false, &payload[16..]), &mut s) {
                    FragOutcome::Complete(v, _) => assert_eq!(v, w, "{policy:?}"),
                    o => panic!("{o:?}"),
                }
            }
        }
    }
}

#[test]
fn caps_and_timeout() {
    let mut d = Defragmenter::new();
    let mut s = Sink::new();
    for id in 0..(MAX_IP_FRAG_BUFFERS as u32 + 5) {
        let f = Fragment {
            key: FragKey { id, ..key() },
            offset: 0,
            more: true,
            data: &[1; 8],
            header_checksum: Verdict::Unknown,
        };
        d.add(Ts(1), f, &mut s);
    }
    assert_eq!(d.pending(), MAX_IP_FRAG_BUFFERS);
    assert_eq!(s.counters.get("MAX_IP_FRAG_BUFFERS"), 5);
    let big = Fragment {
        key: key(),
        offset: 65_530,
        more: false,
        data: &[0; 16],
        header_checksum: Verdict::Unknown,
    };
    assert_eq!(d.add(Ts(1), big, &mut s), FragOutcome::Dropped);
    assert_eq!(s.counters.get("MAX_IP_FRAG_DATAGRAM_BYTES"), 1);
    // Much later: everything old is swept.
    let late = Fragment {
        key: FragKey {
            id: 999_999,
            ..key()
        },
        offset: 0,
        more: true,
        data: &[1; 8],
        header_checksum: Verdict::Unknown,
    };
    d.add(Ts::from_secs(1000), late, &mut s);
    assert_eq!(d.pending(), 1);
    assert_eq!(d.bytes(), 8);
}

/// frag3 "bsd" (FreeBSD `ip_reass`): a fragment starting before the one holding a byte takes it;
/// one starting at or after it does not; arrival order does not matter.
#[test]
fn bsd_keeps_the_earlier_starting_fragment_whatever_the_order() {
    let a = [0xAAu8; 16]; // offset 8..24
    let b = [0xBBu8; 16]; // offset 0..16: starts first, wins 8..16
    let c = [0xCCu8; 8]; // offset 16..24: starts after a, loses
    let tail = [0xDDu8; 8]; // offset 24..32, last
    let mut want = vec![0xBB; 16];
    want.extend_from_slice(&[0xAA; 8]);
    want.extend_from_slice(&tail);
    let frags = [
        frag(8, true, &a),
        frag(0, true, &b),
        frag(16, true, &c),
        frag(24, false, &tail),
    ];
    for order in [[0usize, 1, 2, 3], [1, 0, 2, 3], [2, 0, 1, 3], [3, 0, 2, 1]] {
        let mut d = for_target(HostOs::Bsd);
        let mut s = Sink::new();
        let mut got = None;
        for i in order {
            if let FragOutcome::Complete(v, _) = d.add(Ts(1), frags[i], &mut s) {
                got = Some(v);
            }
        }
        // "c" starts after "a" but holds a byte "a" holds: when "c" came first, "a" (starting
        // before it) takes the byte back.
        assert_eq!(got.as_deref(), Some(&want[..]), "{order:?}");
        assert!(s.counters.get("anomaly.fragment_overlap") > 0);
    }
    // The same fragments to a "last" host: the last arrival's bytes.
    let mut d = for_target(HostOs::Last);
    let mut s = Sink::new();
    let mut got = None;
    for f in frags {
        if let FragOutcome::Complete(v, _) = d.add(Ts(1), f, &mut s) {
            got = Some(v);
        }
    }
    let mut last = vec![0xBB; 16];
    last.extend_from_slice(&[0xCC; 8]);
    last.extend_from_slice(&tail);
    assert_eq!(got, Some(last));
}
