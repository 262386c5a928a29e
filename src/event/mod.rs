//! Every record the sensor emits, as plain `Serialize` structs in one place.
//!
//! Field names follow Zeek (`ts`, `uid`, `id.orig_h` …, `path`, `name`, `action`, `endpoint`,
//! `operation`, `named_pipe`) so that Sigma rules written for Zeek logs apply; fields Zeek does not
//! have are ours and documented in the README. Optional fields are left out of the JSON when unknown.
//!
//! Ordering contract: a parser emits an event at the packet time it learns it (`Event::ts`); records
//! whose Zeek `ts` is earlier (a request logged at its response) carry that earlier time in their own
//! `ts` field but are still emitted in packet order.

pub mod alert;
pub mod community_id;
pub mod eve;
pub mod zeek;

use crate::flow::{ConnId, FlowCtx, Uid};
use crate::kerberos::TicketDigest;
use crate::time::Ts;
use serde::{Serialize, Serializer};
use std::net::IpAddr;

/// Zeek's `ts`, `uid` and `id.*` columns, flattened into every record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnFields {
    pub ts: Ts,
    pub uid: Uid,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

/// Zeek's `uid` and `id.*` columns without `ts` (records whose `ts` is their own); with `ts`,
/// what [`ConnFields`] writes.
#[derive(Clone, Copy, Serialize)]
pub struct IdColumns {
    pub uid: Uid,
    #[serde(rename = "id.orig_h")]
    pub orig_h: IpAddr,
    #[serde(rename = "id.orig_p")]
    pub orig_p: u16,
    #[serde(rename = "id.resp_h")]
    pub resp_h: IpAddr,
    #[serde(rename = "id.resp_p")]
    pub resp_p: u16,
}

impl From<&FlowCtx> for IdColumns {
    fn from(f: &FlowCtx) -> IdColumns {
        IdColumns {
            uid: f.uid,
            orig_h: f.conn.orig_h,
            orig_p: f.conn.orig_p,
            resp_h: f.conn.resp_h,
            resp_p: f.conn.resp_p,
        }
    }
}

/// `ts` then the id columns.
#[derive(Serialize)]
struct TsAndId {
    ts: Ts,
    #[serde(flatten)]
    id: IdColumns,
}

impl Serialize for ConnFields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TsAndId {
            ts: self.ts,
            id: IdColumns::from(&self.flow()),
        }
        .serialize(s)
    }
}

impl Default for ConnFields {
    fn default() -> ConnFields {
        let any = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        ConnFields {
            ts: Ts(0),
            uid: Uid(0),
            orig_h: any,
            orig_p: 0,
            resp_h: any,
            resp_p: 0,
        }
    }
}

impl ConnFields {
    /// The connection these columns describe.
    pub fn flow(&self) -> FlowCtx {
        FlowCtx {
            conn: ConnId {
                orig_h: self.orig_h,
                orig_p: self.orig_p,
                resp_h: self.resp_h,
                resp_p: self.resp_p,
            },
            uid: self.uid,
        }
    }

    pub fn new(ts: Ts, uid: Uid, c: &ConnId) -> ConnFields {
        ConnFields {
            ts,
            uid,
            orig_h: c.orig_h,
            orig_p: c.orig_p,
            resp_h: c.resp_h,
            resp_p: c.resp_p,
        }
    }
}

/// One event out of the protocol layers. Serialized with a `log` field naming the record kind.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "log")]
pub enum Event {
    #[serde(rename = "smb_mapping")]
    SmbMapping(SmbMapping),
    #[serde(rename = "smb_files")]
    SmbFiles(SmbFiles),
    #[serde(rename = "smb_auth")]
    SmbAuth(SmbAuth),
    #[serde(rename = "smb_visibility")]
    SmbVisibility(SmbVisibility),
    /// One encrypted (0xFD) or compressed (0xFC) SMB message we could not read: its sizes and
    /// direction, for inference from sizes. Not written to `--events` unless asked (`--events-all`).
    #[serde(rename = "smb_opaque")]
    SmbOpaque(SmbOpaque),
    #[serde(rename = "dce_rpc")]
    DceRpc(Box<DceRpc>),
    #[serde(rename = "kerberos")]
    Kerberos(Box<Kerberos>),
    #[serde(rename = "anomaly")]
    Anomaly(Anomaly),
}

