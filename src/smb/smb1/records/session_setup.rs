//! SMB_COM_SESSION_SETUP_ANDX (0x73), request and response, in its three request forms:
//! WordCount 12 (extended security: an SPNEGO or bare NTLMSSP blob), 13 (NT LM 0.12 without
//! extended security: LM/NTLM responses and a plaintext account and domain), 10 (LANMAN).

use super::andx::Block;
use super::strings::{SmbStr, StrCursor};
use super::{andx_header, data_block, response_words, words, Accept, Smb1Error};
use crate::wire::clipped;
use crate::wire::num::{le_u16, le_u32};
use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::sequence::preceded;

/// SMB_SETUP_GUEST in the response Action: the server logged the client on as guest.
pub const SETUP_GUEST: u16 = 0x0001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupForm {
    /// WordCount 12: SecurityBlob.
    ExtendedSecurity,
    /// WordCount 13: OEM (LM) and Unicode (NTLM) challenge responses, account, domain.
    NtLm,
    /// WordCount 10: one password field, account, domain.
    Lanman,
}

#[derive(Clone, Debug)]
pub struct SessionSetupRequest<'a> {
    pub form: SetupForm,
    pub max_buffer_size: u16,
    pub max_mpx_count: u16,
    pub vc_number: u16,
    pub session_key: u32,
    /// Client capabilities (not present in the LANMAN form: 0).
    pub capabilities: u32,
    /// Extended security: the SPNEGO/NTLMSSP token.
    pub security_blob: &'a [u8],
    /// NtLm: the case-insensitive (LM) response; Lanman: the password field.
    pub oem_password: &'a [u8],
    /// NtLm: the case-sensitive (NTLM / NTLMv2) response.
    pub unicode_password: &'a [u8],
    pub account: SmbStr<'a>,
    pub primary_domain: SmbStr<'a>,
    pub native_os: SmbStr<'a>,
    pub native_lanman: SmbStr<'a>,
}

impl<'a> SessionSetupRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<SessionSetupRequest<'a>, Smb1Error> {
        let form = match block.word_count {
            12 => SetupForm::ExtendedSecurity,
            13 => SetupForm::NtLm,
            _ => SetupForm::Lanman,
        };
        // After SessionKey: the first length (SecurityBlobLength, OEMPasswordLen or PasswordLen);
        // NtLm adds UnicodePasswordLen; both NT forms have 4 reserved bytes, then Capabilities.
        let fields = (
            andx_header,
            le_u16,
            le_u16,
            le_u16,
            le_u32,
            le_u16,
            cond(form == SetupForm::NtLm, le_u16),
            cond(form != SetupForm::Lanman, preceded(take(4usize), le_u32)),
        );
        let (_, max_buffer_size, max_mpx_count, vc_number, session_key, len1, len2, capabilities) =
            words(block, Accept::OneOf(&[10, 12, 13]), fields)?;
        let (len1, len2) = (usize::from(len1), usize::from(len2.unwrap_or(0)));
        let mut r = SessionSetupRequest {
            form,
            max_buffer_size,
            max_mpx_count,
            vc_number,
            session_key,
            capabilities: capabilities.unwrap_or(0),
            security_blob: &[],
            oem_password: &[],
            unicode_password: &[],
            account: SmbStr::default(),
            primary_domain: SmbStr::default(),
            native_os: SmbStr::default(),
            native_lanman: SmbStr::default(),
        };
        let mut c = data_block(msg, block);
        match form {
            SetupForm::ExtendedSecurity => {
                r.security_blob = c.take(len1);
            }
            SetupForm::NtLm => {
                r.oem_password = c.take(len1);
                r.unicode_password = c.take(len2);
                r.account = c.string(unicode);
                r.primary_domain = c.string(unicode);
            }
            SetupForm::Lanman => {
                r.oem_password = c.take(len1);
                r.account = c.string(unicode);
                r.primary_domain = c.string(unicode);
            }
        }
        r.native_os = c.string(unicode);
        r.native_lanman = c.string(unicode);
        Ok(r)
    }

    /// A null session: no account and no challenge response (extended security decides this
    /// from the NTLMSSP AUTHENTICATE message instead).
    pub fn is_anonymous(&self) -> bool {
        self.form != SetupForm::ExtendedSecurity
            && self.account.is_empty()
            && self.unicode_password.is_empty()
            && self.oem_password.iter().all(|&b| b == 0)
    }
}

#[derive(Clone, Debug)]
pub struct SessionSetupResponse<'a> {
    /// Empty for an error response (WordCount 0).
    pub action: u16,
    pub security_blob: &'a [u8],
    pub native_os: SmbStr<'a>,
    pub native_lanman: SmbStr<'a>,
    pub primary_domain: SmbStr<'a>,
}

