//! An attack instance under construction, and the sentence that explains its alert.

use crate::dcerpc::Transport;
use crate::event::alert::{Basis, Evidence, FoldedCall, Technique, Upload};
use crate::event::{ConnFields, DceArgs, UserSource};
use crate::time::Ts;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::calls::Iface;
use super::matcher::{MAX_EVIDENCE, MAX_PAIR_ITEMS};
use super::uploads::Owner;

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

#[derive(Clone, Debug, Default)]
pub(super) struct Auth {
    pub(super) user: Option<String>,
    pub(super) domain: Option<String>,
    pub(super) workstation: Option<String>,
    /// Kerberos: "kerberos", and how the user was learned (issue 16).
    pub(super) kerberos: Option<UserSource>,
}

#[derive(Clone, Debug)]
pub(super) struct UploadRec {
    /// Unique in its pair: the same name written again later is another upload.
    pub(super) id: u64,
    pub(super) ts: Ts,
    pub(super) share: String,
    pub(super) name: String,
    pub(super) rel: String,
    pub(super) size: u64,
    pub(super) sha256: Option<String>,
    pub(super) pe: bool,
    /// The instance it belongs to (`uploads`); none yet: a signal if none ever takes it.
    pub(super) owner: Option<Owner>,
    pub(super) ev: Evidence,
}

#[derive(Clone, Debug)]
pub(super) struct Instance {
    /// Unique per detector: which instance owns an upload.
    pub(super) id: u64,
    pub(super) technique: Technique,
    pub(super) basis: Basis,
    /// Some of its calls were read by decrypting SMB3 with supplied keys.
    pub(super) decrypted: bool,
    /// Some of its calls' stubs were sealed (Kerberos packet privacy) and opened with a keytab.
    pub(super) rpc_decrypted: bool,
    pub(super) transport: Transport,
    pub(super) iface: Iface,
    /// Time of the first create/register call: uploads before it count as "upload then create".
    pub(super) create_ts: Ts,
    pub(super) first_ts: Ts,
    pub(super) last_ts: Ts,
    pub(super) service_name: Option<String>,
    pub(super) display_name: Option<String>,
    pub(super) binary_path: Option<String>,
    pub(super) start_type: Option<u32>,
    pub(super) task_path: Option<String>,
    pub(super) command: Option<String>,
    pub(super) calls: Vec<FoldedCall>,
    pub(super) opnums: Vec<u16>,
    pub(super) count: u32,
    pub(super) started: bool,
    pub(super) deleted: bool,
    pub(super) failed: bool,
    /// No response to any of its calls was seen: success or failure unknown.
    pub(super) no_response: bool,
    pub(super) handles: Vec<String>,
    /// Uploads before (false) or after (true) the first create.
    pub(super) uploads: Vec<(UploadRec, bool)>,
    pub(super) shares: BTreeSet<String>,
    pub(super) pipes: Vec<String>,
    pub(super) evidence: Vec<Evidence>,
    pub(super) evidence_dropped: bool,
    /// Inferred instances: bytes an encrypted upload carried, the inferring detector's tool hint,
    /// and whether it rated itself medium (an upload preceded the service calls).
    pub(super) inferred_upload: Option<u64>,
    pub(super) tool_hint: Option<String>,
    pub(super) inferred_medium: bool,
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

impl UploadRec {
    /// Written where the tree connect was missed.
    pub(super) fn share_unknown(&self) -> bool {
        self.share == crate::smb::tables::UNKNOWN
    }
}

impl Instance {
    /// Every binary path and task command of its calls.
    pub(super) fn paths(&self) -> impl Iterator<Item = &str> {
        self.calls
            .iter()
            .filter_map(|c| c.binary_path.as_deref())
            .chain(self.binary_path.as_deref())
            .chain(self.command.as_deref())
    }
    pub(super) fn push_evidence(&mut self, ev: Evidence) {
        if self.evidence.len() < MAX_EVIDENCE {
            self.evidence.push(ev);
        } else {
            self.evidence_dropped = true;
        }
    }
    pub(super) fn add_pipe(&mut self, p: &str) {
        if self.pipes.len() < MAX_PAIR_ITEMS
            && !self.pipes.iter().any(|x| x.eq_ignore_ascii_case(p))
        {
            self.pipes.push(p.to_string());
        }
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
}

#[allow(clippy::too_many_arguments)]
pub(super) fn reason_sentence(
    inst: &Instance,
    src: IpAddr,
    dst: IpAddr,
    uploads: &[Upload],
    upload_before: bool,
    upload_after: bool,
    interpreter: bool,
    random_name: bool,
    tool: &str,
) -> String {
    let what = match inst.technique {
        Technique::ServiceCreate => "created service",
        Technique::ServiceModify => "reconfigured service",
        Technique::TaskCreate => "registered task",
    };
    let services = inst.service_names();
    let what = match (inst.technique, services.len()) {
        (Technique::ServiceCreate, 2..) => "created services",
        (Technique::ServiceModify, 2..) => "reconfigured services",
        _ => what,
    };
    let name = if services.is_empty() {
        inst.task_path
            .as_deref()
            .map(|n| format!(" {n}"))
            .unwrap_or_default()
    } else {
        format!(" {}", services.join(", "))
    };
    let mut s = String::new();
    let referenced: Vec<&Upload> = uploads.iter().filter(|u| u.referenced).collect();
    if upload_before {
        if let Some(u) = referenced.first() {
            s.push_str(&format!(
                "{src} uploaded {}\\{} to {dst} and then {what}{name}",
                u.share, u.name
            ));
        }
    } else {
        s.push_str(&format!("{src} {what}{name} on {dst}"));
    }
    match inst.basis {
        Basis::StubEncrypted => {
            s.push_str(" (stub encrypted: seen from the interface and opnum alone)")
        }
        Basis::Inferred => {
            if let Some(n) = inst.inferred_upload {
                s.push_str(&format!(" after an encrypted upload of about {n} bytes"));
            }
            s.push_str(" (inferred from the sizes of SMB3-encrypted messages; nothing inside was readable)")
        }
        Basis::Responses => {
            if let Some(n) = inst.inferred_upload {
                s.push_str(&format!(
                    " after a new file of {n} bytes was written to a disk share (name unseen)"
                ));
            }
            s.push_str(" (inferred from server responses only: the requests were not captured, so the call is read from the layout and order of its answer)")
        }
        Basis::Cleartext => {}
    }
    if let Some(bp) = &inst.binary_path {
        if upload_before {
            s.push_str(&format!(" running it ({bp})"));
        } else if upload_after {
            s.push_str(&format!(" running {bp}, a file it uploaded right after"));
        } else if interpreter {
            s.push_str(&format!(" running a command interpreter ({bp})"));
        } else {
            s.push_str(&format!(" running {bp}"));
        }
    } else if let Some(cmd) = &inst.command {
        s.push_str(&format!(" running {cmd}"));
    }
    if random_name {
        s.push_str(", random-looking name");
    }
    if inst.count > 1 {
        s.push_str(&format!(", {} times", inst.count));
    }
    if inst.started {
        s.push_str(", and started it");
    }
    if inst.failed {
        s.push_str(", the call failed on the server but the attempt is on the wire");
    } else if inst.no_response {
        s.push_str(", no response seen (one-sided capture or lost packets)");
    }
    if tool != "unknown" {
        s.push_str(&format!(" (looks like {tool})"));
    }
    s.push('.');
    s
}
