//! SMB2/3 records (MS-SMB2 2.2) as nom parsers over borrowed bytes: the one SMB2 parser, shared by
//! the state machine (logging, files, pipes) and by SMB3 key derivation and decryption
//! ([`crate::smb::crypto`]).
//!
//! Every message parser takes one SMB2 *message* (`msg`: the 64-byte header followed by the body,
//! bounded to this command inside a compound) because SMB2 offsets count from the start of the
//! header, and returns what follows its fixed part. The fixed part must be present; variable
//! parts (names, buffers) are resolved with checked arithmetic and come back empty when a hostile
//! offset points outside the message, so a lie loses only that field.
//!
//! StructureSize is read but not enforced: a server that accepts a wrong one would otherwise
//! carry commands the sensor drops, and the body length check already keeps every read inside.

use crate::wire::num::{le_u128, le_u16, le_u32, le_u64, le_u8};
use crate::wire::{buffer_or_empty, clipped, parsed, utf16le};
use nom::bytes::complete::{tag, take};
use nom::multi::many_m_n;
use nom::sequence::preceded;
use nom::{IResult, Parser};

pub const SMB2_MAGIC: &[u8; 4] = b"\xfeSMB";
pub const TRANSFORM_MAGIC: &[u8; 4] = b"\xfdSMB";
pub const COMPRESSION_MAGIC: &[u8; 4] = b"\xfcSMB";
pub const SMB2_HEADER_LEN: usize = 64;
pub const TRANSFORM_HEADER_LEN: usize = 52;

pub const FLAG_SERVER_TO_REDIR: u32 = 0x0000_0001;
pub const FLAG_ASYNC: u32 = 0x0000_0002;
pub const FLAG_RELATED: u32 = 0x0000_0004;

pub const STATUS_SUCCESS: u32 = 0x0000_0000;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

/// The SMB2 commands (MS-SMB2 2.2.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Negotiate,
    SessionSetup,
    Logoff,
    TreeConnect,
    TreeDisconnect,
    Create,
    Close,
    Flush,
    Read,
    Write,
    Lock,
    Ioctl,
    Cancel,
    Echo,
    QueryDirectory,
    ChangeNotify,
    QueryInfo,
    SetInfo,
    OplockBreak,
    ServerToClientNotification,
    Unknown(u16),
}

const COMMANDS: [Command; 20] = [
    Command::Negotiate,
    Command::SessionSetup,
    Command::Logoff,
    Command::TreeConnect,
    Command::TreeDisconnect,
    Command::Create,
    Command::Close,
    Command::Flush,
    Command::Read,
    Command::Write,
    Command::Lock,
    Command::Ioctl,
    Command::Cancel,
    Command::Echo,
    Command::QueryDirectory,
    Command::ChangeNotify,
    Command::QueryInfo,
    Command::SetInfo,
    Command::OplockBreak,
    Command::ServerToClientNotification,
];

impl Command {
    pub fn from_code(code: u16) -> Command {
        COMMANDS
            .get(usize::from(code))
            .copied()
            .unwrap_or(Command::Unknown(code))
    }
    pub fn code(self) -> u16 {
        match self {
            Command::Unknown(c) => c,
            known => COMMANDS.iter().position(|c| *c == known).unwrap_or(0) as u16,
        }
    }
}

pub const NEGOTIATE: Command = Command::Negotiate;
pub const SESSION_SETUP: Command = Command::SessionSetup;
pub const LOGOFF: Command = Command::Logoff;
pub const TREE_CONNECT: Command = Command::TreeConnect;
pub const TREE_DISCONNECT: Command = Command::TreeDisconnect;
pub const CREATE: Command = Command::Create;
pub const CLOSE: Command = Command::Close;
pub const READ: Command = Command::Read;
pub const WRITE: Command = Command::Write;
pub const IOCTL: Command = Command::Ioctl;
pub const SET_INFO: Command = Command::SetInfo;

pub const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_C017;
pub const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
pub const SHARE_TYPE_DISK: u8 = 1;
pub const SHARE_TYPE_PIPE: u8 = 2;
pub const SHARE_TYPE_PRINT: u8 = 3;

/// A share's type (SMB2 ShareType; SMB1 names the service instead, mapped to the same values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareType {
    Disk,
    Pipe,
    Print,
    Unknown,
}

impl ShareType {
    pub fn from_wire(v: u8) -> ShareType {
        match v {
            SHARE_TYPE_DISK => ShareType::Disk,
            SHARE_TYPE_PIPE => ShareType::Pipe,
            SHARE_TYPE_PRINT => ShareType::Print,
            _ => ShareType::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ShareType::Disk => "DISK",
            ShareType::Pipe => "PIPE",
            ShareType::Print => "PRINT",
            ShareType::Unknown => "UNKNOWN",
        }
    }
}

