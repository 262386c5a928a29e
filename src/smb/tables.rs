//! Per-connection SMB state that does not depend on the dialect: sessions, their trees and their
//! open handles, each bounded. SMB2 keys them by SessionId / TreeId / FileId; SMB1 by UID / TID /
//! FID (widened: UID → u64, TID → u32, FID → `FileKey::Id(fid as u128)`).
//!
//! The emitters for smb_files records that several commands share (FILE_WRITE summaries, pipe
//! teardown) live here so both dialects log handles the same way.

use crate::dcerpc::{Conversation, Transport};
use crate::event::{ConnFields, CreateAction, Event, FileAction, SmbFiles, SmbVersion};
use crate::flow::{Direction, FlowCtx};
use crate::sink::Sink;
use crate::smb::files::WriteTracker;
use crate::smb::registry::Channel;
pub use crate::smb::registry::{SharedRegistry, MAX_SHARED_HANDLES};
use crate::smb::status::nt_status_name;
use crate::time::Ts;
use crate::wire::maps::KeyedMap;

/// Sessions tracked per connection.
/// Trees per connection whose latest handle a server→client-only capture remembers (SMB1 and
/// SMB2 `responses`: WRITE, READ and CLOSE responses name no handle). Beyond it new handles are
/// not followed.
pub const MAX_RESPONSE_ONLY_TREES: usize = 256;
pub const MAX_SMB_SESSIONS: usize = 64;
/// Trees tracked per session.
pub const MAX_TREES: usize = 256;
/// Open handles (files and pipes) tracked per session.
pub const MAX_OPEN_FILES: usize = 1024;
/// DCE-RPC conversations (pipe handles) kept per session.
pub const MAX_PIPES_PER_SESSION: usize = 64;

/// Written where the tree connect (or the CREATE) was not seen.
pub const UNKNOWN: &str = "<unknown>";

pub use crate::smb::smb2::records::ShareType;

#[derive(Clone, Debug)]
pub struct Tree {
    /// `\\server\SHARE`, or "<unknown>".
    pub path: String,
    pub share: String,
    pub share_type: ShareType,
}

impl Tree {
    pub fn new(path: &str, share_type: ShareType) -> Tree {
        Tree {
            path: path.to_string(),
            share: share_of(path),
            share_type,
        }
    }
    pub fn unknown() -> Tree {
        Tree {
            path: UNKNOWN.into(),
            share: UNKNOWN.into(),
            share_type: ShareType::Unknown,
        }
    }
    /// IPC$ is the pipe share whatever the response said (or when it was missed).
    pub fn is_pipe(&self) -> bool {
        self.share_type == ShareType::Pipe || self.share.eq_ignore_ascii_case("IPC$")
    }
}

/// The last component of a UNC path: `\\srv\ADMIN$` → `ADMIN$`.
pub fn share_of(path: &str) -> String {
    path.trim_end_matches(['\\', '/'])
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_string()
}

/// A handle: a real FileId/FID, or a CREATE still waiting for its response (by MessageId), so that
/// related compound operations and writes before the response have somewhere to go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKey {
    Id(u128),
    Provisional(u64),
}

/// One open handle.
#[derive(Debug)]
pub struct OpenFile {
    pub name: String,
    pub tree_id: u32,
    pub fuid: Option<String>,
    pub is_pipe: bool,
    pub writes: Option<WriteTracker>,
    /// The DCE-RPC conversation of a pipe handle.
    pub pipe: Option<Box<Conversation>>,
    /// First failing write status, if any.
    pub write_status: Option<u32>,
    pub bytes_read: u64,
    /// CREATE facts repeated on FILE_WRITE.
    pub desired_access: Option<u32>,
    pub disposition: Option<u32>,
    pub create_options: Option<u32>,
    /// The FILE_OPEN / PIPE_OPEN record of a CREATE on a tree whose type was missed, held until
    /// the handle's first bytes tell a pipe (DCE-RPC) from a file.
    pub deferred_open: Option<Box<SmbFiles>>,
}

impl OpenFile {
    /// Emits the held open record, as PIPE_OPEN if the handle turned out to be a pipe.
    pub fn emit_deferred_open(&mut self, sink: &mut Sink) {
        if let Some(mut r) = self.deferred_open.take() {
            r.action = Some(if self.is_pipe {
                FileAction::PipeOpen
            } else {
                FileAction::FileOpen
            });
            sink.emit(Event::SmbFiles(*r));
        }
    }

