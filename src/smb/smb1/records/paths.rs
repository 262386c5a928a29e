//! Path-based commands: DELETE (0x06), RENAME (0x07), NT_RENAME (0xA5), CREATE_DIRECTORY
//! (0x00), DELETE_DIRECTORY (0x01). Their data block is a sequence of BufferFormat 0x04 +
//! string.

use super::andx::Block;
use super::strings::{SmbStr, StrCursor};
use super::{cmd, data_block, words, Accept, Smb1Error};
use crate::wire::num::le_u16;
use nom::combinator::{cond, success};

const BUFFER_FORMAT_ASCII: u8 = 0x04;

/// NT_RENAME information levels.
pub const SMB_NT_RENAME_RENAME_FILE: u16 = 0x0104;
pub const SMB_NT_RENAME_SET_LINK_INFO: u16 = 0x0103;
pub const SMB_NT_RENAME_MOVE_CLUSTER_INFO: u16 = 0x0102;

fn buffer_string<'a>(
    c: &mut StrCursor<'a>,
    unicode: bool,
    command: u8,
) -> Result<SmbStr<'a>, Smb1Error> {
    if c.take(1) != [BUFFER_FORMAT_ASCII] {
        return Err(Smb1Error::OutOfBounds {
            command,
            what: "buffer format",
        });
    }
    Ok(c.string(unicode))
}

/// DELETE: the file name (wildcards allowed) and the search attributes.
#[derive(Clone, Debug)]
pub struct DeleteRequest<'a> {
    pub search_attributes: u16,
    pub name: SmbStr<'a>,
}

impl<'a> DeleteRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<DeleteRequest<'a>, Smb1Error> {
        let search_attributes = words(block, Accept::OneOf(&[1]), le_u16)?;
        let name = buffer_string(&mut data_block(msg, block), unicode, block.command)?;
        Ok(DeleteRequest {
            search_attributes,
            name,
        })
    }
}

/// CREATE_DIRECTORY / DELETE_DIRECTORY: the directory name.
pub fn directory_name<'a>(
    msg: &'a [u8],
    block: &Block<'a>,
    unicode: bool,
) -> Result<SmbStr<'a>, Smb1Error> {
    words(block, Accept::OneOf(&[0]), success(()))?;
    buffer_string(&mut data_block(msg, block), unicode, block.command)
}

/// RENAME and NT_RENAME: old and new names. `information_level` is NT_RENAME's (0 for RENAME).
#[derive(Clone, Debug)]
pub struct RenameRequest<'a> {
    pub search_attributes: u16,
    pub information_level: u16,
    pub old_name: SmbStr<'a>,
    pub new_name: SmbStr<'a>,
}

impl<'a> RenameRequest<'a> {
    pub fn parse(
        msg: &'a [u8],
        block: &Block<'a>,
        unicode: bool,
    ) -> Result<RenameRequest<'a>, Smb1Error> {
        let counts: &[u8] = match block.command {
            cmd::RENAME => &[1],
            cmd::NT_RENAME => &[4],
            _ => &[],
        };
        let nt = block.command == cmd::NT_RENAME;
        let (search_attributes, information_level) =
            words(block, Accept::OneOf(counts), (le_u16, cond(nt, le_u16)))?;
        let mut c = data_block(msg, block);
        let old_name = buffer_string(&mut c, unicode, block.command)?;
        let new_name = buffer_string(&mut c, unicode, block.command)?;
        Ok(RenameRequest {
            search_attributes,
            information_level: information_level.unwrap_or(0),
            old_name,
            new_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, first_block, utf16z, MsgBuilder};

    /// i1_smb1_psexec frame 122: impacket deletes its binary from ADMIN$ (tshark smb.file
    /// OIhuyfAI.exe; search attributes 0x0026).
    #[test]
    fn capture_delete_i1() {
        let m = capture_msg("00000034ff534d4206000000001801480000000000000000000000000b256e1798b000000126000f00044f496875796641492e6578650000");
        let (h, b) = first_block(&m);
        let r = DeleteRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.name.decode(), "OIhuyfAI.exe");
        assert_eq!(r.search_attributes, 0x0026);
    }

    /// Unicode RENAME: bytes start at 32+1+2+2 = 37 (odd), BufferFormat at 37, old name at 38;
    /// the second BufferFormat lands on an odd offset, so a pad byte precedes the new name.
    #[test]
    fn hand_built_unicode_rename_with_pad() {
        let mut bytes = vec![BUFFER_FORMAT_ASCII];
        bytes.extend(utf16z("\\a.txt"));
        bytes.push(BUFFER_FORMAT_ASCII);
        bytes.push(0); // pad
        bytes.extend(utf16z("\\b.exe"));
        let m = MsgBuilder::request(cmd::RENAME)
            .unicode()
            .words(&[0x16, 0])
            .bytes(&bytes)
            .build();
        let (h, b) = first_block(&m);
        let r = RenameRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(r.old_name.decode(), "\\a.txt");
        assert_eq!(r.new_name.decode(), "\\b.exe");

        let mut words = vec![0x16, 0];
        words.extend_from_slice(&SMB_NT_RENAME_RENAME_FILE.to_le_bytes());
        words.extend_from_slice(&[0; 4]);
        let m = MsgBuilder::request(cmd::NT_RENAME)
            .words(&words)
            .bytes(b"\x04old\0\x04new\0")
            .build();
        let (h, b) = first_block(&m);
        let r = RenameRequest::parse(&m, &b, h.is_unicode()).unwrap();
        assert_eq!(
            (r.old_name.decode().as_str(), r.new_name.decode().as_str()),
            ("old", "new")
        );
        assert_eq!(r.information_level, SMB_NT_RENAME_RENAME_FILE);
    }

    #[test]
    fn directories_and_bad_buffer_formats() {
        let m = MsgBuilder::request(cmd::CREATE_DIRECTORY)
            .bytes(b"\x04\\newdir\0")
            .build();
        let (h, b) = first_block(&m);
        assert_eq!(
            directory_name(&m, &b, h.is_unicode()).unwrap().decode(),
            "\\newdir"
        );
        let m = MsgBuilder::request(cmd::DELETE)
            .words(&[0, 0])
            .bytes(b"\x05x\0")
            .build();
        let (h, b) = first_block(&m);
        assert!(DeleteRequest::parse(&m, &b, h.is_unicode()).is_err());
        let m = MsgBuilder::request(cmd::RENAME)
            .words(&[0, 0])
            .bytes(b"\x04x\0")
            .build();
        let (h, b) = first_block(&m);
        assert!(RenameRequest::parse(&m, &b, h.is_unicode()).is_err());
    }
}
