//! Requests whose response was never seen (one-sided captures, lost packets), as for SMB2: the
//! first request on a TID the session never saw granted belongs to the latest TREE_CONNECT_ANDX
//! still waiting; the first use of an unknown FID on a tree to the latest open (NT_CREATE_ANDX,
//! OPEN_ANDX) still waiting there. Their records say `<no response>`.

use super::{fid_hex, Info, Smb1State, NO_RESPONSE};
use crate::event::Event;
use crate::sink::Sink;
use crate::smb::tables::{
    open_record, Cx, FileKey, OpenFile, OpenRequest, ShareType, Tables, Tree,
};

impl Smb1State {
    /// The latest pending request of `uid` with a block `want` accepts: (its key, block index).
    fn latest_unanswered(
        &self,
        uid: u16,
        want: impl Fn(u16, &Info) -> bool,
    ) -> Option<((u32, u16), usize)> {
        self.pending
            .iter()
            .filter(|(_, p)| p.uid == uid)
            .filter_map(|(k, p)| {
                let i = p.blocks.iter().position(|(_, info)| want(p.tid, info))?;
                Some((p.seq, *k, i))
            })
            .max_by_key(|(seq, ..)| *seq)
            .map(|(_, k, i)| (k, i))
    }

    /// Takes block `i` out of the pending request `key` (the request is gone with its last block).
    fn take_block(&mut self, key: (u32, u16), i: usize) -> Option<(crate::time::Ts, u16, Info)> {
        let p = self.pending.get_mut(&key)?;
        let (_, info) = (i < p.blocks.len()).then(|| p.blocks.remove(i))?;
        let (ts, tid) = (p.ts, p.tid);
        if p.blocks.is_empty() {
            self.pending.remove(&key);
        }
        Some((ts, tid, info))
    }

    /// A request on `tid`: if the session never saw that tree, it is the one the latest
    /// unanswered tree connect of the session was granted.
    pub(super) fn link_unanswered_tree(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        uid: u16,
        tid: u16,
        sink: &mut Sink,
    ) {
        let sid = u64::from(uid);
        if tid == 0
            || tid == u16::MAX
            || t.sessions
                .get(&sid)
                .is_some_and(|s| s.trees.contains_key(&u32::from(tid)))
        {
            return;
        }
        let Some((key, i)) =
            self.latest_unanswered(uid, |_, info| matches!(info, Info::TreeConnect(_)))
        else {
            return;
        };
        let Some((ts, _, Info::TreeConnect(path))) = self.take_block(key, i) else {
            return;
        };
        // An open chained behind the tree connect was made on the new tree.
        if let Some(p) = self.pending.get_mut(&key) {
            p.tid = tid;
        }
        let tree_id = u32::from(tid);
        self.emit_mapping(
            cx,
            ts,
            &path,
            ShareType::Unknown,
            None,
            None,
            NO_RESPONSE.into(),
            sid,
            Some(tree_id),
            sink,
        );
        if let Some(s) = t.session(sid, cx, sink) {
            s.insert_tree(tree_id, Tree::new(&path, ShareType::Unknown), cx, sink);
        }
    }

    /// A request names `fid` on `tid`: if the session holds no such handle, it is the one the
    /// latest unanswered open on that tree was granted. Logs that open's record.
    pub(super) fn link_unanswered_open(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        uid: u16,
        tid: u16,
        fid: u16,
        sink: &mut Sink,
    ) {
        let sid = u64::from(uid);
        let key = FileKey::Id(u128::from(fid));
        if t.sessions
            .get(&sid)
            .is_some_and(|s| s.files.contains_key(&key))
        {
            return;
        }
        let Some((pkey, i)) = self.latest_unanswered(uid, |ptid, info| {
            ptid == tid && matches!(info, Info::Create { .. })
        }) else {
            return;
        };
        let Some((
            ts,
            _,
            Info::Create {
                name,
                access,
                disposition,
                options,
            },
        )) = self.take_block(pkey, i)
        else {
            return;
        };
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let tree = s.tree_or_unknown(u32::from(tid), cx, sink);
        let is_pipe = tree.is_pipe();
        let req = OpenRequest {
            ts,
            name: &name,
            access,
            disposition,
            options,
        };
        let mut r = open_record(cx, &tree, is_pipe, &req, NO_RESPONSE.into(), sid);
        r.fuid = Some(fid_hex(fid));
        let mut f = OpenFile::new(&name, u32::from(tid), is_pipe);
        f.fuid = Some(fid_hex(fid));
        f.desired_access = Some(access);
        f.disposition = Some(disposition);
        f.create_options = Some(options);
        sink.emit(Event::SmbFiles(r));
        s.insert_file(key, f, cx, sink);
    }

    /// Flow end: an open that never got its response still happened; log its record
    /// (`at`: the request's time, UID and TID).
    pub(super) fn log_unanswered_open(
        &self,
        cx: &Cx<'_>,
        t: &mut Tables,
        at: (crate::time::Ts, u16, u16),
        info: Info,
        sink: &mut Sink,
    ) {
        let (ts, uid, tid) = at;
        let Info::Create {
            name,
            access,
            disposition,
            options,
        } = info
        else {
            return;
        };
        let sid = u64::from(uid);
        let Some(s) = t.session(sid, cx, sink) else {
            return;
        };
        let tree = s
            .trees
            .get(&u32::from(tid))
            .cloned()
            .unwrap_or_else(Tree::unknown);
        let req = OpenRequest {
            ts,
            name: &name,
            access,
            disposition,
            options,
        };
        let r = open_record(cx, &tree, tree.is_pipe(), &req, NO_RESPONSE.into(), sid);
        sink.emit(Event::SmbFiles(r));
    }
}
