//! Link, VLAN, IP (with fragment reassembly) and TCP headers → one TCP segment per packet; UDP to
//! or from Kerberos' port → one datagram.
//!
//! etherparse does the header slicing (lax: a frame cut by the snaplen still yields what it holds);
//! the link types it does not take directly are in [`link`], fragments in [`defrag`].
//! Everything else (other UDP, ICMP, …) is counted as `decode.non_tcp` and skipped.

/// Frame builders for tests, benches and fuzz seeds: not part of the release library.
#[cfg(any(test, feature = "test-support"))]
pub mod build;
pub mod checksum;
pub mod defrag;
mod fast;
pub mod link;

use crate::capture::Frame;
use crate::sink::Sink;
use checksum::Verdict;
use defrag::{Defragmenter, FragKey, FragOutcome, Fragment};
use etherparse::{
    EtherType, IpNumber, Ipv6ExtensionSlice, LaxIpPayloadSlice, LaxNetSlice, LaxSlicedPacket,
    TcpSlice, TransportSlice, UdpSlice,
};
use link::{link_start, LinkStart};
use std::net::IpAddr;

/// One TCP segment, as the flow table needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces beyond `payload` (the capture's snaplen cut them).
    pub missing: u32,
    /// The IPv4 header and TCP checksums together (Bad when either is; Unknown when the capture
    /// cut the packet). Whether a bad one is believed is the flow's decision ([`ChecksumAuto`]).
    ///
    /// [`ChecksumAuto`]: checksum::ChecksumAuto
    pub checksum: Verdict,
    /// The advertised receive window, as written (unscaled).
    pub window: u16,
    /// The window scale option's shift count, read on SYN segments only (RFC 7323 §2.2: it is
    /// only meaningful there).
    pub wscale: Option<u8>,
}

/// The window scale option's shift count among a SYN's TCP options (RFC 7323 §2.2), read with
/// etherparse's options iterator; a malformed option list ends the search.
pub fn window_scale(options: &[u8]) -> Option<u8> {
    etherparse::TcpOptionsIterator::from_slice(options)
        .map_while(Result::ok)
        .find_map(|o| match o {
            etherparse::TcpOptionElement::WindowScale(s) => Some(s),
            _ => None,
        })
}

/// One UDP datagram (Kerberos on port 88: the only UDP the sensor reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpDatagram<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub payload: &'a [u8],
    /// IPv4 header and UDP checksums together (Unknown when cut, or when an IPv4 sender left the
    /// UDP checksum out); believed or not by the receiver's `auto` rule, as for TCP.
    pub checksum: Verdict,
}

/// What one frame carries for the sensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    Udp(UdpDatagram<'a>),
}

impl<'a> Decoded<'a> {
    pub fn into_tcp(self) -> Option<TcpSegment<'a>> {
        match self {
            Decoded::Tcp(t) => Some(t),
            Decoded::Udp(_) => None,
        }
    }
}

/// UDP ports whose datagrams are decoded (Kerberos, RFC 4120 §7.2.1).
const UDP_PORTS: [u16; 1] = [crate::kerberos::KERBEROS_PORT];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// One worker's decoder: holds the fragment buffers and the last reassembled datagram.
#[derive(Debug, Default)]
pub struct Decoder {
    defrag: Defragmenter,
    reassembled: Vec<u8>,
    /// Link types already reported as unsupported (each reported once).
    unsupported: Vec<u32>,
}

/// Distinct unsupported link types reported as anomalies; more are only counted.
const MAX_UNSUPPORTED_LINKTYPES_REPORTED: usize = 16;

/// Where a TCP header + payload came from.
struct IpInfo {
    src: IpAddr,
    dst: IpAddr,
    /// TCP header + payload length the IP header announces (for snaplen cuts).
    claimed: Option<usize>,
    /// The IPv4 header checksum (Unknown for IPv6, which has none).
    header_checksum: Verdict,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Forget pending fragments (the end of one input: fragments never join across files).
    pub fn reset(&mut self) {
        let hosts = self.defrag.hosts().clone();
        self.defrag = Defragmenter::new();
        self.defrag.set_hosts(hosts);
        self.reassembled = Vec::new();
    }

    pub fn defragmenter(&self) -> &Defragmenter {
        &self.defrag
    }

    /// Receiving hosts' policies: what to do with IP fragments that overlap with different
    /// bytes (see [`defrag::FragPolicy`] and `flow::policy`).
    pub fn set_hosts(&mut self, hosts: std::sync::Arc<crate::flow::policy::HostPolicies>) {
        self.defrag.set_hosts(hosts);
    }

    /// Decode one frame. Returns the TCP segment it carries (or completes, for fragments); a
    /// Kerberos UDP datagram is skipped here (see [`Self::decode_any`]).
    pub fn decode<'a>(&'a mut self, pkt: Frame<'a>, sink: &mut Sink) -> Option<TcpSegment<'a>> {
        self.decode_any(pkt, sink).and_then(Decoded::into_tcp)
    }

