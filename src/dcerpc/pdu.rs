//! Connection-oriented DCE-RPC PDUs (C706 chapter 12, MS-RPCE 2.2.2): pure functions over one
//! whole PDU (`frag_length` bytes). The common header is checked once by [`Header::parse`]; the
//! body parsers return `None` on anything short or inconsistent.

use super::ndr::uuid_string;

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
pub const NDR20_UUID: &str = "8a885d04-1ceb-11c9-9fe8-08002b104860";
pub const NDR64_UUID: &str = "71710533-beba-4937-8319-b5dbef9ccc36";
/// Bind-time feature negotiation (MS-RPCE 3.3.1.5.3): `6cb71c2c-9812-4540-xxxx-…`.
pub const BIND_TIME_FEATURE_PREFIX: &str = "6cb71c2c-9812-4540-";

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

impl Header {
    /// Parses and sanity-checks a common header: version 5.0, a known connection-oriented type,
    /// frag_length at least a header and room for the auth verifier.
    pub fn parse(b: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        if h[0] != 5 || h[1] != 0 || h[2] > PTYPE_ORPHANED {
            return None;
        }
        let drep = [h[4], h[5], h[6], h[7]];
        // drep[0] high nibble: integer representation (0 big-endian, 1 little-endian); only
        // ASCII/EBCDIC chars and IEEE/VAX/Cray/IBM floats exist, so other bits are bogus.
        if drep[0] & 0xe0 != 0 || drep[0] & 0x0f > 1 || drep[1] > 3 {
            return None;
        }
        let be = drep[0] & 0x10 == 0;
        let rd16 = |x: [u8; 2]| {
            if be {
                u16::from_be_bytes(x)
            } else {
                u16::from_le_bytes(x)
            }
        };
        let frag_len = rd16([h[8], h[9]]);
        let auth_len = rd16([h[10], h[11]]);
        let call_id = if be {
            u32::from_be_bytes([h[12], h[13], h[14], h[15]])
        } else {
            u32::from_le_bytes([h[12], h[13], h[14], h[15]])
        };
        if (frag_len as usize) < HEADER_LEN {
            return None;
        }
        if auth_len > 0 && (auth_len as usize) + SEC_TRAILER_LEN + HEADER_LEN > frag_len as usize {
            return None;
        }
        Some(Header {
            ptype: h[2],
            flags: h[3],
            drep,
            frag_len,
            auth_len,
            call_id,
        })
    }

    pub fn big_endian(&self) -> bool {
        self.drep[0] & 0x10 == 0
    }
    pub fn first_frag(&self) -> bool {
        self.flags & PFC_FIRST_FRAG != 0
    }
    pub fn last_frag(&self) -> bool {
        self.flags & PFC_LAST_FRAG != 0
    }
}

/// A tiny cursor over a PDU body with the header's byte order; fields here are naturally aligned
/// relative to the PDU start, which is how C706 lays them out.
struct Cur<'a> {
    b: &'a [u8],
    pos: usize,
    be: bool,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8], pos: usize, be: bool) -> Cur<'a> {
        Cur { b, pos, be }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let s: [u8; 2] = self.take(2)?.try_into().ok()?;
        Some(if self.be {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        })
    }
    fn u32(&mut self) -> Option<u32> {
        let s: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(if self.be {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
    fn uuid(&mut self) -> Option<String> {
        let s: &[u8; 16] = self.take(16)?.try_into().ok()?;
        Some(uuid_string(s, self.be))
    }
    fn align4(&mut self) {
        self.pos = (self.pos + 3) & !3;
    }
}

/// The sec_trailer of a PDU carrying an auth verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthTrailer {
    pub auth_type: u8,
    pub auth_level: u8,
    pub pad_len: u8,
}

/// Splits a whole PDU into its body (after the common header, before the auth padding) and its
/// sec_trailer. Without an auth verifier the body runs to frag_length.
pub fn split_auth<'a>(pdu: &'a [u8], h: &Header) -> Option<(&'a [u8], Option<AuthTrailer>)> {
    let whole = pdu.get(..h.frag_len as usize)?;
    if h.auth_len == 0 {
        return Some((whole.get(HEADER_LEN..)?, None));
    }
    let trailer_at = (h.frag_len as usize).checked_sub(h.auth_len as usize + SEC_TRAILER_LEN)?;
    let t = whole.get(trailer_at..trailer_at + SEC_TRAILER_LEN)?;
    let trailer = AuthTrailer {
        auth_type: t[0],
        auth_level: t[1],
        pad_len: t[2],
    };
    // The padding sits just before the trailer; a pad longer than the body is bogus, strip nothing.
    let body = whole.get(HEADER_LEN..trailer_at)?;
    let body = body
        .get(..body.len().saturating_sub(trailer.pad_len as usize))
        .unwrap_or(body);
    Some((body, Some(trailer)))
}

