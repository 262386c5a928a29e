//! Conversation-level tests: real pipe bytes from the lab captures (extracted by
//! `scripts/extract_dcerpc_pipe.py` into tests/data/dcerpc/*.pipe.txt) and hand-built PDUs for the
//! cases the lab does not show (fragments, NDR64, big-endian, packet privacy, decoys, epm).

use super::epm::build::tower;
use super::interfaces::{EPMAPPER, SVCCTL};
use super::ndr::uuid_bytes_le;
use super::pdu::build::*;
use super::pdu::*;
use super::response_shapes::InferredOp;
use super::svcctl::build::{create_service_w, W};
use super::*;
use crate::event::{DceRpc, Event};
use crate::flow::{ConnId, Uid};
use crate::wire::parsed;

fn ctx() -> FlowCtx {
    FlowCtx {
        conn: ConnId {
            orig_h: "192.0.2.10".parse().unwrap(),
            orig_p: 50000,
            resp_h: "192.0.2.20".parse().unwrap(),
            resp_p: 445,
        },
        uid: Uid(7),
    }
}

fn dce(sink: &Sink) -> Vec<&DceRpc> {
    sink.events
        .iter()
        .filter_map(|e| match e {
            Event::DceRpc(d) => Some(d.as_ref()),
            _ => None,
        })
        .collect()
}

/// Per pipe (file id) or TCP stream: its messages (direction, bytes, frame number) in capture order.
type Pipes = Vec<(String, Vec<(Direction, Vec<u8>, u64)>)>;

/// Lines `<frame> <c|s> <fileid> <hex>` grouped by file id, in capture order.
fn fixture(name: &str) -> Pipes {
    fixture_at(&format!(
        "{}/tests/data/dcerpc/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn fixture_at(path: &str) -> Pipes {
    let text = std::fs::read_to_string(path).expect("fixture");
    let mut out: Pipes = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let dir = if f[1] == "c" {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let bytes: Vec<u8> = (0..f[3].len() / 2)
            .map(|i| u8::from_str_radix(&f[3][i * 2..i * 2 + 2], 16).unwrap())
            .collect();
        match out.iter_mut().find(|(fid, _)| fid == f[2]) {
            Some((_, v)) => v.push((dir, bytes, f[0].parse().unwrap())),
            None => out.push((f[2].to_string(), vec![(dir, bytes, f[0].parse().unwrap())])),
        }
    }
    out
}

/// Feeds every pipe of a fixture to its own Conversation; `split` cuts every write in two there.
fn run_fixture(name: &str, pipe: Option<&str>, split: Option<usize>) -> Sink {
    let mut sink = Sink::new();
    for (_, msgs) in fixture(name) {
        let mut conv = Conversation::new(Transport::SmbPipe, pipe);
        for (dir, b, frame) in msgs.iter() {
            // Frame numbers as time keep the order across pipes.
            let ts = Ts::from_secs(1000 + frame);
            match split {
                Some(at) if at < b.len() => {
                    conv.data(&ctx(), ts, *dir, &b[..at], &mut sink);
                    conv.data(&ctx(), ts, *dir, &b[at..], &mut sink);
                }
                _ => conv.data(&ctx(), ts, *dir, b, &mut sink),
            }
        }
        conv.close(&ctx(), Ts::from_secs(2000), &mut sink);
    }
    sink
}

fn find<'a>(ev: &[&'a DceRpc], op: &str) -> &'a DceRpc {
    ev.iter()
        .find(|e| e.operation == op)
        .copied()
        .unwrap_or_else(|| panic!("no {op} in {ev:#?}"))
}

#[test]
fn lab_psexec_default_create_service() {
    let sink = run_fixture("a_psexec_default.pipe.txt", None, None);
    let ev = dce(&sink);
    let ops: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| (e.endpoint.as_str(), e.operation.as_str()))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("srvsvc", "bind"),
            ("srvsvc", "NetrShareEnum"),
            ("svcctl", "bind"),
            ("svcctl", "OpenSCManagerW"),
            ("svcctl", "OpenServiceW"),
            ("svcctl", "CreateServiceW"),
        ]
    );
    let create = find(&ev, "CreateServiceW");
    assert_eq!(create.args.service_name.as_deref(), Some("nUwj"));
    assert_eq!(
        create.args.binary_path.as_deref(),
        Some("%systemroot%\\zeCGSXch.exe")
    );
    assert_eq!(create.status, "nca_s_op_rng_error"); // Samba refuses CreateServiceW
    assert_eq!(create.named_pipe.as_deref(), Some("\\pipe\\svcctl"));
    assert_eq!(create.transport, Transport::SmbPipe);
    assert_eq!(create.opnum, Some(12));
    assert!(create.rtt.is_some());
    // Handles chain: the SCM handle OpenSCManagerW returned is the one CreateServiceW uses.
    let open = find(&ev, "OpenSCManagerW");
    assert_eq!(open.args.machine_name.as_deref(), Some("DUMMY"));
    assert_eq!(open.args.database.as_deref(), Some("ServicesActive"));
    assert!(open.args.response_handle.is_some());
    assert_eq!(open.args.response_handle, create.args.handle);
    assert_eq!(open.args.return_code, Some(0));
    // OpenServiceW for the not-yet-existing service fails with ERROR_SERVICE_DOES_NOT_EXIST.
    let os = find(&ev, "OpenServiceW");
    assert_eq!(
        (os.args.service_name.as_deref(), os.args.return_code),
        (Some("nUwj"), Some(1060))
    );
    let bind = &ev[2];
    let ifs = bind.interfaces.as_ref().unwrap();
    assert_eq!(
        (ifs.len(), ifs[0].result, ifs[0].transfer_syntax.as_deref()),
        (1, Some("acceptance"), Some("NDR"))
    );
}

