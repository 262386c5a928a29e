//! Whole-capture checks: every SMB1 message of three captures goes through the parsers, and
//! the facts they yield (tree paths, services, TIDs, file names, FIDs, write offsets and
//! lengths, pipe transactions, …) must equal what tshark 4.x dissects from the same files
//! (the expected lists below were produced with `tshark -Y 'smb.cmd==… && smb.flags.response==…'
//! -T fields -e smb.path -e smb.file -e smb.fid …`).
//!
//! The capture plumbing here (legacy pcap, Ethernet/IPv4/TCP, in-order segments, NetBIOS
//! framing) is deliberately minimal and test-only: the real pipeline lives in capture/, flow/.

use super::records::andx::AndxChain;
use super::records::create::{NtCreateRequest, NtCreateResponse};
use super::records::paths::DeleteRequest;
use super::records::rw::{
    close_fid, LargeData, ReadAndxResponse, WriteAndxRequest, WriteAndxResponse,
};
use super::records::session_setup::SessionSetupRequest;
use super::records::trans::{TransRequest, TransResponse};
use super::records::tree::{TreeConnectRequest, TreeConnectResponse};
use super::records::{cmd, Header};
use std::collections::BTreeMap;

/// (to_server, payload) TCP segments of SMB ports, in order per direction, retransmissions cut.
fn tcp_streams(path: &str) -> Vec<(bool, Vec<u8>)> {
    let file = std::fs::read(path).unwrap();
    assert_eq!(
        &file[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian legacy pcap"
    );
    let mut pos = 24;
    let mut next_seq: BTreeMap<(bool, u16), u32> = BTreeMap::new();
    let mut out = Vec::new();
    while pos + 16 <= file.len() {
        let incl = u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let frame = &file[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        let Ok(p) = etherparse::SlicedPacket::from_ethernet(frame) else {
            continue;
        };
        let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
            continue;
        };
        let (sp, dp) = (tcp.source_port(), tcp.destination_port());
        let to_server = matches!(dp, 445 | 139);
        if !to_server && !matches!(sp, 445 | 139) {
            continue;
        }
        let client_port = if to_server { sp } else { dp };
        let seq = tcp.sequence_number();
        let mut payload = tcp.payload();
        let key = (to_server, client_port);
        if tcp.syn() {
            next_seq.insert(key, seq.wrapping_add(1));
            continue;
        }
        let expected = *next_seq.entry(key).or_insert(seq);
        let behind = expected.wrapping_sub(seq) as usize;
        if behind > 0 && behind < 1 << 30 {
            payload = payload.get(behind..).unwrap_or(&[]);
        } else {
            assert_eq!(seq, expected, "gap in {path}");
        }
        let fin = u32::from(tcp.fin());
        next_seq.insert(key, expected.wrapping_add(payload.len() as u32 + fin));
        if !payload.is_empty() {
            out.push((to_server, payload.to_vec()));
        }
    }
    out
}

/// SMB1 messages per direction, NetBIOS framing removed, in stream order.
fn smb1_messages(path: &str) -> Vec<(bool, Vec<u8>)> {
    let mut bufs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut out = Vec::new();
    for (to_server, seg) in tcp_streams(path) {
        let buf = &mut bufs[usize::from(to_server)];
        buf.extend_from_slice(&seg);
        loop {
            if buf.len() < 4 {
                break;
            }
            let len =
                (usize::from(buf[1]) << 16) | (usize::from(buf[2]) << 8) | usize::from(buf[3]);
            if buf.len() < 4 + len {
                break;
            }
            let msg: Vec<u8> = buf.drain(..4 + len).skip(4).collect();
            if msg.starts_with(&[0xFF, b'S', b'M', b'B']) {
                out.push((to_server, msg));
            }
        }
    }
    out
}

/// Facts by kind, in stream order.
fn facts(path: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut f: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |k: &'static str, v: String| f.entry(k).or_default().push(v);
    for (to_server, msg) in smb1_messages(path) {
        let h = Header::parse(&msg).unwrap();
        assert_eq!(h.is_response(), !to_server);
        let u = h.is_unicode();
        let ok = h.status.carries_body();
        for block in AndxChain::new(&msg, &h) {
            let b = block.unwrap_or_else(|e| panic!("{path}: {e}"));
            match (b.command, h.is_response()) {
                (cmd::SESSION_SETUP_ANDX, false) => add(
                    "native_os_req",
                    SessionSetupRequest::parse(&msg, &b, u)
                        .unwrap()
                        .native_os
                        .decode(),
                ),
                (cmd::TREE_CONNECT_ANDX, false) => add(
                    "tree_req",
                    TreeConnectRequest::parse(&msg, &b, u)
                        .unwrap()
                        .path
                        .decode(),
                ),
                (cmd::TREE_CONNECT_ANDX, true) => {
                    if let Some(r) = TreeConnectResponse::parse(&msg, &b, u).unwrap() {
                        add("tree_resp", format!("{} {}", r.service.decode(), h.tid));
                    }
                }
                (cmd::NT_CREATE_ANDX, false) => add(
                    "create_req",
                    NtCreateRequest::parse(&msg, &b, u).unwrap().name.decode(),
                ),
                (cmd::NT_CREATE_ANDX, true) => add(
                    "create_resp",
                    match NtCreateResponse::parse(&b).unwrap() {
                        Some(r) => format!("{:#06x} {} {}", r.fid, r.create_action, r.end_of_file),
                        None => format!("error {}", h.status.display()),
                    },
                ),
                (cmd::WRITE_ANDX, false) => {
                    let r = WriteAndxRequest::parse(&b).unwrap();
                    assert_eq!(
                        r.data(&msg).len(),
                        r.data_len() as usize,
                        "whole write data present"
                    );
                    add(
                        "write",
                        format!("{:#06x} {} {}", r.fid, r.offset, r.data_len()),
                    );
                }
                (cmd::WRITE_ANDX, true) => add(
                    "written",
                    WriteAndxResponse::parse(&b)
                        .unwrap()
                        .unwrap()
                        .count
                        .to_string(),
                ),
                (cmd::READ_ANDX, true) if ok => {
                    let r = ReadAndxResponse::parse(&b).unwrap().unwrap();
                    assert_eq!(r.data(&msg).len(), r.data_len() as usize);
                    add("read_resp", r.data_len().to_string());
                }
                (cmd::CLOSE, false) => add("close", format!("{:#06x}", close_fid(&b).unwrap())),
                (cmd::DELETE, false) => add(
                    "delete",
                    DeleteRequest::parse(&msg, &b, u).unwrap().name.decode(),
                ),
                (cmd::TRANSACTION, false) => {
                    let r = TransRequest::parse(&msg, &b, u).unwrap();
                    let (func, fid) = r.pipe_call().unwrap();
                    add(
                        "trans",
                        format!(
                            "{} {func:#06x} {fid:#06x} {}",
                            r.name.decode(),
                            r.data.len()
                        ),
                    );
                }
                (cmd::TRANSACTION, true) if ok => add(
                    "trans_resp",
                    TransResponse::parse(&msg, &b)
                        .unwrap()
                        .unwrap()
                        .data
                        .len()
                        .to_string(),
                ),
                (cmd::TRANSACTION2, false) => {
                    let r = TransRequest::parse(&msg, &b, u).unwrap();
                    add("trans2", format!("{:#06x}", r.setup_word(0).unwrap()));
                }
                _ => {}
            }
        }
    }
    f
}

fn check(path: &str, expected: &[(&'static str, &str)]) {
    let got = facts(&format!("{}/captures/{path}", env!("CARGO_MANIFEST_DIR")));
    for (kind, want) in expected {
        let want: Vec<&str> = if want.is_empty() {
            vec![]
        } else {
            want.split('|').collect()
        };
        let have: Vec<&str> = got
            .get(kind)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(have, want, "{path}: {kind}");
    }
}

#[test]
fn i1_smb1_psexec_matches_tshark() {
    check(
        "lab/i1_smb1_psexec.pcap",
        &[
            ("native_os_req", "Unix|Unix"),
            ("tree_req", r"\\192.0.2.20\IPC$|\\192.0.2.20\IPC$|\\192.0.2.20\ADMIN$|\\192.0.2.20\ADMIN$|\\192.0.2.20\IPC$|\\192.0.2.20\ADMIN$|\\192.0.2.20\ADMIN$"),
            ("tree_resp", "IPC 63122|IPC 52236|A: 43856|A: 64212|IPC 26599|A: 57065|A: 9483"),
            ("create_req", r"\svcctl|\srvsvc|\|OIhuyfAI.exe|\svcctl"),
            ("create_resp", "0x68e6 1 0|0x7cb0 1 0|0xac09 1 0|0xe10c 2 0|0x30d5 1 0"),
            ("write", "0x7cb0 0 72|0x7cb0 0 76|0xe10c 0 56320|0x30d5 0 72|0x30d5 0 104|0x30d5 0 72|0x30d5 0 204"),
            ("written", "72|76|56320|72|104|72|204"),
            ("read_resp", "68|316|68|48|48|32"),
            ("close", "0xe10c"),
            ("delete", "OIhuyfAI.exe"),
            ("trans", ""),
            ("trans2", "0x0001"),
        ],
    );
}

#[test]
fn i2_smb1_benign_upload_matches_tshark() {
    // Two large writes of 130048 and 74752 bytes (DataLengthHigh 1) make tool.exe's 204800.
    check(
        "lab/i2_smb1_benign_upload.pcap",
        &[
            ("native_os_req", "Unix|Unix"),
            ("tree_req", r"\\192.0.2.20\IPC$|\\192.0.2.20\ADMIN$"),
            ("tree_resp", "IPC 61606|A: 62602"),
            ("create_req", r"\tool.exe|\notes.txt"),
            ("create_resp", "0x02e8 2 0|0x6db8 2 0"),
            ("write", "0x02e8 0 130048|0x02e8 130048 74752|0x6db8 0 5200"),
            ("written", "130048|74752|5200"),
            ("close", "0x02e8|0x6db8"),
            ("trans2", "0x0010|0x0001|0x0003"),
        ],
    );
}

#[test]
fn raw_ntlm_in_smb_matches_tshark() {
    // The \MAILSLOT\BROWSE transactions tshark also lists travel over UDP 138, not here.
    check(
        "public/zeek/raw_ntlm_in_smb.pcap",
        &[
            ("native_os_req", "Mac OS X 10.10|Mac OS X 10.10"),
            ("tree_req", r"\\192.168.56.101\IPC$|\\192.168.56.101\MY PICTURES|\\192.168.56.101\IPC$|\\192.168.56.101\IPC$"),
            ("tree_resp", "IPC 2048|A: 2049|IPC 2050|IPC 2051"),
            (
                "create_req",
                r"\srvsvc|\lsarpc|\|\mdssvc|\.hidden|\Desktop.ini|\Sample Pictures.lnk|\|\Sample Pictures.lnk:com.apple.LaunchServices.OpenWith|\Sample Pictures.lnk|\Sample Pictures.lnk",
            ),
            (
                "create_resp",
                "0x4000 1 0|0x4001 1 0|0x4002 1 0|error 0xc0000034|error 0xc0000034|0x4003 1 182|0x4004 1 668|0x4005 1 0|error 0xc0000034|0x4006 1 668|0x4007 1 668",
            ),
            ("close", "0x4000|0x4001|0x4002|0x4003|0x4004|0x4006|0x4007"),
            (
                "trans",
                r"\PIPE\ 0x0026 0x4000 72|\PIPE\ 0x0026 0x4000 104|\PIPE\ 0x0026 0x4001 72|\PIPE\ 0x0026 0x4001 84|\PIPE\ 0x0026 0x4001 108|\PIPE\ 0x0026 0x4001 132|\PIPE\ 0x0026 0x4001 44",
            ),
            ("trans_resp", "68|416|68|124|48|160|48"),
            ("trans2", "0x0003|0x0003|0x0005|0x0005|0x0003|0x0001|0x0001|0x0001|0x0001|0x0001|0x0001|0x0001|0x0005|0x0001|0x0005|0x0001|0x0001"),
            ("write", ""),
        ],
    );
}
