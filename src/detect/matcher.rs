//! The detector: routes events in packet order to per (source, target) state ([`PairState`])
//! and per-source state ([`Sources`]), closes attack instances when their window passes, and
//! emits what they produce (exceptions applied, host summaries counted).
//!
//! An attack instance opens at a remote service creation / reconfiguration or task registration
//! and gathers evidence from a sliding window around it: what the pair did in the `window` before
//! it (snapshotted when it opens) and what follows while it stays open. It closes, and its alert is
//! written, when packet time passes `last activity + window` (or at `finish`). Repeats from the same
//! source on the same target while it is open fold into it.

pub use super::calls::{ATSVC_UUID, SVCCTL_UUID, TASKSCHED_UUID};
use super::instance::Instance;
use super::names::is_admin_share;
use super::pair::{DceEffect, NewCall, PairState, PairView};
use super::report::{sweep_signal, upload_signal};
use super::rules::{ExceptionSubject, Rules};
use super::source::{SourceState, Sources};
use crate::dcerpc::Transport;
use crate::event::alert::{Alert, Basis, SignalAlert, Technique, TechniqueAlert, VisibilityAlert};
use crate::event::{ConnFields, DceRpc, Event, SmbVisibility};
use crate::time::Ts;
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// (source, target) pairs tracked at once; beyond it idle pairs are swept and new pairs ignored.
pub const MAX_PAIRS: usize = 65_536;
/// Open attack instances per pair.
pub const MAX_OPEN_INSTANCES: usize = 8;
/// Evidence lines kept per alert.
pub const MAX_EVIDENCE: usize = 64;
/// Folded calls kept per alert (the count keeps counting).
pub const MAX_FOLDED_CALLS: usize = 32;
/// Distinct uploads remembered per pair (and per instance).
pub const MAX_UPLOADS: usize = 64;
/// Pipe opens, admin-share connects and distinct calls remembered per pair.
pub const MAX_PAIR_ITEMS: usize = 128;
pub use super::handles::MAX_HANDLES;
/// SMB3-encrypted sessions already reported (each forgotten after `AUTH_KEEP_NS` without a sign).
pub const MAX_VISIBILITY_KEYS: usize = 65_536;
pub use super::source::{MAX_SOURCES, MAX_SOURCE_TARGETS};
/// Packet-time interval between sweeps of idle state.
const SWEEP_EVERY_NS: u64 = 30 * 1_000_000_000;
/// An idle pair that authenticated or attacked is kept this long (packet time) so that an attack late in a
/// long SMB session still names its user; such pairs are evicted first when `MAX_PAIRS` is reached.
const AUTH_KEEP_NS: u64 = 24 * 3600 * 1_000_000_000;
/// How late an event may arrive behind packet time: a DCE-RPC call whose response never came is
/// logged when it times out. Evidence is kept this much longer than the window, so that such a
/// call (the create of a one-sided capture) still finds the uploads and pipes before it.
const LATE_EVENT_NS: u64 = crate::dcerpc::conversation::DCERPC_CALL_TIMEOUT_SECS * 1_000_000_000;
/// Alerts handed to the caller at a time while the end-of-run host summaries are written.
const FINISH_BATCH: usize = 64;

/// Counters of named caps reached inside detection.
#[derive(Clone, Debug, Default)]
pub struct DetectStats {
    pub caps: BTreeMap<&'static str, u64>,
    pub events: u64,
}

/// Entries detection holds right now: what must stay flat however long the run (tests, counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DetectTables {
    pub pairs: usize,
    /// Sources with live state (recent activity).
    pub sources: usize,
    /// Quiet sources kept packed for the end-of-run host summaries (`MAX_RETIRED_SOURCES`).
    pub retired_sources: usize,
    pub visibility_keys: usize,
    pub decrypted_conns: usize,
}

