//! `psexec-sensor report`: one self-contained HTML page per run, for an analyst to see who moved
//! where before reading JSON. The run's alerts (and the events their evidence names) are gathered
//! here into [`ReportData`], embedded as JSON in the page, and drawn by a small hand-written script
//! (`report.js`): a host graph, a timeline per source host, alert details with the events behind
//! them, tables of users, tools and files, counters and anomalies. No network: the page's style and
//! script are inlined, so it works from a `file://` URL and on an analyst's offline machine.

pub mod html;
pub mod input;

use input::{AlertKind, AlertRecord, EventRecord, LogName};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Alerts drawn in the page; beyond it alerts are only counted (`dropped`), so one page stays
/// loadable whatever the run.
pub const MAX_REPORT_ALERTS: usize = 20_000;
/// Events embedded behind the alerts, over the whole page.
pub const MAX_REPORT_EVENTS: usize = 200_000;
/// Events embedded behind one alert (a hostile alerts file could name one uid many times).
pub const MAX_REPORT_EVENTS_PER_ALERT: usize = 128;
/// Distinct anomaly groups (kind, layer, cap) listed; further groups are counted.
pub const MAX_REPORT_ANOMALY_GROUPS: usize = 1000;

/// One alert in the page, with the events its evidence points at (indices into `events`).
#[derive(Debug, Serialize)]
pub struct PageAlert {
    #[serde(flatten)]
    pub alert: AlertRecord,
    pub events: Vec<u32>,
}

/// Anomalies of one kind, layer and cap, with the first one's detail.
#[derive(Debug, Serialize)]
pub struct AnomalyGroup {
    pub kind: String,
    pub layer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    pub count: u64,
    pub first_ts: f64,
    pub detail: String,
}

/// Everything the page shows, embedded as one JSON document.
#[derive(Debug, Default, Serialize)]
pub struct ReportData {
    /// What the run was made from (file names), shown in the header.
    pub inputs: Vec<String>,
    pub sensor_version: &'static str,
    pub alerts: Vec<PageAlert>,
    pub events: Vec<EventRecord>,
    /// Alert and event counts by kind (`alerts.technique`, `events.dce_rpc` …) and, when the report
    /// ran the captures itself, the engine's counters.
    pub counters: BTreeMap<String, u64>,
    pub anomalies: Vec<AnomalyGroup>,
    /// Items left out of the page, by the cap that left them out.
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Where an evidence line points: which alerts wait for the event of this log at this time.
#[derive(Debug)]
struct Wanted {
    log: LogName,
    ts_bits: u64,
    alert: u32,
}

/// Gathers a run's alerts and events into [`ReportData`]. Alerts first: the events are then
/// matched against the alerts' evidence (`uid`, `log`, `ts`) as they stream past, so only the
/// events behind an alert are kept, however large the events file.
#[derive(Debug, Default)]
pub struct ReportBuilder {
    data: ReportData,
    /// Evidence lines by connection uid.
    wanted: HashMap<String, Vec<Wanted>>,
    /// Visibility alerts by the uid of their session's connection (its smb_visibility records).
    unreadable: HashMap<String, Vec<u32>>,
    anomaly_index: HashMap<(String, String, Option<String>), usize>,
}

impl ReportBuilder {
    pub fn new(inputs: Vec<String>) -> ReportBuilder {
        ReportBuilder {
            data: ReportData {
                inputs,
                sensor_version: env!("CARGO_PKG_VERSION"),
                ..ReportData::default()
            },
            ..ReportBuilder::default()
        }
    }

    fn drop_one(&mut self, cap: &'static str) {
        *self.data.dropped.entry(cap).or_insert(0) += 1;
    }

    pub fn count(&mut self, name: &str, n: u64) {
        if let Some(v) = self.data.counters.get_mut(name) {
            *v += n;
        } else {
            self.data.counters.insert(name.to_owned(), n);
        }
    }

    pub fn add_alert(&mut self, alert: AlertRecord) {
        let kind = match alert.kind {
            AlertKind::Technique => "alerts.technique",
            AlertKind::Signal => "alerts.signal",
            AlertKind::Visibility => "alerts.visibility",
            AlertKind::HostSummary => "alerts.host_summary",
        };
        self.count(kind, 1);
        // Host summaries restate the alerts; the page derives its own per host.
        if alert.kind == AlertKind::HostSummary {
            return;
        }
        if self.data.alerts.len() >= MAX_REPORT_ALERTS {
            self.drop_one("MAX_REPORT_ALERTS");
            return;
        }
        let index = self.data.alerts.len() as u32;
        for e in &alert.evidence {
            self.wanted.entry(e.uid.clone()).or_default().push(Wanted {
                log: e.log,
                ts_bits: e.ts.to_bits(),
                alert: index,
            });
        }
        if alert.kind == AlertKind::Visibility {
            if let Some(uid) = &alert.uid {
                self.unreadable.entry(uid.clone()).or_default().push(index);
            }
        }
        self.data.alerts.push(PageAlert {
            alert,
            events: Vec::new(),
        });
    }