#[test]
fn lab_smbexec_and_services_create() {
    let sink = run_fixture("c_smbexec.pipe.txt", None, None);
    let c = find(&dce(&sink), "CreateServiceW").clone();
    let p = c.args.binary_path.unwrap();
    assert!(p.starts_with("%COMSPEC% /Q /c echo "), "{p}");
    assert!(p.contains("__output"), "{p}");

    let sink = run_fixture("e_services_create_start.pipe.txt", None, None);
    let ev = dce(&sink);
    let c = find(&ev, "CreateServiceW");
    assert_eq!(c.args.service_name.as_deref(), Some("LabEvilSvc"));
    assert_eq!(c.args.display_name.as_deref(), Some("LabEvilSvc"));
    assert_eq!(
        c.args.binary_path.as_deref(),
        Some("C:\\Windows\\Temp\\payload.exe")
    );
    assert_eq!(
        find(&ev, "OpenServiceW").args.service_name.as_deref(),
        Some("LabEvilSvc")
    );
}

#[test]
fn lab_benign_query_names_operations_in_order() {
    let sink = run_fixture("h_benign_svc_query.pipe.txt", None, None);
    let ops: Vec<String> = dce(&sink)
        .iter()
        .filter(|e| e.operation != "bind")
        .map(|e| e.operation.clone())
        .collect();
    assert_eq!(
        ops,
        [
            "OpenSCManagerW",
            "EnumServicesStatusW",
            "EnumServicesStatusW",
            "CloseServiceHandle",
            "OpenSCManagerW",
            "OpenServiceW",
            "QueryServiceStatus",
            "CloseServiceHandle",
            "OpenSCManagerW",
            "OpenServiceW",
            "QueryServiceConfigW",
            "QueryServiceConfigW",
            "CloseServiceHandle",
        ]
    );
    assert!(dce(&sink).iter().all(|e| e.status == "ok"));
}

#[test]
fn sysinternals_psexec_wow64_create_and_chain() {
    // 401trg capture (Apache-2.0): PsExec creates PSEXESVC with opnum 45 over \\pipe\\ntsvcs.
    let sink = run_fixture("401trg_smb_psexec_add_user.pipe.txt", None, None);
    let ev = dce(&sink);
    let c = find(&ev, "CreateServiceWOW64W");
    assert_eq!(c.args.service_name.as_deref(), Some("PSEXESVC"));
    assert_eq!(
        c.args.binary_path.as_deref(),
        Some("%SystemRoot%\\PSEXESVC.exe")
    );
    assert_eq!(c.named_pipe.as_deref(), Some("\\pipe\\ntsvcs"));
    let open = find(&ev, "OpenSCManagerW");
    assert_eq!(open.args.machine_name.as_deref(), Some("dc1"));
    assert_eq!(open.args.response_handle, c.args.handle);
    // OpenServiceW → StartServiceW chain on the service handle; later DeleteService.
    let os = find(&ev, "OpenServiceW");
    let start = find(&ev, "StartServiceW");
    assert_eq!(os.args.response_handle, start.args.handle);
    assert_eq!(start.args.argc, Some(0));
    assert!(ev
        .iter()
        .any(|e| e.operation == "DeleteService" && e.args.return_code == Some(0)));
    assert!(ev
        .iter()
        .any(|e| e.operation == "ControlService" && e.args.control == Some(1)));
}

#[test]
fn windows_at_netr_job_add_over_ndr64() {
    // 401trg capture (Apache-2.0): `at` over \\PIPE\\atsvc, the server accepting NDR64 only.
    let sink = run_fixture("401trg_smb_at_schedule.pipe.txt", None, None);
    let ev = dce(&sink);
    let ifs = find(&ev, "bind").interfaces.clone().unwrap();
    assert_eq!(ifs[1].transfer_syntax.as_deref(), Some("NDR64"));
    assert_eq!(ifs[1].result, Some("acceptance"));
    let j = find(&ev, "NetrJobAdd");
    assert_eq!(j.endpoint, "atsvc");
    assert_eq!(j.args.command.as_deref(), Some("c:\\mimikatz.exe"));
    assert_eq!(j.args.machine_name.as_deref(), Some("\\\\admin-pc"));
}

#[test]
fn create_service_split_across_two_writes_at_every_cut() {
    let pipes = fixture("a_psexec_default.pipe.txt");
    let svcctl = &pipes[1].1;
    let create_req = &svcctl[6].1;
    assert_eq!(create_req[2], PTYPE_REQUEST);
    for cut in 1..create_req.len() {
        let mut sink = Sink::new();
        let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
        for (i, (dir, b, _)) in svcctl.iter().enumerate() {
            if i == 6 {
                conv.data(&ctx(), Ts(1), *dir, &b[..cut], &mut sink);
                conv.data(&ctx(), Ts(2), *dir, &b[cut..], &mut sink);
            } else {
                conv.data(&ctx(), Ts(3), *dir, b, &mut sink);
            }
        }
        let ev = dce(&sink);
        let c = find(&ev, "CreateServiceW");
        assert_eq!(c.args.service_name.as_deref(), Some("nUwj"), "cut {cut}");
        assert_eq!(
            c.args.binary_path.as_deref(),
            Some("%systemroot%\\zeCGSXch.exe"),
            "cut {cut}"
        );
    }
}

#[test]
fn two_pdus_in_one_write_and_whole_stream_in_one_write() {
    let pipes = fixture("a_psexec_default.pipe.txt");
    let svcctl = &pipes[1].1;
    let client: Vec<u8> = svcctl
        .iter()
        .filter(|(d, _, _)| *d == Direction::ToServer)
        .flat_map(|(_, b, _)| b.clone())
        .collect();
    let server: Vec<u8> = svcctl
        .iter()
        .filter(|(d, _, _)| *d == Direction::ToClient)
        .flat_map(|(_, b, _)| b.clone())
        .collect();
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, None);
    conv.data(&ctx(), Ts(1), Direction::ToServer, &client, &mut sink);
    conv.data(&ctx(), Ts(2), Direction::ToClient, &server, &mut sink);
    let ev = dce(&sink);
    assert_eq!(ev.len(), 4);
    assert_eq!(conv.pdus_seen(), 8);
    assert_eq!(
        find(&ev, "CreateServiceW").args.service_name.as_deref(),
        Some("nUwj")
    );
    assert_eq!(find(&ev, "OpenServiceW").status, "ok");
}

fn bind_ack_pdu(call_id: u32, sec: &str, results: &[(u16, &str)]) -> Vec<u8> {
    pdu(
        PTYPE_BIND_ACK,
        3,
        call_id,
        &bind_ack_body(sec, results),
        None,
    )
}

