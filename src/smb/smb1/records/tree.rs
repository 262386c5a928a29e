//! SMB_COM_TREE_CONNECT_ANDX (0x75) request and response; TREE_DISCONNECT (0x71) and
//! LOGOFF_ANDX (0x74) carry nothing beyond the header's TID / UID.

use super::andx::Block;
use super::strings::SmbStr;
use super::{andx_header, data_block, response_words, words, Accept, Smb1Error};
use crate::wire::num::{le_u16, le_u32};
use nom::combinator::cond;

/// TREE_CONNECT_ANDX_EXTENDED_RESPONSE in the request flags.
pub const TREE_CONNECT_EXTENDED_RESPONSE: u16 = 0x0008;
/// TREE_CONNECT_ANDX_DISCONNECT_TID: disconnect the header's TID first.
pub const TREE_CONNECT_DISCONNECT_TID: u16 = 0x0001;

#[derive(Clone, Debug)]
pub struct TreeConnectRequest<'a> {
    pub flags: u16,
    /// Share-level password (usually one zero byte).
    pub password: &'a [u8],
    /// `\\server\SHARE`.
    pub path: SmbStr<'a>,
    /// Requested service, always OEM: "A:" disk, "LPT1:", "IPC", "COMM", "?????" any.
    pub service: SmbStr<'a>,
}

impl<'a> TreeConnectRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<TreeConnectRequest<'a>, Smb1Error> {
        let (_, flags, password_len) =
            words(block, Accept::OneOf(&[4]), (andx_header, le_u16, le_u16))?;
        let mut c = data_block(msg, block);
        let password = c.take(usize::from(password_len));
        let path = c.string(unicode);
        let service = c.oem_string();
        Ok(TreeConnectRequest {
            flags,
            password,
            path,
            service,
        })
    }
}

/// `\\server\share` → ("server", "share"); a path without the leading `\\` is all share.
pub fn split_unc(path: &str) -> (&str, &str) {
    match path
        .strip_prefix("\\\\")
        .and_then(|rest| rest.split_once('\\'))
    {
        Some((server, share)) => (server, share.trim_end_matches('\\')),
        None => ("", path.trim_start_matches('\\')),
    }
}

#[derive(Clone, Debug)]
pub struct TreeConnectResponse<'a> {
    pub optional_support: u16,
    /// Extended response (WordCount 7) only.
    pub maximal_share_access: Option<u32>,
    pub guest_maximal_share_access: Option<u32>,
    /// Service granted, OEM: "A:", "IPC", …
    pub service: SmbStr<'a>,
    /// "NTFS", "FAT", … (empty for IPC$).
    pub native_file_system: SmbStr<'a>,
}

