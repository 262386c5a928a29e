//! Byte-level tests of the Kerberos records on bytes of a bundled capture (401trg, Apache-2.0),
//! facts checked against tshark's `kerberos.*` fields. The KDC messages of the shared captures
//! (which may not be copied into the project) are checked in tests/it/kerberos.rs.

use super::*;
use crate::capture::file::CaptureReader;
use crate::capture::Packet;
use crate::decode::Decoder;
use crate::kerberos::{gss, presented};
use crate::sink::Sink;
use der_parser::asn1_rs::{ASN1DateTime, ASN1TimeZone};

/// The TCP payload of frame `n` (1-based, as tshark counts) of a bundled capture.
fn frame_payload(rel: &str, n: usize) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let mut r = CaptureReader::open(&path).expect("bundled capture");
    let mut pkt = Packet::empty();
    for _ in 0..n {
        assert!(r.next_packet(&mut pkt).unwrap(), "{rel} has {n} frames");
    }
    let mut d = Decoder::new();
    let seg = d
        .decode(pkt.frame(), &mut Sink::new())
        .expect("a TCP frame");
    seg.payload.to_vec()
}

/// The security blob of an SMB2 SESSION_SETUP request: from its GSS header (0x60, SPNEGO OID).
fn spnego_blob(payload: &[u8]) -> &[u8] {
    let at = payload
        .windows(10)
        .position(|w| w[0] == 0x60 && w[4..10] == [0x06, 0x06, 0x2b, 0x06, 0x01, 0x05])
        .expect("an SPNEGO blob");
    &payload[at..]
}

/// tshark -r 20171220_smb_psexec_add_user.pcap -Y kerberos.msg_type==14:
/// frame 16, realm CONTOSO.LOCAL, sname cifs/dc1.contoso.local, ticket etype 18, kvno 3;
/// frames 144 + 146 present the same ticket.
#[test]
fn ap_req_in_an_smb2_session_setup() {
    const CAPTURE: &str = "captures/public/401trg/20171220_smb_psexec_add_user.pcap";
    let payload = frame_payload(CAPTURE, 16);
    let blob = spnego_blob(&payload);
    let ap = ap_req(gss::ap_req_bytes(blob).expect("AP-REQ inside SPNEGO")).expect("parses");
    assert_eq!(ap.pvno, 5);
    assert_eq!(realm(&ap.ticket.realm), "CONTOSO.LOCAL");
    assert_eq!(principal(&ap.ticket.sname), "cifs/dc1.contoso.local");
    assert_eq!(
        ap.ticket.enc_part.etype,
        EncryptionType::AES256_CTS_HMAC_SHA1_96
    );
    assert_eq!(ap.ticket.enc_part.kvno, Some(3));
    assert!(!ap.ticket.enc_part.cipher.is_empty());
    assert_eq!(
        ap.authenticator.etype,
        EncryptionType::AES256_CTS_HMAC_SHA1_96
    );
    let first = presented(blob).expect("presented");
    assert_eq!(first.service, "cifs/dc1.contoso.local");
    assert_eq!(first.realm, "CONTOSO.LOCAL");
    // The later session presents the same ticket: the same digest (its request spans frames 144
    // and 146).
    let mut again = frame_payload(CAPTURE, 144);
    again.extend(frame_payload(CAPTURE, 146));
    assert_eq!(presented(spnego_blob(&again)).unwrap().ticket, first.ticket);
    // Every cut of the blob is refused cleanly (the AP-REQ needs all its bytes).
    for n in (0..blob.len()).step_by(97) {
        assert!(presented(&blob[..n]).is_none(), "cut at {n}");
    }
}

