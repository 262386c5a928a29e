//! The SMB1 state machine over hand-built conversations: raw NTLM logon, AndX chains (good,
//! looping, failed), pipe transactions split over secondaries, TRANSACTION2 deletes and renames,
//! DOS error codes, midstream handles, caps.

use super::records::cmd;
use super::records::trans::pipe_fn;
use super::records::trans2::{level, sub};
use super::state::{Smb1State, MAX_PENDING_SMB1_REQUESTS};
use super::test_util::{utf16z, MsgBuilder, W};
use crate::event::{AnomalyKind, Event, FileAction, SmbAuth, SmbFiles, SmbMapping, SmbVersion};
use crate::flow::{ConnId, Direction, FlowCtx, Uid};
use crate::sink::Sink;
use crate::smb::tables::{Cx, Tables};
use crate::time::Ts;
use std::net::{IpAddr, Ipv4Addr};

const UID: u16 = 0x0800;
const TID_IPC: u16 = 0x0801;
const TID_ADMIN: u16 = 0x0802;
const PID: u32 = 0xfeff;

struct Conv {
    flow: FlowCtx,
    state: Smb1State,
    tables: Tables,
    sink: Sink,
    ts: u64,
}

impl Conv {
    fn new() -> Conv {
        let conn = ConnId {
            orig_h: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12)),
            orig_p: 40000,
            resp_h: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
            resp_p: 445,
        };
        Conv {
            flow: FlowCtx {
                conn,
                uid: Uid::new(&conn, 1),
            },
            state: Smb1State::new(),
            tables: Tables::default(),
            sink: Sink::new(),
            ts: 1_000_000_000,
        }
    }

    fn send(&mut self, dir: Direction, msg: &[u8]) {
        self.ts += 1_000_000;
        let cx = Cx {
            flow: &self.flow,
            secrets: None,
            ts: Ts(self.ts),
            version: SmbVersion::Smb1,
            layer: "smb1",
        };
        self.state
            .message(&cx, &mut self.tables, dir, msg, &mut self.sink);
    }
    fn req(&mut self, msg: &[u8]) {
        self.send(Direction::ToServer, msg);
    }
    fn resp(&mut self, msg: &[u8]) {
        self.send(Direction::ToClient, msg);
    }

    fn close(&mut self) {
        let cx = Cx {
            flow: &self.flow,
            secrets: None,
            ts: Ts(self.ts),
            version: SmbVersion::Smb1,
            layer: "smb1",
        };
        self.state.close(&cx, &mut self.tables, &mut self.sink);
        // The parser ends what is left under the SMB2 label: SMB1 must have ended its own.
        let cx2 = Cx {
            version: SmbVersion::Smb2,
            ..cx
        };
        self.tables.end_all(&cx2, &mut self.sink);
    }

    fn auths(&self) -> Vec<&SmbAuth> {
        self.sink
            .events
            .iter()
            .filter_map(|e| {
                if let Event::SmbAuth(a) = e {
                    Some(a)
                } else {
                    None
                }
            })
            .collect()
    }
    fn mappings(&self) -> Vec<&SmbMapping> {
        self.sink
            .events
            .iter()
            .filter_map(|e| {
                if let Event::SmbMapping(m) = e {
                    Some(m)
                } else {
                    None
                }
            })
            .collect()
    }
    fn files(&self) -> Vec<&SmbFiles> {
        self.sink
            .events
            .iter()
            .filter_map(|e| {
                if let Event::SmbFiles(f) = e {
                    Some(f)
                } else {
                    None
                }
            })
            .collect()
    }
    fn smb1_anomalies(&self) -> usize {
        self.sink
            .events
            .iter()
            .filter(|e| matches!(e, Event::Anomaly(a) if a.layer == "smb1"))
            .count()
    }
    fn anomalies(&self, kind: AnomalyKind) -> usize {
        self.sink
            .events
            .iter()
            .filter(|e| matches!(e, Event::Anomaly(a) if a.kind == kind))
            .count()
    }

    /// Tree connect to `share` answered with `service` and `tid`.
    fn tree(&mut self, share: &str, service: &str, tid: u16) {
        let mut bytes = vec![0u8];
        bytes.extend_from_slice(format!("\\\\SRV\\{share}\0?????\0").as_bytes());
        self.req(
            &q(cmd::TREE_CONNECT_ANDX)
                .words(&W::new().andx(cmd::NO_ANDX, 0).u16(0).u16(1).done())
                .bytes(&bytes)
                .build(),
        );
        let mut rb = service.as_bytes().to_vec();
        rb.extend_from_slice(b"\0\0");
        self.resp(
            &r(cmd::TREE_CONNECT_ANDX)
                .ids(tid, UID, PID, 0)
                .words(&W::new().andx(cmd::NO_ANDX, 0).u16(1).done())
                .bytes(&rb)
                .build(),
        );
    }

    /// NT_CREATE_ANDX of `name` (OEM) on `tid`, answered with `fid` (resource type `rtype`).
    fn create(&mut self, tid: u16, name: &str, fid: u16, rtype: u16, options: u32) {
        let words = nt_create_words(name.len() as u16, options);
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        self.req(
            &q(cmd::NT_CREATE_ANDX)
                .ids(tid, UID, PID, 7)
                .words(&words)
                .bytes(&bytes)
                .build(),
        );
        self.resp(
            &r(cmd::NT_CREATE_ANDX)
                .ids(tid, UID, PID, 7)
                .words(&nt_create_resp_words(fid, rtype))
                .build(),
        );
    }
}