    pub fn new(name: &str, tree_id: u32, is_pipe: bool) -> OpenFile {
        OpenFile {
            name: name.to_string(),
            tree_id,
            fuid: None,
            is_pipe,
            writes: None,
            pipe: None,
            write_status: None,
            bytes_read: 0,
            desired_access: None,
            disposition: None,
            create_options: None,
            deferred_open: None,
        }
    }
}

/// What authentication said about a session.
#[derive(Clone, Debug, Default)]
pub struct SessionAuth {
    pub user: Option<String>,
    pub domain: Option<String>,
    pub workstation: Option<String>,
    pub auth: &'static str,
}

/// Visibility totals for one kind (encrypted / compressed) of one session.
#[derive(Clone, Debug, Default)]
pub struct Visibility {
    pub messages: u64,
    pub bytes: u64,
    pub decrypted: u64,
}

#[derive(Debug, Default)]
pub struct Session {
    /// SMB2 SessionId or SMB1 UID.
    pub id: u64,
    pub auth: Option<SessionAuth>,
    pub trees: KeyedMap<u32, Tree>,
    pub files: KeyedMap<FileKey, OpenFile>,
    /// Provisional key (CREATE MessageId) → the FileId its response gave.
    pub aliases: KeyedMap<u64, u128>,
    pub pipes: usize,
    pub encrypted: Option<Visibility>,
    pub compressed: Option<Visibility>,
    /// The server asked for encryption (session flag or share flag).
    pub encrypt_data: bool,
}

impl Session {
    /// Resolves a provisional key to its real FileId once the CREATE response gave one.
    pub fn resolve(&self, key: FileKey) -> FileKey {
        match key {
            FileKey::Provisional(m) => self.aliases.get(&m).map_or(key, |&id| FileKey::Id(id)),
            k => k,
        }
    }

    /// The tree, or an "<unknown>" one created on demand (midstream pickup), within [`MAX_TREES`].
    pub fn tree_or_unknown(&mut self, tree_id: u32, cx: &Cx<'_>, sink: &mut Sink) -> Tree {
        if let Some(t) = self.trees.get(&tree_id) {
            return t.clone();
        }
        if self.trees.len() < MAX_TREES {
            self.trees.insert(tree_id, Tree::unknown());
        } else {
            sink.cap_reached(
                "MAX_TREES",
                cx.ts,
                Some(cx.conn()),
                cx.layer,
                format!("tree {tree_id:#x}"),
            );
        }
        Tree::unknown()
    }

    /// Inserts a tree, within [`MAX_TREES`].
    pub fn insert_tree(&mut self, tree_id: u32, tree: Tree, cx: &Cx<'_>, sink: &mut Sink) {
        if self.trees.len() >= MAX_TREES && !self.trees.contains_key(&tree_id) {
            sink.cap_reached(
                "MAX_TREES",
                cx.ts,
                Some(cx.conn()),
                cx.layer,
                format!("tree {}", tree.path),
            );
            return;
        }
        self.trees.insert(tree_id, tree);
    }

    /// Inserts a handle within [`MAX_OPEN_FILES`], giving pipes a DCE-RPC conversation within
    /// [`MAX_PIPES_PER_SESSION`]. Returns false when the cap refused it.
    pub fn insert_file(
        &mut self,
        key: FileKey,
        mut f: OpenFile,
        cx: &Cx<'_>,
        sink: &mut Sink,
    ) -> bool {
        if self.files.len() >= MAX_OPEN_FILES && !self.files.contains_key(&key) {
            sink.cap_reached(
                "MAX_OPEN_FILES",
                cx.ts,
                Some(cx.conn()),
                cx.layer,
                f.name.clone(),
            );
            return false;
        }
        if f.is_pipe && f.pipe.is_none() {
            self.attach_pipe(&mut f, cx, sink);
        }
        if let Some(old) = self.files.insert(key, f) {
            // A FileId reused without a CLOSE we saw: log what the old handle did.
            let tree = self
                .trees
                .get(&old.tree_id)
                .cloned()
                .unwrap_or_else(Tree::unknown);
            finish_file_in(cx, self.id, &tree, old, sink);
        }
        true
    }

    /// Gives a handle its DCE-RPC conversation, within [`MAX_PIPES_PER_SESSION`].
    pub fn attach_pipe(&mut self, f: &mut OpenFile, cx: &Cx<'_>, sink: &mut Sink) {
        attach_pipe_counted(&mut self.pipes, f, cx, sink);
    }

