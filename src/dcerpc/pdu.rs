//! Connection-oriented DCE-RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2) as nom records over one
//! whole PDU (`frag_length` bytes). The common header is checked once by [`parse_header`]; the
//! body parsers read the header's byte order (drep) and fail on anything short or inconsistent.

use super::uuid::uuid;
pub use super::uuid::Uuid;
use crate::wire::num::{u16 as num_u16, u32 as num_u32};
use crate::wire::parsed;
use nom::bytes::complete::take;
use nom::error::{make_error, ErrorKind};
use nom::multi::{count, fold_many_m_n};
use nom::number::complete::be_u8;
use nom::number::Endianness;
use nom::{IResult, Parser};

pub const HEADER_LEN: usize = 16;
/// Size of the sec_trailer that precedes an auth verifier.
pub const SEC_TRAILER_LEN: usize = 8;

pub const PTYPE_REQUEST: u8 = 0;
pub const PTYPE_RESPONSE: u8 = 2;
pub const PTYPE_FAULT: u8 = 3;
pub const PTYPE_BIND: u8 = 11;
pub const PTYPE_BIND_ACK: u8 = 12;
pub const PTYPE_BIND_NAK: u8 = 13;
pub const PTYPE_ALTER_CONTEXT: u8 = 14;
pub const PTYPE_ALTER_CONTEXT_RESP: u8 = 15;
pub const PTYPE_AUTH3: u8 = 16;
pub const PTYPE_SHUTDOWN: u8 = 17;
pub const PTYPE_CO_CANCEL: u8 = 18;
pub const PTYPE_ORPHANED: u8 = 19;

pub const PFC_FIRST_FRAG: u8 = 0x01;
pub const PFC_LAST_FRAG: u8 = 0x02;
pub const PFC_OBJECT_UUID: u8 = 0x80;

/// Transfer syntax UUIDs.
pub const NDR20: Uuid = Uuid::from_u128(0x8a885d04_1ceb_11c9_9fe8_08002b104860);
pub const NDR64: Uuid = Uuid::from_u128(0x71710533_beba_4937_8319_b5dbef9ccc36);
pub const NDR20_UUID: &str = "8a885d04-1ceb-11c9-9fe8-08002b104860";
pub const NDR64_UUID: &str = "71710533-beba-4937-8319-b5dbef9ccc36";
/// Bind-time feature negotiation (MS-RPCE 3.3.1.5.3): `6cb71c2c-9812-4540-xxxx-…`.
const BIND_TIME_FEATURE_PREFIX: [u8; 8] = [0x6c, 0xb7, 0x1c, 0x2c, 0x98, 0x12, 0x45, 0x40];

/// The 16-byte common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub flags: u8,
    pub drep: [u8; 4],
    pub frag_len: u16,
    pub auth_len: u16,
    pub call_id: u32,
}

fn endianness(big_endian: bool) -> Endianness {
    if big_endian {
        Endianness::Big
    } else {
        Endianness::Little
    }
}

/// A verified field failed: the input is not what the record says.
fn reject<T>(at: &[u8]) -> IResult<&[u8], T> {
    Err(nom::Err::Error(make_error(at, ErrorKind::Verify)))
}

