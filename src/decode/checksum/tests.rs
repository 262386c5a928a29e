use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Frame 4 of captures/lab/a_psexec_default.pcap (SYN-ACK 192.0.2.20:445 → 192.0.2.10), whose
/// IPv4 and TCP checksums tshark reports good (`ip.checksum.status` and `tcp.checksum.status` 1
/// with `-o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE`).
const LAB_SYN_ACK: &str = "169b81e297cf1e5f1a2cc8c108004500 003c0000400040 06b69dc0000214c000 \
    020a01bddf58d3d6d7f61b2b4f52a012 fe88ef7300000204 05b40402080a2d89 4090 72f0fd6601030 30a";

fn lab_frame() -> Vec<u8> {
    let hex: String = LAB_SYN_ACK.chars().filter(|c| !c.is_whitespace()).collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 1071 the slow way, one 16-bit word at a time: an implementation independent of the one
/// under test.
fn reference(words: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in words.chunks(2) {
        let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += w as u32;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn real_capture_bytes_are_good_and_any_flipped_bit_is_bad() {
    let f = lab_frame();
    assert_eq!(f.len(), 74);
    let ip = &f[14..34];
    let tcp = &f[34..];
    let (src, dst) = (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
    );
    assert_eq!(ipv4_header(ip), Verdict::Good);
    assert_eq!(transport(src, dst, TCP, tcp), Verdict::Good);
    for i in 0..tcp.len() {
        let mut t = tcp.to_vec();
        t[i] ^= 0x04;
        assert_eq!(transport(src, dst, TCP, &t), Verdict::Bad, "byte {i}");
    }
    let mut h = ip.to_vec();
    h[8] = 63; // TTL changed, checksum not updated
    assert_eq!(ipv4_header(&h), Verdict::Bad);
    // Wrong pseudo header (another destination): bad.
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    assert_eq!(transport(src, other, TCP, tcp), Verdict::Bad);
}

#[test]
fn agrees_with_the_reference_over_v4_and_v6_odd_and_even_lengths() {
    let v4 = (
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        IpAddr::V4(Ipv4Addr::new(172, 16, 9, 8)),
    );
    let v6 = (
        IpAddr::V6("2001:db8::a".parse::<Ipv6Addr>().unwrap()),
        IpAddr::V6("2001:db8:ffff::1b".parse::<Ipv6Addr>().unwrap()),
    );
    for (proto, csum_at) in [(TCP, 16), (UDP, 6)] {
        for len in [8usize, 20, 21, 33, 64, 1461] {
            if len < csum_at + 2 {
                continue;
            }
            let mut seg: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            for (src, dst) in [v4, v6] {
                seg[csum_at] = 0;
                seg[csum_at + 1] = 0;
                let mut pseudo = Vec::new();
                match (src, dst) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        pseudo.extend_from_slice(&s.octets());
                        pseudo.extend_from_slice(&d.octets());
                        pseudo.extend_from_slice(&[0, proto]);
                        pseudo.extend_from_slice(&(len as u16).to_be_bytes());
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        pseudo.extend_from_slice(&s.octets());
                        pseudo.extend_from_slice(&d.octets());
                        pseudo.extend_from_slice(&(len as u32).to_be_bytes());
                        pseudo.extend_from_slice(&[0, 0, 0, proto]);
                    }
                    _ => unreachable!(),
                }
                pseudo.extend_from_slice(&seg);
                let c = reference(&pseudo);
                seg[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
                assert_eq!(
                    transport(src, dst, proto, &seg),
                    Verdict::Good,
                    "{proto} {len}"
                );
                seg[len - 1] ^= 1;
                assert_eq!(
                    transport(src, dst, proto, &seg),
                    Verdict::Bad,
                    "{proto} {len}"
                );
                seg[len - 1] ^= 1;
            }
        }
    }
}

#[test]
fn udp_over_ipv4_without_checksum_is_unknown_and_short_headers_are_unknown() {
    let (s, d) = (
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::BROADCAST),
    );
    assert_eq!(
        transport(s, d, UDP, &[0, 53, 0, 53, 0, 9, 0, 0, 1]),
        Verdict::Unknown
    );
    assert_eq!(ipv4_header(&[0x45; 19]), Verdict::Unknown);
}

#[test]
fn auto_validates_a_sender_after_two_good_and_keeps_an_offloaded_one() {
    let mut offloaded = ChecksumAuto::default();
    for _ in 0..1000 {
        assert!(offloaded.keep(Verdict::Bad, ChecksumMode::Auto));
    }
    assert_eq!(offloaded.decision(), SenderChecksums::Offloaded);
    // One chance match does not validate an offloaded sender.
    assert!(offloaded.keep(Verdict::Good, ChecksumMode::Auto));
    assert!(offloaded.keep(Verdict::Bad, ChecksumMode::Auto));

    let mut computing = ChecksumAuto::default();
    assert_eq!(computing.decision(), SenderChecksums::Unknown);
    computing.keep(Verdict::Good, ChecksumMode::Auto);
    computing.keep(Verdict::Good, ChecksumMode::Auto);
    // Decoys cannot talk it out of validation, however many.
    for _ in 0..1000 {
        assert!(!computing.keep(Verdict::Bad, ChecksumMode::Auto));
    }
    assert_eq!(computing.decision(), SenderChecksums::Validated);

    let mut fresh = ChecksumAuto::default();
    assert!(!fresh.keep(Verdict::Bad, ChecksumMode::Always));
    assert!(fresh.keep(Verdict::Bad, ChecksumMode::Never));
    assert!(fresh.keep(Verdict::Unknown, ChecksumMode::Always));
}

#[test]
fn verdicts_combine() {
    use Verdict::*;
    assert_eq!(Good.and(Good), Good);
    assert_eq!(Good.and(Bad), Bad);
    assert_eq!(Unknown.and(Bad), Bad);
    assert_eq!(Unknown.and(Good), Unknown);
}

#[test]
fn computed_fields_verify() {
    let (src, dst) = (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
    );
    let mut f = lab_frame();
    f[14 + 10..14 + 12].fill(0);
    let c = ipv4_header_field(&f[14..34]);
    assert_eq!(c, [0xb6, 0x9d], "the capture's own IPv4 checksum");
    f[34 + 16..34 + 18].fill(0);
    let (s20, d10) = (dst, src);
    assert_eq!(
        transport_field(s20, d10, TCP, &f[34..]),
        [0xef, 0x73],
        "the capture's own"
    );
    let v6 = IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap());
    let mut seg = vec![1u8, 2, 3, 4, 0, 9, 0, 0, 7];
    let c = transport_field(v6, v6, UDP, &seg);
    seg[6..8].copy_from_slice(&c);
    assert_eq!(transport(v6, v6, UDP, &seg), Verdict::Good);
}

