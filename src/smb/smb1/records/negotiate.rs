//! SMB_COM_NEGOTIATE (0x72): dialects offered, dialect chosen, and what the server announces
//! (extended security, or the 8-byte challenge used by raw NTLM / LM session setup).

use super::andx::Block;
use super::strings::{SmbStr, StrCursor};
use super::{cmd, data_block, words, Accept, Smb1Error};
use crate::wire::num::{le_u16, le_u32, le_u64, le_u8};
use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::{IResult, Parser};

/// Most dialect strings read from one NEGOTIATE request (real clients offer under 15).
pub const MAX_DIALECTS: usize = 64;

/// CAP_EXTENDED_SECURITY in the server's Capabilities.
pub const CAP_EXTENDED_SECURITY: u32 = 0x8000_0000;
pub const CAP_UNICODE: u32 = 0x0000_0004;
pub const CAP_LARGE_FILES: u32 = 0x0000_0008;
pub const CAP_NT_SMBS: u32 = 0x0000_0010;
pub const CAP_STATUS32: u32 = 0x0000_0040;
pub const CAP_LARGE_READX: u32 = 0x0000_4000;
pub const CAP_LARGE_WRITEX: u32 = 0x0000_8000;

/// Dialect strings of a request, in order (their index is what the response picks).
#[derive(Clone, Debug)]
pub struct NegotiateRequest<'a> {
    pub dialects: Vec<SmbStr<'a>>,
    /// More than MAX_DIALECTS were offered; the rest were not read.
    pub truncated: bool,
}

impl<'a> NegotiateRequest<'a> {
    pub fn parse(msg: &'a [u8], block: &Block<'a>) -> Result<NegotiateRequest<'a>, Smb1Error> {
        let mut c = data_block(msg, block);
        let mut dialects = Vec::new();
        let mut truncated = false;
        while c.remaining() > 0 {
            if dialects.len() == MAX_DIALECTS {
                truncated = true;
                break;
            }
            // BufferFormat 0x02, then an OEM NUL-terminated name.
            let format = c.take(1);
            if format != [0x02] {
                return Err(Smb1Error::OutOfBounds {
                    command: cmd::NEGOTIATE,
                    what: "dialect buffer format",
                });
            }
            dialects.push(c.oem_string());
        }
        Ok(NegotiateRequest {
            dialects,
            truncated,
        })
    }
}

/// The server's choice. WordCount 17 is NT LM 0.12; 13 is LANMAN 2.x; 1 carries only the index
/// (0xFFFF: none of the offered dialects).
#[derive(Clone, Debug)]
pub struct NegotiateResponse<'a> {
    pub dialect_index: u16,
    pub security_mode: u8,
    pub max_mpx_count: u16,
    pub max_buffer_size: u32,
    pub session_key: u32,
    pub capabilities: u32,
    /// FILETIME of the server clock (NT LM 0.12 only).
    pub system_time: u64,
    /// Server GUID when extended security is announced.
    pub server_guid: Option<&'a [u8]>,
    /// The SPNEGO init token when extended security is announced (may be empty).
    pub security_blob: &'a [u8],
    /// The 8-byte challenge (EncryptionKey) for non-extended NTLM / LM session setup.
    pub challenge: &'a [u8],
    /// Domain and server names that follow the challenge (non-extended NT LM 0.12).
    pub domain_name: SmbStr<'a>,
    pub server_name: SmbStr<'a>,
}

impl<'a> NegotiateResponse<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<NegotiateResponse<'a>, Smb1Error> {
        let count = block.word_count;
        let fields = (
            le_u16,
            cond(count == 13, lanman_words),
            cond(count == 17, nt_words),
        );
        let (dialect_index, lanman, nt) = words(block, Accept::OneOf(&[1, 13, 17]), fields)?;
        let mut r = NegotiateResponse {
            dialect_index,
            security_mode: 0,
            max_mpx_count: 0,
            max_buffer_size: 0,
            session_key: 0,
            capabilities: 0,
            system_time: 0,
            server_guid: None,
            security_blob: &[],
            challenge: &[],
            domain_name: SmbStr::default(),
            server_name: SmbStr::default(),
        };
        if let Some(w) = lanman {
            r.security_mode = w.security_mode;
            r.max_buffer_size = w.max_buffer_size;
            r.max_mpx_count = w.max_mpx_count;
            r.session_key = w.session_key;
            r.challenge = key_prefix(block.bytes, w.key_len);
        }
        if let Some(w) = nt {
            r.security_mode = w.security_mode;
            r.max_mpx_count = w.max_mpx_count;
            r.max_buffer_size = w.max_buffer_size;
            r.session_key = w.session_key;
            r.capabilities = w.capabilities;
            r.system_time = w.system_time;
            if r.capabilities & CAP_EXTENDED_SECURITY != 0 {
                r.server_guid = block.bytes.get(..16);
                r.security_blob = block.bytes.get(16..).unwrap_or(&[]);
            } else {
                r.challenge = key_prefix(block.bytes, w.key_len);
                // Unicode here follows CAP_UNICODE, and servers do not pad (as Wireshark notes).
                let unicode = unicode || r.capabilities & CAP_UNICODE != 0;
                let mut c = StrCursor::new(
                    msg,
                    block.bytes_offset + r.challenge.len(),
                    block.bytes_end(),
                );
                r.domain_name = c.string_unaligned(unicode);
                r.server_name = c.string_unaligned(unicode);
            }
        }
        Ok(r)
    }

    pub fn is_extended_security(&self) -> bool {
        self.capabilities & CAP_EXTENDED_SECURITY != 0
    }
}