/// Parses and sanity-checks a common header: version 5.0, a known connection-oriented type, a
/// plausible drep, frag_length at least a header and room for the auth verifier.
pub fn parse_header(b: &[u8]) -> IResult<&[u8], Header> {
    let (i, (version, minor, ptype, flags, drep)) =
        (be_u8, be_u8, be_u8, be_u8, take(4usize)).parse(b)?;
    let drep = [drep[0], drep[1], drep[2], drep[3]];
    // drep[0] high nibble: integer representation (0 big-endian, 1 little-endian); only
    // ASCII/EBCDIC chars and IEEE/VAX/Cray/IBM floats exist, so other bits are bogus.
    if version != 5
        || minor != 0
        || ptype > PTYPE_ORPHANED
        || drep[0] & 0xe0 != 0
        || drep[0] & 0x0f > 1
        || drep[1] > 3
    {
        return reject(b);
    }
    let e = endianness(drep[0] & 0x10 == 0);
    let (i, (frag_len, auth_len, call_id)) = (num_u16(e), num_u16(e), num_u32(e)).parse(i)?;
    if (frag_len as usize) < HEADER_LEN
        || (auth_len > 0 && (auth_len as usize) + SEC_TRAILER_LEN + HEADER_LEN > frag_len as usize)
    {
        return reject(b);
    }
    Ok((
        i,
        Header {
            ptype,
            flags,
            drep,
            frag_len,
            auth_len,
            call_id,
        },
    ))
}

impl Header {
    pub fn big_endian(&self) -> bool {
        self.drep[0] & 0x10 == 0
    }
    pub fn first_frag(&self) -> bool {
        self.flags & PFC_FIRST_FRAG != 0
    }
    pub fn last_frag(&self) -> bool {
        self.flags & PFC_LAST_FRAG != 0
    }
    fn endianness(&self) -> Endianness {
        endianness(self.big_endian())
    }
}

/// The sec_trailer of a PDU carrying an auth verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthTrailer {
    pub auth_type: u8,
    pub auth_level: u8,
    pub pad_len: u8,
}

fn auth_trailer(i: &[u8]) -> IResult<&[u8], AuthTrailer> {
    let (i, (auth_type, auth_level, pad_len, _reserved, _context_id)) =
        (be_u8, be_u8, be_u8, be_u8, take(4usize)).parse(i)?;
    Ok((
        i,
        AuthTrailer {
            auth_type,
            auth_level,
            pad_len,
        },
    ))
}

/// Splits a whole PDU into its body (after the common header, before the auth padding) and its
/// sec_trailer. Without an auth verifier the body runs to frag_length.
pub fn split_auth<'a>(pdu: &'a [u8], h: &Header) -> Option<(&'a [u8], Option<AuthTrailer>)> {
    let whole = pdu.get(..h.frag_len as usize)?;
    if h.auth_len == 0 {
        return Some((whole.get(HEADER_LEN..)?, None));
    }
    let trailer_at = (h.frag_len as usize).checked_sub(h.auth_len as usize + SEC_TRAILER_LEN)?;
    let trailer = parsed(auth_trailer(whole.get(trailer_at..)?))?;
    // The padding sits just before the trailer; a pad longer than the body is bogus, strip nothing.
    let body = whole.get(HEADER_LEN..trailer_at)?;
    let body = body
        .get(..body.len().saturating_sub(trailer.pad_len as usize))
        .unwrap_or(body);
    Some((body, Some(trailer)))
}

/// The auth verifier's value (the security token after the sec_trailer), when the PDU has one.
pub fn auth_value<'a>(pdu: &'a [u8], h: &Header) -> Option<&'a [u8]> {
    if h.auth_len == 0 {
        return None;
    }
    let end = h.frag_len as usize;
    pdu.get(end.checked_sub(h.auth_len as usize)?..end)
}

/// Where a request's or response's stub starts in the PDU: after the common header, alloc_hint,
/// context id and opnum (request) or cancel count (response), and a request's object UUID.
/// Packet privacy seals from here to the sec_trailer; header signing signs what is before it.
pub fn stub_offset(h: &Header) -> usize {
    const REQUEST_RESPONSE_FIELDS: usize = 8;
    const OBJECT_UUID_LEN: usize = 16;
    match h.ptype {
        PTYPE_REQUEST if h.flags & PFC_OBJECT_UUID != 0 => {
            HEADER_LEN + REQUEST_RESPONSE_FIELDS + OBJECT_UUID_LEN
        }
        PTYPE_REQUEST | PTYPE_RESPONSE => HEADER_LEN + REQUEST_RESPONSE_FIELDS,
        _ => HEADER_LEN,
    }
}

