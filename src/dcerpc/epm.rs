//! Endpoint mapper (epmapper, C706 appendix L / MS-RPCE 2.2.1.2): `ept_map` asks which endpoint
//! serves an interface; the answer's protocol towers carry the TCP port (floor protocol 0x07,
//! port big-endian) and the IP (floor 0x09). That is how svcctl-over-TCP finds its dynamic port.
//!
//! An `ept_map` response with `epm_port` set says "the next connection to that server and port
//! speaks DCE-RPC for `mapped_uuid`" ([`expectation_from_event`]); the conversation that decodes
//! it hands that endpoint to the flow layer through the sink, not through the output.

use super::ndr::{NdrReader, Syntax};
use super::svcctl::return_code;
use super::uuid::uuid;
use crate::event::{DceArgs, DceRpc};
use crate::wire::num::le_u16;
use crate::wire::parsed;
use nom::multi::length_data;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::number::Endianness;
use nom::sequence::preceded;
use nom::{IResult, Parser};
use std::net::{IpAddr, Ipv4Addr};

pub const OP_EPT_MAP: u16 = 3;

/// Most towers of one ept_map response we look at.
pub const MAX_EPM_TOWERS: usize = 16;
/// Most floors of one tower we look at (real towers have 5).
pub const MAX_TOWER_FLOORS: usize = 16;

/// What a tower says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tower {
    pub interface: Option<String>,
    pub tcp_port: Option<u16>,
    pub ip: Option<Ipv4Addr>,
}

/// One floor: left-hand side (protocol id and data) and right-hand side, each length-prefixed.
fn floor(i: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    (length_data(le_u16), length_data(le_u16)).parse(i)
}

/// Floors of a tower octet string (floor counts and lengths are always little-endian; the port
/// and address are big-endian, as on the wire).
pub fn parse_tower(oct: &[u8]) -> IResult<&[u8], Tower> {
    let (mut i, n) = le_u16(oct)?;
    let mut t = Tower::default();
    for k in 0..usize::from(n).min(MAX_TOWER_FLOORS) {
        let (rest, (lhs, rhs)) = floor(i)?;
        i = rest;
        match lhs.first() {
            Some(0x0d) if k == 0 => {
                let (_, u) = preceded(be_u8, uuid(Endianness::Little)).parse(lhs)?;
                t.interface = Some(u.to_string());
            }
            Some(0x07) => t.tcp_port = Some(be_u16(rhs)?.1),
            Some(0x09) => t.ip = Some(Ipv4Addr::from(be_u32(rhs)?.1)),
            _ => {}
        }
    }
    Ok((i, t))
}

/// One tower as NDR carries it: `twr_t { u32 tower_length; byte tower_octet_string[tower_length]; }`
/// — a conformant struct, so its max_count comes first.
fn ndr_tower<'a>(r: &mut NdrReader<'a>) -> Option<&'a [u8]> {
    let _max = r.count()?;
    let len = r.u32()? as usize;
    r.bytes(len)
}

/// ept_map request: the interface asked about (first floor of map_tower).
pub fn decode_map_request(stub: &[u8], big_endian: bool, syntax: Syntax, a: &mut DceArgs) {
    let mut r = NdrReader::new(stub, big_endian, syntax);
    let _ = (|| -> Option<()> {
        if r.pointer()? != 0 {
            r.skip(16)?; // object uuid
        }
        if r.pointer()? != 0 {
            let t = parsed(parse_tower(ndr_tower(&mut r)?))?;
            a.mapped_uuid = t.interface;
        }
        Some(())
    })();
    if let Some(u) = &a.mapped_uuid {
        a.mapped_endpoint = Some(super::interfaces::endpoint_or_unknown(u));
    }
}

/// ept_map response: the first tower with a TCP port.
pub fn decode_map_response(
    stub: &[u8],
    big_endian: bool,
    syntax: Syntax,
    a: &mut DceArgs,
) -> Option<Tower> {
    a.return_code = return_code(stub, big_endian);
    let mut r = NdrReader::new(stub, big_endian, syntax);
    r.context_handle()?;
    let num = r.u32()? as usize;
    let _max = r.count()?;
    let _offset = r.count()?;
    let actual = usize::try_from(r.count()?).ok()?;
    if actual > num.max(actual) {
        return None;
    }
    let mut non_null = Vec::with_capacity(actual.min(MAX_EPM_TOWERS));
    for i in 0..actual {
        let p = r.pointer()?;
        if i < MAX_EPM_TOWERS {
            non_null.push(p != 0);
        }
    }
    for present in non_null {
        if !present {
            continue;
        }
        let t = parsed(parse_tower(ndr_tower(&mut r)?))?;
        if t.tcp_port.is_some() {
            a.epm_port = t.tcp_port;
            a.epm_ip = t.ip.map(|i| i.to_string());
            if a.mapped_uuid.is_none() {
                a.mapped_uuid = t.interface.clone();
                a.mapped_endpoint = t
                    .interface
                    .as_deref()
                    .map(super::interfaces::endpoint_or_unknown);
            }
            return Some(t);
        }
    }
    None
}

