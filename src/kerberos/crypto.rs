//! Kerberos decryption with a known key (RFC 3961 framework): AES128/256-CTS-HMAC-SHA1-96 (RFC 3962)
//! and RC4-HMAC (RFC 4757), the three enctypes Active Directory uses. Decryption only: the sensor
//! reads tickets and authenticators with keys from a keytab, it never makes any.
//!
//! Built on RustCrypto's aes, cts (CBC-CS3 is Kerberos' ciphertext stealing), hmac, sha1, md-5 and
//! rc4. n-fold and DK are written here: no crate implements the Kerberos key derivation.

use aes::{Aes128, Aes256};
use cts::{Decrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};

/// Encryption types the sensor can decrypt (IANA "Kerberos Encryption Type Numbers").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enctype {
    Aes128CtsHmacSha196,
    Aes256CtsHmacSha196,
    Rc4Hmac,
}

impl Enctype {
    /// The enctype for its number on the wire, None for those the sensor cannot decrypt (DES,
    /// 3DES, Camellia, the RFC 8009 SHA-2 types).
    pub fn from_id(id: i32) -> Option<Enctype> {
        match id {
            17 => Some(Enctype::Aes128CtsHmacSha196),
            18 => Some(Enctype::Aes256CtsHmacSha196),
            23 => Some(Enctype::Rc4Hmac),
            _ => None,
        }
    }

    pub fn id(self) -> i32 {
        match self {
            Enctype::Aes128CtsHmacSha196 => 17,
            Enctype::Aes256CtsHmacSha196 => 18,
            Enctype::Rc4Hmac => 23,
        }
    }

    pub fn key_len(self) -> usize {
        match self {
            Enctype::Aes128CtsHmacSha196 | Enctype::Rc4Hmac => 16,
            Enctype::Aes256CtsHmacSha196 => 32,
        }
    }
}

/// A key and its enctype. Debug shows the enctype only: key bytes never reach a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub enctype: Enctype,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("enctype", &self.enctype)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// None when the length does not fit the enctype.
    pub fn new(enctype: Enctype, bytes: &[u8]) -> Option<Key> {
        (bytes.len() == enctype.key_len()).then(|| Key {
            enctype,
            bytes: bytes.to_vec(),
        })
    }

    /// The raw key (the SMB3 session key is taken from it).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Why a decryption failed. Carries no key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("ciphertext shorter than confounder and checksum")]
    TooShort,
    #[error("integrity check failed (wrong key or corrupted data)")]
    Integrity,
}

/// AES confounder and cipher block size.
const AES_BLOCK: usize = 16;
/// HMAC-SHA1-96: the AES enctypes' checksum is the first 96 bits.
const AES_MAC_LEN: usize = 12;
/// RC4-HMAC: 16-byte HMAC-MD5 checksum, then an 8-byte confounder.
const RC4_MAC_LEN: usize = 16;
const RC4_CONFOUNDER_LEN: usize = 8;

/// Decrypts `ciphertext` (an EncryptedData's `cipher`) made with `key` for `usage` (RFC 4120 7.5.1:
/// 2 ticket, 11 AP-REQ authenticator, 12 AP-REP part, …). Returns the plaintext without the
/// confounder, which may carry trailing padding (RFC 3961 leaves that to the ASN.1 decoder).
pub fn decrypt(key: &Key, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
    match key.enctype {
        Enctype::Aes128CtsHmacSha196 | Enctype::Aes256CtsHmacSha196 => {
            decrypt_aes(key, usage, ciphertext)
        }
        Enctype::Rc4Hmac => decrypt_rc4(key, usage, ciphertext),
    }
}

fn decrypt_aes(key: &Key, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
    decrypt_aes_signed(key, usage, ciphertext, Signed::default())
}

/// Bytes a checksum covers beside the encrypted data, not encrypted themselves (GSS-API IOV
/// "sign only" buffers, as MIT's `krb5_c_decrypt_iov` orders them): `pre` before the data, `post`
/// after it. DCE-RPC header signing puts the PDU header in `pre` and the sec_trailer in `post`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Signed<'a> {
    pub pre: &'a [u8],
    /// Plaintext bytes (after the confounder) that `post` follows.
    pub data_len: usize,
    pub post: &'a [u8],
}

