use super::build::*;
use super::*;
use crate::capture::*;
use crate::flow::policy::{HostOs, HostPolicies, TargetPolicy};
use crate::time::Ts;

fn pkt(linktype: Linktype, data: Vec<u8>) -> Packet {
    Packet {
        ts: Ts::from_secs(1),
        linktype,
        orig_len: data.len() as u32,
        data,
    }
}

type Facts = (IpAddr, IpAddr, u16, u16, u32, Vec<u8>, u32);

fn decode_one(p: &Packet) -> (Option<Facts>, Sink) {
    let mut d = Decoder::new();
    let mut s = Sink::new();
    let r = d.decode(p.frame(), &mut s).map(|t| {
        (
            t.src,
            t.dst,
            t.sport,
            t.dport,
            t.seq,
            t.payload.to_vec(),
            t.missing,
        )
    });
    (r, s)
}

fn v4_tcp() -> Vec<u8> {
    ipv4(A4, B4, 6, &tcp(50000, 445, 1000, 0, PSH | ACK, b"hello"))
}

fn expect_v4(p: &Packet) {
    let (r, s) = decode_one(p);
    let (src, dst, sp, dp, seq, pl, missing) =
        r.unwrap_or_else(|| panic!("no segment: {:?}", s.counters));
    assert_eq!(src, IpAddr::from(A4));
    assert_eq!(dst, IpAddr::from(B4));
    assert_eq!((sp, dp, seq, missing), (50000, 445, 1000, 0));
    assert_eq!(pl, b"hello");
}

#[test]
fn ethernet_vlan_and_qinq() {
    expect_v4(&pkt(LINKTYPE_ETHERNET, ether(0x0800, &v4_tcp())));
    expect_v4(&pkt(
        LINKTYPE_ETHERNET,
        ether(0x8100, &vlan_tag(42, 0x0800, &v4_tcp())),
    ));
    let inner = vlan_tag(42, 0x0800, &v4_tcp());
    expect_v4(&pkt(
        LINKTYPE_ETHERNET,
        ether(0x88a8, &vlan_tag(7, 0x8100, &inner)),
    ));
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut f = ether(
        0x0800,
        &ipv4(A4, B4, 6, &tcp(50000, 445, 1000, 0, ACK, b"")),
    );
    f.extend_from_slice(&[0u8; 6]); // minimum frame padding
    let (r, _) = decode_one(&pkt(LINKTYPE_ETHERNET, f));
    assert_eq!(r.unwrap().5, b"");
}

#[test]
fn sll_sll2_raw_null_loop() {
    let mut sll = vec![0u8; 14];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&v4_tcp());
    expect_v4(&pkt(LINKTYPE_LINUX_SLL, sll));
    let mut sll2 = 0x0800u16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0u8; 18]);
    sll2.extend_from_slice(&v4_tcp());
    expect_v4(&pkt(LINKTYPE_LINUX_SLL2, sll2));
    for lt in [LINKTYPE_RAW, LINKTYPE_IPV4] {
        expect_v4(&pkt(lt, v4_tcp()));
    }
    let mut null = vec![2, 0, 0, 0];
    null.extend_from_slice(&v4_tcp());
    expect_v4(&pkt(LINKTYPE_NULL, null));
    let mut lo = vec![0, 0, 0, 2];
    lo.extend_from_slice(&v4_tcp());
    expect_v4(&pkt(LINKTYPE_LOOP, lo));
}

#[test]
fn ipv6_over_ethernet_null_and_raw() {
    let v6 = ipv6(a6(), b6(), 6, &tcp(50001, 445, 7, 0, ACK, b"six"));
    let mut null = vec![30, 0, 0, 0];
    null.extend_from_slice(&v6);
    for p in [
        pkt(LINKTYPE_ETHERNET, ether(0x86dd, &v6)),
        pkt(LINKTYPE_IPV6, v6.clone()),
        pkt(LINKTYPE_NULL, null),
    ] {
        let (r, _) = decode_one(&p);
        let r = r.expect("segment");
        assert_eq!(r.0, IpAddr::from(a6()));
        assert_eq!(r.1, IpAddr::from(b6()));
        assert_eq!((r.2, r.3, r.4), (50001, 445, 7));
        assert_eq!(r.5, b"six");
    }
}

#[test]
fn non_tcp_is_counted_and_skipped() {
    let udp = ipv4(A4, B4, 17, &[0, 53, 0, 53, 0, 8, 0, 0]);
    let (r, s) = decode_one(&pkt(LINKTYPE_ETHERNET, ether(0x0800, &udp)));
    assert!(r.is_none());
    assert_eq!(s.counters.get("decode.non_tcp"), 1);
    let (r, s) = decode_one(&pkt(LINKTYPE_ETHERNET, ether(0x0806, &[0u8; 28])));
    assert!(r.is_none());
    assert_eq!(s.counters.get("decode.non_ip"), 1);
    let (r, s) = decode_one(&pkt(LINKTYPE_ETHERNET, vec![1, 2, 3]));
    assert!(r.is_none());
    assert_eq!(s.counters.get("decode.truncated_link"), 1);
}

