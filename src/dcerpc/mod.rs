//! DCE-RPC connection-oriented protocol over SMB named pipes and over TCP.
//!
//! The contract with the SMB layer: one [`Conversation`] per pipe handle, fed the bytes written to
//! the pipe (`ToServer`: WRITE, IOCTL FSCTL_PIPE_TRANSCEIVE input, SMB1 TRANS data) and read from it
//! (`ToClient`: READ response, IOCTL output, TRANS response data), in order, cut anywhere. The
//! conversation frames PDUs by frag_length itself ([`stream`]), keeps the association's contexts
//! and calls ([`conversation`]) and emits `dce_rpc` events: one per call when its response or fault
//! arrives (or at close / timeout, status `<no response>`), one per bind / alter_context.
//! Over TCP, [`TcpParser`] wraps a Conversation as a flow's [`StreamParser`]; where an endpoint
//! mapper answer (`ept_map` with a TCP port) is decoded, the conversation also puts the endpoint
//! into [`crate::sink::Sink::learned_endpoints`] for the flow layer ([`epm::expectation_from_event`]
//! says which server and port).
//!
//! `named_pipe` in the events is Zeek's: the bind_ack secondary address (`\PIPE\svcctl`, or the
//! port number over TCP); when the bind_ack was missed, `\PIPE\<name>` from the opened pipe name.
//!
//! Decoded arguments (`DceArgs`, flattened into the record), by call:
//! - svcctl OpenSCManagerW/A (15/27): `machine_name`, `database`, `access`; OpenSCManager2 (64):
//!   `database`, `access`; response: `response_handle` (SCM handle), `return_code`.
//! - svcctl CreateServiceW/A (12/24), CreateServiceWOW64A/W (44/45), CreateWowService (60):
//!   `handle` (SCM), `service_name`, `display_name`, `access`, `service_type`, `start_type`,
//!   `error_control`, `binary_path`, `start_name`; response: `response_handle` (service handle).
//! - svcctl ChangeServiceConfigW/A (11/23): `handle`, `service_type`, `start_type`,
//!   `error_control`, `binary_path`, `start_name`, `display_name` (absent = unchanged).
//! - svcctl OpenServiceW/A (16/28): `handle`, `service_name`, `access`; response: `response_handle`.
//! - svcctl StartServiceW/A (19/31): `handle`, `argc`, `arguments`; ControlService (1): `handle`,
//!   `control`; DeleteService (2), CloseServiceHandle (0) and the rest: `handle`.
//! - ITaskSchedulerService SchRpcRegisterTask (1): `task_path`, and from the task XML `command`,
//!   `command_arguments`, `user_id` (Principal UserId or GroupId), `run_level`; SchRpcRun (12):
//!   `task_path`, `argc`, `arguments`; SchRpcDelete (13) and other path calls: `task_path`.
//! - atsvc NetrJobAdd (0): `machine_name` (ServerName), `command`.
//! - epmapper ept_map (3): `mapped_uuid`, `mapped_endpoint` (the interface asked about),
//!   `epm_port`, `epm_ip` (from the answer's tower).
//! - every svcctl, task-scheduler, atsvc and ept_map response: `return_code` = the stub's last
//!   four bytes (Win32 error / HRESULT / epm status).
//!
//! `request_stub_len` is the stub size the client sent (auth padding and verifier excluded), even
//! where caps kept fewer bytes; `request_frags` the number of request fragments.
//!
//! Under packet privacy (auth level 6) the stub is not decoded: `stub_encrypted` is true and only
//! the interface, opnum and sizes are known. With a keytab (`--keytab`) that holds the service's
//! key, Kerberos packet privacy (auth types 9 and 16) is opened ([`krb_privacy`]): the stubs are
//! decoded as in clear text, `stub_encrypted` is false and `decrypted` true, and the bind names
//! the ticket's client (`user_source: keytab`). What fails to open is an `anomaly` of kind
//! `decrypt` (once per association; counters `dcerpc.krb_*`).
//! From the server's half alone (no requests), a sealed answer is known by its exact stub length
//! and the interface the endpoint mapper named for the port ([`response_shapes`]).

pub mod conversation;
pub mod epm;
pub mod interfaces;
pub mod krb_privacy;
pub mod ndr;
pub mod pdu;
pub mod response_shapes;
pub mod stream;
pub mod stubs;
pub mod svcctl;
pub mod tasks;
pub mod uuid;

use crate::event::{AnomalyKind, ConnFields};
use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::smb::crypto::KeyStore;
use crate::time::Ts;
use conversation::Association;
use std::sync::Arc;
use stream::{Framed, Framer};

pub use epm::{expectation_from_event, EpmExpectation};

