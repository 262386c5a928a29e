//! NTLMv2 key derivation (MS-NLMP 3.3.2, 3.4.5.1): from the password (or its NT hash) and the
//! CHALLENGE/AUTHENTICATE exchange to the exported session key that SMB3 keys are derived from.
//!
//! NT hash = MD4(UTF-16LE(password)); NTOWFv2 = HMAC-MD5(NT hash, UTF-16LE(UPPER(user) + domain));
//! NTProofStr = HMAC-MD5(NTOWFv2, server challenge + blob) must equal the first 16 bytes of the NT
//! response (that is how we know the password is right); session base key = HMAC-MD5(NTOWFv2,
//! NTProofStr), which for NTLMv2 is also the key exchange key; with NEGOTIATE_KEY_EXCH the client
//! sent RC4(key exchange key, random session key) and the random key is the exported key.

use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use rc4::{Rc4, StreamCipher};

use crate::smb::ntlmssp;
use crate::wire::parsed;

/// NTLMSSP_NEGOTIATE_KEY_EXCH.
pub const NEGOTIATE_KEY_EXCH: u32 = 0x4000_0000;

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<Md5> as KeyInit>::new_from_slice(key) else {
        return out;
    };
    for p in parts {
        mac.update(p);
    }
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// The NT hash (NTOWFv1) of a password.
pub fn nt_hash(password: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(&Md4::digest(utf16le(password)));
    out
}

/// NTOWFv2 = HMAC-MD5(NT hash, UTF-16LE(uppercase(user) + domain)). The domain keeps its case.
pub fn ntowf_v2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut who = user.to_uppercase();
    who.push_str(domain);
    hmac_md5(nt_hash, &[&utf16le(&who)])
}

/// NTProofStr = HMAC-MD5(NTOWFv2, server challenge + blob), where blob is the NT response after
/// its first 16 bytes.
pub fn nt_proof_str(ntowf_v2: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(ntowf_v2, &[server_challenge, blob])
}

pub fn session_base_key(ntowf_v2: &[u8; 16], nt_proof_str: &[u8; 16]) -> [u8; 16] {
    hmac_md5(ntowf_v2, &[nt_proof_str])
}

/// RC4 with `key` over `data` (symmetric: wraps and unwraps the exchanged session key).
pub fn rc4(key: &[u8; 16], data: &[u8; 16]) -> [u8; 16] {
    let mut out = *data;
    if let Ok(mut c) = <Rc4 as rc4::KeyInit>::new_from_slice(key) {
        c.apply_keystream(&mut out);
    }
    out
}

/// Longest user or domain name kept for key derivation, in bytes on the wire (MS-NLMP limits names
/// to 256 characters; anything longer is hostile and the message is ignored).
pub const MAX_NTLM_NAME_BYTES: usize = 1024;
/// Longest NT response kept (the NTLMv2 blob holds the target info, a few hundred bytes; MS-NLMP
/// bounds the whole message well below this).
pub const MAX_NT_RESPONSE_BYTES: usize = 4096;

/// What key derivation keeps of an AUTHENTICATE message (read by [`crate::smb::ntlmssp`], the one
/// NTLMSSP parser). The NT response and the encrypted session key are not secrets on their own
/// (they are on the wire), but together with a password they give keys, so Debug leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthMaterial {
    pub user: String,
    pub domain: String,
    pub flags: u32,
    pub nt_response: Vec<u8>,
    pub encrypted_session_key: Vec<u8>,
}

impl std::fmt::Debug for AuthMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthMaterial")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("nt_response_len", &self.nt_response.len())
            .finish_non_exhaustive()
    }
}

impl AuthMaterial {
    /// The AUTHENTICATE in a SESSION_SETUP request's security buffer. Unlike the log, which keeps
    /// what it can, derivation takes a message only whole: a name, response or key outside the
    /// token (or over its cap) is a lie, and the message gives no material.
    pub fn from_blob(blob: &[u8]) -> Option<AuthMaterial> {
        let a = parsed(ntlmssp::authenticate(ntlmssp::find_token(blob)?))?;
        let nt_response = a.nt_response.filter(|r| r.len() <= MAX_NT_RESPONSE_BYTES)?;
        let name = |f: Option<&[u8]>| {
            f.filter(|n| n.len() <= MAX_NTLM_NAME_BYTES)
                .map(|n| a.text(n, usize::MAX))
        };
        let key = a.encrypted_session_key.filter(|k| k.len() <= 16)?;
        Some(AuthMaterial {
            user: name(a.user)?,
            domain: name(a.domain)?,
            flags: a.flags,
            nt_response: nt_response.to_vec(),
            encrypted_session_key: key.to_vec(),
        })
    }
}

/// The CHALLENGE in a SESSION_SETUP response's security buffer.
pub fn challenge_from_blob(blob: &[u8]) -> Option<ntlmssp::Challenge> {
    parsed(ntlmssp::challenge(ntlmssp::find_token(blob)?))
}

/// What the AUTHENTICATE and CHALLENGE messages contribute to the key.
pub struct Exchange<'a> {
    pub server_challenge: [u8; 8],
    pub flags: u32,
    /// The whole NtChallengeResponse: NTProofStr (16) + blob.
    pub nt_response: &'a [u8],
    /// EncryptedRandomSessionKey (16 bytes when KEY_EXCH, else usually empty).
    pub encrypted_session_key: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtlmError {
    /// The NT response is not NTLMv2 (too short: NTLMv1 or anonymous).
    NotNtlmV2,
    /// The password does not reproduce the client's proof.
    ProofMismatch,
}

