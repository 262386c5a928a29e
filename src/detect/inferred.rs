//! PsExec-style service creation inferred from the sizes and order of SMB3 messages we cannot read.
//!
//! # What is inferred
//! From `smb_opaque` events alone (one per encrypted or compressed SMB message: direction, packet
//! time and the transform header's OriginalMessageSize, which is the exact plaintext size of the
//! SMB2 message or compound chain), per SMB session (client, server, SessionId):
//!
//! 1. **Pairs.** Client messages are paired first-in first-out with server messages
//!    ([`pairing`]); an error-sized (73-byte) answer may be a STATUS_PENDING interim, replaced by the
//!    final response if one follows before the next request.
//! 2. **Upload.** A client message of at least 112 + [`shapes::UPLOAD_CHUNK_MIN`] bytes answered by
//!    a small reply (an 80-byte WRITE response, or a compound answer of at most
//!    [`shapes::MAX_UPLOAD_REPLY`]) is a chunk of a file upload; consecutive chunks add up until a
//!    CLOSE-shaped pair (88 → 124), a compound chunk, or [`InferenceConfig::upload_run_gap_secs`] of
//!    quiet. A smaller WRITE right after a chunk is the file's tail and counts too (unless it is
//!    no larger than a bind, 512 bytes, so that a pipe write is never taken for it). The upload
//!    size is request − 112 summed over chunks: exact for plain WRITEs (short by a tail of at most
//!    512 bytes), an upper bound (by the other commands' few hundred bytes) for compounds.
//! 3. **Pipe exchanges.** A DCE-RPC request/response on a named pipe, in either carrier:
//!    WRITE (112 + q) → 80 then READ (113) → 80 + r, as impacket does; or IOCTL
//!    FSCTL_PIPE_TRANSCEIVE (120 + q) → 112 + r, as Windows does. q and r are the PDU lengths.
//! 4. **Service creation sequence**, all within [`InferenceConfig::sequence_window_secs`]:
//!    a *bind-sized* exchange (q 72–512, r 56–512: a bind with one or more contexts and its
//!    bind_ack); immediately after it a *handle call* (q ≥ 36, r exactly 48 = 24 + 20-byte context
//!    handle + status, or 72–88 with a DCE-RPC auth verifier: OpenSCManagerW, which every
//!    service-control session starts with), possibly more handle calls (OpenServiceW), then a
//!    *create call*: q ≥ 140 and larger than every handle call since the bind, answered by exactly
//!    32 (a fault) or 52 (CreateServiceW's tag + handle + status; 76–92 with a verifier).
//!    See [`shapes`] for the arithmetic.
//!
//! With an upload by the same client to the same server (any of its sessions) that ended at most
//! [`InferenceConfig::upload_window_secs`] before the create call, the result is
//! `variant = "upload-then-service"` at medium confidence (PsExec, impacket psexec, RemCom…).
//! Without one, `variant = "service-only"` at low confidence (smbexec, services.py create, sc.exe
//! create). `tool_hint = "impacket"` when at least 90% of the session's client nonces are 11 ASCII
//! letters (impacket's nonce generator); that names the tool, never the technique.
//!
//! # How it can be wrong
//! - **It is the technique, not intent.** An administrator who copies an executable to ADMIN$ and
//!   creates a service for it within two minutes (software deployment, SCCM-like tools, PsExec used
//!   legitimately) looks exactly the same: that *is* the technique. Exceptions belong in the
//!   detection rules (by source host or user), not here.
//! - **Other handle-based interfaces.** The sizes say "a call returning a handle, then a larger call
//!   with a small answer", not "svcctl". SAMR or LSA administration (e.g. opening a domain and
//!   setting a user's information) can take that shape; without an upload it is a low-confidence
//!   alert, with an upload in the previous two minutes a medium one.
//! - **Other tools, other sizes.** A tool that writes its executable in chunks smaller than 6 KiB,
//!   uploads over another protocol, binds with very large auth tokens (> 512 bytes), returns more
//!   than 40 bytes of verifier, or uses a create request no larger than its open calls is missed.
//!   ChangeServiceConfigW on an existing service (large request, small reply) is reported like a
//!   creation (it is the same technique). Scheduled tasks (atsvc/ITaskSchedulerService) are not
//!   covered: their reply shapes differ.
//! - **Reshaped traffic.** Compounds merge messages (OriginalMessageSize covers the chain): a
//!   compounded upload is still seen (size as an upper bound), a compounded WRITE+READ pipe call is
//!   not. SMB 3.1.1 compression makes sizes those of compressed data only when the transform is
//!   compression without encryption (then `original_size` is the uncompressed size and still
//!   right). Padding added by a client between compound members changes sizes by up to 7 bytes per
//!   member. Many requests in flight answered out of order, unsolicited oplock/lease breaks, and
//!   multichannel sessions (one SessionId over several connections, paired here as one stream)
//!   can mis-pair messages and hide the sequence.
//! - **Coincidences.** A TREE_CONNECT response is also 80 bytes (so a tree connect to a
//!   56-character path reads as a 72-byte pipe write); a CREATE with long names and small contexts
//!   can read as an IOCTL exchange. The sequence (bind, handle call, larger create call, in order,
//!   in a window) is what keeps these from alerting on their own.