impl Event {
    pub fn conn(&self) -> Option<&ConnFields> {
        match self {
            Event::SmbMapping(e) => Some(&e.conn),
            Event::SmbFiles(e) => Some(&e.conn),
            Event::SmbAuth(e) => Some(&e.conn),
            Event::SmbVisibility(e) => Some(&e.conn),
            Event::SmbOpaque(e) => Some(&e.conn),
            Event::DceRpc(e) => Some(&e.conn),
            Event::Kerberos(e) => Some(&e.conn),
            Event::Anomaly(e) => e.conn.as_ref(),
        }
    }
    pub fn log_name(&self) -> &'static str {
        match self {
            Event::SmbMapping(_) => "smb_mapping",
            Event::SmbFiles(_) => "smb_files",
            Event::SmbAuth(_) => "smb_auth",
            Event::SmbVisibility(_) => "smb_visibility",
            Event::SmbOpaque(_) => "smb_opaque",
            Event::DceRpc(_) => "dce_rpc",
            Event::Kerberos(_) => "kerberos",
            Event::Anomaly(_) => "anomaly",
        }
    }
}

/// Which SMB dialect family a record came from.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum SmbVersion {
    #[serde(rename = "SMB1")]
    Smb1,
    #[serde(rename = "SMB2")]
    Smb2,
}

/// Zeek smb_mapping.log: one tree connect (and its response).
#[derive(Clone, Debug, Serialize)]
pub struct SmbMapping {
    #[serde(flatten)]
    pub conn: ConnFields,
    /// `\\server\SHARE` as the client sent it.
    pub path: String,
    /// Share name: the last component of `path` (ours, for matching).
    pub share: String,
    /// SMB1 service string ("A:", "IPC", "?????"); for SMB2 derived from share_type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// "DISK" | "PIPE" | "PRINT" | "UNKNOWN" (no response seen).
    pub share_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_file_system: Option<String>,
    /// NT status name (e.g. "STATUS_SUCCESS") or hex; "<no response>" when missed.
    pub status: String,
    pub smb_version: SmbVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_id: Option<u32>,
}

/// A share by name, or unknown: the tree connect was not seen (a capture picked up midstream).
/// Written as its name, or as "<unknown>".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Share {
    Known(String),
    Unknown,
}

impl Share {
    /// From a share name as logged: empty or "<unknown>" is unknown.
    pub fn from_logged(name: &str) -> Share {
        if name.is_empty() || name == crate::smb::tables::UNKNOWN {
            Share::Unknown
        } else {
            Share::Known(name.to_string())
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Share::Known(n) => Some(n),
            Share::Unknown => None,
        }
    }
}

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name().unwrap_or(crate::smb::tables::UNKNOWN))
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Zeek's SMB::Action, including the ones stock Zeek does not log (PIPE_OPEN, FILE_WRITE).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash)]
pub enum FileAction {
    #[serde(rename = "SMB::FILE_OPEN")]
    FileOpen,
    #[serde(rename = "SMB::FILE_READ")]
    FileRead,
    #[serde(rename = "SMB::FILE_WRITE")]
    FileWrite,
    #[serde(rename = "SMB::FILE_CLOSE")]
    FileClose,
    #[serde(rename = "SMB::FILE_DELETE")]
    FileDelete,
    #[serde(rename = "SMB::FILE_RENAME")]
    FileRename,
    #[serde(rename = "SMB::FILE_SET_ATTRIBUTE")]
    FileSetAttribute,
    #[serde(rename = "SMB::PIPE_OPEN")]
    PipeOpen,
    #[serde(rename = "SMB::PIPE_READ")]
    PipeRead,
    #[serde(rename = "SMB::PIPE_WRITE")]
    PipeWrite,
    #[serde(rename = "SMB::PIPE_CLOSE")]
    PipeClose,
    #[serde(rename = "SMB::PRINT_OPEN")]
    PrintOpen,
}

