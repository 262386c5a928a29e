//! A large made-up run for the HTML report: `n` attack instances moving laterally through a
//! network in chains (targets become sources), with signals, unreadable sessions, the events
//! behind every alert, and hostile strings where the wire could put them. Alerts are the sensor's
//! own typed records (`event::alert`); events are written with the README's field names.
//! Shared by the report's browser test and `scripts/bench-report` (through the example
//! `report_synthetic_run`).

use psexec_sensor::event::alert::{
    Alert, Basis, Evidence, FoldedCall, Severity, SignalAlert, Technique, TechniqueAlert, Upload,
    VisibilityAlert,
};
use psexec_sensor::event::ConnFields;
use psexec_sensor::flow::Uid;
use psexec_sensor::time::Ts;
use serde_json::json;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// What a hostile service name looks like: it must reach the page as text, never as markup.
pub const HOSTILE_SERVICE: &str = "</script><img src=x onerror=\"document.title='pwned'\"><!--";

/// Deterministic xorshift, so every run of the test sees the same network.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn name(&mut self, len: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..len)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }
}

fn host(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        10,
        20 + (i / 250) as u8,
        (i % 250) as u8 + 1,
        10,
    ))
}

/// The counts written, for the test to check against.
pub struct Written {
    pub techniques: usize,
    pub signals: usize,
    pub visibility: usize,
}