pub mod pairing;
pub mod shapes;

use crate::event::{ConnFields, Event, SmbOpaque};
use crate::flow::Uid;
use crate::sink::Sink;
use crate::time::Ts;
use pairing::{Msg, Pair, Pairer};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

/// Sessions tracked at once; at the cap the least recently active one is finished and dropped.
pub const MAX_INFERENCE_SESSIONS: usize = 4096;
/// Evidence items in one inferred technique: upload chunks (request and reply), the bind, the
/// handle calls and the create call (up to four messages each).
pub const MAX_EVIDENCE: usize = 2 * MAX_UPLOAD_EVIDENCE + 4 + 4 * MAX_HANDLE_CALLS_KEPT + 4;
/// Upload chunks kept as evidence (the rest are only summed).
pub const MAX_UPLOAD_EVIDENCE: usize = 4;
/// Handle calls reported as evidence between a bind and a create call.
pub const MAX_HANDLE_CALLS_KEPT: usize = 4;
/// Pipe exchanges kept per session inside the sequence window; beyond it the oldest is dropped.
pub const MAX_EXCHANGES_KEPT: usize = 32;
/// Inferred techniques per session; more means a loop, not more information.
pub const MAX_INFERENCES_PER_SESSION: u32 = 8;
/// Cap notes waiting for [`Inference::report_caps`].
pub const MAX_PENDING_CAP_NOTES: usize = 32;

/// Seconds a pipe write waits for the read that completes its call.
const PIPE_WRITE_MAX_AGE_SECS: u64 = 30;
/// How often idle sessions are swept (packet time).
const SWEEP_EVERY_SECS: u64 = 60;

/// Windows of the signature, in packet time.
#[derive(Clone, Copy, Debug)]
pub struct InferenceConfig {
    /// The create call must come at most this long after the upload ended.
    pub upload_window_secs: u64,
    /// Bind, handle calls and create call must fit in this window.
    pub sequence_window_secs: u64,
    /// Upload chunks further apart than this belong to different uploads.
    pub upload_run_gap_secs: u64,
    /// Sessions without messages for this long are dropped.
    pub session_idle_secs: u64,
    /// Report the sequence without an upload (low confidence).
    pub report_service_only: bool,
}

