//! Responses on a connection whose client was never heard (a server→client-only capture: a span
//! port or tap delivering one direction). The TREE_CONNECT response already gives the tree's type
//! (disk / pipe) in the common path; here:
//!
//! - a CREATE response grants a handle: it is opened on its tree with the FileId, CreateAction,
//!   size and times the response carries (the name is in the request: `<unknown>`), as a pipe on a
//!   pipe tree (its DCE-RPC conversation then reads the server's PDUs alone, see
//!   `dcerpc::response_shapes`);
//! - WRITE, READ and CLOSE responses name no handle: they belong to the latest handle granted on
//!   their tree (tools use a handle right after opening it, one at a time per tree, as far as a
//!   capture can tell). A WRITE response's Count is bytes written (contents unseen: no hash), at
//!   consecutive offsets; a READ response's data goes to the pipe; a CLOSE response ends it. An
//!   async final response (after STATUS_PENDING) carries no TreeId: the session's latest handle.
//! - IOCTL responses name their FileId and need nothing here.

use super::Smb2State;
use crate::event::Event;
use crate::flow::Direction;
use crate::sink::Sink;
use crate::smb::files::WriteTracker;
use crate::smb::smb2::records::*;
use crate::smb::status::{self, nt_status_name};
use crate::smb::tables::{open_granted, response_only_tree_admitted, Cx, FileKey, Granted, Tables};
use crate::wire::parsed;

impl Smb2State {
    /// A response without its request while no request was ever seen. True when handled here.
    pub(super) fn response_only(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        msg: &[u8],
        sink: &mut Sink,
    ) -> bool {
        let ok = !status::is_error(h.status);
        let at = self.answered_tree(h);
        match h.command {
            CREATE if ok => {
                if let Some(c) = parsed(parse_create_response(msg)) {
                    self.granted(cx, t, h, &c, sink);
                }
            }
            WRITE if ok => {
                let (Some(count), Some((id, offset, _))) = (
                    parsed(parse_write_response(msg)),
                    self.answered.get_mut(&at),
                ) else {
                    return true;
                };
                let start = *offset;
                *offset = start.saturating_add(u64::from(count));
                let key = FileKey::Id(*id);
                let Some(f) = t
                    .sessions
                    .get_mut(&h.session_id)
                    .and_then(|s| s.files.get_mut(&key))
                else {
                    return true;
                };
                if !f.is_pipe {
                    let w = f.writes.get_or_insert_with(WriteTracker::new);
                    w.begin_write(cx.ts, start, u64::from(count));
                    w.missing(start, u64::from(count));
                }
            }
            READ if ok => {
                let (Some(r), Some((id, _, _))) =
                    (parsed(parse_read_response(msg)), self.answered.get(&at))
                else {
                    return true;
                };
                // On a tree whose type was missed, DCE-RPC bytes make the handle a pipe.
                let (key, data) = (FileKey::Id(*id), r.data(msg));
                self.pipe_bytes(cx, t, at.0, at.1, key, Direction::ToClient, data, sink);
            }
            CLOSE if ok => {
                let Some((id, _, _)) = self.answered.remove(&at) else {
                    return true;
                };
                if let Some(s) = t.sessions.get_mut(&h.session_id) {
                    s.close_file(FileKey::Id(id), cx, sink);
                }
            }
            TREE_DISCONNECT if ok => {
                self.answered.remove(&at);
                t.tree_disconnect(cx, h.session_id, h.tree_id);
            }
            CREATE | WRITE | READ | CLOSE | TREE_DISCONNECT => {}
            _ => return false,
        }
        true
    }

    /// The (SessionId, TreeId) a response belongs to. An async response (the final answer to a
    /// READ or WRITE that went pending) carries an AsyncId where the TreeId was: it belongs to the
    /// session's latest handle.
    fn answered_tree(&self, h: &Header) -> (u64, u32) {
        if h.async_id.is_none() {
            return (h.session_id, h.tree_id);
        }
        self.answered
            .iter()
            .filter(|(k, _)| k.0 == h.session_id)
            .max_by_key(|(_, v)| v.2)
            .map_or((h.session_id, h.tree_id), |(k, _)| *k)
    }

    /// A CREATE response: the handle is opened on its tree and becomes the tree's latest.
    fn granted(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        c: &CreateResponse,
        sink: &mut Sink,
    ) {
        let at = (h.session_id, h.tree_id);
        if !response_only_tree_admitted(&self.answered, &at, h.tree_id, cx, "smb2", sink) {
            return;
        }
        let granted = Granted {
            session_id: h.session_id,
            tree_id: h.tree_id,
            key: FileKey::Id(c.file_id),
            fuid: file_id_hex(c.file_id),
            pipe: false,
            status: nt_status_name(h.status),
            end_of_file: c.end_of_file,
            create_action: c.create_action,
        };
        let Some(r) = open_granted(cx, t, granted, sink) else {
            return;
        };
        self.granted = self.granted.wrapping_add(1);
        self.answered.insert(at, (c.file_id, 0, self.granted));
        sink.emit(Event::SmbFiles(r));
    }
}