/// Auth types whose verifier may carry a Kerberos AP-REQ: SPNEGO (9) and Kerberos (16).
pub const AUTH_TYPES_KERBEROS: [u8; 2] = [9, 16];

/// One presentation context offered in a bind / alter_context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextItem {
    pub ctx_id: u16,
    pub abstract_uuid: Uuid,
    pub version_major: u16,
    pub version_minor: u16,
    pub transfer_syntaxes: Vec<Uuid>,
}

/// Most transfer syntaxes one context item may list that we keep (clients offer 1–2).
pub const MAX_TRANSFER_SYNTAXES_PER_ITEM: usize = 8;

/// A transfer syntax: UUID then u32 version.
fn syntax_id(e: Endianness) -> impl Fn(&[u8]) -> IResult<&[u8], Uuid> {
    move |i| {
        let (i, (id, _version)) = (uuid(e), num_u32(e)).parse(i)?;
        Ok((i, id))
    }
}

fn context_item(e: Endianness) -> impl Fn(&[u8]) -> IResult<&[u8], ContextItem> {
    move |i| {
        let (i, (ctx_id, n_ts, _reserved, abstract_uuid, version_major, version_minor)) =
            (num_u16(e), be_u8, be_u8, uuid(e), num_u16(e), num_u16(e)).parse(i)?;
        let n_ts = usize::from(n_ts);
        // Every syntax is read (the item must be whole); only the first few are kept.
        let (i, transfer_syntaxes) =
            fold_many_m_n(n_ts, n_ts, syntax_id(e), Vec::new, |mut v, ts| {
                if v.len() < MAX_TRANSFER_SYNTAXES_PER_ITEM {
                    v.push(ts);
                }
                v
            })
            .parse(i)?;
        Ok((
            i,
            ContextItem {
                ctx_id,
                abstract_uuid,
                version_major,
                version_minor,
                transfer_syntaxes,
            },
        ))
    }
}

/// bind / alter_context body (after the common header; auth stripped).
pub fn parse_bind(body: &[u8], be: bool) -> IResult<&[u8], Vec<ContextItem>> {
    let e = endianness(be);
    let (i, (_max_xmit, _max_recv, _assoc_group, n, _reserved)) =
        (num_u16(e), num_u16(e), num_u32(e), be_u8, take(3usize)).parse(body)?;
    count(context_item(e), usize::from(n)).parse(i)
}

/// One result of a bind_ack / alter_context_resp, in the order of the offered items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 1 user_rejection, 2 provider_rejection, 3 negotiate_ack.
    pub result: u16,
    pub reason: u16,
    pub transfer_syntax: Uuid,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck {
    /// Secondary address: `\PIPE\svcctl` over pipes, the port number over TCP; may be empty.
    pub sec_addr: String,
    pub results: Vec<ContextResult>,
}

fn context_result(e: Endianness) -> impl Fn(&[u8]) -> IResult<&[u8], ContextResult> {
    move |i| {
        let (i, (result, reason, transfer_syntax)) =
            (num_u16(e), num_u16(e), syntax_id(e)).parse(i)?;
        Ok((
            i,
            ContextResult {
                result,
                reason,
                transfer_syntax,
            },
        ))
    }
}

/// bind_ack / alter_context_resp body. The result list is 4-aligned relative to the PDU start
/// (the body starts at offset 16, a multiple of 4, so aligning the body offset is equivalent).
pub fn parse_bind_ack(body: &[u8], be: bool) -> IResult<&[u8], BindAck> {
    let e = endianness(be);
    let (i, (_max_xmit, _max_recv, _assoc_group, sec_len)) =
        (num_u16(e), num_u16(e), num_u32(e), num_u16(e)).parse(body)?;
    let (i, raw) = take(sec_len)(i)?;
    let sec_addr: String = raw
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    let at = body.len() - i.len();
    let (i, _pad) = take(((at + 3) & !3) - at)(i)?;
    let (i, (n, _reserved)) = (be_u8, take(3usize)).parse(i)?;
    let (i, results) = count(context_result(e), usize::from(n)).parse(i)?;
    Ok((i, BindAck { sec_addr, results }))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub ctx_id: u16,
    pub opnum: u16,
    pub object: Option<Uuid>,
    pub stub: &'a [u8],
}

