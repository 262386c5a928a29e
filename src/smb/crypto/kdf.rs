//! SP800-108 key derivation in counter mode with HMAC-SHA256, as MS-SMB2 3.1.4.2 specifies it
//! (r = 32, L = 128 or 256 bits).
//!
//! Written by hand rather than taken from a crate: SMB needs one fixed instance (one PRF, a 32-bit
//! big-endian counter before the label, a zero byte between label and context, L as a 32-bit
//! big-endian suffix). That is ten lines over `hmac`, whereas a generic KDF crate would be one more
//! dependency to keep in step with the RustCrypto generation we pin, for no gain. Microsoft's
//! published SMB 3.0 and 3.1.1 vectors below pin every byte of the construction.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Derives `out.len()` bytes (16 or 32 in SMB) from `key` for `label` and `context`.
/// `label` is passed as SMB writes it, with its terminating NUL (e.g. `b"SMBC2SCipherKey\0"`).
pub fn sp800_108_hmac_sha256(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let l_bits = (out.len() as u32).saturating_mul(8);
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
            return;
        };
        mac.update(&(i as u32 + 1).to_be_bytes());
        mac.update(label);
        mac.update(&[0u8]);
        mac.update(context);
        mac.update(&l_bits.to_be_bytes());
        let block = mac.finalize().into_bytes();
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::hex;

    // Microsoft Open Specifications blog, "Encryption in SMB 3.0: A protocol perspective" (2012):
    // SessionKey B4546771B515F766A86735532DD6C4F0 gives EncryptionKey (ServerIn) and
    // DecryptionKey (ServerOut) below.
    #[test]
    fn smb300_cipher_keys_from_published_vector() {
        let sk = hex("B4546771B515F766A86735532DD6C4F0");
        let mut k = [0u8; 16];
        sp800_108_hmac_sha256(&sk, b"SMB2AESCCM\0", b"ServerIn \0", &mut k);
        assert_eq!(k.to_vec(), hex("261B72350558F2E9DCF613070383EDBF"));
        sp800_108_hmac_sha256(&sk, b"SMB2AESCCM\0", b"ServerOut\0", &mut k);
        assert_eq!(k.to_vec(), hex("8FE2B57EC34D2DB5B1A9727F526BBDB5"));
    }

    // "SMB 3.1.1 Encryption in Windows 10" (2015): SessionKey + PreauthIntegrityHashValue give the
    // client's EncryptionKey (C2S) and DecryptionKey (S2C).
    #[test]
    fn smb311_cipher_keys_from_published_vector() {
        let sk = hex("419FDDF34C1E001909D362AE7FB6AF79");
        let pa = hex(concat!(
            "B23F3CBFD69487D9832B79B1594A367CDD950909B774C3A4C412B4FCEA9EDDDB",
            "A7DB256BA2EA30E977F11F9B113247578E0E915C6D2A513B8F2FCA5707DC8770"
        ));
        let mut k = [0u8; 16];
        sp800_108_hmac_sha256(&sk, b"SMBC2SCipherKey\0", &pa, &mut k);
        assert_eq!(k.to_vec(), hex("A2F5E80E5D59103034F32E52F698E5EC"));
        sp800_108_hmac_sha256(&sk, b"SMBS2CCipherKey\0", &pa, &mut k);
        assert_eq!(k.to_vec(), hex("748C50868C90F302962A5C35F5F9A8BF"));
    }

    // "SMB 3.1.1 Pre-authentication integrity in Windows 10" (2015): signing key from the final
    // preauth hash (the hash chain itself is tested in preauth.rs).
    #[test]
    fn smb311_signing_key_from_published_vector() {
        let sk = hex("270E1BA896585EEB7AF3472D3B4C75A7");
        let pa = hex(concat!(
            "0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB79",
            "28622DDDAD522D9751640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01"
        ));
        let mut k = [0u8; 16];
        sp800_108_hmac_sha256(&sk, b"SMBSigningKey\0", &pa, &mut k);
        assert_eq!(k.to_vec(), hex("73FE7A9A77BEF0BDE49C650D8CCB5F76"));
    }

    // L = 256 is not simply two L = 128 outputs: L is part of every PRF input.
    #[test]
    fn l256_differs_from_l128_and_is_deterministic() {
        let sk = [7u8; 16];
        let mut a = [0u8; 16];
        let mut b = [0u8; 32];
        let mut c = [0u8; 32];
        sp800_108_hmac_sha256(&sk, b"SMBC2SCipherKey\0", b"ctx", &mut a);
        sp800_108_hmac_sha256(&sk, b"SMBC2SCipherKey\0", b"ctx", &mut b);
        sp800_108_hmac_sha256(&sk, b"SMBC2SCipherKey\0", b"ctx", &mut c);
        assert_eq!(b, c);
        assert_ne!(&b[..16], &a[..]);
        assert_ne!(&b[..16], &b[16..]);
    }
}
