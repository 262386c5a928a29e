//! Zeek's log layout (`--log-dir`): which record goes to which log, the records Zeek has and the
//! sensor's events do not map one to one (`ntlm`, `kerberos`, `conn`, `notice`, `weird`), and
//! every log's columns with their Zeek types ([`LOG_SCHEMAS`]): the TSV writer's `#fields` and
//! `#types`, and the tables in docs/output-formats.md (a test keeps the three in step).

use super::alert::{Alert, Severity};
use super::{ConnFields, Event, SmbAuth};
use crate::flow::table::FlowSummary;
use crate::time::Ts;
use serde::Serialize;
use std::net::IpAddr;

/// Zeek column types used by the sensor's logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeekType {
    Time,
    Interval,
    String,
    Addr,
    Port,
    Count,
    Double,
    Bool,
    Enum,
    SetString,
    VectorString,
}

impl ZeekType {
    pub fn name(self) -> &'static str {
        match self {
            ZeekType::Time => "time",
            ZeekType::Interval => "interval",
            ZeekType::String => "string",
            ZeekType::Addr => "addr",
            ZeekType::Port => "port",
            ZeekType::Count => "count",
            ZeekType::Double => "double",
            ZeekType::Bool => "bool",
            ZeekType::Enum => "enum",
            ZeekType::SetString => "set[string]",
            ZeekType::VectorString => "vector[string]",
        }
    }
}

/// One log of the `--log-dir` layout: its `_path` and columns in order.
pub struct LogSchema {
    pub path: &'static str,
    pub fields: &'static [(&'static str, ZeekType)],
}

use ZeekType::{
    Addr, Bool, Count, Double, Enum, Interval, Port, SetString, String as Str, Time, VectorString,
};

/// Zeek's connection columns, first in every connection log.
macro_rules! conn_columns {
    ($($rest:tt)*) => {
        &[
            ("ts", Time),
            ("uid", Str),
            ("id.orig_h", Addr),
            ("id.orig_p", Port),
            ("id.resp_h", Addr),
            ("id.resp_p", Port),
            $($rest)*
        ]
    };
}