/// A technique inferred without a readable call (see `Detector::on_inferred`).
#[derive(Clone, Debug)]
pub struct InferredCall {
    /// Connection and time of the (inferred) create call.
    pub conn: ConnFields,
    /// First evidence (e.g. the start of the encrypted upload).
    pub first_ts: Ts,
    pub technique: Technique,
    /// "svcctl" | "atsvc" | "ITaskSchedulerService"
    pub interface: &'static str,
    /// The carrier of the calls: an SMB named pipe (SMB3 sizes; pipe answers) or TCP (answers
    /// on a connection the endpoint mapper named).
    pub transport: crate::dcerpc::Transport,
    pub user: Option<String>,
    pub domain: Option<String>,
    pub workstation: Option<String>,
    /// Bytes of an upload seen as encrypted WRITEs before the service calls.
    pub upload_size: Option<u64>,
    /// Tool suggested by the inferring detector, used when no signature matches.
    pub tool_hint: Option<String>,
    /// The inferring detector rated it medium (upload then service) rather than low.
    pub medium: bool,
    /// One sentence from the inferring detector.
    pub reason: String,
    /// What the inference read: SMB3 sizes (`Inferred`) or server responses (`Responses`).
    pub basis: Basis,
    /// A failing answer was seen (a fault, or an error status where the layout has one).
    pub failed: bool,
    /// Pipes the answers named (bind_ack secondary addresses).
    pub pipes: Vec<String>,
    /// The task path a SchRpcRegisterTask answer carries.
    pub task_path: Option<String>,
    /// Evidence lines (time, summary), e.g. each message size taken for a bind or a create.
    pub evidence: Vec<(Ts, String)>,
}

/// Caps reached inside detection: counted, and reported through the sink now and then.
#[derive(Default)]
struct Caps {
    stats: DetectStats,
    last_ts: BTreeMap<&'static str, Ts>,
    reported: BTreeMap<&'static str, u64>,
}

impl Caps {
    fn hit(&mut self, name: &'static str, now: Ts) {
        *self.stats.caps.entry(name).or_insert(0) += 1;
        self.last_ts.insert(name, now);
    }

    /// One `cap_reached` anomaly per cap reached since the last call, the rest as counts.
    fn report(&mut self, sink: &mut crate::sink::Sink, now: Ts) {
        for (&name, &total) in &self.stats.caps {
            let done = self.reported.get(name).copied().unwrap_or(0);
            let delta = total.saturating_sub(done);
            if delta == 0 {
                continue;
            }
            let ts = self.last_ts.get(name).copied().unwrap_or(now);
            sink.cap_reached(
                name,
                ts,
                None,
                "detect",
                format!("detection cap {name} reached {delta} time(s)"),
            );
            if delta > 1 {
                sink.count(name, delta - 1);
            }
            self.reported.insert(name, total);
        }
    }
}

/// See `super` (mod.rs) for the API contract.
pub struct Detector {
    rules: Rules,
    window_ns: u64,
    /// Keyed by addresses the wire chooses: a seeded hash (`wire::maps::KeyedMap`), not FxHash.
    pairs: KeyedMap<(IpAddr, IpAddr), PairState>,
    sources: Sources,
    /// SMB3-encrypted sessions reported, with the last time each was seen.
    visibility_seen: KeyedMap<(IpAddr, IpAddr, u64), Ts>,
    /// Connections whose SMB3 sessions we decrypt with supplied keys (alerts say so), with the
    /// last time each was seen.
    decrypted_conns: KeyedMap<crate::flow::Uid, Ts>,
    now: Ts,
    next_sweep: Ts,
    next_summary: Option<Ts>,
    last_evict: Option<Ts>,
    caps: Caps,
    /// Live mode: an open attack instance is written once quiet this long (shorter than the
    /// window); `None` (offline) waits for the whole window. See [`Detector::close_when_quiet`].
    quiet_close_ns: Option<u64>,
    /// Ids of attack instances opened so far (upload ownership).
    next_instance_id: u64,
}

impl Detector {
    pub fn new(rules: Rules) -> Detector {
        let window_ns = rules.settings.window_secs.saturating_mul(1_000_000_000);
        Detector {
            rules,
            window_ns,
            pairs: KeyedMap::default(),
            sources: Sources::default(),
            visibility_seen: KeyedMap::default(),
            decrypted_conns: KeyedMap::default(),
            now: Ts(0),
            next_sweep: Ts(0),
            next_summary: None,
            last_evict: None,
            caps: Caps::default(),
            quiet_close_ns: None,
            next_instance_id: 0,
        }
    }

