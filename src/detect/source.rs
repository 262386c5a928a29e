//! Per-source state: what one host did across all its targets, for the admin-share sweep rule and
//! its host summary. The detector feeds it the alerts it emits; it owns the counting.

mod retired;

use retired::Retired;
pub use retired::MAX_RETIRED_SOURCES;

use super::matcher::MAX_PAIR_ITEMS;
use crate::event::alert::{HostSummary, Technique, TechniqueAlert};
use crate::time::Ts;
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Source hosts tracked (for sweeps and host summaries).
pub const MAX_SOURCES: usize = 65_536;
/// Targets listed in one source's host summary; further targets still count as attacks.
pub const MAX_SOURCE_TARGETS: usize = 1024;

/// Every source: live ones, and quiet ones packed until the end-of-run host summaries.
#[derive(Default)]
pub(super) struct Sources {
    /// Keyed by addresses the wire chooses: a seeded hash (`wire::maps::KeyedMap`), not FxHash.
    live: KeyedMap<IpAddr, SourceState>,
    retired: Retired,
}

impl Sources {
    pub(super) fn live_len(&self) -> usize {
        self.live.len()
    }

    pub(super) fn retired_len(&self) -> usize {
        self.retired.len()
    }

    /// A source's live state at packet time `now`: found, brought back from `retired`, or new;
    /// `None` when `MAX_SOURCES` live sources are tracked already.
    pub(super) fn get(&mut self, src: IpAddr, now: Ts) -> Option<&mut SourceState> {
        if !self.live.contains_key(&src) {
            if self.live.len() >= MAX_SOURCES {
                return None;
            }
            let back = self.retired.take(&src).unwrap_or_default();
            self.live.insert(src, back);
        }
        let s = self.live.get_mut(&src)?;
        s.seen = s.seen.max(now);
        Some(s)
    }

    /// Sources quiet for longer than `quiet_ns` leave the live table: ones with something to
    /// summarize are packed into `retired`, the rest are dropped. Their sweep history is older
    /// than the sweep window by then, so nothing a later event would consult is lost. With
    /// `periodic` summaries (live), a source waits for its pending periodic summary first.
    /// Returns the final summaries of sources that did not fit (`MAX_RETIRED_SOURCES`): written
    /// now instead of at the end.
    pub(super) fn retire_quiet(
        &mut self,
        now: Ts,
        quiet_ns: u64,
        periodic: bool,
    ) -> Vec<HostSummary> {
        let mut going: Vec<IpAddr> = self
            .live
            .iter()
            .filter(|(_, s)| now.0 > s.seen.0.saturating_add(quiet_ns) && !(periodic && s.changed))
            .map(|(k, _)| *k)
            .collect();
        going.sort();
        let mut early = vec![];
        for src in going {
            let Some(mut s) = self.live.remove(&src) else {
                continue;
            };
            if !s.worth_summary() {
                continue;
            }
            if self.retired.is_full() {
                early.push(s.summary(src, now, true));
            } else {
                self.retired.put(src, &s);
            }
        }
        early
    }

    /// Sources due a host summary, in address order: live ones with something to summarize (at
    /// the end all, otherwise those that changed) and, at the end, retired ones.
    pub(super) fn due_summaries(&self, is_final: bool) -> Vec<IpAddr> {
        let mut srcs: Vec<IpAddr> = self
            .live
            .iter()
            .filter(|(_, s)| s.worth_summary() && (is_final || s.changed))
            .map(|(k, _)| *k)
            .collect();
        if is_final {
            srcs.extend(self.retired.keys().copied());
        }
        srcs.sort();
        srcs
    }

    /// The host summary of `src` at `now` (live or retired).
    pub(super) fn summary(&mut self, src: IpAddr, now: Ts, is_final: bool) -> Option<HostSummary> {
        if let Some(s) = self.live.get_mut(&src) {
            Some(s.summary(src, now, is_final))
        } else {
            self.retired
                .get(&src)
                .map(|mut s| s.summary(src, now, is_final))
        }
    }

    pub(super) fn shrink(&mut self) {
        shrink_if_sparse(&mut self.live);
    }
}