/// Fixed part of a WRITE request (header + 48 bytes before the buffer).
pub const WRITE_REQUEST_FIXED: usize = SMB2_HEADER_LEN + 48;
/// Fixed part of a READ response (header + 16 bytes before the buffer).
pub const READ_RESPONSE_FIXED: usize = SMB2_HEADER_LEN + 16;

/// A FileId (persistent + volatile) as one value.
pub type FileId = u128;
/// The FileId a related compound operation uses to mean "the previous CREATE's handle".
pub const FILE_ID_RELATED: FileId = u128::MAX;

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
    pub command: Command,
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

/// The 64-byte header; the rest is the body. Hand-written from fixed offsets of one 64-byte array
/// (one bounds check) because it is on the path of every SMB2 message, often two or three times:
/// the nom form ([`parse_header_nom`], the definition this must match) cost 150 instructions a
/// call with nom's integer parsers and 100 with [`crate::wire::num`]'s, 23.5 M on the 300 MB
/// bench slice (cachegrind), against ~25 for this one (docs/PERF.md, "Session 6").
pub fn parse_header(msg: &[u8]) -> IResult<&[u8], Header> {
    let r = header_by_hand(msg);
    debug_assert_eq!(r.clone().ok(), parse_header_nom(msg).ok());
    r
}

fn header_by_hand(msg: &[u8]) -> IResult<&[u8], Header> {
    let Some((h, rest)) = msg.split_first_chunk::<SMB2_HEADER_LEN>() else {
        return Err(nom::Err::Error(nom::error::make_error(
            msg,
            nom::error::ErrorKind::Eof,
        )));
    };
    if h[..4] != SMB2_MAGIC[..] {
        return Err(nom::Err::Error(nom::error::make_error(
            msg,
            nom::error::ErrorKind::Tag,
        )));
    }
    let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
    let flags = u32_at(16);
    let is_async = flags & FLAG_ASYNC != 0;
    Ok((
        rest,
        Header {
            credit_charge: u16_at(6),
            status: u32_at(8),
            command: Command::from_code(u16_at(12)),
            flags,
            next_command: u32_at(20),
            message_id: u64_at(24),
            async_id: is_async.then(|| u64_at(32)),
            // Sync: Reserved (4) then TreeId (4).
            tree_id: if is_async { 0 } else { u32_at(36) },
            session_id: u64_at(40),
        },
    ))
}

/// The 64-byte header; the rest is the body: the definition. [`parse_header`] reads the same
/// fields by hand, and must agree with this on every input (checked by a debug assertion on every
/// header the tests and the fuzz targets parse, and by a test on random bytes).
pub fn parse_header_nom(msg: &[u8]) -> IResult<&[u8], Header> {
    let (i, (_, _structure_size, credit_charge, status, command, _credits, flags)) = (
        tag(&SMB2_MAGIC[..]),
        le_u16,
        le_u16,
        le_u32,
        le_u16,
        le_u16,
        le_u32,
    )
        .parse(msg)?;
    let (i, (next_command, message_id, async_or_tree, session_id, _signature)) =
        (le_u32, le_u64, le_u64, le_u64, take(16usize)).parse(i)?;
    let is_async = flags & FLAG_ASYNC != 0;
    Ok((
        i,
        Header {
            credit_charge,
            status,
            command: Command::from_code(command),
            flags,
            next_command,
            message_id,
            async_id: is_async.then_some(async_or_tree),
            // Sync: Reserved (4) then TreeId (4).
            tree_id: if is_async {
                0
            } else {
                (async_or_tree >> 32) as u32
            },
            session_id,
        },
    ))
}

