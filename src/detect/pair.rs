//! Per (source, target) state: what the pair did recently (authentication, admin-share connects,
//! uploads, pipes, svcctl handles, calls) and its open attack instances. It owns the handling of
//! the pair's events; the detector routes events to it and emits what it asks for.

mod uploads;

pub use uploads::Owner;

use super::calls::{
    call_status, changes_binary, clean_pipe, config_changes, iface_of, role, CallOutcome, CallRole,
    Iface,
};
use super::handles::{ConvKey, HandleOf, Handles, Wants};
use super::instance::{CreateCall, FollowUp, How, InferredExtras, Instance};
use super::matcher::{InferredCall, MAX_OPEN_INSTANCES, MAX_PAIR_ITEMS, MAX_UPLOADS};
use super::names::is_admin_share;
use super::report::{service_control_signal, ServiceControl};
use super::upload::{UploadRec, Written};
use crate::event::alert::{Basis, Evidence, FoldedCall, SignalAlert, Technique};
use crate::event::{
    BindContext, ConnFields, DceArgs, DceRpc, FileAction, Principal, Share, SmbAuth, SmbFiles,
    UserSource,
};
use crate::time::Ts;
use std::net::IpAddr;

/// Who the pair authenticated as.
#[derive(Clone, Debug, Default)]
pub(super) struct Auth {
    pub(super) user: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) workstation: Option<String>,
    /// Kerberos: "kerberos", and how the user was learned (issue 16).
    pub(super) kerberos: Option<UserSource>,
}

/// What the (source, target) pair knew when an instance closed, as scoring needs it.
#[derive(Clone, Debug)]
pub(super) struct PairView<'a> {
    pub(super) src: IpAddr,
    pub(super) dst: IpAddr,
    pub(super) machine_name: Option<&'a str>,
    /// Any SMB from source to target.
    pub(super) smb_seen: bool,
    /// "endpoint::operation" of the pair's calls in the instance's window.
    pub(super) calls: Vec<&'a str>,
    /// Most contexts one bind offered (with a relevant interface) in the window.
    pub(super) max_bind_contexts: u32,
}

impl PairView<'_> {
    /// A pair whose state is gone.
    pub(super) fn unknown(src: IpAddr, dst: IpAddr) -> PairView<'static> {
        PairView {
            src,
            dst,
            machine_name: None,
            smb_seen: false,
            calls: vec![],
            max_bind_contexts: 0,
        }
    }
}

/// Something the pair saw by name at a time (an admin-share connect, a pipe open), with its
/// evidence line.
#[derive(Clone, Debug)]
struct Seen {
    ts: Ts,
    name: String,
    ev: Evidence,
}

/// A DCE-RPC operation ("endpoint::operation") the pair called, last at `ts`.
#[derive(Clone, Debug)]
struct OperationSeen {
    key: String,
    ts: Ts,
}

/// The bind offering the most contexts (with a relevant interface) so far, and when.
#[derive(Clone, Copy, Debug, Default)]
struct WidestBind {
    contexts: u32,
    ts: Ts,
}

/// What a DCE-RPC call asks of the detector.
pub(super) enum DceEffect<'a> {
    Nothing,
    /// A signal to emit.
    Signal(Box<SignalAlert>),
    /// A create/register call: open an instance or fold into one ([`PairState::open_instance`]).
    Create(Box<NewCall<'a>>),
}

/// A create/register call and its evidence line.
pub(super) struct NewCall<'a> {
    pub(super) create: CreateCall<'a>,
    pub(super) evidence: Evidence,
}

