//! The SMB1 state machine of one connection, on the dialect-independent [`Tables`]: sessions by
//! UID, trees by TID, handles by FID; requests matched to responses by (PID, MID), each AndX
//! block of a response to the request block of the same command; named pipes (TRANSACTION
//! TransactNmPipe and friends, WRITE_ANDX / READ_ANDX on pipe handles) fed to the handle's
//! DCE-RPC conversation; file writes to the shared write tracker. It emits the same smb_mapping,
//! smb_files and smb_auth records as SMB2, with `smb_version` SMB1.
//!
//! It sees whole messages: NetBIOS limits SMB1 messages to 128 KiB (17-bit length), well under
//! the framer's whole-message buffer.

use super::andx::{AndxChain, Block};
use super::create::{NtCreateRequest, NtCreateResponse, OpenAndxRequest, OpenAndxResponse};
use super::header::{cmd, Header, Smb1Error, Status};
use super::negotiate::{NegotiateRequest, NegotiateResponse, MAX_DIALECTS};
use super::paths::{DeleteRequest, RenameRequest};
use super::rw::{
    close_fid, LargeData, ReadAndxRequest, ReadAndxResponse, WriteAndxRequest, WriteAndxResponse,
};
use super::session_setup::{SessionSetupRequest, SessionSetupResponse, SetupForm};
use super::strings::SmbStr;
use super::trans::{
    nt_fn, pipe_fn, AssemblyState, NtTransCreateRequest, NtTransCreateResponse, NtTransRequest,
    NtTransResponse, TransAssembly, TransRequest, TransResponse, TransSecondary,
    MAX_TRANS_DATA_BYTES, MAX_TRANS_PARAM_BYTES,
};
use super::trans2::{sub, SetInfo as WireSetInfo, Trans2Request};
use super::tree::{TreeConnectRequest, TreeConnectResponse};
use crate::dcerpc::Conversation;
use crate::event::{AnomalyKind, CreateAction, Event, FileAction, SmbAuth, SmbMapping, SmbVersion};
use crate::flow::Direction;
use crate::sink::Sink;
use crate::smb::files::WriteTracker;
use crate::smb::ntlmssp::{parse_security_blob, SecurityBlob};
use crate::smb::status::nt_status_name;
use crate::smb::tables::*;
use crate::time::Ts;
use std::collections::{BTreeMap, BTreeSet};

mod responses;
mod unanswered;

/// SMB1 requests waiting for their response, per connection; beyond it the oldest is dropped.
pub const MAX_PENDING_SMB1_REQUESTS: usize = 1024;
/// Multi-message (secondary) transactions being joined at once, per connection (clients wait
/// for each; each holds at most MAX_TRANS_DATA_BYTES); beyond it the oldest is dropped.
pub const MAX_SMB1_TRANSACTIONS: usize = 8;

const NO_RESPONSE: &str = "<no response>";
const LAYER: &str = "smb1";

/// What a request block asked, owned until its response.
#[derive(Clone, Debug)]
enum Info {
    Negotiate,
    SessionSetup(Credentials),
    TreeConnect(String),
    TreeDisconnect,
    Logoff,
    Create {
        name: String,
        access: u32,
        disposition: u32,
        options: u32,
    },
    Write {
        fid: u16,
    },
    Read {
        fid: u16,
    },
    Close {
        fid: u16,
    },
    Delete {
        name: String,
    },
    Rename {
        old: String,
        new: String,
    },
    /// A named-pipe transaction whose response data is pipe output (TransactNmPipe, …).
    PipeTrans {
        fid: u16,
    },
    SetFile {
        fid: u16,
        info: SetInfo,
    },
    /// A request whose response carries nothing we use (kept so the MID is consumed).
    Other,
}

#[derive(Clone, Debug)]
enum SetInfo {
    Disposition(bool),
    Rename(String),
}

/// Credentials of a SESSION_SETUP_ANDX request.
#[derive(Clone, Debug)]
enum Credentials {
    Blob(SecurityBlob),
    /// WordCount 13 / 10: plaintext account and domain, LM/NTLM challenge responses.
    Raw {
        account: String,
        domain: String,
        anonymous: bool,
    },
}

#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    ts: Ts,
    uid: u16,
    tid: u16,
    /// One per request block of the AndX chain, in order: (command, what it asked).
    blocks: Vec<(u8, Info)>,
}

/// A transaction whose parameters or data span secondary requests.
#[derive(Debug)]
struct OpenTrans {
    command: u8,
    setup0: u16,
    setup1: u16,
    params_at: usize,
    data_at: usize,
    unicode: bool,
    asm: TransAssembly,
}

/// Transactions are keyed by (UID, TID, PID, MID), as MS-CIFS matches secondaries.
type TransKey = (u16, u16, u32, u16);

#[derive(Default)]
pub struct Smb1State {
    pending: BTreeMap<(u32, u16), Pending>,
    /// Arrival counter: the oldest pending request is dropped at the cap.
    seq: u64,
    offered: Vec<String>,
    dialect: Option<String>,
    trans: BTreeMap<TransKey, OpenTrans>,
    /// UIDs seen in SMB1 messages (at most MAX_SMB_SESSIONS), so that handles still open at
    /// flow end are logged as SMB1.
    uids: BTreeSet<u16>,
    /// A request was seen on this connection; until one is, responses are read alone
    /// ([`responses`]).
    client_seen: bool,
    /// Server→client only: per (UID, TID) the latest FID an NT_CREATE_ANDX response granted and
    /// the file offset its WRITE_ANDX responses reached.
    answered: BTreeMap<(u16, u16), (u16, u64)>,
}

