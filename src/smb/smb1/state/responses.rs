//! Responses on a connection whose client was never heard (a server→client-only capture), as for
//! SMB2 (`smb2::state::responses`): an NT_CREATE_ANDX response grants a FID on its tree (the
//! response's TID; pipe or file from its FileType, else the tree's service), named `<unknown>`
//! (the name is in the request); WRITE_ANDX, READ_ANDX, TRANSACTION (TransactNmPipe) and CLOSE
//! responses name no FID and belong to the latest FID granted on their tree. A WRITE_ANDX
//! response's Count is bytes written at consecutive offsets (contents unseen: no hash); READ_ANDX
//! and TRANSACTION data goes to the pipe's DCE-RPC conversation.

use super::{fid_hex, filetime, status_name, Smb1State};
use crate::event::Event;
use crate::flow::Direction;
use crate::sink::Sink;
use crate::smb::files::WriteTracker;
use crate::smb::smb1::records::andx::Block;
use crate::smb::smb1::records::create::NtCreateResponse;
use crate::smb::smb1::records::rw::{LargeData, ReadAndxResponse, WriteAndxResponse};
use crate::smb::smb1::records::trans::TransResponse;
use crate::smb::smb1::records::{cmd, Header, Smb1Error};
use crate::smb::tables::{open_granted, response_only_tree_admitted, Cx, FileKey, Granted, Tables};

impl Smb1State {
    /// One response block without its request while no request was ever seen. `Ok(true)` when
    /// handled here.
    pub(super) fn response_only(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        msg: &[u8],
        b: &Block<'_>,
        sink: &mut Sink,
    ) -> Result<bool, Smb1Error> {
        let at = (h.uid, h.tid);
        let sid = u64::from(h.uid);
        if !h.status.carries_body() {
            return Ok(matches!(
                b.command,
                cmd::NT_CREATE_ANDX | cmd::WRITE_ANDX | cmd::READ_ANDX | cmd::CLOSE
            ));
        }
        match b.command {
            cmd::NT_CREATE_ANDX => {
                if let Some(r) = NtCreateResponse::parse(b)? {
                    self.granted(cx, t, h, &r, sink);
                }
            }
            cmd::WRITE_ANDX => {
                let (Some(w), Some((fid, offset))) =
                    (WriteAndxResponse::parse(b)?, self.answered.get_mut(&at))
                else {
                    return Ok(true);
                };
                let start = *offset;
                *offset = start.saturating_add(u64::from(w.count));
                let key = FileKey::Id(u128::from(*fid));
                let f = t.sessions.get_mut(&sid).and_then(|s| s.files.get_mut(&key));
                if let Some(f) = f.filter(|f| !f.is_pipe) {
                    let wt = f.writes.get_or_insert_with(WriteTracker::new);
                    wt.begin_write(cx.ts, start, u64::from(w.count));
                    wt.missing(start, u64::from(w.count));
                }
            }
            cmd::READ_ANDX | cmd::TRANSACTION => {
                let data = if b.command == cmd::READ_ANDX {
                    ReadAndxResponse::parse(b)?.map(|r| r.data(msg))
                } else {
                    TransResponse::parse(msg, b)?.map(|r| r.data)
                };
                let (Some(data), Some((fid, _))) = (data, self.answered.get(&at)) else {
                    return Ok(b.command == cmd::READ_ANDX);
                };
                // On a tree whose type was missed, DCE-RPC bytes make the handle a pipe.
                let (uid, tid, fid) = (at.0, at.1, *fid);
                self.pipe_bytes(cx, t, uid, tid, fid, Direction::ToClient, data, sink);
            }
            cmd::CLOSE => {
                let Some((fid, _)) = self.answered.remove(&at) else {
                    return Ok(true);
                };
                if let Some(s) = t.sessions.get_mut(&sid) {
                    s.close_file(FileKey::Id(u128::from(fid)), cx, sink);
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// An NT_CREATE_ANDX response: the FID is opened on the response's tree and becomes its latest.
    fn granted(
        &mut self,
        cx: &Cx<'_>,
        t: &mut Tables,
        h: &Header,
        r: &NtCreateResponse,
        sink: &mut Sink,
    ) {
        let at = (h.uid, h.tid);
        if !response_only_tree_admitted(&self.answered, &at, u32::from(h.tid), cx, "smb1", sink) {
            return;
        }
        let granted = Granted {
            session_id: u64::from(h.uid),
            tree_id: u32::from(h.tid),
            key: FileKey::Id(u128::from(r.fid)),
            fuid: fid_hex(r.fid),
            pipe: r.is_pipe(),
            status: status_name(h.status),
            end_of_file: r.end_of_file,
            create_action: r.create_action,
        };
        let Some(mut rec) = open_granted(cx, t, granted, sink) else {
            return;
        };
        self.answered.insert(at, (r.fid, 0));
        [
            rec.times_created,
            rec.times_accessed,
            rec.times_modified,
            rec.times_changed,
        ] = [
            r.creation_time,
            r.last_access_time,
            r.last_write_time,
            r.change_time,
        ]
        .map(filetime);
        sink.emit(Event::SmbFiles(rec));
    }
}
