//! Scoring a closed attack instance. [`score`] is a pure function of the instance, what its pair
//! knew ([`PairView`]) and the rules: what the binary path refers to, attribution, confidence and
//! severity from the evidence ([`Factors`] → [`confidence`]), ATT&CK ids, the reason sentence.
//! `instance::alert` assembles the alert from it.

use super::reason::reason_sentence;
use super::Instance;
use crate::dcerpc::Transport;
use crate::detect::attribution::{attribute, AttribInput, Attribution};
use crate::detect::calls::Iface;
use crate::detect::names::{looks_random, runs_interpreter};
use crate::detect::pair::PairView;
use crate::detect::rules::Rules;
use crate::event::alert::{Basis, Severity, Technique, Upload};

/// The evidence confidence is weighed from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Factors {
    pub(super) basis: Basis,
    /// A file the binary path names was written before the create / after it.
    pub(super) upload_before: bool,
    pub(super) upload_after: bool,
    /// Some upload of the instance is a PE (named by the path or not).
    pub(super) any_pe: bool,
    pub(super) interpreter: bool,
    pub(super) random_name: bool,
    pub(super) started: bool,
    pub(super) deleted: bool,
    pub(super) attributed: bool,
    pub(super) folded: bool,
    /// Inferred from sizes only, and the inference rated itself medium.
    pub(super) inferred_medium: bool,
}

/// Everything scoring decided about an instance.
#[derive(Clone, Debug)]
pub(super) struct Scored {
    pub(super) uploads: Vec<Upload>,
    pub(super) attribution: Attribution,
    pub(super) confidence: f64,
    pub(super) severity: Severity,
    pub(super) attack: Vec<&'static str>,
    pub(super) reason: String,
}

/// Confidence from the evidence, rounded to hundredths, at most 0.99. Sizes alone (inferred)
/// never make a high-confidence alert.
pub(super) fn confidence(f: &Factors) -> f64 {
    let mut c: f64 = match f.basis {
        Basis::Cleartext => 0.55,
        Basis::StubEncrypted => 0.40,
        Basis::Inferred | Basis::Responses => {
            return if f.inferred_medium { 0.45 } else { 0.3 };
        }
    };
    if f.upload_before {
        c += 0.30;
    } else if f.upload_after {
        c += 0.15;
    } else if f.any_pe {
        c += 0.10;
    }
    for (on, w) in [
        (f.interpreter, 0.20),
        (f.random_name, 0.10),
        (f.started, 0.10),
        (f.deleted, 0.05),
        (f.attributed, 0.10),
        (f.folded, 0.05),
    ] {
        if on {
            c += w;
        }
    }
    (c.min(0.99) * 100.0).round() / 100.0
}

/// High from 0.8; medium from 0.5, and always for stub-encrypted calls and medium inferences.
pub(super) fn severity(confidence: f64, f: &Factors) -> Severity {
    if confidence >= 0.8 {
        Severity::High
    } else if confidence >= 0.5 || f.basis == Basis::StubEncrypted || f.inferred_medium {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// ATT&CK ids: the technique's, remote services over SMB, lateral tool transfer.
fn attack_ids(inst: &Instance, over_smb: bool, transfer: bool) -> Vec<&'static str> {
    let mut attack: Vec<&'static str> = match inst.technique {
        Technique::ServiceCreate | Technique::ServiceModify => vec!["T1569.002", "T1543.003"],
        Technique::TaskCreate if inst.iface == Iface::Atsvc => vec!["T1053.002"],
        Technique::TaskCreate => vec!["T1053.005"],
    };
    if over_smb {
        attack.push("T1021.002");
    }
    if transfer {
        attack.push("T1570");
    }
    attack
}

