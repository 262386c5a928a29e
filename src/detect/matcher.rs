//! The matcher: per (source, target) state and per-source state, driven by events in packet order.
//!
//! An attack instance opens at a remote service creation / reconfiguration or task registration
//! and gathers evidence from a sliding window around it: what the pair did in the `window` before
//! it (snapshotted when it opens) and what follows while it stays open. It closes, and its alert is
//! written, when packet time passes `last activity + window` (or at `finish`). Repeats from the same
//! source on the same target while it is open fold into it.

use super::calls::{
    call_status, changes_binary, clean_pipe, config_changes, iface_of, role, CallOutcome, CallRole,
    Iface,
};
pub use super::calls::{ATSVC_UUID, SVCCTL_UUID, TASKSCHED_UUID};
use super::handles::{ConvKey, HandleOf, Handles, Wants};
pub use super::instance::InferredCall;
use super::instance::{Auth, How, Instance, UploadRec};
use super::names::{is_admin_share, upload_relative};
use super::report::{service_control_signal, touch};
use super::retired::Retired;
use super::rules::Rules;
use crate::dcerpc::Transport;
use crate::event::alert::{
    Alert, Basis, Evidence, FoldedCall, Severity, SignalAlert, Technique, VisibilityAlert,
};
use crate::event::{ConnFields, DceArgs, DceRpc, Event, FileAction, SmbFiles, UserSource};
use crate::time::Ts;
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// (source, target) pairs tracked at once; beyond it idle pairs are swept and new pairs ignored.
pub const MAX_PAIRS: usize = 65_536;
/// Source hosts tracked (for sweeps and host summaries).
pub const MAX_SOURCES: usize = 65_536;
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
/// Targets listed in one source's host summary; further targets still count as attacks.
pub const MAX_SOURCE_TARGETS: usize = 1024;
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
pub(super) const FINISH_BATCH: usize = 64;

#[derive(Default)]
pub(super) struct PairState {
    pub(super) last_ts: Ts,
    pub(super) first_uid: Option<String>,
    pub(super) smb_seen: bool,
    pub(super) auth: Option<Auth>,
    pub(super) auth_ev: Option<Evidence>,
    pub(super) admin_connects: Vec<(Ts, String, Evidence)>,
    pub(super) uploads: Vec<UploadRec>,
    /// Uploads recorded so far (their ids).
    pub(super) upload_seq: u64,
    pub(super) pipes: Vec<(Ts, String, Evidence)>,
    pub(super) calls: Vec<(String, Ts)>,
    pub(super) max_bind_contexts: (u32, Ts),
    pub(super) machine_name: Option<String>,
    pub(super) handles: Handles,
    pub(super) open: Vec<Instance>,
    /// Services (lowercase names; "" when unknown) of this pair's closed attack instances: a later
    /// start/stop of one is the tail of an attack already reported, not an existing service.
    pub(super) reported_services: Vec<String>,
}

#[derive(Default)]
pub(super) struct SourceState {
    pub(super) first_ts: Ts,
    pub(super) last_ts: Ts,
    pub(super) attacks: u32,
    pub(super) suppressed: u32,
    pub(super) signals: u32,
    pub(super) unreadable_sessions: u32,
    pub(super) targets: BTreeSet<IpAddr>,
    pub(super) tools: BTreeSet<String>,
    pub(super) techniques: BTreeSet<Technique>,
    pub(super) users: BTreeSet<String>,
    pub(super) changed: bool,
    pub(super) admin_connects: Vec<(Ts, IpAddr)>,
    pub(super) last_sweep_alert: Option<Ts>,
    /// Packet time this source was last looked up: quiet sources are retired (`retired`).
    pub(super) seen: Ts,
}

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

