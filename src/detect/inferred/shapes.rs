//! Size facts of SMB2 and DCE-RPC messages, and the pure functions that read a request/response
//! pair of plaintext sizes (the transform header's OriginalMessageSize) as one of the shapes the
//! inference needs. Every constant is a protocol fact ([MS-SMB2] structure sizes, [C706] PDU
//! layouts, [MS-SCMR] stubs), never a number measured on one capture.
//!
//! A shape is a claim about what a pair *could* be; several shapes can fit one pair, and the
//! sequence in `super` decides. The ambiguities are listed beside each function.

/// Every SMB2 message starts with a 64-byte header.
pub const SMB2_HEADER: u32 = 64;
/// WRITE request: header + 48 fixed bytes (StructureSize 49 counts the first data byte), + data.
pub const WRITE_REQUEST_FIXED: u32 = SMB2_HEADER + 48;
/// WRITE response: header + 16 (StructureSize 17; one reserved byte is not sent).
pub const WRITE_RESPONSE: u32 = SMB2_HEADER + 16;
/// READ request: header + 48, plus the one-byte buffer clients send (113); up to 7 bytes of padding
/// tolerated. 120 is where CREATE starts (64 + 56 + name), so READ stays below it.
pub const READ_REQUEST_MIN: u32 = SMB2_HEADER + 48;
pub const READ_REQUEST_MAX: u32 = SMB2_HEADER + 56 - 1;
/// READ response: header + 16 + data.
pub const READ_RESPONSE_FIXED: u32 = SMB2_HEADER + 16;
/// IOCTL request: header + 56 + input (FSCTL_PIPE_TRANSCEIVE carries one DCE-RPC PDU).
pub const IOCTL_REQUEST_FIXED: u32 = SMB2_HEADER + 56;
/// IOCTL response: header + 48 + output.
pub const IOCTL_RESPONSE_FIXED: u32 = SMB2_HEADER + 48;
/// CREATE response without create contexts: header + 88.
pub const CREATE_RESPONSE: u32 = SMB2_HEADER + 88;
/// CLOSE request (header + 24) and response (header + 60): an exact pair no other command has.
pub const CLOSE_REQUEST: u32 = SMB2_HEADER + 24;
pub const CLOSE_RESPONSE: u32 = SMB2_HEADER + 60;
/// ERROR response: header + 8 + one byte of ErrorData. Also the size of an async STATUS_PENDING
/// interim response, which a final response follows later.
pub const ERROR_RESPONSE: u32 = SMB2_HEADER + 9;
/// CANCEL request (header + 4): the one request that gets no response.
pub const CANCEL_REQUEST: u32 = SMB2_HEADER + 4;

