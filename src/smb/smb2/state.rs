//! The SMB2/3 state machine of one connection: request/response matching by MessageId, compound
//! chains (related operations inherit the previous command's session, tree and handle), trees and
//! handles (in the shared [`Tables`]), pipes to DCE-RPC, and what encryption or compression hides.
//!
//! It sees whole messages from the framer, except WRITE requests and READ responses whose data
//! streams past in chunks ([`Smb2State::begin_stream`] / [`Smb2State::stream_data`] /
//! [`Smb2State::end_stream`]): writes of more than a few KiB to a known disk file, and any WRITE
//! or READ too large to buffer, alone or as the last command of a compound.

use super::compression::{
    decompress, parse_compression_header, DecompressError, COMPRESSION_HEADER_LEN,
};
use super::records::*;
use super::stream_plan::StreamPlan;
use crate::dcerpc::Conversation;
use crate::event::{
    CreateAction, Event, FileAction, SmbAuth, SmbMapping, SmbOpaque, SmbVersion, SmbVisibility,
};
use crate::flow::Direction;
use crate::sink::Sink;
use crate::smb::crypto::ConnDecryptor;
use crate::smb::files::WriteTracker;
use crate::smb::ntlmssp::{parse_security_blob, SecurityBlob};
use crate::smb::status::{self, nt_status_name};
use crate::smb::tables::*;
use crate::time::Ts;
use crate::wire::parsed;
use std::collections::BTreeMap;

mod responses;
mod unanswered;

/// Requests waiting for their response, per connection. Beyond it the oldest is dropped.
pub const MAX_PENDING_SMB_REQUESTS: usize = 1024;
/// Commands followed in one compound message; the rest of the chain is skipped.
pub const MAX_COMPOUND_COMMANDS: usize = 64;
/// Largest plaintext we rebuild from a compression transform: an SMB2 message of the largest
/// READ/WRITE (8 MiB) and its headers.
pub const MAX_DECOMPRESSED_MESSAGE: usize = 8 * 1024 * 1024 + 4096;

const NO_RESPONSE: &str = "<no response>";

/// A SET_INFO request's meaning, owned until its response.
#[derive(Clone, Debug)]
enum SetInfo {
    Disposition(bool),
    Rename(String),
    Other,
}

#[derive(Clone, Debug)]
enum Info {
    Negotiate,
    SessionSetup(SecurityBlob),
    TreeConnect(String),
    TreeDisconnect,
    Logoff,
    Create {
        key: FileKey,
        name: String,
        access: u32,
        disposition: u32,
        options: u32,
    },
    Write,
    Read,
    Ioctl {
        transceive: bool,
    },
    SetInfo(SetInfo),
    Close,
}

#[derive(Clone, Debug)]
struct Pending {
    ts: Ts,
    session_id: u64,
    tree_id: u32,
    file: Option<FileKey>,
    info: Info,
}

/// Where streamed bytes of a message go.
#[derive(Debug)]
pub struct StreamTarget {
    dir: Direction,
    session_id: u64,
    tree_id: u32,
    message_id: u64,
    key: Option<FileKey>,
    /// File offset of the next byte (writes).
    offset: u64,
    /// Data bytes still expected; bytes after them in the message are padding.
    pub remaining: u64,
    write: bool,
    /// The message would have fit the buffer and streams only to save the copy: its write is
    /// dated and its request remembered when the message ends, as a buffered one would be, so
    /// the output does not depend on the choice.
    as_buffered: bool,
}

/// The chain context while walking one compound message.
#[derive(Default)]
struct Chain {
    session_id: Option<u64>,
    tree_id: Option<u32>,
    file: Option<FileKey>,
}

impl Chain {
    /// The session and tree of request `h`: a related one inherits the previous command's.
    fn ids(&mut self, h: &Header) -> (u64, u32) {
        let (sid, tid) = if h.is_related() {
            (
                self.session_id.unwrap_or(h.session_id),
                self.tree_id.unwrap_or(h.tree_id),
            )
        } else {
            (h.session_id, h.tree_id)
        };
        self.session_id = Some(sid);
        self.tree_id = Some(tid);
        (sid, tid)
    }

    /// The handle `id` names in request `h`: all-ones in a related one is the previous handle.
    fn key(&self, h: &Header, id: FileId) -> FileKey {
        if id == FILE_ID_RELATED && h.is_related() {
            self.file.unwrap_or(FileKey::Id(id))
        } else {
            FileKey::Id(id)
        }
    }
}

pub struct Smb2State {
    pending: BTreeMap<u64, Pending>,
    dialect: Option<u16>,
    cipher: Option<u16>,
    decryptor: ConnDecryptor,
    /// A request was seen on this connection. Until one is, the capture may be the server's half
    /// only and responses are read without their requests ([`responses`]).
    client_seen: bool,
    /// Server→client only: per (SessionId, TreeId) the latest handle a CREATE response granted and
    /// the file offset its WRITE responses reached (WRITE, READ and CLOSE responses name no
    /// handle), and the grant's order number (`granted` counts them).
    answered: BTreeMap<(u64, u32), (FileId, u64, u64)>,
    granted: u64,
}

impl Smb2State {
    pub fn new(decryptor: ConnDecryptor) -> Smb2State {
        Smb2State {
            pending: BTreeMap::new(),
            dialect: None,
            cipher: None,
            decryptor,
            client_seen: false,
            answered: BTreeMap::new(),
            granted: 0,
        }
    }

    pub fn dialect_name(&self) -> String {
        self.dialect
            .map_or_else(|| UNKNOWN.to_string(), dialect_name)
    }

    /// One whole SMB2 message (possibly compound) as it came off the wire (`decrypted` false) or
    /// out of a transform.
    pub fn message(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        msg: &[u8],
        decrypted: bool,
        sink: &mut Sink,
    ) {
        self.chain_message(cx, t, dir, msg, decrypted, &mut Chain::default(), sink);
    }

