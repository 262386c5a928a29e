//! TRANSACTION2 subcommands where file names, renames and deletes appear (MS-CIFS 2.2.6).
//! Parsed from the (possibly reassembled) parameters and data of a TRANSACTION2 request.

use super::strings::{SmbStr, StrCursor};
use super::{cmd, Smb1Error};
use crate::wire::num::{le_u16, le_u32, le_u64, le_u8};
use crate::wire::parsed;
use nom::bytes::complete::take;
use nom::sequence::terminated;
use nom::Parser;

pub mod sub {
    pub const FIND_FIRST2: u16 = 0x0001;
    pub const FIND_NEXT2: u16 = 0x0002;
    pub const QUERY_FS_INFORMATION: u16 = 0x0003;
    pub const SET_FS_INFORMATION: u16 = 0x0004;
    pub const QUERY_PATH_INFORMATION: u16 = 0x0005;
    pub const SET_PATH_INFORMATION: u16 = 0x0006;
    pub const QUERY_FILE_INFORMATION: u16 = 0x0007;
    pub const SET_FILE_INFORMATION: u16 = 0x0008;
    pub const CREATE_DIRECTORY: u16 = 0x000D;
    pub const GET_DFS_REFERRAL: u16 = 0x0010;

    pub fn name(s: u16) -> &'static str {
        match s {
            FIND_FIRST2 => "find_first2",
            FIND_NEXT2 => "find_next2",
            QUERY_FS_INFORMATION => "query_fs_information",
            SET_FS_INFORMATION => "set_fs_information",
            QUERY_PATH_INFORMATION => "query_path_information",
            SET_PATH_INFORMATION => "set_path_information",
            QUERY_FILE_INFORMATION => "query_file_information",
            SET_FILE_INFORMATION => "set_file_information",
            CREATE_DIRECTORY => "create_directory",
            GET_DFS_REFERRAL => "get_dfs_referral",
            _ => "unknown",
        }
    }
}

/// Information levels of SET_FILE/PATH_INFORMATION that delete, rename or resize.
pub mod level {
    pub const SMB_SET_FILE_BASIC_INFO: u16 = 0x0101;
    pub const SMB_SET_FILE_DISPOSITION_INFO: u16 = 0x0102;
    pub const SMB_SET_FILE_ALLOCATION_INFO: u16 = 0x0103;
    pub const SMB_SET_FILE_END_OF_FILE_INFO: u16 = 0x0104;
    /// Pass-through levels: 1000 + the NT FILE_INFORMATION_CLASS.
    pub const PASSTHROUGH_RENAME: u16 = 1010;
    pub const PASSTHROUGH_DISPOSITION: u16 = 1013;
    pub const PASSTHROUGH_END_OF_FILE: u16 = 1020;
    pub const PASSTHROUGH_DISPOSITION_EX: u16 = 1064;
}

/// What a SET_*_INFORMATION request does to the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetInfo<'a> {
    /// Delete on close set (true) or cleared.
    Disposition {
        delete_pending: bool,
    },
    Rename {
        replace_if_exists: bool,
        root_fid: u32,
        new_name: SmbStr<'a>,
    },
    EndOfFile(u64),
    /// Another level, or data too short for its level.
    Other,
}