/// DCE-RPC connection-oriented common header.
pub const DCE_HEADER: u32 = 16;
/// Request / response PDU header (common header + alloc_hint, context id, opnum/cancel count).
pub const DCE_CALL_HEADER: u32 = 24;
/// A bind with one presentation context and no auth: 16 + 12 + 44.
pub const BIND_ONE_CONTEXT: u32 = 72;
/// Smallest bind_ack: 16 + 8 + secondary address (2 + at least 1, aligned to 4) + 4 + one
/// 24-byte result.
pub const BIND_ACK_MIN: u32 = 56;
/// Largest bind or bind_ack we read as one: a few contexts plus an NTLMSSP or Kerberos token.
pub const BIND_MAX: u32 = 512;
/// A call that returns a 20-byte context handle and a 4-byte status (OpenSCManagerW, OpenServiceW,
/// CreateServiceW without tag...): 24 + 20 + 4.
pub const HANDLE_REPLY: u32 = DCE_CALL_HEADER + 20 + 4;
/// What DCE-RPC authentication adds to a call PDU: an 8-byte sec_trailer and a 16-byte NTLMSSP
/// verifier, plus up to 16 bytes of stub padding.
pub const AUTH_VERIFIER_MIN: u32 = 8 + 16;
pub const MAX_AUTH_VERIFIER: u32 = AUTH_VERIFIER_MIN + 16;
/// Smallest request of an OpenSCManagerW-like call: 24 + three 4-byte fields (null pointers).
pub const HANDLE_CALL_MIN: u32 = DCE_CALL_HEADER + 12;
/// A fault PDU: 16 + alloc_hint 4 + ctx 2 + cancel 1 + reserved 1 + status 4 + reserved 4.
pub const FAULT_PDU: u32 = 32;
/// CreateServiceW response: 24 + tag pointer 4 + handle 20 + status 4.
pub const CREATE_SERVICE_REPLY: u32 = DCE_CALL_HEADER + 4 + 20 + 4;
/// Smallest plausible CreateServiceW request PDU: 24 + handle 20 + service name (12 + 2×(1+1),
/// aligned: 16) + display-name pointer 4 + access/type/start/error 16 + a binary path of at least
/// 8 characters (12 + 18, aligned: 32) + load-order, tag, dependencies (+size), start-name,
/// password (+size) 28 = 140.
pub const CREATE_CALL_MIN: u32 = DCE_CALL_HEADER + 20 + 16 + 4 + 16 + 32 + 28;
/// Largest DCE-RPC fragment we read as one pipe PDU (Windows negotiates 5840, impacket 4280).
pub const MAX_PIPE_PDU: u32 = 5840;
/// Largest request we read as one call once its fragments are added up: a command line of 32,767
/// UTF-16 characters in a binary path, and the rest.
pub const MAX_CALL_TOTAL: u32 = 1 << 17;
/// A DCE-RPC request is split into fragments of max_xmit_frag bytes, which [C706] requires to be at
/// least 1432: a pipe write shorter than that is the last (or only) fragment of its PDU.
pub const MIN_FRAGMENT_SPLIT: u32 = 1432;
/// Smallest single client write that counts as an upload chunk. Above [`MAX_PIPE_PDU`] so a pipe
/// write is never taken for an upload. A tool writing its executable in chunks under this size is
/// not seen as uploading (documented limit).
pub const UPLOAD_CHUNK_MIN: u32 = 6144;
/// Largest reply to an upload-like request: a WRITE response is 80, and a compound
/// CREATE+WRITE+CLOSE answer is 152 + create contexts + 80 + 124.
pub const MAX_UPLOAD_REPLY: u32 = 1024;

/// WRITE request answered by a WRITE response: the data length.
/// Ambiguity: a TREE_CONNECT response is also 80 bytes (its request is 72 + 2 × path length), so a
/// tree connect to a 56-character path reads as a 72-byte write.
pub fn write_data(req: u32, resp: u32) -> Option<u32> {
    if resp == WRITE_RESPONSE && req > WRITE_REQUEST_FIXED {
        Some(req - WRITE_REQUEST_FIXED)
    } else {
        None
    }
}

/// READ request answered by data: the data length (at least a DCE-RPC header's worth).
pub fn read_data(req: u32, resp: u32) -> Option<u32> {
    if (READ_REQUEST_MIN..=READ_REQUEST_MAX).contains(&req)
        && resp >= READ_RESPONSE_FIXED + DCE_HEADER
    {
        Some(resp - READ_RESPONSE_FIXED)
    } else {
        None
    }
}