#[derive(Default)]
pub(super) struct PairState {
    last_ts: Ts,
    smb_seen: bool,
    auth: Option<Auth>,
    auth_ev: Option<Evidence>,
    admin_connects: Vec<Seen>,
    uploads: Vec<UploadRec>,
    /// Uploads recorded so far (their ids).
    upload_seq: u64,
    pipes: Vec<Seen>,
    calls: Vec<OperationSeen>,
    widest_bind: WidestBind,
    machine_name: Option<String>,
    handles: Handles,
    open: Vec<Instance>,
    /// Services (lowercase names; "" when unknown) of this pair's closed attack instances: a later
    /// start/stop of one is the tail of an attack already reported, not an existing service.
    reported_services: Vec<String>,
}

impl PairState {
    /// An event of the pair at `ts`.
    pub(super) fn touch(&mut self, ts: Ts) {
        self.last_ts = self.last_ts.max(ts);
    }

    pub(super) fn saw_smb(&mut self) {
        self.smb_seen = true;
    }

    pub(super) fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    pub(super) fn user(&self) -> Option<String> {
        self.auth.as_ref().and_then(|a| a.user.clone())
    }

    /// Still worth keeping at `now`: an instance is open, or its last event is within `keep_ns`.
    pub(super) fn active(&self, now: Ts, keep_ns: u64) -> bool {
        !self.open.is_empty() || now.0 <= self.last_ts.0.saturating_add(keep_ns)
    }

    /// It authenticated or attacked: kept longer, so a late attack still names its user.
    pub(super) fn worth_keeping(&self) -> bool {
        self.auth.is_some() || !self.reported_services.is_empty()
    }

    /// A Kerberos session whose ticket's issue was not seen: the pair's user is unknown, and the
    /// alert says so (`user_source: unseen`) unless another session named the user.
    fn learn_kerberos_unseen(&mut self, source: Option<UserSource>) {
        if source == Some(UserSource::Unseen) && self.auth.is_none() {
            self.auth = Some(Auth {
                kerberos: source,
                ..Auth::default()
            });
        }
    }

    pub(super) fn on_smb_auth(&mut self, c: &ConnFields, a: &SmbAuth) {
        self.smb_seen = true;
        self.learn_kerberos_unseen(a.user_source);
        if a.user.as_deref().is_none_or(str::is_empty) {
            return;
        }
        self.auth = Some(Auth {
            user: a.user.clone(),
            domain: a.domain.clone(),
            workstation: a.workstation.clone(),
            kerberos: a.user_source,
        });
        let summary = format!(
            "session setup {} as {}\\{} from {} ({}, {})",
            a.auth,
            a.domain.as_deref().unwrap_or(""),
            a.user.as_deref().unwrap_or(""),
            a.workstation.as_deref().unwrap_or("?"),
            a.dialect,
            a.status
        );
        self.auth_ev = Some(Evidence::new(c, c.ts, "smb_auth", summary));
    }

    /// A DCE-RPC bind's Kerberos client.
    pub(super) fn on_principal(&mut self, who: &Principal) {
        self.learn_kerberos_unseen(who.user_source);
        if who.user.as_deref().is_some_and(|u| !u.is_empty()) {
            self.auth = Some(Auth {
                user: who.user.clone(),
                domain: who.domain.clone(),
                workstation: None,
                kerberos: who.user_source,
            });
        }
    }

    /// A tree connect to an admin share (upper case): evidence for open instances and for ones
    /// opening within `window_ns`.
    pub(super) fn on_admin_connect(
        &mut self,
        c: &ConnFields,
        share: &str,
        path: &str,
        status: &str,
        window_ns: u64,
    ) {
        let e = Evidence::new(
            c,
            c.ts,
            "smb_mapping",
            format!("tree connect {path} ({status})"),
        );
        for inst in self.open.iter_mut() {
            inst.add_share(share);
            inst.push_evidence(e.clone());
        }
        prune(&mut self.admin_connects, c.ts, window_ns);
        if self.admin_connects.len() < MAX_PAIR_ITEMS {
            self.admin_connects.push(Seen {
                ts: c.ts,
                name: share.to_string(),
                ev: e,
            });
        }
    }