    /// The (resolved) key of the handle for `key`, creating an "<unknown>"-named one on demand
    /// (midstream pickup). None when a cap refused it.
    pub fn file_or_unknown(
        &mut self,
        key: FileKey,
        tree_id: u32,
        cx: &Cx<'_>,
        sink: &mut Sink,
    ) -> Option<FileKey> {
        let key = self.resolve(key);
        if !self.files.contains_key(&key) {
            let tree = self.tree_or_unknown(tree_id, cx, sink);
            let mut f = OpenFile::new(UNKNOWN, tree_id, tree.is_pipe());
            if let FileKey::Id(id) = key {
                f.fuid = Some(crate::smb::smb2::records::file_id_hex(id));
            }
            if !self.insert_file(key, f, cx, sink) {
                return None;
            }
        }
        Some(key)
    }

    /// A CLOSE answered: the handle is removed and its writes and pipe logged with its tree.
    pub fn close_file(&mut self, key: FileKey, cx: &Cx<'_>, sink: &mut Sink) {
        if let Some(f) = self.remove_file(key) {
            let tree = self
                .trees
                .get(&f.tree_id)
                .cloned()
                .unwrap_or_else(Tree::unknown);
            finish_file_in(cx, self.id, &tree, f, sink);
        }
    }

    /// Removes a handle (after a CLOSE), releasing its pipe slot.
    pub fn remove_file(&mut self, key: FileKey) -> Option<OpenFile> {
        let key = self.resolve(key);
        let f = self.files.remove(&key)?;
        if f.pipe.is_some() {
            self.pipes = self.pipes.saturating_sub(1);
        }
        if let FileKey::Id(id) = key {
            self.aliases.retain(|_, v| *v != id);
        }
        Some(f)
    }
}

/// Gives a handle its DCE-RPC conversation, counting it against [`MAX_PIPES_PER_SESSION`] in
/// `pipes` (a session's counter, passed apart so the handle can stay borrowed from the session).
pub fn attach_pipe_counted(pipes: &mut usize, f: &mut OpenFile, cx: &Cx<'_>, sink: &mut Sink) {
    if f.pipe.is_some() {
        return;
    }
    f.is_pipe = true;
    if *pipes >= MAX_PIPES_PER_SESSION {
        sink.cap_reached(
            "MAX_PIPES_PER_SESSION",
            cx.ts,
            Some(cx.conn()),
            cx.layer,
            f.name.clone(),
        );
        return;
    }
    *pipes += 1;
    f.pipe = Some(Box::new(
        Conversation::new(Transport::SmbPipe, Some(pipe_name(&f.name)))
            .with_secrets(cx.secrets.cloned()),
    ));
}

/// A pipe's name as DCE-RPC wants it: `\PIPE\svcctl` or `svcctl` → `svcctl`.
pub fn pipe_name(name: &str) -> &str {
    let n = name.trim_start_matches('\\');
    if n.len() >= 5 && n.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("PIPE\\")) {
        n.get(5..).unwrap_or(n)
    } else {
        n
    }
}

/// The event context of one message: connection, packet time, dialect family.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub flow: &'a FlowCtx,
    /// Supplied secrets: a pipe's DCE-RPC conversation opens Kerberos packet privacy with them.
    pub secrets: Option<&'a std::sync::Arc<crate::smb::crypto::KeyStore>>,
    pub ts: Ts,
    pub version: SmbVersion,
    pub layer: &'static str,
}

impl<'a> Cx<'a> {
    /// The context of an SMB2 message (SMB1 ones are told by their first byte: [`Cx::smb1`]).
    pub fn smb2(flow: &'a FlowCtx, ts: Ts) -> Cx<'a> {
        Cx {
            flow,
            secrets: None,
            ts,
            version: SmbVersion::Smb2,
            layer: "smb2",
        }
    }

    /// The same context with the supplied secrets (a keytab for pipes under packet privacy).
    pub fn with_secrets(
        self,
        secrets: Option<&'a std::sync::Arc<crate::smb::crypto::KeyStore>>,
    ) -> Cx<'a> {
        Cx { secrets, ..self }
    }

