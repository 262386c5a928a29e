//! Turning a closed attack instance into its technique alert: what the binary path refers to,
//! attribution, confidence and severity from the evidence, ATT&CK ids, the reason sentence.

use super::attribution::{attribute, AttribInput};
use super::calls::Iface;
use super::instance::{reason_sentence, Instance, UploadRec};
use super::matcher::Detector;
use super::names::{
    basename_lower, executable_part, looks_random, runs_interpreter, share_relative,
};
use crate::event::alert::{Basis, Severity, Technique, TechniqueAlert, Upload};
use crate::time::Ts;
use std::net::IpAddr;

impl Detector {
    pub(super) fn build_alert(&mut self, key: (IpAddr, IpAddr), inst: Instance) -> TechniqueAlert {
        let (src, dst) = key;
        let p = self.pairs.get(&key);
        let auth = p.and_then(|p| p.auth.clone()).unwrap_or_default();
        let machine = p.and_then(|p| p.machine_name.clone());
        let smb_seen = p.is_some_and(|p| p.smb_seen);
        let from = Ts(inst.first_ts.0.saturating_sub(self.window_ns));
        let calls: Vec<String> = p
            .map(|p| {
                p.calls
                    .iter()
                    .filter(|x| x.1 >= from)
                    .map(|x| x.0.clone())
                    .collect()
            })
            .unwrap_or_default();
        let bind_ctx = p.map_or(0, |p| {
            if p.max_bind_contexts.1 >= from {
                p.max_bind_contexts.0
            } else {
                0
            }
        });

        // Does a binary path (or task command) refer to a file this source just wrote?
        let paths: Vec<&str> = inst
            .calls
            .iter()
            .filter_map(|c| c.binary_path.as_deref())
            .chain(inst.binary_path.as_deref())
            .chain(inst.command.as_deref())
            .collect();
        let refers = |u: &UploadRec| {
            paths.iter().any(|bp| {
                let by_path = share_relative(bp).is_some_and(|r| r == u.rel);
                let by_name = u.share == "<unknown>"
                    && basename_lower(executable_part(bp)) == basename_lower(&u.name);
                by_path || by_name
            })
        };
        let mut uploads: Vec<Upload> = vec![];
        let mut upload_before = false;
        let mut upload_after = false;
        let mut any_pe = false;
        for (u, after) in &inst.uploads {
            let r = refers(u);
            if r {
                if *after {
                    upload_after = true;
                } else {
                    upload_before = true;
                }
            }
            any_pe |= u.pe;
            uploads.push(Upload {
                share: u.share.clone(),
                name: u.name.clone(),
                size: u.size,
                sha256: u.sha256.clone(),
                pe: u.pe,
                referenced: r,
            });
        }
        let binary_is_upload = upload_before || upload_after;
        let interpreter = paths.iter().any(|p| runs_interpreter(p));
        let lengths = self.rules.settings.random_name_lengths.clone();
        let random_name = inst
            .service_name
            .as_deref()
            .is_some_and(|n| looks_random(n, &lengths))
            || inst
                .task_path
                .as_deref()
                .is_some_and(|t| looks_random(t.trim_start_matches('\\'), &lengths));

        let input = AttribInput {
            technique: Some(inst.technique),
            service_names: inst
                .calls
                .iter()
                .filter_map(|c| c.service_name.as_deref())
                .chain(inst.service_name.as_deref())
                .collect(),
            display_names: inst.display_name.as_deref().into_iter().collect(),
            binary_paths: paths.clone(),
            uploads: inst.uploads.iter().map(|(u, _)| u.name.as_str()).collect(),
            pipes: inst.pipes.iter().map(|s| s.as_str()).collect(),
            machine_names: machine.as_deref().into_iter().collect(),
            task_paths: inst.task_path.as_deref().into_iter().collect(),
            commands: inst.command.as_deref().into_iter().collect(),
            calls: calls.iter().map(|s| s.as_str()).collect(),
            transport: Some(inst.transport),
            interface: Some(match inst.iface {
                Iface::Svcctl => "svcctl",
                Iface::Atsvc => "atsvc",
                Iface::TaskSched => "ITaskSchedulerService",
                Iface::Other => "other",
            }),
            opnums: inst.opnums.clone(),
            binary_is_upload,
            smb: smb_seen,
            stub_encrypted: inst.basis == Basis::StubEncrypted,
            max_bind_contexts: bind_ctx,
            count: inst.count,
        };
        let mut attrib = attribute(&self.rules, &input);
        if attrib.tool == "unknown" {
            if let Some(h) = &inst.tool_hint {
                attrib = super::attribution::Attribution {
                    tool: h.clone(),
                    why: Some("hint from size inference".into()),
                };
            }
        }

        let mut conf: f64 = match inst.basis {
            Basis::Cleartext => 0.55,
            Basis::StubEncrypted => 0.40,
            Basis::Inferred => 0.25,
        };
        if upload_before {
            conf += 0.30;
        } else if upload_after {
            conf += 0.15;
        } else if any_pe {
            conf += 0.10;
        }
        if interpreter {
            conf += 0.20;
        }
        if random_name {
            conf += 0.10;
        }
        if inst.started {
            conf += 0.10;
        }
        if inst.deleted {
            conf += 0.05;
        }
        if attrib.tool != "unknown" {
            conf += 0.10;
        }
        if inst.count > 1 {
            conf += 0.05;
        }
        if inst.basis == Basis::Inferred {
            // Sizes alone never make a high-confidence alert.
            conf = if inst.inferred_medium { 0.45 } else { 0.3 };
        }
        let conf = (conf.min(0.99) * 100.0).round() / 100.0;
        let severity = if conf >= 0.8 {
            Severity::High
        } else if conf >= 0.5 || inst.basis == Basis::StubEncrypted || inst.inferred_medium {
            Severity::Medium
        } else {
            Severity::Low
        };

        let over_smb =
            inst.transport == "smb_pipe" || !inst.shares.is_empty() || !uploads.is_empty();
        let mut attack: Vec<&'static str> = vec![];
        match inst.technique {
            Technique::ServiceCreate | Technique::ServiceModify => {
                attack.push("T1569.002");
                attack.push("T1543.003");
            }
            Technique::TaskCreate => attack.push(if inst.iface == Iface::Atsvc {
                "T1053.002"
            } else {
                "T1053.005"
            }),
        }
        if over_smb {
            attack.push("T1021.002");
        }
        if !uploads.is_empty() || inst.inferred_upload.is_some() {
            attack.push("T1570");
        }

        let mut reason = reason_sentence(
            &inst,
            src,
            dst,
            &uploads,
            upload_before,
            upload_after,
            interpreter,
            random_name,
            &attrib.tool,
        );
        if inst.decrypted {
            reason.push_str(" Seen inside SMB3 encryption, decrypted with the supplied keys.");
        }
        let mut evidence = inst.evidence.clone();
        evidence.sort_by_key(|e| e.ts);
        if inst.evidence_dropped {
            self.cap("MAX_EVIDENCE");
        }
        TechniqueAlert {
            ts: inst.first_ts,
            ts_end: inst.last_ts,
            // From content, at emission (TechniqueAlert::content_id).
            id: String::new(),
            technique: inst.technique,
            attack,
            severity,
            confidence: conf,
            basis: inst.basis,
            decrypted: inst.decrypted,
            src_ip: src,
            dst_ip: dst,
            user: auth.user,
            domain: auth.domain,
            workstation: auth.workstation,
            share: if inst.shares.is_empty() {
                None
            } else {
                Some(inst.shares.iter().cloned().collect::<Vec<_>>().join(","))
            },
            uploads,
            service_name: inst.service_name.clone(),
            display_name: inst.display_name.clone(),
            binary_path: inst.binary_path.clone(),
            start_type: inst.start_type,
            task_path: inst.task_path.clone(),
            command: inst.command.clone(),
            pipes: inst.pipes.clone(),
            tool: attrib.tool,
            tool_reason: attrib.why,
            count: inst.count,
            calls: inst.calls.clone(),
            started: inst.started,
            deleted: inst.deleted,
            failed: inst.failed,
            reason,
            evidence,
            suppressed_by: None,
        }
    }
}