/// See `super` (mod.rs) for the API contract.
pub struct Detector {
    pub(super) rules: Rules,
    pub(super) window_ns: u64,
    /// Keyed by addresses the wire chooses: a seeded hash (`wire::maps::KeyedMap`), not FxHash.
    pub(super) pairs: KeyedMap<(IpAddr, IpAddr), PairState>,
    pub(super) sources: KeyedMap<IpAddr, SourceState>,
    /// Sources quiet for longer than the windows, packed until the end-of-run host summaries.
    pub(super) retired: Retired,
    /// SMB3-encrypted sessions reported, with the last time each was seen.
    pub(super) visibility_seen: KeyedMap<(IpAddr, IpAddr, u64), Ts>,
    /// Connections whose SMB3 sessions we decrypt with supplied keys (alerts say so), with the
    /// last time each was seen.
    pub(super) decrypted_conns: KeyedMap<crate::flow::Uid, Ts>,
    pub(super) now: Ts,
    pub(super) next_sweep: Ts,
    pub(super) next_summary: Option<Ts>,
    pub(super) last_evict: Option<Ts>,
    pub(super) stats: DetectStats,
    pub(super) cap_last_ts: BTreeMap<&'static str, Ts>,
    pub(super) caps_reported: BTreeMap<&'static str, u64>,
    /// Live mode: an open attack instance is written once quiet this long (shorter than the
    /// window); `None` (offline) waits for the whole window. See [`Detector::close_when_quiet`].
    pub(super) quiet_close_ns: Option<u64>,
    /// Ids of attack instances opened so far (upload ownership).
    pub(super) next_instance_id: u64,
}

pub(super) fn ev(c: &ConnFields, ts: Ts, log: &'static str, summary: String) -> Evidence {
    Evidence::new(c, ts, log, summary)
}

impl Detector {
    pub fn new(rules: Rules) -> Detector {
        let window_ns = rules.settings.window_secs.saturating_mul(1_000_000_000);
        Detector {
            rules,
            window_ns,
            pairs: KeyedMap::default(),
            sources: KeyedMap::default(),
            retired: Retired::default(),
            visibility_seen: KeyedMap::default(),
            decrypted_conns: KeyedMap::default(),
            now: Ts(0),
            next_sweep: Ts(0),
            next_summary: None,
            last_evict: None,
            stats: DetectStats::default(),
            cap_last_ts: BTreeMap::new(),
            caps_reported: BTreeMap::new(),
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
        &self.stats
    }

    pub fn tables(&self) -> DetectTables {
        DetectTables {
            pairs: self.pairs.len(),
            sources: self.sources.len(),
            retired_sources: self.retired.len(),
            visibility_keys: self.visibility_seen.len(),
            decrypted_conns: self.decrypted_conns.len(),
        }
    }

    /// Count a cap reached (reported through the sink by `report_caps`).
    pub(super) fn cap(&mut self, name: &'static str) {
        *self.stats.caps.entry(name).or_insert(0) += 1;
        self.cap_last_ts.insert(name, self.now);
    }

    /// Report caps reached since the last call through the sink: one `cap_reached` anomaly per cap
    /// (layer "detect") and the rest as counts, so `cap.<NAME>` counters stay exact.
    pub fn report_caps(&mut self, sink: &mut crate::sink::Sink) {
        for (&name, &total) in &self.stats.caps {
            let done = self.caps_reported.get(name).copied().unwrap_or(0);
            let delta = total.saturating_sub(done);
            if delta == 0 {
                continue;
            }
            let ts = self.cap_last_ts.get(name).copied().unwrap_or(self.now);
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
            self.caps_reported.insert(name, total);
        }
    }

    /// Feed one event (packet-time order). Alerts whose instances closed are appended to `out`.
    pub fn on_event(&mut self, event: &Event, out: &mut Vec<Alert>) {
        self.stats.events += 1;
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
                    p.smb_seen = true;
                    learn_kerberos_unseen(p, a.user_source);
                    if a.user.as_deref().is_some_and(|u| !u.is_empty()) {
                        p.auth = Some(Auth {
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
                        p.auth_ev = Some(ev(conn, ts, "smb_auth", summary));
                    }
                }
            }
            Event::SmbMapping(m) => self.on_mapping(conn, &m.share, &m.path, &m.status, out),
            Event::SmbFiles(f) => self.on_files(conn, f),
            Event::SmbVisibility(v) => self.on_visibility(conn, v, out),
            Event::SmbOpaque(_) => {
                // Size-based inference of the technique inside SMB3-encrypted sessions plugs in here
                // (issue 7): it would open an instance with `Basis::Inferred` through `open_instance`.
                if let Some(p) = self.pair(conn) {
                    p.smb_seen = true;
                }
            }
            Event::DceRpc(d) => {
                let who = &d.principal;
                if who.user_source.is_some() {
                    if let Some(p) = self.pair(conn) {
                        learn_kerberos_unseen(p, who.user_source);
                        if who.user.as_deref().is_some_and(|u| !u.is_empty()) {
                            p.auth = Some(Auth {
                                user: who.user.clone(),
                                domain: who.domain.clone(),
                                workstation: None,
                                kerberos: who.user_source,
                            });
                        }
                    }
                }
                self.on_dce(conn, d, out)
            }
            // KDC exchanges reach detection through the sessions they name (kerberos::join).
            Event::Kerberos(_) | Event::Anomaly(_) => {}
        }
    }

