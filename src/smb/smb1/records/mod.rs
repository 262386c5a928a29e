//! SMB1 records (MS-CIFS 2.2, MS-SMB 2.2) as nom 8 parsers over borrowed bytes: the one SMB1
//! parser, used by the state machine ([`super::state::Smb1State`]).
//!
//! Layers, as on the wire: the 32-byte header ([`Header::parse`]), then the blocks of one message
//! (WordCount, parameter words, ByteCount, data) followed along the AndX chain
//! ([`andx::AndxChain`]), then per command a typed record read from a block: the parameter words
//! by a nom parser run through [`words`] (which checks the WordCount first), the data block's
//! strings by [`strings::StrCursor`] (Unicode alignment counts from the header start), and the
//! sections a block names by offset (transaction parameters and data, large READ/WRITE data)
//! clipped to the message by [`crate::wire::clipped`] once checked not to point back into the
//! header or words.
//!
//! Every parser takes `msg` starting at the `0xFF 'SMB'` magic (NetBIOS framing removed), since
//! AndX offsets, data offsets and Unicode alignment all count from there. A parser's error is a
//! typed [`Smb1Error`], which the state machine turns into an anomaly event.

pub mod andx;
pub mod create;
pub mod negotiate;
pub mod paths;
pub mod rw;
pub mod session_setup;
pub mod strings;
pub mod trans;
pub mod trans2;
pub mod tree;

use self::andx::Block;
use super::dos_error;
use crate::wire::num::{le_u16, le_u32, le_u8};
use nom::bytes::complete::{tag, take};
use nom::{IResult, Parser};

pub const SMB1_HEADER_LEN: usize = 32;
pub const SMB1_MAGIC: [u8; 4] = [0xFF, b'S', b'M', b'B'];

/// FLAGS: the message is a reply.
pub const FLAGS_REPLY: u8 = 0x80;
/// FLAGS2: strings are UTF-16LE.
pub const FLAGS2_UNICODE: u16 = 0x8000;
/// FLAGS2: the status field is a 32-bit NT status (else DOS class/code).
pub const FLAGS2_NT_STATUS: u16 = 0x4000;
/// FLAGS2: extended security (SPNEGO / NTLMSSP blobs) in session setup.
pub const FLAGS2_EXTENDED_SECURITY: u16 = 0x0800;
/// FLAGS2: messages are signed.
pub const FLAGS2_SMB_SECURITY_SIGNATURE: u16 = 0x0004;

/// SMB1 command codes (MS-CIFS 2.2.2.1) that matter here.
pub mod cmd {
    pub const CREATE_DIRECTORY: u8 = 0x00;
    pub const DELETE_DIRECTORY: u8 = 0x01;
    pub const OPEN: u8 = 0x02;
    pub const CREATE: u8 = 0x03;
    pub const CLOSE: u8 = 0x04;
    pub const DELETE: u8 = 0x06;
    pub const RENAME: u8 = 0x07;
    pub const READ: u8 = 0x0A;
    pub const WRITE: u8 = 0x0B;
    pub const LOCKING_ANDX: u8 = 0x24;
    pub const TRANSACTION: u8 = 0x25;
    pub const TRANSACTION_SECONDARY: u8 = 0x26;
    pub const ECHO: u8 = 0x2B;
    pub const OPEN_ANDX: u8 = 0x2D;
    pub const READ_ANDX: u8 = 0x2E;
    pub const WRITE_ANDX: u8 = 0x2F;
    pub const TRANSACTION2: u8 = 0x32;
    pub const TRANSACTION2_SECONDARY: u8 = 0x33;
    pub const FIND_CLOSE2: u8 = 0x34;
    pub const TREE_DISCONNECT: u8 = 0x71;
    pub const NEGOTIATE: u8 = 0x72;
    pub const SESSION_SETUP_ANDX: u8 = 0x73;
    pub const LOGOFF_ANDX: u8 = 0x74;
    pub const TREE_CONNECT_ANDX: u8 = 0x75;
    pub const NT_TRANSACT: u8 = 0xA0;
    pub const NT_TRANSACT_SECONDARY: u8 = 0xA1;
    pub const NT_CREATE_ANDX: u8 = 0xA2;
    pub const NT_CANCEL: u8 = 0xA4;
    pub const NT_RENAME: u8 = 0xA5;
    /// AndXCommand value meaning "no further command".
    pub const NO_ANDX: u8 = 0xFF;

