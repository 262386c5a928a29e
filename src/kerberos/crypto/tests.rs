//! Vectors from RFC 3961 appendix A.1 (n-fold), RFC 3962 appendix B (string-to-key, CBC-CTS) and
//! MIT krb5's known-ciphertext tests (lib/crypto/crypto_tests/t_decrypt.c) for RC4-HMAC and AES:
//! RFC 4757 publishes no vectors. The lab's own tickets are decrypted in tests/it/kerberos_lab.rs.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn nfold_rfc3961_vectors() {
    let cases: &[(&[u8], usize, &str)] = &[
        (b"012345", 64, "be072631276b1955"),
        (b"password", 56, "78a07b6caf85fa"),
        (b"Rough Consensus, and Running Code", 64, "bb6ed30870b7f0e0"),
        (
            b"password",
            168,
            "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e",
        ),
        (
            b"MASSACHVSETTS INSTITVTE OF TECHNOLOGY",
            192,
            "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b",
        ),
        (b"Q", 168, "518a54a215a8452a518a54a215a8452a518a54a215"),
        (b"ba", 168, "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"),
        (b"kerberos", 64, "6b65726265726f73"),
        (b"kerberos", 128, "6b65726265726f737b9b5b2b93132b93"),
        (
            b"kerberos",
            168,
            "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4",
        ),
        (
            b"kerberos",
            256,
            "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4",
        ),
    ];
    for (input, bits, want) in cases {
        assert_eq!(nfold(input, bits / 8), hex(want), "{bits}-fold {input:?}");
    }
}

/// (iterations, pass phrase, salt, AES128 key, AES256 key).
type S2kCase<'a> = (u32, &'a [u8], &'a [u8], &'a str, &'a str);

#[test]
fn string_to_key_rfc3962_vectors() {
    let salt = b"ATHENA.MIT.EDUraeburn";
    let cases: &[S2kCase] = &[
        (
            1,
            b"password",
            salt,
            "42263c6e89f4fc28b8df68ee09799f15",
            "fe697b52bc0d3ce14432ba036a92e65bbb52280990a2fa27883998d72af30161",
        ),
        (
            2,
            b"password",
            salt,
            "c651bf29e2300ac27fa469d693bdda13",
            "a2e16d16b36069c135d5e9d2e25f896102685618b95914b467c67622225824ff",
        ),
        (
            1200,
            b"password",
            salt,
            "4c01cd46d632d01e6dbe230a01ed642a",
            "55a6ac740ad17b4846941051e1e8b0a7548d93b0ab30a8bc3ff16280382b8c2a",
        ),
        (
            5,
            b"password",
            &[0x12, 0x34, 0x56, 0x78, 0x78, 0x56, 0x34, 0x12],
            "e9b23d52273747dd5c35cb55be619d8e",
            "97a4e786be20d81a382d5ebc96d5909cabcdadc87ca48f574504159f16c36e31",
        ),
        (
            1200,
            &[b'X'; 64],
            b"pass phrase equals block size",
            "59d1bb789a828b1aa54ef9c2883f69ed",
            "89adee3608db8bc71f1bfbfe459486b05618b70cbae22092534e56c553ba4b34",
        ),
        (
            1200,
            &[b'X'; 65],
            b"pass phrase exceeds block size",
            "cb8005dc5f90179a7f02104c0018751d",
            "d78c5c9cb872a8c9dad4697f0bb5b2d21496c82beb2caeda2112fceea057401b",
        ),
        (
            50,
            &[0xf0, 0x9d, 0x84, 0x9e],
            b"EXAMPLE.COMpianist",
            "f149c1f2e154a73452d43e7fe62a56e5",
            "4b6d9839f84406df1f09cc166db4b83c571848b784a3d6bdc346589a3e393f9e",
        ),
    ];
    for (iter, pass, salt, k128, k256) in cases {
        assert_eq!(
            string_to_key(Enctype::Aes128CtsHmacSha196, pass, salt, *iter).bytes(),
            hex(k128),
            "aes128, {iter} iterations"
        );
        assert_eq!(
            string_to_key(Enctype::Aes256CtsHmacSha196, pass, salt, *iter).bytes(),
            hex(k256),
            "aes256, {iter} iterations"
        );
    }
}

#[test]
fn cbc_cts_rfc3962_vectors() {
    let key = b"chicken teriyaki";
    let plain = b"I would like the General Gau's Chicken, please, and wonton soup.";
    let cases: &[(usize, &str)] = &[
        (17, "c6353568f2bf8cb4d8a580362da7ff7f97"),
        (31, "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"),
        (32, "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"),
        (47, "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5"),
        (48, "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8"),
        (64, "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8"),
    ];
    for (len, ct) in cases {
        let mut buf = hex(ct);
        cts_decrypt(Enctype::Aes128CtsHmacSha196, key, &mut buf);
        assert_eq!(&buf[..], &plain[..*len], "{len} bytes");
    }
}