/// The parameter words after DialectIndex that the sensor reads, per response form.
#[derive(Clone, Copy, Debug)]
struct ServerWords {
    security_mode: u8,
    max_mpx_count: u16,
    max_buffer_size: u32,
    session_key: u32,
    capabilities: u32,
    system_time: u64,
    /// EncryptionKeyLength / ChallengeLength.
    key_len: usize,
}

/// WordCount 13 (LANMAN 2.1): SecurityMode, MaxBufferSize, MaxMpxCount, MaxNumberVcs, RawMode,
/// SessionKey, ServerTime, ServerDate, ServerTimeZone, EncryptionKeyLength.
fn lanman_words(i: &[u8]) -> IResult<&[u8], ServerWords> {
    (
        le_u16,
        le_u16,
        le_u16,
        take(4usize),
        le_u32,
        take(6usize),
        le_u16,
    )
        .map(
            |(security_mode, max_buffer, max_mpx, _, session_key, _, key_len)| ServerWords {
                security_mode: security_mode as u8,
                max_mpx_count: max_mpx,
                max_buffer_size: u32::from(max_buffer),
                session_key,
                capabilities: 0,
                system_time: 0,
                key_len: usize::from(key_len),
            },
        )
        .parse(i)
}

/// WordCount 17 (NT LM 0.12): SecurityMode, MaxMpxCount, MaxNumberVcs, MaxBufferSize,
/// MaxRawSize, SessionKey, Capabilities, SystemTime, ServerTimeZone, ChallengeLength.
fn nt_words(i: &[u8]) -> IResult<&[u8], ServerWords> {
    (
        le_u8, le_u16, le_u16, le_u32, le_u32, le_u32, le_u32, le_u64, le_u16, le_u8,
    )
        .map(
            |(
                security_mode,
                max_mpx,
                _,
                max_buffer,
                _,
                session_key,
                capabilities,
                system_time,
                _,
                key_len,
            )| {
                ServerWords {
                    security_mode,
                    max_mpx_count: max_mpx,
                    max_buffer_size: max_buffer,
                    session_key,
                    capabilities,
                    system_time,
                    key_len: usize::from(key_len),
                }
            },
        )
        .parse(i)
}