    /// Commands whose parameter block starts with AndXCommand / AndXReserved / AndXOffset.
    pub fn is_andx(c: u8) -> bool {
        matches!(
            c,
            LOCKING_ANDX
                | OPEN_ANDX
                | READ_ANDX
                | WRITE_ANDX
                | SESSION_SETUP_ANDX
                | LOGOFF_ANDX
                | TREE_CONNECT_ANDX
                | NT_CREATE_ANDX
        )
    }

    /// Zeek-style lower-case command name, for logs and anomaly details.
    pub fn name(c: u8) -> &'static str {
        match c {
            CREATE_DIRECTORY => "create_directory",
            DELETE_DIRECTORY => "delete_directory",
            OPEN => "open",
            CREATE => "create",
            CLOSE => "close",
            DELETE => "delete",
            RENAME => "rename",
            READ => "read",
            WRITE => "write",
            LOCKING_ANDX => "locking_andx",
            TRANSACTION => "transaction",
            TRANSACTION_SECONDARY => "transaction_secondary",
            ECHO => "echo",
            OPEN_ANDX => "open_andx",
            READ_ANDX => "read_andx",
            WRITE_ANDX => "write_andx",
            TRANSACTION2 => "transaction2",
            TRANSACTION2_SECONDARY => "transaction2_secondary",
            FIND_CLOSE2 => "find_close2",
            TREE_DISCONNECT => "tree_disconnect",
            NEGOTIATE => "negotiate",
            SESSION_SETUP_ANDX => "session_setup_andx",
            LOGOFF_ANDX => "logoff_andx",
            TREE_CONNECT_ANDX => "tree_connect_andx",
            NT_TRANSACT => "nt_transact",
            NT_TRANSACT_SECONDARY => "nt_transact_secondary",
            NT_CREATE_ANDX => "nt_create_andx",
            NT_CANCEL => "nt_cancel",
            NT_RENAME => "nt_rename",
            _ => "unknown",
        }
    }
}

/// Why an SMB1 message (or one block of it) did not parse. The state machine turns the AndX
/// variants into `AnomalyKind::AndxLoop` and the rest into `AnomalyKind::Malformed`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Smb1Error {
    #[error("message of {0} bytes is shorter than the 32-byte SMB1 header")]
    ShortHeader(usize),
    #[error("no 0xFF 'SMB' magic")]
    BadMagic,
    #[error("{command:#04x}: parameter block at offset {offset} runs past the message end {len}")]
    TruncatedBlock {
        command: u8,
        offset: usize,
        len: usize,
    },
    #[error("AndX offset {next} does not move forward from block at {current}")]
    AndxBackward { current: usize, next: usize },
    #[error("AndX offset {next} is past the message end {len}")]
    AndxPastEnd { next: usize, len: usize },
    #[error("AndX chain longer than MAX_ANDX_DEPTH blocks")]
    AndxTooDeep,
    #[error("{command:#04x}: word count {got} not understood")]
    WordCount { command: u8, got: u8 },
    #[error("{command:#04x}: {what} out of bounds")]
    OutOfBounds { command: u8, what: &'static str },
}

impl Smb1Error {
    /// Whether this is a broken AndX chain (an `AndxLoop` anomaly) rather than a malformed block.
    pub fn is_andx_chain(&self) -> bool {
        matches!(
            self,
            Smb1Error::AndxBackward { .. } | Smb1Error::AndxPastEnd { .. } | Smb1Error::AndxTooDeep
        )
    }
}

/// The header's 4-byte status, read per FLAGS2_NT_STATUS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Nt(u32),
    Dos { class: u8, code: u16 },
}

impl Status {
    pub fn is_success(self) -> bool {
        match self {
            Status::Nt(s) => s == 0,
            Status::Dos { class, code } => class == 0 && code == 0,
        }
    }

    /// The NT status this stands for: the value itself, or the usual NT equivalent of a DOS
    /// (class, code) pair; `None` for an unmapped DOS error.
    pub fn as_nt(self) -> Option<u32> {
        match self {
            Status::Nt(s) => Some(s),
            Status::Dos { class, code } => dos_error::dos_to_nt(class, code),
        }
    }

