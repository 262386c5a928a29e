//! An attack instance under construction: the create/register calls of one technique from a
//! source on a target, folded, and the evidence around them. Scoring ([`scoring`]) and the
//! alert it becomes ([`alert`], [`reason`]) read it once it closes.

mod alert;
mod reason;
mod scoring;

use crate::dcerpc::Transport;
use crate::event::alert::{Basis, Evidence, FoldedCall, Technique};
use crate::event::DceArgs;
use crate::time::Ts;
use std::collections::BTreeSet;

use super::calls::{CallOutcome, Iface};
use super::handles::MAX_HANDLES;
use super::matcher::{MAX_EVIDENCE, MAX_FOLDED_CALLS, MAX_PAIR_ITEMS, MAX_UPLOADS};
use super::pair::{Auth, PairView};
use super::rules::Rules;
use super::upload::UploadRec;
use crate::event::alert::TechniqueAlert;

/// How a create/register call was seen.
#[derive(Clone, Copy)]
pub(super) struct How<'a> {
    pub(super) basis: Basis,
    pub(super) transport: Transport,
    pub(super) opnum: Option<u16>,
    pub(super) args: &'a DceArgs,
    /// The call's stub was sealed (Kerberos packet privacy) and opened with a supplied keytab.
    pub(super) rpc_decrypted: bool,
}

/// One create/register call as an instance takes it.
pub(super) struct CreateCall<'a> {
    pub(super) how: How<'a>,
    pub(super) iface: Iface,
    pub(super) technique: Technique,
    pub(super) service_name: Option<String>,
    pub(super) call: FoldedCall,
    pub(super) outcome: CallOutcome,
    pub(super) ts: Ts,
    /// Read by decrypting SMB3 with supplied keys.
    pub(super) decrypted: bool,
}

/// An upload an instance took, and whether it was written after the instance's first create.
#[derive(Clone, Debug)]
struct Taken {
    upload: UploadRec,
    after_create: bool,
}

/// A start, control or delete of a service, or a run or delete of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FollowUp {
    Started,
    Deleted,
    Other,
}

/// What an inferring detector adds to the instance it opened (see `InferredCall`).
pub(super) struct InferredExtras {
    pub(super) first_ts: Ts,
    pub(super) evidence: Vec<Evidence>,
    pub(super) pipes: Vec<String>,
    pub(super) upload_size: Option<u64>,
    pub(super) tool_hint: Option<String>,
    pub(super) medium: bool,
}

#[derive(Clone, Debug)]
pub(super) struct Instance {
    /// Unique per detector: which instance owns an upload.
    id: u64,
    technique: Technique,
    basis: Basis,
    /// Some of its calls were read by decrypting SMB3 with supplied keys.
    decrypted: bool,
    /// Some of its calls' stubs were sealed (Kerberos packet privacy) and opened with a keytab.
    rpc_decrypted: bool,
    transport: Transport,
    iface: Iface,
    /// Time of the first create/register call: uploads before it count as "upload then create".
    create_ts: Ts,
    first_ts: Ts,
    last_ts: Ts,
    service_name: Option<String>,
    display_name: Option<String>,
    binary_path: Option<String>,
    start_type: Option<u32>,
    task_path: Option<String>,
    command: Option<String>,
    calls: Vec<FoldedCall>,
    opnums: Vec<u16>,
    count: u32,
    started: bool,
    deleted: bool,
    failed: bool,
    /// No response to any of its calls was seen: success or failure unknown.
    no_response: bool,
    handles: Vec<String>,
    uploads: Vec<Taken>,
    shares: BTreeSet<String>,
    pipes: Vec<String>,
    evidence: Vec<Evidence>,
    evidence_dropped: bool,
    /// Inferred instances: bytes an encrypted upload carried, the inferring detector's tool hint,
    /// and whether it rated itself medium (an upload preceded the service calls).
    inferred_upload: Option<u64>,
    tool_hint: Option<String>,
    inferred_medium: bool,
}

/// A closed instance's alert, and whether evidence lines were dropped from it (`MAX_EVIDENCE`).
pub(super) struct Closed {
    pub(super) alert: TechniqueAlert,
    pub(super) evidence_dropped: bool,
}