/// Zeek smb_files.log plus what detection needs.
///
/// FILE_WRITE is emitted once per handle when the handle closes (or its flow ends), summarizing every
/// write made through it: `bytes_written`, whether the data starts with `MZ`, and the SHA-256 of the
/// contents when the writes covered the file contiguously from offset 0.
#[derive(Clone, Debug, Serialize, Default)]
pub struct SmbFiles {
    #[serde(flatten)]
    pub conn: ConnFields,
    /// File handle id: hex of the SMB2 FileId (persistent+volatile) or SMB1 FID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuid: Option<String>,
    pub action: Option<FileAction>,
    /// Tree path `\\server\SHARE`, or "<unknown>" when the tree connect was not seen.
    pub path: String,
    /// Share name (last component of path), "<unknown>" when not seen.
    pub share: String,
    /// File or pipe name relative to the share, as the client sent it.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_name: Option<String>,
    #[serde(rename = "times.modified", skip_serializing_if = "Option::is_none")]
    pub times_modified: Option<Ts>,
    #[serde(rename = "times.accessed", skip_serializing_if = "Option::is_none")]
    pub times_accessed: Option<Ts>,
    #[serde(rename = "times.created", skip_serializing_if = "Option::is_none")]
    pub times_created: Option<Ts>,
    #[serde(rename = "times.changed", skip_serializing_if = "Option::is_none")]
    pub times_changed: Option<Ts>,
    /// NT status of the operation ("STATUS_SUCCESS", …).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb_version: Option<SmbVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// CREATE: desired access mask, create disposition and options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_access: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_options: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub delete_on_close: bool,
    /// CREATE response: what the server did (an upload is `created` or `overwritten`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_action: Option<CreateAction>,
    /// FILE_WRITE: bytes written through this handle, number of writes, first write time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_write_ts: Option<Ts>,
    /// FILE_WRITE: the bytes at offset 0 start with "MZ".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pe: Option<bool>,
    /// FILE_WRITE of an executable: SHA-256 of the contents (hex), when complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// FILE_WRITE: false when writes left holes or could not be ordered (no sha256 then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_complete: Option<bool>,
}

/// CreateAction of an SMB2 CREATE response ([MS-SMB2] 2.2.14) and of an SMB1 NT_CREATE_ANDX
/// response ([MS-CIFS] 2.2.4.64.2): the same four values.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CreateAction {
    Superseded,
    Opened,
    Created,
    Overwritten,
}

impl CreateAction {
    pub fn from_wire(v: u32) -> Option<CreateAction> {
        Some(match v {
            0 => CreateAction::Superseded,
            1 => CreateAction::Opened,
            2 => CreateAction::Created,
            3 => CreateAction::Overwritten,
            _ => return None,
        })
    }
    /// The file's contents are new: it was created or replaced.
    pub fn is_new(self) -> bool {
        self != CreateAction::Opened
    }
}

/// One SESSION_SETUP exchange (SMB1 or SMB2).
#[derive(Clone, Debug, Serialize)]
pub struct SmbAuth {
    #[serde(flatten)]
    pub conn: ConnFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    /// "ntlmssp" | "kerberos" | "anonymous" | "raw-ntlm" | "unknown"
    pub auth: &'static str,
    /// "SMB 2.0.2" … "SMB 3.1.1", "NT LM 0.12", or "<unknown>" when NEGOTIATE was missed.
    pub dialect: String,
    pub status: String,
    pub smb_version: SmbVersion,
    /// Kerberos: how `user` and `domain` were learned (the ticket's TGS-REP, or `unseen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_source: Option<UserSource>,
    /// Kerberos: the ticket the AP-REQ presented, for the join (a digest of ciphertext: not
    /// written).
    #[serde(skip)]
    pub ticket: Option<TicketDigest>,
}

