//! Alert records written by detection (`technique`, `signal`, `visibility`, `host_summary`).
//!
//! Every record serializes with a `kind` field naming it. Optional fields are left out of the JSON
//! when unknown; lists are always present (possibly empty) so consumers need not special-case them.
//! The schema is documented in the README ("Alert schema").

use crate::event::{ser_ip, ConnFields};
use crate::flow::FlowCtx;
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One alert line.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// An attack instance: a remote service created or reconfigured, or a remote task registered.
    Technique(Box<TechniqueAlert>),
    /// Lower severity observation, never counted as the technique.
    Signal(SignalAlert),
    /// The sensor cannot see inside a session (SMB3 encryption): who talked to whom.
    Visibility(VisibilityAlert),
    /// Per source host: what it did, at the end of an offline run or periodically when live.
    HostSummary(HostSummary),
}

impl Alert {
    pub fn kind(&self) -> &'static str {
        match self {
            Alert::Technique(_) => "technique",
            Alert::Signal(_) => "signal",
            Alert::Visibility(_) => "visibility",
            Alert::HostSummary(_) => "host_summary",
        }
    }
    pub fn as_technique(&self) -> Option<&TechniqueAlert> {
        match self {
            Alert::Technique(t) => Some(t),
            _ => None,
        }
    }
}

/// "service-create" | "service-modify" | "task-create".
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Technique {
    #[serde(rename = "service-create")]
    ServiceCreate,
    #[serde(rename = "service-modify")]
    ServiceModify,
    #[serde(rename = "task-create")]
    TaskCreate,
}

impl Technique {
    pub fn as_str(self) -> &'static str {
        match self {
            Technique::ServiceCreate => "service-create",
            Technique::ServiceModify => "service-modify",
            Technique::TaskCreate => "task-create",
        }
    }
}

/// What the alert stands on.
/// Ordered from most to least direct.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Basis {
    /// The call's arguments were readable (service name, binary path …).
    Cleartext,
    /// DCE-RPC packet privacy: only the interface and opnum sequence were visible.
    StubEncrypted,
    /// Inferred from the server's responses alone (a server→client-only capture): the calls were
    /// read from the layouts and order of their answers (`dcerpc::response_shapes`); nothing the
    /// requests carry (service name, binary path) was seen.
    Responses,
    /// Inferred from the sizes of SMB3-encrypted messages (no call was readable). Reserved for the
    /// size-inference detector; lowest confidence.
    Inferred,
}

/// Ordered, so the worst of a group is its `max`. Read back by `report` (`output::report::input`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

/// A file written to an admin share by the source. Read back by `report` (every field optional
/// on the way in).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Upload {
    pub share: String,
    pub name: String,
    /// Bytes written to that name, summed over every handle that wrote it.
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The contents start with `MZ`.
    pub pe: bool,
    /// The service binary path (or task command) refers to this file.
    pub referenced: bool,
}

/// One service creation / task registration folded into an alert (repeats keep their own details).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FoldedCall {
    pub ts: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    /// "ok", a fault name, a Win32 error in hex, or "<no response>".
    pub status: String,
}

/// One line of evidence, pointing back at the event log record it came from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Evidence {
    pub ts: Ts,
    /// Event log name (`smb_mapping`, `smb_files`, `dce_rpc`, `smb_auth` …).
    pub log: &'static str,
    /// Connection uid (Zeek style `C…`).
    pub uid: String,
    pub summary: String,
    /// The connection itself, for the alert's `uid`, ports and `community_id` (not serialized:
    /// the outputs write it at the alert's top level).
    #[serde(skip)]
    pub flow: FlowCtx,
}

impl Evidence {
    pub fn new(c: &ConnFields, ts: Ts, log: &'static str, summary: String) -> Evidence {
        Evidence {
            ts,
            log,
            uid: c.uid.to_string(),
            summary,
            flow: c.flow(),
        }
    }
}