/// tshark -r captures/lab/l4_krb_benign_smbclient.pcap -Y kerberos.msg_type==12: MIT's kvno
/// (krb5 1.20) sent two TGS-REQs over TCP, each a record in two segments: frames 20 + 22 (1,836
/// bytes) with nonce 1089146073, frames 41 + 43 (1,924 bytes) with nonce 2905174271, which MIT
/// encodes as the negative INTEGER 0xad2970ff; the second asks renewable (not forwardable), sname
/// krbtgt/PSXLAB.TEST, AES256 first.
#[test]
fn tgs_requests_with_mit_nonces_of_either_sign() {
    const CAPTURE: &str = "captures/lab/l4_krb_benign_smbclient.pcap";
    let record_of =
        |first, last| [frame_payload(CAPTURE, first), frame_payload(CAPTURE, last)].concat();
    let payloads = [record_of(20, 22), record_of(41, 43)];
    let reqs: Vec<KdcReq> = payloads
        .iter()
        .map(|payload| {
            let (record, len) = record_mark(payload).unwrap();
            assert_eq!(len, RecordLen::Bytes(record.len()), "one whole record");
            match message(record).expect("parses") {
                Message::TgsReq(r) => r,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(reqs[0].req_body.nonce, 1_089_146_073);
    let nonce_der = [0xa7, 0x06, 0x02, 0x04, 0xad, 0x29, 0x70, 0xff];
    assert!(
        payloads[1].windows(8).any(|w| w == nonce_der),
        "the second carries the nonce as a negative INTEGER"
    );
    let req = &reqs[1];
    assert_eq!(req.req_body.nonce, 2_905_174_271);
    assert_eq!(req.msg_type.0, 12);
    assert_eq!(realm(&req.req_body.realm), "PSXLAB.TEST");
    let sname = req.req_body.sname.as_ref().expect("sname");
    assert_eq!(principal(sname), "krbtgt/PSXLAB.TEST");
    assert_eq!(
        req.req_body.etype[0],
        EncryptionType::AES256_CTS_HMAC_SHA1_96
    );
    assert_eq!(
        KdcOptions::of(&req.req_body),
        KdcOptions {
            forwardable: false,
            renewable: true
        }
    );
}

#[test]
fn dispatch_by_application_tag() {
    assert_eq!(message(&[]), Err(RecordError::NotKerberos));
    assert_eq!(message(&[0x30, 0x00]), Err(RecordError::NotKerberos));
    for tag in [0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x7e] {
        assert!(is_message_tag(tag));
        assert_eq!(message(&[tag, 0x00]), Err(RecordError::Malformed));
        assert_eq!(message(&[tag, 0x84, 0xff]), Err(RecordError::Malformed));
    }
    assert!(!is_message_tag(0x60));
}

#[test]
fn record_marks() {
    let (rest, len) = record_mark(&[0, 0, 0x06, 0x62, 0x6d]).unwrap();
    assert_eq!((len, rest), (RecordLen::Bytes(0x662), &[0x6d][..]));
    assert_eq!(
        record_mark(&[0x80, 0, 0, 1]).unwrap().1,
        RecordLen::Reserved
    );
    assert!(record_mark(&[0, 0, 1]).is_err());
}

#[test]
fn kerberos_times_in_capture_time() {
    let t = |year, month, day, hour, minute, second| {
        GeneralizedTime(ASN1DateTime::new(
            year,
            month,
            day,
            hour,
            minute,
            second,
            None,
            ASN1TimeZone::Z,
        ))
    };
    // Windows asks for tickets until 2037-09-13 02:48:05Z (tshark: 2136422885).
    assert_eq!(
        time(&t(2037, 9, 13, 2, 48, 5)),
        Some(Ts::from_secs(2_136_422_885))
    );
    assert_eq!(time(&t(1970, 1, 1, 0, 0, 0)), Some(Ts(0)));
    assert_eq!(time(&t(1969, 12, 31, 23, 59, 59)), None);
    assert_eq!(time(&t(2024, 2, 30, 0, 0, 0)), None);
    // Found by the `pipeline` fuzz target: a year past 2554 overflowed the nanoseconds.
    assert_eq!(time(&t(9999, 12, 31, 23, 59, 59)), None);
}

#[test]
fn names_are_cut() {
    let p = PrincipalName {
        name_type: kerberos_parser::krb5::NameType(1),
        name_string: vec!["é".repeat(MAX_KERBEROS_NAME_CHARS), "host".into()],
    };
    assert_eq!(principal(&p).chars().count(), MAX_KERBEROS_NAME_CHARS);
    let p = PrincipalName {
        name_type: kerberos_parser::krb5::NameType(2),
        name_string: vec!["host".into(), "srv.example.org".into()],
    };
    assert_eq!(principal(&p), "host/srv.example.org");
}
