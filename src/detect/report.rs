//! The signals detection writes besides technique alerts, built from what the state decided:
//! executables on admin shares nobody used, admin-share sweeps, control of existing services.
//! Pure constructors: exceptions, ids and host-summary counting are applied at emission
//! (`Detector::emit_signal`).

use super::source::Sweep;
use super::upload::UploadRec;
use crate::event::alert::{Evidence, Severity, SignalAlert};
use crate::event::ConnFields;
use crate::time::Ts;
use std::net::IpAddr;

/// What a `service-control` signal says was done to an existing service.
pub(super) enum ServiceControl {
    Started,
    Controlled,
    /// A configuration change without a new binary: the fields it set.
    Reconfigured(Vec<String>),
}

/// A signal with the fields every kind sets; the rest empty.
fn signal(
    ts: Ts,
    signal: &'static str,
    attack: Vec<&'static str>,
    severity: Severity,
    src_ip: IpAddr,
    reason: String,
    evidence: Evidence,
) -> SignalAlert {
    SignalAlert {
        ts,
        // From content, at emission (SignalAlert::content_id).
        id: String::new(),
        signal,
        attack,
        severity,
        src_ip,
        dst_ip: None,
        user: None,
        share: None,
        upload: None,
        service_name: None,
        changes: vec![],
        targets: vec![],
        reason,
        evidence: vec![evidence],
        suppressed_by: None,
    }
}

/// An upload no service or task took, once it leaves the window: a signal when it is (or is
/// named like) an executable.
pub(super) fn upload_signal(
    src: IpAddr,
    dst: IpAddr,
    u: &UploadRec,
    user: Option<String>,
) -> Option<SignalAlert> {
    let lower = u.name().to_ascii_lowercase();
    let exe_name = [
        ".exe", ".dll", ".sys", ".bat", ".ps1", ".vbs", ".scr", ".msi",
    ]
    .iter()
    .any(|x| lower.ends_with(x));
    if !(u.pe() || exe_name) {
        return None;
    }
    let upload = u.to_upload(false);
    let reason = format!(
        "{} wrote {} {}\\{} ({} bytes) to {} with no service or task created around it.",
        src,
        if u.pe() {
            "executable"
        } else {
            "script/executable-named file"
        },
        upload.share,
        upload.name,
        upload.size,
        dst
    );
    let severity = if u.pe() {
        Severity::Medium
    } else {
        Severity::Low
    };
    Some(SignalAlert {
        dst_ip: Some(dst),
        user,
        share: Some(upload.share.clone()),
        upload: Some(upload),
        ..signal(
            u.ts(),
            "admin-share-executable",
            vec!["T1570", "T1021.002"],
            severity,
            src,
            reason,
            u.evidence().clone(),
        )
    })
}

/// A `service-control` signal: an existing service started, controlled or reconfigured without a
/// new binary.
pub(super) fn service_control_signal(
    c: &ConnFields,
    user: Option<String>,
    service_name: Option<String>,
    what: ServiceControl,
    e: Evidence,
) -> SignalAlert {
    let name = service_name.as_deref().unwrap_or("<unknown>");
    let (reason, changes) = match what {
        ServiceControl::Started | ServiceControl::Controlled => {
            let did = if matches!(what, ServiceControl::Started) {
                "started"
            } else {
                "sent a control to"
            };
            let reason = format!(
                "{} {did} existing service {name} on {} (no service was created).",
                c.orig_h, c.resp_h
            );
            (reason, vec![])
        }
        ServiceControl::Reconfigured(changes) => {
            let reason = format!(
                "{} changed the configuration of existing service {name} on {} ({}) without a new binary path.",
                c.orig_h,
                c.resp_h,
                if changes.is_empty() {
                    "nothing".to_string()
                } else {
                    changes.join(", ")
                }
            );
            (reason, changes)
        }
    };
    SignalAlert {
        dst_ip: Some(c.resp_h),
        user,
        service_name,
        changes,
        ..signal(
            c.ts,
            "service-control",
            vec!["T1569.002"],
            Severity::Low,
            c.orig_h,
            reason,
            e,
        )
    }
}

/// An admin-share sweep from the source of `c` (the connect that completed it).
pub(super) fn sweep_signal(c: &ConnFields, sweep: Sweep, window_secs: u64) -> SignalAlert {
    let reason = format!(
        "{} connected to admin shares on {} hosts within {} s.",
        c.orig_h,
        sweep.targets.len(),
        window_secs
    );
    SignalAlert {
        targets: sweep.targets,
        ..signal(
            sweep.first,
            "admin-share-sweep",
            vec!["T1021.002"],
            Severity::Medium,
            c.orig_h,
            reason,
            Evidence::new(c, c.ts, "smb_mapping", "admin-share connect".into()),
        )
    }
}
