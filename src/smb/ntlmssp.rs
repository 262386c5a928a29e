//! NTLMSSP records (MS-NLMP 2.2.1): the one parser of NEGOTIATE, CHALLENGE and AUTHENTICATE
//! messages, serving both logging (who authenticated, for smb_auth) and SMB3 key derivation (server
//! challenge, NT response, encrypted session key, in [`crate::smb::crypto`]).
//!
//! The token is found inside a SESSION_SETUP security blob by its signature rather than by walking
//! SPNEGO's ASN.1: the message is self-delimiting from its signature and its offsets count from
//! there, so finding the signature is enough, works the same for raw NTLMSSP and every SPNEGO
//! wrapping, and cannot be fooled into reading outside the blob.

use crate::kerberos::{self, TicketDigest};
use crate::wire::num::{le_u16, le_u32};
use crate::wire::{buffer_at, latin1, parsed, utf16le};
use nom::bytes::complete::{tag, take};
use nom::{IResult, Parser};

pub const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub const NTLMSSP_NEGOTIATE: u32 = 1;
pub const NTLMSSP_CHALLENGE: u32 = 2;
pub const NTLMSSP_AUTH: u32 = 3;
pub const NTLMSSP_NEGOTIATE_UNICODE: u32 = 0x0000_0001;

/// Longest user/domain/workstation name we log (characters); longer ones are truncated.
pub const MAX_NTLM_NAME_CHARS: usize = 256;

/// A (Len, MaxLen, BufferOffset) field descriptor; the offset counts from the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FieldRef {
    pub len: u16,
    pub offset: u32,
}

impl FieldRef {
    /// The field's bytes inside `token`, or None when they lie outside it (a lie, not an absent
    /// field). An empty field is empty wherever its offset points.
    pub fn resolve(self, token: &[u8]) -> Option<&[u8]> {
        if self.len == 0 {
            return Some(&[]);
        }
        buffer_at(token, self.offset as usize, self.len as usize)
    }
}

fn field_ref(i: &[u8]) -> IResult<&[u8], FieldRef> {
    let (i, (len, _max_len, offset)) = (le_u16, le_u16, le_u32).parse(i)?;
    Ok((i, FieldRef { len, offset }))
}

/// Signature and MessageType.
pub fn message_type(token: &[u8]) -> IResult<&[u8], u32> {
    let (i, _) = tag(&NTLMSSP_SIGNATURE[..]).parse(token)?;
    le_u32(i)
}

/// CHALLENGE (type 2), the fields up to the server challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    pub flags: u32,
    pub server_challenge: [u8; 8],
}

pub fn challenge(token: &[u8]) -> IResult<&[u8], Challenge> {
    let (i, _) = (tag(&NTLMSSP_SIGNATURE[..]), tag(&2u32.to_le_bytes()[..])).parse(token)?;
    let (i, (_target_name, flags, server_challenge)) =
        (field_ref, le_u32, take(8usize)).parse(i)?;
    let mut c = Challenge {
        flags,
        server_challenge: [0; 8],
    };
    c.server_challenge.copy_from_slice(server_challenge);
    Ok((i, c))
}

/// AUTHENTICATE (type 3): every field resolved against the token; a field whose descriptor points
/// outside the token is None.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Authenticate<'a> {
    pub lm_response: Option<&'a [u8]>,
    pub nt_response: Option<&'a [u8]>,
    pub domain: Option<&'a [u8]>,
    pub user: Option<&'a [u8]>,
    pub workstation: Option<&'a [u8]>,
    pub encrypted_session_key: Option<&'a [u8]>,
    pub flags: u32,
}