    /// More data is waiting (NT STATUS_BUFFER_OVERFLOW or DOS ERRDOS/ERRmoredata): a pipe
    /// message was larger than the read or transaction buffer, and the data is still valid.
    pub fn is_buffer_overflow(self) -> bool {
        self.as_nt() == Some(dos_error::STATUS_BUFFER_OVERFLOW)
    }

    /// Whether the response body is to be parsed: success, or a warning whose body carries
    /// data (buffer overflow, more processing required in session setup).
    pub fn carries_body(self) -> bool {
        match self.as_nt() {
            Some(s) => {
                s == 0
                    || s == dos_error::STATUS_BUFFER_OVERFLOW
                    || s == dos_error::STATUS_MORE_PROCESSING_REQUIRED
            }
            None => false,
        }
    }

    /// Printable form: DOS errors by name ("ERRDOS/ERRbadfile"), NT status as "0xc0000022"
    /// (the shared NT status-name table names them later).
    pub fn display(self) -> String {
        match self {
            Status::Nt(s) => format!("{s:#010x}"),
            Status::Dos { class, code } => dos_error::dos_error_name(class, code),
        }
    }
}

/// The 32-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub command: u8,
    /// Read per FLAGS2_NT_STATUS.
    pub status: Status,
    pub flags: u8,
    pub flags2: u16,
    pub pid_high: u16,
    /// The signature when signing is active.
    pub security_features: [u8; 8],
    pub tid: u16,
    pub pid_low: u16,
    pub uid: u16,
    pub mid: u16,
}

/// The 4 status bytes: a 32-bit NT status, or DOS ErrorClass, reserved byte, ErrorCode.
fn status(nt: bool) -> impl Fn(&[u8]) -> IResult<&[u8], Status> {
    move |i| {
        if nt {
            le_u32.map(Status::Nt).parse(i)
        } else {
            (le_u8, le_u8, le_u16)
                .map(|(class, _, code)| Status::Dos { class, code })
                .parse(i)
        }
    }
}

/// The header (MS-CIFS 2.2.3.1); the rest is the first block.
pub fn parse_header(msg: &[u8]) -> IResult<&[u8], Header> {
    let (i, (_, command, status_bytes, flags, flags2, pid_high, signature)) = (
        tag(&SMB1_MAGIC[..]),
        le_u8,
        take(4usize),
        le_u8,
        le_u16,
        le_u16,
        take(8usize),
    )
        .parse(msg)?;
    let (i, (_reserved, tid, pid_low, uid, mid)) =
        (le_u16, le_u16, le_u16, le_u16, le_u16).parse(i)?;
    let (_, status) = status(flags2 & FLAGS2_NT_STATUS != 0).parse(status_bytes)?;
    let mut security_features = [0u8; 8];
    security_features.copy_from_slice(signature);
    Ok((
        i,
        Header {
            command,
            status,
            flags,
            flags2,
            pid_high,
            security_features,
            tid,
            pid_low,
            uid,
            mid,
        },
    ))
}

impl Header {
    /// [`parse_header`] with the error the state machine reports.
    pub fn parse(msg: &[u8]) -> Result<Header, Smb1Error> {
        if msg.len() < SMB1_HEADER_LEN {
            return Err(Smb1Error::ShortHeader(msg.len()));
        }
        crate::wire::parsed(parse_header(msg)).ok_or(Smb1Error::BadMagic)
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAGS_REPLY != 0
    }
    pub fn is_unicode(&self) -> bool {
        self.flags2 & FLAGS2_UNICODE != 0
    }
    pub fn is_extended_security(&self) -> bool {
        self.flags2 & FLAGS2_EXTENDED_SECURITY != 0
    }
    /// The 32-bit process id (PIDHigh << 16 | PIDLow) that, with the MID, matches a response to
    /// its request.
    pub fn pid(&self) -> u32 {
        (u32::from(self.pid_high) << 16) | u32::from(self.pid_low)
    }
}

/// The WordCounts a command's parser accepts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Accept<'c> {
    OneOf(&'c [u8]),
    AtLeast(u8),
}

impl Accept<'_> {
    fn admits(self, word_count: u8) -> bool {
        match self {
            Accept::OneOf(counts) => counts.contains(&word_count),
            Accept::AtLeast(min) => word_count >= min,
        }
    }
}

