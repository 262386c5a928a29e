//! Key material from NTLMSSP messages carried in SESSION_SETUP security buffers: the server
//! challenge and flags from CHALLENGE, and user, domain, NT response and encrypted session key
//! from AUTHENTICATE (MS-NLMP 2.2.1.2, 2.2.1.3).
//!
//! The NTLMSSP token is found by scanning for its "NTLMSSP\0" signature rather than walking the
//! SPNEGO DER around it: the token is self-describing (its fields are offsets from its own start)
//! and the scan works the same for raw NTLMSSP and every SPNEGO wrapping clients use.

/// NTLMSSP_NEGOTIATE_UNICODE: strings are UTF-16LE (else OEM, read here as Latin-1).
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// Longest user or domain name we keep, in bytes on the wire (MS-NLMP limits names to 256
/// characters; anything longer is hostile and ignored).
pub const MAX_NTLM_NAME_BYTES: usize = 1024;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The NTLMSSP token inside `buf` (from its signature to the end of `buf`) and its type.
pub fn find_ntlmssp(buf: &[u8]) -> Option<(u32, &[u8])> {
    let at = buf.windows(SIGNATURE.len()).position(|w| w == SIGNATURE)?;
    let tok = buf.get(at..)?;
    Some((u32_at(tok, 8)?, tok))
}

/// A (Len, MaxLen, Offset) field descriptor at `at`, resolved against the token.
fn field(tok: &[u8], at: usize) -> Option<&[u8]> {
    let len = u16_at(tok, at)? as usize;
    let off = u32_at(tok, at + 4)? as usize;
    if len == 0 {
        return Some(&[]);
    }
    tok.get(off..off.checked_add(len)?)
}

fn text(b: &[u8], unicode: bool) -> Option<String> {
    if b.len() > MAX_NTLM_NAME_BYTES {
        return None;
    }
    if unicode {
        let units: Vec<u16> = b
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        Some(String::from_utf16_lossy(&units))
    } else {
        Some(b.iter().map(|&c| c as char).collect())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub server_challenge: [u8; 8],
    pub flags: u32,
}

/// The CHALLENGE message (type 2) in a SESSION_SETUP response buffer.
pub fn challenge(buf: &[u8]) -> Option<Challenge> {
    let (ty, tok) = find_ntlmssp(buf)?;
    if ty != 2 {
        return None;
    }
    let flags = u32_at(tok, 20)?;
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(tok.get(24..32)?);
    Some(Challenge {
        server_challenge,
        flags,
    })
}

/// The AUTHENTICATE message (type 3) fields that key derivation needs. The NT response and the
/// encrypted session key are not secrets on their own (they are on the wire), but together with
/// a password they give keys, so Debug leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub user: String,
    pub domain: String,
    pub flags: u32,
    pub nt_response: Vec<u8>,
    pub encrypted_session_key: Vec<u8>,
}

impl std::fmt::Debug for Authenticate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("nt_response_len", &self.nt_response.len())
            .finish_non_exhaustive()
    }
}

/// Longest NT response kept (the NTLMv2 blob holds the target info, a few hundred bytes; MS-NLMP
/// bounds the whole message well below this).
pub const MAX_NT_RESPONSE_BYTES: usize = 4096;

/// The AUTHENTICATE message (type 3) in a SESSION_SETUP request buffer.
pub fn authenticate(buf: &[u8]) -> Option<Authenticate> {
    let (ty, tok) = find_ntlmssp(buf)?;
    if ty != 3 {
        return None;
    }
    let flags = u32_at(tok, 60)?;
    let unicode = flags & NEGOTIATE_UNICODE != 0;
    let nt_response = field(tok, 20)?;
    if nt_response.len() > MAX_NT_RESPONSE_BYTES {
        return None;
    }
    let domain = text(field(tok, 28)?, unicode)?;
    let user = text(field(tok, 36)?, unicode)?;
    // The flags at 60..64 were read, so the key descriptor at 52..60 is present: a key outside
    // the token is a lie, not an absent key.
    let encrypted_session_key = field(tok, 52)?;
    if encrypted_session_key.len() > 16 {
        return None;
    }
    Some(Authenticate {
        user,
        domain,
        flags,
        nt_response: nt_response.to_vec(),
        encrypted_session_key: encrypted_session_key.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::*;
    use crate::smb::crypto::wire::Smb2Msg;

    #[test]
    fn challenge_from_ms_example_session_setup_response() {
        let m = hex(MS_SESSION_SETUP_RESPONSE_1);
        let (_, buf) = Smb2Msg::parse(&m)
            .unwrap()
            .session_setup_response()
            .unwrap();
        let c = challenge(buf).unwrap();
        assert_eq!(c.server_challenge.to_vec(), hex("0D1D8BA31179D008"));
        assert_eq!(c.flags, 0xe28a8215);
    }

    #[test]
    fn authenticate_from_ms_example_session_setup_request() {
        let m = hex(MS_SESSION_SETUP_REQUEST_2);
        let (_, buf) = Smb2Msg::parse(&m).unwrap().session_setup_request().unwrap();
        let a = authenticate(buf).unwrap();
        assert_eq!(a.domain, "SUT311");
        assert_eq!(a.user, "administrator");
        assert_eq!(a.flags, 0xe2888215);
        assert_eq!(a.nt_response.len(), 0xee);
        assert_eq!(a.nt_response[..4].to_vec(), hex("63078EB6"));
        assert_eq!(
            a.encrypted_session_key.to_vec(),
            hex("3B9BDFF38F5EE8F9663F11A0F4C03A78")
        );
        // Debug shows who, never the response.
        let d = format!("{a:?}");
        assert!(d.contains("administrator") && !d.contains("63078eb6") && !d.contains("[99"));
    }

    #[test]
    fn truncated_or_lying_tokens_give_none() {
        let m = hex(MS_SESSION_SETUP_REQUEST_2);
        let (_, buf) = Smb2Msg::parse(&m).unwrap().session_setup_request().unwrap();
        let at = find_ntlmssp(buf).unwrap().1.as_ptr() as usize - buf.as_ptr() as usize;
        // Inside the header, the names, the NT response, the encrypted session key (0x196 + 16).
        for cut in [at + 8, at + 40, at + 100, at + 0x150, at + 0x196 + 15] {
            assert!(authenticate(&buf[..cut]).is_none(), "cut at {cut}");
        }
        // NT response offset pointing far outside.
        let mut bad = buf.to_vec();
        bad[at + 24..at + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(authenticate(&bad).is_none());
        assert!(challenge(b"NTLMSSP\0\x02\0\0\0").is_none());
        assert!(challenge(b"").is_none());
    }
}
