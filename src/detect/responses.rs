//! The technique from a server→client-only capture: the calls the DCE-RPC layer inferred from
//! responses alone (`dce_rpc` records with `inferred_operation`, see `dcerpc::response_shapes`)
//! and the files a CREATE response granted (`smb_files` named `<unknown>` with a `create_action`).
//!
//! # What raises an instance (`basis: responses`)
//! - **service-create**: on an SCM endpoint (`\PIPE\ntsvcs` / `\PIPE\svcctl`), after the handle
//!   ROpenSCManagerW returned, a create-shaped answer (tag pointer + new service handle + status;
//!   `failed` when the status is an error), or a fault (the server refused to run the call: every
//!   SCM implements the reads, so a refused call after the SCM opened is a change the server does
//!   not allow, e.g. Samba, which implements no RCreateServiceW; `failed`).
//! - **task-create**: on `\PIPE\atsvc`, a NetrJobAdd-shaped answer (job id + status) or a
//!   SchRpcRegisterTask-shaped one (the task's actual path + error info + HRESULT; the path goes to
//!   `task_path`).
//!
//! Under packet privacy (svcctl over TCP, its interface learned from the endpoint mapper's answer;
//! `dcerpc::response_shapes` reads the answers' exact sizes) a size names a call loosely, so a
//! technique needs the sequence the calls make on one association ([`SealedSteps`]):
//! - **service-create**: a create-sized answer (28 bytes: null tag pointer, handle, status) then
//!   a start- or delete-sized one (4 bytes).
//! - **service-modify**: a change-sized answer (8 bytes: RChangeServiceConfigW's null tag
//!   pointer and status), a start-sized one, and a change-sized one again: an existing service
//!   pointed at a command, started, and put back (SCShell, SharpNoPSExec). A change alone, or a
//!   change and a start, is what an administrator setting a start type does: nothing is raised.
//!
//! A new file (CreateAction created / overwritten) written on a disk share of the same client
//! within the detector's window before the call is the upload (`medium` confidence, its size in
//! the reason; the share and file names were in the requests). Service name and binary path stay
//! null: only requests carry them.
//!
//! # How it can be wrong
//! - A fault on the SCM is a refused call of unknown opnum: RChangeServiceConfigW or RDeleteService
//!   refused for lack of rights read as a refused creation.
//! - Several pipes used at once on one tree: READ responses name no handle and go to the tree's
//!   latest one, which can put a PDU on the wrong association.
//! - DCE-RPC over TCP without an endpoint-mapper answer in the capture: the bind_ack names a port,
//!   not an interface, so nothing is inferred there.
//! - Sealed: a tool that creates a service with a tag (32 bytes, a SERVICE_STATUS's size), or that
//!   hijacks a service without restoring it, raises nothing; a client that asks
//!   RQueryServiceConfig2W with a 16-byte buffer right after opening the SCM, then starts a service,
//!   would read as a creation.

use super::InferredCall;
use crate::dcerpc::response_shapes::InferredOp;
use crate::event::alert::{Basis, Technique};
use crate::event::{DceRpc, Event, FileAction, SmbFiles};
use crate::flow::Uid;
use crate::sink::Sink;
use crate::smb::tables::UNKNOWN;
use crate::time::Ts;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Client→server pairs with response-only evidence held at once. Beyond it new pairs are not
/// followed until older ones expire (the detector's window).
pub const MAX_RESPONSE_ONLY_PAIRS: usize = 4096;
/// New files remembered per pair (the latest ones), waiting for their writes.
const NEW_FILES_PER_PAIR: usize = 8;
/// Inferred calls kept per pair as evidence lines (the latest ones: a sealed sequence ends a long
/// association).
const CALLS_PER_PAIR: usize = 16;

#[derive(Default)]
struct Pair {
    last_ts: Ts,
    /// FileIds of new files on disk shares (response-only opens).
    new_files: Vec<String>,
    /// The latest write to one of them: (first write time, bytes).
    upload: Option<(Ts, u64)>,
    /// Inferred calls so far: (time, summary).
    calls: Vec<(Ts, String)>,
    sealed: SealedSteps,
}

