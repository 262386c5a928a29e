//! The nonce reader alone; whole requests from a capture are in records_tests.rs.

use super::*;

#[test]
fn nonce_takes_rfc_unsigned_and_mit_signed_integers() {
    // RFC 4120 UInt32: a high value needs a leading zero octet.
    assert_eq!(
        nonce(&[0x02, 0x05, 0x00, 0xad, 0x29, 0x70, 0xff])
            .unwrap()
            .1,
        0xad29_70ff
    );
    assert_eq!(nonce(&[0x02, 0x01, 0x05]).unwrap().1, 5);
    // MIT: the same 32 bits as a negative INTEGER.
    assert_eq!(
        nonce(&[0x02, 0x04, 0xad, 0x29, 0x70, 0xff]).unwrap().1,
        0xad29_70ff
    );
    assert_eq!(nonce(&[0x02, 0x01, 0xff]).unwrap().1, u32::MAX);
}

#[test]
fn nonce_refuses_what_32_bits_cannot_hold() {
    assert!(nonce(&[0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00]).is_err());
    assert!(nonce(&[0x02, 0x05, 0xff, 0x7f, 0xff, 0xff, 0xff]).is_err());
    assert!(nonce(&[0x02, 0x00]).is_err());
    assert!(
        nonce(&[0x04, 0x01, 0x05]).is_err(),
        "an OCTET STRING is not a nonce"
    );
}