    fn pair(&mut self, c: &ConnFields) -> Option<&mut PairState> {
        let key = (c.orig_h, c.resp_h);
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_PAIRS {
            // Evict pairs idle beyond the window (kept only for their user), at most once per sweep period.
            if self
                .last_evict
                .is_none_or(|t| self.now.0 >= t.0.saturating_add(SWEEP_EVERY_NS))
            {
                self.last_evict = Some(self.now);
                let (now, window) = (self.now, self.window_ns);
                self.pairs.retain(|_, p| {
                    !p.open.is_empty() || now.0 <= p.last_ts.0.saturating_add(window)
                });
            }
            if self.pairs.len() >= MAX_PAIRS {
                self.cap("MAX_PAIRS");
                return None;
            }
        }
        let p = self.pairs.entry(key).or_default();
        p.last_ts = p.last_ts.max(c.ts);
        if p.first_uid.is_none() {
            p.first_uid = Some(c.uid.to_string());
        }
        Some(p)
    }

    fn on_mapping(
        &mut self,
        c: &ConnFields,
        share: &str,
        path: &str,
        status: &str,
        out: &mut Vec<Alert>,
    ) {
        let window = self.window_ns;
        let Some(p) = self.pair(c) else { return };
        p.smb_seen = true;
        if !is_admin_share(share) {
            return;
        }
        let e = ev(
            c,
            c.ts,
            "smb_mapping",
            format!("tree connect {path} ({status})"),
        );
        for inst in p.open.iter_mut() {
            inst.shares.insert(share.to_ascii_uppercase());
            inst.push_evidence(e.clone());
        }
        prune(&mut p.admin_connects, c.ts, window, |x| x.0);
        if p.admin_connects.len() < MAX_PAIR_ITEMS {
            p.admin_connects.push((c.ts, share.to_ascii_uppercase(), e));
        }
        self.on_admin_connect(c, out);
    }

    fn on_admin_connect(&mut self, c: &ConnFields, out: &mut Vec<Alert>) {
        let sweep_ns = self
            .rules
            .settings
            .sweep_window_secs
            .saturating_mul(1_000_000_000);
        let min = self.rules.settings.sweep_min_targets as usize;
        let sweep_secs = self.rules.settings.sweep_window_secs;
        let Some(s) = self.source(c.orig_h) else {
            return;
        };
        prune(&mut s.admin_connects, c.ts, sweep_ns, |x| x.0);
        if s.admin_connects.len() < MAX_PAIR_ITEMS {
            s.admin_connects.push((c.ts, c.resp_h));
        }
        let targets: BTreeSet<IpAddr> = s.admin_connects.iter().map(|x| x.1).collect();
        let recent = s
            .last_sweep_alert
            .is_some_and(|t| c.ts.0 < t.0.saturating_add(sweep_ns));
        if targets.len() >= min && !recent {
            s.last_sweep_alert = Some(c.ts);
            let first = s.admin_connects.first().map_or(c.ts, |x| x.0);
            let targets: Vec<IpAddr> = targets.into_iter().collect();
            let reason = format!(
                "{} connected to admin shares on {} hosts within {} s.",
                c.orig_h,
                targets.len(),
                sweep_secs
            );
            let sig = SignalAlert {
                ts: first,
                id: String::new(),
                signal: "admin-share-sweep",
                attack: vec!["T1021.002"],
                severity: Severity::Medium,
                src_ip: c.orig_h,
                dst_ip: None,
                user: None,
                share: None,
                upload: None,
                service_name: None,
                changes: vec![],
                targets,
                reason,
                evidence: vec![ev(c, c.ts, "smb_mapping", "admin-share connect".into())],
                suppressed_by: None,
            };
            self.emit_signal(sig, out);
        }
    }