    /// Counts an event of `log` (events the report does not keep are still counted).
    pub fn count_event(&mut self, log: LogName) {
        let key = match log {
            LogName::SmbMapping => "events.smb_mapping",
            LogName::SmbFiles => "events.smb_files",
            LogName::SmbAuth => "events.smb_auth",
            LogName::SmbVisibility => "events.smb_visibility",
            LogName::SmbOpaque => "events.smb_opaque",
            LogName::DceRpc => "events.dce_rpc",
            LogName::Anomaly => "events.anomaly",
            LogName::Flow => "events.flow",
            LogName::Other => "events.other",
        };
        self.count(key, 1);
    }

    /// An anomaly event, grouped by kind, layer and cap.
    pub fn anomaly(&mut self, ev: &EventRecord) {
        let key = (
            ev.kind.clone().unwrap_or_default(),
            ev.layer.clone().unwrap_or_default(),
            ev.cap.clone(),
        );
        if let Some(&i) = self.anomaly_index.get(&key) {
            self.data.anomalies[i].count += 1;
            return;
        }
        if self.data.anomalies.len() >= MAX_REPORT_ANOMALY_GROUPS {
            self.drop_one("MAX_REPORT_ANOMALY_GROUPS");
            return;
        }
        self.anomaly_index
            .insert(key.clone(), self.data.anomalies.len());
        self.data.anomalies.push(AnomalyGroup {
            kind: key.0,
            layer: key.1,
            cap: key.2,
            count: 1,
            first_ts: ev.ts,
            detail: ev.detail.clone().unwrap_or_default(),
        });
    }

    /// Whether an event of this log may stand behind an alert (the rest is only counted).
    /// `smb_opaque` messages are the evidence of alerts inferred from encrypted sizes.
    pub fn joinable(log: LogName) -> bool {
        matches!(
            log,
            LogName::SmbMapping
                | LogName::SmbFiles
                | LogName::SmbAuth
                | LogName::SmbVisibility
                | LogName::SmbOpaque
                | LogName::DceRpc
        )
    }

    /// Keeps `ev` if an alert's evidence names it (same uid, log and time), or it is the
    /// visibility record of an unreadable session an alert reports.
    pub fn join_event(&mut self, ev: EventRecord) {
        let Some(uid) = ev.uid.as_deref() else {
            return;
        };
        let mut to: Vec<u32> = Vec::new();
        if let Some(w) = self.wanted.get(uid) {
            // An upload's evidence is timed at its first write, its record at the close.
            let at = [Some(ev.ts), ev.first_write_ts].map(|t| t.map(f64::to_bits));
            to.extend(
                w.iter()
                    .filter(|w| w.log == ev.log && at.contains(&Some(w.ts_bits)))
                    .map(|w| w.alert),
            );
        }
        if matches!(ev.log, LogName::SmbVisibility | LogName::SmbAuth) {
            if let Some(v) = self.unreadable.get(uid) {
                to.extend(v.iter().copied());
            }
        }
        if to.is_empty() {
            return;
        }
        to.sort_unstable();
        to.dedup();
        if self.data.events.len() >= MAX_REPORT_EVENTS {
            self.drop_one("MAX_REPORT_EVENTS");
            return;
        }
        let index = self.data.events.len() as u32;
        let mut kept = false;
        for a in to {
            let events = &mut self.data.alerts[a as usize].events;
            if events.len() < MAX_REPORT_EVENTS_PER_ALERT {
                events.push(index);
                kept = true;
            } else {
                self.drop_one("MAX_REPORT_EVENTS_PER_ALERT");
            }
        }
        if kept {
            self.data.events.push(ev);
        }
    }

    /// Counts, groups and (when an alert names it) keeps one event line.
    pub fn add_event(&mut self, ev: EventRecord) {
        self.count_event(ev.log);
        if ev.log == LogName::Anomaly {
            self.anomaly(&ev);
        }
        if Self::joinable(ev.log) {
            self.join_event(ev);
        }
    }