    /// Decode one frame: the TCP segment or the Kerberos UDP datagram it carries (or completes,
    /// for fragments).
    pub fn decode_any<'a>(&'a mut self, pkt: Frame<'a>, sink: &mut Sink) -> Option<Decoded<'a>> {
        if pkt.linktype == crate::capture::LINKTYPE_ETHERNET {
            if let Some(seg) = fast::ethernet_ipv4_tcp(pkt.data) {
                return Some(Decoded::Tcp(seg));
            }
        }
        self.decode_general(pkt, sink)
    }

    /// [`Self::decode_any`] through etherparse, for every frame the header peek does not take.
    fn decode_general<'a>(&'a mut self, pkt: Frame<'a>, sink: &mut Sink) -> Option<Decoded<'a>> {
        let sliced = match link_start(pkt.linktype, pkt.data) {
            LinkStart::Ethernet(d) => match LaxSlicedPacket::from_ethernet(d) {
                Ok(s) => s,
                Err(_) => return skip(sink, "decode.truncated_link"),
            },
            LinkStart::EtherType(t, d) => LaxSlicedPacket::from_ether_type(EtherType(t), d),
            LinkStart::Ip(d) => match LaxSlicedPacket::from_ip(d) {
                Ok(s) => s,
                Err(_) => return skip(sink, "decode.malformed_ip"),
            },
            LinkStart::NotIp => return skip(sink, "decode.non_ip"),
            LinkStart::UnsupportedLinktype => {
                if !self.unsupported.contains(&pkt.linktype)
                    && self.unsupported.len() < MAX_UNSUPPORTED_LINKTYPES_REPORTED
                {
                    self.unsupported.push(pkt.linktype);
                    sink.anomaly(
                        pkt.ts,
                        None,
                        crate::event::AnomalyKind::Capture,
                        "capture",
                        format!(
                            "link type {} is not decoded; its packets are skipped",
                            pkt.linktype
                        ),
                    );
                }
                return skip(sink, "decode.unsupported_linktype");
            }
            LinkStart::Truncated => return skip(sink, "decode.truncated_link"),
        };
        let (info, payload, frag) = match &sliced.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                let info = IpInfo {
                    src: IpAddr::V4(h.source_addr()),
                    dst: IpAddr::V4(h.destination_addr()),
                    claimed: (h.total_len() as usize).checked_sub(
                        h.slice().len() + v4.extensions().auth.map_or(0, |a| a.slice().len()),
                    ),
                    header_checksum: checksum::ipv4_header(h.slice()),
                };
                let frag = v4.payload().fragmented.then(|| {
                    (
                        h.identification() as u32,
                        h.fragments_offset().byte_offset() as usize,
                        h.more_fragments(),
                    )
                });
                (info, v4.payload().clone(), frag)
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let info = IpInfo {
                    src: IpAddr::V6(h.source_addr()),
                    dst: IpAddr::V6(h.destination_addr()),
                    claimed: (h.payload_length() as usize)
                        .checked_sub(v6.extensions().slice().len()),
                    header_checksum: Verdict::Unknown,
                };
                let frag = if v6.payload().fragmented {
                    v6.extensions().clone().into_iter().find_map(|e| match e {
                        Ipv6ExtensionSlice::Fragment(f) => Some((
                            f.identification(),
                            f.fragment_offset().byte_offset() as usize,
                            f.more_fragments(),
                        )),
                        _ => None,
                    })
                } else {
                    None
                };
                if v6.payload().fragmented && frag.is_none() {
                    return skip(sink, "decode.malformed_ip");
                }
                (info, v6.payload().clone(), frag)
            }
            Some(LaxNetSlice::Arp(_)) | None => {
                return match sliced.stop_err {
                    Some(_) => skip(sink, "decode.malformed_ip"),
                    None => skip(sink, "decode.non_ip"),
                }
            }
        };
        let udp = payload.ip_number == IpNumber::UDP;
        if udp {
            // The ports are the first four bytes of any fragment at offset 0, and of a datagram.
            let ports = payload.payload.get(..4).map(|p| {
                [
                    u16::from_be_bytes([p[0], p[1]]),
                    u16::from_be_bytes([p[2], p[3]]),
                ]
            });
            let later_fragment = frag.is_some_and(|(_, offset, _)| offset > 0);
            if !later_fragment && !ports.is_some_and(|p| p.iter().any(|x| UDP_PORTS.contains(x))) {
                return skip(sink, "decode.non_tcp");
            }
        } else if payload.ip_number != IpNumber::TCP {
            return skip(sink, "decode.non_tcp");
        }
        if let Some((id, offset, more)) = frag {
            let key = FragKey {
                src: info.src,
                dst: info.dst,
                id,
                proto: payload.ip_number.0,
            };
            let f = Fragment {
                key,
                offset,
                more,
                data: payload.payload,
                header_checksum: info.header_checksum,
            };
            return match self.defrag.add(pkt.ts, f, sink) {
                FragOutcome::Complete(v, header_checksum) => {
                    self.reassembled = v;
                    if udp {
                        return match UdpSlice::from_slice(&self.reassembled) {
                            Ok(u) => datagram(&info, &u, header_checksum, false, sink),
                            Err(_) => skip(sink, "decode.malformed_udp"),
                        };
                    }
                    match TcpSlice::from_slice(&self.reassembled) {
                        Ok(tcp) => {
                            let l4 =
                                checksum::transport(info.src, info.dst, checksum::TCP, tcp.slice());
                            Some(Decoded::Tcp(segment(
                                &info,
                                &tcp,
                                0,
                                header_checksum.and(l4),
                            )))
                        }
                        Err(_) => skip(sink, "decode.malformed_tcp"),
                    }
                }
                FragOutcome::Pending | FragOutcome::Dropped => None,
            };
        }
        match sliced.transport {
            Some(TransportSlice::Tcp(tcp)) => {
                let missing = missing_bytes(&info, &payload, &tcp);
                // A packet the capture cut short cannot be summed.
                let l4 = if payload.incomplete {
                    Verdict::Unknown
                } else {
                    checksum::transport(info.src, info.dst, checksum::TCP, tcp.slice())
                };
                Some(Decoded::Tcp(segment(
                    &info,
                    &tcp,
                    missing,
                    info.header_checksum.and(l4),
                )))
            }
            Some(TransportSlice::Udp(u)) => {
                datagram(&info, &u, info.header_checksum, payload.incomplete, sink)
            }
            _ if udp => skip(sink, "decode.malformed_udp"),
            _ => skip(sink, "decode.malformed_tcp"),
        }
    }
}

