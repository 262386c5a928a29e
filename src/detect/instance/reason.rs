//! The sentence that explains a technique alert.

use super::scoring::Factors;
use super::Instance;
use crate::event::alert::{Basis, Technique, Upload};
use std::net::IpAddr;

/// The sentence that explains a technique alert: who did what to whom, how it was seen, what
/// points to the tool.
pub(super) fn reason_sentence(
    inst: &Instance,
    src: IpAddr,
    dst: IpAddr,
    uploads: &[Upload],
    f: &Factors,
    tool: &str,
) -> String {
    let (upload_before, upload_after) = (f.upload_before, f.upload_after);
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
        } else if f.interpreter {
            s.push_str(&format!(" running a command interpreter ({bp})"));
        } else {
            s.push_str(&format!(" running {bp}"));
        }
    } else if let Some(cmd) = &inst.command {
        s.push_str(&format!(" running {cmd}"));
    }
    if f.random_name {
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
