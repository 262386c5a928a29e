//! `--eve PATH`: every alert, SMB/DCE-RPC record, flow and anomaly in Suricata's EVE form
//! (record shapes: `event::eve`), to a file, stdout, syslog or a Unix socket like any JSON output.

use super::json::JsonLines;
use super::stamp::{AlertFlow, Stamp};
use crate::event::alert::Alert;
use crate::event::eve::{
    self, EveAlert, EveAnomaly, EveDcerpc, EveFlow, EveInterface, EveKerberos, EveNtlmssp,
    EveRecord, EveSmb, EveStub,
};
use crate::event::{AnomalyKind, ConnFields, DceRpc, Event};
use crate::flow::table::FlowSummary;
use std::collections::BTreeMap;
use std::io;

pub struct EveWriter {
    out: JsonLines,
    stamp: Stamp,
}

impl EveWriter {
    pub fn new(out: JsonLines, stamp: Stamp) -> EveWriter {
        EveWriter { out, stamp }
    }

    pub fn path(&self) -> &str {
        self.out.path()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The file under it (reopen and rotation in `live`).
    pub fn file(&mut self) -> &mut JsonLines {
        &mut self.out
    }
}

fn head<'a>(
    stamp: &'a Stamp,
    event_type: &'static str,
    c: Option<&ConnFields>,
    ts: crate::time::Ts,
) -> EveRecord<'a> {
    EveRecord {
        timestamp: eve::timestamp(ts),
        flow_id: c.map(|c| eve::flow_id(c.uid)),
        event_type,
        src_ip: c.map(|c| c.orig_h),
        src_port: c.map(|c| c.orig_p),
        dest_ip: c.map(|c| c.resp_h),
        dest_port: c.map(|c| c.resp_p),
        proto: c.map(|_| "TCP"),
        community_id: c.map(|c| stamp.conn_community_id(c)),
        host: &stamp.sensor,
        app_proto: None,
        alert: None,
        smb: None,
        dcerpc: None,
        flow: None,
        anomaly: None,
    }
}

impl EveWriter {
    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        let rec = match ev {
            Event::SmbMapping(m) => EveRecord {
                app_proto: Some("smb"),
                smb: Some(EveSmb {
                    command: Some(eve::smb_command_name(
                        Some(m.smb_version),
                        match m.smb_version {
                            crate::event::SmbVersion::Smb1 => "TREE_CONNECT_ANDX",
                            crate::event::SmbVersion::Smb2 => "TREE_CONNECT",
                        },
                    )),
                    status: Some(&m.status),
                    session_id: m.session_id,
                    tree_id: m.tree_id,
                    share: Some(&m.path),
                    share_type: Some(m.share_type),
                    ..EveSmb::default()
                }),
                ..head(&self.stamp, "smb", Some(&m.conn), m.conn.ts)
            },
            Event::SmbFiles(f) => {
                let pipe = f.share.eq_ignore_ascii_case("IPC$");
                EveRecord {
                    app_proto: Some("smb"),
                    smb: Some(EveSmb {
                        command: eve::smb_command(f.smb_version, f.action),
                        status: Some(&f.status),
                        session_id: f.session_id,
                        share: Some(&f.path),
                        filename: (!pipe).then_some(f.name.as_str()),
                        named_pipe: pipe.then_some(f.name.as_str()),
                        fuid: f.fuid.as_deref(),
                        size: f.size.or(f.bytes_written),
                        ..EveSmb::default()
                    }),
                    ..head(&self.stamp, "smb", Some(&f.conn), f.conn.ts)
                }
            }
            Event::SmbAuth(a) => {
                let ntlm = matches!(a.auth, "ntlmssp" | "raw-ntlm" | "anonymous");
                EveRecord {
                    app_proto: Some("smb"),
                    smb: Some(EveSmb {
                        command: Some(eve::smb_command_name(
                            Some(a.smb_version),
                            match a.smb_version {
                                crate::event::SmbVersion::Smb1 => "SESSION_SETUP_ANDX",
                                crate::event::SmbVersion::Smb2 => "SESSION_SETUP",
                            },
                        )),
                        status: Some(&a.status),
                        dialect: Some(&a.dialect),
                        session_id: a.session_id,
                        ntlmssp: ntlm.then_some(EveNtlmssp {
                            user: a.user.as_deref(),
                            domain: a.domain.as_deref(),
                            host: a.workstation.as_deref(),
                        }),
                        kerberos: (a.auth == "kerberos").then_some(EveKerberos {}),
                        ..EveSmb::default()
                    }),
                    ..head(&self.stamp, "smb", Some(&a.conn), a.conn.ts)
                }
            }
            Event::DceRpc(d) => dcerpc(&self.stamp, d),
            Event::Anomaly(a) => EveRecord {
                anomaly: Some(EveAnomaly {
                    kind: match a.layer {
                        "capture" | "ip" => "decode",
                        "tcp" => "stream",
                        _ => "applayer",
                    },
                    event: match (a.kind, a.cap) {
                        (AnomalyKind::CapReached, Some(cap)) => format!("cap_reached.{cap}"),
                        _ => serde_json::to_value(a.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    },
                    layer: a.layer,
                }),
                ..head(&self.stamp, "anomaly", a.conn.as_ref(), a.ts)
            },
            // Unreadable sessions are reported by their visibility alert; per-message records
            // of opaque SMB have no EVE counterpart.
            Event::SmbVisibility(_) | Event::SmbOpaque(_) => return Ok(()),
        };
        self.out.write(&rec)
    }
}