/// request body: the stub is what follows the fixed part (and the object UUID when flagged).
pub fn parse_request<'a>(body: &'a [u8], h: &Header) -> IResult<&'a [u8], Request<'a>> {
    let e = h.endianness();
    let (i, (_alloc_hint, ctx_id, opnum)) = (num_u32(e), num_u16(e), num_u16(e)).parse(body)?;
    let (stub, object) = if h.flags & PFC_OBJECT_UUID != 0 {
        uuid(e)(i).map(|(s, u)| (s, Some(u)))?
    } else {
        (i, None)
    };
    Ok((
        &[],
        Request {
            ctx_id,
            opnum,
            object,
            stub,
        },
    ))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub ctx_id: u16,
    pub stub: &'a [u8],
}

pub fn parse_response<'a>(body: &'a [u8], h: &Header) -> IResult<&'a [u8], Response<'a>> {
    let e = h.endianness();
    let (stub, (_alloc_hint, ctx_id, _cancel_count, _reserved)) =
        (num_u32(e), num_u16(e), be_u8, be_u8).parse(body)?;
    Ok((&[], Response { ctx_id, stub }))
}

/// fault body: the context id and the status code.
pub fn parse_fault<'a>(body: &'a [u8], h: &Header) -> IResult<&'a [u8], (u16, u32)> {
    let e = h.endianness();
    let (i, (_alloc_hint, ctx_id, _cancel_count, _reserved, status)) =
        (num_u32(e), num_u16(e), be_u8, be_u8, num_u32(e)).parse(body)?;
    Ok((i, (ctx_id, status)))
}

/// bind_nak body: the reject reason.
pub fn parse_bind_nak<'a>(body: &'a [u8], h: &Header) -> IResult<&'a [u8], u16> {
    num_u16(h.endianness()).parse(body)
}