    fn on_files(&mut self, c: &ConnFields, f: &SmbFiles) {
        let window = self.window_ns;
        let Some(p) = self.pair(c) else { return };
        p.smb_seen = true;
        let is_pipe = f.action == Some(FileAction::PipeOpen)
            || (f.action == Some(FileAction::FileOpen) && f.share.eq_ignore_ascii_case("IPC$"));
        if is_pipe {
            let name = clean_pipe(&f.name);
            // `<unknown>`: opened in a server→client-only capture; the bind_ack names it later.
            if name.is_empty() || name == crate::smb::tables::UNKNOWN {
                return;
            }
            let e = ev(
                c,
                c.ts,
                "smb_files",
                format!("pipe open \\{} ({})", name, f.status),
            );
            for inst in p.open.iter_mut() {
                inst.add_pipe(&name);
                inst.push_evidence(e.clone());
            }
            prune(&mut p.pipes, c.ts, window, |x| x.0);
            if p.pipes.len() < MAX_PAIR_ITEMS
                && !p.pipes.iter().any(|x| x.1.eq_ignore_ascii_case(&name))
            {
                p.pipes.push((c.ts, name, e));
            }
            return;
        }
        if f.action != Some(FileAction::FileWrite) {
            return;
        }
        // What the handle left on disk: bytes written over the same offsets again (a decoy, then
        // the real content) count once, so never more than the file's size.
        let bytes = match (f.bytes_written, f.size) {
            (Some(w), Some(size)) => w.min(size),
            (w, _) => w.unwrap_or(0),
        };
        let unknown_share = f.share == "<unknown>" || f.share.is_empty();
        if bytes == 0 || !(is_admin_share(&f.share) || (unknown_share && f.pe == Some(true))) {
            return;
        }
        let share = if unknown_share {
            "<unknown>".to_string()
        } else {
            f.share.to_ascii_uppercase()
        };
        let name = f.name.trim_start_matches('\\').to_string();
        let rel = upload_relative(&share, &name);
        let pe = f.pe == Some(true);
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
        let e = ev(c, f.first_write_ts.unwrap_or(c.ts), "smb_files", summary);
        let ts = f.first_write_ts.unwrap_or(c.ts);
        let mut uploads_full = false;
        // Aggregate by name over handles (the truth sums bytes over every handle).
        // ... until a create came after the writes began: the name written again is a new
        // upload then (PsExec run twice).
        let creates: Vec<Ts> = p.open.iter().map(|i| i.create_ts).collect();
        let same = |u: &UploadRec| {
            u.rel == rel && (u.owner.is_none() || !creates.iter().any(|&c| c >= u.ts))
        };
        let k = if let Some(k) = p.uploads.iter().position(same) {
            let u = &mut p.uploads[k];
            u.size = u.size.saturating_add(bytes);
            u.pe |= pe;
            if f.sha256.is_some() {
                u.sha256 = f.sha256.clone();
            }
            Some(k)
        } else if p.uploads.len() < MAX_UPLOADS {
            p.upload_seq += 1;
            p.uploads.push(UploadRec {
                id: p.upload_seq,
                ts,
                share,
                name,
                rel: rel.clone(),
                size: bytes,
                sha256: f.sha256.clone(),
                pe,
                owner: None,
                ev: e.clone(),
            });
            Some(p.uploads.len() - 1)
        } else {
            uploads_full = true;
            None
        };
        if let Some(k) = k {
            p.upload_changed(k, Ts(c.ts.0.saturating_sub(window)));
        }
        if uploads_full {
            self.cap("MAX_UPLOADS");
        }
    }