/// A technique alert: one per attack instance.
#[derive(Clone, Debug, Serialize)]
pub struct TechniqueAlert {
    /// First evidence of the instance.
    pub ts: Ts,
    /// Last evidence folded into it.
    pub ts_end: Ts,
    /// Id from content ([`TechniqueAlert::content_id`]): two sensors that see the same packets,
    /// whenever they see them, give the same id.
    pub id: String,
    pub technique: Technique,
    /// ATT&CK technique ids.
    pub attack: Vec<&'static str>,
    pub severity: Severity,
    /// 0.0 … 1.0.
    pub confidence: f64,
    pub basis: Basis,
    /// Read by decrypting with supplied keys: SMB3 (`--smb-keys`, `--keytab`) or DCE-RPC
    /// Kerberos packet privacy (`--keytab`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decrypted: bool,
    #[serde(serialize_with = "ser_ip")]
    pub src_ip: IpAddr,
    #[serde(serialize_with = "ser_ip")]
    pub dst_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    /// "kerberos" when the user comes from a Kerberos ticket (issue 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<&'static str>,
    /// How a Kerberos user was learned: `kerberos_tgs_rep`, `kerberos_as_rep`, `keytab`, or
    /// `unseen` (the ticket's issue was not in the capture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_source: Option<crate::event::UserSource>,
    /// Admin share(s) the source connected to (comma separated when several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    pub uploads: Vec<Upload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_type: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Named pipes the source opened on the target inside the window.
    pub pipes: Vec<String>,
    /// Tool attribution (rules/tools.toml), "unknown" when no signature matched.
    pub tool: String,
    /// Which signature attributed the tool (its `why`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_reason: Option<String>,
    /// Calls folded into this instance (smbexec makes one service per command).
    pub count: u32,
    /// Each folded call's own details (bounded by `MAX_FOLDED_CALLS`).
    pub calls: Vec<FoldedCall>,
    pub started: bool,
    pub deleted: bool,
    /// Whether the create/register call failed on the server (still an attack).
    pub failed: bool,
    /// No response to the create/register call was seen (one-sided capture, lost packets):
    /// whether it succeeded is unknown.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_response: bool,
    /// One sentence: why this is an alert.
    pub reason: String,
    pub evidence: Vec<Evidence>,
    /// The exception (rules) that matched: the alert is reported but suppressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

/// Lower-severity observations.
#[derive(Clone, Debug, Serialize)]
pub struct SignalAlert {
    pub ts: Ts,
    pub id: String,
    /// "admin-share-executable" | "admin-share-sweep" | "service-control"
    pub signal: &'static str,
    pub attack: Vec<&'static str>,
    pub severity: Severity,
    #[serde(serialize_with = "ser_ip")]
    pub src_ip: IpAddr,
    /// Absent for per-source signals (sweeps).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_ip")]
    pub dst_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<Upload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// service-control from a configuration change: the fields it set ("start_type=disabled" …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Targets (sweeps).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "ser_ips")]
    pub targets: Vec<IpAddr>,
    pub reason: String,
    pub evidence: Vec<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

/// The sensor cannot see inside a session.
#[derive(Clone, Debug, Serialize)]
pub struct VisibilityAlert {
    pub ts: Ts,
    pub uid: String,
    /// The session's connection (not serialized: the outputs write its ports at top level).
    #[serde(skip)]
    pub flow: FlowCtx,
    #[serde(serialize_with = "ser_ip")]
    pub src_ip: IpAddr,
    #[serde(serialize_with = "ser_ip")]
    pub dst_ip: IpAddr,
    pub session_id: u64,
    /// "smb3-encrypted" | "smb3-compressed"
    pub visibility: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
    pub decrypted: bool,
    pub reason: String,
}

/// Per source host.
#[derive(Clone, Debug, Serialize)]
pub struct HostSummary {
    pub ts: Ts,
    #[serde(serialize_with = "ser_ip")]
    pub src_ip: IpAddr,
    pub first_ts: Ts,
    pub last_ts: Ts,
    /// Technique alerts (suppressed ones included).
    pub attacks: u32,
    pub suppressed: u32,
    pub signals: u32,
    /// SMB3-encrypted sessions the sensor could not read (visibility records).
    pub unreadable_sessions: u32,
    #[serde(serialize_with = "ser_ips")]
    pub targets: Vec<IpAddr>,
    pub tools: Vec<String>,
    pub techniques: Vec<Technique>,
    pub users: Vec<String>,
    /// True for the end-of-run summary, false for periodic (live) ones.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// FNV-1a over length-prefixed parts: stable across platforms and runs (std's hasher is not), and
/// no two part lists give the same byte stream.
fn content_hash<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for p in parts {
        eat(&(p.len() as u64).to_be_bytes());
        eat(p);
    }
    h
}

fn ip_octets(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The connections an alert stands on (their uids derive from packet content, never time) and
/// what each piece of evidence says, in a time-independent order.
fn evidence_content(evidence: &[Evidence]) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = evidence
        .iter()
        .map(|e| {
            [
                e.log.as_bytes(),
                b"\0",
                e.uid.as_bytes(),
                b"\0",
                e.summary.as_bytes(),
            ]
            .concat()
        })
        .collect();
    parts.sort_unstable();
    parts.dedup();
    parts
}

fn opt(s: &Option<String>) -> &[u8] {
    s.as_deref().map_or(b"\xff", str::as_bytes)
}

impl TechniqueAlert {
    /// `psx-` and a hash of what the alert says: hosts, technique, service or task, and its
    /// evidence (connections and what was seen on them); never a time, so a second tap that sees
    /// the same packets later computes the same id.
    pub fn content_id(&self) -> String {
        let (src, dst) = (ip_octets(&self.src_ip), ip_octets(&self.dst_ip));
        let head: [&[u8]; 8] = [
            b"technique",
            &src,
            &dst,
            self.technique.as_str().as_bytes(),
            opt(&self.service_name),
            opt(&self.binary_path),
            opt(&self.task_path),
            opt(&self.command),
        ];
        let ev = evidence_content(&self.evidence);
        let h = content_hash(head.into_iter().chain(ev.iter().map(Vec::as_slice)));
        format!("psx-{h:016x}")
    }