    pub fn finish(self) -> ReportData {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(json: &str) -> AlertRecord {
        serde_json::from_str(json).unwrap()
    }
    fn event(json: &str) -> EventRecord {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn events_named_by_evidence_are_kept_once_and_linked() {
        let mut b = ReportBuilder::new(vec!["run".into()]);
        b.add_alert(alert(
            r#"{"kind":"technique","ts":10.5,"src_ip":"192.0.2.1","dst_ip":"192.0.2.2",
               "evidence":[{"ts":10.5,"log":"dce_rpc","uid":"Ca","summary":"create"},
                           {"ts":9.25,"log":"smb_files","uid":"Ca","summary":"write"}]}"#,
        ));
        b.add_alert(alert(
            r#"{"kind":"signal","ts":9.25,"src_ip":"192.0.2.1",
               "evidence":[{"ts":9.25,"log":"smb_files","uid":"Ca","summary":"write"}]}"#,
        ));
        b.add_alert(alert(
            r#"{"kind":"host_summary","ts":11,"src_ip":"192.0.2.1"}"#,
        ));
        for e in [
            r#"{"log":"smb_files","ts":9.75,"uid":"Ca","action":"SMB::FILE_WRITE","sha256":"ab",
                "first_write_ts":9.25}"#,
            r#"{"log":"smb_files","ts":9.25,"uid":"Cb","action":"SMB::FILE_WRITE"}"#,
            r#"{"log":"smb_files","ts":9.5,"uid":"Ca","action":"SMB::FILE_OPEN"}"#,
            r#"{"log":"dce_rpc","ts":10.5,"uid":"Ca","operation":"CreateServiceW"}"#,
            r#"{"log":"anomaly","ts":3,"kind":"gap","layer":"tcp","detail":"first"}"#,
            r#"{"log":"anomaly","ts":4,"kind":"gap","layer":"tcp","detail":"second"}"#,
        ] {
            b.add_event(event(e));
        }
        let d = b.finish();
        assert_eq!(d.alerts.len(), 2, "host summaries are not drawn");
        assert_eq!(d.events.len(), 2);
        assert_eq!(d.alerts[0].events, vec![0, 1]);
        assert_eq!(d.alerts[1].events, vec![0]);
        assert_eq!(d.events[0].sha256.as_deref(), Some("ab"));
        assert_eq!(d.counters["alerts.host_summary"], 1);
        assert_eq!(d.counters["events.smb_files"], 3);
        assert_eq!(d.anomalies.len(), 1);
        assert_eq!(
            (d.anomalies[0].count, d.anomalies[0].detail.as_str()),
            (2, "first")
        );
    }

    #[test]
    fn caps_count_what_they_leave_out() {
        let mut b = ReportBuilder::new(vec![]);
        let evidence: Vec<String> = (0..MAX_REPORT_EVENTS_PER_ALERT + 5)
            .map(|i| format!(r#"{{"ts":{i},"log":"smb_mapping","uid":"Cx","summary":""}}"#))
            .collect();
        b.add_alert(alert(&format!(
            r#"{{"kind":"technique","ts":0,"evidence":[{}]}}"#,
            evidence.join(",")
        )));
        for i in 0..MAX_REPORT_EVENTS_PER_ALERT + 5 {
            b.add_event(event(&format!(
                r#"{{"log":"smb_mapping","ts":{i},"uid":"Cx"}}"#
            )));
        }
        for i in 0..MAX_REPORT_ANOMALY_GROUPS + 3 {
            b.add_event(event(&format!(
                r#"{{"log":"anomaly","ts":1,"kind":"k{i}","layer":"l"}}"#
            )));
        }
        for _ in 0..MAX_REPORT_ALERTS {
            b.add_alert(alert(r#"{"kind":"signal","ts":1}"#));
        }
        let d = b.finish();
        assert_eq!(d.alerts[0].events.len(), MAX_REPORT_EVENTS_PER_ALERT);
        assert_eq!(d.dropped["MAX_REPORT_EVENTS_PER_ALERT"], 5);
        assert_eq!(d.dropped["MAX_REPORT_ANOMALY_GROUPS"], 3);
        assert_eq!(d.dropped["MAX_REPORT_ALERTS"], 1);
        assert_eq!(d.alerts.len(), MAX_REPORT_ALERTS);
        assert_eq!(d.counters["alerts.signal"], MAX_REPORT_ALERTS as u64);
    }
}