fn create_stub(name: &str, path: &str) -> Vec<u8> {
    let mut w = W::new(false);
    create_service_w(&mut w, &[7; 20], name, Some(name), path);
    w.v
}

fn response_ok_create() -> Vec<u8> {
    let mut w = W::new(false);
    w.ptr(0).handle(&[9; 20]).u32(0);
    w.v
}

#[test]
fn request_in_three_fragments() {
    let stub = create_stub("FragSvc", "C:\\Windows\\frag.exe");
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, None);
    conv.data(
        &ctx(),
        Ts(1),
        Direction::ToServer,
        &pdu(
            PTYPE_BIND,
            3,
            1,
            &bind_body(&[(0, SVCCTL, 2, &[NDR20_UUID])]),
            None,
        ),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(2),
        Direction::ToClient,
        &bind_ack_pdu(1, "\\PIPE\\svcctl", &[(0, NDR20_UUID)]),
        &mut sink,
    );
    let (a, rest) = stub.split_at(13);
    let (b, c) = rest.split_at(29);
    let mut all = Vec::new();
    for (part, flags) in [(a, PFC_FIRST_FRAG), (b, 0), (c, PFC_LAST_FRAG)] {
        all.extend(pdu(
            PTYPE_REQUEST,
            flags,
            2,
            &request_body(0, 12, part),
            None,
        ));
    }
    conv.data(&ctx(), Ts(3), Direction::ToServer, &all, &mut sink);
    conv.data(
        &ctx(),
        Ts(4),
        Direction::ToClient,
        &pdu(
            PTYPE_RESPONSE,
            3,
            2,
            &response_body(0, &response_ok_create()),
            None,
        ),
        &mut sink,
    );
    let ev = dce(&sink);
    let c = find(&ev, "CreateServiceW");
    assert_eq!(c.request_frags, Some(3));
    assert_eq!(c.request_stub_len, Some(stub.len() as u32));
    assert_eq!(c.args.service_name.as_deref(), Some("FragSvc"));
    assert_eq!(c.args.binary_path.as_deref(), Some("C:\\Windows\\frag.exe"));
    assert_eq!(
        c.args.response_handle.as_deref(),
        Some(crate::event::hex(&[9; 20]).as_str())
    );
    assert_eq!(c.named_pipe.as_deref(), Some("\\PIPE\\svcctl"));
    assert_eq!(c.rtt, Some(1e-9)); // Ts(3) → Ts(4) is 1 ns
}

#[test]
fn bind_of_twelve_items_with_svcctl_last() {
    let decoys: Vec<String> = (0..11)
        .map(|i| format!("{:08x}-1111-2222-3333-444455556666", 0xabc0_0000u32 + i))
        .collect();
    let mut items: Vec<(u16, &str, u16, &[&str])> = decoys
        .iter()
        .enumerate()
        .map(|(i, u)| (i as u16, u.as_str(), 1, &[NDR20_UUID][..]))
        .collect();
    items.push((11, SVCCTL, 2, &[NDR20_UUID]));
    let mut results: Vec<(u16, &str)> = (0..11).map(|_| (2u16, NDR20_UUID)).collect();
    results.push((0, NDR20_UUID));
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    conv.data(
        &ctx(),
        Ts(1),
        Direction::ToServer,
        &pdu(PTYPE_BIND, 3, 1, &bind_body(&items), None),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(2),
        Direction::ToClient,
        &bind_ack_pdu(1, "\\PIPE\\svcctl", &results),
        &mut sink,
    );
    let stub = create_stub("MsfSvc", "%SYSTEMROOT%\\abcdEFGH.exe");
    conv.data(
        &ctx(),
        Ts(3),
        Direction::ToServer,
        &pdu(PTYPE_REQUEST, 3, 2, &request_body(11, 12, &stub), None),
        &mut sink,
    );
    conv.close(&ctx(), Ts(4), &mut sink);
    let ev = dce(&sink);
    let bind = find(&ev, "bind");
    let ifs = bind.interfaces.as_ref().unwrap();
    assert_eq!(ifs.len(), 12);
    assert_eq!(ifs[0].endpoint, format!("unknown-{}", decoys[0]));
    assert_eq!(ifs[0].result, Some("provider_rejection"));
    assert_eq!(
        (ifs[11].endpoint.as_str(), ifs[11].result),
        ("svcctl", Some("acceptance"))
    );
    assert_eq!((bind.endpoint.as_str(), bind.ctx_id), ("svcctl", Some(11)));
    let c = find(&ev, "CreateServiceW");
    assert_eq!(c.uuid.as_deref(), Some(SVCCTL));
    assert_eq!(
        c.args.binary_path.as_deref(),
        Some("%SYSTEMROOT%\\abcdEFGH.exe")
    );
    assert_eq!(c.status, "<no response>");
    assert_eq!(c.rtt, None);
}

#[test]
fn ndr64_negotiated_stub_decoded_as_ndr64() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::Tcp, None);
    let items: [(u16, &str, u16, &[&str]); 2] =
        [(0, SVCCTL, 2, &[NDR20_UUID]), (1, SVCCTL, 2, &[NDR64_UUID])];
    conv.data(
        &ctx(),
        Ts(1),
        Direction::ToServer,
        &pdu(PTYPE_BIND, 3, 1, &bind_body(&items), None),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(2),
        Direction::ToClient,
        &bind_ack_pdu(1, "49667", &[(2, NDR20_UUID), (0, NDR64_UUID)]),
        &mut sink,
    );
    let mut w = W::ndr64();
    create_service_w(&mut w, &[7; 20], "Svc64", None, "C:\\x64.exe");
    conv.data(
        &ctx(),
        Ts(3),
        Direction::ToServer,
        &pdu(PTYPE_REQUEST, 3, 2, &request_body(1, 45, &w.v), None),
        &mut sink,
    );
    conv.close(&ctx(), Ts(4), &mut sink);
    let ev = dce(&sink);
    let ifs = find(&ev, "bind").interfaces.clone().unwrap();
    assert_eq!(ifs[1].transfer_syntax.as_deref(), Some("NDR64"));
    let c = find(&ev, "CreateServiceWOW64W");
    assert_eq!(c.args.service_name.as_deref(), Some("Svc64"));
    assert_eq!(c.args.binary_path.as_deref(), Some("C:\\x64.exe"));
    assert_eq!(
        (c.transport, c.named_pipe.as_deref()),
        (Transport::Tcp, Some("49667"))
    );
}