fn q(command: u8) -> MsgBuilder {
    MsgBuilder::request(command).ids(0xFFFF, UID, PID, 0)
}
fn r(command: u8) -> MsgBuilder {
    MsgBuilder::response(command).ids(0xFFFF, UID, PID, 0)
}

fn nt_create_words(name_len: u16, options: u32) -> Vec<u8> {
    W::new()
        .andx(cmd::NO_ANDX, 0)
        .u8(0)
        .u16(name_len)
        .u32(0x16)
        .u32(0)
        .u32(0x0012_019f)
        .u64(0)
        .u32(0x80)
        .u32(7)
        .u32(5)
        .u32(options)
        .u32(2)
        .u8(0)
        .done()
}

fn nt_create_resp_words(fid: u16, rtype: u16) -> Vec<u8> {
    W::new()
        .andx(cmd::NO_ANDX, 0)
        .u8(0)
        .u16(fid)
        .u32(2)
        .raw(&[0; 32])
        .u32(0x80)
        .u64(0)
        .u64(0)
        .u16(rtype)
        .u16(0)
        .u8(0)
        .done()
}

fn negotiate(c: &mut Conv) {
    c.req(
        &q(cmd::NEGOTIATE)
            .bytes(b"\x02LANMAN1.0\0\x02NT LM 0.12\0")
            .build(),
    );
    let words = W::new()
        .u16(1)
        .u8(3)
        .u16(50)
        .u16(1)
        .u32(16644)
        .u32(65536)
        .u32(0)
        .u32(0x0000_00d4)
        .u64(0)
        .u16(0)
        .u8(8)
        .done();
    c.resp(
        &r(cmd::NEGOTIATE)
            .words(&words)
            .bytes(&[1, 2, 3, 4, 5, 6, 7, 8])
            .build(),
    );
}

fn raw_ntlm_words(next: u8, next_off: u16, oem_len: u16, uni_len: u16) -> Vec<u8> {
    W::new()
        .andx(next, next_off)
        .u16(4356)
        .u16(50)
        .u16(0)
        .u32(0)
        .u16(oem_len)
        .u16(uni_len)
        .u32(0)
        .u32(0xd4)
        .done()
}

fn raw_ntlm_bytes(account: &str, domain: &str) -> Vec<u8> {
    // bytes start at 32+1+26+2 = 61 (odd); 24+24 bytes of responses end at 109: one pad byte.
    let mut b = vec![0x11; 24];
    b.extend(vec![0x22; 24]);
    b.push(0);
    b.extend(utf16z(account));
    b.extend(utf16z(domain));
    b.extend(utf16z("Windows 2000 2195"));
    b.extend(utf16z("Windows 2000 5.0"));
    b
}