impl Smb1State {
    pub fn new() -> Smb1State {
        Smb1State::default()
    }

    /// The negotiated dialect ("NT LM 0.12"), or "<unknown>".
    pub fn dialect_name(&self) -> String {
        self.dialect.clone().unwrap_or_else(|| UNKNOWN.to_string())
    }

    /// One whole SMB1 message (NetBIOS framing removed).
    pub fn message(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        msg: &[u8],
        sink: &mut Sink,
    ) {
        let h = match Header::parse(msg) {
            Ok(h) => h,
            Err(e) => return malformed(cx, &e, sink),
        };
        sink.count("smb1.commands", 1);
        if self.uids.len() < MAX_SMB_SESSIONS {
            self.uids.insert(h.uid());
        }
        if h.is_response() != (dir == Direction::ToClient) {
            sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                AnomalyKind::WrongDirection,
                LAYER,
                format!("{} in the wrong direction", cmd::name(h.command())),
            );
            return;
        }
        let mut blocks = Vec::new();
        for b in AndxChain::new(msg, &h) {
            match b {
                Ok(b) => blocks.push(b),
                Err(e) => {
                    malformed(cx, &e, sink);
                    break;
                }
            }
        }
        if h.is_response() {
            self.response(cx, t, &h, msg, &blocks, sink);
        } else {
            self.client_seen = true;
            self.request(cx, t, &h, msg, &blocks, sink);
        }
    }

    fn remember(&mut self, cx: &Cx<'_>, key: (u32, u16), mut p: Pending, sink: &mut Sink) {
        if self.pending.len() >= MAX_PENDING_SMB1_REQUESTS && !self.pending.contains_key(&key) {
            sink.cap_reached(
                "MAX_PENDING_SMB1_REQUESTS",
                cx.ts,
                Some(cx.conn()),
                LAYER,
                format!("pid {} mid {}", key.0, key.1),
            );
            // Only at the cap: a linear scan for the oldest.
            if let Some(old) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(k, _)| *k)
            {
                self.pending.remove(&old);
            }
        }
        self.seq += 1;
        p.seq = self.seq;
        self.pending.insert(key, p);
    }

    fn take_pending(&mut self, h: &Header<'_>) -> Option<Pending> {
        self.pending.remove(&(h.pid(), h.mid()))
    }

    fn request(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header<'_>,
        msg: &[u8],
        blocks: &[Block<'_>],
        sink: &mut Sink,
    ) {
        let u = h.is_unicode();
        let (uid, tid) = (h.uid(), h.tid());
        let grants_ids = blocks.first().is_some_and(|b| {
            matches!(
                b.command,
                cmd::NEGOTIATE | cmd::SESSION_SETUP_ANDX | cmd::TREE_CONNECT_ANDX
            )
        });
        if !grants_ids {
            self.link_unanswered_tree(cx, t, uid, tid, sink);
        }
        let mut infos = Vec::new();
        for b in blocks {
            let info = match self.request_block(cx, t, h, msg, b, u, sink) {
                Ok(Some(i)) => i,
                Ok(None) => continue,
                Err(e) => {
                    malformed(cx, &e, sink);
                    continue;
                }
            };
            // A secondary's response is the primary's command.
            let answered_as = match b.command {
                cmd::TRANSACTION_SECONDARY => cmd::TRANSACTION,
                cmd::TRANSACTION2_SECONDARY => cmd::TRANSACTION2,
                c => c,
            };
            infos.push((answered_as, info));
        }
        if !infos.is_empty() {
            self.remember(
                cx,
                (h.pid(), h.mid()),
                Pending {
                    seq: 0,
                    ts: cx.ts,
                    uid,
                    tid,
                    blocks: infos,
                },
                sink,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn request_block(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header<'_>,
        msg: &[u8],
        b: &Block<'_>,
        u: bool,
        sink: &mut Sink,
    ) -> Result<Option<Info>, Smb1Error> {
        let (uid, tid) = (h.uid(), h.tid());
        Ok(Some(match b.command {
            cmd::NEGOTIATE => {
                let r = NegotiateRequest::parse(msg, b)?;
                if r.truncated {
                    sink.cap_reached(
                        "MAX_DIALECTS",
                        cx.ts,
                        Some(cx.conn()),
                        LAYER,
                        "dialects beyond the cap not read",
                    );
                }
                self.offered = r
                    .dialects
                    .iter()
                    .take(MAX_DIALECTS)
                    .map(SmbStr::decode)
                    .collect();
                Info::Negotiate
            }
            cmd::SESSION_SETUP_ANDX => {
                let r = SessionSetupRequest::parse(msg, b, u)?;
                Info::SessionSetup(match r.form {
                    SetupForm::ExtendedSecurity => {
                        Credentials::Blob(parse_security_blob(r.security_blob))
                    }
                    SetupForm::NtLm | SetupForm::Lanman => Credentials::Raw {
                        account: text(&r.account, cx, sink),
                        domain: text(&r.primary_domain, cx, sink),
                        anonymous: r.is_anonymous(),
                    },
                })
            }
            cmd::LOGOFF_ANDX => Info::Logoff,
            cmd::TREE_CONNECT_ANDX => {
                Info::TreeConnect(text(&TreeConnectRequest::parse(msg, b, u)?.path, cx, sink))
            }
            cmd::TREE_DISCONNECT => Info::TreeDisconnect,
            cmd::NT_CREATE_ANDX => {
                let r = NtCreateRequest::parse(msg, b, u)?;
                Info::Create {
                    name: file_name(&r.name, cx, sink),
                    access: r.desired_access,
                    disposition: r.create_disposition,
                    options: r.create_options,
                }
            }
            cmd::OPEN_ANDX => {
                let r = OpenAndxRequest::parse(msg, b, u)?;
                // GENERIC_WRITE / GENERIC_READ stand in for the OEM access mode.
                let access = if r.wants_write() {
                    0x4000_0000
                } else {
                    0x8000_0000
                };
                Info::Create {
                    name: file_name(&r.name, cx, sink),
                    access,
                    disposition: r.nt_disposition().unwrap_or(0),
                    options: 0,
                }
            }
            cmd::WRITE_ANDX => {
                let w = WriteAndxRequest::parse(b)?;
                self.write(cx, t, uid, tid, &w, msg, sink);
                Info::Write { fid: w.fid }
            }
            cmd::READ_ANDX => {
                let fid = ReadAndxRequest::parse(b)?.fid;
                self.link_unanswered_open(cx, t, uid, tid, fid, sink);
                Info::Read { fid }
            }
            cmd::CLOSE => {
                let fid = close_fid(b)?;
                self.link_unanswered_open(cx, t, uid, tid, fid, sink);
                Info::Close { fid }
            }
            cmd::DELETE => Info::Delete {
                name: file_name(&DeleteRequest::parse(msg, b, u)?.name, cx, sink),
            },
            cmd::RENAME | cmd::NT_RENAME => {
                let r = RenameRequest::parse(msg, b, u)?;
                Info::Rename {
                    old: file_name(&r.old_name, cx, sink),
                    new: file_name(&r.new_name, cx, sink),
                }
            }
            cmd::TRANSACTION | cmd::TRANSACTION2 => {
                let r = TransRequest::parse(msg, b, u)?;
                let setup0 = r.setup_word(0).unwrap_or(0);
                let setup1 = r.setup_word(1).unwrap_or(0);
                let (params_at, data_at) =
                    (usize::from(r.param_offset), usize::from(r.data_offset));
                if b.command == cmd::TRANSACTION && r.pipe_call().is_none() {
                    return Ok(Some(Info::Other)); // mailslots, RAP (\PIPE\LANMAN)
                }
                if r.is_complete() {
                    self.transaction(
                        cx, t, uid, tid, b.command, setup0, setup1, r.params, params_at, r.data,
                        data_at, u, sink,
                    )
                } else {
                    let key = (uid, tid, h.pid(), h.mid());
                    let mut asm =
                        TransAssembly::new(r.total_param_count.into(), r.total_data_count.into());
                    if asm.add(
                        r.total_param_count.into(),
                        r.total_data_count.into(),
                        0,
                        r.params,
                        0,
                        r.data,
                    ) == AssemblyState::Overflow
                    {
                        sink.cap_reached(
                            "MAX_TRANS_DATA_BYTES",
                            cx.ts,
                            Some(cx.conn()),
                            LAYER,
                            format!("{} of {} bytes", cmd::name(b.command), r.total_data_count),
                        );
                        return Ok(None);
                    }
                    self.open_trans(
                        cx,
                        key,
                        OpenTrans {
                            command: b.command,
                            setup0,
                            setup1,
                            params_at,
                            data_at,
                            unicode: u,
                            asm,
                        },
                        sink,
                    );
                    return Ok(None); // the final secondary carries the MID to answer
                }
            }
            cmd::TRANSACTION_SECONDARY | cmd::TRANSACTION2_SECONDARY => {
                let s = TransSecondary::parse(msg, b)?;
                let key = (uid, tid, h.pid(), h.mid());
                let Some(ot) = self.trans.get_mut(&key) else {
                    sink.count("smb1.orphan_secondary", 1);
                    return Ok(None);
                };
                let p = s.piece;
                let state = ot.asm.add(
                    p.total_param_count.into(),
                    p.total_data_count.into(),
                    p.param_displacement.into(),
                    s.params,
                    p.data_displacement.into(),
                    s.data,
                );
                match state {
                    AssemblyState::Incomplete => return Ok(None),
                    AssemblyState::Overflow => {
                        let over_cap = ot.asm.total_data > MAX_TRANS_DATA_BYTES
                            || ot.asm.total_params > MAX_TRANS_PARAM_BYTES;
                        self.trans.remove(&key);
                        if over_cap {
                            sink.cap_reached(
                                "MAX_TRANS_DATA_BYTES",
                                cx.ts,
                                Some(cx.conn()),
                                LAYER,
                                "transaction larger than the cap dropped",
                            );
                        } else {
                            sink.anomaly(
                                cx.ts,
                                Some(cx.conn()),
                                AnomalyKind::Malformed,
                                LAYER,
                                "transaction piece beyond its totals",
                            );
                        }
                        return Ok(None);
                    }
                    AssemblyState::Complete => {
                        let Some(ot) = self.trans.remove(&key) else {
                            return Ok(None);
                        };
                        let (p, d) = (ot.asm.params().to_vec(), ot.asm.data().to_vec());
                        self.transaction(
                            cx,
                            t,
                            uid,
                            tid,
                            ot.command,
                            ot.setup0,
                            ot.setup1,
                            &p,
                            ot.params_at,
                            &d,
                            ot.data_at,
                            ot.unicode,
                            sink,
                        )
                    }
                }
            }
            cmd::NT_TRANSACT => {
                let r = NtTransRequest::parse(msg, b)?;
                if r.function == nt_fn::CREATE && r.param_count >= r.total_param_count {
                    let c = NtTransCreateRequest::parse(msg, &r, u)?;
                    Info::Create {
                        name: file_name(&c.name, cx, sink),
                        access: c.desired_access,
                        disposition: c.create_disposition,
                        options: c.create_options,
                    }
                } else {
                    Info::Other
                }
            }
            _ => return Ok(None),
        }))
    }

    fn open_trans(&mut self, cx: &Cx<'_>, key: TransKey, ot: OpenTrans, sink: &mut Sink) {
        if self.trans.len() >= MAX_SMB1_TRANSACTIONS && !self.trans.contains_key(&key) {
            sink.cap_reached(
                "MAX_SMB1_TRANSACTIONS",
                cx.ts,
                Some(cx.conn()),
                LAYER,
                format!("mid {}", key.3),
            );
            self.trans.pop_first();
        }
        self.trans.insert(key, ot);
    }

    /// A whole TRANSACTION / TRANSACTION2 request (joined from secondaries if need be).
    #[allow(clippy::too_many_arguments)]
    fn transaction(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        uid: u16,
        tid: u16,
        command: u8,
        setup0: u16,
        setup1: u16,
        params: &[u8],
        params_at: usize,
        data: &[u8],
        data_at: usize,
        unicode: bool,
        sink: &mut Sink,
    ) -> Info {
        if command == cmd::TRANSACTION {
            let fid = setup1;
            return match setup0 {
                pipe_fn::TRANSACT_NMPIPE
                | pipe_fn::CALL_NMPIPE
                | pipe_fn::WRITE_NMPIPE
                | pipe_fn::RAW_WRITE_NMPIPE => {
                    sink.count("smb1.pipe_transactions", 1);
                    self.pipe_bytes(cx, t, uid, tid, fid, Direction::ToServer, data, sink);
                    Info::PipeTrans { fid }
                }
                pipe_fn::READ_NMPIPE | pipe_fn::RAW_READ_NMPIPE => Info::PipeTrans { fid },
                _ => Info::Other,
            };
        }
        match Trans2Request::parse(setup0, params, params_at, data, data_at, unicode) {
            Ok(Trans2Request::SetFileInformation { fid, info, .. }) => match info {
                WireSetInfo::Disposition { delete_pending } => Info::SetFile {
                    fid,
                    info: SetInfo::Disposition(delete_pending),
                },
                WireSetInfo::Rename { new_name, .. } => Info::SetFile {
                    fid,
                    info: SetInfo::Rename(file_name(&new_name, cx, sink)),
                },
                _ => Info::Other,
            },
            Ok(_) => Info::Other,
            Err(e) => {
                sink.anomaly(
                    cx.ts,
                    Some(cx.conn()),
                    AnomalyKind::Malformed,
                    LAYER,
                    format!("{}: {e}", sub::name(setup0)),
                );
                Info::Other
            }
        }
    }

    /// WRITE_ANDX: pipe bytes to the conversation, file bytes to the write tracker.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        uid: u16,
        tid: u16,
        w: &WriteAndxRequest,
        msg: &[u8],
        sink: &mut Sink,
    ) {
        self.link_unanswered_open(cx, t, uid, tid, w.fid, sink);
        let Some(s) = t.session(u64::from(uid), cx, sink) else {
            return;
        };
        let tree_known = s
            .trees
            .get(&u32::from(tid))
            .is_some_and(|tr| tr.share_type != ShareType::Unknown);
        let Some(key) = handle(s, w.fid, tid, cx, sink) else {
            return;
        };
        let Some(f) = s.files.get_mut(&key) else {
            return;
        };
        let data = w.data(msg);
        let total = u64::from(w.data_len());
        // On a tree whose type we missed, a handle whose first bytes are DCE-RPC is a pipe.
        if !f.is_pipe
            && !tree_known
            && w.offset == 0
            && f.writes.is_none()
            && Conversation::looks_like_dcerpc(data.get(w.pipe_length_prefix()..).unwrap_or(&[]))
        {
            attach_pipe_counted(&mut s.pipes, f, cx, sink);
        }
        if f.is_pipe {
            feed_pipe(
                cx,
                f,
                Direction::ToServer,
                data.get(w.pipe_length_prefix()..).unwrap_or(&[]),
                sink,
            );
            if (data.len() as u64) < total {
                if let Some(conv) = f.pipe.as_mut() {
                    conv.gap(cx.flow, cx.ts, Direction::ToServer, sink);
                }
            }
            return;
        }
        let tracker = f.writes.get_or_insert_with(WriteTracker::new);
        tracker.begin_write(cx.ts, w.offset, total);
        tracker.data(w.offset, data);
        let short = total.saturating_sub(data.len() as u64);
        if short > 0 {
            tracker.missing(w.offset.saturating_add(data.len() as u64), short);
        }
    }

    /// Bytes for a pipe handle (transactions, reads).
    #[allow(clippy::too_many_arguments)]
    fn pipe_bytes(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        uid: u16,
        tid: u16,
        fid: u16,
        dir: Direction,
        data: &[u8],
        sink: &mut Sink,
    ) {
        self.link_unanswered_open(cx, t, uid, tid, fid, sink);
        let Some(s) = t.session(u64::from(uid), cx, sink) else {
            return;
        };
        let Some(key) = handle(s, fid, tid, cx, sink) else {
            return;
        };
        let Some(f) = s.files.get_mut(&key) else {
            return;
        };
        if !f.is_pipe && Conversation::looks_like_dcerpc(data) {
            attach_pipe_counted(&mut s.pipes, f, cx, sink);
        }
        feed_pipe(cx, f, dir, data, sink);
    }

    fn response(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header<'_>,
        msg: &[u8],
        blocks: &[Block<'_>],
        sink: &mut Sink,
    ) {
        let st = h.status();
        let mut pending = self.take_pending(h);
        let mut unhandled = Vec::new();
        let blocks = if pending.is_none() && !self.client_seen {
            for b in blocks {
                match self.response_only(cx, t, h, msg, b, sink) {
                    Ok(true) => {}
                    Ok(false) => unhandled.push(*b),
                    Err(e) => malformed(cx, &e, sink),
                }
            }
            &unhandled[..]
        } else {
            blocks
        };
        let mut still_waiting = Vec::new();
        // An error response has one block (WordCount 0) for the whole chain: it answers the
        // first request block, and the rest were not executed.
        for b in blocks {
            let (ts, uid, tid, info) = match pending.as_mut() {
                Some(p) => {
                    let i = p.blocks.iter().position(|(c, _)| *c == b.command);
                    let info = i.map(|i| p.blocks.remove(i).1);
                    (p.ts, p.uid, p.tid, info)
                }
                None => (cx.ts, h.uid(), h.tid(), None),
            };
            match self.response_block(cx, t, h, st, msg, b, ts, uid, tid, info, sink) {
                Ok(Some(more)) => still_waiting.push((b.command, more, ts, uid, tid)),
                Ok(None) => {}
                Err(e) => malformed(cx, &e, sink),
            }
        }
        // A transaction answered in several responses: the next piece comes under the same MID.
        if let Some((_, _, ts, uid, tid)) = still_waiting.first().cloned() {
            let blocks = still_waiting.into_iter().map(|(c, i, ..)| (c, i)).collect();
            self.remember(
                cx,
                (h.pid(), h.mid()),
                Pending {
                    seq: 0,
                    ts,
                    uid,
                    tid,
                    blocks,
                },
                sink,
            );
        }
        // Request blocks without a response block: log tree connects and session setups anyway.
        if let Some(p) = pending {
            for (_, info) in p.blocks {
                match info {
                    Info::TreeConnect(path) => self.emit_mapping(
                        cx,
                        p.ts,
                        &path,
                        ShareType::Unknown,
                        None,
                        None,
                        status_name(st),
                        u64::from(h.uid()),
                        None,
                        sink,
                    ),
                    Info::SessionSetup(c) if !st.is_success() => {
                        self.emit_auth(cx, p.ts, h.uid(), c, status_name(st), sink)
                    }
                    _ => {}
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    /// Handles one response block; `Ok(Some(info))` when more responses to it will follow.
    fn response_block(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header<'_>,
        st: Status,
        msg: &[u8],
        b: &Block<'_>,
        ts: Ts,
        uid: u16,
        tid: u16,
        info: Option<Info>,
        sink: &mut Sink,
    ) -> Result<Option<Info>, Smb1Error> {
        let u = h.is_unicode();
        let ok = st.carries_body();
        let sid = u64::from(h.uid());
        match (b.command, info) {
            (cmd::NEGOTIATE, _) if ok => {
                let r = NegotiateResponse::parse(msg, b, u)?;
                self.dialect = match self.offered.get(usize::from(r.dialect_index)) {
                    _ if r.dialect_index == 0xFFFF => None,
                    Some(d) => Some(d.clone()),
                    // The request was missed: WordCount 17 is the NT LM 0.12 form.
                    None if b.word_count == 17 => Some("NT LM 0.12".to_string()),
                    None => None,
                };
            }
            (cmd::SESSION_SETUP_ANDX, info) => {
                if st.as_nt() == Some(super::dos_error::STATUS_MORE_PROCESSING_REQUIRED) {
                    return Ok(None);
                }
                let creds = match info {
                    Some(Info::SessionSetup(c)) => c,
                    _ => Credentials::Blob(SecurityBlob::Unknown),
                };
                let guest = SessionSetupResponse::parse(msg, b, u)
                    .map(|r| r.is_guest())
                    .unwrap_or(false);
                if guest {
                    sink.count("smb1.guest_sessions", 1);
                }
                self.emit_auth(cx, ts, h.uid(), creds, status_name(st), sink);
            }
            (cmd::TREE_CONNECT_ANDX, info) => {
                let path = match info {
                    Some(Info::TreeConnect(p)) => p,
                    _ => UNKNOWN.to_string(),
                };
                let resp = if st.is_success() {
                    TreeConnectResponse::parse(msg, b, u)?
                } else {
                    None
                };
                let (stype, service, nfs) = match &resp {
                    Some(r) => {
                        let service = text(&r.service, cx, sink);
                        let nfs = text(&r.native_file_system, cx, sink);
                        (
                            share_type(&service),
                            Some(service),
                            Some(nfs).filter(|n| !n.is_empty()),
                        )
                    }
                    None => (ShareType::Unknown, None, None),
                };
                let tree_id = resp.as_ref().map(|_| u32::from(h.tid()));
                self.emit_mapping(
                    cx,
                    ts,
                    &path,
                    stype,
                    service,
                    nfs,
                    status_name(st),
                    sid,
                    tree_id,
                    sink,
                );
                if let Some(tree_id) = tree_id {
                    if let Some(s) = t.session(sid, cx, sink) {
                        s.insert_tree(tree_id, Tree::new(&path, stype), cx, sink);
                    }
                }
            }
            (cmd::TREE_DISCONNECT, Some(Info::TreeDisconnect)) => {
                if let Some(s) = t.sessions.get_mut(&u64::from(uid)) {
                    s.trees.remove(&u32::from(tid));
                }
            }
            (cmd::LOGOFF_ANDX, Some(Info::Logoff)) => t.end_session(u64::from(uid), cx, sink),
            (
                cmd::NT_CREATE_ANDX | cmd::OPEN_ANDX | cmd::NT_TRANSACT,
                Some(Info::Create {
                    name,
                    access,
                    disposition,
                    options,
                }),
            ) => {
                let opened = if !ok {
                    None
                } else if b.command == cmd::NT_CREATE_ANDX {
                    NtCreateResponse::parse(b)?.map(|r| Opened::from_nt(&r))
                } else if b.command == cmd::OPEN_ANDX {
                    OpenAndxResponse::parse(b)?.map(|r| Opened {
                        action: None,
                        fid: r.fid,
                        size: u64::from(r.file_data_size),
                        times: [0; 4],
                        pipe: matches!(r.resource_type, 1 | 2),
                    })
                } else {
                    match NtTransResponse::parse(msg, b)? {
                        Some(r) => Some(NtTransCreateResponse::parse(r.params)?).map(|c| Opened {
                            action: CreateAction::from_wire(c.create_action),
                            fid: c.fid,
                            size: c.end_of_file,
                            times: [0; 4],
                            pipe: matches!(c.resource_type, 1 | 2),
                        }),
                        None => None,
                    }
                };
                // The TID of the response names the tree (a chained TREE_CONNECT + CREATE
                // request did not know it yet).
                let tid = if opened.is_some() { h.tid() } else { tid };
                self.opened(
                    cx,
                    t,
                    ts,
                    sid,
                    tid,
                    name,
                    access,
                    disposition,
                    options,
                    opened,
                    st,
                    sink,
                );
            }
            (cmd::WRITE_ANDX, Some(Info::Write { fid })) => {
                if !ok {
                    if let Some(f) = file_mut(t, u64::from(uid), fid) {
                        f.write_status
                            .get_or_insert(st.as_nt().unwrap_or(0xC000_0001));
                    }
                } else {
                    WriteAndxResponse::parse(b)?;
                }
            }
            (cmd::READ_ANDX, Some(Info::Read { fid })) if ok => {
                if let Some(r) = ReadAndxResponse::parse(b)? {
                    let data = r.data(msg);
                    if let Some(f) = file_mut(t, u64::from(uid), fid) {
                        f.bytes_read = f.bytes_read.saturating_add(data.len() as u64);
                        feed_pipe(cx, f, Direction::ToClient, data, sink);
                    }
                }
            }
            (cmd::CLOSE, Some(Info::Close { fid })) => {
                if let Some(s) = t.sessions.get_mut(&u64::from(uid)) {
                    s.close_file(FileKey::Id(u128::from(fid)), cx, sink);
                }
            }
            (cmd::DELETE, Some(Info::Delete { name })) => {
                let tree = self.tree(cx, t, uid, tid, sink);
                let mut r = files_record(
                    cx,
                    FileAction::FileDelete,
                    &tree,
                    &name,
                    status_name(st),
                    u64::from(uid),
                );
                r.conn = cx.conn_at(ts);
                sink.emit(Event::SmbFiles(r));
            }
            (cmd::RENAME | cmd::NT_RENAME, Some(Info::Rename { old, new })) => {
                let tree = self.tree(cx, t, uid, tid, sink);
                let mut r = files_record(
                    cx,
                    FileAction::FileRename,
                    &tree,
                    &new,
                    status_name(st),
                    u64::from(uid),
                );
                r.conn = cx.conn_at(ts);
                r.prev_name = Some(old);
                sink.emit(Event::SmbFiles(r));
            }
            (cmd::TRANSACTION, Some(Info::PipeTrans { fid })) if ok => {
                if let Some(r) = TransResponse::parse(msg, b)? {
                    self.pipe_bytes(cx, t, uid, tid, fid, Direction::ToClient, r.data, sink);
                    if !r.is_last_piece() {
                        return Ok(Some(Info::PipeTrans { fid }));
                    }
                }
            }
            (cmd::TRANSACTION2, Some(Info::SetFile { fid, info })) => {
                self.set_file_info(cx, t, ts, uid, tid, fid, info, st, sink)
            }
            (cmd::TRANSACTION | cmd::TRANSACTION2, None) if ok => {
                // Midstream: a pipe transaction's response without its request; data for a
                // handle already known as a pipe still goes to it (FID from the header's TID
                // cannot be known, so only counted).
                sink.count("smb1.unmatched_trans_responses", 1);
            }
            _ => {}
        }
        Ok(None)
    }

    #[allow(clippy::too_many_arguments)]
    fn opened(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        ts: Ts,
        sid: u64,
        tid: u16,
        name: String,
        access: u32,
        disposition: u32,
        options: u32,
        opened: Option<Opened>,
        st: Status,
        sink: &mut Sink,
    ) {
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let tree = s.tree_or_unknown(u32::from(tid), cx, sink);
        let is_pipe = tree.is_pipe() || opened.as_ref().is_some_and(|o| o.pipe);
        let req = OpenRequest {
            ts,
            name: &name,
            access,
            disposition,
            options,
        };
        let mut r = open_record(cx, &tree, is_pipe, &req, status_name(st), sid);
        if let Some(o) = &opened {
            let fuid = fid_hex(o.fid);
            r.fuid = Some(fuid.clone());
            r.size = Some(o.size);
            r.create_action = o.action;
            [
                r.times_created,
                r.times_accessed,
                r.times_modified,
                r.times_changed,
            ] = o.times.map(filetime);
            let mut f = OpenFile::new(&name, u32::from(tid), is_pipe);
            f.fuid = Some(fuid);
            f.desired_access = Some(access);
            f.disposition = Some(disposition);
            f.create_options = Some(options);
            s.insert_file(FileKey::Id(u128::from(o.fid)), f, cx, sink);
        }
        let delete = r.delete_on_close && opened.is_some();
        let mut del = r.clone();
        sink.emit(Event::SmbFiles(r));
        if delete {
            del.action = Some(FileAction::FileDelete);
            sink.emit(Event::SmbFiles(del));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_file_info(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        ts: Ts,
        uid: u16,
        tid: u16,
        fid: u16,
        info: SetInfo,
        st: Status,
        sink: &mut Sink,
    ) {
        let sid = u64::from(uid);
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let Some(key) = handle(s, fid, tid, cx, sink) else {
            return;
        };
        let Some(f) = s.files.get_mut(&key) else {
            return;
        };
        let (name, fuid, ftree) = (f.name.clone(), f.fuid.clone(), f.tree_id);
        let (action, shown) = match &info {
            SetInfo::Disposition(true) => (FileAction::FileDelete, name.clone()),
            SetInfo::Disposition(false) => return,
            SetInfo::Rename(new) => {
                if st.is_success() {
                    f.name = new.clone();
                }
                (FileAction::FileRename, new.clone())
            }
        };
        let tree = s.tree_or_unknown(ftree, cx, sink);
        let mut r = files_record(cx, action, &tree, &shown, status_name(st), sid);
        r.conn = cx.conn_at(ts);
        r.fuid = fuid;
        if action == FileAction::FileRename {
            r.prev_name = Some(name);
        }
        sink.emit(Event::SmbFiles(r));
    }

    fn tree(&mut self, cx: &Cx<'_>, t: &mut Tables, uid: u16, tid: u16, sink: &mut Sink) -> Tree {
        match t.session(u64::from(uid), cx, sink) {
            Some(s) => s.tree_or_unknown(u32::from(tid), cx, sink),
            None => Tree::unknown(),
        }
    }

    fn emit_auth(
        &self,
        cx: &Cx<'_>,
        ts: Ts,
        uid: u16,
        creds: Credentials,
        status: String,
        sink: &mut Sink,
    ) {
        let nonempty = |s: String| if s.is_empty() { None } else { Some(s) };
        let (auth, user, domain, workstation) = match creds {
            Credentials::Raw {
                anonymous: true, ..
            } => ("anonymous", None, None, None),
            Credentials::Raw {
                account, domain, ..
            } => ("raw-ntlm", nonempty(account), nonempty(domain), None),
            Credentials::Blob(SecurityBlob::Authenticate(a)) => (
                if a.anonymous { "anonymous" } else { "ntlmssp" },
                nonempty(a.user),
                nonempty(a.domain),
                nonempty(a.workstation),
            ),
            Credentials::Blob(SecurityBlob::Kerberos) => ("kerberos", None, None, None),
            Credentials::Blob(SecurityBlob::NtlmStep(_)) => ("ntlmssp", None, None, None),
            Credentials::Blob(SecurityBlob::Unknown) => ("unknown", None, None, None),
        };
        sink.emit(Event::SmbAuth(SmbAuth {
            conn: cx.conn_at(ts),
            session_id: Some(u64::from(uid)),
            user,
            domain,
            workstation,
            auth,
            dialect: self.dialect_name(),
            status,
            smb_version: SmbVersion::Smb1,
        }));
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_mapping(
        &self,
        cx: &Cx<'_>,
        ts: Ts,
        path: &str,
        st: ShareType,
        service: Option<String>,
        nfs: Option<String>,
        status: String,
        sid: u64,
        tid: Option<u32>,
        sink: &mut Sink,
    ) {
        sink.emit(Event::SmbMapping(SmbMapping {
            conn: cx.conn_at(ts),
            path: path.to_string(),
            share: share_of(path),
            service,
            share_type: st.as_str(),
            native_file_system: nfs,
            status,
            smb_version: SmbVersion::Smb1,
            session_id: Some(sid),
            tree_id: tid,
        }));
    }

    /// Flow end: tree connects and logons that never got a response, then the SMB1 sessions end
    /// (handles still open get their FILE_WRITE summaries, as SMB1).
    pub fn close(&mut self, cx: &Cx<'_>, t: &mut Tables, sink: &mut Sink) {
        let pending = std::mem::take(&mut self.pending);
        self.trans.clear();
        for (_, p) in pending {
            let at = (p.ts, p.uid, p.tid);
            for (_, info) in p.blocks {
                match info {
                    Info::TreeConnect(path) => self.emit_mapping(
                        cx,
                        p.ts,
                        &path,
                        ShareType::Unknown,
                        None,
                        None,
                        NO_RESPONSE.into(),
                        u64::from(p.uid),
                        None,
                        sink,
                    ),
                    Info::SessionSetup(
                        c @ (Credentials::Raw { .. }
                        | Credentials::Blob(
                            SecurityBlob::Authenticate(_) | SecurityBlob::Kerberos,
                        )),
                    ) => self.emit_auth(cx, p.ts, p.uid, c, NO_RESPONSE.into(), sink),
                    info @ Info::Create { .. } => self.log_unanswered_open(cx, t, at, info, sink),
                    _ => {}
                }
            }
        }
        for uid in std::mem::take(&mut self.uids) {
            t.end_session(u64::from(uid), cx, sink);
        }
    }
}

/// What an open (NT_CREATE_ANDX, OPEN_ANDX, NT_TRANSACT_CREATE) response gave.
struct Opened {
    fid: u16,
    size: u64,
    /// FILETIMEs: created, accessed, modified, changed.
    times: [u64; 4],
    action: Option<CreateAction>,
    pipe: bool,
}

impl Opened {
    fn from_nt(r: &NtCreateResponse) -> Opened {
        Opened {
            action: CreateAction::from_wire(r.create_action),
            fid: r.fid,
            size: r.end_of_file,
            times: [
                r.creation_time,
                r.last_access_time,
                r.last_write_time,
                r.change_time,
            ],
            pipe: r.is_pipe(),
        }
    }
}

/// Pipe bytes to the handle's DCE-RPC conversation (counted per direction).
fn feed_pipe(cx: &Cx<'_>, f: &mut OpenFile, dir: Direction, data: &[u8], sink: &mut Sink) {
    if f.pipe.is_some() && !data.is_empty() {
        let name = if dir == Direction::ToServer {
            "smb1.pipe_bytes_to_server"
        } else {
            "smb1.pipe_bytes_to_client"
        };
        sink.count(name, data.len() as u64);
    }
    pipe_data(cx, f, dir, data, sink);
}

fn malformed(cx: &Cx<'_>, e: &Smb1Error, sink: &mut Sink) {
    if *e == Smb1Error::AndxTooDeep {
        // A chain that is merely long is a cap, like every other cap; loops and bad offsets are not.
        let detail = format!(
            "AndX chain cut after {} blocks",
            super::andx::MAX_ANDX_DEPTH
        );
        return sink.cap_reached("MAX_ANDX_DEPTH", cx.ts, Some(cx.conn()), LAYER, detail);
    }
    let kind = if e.is_andx_chain() {
        AnomalyKind::AndxLoop
    } else {
        AnomalyKind::Malformed
    };
    sink.anomaly(cx.ts, Some(cx.conn()), kind, LAYER, e.to_string());
}

/// A wire string as text, reporting MAX_STRING_BYTES when it was cut there.
fn text(s: &SmbStr<'_>, cx: &Cx<'_>, sink: &mut Sink) -> String {
    if s.is_oversized() {
        sink.cap_reached(
            "MAX_STRING_BYTES",
            cx.ts,
            Some(cx.conn()),
            LAYER,
            format!("string of {} bytes cut", s.raw.len()),
        );
    }
    s.decode()
}

/// A file name as the records carry it: no leading backslash (as SMB2 names have none).
fn file_name(s: &SmbStr<'_>, cx: &Cx<'_>, sink: &mut Sink) -> String {
    let n = text(s, cx, sink);
    n.trim_start_matches('\\').to_string()
}

/// The SMB1 FID as the smb_files `fuid`.
fn fid_hex(fid: u16) -> String {
    format!("{fid:04x}")
}

/// Service string of a tree connect response → share type.
fn share_type(service: &str) -> ShareType {
    if service.eq_ignore_ascii_case("A:") {
        ShareType::Disk
    } else if service.eq_ignore_ascii_case("IPC") {
        ShareType::Pipe
    } else if service
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case("LPT"))
    {
        ShareType::Print
    } else {
        ShareType::Unknown
    }
}

/// NT status names for both kinds of status: DOS errors by their usual NT equivalent where
/// one exists ("STATUS_OBJECT_NAME_NOT_FOUND"), else by DOS name ("ERRDOS/ERRbadmcb").
pub fn status_name(st: Status) -> String {
    match (st, st.as_nt()) {
        (_, Some(nt)) => nt_status_name(nt),
        (dos, None) => dos.display(),
    }
}

/// The handle for `fid`, created "<unknown>" on demand (midstream pickup) with the SMB1 fuid.
fn handle(s: &mut Session, fid: u16, tid: u16, cx: &Cx<'_>, sink: &mut Sink) -> Option<FileKey> {
    let key = s.file_or_unknown(FileKey::Id(u128::from(fid)), u32::from(tid), cx, sink)?;
    if let Some(f) = s.files.get_mut(&key).filter(|f| f.name == UNKNOWN) {
        f.fuid = Some(fid_hex(fid));
    }
    Some(key)
}

fn file_mut(t: &mut Tables, sid: u64, fid: u16) -> Option<&mut OpenFile> {
    t.sessions
        .get_mut(&sid)?
        .files
        .get_mut(&FileKey::Id(u128::from(fid)))
}

/// FILETIME (100 ns ticks since 1601) to Ts; None for 0 or pre-1970 values.
fn filetime(ft: u64) -> Option<Ts> {
    const EPOCH_DIFF_100NS: u64 = 116_444_736_000_000_000;
    ft.checked_sub(EPOCH_DIFF_100NS)
        .filter(|v| *v > 0)
        .map(|v| Ts(v.saturating_mul(100)))
}