#[test]
fn big_endian_data_representation() {
    let mut w = W::new(true);
    create_service_w(&mut w, &[7; 20], "BeSvc", None, "C:\\be.exe");
    let mut body = Vec::new();
    body.extend_from_slice(&(w.v.len() as u32).to_be_bytes());
    body.extend_from_slice(&0u16.to_be_bytes());
    body.extend_from_slice(&12u16.to_be_bytes());
    body.extend_from_slice(&w.v);
    let mut p = header(
        PTYPE_REQUEST,
        3,
        (16 + body.len()) as u16,
        0,
        0x0100_0002,
        true,
    );
    p.extend_from_slice(&body);
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl")); // bind missed: pipe hint
    conv.data(&ctx(), Ts(1), Direction::ToServer, &p, &mut sink);
    let mut resp = header(PTYPE_FAULT, 3, 32, 0, 0x0100_0002, true);
    resp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    resp.extend_from_slice(&5u32.to_be_bytes());
    resp.extend_from_slice(&[0; 4]);
    conv.data(&ctx(), Ts(2), Direction::ToClient, &resp, &mut sink);
    let ev = dce(&sink);
    assert_eq!(ev.len(), 1);
    let c = ev[0];
    assert_eq!(
        (c.endpoint.as_str(), c.operation.as_str(), c.call_id),
        ("svcctl", "CreateServiceW", 0x0100_0002)
    );
    assert_eq!(c.args.service_name.as_deref(), Some("BeSvc"));
    assert_eq!(c.args.binary_path.as_deref(), Some("C:\\be.exe"));
    assert_eq!(c.status, "nca_s_fault_access_denied");
    assert_eq!(c.uuid, None); // guessed from the pipe name, not bound
    assert_eq!(c.named_pipe.as_deref(), Some("\\PIPE\\svcctl"));
}

#[test]
fn auth_trailer_padding_and_privacy() {
    let stub = create_stub("AuthSvc", "C:\\auth.exe"); // not a multiple of 4 → pad bytes
    for (level, encrypted) in [(2u8, false), (5, false), (6, true)] {
        let mut sink = Sink::new();
        let mut conv = Conversation::new(Transport::Tcp, None);
        let bind = pdu(
            PTYPE_BIND,
            3,
            1,
            &bind_body(&[(0, SVCCTL, 2, &[NDR20_UUID])]),
            Some((10, level, &[0x4e; 40])),
        );
        conv.data(&ctx(), Ts(1), Direction::ToServer, &bind, &mut sink);
        conv.data(
            &ctx(),
            Ts(2),
            Direction::ToClient,
            &bind_ack_pdu(1, "49667", &[(0, NDR20_UUID)]),
            &mut sink,
        );
        let mut odd = stub.clone();
        odd.push(0xee); // trailing stub byte: 1..3 pad bytes follow before the sec_trailer
        let req = pdu(
            PTYPE_REQUEST,
            3,
            2,
            &request_body(0, 12, &odd),
            Some((10, level, &[0x55; 16])),
        );
        assert!(req.len() % 4 == 0);
        conv.data(&ctx(), Ts(3), Direction::ToServer, &req, &mut sink);
        conv.close(&ctx(), Ts(4), &mut sink);
        let ev = dce(&sink);
        let bind_ev = find(&ev, "bind");
        assert_eq!(bind_ev.auth_type.as_deref(), Some("ntlmssp"));
        let c = find(&ev, "CreateServiceW");
        assert_eq!(c.stub_encrypted, encrypted, "level {level}");
        assert_eq!(c.auth_level, Some(auth_level_name(level)));
        assert_eq!(
            c.request_stub_len,
            Some(odd.len() as u32),
            "padding and verifier stripped"
        );
        if encrypted {
            assert_eq!(c.args.service_name, None);
        } else {
            assert_eq!(c.args.service_name.as_deref(), Some("AuthSvc"));
            assert_eq!(c.args.binary_path.as_deref(), Some("C:\\auth.exe"));
        }
    }
}

#[test]
fn ept_map_over_tcp_gives_port_and_expectation() {
    let mut sink = Sink::new();
    let mut tcp = TcpParser::new(ctx());
    tcp.data(
        Ts(1),
        Direction::ToServer,
        &pdu(
            PTYPE_BIND,
            3,
            1,
            &bind_body(&[(0, EPMAPPER, 3, &[NDR20_UUID])]),
            None,
        ),
        &mut sink,
    );
    tcp.data(
        Ts(2),
        Direction::ToClient,
        &bind_ack_pdu(1, "135", &[(0, NDR20_UUID)]),
        &mut sink,
    );
    let mut w = W::new(false);
    w.ptr(1);
    w.v.extend_from_slice(&[0; 16]);
    let t = tower(SVCCTL, 2, 0, [0, 0, 0, 0]);
    w.ptr(2).u32(t.len() as u32).u32(t.len() as u32);
    w.v.extend_from_slice(&t);
    w.align(4);
    w.handle(&[0; 20]).u32(4);
    tcp.data(
        Ts(3),
        Direction::ToServer,
        &pdu(PTYPE_REQUEST, 3, 2, &request_body(0, 3, &w.v), None),
        &mut sink,
    );
    let t = tower(SVCCTL, 2, 49668, [192, 0, 2, 20]);
    let mut r = W::new(false);
    r.handle(&[0; 20])
        .u32(1)
        .u32(4)
        .u32(0)
        .u32(1)
        .ptr(3)
        .u32(t.len() as u32)
        .u32(t.len() as u32);
    r.v.extend_from_slice(&t);
    r.align(4);
    r.u32(0);
    tcp.data(
        Ts(4),
        Direction::ToClient,
        &pdu(PTYPE_RESPONSE, 3, 2, &response_body(0, &r.v), None),
        &mut sink,
    );
    let ev = dce(&sink);
    let m = find(&ev, "ept_map");
    assert_eq!(
        (m.endpoint.as_str(), m.transport),
        ("epmapper", Transport::Tcp)
    );
    assert_eq!(m.args.epm_port, Some(49668));
    assert_eq!(m.args.mapped_endpoint.as_deref(), Some("svcctl"));
    let x = expectation_from_event(m).unwrap();
    assert_eq!(
        (x.server, x.port, x.uuid.as_deref()),
        ("192.0.2.20".parse().unwrap(), 49668, Some(SVCCTL))
    );
    // Learned where it was decoded: the endpoint is in the sink for the flow layer.
    assert_eq!(sink.learned_endpoints, vec![x]);
}