#[test]
fn raw_ntlm_logon_logs_plaintext_account_and_domain() {
    let mut c = Conv::new();
    negotiate(&mut c);
    let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
        .unicode()
        .ids(0xFFFF, 0, PID, 1)
        .words(&raw_ntlm_words(cmd::NO_ANDX, 0, 24, 24))
        .bytes(&raw_ntlm_bytes("Administrator", "CORP"))
        .build();
    c.req(&m);
    let resp = MsgBuilder::response(cmd::SESSION_SETUP_ANDX)
        .unicode()
        .ids(0xFFFF, UID, PID, 1)
        .words(&W::new().andx(cmd::NO_ANDX, 0).u16(0).done())
        .build();
    c.resp(&resp);
    let a = c.auths();
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].user.as_deref(), a[0].domain.as_deref(), a[0].auth),
        (Some("Administrator"), Some("CORP"), "raw-ntlm")
    );
    assert_eq!(
        (a[0].dialect.as_str(), a[0].status.as_str(), a[0].session_id),
        ("NT LM 0.12", "STATUS_SUCCESS", Some(u64::from(UID)))
    );
    assert_eq!(a[0].smb_version, SmbVersion::Smb1);

    // A null session (no account, one zero LM byte) is anonymous.
    let mut c = Conv::new();
    c.req(
        &q(cmd::SESSION_SETUP_ANDX)
            .words(&raw_ntlm_words(cmd::NO_ANDX, 0, 1, 0))
            .bytes(b"\0\0\0Unix\0Samba\0")
            .build(),
    );
    c.resp(
        &r(cmd::SESSION_SETUP_ANDX)
            .words(&W::new().andx(cmd::NO_ANDX, 0).u16(0).done())
            .build(),
    );
    assert_eq!(
        (c.auths()[0].auth, c.auths()[0].user.clone()),
        ("anonymous", None)
    );
    assert_eq!(c.auths()[0].dialect, "<unknown>");
}

/// SESSION_SETUP_ANDX (raw NTLM) + TREE_CONNECT_ANDX in one request, answered by one chained
/// response: the tree connect takes the UID and TID the response assigns.
#[test]
fn chained_logon_and_tree_connect() {
    let mut c = Conv::new();
    let setup_bytes = raw_ntlm_bytes("alice", "LAB");
    let tc_off = (32 + 1 + 26 + 2 + setup_bytes.len()) as u16;
    let mut m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
        .unicode()
        .ids(0xFFFF, 0, PID, 3)
        .words(&raw_ntlm_words(cmd::TREE_CONNECT_ANDX, tc_off, 24, 24))
        .bytes(&setup_bytes)
        .build();
    assert_eq!(m.len(), usize::from(tc_off));
    let mut tc = W::new().andx(cmd::NO_ANDX, 0).u16(0).u16(1).done();
    let mut tcb = vec![0u8];
    if (usize::from(tc_off) + 1 + 8 + 2 + 1) % 2 == 1 {
        tcb.push(0); // Unicode alignment pad
    }
    tcb.extend(utf16z("\\\\SRV\\ADMIN$"));
    tcb.extend_from_slice(b"?????\0");
    m.push(4);
    m.append(&mut tc);
    m.extend_from_slice(&(tcb.len() as u16).to_le_bytes());
    m.extend_from_slice(&tcb);
    c.req(&m);

    // Response: SESSION_SETUP (WC 3, no strings) at 32, TREE_CONNECT (WC 3, "A:" + "NTFS") at 41.
    let mut resp = MsgBuilder::response(cmd::SESSION_SETUP_ANDX)
        .unicode()
        .ids(TID_ADMIN, UID, PID, 3)
        .words(&W::new().andx(cmd::TREE_CONNECT_ANDX, 41).u16(0).done())
        .build();
    assert_eq!(resp.len(), 41);
    resp.push(3);
    resp.extend(W::new().andx(cmd::NO_ANDX, 0).u16(1).done());
    let mut rb = b"A:\0".to_vec();
    if (41 + 1 + 6 + 2 + 3) % 2 == 1 {
        rb.push(0);
    }
    rb.extend(utf16z("NTFS"));
    resp.extend_from_slice(&(rb.len() as u16).to_le_bytes());
    resp.extend_from_slice(&rb);
    c.resp(&resp);

    let a = c.auths();
    assert_eq!(
        (a.len(), a[0].user.as_deref(), a[0].domain.as_deref()),
        (1, Some("alice"), Some("LAB"))
    );
    let maps = c.mappings();
    assert_eq!(maps.len(), 1);
    let mp = maps[0];
    assert_eq!(
        (
            mp.path.as_str(),
            mp.share.as_str(),
            mp.share_type,
            mp.service.as_deref()
        ),
        ("\\\\SRV\\ADMIN$", "ADMIN$", "DISK", Some("A:"))
    );
    assert_eq!(
        (mp.native_file_system.as_deref(), mp.tree_id, mp.session_id),
        (
            Some("NTFS"),
            Some(u32::from(TID_ADMIN)),
            Some(u64::from(UID))
        )
    );
    assert_eq!(
        c.anomalies(AnomalyKind::AndxLoop) + c.anomalies(AnomalyKind::Malformed),
        0
    );
}