impl Default for InferenceConfig {
    fn default() -> InferenceConfig {
        InferenceConfig {
            upload_window_secs: 120,
            sequence_window_secs: 120,
            upload_run_gap_secs: 30,
            session_idle_secs: 600,
            report_service_only: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum InferredConfidence {
    Low,
    Medium,
}

impl InferredConfidence {
    pub fn as_str(self) -> &'static str {
        match self {
            InferredConfidence::Low => "low",
            InferredConfidence::Medium => "medium",
        }
    }
}

/// One message behind an inference: when, which way, its plaintext SMB size, the DCE-RPC PDU or
/// upload length read from it, and what it was taken for.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SizeEvidence {
    pub ts: Ts,
    pub to_server: bool,
    /// Plaintext SMB2 message size (OriginalMessageSize).
    pub size: u32,
    /// DCE-RPC PDU length (pipe calls) or data length (upload chunks) inferred from `size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner: Option<u32>,
    /// "upload" | "bind" | "handle-call" | "create-call"
    pub role: &'static str,
    /// "write request" | "write response" | "read request" | "read response" | "ioctl request" |
    /// "ioctl response" | "compound request" | "compound response"
    pub what: &'static str,
}

/// A technique inferred from sizes. The detection layer turns it into a `technique` alert.
#[derive(Clone, Debug, Serialize)]
pub struct InferredTechnique {
    #[serde(serialize_with = "crate::event::ser_ip")]
    pub src: IpAddr,
    #[serde(serialize_with = "crate::event::ser_ip")]
    pub dst: IpAddr,
    /// Connection of the create call.
    pub uid: Uid,
    /// Its ports, when it is the session's connection (the one whose ports are known here).
    #[serde(skip)]
    pub ports: Option<(u16, u16)>,
    pub session_id: u64,
    /// First evidence (upload start, or the bind).
    pub ts: Ts,
    /// The create call's reply.
    pub ts_end: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    /// "upload-then-service" | "service-only"
    pub variant: &'static str,
    pub with_upload: bool,
    /// Bytes uploaded as far as the sizes tell (see `upload_size_exact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_size: Option<u64>,
    /// False when a chunk came in a compound, so the size includes other commands' bytes.
    pub upload_size_exact: bool,
    pub confidence: InferredConfidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_hint: Option<&'static str>,
    pub evidence: Vec<SizeEvidence>,
    pub reason: String,
}

/// A cap reached, waiting to be reported through a [`Sink`].
#[derive(Clone, Debug)]
struct CapNote {
    cap: &'static str,
    ts: Ts,
    conn: ConnFields,
    detail: String,
}

type SessionKey = (IpAddr, IpAddr, u64);

#[derive(Clone, Debug)]
struct Upload {
    start: Ts,
    end: Ts,
    size: u64,
    exact: bool,
    chunks: u64,
    evidence: Vec<SizeEvidence>,
}

#[derive(Clone, Debug)]
struct Exchange {
    ts: Ts,
    ts_end: Ts,
    q: u32,
    r: u32,
    uid: Uid,
    evidence: Vec<SizeEvidence>,
}

impl Exchange {
    fn with_role(mut self, role: &'static str) -> Exchange {
        for e in &mut self.evidence {
            e.role = role;
        }
        self
    }
}

#[derive(Clone, Debug)]
struct PendingWrite {
    first: Pair,
    last: Pair,
    q: u32,
}

/// The bind, handle calls and create call that matched, before the upload is looked up.
#[derive(Clone, Debug)]
struct Matched {
    bind: Exchange,
    handle_calls: Vec<Exchange>,
    create: Exchange,
}

#[derive(Debug, Default)]
struct Session {
    conn: ConnFields,
    last_ts: Ts,
    user: Option<String>,
    domain: Option<String>,
    workstation: Option<String>,
    client_msgs: u64,
    ascii_letter_nonces: u64,
    pairer: Pairer,
    pending_write: Option<PendingWrite>,
    run: Option<Upload>,
    /// The last pair was a plain upload chunk: a smaller write next is the file's tail.
    after_chunk: bool,
    upload: Option<Upload>,
    /// Pipe exchanges of the last `sequence_window_secs`, oldest first.
    exchanges: VecDeque<Exchange>,
    exchanges_dropped: bool,
    inferences: u32,
    /// Its flow ended; kept only until its upload is used or expires.
    ended: bool,
}

/// The size-and-sequence inference over all sessions. Feed it every event in packet order.
#[derive(Debug)]
pub struct Inference {
    cfg: InferenceConfig,
    sessions: BTreeMap<SessionKey, Session>,
    last_sweep: Ts,
    caps: Vec<CapNote>,
    caps_dropped: u64,
}

impl Inference {
    pub fn new(cfg: InferenceConfig) -> Inference {
        Inference {
            cfg,
            sessions: BTreeMap::new(),
            last_sweep: Ts(0),
            caps: Vec::new(),
            caps_dropped: 0,
        }
    }