/// The challenge: the first `len` data bytes, or all of them when fewer are there.
fn key_prefix(bytes: &[u8], len: usize) -> &[u8] {
    crate::wire::clipped(bytes, 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, first_block, utf16z, MsgBuilder, W};

    /// i1_smb1_psexec frame 6: impacket offers only "NT LM 0.12" (tshark smb.dialect.name).
    #[test]
    fn capture_request_i1() {
        let m = capture_msg("0000002fff534d427200000000180148000000000000000000000000ffff6e1700000000000c00024e54204c4d20302e313200");
        let (_, b) = first_block(&m);
        let r = NegotiateRequest::parse(&m, &b).unwrap();
        let names: Vec<String> = r.dialects.iter().map(|d| d.decode()).collect();
        assert_eq!(names, ["NT LM 0.12"]);
    }

    /// i1_smb1_psexec frame 8 (Samba): tshark smb.dialect.index 0, smb.server_cap 0x8080f3fd,
    /// smb.max_bufsize 16644, smb.session_key 0x176f, smb.server_guid 76696374-696d-0000-…
    #[test]
    fn capture_response_i1() {
        let m = capture_msg("0000009fff534d427200000000880148000000000000000000000000ffff6e1700000000110000033200010004410000000001006f170000fdf38080e07710d3337add010000005a0076696374696d00000000000000000000604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa32a3028a0261b246e6f745f646566696e65645f696e5f5246433431373840706c656173655f69676e6f7265");
        let (h, b) = first_block(&m);
        let r = NegotiateResponse::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.dialect_index, 0);
        assert_eq!(r.capabilities, 0x8080_f3fd);
        assert!(r.is_extended_security());
        assert_eq!(r.max_buffer_size, 16644);
        assert_eq!(r.session_key, 0x176f);
        assert_eq!(r.server_guid, Some(&b"victim\0\0\0\0\0\0\0\0\0\0"[..]));
        assert_eq!(r.security_blob.len(), 0x4a);
        assert_eq!(r.security_blob.get(..2), Some(&[0x60, 0x48][..]));
        assert!(r.challenge.is_empty());
    }

    #[test]
    fn hand_built_request_with_several_dialects() {
        let mut bytes = Vec::new();
        for d in ["PC NETWORK PROGRAM 1.0", "LANMAN1.0", "NT LM 0.12"] {
            bytes.push(2);
            bytes.extend_from_slice(d.as_bytes());
            bytes.push(0);
        }
        let m = MsgBuilder::request(cmd::NEGOTIATE).bytes(&bytes).build();
        let (_, b) = first_block(&m);
        let r = NegotiateRequest::parse(&m, &b).unwrap();
        assert_eq!(r.dialects.len(), 3);
        assert_eq!(r.dialects[2].decode(), "NT LM 0.12");
        let bad = MsgBuilder::request(cmd::NEGOTIATE)
            .bytes(b"\x05abc\0")
            .build();
        let (_, b) = first_block(&bad);
        assert!(NegotiateRequest::parse(&bad, &b).is_err());
    }

    #[test]
    fn dialect_count_is_capped() {
        let bytes: Vec<u8> = std::iter::repeat_n([2u8, b'x', 0], MAX_DIALECTS + 5)
            .flatten()
            .collect();
        let m = MsgBuilder::request(cmd::NEGOTIATE).bytes(&bytes).build();
        let (_, b) = first_block(&m);
        let r = NegotiateRequest::parse(&m, &b).unwrap();
        assert_eq!(r.dialects.len(), MAX_DIALECTS);
        assert!(r.truncated);
    }

    fn nt_words(caps: u32, challenge_len: u8) -> Vec<u8> {
        W::new()
            .u16(0) // dialect index
            .u8(3) // security mode
            .u16(50)
            .u16(1)
            .u32(16644)
            .u32(65536)
            .u32(0x1234_5678)
            .u32(caps)
            .u64(0x01D0_0000_0000_0000)
            .u16(0)
            .u8(challenge_len)
            .done()
    }

    #[test]
    fn hand_built_raw_ntlm_response_has_challenge_and_names() {
        let mut bytes = vec![1, 2, 3, 4, 5, 6, 7, 8];
        bytes.extend(utf16z("LAB"));
        bytes.extend(utf16z("SRV"));
        let m = MsgBuilder::response(cmd::NEGOTIATE)
            .unicode()
            .words(&nt_words(CAP_NT_SMBS | CAP_UNICODE, 8))
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = NegotiateResponse::parse(&m, &b, h.is_unicode()).unwrap();
        assert!(!r.is_extended_security());
        assert_eq!(r.challenge, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(r.domain_name.decode(), "LAB");
        assert_eq!(r.server_name.decode(), "SRV");
        assert_eq!(r.session_key, 0x1234_5678);
        assert_eq!(r.max_buffer_size, 16644);
    }

    #[test]
    fn hand_built_extended_response_and_no_dialect() {
        let mut bytes = vec![0xAB; 16];
        bytes.extend_from_slice(&[0x60, 0x28]);
        let m = MsgBuilder::response(cmd::NEGOTIATE)
            .words(&nt_words(CAP_EXTENDED_SECURITY, 0))
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = NegotiateResponse::parse(&m, &b, h.is_unicode()).unwrap();
        assert!(r.is_extended_security());
        assert_eq!(r.server_guid, Some(&[0xAB; 16][..]));
        assert_eq!(r.security_blob, &[0x60, 0x28]);

        let m = MsgBuilder::response(cmd::NEGOTIATE)
            .words(&0xFFFFu16.to_le_bytes())
            .build();
        let (h, b) = first_block(&m);
        assert_eq!(
            NegotiateResponse::parse(&m, &b, h.is_unicode())
                .unwrap()
                .dialect_index,
            0xFFFF
        );
        let m = MsgBuilder::response(cmd::NEGOTIATE).words(&[0; 6]).build();
        let (h, b) = first_block(&m);
        assert_eq!(
            NegotiateResponse::parse(&m, &b, h.is_unicode()).unwrap_err(),
            Smb1Error::WordCount {
                command: cmd::NEGOTIATE,
                got: 3
            }
        );
    }
}
