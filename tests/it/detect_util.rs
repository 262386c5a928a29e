//! Hand-made event sequences mirroring what the protocol layers emit for real captures
//! (see /work/shared/lab-notes.md for the impacket / Samba sequences).
#![allow(dead_code)]

use psexec_sensor::dcerpc::Transport;
use psexec_sensor::detect::{Detector, Rules};
use psexec_sensor::event::alert::{Alert, SignalAlert, TechniqueAlert};
use psexec_sensor::event::*;
use psexec_sensor::flow::Uid;
use psexec_sensor::time::Ts;
use std::net::IpAddr;

pub const ATT: &str = "192.0.2.10";
pub const VIC: &str = "192.0.2.20";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ts(secs: f64) -> Ts {
    Ts((secs * 1e9).round() as u64 + 1_700_000_000_000_000_000)
}

pub fn conn(t: f64, src: &str, dst: &str, port: u16) -> ConnFields {
    ConnFields {
        ts: ts(t),
        uid: Uid(port as u64 * 7 + 1),
        orig_h: ip(src),
        orig_p: 50000,
        resp_h: ip(dst),
        resp_p: port,
    }
}

/// Builds events for one (source, target) pair at increasing times.
pub struct Seq {
    pub src: String,
    pub dst: String,
    pub events: Vec<Event>,
}

