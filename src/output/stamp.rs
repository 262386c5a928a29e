//! What every written record carries besides its own fields: the `sensor` that saw it and, for
//! records about one connection, the `community_id` that joins it with other tools' records.
//! Alerts also get the `uid`, ports and `proto` of the connection holding their decisive call.
//!
//! The records themselves (`event`, `event::alert`, `flow::table::FlowSummary`) stay what the
//! engine produced; [`Stamp`] wraps them at write time, so every output (the `--events` stream,
//! `--alerts`, `--flows`, `--log-dir`, `--eve`) adds the same fields the same way.

use crate::event::alert::Alert;
use crate::event::community_id::{CommunityId, PROTO_TCP};
use crate::event::{ConnFields, Event};
use crate::flow::table::FlowSummary;
use crate::flow::{ConnId, FlowCtx, Uid};
use serde::Serialize;

/// Sensor name used when neither `--sensor-name` nor a host name is available.
pub const DEFAULT_SENSOR_NAME: &str = "psexec-sensor";

/// Per-run output settings shared by every writer.
#[derive(Clone, Debug)]
pub struct Stamp {
    /// `sensor` on every record (`--sensor-name`, default: the host name).
    pub sensor: String,
    /// Community ID seed (`--community-id-seed`, default 0 as in Zeek and Suricata).
    pub seed: u16,
}

impl Default for Stamp {
    fn default() -> Stamp {
        Stamp {
            sensor: DEFAULT_SENSOR_NAME.into(),
            seed: 0,
        }
    }
}

/// The machine's host name (Linux: the kernel's UTS name), what Zeek and Suricata report by
/// default; `None` where it cannot be read.
pub fn host_name() -> Option<String> {
    let s = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Stamp {
    /// `--sensor-name` if given, else the host name, else [`DEFAULT_SENSOR_NAME`].
    pub fn new(sensor: Option<&str>, seed: u16) -> Stamp {
        Stamp {
            sensor: sensor
                .map(str::to_string)
                .or_else(host_name)
                .unwrap_or_else(|| DEFAULT_SENSOR_NAME.into()),
            seed,
        }
    }

    /// The Community ID of a TCP connection (every flow the sensor reassembles is TCP).
    pub fn community_id(&self, c: &ConnId) -> CommunityId {
        CommunityId::v1(
            self.seed,
            PROTO_TCP,
            (c.orig_h, c.orig_p),
            (c.resp_h, c.resp_p),
        )
    }

    pub fn conn_community_id(&self, c: &ConnFields) -> CommunityId {
        self.community_id(&c.flow().conn)
    }

    pub fn event<'a>(&'a self, ev: &'a Event) -> StampedEvent<'a> {
        StampedEvent {
            event: ev,
            community_id: ev.conn().map(|c| self.conn_community_id(c)),
            sensor: &self.sensor,
        }
    }

    pub fn alert<'a>(&'a self, alert: &'a Alert) -> StampedAlert<'a> {
        let flow = AlertFlow::of(alert, self);
        StampedAlert {
            alert,
            flow,
            sensor: &self.sensor,
        }
    }

    pub fn flow<'a>(&'a self, flow: &'a FlowSummary) -> StampedFlow<'a> {
        StampedFlow {
            log: "flow",
            flow,
            proto: "tcp",
            community_id: self.conn_community_id(&flow.conn),
            sensor: &self.sensor,
        }
    }
}

/// An event with `community_id` (when it is about a connection) and `sensor`.
#[derive(Serialize)]
pub struct StampedEvent<'a> {
    #[serde(flatten)]
    pub event: &'a Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub community_id: Option<CommunityId>,
    pub sensor: &'a str,
}

/// The connection an alert's decisive call was made on, as the alert's top-level fields.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AlertFlow {
    /// Absent on visibility alerts, which carry their `uid` already.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Uid>,
    pub src_port: u16,
    pub dst_port: u16,
    /// Always "tcp": every call the sensor reads rides on TCP.
    pub proto: &'static str,
    pub community_id: CommunityId,
    /// Not serialized: the connection itself (for EVE's `flow_id` and Zeek's `id.*`).
    #[serde(skip)]
    pub ctx: FlowCtx,
}

impl AlertFlow {
    pub fn of(alert: &Alert, stamp: &Stamp) -> Option<AlertFlow> {
        let (f, uid): (&FlowCtx, bool) = match alert {
            Alert::Technique(t) => (t.decisive_flow()?, true),
            Alert::Signal(s) => (s.decisive_flow()?, true),
            Alert::Visibility(v) => (&v.flow, false),
            Alert::HostSummary(_) => return None,
        };
        Some(AlertFlow {
            uid: uid.then_some(f.uid),
            src_port: f.conn.orig_p,
            dst_port: f.conn.resp_p,
            proto: "tcp",
            community_id: stamp.community_id(&f.conn),
            ctx: *f,
        })
    }
}

