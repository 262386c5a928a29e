//! RFC 4121 and RFC 4757 publish no wrap-token vectors. These tokens were made by impacket 0.13.1
//! (`impacket.krb5.gssapi.GSSAPI(cipher).GSS_Wrap(key, data, 5)`, the code its DCE-RPC client
//! seals with), an implementation independent of this one: the same 40-byte stub 41 42 .. 68,
//! sequence number 5, keys 00 01 .. 1f (AES256), 00 .. 0f (AES128), 10 .. 1f (RC4). The sealed
//! requests of the lab capture are opened in tests/it/kerberos_rpc.rs.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn stub() -> Vec<u8> {
    (0x41..0x41 + 40).collect()
}

/// An impacket wrap token for `key` as the acceptor's subkey (impacket sets AcceptorSubkey).
fn keys(enctype: Enctype, key: &[u8]) -> ContextKeys {
    let k = Key::new(enctype, key).unwrap();
    ContextKeys {
        ticket: k.clone(),
        initiator_subkey: None,
        acceptor_subkey: Some(k),
    }
}

const AES256_SEALED: &str =
    "be039db44d29e7b46a04163489f4f463e1421b515eaf8e57548f7008e3e7c6042c21eedbdf2d0dd2";
const AES256_TOKEN: &str = "050406ff0008001c00000000000000055620d4dc4dcc688d02bbc368481574676228e92d34ef5e7d505fb91e463d5ece658145b7df22fcaeb1d88188bcfb57a3ee40de6f";
const AES128_SEALED: &str =
    "48782853fd0ecdf1b8eae750e939b8e85da36d0b36bef217051cf884da6b07d1d3fa18984944c0c4";
const AES128_TOKEN: &str = "050406ff0008001c0000000000000005f46241b2af8500f4c558c0956ce366cd2d209ea02463670f5d734d0efe340f4899b81c0f7e4a7b25338fc60a4276bfc402654c32";
const RC4_SEALED: &str =
    "8f656df629e8af10de1249f1af837b204eb4f97a72c21b3da7cbb8e84850e15e8f8935c955cb6271";
const RC4_TOKEN: &str =
    "602b06092a864886f712010202020111001000ffff371b5c42554f258967e927f8455540e40340d08cfc3fe4a5";

#[test]
fn cfx_header_fields() {
    let t = hex(AES256_TOKEN);
    let (rest, h) = cfx_header(&t).unwrap();
    assert_eq!(
        h,
        CfxHeader {
            flags: FLAG_SEALED | FLAG_ACCEPTOR_SUBKEY,
            ec: 8,
            rrc: 28,
            seq: 5
        }
    );
    // Verifier: header, then EC + RRC + confounder bytes of the rotated ciphertext.
    assert_eq!(rest.len(), 8 + 28 + 16);
    // Not a wrap token: a GetMIC token (04 04), and every cut of the header.
    let mut mic = t.clone();
    mic[0] = 0x04;
    assert!(cfx_header(&mic).is_err());
    for n in 0..CFX_HEADER_LEN {
        assert!(cfx_header(&t[..n]).is_err(), "cut at {n}");
    }
}

#[test]
fn opens_impacket_aes_wrap_tokens() {
    for (enctype, key, sealed, token) in [
        (
            Enctype::Aes256CtsHmacSha196,
            (0..32).collect::<Vec<u8>>(),
            AES256_SEALED,
            AES256_TOKEN,
        ),
        (
            Enctype::Aes128CtsHmacSha196,
            (0..16).collect(),
            AES128_SEALED,
            AES128_TOKEN,
        ),
    ] {
        let u = unseal_dce(&keys(enctype, &key), &hex(token), &hex(sealed), (&[], &[])).unwrap();
        assert_eq!(u.plaintext, stub(), "{enctype:?}");
        assert_eq!((u.sent_by_acceptor, u.seq), (false, 5));
        // Header-signing buffers offered: the plain form is found first all the same.
        let signed = unseal_dce(
            &keys(enctype, &key),
            &hex(token),
            &hex(sealed),
            (&[5, 0, 0, 3], &[9, 6, 0, 0]),
        );
        assert_eq!(signed.unwrap().plaintext, stub());
    }
}

#[test]
fn opens_impacket_rc4_wrap_token() {
    let key: Vec<u8> = (0x10..0x20).collect();
    let token = hex(RC4_TOKEN);
    let (_, t) = rc4_token(&token).unwrap();
    assert!(t.sealed);
    let u = unseal_dce(
        &keys(Enctype::Rc4Hmac, &key),
        &hex(RC4_TOKEN),
        &hex(RC4_SEALED),
        (&[], &[]),
    )
    .unwrap();
    assert_eq!(u.plaintext, stub());
    assert_eq!((u.sent_by_acceptor, u.seq), (false, 5));
}

#[test]
fn wrong_key_tampered_data_and_missing_subkey_fail_typed() {
    let key: Vec<u8> = (0..32).collect();
    let k = keys(Enctype::Aes256CtsHmacSha196, &key);
    let token = hex(AES256_TOKEN);
    let sealed = hex(AES256_SEALED);
    let mut bad = sealed.clone();
    bad[3] ^= 1;
    assert_eq!(
        unseal_dce(&k, &token, &bad, (&[], &[])),
        Err(UnsealError::Integrity)
    );
    let other = keys(Enctype::Aes256CtsHmacSha196, &[7; 32]);
    assert_eq!(
        unseal_dce(&other, &token, &sealed, (&[], &[])),
        Err(UnsealError::Integrity)
    );
    let no_subkey = ContextKeys {
        acceptor_subkey: None,
        ..k.clone()
    };
    assert_eq!(
        unseal_dce(&no_subkey, &token, &sealed, (&[], &[])),
        Err(UnsealError::NoAcceptorSubkey)
    );
    // An RC4 context key for an AES token, and the other way round.
    let rc4 = keys(Enctype::Rc4Hmac, &[1; 16]);
    assert_eq!(
        unseal_dce(&rc4, &token, &sealed, (&[], &[])),
        Err(UnsealError::WrongEnctype)
    );
    assert_eq!(
        unseal_dce(&k, &hex(RC4_TOKEN), &hex(RC4_SEALED), (&[], &[])),
        Err(UnsealError::WrongEnctype)
    );
    // Integrity only (Sealed flag clear).
    let mut mic_only = token.clone();
    mic_only[2] &= !FLAG_SEALED;
    assert_eq!(
        unseal_dce(&k, &mic_only, &sealed, (&[], &[])),
        Err(UnsealError::NotSealed)
    );
    assert_eq!(
        unseal_dce(&k, b"NTLMSSP\0", &sealed, (&[], &[])),
        Err(UnsealError::NotAWrapToken)
    );
}

#[test]
fn hostile_lengths_never_panic() {
    let k = keys(Enctype::Aes256CtsHmacSha196, &[0; 32]);
    let token = hex(AES256_TOKEN);
    for n in 0..token.len() {
        for sealed_len in [0, 1, 15, 16, 40] {
            let _ = unseal_dce(&k, &token[..n], &vec![0; sealed_len], (&[1], &[2]));
        }
    }
    // EC and RRC at their maximum.
    let mut big = token.clone();
    big[4..8].copy_from_slice(&[0xff; 4]);
    assert!(unseal_dce(&k, &big, &[0; 3], (&[], &[])).is_err());
    let rc4 = hex(RC4_TOKEN);
    let r = keys(Enctype::Rc4Hmac, &[0; 16]);
    for n in 0..rc4.len() {
        let _ = unseal_dce(&r, &rc4[..n], &[0; 8], (&[], &[]));
    }
}