impl Instance {
    /// Closed: scored against what its pair knew, and written as its technique alert.
    pub(super) fn into_alert(self, pair: &PairView<'_>, auth: Auth, rules: &Rules) -> Closed {
        let scored = scoring::score(&self, pair, rules);
        let evidence_dropped = self.evidence_dropped;
        Closed {
            alert: alert::technique_alert(self, pair, auth, scored),
            evidence_dropped,
        }
    }

    /// A new instance at its first call.
    pub(super) fn open(id: u64, c: CreateCall<'_>) -> Instance {
        let args = c.how.args;
        Instance {
            id,
            technique: c.technique,
            basis: c.how.basis,
            decrypted: c.decrypted,
            rpc_decrypted: c.how.rpc_decrypted,
            transport: c.how.transport,
            iface: c.iface,
            create_ts: c.ts,
            first_ts: c.ts,
            last_ts: c.ts,
            service_name: c.service_name,
            display_name: args.display_name.clone(),
            binary_path: args.binary_path.clone(),
            start_type: args.start_type,
            task_path: args.task_path.clone(),
            command: match (&args.command, &args.command_arguments) {
                (Some(a), Some(b)) if !b.is_empty() => Some(format!("{a} {b}")),
                (a, _) => a.clone(),
            },
            calls: vec![c.call],
            opnums: c.how.opnum.into_iter().collect(),
            count: 1,
            started: false,
            deleted: false,
            failed: c.outcome == CallOutcome::Failed,
            no_response: c.outcome == CallOutcome::NoResponse,
            handles: args.response_handle.iter().cloned().collect(),
            uploads: vec![],
            shares: BTreeSet::new(),
            pipes: vec![],
            evidence: vec![],
            evidence_dropped: false,
            inferred_upload: None,
            tool_hint: None,
            inferred_medium: false,
        }
    }

    /// A repeat of the technique folds in. Returns false when its details did not fit
    /// (`MAX_FOLDED_CALLS`; the count still counts).
    #[must_use]
    pub(super) fn fold(&mut self, c: CreateCall<'_>) -> bool {
        self.count = self.count.saturating_add(1);
        self.decrypted |= c.decrypted;
        self.rpc_decrypted |= c.how.rpc_decrypted;
        if let Some(op) = c.how.opnum {
            if !self.opnums.contains(&op) {
                self.opnums.push(op);
            }
        }
        self.last_ts = self.last_ts.max(c.ts);
        self.failed &= c.outcome == CallOutcome::Failed;
        self.no_response &= c.outcome == CallOutcome::NoResponse;
        // A readable call outranks encrypted or inferred ones folded with it.
        if c.how.basis < self.basis {
            self.basis = c.how.basis;
        }
        let fits = self.calls.len() < MAX_FOLDED_CALLS;
        if fits {
            self.calls.push(c.call);
        }
        if self.service_name.is_none() {
            self.service_name = c.service_name;
        }
        if self.binary_path.is_none() {
            self.binary_path = c.how.args.binary_path.clone();
        }
        if let Some(h) = &c.how.args.response_handle {
            if self.handles.len() < MAX_HANDLES {
                self.handles.push(h.clone());
            }
        }
        fits
    }

    pub(super) fn id(&self) -> u64 {
        self.id
    }

    pub(super) fn technique(&self) -> Technique {
        self.technique
    }

    pub(super) fn create_ts(&self) -> Ts {
        self.create_ts
    }

    pub(super) fn first_ts(&self) -> Ts {
        self.first_ts
    }

    pub(super) fn last_ts(&self) -> Ts {
        self.last_ts
    }

    /// Evidence from before its first call (the window snapshot) moves its start earlier.
    pub(super) fn starts_by(&mut self, ts: Ts) {
        self.first_ts = self.first_ts.min(ts);
    }