    fn on_visibility(
        &mut self,
        c: &ConnFields,
        v: &crate::event::SmbVisibility,
        out: &mut Vec<Alert>,
    ) {
        let auth = self.pair(c).and_then(|p| {
            p.smb_seen = true;
            p.auth.clone()
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
            touch(s, c.ts, c.ts);
            s.unreadable_sessions += 1;
            if let Some(u) = &user {
                if s.users.len() < MAX_PAIR_ITEMS {
                    s.users.insert(u.clone());
                }
            }
            s.changed = true;
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
            p.smb_seen = true;
        }
        if d.operation == "bind" || d.operation == "alter_context" {
            if let Some(ctxs) = &d.interfaces {
                let relevant = ctxs
                    .iter()
                    .any(|x| iface_of(&x.endpoint, Some(&x.uuid)) != Iface::Other);
                let n = u32::try_from(ctxs.len()).unwrap_or(u32::MAX);
                if relevant && n >= p.max_bind_contexts.0 {
                    p.max_bind_contexts = (n, c.ts);
                }
            }
            return;
        }
        let op_key = format!("{}::{}", d.endpoint, d.operation);
        if let Some(x) = p.calls.iter_mut().find(|x| x.0 == op_key) {
            x.1 = c.ts;
        } else if p.calls.len() < MAX_PAIR_ITEMS {
            p.calls.push((op_key, c.ts));
        }
        let iface = iface_of(&d.endpoint, d.uuid.as_deref());
        let Some(opnum) = d.opnum else { return };
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
            (Some(h), Some(w)) if iface == Iface::Svcctl => match p.handles.resolve(&conv, h, w) {
                Some(HandleOf::Service(n)) => Some(n),
                _ => None,
            },
            (Some(h), _) => p.handles.service(h).map(str::to_string),
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
                    p.machine_name = Some(m.clone());
                }
                opened(p, Some(HandleOf::Scm));
            }
            CallRole::OpenService => {
                opened(p, d.args.service_name.clone().map(HandleOf::Service));
            }
            CallRole::Create(Technique::ServiceModify) if !changes_binary(d) => {
                // A change that points the service at nothing new (`sc config X start= disabled`)
                // is administration, not the technique: a signal naming what changed.
                let name = handle_service.or_else(|| d.args.service_name.clone());
                let user = p.auth.as_ref().and_then(|a| a.user.clone());
                let changes = config_changes(&d.args);
                let reason = format!(
                    "{} changed the configuration of existing service {} on {} ({}) without a new binary path.",
                    c.orig_h,
                    name.as_deref().unwrap_or("<unknown>"),
                    c.resp_h,
                    if changes.is_empty() { "nothing".to_string() } else { changes.join(", ") }
                );
                let e = ev(
                    c,
                    c.ts,
                    "dce_rpc",
                    format!("{} {} -> {status}", d.endpoint, d.operation),
                );
                let sig = service_control_signal(c, user, name, reason, e, changes);
                self.emit_signal(sig, out);
            }
            CallRole::Create(tech) => {
                let service_name = d.args.service_name.clone().or(handle_service.clone());
                if tech == Technique::ServiceCreate {
                    opened(p, service_name.clone().map(HandleOf::Service));
                }
                let summary = format!(
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
                );
                let e = ev(c, c.ts, "dce_rpc", summary);
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
                self.open_instance(c, how, iface, tech, service_name, call, outcome, e);
            }
            CallRole::Start
            | CallRole::Delete
            | CallRole::Control
            | CallRole::TaskRun
            | CallRole::TaskDelete => {
                let name = handle_service.or_else(|| d.args.service_name.clone());
                // No name through the handle chain (stub encrypted, or the handle's origin was
                // missed): the call most likely concerns the instance this pair has open.
                let unknown = name.is_none();
                let e = ev(
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
                let handle = d.args.handle.clone();
                let hit = p.open.iter_mut().rev().find(|i| {
                    let same_family = match r {
                        CallRole::TaskRun | CallRole::TaskDelete => {
                            i.technique == Technique::TaskCreate
                        }
                        _ => i.technique != Technique::TaskCreate,
                    };
                    same_family
                        && (name.as_deref().is_some_and(|n| i.names_service(n))
                            || handle
                                .as_deref()
                                .is_some_and(|h| i.handles.iter().any(|x| x == h))
                            || unknown)
                });
                if let Some(i) = hit {
                    match r {
                        CallRole::Start | CallRole::TaskRun => i.started = true,
                        CallRole::Delete | CallRole::TaskDelete => i.deleted = true,
                        _ => {}
                    }
                    i.last_ts = i.last_ts.max(c.ts);
                    i.push_evidence(e);
                } else if matches!(r, CallRole::Start | CallRole::Control)
                    && !match name.as_deref() {
                        Some(n) => p
                            .reported_services
                            .iter()
                            .any(|x| x.eq_ignore_ascii_case(n)),
                        None => !p.reported_services.is_empty(),
                    }
                {
                    let user = p.auth.as_ref().and_then(|a| a.user.clone());
                    let what = if r == CallRole::Start {
                        "started"
                    } else {
                        "sent a control to"
                    };
                    let reason = format!(
                        "{} {} existing service {} on {} (no service was created).",
                        c.orig_h,
                        what,
                        name.as_deref().unwrap_or("<unknown>"),
                        c.resp_h
                    );
                    let sig = service_control_signal(c, user, name, reason, e, vec![]);
                    self.emit_signal(sig, out);
                }
            }
            CallRole::Other => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open_instance(
        &mut self,
        c: &ConnFields,
        how: How<'_>,
        iface: Iface,
        tech: Technique,
        service_name: Option<String>,
        call: FoldedCall,
        outcome: CallOutcome,
        e: Evidence,
    ) {
        let window = self.window_ns;
        let key = (c.orig_h, c.resp_h);
        let decrypted = match self.decrypted_conns.get_mut(&c.uid) {
            Some(t) => {
                *t = (*t).max(c.ts);
                true
            }
            None => false,
        };
        let Some(p) = self.pairs.get_mut(&key) else {
            return;
        };
        let from = Ts(c.ts.0.saturating_sub(window));
        let same = |i: &Instance| i.technique == tech;
        let path = how.args.binary_path.as_deref();
        // Another tool's service (name and binary both differ) is its own instance, unless the
        // pair has no room for one more.
        let fold = p
            .open
            .iter()
            .position(|i| same(i) && !i.is_other_service(service_name.as_deref(), path))
            .or_else(|| {
                (p.open.len() >= MAX_OPEN_INSTANCES)
                    .then(|| p.open.iter().position(same))
                    .flatten()
            });
        if let Some(idx) = fold {
            let i = &mut p.open[idx];
            i.count = i.count.saturating_add(1);
            i.decrypted |= decrypted;
            i.rpc_decrypted |= how.rpc_decrypted;
            if let Some(op) = how.opnum {
                if !i.opnums.contains(&op) {
                    i.opnums.push(op);
                }
            }
            i.last_ts = i.last_ts.max(c.ts);
            i.failed &= outcome == CallOutcome::Failed;
            i.no_response &= outcome == CallOutcome::NoResponse;
            // A readable call outranks encrypted or inferred ones folded with it.
            if how.basis < i.basis {
                i.basis = how.basis;
            }
            let folded_full = i.calls.len() >= MAX_FOLDED_CALLS;
            if !folded_full {
                i.calls.push(call);
            }
            if i.service_name.is_none() {
                i.service_name = service_name;
            }
            if i.binary_path.is_none() {
                i.binary_path = how.args.binary_path.clone();
            }
            if let Some(h) = &how.args.response_handle {
                if i.handles.len() < MAX_HANDLES {
                    i.handles.push(h.clone());
                }
            }
            i.push_evidence(e);
            // A new binary path may name an upload another instance took by time.
            p.claim_uploads(idx, from);
            if folded_full {
                self.cap("MAX_FOLDED_CALLS");
            }
            return;
        }
        if p.open.len() >= MAX_OPEN_INSTANCES {
            self.cap("MAX_OPEN_INSTANCES");
            return;
        }
        self.next_instance_id += 1;
        let id = self.next_instance_id;
        let Some(p) = self.pairs.get_mut(&key) else {
            return;
        };
        let mut inst = Instance {
            id,
            technique: tech,
            basis: how.basis,
            decrypted,
            rpc_decrypted: how.rpc_decrypted,
            transport: how.transport,
            iface,
            create_ts: c.ts,
            first_ts: c.ts,
            last_ts: c.ts,
            service_name,
            display_name: how.args.display_name.clone(),
            binary_path: how.args.binary_path.clone(),
            start_type: how.args.start_type,
            task_path: how.args.task_path.clone(),
            command: match (&how.args.command, &how.args.command_arguments) {
                (Some(a), Some(b)) if !b.is_empty() => Some(format!("{a} {b}")),
                (a, _) => a.clone(),
            },
            calls: vec![call],
            opnums: how.opnum.into_iter().collect(),
            count: 1,
            started: false,
            deleted: false,
            failed: outcome == CallOutcome::Failed,
            no_response: outcome == CallOutcome::NoResponse,
            handles: how.args.response_handle.iter().cloned().collect(),
            uploads: vec![],
            shares: BTreeSet::new(),
            pipes: vec![],
            evidence: vec![],
            evidence_dropped: false,
            inferred_upload: None,
            tool_hint: None,
            inferred_medium: false,
        };
        // Snapshot the window before the call.
        let mut before: Vec<Evidence> = vec![];
        if let Some(a) = &p.auth_ev {
            if a.ts >= from {
                before.push(a.clone());
            }
        }
        for (ts, share, ev) in &p.admin_connects {
            if *ts >= from {
                inst.shares.insert(share.clone());
                before.push(ev.clone());
            }
        }
        for (ts, name, ev) in &p.pipes {
            if *ts >= from {
                inst.add_pipe(name);
                before.push(ev.clone());
            }
        }
        before.sort_by_key(|e| e.ts);
        if let Some(first) = before.first() {
            inst.first_ts = inst.first_ts.min(first.ts);
        }
        for b in before {
            inst.push_evidence(b);
        }
        inst.push_evidence(e);
        p.open.push(inst);
        p.claim_uploads(p.open.len() - 1, from);
    }

    /// Entry point for detectors that infer the technique without a readable call (issue 7: SMB3
    /// message sizes, `detect::inferred`). Opens or folds into an instance with `basis: inferred`
    /// (lowest confidence); window, folding, attribution, exceptions and host summaries are shared
    /// with readable calls. The pipeline converts its `InferredTechnique` into an `InferredCall`.
    pub fn on_inferred(&mut self, x: InferredCall) {
        let c = &x.conn;
        if c.ts > self.now {
            self.now = c.ts;
        }
        let Some(p) = self.pair(c) else { return };
        p.smb_seen = true;
        if p.auth.is_none() && x.user.is_some() {
            p.auth = Some(Auth {
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
        let e = ev(c, c.ts, source, x.reason.clone());
        let call = FoldedCall {
            ts: c.ts,
            service_name: None,
            binary_path: None,
            task_path: x.task_path.clone(),
            status: "<inferred>".into(),
        };
        let args = DceArgs {
            task_path: x.task_path.clone(),
            ..DceArgs::default()
        };
        let how = How {
            basis: x.basis,
            transport: Transport::SmbPipe,
            opnum: None,
            args: &args,
            rpc_decrypted: false,
        };
        let outcome = if x.failed {
            CallOutcome::Failed
        } else {
            CallOutcome::Ok
        };
        self.open_instance(c, how, iface, x.technique, None, call, outcome, e);
        let key = (c.orig_h, c.resp_h);
        if let Some(i) = self
            .pairs
            .get_mut(&key)
            .and_then(|p| p.open.iter_mut().find(|i| i.technique == x.technique))
        {
            i.first_ts = i.first_ts.min(x.first_ts);
            for (ts, summary) in x.evidence {
                i.push_evidence(Evidence::new(c, ts, source, summary));
            }
            for p in &x.pipes {
                i.add_pipe(p);
            }
            i.inferred_upload = i.inferred_upload.max(x.upload_size);
            if i.tool_hint.is_none() {
                i.tool_hint = x.tool_hint;
            }
            i.inferred_medium |= x.medium;
        }
    }

    /// Close instances whose window has passed, expire uploads, drop idle pairs.
    pub(super) fn sweep(&mut self, out: &mut Vec<Alert>, all: bool) {
        let now = self.now;
        let window = self.window_ns;
        let close_after = self.quiet_close_ns.map_or(window, |q| q.min(window));
        let mut closed: Vec<((IpAddr, IpAddr), Instance)> = vec![];
        let mut expired: Vec<((IpAddr, IpAddr), UploadRec, Option<String>)> = vec![];
        for (key, p) in self.pairs.iter_mut() {
            let mut i = 0;
            while i < p.open.len() {
                if all || now.0 > p.open[i].last_ts.0.saturating_add(close_after) {
                    let inst = p.open.remove(i);
                    let names = inst
                        .calls
                        .iter()
                        .map(|c| c.service_name.as_deref().unwrap_or("").to_ascii_lowercase());
                    for n in names {
                        if !p.reported_services.contains(&n) {
                            if p.reported_services.len() >= MAX_PAIR_ITEMS {
                                p.reported_services.remove(0);
                            }
                            p.reported_services.push(n);
                        }
                    }
                    closed.push((*key, inst));
                } else {
                    i += 1;
                }
            }
            let user = p.auth.as_ref().and_then(|a| a.user.clone());
            let evidence_ns = window.saturating_add(LATE_EVENT_NS);
            p.uploads.retain(|u| {
                let keep = !all && now.0 <= u.ts.0.saturating_add(evidence_ns);
                if !keep && u.owner.is_none() {
                    expired.push((*key, u.clone(), user.clone()));
                }
                keep
            });
            if !all {
                prune(&mut p.admin_connects, now, evidence_ns, |x| x.0);
                prune(&mut p.pipes, now, evidence_ns, |x| x.0);
                p.handles.expire(Ts(now.0.saturating_sub(evidence_ns)));
                p.calls
                    .retain(|x| now.0 <= x.1 .0.saturating_add(evidence_ns));
            }
        }
        // Before idle pairs are dropped below: an alert reads its pair (who authenticated).
        // Map order is per-process random (keyed): sort fully so output order is stable.
        closed.sort_by_key(|(k, i)| (i.first_ts, *k));
        for (key, inst) in closed {
            let a = self.build_alert(key, inst);
            self.emit_technique(a, out);
        }
        expired.sort_by_key(|(k, u, _)| (u.ts, *k, u.id));
        for (key, u, user) in expired {
            self.upload_signal(key, u, user, out);
        }
        if !all {
            // A pair lives as long as its evidence (else its uploads would go without a signal).
            let evidence_ns = window.saturating_add(LATE_EVENT_NS);
            self.pairs.retain(|_, p| {
                let keep = if p.auth.is_some() || !p.reported_services.is_empty() {
                    AUTH_KEEP_NS.max(evidence_ns)
                } else {
                    evidence_ns
                };
                !p.open.is_empty() || now.0 <= p.last_ts.0.saturating_add(keep)
            });
            let keep = AUTH_KEEP_NS.max(window);
            self.visibility_seen
                .retain(|_, t| now.0 <= t.0.saturating_add(keep));
            self.decrypted_conns
                .retain(|_, t| now.0 <= t.0.saturating_add(keep));
            shrink_if_sparse(&mut self.pairs);
            shrink_if_sparse(&mut self.sources);
            shrink_if_sparse(&mut self.visibility_seen);
            shrink_if_sparse(&mut self.decrypted_conns);
        }
        if !all {
            self.retire_sources(out);
        }
    }
}

/// Drop entries older than `window` before `now` (items are appended in time order).
fn prune<T>(v: &mut Vec<T>, now: Ts, window: u64, ts: impl Fn(&T) -> Ts) {
    let cut = now.0.saturating_sub(window);
    v.retain(|x| ts(x).0 >= cut);
}

/// A Kerberos session whose ticket's issue was not seen: the pair's user is unknown, and the alert
/// says so (`user_source: unseen`) unless another session named the user.
fn learn_kerberos_unseen(p: &mut PairState, source: Option<UserSource>) {
    if source == Some(UserSource::Unseen) && p.auth.is_none() {
        p.auth = Some(Auth {
            kerberos: source,
            ..Auth::default()
        });
    }
}