/// (enctype, plaintext, usage, key, ciphertext) from MIT krb5's t_decrypt.c.
type MitCase = (Enctype, &'static [u8], u32, Vec<u8>, Vec<u8>);

fn mit_cases() -> Vec<MitCase> {
    use Enctype::*;
    vec![
        (Rc4Hmac, b"", 0, hex("F81FEC39255F5784E850C4377C88BD85"),
         hex("02C1EB15586144122EC717763DD348BF00434DDC6585954C")),
        (Rc4Hmac, b"9 bytesss", 2, hex("3E40AB6093695281B3AC1A9304224D98"),
         hex("0F9AD121D99D4A09448E4F1F718C4F5CBE6096262C66F29DF232A87C9F98755D55")),
        (Rc4Hmac, b"30 bytes bytes bytes bytes byt", 4, hex("68F263DB3FCE15D031C9EAB02D67107A"),
         hex("95F9047C3AD75891C2E9B04B16566DC8B6EB9CE4231AFB2542EF87A7B5A0F260A99F0460508DE0CECC632D07C354124E46C5D2234EB8")),
        (Aes128CtsHmacSha196, b"", 0, hex("5A5C0F0BA54F3828B2195E66CA24A289"),
         hex("49FF8E11C173D9583A3254FBE7B1F1DF36C538E8416784A1672E6676")),
        (Aes128CtsHmacSha196, b"13 bytes byte", 3, hex("033EE6502C54FD23E27791E987983827"),
         hex("EC366D0327A933BF49330E650E49BC6B974637FE80BF532FE51795B4809718E6194724DB948D1FD637")),
        (Aes128CtsHmacSha196, b"30 bytes bytes bytes bytes byt", 4, hex("DCEEB70B3DE76562E689226C76429148"),
         hex("C96081032D5D8EEB7E32B4089F789D0FAA481DEA74C0F97CBF3146DDFCF8E800156ECB532FC203E30FF600B63B350939FECE510F02D7FF1E7BAC")),
        (Aes256CtsHmacSha196, b"9 bytesss", 2,
         hex("B1AE4CD8462AFF1677053CC9279AAC30B796FB81CE21474DD3DDBCFEA4EC76D7"),
         hex("09957AA25FCAF88F7B39E4406E633012D5FEA21853F6478DA7065CAEF41FD454A40824EEC5")),
        (Aes256CtsHmacSha196, b"30 bytes bytes bytes bytes byt", 4,
         hex("F1C795E9248A09338D82C3F8D5B567040B0110736845041347235B1404231398"),
         hex("D1137A4D634CFECE924DBC3BF6790648BD5CFF7DE0E7B99460211D0DAEF3D79A295C688858F3B34B9CBD6EEBAE81DAF6B734D4D498B6714F1C1D")),
    ]
}

#[test]
fn decrypts_mit_known_ciphertexts() {
    for (enctype, plain, usage, key, ct) in mit_cases() {
        let key = Key::new(enctype, &key).unwrap();
        let got =
            decrypt(&key, usage, &ct).unwrap_or_else(|e| panic!("{enctype:?} {plain:?}: {e}"));
        assert_eq!(got, plain, "{enctype:?} usage {usage}");
    }
}

#[test]
fn wrong_usage_key_or_bit_fails_the_integrity_check() {
    for (enctype, _, usage, key, ct) in mit_cases() {
        let k = Key::new(enctype, &key).unwrap();
        assert_eq!(decrypt(&k, usage + 1, &ct), Err(DecryptError::Integrity));
        let mut other = key.clone();
        other[0] ^= 1;
        let k2 = Key::new(enctype, &other).unwrap();
        assert_eq!(decrypt(&k2, usage, &ct), Err(DecryptError::Integrity));
        for i in [0, ct.len() / 2, ct.len() - 1] {
            let mut bad = ct.clone();
            bad[i] ^= 0x80;
            assert_eq!(
                decrypt(&k, usage, &bad),
                Err(DecryptError::Integrity),
                "{enctype:?} byte {i}"
            );
        }
    }
}

#[test]
fn short_or_empty_ciphertext_is_an_error_not_a_panic() {
    for enctype in [
        Enctype::Aes128CtsHmacSha196,
        Enctype::Aes256CtsHmacSha196,
        Enctype::Rc4Hmac,
    ] {
        let k = Key::new(enctype, &vec![7u8; enctype.key_len()]).unwrap();
        for n in 0..40 {
            let r = decrypt(&k, 2, &vec![0u8; n]);
            assert!(r.is_err(), "{enctype:?} {n} bytes");
        }
    }
    assert!(Key::new(Enctype::Aes256CtsHmacSha196, &[0u8; 16]).is_none());
}

#[test]
fn key_debug_shows_no_key_bytes() {
    let k = Key::new(Enctype::Rc4Hmac, &[0xAB; 16]).unwrap();
    let d = format!("{k:?}");
    assert!(
        !d.to_lowercase().contains("ab, ") && !d.contains("171"),
        "{d}"
    );
    assert!(d.contains("Rc4Hmac"));
}
