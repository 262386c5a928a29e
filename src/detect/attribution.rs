//! Tool attribution: which signature of rules/tools.toml an attack instance matches.

use super::rules::{Rules, Signature};
use crate::dcerpc::Transport;
use crate::event::alert::Technique;

/// Everything about an attack instance a signature may look at.
#[derive(Debug, Default, Clone)]
pub struct AttribInput<'a> {
    pub technique: Option<Technique>,
    pub service_names: Vec<&'a str>,
    pub display_names: Vec<&'a str>,
    pub binary_paths: Vec<&'a str>,
    pub uploads: Vec<&'a str>,
    pub pipes: Vec<&'a str>,
    pub machine_names: Vec<&'a str>,
    pub task_paths: Vec<&'a str>,
    pub commands: Vec<&'a str>,
    /// "endpoint::operation" of calls seen from the source on the target.
    pub calls: Vec<&'a str>,
    pub transport: Option<Transport>,
    /// "svcctl" | "atsvc" | "ITaskSchedulerService"
    pub interface: Option<&'a str>,
    /// Opnums of the create / register calls folded into the instance.
    pub opnums: Vec<u16>,
    pub binary_is_upload: bool,
    pub smb: bool,
    pub stub_encrypted: bool,
    pub max_bind_contexts: u32,
    pub count: u32,
}

/// The attributed tool and the `why` of the signature that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub tool: String,
    pub why: Option<String>,
}

impl Attribution {
    pub fn unknown() -> Attribution {
        Attribution {
            tool: "unknown".into(),
            why: None,
        }
    }
}

pub fn attribute(rules: &Rules, input: &AttribInput<'_>) -> Attribution {
    for tool in &rules.tools {
        for sig in &tool.signatures {
            if signature_matches(sig, input) {
                let why = if sig.why.is_empty() {
                    None
                } else {
                    Some(sig.why.clone())
                };
                return Attribution {
                    tool: tool.name.clone(),
                    why,
                };
            }
        }
    }
    Attribution::unknown()
}

fn any(re: &Option<regex::Regex>, values: &[&str]) -> bool {
    match re {
        None => true,
        Some(r) => values.iter().any(|v| r.is_match(v)),
    }
}

pub fn signature_matches(sig: &Signature, x: &AttribInput<'_>) -> bool {
    any(&sig.service_name, &x.service_names)
        && any(&sig.display_name, &x.display_names)
        && any(&sig.binary_path, &x.binary_paths)
        && any(&sig.upload, &x.uploads)
        && any(&sig.pipe, &x.pipes)
        && any(&sig.machine_name, &x.machine_names)
        && any(&sig.task_path, &x.task_paths)
        && any(&sig.command, &x.commands)
        && any(&sig.call, &x.calls)
        && sig.technique.is_none_or(|t| Some(t) == x.technique)
        && sig.transport.is_none_or(|t| Some(t) == x.transport)
        && sig
            .interface
            .as_deref()
            .is_none_or(|i| Some(i) == x.interface)
        && sig.opnum.is_none_or(|n| x.opnums.contains(&n))
        && sig.binary_is_upload.is_none_or(|b| b == x.binary_is_upload)
        && sig.smb.is_none_or(|b| b == x.smb)
        && sig.stub_encrypted.is_none_or(|b| b == x.stub_encrypted)
        && sig
            .min_bind_contexts
            .is_none_or(|n| x.max_bind_contexts >= n)
        && sig.min_count.is_none_or(|n| x.count >= n)
}