/// The same chain refused: one WordCount-0 error block answers it; both the logon and the tree
/// connect are logged with the failure.
#[test]
fn failed_chain_logs_both_with_the_error() {
    let mut c = Conv::new();
    let setup_bytes = raw_ntlm_bytes("mallory", "LAB");
    let tc_off = (32 + 1 + 26 + 2 + setup_bytes.len()) as u16;
    let mut m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
        .unicode()
        .ids(0xFFFF, 0, PID, 4)
        .words(&raw_ntlm_words(cmd::TREE_CONNECT_ANDX, tc_off, 24, 24))
        .bytes(&setup_bytes)
        .build();
    m.push(4);
    m.extend(W::new().andx(cmd::NO_ANDX, 0).u16(0).u16(1).done());
    let tcb = b"\0\\\\SRV\\C$\0?????\0";
    m.extend_from_slice(&(tcb.len() as u16).to_le_bytes());
    m.extend_from_slice(tcb);
    // OEM path in a Unicode message would be wrong; make this one OEM throughout.
    m[10..12].copy_from_slice(&0x4000u16.to_le_bytes());
    c.req(&m);
    c.resp(
        &MsgBuilder::response(cmd::SESSION_SETUP_ANDX)
            .ids(0xFFFF, 0, PID, 4)
            .nt_status(0xC000_006D)
            .build(),
    );
    let a = c.auths();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].status, "STATUS_LOGON_FAILURE");
    let maps = c.mappings();
    assert_eq!(maps.len(), 1);
    assert_eq!(
        (
            maps[0].share.as_str(),
            maps[0].status.as_str(),
            maps[0].share_type
        ),
        ("C$", "STATUS_LOGON_FAILURE", "UNKNOWN")
    );
}

#[test]
fn looping_andx_chain_is_an_anomaly_and_the_good_block_still_counts() {
    let mut c = Conv::new();
    // TREE_CONNECT_ANDX whose AndX points back at its own block.
    let bytes = b"\0\\\\SRV\\IPC$\0?????\0";
    c.req(
        &q(cmd::TREE_CONNECT_ANDX)
            .words(
                &W::new()
                    .andx(cmd::TREE_CONNECT_ANDX, 32)
                    .u16(0)
                    .u16(1)
                    .done(),
            )
            .bytes(bytes)
            .build(),
    );
    assert_eq!(c.anomalies(AnomalyKind::AndxLoop), 1);
    c.resp(
        &r(cmd::TREE_CONNECT_ANDX)
            .ids(TID_IPC, UID, PID, 0)
            .words(&W::new().andx(cmd::NO_ANDX, 0).u16(1).done())
            .bytes(b"IPC\0\0")
            .build(),
    );
    assert_eq!(c.mappings().len(), 1);
    assert_eq!(
        (c.mappings()[0].share.as_str(), c.mappings()[0].share_type),
        ("IPC$", "PIPE")
    );

    // An offset past the end of the message: also AndxLoop.
    c.req(
        &q(cmd::LOGOFF_ANDX)
            .words(&W::new().andx(cmd::LOGOFF_ANDX, 0x7000).done())
            .build(),
    );
    assert_eq!(c.anomalies(AnomalyKind::AndxLoop), 2);
}