    /// The same message context for SMB1.
    pub fn smb1(self) -> Cx<'a> {
        Cx {
            version: SmbVersion::Smb1,
            layer: "smb1",
            ..self
        }
    }

    pub fn conn(&self) -> ConnFields {
        ConnFields::new(self.ts, self.flow.uid, &self.flow.conn)
    }
    pub fn conn_at(&self, ts: Ts) -> ConnFields {
        ConnFields::new(ts, self.flow.uid, &self.flow.conn)
    }
}

/// The bones of an smb_files record for a handle on a tree.
pub fn files_record(
    cx: &Cx<'_>,
    action: FileAction,
    tree: &Tree,
    name: &str,
    status: String,
    session_id: u64,
) -> SmbFiles {
    SmbFiles {
        conn: cx.conn(),
        action: Some(action),
        path: tree.path.clone(),
        share: tree.share.clone(),
        name: name.to_string(),
        status,
        smb_version: Some(cx.version),
        session_id: Some(session_id),
        ..SmbFiles::default()
    }
}

/// What a CREATE / NT_CREATE_ANDX / OPEN_ANDX request asked, for its open record.
pub struct OpenRequest<'a> {
    pub ts: Ts,
    pub name: &'a str,
    pub access: u32,
    pub disposition: u32,
    pub options: u32,
}

/// The FILE_OPEN / PIPE_OPEN record of an open request (dated at the request); the caller adds
/// what a response gave.
pub fn open_record(
    cx: &Cx<'_>,
    tree: &Tree,
    is_pipe: bool,
    req: &OpenRequest<'_>,
    status: String,
    session_id: u64,
) -> SmbFiles {
    /// FILE_DELETE_ON_CLOSE, the same NT create option in SMB1 and SMB2.
    const DELETE_ON_CLOSE: u32 = 0x0000_1000;
    let action = if is_pipe {
        FileAction::PipeOpen
    } else {
        FileAction::FileOpen
    };
    let mut r = files_record(cx, action, tree, req.name, status, session_id);
    r.conn = cx.conn_at(req.ts);
    r.desired_access = Some(req.access);
    r.disposition = Some(req.disposition);
    r.create_options = Some(req.options);
    r.delete_on_close = req.options & DELETE_ON_CLOSE != 0;
    r
}

/// A handle granted by a CREATE / NT_CREATE_ANDX response whose request was never seen (a
/// server→client-only capture): what the response names of it.
pub struct Granted {
    pub session_id: u64,
    pub tree_id: u32,
    pub key: FileKey,
    pub fuid: String,
    /// The response itself says pipe (SMB1's FileType); a pipe tree says so too.
    pub pipe: bool,
    pub status: String,
    pub end_of_file: u64,
    pub create_action: u32,
}

/// Whether a response-only tree `at` may be tracked in `answered` (the SMB1 or SMB2 map of trees
/// known only from answers): a tree already there always may; a new one only below
/// [`MAX_RESPONSE_ONLY_TREES`], else the cap is reported.
pub fn response_only_tree_admitted<K: Ord, V>(
    answered: &std::collections::BTreeMap<K, V>,
    at: &K,
    tree_id: u32,
    cx: &Cx<'_>,
    layer: &'static str,
    sink: &mut Sink,
) -> bool {
    if answered.len() < MAX_RESPONSE_ONLY_TREES || answered.contains_key(at) {
        return true;
    }
    sink.cap_reached(
        "MAX_RESPONSE_ONLY_TREES",
        cx.ts,
        Some(cx.conn()),
        layer,
        format!("tree {tree_id:#x}"),
    );
    false
}

/// Opens a [`Granted`] handle `<unknown>`-named on its tree (made up if unseen) and returns its
/// open record for the caller to add what else its response carries and emit; `None` when a cap
/// kept it out.
pub fn open_granted(cx: &Cx<'_>, t: &mut Tables, g: Granted, sink: &mut Sink) -> Option<SmbFiles> {
    let s = t.session(g.session_id, cx, sink)?;
    let tree = s.tree_or_unknown(g.tree_id, cx, sink);
    let is_pipe = g.pipe || tree.is_pipe();
    let mut f = OpenFile::new(UNKNOWN, g.tree_id, is_pipe);
    f.fuid = Some(g.fuid.clone());
    if !s.insert_file(g.key, f, cx, sink) {
        return None;
    }
    let action = if is_pipe {
        FileAction::PipeOpen
    } else {
        FileAction::FileOpen
    };
    let mut r = files_record(cx, action, &tree, UNKNOWN, g.status, g.session_id);
    r.fuid = Some(g.fuid);
    r.size = Some(g.end_of_file);
    r.create_action = CreateAction::from_wire(g.create_action);
    Some(r)
}

