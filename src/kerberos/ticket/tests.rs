//! Byte-level tests on the SESSION_SETUP security blobs of the Kerberos lab (captures/lab: l1
//! impacket psexec, l4 smbclient with mutual authentication), opened with the lab's keytab.

use super::*;

const KEYTAB: &[u8] = include_bytes!("../../../captures/lab/l1_krb_psexec.pcap.keytab");
const L1_REQ: &[u8] = include_bytes!("l1_setup_request.blob");
const L1_RESP: &[u8] = include_bytes!("l1_setup_response.blob");
const L4_REQ: &[u8] = include_bytes!("l4_setup_request.blob");
const L4_RESP: &[u8] = include_bytes!("l4_setup_response.blob");

fn keytab() -> Keytab {
    Keytab::parse(KEYTAB, "lab").unwrap()
}

#[test]
fn ap_req_public_fields() {
    let r = find_ap_req(L1_REQ).unwrap();
    assert_eq!(r.realm, "PSXLAB.TEST");
    assert_eq!(r.sname, "cifs/dc1.psxlab.test");
    assert_eq!(r.ticket.etype, 18);
    assert_eq!(r.ticket.kvno, Some(1));
    assert_eq!(r.authenticator.etype, 18);
    assert!(find_ap_rep(L1_REQ).is_none());
    assert!(find_ap_req(L1_RESP).is_none());
}

#[test]
fn impacket_ticket_and_authenticator_open_with_the_keytab() {
    let o = open_ap_req(&keytab(), L1_REQ).unwrap();
    assert_eq!(
        o.client,
        KrbClient {
            user: "Administrator".into(),
            realm: "PSXLAB.TEST".into(),
            service: "cifs/dc1.psxlab.test".into(),
        }
    );
    assert_eq!(o.keytab_principal, "DC1$@PSXLAB.TEST");
    assert_eq!(o.ticket_key.enctype, Enctype::Aes256CtsHmacSha196);
    // impacket's response has no AP-REP (no mutual authentication).
    assert!(open_ap_rep(&o, L1_RESP).is_none());
}

#[test]
fn smbclient_ap_rep_carries_the_acceptor_subkey() {
    let o = open_ap_req(&keytab(), L4_REQ).unwrap();
    assert_eq!(o.client.user, "Administrator");
    let sub = open_ap_rep(&o, L4_RESP).expect("AP-REP decrypts with the ticket key");
    let sub = sub.expect("Samba sends an acceptor subkey");
    assert_ne!(sub.bytes(), o.ticket_key.bytes());
    assert_eq!(o.session_key(Some(&sub)).bytes(), sub.bytes());
}

#[test]
fn wrong_keys_and_damage_are_typed_errors() {
    let mut kt = keytab();
    for k in &mut kt.keys {
        let mut b = k.key.bytes().to_vec();
        b[0] ^= 1;
        k.key = Key::new(k.key.enctype, &b).unwrap();
    }
    assert!(matches!(
        open_ap_req(&kt, L1_REQ),
        Err(OpenError::WrongKeys { tried: 1, .. })
    ));
    kt.keys.retain(|k| k.key.enctype == Enctype::Rc4Hmac);
    assert!(matches!(
        open_ap_req(&kt, L1_REQ),
        Err(OpenError::NoKey { .. })
    ));
    assert!(matches!(
        open_ap_req(&keytab(), b"\x60\x00"),
        Err(OpenError::NoApReq)
    ));
    // Every truncation is an error, never a panic.
    for n in 0..L1_REQ.len() {
        assert!(open_ap_req(&keytab(), &L1_REQ[..n]).is_err());
    }
    // Flipping any byte of the blob never panics.
    for n in (0..L4_REQ.len()).step_by(7) {
        let mut b = L4_REQ.to_vec();
        b[n] ^= 0xff;
        let _ = open_ap_req(&keytab(), &b);
    }
}

#[test]
fn der_lengths_are_bounded_by_the_input() {
    assert!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(tlv(&[0x30, 0x80, 0x00, 0x00]).is_err());
    assert!(tlv(&[0x1f, 0x01, 0x00]).is_err());
    assert_eq!(
        tlv(&[0x04, 0x81, 0x01, 0xAA]).unwrap().1,
        (0x04, &[0xAA][..])
    );
    assert_eq!(integer(&[0x02, 0x01, 0xff]), Some(-1));
    assert_eq!(integer(&[0x02, 0x02, 0x00, 0x80]), Some(128));
}
