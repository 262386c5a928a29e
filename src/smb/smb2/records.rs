//! SMB2/3 wire formats (MS-SMB2 2.2) as pure functions over borrowed bytes.
//!
//! Every parser takes one SMB2 *message* (`msg`: the 64-byte header followed by the body, bounded
//! to this command inside a compound) because SMB2 offsets count from the start of the header.
//! Each checks the fixed part's length once; variable parts (names, buffers) are resolved with
//! checked arithmetic and come back empty when a hostile offset points outside the message.

pub const SMB2_MAGIC: &[u8; 4] = b"\xfeSMB";
pub const TRANSFORM_MAGIC: &[u8; 4] = b"\xfdSMB";
pub const COMPRESSION_MAGIC: &[u8; 4] = b"\xfcSMB";
pub const SMB2_HEADER_LEN: usize = 64;
pub const TRANSFORM_HEADER_LEN: usize = 52;
pub const COMPRESSION_HEADER_LEN: usize = 16;

pub const FLAG_SERVER_TO_REDIR: u32 = 0x0000_0001;
pub const FLAG_ASYNC: u32 = 0x0000_0002;
pub const FLAG_RELATED: u32 = 0x0000_0004;

pub const NEGOTIATE: u16 = 0;
pub const SESSION_SETUP: u16 = 1;
pub const LOGOFF: u16 = 2;
pub const TREE_CONNECT: u16 = 3;
pub const TREE_DISCONNECT: u16 = 4;
pub const CREATE: u16 = 5;
pub const CLOSE: u16 = 6;
pub const READ: u16 = 8;
pub const WRITE: u16 = 9;
pub const IOCTL: u16 = 11;
pub const SET_INFO: u16 = 17;

pub const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_C017;
pub const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
pub const SHARE_TYPE_DISK: u8 = 1;
pub const SHARE_TYPE_PIPE: u8 = 2;
pub const SHARE_TYPE_PRINT: u8 = 3;

/// Fixed part of a WRITE request (header + 48 bytes before the buffer).
pub const WRITE_REQUEST_FIXED: usize = SMB2_HEADER_LEN + 48;
/// Fixed part of a READ response (header + 16 bytes before the buffer).
pub const READ_RESPONSE_FIXED: usize = SMB2_HEADER_LEN + 16;

/// A FileId (persistent + volatile) as one value.
pub type FileId = u128;
/// The FileId a related compound operation uses to mean "the previous CREATE's handle".
pub const FILE_ID_RELATED: FileId = u128::MAX;

pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}
fn file_id_at(b: &[u8], at: usize) -> Option<FileId> {
    let s = b.get(at..at.checked_add(16)?)?;
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Some(u128::from_le_bytes(a))
}
/// `len` bytes at `off` (from the start of `msg`), empty when outside.
fn slice_at(msg: &[u8], off: usize, len: usize) -> &[u8] {
    off.checked_add(len)
        .and_then(|end| msg.get(off..end))
        .unwrap_or(&[])
}

/// FileId as the hex `fuid` of smb_files (persistent then volatile, wire order).
pub fn file_id_hex(id: FileId) -> String {
    crate::event::hex(&id.to_le_bytes())
}

/// The SMB2 header (sync or async form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub credit_charge: u16,
    /// NT status (responses); channel sequence in requests, not interpreted.
    pub status: u32,
    pub command: u16,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    pub async_id: Option<u64>,
    /// 0 in async messages (the field is part of AsyncId there).
    pub tree_id: u32,
    pub session_id: u64,
}

impl Header {
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_SERVER_TO_REDIR != 0
    }
    pub fn is_related(&self) -> bool {
        self.flags & FLAG_RELATED != 0
    }
}

pub fn parse_header(msg: &[u8]) -> Option<Header> {
    if msg.get(..4)? != SMB2_MAGIC || msg.len() < SMB2_HEADER_LEN {
        return None;
    }
    let flags = u32_at(msg, 16)?;
    let is_async = flags & FLAG_ASYNC != 0;
    Some(Header {
        credit_charge: u16_at(msg, 6)?,
        status: u32_at(msg, 8)?,
        command: u16_at(msg, 12)?,
        flags,
        next_command: u32_at(msg, 20)?,
        message_id: u64_at(msg, 24)?,
        async_id: if is_async { u64_at(msg, 32) } else { None },
        tree_id: if is_async { 0 } else { u32_at(msg, 36)? },
        session_id: u64_at(msg, 40)?,
    })
}

/// Splits a compound message into its commands (MS-SMB2 3.2.4.1.4): each NextCommand must be
/// at least a header long, 8-byte aligned, and stay inside the message. Returns the commands
/// and whether the chain was cut short by a bad NextCommand. At most `max` commands.
pub fn split_compound(msg: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    let mut rest = msg;
    while out.len() < max {
        let Some(h) = parse_header(rest) else {
            return (out, true);
        };
        let next = h.next_command as usize;
        if next == 0 {
            out.push(rest);
            return (out, false);
        }
        if next < SMB2_HEADER_LEN || next % 8 != 0 || next > rest.len() {
            out.push(rest);
            return (out, true);
        }
        let (this, tail) = rest.split_at(next);
        out.push(this);
        rest = tail;
        if rest.is_empty() {
            return (out, false);
        }
    }
    (out, true)
}