/// dcerpc-dce-iface-01 frame 12: RCreateServiceWOW64W's sealed answer (28-byte stub).
const PSEXEC_SEALED_CREATE: &str = "05000203100000008c004c00030000001c00000000000000450bdd19eaaf63bc0e8f2f22b388b0d69b3728d12eb8a85805a2fae052b01d830906040000000000050407ff0010001c00000000047d639e088e3fea79bb8748b002897e1744061bd89a446c6973bc7831f2188358a123b7d8d52d6a6c008bc1d40054eba08ca624261f2e64b914d9905ba3f3ba";

/// The server's half only. The endpoint mapper's bind_ack and ept_map answer without their
/// requests (captures/public/401trg/20171220_smb_psexec_add_user.pcap frames 54, 56: Windows
/// names svcctl on 49163) teach the port's interface; sealed answers on such a port
/// (captures/public/suricata-verify/dcerpc-dce-iface-01 frames 10, 12, 18: PsExec's
/// OpenSCManagerW, RCreateServiceWOW64W, RStartServiceW under Kerberos packet privacy) are then
/// read by their sizes. (The NDR64 answer of pcap-attack's smbexec is covered by
/// tests/it/one_sided.rs on the shared corpus.)
#[test]
fn server_half_learns_the_interface_from_the_ept_map_answer_and_reads_sealed_sizes() {
    use crate::smb::crypto::testutil::hex;
    let epm_ctx = FlowCtx {
        conn: ConnId {
            orig_h: "192.168.10.31".parse().unwrap(),
            orig_p: 49283,
            resp_h: "192.168.10.10".parse().unwrap(),
            resp_p: 135,
        },
        uid: Uid(1),
    };
    let mut sink = Sink::new();
    let mut epm = TcpParser::new(epm_ctx);
    for (ts, pdu) in [
        (1, "05000c03100000005400000002000000d016d0166f08000004003133350000000200000000000000045d888aeb1cc9119fe808002b10486002000000030003000000000000000000000000000000000000000000"),
        (2, "050002031000000098000000020000008000000000000000000000000000000000000000000000000000000001000000040000000000000001000000030000004b0000004b000000050013000d81bb7a364498f135ad3298f03800100302000200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200c00b0100090400c0a80a0a0000000000"),
    ] {
        epm.data(Ts(ts), Direction::ToClient, &hex(pdu), &mut sink);
    }
    let ev = dce(&sink);
    let m = find(&ev, "ept_map (inferred)");
    assert_eq!(m.inferred_operation, Some(InferredOp::EptMap));
    assert_eq!(
        (m.args.epm_port, m.args.mapped_uuid.as_deref()),
        (Some(49163), Some(SVCCTL))
    );
    let learned = sink.learned_endpoints.clone();
    assert_eq!(learned.len(), 1);
    assert_eq!(
        (
            learned[0].server,
            learned[0].port,
            learned[0].uuid.as_deref()
        ),
        ("192.168.10.10".parse().unwrap(), 49163, Some(SVCCTL))
    );

    let scm_ctx = FlowCtx {
        conn: ConnId {
            orig_p: 49284,
            resp_p: 49163,
            ..epm_ctx.conn
        },
        uid: Uid(2),
    };
    let mut sink = Sink::new();
    let mut scm = TcpParser::with_learned_interface(scm_ctx, learned[0].uuid.clone());
    for (ts, pdu) in [
        (3, "05000203100000008c004c0002000000180000000000000090d9c39d6e2ef320d0828f84ed77de9190dcf5b43bd598d167977bedbecaddba0906080000000000050407ff0010001c00000000047d639d8f63cc3d0b2fb83da8b89c241ab87fbd5e1119edf2ec01077be187ee781401bc8801b7d3192eb5a40282a070cc9b91b7af5c259b476a57a9fe387f6d"),
        (4, PSEXEC_SEALED_CREATE),
        (5, "05000203100000007c004c0006000000040000000000000093bfdcd82acf8327f89cc6d6b92067ea09060c0000000000050407ff0010001c00000000047d63a1a4c92dc82c7ec19c352483c63d81f980522bfb1b9cfa2a5f2ce63bccfa12cbf0a3b32cd2671ad5ec7b69348f93ba0c9cd1f83c316257e825fb1380d5"),
    ] {
        scm.data(Ts(ts), Direction::ToClient, &hex(pdu), &mut sink);
    }
    let ops: Vec<(Option<InferredOp>, &str, bool)> = dce(&sink)
        .iter()
        .map(|d| (d.inferred_operation, d.endpoint.as_str(), d.stub_encrypted))
        .collect();
    assert_eq!(
        ops,
        [
            (Some(InferredOp::OpenScManager), "svcctl", true),
            (Some(InferredOp::CreateService), "svcctl", true),
            (Some(InferredOp::StartOrDelete), "svcctl", true),
        ]
    );
    // Without the learned interface the same answers name nothing.
    let mut sink = Sink::new();
    let mut bare = TcpParser::new(scm_ctx);
    bare.data(
        Ts(4),
        Direction::ToClient,
        &hex(PSEXEC_SEALED_CREATE),
        &mut sink,
    );
    assert_eq!(dce(&sink)[0].inferred_operation, Some(InferredOp::Unknown));
}