fn dcerpc<'a>(stamp: &'a Stamp, d: &'a DceRpc) -> EveRecord<'a> {
    let bind = matches!(d.operation.as_str(), "bind" | "alter_context");
    let answered = !d.status.starts_with('<');
    let (request, response) = if bind {
        (
            if d.operation == "bind" {
                "BIND"
            } else {
                "ALTER_CONTEXT"
            },
            if answered { "BINDACK" } else { "UNREPLIED" },
        )
    } else {
        (
            "REQUEST",
            match d.status.as_str() {
                "ok" => "RESPONSE",
                s if s.starts_with('<') => "UNREPLIED",
                _ => "FAULT",
            },
        )
    };
    let interfaces = d.interfaces.as_ref().map(|xs| {
        xs.iter()
            .map(|x| EveInterface {
                uuid: x.uuid.clone(),
                version: x.version.clone(),
                ack_result: x.result.map(|r| match r {
                    "acceptance" => 0,
                    "user_rejection" => 1,
                    "provider_rejection" => 2,
                    _ => 3,
                }),
            })
            .collect()
    });
    // Suricata: over a pipe `smb.dcerpc` with `opnum` at its top; over TCP `dcerpc` with
    // `req.opnum` and `rpc_version`.
    let pipe = d.transport == "smb_pipe";
    let rpc = EveDcerpc {
        request,
        response,
        call_id: d.call_id,
        opnum: d.opnum.filter(|_| pipe),
        rpc_version: (!pipe).then_some("5.0"),
        interfaces,
        req: (!bind).then_some(EveStub {
            opnum: d.opnum.filter(|_| !pipe),
            frag_cnt: d.request_frags,
            stub_data_size: d.request_stub_len,
        }),
    };
    if pipe {
        EveRecord {
            app_proto: Some("smb"),
            smb: Some(EveSmb {
                command: Some("SMB2_COMMAND_IOCTL".into()),
                function: Some("FSCTL_PIPE_TRANSCEIVE"),
                named_pipe: d.named_pipe.as_deref(),
                dcerpc: Some(rpc),
                ..EveSmb::default()
            }),
            ..head(stamp, "smb", Some(&d.conn), d.conn.ts)
        }
    } else {
        EveRecord {
            app_proto: Some("dcerpc"),
            dcerpc: Some(rpc),
            ..head(stamp, "dcerpc", Some(&d.conn), d.conn.ts)
        }
    }
}

