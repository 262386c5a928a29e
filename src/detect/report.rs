//! What detection writes besides technique alerts' contents: exceptions applied at emission,
//! lower-severity signals for expired uploads, per-source host summaries, end of input.

use super::instance::UploadRec;
use super::matcher::{fnv, ip_bytes, Detector, SourceState, MAX_PAIR_ITEMS, MAX_SOURCES};
use super::rules::ExceptionSubject;
use crate::event::alert::{Alert, HostSummary, Severity, SignalAlert, TechniqueAlert, Upload};
use crate::time::Ts;
use std::net::IpAddr;

impl Detector {
    pub(super) fn upload_signal(
        &mut self,
        key: (IpAddr, IpAddr),
        u: UploadRec,
        user: Option<String>,
        out: &mut Vec<Alert>,
    ) {
        let lower = u.name.to_ascii_lowercase();
        let exe_name = [
            ".exe", ".dll", ".sys", ".bat", ".ps1", ".vbs", ".scr", ".msi",
        ]
        .iter()
        .any(|x| lower.ends_with(x));
        if !(u.pe || exe_name) {
            return;
        }
        let reason = format!(
            "{} wrote {} {}\\{} ({} bytes) to {} with no service or task created around it.",
            key.0,
            if u.pe {
                "executable"
            } else {
                "script/executable-named file"
            },
            u.share,
            u.name,
            u.size,
            key.1
        );
        let sig = SignalAlert {
            ts: u.ts,
            id: format!(
                "sig-{:016x}",
                fnv(&[
                    b"upload",
                    &ip_bytes(&key.0),
                    &ip_bytes(&key.1),
                    u.rel.as_bytes(),
                    &u.ts.0.to_be_bytes()
                ])
            ),
            signal: "admin-share-executable",
            attack: vec!["T1570", "T1021.002"],
            severity: if u.pe {
                Severity::Medium
            } else {
                Severity::Low
            },
            src_ip: key.0,
            dst_ip: Some(key.1),
            user,
            share: Some(u.share.clone()),
            upload: Some(Upload {
                share: u.share.clone(),
                name: u.name.clone(),
                size: u.size,
                sha256: u.sha256.clone(),
                pe: u.pe,
                referenced: false,
            }),
            service_name: None,
            targets: vec![],
            reason,
            evidence: vec![u.ev.clone()],
            suppressed_by: None,
        };
        self.emit_signal(sig, out);
    }

    pub(super) fn source(&mut self, src: IpAddr) -> Option<&mut SourceState> {
        if !self.sources.contains_key(&src) && self.sources.len() >= MAX_SOURCES {
            self.cap("MAX_SOURCES");
            return None;
        }
        Some(self.sources.entry(src).or_default())
    }

    pub(super) fn emit_technique(&mut self, mut a: TechniqueAlert, out: &mut Vec<Alert>) {
        let subject = ExceptionSubject {
            src: a.src_ip,
            dst: Some(a.dst_ip),
            user: a.user.as_deref(),
            domain: a.domain.as_deref(),
            service_name: a.service_name.as_deref(),
            tool: Some(a.tool.as_str()),
        };
        a.suppressed_by = self.rules.exception_for(&subject).map(str::to_string);
        if let Some(s) = self.source(a.src_ip) {
            touch(s, a.ts, a.ts_end);
            s.attacks += 1;
            if a.suppressed_by.is_some() {
                s.suppressed += 1;
            }
            s.targets.insert(a.dst_ip);
            s.tools.insert(a.tool.clone());
            s.techniques.insert(a.technique);
            if let Some(u) = &a.user {
                let q = match &a.domain {
                    Some(d) if !d.is_empty() => format!("{d}\\{u}"),
                    _ => u.clone(),
                };
                if s.users.len() < MAX_PAIR_ITEMS {
                    s.users.insert(q);
                }
            }
            s.changed = true;
        }
        out.push(Alert::Technique(Box::new(a)));
    }

    pub(super) fn emit_signal(&mut self, mut sig: SignalAlert, out: &mut Vec<Alert>) {
        let subject = ExceptionSubject {
            src: sig.src_ip,
            dst: sig.dst_ip,
            user: sig.user.as_deref(),
            domain: None,
            service_name: sig.service_name.as_deref(),
            tool: None,
        };
        sig.suppressed_by = self.rules.exception_for(&subject).map(str::to_string);
        if let Some(s) = self.source(sig.src_ip) {
            touch(s, sig.ts, sig.ts);
            s.signals += 1;
            s.changed = true;
        }
        out.push(Alert::Signal(sig));
    }

    /// Live mode: close instances whose window passed by `now` (packet or wall time mapped to the
    /// capture clock) and emit periodic host summaries every `summary_interval_secs`.
    pub fn tick(&mut self, now: Ts, out: &mut Vec<Alert>) {
        if now > self.now {
            self.now = now;
        }
        self.sweep(out, false);
        let interval = self
            .rules
            .settings
            .summary_interval_secs
            .saturating_mul(1_000_000_000);
        match self.next_summary {
            None => self.next_summary = Some(Ts(self.now.0.saturating_add(interval))),
            Some(t) if self.now >= t => {
                self.summaries(out, false);
                self.next_summary = Some(Ts(self.now.0.saturating_add(interval)));
            }
            _ => {}
        }
    }

    /// End of input: flush every open instance, report unclaimed uploads, emit host summaries.
    pub fn finish(&mut self, out: &mut Vec<Alert>) {
        self.sweep(out, true);
        self.summaries(out, true);
    }

    pub(super) fn summaries(&mut self, out: &mut Vec<Alert>, is_final: bool) {
        let now = self.now;
        let mut srcs: Vec<IpAddr> = self
            .sources
            .iter()
            .filter(|(_, s)| {
                (s.attacks > 0 || s.signals > 0 || s.unreadable_sessions > 0)
                    && (is_final || s.changed)
            })
            .map(|(k, _)| *k)
            .collect();
        srcs.sort();
        for src in srcs {
            let Some(s) = self.sources.get_mut(&src) else {
                continue;
            };
            s.changed = false;
            out.push(Alert::HostSummary(HostSummary {
                ts: now,
                src_ip: src,
                first_ts: s.first_ts,
                last_ts: s.last_ts,
                attacks: s.attacks,
                suppressed: s.suppressed,
                signals: s.signals,
                unreadable_sessions: s.unreadable_sessions,
                targets: s.targets.iter().copied().collect(),
                tools: s.tools.iter().cloned().collect(),
                techniques: s.techniques.iter().copied().collect(),
                users: s.users.iter().cloned().collect(),
                is_final,
            }));
        }
    }
}

pub(super) fn touch(s: &mut SourceState, a: Ts, b: Ts) {
    if s.first_ts == Ts(0) || a < s.first_ts {
        s.first_ts = a;
    }
    if b > s.last_ts {
        s.last_ts = b;
    }
}