impl<'a> SessionSetupResponse<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<SessionSetupResponse<'a>, Smb1Error> {
        let mut r = SessionSetupResponse {
            action: 0,
            security_blob: &[],
            native_os: SmbStr::default(),
            native_lanman: SmbStr::default(),
            primary_domain: SmbStr::default(),
        };
        let fields = (andx_header, le_u16, cond(block.word_count == 4, le_u16));
        let Some((_, action, blob_len)) = response_words(block, Accept::OneOf(&[3, 4]), fields)?
        else {
            return Ok(r);
        };
        r.action = action;
        r.security_blob = clipped(block.bytes, 0, usize::from(blob_len.unwrap_or(0)));
        let mut c = StrCursor::new(
            msg,
            block.bytes_offset + r.security_blob.len(),
            block.bytes_end(),
        );
        r.native_os = c.string(unicode);
        r.native_lanman = c.string(unicode);
        r.primary_domain = c.string(unicode);
        Ok(r)
    }

    pub fn is_guest(&self) -> bool {
        self.action & SETUP_GUEST != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::records::cmd;
    use crate::smb::smb1::test_util::{capture_msg, first_block, utf16z, MsgBuilder, W};

    /// raw_ntlm_in_smb frame 22: a bare NTLMSSP AUTHENTICATE (no SPNEGO) in a WordCount-12
    /// request; tshark: smb.security_blob_len 440, smb.native_os "Mac OS X 10.10",
    /// smb.native_lanman "SMBFS 3.0.0".
    #[test]
    fn capture_bare_ntlmssp_request() {
        let m = capture_msg("0000022aff534d4273000000000801c8000000000000000000000000ffff0100000802000cff00000004110a00070000000000b801000000005cc00080ef014e544c4d5353500003000000180018008e00000002010201a60000001e001e00580000000800080076000000100010007e00000010001000a8010000050288620601b01d0f00000067395ddc5150115281dd3d29b605873554004500530054002d0046003700440046004200430033004600450039007400650073007400420041004200590042004f004f004b00000000000000000000000000000000000000000000000000020a2c94cbf8d66168d1b93068775845010100000000000080a93ad3d88fd1013f2198b2fdb491c70000000001001e0054004500530054002d00460037004400460042004300330046004500390002001e0054004500530054002d00460037004400460042004300330046004500390003001e0074006500730074002d00660037006400660062006300330066006500390004001e0074006500730074002d00660037006400660062006300330066006500390006000400030000000900260063006900660073002f003100390032002e003100360038002e00350036002e003100300031000a001000000000000000000000000000000000000000000000000000eb729686fcaacfadb13418fa494760de004d006100630020004f005300200058002000310030002e0031003000000053004d00420046005300200033002e0030002e0030000000");
        let (h, b) = first_block(&m);
        assert_eq!(h.uid, 2048);
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.form, SetupForm::ExtendedSecurity);
        assert_eq!(r.security_blob.len(), 440);
        assert_eq!(r.security_blob.get(..8), Some(&b"NTLMSSP\0"[..]));
        assert_eq!(r.security_blob.get(8), Some(&3)); // AUTHENTICATE
        assert_eq!(r.capabilities, 0x8000_c05c);
        assert_eq!(r.native_os.decode(), "Mac OS X 10.10");
        assert_eq!(r.native_lanman.decode(), "SMBFS 3.0.0");
        assert!(!r.is_anonymous());
    }

    /// raw_ntlm_in_smb frame 23: the final response; tshark smb.setup.action 0x0001 (guest),
    /// smb.native_os "Windows 5.1", smb.native_lanman "Windows 2000 LAN Manager", smb.uid 2048.
    #[test]
    fn capture_response_guest() {
        let m = capture_msg("00000075ff534d4273000000008801c8000000000000000000000000ffff01000008020004ff007500010000004a0000570069006e0064006f0077007300200035002e0031000000570069006e0064006f00770073002000320030003000300020004c0041004e0020004d0061006e00610067006500720000");
        let (h, b) = first_block(&m);
        assert!(h.is_response());
        assert_eq!(h.uid, 2048);
        let r = SessionSetupResponse::parse(&m, &b, h.is_unicode()).unwrap();
        assert!(r.is_guest());
        assert!(r.security_blob.is_empty());
        assert_eq!(r.native_os.decode(), "Windows 5.1");
        assert_eq!(r.native_lanman.decode(), "Windows 2000 LAN Manager");
    }

    /// i1_smb1_psexec frames 10 and 13 (impacket → Samba, OEM strings): SPNEGO blob of 66,
    /// native OS "Unix"/"Samba"; response blob 9, "Windows 6.1", "Samba 4.17.12-Debian",
    /// primary domain "LAB" (tshark smb.primary_domain), UID 45208.
    #[test]
    fn capture_spnego_oem_i1() {
        let m = capture_msg("00000088ff534d427300000000180148000000000000000000000000ffff6e17000000000cff00000000f0020001000000000042000000000044c000804d00604006062b0601050502a0363034a00e300c060a2b06010401823702020aa22204204e544c4d5353500001000000050288a000000000000000000000000000000000556e69780053616d626100");
        let (h, b) = first_block(&m);
        assert!(!h.is_unicode());
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.security_blob.len(), 66);
        assert_eq!(r.security_blob.first(), Some(&0x60));
        assert_eq!(r.native_os.decode(), "Unix");
        assert_eq!(r.native_lanman.decode(), "Samba");

        let m = capture_msg("00000059ff534d427300000000880348000000000000000000000000ffff6e1798b0000004ff000000000009002e00a1073005a0030a010057696e646f777320362e310053616d626120342e31372e31322d44656269616e004c414200");
        let (h, b) = first_block(&m);
        assert_eq!(h.uid, 45208);
        let r = SessionSetupResponse::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.security_blob.len(), 9);
        assert!(!r.is_guest());
        assert_eq!(r.native_os.decode(), "Windows 6.1");
        assert_eq!(r.native_lanman.decode(), "Samba 4.17.12-Debian");
        assert_eq!(r.primary_domain.decode(), "LAB");
    }

    fn ntlm_words(oem_len: u16, uni_len: u16) -> Vec<u8> {
        W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(4356)
            .u16(50)
            .u16(0)
            .u32(0)
            .u16(oem_len)
            .u16(uni_len)
            .u32(0)
            .u32(0x0000_00d4)
            .done()
    }

    /// Raw NTLM (WordCount 13) in Unicode: 24-byte LM and NTLM responses end the passwords at
    /// an odd offset (32+1+26+2+48 = 109), so one pad byte precedes the account name.
    #[test]
    fn raw_ntlm_unicode_with_alignment_pad() {
        let mut bytes = vec![0x11; 24];
        bytes.extend(vec![0x22; 24]);
        bytes.push(0); // pad to even offset
        bytes.extend(utf16z("Administrator"));
        bytes.extend(utf16z("CORP"));
        bytes.extend(utf16z("Windows 2000 2195"));
        bytes.extend(utf16z("Windows 2000 5.0"));
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .unicode()
            .words(&ntlm_words(24, 24))
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        assert_eq!(b.bytes_offset + 48, 109);
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.form, SetupForm::NtLm);
        assert_eq!(r.oem_password, &[0x11; 24]);
        assert_eq!(r.unicode_password, &[0x22; 24]);
        assert_eq!(r.account.decode(), "Administrator");
        assert_eq!(r.primary_domain.decode(), "CORP");
        assert_eq!(r.native_os.decode(), "Windows 2000 2195");
        assert_eq!(r.native_lanman.decode(), "Windows 2000 5.0");
        assert_eq!(r.capabilities, 0xd4);
        assert!(!r.is_anonymous());
    }

    /// Raw NTLM in OEM with a NTLMv2-length response (odd lengths, no alignment in OEM).
    #[test]
    fn raw_ntlm_oem_and_anonymous() {
        let mut bytes = vec![0x11; 24];
        bytes.extend(vec![0x33; 61]);
        bytes.extend_from_slice(b"alice\0WORKGROUP\0Unix\0Samba\0");
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .words(&ntlm_words(24, 61))
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.unicode_password.len(), 61);
        assert_eq!(r.account.decode(), "alice");
        assert_eq!(r.primary_domain.decode(), "WORKGROUP");
        assert_eq!(r.native_lanman.decode(), "Samba");

        // Null session: one zero byte of LM response, no NTLM response, empty names.
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .words(&ntlm_words(1, 0))
            .bytes(b"\0\0\0Unix\0Samba\0")
            .build();
        let (h, b) = first_block(&m);
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert!(r.is_anonymous());
        assert_eq!(r.native_os.decode(), "Unix");
    }

    #[test]
    fn lengths_past_the_block_are_clipped_not_trusted() {
        // Claims a 60000-byte LM response in a 10-byte data block.
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .words(&ntlm_words(60000, 60000))
            .bytes(&[7; 10])
            .build();
        let (h, b) = first_block(&m);
        let r = SessionSetupRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.oem_password.len(), 10);
        assert!(r.unicode_password.is_empty() && r.account.is_empty());
        let m = MsgBuilder::request(cmd::SESSION_SETUP_ANDX)
            .words(&[0; 8])
            .build();
        let (h, b) = first_block(&m);
        assert!(matches!(
            SessionSetupRequest::parse(&m, &b, h.is_unicode()),
            Err(Smb1Error::WordCount { got: 4, .. })
        ));
    }
}