/// A connection the flow layer should expect: DCE-RPC for `uuid` on `server:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpmExpectation {
    pub server: IpAddr,
    pub port: u16,
    pub uuid: Option<String>,
    pub endpoint: Option<String>,
}

/// From an emitted `ept_map` event: the server is the endpoint mapper's host (towers usually carry
/// 0.0.0.0 or the server's own address; a different non-zero IP is honoured).
pub fn expectation_from_event(e: &DceRpc) -> Option<EpmExpectation> {
    let port = e.args.epm_port?;
    let server = match e
        .args
        .epm_ip
        .as_deref()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
    {
        Some(ip) if !ip.is_unspecified() => IpAddr::V4(ip),
        _ => e.conn.resp_h,
    };
    Some(EpmExpectation {
        server,
        port,
        uuid: e.args.mapped_uuid.clone(),
        endpoint: e.args.mapped_endpoint.clone(),
    })
}

#[cfg(test)]
pub(crate) mod build {
    use crate::dcerpc::ndr::uuid_bytes_le;

    /// A 5-floor ncacn_ip_tcp tower for `uuid` v`major`.0 at `ip:port`.
    pub fn tower(uuid: &str, major: u16, port: u16, ip: [u8; 4]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&5u16.to_le_bytes());
        let mut floor = |lhs: &[u8], rhs: &[u8]| {
            t.extend_from_slice(&(lhs.len() as u16).to_le_bytes());
            t.extend_from_slice(lhs);
            t.extend_from_slice(&(rhs.len() as u16).to_le_bytes());
            t.extend_from_slice(rhs);
        };
        let mut l1 = vec![0x0d];
        l1.extend_from_slice(&uuid_bytes_le(uuid).unwrap());
        l1.extend_from_slice(&major.to_le_bytes());
        floor(&l1, &[0, 0]);
        let mut l2 = vec![0x0d];
        l2.extend_from_slice(&uuid_bytes_le(crate::dcerpc::pdu::NDR20_UUID).unwrap());
        l2.extend_from_slice(&2u16.to_le_bytes());
        floor(&l2, &[0, 0]);
        floor(&[0x0b], &[0, 0]);
        floor(&[0x07], &port.to_be_bytes());
        floor(&[0x09], &ip);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::build::tower;
    use super::*;
    use crate::dcerpc::interfaces::SVCCTL;
    use crate::dcerpc::svcctl::build::W;

    fn ndr_tower(w: &mut W, t: &[u8]) {
        w.u32(t.len() as u32).u32(t.len() as u32);
        w.v.extend_from_slice(t);
        w.align(4);
    }

    #[test]
    fn ept_map_request_and_response_to_port() {
        let t = tower(SVCCTL, 2, 0, [0, 0, 0, 0]);
        let mut w = W::new(false);
        w.ptr(1);
        w.v.extend_from_slice(&[0; 16]);
        w.ptr(2);
        ndr_tower(&mut w, &t);
        w.handle(&[0; 20]).u32(4);
        let mut a = DceArgs::default();
        decode_map_request(&w.v, false, Syntax::Ndr20, &mut a);
        assert_eq!(a.mapped_uuid.as_deref(), Some(SVCCTL));
        assert_eq!(a.mapped_endpoint.as_deref(), Some("svcctl"));

        let t = tower(SVCCTL, 2, 49667, [192, 0, 2, 20]);
        let mut w = W::new(false);
        w.handle(&[0; 20]).u32(1).u32(4).u32(0).u32(1).ptr(3);
        ndr_tower(&mut w, &t);
        w.u32(0);
        let tw = decode_map_response(&w.v, false, Syntax::Ndr20, &mut a).unwrap();
        assert_eq!(a.epm_port, Some(49667));
        assert_eq!(tw.ip, Some(Ipv4Addr::new(192, 0, 2, 20)));
        assert_eq!(a.return_code, Some(0));
        // Truncations never panic and never invent a port.
        for n in 0..w.v.len() - 4 {
            let mut b = DceArgs::default();
            let r = decode_map_response(&w.v[..n], false, Syntax::Ndr20, &mut b);
            assert!(r.is_none() || b.epm_port == Some(49667));
        }
    }

    #[test]
    fn tower_floors() {
        let t = parsed(parse_tower(&tower(SVCCTL, 2, 135, [10, 0, 0, 1]))).unwrap();
        assert_eq!(t.interface.as_deref(), Some(SVCCTL));
        assert_eq!(t.tcp_port, Some(135));
        assert!(parse_tower(&[5, 0, 0x13]).is_err());
    }
}
