//! The EVE form (`--eve`): Suricata's JSON record shape, so Suricata pipelines (Filebeat's and
//! Elastic's Suricata module, Splunk's, Vector's) ingest the sensor's records without glue.
//!
//! Event types: `alert` (technique, signal and visibility alerts), `smb` (tree connects, file and
//! pipe records, session setups, DCE-RPC over SMB pipes), `dcerpc` (DCE-RPC over TCP), `flow`,
//! `anomaly`. Suricata's schema (etc/schema.json) closes every object to unknown keys, so what it
//! has no field for rides where Suricata itself puts rule metadata: `alert.metadata`, a map of
//! string lists (ATT&CK ids as `mitre_technique_id`, like Emerging Threats rules, and the
//! technique detail: service, binary path, task, tool, confidence, the sensor's alert id).

use super::alert::{Alert, Severity, Technique};
use super::community_id::CommunityId;
use super::{FileAction, SmbVersion};
use crate::flow::Uid;
use crate::time::Ts;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// EVE `timestamp`: ISO 8601 with microseconds and a numeric offset, as Suricata writes it.
pub fn timestamp(ts: Ts) -> String {
    let t = jiff::Timestamp::from_nanosecond(i128::from(ts.0)).unwrap_or_default();
    t.strftime("%Y-%m-%dT%H:%M:%S%.6f%z").to_string()
}

/// EVE `flow_id`: the connection's uid, cut to 52 bits so that consumers reading JSON numbers as
/// doubles keep it exact.
pub fn flow_id(uid: Uid) -> u64 {
    uid.0 & ((1 << 52) - 1)
}

/// The common head of every EVE record.
#[derive(Serialize)]
pub struct EveRecord<'a> {
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_id: Option<CommunityId>,
    /// The sensor name (Suricata's `host`).
    pub host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<EveAlert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb: Option<EveSmb<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcerpc: Option<EveDcerpc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub krb5: Option<EveKrb5<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<EveFlow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anomaly: Option<EveAnomaly>,
}

#[derive(Serialize)]
pub struct EveAlert {
    pub action: &'static str,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: &'static str,
    /// Suricata's scale: 1 (high) … 3 (low), 4 informational.
    pub severity: u8,
    pub metadata: BTreeMap<&'static str, Vec<String>>,
}

/// Signature ids, from the range Suricata and Snort leave to local rules (1000000–1999999).
pub fn signature_id(alert: &Alert) -> Option<u32> {
    Some(match alert {
        Alert::Technique(t) => match t.technique {
            Technique::ServiceCreate => 1_440_001,
            Technique::ServiceModify => 1_440_002,
            Technique::TaskCreate => 1_440_003,
        },
        Alert::Signal(s) => match s.signal {
            "admin-share-executable" => 1_440_101,
            "admin-share-sweep" => 1_440_102,
            "service-control" => 1_440_103,
            _ => 1_440_199,
        },
        Alert::Visibility(_) => 1_440_201,
        Alert::HostSummary(_) => return None,
    })
}

pub fn severity(s: Severity) -> u8 {
    match s {
        Severity::Critical | Severity::High => 1,
        Severity::Medium => 2,
        Severity::Low => 3,
        Severity::Info => 4,
    }
}

/// Suricata's `smb` object, the keys the sensor knows.
#[derive(Serialize, Default)]
pub struct EveSmb<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub named_pipe: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntlmssp: Option<EveNtlmssp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kerberos: Option<EveKerberos>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcerpc: Option<EveDcerpc>,
}

#[derive(Serialize)]
pub struct EveNtlmssp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
}

#[derive(Serialize)]
pub struct EveKerberos {}

/// Suricata's `krb5` record of a KDC exchange (the keys the sensor knows).
#[derive(Serialize)]
pub struct EveKrb5<'a> {
    /// "KRB_AS_REP" | "KRB_TGS_REP" | "KRB_ERROR" | the request's type when unanswered.
    pub msg_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_request: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<super::KrbErrorCode>,
    /// `name/REALM` (Suricata splits `cname` and `realm`; the sensor's record keeps Zeek's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_encryption: Option<super::KrbCipher>,
}

impl<'a> EveKrb5<'a> {
    pub fn of(k: &'a super::Kerberos) -> EveKrb5<'a> {
        use super::KrbRequestType::{As, Tgs};
        let (rep, req) = match k.request_type {
            As => ("KRB_AS_REP", "KRB_AS_REQ"),
            Tgs => ("KRB_TGS_REP", "KRB_TGS_REQ"),
        };
        let msg_type = match k.success {
            Some(true) => rep,
            Some(false) => "KRB_ERROR",
            None => req,
        };
        EveKrb5 {
            msg_type,
            failed_request: (k.success == Some(false)).then_some(req),
            error_code: k.error_msg,
            cname: k.client.as_deref(),
            sname: k.service.as_deref(),
            ticket_encryption: k.cipher,
        }
    }
}

/// One offered context and its result (Suricata: ack_result 0 acceptance, 2 provider rejection …).
#[derive(Serialize)]
pub struct EveInterface {
    pub uuid: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_result: Option<u32>,
}

#[derive(Serialize)]
pub struct EveStub {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opnum: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frag_cnt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stub_data_size: Option<u32>,
}

/// `dcerpc` (a call over TCP) and `smb.dcerpc` (over a named pipe). Suricata puts `opnum` at
/// the top for pipes and in `req` for TCP, and `rpc_version` only on TCP; the writer fills each
/// place as Suricata does.
#[derive(Serialize)]
pub struct EveDcerpc {
    pub request: &'static str,
    pub response: &'static str,
    pub call_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opnum: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<EveInterface>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub req: Option<EveStub>,
}

#[derive(Serialize)]
pub struct EveFlow {
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: String,
    pub end: String,
    pub age: u64,
    pub state: &'static str,
    pub reason: &'static str,
    pub alerted: bool,
}

#[derive(Serialize)]
pub struct EveAnomaly {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: String,
    pub layer: &'static str,
}

/// Suricata's SMB command names for a file record's action.
pub fn smb_command(version: Option<SmbVersion>, action: Option<FileAction>) -> Option<String> {
    let cmd = match action? {
        FileAction::FileOpen | FileAction::PipeOpen | FileAction::PrintOpen => match version {
            Some(SmbVersion::Smb1) => "NT_CREATE_ANDX",
            _ => "CREATE",
        },
        FileAction::FileRead | FileAction::PipeRead => "READ",
        FileAction::FileWrite | FileAction::PipeWrite => "WRITE",
        FileAction::FileClose | FileAction::PipeClose => "CLOSE",
        FileAction::FileDelete | FileAction::FileRename | FileAction::FileSetAttribute => {
            match version {
                Some(SmbVersion::Smb1) => "TRANS2",
                _ => "SET_INFO",
            }
        }
    };
    Some(smb_command_name(version, cmd))
}

pub fn smb_command_name(version: Option<SmbVersion>, cmd: &str) -> String {
    match version {
        Some(SmbVersion::Smb1) => format!("SMB1_COMMAND_{cmd}"),
        _ => format!("SMB2_COMMAND_{cmd}"),
    }
}