/// Every log the sensor writes to `--log-dir`, with its columns. `community_id` and `sensor` are
/// on every log, last.
pub const LOG_SCHEMAS: &[LogSchema] = &[
    LogSchema {
        path: "smb_mapping",
        fields: conn_columns![
            ("path", Str),
            ("share", Str),
            ("service", Str),
            ("share_type", Str),
            ("native_file_system", Str),
            ("status", Str),
            ("smb_version", Enum),
            ("session_id", Count),
            ("tree_id", Count),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "smb_files",
        fields: conn_columns![
            ("fuid", Str),
            ("action", Enum),
            ("path", Str),
            ("share", Str),
            ("name", Str),
            ("size", Count),
            ("prev_name", Str),
            ("times.modified", Time),
            ("times.accessed", Time),
            ("times.created", Time),
            ("times.changed", Time),
            ("status", Str),
            ("smb_version", Enum),
            ("session_id", Count),
            ("desired_access", Count),
            ("disposition", Count),
            ("create_options", Count),
            ("delete_on_close", Bool),
            ("create_action", Enum),
            ("bytes_written", Count),
            ("write_count", Count),
            ("first_write_ts", Time),
            ("pe", Bool),
            ("sha256", Str),
            ("hash_complete", Bool),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "dce_rpc",
        fields: conn_columns![
            ("rtt", Interval),
            ("named_pipe", Str),
            ("endpoint", Str),
            ("operation", Str),
            ("transport", Str),
            ("opnum", Count),
            ("call_id", Count),
            ("ctx_id", Count),
            ("uuid", Str),
            ("auth_type", Str),
            ("auth_level", Str),
            ("stub_encrypted", Bool),
            ("decrypted", Bool),
            ("status", Str),
            ("request_stub_len", Count),
            ("request_frags", Count),
            ("interfaces", VectorString),
            ("inferred_operation", Enum),
            ("user", Str),
            ("domain", Str),
            ("user_source", Enum),
            ("machine_name", Str),
            ("database", Str),
            ("access", Count),
            ("service_name", Str),
            ("display_name", Str),
            ("binary_path", Str),
            ("service_type", Count),
            ("start_type", Count),
            ("error_control", Count),
            ("start_name", Str),
            ("control", Count),
            ("argc", Count),
            ("arguments", VectorString),
            ("task_path", Str),
            ("command", Str),
            ("command_arguments", Str),
            ("user_id", Str),
            ("run_level", Str),
            ("handle", Str),
            ("response_handle", Str),
            ("return_code", Count),
            ("epm_port", Port),
            ("epm_ip", Str),
            ("mapped_uuid", Str),
            ("mapped_endpoint", Str),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "ntlm",
        fields: conn_columns![
            ("username", Str),
            ("hostname", Str),
            ("domainname", Str),
            ("success", Bool),
            ("status", Str),
            ("auth", Str),
            ("dialect", Str),
            ("smb_version", Enum),
            ("session_id", Count),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "kerberos",
        fields: conn_columns![
            ("request_type", Str),
            ("client", Str),
            ("service", Str),
            ("success", Bool),
            ("error_msg", Str),
            ("from", Time),
            ("till", Time),
            ("cipher", Str),
            ("forwardable", Bool),
            ("renewable", Bool),
            ("transport", Str),
            ("user_source", Enum),
            ("status", Str),
            ("dialect", Str),
            ("session_id", Count),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "smb_visibility",
        fields: conn_columns![
            ("session_id", Count),
            ("kind", Str),
            ("state", Str),
            ("cipher", Str),
            ("dialect", Str),
            ("user", Str),
            ("domain", Str),
            ("workstation", Str),
            ("messages", Count),
            ("bytes", Count),
            ("decrypted", Bool),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "conn",
        fields: conn_columns![
            ("proto", Enum),
            ("duration", Interval),
            ("orig_bytes", Count),
            ("resp_bytes", Count),
            ("missed_bytes", Count),
            ("history", Str),
            ("end", Str),
            ("app", Str),
            ("packets", Count),
            ("orig_skipped_bytes", Count),
            ("resp_skipped_bytes", Count),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "notice",
        fields: conn_columns![
            ("proto", Enum),
            ("note", Enum),
            ("msg", Str),
            ("sub", Str),
            ("src", Addr),
            ("dst", Addr),
            ("p", Port),
            ("actions", SetString),
            ("alert_id", Str),
            ("severity", Enum),
            ("confidence", Double),
            ("attack", SetString),
            ("tool", Str),
            ("suppressed_by", Str),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
    LogSchema {
        path: "weird",
        fields: conn_columns![
            ("name", Str),
            ("addl", Str),
            ("notice", Bool),
            ("peer", Str),
            ("source", Str),
            ("cap", Str),
            ("community_id", Str),
            ("sensor", Str),
        ],
    },
];

pub fn schema(path: &str) -> Option<&'static LogSchema> {
    LOG_SCHEMAS.iter().find(|s| s.path == path)
}

/// Zeek ntlm.log, from an NTLMSSP (or raw NTLM, or anonymous) SMB session setup.
#[derive(Serialize)]
pub struct NtlmLog<'a> {
    #[serde(flatten)]
    pub conn: &'a ConnFields,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<&'a str>,
    pub success: bool,
    pub status: &'a str,
    pub auth: &'static str,
    pub dialect: &'a str,
    pub smb_version: super::SmbVersion,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
}

/// Zeek kerberos.log, from a Kerberos SMB session setup (an AP exchange; `client` is known when
/// the TGS-REP that issued its ticket was seen, `user_source` says). KDC exchanges are written
/// from [`crate::event::Kerberos`] itself.
#[derive(Serialize)]
pub struct KerberosLog<'a> {
    #[serde(flatten)]
    pub conn: &'a ConnFields,
    pub request_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_source: Option<super::UserSource>,
    pub status: &'a str,
    pub dialect: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
}

/// Zeek conn.log, from a TCP flow that ended. `history` uses Zeek's letters for what the flow
/// table knows (`S` SYN seen, `D`/`d` data each way); `end` says why it ended.
#[derive(Serialize)]
pub struct ConnLog<'a> {
    #[serde(flatten)]
    pub conn: &'a ConnFields,
    pub proto: &'static str,
    pub duration: f64,
    pub orig_bytes: u64,
    pub resp_bytes: u64,
    pub missed_bytes: u64,
    pub history: String,
    pub end: &'static str,
    pub app: &'static str,
    pub packets: u64,
    pub orig_skipped_bytes: u64,
    pub resp_skipped_bytes: u64,
}

pub use super::IdColumns;

/// Zeek notice.log, from a technique, signal or visibility alert (`--alerts` has every detail).
#[derive(Serialize)]
pub struct NoticeLog<'a> {
    pub ts: Ts,
    /// Zeek's `uid` and `id.*`, when the record is about one connection.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub conn: Option<IdColumns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    pub note: &'static str,
    pub msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    pub src: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<u16>,
    pub actions: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub attack: &'a [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<&'a str>,
}

/// Zeek weird.log, from a typed anomaly.
#[derive(Serialize)]
pub struct WeirdLog<'a> {
    pub ts: Ts,
    /// Zeek's `uid` and `id.*`, when the record is about one connection.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub conn: Option<IdColumns>,
    pub name: super::AnomalyKind,
    pub addl: &'a str,
    pub notice: bool,
    pub peer: &'a str,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<&'static str>,
}

/// What an SMB session setup becomes in the Zeek layout.
pub enum AuthLog<'a> {
    Ntlm(NtlmLog<'a>),
    Kerberos(KerberosLog<'a>),
}

pub fn auth_log(a: &SmbAuth) -> Option<AuthLog<'_>> {
    let success = a.status == "STATUS_SUCCESS";
    match a.auth {
        "ntlmssp" | "raw-ntlm" | "anonymous" => Some(AuthLog::Ntlm(NtlmLog {
            conn: &a.conn,
            username: a.user.as_deref(),
            hostname: a.workstation.as_deref(),
            domainname: a.domain.as_deref(),
            success,
            status: &a.status,
            auth: a.auth,
            dialect: &a.dialect,
            smb_version: a.smb_version,
            session_id: a.session_id,
        })),
        "kerberos" => Some(AuthLog::Kerberos(KerberosLog {
            conn: &a.conn,
            request_type: "AP",
            client: a.user.as_ref().map(|u| match &a.domain {
                Some(d) if !d.is_empty() => format!("{u}/{d}"),
                _ => u.clone(),
            }),
            success,
            user_source: a.user_source,
            status: &a.status,
            dialect: &a.dialect,
            session_id: a.session_id,
        })),
        _ => None,
    }
}

pub fn conn_log(f: &FlowSummary) -> ConnLog<'_> {
    let mut history = String::new();
    if f.syn_seen {
        history.push('S');
    }
    if f.orig_bytes_delivered > 0 {
        history.push('D');
    }
    if f.resp_bytes_delivered > 0 {
        history.push('d');
    }
    ConnLog {
        conn: &f.conn,
        proto: "tcp",
        duration: f.last_ts.secs_since(f.conn.ts),
        orig_bytes: f.orig_bytes_delivered + f.orig_gap_bytes,
        resp_bytes: f.resp_bytes_delivered + f.resp_gap_bytes,
        missed_bytes: f.orig_gap_bytes + f.resp_gap_bytes,
        history,
        end: f.end,
        app: f.app,
        packets: f.packets,
        orig_skipped_bytes: f.orig_skipped_bytes,
        resp_skipped_bytes: f.resp_skipped_bytes,
    }
}

/// Zeek notice names (`PsExec::…`), one per alert meaning.
pub fn notice_name(alert: &Alert) -> Option<&'static str> {
    use super::alert::Technique;
    Some(match alert {
        Alert::Technique(t) => match t.technique {
            Technique::ServiceCreate => "PsExec::Service_Create",
            Technique::ServiceModify => "PsExec::Service_Modify",
            Technique::TaskCreate => "PsExec::Task_Create",
        },
        Alert::Signal(s) => match s.signal {
            "admin-share-executable" => "PsExec::Admin_Share_Executable",
            "admin-share-sweep" => "PsExec::Admin_Share_Sweep",
            "service-control" => "PsExec::Service_Control",
            _ => "PsExec::Signal",
        },
        Alert::Visibility(_) => "PsExec::Unreadable_Session",
        Alert::HostSummary(_) => return None,
    })
}

/// Which log an event goes to (`None`: not part of the Zeek layout, e.g. per-message opaque SMB).
pub fn event_path(ev: &Event) -> Option<&'static str> {
    match ev {
        Event::SmbMapping(_) => Some("smb_mapping"),
        Event::SmbFiles(_) => Some("smb_files"),
        Event::DceRpc(_) => Some("dce_rpc"),
        Event::SmbAuth(a) => auth_log(a).map(|l| match l {
            AuthLog::Ntlm(_) => "ntlm",
            AuthLog::Kerberos(_) => "kerberos",
        }),
        Event::SmbVisibility(_) => Some("smb_visibility"),
        Event::Kerberos(_) => Some("kerberos"),
        Event::SmbOpaque(_) => None,
        Event::Anomaly(_) => Some("weird"),
    }
}