/// A chain that only goes on too long (forward offsets, inside the message) is the
/// MAX_ANDX_DEPTH cap: counted and reported as cap_reached, not as a loop.
#[test]
fn overlong_andx_chain_is_the_depth_cap() {
    let mut c = Conv::new();
    const BLOCK: usize = 1 + 4 + 2; // WordCount 2, two words, ByteCount 0
    let blocks = crate::smb::smb1::MAX_ANDX_DEPTH + 3;
    let mut m = q(cmd::LOGOFF_ANDX)
        .words(&W::new().andx(cmd::LOGOFF_ANDX, (32 + BLOCK) as u16).done())
        .build();
    for i in 1..blocks {
        let next = if i + 1 < blocks {
            (32 + BLOCK * (i + 1)) as u16
        } else {
            0
        };
        let command = if i + 1 < blocks {
            cmd::LOGOFF_ANDX
        } else {
            cmd::NO_ANDX
        };
        m.push(2);
        m.extend(W::new().andx(command, next).done());
        m.extend_from_slice(&0u16.to_le_bytes());
    }
    c.req(&m);
    assert_eq!(c.sink.counters.get("MAX_ANDX_DEPTH"), 1);
    assert_eq!(c.anomalies(AnomalyKind::AndxLoop), 0);
    assert_eq!(c.anomalies(AnomalyKind::CapReached), 1);
}

