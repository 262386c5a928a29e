//! The four SMB3 ciphers (MS-SMB2 2.2.3.1.2 cipher ids) and authenticated decryption of one
//! transform payload.
//!
//! SMB uses a 16-byte tag (the transform header's Signature) and the first 11 (CCM) or 12 (GCM)
//! bytes of the header's 16-byte Nonce field; the associated data is the transform header from
//! its Nonce field to its end (bytes 20..52).

use aes::{Aes128, Aes256};
use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::{U11, U12, U16};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::AesGcm;
use ccm::Ccm;

/// An SMB3 cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    Aes128Ccm,
    Aes128Gcm,
    Aes256Ccm,
    Aes256Gcm,
}

impl Cipher {
    /// From the SMB2_ENCRYPTION_CAPABILITIES cipher id.
    pub fn from_id(id: u16) -> Option<Cipher> {
        match id {
            1 => Some(Cipher::Aes128Ccm),
            2 => Some(Cipher::Aes128Gcm),
            3 => Some(Cipher::Aes256Ccm),
            4 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }
    pub fn id(self) -> u16 {
        match self {
            Cipher::Aes128Ccm => 1,
            Cipher::Aes128Gcm => 2,
            Cipher::Aes256Ccm => 3,
            Cipher::Aes256Gcm => 4,
        }
    }
    /// Key length in bytes (16 or 32); also the KDF's L / 8.
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes128Gcm => 16,
            Cipher::Aes256Ccm | Cipher::Aes256Gcm => 32,
        }
    }
    /// How many bytes of the transform header's Nonce field the cipher uses.
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes256Ccm => 11,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 12,
        }
    }
    /// The name Zeek/Wireshark users know.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Ccm => "AES-128-CCM",
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aes256Ccm => "AES-256-CCM",
            Cipher::Aes256Gcm => "AES-256-GCM",
        }
    }
    /// The ciphers a key of `len` bytes could be for, CCM first (SMB 3.0.x has only CCM).
    pub fn candidates_for_key_len(len: usize) -> &'static [Cipher] {
        match len {
            16 => &[Cipher::Aes128Ccm, Cipher::Aes128Gcm],
            32 => &[Cipher::Aes256Ccm, Cipher::Aes256Gcm],
            _ => &[],
        }
    }
}

type Aes128Ccm = Ccm<Aes128, U16, U11>;
type Aes256Ccm = Ccm<Aes256, U16, U11>;
type Aes128Gcm = AesGcm<Aes128, U12>;
type Aes256Gcm = AesGcm<Aes256, U12>;