    /// Feed one event (packet order). `smb_opaque` drives the inference; `smb_auth` and
    /// `smb_visibility` give the session its user, domain and workstation (and `state = "end"`
    /// completes it); other events are ignored. Inferred techniques are appended to `out`.
    pub fn on_event(&mut self, ev: &Event, out: &mut Vec<InferredTechnique>) {
        match ev {
            Event::SmbOpaque(o) => self.on_opaque(o, out),
            Event::SmbAuth(a) => {
                if let Some(sid) = a.session_id {
                    // Identity arrives before encryption starts, so the slot is taken now; sessions
                    // that never turn opaque leave with the idle sweep or the LRU at the cap.
                    if a.user.is_some() {
                        let key = (a.conn.orig_h, a.conn.resp_h, sid);
                        if let Some(s) = self.session(key, &a.conn, out) {
                            s.user = a.user.clone();
                            s.domain = a.domain.clone();
                            s.workstation = a.workstation.clone();
                        }
                    }
                }
            }
            Event::SmbVisibility(v) => {
                let key = (v.conn.orig_h, v.conn.resp_h, v.session_id);
                if let Some(s) = self.sessions.get_mut(&key) {
                    if s.user.is_none() {
                        s.user = v.user.clone();
                        s.domain = v.domain.clone();
                        s.workstation = v.workstation.clone();
                    }
                }
                if v.state == "end" {
                    self.end_session(key, out);
                }
            }
            _ => {}
        }
    }

    /// Time passes without events (live): sessions idle past `session_idle_secs` complete now
    /// instead of when the next encrypted message of any session arrives.
    pub fn tick(&mut self, now: Ts, out: &mut Vec<InferredTechnique>) {
        self.sweep(now, out);
    }

    /// Sessions held now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// End of input: complete what is held and drop every session.
    pub fn finish(&mut self, out: &mut Vec<InferredTechnique>) {
        let keys: Vec<SessionKey> = self.sessions.keys().copied().collect();
        for key in keys {
            self.finish_session(key, out);
        }
    }

    /// Hand caps reached since the last call to the sink (`cap_reached` with the constant's name).
    pub fn report_caps(&mut self, sink: &mut Sink) {
        for n in self.caps.drain(..) {
            sink.cap_reached(n.cap, n.ts, Some(n.conn), "smb", n.detail);
        }
        if self.caps_dropped > 0 {
            sink.count("inferred.cap_notes_dropped", self.caps_dropped);
            self.caps_dropped = 0;
        }
    }

    fn note_cap(&mut self, cap: &'static str, ts: Ts, conn: ConnFields, detail: String) {
        if self.caps.len() < MAX_PENDING_CAP_NOTES {
            self.caps.push(CapNote {
                cap,
                ts,
                conn,
                detail,
            });
        } else {
            self.caps_dropped = self.caps_dropped.saturating_add(1);
        }
    }

    /// The session for `key`, created if needed (evicting the least recently active at the cap).
    fn session(
        &mut self,
        key: SessionKey,
        conn: &ConnFields,
        out: &mut Vec<InferredTechnique>,
    ) -> Option<&mut Session> {
        if !self.sessions.contains_key(&key) {
            if self.sessions.len() >= MAX_INFERENCE_SESSIONS {
                let oldest = self
                    .sessions
                    .iter()
                    .min_by_key(|(_, s)| s.last_ts)
                    .map(|(k, _)| *k);
                if let Some(old) = oldest {
                    self.note_cap(
                        "MAX_INFERENCE_SESSIONS",
                        conn.ts,
                        *conn,
                        format!(
                            "size inference dropped the least recently active session {:#x}",
                            old.2
                        ),
                    );
                    self.finish_session(old, out);
                }
            }
            let s = Session {
                conn: *conn,
                last_ts: conn.ts,
                ..Session::default()
            };
            self.sessions.insert(key, s);
        }
        self.sessions.get_mut(&key)
    }