    /// [`Self::message`] continuing `chain` (the head of a compound whose last command streams).
    #[allow(clippy::too_many_arguments)]
    fn chain_message(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        msg: &[u8],
        decrypted: bool,
        chain: &mut Chain,
        sink: &mut Sink,
    ) {
        // Most messages are one command: read its header once, with no list of commands.
        if let Some(h) = parsed(parse_header(msg)).filter(|h| h.next_command == 0) {
            self.command(cx, t, dir, &h, msg, decrypted, chain, sink);
            return;
        }
        let (cmds, bad) = split_compound(msg, MAX_COMPOUND_COMMANDS);
        if bad && cmds.len() >= MAX_COMPOUND_COMMANDS {
            sink.cap_reached(
                "MAX_COMPOUND_COMMANDS",
                cx.ts,
                Some(cx.conn()),
                "smb2",
                format!(
                    "compound chain longer than {MAX_COMPOUND_COMMANDS} commands; the rest skipped"
                ),
            );
        } else if bad {
            sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                crate::event::AnomalyKind::Malformed,
                "smb2",
                "bad compound chain (NextCommand) or header",
            );
        }
        for cmd in cmds {
            let Some(h) = parsed(parse_header(cmd)) else {
                break;
            };
            self.command(cx, t, dir, &h, cmd, decrypted, chain, sink);
        }
    }

    /// One command of a message (`cmd`: its header `h` and body).
    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        h: &Header,
        cmd: &[u8],
        decrypted: bool,
        chain: &mut Chain,
        sink: &mut Sink,
    ) {
        sink.count("smb2.commands", 1);
        if !decrypted && matches!(h.command, NEGOTIATE | SESSION_SETUP) {
            self.decryptor.observe(dir, cmd);
            self.decryptor.report_notes(sink, cx.ts, Some(cx.conn()));
        }
        // A related request's SessionId is its predecessor's (or all-ones): nothing new.
        if !h.is_related() {
            t.join(cx, h.session_id, sink);
        }
        if h.is_response() != (dir == Direction::ToClient) {
            sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                crate::event::AnomalyKind::WrongDirection,
                "smb2",
                format!("command {} in the wrong direction", h.command.code()),
            );
            return;
        }
        if h.is_response() {
            self.response(cx, t, h, cmd, sink);
        } else {
            self.request(cx, t, h, cmd, chain, sink);
        }
    }

    fn remember(&mut self, cx: &Cx<'_>, mid: u64, p: Pending, sink: &mut Sink) {
        if self.pending.len() >= MAX_PENDING_SMB_REQUESTS && !self.pending.contains_key(&mid) {
            sink.cap_reached(
                "MAX_PENDING_SMB_REQUESTS",
                cx.ts,
                Some(cx.conn()),
                "smb2",
                format!("message {mid}"),
            );
            self.pending.pop_first();
        }
        self.pending.insert(mid, p);
    }

    fn request(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        msg: &[u8],
        chain: &mut Chain,
        sink: &mut Sink,
    ) {
        self.client_seen = true;
        let (sid, tid) = chain.ids(h);
        if !matches!(h.command, NEGOTIATE | SESSION_SETUP | TREE_CONNECT) {
            self.link_unanswered_tree(cx, t, sid, tid, sink);
        }
        let key_of = |id: FileId, chain: &Chain| chain.key(h, id);
        let mid = h.message_id;
        let mut p = Pending {
            ts: cx.ts,
            session_id: sid,
            tree_id: tid,
            file: None,
            info: Info::Negotiate,
        };
        match h.command {
            NEGOTIATE => {
                if let Some(r) = parsed(parse_negotiate_request(msg)) {
                    let _ = r;
                }
            }
            SESSION_SETUP => {
                let blob = parsed(parse_session_setup_request(msg))
                    .map(|r| parse_security_blob(r.security_buffer))
                    .unwrap_or(SecurityBlob::Unknown);
                p.info = Info::SessionSetup(blob);
            }
            LOGOFF => p.info = Info::Logoff,
            TREE_CONNECT => {
                let path = parsed(parse_tree_connect_request(msg))
                    .map(utf16_name)
                    .unwrap_or_default();
                p.info = Info::TreeConnect(path);
            }
            TREE_DISCONNECT => p.info = Info::TreeDisconnect,
            CREATE => {
                let Some(c) = parsed(parse_create_request(msg)) else {
                    return self.malformed(cx, "CREATE request", sink);
                };
                let name = utf16_name(c.name);
                let key = FileKey::Provisional(mid);
                if let Some(s) = t.session(sid, cx, sink) {
                    let tree = s.tree_or_unknown(tid, cx, sink);
                    let mut f = OpenFile::new(&name, tid, tree.is_pipe());
                    f.desired_access = Some(c.desired_access);
                    f.disposition = Some(c.disposition);
                    f.create_options = Some(c.options);
                    s.insert_file(key, f, cx, sink);
                }
                chain.file = Some(key);
                p.file = Some(key);
                p.info = Info::Create {
                    key,
                    name,
                    access: c.desired_access,
                    disposition: c.disposition,
                    options: c.options,
                };
            }
            WRITE => {
                let Some(w) = parsed(parse_write_request(msg)) else {
                    return self.malformed(cx, "WRITE request", sink);
                };
                let key = key_of(w.file_id, chain);
                chain.file = Some(key);
                let key = self.write_begin(cx, t, sid, tid, key, &w, Some(cx.ts), sink);
                if let Some(key) = key {
                    let data = w.data(msg);
                    self.write_data(cx, t, sid, key, w.offset, data, sink);
                    // A whole message holding less than its Length: the length lies, nothing
                    // was lost; the contents are not what was declared.
                    if (data.len() as u64) < u64::from(w.length) {
                        sink.anomaly(
                            cx.ts,
                            Some(cx.conn()),
                            crate::event::AnomalyKind::Malformed,
                            "smb2",
                            "WRITE Length beyond its message",
                        );
                        if let Some(f) = file_mut(t, sid, key) {
                            if let Some(w) = f.writes.as_mut() {
                                w.mark_incomplete();
                            }
                        }
                    }
                }
                p.file = key;
                p.info = Info::Write;
            }
            READ => {
                let Some(r) = parsed(parse_read_request(msg)) else {
                    return self.malformed(cx, "READ request", sink);
                };
                let key = key_of(r.file_id, chain);
                chain.file = Some(key);
                self.adopt(cx, t, sid, tid, key, sink);
                p.file = t
                    .session(sid, cx, sink)
                    .and_then(|s| s.file_or_unknown(key, tid, cx, sink));
                p.info = Info::Read;
            }
            IOCTL => {
                let Some(io) = parsed(parse_ioctl_request(msg)) else {
                    return self.malformed(cx, "IOCTL request", sink);
                };
                let key = key_of(io.file_id, chain);
                chain.file = Some(key);
                let transceive = io.ctl_code == FSCTL_PIPE_TRANSCEIVE;
                if transceive {
                    p.file =
                        self.pipe_bytes(cx, t, sid, tid, key, Direction::ToServer, io.input, sink);
                }
                p.info = Info::Ioctl { transceive };
            }
            CLOSE => {
                let Some(id) = parsed(parse_close_request(msg)) else {
                    return self.malformed(cx, "CLOSE request", sink);
                };
                let key = key_of(id, chain);
                self.adopt(cx, t, sid, tid, key, sink);
                chain.file = Some(key);
                p.file = Some(key);
                p.info = Info::Close;
            }
            SET_INFO => {
                let Some(si) = parsed(parse_set_info_request(msg)) else {
                    return self.malformed(cx, "SET_INFO request", sink);
                };
                let key = key_of(si.file_id, chain);
                self.adopt(cx, t, sid, tid, key, sink);
                chain.file = Some(key);
                p.file = Some(key);
                p.info = Info::SetInfo(match si.kind {
                    SetInfoKind::Disposition(d) => SetInfo::Disposition(d),
                    SetInfoKind::Rename { name, .. } => SetInfo::Rename(utf16_name(name)),
                    SetInfoKind::Other { .. } => SetInfo::Other,
                });
            }
            _ => return,
        }
        self.remember(cx, mid, p, sink);
    }

    fn malformed(&mut self, cx: &Cx<'_>, what: &str, sink: &mut Sink) {
        sink.anomaly(
            cx.ts,
            Some(cx.conn()),
            crate::event::AnomalyKind::Malformed,
            "smb2",
            format!("short {what}"),
        );
    }

    /// Starts a write through `key`: counts it (dated `stamp`, or later by [`Self::end_stream`])
    /// and returns the resolved handle key.
    #[allow(clippy::too_many_arguments)]
    fn write_begin(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        tid: u32,
        key: FileKey,
        w: &WriteRequest,
        stamp: Option<Ts>,
        sink: &mut Sink,
    ) -> Option<FileKey> {
        self.adopt(cx, t, sid, tid, key, sink);
        let s = t.session(sid, cx, sink)?;
        let key = s.file_or_unknown(key, tid, cx, sink)?;
        let f = s.files.get_mut(&key)?;
        if !f.is_pipe {
            let tracker = f.writes.get_or_insert_with(WriteTracker::new);
            tracker.begin_write_unstamped(w.offset, u64::from(w.length));
            if let Some(ts) = stamp {
                tracker.stamp(ts);
            }
        }
        Some(key)
    }

    /// Write data at file `offset` (a whole write or a streamed chunk of one).
    #[allow(clippy::too_many_arguments)]
    fn write_data(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        key: FileKey,
        offset: u64,
        data: &[u8],
        sink: &mut Sink,
    ) {
        let Some(s) = t.sessions.get_mut(&sid) else {
            return;
        };
        let key = s.resolve(key);
        let tree_known = s
            .files
            .get(&key)
            .and_then(|f| s.trees.get(&f.tree_id))
            .is_some_and(|tr| tr.share_type != ShareType::Unknown);
        let Some(f) = s.files.get_mut(&key) else {
            return;
        };
        // On a tree whose type we missed, a handle whose first bytes are DCE-RPC is a pipe.
        if !f.is_pipe
            && !tree_known
            && offset == 0
            && f.writes.as_ref().is_none_or(|w| w.bytes_written == 0)
            && Conversation::looks_like_dcerpc(data)
        {
            f.writes = None;
            attach_pipe_counted(&mut s.pipes, f, cx, sink);
            if let Some(tree) = s.trees.get_mut(&f.tree_id) {
                tree.share_type = ShareType::Pipe;
            }
        }
        f.emit_deferred_open(sink);
        if f.is_pipe {
            pipe_data(cx, f, Direction::ToServer, data, sink);
        } else if let Some(w) = f.writes.as_mut() {
            w.data(offset, data);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn write_missing(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        key: FileKey,
        offset: u64,
        len: u64,
        sink: &mut Sink,
    ) {
        let Some(s) = t.sessions.get_mut(&sid) else {
            return;
        };
        let key = s.resolve(key);
        let Some(f) = s.files.get_mut(&key) else {
            return;
        };
        if let Some(conv) = f.pipe.as_mut() {
            conv.gap(cx.flow, cx.ts, Direction::ToServer, sink);
        } else if let Some(w) = f.writes.as_mut() {
            w.missing(offset, len);
        }
    }

    /// Bytes for a pipe handle (IOCTL transceive, pipe reads). Returns the resolved key.
    #[allow(clippy::too_many_arguments)]
    fn pipe_bytes(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        tid: u32,
        key: FileKey,
        dir: Direction,
        data: &[u8],
        sink: &mut Sink,
    ) -> Option<FileKey> {
        self.adopt(cx, t, sid, tid, key, sink);
        let s = t.session(sid, cx, sink)?;
        let key = s.file_or_unknown(key, tid, cx, sink)?;
        let f = s.files.get_mut(&key)?;
        if !f.is_pipe && Conversation::looks_like_dcerpc(data) {
            attach_pipe_counted(&mut s.pipes, f, cx, sink);
            if let Some(tree) = s.trees.get_mut(&f.tree_id) {
                tree.share_type = ShareType::Pipe;
            }
        }
        f.emit_deferred_open(sink);
        pipe_data(cx, f, dir, data, sink);
        Some(key)
    }

    /// A request names handle `key`: one granted by a CREATE whose response was missed, or one
    /// opened on another channel of the session.
    fn adopt(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        tid: u32,
        key: FileKey,
        sink: &mut Sink,
    ) {
        self.link_unanswered_create(cx, t, sid, tid, key, sink);
        adopt_if_unknown(cx, t, sid, key, sink);
    }

    fn take_pending(&mut self, h: &Header) -> Option<Pending> {
        if h.status == status::STATUS_PENDING && h.flags & FLAG_ASYNC != 0 {
            return None; // interim: the final response will come under the same MessageId
        }
        self.pending.remove(&h.message_id)
    }

    fn response(&mut self, cx: &Cx<'_>, t: &mut Tables, h: &Header, msg: &[u8], sink: &mut Sink) {
        if h.status == status::STATUS_PENDING && h.flags & FLAG_ASYNC != 0 {
            sink.count("smb2.interim_responses", 1);
            return;
        }
        let pending = self.take_pending(h);
        if pending.is_none() && !self.client_seen && self.response_only(cx, t, h, msg, sink) {
            return;
        }
        let st = h.status;
        let ok = !status::is_error(st);
        match (h.command, pending) {
            (NEGOTIATE, _) => {
                if let Some(r) = parsed(parse_negotiate_response(msg)) {
                    self.dialect = Some(r.dialect);
                    self.cipher = r.cipher();
                }
            }
            (SESSION_SETUP, p) => self.session_setup_response(cx, t, h, msg, p, sink),
            (TREE_CONNECT, p) => {
                let path = match &p {
                    Some(Pending {
                        info: Info::TreeConnect(path),
                        ..
                    }) => path.clone(),
                    _ => UNKNOWN.to_string(),
                };
                let share_type = if ok {
                    parsed(parse_tree_connect_response(msg)).map(|r| {
                        if r.share_flags & SHARE_FLAG_ENCRYPT_DATA != 0 {
                            if let Some(s) = t.sessions.get_mut(&h.session_id) {
                                s.encrypt_data = true;
                            }
                        }
                        r.share_type
                    })
                } else {
                    None
                };
                let ts = p.as_ref().map_or(cx.ts, |p| p.ts);
                self.emit_mapping(
                    cx,
                    ts,
                    &path,
                    share_type.unwrap_or(ShareType::Unknown),
                    nt_status_name(st),
                    h.session_id,
                    Some(h.tree_id),
                    sink,
                );
                if let (true, Some(stype)) = (ok, share_type) {
                    let tree = Tree::new(&path, stype);
                    t.share_tree(cx, h.session_id, h.tree_id, &tree, sink);
                    if let Some(s) = t.session(h.session_id, cx, sink) {
                        s.insert_tree(h.tree_id, tree, cx, sink);
                    }
                }
            }
            (TREE_DISCONNECT, Some(p)) => t.tree_disconnect(cx, p.session_id, p.tree_id),
            (LOGOFF, Some(p)) => t.logoff(p.session_id, cx, sink),
            (
                CREATE,
                Some(Pending {
                    ts,
                    session_id,
                    tree_id,
                    info:
                        Info::Create {
                            key,
                            name,
                            access,
                            disposition,
                            options,
                        },
                    ..
                }),
            ) => {
                let Some(s) = t.session(session_id, cx, sink) else {
                    return;
                };
                let tree = s.tree_or_unknown(tree_id, cx, sink);
                let resp = if ok {
                    parsed(parse_create_response(msg))
                } else {
                    None
                };
                let is_pipe = s.files.get(&key).map_or(tree.is_pipe(), |f| f.is_pipe);
                let req = OpenRequest {
                    ts,
                    name: &name,
                    access,
                    disposition,
                    options,
                };
                let mut r = open_record(cx, &tree, is_pipe, &req, nt_status_name(st), session_id);
                match resp {
                    Some(c) => {
                        let fuid = file_id_hex(c.file_id);
                        r.fuid = Some(fuid.clone());
                        r.size = Some(c.end_of_file);
                        r.create_action = CreateAction::from_wire(c.create_action);
                        r.times_created = filetime(c.creation_time);
                        r.times_accessed = filetime(c.last_access_time);
                        r.times_modified = filetime(c.last_write_time);
                        r.times_changed = filetime(c.change_time);
                        if let Some(mut f) = s.files.remove(&key) {
                            f.fuid = Some(fuid);
                            s.insert_file(FileKey::Id(c.file_id), f, cx, sink);
                        }
                        // Bounded like the handles it points to; a refused handle needs no alias.
                        if let FileKey::Provisional(m) = key {
                            if s.files.contains_key(&FileKey::Id(c.file_id))
                                && s.aliases.len() < MAX_OPEN_FILES
                            {
                                s.aliases.insert(m, c.file_id);
                            }
                        }
                    }
                    None => {
                        if let Some(f) = s.remove_file(key) {
                            finish_file_in(cx, session_id, &tree, f, sink);
                        }
                    }
                }
                let delete = r.delete_on_close && ok;
                let mut del = r.clone();
                let held = match resp {
                    // Tree type missed (midstream): pipe or file is decided by the first bytes.
                    Some(c) if tree.share_type == ShareType::Unknown && !is_pipe => s
                        .files
                        .get_mut(&FileKey::Id(c.file_id))
                        .map(|f| f.deferred_open = Some(Box::new(r.clone())))
                        .is_some(),
                    _ => false,
                };
                if !held {
                    sink.emit(Event::SmbFiles(r));
                }
                if delete {
                    del.action = Some(FileAction::FileDelete);
                    sink.emit(Event::SmbFiles(del));
                }
                if let Some(c) = resp {
                    t.share_handle(cx, session_id, c.file_id, name, tree_id, sink);
                }
            }
            (WRITE, Some(p)) if !ok => {
                if let Some(f) = p.file.and_then(|k| file_mut(t, p.session_id, k)) {
                    f.write_status.get_or_insert(st);
                }
            }
            (READ, Some(p)) if ok => {
                if let (Some(r), Some(key)) = (parsed(parse_read_response(msg)), p.file) {
                    let data = r.data(msg);
                    self.read_data(cx, t, p.session_id, key, data, sink);
                }
            }
            (
                IOCTL,
                Some(Pending {
                    session_id,
                    tree_id,
                    file,
                    info: Info::Ioctl { transceive: true },
                    ..
                }),
            ) if ok => {
                if let Some(io) = parsed(parse_ioctl_response(msg)) {
                    let key = file.unwrap_or(FileKey::Id(io.file_id));
                    self.pipe_bytes(
                        cx,
                        t,
                        session_id,
                        tree_id,
                        key,
                        Direction::ToClient,
                        io.output,
                        sink,
                    );
                }
            }
            (IOCTL, None) => {
                // Midstream: the response names its FileId; a known pipe still gets the bytes.
                if let Some(io) = parsed(parse_ioctl_response(msg))
                    .filter(|io| io.ctl_code == FSCTL_PIPE_TRANSCEIVE && ok)
                {
                    if t.sessions
                        .get(&h.session_id)
                        .is_some_and(|s| s.files.contains_key(&FileKey::Id(io.file_id)))
                    {
                        self.pipe_bytes(
                            cx,
                            t,
                            h.session_id,
                            h.tree_id,
                            FileKey::Id(io.file_id),
                            Direction::ToClient,
                            io.output,
                            sink,
                        );
                    }
                }
            }
            (CLOSE, Some(p)) => {
                if let Some(key) = p.file {
                    let Some(s) = t.sessions.get_mut(&p.session_id) else {
                        return;
                    };
                    if let FileKey::Id(id) = s.resolve(key) {
                        t.withdraw_handle(cx, p.session_id, id);
                    }
                    if let Some(s) = t.sessions.get_mut(&p.session_id) {
                        s.close_file(key, cx, sink);
                    }
                }
            }
            (
                SET_INFO,
                Some(Pending {
                    ts,
                    session_id,
                    tree_id,
                    file: Some(key),
                    info: Info::SetInfo(si),
                    ..
                }),
            ) => {
                let Some(s) = t.session(session_id, cx, sink) else {
                    return;
                };
                let Some(key) = s.file_or_unknown(key, tree_id, cx, sink) else {
                    return;
                };
                let Some(f) = s.files.get_mut(&key) else {
                    return;
                };
                let (name, fuid, ftree) = (f.name.clone(), f.fuid.clone(), f.tree_id);
                let action = match &si {
                    SetInfo::Disposition(true) => FileAction::FileDelete,
                    SetInfo::Rename(new) => {
                        if ok {
                            f.name = new.clone();
                        }
                        FileAction::FileRename
                    }
                    _ => return,
                };
                let tree = s.tree_or_unknown(ftree, cx, sink);
                let new_name = if let SetInfo::Rename(n) = &si {
                    n.clone()
                } else {
                    name.clone()
                };
                let mut r =
                    files_record(cx, action, &tree, &new_name, nt_status_name(st), session_id);
                r.conn = cx.conn_at(ts);
                r.fuid = fuid;
                if action == FileAction::FileRename {
                    r.prev_name = Some(name);
                }
                sink.emit(Event::SmbFiles(r));
            }
            _ => {}
        }
    }

    fn read_data(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        key: FileKey,
        data: &[u8],
        sink: &mut Sink,
    ) {
        let Some(f) = file_mut(t, sid, key) else {
            return;
        };
        f.bytes_read = f.bytes_read.saturating_add(data.len() as u64);
        pipe_data(cx, f, Direction::ToClient, data, sink);
    }

    fn session_setup_response(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        msg: &[u8],
        p: Option<Pending>,
        sink: &mut Sink,
    ) {
        if h.status == status::STATUS_MORE_PROCESSING_REQUIRED {
            return;
        }
        let flags = parsed(parse_session_setup_response(msg)).map_or(0, |r| r.session_flags);
        let blob = match p {
            Some(Pending {
                info: Info::SessionSetup(b),
                ..
            }) => b,
            _ => SecurityBlob::Unknown,
        };
        let ts = cx.ts;
        let auth = self.auth_record(cx, ts, h.session_id, blob, flags, nt_status_name(h.status));
        if !status::is_error(h.status) {
            if let Some(s) = t.session(h.session_id, cx, sink) {
                s.auth = Some(SessionAuth {
                    user: auth.user.clone(),
                    domain: auth.domain.clone(),
                    workstation: auth.workstation.clone(),
                    auth: auth.auth,
                });
                if flags & SESSION_FLAG_ENCRYPT_DATA != 0 {
                    s.encrypt_data = true;
                }
            }
        }
        sink.emit(Event::SmbAuth(auth));
    }

    fn auth_record(
        &self,
        cx: &Cx<'_>,
        ts: Ts,
        sid: u64,
        blob: SecurityBlob,
        flags: u16,
        status: String,
    ) -> SmbAuth {
        let nonempty = |s: String| if s.is_empty() { None } else { Some(s) };
        let ticket = match &blob {
            SecurityBlob::Kerberos(t) => *t,
            _ => None,
        };
        let (mut auth, user, domain, ws) = match blob {
            SecurityBlob::Authenticate(a) => {
                let kind = if a.anonymous { "anonymous" } else { "ntlmssp" };
                (
                    kind,
                    nonempty(a.user),
                    nonempty(a.domain),
                    nonempty(a.workstation),
                )
            }
            SecurityBlob::Kerberos(_) => ("kerberos", None, None, None),
            SecurityBlob::NtlmStep(_) => ("ntlmssp", None, None, None),
            SecurityBlob::Unknown => ("unknown", None, None, None),
        };
        if flags & SESSION_FLAG_IS_NULL != 0 {
            auth = "anonymous";
        }
        // Kerberos names no user in the clear; a ticket opened with `--keytab` does.
        let (user, domain, user_source) = match self.decryptor.kerberos_client(sid) {
            Some(c) if auth == "kerberos" && user.is_none() => (
                Some(c.user.clone()),
                Some(c.realm.clone()),
                Some(crate::event::UserSource::Keytab),
            ),
            _ => (user, domain, None),
        };
        SmbAuth {
            conn: cx.conn_at(ts),
            session_id: Some(sid),
            user,
            domain,
            workstation: ws,
            auth,
            dialect: self.dialect_name(),
            status,
            smb_version: SmbVersion::Smb2,
            user_source,
            ticket,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_mapping(
        &self,
        cx: &Cx<'_>,
        ts: Ts,
        path: &str,
        st: ShareType,
        status: String,
        sid: u64,
        tid: Option<u32>,
        sink: &mut Sink,
    ) {
        let service = match st {
            ShareType::Disk => Some("A:".to_string()),
            ShareType::Pipe => Some("IPC".to_string()),
            ShareType::Print => Some("LPT1:".to_string()),
            ShareType::Unknown => None,
        };
        sink.emit(Event::SmbMapping(SmbMapping {
            conn: cx.conn_at(ts),
            path: path.to_string(),
            share: share_of(path),
            service,
            share_type: st.as_str(),
            native_file_system: None,
            status,
            smb_version: SmbVersion::Smb2,
            session_id: Some(sid),
            tree_id: tid,
        }));
    }

    /// A message's prefix is in, as planned by [`plan_stream`](super::stream_plan::plan_stream):
    /// the commands before `plan.last` whole, the last one's header and fixed part. If the last is
    /// a WRITE request or READ response, the earlier commands are handled, the write or read is
    /// accounted, and the target for its data is returned.
    ///
    /// `as_buffered`: the message fits the buffer and streams only to save the copy. Then only a
    /// lone WRITE to a known disk file streams (pipes get whole messages, DCE-RPC wants them), and
    /// what a buffered message would change at its end waits for [`Self::end_stream`].
    #[allow(clippy::too_many_arguments)]
    pub fn begin_stream(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        prefix: &[u8],
        plan: &StreamPlan,
        as_buffered: bool,
        sink: &mut Sink,
    ) -> Option<StreamTarget> {
        let last = prefix.get(plan.last..)?;
        let h = parsed(parse_header(last))?;
        match (dir, h.command) {
            (Direction::ToServer, WRITE) if !h.is_response() => {
                let w = parsed(parse_write_request(last))?;
                if as_buffered && (plan.last != 0 || !self.streams_to_disk_file(t, &h, &w)) {
                    return None;
                }
                let mut chain = Chain::default();
                if let Some(head) = prefix.get(..plan.last).filter(|hd| !hd.is_empty()) {
                    self.chain_message(cx, t, dir, head, false, &mut chain, sink);
                }
                sink.count("smb2.commands", 1);
                let (sid, tid) = chain.ids(&h);
                self.link_unanswered_tree(cx, t, sid, tid, sink);
                let key = chain.key(&h, w.file_id);
                let key = self.write_begin(
                    cx,
                    t,
                    sid,
                    tid,
                    key,
                    &w,
                    (!as_buffered).then_some(cx.ts),
                    sink,
                );
                if !as_buffered {
                    self.remember(
                        cx,
                        h.message_id,
                        Pending {
                            ts: cx.ts,
                            session_id: sid,
                            tree_id: tid,
                            file: key,
                            info: Info::Write,
                        },
                        sink,
                    );
                }
                Some(StreamTarget {
                    dir,
                    session_id: sid,
                    tree_id: tid,
                    message_id: h.message_id,
                    key,
                    offset: w.offset,
                    remaining: u64::from(w.length),
                    write: true,
                    as_buffered,
                })
            }
            (Direction::ToClient, READ)
                if h.is_response()
                    && !status::is_error(h.status)
                    && plan.last == 0
                    && !as_buffered =>
            {
                let r = parsed(parse_read_response(last))?;
                sink.count("smb2.commands", 1);
                let p = self.take_pending(&h);
                let (sid, tid, key) = p.map_or((h.session_id, h.tree_id, None), |p| {
                    (p.session_id, p.tree_id, p.file)
                });
                Some(StreamTarget {
                    dir,
                    session_id: sid,
                    tree_id: tid,
                    message_id: h.message_id,
                    key,
                    offset: 0,
                    remaining: u64::from(r.data_length),
                    write: false,
                    as_buffered,
                })
            }
            _ => None,
        }
    }

    /// Whether a lone WRITE's data can stream without changing what its buffered handling
    /// would do: its handle is a named file on a known disk tree (no pipe to feed whole
    /// messages, no DCE-RPC sniffing, no held open record, no multichannel adoption). Changes
    /// nothing.
    fn streams_to_disk_file(&self, t: &Tables, h: &Header, w: &WriteRequest) -> bool {
        let Some(s) = t.sessions.get(&h.session_id) else {
            return false;
        };
        // As `adopt_if_unknown` looks it up: by the FileId as sent.
        let Some(f) = s.files.get(&FileKey::Id(w.file_id)) else {
            return false;
        };
        let tree_is_disk = s
            .trees
            .get(&f.tree_id)
            .is_some_and(|tr| tr.share_type != ShareType::Unknown && !tr.is_pipe());
        tree_is_disk
            && f.name != UNKNOWN
            && !f.is_pipe
            && f.pipe.is_none()
            && f.deferred_open.is_none()
    }

    /// Streamed data bytes of the message `target` was begun for (never past `remaining`).
    pub fn stream_data(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        target: &mut StreamTarget,
        data: &[u8],
        sink: &mut Sink,
    ) {
        let n = (data.len() as u64).min(target.remaining) as usize;
        let Some(data) = data.get(..n) else { return };
        if data.is_empty() {
            return;
        }
        if let Some(key) = target.key {
            if target.write {
                self.write_data(cx, t, target.session_id, key, target.offset, data, sink);
            } else {
                self.read_data(cx, t, target.session_id, key, data, sink);
            }
        }
        target.offset = target.offset.saturating_add(n as u64);
        target.remaining -= n as u64;
    }

    /// `len` bytes of a streaming message were lost; the framer kept its place.
    pub fn stream_gap(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        target: &mut StreamTarget,
        len: u64,
        sink: &mut Sink,
    ) {
        let n = len.min(target.remaining);
        if n == 0 {
            return;
        }
        if let Some(key) = target.key {
            if target.write {
                self.write_missing(cx, t, target.session_id, key, target.offset, n, sink);
            } else if let Some(conv) =
                file_mut(t, target.session_id, key).and_then(|f| f.pipe.as_mut())
            {
                conv.gap(cx.flow, cx.ts, target.dir, sink);
            }
        }
        target.offset = target.offset.saturating_add(n);
        target.remaining -= n;
    }

    /// The message of a streaming `target` ended (`closing`: cut by the flow's end). A write
    /// cut short by its own message declared more than it held (a lie, as for a buffered one);
    /// an as-buffered write is dated and its request remembered now.
    pub fn end_stream(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        target: &StreamTarget,
        closing: bool,
        sink: &mut Sink,
    ) {
        // Like a buffered WRITE: without a handle (a cap refused it) nothing is said.
        let (true, Some(key)) = (target.write, target.key) else {
            return;
        };
        let cut = target.remaining > 0 && !closing;
        if cut {
            sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                crate::event::AnomalyKind::Malformed,
                "smb2",
                "WRITE Length beyond its message",
            );
        }
        if let Some(w) = file_mut(t, target.session_id, key).and_then(|f| f.writes.as_mut()) {
            if cut {
                w.mark_incomplete();
            }
            if target.as_buffered {
                w.stamp(cx.ts);
            }
        }
        if target.as_buffered && !closing {
            let p = Pending {
                ts: cx.ts,
                session_id: target.session_id,
                tree_id: target.tree_id,
                file: Some(key),
                info: Info::Write,
            };
            self.remember(cx, target.message_id, p, sink);
        }
    }

    /// A whole transform (0xFD) message: decrypted when keys allow, else accounted as opaque.
    pub fn transform(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        msg: &[u8],
        sink: &mut Sink,
    ) {
        // One NetBIOS message normally holds one transform; be lenient like Suricata and walk
        // several back to back when the first one's size says there is more.
        let mut rest = msg;
        for _ in 0..MAX_COMPOUND_COMMANDS {
            let Some(th) = parsed(parse_transform_header(rest)) else {
                return self.malformed(cx, "transform header", sink);
            };
            let size = TRANSFORM_HEADER_LEN.saturating_add(th.original_size as usize);
            let (one, tail) =
                if size < rest.len() && rest.get(size..size + 4) == Some(&TRANSFORM_MAGIC[..]) {
                    rest.split_at(size)
                } else {
                    (rest, &[][..])
                };
            self.one_transform(cx, t, dir, &th, one, sink);
            if tail.is_empty() {
                return;
            }
            rest = tail;
        }
    }

    fn one_transform(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        th: &TransformHeader,
        msg: &[u8],
        sink: &mut Sink,
    ) {
        let plain = self.decryptor.decrypt(dir, msg);
        // Keys derived, or why not ("could not derive keys for session …"): anomalies, no secrets.
        self.decryptor.report_notes(sink, cx.ts, Some(cx.conn()));
        match plain {
            Some(plain) => {
                self.visibility(
                    cx,
                    t,
                    th.session_id,
                    "encrypted",
                    msg.len() as u64,
                    true,
                    sink,
                );
                sink.count("smb2.decrypted_messages", 1);
                if plain.starts_with(COMPRESSION_MAGIC) {
                    // compressed, then encrypted
                    self.compressed(cx, t, dir, &plain, plain.len() as u64, sink);
                } else {
                    self.message(cx, t, dir, &plain, true, sink);
                }
            }
            None => self.transform_opaque(cx, t, dir, th, msg.len() as u64, sink),
        }
    }

    /// A transform message we cannot (or chose not to) decrypt: visibility totals and SmbOpaque.
    pub fn transform_opaque(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        th: &TransformHeader,
        wire_size: u64,
        sink: &mut Sink,
    ) {
        self.visibility(cx, t, th.session_id, "encrypted", wire_size, false, sink);
        sink.emit(Event::SmbOpaque(SmbOpaque {
            conn: cx.conn(),
            session_id: th.session_id,
            to_server: dir == Direction::ToServer,
            original_size: th.original_size,
            wire_size: u32::try_from(wire_size).unwrap_or(u32::MAX),
            kind: "encrypted",
            nonce_form: nonce_form(&th.nonce),
        }));
    }

    /// A compression transform (0xFC): rebuilt and parsed when only NONE / Pattern_V1 were used,
    /// else opaque. `msg` may be only the header when the message was too large to buffer.
    pub fn compressed(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        dir: Direction,
        msg: &[u8],
        wire_size: u64,
        sink: &mut Sink,
    ) {
        let Some(ch) = parsed(parse_compression_header(msg)) else {
            return self.malformed(cx, "compression header", sink);
        };
        let plain = if wire_size == msg.len() as u64 {
            match decompress(msg, MAX_DECOMPRESSED_MESSAGE) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.undecompressed(cx, e, sink);
                    None
                }
            }
        } else {
            None
        };
        // The session id: from the rebuilt header, or from the uncompressed prefix of an unchained one.
        let sid = plain
            .as_deref()
            .and_then(|p| parsed(parse_header(p)))
            .or_else(|| {
                msg.get(COMPRESSION_HEADER_LEN..)
                    .and_then(|m| parsed(parse_header(m)))
            })
            .map_or(0, |h| h.session_id);
        self.visibility(cx, t, sid, "compressed", wire_size, plain.is_some(), sink);
        match plain {
            Some(p) if p.starts_with(SMB2_MAGIC) => self.message(cx, t, dir, &p, true, sink),
            _ => {
                sink.count("smb2.compressed_undecoded", 1);
                sink.emit(Event::SmbOpaque(SmbOpaque {
                    conn: cx.conn(),
                    session_id: sid,
                    to_server: dir == Direction::ToServer,
                    original_size: ch.original_size,
                    wire_size: u32::try_from(wire_size).unwrap_or(u32::MAX),
                    kind: "compressed",
                    nonce_form: "random",
                }));
            }
        }
    }

    /// Why a whole compressed message was not rebuilt, as a typed event.
    fn undecompressed(&mut self, cx: &Cx<'_>, e: DecompressError, sink: &mut Sink) {
        match e {
            DecompressError::TooLarge => sink.cap_reached(
                "MAX_DECOMPRESSED_MESSAGE",
                cx.ts,
                Some(cx.conn()),
                "smb2",
                "compressed message not rebuilt",
            ),
            DecompressError::Unsupported(_) => sink.count("smb2.compressed_unsupported", 1),
            DecompressError::Malformed | DecompressError::Corrupt(_) => sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                crate::event::AnomalyKind::Malformed,
                "smb2",
                format!("compressed message does not decode ({e:?})"),
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn visibility(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        kind: &'static str,
        bytes: u64,
        readable: bool,
        sink: &mut Sink,
    ) {
        let (cipher, dialect) = (self.cipher.map(cipher_name), self.dialect.map(dialect_name));
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let slot = if kind == "encrypted" {
            &mut s.encrypted
        } else {
            &mut s.compressed
        };
        let first = slot.is_none();
        let v = slot.get_or_insert_with(Visibility::default);
        v.messages += 1;
        v.bytes = v.bytes.saturating_add(bytes);
        if readable {
            v.decrypted += 1;
        }
        if first {
            let a = s.auth.clone().unwrap_or_default();
            sink.emit(Event::SmbVisibility(SmbVisibility {
                conn: cx.conn(),
                session_id: sid,
                kind,
                state: "start",
                cipher: if kind == "encrypted" { cipher } else { None },
                dialect,
                user: a.user,
                domain: a.domain,
                workstation: a.workstation,
                messages: 1,
                bytes,
                decrypted: readable,
            }));
        }
    }

    /// Flow end: requests that never got a response, visibility totals; then the caller ends
    /// the sessions (handles get their FILE_WRITE summaries).
    pub fn close(&mut self, cx: &Cx<'_>, t: &mut Tables, sink: &mut Sink) {
        let pending = std::mem::take(&mut self.pending);
        for (_, p) in pending {
            match p.info {
                Info::TreeConnect(path) => self.emit_mapping(
                    cx,
                    p.ts,
                    &path,
                    ShareType::Unknown,
                    NO_RESPONSE.into(),
                    p.session_id,
                    None,
                    sink,
                ),
                Info::SessionSetup(
                    blob @ (SecurityBlob::Authenticate(_) | SecurityBlob::Kerberos(_)),
                ) => {
                    let a = self.auth_record(cx, p.ts, p.session_id, blob, 0, NO_RESPONSE.into());
                    sink.emit(Event::SmbAuth(a));
                }
                info @ Info::Create { .. } => {
                    self.log_unanswered_create(cx, t, Pending { info, ..p }, sink)
                }
                _ => {}
            }
        }
        let mut ids: Vec<u64> = t.sessions.keys().copied().collect();
        ids.sort_unstable();
        for sid in ids {
            let Some(s) = t.sessions.get(&sid) else {
                continue;
            };
            let a = s.auth.clone().unwrap_or_default();
            for (kind, v) in [("encrypted", &s.encrypted), ("compressed", &s.compressed)] {
                let Some(v) = v else { continue };
                sink.emit(Event::SmbVisibility(SmbVisibility {
                    conn: cx.conn(),
                    session_id: sid,
                    kind,
                    state: "end",
                    cipher: if kind == "encrypted" {
                        self.cipher.map(cipher_name)
                    } else {
                        None
                    },
                    dialect: self.dialect.map(dialect_name),
                    user: a.user.clone(),
                    domain: a.domain.clone(),
                    workstation: a.workstation.clone(),
                    messages: v.messages,
                    bytes: v.bytes,
                    decrypted: v.decrypted > 0,
                }));
            }
        }
    }
}

/// A FileId this connection never saw opened may belong to another channel of the session.
fn adopt_if_unknown(cx: &Cx<'_>, t: &mut Tables, sid: u64, key: FileKey, sink: &mut Sink) {
    let FileKey::Id(id) = key else { return };
    if id == FILE_ID_RELATED
        || t.sessions
            .get(&sid)
            .is_some_and(|s| s.files.get(&key).is_some_and(|f| f.name != UNKNOWN))
    {
        return;
    }
    t.adopt_handle(cx, sid, id, sink);
}

fn file_mut(t: &mut Tables, sid: u64, key: FileKey) -> Option<&mut OpenFile> {
    let s = t.sessions.get_mut(&sid)?;
    let key = s.resolve(key);
    s.files.get_mut(&key)
}

/// FILETIME (100 ns ticks since 1601) to Ts; None for 0 or pre-1970 values.
fn filetime(ft: u64) -> Option<Ts> {
    const EPOCH_DIFF_100NS: u64 = 116_444_736_000_000_000;
    ft.checked_sub(EPOCH_DIFF_100NS)
        .filter(|v| *v > 0)
        .map(|v| Ts(v.saturating_mul(100)))
}
