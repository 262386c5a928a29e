//! Opening files and pipes: NT_CREATE_ANDX (0xA2) and OPEN_ANDX (0x2D), requests and responses.
//! (NT_TRANSACT_CREATE lives in `trans`, since it rides in a transaction.)

use super::andx::Block;
use super::strings::SmbStr;
use super::{andx_header, data_block, response_words, words, Accept, Smb1Error};
use crate::wire::num::{le_u16, le_u32, le_u64, le_u8};
use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::sequence::preceded;

/// NT create dispositions (same values as SMB2).
pub const FILE_SUPERSEDE: u32 = 0;
pub const FILE_OPEN: u32 = 1;
pub const FILE_CREATE: u32 = 2;
pub const FILE_OPEN_IF: u32 = 3;
pub const FILE_OVERWRITE: u32 = 4;
pub const FILE_OVERWRITE_IF: u32 = 5;
/// CreateOptions bits that matter to file tracking.
pub const FILE_DIRECTORY_FILE: u32 = 0x0000_0001;
pub const FILE_NON_DIRECTORY_FILE: u32 = 0x0000_0040;
pub const FILE_DELETE_ON_CLOSE: u32 = 0x0000_1000;
/// NT_CREATE_ANDX request Flags: ask for the WordCount-42 response.
pub const NT_CREATE_REQUEST_EXTENDED_RESPONSE: u32 = 0x0000_0010;
/// Create actions (response), same values as SMB2.
pub const FILE_SUPERSEDED: u32 = 0;
pub const FILE_OPENED: u32 = 1;
pub const FILE_CREATED: u32 = 2;
pub const FILE_OVERWRITTEN: u32 = 3;

#[derive(Clone, Debug)]
pub struct NtCreateRequest<'a> {
    pub flags: u32,
    /// Non-zero: `name` is relative to this directory FID.
    pub root_directory_fid: u32,
    pub desired_access: u32,
    pub allocation_size: u64,
    pub file_attributes: u32,
    pub share_access: u32,
    pub create_disposition: u32,
    pub create_options: u32,
    pub impersonation_level: u32,
    pub security_flags: u8,
    /// Relative to the tree (`\svcctl`, `OIhuyfAI.exe`, `\dir\file.txt`).
    pub name: SmbStr<'a>,
}

impl<'a> NtCreateRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<NtCreateRequest<'a>, Smb1Error> {
        let (
            _,
            _reserved,
            name_len,
            flags,
            root_directory_fid,
            desired_access,
            allocation_size,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            impersonation_level,
            security_flags,
        ) = words(
            block,
            Accept::OneOf(&[24]),
            (
                andx_header,
                le_u8,
                le_u16,
                le_u32,
                le_u32,
                le_u32,
                le_u64,
                le_u32,
                le_u32,
                le_u32,
                le_u32,
                le_u32,
                le_u8,
            ),
        )?;
        let mut c = data_block(msg, block);
        c.align_unicode(unicode);
        let mut raw = c.take(usize::from(name_len));
        // NameLength may or may not count the terminator; decode strips NULs, but keep the raw
        // view free of a trailing odd byte in Unicode.
        if unicode && raw.len() % 2 == 1 {
            raw = raw.get(..raw.len() - 1).unwrap_or(&[]);
        }
        Ok(NtCreateRequest {
            flags,
            root_directory_fid,
            desired_access,
            allocation_size,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            impersonation_level,
            security_flags,
            name: SmbStr::new(raw, unicode),
        })
    }

    pub fn is_delete_on_close(&self) -> bool {
        self.create_options & FILE_DELETE_ON_CLOSE != 0
    }
}

#[derive(Clone, Debug)]
pub struct NtCreateResponse {
    pub oplock_level: u8,
    pub fid: u16,
    pub create_action: u32,
    pub creation_time: u64,
    pub last_access_time: u64,
    pub last_write_time: u64,
    pub change_time: u64,
    pub file_attributes: u32,
    pub allocation_size: u64,
    pub end_of_file: u64,
    /// 0 disk file, 1 byte-mode pipe, 2 message-mode pipe, …
    pub resource_type: u16,
    pub nm_pipe_status: u16,
    pub directory: bool,
    /// Extended (WordCount 42) response only.
    pub maximal_access_rights: Option<u32>,
    pub guest_maximal_access_rights: Option<u32>,
}