/// Writes `dir/alerts.json` and `dir/events.json` for `n` attack instances.
pub fn write_run(dir: &Path, n: usize) -> std::io::Result<Written> {
    let mut alerts = BufWriter::new(std::fs::File::create(dir.join("alerts.json"))?);
    let mut events = BufWriter::new(std::fs::File::create(dir.join("events.json"))?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tools = [
        "impacket-psexec",
        "sysinternals-psexec",
        "impacket-smbexec",
        "remcom",
        "unknown",
    ];
    let users = [
        "CORP\\alice",
        "CORP\\svc_backup",
        "CORP\\admin",
        "LAB\\it-ops",
    ];
    let hosts = (n / 10).max(8) as u64;
    // A host is compromised once it was a target: sources are drawn from the compromised.
    let mut owned: Vec<u64> = vec![0, 1];
    let start = 1_795_000_000u64;
    let mut written = Written {
        techniques: 0,
        signals: 0,
        visibility: 0,
    };
    for i in 0..n as u64 {
        // Intrusions spread from recently taken hosts: chains and fans, not a uniform mesh.
        let recent = rng.below(owned.len().min(6) as u64) as usize;
        let src = owned[owned.len() - 1 - recent];
        let mut dst = rng.below(hosts);
        if dst == src {
            dst = (dst + 1) % hosts;
        }
        if !owned.contains(&dst) && owned.len() < 4096 {
            owned.push(dst);
        }
        let t0 = Ts::from_micros((start + i * 37) * 1_000_000 + rng.below(1_000_000));
        let at = |ms: u64| Ts(t0.0 + ms * 1_000_000);
        let (user_full, tool) = (users[(i % 4) as usize], tools[rng.below(5) as usize]);
        let (domain, user) = user_full.split_once('\\').unwrap();
        let service = if i == 7 {
            HOSTILE_SERVICE.to_string()
        } else {
            rng.name(8)
        };
        let exe = format!("{}.exe", rng.name(8));
        let sha: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
        let conn_fields = |uid: u64, dst: IpAddr| ConnFields {
            ts: t0,
            uid: Uid(uid),
            orig_h: host(src),
            orig_p: 50000,
            resp_h: dst,
            resp_p: 445,
        };
        let smb = conn_fields(2 * i + 1, host(dst));
        let uid = smb.uid.to_string();
        let ev = |ts: Ts, log: &'static str, summary: String| Evidence::new(&smb, ts, log, summary);
        let evidence = vec![
            ev(
                at(0),
                "smb_auth",
                format!("session setup ntlmssp as {user_full}"),
            ),
            ev(
                at(20),
                "smb_mapping",
                format!("tree connect \\\\{}\\ADMIN$", host(dst)),
            ),
            ev(
                at(40),
                "smb_files",
                format!("wrote ADMIN$\\{exe} 56320 bytes PE sha256 {sha}"),
            ),
            ev(at(300), "smb_files", "pipe open \\svcctl".into()),
            ev(
                at(320),
                "dce_rpc",
                format!("svcctl CreateServiceW service {service}"),
            ),
            ev(at(340), "dce_rpc", "svcctl StartServiceW".into()),
            ev(at(2900), "dce_rpc", "svcctl DeleteService".into()),
        ];
        let alert = Alert::Technique(Box::new(TechniqueAlert {
            ts: at(0),
            ts_end: at(2900),
            id: format!("T{i:06}"),
            technique: Technique::ServiceCreate,
            attack: vec!["T1021.002", "T1569.002", "T1543.003"],
            severity: if i % 9 == 0 {
                Severity::Critical
            } else {
                Severity::High
            },
            confidence: 0.9,
            basis: Basis::Cleartext,
            decrypted: false,
            src_ip: host(src),
            dst_ip: host(dst),
            user: Some(user.into()),
            domain: Some(domain.into()),
            workstation: Some(format!("WS{src}")),
            auth: None,
            user_source: None,
            share: Some("ADMIN$".into()),
            uploads: vec![Upload {
                share: "ADMIN$".into(),
                name: exe.clone(),
                size: 56320,
                sha256: Some(sha.clone()),
                pe: true,
                referenced: true,
            }],
            service_name: Some(service.clone()),
            display_name: Some(service.clone()),
            binary_path: Some(format!("%systemroot%\\{exe}")),
            start_type: Some(3),
            task_path: None,
            command: None,
            pipes: vec!["svcctl".into()],
            tool: tool.into(),
            tool_reason: Some("synthetic".into()),
            count: 1,
            calls: vec![FoldedCall {
                ts: at(320),
                service_name: Some(service.clone()),
                binary_path: Some(format!("%systemroot%\\{exe}")),
                task_path: None,
                status: "ok".into(),
            }],
            started: true,
            deleted: true,
            failed: false,
            no_response: false,
            reason: format!("service {service} created on {} after an upload", host(dst)),
            evidence: evidence.clone(),
            suppressed_by: None,
        }));
        serde_json::to_writer(&mut alerts, &alert)?;
        alerts.write_all(b"\n")?;
        written.techniques += 1;
        let conn = json!({"uid": uid, "id.orig_h": host(src).to_string(), "id.orig_p": 50000,
                          "id.resp_h": host(dst).to_string(), "id.resp_p": 445});
        let mut records = vec![
            json!({"log": "smb_auth", "ts": at(0), "user": user, "domain": domain,
                   "auth": "ntlmssp", "dialect": "SMB 3.0.2", "status": "STATUS_SUCCESS"}),
            json!({"log": "smb_mapping", "ts": at(20), "path": format!("\\\\{}\\ADMIN$", host(dst)),
                   "share": "ADMIN$", "share_type": "DISK", "status": "STATUS_SUCCESS"}),
            json!({"log": "smb_files", "ts": at(30), "action": "SMB::FILE_OPEN", "share": "ADMIN$",
                   "name": exe, "status": "STATUS_SUCCESS"}),
            json!({"log": "smb_files", "ts": at(250), "action": "SMB::FILE_WRITE", "share": "ADMIN$",
                   "name": exe, "bytes_written": 56320, "first_write_ts": at(40), "pe": true,
                   "sha256": sha, "status": "STATUS_SUCCESS"}),
            json!({"log": "smb_files", "ts": at(300), "action": "SMB::PIPE_OPEN", "share": "IPC$",
                   "name": "svcctl", "status": "STATUS_SUCCESS"}),
            json!({"log": "dce_rpc", "ts": at(320), "endpoint": "svcctl", "operation": "CreateServiceW",
                   "named_pipe": "\\PIPE\\svcctl", "opnum": 12, "service_name": service,
                   "binary_path": format!("%systemroot%\\{exe}"), "status": "ok"}),
            json!({"log": "dce_rpc", "ts": at(340), "endpoint": "svcctl", "operation": "StartServiceW",
                   "opnum": 19, "status": "ok"}),
            json!({"log": "dce_rpc", "ts": at(2900), "endpoint": "svcctl", "operation": "DeleteService",
                   "opnum": 2, "status": "ok"}),
        ];
        if i % 50 == 0 {
            records.push(
                json!({"log": "anomaly", "ts": at(5), "kind": "gap", "layer": "tcp",
                                "detail": "content gap of 1448 bytes"}),
            );
        }
        for mut r in records {
            for (k, v) in conn.as_object().unwrap() {
                r[k] = v.clone();
            }
            serde_json::to_writer(&mut events, &r)?;
            events.write_all(b"\n")?;
        }
        if i % 10 == 3 {
            let signal = Alert::Signal(SignalAlert {
                ts: at(3000),
                id: format!("S{i:06}"),
                signal: "admin-share-executable",
                attack: vec!["T1570"],
                severity: Severity::Medium,
                src_ip: host(src),
                dst_ip: Some(host(dst)),
                user: Some(user.into()),
                share: Some("ADMIN$".into()),
                upload: Some(Upload {
                    share: "ADMIN$".into(),
                    name: format!("{}.exe", rng.name(6)),
                    size: 4096,
                    sha256: None,
                    pe: true,
                    referenced: false,
                }),
                service_name: None,
                changes: vec![],
                targets: vec![],
                reason: "executable written to an admin share, no service around it".into(),
                evidence: vec![],
                suppressed_by: None,
            });
            serde_json::to_writer(&mut alerts, &signal)?;
            alerts.write_all(b"\n")?;
            written.signals += 1;
        }
        if i % 20 == 5 {
            let dst = host(rng.below(hosts));
            let session = conn_fields(2 * i + 2, dst);
            let vis = Alert::Visibility(VisibilityAlert {
                ts: at(3100),
                uid: session.uid.to_string(),
                flow: session.flow(),
                src_ip: host(src),
                dst_ip: dst,
                session_id: 0x4000_0041 + i,
                visibility: "smb3-encrypted".into(),
                user: Some(user.into()),
                domain: Some(domain.into()),
                workstation: None,
                dialect: Some("SMB 3.1.1".into()),
                cipher: Some("AES-128-GCM".into()),
                decrypted: false,
                reason: "SMB3 session is encrypted: the sensor cannot see inside it".into(),
            });
            serde_json::to_writer(&mut alerts, &vis)?;
            alerts.write_all(b"\n")?;
            written.visibility += 1;
        }
    }
    alerts.flush()?;
    events.flush()?;
    Ok(written)
}