/// The sensor lost (or regained) sight of a session: SMB3 encryption (0xFD) or compression (0xFC).
#[derive(Clone, Debug, Serialize)]
pub struct SmbVisibility {
    #[serde(flatten)]
    pub conn: ConnFields,
    pub session_id: u64,
    /// "encrypted" | "compressed"
    pub kind: &'static str,
    /// "start" when first seen, "end" with totals when the flow ends.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    pub messages: u64,
    pub bytes: u64,
    /// Whether we decrypted it with supplied keys.
    pub decrypted: bool,
}

/// One opaque SMB message (encrypted or compressed) we could not read.
#[derive(Clone, Debug, Serialize)]
pub struct SmbOpaque {
    #[serde(flatten)]
    pub conn: ConnFields,
    pub session_id: u64,
    /// True from client to server.
    pub to_server: bool,
    /// Transform header OriginalMessageSize (the plaintext SMB2 message size).
    pub original_size: u32,
    /// Bytes on the wire including the transform header.
    pub wire_size: u32,
    /// "encrypted" | "compressed"
    pub kind: &'static str,
    /// Shape of the nonce, for attribution: "ascii-letters" | "counter" | "random".
    pub nonce_form: &'static str,
}

/// One offered presentation context of a bind / alter_context, and its result.
#[derive(Clone, Debug, Serialize)]
pub struct BindContext {
    pub ctx_id: u16,
    pub uuid: String,
    pub version: String,
    /// endpoint name (Zeek's) or `unknown-<uuid>`.
    pub endpoint: String,
    /// "NDR" | "NDR64" | "bind-time-feature" | other transfer syntax uuid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<String>,
    /// "acceptance" | "user_rejection" | "provider_rejection" | "negotiate_ack"; absent without bind_ack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'static str>,
}

/// Decoded arguments of the calls that matter for the technique. Stable names, documented in README.
#[derive(Clone, Debug, Serialize, Default, PartialEq, Eq)]
pub struct DceArgs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_type: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_type: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_control: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argc: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_arguments: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_level: Option<String>,
    /// Context handle the request acts on (hex, 20 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Context handle the response returned (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_handle: Option<String>,
    /// Win32 / HRESULT return code from the response stub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_code: Option<u32>,
    /// Endpoint mapper answer: the TCP port that serves `mapped_endpoint`'s interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epm_port: Option<u16>,
    /// Endpoint mapper answer: the IP address in the tower (often 0.0.0.0 = the mapper's host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epm_ip: Option<String>,
    /// Endpoint mapper: the interface asked about (`ept_map` map_tower), uuid and Zeek name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_endpoint: Option<String>,
}

impl DceArgs {
    pub fn is_empty(&self) -> bool {
        *self == DceArgs::default()
    }
}