/// IOCTL FSCTL_PIPE_TRANSCEIVE: (request PDU length, response PDU length).
/// Ambiguity: CREATE (120 + name + contexts → 152 + contexts) and other commands can fit; a CREATE
/// answered without contexts (152) is excluded, the rest is left to the DCE-RPC shapes below and
/// the sequence.
pub fn transceive(req: u32, resp: u32) -> Option<(u32, u32)> {
    // A 152-byte answer is a CREATE response without contexts (opening a file or pipe); reading it
    // as IOCTL would only gain DCE-RPC replies of exactly 40 bytes.
    if resp == WRITE_RESPONSE
        || resp == CREATE_RESPONSE
        || (READ_REQUEST_MIN..=READ_REQUEST_MAX).contains(&req)
    {
        return None;
    }
    let q = req.checked_sub(IOCTL_REQUEST_FIXED)?;
    let r = resp.checked_sub(IOCTL_RESPONSE_FIXED)?;
    if q >= DCE_HEADER && r >= DCE_HEADER && q <= MAX_PIPE_PDU && r <= MAX_PIPE_PDU {
        Some((q, r))
    } else {
        None
    }
}

/// A client message carrying at least [`UPLOAD_CHUNK_MIN`] bytes, answered by a small reply:
/// (data length as far as the sizes tell, exact). Exact when the reply is a plain WRITE response;
/// otherwise the request was a compound (e.g. CREATE+WRITE+CLOSE) and the length is an upper bound
/// that includes the other commands (a few hundred bytes).
pub fn upload_chunk(req: u32, resp: u32) -> Option<(u64, bool)> {
    let data = req.checked_sub(WRITE_REQUEST_FIXED)?;
    if data >= UPLOAD_CHUNK_MIN && (WRITE_RESPONSE..=MAX_UPLOAD_REPLY).contains(&resp) {
        Some((u64::from(data), resp == WRITE_RESPONSE))
    } else {
        None
    }
}

/// CLOSE and its response.
pub fn is_close(req: u32, resp: u32) -> bool {
    req == CLOSE_REQUEST && resp == CLOSE_RESPONSE
}

/// A bind and its bind_ack (one or more contexts, optional auth).
pub fn is_bind(q: u32, r: u32) -> bool {
    (BIND_ONE_CONTEXT..=BIND_MAX).contains(&q) && (BIND_ACK_MIN..=BIND_MAX).contains(&r)
}

/// The reply of a call that returns a context handle and a status (OpenSCManagerW, OpenServiceW):
/// exactly [`HANDLE_REPLY`] on an unauthenticated pipe (SMB carries the security), or that plus a
/// verifier ([`AUTH_VERIFIER_MIN`] to [`MAX_AUTH_VERIFIER`]) when the call is signed or sealed.
/// Exact sizes matter: other interfaces' calls answer 52, 56, 64… (SamrConnect5 is 64).
pub fn is_handle_reply(r: u32) -> bool {
    r == HANDLE_REPLY
        || (HANDLE_REPLY + AUTH_VERIFIER_MIN..=HANDLE_REPLY + MAX_AUTH_VERIFIER).contains(&r)
}

/// A call that returns a context handle and a status.
pub fn is_handle_call(q: u32, r: u32) -> bool {
    (HANDLE_CALL_MIN..=MAX_PIPE_PDU).contains(&q) && is_handle_reply(r)
}

/// The reply of CreateServiceW: a fault PDU, or tag + handle + status, exactly or plus a verifier.
/// (A fault carrying a verifier is not expected and not accepted: it would overlap other calls.)
pub fn is_create_reply(r: u32) -> bool {
    r == FAULT_PDU
        || r == CREATE_SERVICE_REPLY
        || (CREATE_SERVICE_REPLY + AUTH_VERIFIER_MIN..=CREATE_SERVICE_REPLY + MAX_AUTH_VERIFIER)
            .contains(&r)
}