    fn on_opaque(&mut self, o: &SmbOpaque, out: &mut Vec<InferredTechnique>) {
        let ts = o.conn.ts;
        self.sweep(ts, out);
        let key = (o.conn.orig_h, o.conn.resp_h, o.session_id);
        let cfg = self.cfg;
        let mut matched = Vec::new();
        let mut pairs = Vec::new();
        let mut cap = None;
        {
            let Some(s) = self.session(key, &o.conn, out) else {
                return;
            };
            s.conn = o.conn;
            s.last_ts = ts;
            s.ended = false;
            let m = Msg {
                ts,
                size: o.original_size,
                uid: o.conn.uid,
            };
            let notes = if o.to_server {
                s.client_msgs = s.client_msgs.saturating_add(1);
                if o.nonce_form == "ascii-letters" {
                    s.ascii_letter_nonces = s.ascii_letter_nonces.saturating_add(1);
                }
                s.pairer.request(m, &mut pairs)
            } else {
                s.pairer.response(m, &mut pairs)
            };
            if notes.pending_cap {
                cap = Some((
                    "MAX_PENDING_REQUESTS",
                    "size inference dropped an unanswered request",
                ));
            }
            for p in pairs.drain(..) {
                s.on_pair(&cfg, p, &mut matched);
            }
            if std::mem::take(&mut s.exchanges_dropped) {
                cap = Some((
                    "MAX_EXCHANGES_KEPT",
                    "size inference dropped a pipe exchange inside its window",
                ));
            }
        }
        if let Some((name, detail)) = cap {
            self.note_cap(name, ts, o.conn, detail.to_string());
        }
        for m in matched {
            self.emit(key, m, out);
        }
    }

    /// The flow of a session ended: complete it, but keep an upload it made for the window, since
    /// the service may be created over another connection (the idle sweep drops it later).
    fn end_session(&mut self, key: SessionKey, out: &mut Vec<InferredTechnique>) {
        self.complete(key, out);
        if let Some(s) = self.sessions.get_mut(&key) {
            s.close_run();
            if s.upload.is_none() {
                self.sessions.remove(&key);
            } else {
                s.ended = true;
            }
        }
    }

    fn finish_session(&mut self, key: SessionKey, out: &mut Vec<InferredTechnique>) {
        self.complete(key, out);
        self.sessions.remove(&key);
    }

    /// Pair what is held and run the sequence over it.
    fn complete(&mut self, key: SessionKey, out: &mut Vec<InferredTechnique>) {
        let cfg = self.cfg;
        let mut matched = Vec::new();
        if let Some(s) = self.sessions.get_mut(&key) {
            let mut pairs = Vec::new();
            s.pairer.flush(&mut pairs);
            for p in pairs {
                s.on_pair(&cfg, p, &mut matched);
            }
        }
        for m in matched {
            self.emit(key, m, out);
        }
    }

    fn sweep(&mut self, now: Ts, out: &mut Vec<InferredTechnique>) {
        if now < self.last_sweep.saturating_add_secs(SWEEP_EVERY_SECS) {
            return;
        }
        self.last_sweep = now;
        let idle = self.cfg.session_idle_secs;
        let stale: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.last_ts.saturating_add_secs(idle) < now)
            .map(|(k, _)| *k)
            .collect();
        for key in stale {
            self.finish_session(key, out);
        }
    }

