//! What an svcctl / task-scheduler call means for detection, independent of state.

use crate::dcerpc::conversation::{STATUS_NO_RESPONSE, STATUS_OK};
use crate::event::alert::Technique;
use crate::event::{DceArgs, DceRpc};

pub const SVCCTL_UUID: &str = "367abb81-9844-35f1-ad32-98f038001003";
pub const TASKSCHED_UUID: &str = "86d35949-83c9-4044-b424-db363231fd0c";
pub const ATSVC_UUID: &str = "1ff70682-0a51-30e8-076d-740be8cee98b";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Iface {
    Svcctl,
    TaskSched,
    Atsvc,
    Other,
}

pub(super) fn iface_of(endpoint: &str, uuid: Option<&str>) -> Iface {
    let u = uuid.unwrap_or("");
    if endpoint.eq_ignore_ascii_case("svcctl") || u.eq_ignore_ascii_case(SVCCTL_UUID) {
        Iface::Svcctl
    } else if endpoint.eq_ignore_ascii_case("ITaskSchedulerService")
        || u.eq_ignore_ascii_case(TASKSCHED_UUID)
    {
        Iface::TaskSched
    } else if endpoint.eq_ignore_ascii_case("atsvc") || u.eq_ignore_ascii_case(ATSVC_UUID) {
        Iface::Atsvc
    } else {
        Iface::Other
    }
}

/// What an svcctl / task call means for detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallRole {
    Create(Technique),
    OpenScm,
    OpenService,
    Start,
    Control,
    Delete,
    TaskRun,
    TaskDelete,
    Other,
}

pub(super) fn role(iface: Iface, opnum: u16) -> CallRole {
    match (iface, opnum) {
        (Iface::Svcctl, 12 | 24 | 44 | 45 | 60) => CallRole::Create(Technique::ServiceCreate),
        (Iface::Svcctl, 11 | 23) => CallRole::Create(Technique::ServiceModify),
        (Iface::Svcctl, 15 | 27 | 64) => CallRole::OpenScm,
        (Iface::Svcctl, 16 | 28) => CallRole::OpenService,
        (Iface::Svcctl, 19 | 31) => CallRole::Start,
        (Iface::Svcctl, 1) => CallRole::Control,
        (Iface::Svcctl, 2) => CallRole::Delete,
        (Iface::TaskSched, 1) => CallRole::Create(Technique::TaskCreate),
        (Iface::TaskSched, 12) => CallRole::TaskRun,
        (Iface::TaskSched, 13) => CallRole::TaskDelete,
        (Iface::Atsvc, 0) => CallRole::Create(Technique::TaskCreate),
        (Iface::Atsvc, 1) => CallRole::TaskDelete,
        _ => CallRole::Other,
    }
}

pub(super) fn clean_pipe(name: &str) -> String {
    let n = name.trim_start_matches('\\');
    let n = if n.len() > 5 && n.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("pipe\\")) {
        &n[5..]
    } else {
        n
    };
    n.to_string()
}

/// How a call ended, as far as the capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CallOutcome {
    Ok,
    /// A fault, a rejection or a non-zero return code in the response.
    Failed,
    /// No response seen (a one-sided capture, lost packets): neither success nor failure.
    NoResponse,
}

pub(super) fn call_status(e: &DceRpc) -> (String, CallOutcome) {
    if e.status == STATUS_NO_RESPONSE {
        return (e.status.clone(), CallOutcome::NoResponse);
    }
    if e.status != STATUS_OK {
        return (e.status.clone(), CallOutcome::Failed);
    }
    match e.args.return_code {
        Some(rc) if rc != 0 => (format!("0x{rc:08x}"), CallOutcome::Failed),
        _ => (STATUS_OK.into(), CallOutcome::Ok),
    }
}

/// svcctl SERVICE_NO_CHANGE: a ChangeServiceConfig field left as it is.
const SERVICE_NO_CHANGE: u32 = 0xffff_ffff;

/// Whether a ChangeServiceConfigW/A points the service at a (new) binary: a non-empty binary
/// path, or a stub that could not be read (encrypted, start missed), which may hold one.
pub(super) fn changes_binary(d: &DceRpc) -> bool {
    let a = &d.args;
    let readable = !d.stub_encrypted && a.service_type.is_some() && a.start_type.is_some();
    !readable
        || a.binary_path
            .as_deref()
            .is_some_and(|p| !p.trim().is_empty())
}

/// The fields a ChangeServiceConfig sets (MS-SCMR 2.2.15 / 2.2.47 / 2.2.49 values by name).
pub(super) fn config_changes(a: &DceArgs) -> Vec<String> {
    let mut v = vec![];
    if let Some(t) = a.service_type.filter(|&t| t != SERVICE_NO_CHANGE) {
        v.push(format!("service_type=0x{t:x}"));
    }
    if let Some(t) = a.start_type.filter(|&t| t != SERVICE_NO_CHANGE) {
        let name = match t {
            0 => "boot",
            1 => "system",
            2 => "auto",
            3 => "demand",
            4 => "disabled",
            _ => "other",
        };
        v.push(format!("start_type={name}"));
    }
    if let Some(e) = a.error_control.filter(|&e| e != SERVICE_NO_CHANGE) {
        v.push(format!("error_control={e}"));
    }
    if let Some(n) = &a.start_name {
        v.push(format!("start_name={n}"));
    }
    if let Some(n) = &a.display_name {
        v.push(format!("display_name={n}"));
    }
    v
}