/// Runs the nom parser `fields` over `block`'s parameter words once `accept` admits its
/// WordCount. A WordCount not admitted, or words too short for `fields`, is
/// `Smb1Error::WordCount`.
pub(crate) fn words<'a, O>(
    block: &Block<'a>,
    accept: Accept<'_>,
    mut fields: impl Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
) -> Result<O, Smb1Error> {
    let wrong = Smb1Error::WordCount {
        command: block.command,
        got: block.word_count,
    };
    if !accept.admits(block.word_count) {
        return Err(wrong);
    }
    fields.parse(block.words).map(|(_, o)| o).map_err(|_| wrong)
}

/// [`words`] for a response: `Ok(None)` for an error response (WordCount 0).
pub(crate) fn response_words<'a, O>(
    block: &Block<'a>,
    accept: Accept<'_>,
    fields: impl Parser<&'a [u8], Output = O, Error = nom::error::Error<&'a [u8]>>,
) -> Result<Option<O>, Smb1Error> {
    if block.word_count == 0 {
        return Ok(None);
    }
    words(block, accept, fields).map(Some)
}

/// AndXCommand, AndXReserved, AndXOffset: the first two words of every AndX block, which the
/// chain ([`andx::AndxChain`]) follows and the command parsers skip.
pub(crate) fn andx_header(i: &[u8]) -> IResult<&[u8], (u8, u16)> {
    (le_u8, le_u8, le_u16)
        .map(|(command, _, offset)| (command, offset))
        .parse(i)
}

/// A 32-bit count sent as two 16-bit halves (DataLengthHigh:DataLength and the like).
pub(crate) fn join_u16(high: u16, low: u16) -> u32 {
    (u32::from(high) << 16) | u32::from(low)
}

/// A section that `block` names by (offset from the header start, count): Err when a non-empty
/// section starts inside the header or parameter words; clipped to the message otherwise (a
/// short slice means the message was cut, never an out-of-bounds read).
pub(crate) fn section<'a>(
    msg: &'a [u8],
    block: &Block<'a>,
    what: &'static str,
    offset: usize,
    count: usize,
) -> Result<&'a [u8], Smb1Error> {
    if count > 0 && offset < block.bytes_offset {
        return Err(Smb1Error::OutOfBounds {
            command: block.command,
            what,
        });
    }
    Ok(crate::wire::clipped(msg, offset, count))
}