/// The responses and the session key are not secrets on their own, but with a password they give
/// keys: Debug shows who, never them.
impl std::fmt::Debug for Authenticate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticate")
            .field(
                "user",
                &self.user.map(|u| self.text(u, MAX_NTLM_NAME_CHARS)),
            )
            .field(
                "domain",
                &self.domain.map(|d| self.text(d, MAX_NTLM_NAME_CHARS)),
            )
            .field("flags", &format_args!("{:#010x}", self.flags))
            .field("nt_response_len", &self.nt_response.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

impl Authenticate<'_> {
    pub fn unicode(&self) -> bool {
        self.flags & NTLMSSP_NEGOTIATE_UNICODE != 0
    }
    /// A name field as text: UTF-16LE with NEGOTIATE_UNICODE, else OEM (read as Latin-1).
    pub fn text(&self, b: &[u8], max_chars: usize) -> String {
        if self.unicode() {
            utf16le(b, max_chars)
        } else {
            latin1(b, max_chars)
        }
    }
}

pub fn authenticate(token: &[u8]) -> IResult<&[u8], Authenticate<'_>> {
    let (i, _) = (tag(&NTLMSSP_SIGNATURE[..]), tag(&3u32.to_le_bytes()[..])).parse(token)?;
    let (i, (lm, nt, domain, user, workstation, key, flags)) = (
        field_ref, field_ref, field_ref, field_ref, field_ref, field_ref, le_u32,
    )
        .parse(i)?;
    Ok((
        i,
        Authenticate {
            lm_response: lm.resolve(token),
            nt_response: nt.resolve(token),
            domain: domain.resolve(token),
            user: user.resolve(token),
            workstation: workstation.resolve(token),
            encrypted_session_key: key.resolve(token),
            flags,
        },
    ))
}

/// The first occurrence of `needle` in `hay` (None for an empty needle). memchr's memmem, not a
/// comparison at every offset: that scan of each session-setup blob cost ~2,200 instructions a
/// blob on the bench slice (4.8 M, cachegrind).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

/// The NTLMSSP token inside a security blob: from its signature to the end of the blob.
pub fn find_token(blob: &[u8]) -> Option<&[u8]> {
    blob.get(find(blob, NTLMSSP_SIGNATURE)?..)
}

/// What one security blob says about authentication, as smb_auth logs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityBlob {
    /// NTLMSSP NEGOTIATE or CHALLENGE (the MessageType): a step, nothing to log.
    NtlmStep(u32),
    Authenticate(NtlmAuth),
    /// A Kerberos token; with the AP-REQ's ticket when the blob carries one (the ticket → user
    /// join, `crate::kerberos`).
    Kerberos(Option<TicketDigest>),
    /// Empty blob or nothing recognisable.
    Unknown,
}

/// The identity fields of an AUTHENTICATE message, for the log.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NtlmAuth {
    pub user: String,
    pub domain: String,
    pub workstation: String,
    pub flags: u32,
    /// No user and no NT response: the anonymous (null session) logon.
    pub anonymous: bool,
}

impl NtlmAuth {
    /// Names for the log: a field outside the token is logged empty (a hostile offset loses only
    /// that field), long names are cut at [`MAX_NTLM_NAME_CHARS`].
    pub fn from_record(a: &Authenticate<'_>) -> NtlmAuth {
        let text = |f: Option<&[u8]>| a.text(f.unwrap_or(&[]), MAX_NTLM_NAME_CHARS);
        let user = text(a.user);
        NtlmAuth {
            anonymous: user.is_empty() && a.nt_response.unwrap_or(&[]).is_empty(),
            user,
            domain: text(a.domain),
            workstation: text(a.workstation),
            flags: a.flags,
        }
    }
}