/// Zeek dce_rpc.log plus transport, opnum, auth and decoded arguments. One record per call
/// (request + response), per bind, or per request whose response never came (logged at close).
#[derive(Clone, Debug, Serialize)]
pub struct DceRpc {
    #[serde(flatten)]
    pub conn: ConnFields,
    /// Seconds from request to response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt: Option<f64>,
    /// `\PIPE\svcctl` style (from the pipe's CREATE name or bind_ack secondary address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_pipe: Option<String>,
    /// Interface name (Zeek's), or `unknown-<uuid>`.
    pub endpoint: String,
    /// Operation name (Zeek's), `unknown-<opnum>`, or "bind" / "alter_context" for binds.
    pub operation: String,
    pub transport: crate::dcerpc::Transport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opnum: Option<u16>,
    pub call_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ctx_id: Option<u16>,
    /// Interface UUID the call was made on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// "ntlmssp" | "kerberos" | "spnego" | "netlogon" | "none" | number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    /// "connect" | "call" | "pkt" | "integrity" | "privacy" | "none".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_level: Option<&'static str>,
    pub stub_encrypted: bool,
    /// The stub was sealed (Kerberos packet privacy) and opened with a supplied keytab.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decrypted: bool,
    /// "ok", a fault status name/hex (e.g. "nca_s_op_rng_error"), "<no response>".
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_stub_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_frags: Option<u32>,
    /// Bind / alter_context: every offered context and its result (present on those records only:
    /// detection tells binds from calls by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<BindContext>>,
    /// A call seen by its response alone (the request was not captured): what its layout and
    /// place in the association say it was (`dcerpc::response_shapes`); `opnum` is then absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred_operation: Option<crate::dcerpc::response_shapes::InferredOp>,
    /// Bind / alter_context with a Kerberos auth verifier: the client, from the ticket's TGS-REP.
    #[serde(flatten)]
    pub principal: Principal,
    #[serde(flatten)]
    pub args: DceArgs,
}

/// Who a Kerberos AP-REQ authenticated, as far as the sensor learned it (DCE-RPC binds; SMB's
/// session setup has these fields of its own).
#[derive(Clone, Debug, Serialize, Default, PartialEq, Eq)]
pub struct Principal {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_source: Option<UserSource>,
    /// The ticket the AP-REQ presented, for the join (not written).
    #[serde(skip)]
    pub ticket: Option<TicketDigest>,
}

/// How a Kerberos client's name was learned.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    /// The TGS-REP that issued the presented ticket was seen (its `cname` / `crealm`).
    KerberosTgsRep,
    /// The AS-REP that issued the presented ticket was seen.
    KerberosAsRep,
    /// The ticket was decrypted with a supplied keytab.
    Keytab,
    /// A Kerberos AP-REQ whose ticket's issue the sensor did not see.
    Unseen,
}

/// Zeek's kerberos.log `request_type`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum KrbRequestType {
    #[serde(rename = "AS")]
    As,
    #[serde(rename = "TGS")]
    Tgs,
}

/// A Kerberos encryption type, written with its RFC 3961 / IANA name (Zeek's `cipher`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KrbCipher(pub i32);

impl Serialize for KrbCipher {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{:?}",
            crate::kerberos::records::EncryptionType(self.0)
        ))
    }
}

/// A KRB-ERROR code, written with its RFC 4120 §7.5.9 name (Zeek's `error_msg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KrbErrorCode(pub i32);

impl Serialize for KrbErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{:?}",
            crate::kerberos::records::ErrorCode(self.0)
        ))
    }
}

/// Zeek kerberos.log: one KDC exchange (an AS or TGS request and its reply or error), logged at
/// the reply (or at the end, unanswered).
#[derive(Clone, Debug, Serialize)]
pub struct Kerberos {
    #[serde(flatten)]
    pub conn: ConnFields,
    pub request_type: KrbRequestType,
    /// `name/REALM` of the client (the reply's cname / crealm, else the request's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// `sname` of the request (`krbtgt/REALM`, `cifs/host` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Absent when no reply was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_msg: Option<KrbErrorCode>,
    /// The request's `from` and `till` (the ticket's real times are in its encrypted part).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub till: Option<Ts>,
    /// The issued ticket's encryption type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<KrbCipher>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwardable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// "udp" | "tcp" (ours).
    pub transport: &'static str,
    /// The ticket the reply issued, for the join (not written).
    #[serde(skip)]
    pub issued: Option<IssuedTicket>,
}

/// A ticket a KDC reply issued: whom to, and until when it can be presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTicket {
    pub digest: TicketDigest,
    pub user: String,
    pub realm: String,
    pub source: UserSource,
    /// Capture time after which the ticket is no longer accepted.
    pub expires: Ts,
}