/// The two IP addresses of a frame, without decoding further (for sharding packets across workers
/// by a symmetric hash of the host pair: every fragment and both directions land together).
pub fn host_pair(pkt: Frame<'_>) -> Option<(IpAddr, IpAddr)> {
    let sliced = match link_start(pkt.linktype, pkt.data) {
        LinkStart::Ethernet(d) => LaxSlicedPacket::from_ethernet(d).ok()?,
        LinkStart::EtherType(t, d) => LaxSlicedPacket::from_ether_type(EtherType(t), d),
        LinkStart::Ip(d) => LaxSlicedPacket::from_ip(d).ok()?,
        _ => return None,
    };
    match sliced.net? {
        LaxNetSlice::Ipv4(v4) => Some((
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        )),
        LaxNetSlice::Ipv6(v6) => Some((
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        )),
        LaxNetSlice::Arp(_) => None,
    }
}

/// A hash of the unordered host pair: the same for both directions, stable across runs.
pub fn host_pair_hash(a: IpAddr, b: IpAddr) -> u64 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |ip: IpAddr| {
        let bytes: Vec<u8> = match ip {
            IpAddr::V4(x) => x.octets().to_vec(),
            IpAddr::V6(x) => x.octets().to_vec(),
        };
        for x in bytes {
            h ^= x as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(lo);
    eat(hi);
    h
}

fn skip<T>(sink: &mut Sink, counter: &'static str) -> Option<T> {
    sink.count(counter, 1);
    None
}

fn missing_bytes(info: &IpInfo, payload: &LaxIpPayloadSlice<'_>, tcp: &TcpSlice<'_>) -> u32 {
    if !payload.incomplete {
        return 0;
    }
    let have = tcp.slice().len();
    info.claimed
        .map_or(0, |c| c.saturating_sub(have))
        .min(u32::MAX as usize) as u32
}

/// A UDP datagram whose header etherparse sliced; `cut` when the capture lost part of it (then
/// neither its payload is whole nor its checksum checkable: a Kerberos message needs all of it).
fn datagram<'a>(
    info: &IpInfo,
    udp: &UdpSlice<'a>,
    header_checksum: Verdict,
    cut: bool,
    sink: &mut Sink,
) -> Option<Decoded<'a>> {
    if cut || usize::from(udp.length()) > udp.slice().len() {
        return skip(sink, "decode.truncated_udp");
    }
    let l4 = checksum::transport(info.src, info.dst, checksum::UDP, udp.slice());
    Some(Decoded::Udp(UdpDatagram {
        src: info.src,
        dst: info.dst,
        sport: udp.source_port(),
        dport: udp.destination_port(),
        payload: udp.payload(),
        checksum: header_checksum.and(l4),
    }))
}

fn segment<'a>(
    info: &IpInfo,
    tcp: &TcpSlice<'a>,
    missing: u32,
    checksum: Verdict,
) -> TcpSegment<'a> {
    TcpSegment {
        src: info.src,
        dst: info.dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: tcp.payload(),
        missing,
        checksum,
        window: tcp.window_size(),
        wscale: if tcp.syn() {
            window_scale(tcp.options())
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests;
