//! What detection writes besides technique alerts' contents: exceptions applied at emission,
//! lower-severity signals for expired uploads, per-source host summaries, end of input.

use super::instance::UploadRec;
use super::matcher::{
    Detector, SourceState, FINISH_BATCH, MAX_PAIR_ITEMS, MAX_SOURCES, MAX_SOURCE_TARGETS,
};
use super::rules::ExceptionSubject;
use crate::event::alert::{
    Alert, Evidence, HostSummary, Severity, SignalAlert, TechniqueAlert, Upload,
};
use crate::event::ConnFields;
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
            id: String::new(),
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
            changes: vec![],
            targets: vec![],
            reason,
            evidence: vec![u.ev.clone()],
            suppressed_by: None,
        };
        self.emit_signal(sig, out);
    }

    /// A source's live state: found, brought back from `retired`, or new.
    pub(super) fn source(&mut self, src: IpAddr) -> Option<&mut SourceState> {
        if !self.sources.contains_key(&src) {
            if self.sources.len() >= MAX_SOURCES {
                self.cap("MAX_SOURCES");
                return None;
            }
            let back = self.retired.take(&src).unwrap_or_default();
            self.sources.insert(src, back);
        }
        let now = self.now;
        let s = self.sources.get_mut(&src)?;
        s.seen = s.seen.max(now);
        Some(s)
    }

    /// Sources quiet for longer than both windows leave the live table: ones with something to
    /// summarize are packed into `retired` (or, when that is full, summarized now), the rest are
    /// dropped. Their sweep history is older than the sweep window by then, so nothing a later
    /// event would consult is lost. With periodic summaries (live), a source waits for its
    /// pending periodic summary first.
    pub(super) fn retire_sources(&mut self, out: &mut Vec<Alert>) {
        let now = self.now;
        let sweep_ns = self
            .rules
            .settings
            .sweep_window_secs
            .saturating_mul(1_000_000_000);
        let quiet = self.window_ns.max(sweep_ns);
        let periodic = self.next_summary.is_some();
        let mut going: Vec<IpAddr> = self
            .sources
            .iter()
            .filter(|(_, s)| now.0 > s.seen.0.saturating_add(quiet) && !(periodic && s.changed))
            .map(|(k, _)| *k)
            .collect();
        going.sort();
        for src in going {
            let Some(s) = self.sources.remove(&src) else {
                continue;
            };
            if !worth_summary(&s) {
                continue;
            }
            if self.retired.is_full() {
                self.cap("MAX_RETIRED_SOURCES");
                out.push(Alert::HostSummary(host_summary(src, &s, now, true)));
            } else {
                self.retired.put(src, &s);
            }
        }
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
        a.id = a.content_id();
        let mut targets_full = false;
        if let Some(s) = self.source(a.src_ip) {
            touch(s, a.ts, a.ts_end);
            s.attacks += 1;
            if a.suppressed_by.is_some() {
                s.suppressed += 1;
            }
            if s.targets.len() < MAX_SOURCE_TARGETS || s.targets.contains(&a.dst_ip) {
                s.targets.insert(a.dst_ip);
            } else {
                targets_full = true;
            }
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
        if targets_full {
            self.cap("MAX_SOURCE_TARGETS");
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
        sig.id = sig.content_id();
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
        self.finish_with(out, &mut |_| {});
    }

    /// [`Self::finish`], handing `out` to `flush` every few host summaries (which should drain
    /// it), so the end of a run with many attacking hosts does not hold every summary at once.
    pub fn finish_with(&mut self, out: &mut Vec<Alert>, flush: &mut dyn FnMut(&mut Vec<Alert>)) {
        self.sweep(out, true);
        flush(out);
        self.summaries_with(out, true, flush);
    }

    pub(super) fn summaries(&mut self, out: &mut Vec<Alert>, is_final: bool) {
        self.summaries_with(out, is_final, &mut |_| {});
    }

    /// Host summaries in address order: live sources (all at the end, changed ones otherwise) and,
    /// at the end, retired ones.
    fn summaries_with(
        &mut self,
        out: &mut Vec<Alert>,
        is_final: bool,
        flush: &mut dyn FnMut(&mut Vec<Alert>),
    ) {
        let now = self.now;
        let mut srcs: Vec<IpAddr> = self
            .sources
            .iter()
            .filter(|(_, s)| worth_summary(s) && (is_final || s.changed))
            .map(|(k, _)| *k)
            .collect();
        if is_final {
            srcs.extend(self.retired.keys().copied());
        }
        srcs.sort();
        for src in srcs {
            let summary = if let Some(s) = self.sources.get_mut(&src) {
                s.changed = false;
                host_summary(src, s, now, is_final)
            } else if let Some(s) = self.retired.get(&src) {
                host_summary(src, &s, now, is_final)
            } else {
                continue;
            };
            out.push(Alert::HostSummary(summary));
            if out.len() >= FINISH_BATCH {
                flush(out);
            }
        }
        flush(out);
    }
}

/// A `service-control` signal: an existing service started, controlled or reconfigured without a
/// new binary (`changes`: the fields a configuration change set).
pub(super) fn service_control_signal(
    c: &ConnFields,
    user: Option<String>,
    service_name: Option<String>,
    reason: String,
    e: Evidence,
    changes: Vec<String>,
) -> SignalAlert {
    SignalAlert {
        ts: c.ts,
        // From content, at emission (SignalAlert::content_id).
        id: String::new(),
        signal: "service-control",
        attack: vec!["T1569.002"],
        severity: Severity::Low,
        src_ip: c.orig_h,
        dst_ip: Some(c.resp_h),
        user,
        share: None,
        upload: None,
        service_name,
        changes,
        targets: vec![],
        reason,
        evidence: vec![e],
        suppressed_by: None,
    }
}

/// Whether a source has anything for a host summary.
fn worth_summary(s: &SourceState) -> bool {
    s.attacks > 0 || s.signals > 0 || s.unreadable_sessions > 0
}

fn host_summary(src: IpAddr, s: &SourceState, now: Ts, is_final: bool) -> HostSummary {
    HostSummary {
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