impl<'a> TreeConnectResponse<'a> {
    /// `Ok(None)` for an error response (WordCount 0).
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<Option<TreeConnectResponse<'a>>, Smb1Error> {
        let count = block.word_count;
        let fields = (
            andx_header,
            cond(count >= 3, le_u16),
            cond(count == 7, (le_u32, le_u32)),
        );
        let Some((_, optional_support, rights)) =
            response_words(block, Accept::OneOf(&[2, 3, 7]), fields)?
        else {
            return Ok(None);
        };
        let mut c = data_block(msg, block);
        let service = c.oem_string();
        let native_file_system = c.string(unicode);
        Ok(Some(TreeConnectResponse {
            optional_support: optional_support.unwrap_or(0),
            maximal_share_access: rights.map(|r| r.0),
            guest_maximal_share_access: rights.map(|r| r.1),
            service,
            native_file_system,
        }))
    }

    /// The tree is a named-pipe share (IPC$).
    pub fn is_ipc(&self) -> bool {
        self.service.raw.eq_ignore_ascii_case(b"IPC")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::capture_msg;
    use crate::smb::smb1::test_util::first_block;

    /// i1_smb1_psexec frames 14/15 (OEM) and 34/35; tshark smb.path, smb.service, smb.native_fs,
    /// smb.tid of the response.
    #[test]
    fn capture_i1_ipc_and_admin() {
        let m = capture_msg("00000044ff534d427500000000180148000000000000000000000000ffff6e1798b0000004ff000000000001001900005c5c3139322e302e322e32305c49504324003f3f3f3f3f00");
        let (h, b) = first_block(&m);
        let r = TreeConnectRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.password, &[0]);
        assert_eq!(r.path.decode(), "\\\\192.0.2.20\\IPC$");
        assert_eq!(r.service.decode(), "?????");

        let m = capture_msg("0000002eff534d42750000000088034800000000000000000000000092f66e1798b0000003ff000000010005004950430000");
        let (h, b) = first_block(&m);
        assert_eq!(h.tid, 63122);
        let r = TreeConnectResponse::parse(&m, &b, h.is_unicode())
            .unwrap()
            .unwrap();
        assert_eq!(r.service.decode(), "IPC");
        assert!(r.is_ipc());
        assert!(r.native_file_system.is_empty());

        let m = capture_msg("00000046ff534d427500000000180148000000000000000000000000ffff6e1798b0000004ff000000000001001b00005c5c3139322e302e322e32305c41444d494e24003f3f3f3f3f00");
        let (h, b) = first_block(&m);
        let r = TreeConnectRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(split_unc(&r.path.decode()), ("192.0.2.20", "ADMIN$"));

        let m = capture_msg("00000031ff534d42750000000088034800000000000000000000000050ab6e1798b0000003ff00000001000800413a004e54465300");
        let (h, b) = first_block(&m);
        assert_eq!(h.tid, 43856);
        let r = TreeConnectResponse::parse(&m, &b, h.is_unicode())
            .unwrap()
            .unwrap();
        assert_eq!(r.service.decode(), "A:");
        assert!(!r.is_ipc());
        assert_eq!(r.native_file_system.decode(), "NTFS");
    }

    /// raw_ntlm_in_smb frames 43/44 (Unicode path with a space, extended WordCount-7 response);
    /// tshark smb.path "\\192.168.56.101\MY PICTURES", response tid 2049, smb.native_fs NTFS.
    #[test]
    fn capture_unicode_and_extended_response() {
        let m = capture_msg("0000006cff534d4275000000000801c8000000000000000000000000ffff01000008090004ff000000080001004100005c005c003100390032002e003100360038002e00350036002e003100300031005c004d00590020005000490043005400550052004500530000003f3f3f3f3f00");
        let (h, b) = first_block(&m);
        assert!(h.is_unicode());
        let r = TreeConnectRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.flags, TREE_CONNECT_EXTENDED_RESPONSE);
        assert_eq!(r.path.decode(), "\\\\192.168.56.101\\MY PICTURES");
        assert_eq!(split_unc(&r.path.decode()).1, "MY PICTURES");
        assert_eq!(r.service.decode(), "?????");

        let m = capture_msg("0000003eff534d4275000000008801c8000000000000000000000000010801000008090007ff003e000100a9001200000000000d00413a004e005400460053000000");
        let (h, b) = first_block(&m);
        assert_eq!(h.tid, 2049);
        let r = TreeConnectResponse::parse(&m, &b, h.is_unicode())
            .unwrap()
            .unwrap();
        assert_eq!(r.maximal_share_access, Some(0x0012_00a9));
        assert_eq!(r.service.decode(), "A:");
        assert_eq!(r.native_file_system.decode(), "NTFS");
    }

    #[test]
    fn split_unc_forms() {
        assert_eq!(split_unc("\\\\srv\\C$"), ("srv", "C$"));
        assert_eq!(split_unc("\\\\srv\\C$\\"), ("srv", "C$"));
        assert_eq!(split_unc("\\\\srv"), ("", "srv"));
        assert_eq!(split_unc("IPC$"), ("", "IPC$"));
    }
}