/// Verifies the proof for (`nt_hash`, `user`, `domain`) and returns the exported session key.
pub fn exported_session_key(
    nt_hash: &[u8; 16],
    user: &str,
    domain: &str,
    x: &Exchange<'_>,
) -> Result<[u8; 16], NtlmError> {
    // NTLMv2: 16-byte proof + blob of at least 28 bytes (MS-NLMP 2.2.2.7); NTLMv1 is 24 bytes.
    if x.nt_response.len() < 16 + 28 {
        return Err(NtlmError::NotNtlmV2);
    }
    let (proof, blob) = x.nt_response.split_at(16);
    let owf = ntowf_v2(nt_hash, user, domain);
    let mine = nt_proof_str(&owf, &x.server_challenge, blob);
    if !constant_time_eq(&mine, proof) {
        return Err(NtlmError::ProofMismatch);
    }
    let base = session_base_key(&owf, &mine);
    if x.flags & NEGOTIATE_KEY_EXCH != 0 {
        if let Ok(enc) = <&[u8; 16]>::try_from(x.encrypted_session_key) {
            return Ok(rc4(&base, enc));
        }
    }
    Ok(base)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::hex;

    // MS-NLMP 4.2.1 common values and 4.2.2.1.2 / 4.2.4.1.1 results: user "User", domain
    // "Domain", password "Password", server challenge 0123456789abcdef, client challenge aa*8,
    // time 0, random session key 55*16, target info = NetBIOS domain "Domain", server "Server".
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    fn nlmp_blob() -> Vec<u8> {
        // MS-NLMP 4.2.4.2.2 "temp": RespType 1, HiRespType 1, Z(6), Time(8)=0, ClientChallenge,
        // Z(4), ServerName (AV pairs), Z(4).
        let mut b = vec![1u8, 1, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&[0xaa; 8]);
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(&hex("02000c00"));
        b.extend_from_slice(&utf16le("Domain"));
        b.extend_from_slice(&hex("01000c00"));
        b.extend_from_slice(&utf16le("Server"));
        b.extend_from_slice(&[0u8; 4]);
        b.extend_from_slice(&[0u8; 4]);
        b
    }

    #[test]
    fn nt_hash_of_password_ms_nlmp_4_2_2_1_2() {
        assert_eq!(
            nt_hash("Password").to_vec(),
            hex("a4f49c406510bdcab6824ee7c30fd852")
        );
        // And the empty password's well-known NT hash.
        assert_eq!(
            nt_hash("").to_vec(),
            hex("31d6cfe0d16ae931b73c59d7e0c089c0")
        );
    }

    #[test]
    fn ntlmv2_ms_nlmp_4_2_4() {
        let nt = nt_hash("Password");
        let owf = ntowf_v2(&nt, "User", "Domain");
        assert_eq!(owf.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let proof = nt_proof_str(&owf, &SERVER_CHALLENGE, &nlmp_blob());
        assert_eq!(proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        let base = session_base_key(&owf, &proof);
        assert_eq!(base.to_vec(), hex("8de40ccadbc14a82f15cb0ad0de95ca3"));
        // 4.2.4.2.3: RC4(key exchange key = session base key, random session key 55*16).
        let enc = rc4(&base, &[0x55; 16]);
        assert_eq!(enc.to_vec(), hex("c5dad2544fc9799094ce1ce90bc9d03e"));

        // The whole path, as the decryptor runs it: verify the proof, unwrap the key.
        let mut nt_response = proof.to_vec();
        nt_response.extend_from_slice(&nlmp_blob());
        let x = Exchange {
            server_challenge: SERVER_CHALLENGE,
            flags: 0xe28a8233, // the 4.2.4 challenge flags, KEY_EXCH among them
            nt_response: &nt_response,
            encrypted_session_key: &enc,
        };
        assert_eq!(
            exported_session_key(&nt, "User", "Domain", &x),
            Ok([0x55; 16])
        );
        // The user's case does not matter, the domain's does (the spec upper-cases only the user).
        assert_eq!(
            exported_session_key(&nt, "user", "Domain", &x),
            Ok([0x55; 16])
        );
        assert_eq!(
            exported_session_key(&nt, "User", "DOMAIN", &x),
            Err(NtlmError::ProofMismatch)
        );
        assert_eq!(
            exported_session_key(&nt_hash("password"), "User", "Domain", &x),
            Err(NtlmError::ProofMismatch)
        );
        // Without KEY_EXCH the exported key is the session base key.
        let x2 = Exchange {
            flags: 0x628a8233 & !NEGOTIATE_KEY_EXCH,
            ..x
        };
        assert_eq!(
            exported_session_key(&nt, "User", "Domain", &x2)
                .unwrap()
                .to_vec(),
            base.to_vec()
        );
    }

    #[test]
    fn ntlmv1_and_anonymous_are_refused() {
        let x = Exchange {
            server_challenge: SERVER_CHALLENGE,
            flags: 0,
            nt_response: &[0u8; 24],
            encrypted_session_key: &[],
        };
        assert_eq!(
            exported_session_key(&nt_hash("x"), "u", "d", &x),
            Err(NtlmError::NotNtlmV2)
        );
        let x = Exchange {
            nt_response: &[],
            ..x
        };
        assert_eq!(
            exported_session_key(&nt_hash("x"), "u", "d", &x),
            Err(NtlmError::NotNtlmV2)
        );
    }
}