/// A handle is gone (CLOSE, or the flow ended): log its write summary and close its pipe.
/// `tree` is the handle's tree (None → looked up by the caller already failed: "<unknown>").
pub fn finish_file_in(cx: &Cx<'_>, session_id: u64, tree: &Tree, mut f: OpenFile, sink: &mut Sink) {
    f.emit_deferred_open(sink);
    if let Some(w) = f.writes.take() {
        let s = w.finish();
        if s.checkpoints_thinned > 0 {
            sink.cap_reached(
                "MAX_FILE_HASH_CHECKPOINTS",
                cx.ts,
                Some(cx.conn()),
                "smb",
                format!(
                    "{}: hash checkpoints thinned {} times (a rewrite at a dropped write boundary gives the hash up)",
                    f.name, s.checkpoints_thinned
                ),
            );
        }
        let status = nt_status_name(f.write_status.unwrap_or(0));
        let mut r = files_record(cx, FileAction::FileWrite, tree, &f.name, status, session_id);
        r.fuid = f.fuid.clone();
        r.size = Some(s.size);
        r.bytes_written = Some(s.bytes_written);
        r.write_count = Some(s.write_count);
        r.first_write_ts = s.first_write_ts;
        r.pe = Some(s.pe);
        r.sha256 = s.sha256;
        r.hash_complete = Some(s.hash_complete);
        r.desired_access = f.desired_access;
        r.disposition = f.disposition;
        r.create_options = f.create_options;
        sink.emit(Event::SmbFiles(r));
    }
    if let Some(mut conv) = f.pipe.take() {
        conv.close(cx.flow, cx.ts, sink);
    }
}

/// The per-connection table of sessions.
#[derive(Debug, Default)]
pub struct Tables {
    /// Keyed hash: SessionIds are attacker-chosen (see [`crate::wire::maps`]).
    pub sessions: KeyedMap<u64, Session>,
    /// This connection's membership in the cross-connection registry (None in unit tests that
    /// want one connection alone).
    pub channel: Option<Channel>,
}

impl Tables {
    pub fn with_registry(registry: SharedRegistry) -> Tables {
        Tables {
            sessions: KeyedMap::default(),
            channel: Some(Channel::new(registry)),
        }
    }

    /// This connection uses session `sid` (any SMB2 message naming it).
    pub fn join(&mut self, cx: &Cx<'_>, sid: u64, sink: &mut Sink) {
        if let Some(c) = self.channel.as_mut() {
            c.join(cx, sid, sink);
        }
    }

    /// Publishes a tree for the other channels of the session.
    pub fn share_tree(&mut self, cx: &Cx<'_>, sid: u64, tid: u32, tree: &Tree, sink: &mut Sink) {
        if let Some(c) = self.channel.as_mut() {
            c.publish_tree(cx, sid, tid, tree, sink);
        }
    }

    /// Publishes a handle's name (and tree) for the other channels.
    pub fn share_handle(
        &mut self,
        cx: &Cx<'_>,
        sid: u64,
        id: u128,
        name: String,
        tid: u32,
        sink: &mut Sink,
    ) {
        if let Some(c) = self.channel.as_mut() {
            c.publish_handle(cx, sid, id, name, tid, sink);
        }
    }

    /// CLOSE: withdraws a handle from the other channels.
    pub fn withdraw_handle(&self, cx: &Cx<'_>, sid: u64, id: u128) {
        if let Some(c) = &self.channel {
            c.withdraw_handle(cx, sid, id);
        }
    }

