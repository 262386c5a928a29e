//! Who authenticated: NTLMSSP AUTHENTICATE (MS-NLMP 2.2.1.3) found inside a SESSION_SETUP security
//! blob (raw or wrapped in SPNEGO), or the Kerberos mechanism noted as such.
//!
//! We do not walk SPNEGO's ASN.1: the NTLMSSP message is self-delimiting by its signature and its
//! offsets are relative to that signature, so finding the signature is enough and cannot be fooled
//! into reading outside the blob.

pub const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub const NTLMSSP_NEGOTIATE: u32 = 1;
pub const NTLMSSP_CHALLENGE: u32 = 2;
pub const NTLMSSP_AUTH: u32 = 3;
pub const NTLMSSP_NEGOTIATE_UNICODE: u32 = 0x0000_0001;

/// Longest user/domain/workstation name we keep (characters); longer ones are truncated.
pub const MAX_NTLM_NAME_CHARS: usize = 256;

/// Kerberos 5 OID 1.2.840.113554.1.2.2 and Microsoft's variant 1.2.840.48018.1.2.2, DER-encoded.
const KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];
const MS_KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02,
];

/// What one security blob says about authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityBlob {
    /// NTLMSSP NEGOTIATE or CHALLENGE: a step, nothing to log.
    NtlmStep(u32),
    Authenticate(NtlmAuth),
    Kerberos,
    /// Empty blob or nothing recognisable.
    Unknown,
}

/// The identity fields of an AUTHENTICATE message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NtlmAuth {
    pub user: String,
    pub domain: String,
    pub workstation: String,
    pub flags: u32,
    /// No user and no NT response: the anonymous (null session) logon.
    pub anonymous: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A security buffer field (len u16, maxlen u16, offset u32) at `at`, resolved inside `msg`.
/// Out-of-bounds fields give an empty slice: a hostile length only loses that field.
fn field(msg: &[u8], at: usize) -> &[u8] {
    let (Some(len), Some(off)) = (u16_at(msg, at), u32_at(msg, at + 4)) else {
        return &[];
    };
    let start = off as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| msg.get(start..end))
        .unwrap_or(&[])
}

/// UTF-16LE to String, lossy, bounded.
pub fn utf16le(b: &[u8], max_chars: usize) -> String {
    let units = b
        .chunks_exact(2)
        .take(max_chars)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// OEM (treated as Latin-1: no code page is negotiated on the wire), bounded.
pub fn oem(b: &[u8], max_chars: usize) -> String {
    b.iter().take(max_chars).map(|&c| c as char).collect()
}

/// Parses an NTLMSSP message starting at its signature.
pub fn parse_ntlmssp(msg: &[u8]) -> Option<SecurityBlob> {
    if msg.get(..8)? != NTLMSSP_SIGNATURE {
        return None;
    }
    let kind = u32_at(msg, 8)?;
    if kind != NTLMSSP_AUTH {
        return Some(SecurityBlob::NtlmStep(kind));
    }
    let flags = u32_at(msg, 60).unwrap_or(0);
    let text = |b: &[u8]| {
        if flags & NTLMSSP_NEGOTIATE_UNICODE != 0 {
            utf16le(b, MAX_NTLM_NAME_CHARS)
        } else {
            oem(b, MAX_NTLM_NAME_CHARS)
        }
    };
    let nt_response = field(msg, 20);
    let user = text(field(msg, 36));
    let auth = NtlmAuth {
        domain: text(field(msg, 28)),
        workstation: text(field(msg, 44)),
        anonymous: user.is_empty() && nt_response.is_empty(),
        user,
        flags,
    };
    Some(SecurityBlob::Authenticate(auth))
}

/// Classifies a SESSION_SETUP security blob (SPNEGO or raw NTLMSSP).
pub fn parse_security_blob(blob: &[u8]) -> SecurityBlob {
    if let Some(at) = find(blob, NTLMSSP_SIGNATURE) {
        if let Some(r) = blob.get(at..).and_then(parse_ntlmssp) {
            return r;
        }
    }
    if find(blob, KRB5_OID).is_some() || find(blob, MS_KRB5_OID).is_some() {
        return SecurityBlob::Kerberos;
    }
    SecurityBlob::Unknown
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
        for n in 0..m.len() {
            let _ = parse_security_blob(&m[..n]);
        }
    }

    #[test]
    fn kerberos_and_steps() {
        let mut b = vec![0x60, 0x82, 0x01, 0x00];
        b.extend_from_slice(KRB5_OID);
        b.extend_from_slice(&[0x01, 0x00, 0x6e]);
        assert_eq!(parse_security_blob(&b), SecurityBlob::Kerberos);
        let mut n = NTLMSSP_SIGNATURE.to_vec();
        n.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(parse_security_blob(&n), SecurityBlob::NtlmStep(1));
        assert_eq!(parse_security_blob(&[]), SecurityBlob::Unknown);
    }
}