/// Classifies a SESSION_SETUP security blob (SPNEGO or raw NTLMSSP).
pub fn parse_security_blob(blob: &[u8]) -> SecurityBlob {
    if let Some(token) = find_token(blob) {
        match parsed(message_type(token)) {
            Some(NTLMSSP_AUTH) => {
                if let Some(a) = parsed(authenticate(token)) {
                    return SecurityBlob::Authenticate(NtlmAuth::from_record(&a));
                }
            }
            Some(kind) => return SecurityBlob::NtlmStep(kind),
            None => {}
        }
    }
    if kerberos::gss::mentions_krb5(blob) {
        return SecurityBlob::Kerberos(kerberos::presented(blob).map(|p| p.ticket));
    }
    SecurityBlob::Unknown
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `find` is the first offset where the needle matches, as a comparison at every offset says.
    #[test]
    fn find_is_the_first_match() {
        let scan = |hay: &[u8], needle: &[u8]| {
            (!needle.is_empty() && hay.len() >= needle.len())
                .then(|| hay.windows(needle.len()).position(|w| w == needle))
                .flatten()
        };
        let mut x = 0x0123_4567_89ab_cdefu64;
        for round in 0..2000usize {
            let hay: Vec<u8> = (0..round % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"NTLMSSP\0"[(x % 8) as usize]
                })
                .collect();
            for needle in [&b""[..], b"N", b"SS", NTLMSSP_SIGNATURE, b"NTLMSSP\0NTLM"] {
                assert_eq!(find(&hay, needle), scan(&hay, needle), "{hay:?}");
            }
        }
    }
    use crate::smb::crypto::testutil::{
        hex, MS_SESSION_SETUP_REQUEST_2, MS_SESSION_SETUP_RESPONSE_1,
    };

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
    }

    /// Hand-built AUTHENTICATE with the given fields (Unicode or OEM).
    pub(crate) fn build_auth(
        user: &str,
        domain: &str,
        ws: &str,
        unicode: bool,
        nt_len: usize,
    ) -> Vec<u8> {
        let enc = |s: &str| {
            if unicode {
                utf16(s)
            } else {
                s.as_bytes().to_vec()
            }
        };
        let (d, u, w) = (enc(domain), enc(user), enc(ws));
        let nt = vec![0x11u8; nt_len];
        let mut m = Vec::new();
        m.extend_from_slice(NTLMSSP_SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        let mut off = 72u32;
        let mut fields = Vec::new();
        for f in [&[][..], &nt[..], &d[..], &u[..], &w[..], &[][..]] {
            fields.push((f.len() as u16, off));
            off += f.len() as u32;
        }
        for (len, o) in &fields {
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&len.to_le_bytes());
            m.extend_from_slice(&o.to_le_bytes());
        }
        let flags: u32 = if unicode { 0xE288_8215 } else { 0xE288_8216 };
        m.extend_from_slice(&flags.to_le_bytes());
        m.resize(72, 0);
        for f in [&nt[..], &d[..], &u[..], &w[..]] {
            m.extend_from_slice(f);
        }
        m
    }

    #[test]
    fn authenticate_unicode_inside_spnego() {
        let mut blob = vec![0xa1, 0x82, 0x01, 0x00, 0x30, 0x82, 0x00, 0xfc, 0x04, 0x82];
        blob.extend(build_auth("admin", "LAB", "KALI", true, 24));
        match parse_security_blob(&blob) {
            SecurityBlob::Authenticate(a) => {
                assert_eq!(
                    (a.user.as_str(), a.domain.as_str(), a.workstation.as_str()),
                    ("admin", "LAB", "KALI")
                );
                assert!(!a.anonymous);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authenticate_oem_and_anonymous() {
        match parse_security_blob(&build_auth("bob", "W", "X", false, 24)) {
            SecurityBlob::Authenticate(a) => assert_eq!(a.user, "bob"),
            other => panic!("{other:?}"),
        }
        match parse_security_blob(&build_auth("", "", "", true, 0)) {
            SecurityBlob::Authenticate(a) => assert!(a.anonymous),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_offsets_lose_only_the_field() {
        let mut m = build_auth("admin", "LAB", "KALI", true, 24);
        // user offset far outside
        m[40..44].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        match parse_security_blob(&m) {
            SecurityBlob::Authenticate(a) => {
                assert_eq!(a.user, "");
                assert_eq!(a.domain, "LAB");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parsed(authenticate(&m)).unwrap().user, None);
        for n in 0..m.len() {
            let _ = parse_security_blob(&m[..n]);
        }
    }

    #[test]
    fn kerberos_and_steps() {
        let mut b = vec![0x60, 0x82, 0x01, 0x00];
        b.extend_from_slice(&kerberos::gss::KRB5_OID_ELEMENTS[0]);
        b.extend_from_slice(&[0x01, 0x00, 0x6e]);
        assert_eq!(parse_security_blob(&b), SecurityBlob::Kerberos(None));
        let mut n = NTLMSSP_SIGNATURE.to_vec();
        n.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(parse_security_blob(&n), SecurityBlob::NtlmStep(1));
        assert_eq!(parse_security_blob(&[]), SecurityBlob::Unknown);
    }

    /// The security buffer of an SMB2 SESSION_SETUP message from Microsoft's examples (its
    /// offset and length at body bytes 12/14 in requests, 4/6 in responses).
    fn setup_buffer(m: &[u8], request: bool) -> &[u8] {
        let at = if request { 64 + 12 } else { 64 + 4 };
        let off = u16::from_le_bytes([m[at], m[at + 1]]) as usize;
        let len = u16::from_le_bytes([m[at + 2], m[at + 3]]) as usize;
        &m[off..off + len]
    }

    // MS-SMB2 4.x SMB 3.1.1 pre-auth example: the CHALLENGE in the first SESSION_SETUP response.
    #[test]
    fn challenge_from_ms_example() {
        let m = hex(MS_SESSION_SETUP_RESPONSE_1);
        let token = find_token(setup_buffer(&m, false)).unwrap();
        assert_eq!(parsed(message_type(token)), Some(NTLMSSP_CHALLENGE));
        let c = parsed(challenge(token)).unwrap();
        assert_eq!(c.server_challenge.to_vec(), hex("0D1D8BA31179D008"));
        assert_eq!(c.flags, 0xe28a8215);
        assert!(parsed(challenge(b"NTLMSSP\0\x02\0\0\0")).is_none());
        assert!(parsed(challenge(b"")).is_none());
    }

    // The AUTHENTICATE in the second SESSION_SETUP request, read as both consumers read it.
    #[test]
    fn authenticate_from_ms_example() {
        let m = hex(MS_SESSION_SETUP_REQUEST_2);
        let buf = setup_buffer(&m, true);
        let token = find_token(buf).unwrap();
        let a = parsed(authenticate(token)).unwrap();
        assert_eq!(a.text(a.domain.unwrap(), 64), "SUT311");
        assert_eq!(a.text(a.user.unwrap(), 64), "administrator");
        assert_eq!(a.flags, 0xe2888215);
        assert_eq!(a.nt_response.unwrap().len(), 0xee);
        assert_eq!(a.nt_response.unwrap()[..4].to_vec(), hex("63078EB6"));
        assert_eq!(
            a.encrypted_session_key.unwrap().to_vec(),
            hex("3B9BDFF38F5EE8F9663F11A0F4C03A78")
        );
        let d = format!("{a:?}");
        assert!(d.contains("administrator") && !d.contains("63078eb6") && !d.contains("[99"));
        match parse_security_blob(buf) {
            SecurityBlob::Authenticate(l) => {
                assert_eq!(
                    (l.user.as_str(), l.domain.as_str()),
                    ("administrator", "SUT311")
                );
                assert!(!l.anonymous);
            }
            other => panic!("{other:?}"),
        }
        // Cut inside the fixed part: no record. Cut inside a field: that field is outside.
        assert!(parsed(authenticate(&token[..40])).is_none());
        let cut = parsed(authenticate(&token[..0x196 + 15])).unwrap();
        assert_eq!(
            (cut.encrypted_session_key, cut.user.is_some()),
            (None, true)
        );
    }
}