/// One presentation context offered in a bind / alter_context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextItem {
    pub ctx_id: u16,
    pub abstract_uuid: String,
    pub version_major: u16,
    pub version_minor: u16,
    pub transfer_syntaxes: Vec<String>,
}

/// Most transfer syntaxes one context item may list that we keep (clients offer 1–2).
pub const MAX_TRANSFER_SYNTAXES_PER_ITEM: usize = 8;

/// bind / alter_context body (after the common header; auth stripped).
pub fn parse_bind(body: &[u8], be: bool) -> Option<Vec<ContextItem>> {
    let mut c = Cur::new(body, 0, be);
    c.take(4)?; // max_xmit_frag, max_recv_frag
    c.u32()?; // assoc_group_id
    let n = c.u8()?;
    c.take(3)?;
    let mut items = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let ctx_id = c.u16()?;
        let n_ts = c.u8()?;
        c.u8()?;
        let abstract_uuid = c.uuid()?;
        let version_major = c.u16()?;
        let version_minor = c.u16()?;
        let mut transfer_syntaxes = Vec::new();
        for _ in 0..n_ts {
            let ts = c.uuid()?;
            c.u32()?;
            if transfer_syntaxes.len() < MAX_TRANSFER_SYNTAXES_PER_ITEM {
                transfer_syntaxes.push(ts);
            }
        }
        items.push(ContextItem {
            ctx_id,
            abstract_uuid,
            version_major,
            version_minor,
            transfer_syntaxes,
        });
    }
    Some(items)
}

/// One result of a bind_ack / alter_context_resp, in the order of the offered items.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextResult {
    /// 0 acceptance, 1 user_rejection, 2 provider_rejection, 3 negotiate_ack.
    pub result: u16,
    pub reason: u16,
    pub transfer_syntax: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck {
    /// Secondary address: `\PIPE\svcctl` over pipes, the port number over TCP; may be empty.
    pub sec_addr: String,
    pub results: Vec<ContextResult>,
}

/// bind_ack / alter_context_resp body. Alignment of the result list is relative to the PDU start
/// (the body starts at offset 16, a multiple of 4, so aligning the body offset is equivalent).
pub fn parse_bind_ack(body: &[u8], be: bool) -> Option<BindAck> {
    let mut c = Cur::new(body, 0, be);
    c.take(4)?; // max_xmit_frag, max_recv_frag
    c.u32()?;
    let sec_len = c.u16()? as usize;
    let raw = c.take(sec_len)?;
    let sec_addr: String = raw
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect();
    c.align4();
    let n = c.u8()?;
    c.take(3)?;
    let mut results = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let result = c.u16()?;
        let reason = c.u16()?;
        let transfer_syntax = c.uuid()?;
        c.u32()?;
        results.push(ContextResult {
            result,
            reason,
            transfer_syntax,
        });
    }
    Some(BindAck { sec_addr, results })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub ctx_id: u16,
    pub opnum: u16,
    pub object: Option<String>,
    pub stub: &'a [u8],
}

pub fn parse_request<'a>(body: &'a [u8], h: &Header) -> Option<Request<'a>> {
    let mut c = Cur::new(body, 0, h.big_endian());
    c.u32()?; // alloc_hint
    let ctx_id = c.u16()?;
    let opnum = c.u16()?;
    let object = if h.flags & PFC_OBJECT_UUID != 0 {
        Some(c.uuid()?)
    } else {
        None
    };
    let stub = body.get(c.pos..)?;
    Some(Request {
        ctx_id,
        opnum,
        object,
        stub,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    pub ctx_id: u16,
    pub stub: &'a [u8],
}

pub fn parse_response<'a>(body: &'a [u8], h: &Header) -> Option<Response<'a>> {
    let mut c = Cur::new(body, 0, h.big_endian());
    c.u32()?;
    let ctx_id = c.u16()?;
    c.take(2)?; // cancel_count, reserved
    Some(Response {
        ctx_id,
        stub: body.get(c.pos..)?,
    })
}