/// The sequence of sealed SCM answers on the pair's latest association.
#[derive(Default)]
struct SealedSteps {
    uid: Option<Uid>,
    /// A create-sized answer came: the technique waits for a start- or delete-sized one.
    created: bool,
    /// Service hijack: changes and starts seen in order (change, start, change).
    hijack: u8,
}

/// What a sealed answer does to the sequence.
enum Step {
    /// Part of a sequence, or nothing: no instance.
    Wait,
    /// The sequence is complete: the technique and how it was read.
    Raise(Technique, &'static str),
    /// Not size-based (a fault is readable): the plain rules apply.
    Plain,
}

impl SealedSteps {
    fn step(&mut self, uid: Uid, op: InferredOp) -> Step {
        if self.uid != Some(uid) {
            *self = SealedSteps {
                uid: Some(uid),
                ..SealedSteps::default()
            };
        }
        match op {
            InferredOp::Refused => return Step::Plain,
            InferredOp::CreateService => {
                self.created = true;
                self.hijack = 0;
            }
            InferredOp::StartOrDelete if std::mem::take(&mut self.created) => {
                self.hijack = 0;
                return Step::Raise(
                    Technique::ServiceCreate,
                    "a create-sized answer (28 bytes) then a start- or delete-sized one (4 bytes)",
                );
            }
            InferredOp::StartOrDelete if self.hijack == 1 => self.hijack = 2,
            InferredOp::ChangeServiceConfig if self.hijack == 2 => {
                self.hijack = 0;
                return Step::Raise(
                    Technique::ServiceModify,
                    "change-sized (8 bytes), start-sized (4 bytes) and change-sized answers: a \
                     service pointed elsewhere, started and put back",
                );
            }
            InferredOp::ChangeServiceConfig => self.hijack = 1,
            // Queries and handles between the steps keep the sequence.
            InferredOp::ServiceStatus | InferredOp::OpenOrCloseHandle => {}
            _ => self.hijack = 0,
        }
        Step::Wait
    }
}

pub struct ResponseInference {
    window_ns: u64,
    pairs: BTreeMap<(IpAddr, IpAddr), Pair>,
    refused_pairs: u64,
    cap_note: Option<Ts>,
}

impl ResponseInference {
    pub fn new(window_secs: u64) -> ResponseInference {
        ResponseInference {
            window_ns: window_secs.saturating_mul(1_000_000_000),
            pairs: BTreeMap::new(),
            refused_pairs: 0,
            cap_note: None,
        }
    }

    /// One event in packet order; an inferred technique goes to `out`.
    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<InferredCall>) {
        match ev {
            Event::SmbFiles(f) if f.name == UNKNOWN => self.on_files(f),
            Event::DceRpc(d) if d.inferred_operation.is_some() => self.on_dce(d, out),
            _ => {}
        }
    }

    fn pair(&mut self, src: IpAddr, dst: IpAddr, ts: Ts) -> Option<&mut Pair> {
        let window = self.window_ns;
        if !self.pairs.contains_key(&(src, dst)) && self.pairs.len() >= MAX_RESPONSE_ONLY_PAIRS {
            self.pairs
                .retain(|_, p| p.last_ts.0.saturating_add(window) >= ts.0);
            if self.pairs.len() >= MAX_RESPONSE_ONLY_PAIRS {
                self.refused_pairs = self.refused_pairs.saturating_add(1);
                self.cap_note.get_or_insert(ts);
                return None;
            }
        }
        let p = self.pairs.entry((src, dst)).or_default();
        if p.last_ts.0.saturating_add(window) < ts.0 {
            *p = Pair::default();
        }
        p.last_ts = ts;
        Some(p)
    }

    fn on_files(&mut self, f: &SmbFiles) {
        let c = &f.conn;
        let new_on_disk =
            f.action == Some(FileAction::FileOpen) && f.create_action.is_some_and(|a| a.is_new());
        let wrote = f.action == Some(FileAction::FileWrite) && f.bytes_written.unwrap_or(0) > 0;
        if !(new_on_disk || wrote) {
            return;
        }
        let known = self
            .pairs
            .get(&(c.orig_h, c.resp_h))
            .is_some_and(|p| p.new_files.iter().any(|x| Some(x) == f.fuid.as_ref()));
        let Some(fuid) = f.fuid.clone() else { return };
        if wrote && !known {
            return;
        }
        let Some(p) = self.pair(c.orig_h, c.resp_h, c.ts) else {
            return;
        };
        if new_on_disk {
            if p.new_files.len() >= NEW_FILES_PER_PAIR {
                p.new_files.remove(0);
            }
            p.new_files.push(fuid);
        } else {
            let bytes = f.bytes_written.unwrap_or(0);
            p.upload = Some((f.first_write_ts.unwrap_or(c.ts), bytes));
        }
    }