/// Typed anomalies. Every cap reached is `CapReached` with the cap's constant name.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// A retransmitted segment overlapped buffered data with different bytes (first copy kept).
    OverlapDifferentData,
    /// Bytes missing from a stream (lost, or beyond a cap); the parser resynchronised after it.
    Gap,
    /// A named cap (see `cap`) was reached: state was dropped or data skipped.
    CapReached,
    /// A record did not parse; `detail` says which.
    Malformed,
    /// IP fragments that overlap with different data.
    FragmentOverlap,
    /// A packet whose checksum is wrong from a sender whose checksums are validated: the endpoint
    /// drops it, so reassembly does too (issue 18).
    BadChecksum,
    /// A segment the receiver drops for its ACK: data without the ACK flag, or acknowledging
    /// data the peer never sent.
    AckInvalid,
    /// A segment starting beyond the receiver's advertised window: dropped.
    OutOfWindow,
    /// A RST the receiver does not act on (outside the window, or inside it but not at the exact
    /// next sequence number for a challenge-ACK stack): the connection goes on.
    RstIgnored,
    /// Data at or after the sequence number of the sender's FIN: dropped.
    DataAfterFin,
    /// Two copies of the same bytes differ and the target's policy cannot say which one the
    /// endpoint kept.
    OverlapAmbiguous,
    /// An SMB1 AndX chain went backwards or looped.
    AndxLoop,
    /// A request seen in the response direction or vice versa.
    WrongDirection,
    /// A capture file problem that did not stop the read (truncated last record…).
    Capture,
    /// Session keys could not be derived or a message did not authenticate.
    Decrypt,
    /// Anything else a parser wants the analyst to see.
    Other,
}

#[derive(Clone, Debug)]
pub struct Anomaly {
    /// `ts` of the packet (the connection fields, when present, are written with this `ts`).
    pub ts: Ts,
    pub conn: Option<ConnFields>,
    pub kind: AnomalyKind,
    /// "capture" | "ip" | "tcp" | "smb" | "smb1" | "smb2" | "dcerpc" | "ntlmssp" | "crypto"
    pub layer: &'static str,
    /// The cap's constant name when kind is cap_reached.
    pub cap: Option<&'static str>,
    pub detail: String,
}

/// An anomaly as written: the connection columns are optional and share `ts` with the record
/// (a flattened `Option<ConnFields>` would write `ts` twice).
#[derive(Serialize)]
struct AnomalyOut<'a> {
    ts: Ts,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    conn: Option<IdColumns>,
    kind: AnomalyKind,
    layer: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cap: Option<&'static str>,
    detail: &'a str,
}

impl Serialize for Anomaly {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        AnomalyOut {
            ts: self.ts,
            conn: self.conn.map(|c| IdColumns::from(&c.flow())),
            kind: self.kind,
            layer: self.layer,
            cap: self.cap,
            detail: &self.detail,
        }
        .serialize(s)
    }
}

/// Hex of bytes, lowercase, for handles and hashes.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// Serialize an IP address as a plain string (used by alert records too).
pub fn ser_ip<S: Serializer>(ip: &IpAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_json_has_one_ts_and_the_connection() {
        let conn = ConnFields::new(
            Ts::from_secs(5),
            Uid(7),
            &ConnId {
                orig_h: "192.0.2.1".parse().unwrap(),
                orig_p: 1,
                resp_h: "192.0.2.2".parse().unwrap(),
                resp_p: 445,
            },
        );
        let a = Anomaly {
            ts: Ts::from_secs(5),
            conn: Some(conn),
            kind: AnomalyKind::Gap,
            layer: "tcp",
            cap: None,
            detail: "x".into(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&Event::Anomaly(a)).unwrap()).unwrap();
        assert_eq!(v["log"], "anomaly");
        assert_eq!(v["ts"], 5.0);
        assert_eq!(v["id.resp_p"], 445);
        assert_eq!(v["kind"], "gap");
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text.matches("\"ts\"").count(), 1);
    }
}