    /// Look up the upload (this session first, then the same client's other sessions to the same
    /// server) and write the inferred technique.
    fn emit(&mut self, key: SessionKey, m: Matched, out: &mut Vec<InferredTechnique>) {
        let window = self.cfg.upload_window_secs;
        let create_ts = m.create.ts;
        let fits =
            |u: &Upload| u.end <= create_ts && u.end.saturating_add_secs(window) >= create_ts;
        let mut best: Option<(SessionKey, Ts)> = None;
        for (k, s) in self
            .sessions
            .range((key.0, key.1, 0)..=(key.0, key.1, u64::MAX))
        {
            if let Some(u) = s.upload.as_ref().filter(|u| fits(u)) {
                let better = match best {
                    None => true,
                    // Prefer this session's own upload, then the most recent.
                    Some((bk, bend)) => bk != key && (*k == key || u.end > bend),
                };
                if better {
                    best = Some((*k, u.end));
                }
            }
        }
        let mut upload = None;
        if let Some((k, _)) = best {
            if let Some(s) = self.sessions.get_mut(&k) {
                upload = s.upload.take();
                // An ended session was only kept for its upload.
                if s.ended {
                    self.sessions.remove(&k);
                }
            }
        }
        if upload.is_none() && !self.cfg.report_service_only {
            return;
        }
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if s.inferences >= MAX_INFERENCES_PER_SESSION {
            let conn = s.conn;
            self.note_cap(
                "MAX_INFERENCES_PER_SESSION",
                create_ts,
                conn,
                format!("size inference stopped reporting session {:#x}", key.2),
            );
            return;
        }
        s.inferences += 1;
        out.push(build(key, s, m, upload));
    }
}

impl Session {
    fn on_pair(&mut self, cfg: &InferenceConfig, p: Pair, matched: &mut Vec<Matched>) {
        let (req, resp) = (p.req.size, p.resp.size);
        // Uploads.
        if let Some((data, exact)) = shapes::upload_chunk(req, resp) {
            self.add_chunk(cfg, p, data, exact);
            self.after_chunk = exact;
            if !exact {
                self.close_run();
            }
            return;
        }
        // The tail of a file is a smaller write right after its chunks. Tails up to a bind's size
        // are left out of the count so that a pipe write is never swallowed.
        if std::mem::take(&mut self.after_chunk) {
            if let Some(data) = shapes::write_data(req, resp).filter(|d| *d > shapes::BIND_MAX) {
                self.add_chunk(cfg, p, u64::from(data), true);
                self.after_chunk = true;
                return;
            }
        }
        let quiet = self
            .run
            .as_ref()
            .is_some_and(|r| r.end.saturating_add_secs(cfg.upload_run_gap_secs) < p.req.ts);
        if shapes::is_close(req, resp) || quiet {
            self.close_run();
        }
        // Pipe calls.
        if let Some(q) = shapes::write_data(req, resp)
            .filter(|q| (shapes::DCE_HEADER..=shapes::MAX_PIPE_PDU).contains(q))
        {
            self.pending_write = match self.pending_write.take() {
                // A multi-fragment request: the fragments add up. Only a full fragment is
                // followed by more; a smaller unanswered write (an AUTH3 after an authenticated
                // bind) is replaced.
                Some(w)
                    if w.q >= shapes::MIN_FRAGMENT_SPLIT
                        && w.last.resp.ts.saturating_add_secs(PIPE_WRITE_MAX_AGE_SECS)
                            >= p.req.ts =>
                {
                    Some(PendingWrite {
                        first: w.first,
                        last: p,
                        q: w.q.saturating_add(q),
                    })
                }
                _ => Some(PendingWrite {
                    first: p,
                    last: p,
                    q,
                }),
            };
            return;
        }
        if let Some(r) = shapes::read_data(req, resp).filter(|r| *r <= shapes::MAX_PIPE_PDU) {
            let Some(w) = self.pending_write.take() else {
                return;
            };
            if w.last.resp.ts.saturating_add_secs(PIPE_WRITE_MAX_AGE_SECS) < p.req.ts {
                return;
            }
            let ev = |m: &Msg, to_server, inner, what| SizeEvidence {
                ts: m.ts,
                to_server,
                size: m.size,
                inner,
                role: "",
                what,
            };
            let ex = Exchange {
                ts: w.first.req.ts,
                ts_end: p.resp.ts,
                q: w.q,
                r,
                uid: p.resp.uid,
                evidence: vec![
                    ev(&w.last.req, true, Some(w.q), "write request"),
                    ev(&w.last.resp, false, None, "write response"),
                    ev(&p.req, true, None, "read request"),
                    ev(&p.resp, false, Some(r), "read response"),
                ],
            };
            self.on_exchange(cfg, ex, matched);
            return;
        }
        if let Some((q, r)) = shapes::transceive(req, resp) {
            let ex = Exchange {
                ts: p.req.ts,
                ts_end: p.resp.ts,
                q,
                r,
                uid: p.resp.uid,
                evidence: vec![
                    SizeEvidence {
                        ts: p.req.ts,
                        to_server: true,
                        size: req,
                        inner: Some(q),
                        role: "",
                        what: "ioctl request",
                    },
                    SizeEvidence {
                        ts: p.resp.ts,
                        to_server: false,
                        size: resp,
                        inner: Some(r),
                        role: "",
                        what: "ioctl response",
                    },
                ],
            };
            self.on_exchange(cfg, ex, matched);
        }
    }