#[test]
fn snaplen_cut_reports_missing_bytes() {
    let mut f = ether(
        0x0800,
        &ipv4(A4, B4, 6, &tcp(50000, 445, 1, 0, ACK, &[7u8; 100])),
    );
    f.truncate(f.len() - 60);
    let (r, _) = decode_one(&pkt(LINKTYPE_ETHERNET, f));
    let r = r.unwrap();
    assert_eq!(r.5.len(), 40);
    assert_eq!(r.6, 60);
}

fn frag_v4(off: usize, more: bool, data: &[u8]) -> Packet {
    pkt(
        LINKTYPE_ETHERNET,
        ether(0x0800, &ipv4_frag(A4, B4, 6, 99, off, more, data)),
    )
}

#[test]
fn ipv4_fragments_any_order() {
    let seg = tcp(50000, 445, 5, 0, ACK, &(0..60u8).collect::<Vec<_>>());
    for order in [[0usize, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let parts = [
            frag_v4(0, true, &seg[..24]),
            frag_v4(24, true, &seg[24..48]),
            frag_v4(48, false, &seg[48..]),
        ];
        let mut d = Decoder::new();
        let mut s = Sink::new();
        let mut got = Vec::new();
        for i in order {
            if let Some(t) = d.decode(parts[i].frame(), &mut s) {
                got.push((t.sport, t.dport, t.seq, t.payload.to_vec()));
            }
        }
        assert_eq!(got, vec![(50000, 445, 5, (0..60u8).collect::<Vec<_>>())]);
        assert_eq!(s.counters.get("ip.reassembled"), 1);
    }
}

#[test]
fn ipv4_overlapping_fragments_drop_the_datagram_by_default_or_follow_the_policy() {
    let seg = tcp(50000, 445, 5, 0, ACK, &[1u8; 40]);
    let mut evil = seg[16..32].to_vec();
    evil.iter_mut().skip(8).for_each(|b| *b ^= 0xff);
    let parts = [
        frag_v4(0, true, &seg[..32]),
        frag_v4(16, true, &evil),
        frag_v4(32, false, &seg[32..]),
    ];
    for (policy, want) in [(None, None), (Some(HostOs::First), Some(vec![1u8; 40]))] {
        let mut d = Decoder::new();
        if let Some(os) = policy {
            // The receiving host's policy, from the hosts table.
            let mut hosts = HostPolicies::default();
            hosts.insert(IpAddr::from(B4), 32, TargetPolicy::of(os));
            d.set_hosts(std::sync::Arc::new(hosts));
        }
        let mut s = Sink::new();
        let mut got = None;
        for p in &parts {
            if let Some(t) = d.decode(p.frame(), &mut s) {
                got = Some(t.payload.to_vec());
            }
        }
        assert_eq!(got, want, "{policy:?}");
        assert_eq!(s.counters.get("anomaly.fragment_overlap"), 1);
    }
}

#[test]
fn ipv6_fragments() {
    let seg = tcp(50001, 445, 9, 0, ACK, &(0..50u8).collect::<Vec<_>>());
    let p1 = pkt(
        LINKTYPE_IPV6,
        ipv6_frag(a6(), b6(), 6, 77, 32, false, &seg[32..]),
    );
    let p0 = pkt(
        LINKTYPE_IPV6,
        ipv6_frag(a6(), b6(), 6, 77, 0, true, &seg[..32]),
    );
    let mut d = Decoder::new();
    let mut s = Sink::new();
    assert!(d.decode(p1.frame(), &mut s).is_none());
    let t = d.decode(p0.frame(), &mut s).expect("reassembled");
    assert_eq!((t.sport, t.seq), (50001, 9));
    assert_eq!(t.payload, &(0..50u8).collect::<Vec<_>>()[..]);
}

#[test]
fn host_pair_hash_is_symmetric() {
    let p = pkt(LINKTYPE_ETHERNET, ether(0x0800, &v4_tcp()));
    let (a, b) = host_pair(p.frame()).unwrap();
    assert_eq!((a, b), (IpAddr::from(A4), IpAddr::from(B4)));
    assert_eq!(host_pair_hash(a, b), host_pair_hash(b, a));
    assert_ne!(host_pair_hash(a, b), host_pair_hash(a, a));
}

#[test]
fn unsupported_link_type_is_reported_once() {
    let mut d = Decoder::new();
    let mut s = Sink::new();
    for _ in 0..3 {
        assert!(d.decode(pkt(127, vec![0; 40]).frame(), &mut s).is_none());
    }
    assert_eq!(s.counters.get("decode.unsupported_linktype"), 3);
    assert_eq!(s.counters.get("anomaly.capture"), 1);
}

#[test]
fn window_scale_is_read_from_a_syns_options() {
    // The client's SYN options of captures/lab/a_psexec_default.pcap (tshark: MSS 1460,
    // SACK permitted, timestamps, NOP, window scale 10).
    let lab = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x72, 0xf0, 0xfd, 0x66, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x0a,
    ];
    assert_eq!(window_scale(&lab), Some(10));
    assert_eq!(window_scale(&lab[..16]), None, "no window scale option");
    assert_eq!(window_scale(&[]), None);
    // A malformed option (length 1) ends the search without a panic.
    assert_eq!(window_scale(&[0x02, 0x01, 0x03, 0x03, 0x07]), None);
}