impl EveWriter {
    pub fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let rec = EveRecord {
            app_proto: (f.app == "parsed").then_some("smb"),
            flow: Some(EveFlow {
                bytes_toserver: f.orig_bytes_delivered + f.orig_gap_bytes,
                bytes_toclient: f.resp_bytes_delivered + f.resp_gap_bytes,
                start: eve::timestamp(f.conn.ts),
                end: eve::timestamp(f.last_ts),
                age: f.last_ts.0.saturating_sub(f.conn.ts.0) / 1_000_000_000,
                state: match f.end {
                    "fin" | "rst" | "port-reuse" => "closed",
                    _ => "established",
                },
                reason: match f.end {
                    "idle" | "evicted" => "timeout",
                    _ => "shutdown",
                },
                alerted: false,
            }),
            ..head(&self.stamp, "flow", Some(&f.conn), f.conn.ts)
        };
        self.out.write(&rec)
    }

    pub fn alert(&mut self, alert: &Alert) -> io::Result<()> {
        let Some(signature_id) = eve::signature_id(alert) else {
            return Ok(());
        };
        let flow = AlertFlow::of(alert, &self.stamp);
        let mut md: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut put = |k: &'static str, v: Option<&str>| {
            if let Some(v) = v {
                md.entry(k).or_default().push(v.to_string());
            }
        };
        let (ts, src, dst, signature, severity, category, attack) = match alert {
            Alert::Technique(t) => {
                put("psexec_sensor_id", Some(&t.id));
                put("technique", Some(t.technique.as_str()));
                put("tool", Some(&t.tool));
                put("confidence", Some(&format!("{:.2}", t.confidence)));
                put(
                    "basis",
                    serde_json::to_value(t.basis)
                        .ok()
                        .as_ref()
                        .and_then(|v| v.as_str()),
                );
                put("user", t.user.as_deref());
                put("domain", t.domain.as_deref());
                put("share", t.share.as_deref());
                put("service_name", t.service_name.as_deref());
                put("binary_path", t.binary_path.as_deref());
                put("task_path", t.task_path.as_deref());
                put("command", t.command.as_deref());
                put("suppressed_by", t.suppressed_by.as_deref());
                for u in &t.uploads {
                    put("upload", Some(&format!("{}\\{}", u.share, u.name)));
                }
                let sig = format!(
                    "PSEXEC-SENSOR {} ({}) {}",
                    t.technique.as_str(),
                    t.tool,
                    t.service_name
                        .as_deref()
                        .or(t.task_path.as_deref())
                        .unwrap_or("")
                );
                (
                    t.ts,
                    t.src_ip,
                    Some(t.dst_ip),
                    sig,
                    t.severity,
                    "Lateral Movement",
                    t.attack.as_slice(),
                )
            }
            Alert::Signal(s) => {
                put("psexec_sensor_id", Some(&s.id));
                put("signal", Some(s.signal));
                put("user", s.user.as_deref());
                put("share", s.share.as_deref());
                put("service_name", s.service_name.as_deref());
                put("suppressed_by", s.suppressed_by.as_deref());
                for t in &s.targets {
                    put("target", Some(&t.to_string()));
                }
                if let Some(u) = &s.upload {
                    put("upload", Some(&format!("{}\\{}", u.share, u.name)));
                }
                (
                    s.ts,
                    s.src_ip,
                    s.dst_ip,
                    format!("PSEXEC-SENSOR signal {}", s.signal),
                    s.severity,
                    "Potentially Bad Traffic",
                    s.attack.as_slice(),
                )
            }
            Alert::Visibility(v) => {
                put("visibility", Some(&v.visibility));
                put("user", v.user.as_deref());
                put("dialect", v.dialect.as_deref());
                (
                    v.ts,
                    v.src_ip,
                    Some(v.dst_ip),
                    format!("PSEXEC-SENSOR unreadable session ({})", v.visibility),
                    crate::event::alert::Severity::Info,
                    "Not Suspicious Traffic",
                    &[][..],
                )
            }
            Alert::HostSummary(_) => return Ok(()),
        };
        for id in attack {
            md.entry("mitre_technique_id")
                .or_default()
                .push(id.to_string());
        }
        if !attack.is_empty() {
            md.insert("mitre_tactic_id", vec!["TA0008".into()]);
            md.insert("mitre_tactic_name", vec!["Lateral_Movement".into()]);
        }
        let conn = flow.map(|f| f.ctx);
        let rec = EveRecord {
            timestamp: eve::timestamp(ts),
            flow_id: conn.map(|c| eve::flow_id(c.uid)),
            event_type: "alert",
            src_ip: Some(src),
            src_port: conn.map(|c| c.conn.orig_p),
            dest_ip: dst,
            dest_port: conn.map(|c| c.conn.resp_p),
            proto: conn.map(|_| "TCP"),
            community_id: flow.map(|f| f.community_id),
            host: &self.stamp.sensor,
            // Calls on 445/139 ride SMB named pipes; any other port is DCE-RPC over TCP.
            app_proto: conn.map(|c| match c.conn.resp_p {
                445 | 139 => "smb",
                _ => "dcerpc",
            }),
            alert: Some(EveAlert {
                action: "allowed",
                gid: 1,
                signature_id,
                rev: 1,
                signature,
                category,
                severity: eve::severity(severity),
                metadata: md,
            }),
            smb: None,
            dcerpc: None,
            flow: None,
            anomaly: None,
        };
        self.out.write(&rec)
    }
}