/// A large request with a small reply: CreateServiceW (answered by a handle + status, or a fault).
/// `larger_than` is the largest handle-call request seen since the bind: CreateServiceW carries a
/// service name, binary path and eleven more fields, so it outgrows the calls that opened handles.
pub fn is_create_call(q: u32, r: u32, larger_than: u32) -> bool {
    q >= CREATE_CALL_MIN && q > larger_than && q <= MAX_CALL_TOTAL && is_create_reply(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smb2_sizes_from_the_spec() {
        assert_eq!(WRITE_REQUEST_FIXED, 112);
        assert_eq!(WRITE_RESPONSE, 80);
        assert_eq!(IOCTL_REQUEST_FIXED, 120);
        assert_eq!(IOCTL_RESPONSE_FIXED, 112);
        assert_eq!(CLOSE_REQUEST, 88);
        assert_eq!(CLOSE_RESPONSE, 124);
        assert_eq!(ERROR_RESPONSE, 73);
    }

    #[test]
    fn dcerpc_sizes_from_the_spec() {
        // bind: 16 header + max_xmit/max_recv/assoc 8 + n_ctx 4 + one context (2+2 + 20 + 20) = 72.
        assert_eq!(BIND_ONE_CONTEXT, 16 + 8 + 4 + 44);
        assert_eq!(HANDLE_REPLY, 48);
        assert_eq!(CREATE_SERVICE_REPLY, 52);
        assert_eq!(CREATE_CALL_MIN, 140);
    }

    #[test]
    fn create_service_request_grows_with_its_strings() {
        // [MS-SCMR] RCreateServiceW: handle, name, display pointer+string, 4 DWORDs, binary path,
        // 7 trailing pointers/sizes. Each conformant-varying string is 12 + 2×(n+1), 4-aligned.
        fn s(n: u32) -> u32 {
            (12 + 2 * (n + 1) + 3) & !3
        }
        let stub = |name: u32, path: u32| 20 + s(name) + 4 + s(name) + 16 + s(path) + 28;
        // 4-letter service, `%systemroot%\xxxxxxxx.exe` (25 chars): psexec's request PDU.
        assert_eq!(DCE_CALL_HEADER + stub(4, 25), 204);
        assert!(is_create_call(
            DCE_CALL_HEADER + stub(4, 25),
            FAULT_PDU,
            104
        ));
        assert!(is_create_call(
            DCE_CALL_HEADER + stub(4, 25),
            CREATE_SERVICE_REPLY,
            104
        ));
        // Not when the reply is large (a query answered with data).
        assert!(!is_create_call(204, 316, 104));
        // Not when it is no larger than the handle calls before it.
        assert!(!is_create_call(204, 32, 204));
    }

    #[test]
    fn pair_shapes() {
        assert_eq!(write_data(184, 80), Some(72));
        assert_eq!(write_data(112, 80), None);
        assert_eq!(write_data(184, 73), None);
        assert_eq!(read_data(113, 148), Some(68));
        assert_eq!(read_data(113, 73), None);
        assert_eq!(read_data(121, 148), None);
        assert_eq!(transceive(192, 180), Some((72, 68)));
        assert_eq!(transceive(113, 148), None);
        assert_eq!(transceive(184, 80), None);
        assert_eq!(transceive(130, 180), None);
        assert_eq!(transceive(144, 152), None);
        assert_eq!(upload_chunk(56_432, 80), Some((56_320, true)));
        assert_eq!(
            upload_chunk(56_432 + 88 + 136, 356),
            Some((56_320 + 88 + 136, false))
        );
        assert_eq!(upload_chunk(56_432, 2000), None);
        assert_eq!(upload_chunk(112 + 5840, 80), None);
        assert_eq!(upload_chunk(10, 80), None);
        assert!(is_close(88, 124));
        assert!(!is_close(88, 73));
        assert!(is_bind(72, 68));
        assert!(!is_bind(72, 48));
        assert!(is_handle_call(104, 48));
        assert!(is_handle_call(104, 72));
        assert!(!is_handle_call(104, 64));
        assert!(!is_handle_call(104, 316));
        assert!(
            is_create_reply(32)
                && is_create_reply(52)
                && is_create_reply(76)
                && is_create_reply(92)
        );
        assert!(!is_create_reply(56) && !is_create_reply(48) && !is_create_reply(93));
    }
}
