//! Hand-built frames for tests, fuzz seeds and evasion suites. IPv4 headers get their checksum;
//! TCP segments get theirs from [`tcp_checksummed`] ([`tcp`] leaves it zero, which the decoder
//! reads as a bad checksum from a sender it will take for offloaded, see `checksum`).

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;

/// A TCP header (checksum zero) and payload; a SYN offers window scaling ([`SYN_WINDOW_SHIFT`]).
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let shift = (flags & SYN != 0).then_some(SYN_WINDOW_SHIFT);
    tcp_scaled(sport, dport, seq, ack, flags, shift, payload)
}

/// The window scale a built SYN offers (Linux's usual shift): both SYNs of a
/// built handshake negotiate scaling, as every current stack does, so the 65535 window of built
/// segments means 8 MiB, wide enough for any test stream sent without ACKs.
pub const SYN_WINDOW_SHIFT: u8 = 7;

/// [`tcp`] with a window scale option (NOP, then kind 3) when `shift` is given.
pub fn tcp_scaled(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    shift: Option<u8>,
    payload: &[u8],
) -> Vec<u8> {
    let words: u8 = if shift.is_some() { 6 } else { 5 };
    let mut t = Vec::with_capacity(usize::from(words) * 4 + payload.len());
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&ack.to_be_bytes());
    t.push(words << 4);
    t.push(flags);
    t.extend_from_slice(&65535u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]);
    if let Some(shift) = shift {
        t.extend_from_slice(&[1, 3, 3, shift]);
    }
    t.extend_from_slice(payload);
    t
}

/// [`tcp`] with its checksum for the addresses it travels between.
#[allow(clippy::too_many_arguments)]
pub fn tcp_checksummed(
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = tcp(sport, dport, seq, ack, flags, payload);
    let c = super::checksum::transport_field(src, dst, super::checksum::TCP, &t);
    t[16..18].copy_from_slice(&c);
    t
}

/// A UDP datagram with its checksum for the addresses it travels between.
pub fn udp_checksummed(
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut u = Vec::with_capacity(8 + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let c = super::checksum::transport_field(src, dst, super::checksum::UDP, &u);
    u[6..8].copy_from_slice(&c);
    u
}

/// IPv4 header + payload (header checksum filled in). `frag_off` in bytes (multiple of 8).
pub fn ipv4_frag(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    id: u16,
    frag_off: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    let ff = ((frag_off / 8) as u16) | if more { 0x2000 } else { 0 };
    h.extend_from_slice(&ff.to_be_bytes());
    h.push(64);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = super::checksum::ipv4_header_field(&h);
    h[10..12].copy_from_slice(&c);
    h.extend_from_slice(payload);
    h
}

pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_frag(src, dst, proto, 1, 0, false, payload)
}

pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next);
    h.push(64);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(payload);
    h
}

/// IPv6 with a fragment extension header.
pub fn ipv6_frag(
    src: [u8; 16],
    dst: [u8; 16],
    next: u8,
    id: u32,
    off: usize,
    more: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![next, 0];
    let v = ((off / 8) as u16) << 3 | more as u16;
    f.extend_from_slice(&v.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(payload);
    ipv6(src, dst, 44, &f)
}

pub fn ether(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut e = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    e.extend_from_slice(&ethertype.to_be_bytes());
    e.extend_from_slice(payload);
    e
}

/// A VLAN tag (TPID 0x8100 or 0x88a8) in front of `inner_type` + payload; returns the bytes after
/// the outer EtherType (to nest inside `ether(tpid, …)`).
pub fn vlan_tag(vid: u16, inner_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = (vid & 0x0fff).to_be_bytes().to_vec();
    v.extend_from_slice(&inner_type.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub const A4: [u8; 4] = [192, 0, 2, 10];
pub const B4: [u8; 4] = [192, 0, 2, 20];
pub fn a6() -> [u8; 16] {
    "2001:db8::a"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
}
pub fn b6() -> [u8; 16] {
    "2001:db8::b"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
}