fn body(msg: &[u8], fixed: usize) -> Option<&[u8]> {
    msg.get(SMB2_HEADER_LEN..SMB2_HEADER_LEN.checked_add(fixed)?)
}

/// The dialect name as smb_auth writes it.
pub fn dialect_name(d: u16) -> String {
    match d {
        0x0202 => "SMB 2.0.2".into(),
        0x0210 => "SMB 2.1".into(),
        0x0300 => "SMB 3.0".into(),
        0x0302 => "SMB 3.0.2".into(),
        0x0311 => "SMB 3.1.1".into(),
        0x02FF => "SMB 2.???".into(),
        other => format!("0x{other:04x}"),
    }
}

pub fn cipher_name(c: u16) -> String {
    match c {
        1 => "AES-128-CCM".into(),
        2 => "AES-128-GCM".into(),
        3 => "AES-256-CCM".into(),
        4 => "AES-256-GCM".into(),
        other => format!("0x{other:04x}"),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub dialects: Vec<u16>,
    pub ciphers: Vec<u16>,
}

/// Negotiate contexts start 8-aligned; each is type u16, data length u16, reserved u32, data.
fn negotiate_ciphers(msg: &[u8], offset: usize, count: usize) -> Vec<u16> {
    let mut ciphers = Vec::new();
    let mut at = offset;
    for _ in 0..count.min(32) {
        at = at.saturating_add(7) & !7;
        let (Some(kind), Some(len)) = (u16_at(msg, at), u16_at(msg, at + 2)) else {
            break;
        };
        let data = slice_at(msg, at + 8, len as usize);
        if kind == 2 {
            let n = u16_at(data, 0).unwrap_or(0) as usize;
            for i in 0..n.min(16) {
                if let Some(c) = u16_at(data, 2 + 2 * i) {
                    ciphers.push(c);
                }
            }
        }
        at = at.saturating_add(8).saturating_add(len as usize);
    }
    ciphers
}

pub fn parse_negotiate_request(msg: &[u8]) -> Option<NegotiateRequest> {
    let b = body(msg, 36)?;
    let count = u16_at(b, 2)? as usize;
    let dialects: Vec<u16> = (0..count.min(64))
        .filter_map(|i| u16_at(msg, SMB2_HEADER_LEN + 36 + 2 * i))
        .collect();
    let ciphers = if dialects.contains(&0x0311) {
        negotiate_ciphers(msg, u32_at(b, 28)? as usize, u16_at(b, 32)? as usize)
    } else {
        Vec::new()
    };
    Some(NegotiateRequest { dialects, ciphers })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub dialect: u16,
    pub capabilities: u32,
    /// Chosen cipher from the ENCRYPTION_CAPABILITIES context (3.1.1), if any.
    pub cipher: Option<u16>,
}

pub fn parse_negotiate_response(msg: &[u8]) -> Option<NegotiateResponse> {
    let b = body(msg, 64)?;
    let dialect = u16_at(b, 4)?;
    let ctx_count = u16_at(b, 6)? as usize;
    let capabilities = u32_at(b, 24)?;
    let cipher = if dialect == 0x0311 {
        negotiate_ciphers(msg, u32_at(b, 60)? as usize, ctx_count)
            .first()
            .copied()
    } else if matches!(dialect, 0x0300 | 0x0302) && capabilities & 0x40 != 0 {
        Some(1) // 3.0.x encryption is AES-128-CCM by definition
    } else {
        None
    };
    Some(NegotiateResponse {
        dialect,
        capabilities,
        cipher,
    })
}

/// SESSION_SETUP request's security buffer.
pub fn parse_session_setup_request(msg: &[u8]) -> Option<&[u8]> {
    let b = body(msg, 24)?;
    Some(slice_at(
        msg,
        u16_at(b, 12)? as usize,
        u16_at(b, 14)? as usize,
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSetupResponse<'a> {
    pub session_flags: u16,
    pub security_buffer: &'a [u8],
}
pub const SESSION_FLAG_IS_GUEST: u16 = 1;
pub const SESSION_FLAG_IS_NULL: u16 = 2;
pub const SESSION_FLAG_ENCRYPT_DATA: u16 = 4;

pub fn parse_session_setup_response(msg: &[u8]) -> Option<SessionSetupResponse<'_>> {
    let b = body(msg, 8)?;
    Some(SessionSetupResponse {
        session_flags: u16_at(b, 2)?,
        security_buffer: slice_at(msg, u16_at(b, 4)? as usize, u16_at(b, 6)? as usize),
    })
}

pub const TREE_CONNECT_FLAG_EXTENSION_PRESENT: u16 = 0x0004;

/// TREE_CONNECT request: the UNC path bytes (UTF-16LE). With the 3.1.1 extension present the
/// path offset may count from the extension (right after the fixed part) instead of the header;
/// whichever place holds a `\\` UNC start wins.
pub fn parse_tree_connect_request(msg: &[u8]) -> Option<&[u8]> {
    let b = body(msg, 8)?;
    let (off, len) = (u16_at(b, 4)? as usize, u16_at(b, 6)? as usize);
    let from_header = slice_at(msg, off, len);
    if u16_at(b, 2)? & TREE_CONNECT_FLAG_EXTENSION_PRESENT != 0
        && !from_header.starts_with(b"\\\0\\\0")
    {
        let from_ext = slice_at(msg, (SMB2_HEADER_LEN + 8).saturating_add(off), len);
        if from_ext.starts_with(b"\\\0\\\0") {
            return Some(from_ext);
        }
    }
    Some(from_header)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeConnectResponse {
    pub share_type: u8,
    pub share_flags: u32,
    pub capabilities: u32,
    pub maximal_access: u32,
}
pub const SHARE_FLAG_ENCRYPT_DATA: u32 = 0x0000_8000;

pub fn parse_tree_connect_response(msg: &[u8]) -> Option<TreeConnectResponse> {
    let b = body(msg, 16)?;
    Some(TreeConnectResponse {
        share_type: u8_at(b, 2)?,
        share_flags: u32_at(b, 4)?,
        capabilities: u32_at(b, 8)?,
        maximal_access: u32_at(b, 12)?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateRequest<'a> {
    pub desired_access: u32,
    pub file_attributes: u32,
    pub share_access: u32,
    pub disposition: u32,
    pub options: u32,
    /// UTF-16LE name relative to the share.
    pub name: &'a [u8],
}

pub fn parse_create_request(msg: &[u8]) -> Option<CreateRequest<'_>> {
    let b = body(msg, 56)?;
    Some(CreateRequest {
        desired_access: u32_at(b, 24)?,
        file_attributes: u32_at(b, 28)?,
        share_access: u32_at(b, 32)?,
        disposition: u32_at(b, 36)?,
        options: u32_at(b, 40)?,
        name: slice_at(msg, u16_at(b, 44)? as usize, u16_at(b, 46)? as usize),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateResponse {
    pub create_action: u32,
    /// FILETIMEs (100 ns since 1601).
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    pub change_time: u64,
    pub end_of_file: u64,
    pub file_attributes: u32,
    pub file_id: FileId,
}

pub fn parse_create_response(msg: &[u8]) -> Option<CreateResponse> {
    let b = body(msg, 88)?;
    Some(CreateResponse {
        create_action: u32_at(b, 4)?,
        creation_time: u64_at(b, 8)?,
        last_access_time: u64_at(b, 16)?,
        last_write_time: u64_at(b, 24)?,
        change_time: u64_at(b, 32)?,
        end_of_file: u64_at(b, 48)?,
        file_attributes: u32_at(b, 56)?,
        file_id: file_id_at(b, 64)?,
    })
}

/// CLOSE request: the FileId.
pub fn parse_close_request(msg: &[u8]) -> Option<FileId> {
    file_id_at(body(msg, 24)?, 8)
}

/// WRITE request's fixed part; the data is `data_offset..data_offset+length` of the message and
/// may not be buffered (large writes stream past).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteRequest {
    pub data_offset: u16,
    pub length: u32,
    pub offset: u64,
    pub file_id: FileId,
}

pub fn parse_write_request(msg: &[u8]) -> Option<WriteRequest> {
    let b = body(msg, 48)?;
    Some(WriteRequest {
        data_offset: u16_at(b, 2)?,
        length: u32_at(b, 4)?,
        offset: u64_at(b, 8)?,
        file_id: file_id_at(b, 16)?,
    })
}

impl WriteRequest {
    /// The data bytes present in `msg` (possibly fewer than `length` if the message is cut).
    pub fn data<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        let start = self.data_offset as usize;
        let end = start.saturating_add(self.length as usize).min(msg.len());
        msg.get(start..end).unwrap_or(&[])
    }
}

/// WRITE response: bytes written.
pub fn parse_write_response(msg: &[u8]) -> Option<u32> {
    u32_at(body(msg, 16)?, 4)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub length: u32,
    pub offset: u64,
    pub file_id: FileId,
}

pub fn parse_read_request(msg: &[u8]) -> Option<ReadRequest> {
    let b = body(msg, 48)?;
    Some(ReadRequest {
        length: u32_at(b, 4)?,
        offset: u64_at(b, 8)?,
        file_id: file_id_at(b, 16)?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadResponse {
    pub data_offset: u8,
    pub data_length: u32,
}

pub fn parse_read_response(msg: &[u8]) -> Option<ReadResponse> {
    let b = body(msg, 16)?;
    Some(ReadResponse {
        data_offset: u8_at(b, 2)?,
        data_length: u32_at(b, 4)?,
    })
}

impl ReadResponse {
    pub fn data<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        let start = self.data_offset as usize;
        let end = start
            .saturating_add(self.data_length as usize)
            .min(msg.len());
        msg.get(start..end).unwrap_or(&[])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioctl<'a> {
    pub ctl_code: u32,
    pub file_id: FileId,
    pub input: &'a [u8],
    pub output: &'a [u8],
}

pub fn parse_ioctl_request(msg: &[u8]) -> Option<Ioctl<'_>> {
    let b = body(msg, 56)?;
    Some(Ioctl {
        ctl_code: u32_at(b, 4)?,
        file_id: file_id_at(b, 8)?,
        input: slice_at(msg, u32_at(b, 24)? as usize, u32_at(b, 28)? as usize),
        output: &[],
    })
}

pub fn parse_ioctl_response(msg: &[u8]) -> Option<Ioctl<'_>> {
    let b = body(msg, 48)?;
    Some(Ioctl {
        ctl_code: u32_at(b, 4)?,
        file_id: file_id_at(b, 8)?,
        input: slice_at(msg, u32_at(b, 24)? as usize, u32_at(b, 28)? as usize),
        output: slice_at(msg, u32_at(b, 32)? as usize, u32_at(b, 36)? as usize),
    })
}

pub const INFO_FILE: u8 = 1;
pub const FILE_RENAME_INFORMATION: u8 = 10;
pub const FILE_DISPOSITION_INFORMATION: u8 = 13;
pub const FILE_DISPOSITION_INFORMATION_EX: u8 = 64;

/// What a SET_INFO asks for, where it matters to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetInfoKind<'a> {
    /// Delete disposition set (true) or cleared (false).
    Disposition(bool),
    /// Rename to this UTF-16LE name.
    Rename {
        replace: bool,
        name: &'a [u8],
    },
    Other {
        info_type: u8,
        class: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetInfoRequest<'a> {
    pub file_id: FileId,
    pub kind: SetInfoKind<'a>,
}

pub fn parse_set_info_request(msg: &[u8]) -> Option<SetInfoRequest<'_>> {
    let b = body(msg, 32)?;
    let info_type = u8_at(b, 2)?;
    let class = u8_at(b, 3)?;
    let buf = slice_at(msg, u16_at(b, 8)? as usize, u32_at(b, 4)? as usize);
    let kind = match (info_type, class) {
        (INFO_FILE, FILE_DISPOSITION_INFORMATION) => SetInfoKind::Disposition(u8_at(buf, 0)? != 0),
        (INFO_FILE, FILE_DISPOSITION_INFORMATION_EX) => {
            SetInfoKind::Disposition(u32_at(buf, 0)? & 1 != 0)
        }
        (INFO_FILE, FILE_RENAME_INFORMATION) => {
            // SMB2 form (MS-FSCC 2.4.37.2): replace u8, 7 reserved, root u64, length u32, name.
            let len = u32_at(buf, 16)? as usize;
            SetInfoKind::Rename {
                replace: u8_at(buf, 0)? != 0,
                name: slice_at(buf, 20, len),
            }
        }
        _ => SetInfoKind::Other { info_type, class },
    };
    Some(SetInfoRequest {
        file_id: file_id_at(b, 16)?,
        kind,
    })
}

/// The SMB 3.x transform header (MS-SMB2 2.2.41).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformHeader {
    pub nonce: [u8; 16],
    pub original_size: u32,
    pub flags: u16,
    pub session_id: u64,
}

pub fn parse_transform_header(b: &[u8]) -> Option<TransformHeader> {
    if b.get(..4)? != TRANSFORM_MAGIC || b.len() < TRANSFORM_HEADER_LEN {
        return None;
    }
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(b.get(20..36)?);
    Some(TransformHeader {
        nonce,
        original_size: u32_at(b, 36)?,
        flags: u16_at(b, 42)?,
        session_id: u64_at(b, 44)?,
    })
}

/// The shape of a transform nonce, which tells tools apart (impacket: ASCII letters; Samba: a
/// counter in the low bytes; Windows: random). Looks at the 11 bytes every cipher uses.
pub fn nonce_form(nonce: &[u8; 16]) -> &'static str {
    let n11 = &nonce[..11];
    if n11.iter().all(|b| b.is_ascii_alphabetic()) {
        return "ascii-letters";
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&nonce[..8]);
    let v = u64::from_le_bytes(low);
    if v != 0 && v < (1 << 32) {
        return "counter";
    }
    "random"
}

pub const COMPRESSION_NONE: u16 = 0;
pub const COMPRESSION_PATTERN_V1: u16 = 4;
pub const COMPRESSION_FLAG_CHAINED: u16 = 1;

/// The compression transform header (MS-SMB2 2.2.42), unchained or chained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressionHeader {
    pub original_size: u32,
    pub algorithm: u16,
    pub flags: u16,
    /// Unchained: bytes of uncompressed data right after the header. Chained: the first payload
    /// header's Length.
    pub offset_or_length: u32,
}

impl CompressionHeader {
    pub fn chained(&self) -> bool {
        self.flags & COMPRESSION_FLAG_CHAINED != 0
    }
}

pub fn parse_compression_header(b: &[u8]) -> Option<CompressionHeader> {
    if b.get(..4)? != COMPRESSION_MAGIC || b.len() < COMPRESSION_HEADER_LEN {
        return None;
    }
    Some(CompressionHeader {
        original_size: u32_at(b, 4)?,
        algorithm: u16_at(b, 8)?,
        flags: u16_at(b, 10)?,
        offset_or_length: u32_at(b, 12)?,
    })
}

/// Rebuilds a compressed message when it only uses the algorithms that need no decompressor:
/// unchained NONE, chained NONE and Pattern_V1 payloads. None for LZ77/LZNT1/Huffman/LZ4 (not
/// implemented) or malformed input. The output never exceeds `max_out`.
pub fn decompress_simple(msg: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let h = parse_compression_header(msg)?;
    let cap = (h.original_size as usize).min(max_out);
    if !h.chained() {
        if h.algorithm != COMPRESSION_NONE {
            return None;
        }
        let rest = msg.get(COMPRESSION_HEADER_LEN..)?;
        return Some(rest.get(..rest.len().min(cap))?.to_vec());
    }
    let mut out = Vec::new();
    // Chained: payload headers start at offset 8 (algorithm, flags, length, [original size]).
    let mut at = 8usize;
    while at < msg.len() {
        let alg = u16_at(msg, at)?;
        let len = u32_at(msg, at + 4)? as usize;
        let data = msg.get(at + 8..(at + 8).checked_add(len)?)?;
        match alg {
            COMPRESSION_NONE => out.extend_from_slice(data),
            COMPRESSION_PATTERN_V1 => {
                let byte = u8_at(data, 0)?;
                let reps = u32_at(data, 4)? as usize;
                if out.len().saturating_add(reps) > cap {
                    return None;
                }
                out.resize(out.len() + reps, byte);
            }
            _ => return None,
        }
        if out.len() > cap {
            return None;
        }
        at = at + 8 + len;
    }
    Some(out)
}

/// UTF-16LE bytes to a String (lossy), bounded in characters.
pub fn utf16_name(b: &[u8]) -> String {
    crate::smb::ntlmssp::utf16le(b, MAX_NAME_CHARS)
}

/// Longest file / share name we keep, in characters.
pub const MAX_NAME_CHARS: usize = 1024;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    /// A sync SMB2 header.
    pub(crate) fn header(
        cmd: u16,
        flags: u32,
        status: u32,
        mid: u64,
        tid: u32,
        sid: u64,
    ) -> Vec<u8> {
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(SMB2_MAGIC);
        h.extend_from_slice(&64u16.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&status.to_le_bytes());
        h.extend_from_slice(&cmd.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes());
        h.extend_from_slice(&flags.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&mid.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&tid.to_le_bytes());
        h.extend_from_slice(&sid.to_le_bytes());
        h.extend_from_slice(&[0u8; 16]);
        h
    }

    fn put16(v: &mut [u8], at: usize, x: u16) {
        v[at..at + 2].copy_from_slice(&x.to_le_bytes());
    }
    fn put32(v: &mut [u8], at: usize, x: u32) {
        v[at..at + 4].copy_from_slice(&x.to_le_bytes());
    }
    fn put64(v: &mut [u8], at: usize, x: u64) {
        v[at..at + 8].copy_from_slice(&x.to_le_bytes());
    }

    pub(crate) fn negotiate_request(dialects: &[u16]) -> Vec<u8> {
        let mut m = header(NEGOTIATE, 0, 0, 0, 0, 0);
        let mut b = vec![0u8; 36];
        put16(&mut b, 0, 36);
        put16(&mut b, 2, dialects.len() as u16);
        m.extend(b);
        for d in dialects {
            m.extend_from_slice(&d.to_le_bytes());
        }
        m
    }

    pub(crate) fn negotiate_response(dialect: u16, cipher: Option<u16>) -> Vec<u8> {
        let mut m = header(NEGOTIATE, FLAG_SERVER_TO_REDIR, 0, 0, 0, 0);
        let mut b = vec![0u8; 64];
        put16(&mut b, 0, 65);
        put16(&mut b, 4, dialect);
        put32(&mut b, 24, 0x40);
        if let Some(c) = cipher {
            put16(&mut b, 6, 2);
            put32(&mut b, 60, 128);
            m.extend(b);
            // preauth context (type 1), then encryption context (type 2) after 8-alignment
            let pre = [1u8, 0, 6, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0];
            m.extend_from_slice(&pre);
            while m.len() % 8 != 0 {
                m.push(0);
            }
            m.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 1, 0]);
            m.extend_from_slice(&c.to_le_bytes());
        } else {
            m.extend(b);
        }
        m
    }

    pub(crate) fn session_setup_request(mid: u64, sid: u64, blob: &[u8]) -> Vec<u8> {
        let mut m = header(SESSION_SETUP, 0, 0, mid, 0, sid);
        let mut b = vec![0u8; 24];
        put16(&mut b, 0, 25);
        put16(&mut b, 12, 88);
        put16(&mut b, 14, blob.len() as u16);
        m.extend(b);
        m.extend_from_slice(blob);
        m
    }

    pub(crate) fn session_setup_response(mid: u64, sid: u64, status: u32, flags: u16) -> Vec<u8> {
        let mut m = header(SESSION_SETUP, FLAG_SERVER_TO_REDIR, status, mid, 0, sid);
        let mut b = vec![0u8; 8];
        put16(&mut b, 0, 9);
        put16(&mut b, 2, flags);
        put16(&mut b, 4, 72);
        m.extend(b);
        m
    }

    pub(crate) fn tree_connect_request(mid: u64, sid: u64, path: &str) -> Vec<u8> {
        let p = utf16(path);
        let mut m = header(TREE_CONNECT, 0, 0, mid, 0, sid);
        let mut b = vec![0u8; 8];
        put16(&mut b, 0, 9);
        put16(&mut b, 4, 72);
        put16(&mut b, 6, p.len() as u16);
        m.extend(b);
        m.extend(p);
        m
    }

    pub(crate) fn tree_connect_response(
        mid: u64,
        sid: u64,
        tid: u32,
        share_type: u8,
        status: u32,
    ) -> Vec<u8> {
        let mut m = header(TREE_CONNECT, FLAG_SERVER_TO_REDIR, status, mid, tid, sid);
        let mut b = vec![0u8; 16];
        put16(&mut b, 0, 16);
        b[2] = share_type;
        put32(&mut b, 12, 0x001f_01ff);
        m.extend(b);
        m
    }

    pub(crate) fn create_request(
        mid: u64,
        sid: u64,
        tid: u32,
        name: &str,
        options: u32,
        flags: u32,
    ) -> Vec<u8> {
        let n = utf16(name);
        let mut m = header(CREATE, flags, 0, mid, tid, sid);
        let mut b = vec![0u8; 56];
        put16(&mut b, 0, 57);
        put32(&mut b, 24, 0x0012_019f);
        put32(&mut b, 36, 5); // FILE_OVERWRITE_IF
        put32(&mut b, 40, options);
        put16(&mut b, 44, 120);
        put16(&mut b, 46, n.len() as u16);
        m.extend(b);
        m.extend(n);
        while m.len() % 8 != 0 {
            m.push(0);
        }
        m
    }

    pub(crate) fn create_response(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        status: u32,
        flags: u32,
    ) -> Vec<u8> {
        let mut m = header(CREATE, FLAG_SERVER_TO_REDIR | flags, status, mid, tid, sid);
        let mut b = vec![0u8; 88];
        put16(&mut b, 0, 89);
        put32(&mut b, 4, 2);
        put64(&mut b, 48, 0);
        b[64..80].copy_from_slice(&fid.to_le_bytes());
        m.extend(b);
        m
    }

    pub(crate) fn write_request(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        offset: u64,
        data: &[u8],
        flags: u32,
    ) -> Vec<u8> {
        let mut m = header(WRITE, flags, 0, mid, tid, sid);
        let mut b = vec![0u8; 48];
        put16(&mut b, 0, 49);
        put16(&mut b, 2, 112);
        put32(&mut b, 4, data.len() as u32);
        put64(&mut b, 8, offset);
        b[16..32].copy_from_slice(&fid.to_le_bytes());
        m.extend(b);
        m.extend_from_slice(data);
        m
    }

    pub(crate) fn simple_response(
        cmd: u16,
        mid: u64,
        sid: u64,
        tid: u32,
        status: u32,
        flags: u32,
        body_len: usize,
    ) -> Vec<u8> {
        let mut m = header(cmd, FLAG_SERVER_TO_REDIR | flags, status, mid, tid, sid);
        let mut b = vec![0u8; body_len];
        if body_len >= 2 {
            put16(&mut b, 0, (body_len as u16) | 1);
        }
        m.extend(b);
        m
    }

    pub(crate) fn read_request(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        offset: u64,
        len: u32,
    ) -> Vec<u8> {
        let mut m = header(READ, 0, 0, mid, tid, sid);
        let mut b = vec![0u8; 49];
        put16(&mut b, 0, 49);
        put32(&mut b, 4, len);
        put64(&mut b, 8, offset);
        b[16..32].copy_from_slice(&fid.to_le_bytes());
        m.extend(b);
        m
    }

    pub(crate) fn read_response(mid: u64, sid: u64, tid: u32, data: &[u8]) -> Vec<u8> {
        let mut m = header(READ, FLAG_SERVER_TO_REDIR, 0, mid, tid, sid);
        let mut b = vec![0u8; 16];
        put16(&mut b, 0, 17);
        b[2] = 80;
        put32(&mut b, 4, data.len() as u32);
        m.extend(b);
        m.extend_from_slice(data);
        m
    }

    pub(crate) fn ioctl_request(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        input: &[u8],
    ) -> Vec<u8> {
        let mut m = header(IOCTL, 0, 0, mid, tid, sid);
        let mut b = vec![0u8; 56];
        put16(&mut b, 0, 57);
        put32(&mut b, 4, FSCTL_PIPE_TRANSCEIVE);
        b[8..24].copy_from_slice(&fid.to_le_bytes());
        put32(&mut b, 24, 120);
        put32(&mut b, 28, input.len() as u32);
        put32(&mut b, 44, 4280);
        put32(&mut b, 48, 1);
        m.extend(b);
        m.extend_from_slice(input);
        m
    }

    pub(crate) fn ioctl_response(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        output: &[u8],
        status: u32,
    ) -> Vec<u8> {
        let mut m = header(IOCTL, FLAG_SERVER_TO_REDIR, status, mid, tid, sid);
        let mut b = vec![0u8; 48];
        put16(&mut b, 0, 49);
        put32(&mut b, 4, FSCTL_PIPE_TRANSCEIVE);
        b[8..24].copy_from_slice(&fid.to_le_bytes());
        put32(&mut b, 24, 112);
        put32(&mut b, 32, 112);
        put32(&mut b, 36, output.len() as u32);
        m.extend(b);
        m.extend_from_slice(output);
        m
    }

    pub(crate) fn close_request(mid: u64, sid: u64, tid: u32, fid: FileId, flags: u32) -> Vec<u8> {
        let mut m = header(CLOSE, flags, 0, mid, tid, sid);
        let mut b = vec![0u8; 24];
        put16(&mut b, 0, 24);
        b[8..24].copy_from_slice(&fid.to_le_bytes());
        m.extend(b);
        m
    }

    pub(crate) fn set_info_request(
        mid: u64,
        sid: u64,
        tid: u32,
        fid: FileId,
        class: u8,
        buf: &[u8],
    ) -> Vec<u8> {
        let mut m = header(SET_INFO, 0, 0, mid, tid, sid);
        let mut b = vec![0u8; 32];
        put16(&mut b, 0, 33);
        b[2] = INFO_FILE;
        b[3] = class;
        put32(&mut b, 4, buf.len() as u32);
        put16(&mut b, 8, 96);
        b[16..32].copy_from_slice(&fid.to_le_bytes());
        m.extend(b);
        m.extend_from_slice(buf);
        m
    }

    pub(crate) fn rename_info(name: &str) -> Vec<u8> {
        let n = utf16(name);
        let mut b = vec![0u8; 20];
        put32(&mut b, 16, n.len() as u32);
        b.extend(n);
        b
    }

    /// Joins commands into one compound message, padding each to 8 and setting NextCommand.
    pub(crate) fn compound(cmds: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, c) in cmds.iter().enumerate() {
            let mut c = c.clone();
            if i + 1 < cmds.len() {
                while c.len() % 8 != 0 {
                    c.push(0);
                }
                let n = c.len() as u32;
                c[20..24].copy_from_slice(&n.to_le_bytes());
            }
            out.extend(c);
        }
        out
    }

    #[test]
    fn header_sync_and_async() {
        let m = header(CREATE, FLAG_RELATED, 0xC000_0022, 7, 3, 0x1122);
        let h = parse_header(&m).unwrap();
        assert_eq!(
            (h.command, h.message_id, h.tree_id, h.session_id),
            (CREATE, 7, 3, 0x1122)
        );
        assert!(h.is_related() && !h.is_response());
        assert_eq!(h.status, 0xC000_0022);
        let mut a = header(IOCTL, FLAG_SERVER_TO_REDIR | FLAG_ASYNC, 0x103, 9, 0, 1);
        a[32..40].copy_from_slice(&0xABCDu64.to_le_bytes());
        let h = parse_header(&a).unwrap();
        assert_eq!((h.async_id, h.tree_id), (Some(0xABCD), 0));
        assert!(parse_header(&m[..63]).is_none());
        assert!(parse_header(b"\xffSMB").is_none());
    }

    #[test]
    fn negotiate_dialect_and_cipher() {
        let r = parse_negotiate_request(&negotiate_request(&[0x202, 0x210, 0x300, 0x302, 0x311]))
            .unwrap();
        assert_eq!(r.dialects, vec![0x202, 0x210, 0x300, 0x302, 0x311]);
        let r = parse_negotiate_response(&negotiate_response(0x311, Some(2))).unwrap();
        assert_eq!((r.dialect, r.cipher), (0x311, Some(2)));
        assert_eq!(cipher_name(r.cipher.unwrap()), "AES-128-GCM");
        assert_eq!(dialect_name(r.dialect), "SMB 3.1.1");
        let r = parse_negotiate_response(&negotiate_response(0x302, None)).unwrap();
        assert_eq!(r.cipher, Some(1));
    }

    #[test]
    fn session_setup_blob() {
        let blob = crate::smb::ntlmssp::tests::build_auth("admin", "LAB", "WS", true, 24);
        let m = session_setup_request(2, 5, &blob);
        assert_eq!(parse_session_setup_request(&m).unwrap(), &blob[..]);
        let resp = session_setup_response(2, 5, 0, SESSION_FLAG_ENCRYPT_DATA);
        let r = parse_session_setup_response(&resp).unwrap();
        assert_eq!(r.session_flags, SESSION_FLAG_ENCRYPT_DATA);
    }

    #[test]
    fn tree_connect() {
        let m = tree_connect_request(3, 5, "\\\\10.0.0.1\\ADMIN$");
        assert_eq!(
            utf16_name(parse_tree_connect_request(&m).unwrap()),
            "\\\\10.0.0.1\\ADMIN$"
        );
        // extension present, path offset counted from the extension
        let mut e = header(TREE_CONNECT, 0, 0, 3, 0, 5);
        let p = utf16("\\\\srv\\C$");
        let mut b = vec![0u8; 8];
        put16(&mut b, 0, 9);
        put16(&mut b, 2, TREE_CONNECT_FLAG_EXTENSION_PRESENT);
        put16(&mut b, 4, 16);
        put16(&mut b, 6, p.len() as u16);
        e.extend(b);
        e.extend(vec![0u8; 16]);
        e.extend(&p);
        assert_eq!(
            utf16_name(parse_tree_connect_request(&e).unwrap()),
            "\\\\srv\\C$"
        );
        let r = parse_tree_connect_response(&tree_connect_response(3, 5, 9, SHARE_TYPE_PIPE, 0))
            .unwrap();
        assert_eq!(r.share_type, SHARE_TYPE_PIPE);
    }

    #[test]
    fn create_request_and_response() {
        let m = create_request(4, 5, 9, "evil.exe", FILE_DELETE_ON_CLOSE, 0);
        let c = parse_create_request(&m).unwrap();
        assert_eq!(utf16_name(c.name), "evil.exe");
        assert_eq!(
            (c.disposition, c.options, c.desired_access),
            (5, FILE_DELETE_ON_CLOSE, 0x0012_019f)
        );
        let fid: FileId = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;
        let r = parse_create_response(&create_response(4, 5, 9, fid, 0, 0)).unwrap();
        assert_eq!(r.file_id, fid);
        assert_eq!(r.create_action, 2);
        assert_eq!(file_id_hex(fid).len(), 32);
        // a name offset pointing outside gives an empty name, not a panic
        let mut bad = m.clone();
        bad[64 + 44..64 + 46].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(parse_create_request(&bad).unwrap().name.is_empty());
    }

    #[test]
    fn write_read_ioctl_close() {
        let w = write_request(5, 5, 9, 42, 4096, b"MZdata", 0);
        let p = parse_write_request(&w).unwrap();
        assert_eq!(
            (p.offset, p.length, p.file_id, p.data(&w)),
            (4096, 6, 42, &b"MZdata"[..])
        );
        assert_eq!(p.data(&w[..114]), b"MZ");
        let r = parse_read_request(&read_request(6, 5, 9, 42, 0, 1024)).unwrap();
        assert_eq!((r.length, r.offset, r.file_id), (1024, 0, 42));
        let rr = read_response(6, 5, 9, b"\x05\x00\x0c");
        assert_eq!(parse_read_response(&rr).unwrap().data(&rr), b"\x05\x00\x0c");
        let i = ioctl_request(7, 5, 9, 42, b"\x05\x00\x00\x03");
        let p = parse_ioctl_request(&i).unwrap();
        assert_eq!(
            (p.ctl_code, p.file_id, p.input),
            (FSCTL_PIPE_TRANSCEIVE, 42, &b"\x05\x00\x00\x03"[..])
        );
        let o = ioctl_response(7, 5, 9, 42, b"\x05\x00\x02\x03", 0);
        assert_eq!(
            parse_ioctl_response(&o).unwrap().output,
            b"\x05\x00\x02\x03"
        );
        assert_eq!(
            parse_close_request(&close_request(8, 5, 9, 42, 0)),
            Some(42)
        );
    }

    #[test]
    fn set_info_rename_and_delete() {
        let m = set_info_request(
            9,
            5,
            9,
            42,
            FILE_RENAME_INFORMATION,
            &rename_info("new.exe"),
        );
        match parse_set_info_request(&m).unwrap().kind {
            SetInfoKind::Rename { name, .. } => assert_eq!(utf16_name(name), "new.exe"),
            other => panic!("{other:?}"),
        }
        let m = set_info_request(9, 5, 9, 42, FILE_DISPOSITION_INFORMATION, &[1]);
        assert_eq!(
            parse_set_info_request(&m).unwrap().kind,
            SetInfoKind::Disposition(true)
        );
        let m = set_info_request(9, 5, 9, 42, FILE_DISPOSITION_INFORMATION_EX, &[0, 0, 0, 0]);
        assert_eq!(
            parse_set_info_request(&m).unwrap().kind,
            SetInfoKind::Disposition(false)
        );
    }

    #[test]
    fn compound_bounds() {
        let a = create_request(1, 5, 9, "a.txt", 0, 0);
        let b = write_request(2, 5, 9, FILE_ID_RELATED, 0, b"hi", FLAG_RELATED);
        let c = close_request(3, 5, 9, FILE_ID_RELATED, FLAG_RELATED);
        let m = compound(&[a, b, c]);
        let (cmds, bad) = split_compound(&m, 16);
        assert!(!bad);
        assert_eq!(cmds.len(), 3);
        assert_eq!(parse_header(cmds[1]).unwrap().command, WRITE);
        // NextCommand not aligned, too small, or past the end: chain stops, flagged
        for next in [70u32, 8, 0x10000] {
            let mut m2 = m.clone();
            m2[20..24].copy_from_slice(&next.to_le_bytes());
            let (cmds, bad) = split_compound(&m2, 16);
            assert!(bad && cmds.len() == 1, "next={next}");
        }
        let (cmds, bad) = split_compound(&m, 2);
        assert!(bad && cmds.len() == 2);
    }

    #[test]
    fn transform_and_nonce_forms() {
        let mut t = vec![0u8; 52];
        t[..4].copy_from_slice(TRANSFORM_MAGIC);
        t[20..31].copy_from_slice(b"abcdefghIJK");
        t[36..40].copy_from_slice(&200u32.to_le_bytes());
        t[42..44].copy_from_slice(&1u16.to_le_bytes());
        t[44..52].copy_from_slice(&0x55u64.to_le_bytes());
        let h = parse_transform_header(&t).unwrap();
        assert_eq!((h.original_size, h.session_id), (200, 0x55));
        assert_eq!(nonce_form(&h.nonce), "ascii-letters");
        let mut n = [0u8; 16];
        n[0] = 7;
        n[9] = 0x99;
        assert_eq!(nonce_form(&n), "counter");
        assert_eq!(nonce_form(&[0x8f; 16]), "random");
        assert!(parse_transform_header(&t[..51]).is_none());
    }

    #[test]
    fn compression_simple_forms() {
        // unchained NONE
        let mut m = COMPRESSION_MAGIC.to_vec();
        m.extend_from_slice(&4u32.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u16.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(b"abcd");
        assert_eq!(decompress_simple(&m, 100).unwrap(), b"abcd");
        // chained: NONE "xy" then Pattern_V1 of 5 x 'z'
        let mut c = COMPRESSION_MAGIC.to_vec();
        c.extend_from_slice(&7u32.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&1u16.to_le_bytes());
        c.extend_from_slice(&2u32.to_le_bytes());
        c.extend_from_slice(b"xy");
        c.extend_from_slice(&4u16.to_le_bytes());
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&8u32.to_le_bytes());
        c.extend_from_slice(&[b'z', 0, 0, 0, 5, 0, 0, 0]);
        let h = parse_compression_header(&c).unwrap();
        assert!(h.chained());
        assert_eq!(decompress_simple(&c, 100).unwrap(), b"xyzzzzz");
        // pattern beyond the cap is refused
        assert!(decompress_simple(&c, 3).is_none());
        // LZ77 is not implemented
        let mut l = m.clone();
        l[8] = 2;
        assert!(decompress_simple(&l, 100).is_none());
    }
}
