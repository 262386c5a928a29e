//! The few SMB2 fields key derivation needs, read from borrowed bytes: the SMB2 header, the
//! NEGOTIATE response's dialect and cipher, SESSION_SETUP security buffers, and the transform
//! header. Each view checks lengths once in its constructor; accessors cannot panic.
//!
//! (The SMB2 state machine has fuller parsers; this module keeps the crypto code free of them so
//! the two can evolve apart.)

/// Size of the SMB2 sync/async header.
pub const SMB2_HEADER_LEN: usize = 64;
/// Size of the SMB2 TRANSFORM_HEADER.
pub const TRANSFORM_HEADER_LEN: usize = 52;

pub const CMD_NEGOTIATE: u16 = 0x0000;
pub const CMD_SESSION_SETUP: u16 = 0x0001;
pub const STATUS_SUCCESS: u32 = 0x0000_0000;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
const FLAG_SERVER_TO_REDIR: u32 = 0x0000_0001;
/// SESSION_SETUP request Flags: binds an existing session to a new channel (multichannel).
pub const SESSION_FLAG_BINDING: u8 = 0x01;
/// SESSION_SETUP response SessionFlags: the server requires encryption for this session.
pub const SESSION_FLAG_ENCRYPT_DATA: u16 = 0x0004;
const NEGOTIATE_CONTEXT_ENCRYPTION: u16 = 0x0002;
/// At most this many negotiate contexts are walked (real servers send fewer than ten).
pub const MAX_NEGOTIATE_CONTEXTS: usize = 32;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// An SMB2 message (header + body) whose 64-byte header is present and starts with 0xFE 'SMB'.
#[derive(Clone, Copy)]
pub struct Smb2Msg<'a> {
    b: &'a [u8],
    hdr: [u8; SMB2_HEADER_LEN],
}

impl<'a> Smb2Msg<'a> {
    pub fn parse(b: &'a [u8]) -> Option<Smb2Msg<'a>> {
        let h = b.get(..SMB2_HEADER_LEN)?;
        if h.get(..4)? != b"\xfeSMB" {
            return None;
        }
        let mut hdr = [0u8; SMB2_HEADER_LEN];
        hdr.copy_from_slice(h);
        Some(Smb2Msg { b, hdr })
    }
    fn h16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.hdr[at], self.hdr[at + 1]])
    }
    fn h32(&self, at: usize) -> u32 {
        u32::from_le_bytes([
            self.hdr[at],
            self.hdr[at + 1],
            self.hdr[at + 2],
            self.hdr[at + 3],
        ])
    }
    fn h64(&self, at: usize) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.hdr[at..at + 8]);
        u64::from_le_bytes(a)
    }
    pub fn status(&self) -> u32 {
        self.h32(8)
    }
    pub fn command(&self) -> u16 {
        self.h16(12)
    }
    pub fn is_response(&self) -> bool {
        self.h32(16) & FLAG_SERVER_TO_REDIR != 0
    }
    pub fn message_id(&self) -> u64 {
        self.h64(24)
    }
    pub fn session_id(&self) -> u64 {
        self.h64(40)
    }
    /// The whole message, header included (what the preauth hash covers).
    pub fn bytes(&self) -> &'a [u8] {
        self.b
    }
    fn body(&self) -> &'a [u8] {
        self.b.get(SMB2_HEADER_LEN..).unwrap_or(&[])
    }
    /// A buffer given by an (offset from the header start, length) pair, if it lies inside.
    fn buffer(&self, offset: usize, len: usize) -> Option<&'a [u8]> {
        self.b.get(offset..offset.checked_add(len)?)
    }

    /// NEGOTIATE response: (DialectRevision, cipher id from ENCRYPTION_CAPABILITIES if present,
    /// Capabilities).
    pub fn negotiate_response(&self) -> Option<NegotiateResponse> {
        let body = self.body();
        if u16_at(body, 0)? != 65 {
            return None;
        }
        let dialect = u16_at(body, 4)?;
        let context_count = u16_at(body, 6)? as usize;
        let capabilities = u32_at(body, 24)?;
        let mut cipher_id = None;
        if dialect == 0x0311 {
            let mut off = u32_at(body, 60)? as usize;
            for _ in 0..context_count.min(MAX_NEGOTIATE_CONTEXTS) {
                let Some(ctype) = u16_at(self.b, off) else {
                    break;
                };
                let Some(dlen) = u16_at(self.b, off.saturating_add(2)) else {
                    break;
                };
                let dlen = dlen as usize;
                let Some(data) = self.buffer(off.saturating_add(8), dlen) else {
                    break;
                };
                if ctype == NEGOTIATE_CONTEXT_ENCRYPTION && u16_at(data, 0).unwrap_or(0) >= 1 {
                    cipher_id = u16_at(data, 2);
                }
                // Contexts are 8-byte aligned.
                let Some(end) = off.checked_add(8 + dlen + 7) else {
                    break;
                };
                off = end & !7;
            }
        }
        Some(NegotiateResponse {
            dialect,
            cipher_id,
            capabilities,
        })
    }

    /// SESSION_SETUP request: (Flags, security buffer).
    pub fn session_setup_request(&self) -> Option<(u8, &'a [u8])> {
        let body = self.body();
        if u16_at(body, 0)? != 25 {
            return None;
        }
        let flags = *body.get(2)?;
        let off = u16_at(body, 12)? as usize;
        let len = u16_at(body, 14)? as usize;
        Some((flags, self.buffer(off, len).unwrap_or(&[])))
    }

    /// SESSION_SETUP response: (SessionFlags, security buffer).
    pub fn session_setup_response(&self) -> Option<(u16, &'a [u8])> {
        let body = self.body();
        if u16_at(body, 0)? != 9 {
            return None;
        }
        let flags = u16_at(body, 2)?;
        let off = u16_at(body, 4)? as usize;
        let len = u16_at(body, 6)? as usize;
        Some((flags, self.buffer(off, len).unwrap_or(&[])))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiateResponse {
    pub dialect: u16,
    pub cipher_id: Option<u16>,
    pub capabilities: u32,
}

/// An SMB2 TRANSFORM_HEADER and the ciphertext after it.
#[derive(Clone, Copy)]
pub struct Transform<'a> {
    b: &'a [u8],
}