/// A DCE-RPC request fragment written through TransactNmPipe in a TRANSACTION plus one
/// TRANSACTION_SECONDARY reaches the pipe whole; the response data goes back to it.
#[test]
fn pipe_transaction_over_a_secondary_reaches_the_pipe() {
    let mut c = Conv::new();
    c.tree("IPC$", "IPC", TID_IPC);
    c.create(TID_IPC, "\\svcctl", 0x4001, 2, 0);
    let open = c
        .files()
        .into_iter()
        .find(|f| f.action == Some(FileAction::PipeOpen))
        .cloned()
        .expect("PIPE_OPEN");
    assert_eq!(
        (
            open.name.as_str(),
            open.fuid.as_deref(),
            open.share.as_str()
        ),
        ("svcctl", Some("4001"), "IPC$")
    );

    let mut pdu = vec![
        5, 0, 0, 0x01, 0x10, 0, 0, 0, 64, 0, 0, 0, 9, 0, 0, 0, 0xc8, 0, 0, 0, 0, 0, 12, 0,
    ];
    pdu.extend(0u8..40);
    let (first, rest) = pdu.split_at(30);
    // Primary: 16 words → bytes at 67; name "\PIPE\" OEM at 67..74; data at 76.
    let words = W::new()
        .u16(0)
        .u16(pdu.len() as u16)
        .u16(0)
        .u16(1024)
        .u8(0)
        .u8(0)
        .u16(0)
        .u32(0)
        .u16(0)
        .u16(0)
        .u16(76)
        .u16(first.len() as u16)
        .u16(76)
        .u8(2)
        .u8(0)
        .u16(pipe_fn::TRANSACT_NMPIPE)
        .u16(0x4001)
        .done();
    let mut bytes = b"\\PIPE\\\0\0\0".to_vec();
    bytes.extend_from_slice(first);
    c.req(
        &q(cmd::TRANSACTION)
            .ids(TID_IPC, UID, PID, 9)
            .words(&words)
            .bytes(&bytes)
            .build(),
    );
    assert_eq!(
        c.sink.counters.get("smb1.pipe_bytes_to_server"),
        0,
        "nothing until the transaction is whole"
    );
    let words = W::new()
        .u16(0)
        .u16(pdu.len() as u16)
        .u16(0)
        .u16(0)
        .u16(0)
        .u16(rest.len() as u16)
        .u16(51)
        .u16(first.len() as u16)
        .done();
    c.req(
        &q(cmd::TRANSACTION_SECONDARY)
            .ids(TID_IPC, UID, PID, 9)
            .words(&words)
            .bytes(rest)
            .build(),
    );
    assert_eq!(
        c.sink.counters.get("smb1.pipe_bytes_to_server"),
        pdu.len() as u64
    );
    assert_eq!(c.sink.counters.get("smb1.pipe_transactions"), 1);

    // The response comes in two pieces (12 + 8 bytes, displacements 0 and 12): 10 words →
    // bytes at 55; data at 56.
    // A whole DCE-RPC response PDU (24-byte header + 4 stub bytes) for call 9.
    let out = [
        5u8, 0, 2, 3, 0x10, 0, 0, 0, 28, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    for (piece, disp) in [(&out[..12], 0u16), (&out[12..], 12)] {
        let n = piece.len() as u16;
        let words = W::new()
            .u16(0)
            .u16(out.len() as u16)
            .u16(0)
            .u16(0)
            .u16(56)
            .u16(0)
            .u16(n)
            .u16(56)
            .u16(disp)
            .u8(0)
            .u8(0)
            .done();
        let mut rb = vec![0u8];
        rb.extend_from_slice(piece);
        c.resp(
            &r(cmd::TRANSACTION)
                .ids(TID_IPC, UID, PID, 9)
                .words(&words)
                .bytes(&rb)
                .build(),
        );
    }
    assert_eq!(
        c.sink.counters.get("smb1.pipe_bytes_to_client"),
        out.len() as u64
    );
    assert_eq!(c.sink.counters.get("smb1.unmatched_trans_responses"), 0);
    assert_eq!(c.smb1_anomalies(), 0);
}

fn trans2_set_file_info(c: &mut Conv, fid: u16, lvl: u16, data: &[u8]) {
    // 15 words → bytes at 65: pad to 68, params (6) at 68, pad to 76, data at 76.
    let words = W::new()
        .u16(6)
        .u16(data.len() as u16)
        .u16(2)
        .u16(0)
        .u8(0)
        .u8(0)
        .u16(0)
        .u32(0)
        .u16(0)
        .u16(6)
        .u16(68)
        .u16(data.len() as u16)
        .u16(76)
        .u8(1)
        .u8(0)
        .u16(sub::SET_FILE_INFORMATION)
        .done();
    let mut bytes = vec![0u8; 3];
    bytes.extend(W::new().u16(fid).u16(lvl).u16(0).done());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(data);
    c.req(
        &q(cmd::TRANSACTION2)
            .ids(TID_ADMIN, UID, PID, 11)
            .words(&words)
            .bytes(&bytes)
            .build(),
    );
    c.resp(
        &r(cmd::TRANSACTION2)
            .ids(TID_ADMIN, UID, PID, 11)
            .words(
                &W::new()
                    .u16(2)
                    .u16(0)
                    .u16(0)
                    .u16(2)
                    .u16(56)
                    .u16(0)
                    .u16(0)
                    .u16(60)
                    .u16(0)
                    .u8(0)
                    .u8(0)
                    .done(),
            )
            .bytes(&[0, 0, 0, 0, 0])
            .build(),
    );
}

#[test]
fn trans2_disposition_and_rename_are_file_delete_and_rename() {
    let mut c = Conv::new();
    c.tree("ADMIN$", "A:", TID_ADMIN);
    c.create(TID_ADMIN, "\\svc.exe", 0x0005, 0, 0);
    trans2_set_file_info(&mut c, 0x0005, level::SMB_SET_FILE_DISPOSITION_INFO, &[1]);
    let name = b"\\new.exe";
    let mut data = vec![0u8; 8];
    data.extend_from_slice(&(name.len() as u32).to_le_bytes());
    data.extend_from_slice(name);
    trans2_set_file_info(&mut c, 0x0005, level::PASSTHROUGH_RENAME, &data);
    let fs = c.files();
    let del = fs
        .iter()
        .find(|f| f.action == Some(FileAction::FileDelete))
        .expect("FILE_DELETE");
    assert_eq!(
        (
            del.name.as_str(),
            del.share.as_str(),
            del.status.as_str(),
            del.fuid.as_deref()
        ),
        ("svc.exe", "ADMIN$", "STATUS_SUCCESS", Some("0005"))
    );
    let ren = fs
        .iter()
        .find(|f| f.action == Some(FileAction::FileRename))
        .expect("FILE_RENAME");
    assert_eq!(
        (ren.name.as_str(), ren.prev_name.as_deref()),
        ("new.exe", Some("svc.exe"))
    );
}

#[test]
fn delete_on_close_and_smb_delete_and_rename() {
    let mut c = Conv::new();
    c.tree("ADMIN$", "A:", TID_ADMIN);
    c.create(TID_ADMIN, "gone.exe", 0x0009, 0, 0x1000);
    assert!(c
        .files()
        .iter()
        .any(|f| f.action == Some(FileAction::FileDelete)
            && f.name == "gone.exe"
            && f.delete_on_close));
    c.req(
        &q(cmd::DELETE)
            .ids(TID_ADMIN, UID, PID, 12)
            .words(&[0x26, 0])
            .bytes(b"\x04\\x.exe\0")
            .build(),
    );
    c.resp(&r(cmd::DELETE).ids(TID_ADMIN, UID, PID, 12).build());
    c.req(
        &q(cmd::RENAME)
            .ids(TID_ADMIN, UID, PID, 13)
            .words(&[0x16, 0])
            .bytes(b"\x04a.txt\0\x04b.bat\0")
            .build(),
    );
    c.resp(&r(cmd::RENAME).ids(TID_ADMIN, UID, PID, 13).build());
    let fs = c.files();
    assert!(fs.iter().any(|f| f.action == Some(FileAction::FileDelete)
        && f.name == "x.exe"
        && f.share == "ADMIN$"
        && f.status == "STATUS_SUCCESS"));
    assert!(fs.iter().any(|f| f.action == Some(FileAction::FileRename)
        && f.name == "b.bat"
        && f.prev_name.as_deref() == Some("a.txt")));
}

#[test]
fn dos_error_codes_are_named_like_nt_status() {
    let mut c = Conv::new();
    c.tree("ADMIN$", "A:", TID_ADMIN);
    c.req(
        &q(cmd::NT_CREATE_ANDX)
            .ids(TID_ADMIN, UID, PID, 20)
            .words(&nt_create_words(5, 0))
            .bytes(b"a.exe\0")
            .build(),
    );
    c.resp(
        &r(cmd::NT_CREATE_ANDX)
            .ids(TID_ADMIN, UID, PID, 20)
            .dos_status(1, 2)
            .build(),
    );
    c.req(
        &q(cmd::DELETE)
            .ids(TID_ADMIN, UID, PID, 21)
            .words(&[0, 0])
            .bytes(b"\x04b.exe\0")
            .build(),
    );
    c.resp(
        &r(cmd::DELETE)
            .ids(TID_ADMIN, UID, PID, 21)
            .dos_status(1, 7)
            .build(),
    );
    let fs = c.files();
    assert!(fs.iter().any(|f| f.name == "a.exe"
        && f.action == Some(FileAction::FileOpen)
        && f.status == "STATUS_OBJECT_NAME_NOT_FOUND"
        && f.fuid.is_none()));
    assert!(fs
        .iter()
        .any(|f| f.name == "b.exe" && f.status == "ERRDOS/ERRbadmcb"));
}

fn write_andx(fid: u16, offset: u32, data: &[u8]) -> Vec<u8> {
    let words = W::new()
        .andx(cmd::NO_ANDX, 0)
        .u16(fid)
        .u32(offset)
        .u32(0)
        .u16(0)
        .u16(0)
        .u16(0)
        .u16(data.len() as u16)
        .u16(64)
        .u32(0)
        .done();
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(data);
    q(cmd::WRITE_ANDX)
        .ids(0x0999, UID, PID, 30)
        .words(&words)
        .bytes(&bytes)
        .build()
}

/// Picked up midstream: writes to FIDs never opened on a tree never connected. DCE-RPC bytes
/// make a pipe; "MZ" bytes are a file whose FILE_WRITE summary appears at flow end.
#[test]
fn midstream_handles_become_pipes_or_files_by_their_bytes() {
    let mut c = Conv::new();
    let bind = [5u8, 0, 11, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0];
    c.req(&write_andx(0x0077, 0, &bind));
    assert_eq!(c.sink.counters.get("smb1.pipe_bytes_to_server"), 16);
    c.req(&write_andx(0x0078, 0, b"MZ\x90\0payload"));
    c.req(&write_andx(0x0078, 11, b"more"));
    c.close();
    let w = c
        .files()
        .into_iter()
        .find(|f| f.action == Some(FileAction::FileWrite))
        .cloned()
        .expect("FILE_WRITE");
    assert_eq!(w.smb_version, Some(SmbVersion::Smb1));
    assert_eq!(
        (
            w.name.as_str(),
            w.share.as_str(),
            w.bytes_written,
            w.pe,
            w.write_count
        ),
        ("<unknown>", "<unknown>", Some(15), Some(true), Some(2))
    );
    assert_eq!(w.fuid.as_deref(), Some("0078"));
    assert_eq!(c.sink.counters.get("smb1.pipe_bytes_to_server"), 16);
}

#[test]
fn wrong_direction_and_pending_cap() {
    let mut c = Conv::new();
    c.resp(&q(cmd::CLOSE).words(&[1, 0, 0, 0, 0, 0]).build());
    assert_eq!(c.anomalies(AnomalyKind::WrongDirection), 1);
    for mid in 0..(MAX_PENDING_SMB1_REQUESTS as u16 + 10) {
        c.req(
            &q(cmd::CLOSE)
                .ids(1, UID, PID, mid)
                .words(&[1, 0, 0, 0, 0, 0])
                .build(),
        );
    }
    assert_eq!(c.sink.counters.get("MAX_PENDING_SMB1_REQUESTS"), 10);
}

#[test]
fn unanswered_tree_connect_and_logon_are_logged_at_close() {
    let mut c = Conv::new();
    c.req(
        &q(cmd::TREE_CONNECT_ANDX)
            .words(&W::new().andx(cmd::NO_ANDX, 0).u16(0).u16(1).done())
            .bytes(b"\0\\\\SRV\\C$\0?????\0")
            .build(),
    );
    c.req(
        &q(cmd::SESSION_SETUP_ANDX)
            .ids(0xFFFF, 0, PID, 1)
            .words(&raw_ntlm_words(cmd::NO_ANDX, 0, 0, 0))
            .bytes(b"bob\0DOM\0\0\0")
            .build(),
    );
    c.close();
    assert_eq!(c.mappings()[0].status, "<no response>");
    assert_eq!(
        (c.auths()[0].user.as_deref(), c.auths()[0].status.as_str()),
        (Some("bob"), "<no response>")
    );
}

/// No input makes the state machine panic: every prefix and single-byte corruption of a
/// realistic conversation.
#[test]
fn truncated_and_corrupted_messages_never_panic() {
    let mut msgs = Vec::new();
    let words = nt_create_words(8, 0);
    msgs.push(
        q(cmd::NT_CREATE_ANDX)
            .words(&words)
            .bytes(b"\\svc.exe\0")
            .build(),
    );
    msgs.push(write_andx(5, 0, b"MZ\x90\0"));
    msgs.push(
        MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .unicode()
            .words(&raw_ntlm_words(cmd::NO_ANDX, 0, 24, 24))
            .bytes(&raw_ntlm_bytes("a", "b"))
            .build(),
    );
    for m in &msgs {
        for cut in 0..m.len() {
            let mut c = Conv::new();
            c.req(&m[..cut]);
            c.resp(&m[..cut]);
        }
        for i in 0..m.len() {
            for v in [0u8, 0x01, 0x7f, 0xff] {
                let mut x = m.clone();
                x[i] = v;
                let mut c = Conv::new();
                c.req(&x);
                c.resp(&x);
                c.close();
            }
        }
    }
}

#[test]
fn oversized_strings_and_dialect_lists_report_their_caps() {
    use super::records::negotiate::MAX_DIALECTS;
    use super::records::strings::MAX_STRING_BYTES;
    let mut c = Conv::new();
    c.tree("ADMIN$", "A:", TID_ADMIN);
    let mut bytes = vec![4u8];
    bytes.extend(std::iter::repeat_n(b'a', MAX_STRING_BYTES + 100));
    bytes.push(0);
    c.req(
        &q(cmd::DELETE)
            .ids(TID_ADMIN, UID, PID, 40)
            .words(&[0, 0])
            .bytes(&bytes)
            .build(),
    );
    c.resp(&r(cmd::DELETE).ids(TID_ADMIN, UID, PID, 40).build());
    assert_eq!(c.sink.counters.get("MAX_STRING_BYTES"), 1);
    let del = c
        .files()
        .into_iter()
        .find(|f| f.action == Some(FileAction::FileDelete))
        .cloned()
        .unwrap();
    assert_eq!(del.name.len(), MAX_STRING_BYTES);

    let dialects: Vec<u8> = std::iter::repeat_n([2u8, b'x', 0], MAX_DIALECTS + 1)
        .flatten()
        .collect();
    c.req(&q(cmd::NEGOTIATE).bytes(&dialects).build());
    assert_eq!(c.sink.counters.get("MAX_DIALECTS"), 1);
}