/// An alert with its decisive connection (`uid`, `src_port`, `dst_port`, `proto`,
/// `community_id`) and `sensor`. Visibility alerts carry their `uid` already; host summaries are
/// about a host, not a connection.
#[derive(Serialize)]
pub struct StampedAlert<'a> {
    #[serde(flatten)]
    pub alert: &'a Alert,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub flow: Option<AlertFlow>,
    pub sensor: &'a str,
}

/// One `--flows` line: the flow summary with `log`, `proto`, `community_id` and `sensor`.
#[derive(Serialize)]
pub struct StampedFlow<'a> {
    pub log: &'static str,
    #[serde(flatten)]
    pub flow: &'a FlowSummary,
    pub proto: &'static str,
    pub community_id: CommunityId,
    pub sensor: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::alert::{Basis, Evidence, Severity, Technique, TechniqueAlert};
    use crate::time::Ts;

    pub(crate) fn conn() -> ConnFields {
        ConnFields::new(
            Ts::from_secs(7),
            Uid(42),
            &ConnId {
                orig_h: "192.0.2.10".parse().unwrap(),
                orig_p: 50123,
                resp_h: "192.0.2.20".parse().unwrap(),
                resp_p: 445,
            },
        )
    }

    pub(crate) fn technique(c: &ConnFields) -> TechniqueAlert {
        TechniqueAlert {
            ts: c.ts,
            ts_end: c.ts,
            id: String::new(),
            technique: Technique::ServiceCreate,
            attack: vec!["T1569.002", "T1543.003", "T1021.002"],
            severity: Severity::High,
            confidence: 0.9,
            basis: Basis::Cleartext,
            decrypted: false,
            src_ip: c.orig_h,
            dst_ip: c.resp_h,
            user: Some("admin".into()),
            domain: None,
            auth: None,
            user_source: None,
            workstation: None,
            share: Some("ADMIN$".into()),
            uploads: vec![],
            service_name: Some("ABCD".into()),
            display_name: None,
            binary_path: Some("%SystemRoot%\\ABCD.exe".into()),
            start_type: None,
            task_path: None,
            command: None,
            pipes: vec![],
            tool: "impacket-psexec".into(),
            tool_reason: None,
            count: 1,
            calls: vec![],
            started: false,
            deleted: false,
            failed: false,
            no_response: false,
            reason: "test".into(),
            evidence: vec![
                Evidence::new(c, c.ts, "smb_auth", "NTLMSSP admin".into()),
                Evidence::new(c, c.ts, "dce_rpc", "svcctl CreateServiceW".into()),
            ],
            suppressed_by: None,
        }
    }

    #[test]
    fn alerts_carry_the_decisive_connection_and_sensor() {
        let c = conn();
        let a = Alert::Technique(Box::new(technique(&c)));
        let stamp = Stamp::new(Some("tap-1"), 0);
        let v = serde_json::to_value(stamp.alert(&a)).unwrap();
        assert_eq!(v["kind"], "technique");
        assert_eq!(v["uid"], Uid(42).to_string());
        assert_eq!(
            (v["src_port"].as_u64(), v["dst_port"].as_u64()),
            (Some(50123), Some(445))
        );
        assert_eq!(v["proto"], "tcp");
        assert_eq!(v["sensor"], "tap-1");
        assert_eq!(
            v["community_id"],
            stamp.conn_community_id(&c).to_string().as_str()
        );
        assert!(v["community_id"].as_str().unwrap().starts_with("1:"));
    }

    #[test]
    fn content_id_ignores_time_but_not_content() {
        let c = conn();
        let a = technique(&c);
        let mut later = a.clone();
        let shift = |t: Ts| Ts(t.0 + 500_000);
        later.ts = shift(later.ts);
        later.ts_end = shift(later.ts_end);
        for e in &mut later.evidence {
            e.ts = shift(e.ts);
        }
        assert_eq!(a.content_id(), later.content_id());
        let mut other = a.clone();
        other.service_name = Some("EFGH".into());
        assert_ne!(a.content_id(), other.content_id());
    }

    #[test]
    fn events_carry_community_id_and_sensor() {
        let ev = Event::SmbMapping(crate::event::SmbMapping {
            conn: conn(),
            path: "\\\\h\\IPC$".into(),
            share: "IPC$".into(),
            service: None,
            share_type: "PIPE",
            native_file_system: None,
            status: "STATUS_SUCCESS".into(),
            smb_version: crate::event::SmbVersion::Smb2,
            session_id: None,
            tree_id: None,
        });
        let stamp = Stamp::new(Some("s"), 3);
        let v = serde_json::to_value(stamp.event(&ev)).unwrap();
        assert_eq!(v["log"], "smb_mapping");
        assert_eq!(v["sensor"], "s");
        let seeded = CommunityId::v1(
            3,
            PROTO_TCP,
            ("192.0.2.20".parse().unwrap(), 445),
            ("192.0.2.10".parse().unwrap(), 50123),
        );
        assert_eq!(v["community_id"], seeded.to_string().as_str());
    }
}