#[test]
fn midstream_tcp_without_bind_is_unknown_and_unanswered_calls_flush_at_close() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::Tcp, None);
    let stub = create_stub("X", "Y");
    // Starts in the middle of a PDU: garbage first, then a whole request.
    let mut bytes = vec![0x41; 7];
    bytes.extend(pdu(PTYPE_REQUEST, 3, 5, &request_body(3, 12, &stub), None));
    conv.gap(&ctx(), Ts(0), Direction::ToServer, &mut sink);
    conv.data(&ctx(), Ts(1), Direction::ToServer, &bytes, &mut sink);
    assert!(dce(&sink).is_empty());
    conv.close(&ctx(), Ts(2), &mut sink);
    let ev = dce(&sink);
    assert_eq!(ev.len(), 1);
    assert_eq!(
        (
            ev[0].endpoint.as_str(),
            ev[0].operation.as_str(),
            ev[0].status.as_str()
        ),
        ("unknown", "unknown-12", "<no response>")
    );
    assert_eq!(ev[0].args.service_name, None);
}

#[test]
fn calls_in_flight_are_capped() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    let n = conversation::MAX_DCERPC_CALLS_IN_FLIGHT as u32 + 3;
    for id in 0..n {
        // One packet time: a client-only association logs earlier calls at a later request.
        conv.data(
            &ctx(),
            Ts(1),
            Direction::ToServer,
            &pdu(PTYPE_REQUEST, 3, id, &request_body(0, 6, &[0; 20]), None),
            &mut sink,
        );
    }
    assert_eq!(sink.counters.get("MAX_DCERPC_CALLS_IN_FLIGHT"), 3);
    assert_eq!(dce(&sink).len(), 3);
    assert!(dce(&sink)
        .iter()
        .all(|e| e.operation == "QueryServiceStatus" && e.status == "<no response>"));
}

#[test]
fn stub_cap_truncates_and_reports() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::Tcp, None);
    let chunk = vec![0u8; 60_000];
    let frags = conversation::MAX_DCERPC_STUB_BYTES / chunk.len() + 2;
    for i in 0..frags {
        let flags = if i == 0 {
            PFC_FIRST_FRAG
        } else if i + 1 == frags {
            PFC_LAST_FRAG
        } else {
            0
        };
        conv.data(
            &ctx(),
            Ts(1),
            Direction::ToServer,
            &pdu(PTYPE_REQUEST, flags, 1, &request_body(0, 1, &chunk), None),
            &mut sink,
        );
    }
    conv.close(&ctx(), Ts(2), &mut sink);
    assert_eq!(sink.counters.get("MAX_DCERPC_STUB_BYTES"), 1);
    let ev = dce(&sink);
    // The reported size is what the client sent, beyond what was kept.
    assert_eq!(ev[0].request_stub_len, Some((frags * chunk.len()) as u32));
    assert_eq!(ev[0].request_frags, Some(frags as u32));
}

#[test]
fn looks_like_dcerpc_probe() {
    let b = pdu(
        PTYPE_BIND,
        3,
        1,
        &bind_body(&[(0, SVCCTL, 2, &[NDR20_UUID])]),
        None,
    );
    assert!(Conversation::looks_like_dcerpc(&b));
    assert!(Conversation::looks_like_dcerpc(&b[..4]));
    assert!(!Conversation::looks_like_dcerpc(
        b"\xfeSMB@\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    ));
    let _ = uuid_bytes_le(SVCCTL);
}

#[test]
fn hostile_bytes_never_panic() {
    // Deterministic pseudo-random input, including mutated real PDUs.
    let pipes = fixture("a_psexec_default.pipe.txt");
    let mut seed: u64 = 0x1234_5678;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for round in 0..300 {
        let mut sink = Sink::new();
        let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
        for (dir, b, _) in &pipes[1].1 {
            let mut m = b.clone();
            for _ in 0..(round % 7) {
                let i = next() % m.len();
                m[i] = next() as u8;
            }
            let cut = next() % (m.len() + 1);
            conv.data(&ctx(), Ts(1), *dir, &m[..cut], &mut sink);
            conv.data(&ctx(), Ts(1), *dir, &m[cut..], &mut sink);
        }
        conv.close(&ctx(), Ts(2), &mut sink);
    }
}

/// Helper for cross-checks, not a test: prints the events for a fixture file made by
/// `scripts/extract_dcerpc_pipe.py` (`DCERPC_FIXTURE=/tmp/x.txt cargo test --lib dump_fixture -- --ignored --nocapture`).
#[test]
#[ignore]
fn dump_fixture_from_env() {
    let Ok(path) = std::env::var("DCERPC_FIXTURE") else {
        return;
    };
    let mut sink = Sink::new();
    for (fid, msgs) in fixture_at(&path) {
        let transport = if fid.starts_with("tcp") {
            Transport::Tcp
        } else {
            Transport::SmbPipe
        };
        let mut conv = Conversation::new(transport, None);
        for (dir, b, frame) in msgs.iter() {
            conv.data(&ctx(), Ts::from_secs(*frame), *dir, b, &mut sink);
        }
        conv.close(&ctx(), Ts::from_secs(100_000), &mut sink);
    }
    for e in &sink.events {
        println!("{}", serde_json::to_string(e).unwrap());
    }
}

/// Cross-check against tshark where it decodes svcctl: the same requests (opnum, service name,
/// binary path) in the same order as `scripts/tshark_svcctl.sh` on the lab capture the fixture came
/// from. Skipped (with a note) only when tshark or the shared captures are absent.
#[test]
fn svcctl_requests_match_tshark_on_lab_captures() {
    let lab = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/lab");
    let script = format!("{}/scripts/tshark_svcctl.sh", env!("CARGO_MANIFEST_DIR"));
    for name in [
        "a_psexec_default",
        "c_smbexec",
        "e_services_create_start",
        "h_benign_svc_query",
    ] {
        let pcap = format!("{lab}/{name}.pcap");
        let out = match std::process::Command::new("sh")
            .arg(&script)
            .arg(&pcap)
            .output()
        {
            Ok(o) if o.status.success() && std::path::Path::new(&pcap).exists() => o,
            _ => {
                eprintln!("tshark or {pcap} unavailable: cross-check skipped");
                return;
            }
        };
        let theirs: Vec<(u16, String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                (
                    f[0].parse().unwrap(),
                    f.get(1).unwrap_or(&"").to_string(),
                    f.get(2).unwrap_or(&"").to_string(),
                )
            })
            .collect();
        let sink = run_fixture(&format!("{name}.pipe.txt"), None, None);
        let mut ours: Vec<&DceRpc> = dce(&sink)
            .into_iter()
            .filter(|e| e.endpoint == "svcctl" && e.opnum.is_some())
            .collect();
        ours.sort_by_key(|e| (e.conn.ts, e.call_id));
        let ours: Vec<(u16, String, String)> = ours
            .iter()
            .map(|e| {
                (
                    e.opnum.unwrap(),
                    e.args.service_name.clone().unwrap_or_default(),
                    e.args.binary_path.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(!theirs.is_empty(), "{name}: tshark saw no svcctl");
        assert_eq!(ours, theirs, "{name}");
    }
}

/// Same (named_pipe, endpoint, operation) records as Zeek's own expected dce_rpc.log for its
/// domain-join trace (BSD-3-Clause, bundled under captures/public/zeek; the DCE-RPC-over-TCP bytes
/// were extracted into tests/data/dcerpc/zeek_cs_window7_join.tcp.txt).
#[test]
fn matches_zeek_expected_log_for_domain_join() {
    let log = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/public/zeek/cs_window7-join_stream092.pcap.zeek-expected.dce_rpc.log"
    );
    let text = std::fs::read_to_string(log).expect("bundled zeek log");
    let mut zeek: Vec<(String, String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[7].replace("\\\\", "\\"),
                f[8].to_string(),
                f[9].to_string(),
            )
        })
        .collect();
    let mut sink = Sink::new();
    for (fid, msgs) in fixture("zeek_cs_window7_join.tcp.txt") {
        assert!(fid.starts_with("tcp"));
        let mut conv = Conversation::new(Transport::Tcp, None);
        for (dir, b, frame) in msgs {
            conv.data(&ctx(), Ts::from_secs(frame), dir, &b, &mut sink);
        }
        conv.close(&ctx(), Ts::from_secs(1 << 20), &mut sink);
    }
    let mut ours: Vec<(String, String, String)> = dce(&sink)
        .iter()
        .filter(|e| e.opnum.is_some())
        .map(|e| {
            (
                e.named_pipe.clone().unwrap_or_default(),
                e.endpoint.clone(),
                e.operation.clone(),
            )
        })
        .collect();
    zeek.sort();
    ours.sort();
    assert_eq!(ours, zeek);
}

#[test]
fn unanswered_call_times_out_on_packet_time() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    let req = pdu(PTYPE_REQUEST, 3, 4, &request_body(0, 2, &[1; 20]), None);
    conv.data(
        &ctx(),
        Ts::from_secs(10),
        Direction::ToServer,
        &req,
        &mut sink,
    );
    conv.timeout(
        &ctx(),
        Ts::from_secs(10 + conversation::DCERPC_CALL_TIMEOUT_SECS),
        &mut sink,
    );
    assert!(dce(&sink).is_empty());
    conv.timeout(
        &ctx(),
        Ts::from_secs(11 + conversation::DCERPC_CALL_TIMEOUT_SECS),
        &mut sink,
    );
    let ev = dce(&sink);
    assert_eq!(
        (ev.len(), ev[0].operation.as_str(), ev[0].status.as_str()),
        (1, "DeleteService", "<no response>")
    );
    assert_eq!(ev[0].conn.ts, Ts::from_secs(10));
    assert_eq!(
        ev[0].args.handle.as_deref(),
        Some(crate::event::hex(&[1; 20]).as_str())
    );
    // A late response finds nothing to pair with and emits nothing.
    let resp = pdu(PTYPE_RESPONSE, 3, 4, &response_body(0, &[0; 4]), None);
    conv.data(
        &ctx(),
        Ts::from_secs(400),
        Direction::ToClient,
        &resp,
        &mut sink,
    );
    assert_eq!(dce(&sink).len(), 1);
}