/// Names of fault / reject status codes (C706 appendix E, MS-RPCE 2.2.2.11 / 3.1.1.5.5).
pub fn fault_status_name(status: u32) -> String {
    let name = match status {
        0x0000_0005 => "nca_s_fault_access_denied",
        0x0000_06d8 => "nca_s_fault_cant_perform",
        0x0000_06f7 => "nca_s_fault_ndr",
        0x0000_0721 => "nca_s_fault_sec_pkg_error",
        0x1c00_0001 => "nca_s_fault_int_div_by_zero",
        0x1c00_0002 => "nca_s_fault_addr_error",
        0x1c00_0003 => "nca_s_fault_fp_div_zero",
        0x1c00_0004 => "nca_s_fault_fp_underflow",
        0x1c00_0005 => "nca_s_fault_fp_overflow",
        0x1c00_0006 => "nca_s_fault_invalid_tag",
        0x1c00_0007 => "nca_s_fault_invalid_bound",
        0x1c00_0008 => "nca_s_rpc_version_mismatch",
        0x1c00_0009 => "nca_s_fault_unspec_reject",
        0x1c00_000a => "nca_s_fault_bad_actid",
        0x1c00_000b => "nca_s_fault_who_are_you_failed",
        0x1c00_000c => "nca_s_fault_manager_not_entered",
        0x1c00_000d => "nca_s_fault_cancel",
        0x1c00_000e => "nca_s_fault_ill_inst",
        0x1c00_000f => "nca_s_fault_fp_error",
        0x1c00_0010 => "nca_s_fault_int_overflow",
        0x1c00_0012 => "nca_s_fault_unspec",
        0x1c00_0013 => "nca_s_fault_remote_comm_failure",
        0x1c00_0014 => "nca_s_fault_pipe_empty",
        0x1c00_0015 => "nca_s_fault_pipe_closed",
        0x1c00_0016 => "nca_s_fault_pipe_order",
        0x1c00_0017 => "nca_s_fault_pipe_discipline",
        0x1c00_0018 => "nca_s_fault_pipe_comm_error",
        0x1c00_0019 => "nca_s_fault_pipe_memory",
        0x1c00_001a => "nca_s_fault_context_mismatch",
        0x1c00_001b => "nca_s_fault_remote_no_memory",
        0x1c00_001c => "nca_s_invalid_pres_context_id",
        0x1c00_001d => "nca_s_unsupported_authn_level",
        0x1c00_001f => "nca_s_invalid_checksum",
        0x1c00_0020 => "nca_s_invalid_crc",
        0x1c00_0021 => "nca_s_fault_user_defined",
        0x1c00_0022 => "nca_s_fault_tx_open_failed",
        0x1c00_0023 => "nca_s_fault_codeset_conv_error",
        0x1c00_0024 => "nca_s_fault_object_not_found",
        0x1c00_0025 => "nca_s_fault_no_client_stub",
        0x1c01_0001 => "nca_s_comm_failure",
        0x1c01_0002 => "nca_s_op_rng_error",
        0x1c01_0003 => "nca_s_unk_if",
        0x1c01_0006 => "nca_s_wrong_boot_time",
        0x1c01_0009 => "nca_s_you_crashed",
        0x1c01_000b => "nca_s_proto_error",
        0x1c01_0013 => "nca_s_out_args_too_big",
        0x1c01_0014 => "nca_s_server_too_busy",
        0x1c01_0015 => "nca_s_fault_string_too_long",
        0x1c01_0017 => "nca_s_unsupported_type",
        _ => return format!("0x{status:08x}"),
    };
    name.to_string()
}

/// bind_ack result codes as the event schema spells them.
pub fn result_name(r: u16) -> &'static str {
    match r {
        0 => "acceptance",
        1 => "user_rejection",
        2 => "provider_rejection",
        3 => "negotiate_ack",
        _ => "unknown",
    }
}

/// Transfer syntax UUID → "NDR" | "NDR64" | "bind-time-feature" | the uuid.
pub fn transfer_syntax_name(uuid: &Uuid) -> String {
    if *uuid == NDR20 {
        "NDR".into()
    } else if *uuid == NDR64 {
        "NDR64".into()
    } else if uuid.0[..8] == BIND_TIME_FEATURE_PREFIX {
        "bind-time-feature".into()
    } else {
        uuid.to_string()
    }
}

pub fn auth_type_name(t: u8) -> String {
    match t {
        0 => "none".into(),
        9 => "spnego".into(),
        10 => "ntlmssp".into(),
        14 => "schannel".into(),
        16 => "kerberos".into(),
        68 => "netlogon".into(),
        n => n.to_string(),
    }
}

pub fn auth_level_name(l: u8) -> &'static str {
    match l {
        1 => "none",
        2 => "connect",
        3 => "call",
        4 => "pkt",
        5 => "integrity",
        6 => "privacy",
        _ => "unknown",
    }
}

/// Packet privacy: the stub is encrypted.
pub const AUTH_LEVEL_PRIVACY: u8 = 6;

#[cfg(test)]
pub(crate) mod build {
    //! Hand-built PDUs for tests (little-endian unless said otherwise).
    use super::*;
    use crate::dcerpc::ndr::uuid_bytes_le;

