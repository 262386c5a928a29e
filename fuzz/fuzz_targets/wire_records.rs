//! The nom record modules one by one, on raw bytes: SMB2 records (header, every command the
//! sensor reads, transform header), the compression transform and its decompressors (with a
//! small cap), NTLMSSP, NetBIOS, DCE-RPC PDUs, epm towers and SMB1 records (header, AndX chain,
//! every command's request and response). Input: selector byte, then the record bytes. Nothing
//! may panic, and no decompressed output may pass its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::dcerpc::{epm, pdu};
use psexec_sensor::smb::smb2::{compression, records as r};
use psexec_sensor::smb::smb1::records as s1;
use psexec_sensor::smb::{netbios, ntlmssp};

/// Cap for decompression under fuzzing: small, so a bomb is caught by the cap, not by memory.
const CAP: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let [sel, b @ ..] = data else {
        return;
    };
    match sel % 9 {
        0 => {
            let _ = r::parse_header(b);
            let (cmds, _) = r::split_compound(b, 16);
            for m in cmds {
                let _ = r::parse_negotiate_request(m);
                let _ = r::parse_negotiate_response(m).map(|(_, n)| n.cipher());
                let _ = r::parse_session_setup_request(m);
                let _ = r::parse_session_setup_response(m);
                let _ = r::parse_tree_connect_request(m);
                let _ = r::parse_tree_connect_response(m);
                let _ = r::parse_create_request(m);
                let _ = r::parse_create_response(m);
                let _ = r::parse_close_request(m);
                let _ = r::parse_write_request(m).map(|(_, w)| w.data(m).len());
                let _ = r::parse_write_response(m);
                let _ = r::parse_read_request(m);
                let _ = r::parse_read_response(m).map(|(_, x)| x.data(m).len());
                let _ = r::parse_ioctl_request(m);
                let _ = r::parse_ioctl_response(m);
                let _ = r::parse_set_info_request(m);
            }
        }
        1 => {
            let _ = r::parse_transform_header(b);
        }
        2 => {
            if let Ok(p) = compression::decompress(b, CAP) {
                assert!(p.len() <= CAP);
            }
        }
        3 => {
            let _ = ntlmssp::parse_security_blob(b);
            if let Some(t) = ntlmssp::find_token(b) {
                let _ = ntlmssp::challenge(t);
                let _ = ntlmssp::authenticate(t);
            }
        }
        4 => {
            let _ = netbios::parse_nbss_header(b);
            let _ = netbios::find_nbss_smb_record(b);
        }
        5 => {
            if let Ok((_, h)) = pdu::parse_header(b) {
                if let Some((body, _)) = pdu::split_auth(b, &h) {
                    let be = h.big_endian();
                    let _ = pdu::parse_bind(body, be);
                    let _ = pdu::parse_bind_ack(body, be);
                    let _ = pdu::parse_request(body, &h);
                    let _ = pdu::parse_response(body, &h);
                    let _ = pdu::parse_fault(body, &h);
                    let _ = pdu::parse_bind_nak(body, &h);
                }
            }
        }
        6 => {
            let _ = epm::parse_tower(b);
        }
        8 => smb1_records(b),
        _ => {
            let mut out = Vec::new();
            if psexec_sensor::smb::smb2::xpress::decompress_lz77(b, CAP, &mut out).is_ok() {
                assert!(out.len() <= CAP);
            }
        }
    }
});

/// One SMB1 message (from the `FF 'SMB'` magic): every block of its AndX chain through the
/// request and the response parsers of its command, whatever the header's direction says.
fn smb1_records(msg: &[u8]) {
    use s1::{andx::AndxChain, cmd, create, negotiate, paths, rw, session_setup, trans, trans2, tree};
    let Ok(h) = s1::Header::parse(msg) else {
        return;
    };
    let u = h.is_unicode();
    for block in AndxChain::new(msg, &h) {
        let Ok(b) = block else {
            return;
        };
        match b.command {
            cmd::NEGOTIATE => {
                let _ = negotiate::NegotiateRequest::parse(msg, &b);
                let _ = negotiate::NegotiateResponse::parse(msg, &b, u).map(|r| r.domain_name.decode());
            }
            cmd::SESSION_SETUP_ANDX => {
                let _ = session_setup::SessionSetupRequest::parse(msg, &b, u).map(|r| r.account.decode());
                let _ = session_setup::SessionSetupResponse::parse(msg, &b, u);
            }
            cmd::TREE_CONNECT_ANDX => {
                let _ = tree::TreeConnectRequest::parse(msg, &b, u).map(|r| tree::split_unc(&r.path.decode()).1.len());
                let _ = tree::TreeConnectResponse::parse(msg, &b, u);
            }
            cmd::NT_CREATE_ANDX => {
                let _ = create::NtCreateRequest::parse(msg, &b, u).map(|r| r.name.decode());
                let _ = create::NtCreateResponse::parse(&b);
            }
            cmd::OPEN_ANDX => {
                let _ = create::OpenAndxRequest::parse(msg, &b, u);
                let _ = create::OpenAndxResponse::parse(&b);
            }
            cmd::WRITE_ANDX => {
                use rw::LargeData;
                let _ = rw::WriteAndxRequest::parse(&b).map(|w| w.data(msg).len());
                let _ = rw::WriteAndxResponse::parse(&b);
            }
            cmd::READ_ANDX => {
                use rw::LargeData;
                let _ = rw::ReadAndxRequest::parse(&b);
                let _ = rw::ReadAndxResponse::parse(&b).map(|r| r.map(|r| r.data(msg).len()));
            }
            cmd::CLOSE => {
                let _ = rw::close_fid(&b);
            }
            cmd::DELETE => {
                let _ = paths::DeleteRequest::parse(msg, &b, u);
            }
            cmd::RENAME | cmd::NT_RENAME => {
                let _ = paths::RenameRequest::parse(msg, &b, u);
            }
            cmd::CREATE_DIRECTORY | cmd::DELETE_DIRECTORY => {
                let _ = paths::directory_name(msg, &b, u);
            }
            cmd::TRANSACTION | cmd::TRANSACTION2 => {
                if let Ok(t) = trans::TransRequest::parse(msg, &b, u) {
                    let _ = t.pipe_call();
                    if let Some(subcommand) = t.setup_word(0) {
                        let _ = trans2::Trans2Request::parse(
                            subcommand,
                            t.params,
                            usize::from(t.param_offset),
                            t.data,
                            usize::from(t.data_offset),
                            u,
                        );
                    }
                }
                let _ = trans::TransResponse::parse(msg, &b);
            }
            cmd::TRANSACTION_SECONDARY | cmd::TRANSACTION2_SECONDARY => {
                let _ = trans::TransSecondary::parse(msg, &b);
            }
            cmd::NT_TRANSACT => {
                if let Ok(t) = trans::NtTransRequest::parse(msg, &b) {
                    let _ = trans::nt_transact_create(msg, &t, u).map(|c| c.name.decode());
                }
                if let Ok(Some(r)) = trans::NtTransResponse::parse(msg, &b) {
                    let _ = trans::NtTransCreateResponse::parse(r.params);
                }
            }
            _ => {}
        }
    }
}