#[test]
fn stub_decoders_survive_random_bytes() {
    let mut seed: u64 = 0xdead_beef;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    for round in 0..400u32 {
        let len = (next() % 300) as usize;
        // Mostly small numbers, sometimes huge ones, so counts and pointers take every branch.
        let stub: Vec<u8> = (0..len)
            .map(|_| {
                if next() % 4 == 0 {
                    next() as u8
                } else {
                    (next() % 3) as u8
                }
            })
            .collect();
        let be = round % 2 == 0;
        let syntax = if round % 3 == 0 {
            ndr::Syntax::Ndr64
        } else {
            ndr::Syntax::Ndr20
        };
        for opnum in 0..=65u16 {
            let mut a = crate::event::DceArgs::default();
            for uuid in [
                interfaces::SVCCTL,
                interfaces::ITASKSCHEDULERSERVICE,
                interfaces::ATSVC,
            ] {
                stubs::request_args(uuid, opnum, &stub, be, syntax, &mut a);
                stubs::response_args(uuid, opnum, &stub, be, syntax, &mut a);
            }
        }
        let mut a = crate::event::DceArgs::default();
        epm::decode_map_request(&stub, be, ndr::Syntax::Ndr20, &mut a);
        let _ = epm::decode_map_response(&stub, be, ndr::Syntax::Ndr20, &mut a);
        let _ = epm::parse_tower(&stub);
        let _ = parsed(pdu::parse_bind(&stub, be));
        let _ = parsed(pdu::parse_bind_ack(&stub, be));
        let _ = tasks::task_definition(&String::from_utf8_lossy(&stub));
    }
}

#[test]
fn association_reassembly_budget_is_capped() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::Tcp, None);
    let chunk = vec![0u8; 60_000];
    // Six calls, each left unfinished at 900 000 bytes: 5.4 MB would be held without the budget.
    for call in 1..=6u32 {
        for i in 0..15 {
            let flags = if i == 0 { PFC_FIRST_FRAG } else { 0 };
            conv.data(
                &ctx(),
                Ts(1),
                Direction::ToServer,
                &pdu(
                    PTYPE_REQUEST,
                    flags,
                    call,
                    &request_body(0, 1, &chunk),
                    None,
                ),
                &mut sink,
            );
        }
    }
    assert_eq!(sink.counters.get("MAX_DCERPC_STUB_BYTES"), 0);
    assert!(sink.counters.get("MAX_DCERPC_ASSOCIATION_STUB_BYTES") >= 1);
    conv.close(&ctx(), Ts(2), &mut sink);
    let ev = dce(&sink);
    assert_eq!(ev.len(), 6);
    // Sizes are still reported in full even where bytes were not kept.
    assert!(ev.iter().all(|e| e.request_stub_len == Some(900_000)));
}