    fn on_dce(&mut self, d: &DceRpc, out: &mut Vec<InferredCall>) {
        let Some(op) = d.inferred_operation else {
            return;
        };
        let c = &d.conn;
        let window = self.window_ns;
        let Some(p) = self.pair(c.orig_h, c.resp_h, c.ts) else {
            return;
        };
        let pipe = d.named_pipe.clone().unwrap_or_default();
        if p.calls.len() >= CALLS_PER_PAIR {
            p.calls.remove(0);
        }
        let rc = d
            .args
            .return_code
            .map(|r| format!(", status {r:#x}"))
            .unwrap_or_default();
        p.calls.push((
            c.ts,
            format!(
                "{pipe} call {}: {} ({}{rc})",
                d.call_id, d.operation, d.status
            ),
        ));
        let error = d.status != "ok" || d.args.return_code.is_some_and(|r| r != 0);
        let sealed = match (d.stub_encrypted, d.endpoint.as_str()) {
            (true, "svcctl") => match p.sealed.step(c.uid, op) {
                Step::Wait => return,
                Step::Raise(technique, how) => Some((technique, how)),
                Step::Plain => None,
            },
            _ => None,
        };
        let (technique, interface) = match (sealed, op, d.endpoint.as_str()) {
            (Some((technique, _)), _, _) => (technique, "svcctl"),
            (None, InferredOp::CreateService | InferredOp::Refused, "svcctl") => {
                (Technique::ServiceCreate, "svcctl")
            }
            (None, InferredOp::JobAdd, _) => (Technique::TaskCreate, "atsvc"),
            (None, InferredOp::RegisterTask, _) => (Technique::TaskCreate, "ITaskSchedulerService"),
            _ => return,
        };
        let upload = p
            .upload
            .filter(|(ts, _)| ts.0 <= c.ts.0 && ts.0.saturating_add(window) >= c.ts.0);
        let what = match (sealed, op) {
            (Some((_, how)), _) => format!("sealed svcctl answers: {how}"),
            (None, InferredOp::Refused) => {
                format!("the SCM refused a call after it was opened ({})", d.status)
            }
            (None, _) => format!("{} answered", d.operation),
        };
        let reason = format!(
            "{} on {pipe}{}: inferred from server responses only",
            what,
            upload
                .map(|(_, n)| format!(" after a new {n}-byte file on a disk share"))
                .unwrap_or_default()
        );
        let mut evidence = p.calls.clone();
        if let Some((ts, n)) = upload {
            evidence.insert(
                0,
                (
                    ts,
                    format!("new file of {n} bytes written on a disk share (name unseen)"),
                ),
            );
        }
        out.push(InferredCall {
            conn: *c,
            first_ts: upload.map_or(c.ts, |(ts, _)| ts),
            technique,
            interface,
            transport: d.transport,
            user: None,
            domain: None,
            workstation: None,
            upload_size: upload.map(|(_, n)| n),
            tool_hint: None,
            medium: upload.is_some(),
            reason,
            evidence,
            basis: Basis::Responses,
            failed: error,
            pipes: d.named_pipe.iter().cloned().collect(),
            task_path: d.args.task_path.clone(),
        });
    }

    pub fn report_caps(&mut self, sink: &mut Sink) {
        if let Some(ts) = self.cap_note.take() {
            sink.cap_reached(
                "MAX_RESPONSE_ONLY_PAIRS",
                ts,
                None,
                "detect",
                format!("{} pairs not followed", self.refused_pairs),
            );
            self.refused_pairs = 0;
        }
    }
}

#[cfg(test)]
#[path = "responses_tests.rs"]
mod tests;