impl<'a> Transform<'a> {
    pub fn parse(b: &'a [u8]) -> Option<Transform<'a>> {
        if b.len() < TRANSFORM_HEADER_LEN || b.get(..4)? != b"\xfdSMB" {
            return None;
        }
        Some(Transform { b })
    }
    pub fn signature(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b[4..20]);
        a
    }
    pub fn nonce(&self) -> [u8; 16] {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b[20..36]);
        a
    }
    pub fn original_size(&self) -> u32 {
        u32_at(self.b, 36).unwrap_or(0)
    }
    /// 3.1.1 Flags / 3.0 EncryptionAlgorithm; 1 in both means "encrypted" (AES-128-CCM for 3.0).
    pub fn flags(&self) -> u16 {
        u16_at(self.b, 42).unwrap_or(0)
    }
    pub fn session_id(&self) -> u64 {
        u64_at(self.b, 44).unwrap_or(0)
    }
    /// The associated data: the header from Nonce to its end.
    pub fn aad(&self) -> &'a [u8] {
        &self.b[20..TRANSFORM_HEADER_LEN]
    }
    pub fn ciphertext(&self) -> &'a [u8] {
        &self.b[TRANSFORM_HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::hex;

    #[test]
    fn short_or_foreign_input_is_rejected() {
        assert!(Smb2Msg::parse(&[0xfe, b'S', b'M', b'B']).is_none());
        let mut m = vec![0u8; 64];
        m[..4].copy_from_slice(b"\xffSMB");
        assert!(Smb2Msg::parse(&m).is_none());
        m[..4].copy_from_slice(b"\xfeSMB");
        let msg = Smb2Msg::parse(&m).unwrap();
        assert!(msg.negotiate_response().is_none());
        assert!(msg.session_setup_request().is_none());
        assert!(Transform::parse(&[0xfd, b'S', b'M', b'B', 0]).is_none());
    }

    // The NEGOTIATE response from Microsoft's SMB 3.1.1 pre-auth integrity example: dialect
    // 0x0311, contexts PREAUTH (SHA-512) then ENCRYPTION with AES-128-GCM.
    #[test]
    fn negotiate_response_dialect_and_cipher() {
        let m = hex(crate::smb::crypto::testutil::MS_NEGOTIATE_RESPONSE);
        let msg = Smb2Msg::parse(&m).unwrap();
        assert!(msg.is_response());
        assert_eq!(msg.command(), CMD_NEGOTIATE);
        let n = msg.negotiate_response().unwrap();
        assert_eq!(n.dialect, 0x0311);
        assert_eq!(n.cipher_id, Some(2));
    }

    #[test]
    fn negotiate_context_offset_past_end_is_harmless() {
        let mut m = hex(crate::smb::crypto::testutil::MS_NEGOTIATE_RESPONSE);
        // NegotiateContextOffset := 0xFFFFFFF0
        m[64 + 60..64 + 64].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let n = Smb2Msg::parse(&m).unwrap().negotiate_response().unwrap();
        assert_eq!(n.cipher_id, None);
    }

    #[test]
    fn session_setup_buffers() {
        let m = hex(crate::smb::crypto::testutil::MS_SESSION_SETUP_REQUEST_1);
        let msg = Smb2Msg::parse(&m).unwrap();
        let (flags, buf) = msg.session_setup_request().unwrap();
        assert_eq!(flags, 0);
        assert_eq!(buf.len(), 0x4a);
        assert_eq!(buf[0], 0x60); // SPNEGO InitialContextToken
        let m = hex(crate::smb::crypto::testutil::MS_SESSION_SETUP_RESPONSE_1);
        let msg = Smb2Msg::parse(&m).unwrap();
        assert_eq!(msg.status(), STATUS_MORE_PROCESSING_REQUIRED);
        assert_eq!(msg.session_id(), 0x0000_1000_0000_0019);
        let (_, buf) = msg.session_setup_response().unwrap();
        assert_eq!(buf.len(), 0xb3);
    }

    #[test]
    fn transform_fields() {
        let m = hex(crate::smb::crypto::testutil::MS_SMB300_TRANSFORM);
        let t = Transform::parse(&m).unwrap();
        assert_eq!(t.original_size(), 0x50);
        assert_eq!(t.flags(), 1);
        assert_eq!(t.session_id(), 0x0008_E400_1400_0011);
        assert_eq!(t.aad().len(), 32);
        assert_eq!(t.ciphertext().len(), 0x50);
    }
}