impl<'a> SetInfo<'a> {
    fn parse(information_level: u16, data: &'a [u8], data_at: usize, unicode: bool) -> SetInfo<'a> {
        let info = match information_level {
            level::SMB_SET_FILE_DISPOSITION_INFO | level::PASSTHROUGH_DISPOSITION => {
                parsed(le_u8.parse(data)).map(|d| SetInfo::Disposition {
                    delete_pending: d != 0,
                })
            }
            // FILE_DISPOSITION_INFORMATION_EX: Flags u32, FILE_DISPOSITION_DELETE = 1.
            level::PASSTHROUGH_DISPOSITION_EX => {
                parsed(le_u32.parse(data)).map(|flags| SetInfo::Disposition {
                    delete_pending: flags & 1 != 0,
                })
            }
            level::SMB_SET_FILE_END_OF_FILE_INFO | level::PASSTHROUGH_END_OF_FILE => {
                parsed(le_u64.parse(data)).map(SetInfo::EndOfFile)
            }
            // FILE_RENAME_INFORMATION: ReplaceIfExists, 3 reserved bytes, RootDirectory,
            // FileNameLength, FileName.
            level::PASSTHROUGH_RENAME => {
                let mut fields = (terminated(le_u8, take(3usize)), le_u32, le_u32);
                parsed(fields.parse(data)).map(|(replace, root_fid, len)| {
                    let mut c = StrCursor::over(data, 12, data_at);
                    SetInfo::Rename {
                        replace_if_exists: replace != 0,
                        root_fid,
                        new_name: SmbStr::new(c.take(len as usize), unicode),
                    }
                })
            }
            _ => None,
        };
        info.unwrap_or(SetInfo::Other)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trans2Request<'a> {
    FindFirst2 {
        search_attributes: u16,
        search_count: u16,
        flags: u16,
        information_level: u16,
        pattern: SmbStr<'a>,
    },
    FindNext2 {
        sid: u16,
        information_level: u16,
        name: SmbStr<'a>,
    },
    QueryPathInformation {
        information_level: u16,
        path: SmbStr<'a>,
    },
    SetPathInformation {
        information_level: u16,
        path: SmbStr<'a>,
        info: SetInfo<'a>,
    },
    QueryFileInformation {
        fid: u16,
        information_level: u16,
    },
    SetFileInformation {
        fid: u16,
        information_level: u16,
        info: SetInfo<'a>,
    },
    CreateDirectory {
        path: SmbStr<'a>,
    },
    GetDfsReferral {
        max_referral_level: u16,
        file_name: SmbStr<'a>,
    },
    Other {
        subcommand: u16,
    },
}

/// The fixed parameters of a subcommand, read by `fields`; too few is an error.
fn fixed<'a, O>(
    params: &'a [u8],
    mut fields: impl Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
) -> Result<O, Smb1Error> {
    parsed(fields.parse(params)).ok_or(Smb1Error::OutOfBounds {
        command: cmd::TRANSACTION2,
        what: "subcommand parameters",
    })
}

impl<'a> Trans2Request<'a> {
    /// `subcommand` is setup word 0; `params_at` / `data_at` are the offsets of the parameters
    /// and data from the header start (Unicode names inside are aligned relative to it).
    pub fn parse(
        subcommand: u16,
        params: &'a [u8],
        params_at: usize,
        data: &'a [u8],
        data_at: usize,
        unicode: bool,
    ) -> Result<Trans2Request<'a>, Smb1Error> {
        let name_at = |pos: usize| StrCursor::over(params, pos, params_at).string(unicode);
        Ok(match subcommand {
            sub::FIND_FIRST2 => {
                // SearchAttributes, SearchCount, Flags, InformationLevel, SearchStorageType.
                let fields = (le_u16, le_u16, le_u16, le_u16, take(4usize));
                let (search_attributes, search_count, flags, information_level, _) =
                    fixed(params, fields)?;
                Trans2Request::FindFirst2 {
                    search_attributes,
                    search_count,
                    flags,
                    information_level,
                    pattern: name_at(12),
                }
            }
            sub::FIND_NEXT2 => {
                // SID, SearchCount, InformationLevel, ResumeKey, Flags.
                let fields = (le_u16, take(2usize), le_u16, take(6usize));
                let (sid, _, information_level, _) = fixed(params, fields)?;
                Trans2Request::FindNext2 {
                    sid,
                    information_level,
                    name: name_at(12),
                }
            }
            sub::QUERY_PATH_INFORMATION => {
                let information_level = fixed(params, terminated(le_u16, take(4usize)))?;
                Trans2Request::QueryPathInformation {
                    information_level,
                    path: name_at(6),
                }
            }
            sub::SET_PATH_INFORMATION => {
                let information_level = fixed(params, terminated(le_u16, take(4usize)))?;
                Trans2Request::SetPathInformation {
                    information_level,
                    path: name_at(6),
                    info: SetInfo::parse(information_level, data, data_at, unicode),
                }
            }
            sub::QUERY_FILE_INFORMATION => {
                let (fid, information_level) = fixed(params, (le_u16, le_u16))?;
                Trans2Request::QueryFileInformation {
                    fid,
                    information_level,
                }
            }
            sub::SET_FILE_INFORMATION => {
                let (fid, information_level) = fixed(params, (le_u16, le_u16))?;
                Trans2Request::SetFileInformation {
                    fid,
                    information_level,
                    info: SetInfo::parse(information_level, data, data_at, unicode),
                }
            }
            sub::CREATE_DIRECTORY => {
                fixed(params, take(4usize))?;
                Trans2Request::CreateDirectory { path: name_at(4) }
            }
            sub::GET_DFS_REFERRAL => {
                let max_referral_level = fixed(params, le_u16)?;
                Trans2Request::GetDfsReferral {
                    max_referral_level,
                    file_name: name_at(2),
                }
            }
            subcommand => Trans2Request::Other { subcommand },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::records::andx::AndxChain;
    use crate::smb::smb1::records::trans::TransRequest;
    use crate::smb::smb1::records::Header;
    use crate::smb::smb1::test_util::{capture_msg, utf16z};

    fn trans2(m: &[u8]) -> Trans2Request<'_> {
        let h = Header::parse(m).unwrap();
        let b = AndxChain::new(m, &h).next().unwrap().unwrap();
        let r = TransRequest::parse(m, &b, h.is_unicode()).unwrap();
        let subcommand = r.setup_word(0).unwrap();
        Trans2Request::parse(
            subcommand,
            r.params,
            r.param_offset.into(),
            r.data,
            r.data_offset.into(),
            h.is_unicode(),
        )
        .unwrap()
    }

    /// i1_smb1_psexec frame 116: impacket FIND_FIRST2 for its binary (OEM); tshark
    /// smb.trans2.cmd 0x0001, smb.search_pattern OIhuyfAI.exe, level 260.
    #[test]
    fn capture_find_first2_oem() {
        let m = capture_msg("0000005bff534d423200000000180148000000000000000000000000e9de6e1798b000000f1a00000000040441000000000000000000001a00410000005b00010001001a003700000206000401000000004f496875796641492e6578650000");
        match trans2(&m) {
            Trans2Request::FindFirst2 {
                information_level,
                pattern,
                ..
            } => {
                assert_eq!(information_level, 260);
                assert_eq!(pattern.decode(), "OIhuyfAI.exe");
            }
            other => panic!("{other:?}"),
        }
    }

    /// i2_smb1_benign_upload frames 14 and 188 (Unicode): GET_DFS_REFERRAL for
    /// \192.0.2.20\ADMIN$ and FIND_FIRST2 for \* (tshark smb.file / smb.search_pattern).
    #[test]
    fn capture_unicode_dfs_and_find() {
        let m = capture_msg("0000006cff534d4232000000001843c8000000000000000000000000a6f0ee176f3104000f280000000200ffff000000000000000000002800440000006c00010010002b0000442003005c003100390032002e0030002e0032002e00320030005c00410044004d0049004e0024000000");
        assert_eq!(
            trans2(&m),
            Trans2Request::GetDfsReferral {
                max_referral_level: 3,
                file_name: SmbStr::new(&utf16z("\\192.0.2.20\\ADMIN$")[..36], true)
            }
        );
        let m = capture_msg("00000058ff534d4232000000001843c80000000000000000000000008af4ee176f310e000f120000000a00ffff0000000000000000000012004400000058000100010017000044201600560506000401000000005c002a0000000000");
        match trans2(&m) {
            Trans2Request::FindFirst2 {
                pattern,
                search_attributes,
                ..
            } => {
                assert_eq!(pattern.decode(), "\\*");
                assert_eq!(search_attributes, 0x16);
            }
            other => panic!("{other:?}"),
        }
    }

    /// raw_ntlm_in_smb frame 81: QUERY_PATH_INFORMATION of "\" at level 263.
    #[test]
    fn capture_query_path_info() {
        let m = capture_msg("0000004eff534d4232000000000801c800000000000000000000000001080100000815000f0a00000002000411000000000000000000000a00440000004e00010005000d000000000701000000005c000000");
        match trans2(&m) {
            Trans2Request::QueryPathInformation {
                information_level,
                path,
            } => {
                assert_eq!((information_level, path.decode().as_str()), (263, "\\"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn set_file_information_delete_and_rename() {
        let params = [0x05, 0x40, 0x02, 0x01, 0, 0]; // FID 0x4005, level 0x0102
        let r = Trans2Request::parse(sub::SET_FILE_INFORMATION, &params, 68, &[1, 0], 76, true)
            .unwrap();
        assert_eq!(
            r,
            Trans2Request::SetFileInformation {
                fid: 0x4005,
                information_level: 0x0102,
                info: SetInfo::Disposition {
                    delete_pending: true
                }
            }
        );
        let lvl = level::PASSTHROUGH_DISPOSITION.to_le_bytes();
        let params = [0x05, 0x40, lvl[0], lvl[1], 0, 0];
        let r =
            Trans2Request::parse(sub::SET_FILE_INFORMATION, &params, 68, &[0], 76, true).unwrap();
        assert!(matches!(
            r,
            Trans2Request::SetFileInformation {
                info: SetInfo::Disposition {
                    delete_pending: false
                },
                ..
            }
        ));

        let name = utf16z("\\new.exe");
        let mut data = vec![1, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&((name.len() - 2) as u32).to_le_bytes());
        data.extend_from_slice(&name);
        let lvl = level::PASSTHROUGH_RENAME.to_le_bytes();
        let params = [0x06, 0x40, lvl[0], lvl[1], 0, 0];
        match Trans2Request::parse(sub::SET_FILE_INFORMATION, &params, 68, &data, 76, true).unwrap()
        {
            Trans2Request::SetFileInformation {
                fid: 0x4006,
                info:
                    SetInfo::Rename {
                        replace_if_exists,
                        new_name,
                        ..
                    },
                ..
            } => {
                assert!(replace_if_exists);
                assert_eq!(new_name.decode(), "\\new.exe");
            }
            other => panic!("{other:?}"),
        }
        // Path form with an unaligned parameter block: the name at params+6 = 71 is odd, so a
        // pad byte precedes it.
        let mut params = vec![0x02, 0x01, 0, 0, 0, 0, 0];
        params.extend(utf16z("\\old.txt"));
        match Trans2Request::parse(sub::SET_PATH_INFORMATION, &params, 65, &[1], 90, true).unwrap()
        {
            Trans2Request::SetPathInformation { path, info, .. } => {
                assert_eq!(path.decode(), "\\old.txt");
                assert_eq!(
                    info,
                    SetInfo::Disposition {
                        delete_pending: true
                    }
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_parameters_are_errors_and_unknowns_pass() {
        assert!(Trans2Request::parse(sub::FIND_FIRST2, &[0; 5], 68, &[], 0, false).is_err());
        assert!(
            Trans2Request::parse(sub::SET_FILE_INFORMATION, &[0; 2], 68, &[], 0, false).is_err()
        );
        assert_eq!(
            Trans2Request::parse(0x0042, &[], 0, &[], 0, false).unwrap(),
            Trans2Request::Other { subcommand: 0x0042 }
        );
        // Rename with a name length beyond the data: clipped.
        let lvl = level::PASSTHROUGH_RENAME.to_le_bytes();
        let mut data = vec![0; 8];
        data.extend_from_slice(&u32::MAX.to_le_bytes());
        data.extend_from_slice(b"a\0");
        let params = [1, 0, lvl[0], lvl[1]];
        let r =
            Trans2Request::parse(sub::SET_FILE_INFORMATION, &params, 68, &data, 76, true).unwrap();
        assert!(
            matches!(r, Trans2Request::SetFileInformation { info: SetInfo::Rename { new_name, .. }, .. } if new_name.decode() == "a")
        );
    }
}