    pub(super) fn push_evidence(&mut self, ev: Evidence) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(ev);
        } else {
            self.evidence_dropped = true;
        }
    }

    /// An admin share the pair connected to (upper case).
    pub(super) fn add_share(&mut self, share: &str) {
        self.shares.insert(share.to_string());
    }

    pub(super) fn add_pipe(&mut self, p: &str) {
        if self.pipes.len() < MAX_PAIR_ITEMS
            && !self.pipes.iter().any(|x| x.eq_ignore_ascii_case(p))
        {
            self.pipes.push(p.to_string());
        }
    }

    /// Whether a start/control/delete (`task`: run/delete of a task) concerns this instance: the
    /// same family, and its service by name or handle, or (`unknown`) no name could be learnt.
    pub(super) fn concerns(
        &self,
        task: bool,
        name: Option<&str>,
        handle: Option<&str>,
        unknown: bool,
    ) -> bool {
        let same_family = task == (self.technique == Technique::TaskCreate);
        same_family
            && (name.is_some_and(|n| self.names_service(n))
                || handle.is_some_and(|h| self.handles.iter().any(|x| x == h))
                || unknown)
    }

    /// A start/control/delete that `concerns` it.
    pub(super) fn follow_up(&mut self, what: FollowUp, ts: Ts, ev: Evidence) {
        match what {
            FollowUp::Started => self.started = true,
            FollowUp::Deleted => self.deleted = true,
            FollowUp::Other => {}
        }
        self.last_ts = self.last_ts.max(ts);
        self.push_evidence(ev);
    }

    /// What a size/response inference adds to the instance it opened or folded into.
    pub(super) fn add_inferred(&mut self, x: InferredExtras) {
        self.first_ts = self.first_ts.min(x.first_ts);
        for e in x.evidence {
            self.push_evidence(e);
        }
        for p in &x.pipes {
            self.add_pipe(p);
        }
        self.inferred_upload = self.inferred_upload.max(x.upload_size);
        if self.tool_hint.is_none() {
            self.tool_hint = x.tool_hint;
        }
        self.inferred_medium |= x.medium;
    }

    /// Every binary path and task command of its calls.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        self.calls
            .iter()
            .filter_map(|c| c.binary_path.as_deref())
            .chain(self.binary_path.as_deref())
            .chain(self.command.as_deref())
    }

    /// A call for another service: its name and binary path are both known and neither is one
    /// of this instance's (PsKill's PSKLLSVC after PsExec's PSEXESVC). smbexec's one service per
    /// command keeps its name and folds.
    pub(super) fn is_other_service(&self, name: Option<&str>, path: Option<&str>) -> bool {
        match (name, path) {
            (Some(n), Some(p)) => {
                self.service_name.is_some()
                    && !self.names_service(n)
                    && !self.paths().any(|x| x.eq_ignore_ascii_case(p))
            }
            _ => false,
        }
    }

    /// Distinct service names of its calls, in call order (case-insensitively).
    pub(super) fn service_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = vec![];
        for n in self
            .service_name
            .as_deref()
            .into_iter()
            .chain(self.calls.iter().filter_map(|c| c.service_name.as_deref()))
        {
            if !v.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                v.push(n);
            }
        }
        v
    }

    /// The service name of each call, lowercase ("" where unknown): what a closed instance
    /// leaves its pair to recognise a later start of the same service.
    pub(super) fn call_services_lower(&self) -> impl Iterator<Item = String> + '_ {
        self.calls
            .iter()
            .map(|c| c.service_name.as_deref().unwrap_or("").to_ascii_lowercase())
    }

    pub(super) fn names_service(&self, name: &str) -> bool {
        self.service_name
            .as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            || self.calls.iter().any(|c| {
                c.service_name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
    }

    /// Whether one of its binary paths or commands names the uploaded file.
    pub(super) fn names_upload(&self, u: &UploadRec) -> bool {
        self.paths().any(|bp| u.named_by(bp))
    }

    /// It holds fewer than `MAX_UPLOADS`.
    pub(super) fn has_room_for_upload(&self) -> bool {
        self.uploads.len() < MAX_UPLOADS
    }

    /// Takes an upload (its evidence too; one written before the create moves the start).
    pub(super) fn take_upload(&mut self, u: &UploadRec) {
        let after_create = u.ts() > self.create_ts;
        if !after_create {
            self.first_ts = self.first_ts.min(u.ts());
        }
        self.push_evidence(u.evidence().clone());
        self.uploads.push(Taken {
            upload: u.clone(),
            after_create,
        });
    }

    /// Gives up an upload another instance claims more strongly.
    pub(super) fn give_up_upload(&mut self, id: u64) {
        self.uploads.retain(|t| t.upload.id() != id);
    }

    /// An upload it holds grew: its copy follows.
    pub(super) fn refresh_upload(&mut self, u: &UploadRec) {
        if let Some(t) = self.uploads.iter_mut().find(|t| t.upload.id() == u.id()) {
            t.upload = u.clone();
        }
    }
}