#[test]
fn word_sums_fold_like_the_reference_for_every_length_and_extreme_bytes() {
    for len in 0..70usize {
        for fill in [0x00u8, 0xff, 0x5a] {
            let data: Vec<u8> = (0..len)
                .map(|i| if fill == 0x5a { (i * 151) as u8 } else { fill })
                .collect();
            let ours = sum16::ones_complement(fold_to_32(sum_words(&data)));
            let theirs = sum16::ones_complement(sum16::add_slice(0, &data));
            assert_eq!(ours, theirs, "len {len} fill {fill:#x}");
        }
    }
}

/// The AVX2 build of the word sum (what runs on this CPU, when it has AVX2) and the portable one
/// agree at every length and alignment, including the lengths where the vector loops take over.
#[test]
fn both_builds_of_the_word_sum_agree() {
    let data: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let lengths = (0..600).chain([1460, 4000, 8000]);
    for len in lengths {
        for start in 0..8 {
            let d = &data[start..start + len];
            let portable = sum_words_portable(d);
            assert_eq!(sum_words(d), portable, "len {len} at {start}");
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                assert_eq!(
                    unsafe { sum_words_avx2(d) },
                    portable,
                    "len {len} at {start}"
                );
            }
        }
    }
}

#[test]
fn the_fused_ipv4_tcp_sum_agrees_with_header_and_transport_checked_apart() {
    let f = lab_frame();
    let ip: [u8; 20] = f[14..34].try_into().unwrap();
    let tcp = &f[34..];
    let apart = |h: &[u8; 20], t: &[u8]| {
        let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
        ipv4_header(h).and(transport(src, dst, TCP, t))
    };
    assert_eq!(ipv4_tcp(&ip, tcp), Verdict::Good);
    // Every single flipped bit of either header or segment (addresses, length, payload), and
    // payloads of every parity: the same verdict both ways.
    for i in 0..ip.len() {
        for bit in [0x01, 0x80] {
            let mut h = ip;
            h[i] ^= bit;
            assert_eq!(ipv4_tcp(&h, tcp), apart(&h, tcp), "header byte {i}");
            assert_eq!(ipv4_tcp(&h, tcp), Verdict::Bad, "header byte {i}");
        }
    }
    for i in 0..tcp.len() {
        let mut t = tcp.to_vec();
        t[i] ^= 0x10;
        assert_eq!(ipv4_tcp(&ip, &t), Verdict::Bad, "segment byte {i}");
    }
    for len in 20..300usize {
        let seg: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
        assert_eq!(ipv4_tcp(&ip, &seg), apart(&ip, &seg), "length {len}");
    }
}