#[test]
fn missed_first_fragment_is_not_decoded_and_gap_freezes_reassembly() {
    let stub = create_stub("GapSvc", "C:\\gap.exe");
    let (a, rest) = stub.split_at(56); // handle, then "GapSvc" (46 bytes), pad, display pointer
    let (b, c) = rest.split_at(30);
    // 1. Only the middle and last fragments: logged, opnum known, nothing invented.
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    conv.data(
        &ctx(),
        Ts(1),
        Direction::ToServer,
        &pdu(PTYPE_REQUEST, 0, 9, &request_body(0, 12, b), None),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(2),
        Direction::ToServer,
        &pdu(
            PTYPE_REQUEST,
            PFC_LAST_FRAG,
            9,
            &request_body(0, 12, c),
            None,
        ),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(3),
        Direction::ToClient,
        &pdu(
            PTYPE_RESPONSE,
            3,
            9,
            &response_body(0, &response_ok_create()),
            None,
        ),
        &mut sink,
    );
    let ev = dce(&sink);
    assert_eq!(
        (
            ev[0].operation.as_str(),
            ev[0].args.service_name.as_deref(),
            ev[0].args.binary_path.as_deref()
        ),
        ("CreateServiceW", None, None)
    );
    assert_eq!(ev[0].args.return_code, Some(0));
    // 2. First fragment, then a gap, then the rest: the prefix (service name) survives, the path
    //    after the hole is not guessed.
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    conv.data(
        &ctx(),
        Ts(1),
        Direction::ToServer,
        &pdu(
            PTYPE_REQUEST,
            PFC_FIRST_FRAG,
            9,
            &request_body(0, 12, a),
            None,
        ),
        &mut sink,
    );
    conv.gap(&ctx(), Ts(2), Direction::ToServer, &mut sink);
    conv.data(
        &ctx(),
        Ts(3),
        Direction::ToServer,
        &pdu(PTYPE_REQUEST, 0, 9, &request_body(0, 12, b), None),
        &mut sink,
    );
    conv.data(
        &ctx(),
        Ts(4),
        Direction::ToServer,
        &pdu(
            PTYPE_REQUEST,
            PFC_LAST_FRAG,
            9,
            &request_body(0, 12, c),
            None,
        ),
        &mut sink,
    );
    conv.close(&ctx(), Ts(5), &mut sink);
    let ev = dce(&sink);
    assert_eq!(ev[0].args.service_name.as_deref(), Some("GapSvc"));
    assert_eq!(ev[0].args.binary_path, None);
    assert_eq!(ev[0].request_frags, Some(3));
}

#[test]
fn fragment_count_is_capped() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::Tcp, None);
    let n = conversation::MAX_DCERPC_FRAGMENTS_PER_CALL + 10;
    let mut bytes = Vec::new();
    for i in 0..n {
        let flags = if i == 0 {
            PFC_FIRST_FRAG
        } else if i + 1 == n {
            PFC_LAST_FRAG
        } else {
            0
        };
        bytes.extend(pdu(
            PTYPE_REQUEST,
            flags,
            1,
            &request_body(0, 1, &[7]),
            None,
        ));
    }
    conv.data(&ctx(), Ts(1), Direction::ToServer, &bytes, &mut sink);
    conv.close(&ctx(), Ts(2), &mut sink);
    assert_eq!(sink.counters.get("MAX_DCERPC_FRAGMENTS_PER_CALL"), 1);
    let ev = dce(&sink);
    assert_eq!(ev[0].request_frags, Some(n));
    assert_eq!(ev[0].request_stub_len, Some(n));
}

/// Fuzz regression (smb2_stream): a pipe opened as `svcc⁴l` made `named_pipe` slice the name in
/// the middle of a multi-byte character.
#[test]
fn named_pipe_hint_with_multibyte_characters_does_not_panic() {
    for (name, want) in [
        ("svcc⁴l", "\\PIPE\\svcc⁴l"),
        ("pipe⁴x", "\\PIPE\\pipe⁴x"),
        ("PIPE\\svcctl", "\\PIPE\\svcctl"),
        ("⁴", "\\PIPE\\⁴"),
    ] {
        let c = Conversation::new(Transport::SmbPipe, Some(name));
        assert_eq!(c.named_pipe().as_deref(), Some(want), "{name}");
    }
}

#[test]
fn client_only_association_logs_each_call_at_the_next_request() {
    // A one-sided capture: no server PDU ever. Each request from a later packet logs the earlier
    // ones at once (in order), not at the timeout or the end of the flow.
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    for id in 1..=3u32 {
        conv.data(
            &ctx(),
            Ts(u64::from(id) * 1_000_000_000),
            Direction::ToServer,
            &pdu(PTYPE_REQUEST, 3, id, &request_body(0, 6, &[0; 20]), None),
            &mut sink,
        );
    }
    let ev = dce(&sink);
    assert_eq!(ev.iter().map(|e| e.call_id).collect::<Vec<_>>(), vec![1, 2]);
    assert!(ev
        .iter()
        .all(|e| e.status == "<no response>" && e.rtt.is_none()));
    conv.close(&ctx(), Ts(10_000_000_000), &mut sink);
    assert_eq!(dce(&sink).len(), 3, "the last one at the end");
}

#[test]
fn a_server_pdu_turns_the_one_sided_logging_off() {
    let mut sink = Sink::new();
    let mut conv = Conversation::new(Transport::SmbPipe, Some("svcctl"));
    let req = |id: u32| pdu(PTYPE_REQUEST, 3, id, &request_body(0, 6, &[0; 20]), None);
    conv.data(&ctx(), Ts(1), Direction::ToServer, &req(1), &mut sink);
    // Any PDU from the server (here a response to an unknown call) shows both halves are there.
    conv.data(
        &ctx(),
        Ts(2),
        Direction::ToClient,
        &pdu(PTYPE_RESPONSE, 3, 99, &response_body(0, &[0; 4]), None),
        &mut sink,
    );
    conv.data(&ctx(), Ts(3), Direction::ToServer, &req(2), &mut sink);
    assert!(dce(&sink).is_empty(), "call 1 still waits for its response");
}
