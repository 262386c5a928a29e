//! The nom record modules one by one, on raw bytes: SMB2 records (header, every command the
//! sensor reads, transform header), the compression transform and its decompressors (with a
//! small cap), NTLMSSP, NetBIOS, DCE-RPC PDUs and epm towers. Input: selector byte, then the
//! record bytes. Nothing may panic, and no decompressed output may pass its cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psexec_sensor::dcerpc::{epm, pdu};
use psexec_sensor::smb::smb2::{compression, records as r};
use psexec_sensor::smb::{netbios, ntlmssp};

/// Cap for decompression under fuzzing: small, so a bomb is caught by the cap, not by memory.
const CAP: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let [sel, b @ ..] = data else {
        return;
    };
    match sel % 8 {
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
        _ => {
            let mut out = Vec::new();
            if psexec_sensor::smb::smb2::xpress::decompress_lz77(b, CAP, &mut out).is_ok() {
                assert!(out.len() <= CAP);
            }
        }
    }
});