/// AES decryption (RFC 3962) whose HMAC also covers `signed`: HMAC-SHA1-96(Ki, confounder | pre |
/// plaintext[..data_len] | post | plaintext[data_len..]). With nothing signed this is plain
/// RFC 3961 decryption. Returns the plaintext without the confounder.
pub fn decrypt_aes_signed(
    key: &Key,
    usage: u32,
    ciphertext: &[u8],
    signed: Signed<'_>,
) -> Result<Vec<u8>, DecryptError> {
    if key.enctype == Enctype::Rc4Hmac {
        return Err(DecryptError::Integrity);
    }
    if ciphertext.len() < AES_BLOCK + AES_MAC_LEN {
        return Err(DecryptError::TooShort);
    }
    let (body, mac) = ciphertext.split_at(ciphertext.len() - AES_MAC_LEN);
    let ke = derive_key(key, &usage_constant(usage, 0xAA));
    let ki = derive_key(key, &usage_constant(usage, 0x55));
    let mut plain = body.to_vec();
    cts_decrypt(key.enctype, &ke, &mut plain);
    let (confounder, rest) = plain.split_at(AES_BLOCK);
    let (data, tail) = rest.split_at(signed.data_len.min(rest.len()));
    let mut h = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&ki).expect("HMAC takes any key");
    for part in [confounder, signed.pre, data, signed.post, tail] {
        h.update(part);
    }
    let full = h.finalize().into_bytes();
    if !constant_time_eq(&full[..AES_MAC_LEN], mac) {
        return Err(DecryptError::Integrity);
    }
    plain.drain(..AES_BLOCK);
    Ok(plain)
}

/// AES in CBC with ciphertext stealing, zero IV (RFC 3962 section 6: CS3, last two blocks swapped).
/// `buf` is at least one block long; exactly one block is plain AES (RFC 3962: no stealing then,
/// where cts' CS3 would still swap).
fn cts_decrypt(enctype: Enctype, key: &[u8], buf: &mut [u8]) {
    if buf.len() == AES_BLOCK {
        use aes::cipher::BlockCipherDecrypt;
        let mut b = aes::Block::default();
        b.copy_from_slice(buf);
        if key.len() == 16 {
            Aes128::new_from_slice(key)
                .expect("16-byte key")
                .decrypt_block(&mut b);
        } else {
            Aes256::new_from_slice(key)
                .expect("32-byte key")
                .decrypt_block(&mut b);
        }
        buf.copy_from_slice(&b);
        return;
    }
    let iv = [0u8; AES_BLOCK];
    let done = match enctype {
        Enctype::Aes128CtsHmacSha196 => {
            cts::CbcCs3::<Aes128>::new_from_slices(key, &iv).map(|c| c.decrypt(buf))
        }
        _ => cts::CbcCs3::<Aes256>::new_from_slices(key, &iv).map(|c| c.decrypt(buf)),
    };
    debug_assert!(matches!(done, Ok(Ok(()))), "key and block lengths checked");
}

fn aes_encrypt_block(key: &[u8], b: &mut aes::Block) {
    use aes::cipher::BlockCipherEncrypt;
    if key.len() == 16 {
        Aes128::new_from_slice(key)
            .expect("16-byte key")
            .encrypt_block(b);
    } else {
        Aes256::new_from_slice(key)
            .expect("32-byte key")
            .encrypt_block(b);
    }
}

/// The DK constant for a key usage: usage as 4 big-endian bytes, then 0xAA (Ke), 0x55 (Ki) or 0x99
/// (Kc) (RFC 3961 section 5.3).
fn usage_constant(usage: u32, which: u8) -> [u8; 5] {
    let u = usage.to_be_bytes();
    [u[0], u[1], u[2], u[3], which]
}