/// Scores a closed instance: pure (no detector state).
pub(super) fn score(inst: &Instance, pair: &PairView<'_>, rules: &Rules) -> Scored {
    let paths: Vec<&str> = inst.paths().collect();
    let mut uploads: Vec<Upload> = vec![];
    let (mut upload_before, mut upload_after, mut any_pe) = (false, false, false);
    for t in &inst.uploads {
        let named = inst.names_upload(&t.upload);
        upload_after |= named && t.after_create;
        upload_before |= named && !t.after_create;
        any_pe |= t.upload.pe();
        uploads.push(t.upload.to_upload(named));
    }
    let interpreter = paths.iter().any(|p| runs_interpreter(p));
    let lengths = &rules.settings.random_name_lengths;
    let random_name = inst
        .service_name
        .as_deref()
        .is_some_and(|n| looks_random(n, lengths))
        || inst
            .task_path
            .as_deref()
            .is_some_and(|t| looks_random(t.trim_start_matches('\\'), lengths));

    let input = AttribInput {
        technique: Some(inst.technique),
        service_names: inst.service_names(),
        display_names: inst.display_name.as_deref().into_iter().collect(),
        binary_paths: paths.clone(),
        uploads: inst.uploads.iter().map(|t| t.upload.name()).collect(),
        pipes: inst.pipes.iter().map(|s| s.as_str()).collect(),
        machine_names: pair.machine_name.into_iter().collect(),
        task_paths: inst.task_path.as_deref().into_iter().collect(),
        commands: inst.command.as_deref().into_iter().collect(),
        calls: pair.calls.clone(),
        transport: Some(inst.transport),
        interface: Some(match inst.iface {
            Iface::Svcctl => "svcctl",
            Iface::Atsvc => "atsvc",
            Iface::TaskSched => "ITaskSchedulerService",
            Iface::Other => "other",
        }),
        opnums: inst.opnums.clone(),
        binary_is_upload: upload_before || upload_after,
        smb: pair.smb_seen,
        stub_encrypted: inst.basis == Basis::StubEncrypted,
        max_bind_contexts: pair.max_bind_contexts,
        count: inst.count,
    };
    let mut attribution = attribute(rules, &input);
    if attribution.tool == "unknown" {
        if let Some(h) = &inst.tool_hint {
            attribution = Attribution {
                tool: h.clone(),
                why: Some("hint from size inference".into()),
            };
        }
    }
    let factors = Factors {
        basis: inst.basis,
        upload_before,
        upload_after,
        any_pe,
        interpreter,
        random_name,
        started: inst.started,
        deleted: inst.deleted,
        attributed: attribution.tool != "unknown",
        folded: inst.count > 1,
        inferred_medium: inst.inferred_medium,
    };
    let confidence = confidence(&factors);
    let severity = severity(confidence, &factors);
    let over_smb =
        inst.transport == Transport::SmbPipe || !inst.shares.is_empty() || !uploads.is_empty();
    let attack = attack_ids(
        inst,
        over_smb,
        !uploads.is_empty() || inst.inferred_upload.is_some(),
    );
    let mut reason = reason_sentence(
        inst,
        pair.src,
        pair.dst,
        &uploads,
        &factors,
        &attribution.tool,
    );
    if inst.decrypted {
        reason.push_str(" Seen inside SMB3 encryption, decrypted with the supplied keys.");
    }
    if inst.rpc_decrypted {
        reason.push_str(
            " DCE-RPC stubs sealed with Kerberos (packet privacy), decrypted with the supplied keytab.",
        );
    }
    Scored {
        uploads,
        attribution,
        confidence,
        severity,
        attack,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::calls::CallOutcome;
    use crate::detect::instance::{CreateCall, How};
    use crate::detect::upload::{UploadRec, Written};
    use crate::event::alert::{Evidence, FoldedCall};
    use crate::event::{ConnFields, DceArgs, Share};
    use crate::time::Ts;

    /// A cleartext svcctl create over TCP at t=100 s of `service` running `path`.
    fn created(service: &str, path: &str) -> Instance {
        let args = DceArgs {
            service_name: Some(service.into()),
            binary_path: Some(path.into()),
            ..DceArgs::default()
        };
        Instance::open(
            1,
            CreateCall {
                how: How {
                    basis: Basis::Cleartext,
                    transport: Transport::Tcp,
                    opnum: Some(12),
                    args: &args,
                    rpc_decrypted: false,
                },
                iface: Iface::Svcctl,
                technique: Technique::ServiceCreate,
                service_name: Some(service.into()),
                call: FoldedCall {
                    ts: Ts::from_secs(100),
                    service_name: Some(service.into()),
                    binary_path: Some(path.into()),
                    task_path: None,
                    status: "ok".into(),
                },
                outcome: CallOutcome::Ok,
                ts: Ts::from_secs(100),
                decrypted: false,
            },
        )
    }

    fn upload(secs: u64, share: &str, name: &str, pe: bool) -> UploadRec {
        UploadRec::new(
            1,
            Written {
                ts: Ts::from_secs(secs),
                share: Share::Known(share.into()),
                name,
                bytes: 1000,
                pe,
                sha256: None,
                ev: Evidence::new(
                    &ConnFields::default(),
                    Ts::from_secs(secs),
                    "smb_files",
                    String::new(),
                ),
            },
        )
    }

    fn view() -> PairView<'static> {
        PairView::unknown("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
    }

    /// What `score` derives from an instance: each factor, the ATT&CK ids, and the confidence
    /// the weights give for them.
    #[test]
    fn score_derives_every_factor_from_the_instance() {
        struct Case {
            what: &'static str,
            inst: Instance,
            want: Factors,
            attack: &'static [&'static str],
        }
        let base = |f: Factors| Factors {
            basis: Basis::Cleartext,
            ..f
        };
        let mut before = created("updater", "%SystemRoot%\\x.exe");
        before.take_upload(&upload(90, "ADMIN$", "x.exe", true));
        let mut after = created("updater", "%SystemRoot%\\x.exe");
        after.take_upload(&upload(110, "ADMIN$", "x.exe", true));
        let mut other_pe = created("updater", "C:\\tools\\y.exe");
        other_pe.take_upload(&upload(90, "ADMIN$", "x.exe", true));
        let mut started = created("updater", "C:\\tools\\y.exe");
        started.follow_up(
            crate::detect::instance::FollowUp::Started,
            Ts::from_secs(101),
            Evidence::new(
                &ConnFields::default(),
                Ts::from_secs(101),
                "dce_rpc",
                String::new(),
            ),
        );
        let cases = vec![
            Case {
                what: "plain create over TCP",
                inst: created("updater", "C:\\tools\\y.exe"),
                want: base(clear()),
                attack: &["T1569.002", "T1543.003"],
            },
            Case {
                what: "command interpreter",
                inst: created("updater", "%COMSPEC% /Q /c echo"),
                want: Factors {
                    interpreter: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003"],
            },
            Case {
                what: "random-looking name",
                inst: created("nUwjQkLm", "C:\\tools\\y.exe"),
                want: Factors {
                    random_name: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003"],
            },
            Case {
                what: "the binary uploaded before",
                inst: before,
                want: Factors {
                    upload_before: true,
                    any_pe: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003", "T1021.002", "T1570"],
            },
            Case {
                what: "the binary uploaded after",
                inst: after,
                want: Factors {
                    upload_after: true,
                    any_pe: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003", "T1021.002", "T1570"],
            },
            Case {
                what: "another PE uploaded",
                inst: other_pe,
                want: Factors {
                    any_pe: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003", "T1021.002", "T1570"],
            },
            Case {
                what: "started",
                inst: started,
                want: Factors {
                    started: true,
                    ..clear()
                },
                attack: &["T1569.002", "T1543.003"],
            },
        ];
        let rules = Rules::embedded();
        for c in cases {
            let s = score(&c.inst, &view(), &rules);
            let want = Factors {
                attributed: s.attribution.tool != "unknown",
                ..c.want
            };
            assert_eq!(s.confidence, confidence(&want), "{}", c.what);
            assert_eq!(s.severity, severity(s.confidence, &want), "{}", c.what);
            assert_eq!(s.attack, c.attack, "{}", c.what);
            let referenced = want.upload_before || want.upload_after;
            assert!(
                s.uploads.iter().all(|u| u.referenced == referenced),
                "{}: {:?}",
                c.what,
                s.uploads
            );
        }
    }

    fn clear() -> Factors {
        Factors {
            basis: Basis::Cleartext,
            upload_before: false,
            upload_after: false,
            any_pe: false,
            interpreter: false,
            random_name: false,
            started: false,
            deleted: false,
            attributed: false,
            folded: false,
            inferred_medium: false,
        }
    }

    #[test]
    fn every_weight_of_confidence() {
        let cases: &[(&str, Factors, f64)] = &[
            ("cleartext alone", clear(), 0.55),
            (
                "stub encrypted alone",
                Factors {
                    basis: Basis::StubEncrypted,
                    ..clear()
                },
                0.40,
            ),
            (
                "upload named, before",
                Factors {
                    upload_before: true,
                    ..clear()
                },
                0.85,
            ),
            (
                "upload named, after",
                Factors {
                    upload_after: true,
                    ..clear()
                },
                0.70,
            ),
            (
                "a PE uploaded, not named",
                Factors {
                    any_pe: true,
                    ..clear()
                },
                0.65,
            ),
            (
                "before outranks after and PE",
                Factors {
                    upload_before: true,
                    upload_after: true,
                    any_pe: true,
                    ..clear()
                },
                0.85,
            ),
            (
                "after outranks PE",
                Factors {
                    upload_after: true,
                    any_pe: true,
                    ..clear()
                },
                0.70,
            ),
            (
                "interpreter",
                Factors {
                    interpreter: true,
                    ..clear()
                },
                0.75,
            ),
            (
                "random name",
                Factors {
                    random_name: true,
                    ..clear()
                },
                0.65,
            ),
            (
                "started",
                Factors {
                    started: true,
                    ..clear()
                },
                0.65,
            ),
            (
                "deleted",
                Factors {
                    deleted: true,
                    ..clear()
                },
                0.60,
            ),
            (
                "attributed",
                Factors {
                    attributed: true,
                    ..clear()
                },
                0.65,
            ),
            (
                "folded",
                Factors {
                    folded: true,
                    ..clear()
                },
                0.60,
            ),
            (
                "capped at 0.99",
                Factors {
                    upload_before: true,
                    interpreter: true,
                    random_name: true,
                    started: true,
                    ..clear()
                },
                0.99,
            ),
            (
                "inferred, low",
                Factors {
                    basis: Basis::Inferred,
                    upload_before: true,
                    ..clear()
                },
                0.3,
            ),
            (
                "inferred, medium",
                Factors {
                    basis: Basis::Inferred,
                    inferred_medium: true,
                    started: true,
                    ..clear()
                },
                0.45,
            ),
        ];
        for (what, f, want) in cases {
            assert_eq!(confidence(f), *want, "{what}");
        }
    }

    #[test]
    fn severity_thresholds() {
        let cases: &[(f64, Factors, Severity)] = &[
            (0.80, clear(), Severity::High),
            (0.79, clear(), Severity::Medium),
            (0.50, clear(), Severity::Medium),
            (0.49, clear(), Severity::Low),
            (
                0.40,
                Factors {
                    basis: Basis::StubEncrypted,
                    ..clear()
                },
                Severity::Medium,
            ),
            (
                0.45,
                Factors {
                    basis: Basis::Inferred,
                    inferred_medium: true,
                    ..clear()
                },
                Severity::Medium,
            ),
            (
                0.30,
                Factors {
                    basis: Basis::Inferred,
                    ..clear()
                },
                Severity::Low,
            ),
        ];
        for (c, f, want) in cases {
            assert_eq!(severity(*c, f), *want, "{c} {f:?}");
        }
    }
}