    fn add_chunk(&mut self, cfg: &InferenceConfig, p: Pair, data: u64, exact: bool) {
        if self
            .run
            .as_ref()
            .is_some_and(|r| r.end.saturating_add_secs(cfg.upload_run_gap_secs) < p.req.ts)
        {
            self.close_run();
        }
        let run = self.run.get_or_insert_with(|| Upload {
            start: p.req.ts,
            end: p.resp.ts,
            size: 0,
            exact: true,
            chunks: 0,
            evidence: Vec::new(),
        });
        run.end = p.resp.ts;
        run.size = run.size.saturating_add(data);
        run.exact &= exact;
        run.chunks = run.chunks.saturating_add(1);
        if run.evidence.len() + 2 <= MAX_UPLOAD_EVIDENCE * 2 {
            let (wq, wr) = if exact {
                ("write request", "write response")
            } else {
                ("compound request", "compound response")
            };
            let inner = u32::try_from(data).ok();
            run.evidence.push(SizeEvidence {
                ts: p.req.ts,
                to_server: true,
                size: p.req.size,
                inner,
                role: "upload",
                what: wq,
            });
            run.evidence.push(SizeEvidence {
                ts: p.resp.ts,
                to_server: false,
                size: p.resp.size,
                inner: None,
                role: "upload",
                what: wr,
            });
        }
    }

    fn close_run(&mut self) {
        if let Some(run) = self.run.take() {
            self.upload = Some(run);
        }
    }

    fn on_exchange(&mut self, cfg: &InferenceConfig, ex: Exchange, matched: &mut Vec<Matched>) {
        let window = cfg.sequence_window_secs;
        while self
            .exchanges
            .front()
            .is_some_and(|e| e.ts.saturating_add_secs(window) < ex.ts_end)
        {
            self.exchanges.pop_front();
        }
        if let Some((bind_at, calls)) = self.find_sequence(&ex) {
            // An upload still open when the service is created counts as finished.
            self.close_run();
            let Some(bind) = self.exchanges.get(bind_at).cloned() else {
                return;
            };
            let handle_calls = calls
                .into_iter()
                .filter_map(|i| self.exchanges.get(i).cloned())
                .map(|e| e.with_role("handle-call"))
                .collect();
            // Each exchange explains at most one creation.
            self.exchanges.clear();
            matched.push(Matched {
                bind: bind.with_role("bind"),
                handle_calls,
                create: ex.with_role("create-call"),
            });
            return;
        }
        if self.exchanges.len() >= MAX_EXCHANGES_KEPT {
            self.exchanges.pop_front();
            self.exchanges_dropped = true;
        }
        self.exchanges.push_back(ex);
    }

