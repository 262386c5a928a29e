//! Requests whose response was never seen (one-sided captures from a span port or a tap half,
//! lost packets): the ids their responses would have granted are taken from the order of the
//! client's own requests. The first request on a TreeId this session never saw granted belongs
//! to the latest TREE_CONNECT still waiting; the first use of an unknown FileId on a tree to the
//! latest CREATE still waiting there (clients use a handle after its CREATE, one in flight at a
//! time per tree as far as the capture can tell). Such records say `<no response>`.

use super::{Info, Pending, Smb2State, NO_RESPONSE};
use crate::event::Event;
use crate::sink::Sink;
use crate::smb::smb2::records::{file_id_hex, FILE_ID_RELATED};
use crate::smb::tables::{
    open_record, share_of, Cx, FileKey, OpenRequest, ShareType, Tables, Tree,
};

impl Smb2State {
    /// A request on tree `tid` of session `sid`: if the session never saw that tree, it is the one
    /// the latest unanswered TREE_CONNECT of the session was granted.
    pub(super) fn link_unanswered_tree(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        tid: u32,
        sink: &mut Sink,
    ) {
        if tid == 0
            || tid == u32::MAX
            || t.sessions
                .get(&sid)
                .is_some_and(|s| s.trees.contains_key(&tid))
        {
            return;
        }
        let Some(mid) = self
            .pending
            .iter()
            .rev()
            .find(|(_, p)| p.session_id == sid && matches!(p.info, Info::TreeConnect(_)))
            .map(|(m, _)| *m)
        else {
            return;
        };
        let Some(p) = self.pending.remove(&mid) else {
            return;
        };
        let Info::TreeConnect(path) = p.info else {
            return;
        };
        self.emit_mapping(
            cx,
            p.ts,
            &path,
            ShareType::Unknown,
            NO_RESPONSE.into(),
            sid,
            Some(tid),
            sink,
        );
        // The type came with the response: unknown (IPC$ is still known to hold pipes by name).
        let tree = Tree::new(&path, ShareType::Unknown);
        debug_assert_eq!(tree.share, share_of(&path));
        t.share_tree(cx, sid, tid, &tree, sink);
        if let Some(s) = t.session(sid, cx, sink) {
            s.insert_tree(tid, tree, cx, sink);
        }
    }

    /// A request names FileId `key` on tree `tid`: if the session holds no such handle, it is the
    /// one the latest unanswered CREATE on that tree was granted. Logs that CREATE's open record.
    pub(super) fn link_unanswered_create(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        sid: u64,
        tid: u32,
        key: FileKey,
        sink: &mut Sink,
    ) {
        let FileKey::Id(id) = key else { return };
        if id == FILE_ID_RELATED
            || t.sessions
                .get(&sid)
                .is_none_or(|s| s.files.contains_key(&key))
        {
            return;
        }
        let Some(mid) = self
            .pending
            .iter()
            .rev()
            .find(|(_, p)| {
                p.session_id == sid && p.tree_id == tid && matches!(p.info, Info::Create { .. })
            })
            .map(|(m, _)| *m)
        else {
            return;
        };
        let Some(p) = self.pending.remove(&mid) else {
            return;
        };
        let Info::Create {
            key: provisional,
            name,
            access,
            disposition,
            options,
        } = p.info
        else {
            return;
        };
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let tree = s.tree_or_unknown(tid, cx, sink);
        let fuid = file_id_hex(id);
        let Some(mut f) = s.files.remove(&provisional) else {
            return;
        };
        let is_pipe = f.is_pipe;
        f.fuid = Some(fuid.clone());
        let req = OpenRequest {
            ts: p.ts,
            name: &name,
            access,
            disposition,
            options,
        };
        let mut r = open_record(cx, &tree, is_pipe, &req, NO_RESPONSE.into(), sid);
        r.fuid = Some(fuid);
        // Tree type unknown: pipe or file is decided by the handle's first bytes, as midstream.
        if tree.share_type == ShareType::Unknown && !is_pipe {
            f.deferred_open = Some(Box::new(r));
        } else {
            sink.emit(Event::SmbFiles(r));
        }
        if s.insert_file(FileKey::Id(id), f, cx, sink) {
            if let FileKey::Provisional(m) = provisional {
                s.aliases.insert(m, id);
            }
        }
        t.share_handle(cx, sid, id, name, tid, sink);
    }

    /// Flow end: a CREATE that never got its response still happened; log its open record.
    pub(super) fn log_unanswered_create(
        &self,
        cx: &Cx<'_>,
        t: &mut Tables,
        p: Pending,
        sink: &mut Sink,
    ) {
        let (ts, sid, tid) = (p.ts, p.session_id, p.tree_id);
        let Info::Create {
            key,
            name,
            access,
            disposition,
            options,
        } = p.info
        else {
            return;
        };
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let tree = s.trees.get(&tid).cloned().unwrap_or_else(Tree::unknown);
        let is_pipe = s.files.get(&key).map_or(tree.is_pipe(), |f| f.is_pipe);
        let req = OpenRequest {
            ts,
            name: &name,
            access,
            disposition,
            options,
        };
        let r = open_record(cx, &tree, is_pipe, &req, NO_RESPONSE.into(), sid);
        sink.emit(Event::SmbFiles(r));
    }
}