/// fault body: the status code.
pub fn parse_fault(body: &[u8], h: &Header) -> Option<(u16, u32)> {
    let mut c = Cur::new(body, 0, h.big_endian());
    c.u32()?;
    let ctx_id = c.u16()?;
    c.take(2)?;
    Some((ctx_id, c.u32()?))
}

/// bind_nak body: the reject reason.
pub fn parse_bind_nak(body: &[u8], h: &Header) -> Option<u16> {
    Cur::new(body, 0, h.big_endian()).u16()
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
pub fn transfer_syntax_name(uuid: &str) -> String {
    if uuid == NDR20_UUID {
        "NDR".into()
    } else if uuid == NDR64_UUID {
        "NDR64".into()
    } else if uuid.starts_with(BIND_TIME_FEATURE_PREFIX) {
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
        let h = Header::parse(&ok).unwrap();
        assert_eq!((h.frag_len, h.call_id, h.big_endian()), (24, 7, false));
        let mut bad = ok.clone();
        bad[0] = 4;
        assert!(Header::parse(&bad).is_none());
        let mut bad = ok.clone();
        bad[2] = 20;
        assert!(Header::parse(&bad).is_none());
        assert!(Header::parse(&header(0, 3, 15, 0, 1, false)).is_none());
        // auth_len that does not fit in frag_len.
        assert!(Header::parse(&header(0, 3, 40, 20, 1, false)).is_none());
        assert!(Header::parse(&ok[..15]).is_none());
    }

    #[test]
    fn big_endian_header() {
        let h = Header::parse(&header(PTYPE_BIND, 3, 0x0148, 0, 0x01020304, true)).unwrap();
        assert!(h.big_endian());
        assert_eq!((h.frag_len, h.call_id), (0x0148, 0x01020304));
    }

    #[test]
    fn bind_and_ack_items() {
        let body = bind_body(&[
            (0, SVCCTL, 2, &[NDR20_UUID, NDR64_UUID]),
            (1, SVCCTL, 2, &["6cb71c2c-9812-4540-0300-000000000000"]),
        ]);
        let items = parse_bind(&body, false).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].abstract_uuid, SVCCTL);
        assert_eq!(items[0].version_major, 2);
        assert_eq!(
            items[0].transfer_syntaxes,
            vec![NDR20_UUID.to_string(), NDR64_UUID.to_string()]
        );
        assert_eq!(
            transfer_syntax_name(&items[1].transfer_syntaxes[0]),
            "bind-time-feature"
        );
        let ack = parse_bind_ack(
            &bind_ack_body("\\PIPE\\svcctl", &[(2, NDR20_UUID), (0, NDR64_UUID)]),
            false,
        )
        .unwrap();
        assert_eq!(ack.sec_addr, "\\PIPE\\svcctl");
        assert_eq!(ack.results[1].result, 0);
        assert_eq!(
            transfer_syntax_name(&ack.results[1].transfer_syntax),
            "NDR64"
        );
        // Truncated bind: one item announced, none present.
        assert!(parse_bind(&body[..12 + 10], false).is_none());
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
        let h = Header::parse(&p).unwrap();
        let (b, t) = split_auth(&p, &h).unwrap();
        assert_eq!(
            t,
            Some(AuthTrailer {
                auth_type: 10,
                auth_level: 5,
                pad_len: 1
            })
        );
        let r = parse_request(b, &h).unwrap();
        assert_eq!((r.ctx_id, r.opnum), (1, 12));
        assert_eq!(r.object.as_deref(), Some(SVCCTL));
        assert_eq!(r.stub, &[0xde, 0xad, 0xbe]);
    }

    #[test]
    fn fault_status_and_names() {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&0x1c01_0002u32.to_le_bytes());
        let p = pdu(PTYPE_FAULT, 3, 3, &body, None);
        let h = Header::parse(&p).unwrap();
        let (b, _) = split_auth(&p, &h).unwrap();
        assert_eq!(
            parse_fault(b, &h)
                .map(|f| fault_status_name(f.1))
                .as_deref(),
            Some("nca_s_op_rng_error")
        );
        assert_eq!(fault_status_name(5), "nca_s_fault_access_denied");
        assert_eq!(fault_status_name(0xdead), "0x0000dead");
    }
}