    /// For a create-sized exchange: the latest bind-sized exchange in the window followed by at
    /// least one handle call, all of whose requests are smaller than the create call's. Sizes can
    /// fit several shapes (a bind_ack and an authenticated handle reply overlap), so every reading
    /// is tried rather than committing to one as exchanges arrive.
    fn find_sequence(&self, create: &Exchange) -> Option<(usize, Vec<usize>)> {
        if !shapes::is_create_call(create.q, create.r, 0) {
            return None;
        }
        for (i, b) in self.exchanges.iter().enumerate().rev() {
            if !shapes::is_bind(b.q, b.r) {
                continue;
            }
            // The first call on a service-control binding opens the SCM: nothing else works
            // without that handle.
            if !self
                .exchanges
                .get(i + 1)
                .is_some_and(|e| shapes::is_handle_call(e.q, e.r))
            {
                continue;
            }
            let calls: Vec<usize> = (i + 1..self.exchanges.len())
                .filter(|&j| {
                    self.exchanges
                        .get(j)
                        .is_some_and(|e| shapes::is_handle_call(e.q, e.r))
                })
                .collect();
            let largest = calls
                .iter()
                .filter_map(|&j| self.exchanges.get(j))
                .map(|e| e.q)
                .max()
                .unwrap_or(0);
            if !shapes::is_create_call(create.q, create.r, largest) {
                return None;
            }
            let kept = calls.into_iter().take(MAX_HANDLE_CALLS_KEPT).collect();
            return Some((i, kept));
        }
        None
    }
}

fn build(key: SessionKey, s: &Session, m: Matched, upload: Option<Upload>) -> InferredTechnique {
    let tool_hint = (s.client_msgs >= 4
        && s.ascii_letter_nonces.saturating_mul(10) >= s.client_msgs.saturating_mul(9))
    .then_some("impacket");
    let mut evidence: Vec<SizeEvidence> = Vec::new();
    if let Some(u) = &upload {
        evidence.extend(u.evidence.iter().cloned());
    }
    evidence.extend(m.bind.evidence.iter().cloned());
    for c in &m.handle_calls {
        evidence.extend(c.evidence.iter().cloned());
    }
    evidence.extend(m.create.evidence.iter().cloned());
    evidence.truncate(MAX_EVIDENCE);

    let calls: Vec<String> = m
        .handle_calls
        .iter()
        .map(|c| format!("{}/{}", c.q, c.r))
        .collect();
    let mut reason = String::from(
        "inferred from encrypted SMB3 traffic (message sizes and order only, not decrypted): ",
    );
    if let Some(u) = &upload {
        reason.push_str(&format!(
            "{} {} bytes uploaded in {} write(s) answered by small replies, then ",
            if u.exact { "exactly" } else { "at most" },
            u.size,
            u.chunks
        ));
    }
    reason.push_str(&format!(
        "within {:.1} s on a named pipe a bind-sized exchange ({}/{} bytes), handle-returning call(s) ({}), and a larger request with a small reply ({}/{} bytes): shaped like svcctl bind, OpenSCManagerW/OpenServiceW, CreateServiceW",
        m.create.ts_end.secs_since(m.bind.ts),
        m.bind.q,
        m.bind.r,
        calls.join(", "),
        m.create.q,
        m.create.r
    ));
    if tool_hint.is_some() {
        reason.push_str("; client nonces are 11 ASCII letters (impacket)");
    }
    let start = upload
        .as_ref()
        .map_or(m.bind.ts, |u| u.start.min(m.bind.ts));
    InferredTechnique {
        src: key.0,
        dst: key.1,
        uid: m.create.uid,
        ports: (s.conn.uid == m.create.uid).then_some((s.conn.orig_p, s.conn.resp_p)),
        session_id: key.2,
        ts: start,
        ts_end: m.create.ts_end,
        user: s.user.clone(),
        domain: s.domain.clone(),
        workstation: s.workstation.clone(),
        variant: if upload.is_some() {
            "upload-then-service"
        } else {
            "service-only"
        },
        with_upload: upload.is_some(),
        upload_size: upload.as_ref().map(|u| u.size),
        upload_size_exact: upload.as_ref().is_some_and(|u| u.exact),
        confidence: if upload.is_some() {
            InferredConfidence::Medium
        } else {
            InferredConfidence::Low
        },
        tool_hint,
        evidence,
        reason,
    }
}

#[cfg(test)]
mod tests;