    /// The connection of the decisive call: the first create/register call (`dce_rpc`), or for
    /// an alert inferred from encrypted sizes the first `smb_opaque` evidence; else the first
    /// evidence. Evidence is in time order.
    pub fn decisive_flow(&self) -> Option<&FlowCtx> {
        ["dce_rpc", "smb_opaque"]
            .iter()
            .find_map(|log| self.evidence.iter().find(|e| e.log == *log))
            .or_else(|| self.evidence.first())
            .map(|e| &e.flow)
    }
}

impl SignalAlert {
    /// `sig-` and a hash of what the signal says (see [`TechniqueAlert::content_id`]).
    pub fn content_id(&self) -> String {
        let src = ip_octets(&self.src_ip);
        let dst = self.dst_ip.as_ref().map(ip_octets).unwrap_or_default();
        let mut targets: Vec<Vec<u8>> = self.targets.iter().map(ip_octets).collect();
        targets.sort_unstable();
        let upload = self
            .upload
            .as_ref()
            .map(|u| [u.share.as_bytes(), b"\\", u.name.as_bytes()].concat())
            .unwrap_or_default();
        let head: [&[u8]; 6] = [
            b"signal",
            self.signal.as_bytes(),
            &src,
            &dst,
            &upload,
            opt(&self.service_name),
        ];
        let ev = evidence_content(&self.evidence);
        let h = content_hash(
            head.into_iter()
                .chain(targets.iter().map(Vec::as_slice))
                .chain(ev.iter().map(Vec::as_slice)),
        );
        format!("sig-{h:016x}")
    }