/// The data block of `block` as a string cursor over `msg` (Unicode alignment counts from the
/// header start), ending where ByteCount says.
pub(crate) fn data_block<'a>(msg: &'a [u8], block: &Block<'a>) -> strings::StrCursor<'a> {
    strings::StrCursor::new(msg, block.bytes_offset, block.bytes_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, first_block, MsgBuilder, W};
    use crate::wire::num::le_u16;

    fn msg(command: u8, words: &[u8], bytes: &[u8]) -> Vec<u8> {
        MsgBuilder::request(command)
            .words(words)
            .bytes(bytes)
            .build()
    }

    #[test]
    fn word_count_checks() {
        let m = msg(cmd::CLOSE, &W::new().u16(0x1234).u32(0).done(), &[]);
        let (_, b) = first_block(&m);
        assert_eq!(b.word_count, 3);
        assert_eq!(words(&b, Accept::OneOf(&[3]), le_u16), Ok(0x1234));
        assert_eq!(words(&b, Accept::AtLeast(3), le_u16), Ok(0x1234));
        let wrong = Err(Smb1Error::WordCount {
            command: cmd::CLOSE,
            got: 3,
        });
        assert_eq!(words(&b, Accept::AtLeast(4), le_u16), wrong);
        assert_eq!(words(&b, Accept::OneOf(&[2, 4]), le_u16), wrong);
        assert_eq!(
            response_words(&b, Accept::OneOf(&[4]), le_u16),
            wrong.clone().map(Some)
        );
        assert_eq!(
            response_words(&b, Accept::OneOf(&[3]), le_u16),
            Ok(Some(0x1234))
        );
        // Fields longer than the words admitted are an error, never a read of ByteCount.
        assert_eq!(
            words(&b, Accept::OneOf(&[3]), (le_u16, le_u16, le_u16, le_u16)),
            wrong.map(|_| (0, 0, 0, 0))
        );

        // An error response: WordCount 0.
        let m = msg(cmd::CLOSE, &[], &[]);
        let (_, b) = first_block(&m);
        assert_eq!(response_words(&b, Accept::OneOf(&[3]), le_u16), Ok(None));
        assert!(words(&b, Accept::AtLeast(1), le_u16).is_err());
    }

    #[test]
    fn sections_inside_words_or_truncated() {
        let m = msg(cmd::TRANSACTION, &W::new().u16(0).done(), &[1, 2, 3, 4]);
        let (_, b) = first_block(&m);
        let at = b.bytes_offset;
        assert_eq!(section(&m, &b, "data offset", at + 1, 2).unwrap(), &[2, 3]);
        // Lying count: clipped to the message, never past it.
        assert_eq!(
            section(&m, &b, "data offset", at + 2, 60_000).unwrap(),
            &[3, 4]
        );
        assert_eq!(
            section(&m, &b, "data offset", usize::MAX, usize::MAX).unwrap(),
            &[] as &[u8]
        );
        // Pointing back into the header or words is an error unless the section is empty.
        assert!(matches!(
            section(&m, &b, "data offset", 4, 2),
            Err(Smb1Error::OutOfBounds {
                command: cmd::TRANSACTION,
                what: "data offset"
            })
        ));
        assert_eq!(section(&m, &b, "data offset", 4, 0).unwrap(), &[] as &[u8]);
    }

    #[test]
    fn every_truncated_header_is_an_error() {
        let m = MsgBuilder::request(cmd::NEGOTIATE).build();
        for cut in 0..SMB1_HEADER_LEN {
            assert_eq!(Header::parse(&m[..cut]), Err(Smb1Error::ShortHeader(cut)));
        }
        assert!(Header::parse(&m[..SMB1_HEADER_LEN]).is_ok());
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            Header::parse(&[0xFF, b'S', b'M', b'B']).unwrap_err(),
            Smb1Error::ShortHeader(4)
        );
        let mut m = MsgBuilder::request(cmd::NEGOTIATE).build();
        m[0] = 0xFE;
        assert_eq!(Header::parse(&m).unwrap_err(), Smb1Error::BadMagic);
    }

    #[test]
    fn hand_built_fields() {
        let m = MsgBuilder::request(cmd::WRITE_ANDX)
            .ids(0x0102, 0x0304, 0x0506_0708, 0x090A)
            .flags2(FLAGS2_UNICODE)
            .dos_status(0x01, 0x0005)
            .build();
        let h = Header::parse(&m).unwrap();
        assert_eq!(h.command, cmd::WRITE_ANDX);
        assert_eq!(
            (h.tid, h.uid, h.pid(), h.mid),
            (0x0102, 0x0304, 0x0506_0708, 0x090A)
        );
        assert_eq!((h.pid_high, h.pid_low), (0x0506, 0x0708));
        assert!(h.is_unicode());
        assert!(!h.is_response());
        assert_eq!(h.status, Status::Dos { class: 1, code: 5 });
        assert_eq!(h.status.display(), "ERRDOS/ERRnoaccess");
        assert_eq!(h.status.as_nt(), Some(0xC000_0022));
        assert!(!h.status.is_success());
    }

    /// i1_smb1_psexec frame 18, the NT_CREATE_ANDX response; tshark: smb.tid 63122, smb.pid
    /// 5998, smb.uid 45208, smb.mid 0, smb.flags2 0x4803 (NT status, not Unicode).
    #[test]
    fn capture_header_i1_frame18() {
        let m = capture_msg("00000087ff534d42a20000000088034800000000000000000000000092f66e1798b000002aff00000000e66801000000000000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000200ff0500000000000000000000000000000000000000000000000000ff011f009b0112000000");
        let h = Header::parse(&m).unwrap();
        assert_eq!(h.command, cmd::NT_CREATE_ANDX);
        assert!(h.is_response());
        assert!(!h.is_unicode());
        assert!(h.is_extended_security());
        assert_eq!(h.flags2, 0x4803);
        assert_eq!(h.status, Status::Nt(0));
        assert!(h.status.is_success());
        assert_eq!(h.tid, 0xF692);
        assert_eq!(h.pid_low, 0x176E);
        assert_eq!(h.uid, 0xB098);
        assert_eq!(h.mid, 0);
    }
}