    /// TREE_DISCONNECT: the tree is gone here and on the other channels.
    pub fn tree_disconnect(&mut self, cx: &Cx<'_>, sid: u64, tid: u32) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.trees.remove(&tid);
        }
        if let Some(c) = &self.channel {
            c.withdraw_tree(cx, sid, tid);
        }
    }

    /// LOGOFF: the session ends here (its handles finished) and its names leave the registry.
    pub fn logoff(&mut self, sid: u64, cx: &Cx<'_>, sink: &mut Sink) {
        self.end_session(sid, cx, sink);
        if let Some(c) = &self.channel {
            c.logoff(cx, sid);
        }
    }

    /// Learns a handle (and its tree) opened on another channel, if one was published. Returns
    /// whether the handle is now known here.
    pub fn adopt_handle(&mut self, cx: &Cx<'_>, sid: u64, id: u128, sink: &mut Sink) -> bool {
        let Some((name, tid, tree)) = self
            .channel
            .as_ref()
            .and_then(|c| c.lookup_handle(cx, sid, id))
        else {
            return false;
        };
        let Some(s) = self.session(sid, cx, sink) else {
            return false;
        };
        if let Some(tree) = tree {
            if s.trees
                .get(&tid)
                .is_none_or(|t| t.share_type == ShareType::Unknown)
            {
                s.insert_tree(tid, tree, cx, sink);
            }
        }
        let is_pipe = s.trees.get(&tid).is_some_and(Tree::is_pipe);
        sink.count("smb.multichannel_handles", 1);
        if let Some(f) = s.files.get_mut(&FileKey::Id(id)) {
            // Seen here first under "<unknown>": it gets its name, writes so far are kept.
            f.name = name;
            f.tree_id = tid;
            return true;
        }
        let mut f = OpenFile::new(&name, tid, is_pipe);
        f.fuid = Some(crate::smb::smb2::records::file_id_hex(id));
        s.insert_file(FileKey::Id(id), f, cx, sink)
    }

    /// The session, created on demand within [`MAX_SMB_SESSIONS`].
    pub fn session(&mut self, id: u64, cx: &Cx<'_>, sink: &mut Sink) -> Option<&mut Session> {
        if !self.sessions.contains_key(&id) {
            if self.sessions.len() >= MAX_SMB_SESSIONS {
                sink.cap_reached(
                    "MAX_SMB_SESSIONS",
                    cx.ts,
                    Some(cx.conn()),
                    cx.layer,
                    format!("session {id:#x}"),
                );
                return None;
            }
            self.sessions.insert(
                id,
                Session {
                    id,
                    ..Session::default()
                },
            );
        }
        self.sessions.get_mut(&id)
    }

    /// Ends a session (LOGOFF or flow end): every handle still open is finished.
    pub fn end_session(&mut self, id: u64, cx: &Cx<'_>, sink: &mut Sink) {
        if let Some(s) = self.sessions.remove(&id) {
            finish_session(id, s, cx, sink);
        }
    }

    /// Flow end: finish every session, in a stable order, and leave the registry's sessions
    /// (the last connection of a session drops it there).
    pub fn end_all(&mut self, cx: &Cx<'_>, sink: &mut Sink) {
        let mut ids: Vec<u64> = self.sessions.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            self.end_session(id, cx, sink);
        }
        if let Some(c) = self.channel.as_mut() {
            c.leave_all();
        }
    }
}

fn finish_session(id: u64, mut s: Session, cx: &Cx<'_>, sink: &mut Sink) {
    let mut files: Vec<(FileKey, OpenFile)> = s.files.drain().collect();
    files.sort_by_key(|(k, _)| match k {
        FileKey::Id(i) => (0u8, *i),
        FileKey::Provisional(m) => (1u8, u128::from(*m)),
    });
    for (_, f) in files {
        let tree = s
            .trees
            .get(&f.tree_id)
            .cloned()
            .unwrap_or_else(Tree::unknown);
        finish_file_in(cx, id, &tree, f, sink);
    }
}

/// Feeds pipe bytes to a handle's conversation, if it has one.
pub fn pipe_data(cx: &Cx<'_>, f: &mut OpenFile, dir: Direction, bytes: &[u8], sink: &mut Sink) {
    if let Some(conv) = f.pipe.as_mut() {
        let name = match dir {
            Direction::ToServer => "smb.pipe_bytes_to_server",
            Direction::ToClient => "smb.pipe_bytes_to_client",
        };
        sink.count(name, bytes.len() as u64);
        conv.data(cx.flow, cx.ts, dir, bytes, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn share_and_pipe_names() {
        assert_eq!(share_of("\\\\192.0.2.20\\ADMIN$"), "ADMIN$");
        assert_eq!(share_of("\\\\srv\\C$\\"), "C$");
        assert_eq!(share_of("IPC$"), "IPC$");
        assert_eq!(pipe_name("\\PIPE\\svcctl"), "svcctl");
        assert_eq!(pipe_name("srvsvc"), "srvsvc");
        assert!(Tree::new("\\\\x\\ipc$", ShareType::Unknown).is_pipe());
        assert!(!Tree::new("\\\\x\\C$", ShareType::Disk).is_pipe());
    }
}