    /// The connection of the evidence the signal stands on (its first, in time order).
    pub fn decisive_flow(&self) -> Option<&FlowCtx> {
        self.evidence.first().map(|e| &e.flow)
    }
}

fn ser_opt_ip<S: serde::Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
    match ip {
        Some(ip) => s.collect_str(ip),
        None => s.serialize_none(),
    }
}

fn ser_ips<S: serde::Serializer>(ips: &[IpAddr], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(ips.len()))?;
    for ip in ips {
        seq.serialize_element(&ip.to_string())?;
    }
    seq.end()
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

fn who(user: &Option<String>, domain: &Option<String>) -> String {
    match (user, domain) {
        (Some(u), Some(d)) if !d.is_empty() => format!(" as {d}\\{u}"),
        (Some(u), _) => format!(" as {u}"),
        _ => String::new(),
    }
}

impl Alert {
    /// A readable rendering for the human summary (stderr), a few lines per alert.
    pub fn human(&self) -> String {
        match self {
            Alert::Technique(t) => {
                let mut s = format!(
                    "[{} {:.2}] {} {} -> {}{} tool={}{}\n",
                    t.severity.as_str().to_uppercase(),
                    t.confidence,
                    t.technique.as_str(),
                    t.src_ip,
                    t.dst_ip,
                    who(&t.user, &t.domain),
                    t.tool,
                    if t.count > 1 { format!(" x{}", t.count) } else { String::new() }
                );
                if t.service_name.is_some() || t.binary_path.is_some() {
                    s.push_str(&format!(
                        "  service {}  binary {}\n",
                        t.service_name.as_deref().unwrap_or("?"),
                        t.binary_path.as_deref().unwrap_or("?")
                    ));
                }
                if t.task_path.is_some() || t.command.is_some() {
                    s.push_str(&format!(
                        "  task {}  command {}\n",
                        t.task_path.as_deref().unwrap_or("?"),
                        t.command.as_deref().unwrap_or("?")
                    ));
                }
                for u in &t.uploads {
                    s.push_str(&format!(
                        "  upload {}\\{} {} bytes{}{}{}\n",
                        u.share,
                        u.name,
                        u.size,
                        if u.pe { " PE" } else { "" },
                        u.sha256.as_deref().map(|h| format!(" sha256 {h}")).unwrap_or_default(),
                        if u.referenced { " (the service binary)" } else { "" }
                    ));
                }
                if !t.pipes.is_empty() {
                    s.push_str(&format!("  pipes {}\n", t.pipes.join(", ")));
                }
                s.push_str(&format!("  {}\n", t.reason));
                if let Some(x) = &t.suppressed_by {
                    s.push_str(&format!("  suppressed by exception {x}\n"));
                }
                s
            }
            Alert::Signal(g) => format!(
                "[{}] signal {} {}{}: {}{}\n",
                g.severity.as_str().to_uppercase(),
                g.signal,
                g.src_ip,
                g.dst_ip.map(|d| format!(" -> {d}")).unwrap_or_default(),
                g.reason,
                g.suppressed_by.as_deref().map(|x| format!(" (suppressed by {x})")).unwrap_or_default()
            ),
            Alert::Visibility(v) => format!("[VISIBILITY] {}\n", v.reason),
            Alert::HostSummary(h) => format!(
                "[HOST] {}: {} attack(s) ({} suppressed), {} signal(s), {} unreadable session(s) on {} target(s); tools {}; {} .. {}\n",
                h.src_ip,
                h.attacks,
                h.suppressed,
                h.signals,
                h.unreadable_sessions,
                h.targets.len(),
                if h.tools.is_empty() { "-".into() } else { h.tools.join(", ") },
                h.first_ts.as_secs_f64(),
                h.last_ts.as_secs_f64()
            ),
        }
    }
}