pub const FILE_TYPE_DISK: u16 = 0;
pub const FILE_TYPE_BYTE_MODE_PIPE: u16 = 1;
pub const FILE_TYPE_MESSAGE_MODE_PIPE: u16 = 2;

impl NtCreateResponse {
    /// `Ok(None)` for an error response (WordCount 0).
    pub fn parse(block: &Block<'_>) -> Result<Option<NtCreateResponse>, Smb1Error> {
        // The extended response (MS-SMB 2.2.4.9.2) adds VolumeGUID and FileId, then the rights.
        let extended = block.words.len() >= 100;
        let fields = (
            andx_header,
            le_u8,
            le_u16,
            le_u32,
            (le_u64, le_u64, le_u64, le_u64),
            le_u32,
            le_u64,
            le_u64,
            le_u16,
            le_u16,
            le_u8,
            cond(extended, preceded(take(24usize), (le_u32, le_u32))),
        );
        let Some((
            _,
            oplock_level,
            fid,
            create_action,
            (creation_time, last_access_time, last_write_time, change_time),
            file_attributes,
            allocation_size,
            end_of_file,
            resource_type,
            nm_pipe_status,
            directory,
            rights,
        )) = response_words(block, Accept::OneOf(&[34, 42]), fields)?
        else {
            return Ok(None);
        };
        Ok(Some(NtCreateResponse {
            oplock_level,
            fid,
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            file_attributes,
            allocation_size,
            end_of_file,
            resource_type,
            nm_pipe_status,
            directory: directory != 0,
            maximal_access_rights: rights.map(|r| r.0),
            guest_maximal_access_rights: rights.map(|r| r.1),
        }))
    }

    pub fn is_pipe(&self) -> bool {
        matches!(
            self.resource_type,
            FILE_TYPE_BYTE_MODE_PIPE | FILE_TYPE_MESSAGE_MODE_PIPE
        )
    }
}

/// OPEN_ANDX (0x2D), the pre-NT open.
#[derive(Clone, Debug)]
pub struct OpenAndxRequest<'a> {
    pub flags: u16,
    /// Low 3 bits: 0 read, 1 write, 2 read/write, 3 execute; higher bits sharing mode.
    pub access_mode: u16,
    pub search_attributes: u16,
    pub file_attributes: u16,
    pub creation_time: u32,
    /// Bits 0–1: 0 fail if exists, 1 open, 2 truncate; bit 4: create if missing.
    pub open_mode: u16,
    pub allocation_size: u32,
    pub name: SmbStr<'a>,
}