    /// Live mode: write a technique alert once its attack instance had no activity (create,
    /// start, delete, folded repeats) for `secs` of packet time, instead of waiting for the whole
    /// evidence window (`window_secs`, default 600 s). What comes later for the same pair and
    /// service is then a new instance (a repeat start of a reported service is a signal). Uploads
    /// and connects stay evidence for the whole window.
    pub fn close_when_quiet(&mut self, secs: u64) {
        self.quiet_close_ns = Some(secs.saturating_mul(1_000_000_000));
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn stats(&self) -> &DetectStats {
        &self.caps.stats
    }

    pub fn tables(&self) -> DetectTables {
        DetectTables {
            pairs: self.pairs.len(),
            sources: self.sources.live_len(),
            retired_sources: self.sources.retired_len(),
            visibility_keys: self.visibility_seen.len(),
            decrypted_conns: self.decrypted_conns.len(),
        }
    }

    /// Count a cap reached (reported through the sink by `report_caps`).
    fn cap(&mut self, name: &'static str) {
        self.caps.hit(name, self.now);
    }

    /// Report caps reached since the last call through the sink: one `cap_reached` anomaly per cap
    /// (layer "detect") and the rest as counts, so `cap.<NAME>` counters stay exact.
    pub fn report_caps(&mut self, sink: &mut crate::sink::Sink) {
        self.caps.report(sink, self.now);
    }

    /// Feed one event (packet-time order). Alerts whose instances closed are appended to `out`.
    pub fn on_event(&mut self, event: &Event, out: &mut Vec<Alert>) {
        self.caps.stats.events += 1;
        let Some(conn) = event.conn() else { return };
        let ts = conn.ts;
        if ts > self.now {
            self.now = ts;
        }
        if self.now >= self.next_sweep {
            self.sweep(out, false);
            self.next_sweep = Ts(self.now.0.saturating_add(SWEEP_EVERY_NS));
        }
        match event {
            Event::SmbAuth(a) => {
                if let Some(p) = self.pair(conn) {
                    p.on_smb_auth(conn, a);
                }
            }
            Event::SmbMapping(m) => {
                let window = self.window_ns;
                let Some(p) = self.pair(conn) else { return };
                p.saw_smb();
                if is_admin_share(&m.share) {
                    let share = m.share.to_ascii_uppercase();
                    p.on_admin_connect(conn, &share, &m.path, &m.status, window);
                    self.on_admin_connect(conn, out);
                }
            }
            Event::SmbFiles(f) => {
                let window = self.window_ns;
                if let Some(cap) = self.pair(conn).and_then(|p| p.on_smb_file(conn, f, window)) {
                    self.cap(cap);
                }
            }
            Event::SmbVisibility(v) => self.on_visibility(conn, v, out),
            Event::SmbOpaque(_) => {
                // Size-based inference reaches detection through `on_inferred` (`detect::stage`).
                if let Some(p) = self.pair(conn) {
                    p.saw_smb();
                }
            }
            Event::DceRpc(d) => {
                if d.principal.user_source.is_some() {
                    if let Some(p) = self.pair(conn) {
                        p.on_principal(&d.principal);
                    }
                }
                self.on_dce(conn, d, out)
            }
            // KDC exchanges reach detection through the sessions they name (kerberos::join).
            Event::Kerberos(_) | Event::Anomaly(_) => {}
        }
    }

    /// The pair of `c`'s addresses, created on first sight; `None` when `MAX_PAIRS` are tracked
    /// and none idle can go.
    fn pair(&mut self, c: &ConnFields) -> Option<&mut PairState> {
        let key = (c.orig_h, c.resp_h);
        // The length first: below the cap a new pair needs no lookup of its own.
        if self.pairs.len() >= MAX_PAIRS && !self.pairs.contains_key(&key) {
            // Evict pairs idle beyond the window (kept only for their user), at most once per sweep period.
            if self
                .last_evict
                .is_none_or(|t| self.now.0 >= t.0.saturating_add(SWEEP_EVERY_NS))
            {
                self.last_evict = Some(self.now);
                let (now, window) = (self.now, self.window_ns);
                self.pairs.retain(|_, p| p.active(now, window));
            }
            if self.pairs.len() >= MAX_PAIRS {
                self.cap("MAX_PAIRS");
                return None;
            }
        }
        let p = self.pairs.entry(key).or_default();
        p.touch(c.ts);
        Some(p)
    }

    /// A source's live state (see [`Sources::get`]).
    fn source(&mut self, src: IpAddr) -> Option<&mut SourceState> {
        let s = self.sources.get(src, self.now);
        if s.is_none() {
            self.caps.hit("MAX_SOURCES", self.now);
        }
        s
    }

    /// The per-source rule: admin-share connects to many hosts.
    fn on_admin_connect(&mut self, c: &ConnFields, out: &mut Vec<Alert>) {
        let settings = &self.rules.settings;
        let sweep_secs = settings.sweep_window_secs;
        let sweep_ns = sweep_secs.saturating_mul(1_000_000_000);
        let min = settings.sweep_min_targets as usize;
        let Some(s) = self.source(c.orig_h) else {
            return;
        };
        if let Some(sweep) = s.on_admin_connect(c.ts, c.resp_h, sweep_ns, min) {
            self.emit_signal(sweep_signal(c, sweep, sweep_secs), out);
        }
    }

    /// The connection is decrypted with supplied keys (its alerts say so); refreshes its time.
    fn decrypted(&mut self, c: &ConnFields) -> bool {
        match self.decrypted_conns.get_mut(&c.uid) {
            Some(t) => {
                *t = (*t).max(c.ts);
                true
            }
            None => false,
        }
    }

    fn on_visibility(&mut self, c: &ConnFields, v: &SmbVisibility, out: &mut Vec<Alert>) {
        let auth = self.pair(c).and_then(|p| {
            p.saw_smb();
            p.auth().cloned()
        });
        // One record per session, on the first sign (normally state "start"); none when the
        // supplied keys let us read it.
        if v.decrypted {
            if let Some(t) = self.decrypted_conns.get_mut(&c.uid) {
                *t = (*t).max(c.ts);
            } else if self.decrypted_conns.len() < MAX_VISIBILITY_KEYS {
                self.decrypted_conns.insert(c.uid, c.ts);
            } else {
                self.cap("MAX_VISIBILITY_KEYS");
            }
            return;
        }
        let key = (c.orig_h, c.resp_h, v.session_id);
        if let Some(t) = self.visibility_seen.get_mut(&key) {
            *t = (*t).max(c.ts);
            return;
        }
        if self.visibility_seen.len() >= MAX_VISIBILITY_KEYS {
            self.cap("MAX_VISIBILITY_KEYS");
            return;
        }
        self.visibility_seen.insert(key, c.ts);
        let auth = auth.unwrap_or_default();
        let user = v.user.clone().or(auth.user);
        let reason = format!(
            "SMB3 session from {} to {}{} is {}: the sensor cannot see shares, files or RPC inside it.",
            c.orig_h,
            c.resp_h,
            user.as_deref().map(|u| format!(" as {u}")).unwrap_or_default(),
            v.kind
        );
        if let Some(s) = self.source(c.orig_h) {
            s.on_unreadable_session(c.ts, user.as_deref());
        }
        out.push(Alert::Visibility(VisibilityAlert {
            ts: c.ts,
            uid: c.uid.to_string(),
            flow: c.flow(),
            src_ip: c.orig_h,
            dst_ip: c.resp_h,
            session_id: v.session_id,
            visibility: format!("smb3-{}", v.kind),
            user,
            domain: v.domain.clone().or(auth.domain),
            workstation: v.workstation.clone().or(auth.workstation),
            dialect: v.dialect.clone(),
            cipher: v.cipher.clone(),
            decrypted: v.decrypted,
            reason,
        }));
    }

    fn on_dce(&mut self, c: &ConnFields, d: &DceRpc, out: &mut Vec<Alert>) {
        let Some(p) = self.pair(c) else { return };
        if d.transport == Transport::SmbPipe {
            p.saw_smb();
        }
        // Bind and alter_context records, and only they, carry the offered contexts.
        if let Some(contexts) = &d.interfaces {
            p.on_bind(c, contexts);
            return;
        }
        match p.on_dce_call(c, d) {
            DceEffect::Nothing => {}
            DceEffect::Signal(sig) => self.emit_signal(*sig, out),
            DceEffect::Create(new) => {
                let NewCall {
                    mut create,
                    evidence: e,
                } = *new;
                create.decrypted = self.decrypted(c);
                let window = self.window_ns;
                let Some(p) = self.pairs.get_mut(&(c.orig_h, c.resp_h)) else {
                    return;
                };
                if let Some(cap) = p.open_instance(create, e, window, &mut self.next_instance_id) {
                    self.cap(cap);
                }
            }
        }
    }

    /// Entry point for detectors that infer the technique without a readable call (issue 7: SMB3
    /// message sizes, `detect::inferred`; server responses, `detect::responses`). Opens or folds
    /// into an instance with the inference's basis (lowest confidence); window, folding,
    /// attribution, exceptions and host summaries are shared with readable calls. The stage
    /// converts its `InferredTechnique` into an `InferredCall`.
    pub fn on_inferred(&mut self, x: InferredCall) {
        let c = x.conn;
        if c.ts > self.now {
            self.now = c.ts;
        }
        if self.pair(&c).is_none() {
            return;
        }
        let decrypted = self.decrypted(&c);
        let window = self.window_ns;
        let Some(p) = self.pairs.get_mut(&(c.orig_h, c.resp_h)) else {
            return;
        };
        if let Some(cap) = p.on_inferred(x, decrypted, window, &mut self.next_instance_id) {
            self.cap(cap);
        }
    }

    /// Close instances whose window has passed, expire uploads, drop idle pairs.
    fn sweep(&mut self, out: &mut Vec<Alert>, all: bool) {
        let now = self.now;
        let window = self.window_ns;
        let close_after = self.quiet_close_ns.map_or(window, |q| q.min(window));
        // A pair lives as long as its evidence (else its uploads would go without a signal).
        let evidence_ns = window.saturating_add(LATE_EVENT_NS);
        let mut closed: Vec<((IpAddr, IpAddr), Instance)> = vec![];
        let mut expired = vec![];
        for (key, p) in self.pairs.iter_mut() {
            closed.extend(
                p.close_due(now, close_after, all)
                    .into_iter()
                    .map(|i| (*key, i)),
            );
            let unowned = p.expire_uploads(now, evidence_ns, all);
            // The user is cloned only for an upload that leaves: most sweeps expire none.
            if !unowned.is_empty() {
                let user = p.user();
                expired.extend(unowned.into_iter().map(|u| (*key, u, user.clone())));
            }
            if !all {
                p.prune_evidence(now, evidence_ns);
            }
        }
        // Before idle pairs are dropped below: an alert reads its pair (who authenticated).
        // Map order is per-process random (keyed): sort fully so output order is stable.
        closed.sort_by_key(|(k, i)| (i.first_ts(), *k));
        for ((src, dst), inst) in closed {
            let from = Ts(inst.first_ts().0.saturating_sub(window));
            let p = self.pairs.get(&(src, dst));
            let view = p.map_or_else(|| PairView::unknown(src, dst), |p| p.view(src, dst, from));
            let auth = p.and_then(|p| p.auth().cloned()).unwrap_or_default();
            let closed = inst.into_alert(&view, auth, &self.rules);
            if closed.evidence_dropped {
                self.cap("MAX_EVIDENCE");
            }
            self.emit_technique(closed.alert, out);
        }
        expired.sort_by_key(|(k, u, _)| (u.ts(), *k, u.id()));
        for ((src, dst), u, user) in expired {
            if let Some(sig) = upload_signal(src, dst, &u, user) {
                self.emit_signal(sig, out);
            }
        }
        if !all {
            self.pairs.retain(|_, p| {
                let keep = if p.worth_keeping() {
                    AUTH_KEEP_NS.max(evidence_ns)
                } else {
                    evidence_ns
                };
                p.active(now, keep)
            });
            let keep = AUTH_KEEP_NS.max(window);
            self.visibility_seen
                .retain(|_, t| now.0 <= t.0.saturating_add(keep));
            self.decrypted_conns
                .retain(|_, t| now.0 <= t.0.saturating_add(keep));
            shrink_if_sparse(&mut self.pairs);
            self.sources.shrink();
            shrink_if_sparse(&mut self.visibility_seen);
            shrink_if_sparse(&mut self.decrypted_conns);
            self.retire_sources(out);
        }
    }

    /// Sources quiet for longer than both windows leave the live table (`Sources::retire_quiet`);
    /// ones that do not fit among the retired have their final summary written now.
    fn retire_sources(&mut self, out: &mut Vec<Alert>) {
        let sweep_ns = self
            .rules
            .settings
            .sweep_window_secs
            .saturating_mul(1_000_000_000);
        let quiet = self.window_ns.max(sweep_ns);
        let periodic = self.next_summary.is_some();
        for summary in self.sources.retire_quiet(self.now, quiet, periodic) {
            self.cap("MAX_RETIRED_SOURCES");
            out.push(Alert::HostSummary(summary));
        }
    }

    /// Applies exceptions, sets the id, counts it for its source's host summary.
    fn emit_technique(&mut self, mut a: TechniqueAlert, out: &mut Vec<Alert>) {
        let subject = ExceptionSubject {
            src: a.src_ip,
            dst: Some(a.dst_ip),
            user: a.user.as_deref(),
            domain: a.domain.as_deref(),
            service_name: a.service_name.as_deref(),
            tool: Some(a.tool.as_str()),
        };
        a.suppressed_by = self.rules.exception_for(&subject).map(str::to_string);
        a.id = a.content_id();
        let fits = self.source(a.src_ip).is_none_or(|s| s.on_attack(&a));
        if !fits {
            self.cap("MAX_SOURCE_TARGETS");
        }
        out.push(Alert::Technique(Box::new(a)));
    }

    /// Applies exceptions, sets the id, counts it for its source's host summary.
    fn emit_signal(&mut self, mut sig: SignalAlert, out: &mut Vec<Alert>) {
        let subject = ExceptionSubject {
            src: sig.src_ip,
            dst: sig.dst_ip,
            user: sig.user.as_deref(),
            domain: None,
            service_name: sig.service_name.as_deref(),
            tool: None,
        };
        sig.suppressed_by = self.rules.exception_for(&subject).map(str::to_string);
        sig.id = sig.content_id();
        if let Some(s) = self.source(sig.src_ip) {
            s.on_signal(sig.ts);
        }
        out.push(Alert::Signal(sig));
    }

    /// Live mode: close instances whose window passed by `now` (packet or wall time mapped to the
    /// capture clock) and emit periodic host summaries every `summary_interval_secs`.
    pub fn tick(&mut self, now: Ts, out: &mut Vec<Alert>) {
        if now > self.now {
            self.now = now;
        }
        self.sweep(out, false);
        let interval = self
            .rules
            .settings
            .summary_interval_secs
            .saturating_mul(1_000_000_000);
        match self.next_summary {
            None => self.next_summary = Some(Ts(self.now.0.saturating_add(interval))),
            Some(t) if self.now >= t => {
                self.summaries(out, false, &mut |_| {});
                self.next_summary = Some(Ts(self.now.0.saturating_add(interval)));
            }
            _ => {}
        }
    }

    /// End of input: flush every open instance, report unclaimed uploads, emit host summaries.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        self.finish_with(out, &mut |_| {});
    }

    /// [`Self::finish`], handing `out` to `flush` every few host summaries (which should drain
    /// it), so the end of a run with many attacking hosts does not hold every summary at once.
    pub fn finish_with(&mut self, out: &mut Vec<Alert>, flush: &mut dyn FnMut(&mut Vec<Alert>)) {
        self.sweep(out, true);
        flush(out);
        self.summaries(out, true, flush);
    }

    /// Host summaries in address order (`Sources::due_summaries`), handed to `flush` in batches.
    fn summaries(
        &mut self,
        out: &mut Vec<Alert>,
        is_final: bool,
        flush: &mut dyn FnMut(&mut Vec<Alert>),
    ) {
        let now = self.now;
        for src in self.sources.due_summaries(is_final) {
            let Some(summary) = self.sources.summary(src, now, is_final) else {
                continue;
            };
            out.push(Alert::HostSummary(summary));
            if out.len() >= FINISH_BATCH {
                flush(out);
            }
        }
        flush(out);
    }
}