    /// A pipe open or a file written. Returns the cap reached, if any (`MAX_UPLOADS`).
    pub(super) fn on_smb_file(
        &mut self,
        c: &ConnFields,
        f: &SmbFiles,
        window_ns: u64,
    ) -> Option<&'static str> {
        self.smb_seen = true;
        let is_pipe = f.action == Some(FileAction::PipeOpen)
            || (f.action == Some(FileAction::FileOpen) && f.share.eq_ignore_ascii_case("IPC$"));
        if is_pipe {
            self.on_pipe_open(c, f, window_ns);
            return None;
        }
        if f.action != Some(FileAction::FileWrite) {
            return None;
        }
        // What the handle left on disk: bytes written over the same offsets again (a decoy, then
        // the real content) count once, so never more than the file's size.
        let bytes = match (f.bytes_written, f.size) {
            (Some(w), Some(size)) => w.min(size),
            (w, _) => w.unwrap_or(0),
        };
        let share = match Share::from_logged(&f.share) {
            Share::Known(s) => Share::Known(s.to_ascii_uppercase()),
            Share::Unknown => Share::Unknown,
        };
        let pe = f.pe == Some(true);
        let wanted = match &share {
            Share::Known(s) => is_admin_share(s),
            // Where the tree connect was missed, executables only.
            Share::Unknown => pe,
        };
        if bytes == 0 || !wanted {
            return None;
        }
        let name = f.name.trim_start_matches('\\');
        let summary = format!(
            "wrote {}\\{} {} bytes{}{}",
            share,
            name,
            bytes,
            if pe { " PE" } else { "" },
            f.sha256
                .as_deref()
                .map(|h| format!(" sha256 {h}"))
                .unwrap_or_default()
        );
        let ts = f.first_write_ts.unwrap_or(c.ts);
        let w = Written {
            ts,
            share,
            name,
            bytes,
            pe,
            sha256: f.sha256.as_deref(),
            ev: Evidence::new(c, ts, "smb_files", summary),
        };
        // Aggregate by name over handles (the truth sums bytes over every handle) ... until a
        // create came after the writes began: the name written again is a new upload then
        // (PsExec run twice).
        let creates: Vec<Ts> = self.open.iter().map(Instance::create_ts).collect();
        let same = |u: &UploadRec| {
            u.same_file(&w) && (u.owner().is_none() || !creates.iter().any(|&c| c >= u.ts()))
        };
        let k = if let Some(k) = self.uploads.iter().position(same) {
            self.uploads[k].grow(&w);
            k
        } else if self.uploads.len() < MAX_UPLOADS {
            self.upload_seq += 1;
            self.uploads.push(UploadRec::new(self.upload_seq, w));
            self.uploads.len() - 1
        } else {
            return Some("MAX_UPLOADS");
        };
        self.upload_changed(k, Ts(c.ts.0.saturating_sub(window_ns)));
        None
    }

    fn on_pipe_open(&mut self, c: &ConnFields, f: &SmbFiles, window_ns: u64) {
        let name = clean_pipe(&f.name);
        // `<unknown>`: opened in a server→client-only capture; the bind_ack names it later.
        if name.is_empty() || name == crate::smb::tables::UNKNOWN {
            return;
        }
        let e = Evidence::new(
            c,
            c.ts,
            "smb_files",
            format!("pipe open \\{} ({})", name, f.status),
        );
        for inst in self.open.iter_mut() {
            inst.add_pipe(&name);
            inst.push_evidence(e.clone());
        }
        prune(&mut self.pipes, c.ts, window_ns);
        if self.pipes.len() < MAX_PAIR_ITEMS
            && !self
                .pipes
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&name))
        {
            self.pipes.push(Seen {
                ts: c.ts,
                name,
                ev: e,
            });
        }
    }

    /// A bind or alter_context: how many contexts it offered, when one of them matters.
    pub(super) fn on_bind(&mut self, c: &ConnFields, ctxs: &[BindContext]) {
        let relevant = ctxs
            .iter()
            .any(|x| iface_of(&x.endpoint, Some(&x.uuid)) != Iface::Other);
        let n = u32::try_from(ctxs.len()).unwrap_or(u32::MAX);
        if relevant && n >= self.widest_bind.contexts {
            self.widest_bind = WidestBind {
                contexts: n,
                ts: c.ts,
            };
        }
    }

    /// A DCE-RPC call (not a bind): the pair's call history, svcctl handles, and what it means
    /// for the technique.
    pub(super) fn on_dce_call<'d>(&mut self, c: &ConnFields, d: &'d DceRpc) -> DceEffect<'d> {
        let op_key = format!("{}::{}", d.endpoint, d.operation);
        if let Some(x) = self.calls.iter_mut().find(|x| x.key == op_key) {
            x.ts = c.ts;
        } else if self.calls.len() < MAX_PAIR_ITEMS {
            self.calls.push(OperationSeen {
                key: op_key,
                ts: c.ts,
            });
        }
        let iface = iface_of(&d.endpoint, d.uuid.as_deref());
        let Some(opnum) = d.opnum else {
            return DceEffect::Nothing;
        };
        let (status, outcome) = call_status(d);
        let r = role(iface, opnum);
        let conv = ConvKey {
            uid: c.uid,
            pipe: d.named_pipe.clone(),
        };
        // What the request's handle stands for (linked by call order when no response was seen).
        let wants = match r {
            CallRole::Create(Technique::ServiceModify) => Some(Wants::Service),
            CallRole::OpenService | CallRole::Create(_) => Some(Wants::Scm),
            CallRole::Start | CallRole::Delete | CallRole::Control => Some(Wants::Service),
            _ => None,
        };
        let handle_service = match (d.args.handle.as_deref(), wants) {
            (Some(h), Some(w)) if iface == Iface::Svcctl => {
                match self.handles.resolve(&conv, h, w) {
                    Some(HandleOf::Service(n)) => Some(n),
                    _ => None,
                }
            }
            (Some(h), _) => self.handles.service(h).map(str::to_string),
            _ => None,
        };
        // A handle-returning call: learn its handle, or wait for the request that uses it.
        let opened = |p: &mut PairState, of: Option<HandleOf>| {
            let Some(of) = of else { return };
            match (outcome, d.args.response_handle.as_deref()) {
                (CallOutcome::Ok, Some(h)) => p.handles.learn(h, of),
                (CallOutcome::NoResponse, _) => {
                    p.handles.opened_without_response(conv.clone(), of, c.ts)
                }
                _ => {}
            }
        };
        match r {
            CallRole::OpenScm => {
                if let Some(m) = &d.args.machine_name {
                    self.machine_name = Some(m.clone());
                }
                opened(self, Some(HandleOf::Scm));
                DceEffect::Nothing
            }
            CallRole::OpenService => {
                opened(self, d.args.service_name.clone().map(HandleOf::Service));
                DceEffect::Nothing
            }
            CallRole::Create(Technique::ServiceModify) if !changes_binary(d) => {
                // A change that points the service at nothing new (`sc config X start= disabled`)
                // is administration, not the technique: a signal naming what changed.
                let name = handle_service.or_else(|| d.args.service_name.clone());
                let e = Evidence::new(
                    c,
                    c.ts,
                    "dce_rpc",
                    format!("{} {} -> {status}", d.endpoint, d.operation),
                );
                let what = ServiceControl::Reconfigured(config_changes(&d.args));
                DceEffect::Signal(Box::new(service_control_signal(
                    c,
                    self.user(),
                    name,
                    what,
                    e,
                )))
            }
            CallRole::Create(technique) => {
                let service_name = d.args.service_name.clone().or(handle_service);
                if technique == Technique::ServiceCreate {
                    opened(self, service_name.clone().map(HandleOf::Service));
                }
                let e = Evidence::new(
                    c,
                    c.ts,
                    "dce_rpc",
                    create_summary(d, &service_name, &status),
                );
                let call = FoldedCall {
                    ts: c.ts,
                    service_name: service_name.clone(),
                    binary_path: d.args.binary_path.clone(),
                    task_path: d.args.task_path.clone(),
                    status,
                };
                let how = How {
                    basis: if d.stub_encrypted {
                        Basis::StubEncrypted
                    } else {
                        Basis::Cleartext
                    },
                    transport: d.transport,
                    opnum: d.opnum,
                    args: &d.args,
                    rpc_decrypted: d.decrypted,
                };
                DceEffect::Create(Box::new(NewCall {
                    create: CreateCall {
                        how,
                        iface,
                        technique,
                        service_name,
                        call,
                        outcome,
                        ts: c.ts,
                        decrypted: false,
                    },
                    evidence: e,
                }))
            }
            CallRole::Start
            | CallRole::Delete
            | CallRole::Control
            | CallRole::TaskRun
            | CallRole::TaskDelete => {
                let name = handle_service.or_else(|| d.args.service_name.clone());
                self.on_follow_up(c, d, r, name, &status)
            }
            CallRole::Other => DceEffect::Nothing,
        }
    }

    /// A start, control or delete of a service, a run or delete of a task: part of the open
    /// instance it concerns, else (start, control) a signal unless the service is one this pair
    /// already reported.
    fn on_follow_up<'d>(
        &mut self,
        c: &ConnFields,
        d: &DceRpc,
        r: CallRole,
        name: Option<String>,
        status: &str,
    ) -> DceEffect<'d> {
        // No name through the handle chain (stub encrypted, or the handle's origin was
        // missed): the call most likely concerns the instance this pair has open.
        let unknown = name.is_none();
        let e = Evidence::new(
            c,
            c.ts,
            "dce_rpc",
            format!(
                "{} {}{} -> {}",
                d.endpoint,
                d.operation,
                name.as_deref()
                    .map(|s| format!(" service {s}"))
                    .unwrap_or_default(),
                status
            ),
        );
        let task = matches!(r, CallRole::TaskRun | CallRole::TaskDelete);
        let handle = d.args.handle.as_deref();
        let hit = self
            .open
            .iter_mut()
            .rev()
            .find(|i| i.concerns(task, name.as_deref(), handle, unknown));
        if let Some(i) = hit {
            let what = match r {
                CallRole::Start | CallRole::TaskRun => FollowUp::Started,
                CallRole::Delete | CallRole::TaskDelete => FollowUp::Deleted,
                _ => FollowUp::Other,
            };
            i.follow_up(what, c.ts, e);
            return DceEffect::Nothing;
        }
        let reported = match name.as_deref() {
            Some(n) => self
                .reported_services
                .iter()
                .any(|x| x.eq_ignore_ascii_case(n)),
            None => !self.reported_services.is_empty(),
        };
        let what = match r {
            CallRole::Start => ServiceControl::Started,
            CallRole::Control => ServiceControl::Controlled,
            _ => return DceEffect::Nothing,
        };
        if reported {
            return DceEffect::Nothing;
        }
        DceEffect::Signal(Box::new(service_control_signal(
            c,
            self.user(),
            name,
            what,
            e,
        )))
    }

    /// A create/register call opens an instance or folds into an open one of the same technique
    /// (another tool's service is its own instance while there is room), with the evidence of
    /// the `window_ns` before it. Returns the cap reached, if any.
    pub(super) fn open_instance(
        &mut self,
        create: CreateCall<'_>,
        e: Evidence,
        window_ns: u64,
        next_instance_id: &mut u64,
    ) -> Option<&'static str> {
        let from = Ts(create.ts.0.saturating_sub(window_ns));
        let tech = create.technique;
        let same = |i: &Instance| i.technique() == tech;
        let path = create.how.args.binary_path.as_deref();
        let fold = self
            .open
            .iter()
            .position(|i| same(i) && !i.is_other_service(create.service_name.as_deref(), path))
            .or_else(|| {
                (self.open.len() >= MAX_OPEN_INSTANCES)
                    .then(|| self.open.iter().position(same))
                    .flatten()
            });
        if let Some(idx) = fold {
            let fits = self.open[idx].fold(create);
            self.open[idx].push_evidence(e);
            // A new binary path may name an upload another instance took by time.
            self.claim_uploads(idx, from);
            return (!fits).then_some("MAX_FOLDED_CALLS");
        }
        if self.open.len() >= MAX_OPEN_INSTANCES {
            return Some("MAX_OPEN_INSTANCES");
        }
        *next_instance_id += 1;
        let mut inst = Instance::open(*next_instance_id, create);
        // Snapshot the window before the call.
        let mut before: Vec<Evidence> = vec![];
        if let Some(a) = &self.auth_ev {
            if a.ts >= from {
                before.push(a.clone());
            }
        }
        for s in self.admin_connects.iter().filter(|s| s.ts >= from) {
            inst.add_share(&s.name);
            before.push(s.ev.clone());
        }
        for s in self.pipes.iter().filter(|s| s.ts >= from) {
            inst.add_pipe(&s.name);
            before.push(s.ev.clone());
        }
        before.sort_by_key(|e| e.ts);
        if let Some(first) = before.first() {
            inst.starts_by(first.ts);
        }
        for b in before {
            inst.push_evidence(b);
        }
        inst.push_evidence(e);
        self.open.push(inst);
        self.claim_uploads(self.open.len() - 1, from);
        None
    }

    /// An inferred technique (`Detector::on_inferred`): opened or folded like a readable call,
    /// then given what the inference read. Returns the cap reached, if any.
    pub(super) fn on_inferred(
        &mut self,
        x: InferredCall,
        decrypted: bool,
        window_ns: u64,
        next_instance_id: &mut u64,
    ) -> Option<&'static str> {
        let c = &x.conn;
        // Answers on a TCP connection the endpoint mapper named are no SMB (SharpNoPSExec's
        // signature is "no SMB at all").
        if x.transport == crate::dcerpc::Transport::SmbPipe {
            self.smb_seen = true;
        }
        if self.auth.is_none() && x.user.is_some() {
            self.auth = Some(Auth {
                user: x.user.clone(),
                domain: x.domain.clone(),
                workstation: x.workstation.clone(),
                kerberos: None,
            });
        }
        let iface = match x.interface {
            "atsvc" => Iface::Atsvc,
            "ITaskSchedulerService" => Iface::TaskSched,
            _ => Iface::Svcctl,
        };
        let source = match x.basis {
            Basis::Responses => "dce_rpc",
            _ => "smb_opaque",
        };
        let e = Evidence::new(c, c.ts, source, x.reason.clone());
        let args = DceArgs {
            task_path: x.task_path.clone(),
            ..DceArgs::default()
        };
        let create = CreateCall {
            how: How {
                basis: x.basis,
                transport: x.transport,
                opnum: None,
                args: &args,
                rpc_decrypted: false,
            },
            iface,
            technique: x.technique,
            service_name: None,
            call: FoldedCall {
                ts: c.ts,
                service_name: None,
                binary_path: None,
                task_path: x.task_path.clone(),
                status: "<inferred>".into(),
            },
            outcome: if x.failed {
                CallOutcome::Failed
            } else {
                CallOutcome::Ok
            },
            ts: c.ts,
            decrypted,
        };
        let cap = self.open_instance(create, e, window_ns, next_instance_id);
        if let Some(i) = self.open.iter_mut().find(|i| i.technique() == x.technique) {
            i.add_inferred(InferredExtras {
                first_ts: x.first_ts,
                evidence: x
                    .evidence
                    .into_iter()
                    .map(|(ts, summary)| Evidence::new(c, ts, source, summary))
                    .collect(),
                pipes: x.pipes,
                upload_size: x.upload_size,
                tool_hint: x.tool_hint,
                medium: x.medium,
            });
        }
        cap
    }

    /// Instances whose last activity is more than `close_after_ns` before `now` (every one when
    /// `all`), in the order they opened; their services are remembered as reported.
    pub(super) fn close_due(&mut self, now: Ts, close_after_ns: u64, all: bool) -> Vec<Instance> {
        let mut closed = vec![];
        let mut i = 0;
        while i < self.open.len() {
            if all || now.0 > self.open[i].last_ts().0.saturating_add(close_after_ns) {
                let inst = self.open.remove(i);
                for n in inst.call_services_lower() {
                    if !self.reported_services.contains(&n) {
                        if self.reported_services.len() >= MAX_PAIR_ITEMS {
                            self.reported_services.remove(0);
                        }
                        self.reported_services.push(n);
                    }
                }
                closed.push(inst);
            } else {
                i += 1;
            }
        }
        closed
    }

    /// Uploads older than `evidence_ns` at `now` (every one when `all`) are forgotten; the ones no
    /// instance took are returned (a signal each).
    pub(super) fn expire_uploads(
        &mut self,
        now: Ts,
        evidence_ns: u64,
        all: bool,
    ) -> Vec<UploadRec> {
        let mut unowned = vec![];
        self.uploads.retain(|u| {
            let keep = !all && now.0 <= u.ts().0.saturating_add(evidence_ns);
            if !keep && u.owner().is_none() {
                unowned.push(u.clone());
            }
            keep
        });
        unowned
    }

    /// Forgets evidence older than `evidence_ns` at `now`.
    pub(super) fn prune_evidence(&mut self, now: Ts, evidence_ns: u64) {
        prune(&mut self.admin_connects, now, evidence_ns);
        prune(&mut self.pipes, now, evidence_ns);
        self.handles.expire(Ts(now.0.saturating_sub(evidence_ns)));
        self.calls
            .retain(|x| now.0 <= x.ts.0.saturating_add(evidence_ns));
    }

    /// What scoring reads of the pair for an instance whose window starts at `from`.
    pub(super) fn view(&self, src: IpAddr, dst: IpAddr, from: Ts) -> PairView<'_> {
        PairView {
            src,
            dst,
            machine_name: self.machine_name.as_deref(),
            smb_seen: self.smb_seen,
            calls: self
                .calls
                .iter()
                .filter(|x| x.ts >= from)
                .map(|x| x.key.as_str())
                .collect(),
            max_bind_contexts: if self.widest_bind.ts >= from {
                self.widest_bind.contexts
            } else {
                0
            },
        }
    }
}

/// The evidence line of a create/register call.
fn create_summary(d: &DceRpc, service_name: &Option<String>, status: &str) -> String {
    format!(
        "{} {}{}{}{} -> {}{}",
        d.endpoint,
        d.operation,
        service_name
            .as_deref()
            .map(|s| format!(" service {s}"))
            .unwrap_or_default(),
        d.args
            .binary_path
            .as_deref()
            .map(|s| format!(" path {s}"))
            .unwrap_or_default(),
        d.args
            .task_path
            .as_deref()
            .map(|s| format!(" task {s}"))
            .unwrap_or_default(),
        status,
        if d.stub_encrypted {
            " (stub encrypted)"
        } else {
            ""
        }
    )
}

/// Drop entries older than `window_ns` before `now` (entries are appended in time order).
fn prune(v: &mut Vec<Seen>, now: Ts, window_ns: u64) {
    let cut = now.0.saturating_sub(window_ns);
    v.retain(|x| x.ts.0 >= cut);
}