    pub fn header(
        ptype: u8,
        flags: u8,
        frag_len: u16,
        auth_len: u16,
        call_id: u32,
        be: bool,
    ) -> Vec<u8> {
        let mut v = vec![5, 0, ptype, flags, if be { 0x00 } else { 0x10 }, 0, 0, 0];
        if be {
            v.extend_from_slice(&frag_len.to_be_bytes());
            v.extend_from_slice(&auth_len.to_be_bytes());
            v.extend_from_slice(&call_id.to_be_bytes());
        } else {
            v.extend_from_slice(&frag_len.to_le_bytes());
            v.extend_from_slice(&auth_len.to_le_bytes());
            v.extend_from_slice(&call_id.to_le_bytes());
        }
        v
    }

    /// Assemble a PDU: header + body + optional (pad, auth_type, auth_level, verifier).
    pub fn pdu(
        ptype: u8,
        flags: u8,
        call_id: u32,
        body: &[u8],
        auth: Option<(u8, u8, &[u8])>,
    ) -> Vec<u8> {
        let mut tail = Vec::new();
        let mut auth_len = 0u16;
        if let Some((atype, alevel, verifier)) = auth {
            let pad = (4 - (body.len() % 4)) % 4;
            tail.extend(std::iter::repeat_n(0u8, pad));
            tail.extend_from_slice(&[atype, alevel, pad as u8, 0, 0, 0, 0, 0]);
            tail.extend_from_slice(verifier);
            auth_len = verifier.len() as u16;
        }
        let frag_len = (HEADER_LEN + body.len() + tail.len()) as u16;
        let mut v = header(ptype, flags, frag_len, auth_len, call_id, false);
        v.extend_from_slice(body);
        v.extend_from_slice(&tail);
        v
    }

