//! Byte-level tests: the lab's `samba-tool domain exportkeytab` output and a keytab made by MIT
//! `ktutil` from a known password (its keys must equal RFC 3962 / NT-hash string-to-key of it).

use super::*;
use crate::kerberos::crypto::string_to_key;

/// `samba-tool domain exportkeytab --principal=DC1$` (captures/lab, the Kerberos lab's DC).
const SAMBA: &[u8] = include_bytes!("../../../captures/lab/l1_krb_psexec.pcap.keytab");
/// MIT ktutil 1.20: `addent -password -p cifs/fs1.example.com@EXAMPLE.COM -k 3 -e E` for E =
/// aes256, aes128, arcfour-hmac, then camellia128-cts-cmac with -k 2; password `KeytabTest1`.
const KTUTIL: &[u8] = include_bytes!("ktutil.keytab");

#[test]
fn samba_export_entries_byte_by_byte() {
    let (rest, (entries, holes)) = records(SAMBA).unwrap();
    assert!(rest.is_empty());
    assert_eq!(holes, 0);
    assert_eq!(entries.len(), 3);
    let types: Vec<u16> = entries.iter().map(|e| e.key_type).collect();
    assert_eq!(types, [18, 17, 23]);
    for e in &entries {
        assert_eq!(e.realm, b"PSXLAB.TEST");
        assert_eq!(e.components, [&b"DC1$"[..]]);
        assert_eq!(e.name_type, Some(1));
        assert_eq!(e.kvno, 1);
    }
    assert_eq!(entries[0].key.len(), 32);
    assert_eq!(entries[1].key.len(), 16);
    // The first entry's key starts at byte 0x28 of the file (after header, length, names, type).
    assert_eq!(entries[0].key, &SAMBA[0x28..0x48]);
    let kt = Keytab::parse(SAMBA, "samba").unwrap();
    assert_eq!(kt.keys.len(), 3);
    assert_eq!(kt.keys[0].principal, "DC1$@PSXLAB.TEST");
}

#[test]
fn ktutil_keys_are_the_password_keys() {
    let kt = Keytab::parse(KTUTIL, "ktutil").unwrap();
    assert_eq!(kt.unsupported, 1, "camellia is kept out");
    assert_eq!(kt.keys.len(), 3);
    let salt = b"EXAMPLE.COMcifsfs1.example.com";
    let pass = b"KeytabTest1";
    for k in &kt.keys {
        assert_eq!(k.principal, "cifs/fs1.example.com@EXAMPLE.COM");
        assert_eq!(k.kvno, 3);
        let want = match k.key.enctype {
            Enctype::Rc4Hmac => crate::smb::crypto::ntlm::nt_hash("KeytabTest1").to_vec(),
            t => string_to_key(t, pass, salt, 4096).bytes().to_vec(),
        };
        assert_eq!(k.key.bytes(), &want[..], "{:?}", k.key.enctype);
    }
    let aes = kt.candidates(Enctype::Aes256CtsHmacSha196, Some(3));
    assert_eq!(aes.len(), 1);
}

#[test]
fn version_1_little_endian_counts_the_realm() {
    // 0x0501: realm counted among components, no name type, little-endian numbers.
    let mut b = vec![5u8, 1];
    let mut body = Vec::new();
    body.extend(2u16.to_le_bytes()); // realm + one component
    for s in [&b"R.TEST"[..], b"svc"] {
        body.extend((s.len() as u16).to_le_bytes());
        body.extend(s);
    }
    body.extend(7u32.to_le_bytes()); // timestamp
    body.push(4); // kvno8
    body.extend(23u16.to_le_bytes());
    body.extend(16u16.to_le_bytes());
    body.extend([0x11; 16]);
    b.extend((body.len() as i32).to_le_bytes());
    b.extend(&body);
    let kt = Keytab::parse(&b, "v1").unwrap();
    assert_eq!(kt.keys[0].principal, "svc@R.TEST");
    assert_eq!(kt.keys[0].kvno, 4);
    assert_eq!(kt.keys[0].key.enctype, Enctype::Rc4Hmac);
}

#[test]
fn holes_are_skipped_and_zero_length_ends_the_file() {
    let mut b = SAMBA[..2].to_vec();
    b.extend((-5i32).to_be_bytes());
    b.extend([0xEE; 5]);
    b.extend(&SAMBA[2..]);
    b.extend(0i32.to_be_bytes());
    b.extend([0xFF; 9]);
    let (_, (entries, holes)) = records(&b).unwrap();
    assert_eq!((entries.len(), holes), (3, 1));
}

#[test]
fn bad_files_are_clear_errors_without_key_bytes() {
    let e = Keytab::parse(b"hello", "x.keytab").unwrap_err();
    assert!(e.to_string().contains("not a keytab"), "{e}");
    // Every truncation of a real keytab is an error or a shorter keytab, never a panic.
    for n in 0..SAMBA.len() {
        if let Err(e) = Keytab::parse(&SAMBA[..n], "cut") {
            let text = e.to_string();
            for k in &Keytab::parse(SAMBA, "ok").unwrap().keys {
                let hexkey: String = k.key.bytes().iter().map(|b| format!("{b:02x}")).collect();
                assert!(!text.contains(&hexkey));
            }
        }
    }
    // A component count past the cap.
    let mut b = SAMBA.to_vec();
    b[6..8].copy_from_slice(&(MAX_KEYTAB_COMPONENTS as u16 + 1).to_be_bytes());
    assert!(Keytab::parse(&b, "x")
        .unwrap_err()
        .to_string()
        .contains("MAX_KEYTAB_COMPONENTS"));
    // Only unusable enctypes.
    let mut b = SAMBA[..2 + 4 + 0x3a].to_vec();
    b[2 + 4 + 0x3a - 0x1a..][..2].copy_from_slice(&1u16.to_be_bytes()); // des-cbc-crc
    let _ = Keytab::parse(&b, "des");
}

#[test]
fn debug_output_holds_no_key() {
    let kt = Keytab::parse(SAMBA, "samba").unwrap();
    let d = format!("{kt:?}");
    for k in &kt.keys {
        let dec: Vec<String> = k.key.bytes().iter().map(|b| b.to_string()).collect();
        assert!(!d.contains(&dec[..8].join(", ")), "{d}");
    }
}