/// Decrypts `buf` in place. `nonce` is the transform header's 16-byte Nonce field (only its
/// first 11 or 12 bytes are used). Returns false (and leaves `buf` unspecified) when the key has
/// the wrong length or the tag does not verify — a wrong key never yields plaintext.
pub fn decrypt_in_place(
    cipher: Cipher,
    key: &[u8],
    nonce: &[u8; 16],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; 16],
) -> bool {
    fn run<A>(key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool
    where
        A: AeadInOut + KeyInit + aes_gcm::aead::AeadCore<TagSize = U16>,
    {
        let Ok(aead) = A::new_from_slice(key) else {
            return false;
        };
        let Ok(nonce) = <&Array<u8, A::NonceSize>>::try_from(nonce) else {
            return false;
        };
        let tag = Array::<u8, U16>::from(*tag);
        aead.decrypt_inout_detached(nonce, aad, buf.into(), &tag)
            .is_ok()
    }
    let n = &nonce[..cipher.nonce_len()];
    match cipher {
        Cipher::Aes128Ccm => run::<Aes128Ccm>(key, n, aad, buf, tag),
        Cipher::Aes256Ccm => run::<Aes256Ccm>(key, n, aad, buf, tag),
        Cipher::Aes128Gcm => run::<Aes128Gcm>(key, n, aad, buf, tag),
        Cipher::Aes256Gcm => run::<Aes256Gcm>(key, n, aad, buf, tag),
    }
}

/// Encrypts `buf` in place and returns the tag; the inverse of [`decrypt_in_place`]. The sensor
/// never encrypts: this exists so the tests can build transform messages.
#[cfg(test)]
pub fn encrypt_in_place(
    cipher: Cipher,
    key: &[u8],
    nonce: &[u8; 16],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; 16] {
    fn run<A>(key: &[u8], nonce: &[u8], aad: &[u8], buf: &mut [u8]) -> [u8; 16]
    where
        A: AeadInOut + KeyInit + aes_gcm::aead::AeadCore<TagSize = U16>,
    {
        let aead = A::new_from_slice(key).expect("test key length");
        let nonce = <&Array<u8, A::NonceSize>>::try_from(nonce).expect("nonce length");
        let tag = aead
            .encrypt_inout_detached(nonce, aad, buf.into())
            .expect("encrypt");
        tag.into()
    }
    let n = &nonce[..cipher.nonce_len()];
    match cipher {
        Cipher::Aes128Ccm => run::<Aes128Ccm>(key, n, aad, buf),
        Cipher::Aes256Ccm => run::<Aes256Ccm>(key, n, aad, buf),
        Cipher::Aes128Gcm => run::<Aes128Gcm>(key, n, aad, buf),
        Cipher::Aes256Gcm => run::<Aes256Gcm>(key, n, aad, buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::hex;

    fn arr16(v: &[u8]) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..v.len()].copy_from_slice(v);
        a
    }

    // NIST SP 800-38D / McGrew–Viega GCM spec, test case 4 (AES-128, 60-byte plaintext, AAD).
    #[test]
    fn aes128_gcm_nist_test_case_4() {
        let key = hex("feffe9928665731c6d6a8f9467308308");
        let nonce = arr16(&hex("cafebabefacedbaddecaf888"));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let ct = hex(concat!(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e",
            "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091"
        ));
        let tag = arr16(&hex("5bc94fbc3221a5db94fae95ae7121a47"));
        let mut buf = ct.clone();
        assert!(decrypt_in_place(
            Cipher::Aes128Gcm,
            &key,
            &nonce,
            &aad,
            &mut buf,
            &tag
        ));
        assert_eq!(buf, pt);
        let mut bad = tag;
        bad[0] ^= 1;
        let mut buf = ct;
        assert!(!decrypt_in_place(
            Cipher::Aes128Gcm,
            &key,
            &nonce,
            &aad,
            &mut buf,
            &bad
        ));
    }

    // GCM spec test case 16 (AES-256, same plaintext and AAD).
    #[test]
    fn aes256_gcm_nist_test_case_16() {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let nonce = arr16(&hex("cafebabefacedbaddecaf888"));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let pt = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let ct = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        ));
        let tag = arr16(&hex("76fc6ece0f4e1768cddf8853bb2d551b"));
        let mut buf = ct;
        assert!(decrypt_in_place(
            Cipher::Aes256Gcm,
            &key,
            &nonce,
            &aad,
            &mut buf,
            &tag
        ));
        assert_eq!(buf, pt);
    }

    // Every cipher round-trips, rejects a flipped ciphertext bit, a flipped AAD bit and the wrong
    // key, and uses only its own nonce prefix (bytes past 11/12 do not matter, as in SMB).
    #[test]
    fn every_cipher_round_trips_and_authenticates() {
        for c in [
            Cipher::Aes128Ccm,
            Cipher::Aes128Gcm,
            Cipher::Aes256Ccm,
            Cipher::Aes256Gcm,
        ] {
            let key: Vec<u8> = (0..c.key_len() as u8).collect();
            let mut nonce = [0x5au8; 16];
            let aad = [0x11u8; 32];
            let pt: Vec<u8> = (0..200u8).collect();
            let mut buf = pt.clone();
            let tag = encrypt_in_place(c, &key, &nonce, &aad, &mut buf);
            assert_ne!(buf, pt, "{}", c.name());
            let ct = buf.clone();
            for b in nonce.iter_mut().skip(c.nonce_len()) {
                *b = 0xff;
            }
            assert!(
                decrypt_in_place(c, &key, &nonce, &aad, &mut buf, &tag),
                "{}",
                c.name()
            );
            assert_eq!(buf, pt);
            let mut flipped = ct.clone();
            flipped[7] ^= 0x80;
            assert!(!decrypt_in_place(c, &key, &nonce, &aad, &mut flipped, &tag));
            let mut aad2 = aad;
            aad2[31] ^= 1;
            let mut b2 = ct.clone();
            assert!(!decrypt_in_place(c, &key, &nonce, &aad2, &mut b2, &tag));
            let mut wrong = key.clone();
            wrong[0] ^= 1;
            let mut b3 = ct.clone();
            assert!(!decrypt_in_place(c, &wrong, &nonce, &aad, &mut b3, &tag));
            let mut b4 = ct.clone();
            assert!(!decrypt_in_place(c, &key[..8], &nonce, &aad, &mut b4, &tag));
        }
    }

    #[test]
    fn ids_round_trip() {
        for id in 1..=4 {
            assert_eq!(Cipher::from_id(id).map(Cipher::id), Some(id));
        }
        assert_eq!(Cipher::from_id(0), None);
        assert_eq!(Cipher::from_id(5), None);
    }
}