    pub fn bind_body(items: &[(u16, &str, u16, &[&str])]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&4280u16.to_le_bytes());
        b.extend_from_slice(&4280u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&[items.len() as u8, 0, 0, 0]);
        for (ctx, uuid, ver, ts) in items {
            b.extend_from_slice(&ctx.to_le_bytes());
            b.extend_from_slice(&[ts.len() as u8, 0]);
            b.extend_from_slice(&uuid_bytes_le(uuid).unwrap());
            b.extend_from_slice(&ver.to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            for t in *ts {
                b.extend_from_slice(&uuid_bytes_le(t).unwrap());
                let v: u32 = if *t == NDR20_UUID { 2 } else { 1 };
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        b
    }

    pub fn bind_ack_body(sec_addr: &str, results: &[(u16, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&4280u16.to_le_bytes());
        b.extend_from_slice(&4280u16.to_le_bytes());
        b.extend_from_slice(&0x1234u32.to_le_bytes());
        let sec = if sec_addr.is_empty() {
            Vec::new()
        } else {
            [sec_addr.as_bytes(), &[0]].concat()
        };
        b.extend_from_slice(&(sec.len() as u16).to_le_bytes());
        b.extend_from_slice(&sec);
        while b.len() % 4 != 0 {
            b.push(0);
        }
        b.extend_from_slice(&[results.len() as u8, 0, 0, 0]);
        for (r, ts) in results {
            b.extend_from_slice(&r.to_le_bytes());
            b.extend_from_slice(&0u16.to_le_bytes());
            b.extend_from_slice(&uuid_bytes_le(ts).unwrap());
            b.extend_from_slice(&(if *ts == NDR20_UUID { 2u32 } else { 1 }).to_le_bytes());
        }
        b
    }

    pub fn request_body(ctx_id: u16, opnum: u16, stub: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(stub.len() as u32).to_le_bytes());
        b.extend_from_slice(&ctx_id.to_le_bytes());
        b.extend_from_slice(&opnum.to_le_bytes());
        b.extend_from_slice(stub);
        b
    }

    pub fn response_body(ctx_id: u16, stub: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(stub.len() as u32).to_le_bytes());
        b.extend_from_slice(&ctx_id.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(stub);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    const SVCCTL: &str = "367abb81-9844-35f1-ad32-98f038001003";

    #[test]
    fn header_rejects_bad_version_type_and_lengths() {
        let ok = header(PTYPE_REQUEST, 3, 24, 0, 7, false);
        let h = parsed(parse_header(&ok)).unwrap();
        assert_eq!((h.frag_len, h.call_id, h.big_endian()), (24, 7, false));
        let mut bad = ok.clone();
        bad[0] = 4;
        assert!(parsed(parse_header(&bad)).is_none());
        let mut bad = ok.clone();
        bad[2] = 20;
        assert!(parsed(parse_header(&bad)).is_none());
        assert!(parsed(parse_header(&header(0, 3, 15, 0, 1, false))).is_none());
        // auth_len that does not fit in frag_len.
        assert!(parsed(parse_header(&header(0, 3, 40, 20, 1, false))).is_none());
        assert!(parsed(parse_header(&ok[..15])).is_none());
    }

    #[test]
    fn big_endian_header() {
        let h = parsed(parse_header(&header(
            PTYPE_BIND, 3, 0x0148, 0, 0x01020304, true,
        )))
        .unwrap();
        assert!(h.big_endian());
        assert_eq!((h.frag_len, h.call_id), (0x0148, 0x01020304));
    }

    #[test]
    fn bind_and_ack_items() {
        let body = bind_body(&[
            (0, SVCCTL, 2, &[NDR20_UUID, NDR64_UUID]),
            (1, SVCCTL, 2, &["6cb71c2c-9812-4540-0300-000000000000"]),
        ]);
        let items = parsed(parse_bind(&body, false)).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].abstract_uuid.to_string(), SVCCTL);
        assert_eq!(items[0].version_major, 2);
        assert_eq!(items[0].transfer_syntaxes, vec![NDR20, NDR64]);
        assert_eq!(
            transfer_syntax_name(&items[1].transfer_syntaxes[0]),
            "bind-time-feature"
        );
        let ack = parsed(parse_bind_ack(
            &bind_ack_body("\\PIPE\\svcctl", &[(2, NDR20_UUID), (0, NDR64_UUID)]),
            false,
        ))
        .unwrap();
        assert_eq!(ack.sec_addr, "\\PIPE\\svcctl");
        assert_eq!(ack.results[1].result, 0);
        assert_eq!(
            transfer_syntax_name(&ack.results[1].transfer_syntax),
            "NDR64"
        );
        // Truncated bind: one item announced, none present.
        assert!(parsed(parse_bind(&body[..12 + 10], false)).is_none());
    }

    #[test]
    fn request_with_object_uuid_and_auth_padding() {
        let mut body = Vec::new();
        body.extend_from_slice(&4u32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&12u16.to_le_bytes());
        body.extend_from_slice(&crate::dcerpc::ndr::uuid_bytes_le(SVCCTL).unwrap());
        body.extend_from_slice(&[0xde, 0xad, 0xbe]); // 3-byte stub → 1 pad byte
        let p = pdu(
            PTYPE_REQUEST,
            3 | PFC_OBJECT_UUID,
            9,
            &body,
            Some((10, 5, &[0x11; 16])),
        );
        let h = parsed(parse_header(&p)).unwrap();
        let (b, t) = split_auth(&p, &h).unwrap();
        assert_eq!(
            t,
            Some(AuthTrailer {
                auth_type: 10,
                auth_level: 5,
                pad_len: 1
            })
        );
        let r = parsed(parse_request(b, &h)).unwrap();
        assert_eq!((r.ctx_id, r.opnum), (1, 12));
        assert_eq!(r.object.map(|u| u.to_string()).as_deref(), Some(SVCCTL));
        assert_eq!(r.stub, &[0xde, 0xad, 0xbe]);
    }

    /// Sealed (auth level 6, SPNEGO/Kerberos) svcctl responses of Sysinternals PsExec over TCP,
    /// from captures/public/suricata-verify/dcerpc-dce-iface-01 (frames 10, 12, 18, 20; the
    /// requests in 9–19 carry opnums 15, 45, 19, 6): the stub is ciphertext, yet its exact length
    /// is frag_length less the header, the response's fixed 8 bytes, auth_pad_length, the
    /// sec_trailer and the verifier, all in the clear. alloc_hint agrees.
    #[test]
    fn sealed_response_stub_length_from_the_clear_framing() {
        use crate::smb::crypto::testutil::hex;
        let cases = [
            // ROpenSCManagerW: handle + status.
            ("05000203100000008c004c0002000000180000000000000090d9c39d6e2ef320d0828f84ed77de9190dcf5b43bd598d167977bedbecaddba0906080000000000050407ff0010001c00000000047d639d8f63cc3d0b2fb83da8b89c241ab87fbd5e1119edf2ec01077be187ee781401bc8801b7d3192eb5a40282a070cc9b91b7af5c259b476a57a9fe387f6d", 8, 24),
            // RCreateServiceWOW64W: null tag pointer + handle + status.
            ("05000203100000008c004c00030000001c00000000000000450bdd19eaaf63bc0e8f2f22b388b0d69b3728d12eb8a85805a2fae052b01d830906040000000000050407ff0010001c00000000047d639e088e3fea79bb8748b002897e1744061bd89a446c6973bc7831f2188358a123b7d8d52d6a6c008bc1d40054eba08ca624261f2e64b914d9905ba3f3ba", 4, 28),
            // RStartServiceW: status.
            ("05000203100000007c004c0006000000040000000000000093bfdcd82acf8327f89cc6d6b92067ea09060c0000000000050407ff0010001c00000000047d63a1a4c92dc82c7ec19c352483c63d81f980522bfb1b9cfa2a5f2ce63bccfa12cbf0a3b32cd2671ad5ec7b69348f93ba0c9cd1f83c316257e825fb1380d5", 12, 4),
            // RQueryServiceStatus: SERVICE_STATUS + status.
            ("05000203100000008c004c00070000002000000000000000c8f1ed6b2465d2f4bc5f775735375129df948a990fd8ed93aff2e64d958a4b8d0906000000000000050407ff0010001c00000000047d63a2258d3925122c5e51ce240b81483c7756b0af29250528154fa20b0cc2aa8b1925989f1d63dc7ff748227ad1d71d60b689c468e60b9424b3e8ff8795b1", 0, 32),
        ];
        for (bytes, pad, len) in cases {
            let p = hex(bytes);
            let h = parsed(parse_header(&p)).unwrap();
            assert_eq!((h.ptype, h.auth_len), (PTYPE_RESPONSE, 76));
            let (body, trailer) = split_auth(&p, &h).unwrap();
            let t = trailer.unwrap();
            assert_eq!(
                (t.auth_type, t.auth_level, t.pad_len),
                (9, AUTH_LEVEL_PRIVACY, pad)
            );
            let r = parsed(parse_response(body, &h)).unwrap();
            assert_eq!(r.stub.len(), len, "{bytes}");
            let alloc_hint = u32::from_le_bytes(p[16..20].try_into().unwrap());
            assert_eq!(alloc_hint as usize, len);
        }
    }

    #[test]
    fn fault_status_and_names() {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&0x1c01_0002u32.to_le_bytes());
        let p = pdu(PTYPE_FAULT, 3, 3, &body, None);
        let h = parsed(parse_header(&p)).unwrap();
        let (b, _) = split_auth(&p, &h).unwrap();
        assert_eq!(
            parsed(parse_fault(b, &h))
                .map(|f| fault_status_name(f.1))
                .as_deref(),
            Some("nca_s_op_rng_error")
        );
        assert_eq!(fault_status_name(5), "nca_s_fault_access_denied");
        assert_eq!(fault_status_name(0xdead), "0x0000dead");
    }
}