/// Splits a compound message into its commands (MS-SMB2 3.2.4.1.4): each NextCommand must be
/// at least a header long, 8-byte aligned, and stay inside the message. Returns the commands
/// and whether the chain was cut short by a bad NextCommand. At most `max` commands.
pub fn split_compound(msg: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    let mut rest = msg;
    while out.len() < max {
        let Some(h) = parsed(parse_header(rest)) else {
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

/// The fixed part of a body: `fixed` bytes after the header (they must be present).
fn body(msg: &[u8], fixed: usize) -> IResult<&[u8], &[u8]> {
    let (i, _) = take(SMB2_HEADER_LEN)(msg)?;
    take(fixed)(i)
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

pub const DIALECT_300: u16 = 0x0300;
pub const DIALECT_302: u16 = 0x0302;
pub const DIALECT_311: u16 = 0x0311;
/// SMB2_GLOBAL_CAP_ENCRYPTION: a 3.0.x server that can encrypt.
pub const GLOBAL_CAP_ENCRYPTION: u32 = 0x0000_0040;
/// SMB2_ENCRYPTION_CAPABILITIES negotiate context.
pub const NEGOTIATE_CONTEXT_ENCRYPTION: u16 = 0x0002;
/// The cipher 3.0 and 3.0.2 imply (they have no negotiate contexts).
pub const CIPHER_AES_128_CCM: u16 = 1;
/// At most this many negotiate contexts are walked (real peers send fewer than ten).
pub const MAX_NEGOTIATE_CONTEXTS: usize = 32;
/// At most this many dialects or ciphers are read from one list.
pub const MAX_NEGOTIATE_LIST: usize = 64;

/// One negotiate context (MS-SMB2 2.2.3.1): type, data length, 4 reserved bytes, data.
fn negotiate_context(i: &[u8]) -> IResult<&[u8], (u16, &[u8])> {
    let (i, (kind, len, _reserved)) = (le_u16, le_u16, le_u32).parse(i)?;
    let (i, data) = take(len)(i)?;
    Ok((i, (kind, data)))
}

/// Up to `count` u16 values, as many as are present (at most [`MAX_NEGOTIATE_LIST`]).
fn u16s(i: &[u8], count: u16) -> IResult<&[u8], Vec<u16>> {
    many_m_n(0, usize::from(count).min(MAX_NEGOTIATE_LIST), le_u16).parse(i)
}

/// A list of u16 values preceded by its u16 count.
fn u16_list(i: &[u8]) -> IResult<&[u8], Vec<u16>> {
    let (i, count) = le_u16(i)?;
    u16s(i, count)
}

/// The ciphers of the ENCRYPTION_CAPABILITIES context among `count` contexts starting at
/// `offset` (from the header). Contexts are 8-byte aligned from the header start; a context cut
/// short ends the walk.
fn negotiate_ciphers(msg: &[u8], offset: usize, count: usize) -> Vec<u16> {
    let mut at = offset;
    for _ in 0..count.min(MAX_NEGOTIATE_CONTEXTS) {
        at = at.saturating_add(7) & !7;
        let Some(Ok((rest, (kind, data)))) = msg.get(at..).map(negotiate_context) else {
            break;
        };
        if kind == NEGOTIATE_CONTEXT_ENCRYPTION {
            return parsed(u16_list(data)).unwrap_or_default();
        }
        at = msg.len() - rest.len();
    }
    Vec::new()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateRequest {
    pub dialects: Vec<u16>,
    /// Offered ciphers (3.1.1 ENCRYPTION_CAPABILITIES context).
    pub ciphers: Vec<u16>,
}

pub fn parse_negotiate_request(msg: &[u8]) -> IResult<&[u8], NegotiateRequest> {
    let (_, b) = body(msg, 36)?;
    let (_, (_size, count, _security_mode, _reserved, _caps, _guid, ctx_offset, ctx_count)) = (
        le_u16,
        le_u16,
        le_u16,
        le_u16,
        le_u32,
        take(16usize),
        le_u32,
        le_u16,
    )
        .parse(b)?;
    let (rest, dialects) = preceded(take(SMB2_HEADER_LEN + 36), |i| u16s(i, count)).parse(msg)?;
    let ciphers = if dialects.contains(&DIALECT_311) {
        negotiate_ciphers(msg, ctx_offset as usize, usize::from(ctx_count))
    } else {
        Vec::new()
    };
    Ok((rest, NegotiateRequest { dialects, ciphers }))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub dialect: u16,
    pub capabilities: u32,
    /// The cipher named in the ENCRYPTION_CAPABILITIES context (3.1.1 only), if any.
    pub cipher_context: Option<u16>,
}

impl NegotiateResponse {
    /// The cipher the connection encrypts with, if it can: 3.1.1 names it in a context; 3.0 and
    /// 3.0.2 imply AES-128-CCM when the server has SMB2_GLOBAL_CAP_ENCRYPTION (a 3.0.x server
    /// without it never encrypts); 2.x has no encryption.
    pub fn cipher(&self) -> Option<u16> {
        match self.dialect {
            DIALECT_311 => self.cipher_context,
            DIALECT_300 | DIALECT_302 if self.capabilities & GLOBAL_CAP_ENCRYPTION != 0 => {
                Some(CIPHER_AES_128_CCM)
            }
            _ => None,
        }
    }
}

pub fn parse_negotiate_response(msg: &[u8]) -> IResult<&[u8], NegotiateResponse> {
    let (rest, b) = body(msg, 64)?;
    let (b, (_size, _security_mode, dialect, ctx_count, _guid, capabilities)) =
        (le_u16, le_u16, le_u16, le_u16, take(16usize), le_u32).parse(b)?;
    // MaxTransact/Read/WriteSize, SystemTime, ServerStartTime, SecurityBuffer offset and length.
    let (_, (_, ctx_offset)) = (take(32usize), le_u32).parse(b)?;
    let cipher_context = if dialect == DIALECT_311 {
        negotiate_ciphers(msg, ctx_offset as usize, usize::from(ctx_count))
            .first()
            .copied()
    } else {
        None
    };
    Ok((
        rest,
        NegotiateResponse {
            dialect,
            capabilities,
            cipher_context,
        },
    ))
}

/// SESSION_SETUP request Flags: binds an existing session to a new channel (multichannel).
pub const SESSION_FLAG_BINDING: u8 = 0x01;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSetupRequest<'a> {
    pub flags: u8,
    pub security_buffer: &'a [u8],
}

pub fn parse_session_setup_request(msg: &[u8]) -> IResult<&[u8], SessionSetupRequest<'_>> {
    let (rest, b) = body(msg, 24)?;
    let (_, (_size, flags, _mode, _caps, _channel, off, len)) =
        (le_u16, le_u8, le_u8, le_u32, le_u32, le_u16, le_u16).parse(b)?;
    Ok((
        rest,
        SessionSetupRequest {
            flags,
            security_buffer: buffer_or_empty(msg, off.into(), len.into()),
        },
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

pub fn parse_session_setup_response(msg: &[u8]) -> IResult<&[u8], SessionSetupResponse<'_>> {
    let (rest, b) = body(msg, 8)?;
    let (_, (_size, session_flags, off, len)) = (le_u16, le_u16, le_u16, le_u16).parse(b)?;
    Ok((
        rest,
        SessionSetupResponse {
            session_flags,
            security_buffer: buffer_or_empty(msg, off.into(), len.into()),
        },
    ))
}

pub const TREE_CONNECT_FLAG_EXTENSION_PRESENT: u16 = 0x0004;

/// TREE_CONNECT request: the UNC path bytes (UTF-16LE). With the 3.1.1 extension present the
/// path offset may count from the extension (right after the fixed part) instead of the header;
/// whichever place holds a `\\` UNC start wins.
pub fn parse_tree_connect_request(msg: &[u8]) -> IResult<&[u8], &[u8]> {
    let (rest, b) = body(msg, 8)?;
    let (_, (_size, flags, off, len)) = (le_u16, le_u16, le_u16, le_u16).parse(b)?;
    let (off, len) = (usize::from(off), usize::from(len));
    let from_header = buffer_or_empty(msg, off, len);
    if flags & TREE_CONNECT_FLAG_EXTENSION_PRESENT != 0 && !from_header.starts_with(b"\\\0\\\0") {
        let from_ext = buffer_or_empty(msg, (SMB2_HEADER_LEN + 8).saturating_add(off), len);
        if from_ext.starts_with(b"\\\0\\\0") {
            return Ok((rest, from_ext));
        }
    }
    Ok((rest, from_header))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeConnectResponse {
    pub share_type: ShareType,
    pub share_flags: u32,
    pub capabilities: u32,
    pub maximal_access: u32,
}
pub const SHARE_FLAG_ENCRYPT_DATA: u32 = 0x0000_8000;

pub fn parse_tree_connect_response(msg: &[u8]) -> IResult<&[u8], TreeConnectResponse> {
    let (rest, b) = body(msg, 16)?;
    let (_, (_size, share_type, _reserved, share_flags, capabilities, maximal_access)) =
        (le_u16, le_u8, le_u8, le_u32, le_u32, le_u32).parse(b)?;
    Ok((
        rest,
        TreeConnectResponse {
            share_type: ShareType::from_wire(share_type),
            share_flags,
            capabilities,
            maximal_access,
        },
    ))
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

pub fn parse_create_request(msg: &[u8]) -> IResult<&[u8], CreateRequest<'_>> {
    let (rest, b) = body(msg, 56)?;
    let (b, _size_oplock_impersonation_flags_reserved) = take(24usize)(b)?;
    let (_, (desired_access, file_attributes, share_access, disposition, options, off, len)) =
        (le_u32, le_u32, le_u32, le_u32, le_u32, le_u16, le_u16).parse(b)?;
    Ok((
        rest,
        CreateRequest {
            desired_access,
            file_attributes,
            share_access,
            disposition,
            options,
            name: buffer_or_empty(msg, off.into(), len.into()),
        },
    ))
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

pub fn parse_create_response(msg: &[u8]) -> IResult<&[u8], CreateResponse> {
    let (rest, b) = body(msg, 88)?;
    let (b, (_size, _oplock, _flags, create_action)) = (le_u16, le_u8, le_u8, le_u32).parse(b)?;
    let (b, times) = (le_u64, le_u64, le_u64, le_u64, le_u64, le_u64).parse(b)?;
    let (creation_time, last_access_time, last_write_time, change_time, _alloc, end_of_file) =
        times;
    let (_, (file_attributes, _reserved2, file_id)) = (le_u32, le_u32, le_u128).parse(b)?;
    Ok((
        rest,
        CreateResponse {
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            end_of_file,
            file_attributes,
            file_id,
        },
    ))
}

/// CLOSE request: the FileId.
pub fn parse_close_request(msg: &[u8]) -> IResult<&[u8], FileId> {
    let (rest, b) = body(msg, 24)?;
    let (_, (_size, _flags, _reserved, file_id)) = (le_u16, le_u16, le_u32, le_u128).parse(b)?;
    Ok((rest, file_id))
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

pub fn parse_write_request(msg: &[u8]) -> IResult<&[u8], WriteRequest> {
    let (rest, b) = body(msg, 48)?;
    let (_, (_size, data_offset, length, offset, file_id)) =
        (le_u16, le_u16, le_u32, le_u64, le_u128).parse(b)?;
    Ok((
        rest,
        WriteRequest {
            data_offset,
            length,
            offset,
            file_id,
        },
    ))
}

impl WriteRequest {
    /// The data bytes present in `msg` (possibly fewer than `length` if the message is cut).
    pub fn data<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        clipped(msg, self.data_offset.into(), self.length as usize)
    }
}

/// WRITE response: bytes written.
pub fn parse_write_response(msg: &[u8]) -> IResult<&[u8], u32> {
    let (rest, b) = body(msg, 16)?;
    let (_, (_size, _reserved, count)) = (le_u16, le_u16, le_u32).parse(b)?;
    Ok((rest, count))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub length: u32,
    pub offset: u64,
    pub file_id: FileId,
}

pub fn parse_read_request(msg: &[u8]) -> IResult<&[u8], ReadRequest> {
    let (rest, b) = body(msg, 48)?;
    let (_, (_size, _padding, _flags, length, offset, file_id)) =
        (le_u16, le_u8, le_u8, le_u32, le_u64, le_u128).parse(b)?;
    Ok((
        rest,
        ReadRequest {
            length,
            offset,
            file_id,
        },
    ))
}

/// CLOSE response ([MS-SMB2] 2.2.16): with SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB the file's attributes
/// and EndOfFile after the close (zeros otherwise). It names no FileId.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseResponse {
    pub post_query: bool,
    pub end_of_file: u64,
    pub file_attributes: u32,
}
pub const CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

pub fn parse_close_response(msg: &[u8]) -> IResult<&[u8], CloseResponse> {
    let (rest, b) = body(msg, 60)?;
    let (b, (_size, flags, _reserved)) = (le_u16, le_u16, le_u32).parse(b)?;
    let (_, (_times, _alloc, end_of_file, file_attributes)) =
        (take(32usize), le_u64, le_u64, le_u32).parse(b)?;
    Ok((
        rest,
        CloseResponse {
            post_query: flags & CLOSE_FLAG_POSTQUERY_ATTRIB != 0,
            end_of_file,
            file_attributes,
        },
    ))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadResponse {
    pub data_offset: u8,
    pub data_length: u32,
}

pub fn parse_read_response(msg: &[u8]) -> IResult<&[u8], ReadResponse> {
    let (rest, b) = body(msg, 16)?;
    let (_, (_size, data_offset, _reserved, data_length)) =
        (le_u16, le_u8, le_u8, le_u32).parse(b)?;
    Ok((
        rest,
        ReadResponse {
            data_offset,
            data_length,
        },
    ))
}

impl ReadResponse {
    pub fn data<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        clipped(msg, self.data_offset.into(), self.data_length as usize)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ioctl<'a> {
    pub ctl_code: u32,
    pub file_id: FileId,
    pub input: &'a [u8],
    pub output: &'a [u8],
}

/// The common part of IOCTL requests and responses: CtlCode, FileId, then the input and output
/// buffer (offset, count) pairs (requests have MaxInputResponse between them).
fn ioctl_common(b: &[u8]) -> IResult<&[u8], (u32, FileId, u32, u32)> {
    let (i, (_size, _reserved, ctl_code, file_id, in_off, in_len)) =
        (le_u16, le_u16, le_u32, le_u128, le_u32, le_u32).parse(b)?;
    Ok((i, (ctl_code, file_id, in_off, in_len)))
}

pub fn parse_ioctl_request(msg: &[u8]) -> IResult<&[u8], Ioctl<'_>> {
    let (rest, b) = body(msg, 56)?;
    let (_, (ctl_code, file_id, in_off, in_len)) = ioctl_common(b)?;
    Ok((
        rest,
        Ioctl {
            ctl_code,
            file_id,
            input: buffer_or_empty(msg, in_off as usize, in_len as usize),
            output: &[],
        },
    ))
}

pub fn parse_ioctl_response(msg: &[u8]) -> IResult<&[u8], Ioctl<'_>> {
    let (rest, b) = body(msg, 48)?;
    let (i, (ctl_code, file_id, in_off, in_len)) = ioctl_common(b)?;
    let (_, (out_off, out_len)) = (le_u32, le_u32).parse(i)?;
    Ok((
        rest,
        Ioctl {
            ctl_code,
            file_id,
            input: buffer_or_empty(msg, in_off as usize, in_len as usize),
            output: buffer_or_empty(msg, out_off as usize, out_len as usize),
        },
    ))
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

/// FILE_RENAME_INFORMATION, SMB2 form (MS-FSCC 2.4.37.2): replace u8, 7 reserved, root u64,
/// name length u32, name.
fn rename_information(buf: &[u8]) -> IResult<&[u8], SetInfoKind<'_>> {
    let (i, (replace, _reserved, _root, len)) = (le_u8, take(7usize), le_u64, le_u32).parse(buf)?;
    Ok((
        i,
        SetInfoKind::Rename {
            replace: replace != 0,
            name: buffer_or_empty(i, 0, len as usize),
        },
    ))
}

pub fn parse_set_info_request(msg: &[u8]) -> IResult<&[u8], SetInfoRequest<'_>> {
    let (rest, b) = body(msg, 32)?;
    let (_, (_size, info_type, class, buf_len, buf_off, _reserved, _additional, file_id)) = (
        le_u16, le_u8, le_u8, le_u32, le_u16, le_u16, le_u32, le_u128,
    )
        .parse(b)?;
    let buf = buffer_or_empty(msg, buf_off.into(), buf_len as usize);
    let (_, kind) = match (info_type, class) {
        (INFO_FILE, FILE_DISPOSITION_INFORMATION) => {
            le_u8(buf).map(|(i, d)| (i, SetInfoKind::Disposition(d != 0)))?
        }
        (INFO_FILE, FILE_DISPOSITION_INFORMATION_EX) => {
            le_u32(buf).map(|(i, d)| (i, SetInfoKind::Disposition(d & 1 != 0)))?
        }
        (INFO_FILE, FILE_RENAME_INFORMATION) => rename_information(buf)?,
        _ => (buf, SetInfoKind::Other { info_type, class }),
    };
    Ok((rest, SetInfoRequest { file_id, kind }))
}

/// The SMB 3.x transform header (MS-SMB2 2.2.41); what follows it is the encrypted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformHeader<'a> {
    pub signature: [u8; 16],
    pub nonce: [u8; 16],
    pub original_size: u32,
    /// 3.1.1 Flags / 3.0 EncryptionAlgorithm; 1 in both means "encrypted" (AES-128-CCM for 3.0).
    pub flags: u16,
    pub session_id: u64,
    /// The associated data of the AEAD: the header from Nonce to its end.
    pub aad: &'a [u8],
}

pub fn parse_transform_header(b: &[u8]) -> IResult<&[u8], TransformHeader<'_>> {
    let (i, (_, signature)) = (tag(&TRANSFORM_MAGIC[..]), take(16usize)).parse(b)?;
    let (rest, aad) = take(TRANSFORM_HEADER_LEN - 20)(i)?;
    let (_, (nonce, original_size, _reserved, flags, session_id)) =
        (take(16usize), le_u32, le_u16, le_u16, le_u64).parse(aad)?;
    let mut h = TransformHeader {
        signature: [0; 16],
        nonce: [0; 16],
        original_size,
        flags,
        session_id,
        aad,
    };
    h.signature.copy_from_slice(signature);
    h.nonce.copy_from_slice(nonce);
    Ok((rest, h))
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

/// UTF-16LE bytes to a String (lossy), bounded in characters.
pub fn utf16_name(b: &[u8]) -> String {
    utf16le(b, MAX_NAME_CHARS)
}

/// Longest file / share name we keep, in characters.
pub const MAX_NAME_CHARS: usize = 1024;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The hand-written header reader and the nom definition agree: on headers with every flag
    /// combination and random fields, cut at every length, and on random bytes.
    #[test]
    fn header_by_hand_agrees_with_the_nom_definition() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let mut b: Vec<u8> = (0..80).map(|_| next() as u8).collect();
            if round % 4 != 0 {
                b[..4].copy_from_slice(SMB2_MAGIC);
            }
            b[16] &= 0x0F;
            for n in [0, 3, 4, 63, 64, 65, 80] {
                let m = &b[..n];
                assert_eq!(
                    header_by_hand(m).ok(),
                    parse_header_nom(m).ok(),
                    "{round} {n}"
                );
            }
        }
    }

    pub(crate) fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    /// A sync SMB2 header.
    pub(crate) fn header(
        cmd: Command,
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
        h.extend_from_slice(&cmd.code().to_le_bytes());
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
        cmd: Command,
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
        let h = parsed(parse_header(&m)).unwrap();
        assert_eq!(
            (h.command, h.message_id, h.tree_id, h.session_id),
            (CREATE, 7, 3, 0x1122)
        );
        assert!(h.is_related() && !h.is_response());
        assert_eq!(h.status, 0xC000_0022);
        let mut a = header(IOCTL, FLAG_SERVER_TO_REDIR | FLAG_ASYNC, 0x103, 9, 0, 1);
        a[32..40].copy_from_slice(&0xABCDu64.to_le_bytes());
        let h = parsed(parse_header(&a)).unwrap();
        assert_eq!((h.async_id, h.tree_id), (Some(0xABCD), 0));
        assert!(parsed(parse_header(&m[..63])).is_none());
        assert!(parsed(parse_header(b"\xffSMB")).is_none());
    }

    #[test]
    fn negotiate_dialect_and_cipher() {
        let r = parsed(parse_negotiate_request(&negotiate_request(&[
            0x202, 0x210, 0x300, 0x302, 0x311,
        ])))
        .unwrap();
        assert_eq!(r.dialects, vec![0x202, 0x210, 0x300, 0x302, 0x311]);
        let r = parsed(parse_negotiate_response(&negotiate_response(
            0x311,
            Some(2),
        )))
        .unwrap();
        assert_eq!((r.dialect, r.cipher()), (0x311, Some(2)));
        assert_eq!(cipher_name(r.cipher().unwrap()), "AES-128-GCM");
        assert_eq!(dialect_name(r.dialect), "SMB 3.1.1");
        let r = parsed(parse_negotiate_response(&negotiate_response(0x302, None))).unwrap();
        assert_eq!(r.cipher(), Some(1));
        // 3.0.x without SMB2_GLOBAL_CAP_ENCRYPTION never encrypts.
        let mut no_cap = negotiate_response(0x302, None);
        no_cap[64 + 24..64 + 28].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            parsed(parse_negotiate_response(&no_cap)).unwrap().cipher(),
            None
        );
    }

    #[test]
    fn session_setup_blob() {
        let blob = crate::smb::ntlmssp::tests::build_auth("admin", "LAB", "WS", true, 24);
        let m = session_setup_request(2, 5, &blob);
        assert_eq!(
            parsed(parse_session_setup_request(&m))
                .unwrap()
                .security_buffer,
            &blob[..]
        );
        let resp = session_setup_response(2, 5, 0, SESSION_FLAG_ENCRYPT_DATA);
        let r = parsed(parse_session_setup_response(&resp)).unwrap();
        assert_eq!(r.session_flags, SESSION_FLAG_ENCRYPT_DATA);
    }

    #[test]
    fn tree_connect() {
        let m = tree_connect_request(3, 5, "\\\\10.0.0.1\\ADMIN$");
        assert_eq!(
            utf16_name(parsed(parse_tree_connect_request(&m)).unwrap()),
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
            utf16_name(parsed(parse_tree_connect_request(&e)).unwrap()),
            "\\\\srv\\C$"
        );
        let r = parsed(parse_tree_connect_response(&tree_connect_response(
            3,
            5,
            9,
            SHARE_TYPE_PIPE,
            0,
        )))
        .unwrap();
        assert_eq!(r.share_type, ShareType::Pipe);
    }

    #[test]
    fn create_request_and_response() {
        let m = create_request(4, 5, 9, "evil.exe", FILE_DELETE_ON_CLOSE, 0);
        let c = parsed(parse_create_request(&m)).unwrap();
        assert_eq!(utf16_name(c.name), "evil.exe");
        assert_eq!(
            (c.disposition, c.options, c.desired_access),
            (5, FILE_DELETE_ON_CLOSE, 0x0012_019f)
        );
        let fid: FileId = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;
        let r = parsed(parse_create_response(&create_response(4, 5, 9, fid, 0, 0))).unwrap();
        assert_eq!(r.file_id, fid);
        assert_eq!(r.create_action, 2);
        assert_eq!(file_id_hex(fid).len(), 32);
        // a name offset pointing outside gives an empty name, not a panic
        let mut bad = m.clone();
        bad[64 + 44..64 + 46].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(parsed(parse_create_request(&bad)).unwrap().name.is_empty());
    }

    #[test]
    fn write_read_ioctl_close() {
        let w = write_request(5, 5, 9, 42, 4096, b"MZdata", 0);
        let p = parsed(parse_write_request(&w)).unwrap();
        assert_eq!(
            (p.offset, p.length, p.file_id, p.data(&w)),
            (4096, 6, 42, &b"MZdata"[..])
        );
        assert_eq!(p.data(&w[..114]), b"MZ");
        let r = parsed(parse_read_request(&read_request(6, 5, 9, 42, 0, 1024))).unwrap();
        assert_eq!((r.length, r.offset, r.file_id), (1024, 0, 42));
        let rr = read_response(6, 5, 9, b"\x05\x00\x0c");
        assert_eq!(
            parsed(parse_read_response(&rr)).unwrap().data(&rr),
            b"\x05\x00\x0c"
        );
        let i = ioctl_request(7, 5, 9, 42, b"\x05\x00\x00\x03");
        let p = parsed(parse_ioctl_request(&i)).unwrap();
        assert_eq!(
            (p.ctl_code, p.file_id, p.input),
            (FSCTL_PIPE_TRANSCEIVE, 42, &b"\x05\x00\x00\x03"[..])
        );
        let o = ioctl_response(7, 5, 9, 42, b"\x05\x00\x02\x03", 0);
        assert_eq!(
            parsed(parse_ioctl_response(&o)).unwrap().output,
            b"\x05\x00\x02\x03"
        );
        assert_eq!(
            parsed(parse_close_request(&close_request(8, 5, 9, 42, 0))),
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
        match parsed(parse_set_info_request(&m)).unwrap().kind {
            SetInfoKind::Rename { name, .. } => assert_eq!(utf16_name(name), "new.exe"),
            other => panic!("{other:?}"),
        }
        let m = set_info_request(9, 5, 9, 42, FILE_DISPOSITION_INFORMATION, &[1]);
        assert_eq!(
            parsed(parse_set_info_request(&m)).unwrap().kind,
            SetInfoKind::Disposition(true)
        );
        let m = set_info_request(9, 5, 9, 42, FILE_DISPOSITION_INFORMATION_EX, &[0, 0, 0, 0]);
        assert_eq!(
            parsed(parse_set_info_request(&m)).unwrap().kind,
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
        assert_eq!(parsed(parse_header(cmds[1])).unwrap().command, WRITE);
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
        let h = parsed(parse_transform_header(&t)).unwrap();
        assert_eq!((h.original_size, h.session_id), (200, 0x55));
        assert_eq!(nonce_form(&h.nonce), "ascii-letters");
        let mut n = [0u8; 16];
        n[0] = 7;
        n[9] = 0x99;
        assert_eq!(nonce_form(&n), "counter");
        assert_eq!(nonce_form(&[0x8f; 16]), "random");
        assert!(parsed(parse_transform_header(&t[..51])).is_none());
    }

    // Microsoft's published SMB 3.x example messages (crypto::testutil), read by the one parser
    // that both the log and the decryptor use.
    use crate::smb::crypto::testutil as ms;

    #[test]
    fn short_or_foreign_input_is_rejected() {
        assert!(parsed(parse_header(&[0xfe, b'S', b'M', b'B'])).is_none());
        let mut m = vec![0u8; 64];
        m[..4].copy_from_slice(b"\xffSMB");
        assert!(parsed(parse_header(&m)).is_none());
        m[..4].copy_from_slice(SMB2_MAGIC);
        assert!(parsed(parse_header(&m)).is_some());
        assert!(parsed(parse_negotiate_response(&m)).is_none());
        assert!(parsed(parse_session_setup_request(&m)).is_none());
        assert!(parsed(parse_transform_header(&[0xfd, b'S', b'M', b'B', 0])).is_none());
    }

    // The NEGOTIATE response of the SMB 3.1.1 pre-auth integrity example: dialect 0x0311,
    // contexts PREAUTH (SHA-512) then ENCRYPTION with AES-128-GCM.
    #[test]
    fn ms_negotiate_response_dialect_and_cipher() {
        let m = ms::hex(ms::MS_NEGOTIATE_RESPONSE);
        let h = parsed(parse_header(&m)).unwrap();
        assert!(h.is_response());
        assert_eq!(h.command, Command::Negotiate);
        let n = parsed(parse_negotiate_response(&m)).unwrap();
        assert_eq!(
            (n.dialect, n.cipher_context, n.cipher()),
            (0x0311, Some(2), Some(2))
        );
        let r = parsed(parse_negotiate_request(&ms::hex(ms::MS_NEGOTIATE_REQUEST))).unwrap();
        assert_eq!(r.dialects, vec![0x0202, 0x0210, 0x0300, 0x0302, 0x0311]);
        assert_eq!(r.ciphers, vec![2, 1]);
        // NegotiateContextOffset far outside: no cipher, no panic.
        let mut bad = m.clone();
        bad[64 + 60..64 + 64].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert_eq!(
            parsed(parse_negotiate_response(&bad)).unwrap().cipher(),
            None
        );
    }

    #[test]
    fn ms_session_setup_buffers() {
        let m = ms::hex(ms::MS_SESSION_SETUP_REQUEST_1);
        let r = parsed(parse_session_setup_request(&m)).unwrap();
        assert_eq!((r.flags, r.security_buffer.len()), (0, 0x4a));
        assert_eq!(r.security_buffer[0], 0x60); // SPNEGO InitialContextToken
        let m = ms::hex(ms::MS_SESSION_SETUP_RESPONSE_1);
        let h = parsed(parse_header(&m)).unwrap();
        assert_eq!(h.status, STATUS_MORE_PROCESSING_REQUIRED);
        assert_eq!(h.session_id, 0x0000_1000_0000_0019);
        let r = parsed(parse_session_setup_response(&m)).unwrap();
        assert_eq!(r.security_buffer.len(), 0xb3);
    }

    #[test]
    fn ms_transform_fields() {
        let m = ms::hex(ms::MS_SMB300_TRANSFORM);
        let (ciphertext, t) = parse_transform_header(&m).unwrap();
        assert_eq!(t.original_size, 0x50);
        assert_eq!(t.flags, 1);
        assert_eq!(t.session_id, 0x0008_E400_1400_0011);
        assert_eq!(t.aad, &m[20..52]);
        assert_eq!(ciphertext.len(), 0x50);
    }

    #[test]
    fn commands_round_trip() {
        for code in 0..=0x20u16 {
            assert_eq!(Command::from_code(code).code(), code);
        }
        assert_eq!(Command::from_code(5), Command::Create);
        assert_eq!(Command::from_code(0x99), Command::Unknown(0x99));
    }
}