/// DK(base, constant) = random-to-key(DR(base, constant)) (RFC 3961 section 5.1). DR encrypts the
/// n-folded constant, then each output again, until the key length is filled; for AES
/// random-to-key is the identity (RFC 3962 section 6).
pub fn derive_key(base: &Key, constant: &[u8]) -> Vec<u8> {
    let len = base.enctype.key_len();
    let mut block = aes::Block::default();
    block.copy_from_slice(&nfold(constant, AES_BLOCK));
    let mut out = Vec::with_capacity(len + AES_BLOCK);
    while out.len() < len {
        aes_encrypt_block(&base.bytes, &mut block);
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

/// RFC 3961 section 5.1 n-fold: the input repeated, each copy rotated 13 bits further right, to the
/// least common multiple of both lengths, then added in `out_len`-byte chunks with ones'-complement
/// (end-around carry) addition.
pub fn nfold(input: &[u8], out_len: usize) -> Vec<u8> {
    let mut acc = vec![0u8; out_len];
    if input.is_empty() || out_len == 0 {
        return acc;
    }
    let total = lcm(input.len(), out_len);
    let in_bits = input.len() * 8;
    let mut chunk = vec![0u8; out_len];
    for start in (0..total).step_by(out_len) {
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = repeated_byte(input, in_bits, start + i);
        }
        ones_complement_add(&mut acc, &chunk);
    }
    acc
}

/// Byte `n` of the repeated-and-rotated input: copy k = n / len is the input rotated right by 13k
/// bits, so its bit j is the input's bit (j - 13k) mod in_bits.
fn repeated_byte(input: &[u8], in_bits: usize, n: usize) -> u8 {
    let copy = n / input.len();
    let rot = (13 * copy) % in_bits;
    let mut b = 0u8;
    for bit in 0..8 {
        let j = (n % input.len()) * 8 + bit;
        let src = (j + in_bits - rot) % in_bits;
        let v = (input[src / 8] >> (7 - src % 8)) & 1;
        b |= v << (7 - bit);
    }
    b
}

/// acc += x as big-endian numbers of equal length, carry out of the top added back at the bottom.
fn ones_complement_add(acc: &mut [u8], x: &[u8]) {
    let mut carry = 0u16;
    for i in (0..acc.len()).rev() {
        let s = acc[i] as u16 + x[i] as u16 + carry;
        acc[i] = s as u8;
        carry = s >> 8;
    }
    // The end-around carry can itself carry at most once more (the sum is below 2 * 2^n).
    while carry != 0 {
        for i in (0..acc.len()).rev() {
            let s = acc[i] as u16 + carry;
            acc[i] = s as u8;
            carry = s >> 8;
            if carry == 0 {
                break;
            }
        }
    }
}

fn lcm(a: usize, b: usize) -> usize {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a / x * b
}

/// RFC 4757 section 5 (and MS-KILE 3.1.5.9): K1 = HMAC-MD5(key, usage), checksum = first 16 bytes,
/// K3 = HMAC-MD5(K1, checksum), plaintext = RC4(K3, rest), then HMAC-MD5(K1, plaintext) must equal
/// the checksum. Key usage 9 (TGS-REP with a subkey) is sent as 8.
fn decrypt_rc4(key: &Key, usage: u32, ciphertext: &[u8]) -> Result<Vec<u8>, DecryptError> {
    use rc4::StreamCipher;
    if ciphertext.len() < RC4_MAC_LEN + RC4_CONFOUNDER_LEN {
        return Err(DecryptError::TooShort);
    }
    let ms_usage = if usage == 9 { 8 } else { usage };
    let k1 = hmac_md5(&key.bytes, &ms_usage.to_le_bytes());
    let (checksum, data) = ciphertext.split_at(RC4_MAC_LEN);
    let k3 = hmac_md5(&k1, checksum);
    let mut plain = data.to_vec();
    let mut rc4 = <rc4::Rc4 as rc4::KeyInit>::new_from_slice(&k3).expect("16-byte key");
    rc4.apply_keystream(&mut plain);
    if !constant_time_eq(&hmac_md5(&k1, &plain), checksum) {
        return Err(DecryptError::Integrity);
    }
    plain.drain(..RC4_CONFOUNDER_LEN);
    Ok(plain)
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    crate::smb::crypto::ntlm::hmac_md5(key, &[data])
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// RFC 3962 string-to-key: PBKDF2-HMAC-SHA1 then DK(tkey, "kerberos"). Tests only (the vectors,
/// and keytabs made from a password): the sensor never holds passwords for Kerberos.
#[cfg(test)]
pub(crate) fn string_to_key(enctype: Enctype, pass: &[u8], salt: &[u8], iterations: u32) -> Key {
    let mut tkey = vec![0u8; enctype.key_len()];
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pass, salt, iterations, &mut tkey);
    let k = derive_key(&Key::new(enctype, &tkey).expect("length"), b"kerberos");
    Key::new(enctype, &k).expect("length")
}

#[cfg(test)]
mod tests;