impl Seq {
    pub fn new(src: &str, dst: &str) -> Seq {
        Seq {
            src: src.into(),
            dst: dst.into(),
            events: vec![],
        }
    }
    fn c(&self, t: f64) -> ConnFields {
        conn(t, &self.src, &self.dst, 445)
    }
    pub fn auth(&mut self, t: f64, user: &str, domain: &str) -> &mut Self {
        self.events.push(Event::SmbAuth(SmbAuth {
            conn: self.c(t),
            session_id: Some(1),
            user: Some(user.into()),
            domain: Some(domain.into()),
            workstation: Some("ATTACKER".into()),
            auth: "ntlmssp",
            dialect: "SMB 3.1.1".into(),
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            user_source: None,
            ticket: None,
        }));
        self
    }
    pub fn tree(&mut self, t: f64, share: &str) -> &mut Self {
        self.events.push(Event::SmbMapping(SmbMapping {
            conn: self.c(t),
            path: format!("\\\\{}\\{}", self.dst, share),
            share: share.into(),
            service: None,
            share_type: if share == "IPC$" { "PIPE" } else { "DISK" },
            native_file_system: None,
            status: "STATUS_SUCCESS".into(),
            smb_version: SmbVersion::Smb2,
            session_id: Some(1),
            tree_id: Some(1),
        }));
        self
    }
    pub fn write(
        &mut self,
        t: f64,
        share: &str,
        name: &str,
        bytes: u64,
        pe: bool,
        sha: Option<&str>,
    ) -> &mut Self {
        self.events.push(Event::SmbFiles(SmbFiles {
            conn: self.c(t),
            fuid: Some("00".into()),
            action: Some(FileAction::FileWrite),
            path: format!("\\\\{}\\{}", self.dst, share),
            share: share.into(),
            name: name.into(),
            status: "STATUS_SUCCESS".into(),
            bytes_written: Some(bytes),
            write_count: Some(1),
            first_write_ts: Some(ts(t)),
            pe: Some(pe),
            sha256: sha.map(str::to_string),
            hash_complete: Some(sha.is_some()),
            ..Default::default()
        }));
        self
    }
    pub fn pipe(&mut self, t: f64, name: &str) -> &mut Self {
        self.events.push(Event::SmbFiles(SmbFiles {
            conn: self.c(t),
            action: Some(FileAction::PipeOpen),
            path: format!("\\\\{}\\IPC$", self.dst),
            share: "IPC$".into(),
            name: name.into(),
            status: "STATUS_SUCCESS".into(),
            ..Default::default()
        }));
        self
    }
    /// A DCE-RPC call over the svcctl named pipe (or `transport`).
    #[allow(clippy::too_many_arguments)]
    pub fn call_on(
        &mut self,
        t: f64,
        transport: &'static str,
        endpoint: &str,
        opnum: u16,
        operation: &str,
        args: DceArgs,
        status: &str,
        stub_encrypted: bool,
    ) -> &mut Self {
        let port = if transport == "tcp" { 49667 } else { 445 };
        self.events.push(Event::DceRpc(Box::new(DceRpc {
            conn: conn(t, &self.src, &self.dst, port),
            rtt: Some(0.001),
            named_pipe: if transport == "smb_pipe" {
                Some(format!("\\PIPE\\{endpoint}"))
            } else {
                None
            },
            endpoint: endpoint.into(),
            operation: operation.into(),
            transport: Transport::from_name(transport).expect("smb_pipe or tcp"),
            opnum: Some(opnum),
            call_id: 1,
            ctx_id: Some(0),
            uuid: None,
            auth_type: None,
            auth_level: None,
            stub_encrypted,
            decrypted: false,
            status: status.into(),
            request_stub_len: None,
            request_frags: None,
            interfaces: None,
            inferred_operation: None,
            principal: Default::default(),
            args,
        })));
        self
    }
    pub fn svc(
        &mut self,
        t: f64,
        opnum: u16,
        operation: &str,
        args: DceArgs,
        status: &str,
    ) -> &mut Self {
        self.call_on(
            t, "smb_pipe", "svcctl", opnum, operation, args, status, false,
        )
    }
    pub fn bind(
        &mut self,
        t: f64,
        transport: &'static str,
        endpoints: &[(&str, &str)],
    ) -> &mut Self {
        let interfaces = endpoints
            .iter()
            .enumerate()
            .map(|(i, (ep, uuid))| BindContext {
                ctx_id: i as u16,
                uuid: uuid.to_string(),
                version: "2.0".into(),
                endpoint: ep.to_string(),
                transfer_syntax: Some("NDR".into()),
                result: Some("acceptance"),
            })
            .collect();
        let port = if transport == "tcp" { 49667 } else { 445 };
        self.events.push(Event::DceRpc(Box::new(DceRpc {
            conn: conn(t, &self.src, &self.dst, port),
            rtt: None,
            named_pipe: None,
            endpoint: endpoints.last().map(|x| x.0).unwrap_or("").into(),
            operation: "bind".into(),
            transport: Transport::from_name(transport).expect("smb_pipe or tcp"),
            opnum: None,
            call_id: 1,
            ctx_id: None,
            uuid: None,
            auth_type: None,
            auth_level: None,
            stub_encrypted: false,
            decrypted: false,
            status: "ok".into(),
            request_stub_len: None,
            request_frags: None,
            interfaces: Some(interfaces),
            inferred_operation: None,
            principal: Default::default(),
            args: DceArgs::default(),
        })));
        self
    }
    pub fn open_scm(&mut self, t: f64, machine: &str) -> &mut Self {
        let a = DceArgs {
            machine_name: Some(machine.into()),
            database: Some("ServicesActive".into()),
            access: Some(0x3f),
            response_handle: Some("scm".into()),
            return_code: Some(0),
            ..Default::default()
        };
        self.svc(t, 15, "OpenSCManagerW", a, "ok")
    }
    pub fn open_service(&mut self, t: f64, name: &str, handle: &str, rc: u32) -> &mut Self {
        let a = DceArgs {
            service_name: Some(name.into()),
            handle: Some("scm".into()),
            response_handle: if rc == 0 { Some(handle.into()) } else { None },
            return_code: Some(rc),
            ..Default::default()
        };
        self.svc(t, 16, "OpenServiceW", a, "ok")
    }
    pub fn create(
        &mut self,
        t: f64,
        name: &str,
        path: &str,
        handle: Option<&str>,
        status: &str,
    ) -> &mut Self {
        let a = DceArgs {
            service_name: Some(name.into()),
            display_name: Some(name.into()),
            binary_path: Some(path.into()),
            service_type: Some(0x10),
            start_type: Some(3),
            handle: Some("scm".into()),
            response_handle: handle.map(str::to_string),
            return_code: if status == "ok" { Some(0) } else { None },
            ..Default::default()
        };
        self.svc(t, 12, "CreateServiceW", a, status)
    }
    pub fn start(&mut self, t: f64, handle: &str) -> &mut Self {
        let a = DceArgs {
            handle: Some(handle.into()),
            return_code: Some(0),
            ..Default::default()
        };
        self.svc(t, 19, "StartServiceW", a, "ok")
    }
    pub fn delete(&mut self, t: f64, handle: &str) -> &mut Self {
        let a = DceArgs {
            handle: Some(handle.into()),
            return_code: Some(0),
            ..Default::default()
        };
        self.svc(t, 2, "DeleteService", a, "ok")
    }
    pub fn done(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

pub fn run_with(rules: Rules, events: &[Event]) -> Vec<Alert> {
    let mut d = Detector::new(rules);
    let mut out = vec![];
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.conn().map(|c| c.ts));
    for e in sorted {
        d.on_event(e, &mut out);
    }
    d.finish(&mut out);
    out
}

pub fn run(events: &[Event]) -> Vec<Alert> {
    run_with(Rules::embedded(), events)
}

pub fn techniques(a: &[Alert]) -> Vec<&TechniqueAlert> {
    a.iter().filter_map(|a| a.as_technique()).collect()
}

pub fn signals(a: &[Alert]) -> Vec<&SignalAlert> {
    a.iter()
        .filter_map(|a| {
            if let Alert::Signal(s) = a {
                Some(s)
            } else {
                None
            }
        })
        .collect()
}

pub fn one(a: &[Alert]) -> &TechniqueAlert {
    let t = techniques(a);
    assert_eq!(
        t.len(),
        1,
        "expected one technique alert, got {}: {:#?}",
        t.len(),
        t
    );
    t[0]
}

pub const SHA: &str = "3c2fe308c0a563e06263bbacf793bbe9b2259d795fcc36b953793a7e499e7f71";

/// impacket psexec.py against Samba, as in lab/a_psexec_default.pcap (lab notes).
pub fn impacket_psexec(s: &mut Seq, t0: f64) {
    s.auth(t0, "admin", "WORKGROUP")
        .tree(t0 + 0.01, "IPC$")
        .pipe(t0 + 0.02, "svcctl")
        .pipe(t0 + 0.03, "srvsvc")
        .bind(
            t0 + 0.04,
            "smb_pipe",
            &[("srvsvc", "4b324fc8-1670-01d3-1278-5a47bf6ee188")],
        )
        .call_on(
            t0 + 0.05,
            "smb_pipe",
            "srvsvc",
            15,
            "NetrShareEnum",
            DceArgs::default(),
            "ok",
            false,
        )
        .tree(t0 + 0.06, "ADMIN$")
        .tree(t0 + 0.07, "ADMIN$")
        .write(t0 + 0.10, "ADMIN$", "zeCGSXch.exe", 56320, true, Some(SHA))
        .bind(
            t0 + 0.20,
            "smb_pipe",
            &[("svcctl", "367abb81-9844-35f1-ad32-98f038001003")],
        )
        .open_scm(t0 + 0.21, "DUMMY")
        .open_service(t0 + 0.22, "nUwj", "", 0x424)
        .create(
            t0 + 0.23,
            "nUwj",
            "%systemroot%\\zeCGSXch.exe",
            None,
            "nca_s_op_rng_error",
        );
}
