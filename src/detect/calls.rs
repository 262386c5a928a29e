//! What an svcctl / task-scheduler call means for detection, independent of state.

use crate::event::alert::Technique;
use crate::dcerpc::conversation::{STATUS_NO_RESPONSE, STATUS_OK};
use crate::event::DceRpc;

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