impl<'a> OpenAndxRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<OpenAndxRequest<'a>, Smb1Error> {
        let (
            _,
            flags,
            access_mode,
            search_attributes,
            file_attributes,
            creation_time,
            open_mode,
            allocation_size,
        ) = words(
            block,
            Accept::OneOf(&[15]),
            (
                andx_header,
                le_u16,
                le_u16,
                le_u16,
                le_u16,
                le_u32,
                le_u16,
                le_u32,
            ),
        )?;
        Ok(OpenAndxRequest {
            flags,
            access_mode,
            search_attributes,
            file_attributes,
            creation_time,
            open_mode,
            allocation_size,
            name: data_block(msg, block).string(unicode),
        })
    }

    /// Write or read/write access asked for.
    pub fn wants_write(&self) -> bool {
        matches!(self.access_mode & 0x7, 1 | 2)
    }

    /// The equivalent NT create disposition (None for the meaningless "fail either way").
    pub fn nt_disposition(&self) -> Option<u32> {
        let create = self.open_mode & 0x10 != 0;
        match (create, self.open_mode & 0x3) {
            (false, 1) => Some(FILE_OPEN),
            (false, 2) => Some(FILE_OVERWRITE),
            (true, 0) => Some(FILE_CREATE),
            (true, 1) => Some(FILE_OPEN_IF),
            (true, 2) => Some(FILE_OVERWRITE_IF),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OpenAndxResponse {
    pub fid: u16,
    pub file_attributes: u16,
    pub last_write_time: u32,
    pub file_data_size: u32,
    pub access_rights: u16,
    pub resource_type: u16,
    pub nm_pipe_status: u16,
    /// Low 2 bits: 1 opened, 2 created, 3 truncated (same numbers as NT create actions).
    pub open_results: u16,
}

impl OpenAndxResponse {
    pub fn parse(block: &Block<'_>) -> Result<Option<OpenAndxResponse>, Smb1Error> {
        let fields = (
            andx_header,
            le_u16,
            le_u16,
            le_u32,
            le_u32,
            le_u16,
            le_u16,
            le_u16,
            le_u16,
        );
        let Some((
            _,
            fid,
            file_attributes,
            last_write_time,
            file_data_size,
            access_rights,
            resource_type,
            nm_pipe_status,
            open_results,
        )) = response_words(block, Accept::OneOf(&[15, 19]), fields)?
        else {
            return Ok(None);
        };
        Ok(Some(OpenAndxResponse {
            fid,
            file_attributes,
            last_write_time,
            file_data_size,
            access_rights,
            resource_type,
            nm_pipe_status,
            open_results,
        }))
    }

    /// The NT create action this stands for.
    pub fn create_action(&self) -> u32 {
        u32::from(self.open_results & 0x3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::records::cmd;
    use crate::smb::smb1::test_util::{capture_msg, first_block, utf16z, MsgBuilder, W};

    /// i1_smb1_psexec frames 42/43, impacket psexec creating its service binary on ADMIN$
    /// (OEM): tshark smb.file OIhuyfAI.exe, smb.access_mask 0x0002019e, smb.create.disposition 5,
    /// smb.create_options 0x40; response smb.fid 0xe10c, smb.create.action 2, end of file 0.
    #[test]
    fn capture_i1_exe_create() {
        let m = capture_msg("00000060ff534d42a200000000180148000000000000000000000000d4fa6e1798b0000018ff000000000c0016000000000000009e01020000000000000000000000000001000000050000004000000002000000030d004f496875796641492e65786500");
        let (h, b) = first_block(&m);
        let r = NtCreateRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "OIhuyfAI.exe");
        assert_eq!(r.desired_access, 0x0002_019e);
        assert_eq!(r.create_disposition, FILE_OVERWRITE_IF);
        assert_eq!(r.create_options, FILE_NON_DIRECTORY_FILE);
        assert_eq!(
            r.flags & NT_CREATE_REQUEST_EXTENDED_RESPONSE,
            NT_CREATE_REQUEST_EXTENDED_RESPONSE
        );
        assert!(!r.is_delete_on_close());

        let m = capture_msg("00000087ff534d42a200000000880348000000000000000000000000d4fa6e1798b000002aff000000020ce10200000018225ed3337add0118225ed3337add0118225ed3337add0118225ed3337add0120000000000000000000000000000000000000000000060000000000000000000000000000000000000000000000000000ff011f00000000000000");
        let (_, b) = first_block(&m);
        let r = NtCreateResponse::parse(&b).unwrap().unwrap();
        assert_eq!(r.fid, 0xe10c);
        assert_eq!(r.create_action, FILE_CREATED);
        assert_eq!(r.end_of_file, 0);
        assert_eq!(r.file_attributes, 0x20);
        assert!(!r.is_pipe());
        assert_eq!(r.maximal_access_rights, Some(0x001f_01ff));
    }

    /// i2_smb1_benign_upload frames 20/21 (smbclient, Unicode, pad byte before the name):
    /// smb.file \tool.exe, access 0x0012019f, disposition 5; response fid 0x02e8 (WordCount 34).
    #[test]
    fn capture_i2_unicode_create() {
        let m = capture_msg("0000006aff534d42a2000000001843c80000000000000000000000008af4ee176f31070018ff00000000140000000000000000009f01120000000000000000000000000003000000050000004000000002000000001700005c0074006f006f006c002e0065007800650000000000");
        let (h, b) = first_block(&m);
        assert!(h.is_unicode());
        let r = NtCreateRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "\\tool.exe");
        assert_eq!(r.desired_access, 0x0012_019f);
        assert_eq!(r.create_disposition, FILE_OVERWRITE_IF);

        let m = capture_msg("00000067ff534d42a2000000008803c80000000000000000000000008af4ee176f31070022ff00000000e80202000000d14bb1d5337add01d14bb1d5337add01d14bb1d5337add01d14bb1d5337add01200000000000000000000000000000000000000000000000000000");
        let (_, b) = first_block(&m);
        assert_eq!(b.word_count, 34);
        let r = NtCreateResponse::parse(&b).unwrap().unwrap();
        assert_eq!(r.fid, 0x02e8);
        assert_eq!(r.create_action, FILE_CREATED);
        assert_eq!(r.maximal_access_rights, None);
    }

    /// raw_ntlm_in_smb frame 133: extended response of an existing file; tshark smb.fid 0x4003,
    /// smb.create.action 1, smb.end_of_file 182, attributes 0x26.
    #[test]
    fn capture_extended_response_existing_file() {
        let m = capture_msg("00000087ff534d42a2000000008801c800000000000000000000000001080100000826002aff00870000034001000000602b4edd2190d101f0b503c1d88fd101a02fdcdf2190d101c0d5b8c0d88fd10126000000b800000000000000b6000000000000000000070000000000000000000000000000000000000000000000000000a9001200000000000000");
        let (_, b) = first_block(&m);
        let r = NtCreateResponse::parse(&b).unwrap().unwrap();
        assert_eq!(
            (r.fid, r.create_action, r.end_of_file, r.file_attributes),
            (0x4003, FILE_OPENED, 182, 0x26)
        );
        assert_eq!(r.maximal_access_rights, Some(0x0012_00a9));
    }

    #[test]
    fn hand_built_pipe_open_and_errors() {
        // Unicode \svcctl with NameLength counting the terminator; delete-on-close option.
        let name = utf16z("\\svcctl");
        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u8(0)
            .u16(name.len() as u16)
            .u32(0)
            .u32(0)
            .u32(0x0012_019f)
            .u64(0)
            .u32(0)
            .u32(3)
            .u32(FILE_OPEN)
            .u32(FILE_DELETE_ON_CLOSE)
            .u32(2)
            .u8(0)
            .done();
        assert_eq!(words.len(), 48);
        let mut bytes = vec![0u8]; // pad: bytes start at 32+1+48+2 = 83
        bytes.extend(&name);
        let m = MsgBuilder::request(cmd::NT_CREATE_ANDX)
            .unicode()
            .words(&words)
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = NtCreateRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "\\svcctl");
        assert!(r.is_delete_on_close());
        assert_eq!(r.create_disposition, FILE_OPEN);

        // Error response: WordCount 0.
        let m = MsgBuilder::response(cmd::NT_CREATE_ANDX)
            .nt_status(0xC000_0034)
            .build();
        let (_, b) = first_block(&m);
        assert!(NtCreateResponse::parse(&b).unwrap().is_none());
        let m = MsgBuilder::request(cmd::NT_CREATE_ANDX)
            .words(&[0; 10])
            .build();
        let (h, b) = first_block(&m);
        assert!(NtCreateRequest::parse(&m, &b, h.is_unicode()).is_err());
    }

    #[test]
    fn hand_built_open_andx() {
        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(0)
            .u16(0x0042) // deny none, read/write
            .u16(0x16)
            .u16(0)
            .u32(0)
            .u16(0x12) // create if missing, truncate
            .u32(0)
            .u32(0)
            .u32(0)
            .done();
        let m = MsgBuilder::request(cmd::OPEN_ANDX)
            .words(&words)
            .bytes(b"\\WINDOWS\\evil.exe\0")
            .build();
        let (h, b) = first_block(&m);
        let r = OpenAndxRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "\\WINDOWS\\evil.exe");
        assert!(r.wants_write());
        assert_eq!(r.nt_disposition(), Some(FILE_OVERWRITE_IF));

        let words = W::new()
            .andx(cmd::NO_ANDX, 0)
            .u16(0x4005)
            .u16(0x20)
            .u32(0)
            .u32(1234)
            .u16(2)
            .u16(0)
            .u16(0)
            .u16(2)
            .raw(&[0; 6])
            .done();
        let m = MsgBuilder::response(cmd::OPEN_ANDX).words(&words).build();
        let (_, b) = first_block(&m);
        let r = OpenAndxResponse::parse(&b).unwrap().unwrap();
        assert_eq!(
            (r.fid, r.file_data_size, r.create_action()),
            (0x4005, 1234, FILE_CREATED)
        );
    }
}