/// How the conversation travels; written as "smb_pipe" | "tcp".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    SmbPipe,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::SmbPipe => "smb_pipe",
            Transport::Tcp => "tcp",
        }
    }

    /// The transport a rule or a test names ("smb_pipe" | "tcp").
    pub fn from_name(name: &str) -> Option<Transport> {
        [Transport::SmbPipe, Transport::Tcp]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// One DCE-RPC association: a named-pipe handle (both directions) or a TCP connection.
#[derive(Debug)]
pub struct Conversation {
    assoc: Association,
    /// One framer per direction (index `Direction::index`).
    framers: [Framer; 2],
    /// Whether non-DCE-RPC bytes were already reported per direction.
    skip_reported: [bool; 2],
}

impl Conversation {
    /// `named_pipe` is the pipe's name as opened (e.g. "svcctl"); a hint only, used when the bind
    /// was missed.
    pub fn new(transport: Transport, named_pipe: Option<&str>) -> Conversation {
        Conversation {
            assoc: Association::new(transport, named_pipe),
            framers: [Framer::new(), Framer::new()],
            skip_reported: [false; 2],
        }
    }

    /// Supplied secrets: with a keytab, Kerberos packet privacy is opened ([`krb_privacy`]).
    pub fn with_secrets(mut self, secrets: Option<Arc<KeyStore>>) -> Conversation {
        self.assoc.set_secrets(secrets);
        self
    }

    /// Whether `first` (the first bytes written to a pipe or sent on a connection) starts a
    /// DCE-RPC connection-oriented PDU: a valid common header when 16 bytes are there, else the
    /// `05 00` version prefix.
    pub fn looks_like_dcerpc(first: &[u8]) -> bool {
        if first.len() >= pdu::HEADER_LEN {
            pdu::parse_header(first).is_ok()
        } else {
            first.len() >= 2 && first[0] == 5 && first[1] == 0
        }
    }

    /// In-order bytes of one direction, cut anywhere.
    pub fn data(&mut self, ctx: &FlowCtx, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        // Each PDU is handled as it is framed (framing never looks at the association), so none
        // is copied or collected first.
        let Conversation {
            framers,
            assoc,
            skip_reported,
            ..
        } = self;
        framers[dir.index()].push(bytes, &mut |f| match f {
            Framed::Pdu(p) => assoc.pdu(ctx, ts, dir, p, sink),
            Framed::Skipped(n) => {
                sink.count("dcerpc.bytes_skipped", n as u64);
                // A pipe that never carried a PDU is simply not DCE-RPC (PsExec's own PSEXESVC
                // pipes, RemCom's stdio): that is not an anomaly. Once it has spoken DCE-RPC,
                // junk is. One anomaly per conversation and direction; the counter keeps the
                // total.
                if assoc.pdus_seen() == 0
                    || std::mem::replace(&mut skip_reported[dir.index()], true)
                {
                    return;
                }
                sink.anomaly(
                    ts,
                    Some(ConnFields::new(ts, ctx.uid, &ctx.conn)),
                    AnomalyKind::Malformed,
                    "dcerpc",
                    format!("{n} bytes are not DCE-RPC; resynchronised"),
                );
            }
        });
    }

    /// Bytes of this conversation were lost or skipped in `dir`: resynchronise on the next PDU.
    pub fn gap(&mut self, _ctx: &FlowCtx, _ts: Ts, dir: Direction, _sink: &mut Sink) {
        self.framers[dir.index()].gap();
        self.assoc.gap(dir);
    }

    /// The pipe handle was closed or the connection ended: log calls still waiting for a response.
    pub fn close(&mut self, ctx: &FlowCtx, ts: Ts, sink: &mut Sink) {
        self.assoc.close(ctx, ts, sink);
    }

    /// Packet time advanced without data here (the owner's periodic sweep): log calls that waited
    /// longer than [`conversation::DCERPC_CALL_TIMEOUT_SECS`] as `<no response>`.
    pub fn timeout(&mut self, ctx: &FlowCtx, now: Ts, sink: &mut Sink) {
        self.assoc.expire(ctx, now, sink);
    }

    /// Well-formed DCE-RPC PDUs seen so far: lets the owner give up on a pipe that only ever
    /// carried something else.
    pub fn pdus_seen(&self) -> u64 {
        self.assoc.pdus_seen()
    }

    /// Zeek's `named_pipe` as this conversation would log it now.
    pub fn named_pipe(&self) -> Option<String> {
        self.assoc.named_pipe()
    }
}

/// DCE-RPC directly over TCP (port 135 and dynamic ports).
pub struct TcpParser {
    ctx: FlowCtx,
    conv: Conversation,
}

impl TcpParser {
    pub fn new(ctx: FlowCtx) -> TcpParser {
        TcpParser {
            ctx,
            conv: Conversation::new(Transport::Tcp, None),
        }
    }

    /// A connection to a server port the endpoint mapper named for `interface` (its UUID).
    pub fn with_learned_interface(ctx: FlowCtx, interface: Option<String>) -> TcpParser {
        let mut p = TcpParser::new(ctx);
        p.conv.assoc.set_learned_interface(interface);
        p
    }

    /// See [`Conversation::with_secrets`].
    pub fn with_secrets(mut self, secrets: Option<Arc<KeyStore>>) -> TcpParser {
        self.conv = self.conv.with_secrets(secrets);
        self
    }
}

impl StreamParser for TcpParser {
    fn data(&mut self, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        self.conv.data(&self.ctx, ts, dir, bytes, sink);
    }
    fn gap(&mut self, ts: Ts, dir: Direction, _len: u64, sink: &mut Sink) {
        self.conv.gap(&self.ctx, ts, dir, sink);
    }
    fn close(&mut self, ts: Ts, sink: &mut Sink) {
        self.conv.close(&self.ctx, ts, sink);
    }
}

#[cfg(test)]
mod tests;