#[derive(Default)]
pub(super) struct SourceState {
    first_ts: Ts,
    last_ts: Ts,
    attacks: u32,
    suppressed: u32,
    signals: u32,
    unreadable_sessions: u32,
    targets: BTreeSet<IpAddr>,
    tools: BTreeSet<String>,
    techniques: BTreeSet<Technique>,
    users: BTreeSet<String>,
    /// Something changed since the last (periodic) host summary.
    changed: bool,
    /// Admin-share connects in the sweep window: (time, target).
    admin_connects: Vec<(Ts, IpAddr)>,
    last_sweep_alert: Option<Ts>,
    /// Packet time this source was last looked up: quiet sources are retired (`retired`).
    seen: Ts,
}

/// An admin-share sweep: connects to `targets` (distinct, in address order) since `first`.
pub(super) struct Sweep {
    pub(super) first: Ts,
    pub(super) targets: Vec<IpAddr>,
}

impl SourceState {
    /// Whether it has anything for a host summary.
    fn worth_summary(&self) -> bool {
        self.attacks > 0 || self.signals > 0 || self.unreadable_sessions > 0
    }

    /// Activity from `a` to `b` widens the summary's time span.
    fn touch(&mut self, a: Ts, b: Ts) {
        if self.first_ts == Ts(0) || a < self.first_ts {
            self.first_ts = a;
        }
        if b > self.last_ts {
            self.last_ts = b;
        }
        self.changed = true;
    }

    fn add_user(&mut self, user: String) {
        if self.users.len() < MAX_PAIR_ITEMS {
            self.users.insert(user);
        }
    }

    /// A technique alert was written. Returns false when its target did not fit
    /// (`MAX_SOURCE_TARGETS`).
    #[must_use]
    pub(super) fn on_attack(&mut self, a: &TechniqueAlert) -> bool {
        self.touch(a.ts, a.ts_end);
        self.attacks += 1;
        if a.suppressed_by.is_some() {
            self.suppressed += 1;
        }
        let fits = self.targets.len() < MAX_SOURCE_TARGETS || self.targets.contains(&a.dst_ip);
        if fits {
            self.targets.insert(a.dst_ip);
        }
        self.tools.insert(a.tool.clone());
        self.techniques.insert(a.technique);
        if let Some(u) = &a.user {
            let qualified = match &a.domain {
                Some(d) if !d.is_empty() => format!("{d}\\{u}"),
                _ => u.clone(),
            };
            self.add_user(qualified);
        }
        fits
    }

    /// A signal was written.
    pub(super) fn on_signal(&mut self, ts: Ts) {
        self.touch(ts, ts);
        self.signals += 1;
    }

    /// An SMB3 session it opened cannot be read (a visibility record was written).
    pub(super) fn on_unreadable_session(&mut self, ts: Ts, user: Option<&str>) {
        self.touch(ts, ts);
        self.unreadable_sessions += 1;
        if let Some(u) = user {
            self.add_user(u.to_string());
        }
    }

    /// A connect to an admin share of `target`: a sweep once `min_targets` distinct hosts were
    /// reached within `window_ns`, at most once per window.
    pub(super) fn on_admin_connect(
        &mut self,
        ts: Ts,
        target: IpAddr,
        window_ns: u64,
        min_targets: usize,
    ) -> Option<Sweep> {
        let cut = ts.0.saturating_sub(window_ns);
        self.admin_connects.retain(|x| x.0 .0 >= cut);
        if self.admin_connects.len() < MAX_PAIR_ITEMS {
            self.admin_connects.push((ts, target));
        }
        let targets: BTreeSet<IpAddr> = self.admin_connects.iter().map(|x| x.1).collect();
        let recent = self
            .last_sweep_alert
            .is_some_and(|t| ts.0 < t.0.saturating_add(window_ns));
        if targets.len() < min_targets || recent {
            return None;
        }
        self.last_sweep_alert = Some(ts);
        Some(Sweep {
            first: self.admin_connects.first().map_or(ts, |x| x.0),
            targets: targets.into_iter().collect(),
        })
    }

    /// Its host summary at `now`; a periodic one marks the source as summarized.
    fn summary(&mut self, src: IpAddr, now: Ts, is_final: bool) -> HostSummary {
        self.changed = false;
        HostSummary {
            ts: now,
            src_ip: src,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            attacks: self.attacks,
            suppressed: self.suppressed,
            signals: self.signals,
            unreadable_sessions: self.unreadable_sessions,
            targets: self.targets.iter().copied().collect(),
            tools: self.tools.iter().cloned().collect(),
            techniques: self.techniques.iter().copied().collect(),
            users: self.users.iter().cloned().collect(),
            is_final,
        }
    }
}
