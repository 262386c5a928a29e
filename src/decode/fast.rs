//! The common frame, decoded by a direct header peek: Ethernet II carrying an unfragmented IPv4
//! packet without options carrying TCP, every header whole and the IP packet whole in the capture.
//! That is nearly every packet of an SMB capture; anything else (VLAN, SLL, IPv6, IP options,
//! fragments, snaplen cuts, malformed headers) returns None and goes through etherparse, so the
//! result here must always equal etherparse's (a test checks both on every bundled capture).

use super::checksum::{self, Verdict};
use super::{TcpFlags, TcpSegment};
use std::net::{IpAddr, Ipv4Addr};

const ETHERNET_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const IPV4_HEADER: usize = 20;
const IP_PROTO_TCP: u8 = 6;
const TCP_MIN_HEADER: usize = 20;

/// The TCP segment of `frame` (an Ethernet II frame) when it is the simple case above.
pub fn ethernet_ipv4_tcp(frame: &[u8]) -> Option<TcpSegment<'_>> {
    let (eth, ip) = frame.split_at_checked(ETHERNET_HEADER)?;
    if eth.get(12..14)? != ETHERTYPE_IPV4 {
        return None;
    }
    let h: &[u8; IPV4_HEADER] = ip.get(..IPV4_HEADER)?.try_into().ok()?;
    // Version 4, IHL 5: no options.
    if h[0] != 0x45 || h[9] != IP_PROTO_TCP {
        return None;
    }
    // Neither more-fragments nor a fragment offset (DF is fine).
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // The whole packet must be in the capture; bytes past it are Ethernet padding.
    let tcp = ip.get(IPV4_HEADER..total)?;
    let t: &[u8; TCP_MIN_HEADER] = tcp.get(..TCP_MIN_HEADER)?.try_into().ok()?;
    let tcp_len = usize::from(t[12] >> 4) * 4;
    if tcp_len < TCP_MIN_HEADER {
        return None;
    }
    let payload = tcp.get(tcp_len..)?;
    let flags = t[13];
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let verdict: Verdict = checksum::ipv4_tcp(h, tcp);
    Some(TcpSegment {
        src,
        dst,
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: TcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
        },
        payload,
        missing: 0,
        checksum: verdict,
        window: u16::from_be_bytes([t[14], t[15]]),
        wscale: if flags & 0x02 != 0 {
            super::window_scale(tcp.get(TCP_MIN_HEADER..tcp_len).unwrap_or_default())
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;
    use crate::capture::file::{expand_inputs, CaptureReader};
    use crate::capture::{Packet, LINKTYPE_ETHERNET};
    use crate::decode::Decoder;
    use crate::sink::Sink;

    fn general(frame: &[u8]) -> Option<TcpSegment<'static>> {
        let pkt = Packet {
            ts: crate::time::Ts(1),
            linktype: LINKTYPE_ETHERNET,
            orig_len: frame.len() as u32,
            data: frame.to_vec(),
        };
        let pkt: &'static Packet = Box::leak(Box::new(pkt));
        let dec: &'static mut Decoder = Box::leak(Box::new(Decoder::new()));
        dec.decode_general(pkt.frame(), &mut Sink::new())
            .and_then(super::super::Decoded::into_tcp)
    }

    /// The peek and etherparse agree on every frame of every bundled capture the peek takes, and
    /// the peek takes most of them (else it is no fast path).
    #[test]
    fn agrees_with_etherparse_on_every_bundled_capture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (mut taken, mut total) = (0u64, 0u64);
        for path in expand_inputs(&[root]) {
            let Ok(mut r) = CaptureReader::open(&path) else {
                continue;
            };
            let mut pkt = Packet::empty();
            while let Ok(true) = r.next_packet(&mut pkt) {
                if pkt.linktype != LINKTYPE_ETHERNET {
                    continue;
                }
                total += 1;
                if let Some(fast) = ethernet_ipv4_tcp(&pkt.data) {
                    taken += 1;
                    assert_eq!(
                        Some(fast),
                        general(&pkt.data),
                        "{} packet {}",
                        path.display(),
                        r.packets()
                    );
                }
            }
        }
        assert!(total > 10_000, "captures not found ({total} frames)");
        assert!(
            taken * 10 > total * 9,
            "fast path took only {taken} of {total}"
        );
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let base = ether(
            0x0800,
            &ipv4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                6,
                &tcp(1025, 445, 7, 9, 0x18, b"hello"),
            ),
        );
        let seg = ethernet_ipv4_tcp(&base).expect("plain frame");
        assert_eq!(
            (seg.sport, seg.dport, seg.seq, seg.ack, seg.payload),
            (1025, 445, 7, 9, &b"hello"[..])
        );
        assert_eq!(Some(seg), general(&base));
        // Ethernet padding past the IP total length is not payload.
        let mut padded = base.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(
            ethernet_ipv4_tcp(&padded).map(|s| s.payload),
            Some(&b"hello"[..])
        );
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut v = base.clone();
        v[14] = 0x46; // IP options
        cases.push(("options", v));
        let mut v = base.clone();
        v[20] = 0x20; // more fragments
        cases.push(("fragment", v));
        let mut v = base.clone();
        v[21] = 0x01; // fragment offset
        cases.push(("offset", v));
        let mut v = base.clone();
        v[23] = 17; // UDP
        cases.push(("udp", v));
        cases.push(("cut", base[..base.len() - 1].to_vec()));
        let mut v = base.clone();
        v[12..14].copy_from_slice(&[0x81, 0x00]); // VLAN
        cases.push(("vlan", v));
        let mut v = base.clone();
        v[46] = 0x40; // TCP data offset 4 words: malformed
        cases.push(("tcp offset", v));
        for (what, frame) in cases {
            assert_eq!(ethernet_ipv4_tcp(&frame), None, "{what}");
        }
    }
}
