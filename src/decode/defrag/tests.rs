use super::*;

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
        (FragPolicy::First, Some(payload.clone())),
        (FragPolicy::Last, Some(last_wins)),
        (FragPolicy::Drop, None),
    ] {
        let mut d = Defragmenter::new();
        d.policy = policy;
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

#[test]
fn merge_ranges() {
    let mut h = vec![];
    merge_range(&mut h, 10, 20);
    merge_range(&mut h, 30, 40);
    merge_range(&mut h, 20, 30);
    assert_eq!(h, vec![(10, 40)]);
    merge_range(&mut h, 0, 5);
    merge_range(&mut h, 50, 60);
    merge_range(&mut h, 3, 55);
    assert_eq!(h, vec![(0, 60)]);
}
