//! The 32-byte SMB1 header (MS-CIFS 2.2.3.1) and the message-level error type.

use super::dos_error;
use super::wire::{u16_at, u32_at, u8_at};

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

/// A checked view of the 32-byte header; accessors cannot panic.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    raw: &'a [u8],
}

impl<'a> Header<'a> {
    /// `msg` is one SMB1 message (NetBIOS framing removed).
    pub fn parse(msg: &'a [u8]) -> Result<Header<'a>, Smb1Error> {
        let raw = msg
            .get(..SMB1_HEADER_LEN)
            .ok_or(Smb1Error::ShortHeader(msg.len()))?;
        if raw.get(..4) != Some(&SMB1_MAGIC[..]) {
            return Err(Smb1Error::BadMagic);
        }
        Ok(Header { raw })
    }

    pub fn command(&self) -> u8 {
        u8_at(self.raw, 4)
    }
    pub fn raw_status(&self) -> u32 {
        u32_at(self.raw, 5)
    }
    pub fn status(&self) -> Status {
        if self.flags2() & FLAGS2_NT_STATUS != 0 {
            Status::Nt(self.raw_status())
        } else {
            Status::Dos {
                class: u8_at(self.raw, 5),
                code: u16_at(self.raw, 7),
            }
        }
    }
    pub fn flags(&self) -> u8 {
        u8_at(self.raw, 9)
    }
    pub fn flags2(&self) -> u16 {
        u16_at(self.raw, 10)
    }
    pub fn is_response(&self) -> bool {
        self.flags() & FLAGS_REPLY != 0
    }
    pub fn is_unicode(&self) -> bool {
        self.flags2() & FLAGS2_UNICODE != 0
    }
    pub fn is_extended_security(&self) -> bool {
        self.flags2() & FLAGS2_EXTENDED_SECURITY != 0
    }
    pub fn pid_high(&self) -> u16 {
        u16_at(self.raw, 12)
    }
    /// Bytes 14..22: the signature when signing is active.
    pub fn security_features(&self) -> &'a [u8] {
        self.raw.get(14..22).unwrap_or(&[])
    }
    pub fn tid(&self) -> u16 {
        u16_at(self.raw, 24)
    }
    pub fn pid_low(&self) -> u16 {
        u16_at(self.raw, 26)
    }
    /// The 32-bit process id (PIDHigh << 16 | PIDLow) that, with the MID, matches a response to
    /// its request.
    pub fn pid(&self) -> u32 {
        (u32::from(self.pid_high()) << 16) | u32::from(self.pid_low())
    }
    pub fn uid(&self) -> u16 {
        u16_at(self.raw, 28)
    }
    pub fn mid(&self) -> u16 {
        u16_at(self.raw, 30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::smb1::test_util::{capture_msg, MsgBuilder};

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
        assert_eq!(h.command(), cmd::WRITE_ANDX);
        assert_eq!(
            (h.tid(), h.uid(), h.pid(), h.mid()),
            (0x0102, 0x0304, 0x0506_0708, 0x090A)
        );
        assert_eq!((h.pid_high(), h.pid_low()), (0x0506, 0x0708));
        assert!(h.is_unicode());
        assert!(!h.is_response());
        assert_eq!(h.status(), Status::Dos { class: 1, code: 5 });
        assert_eq!(h.status().display(), "ERRDOS/ERRnoaccess");
        assert_eq!(h.status().as_nt(), Some(0xC000_0022));
        assert!(!h.status().is_success());
    }

    /// i1_smb1_psexec frame 18, the NT_CREATE_ANDX response; tshark: smb.tid 63122, smb.pid
    /// 5998, smb.uid 45208, smb.mid 0, smb.flags2 0x4803 (NT status, not Unicode).
    #[test]
    fn capture_header_i1_frame18() {
        let m = capture_msg("00000087ff534d42a20000000088034800000000000000000000000092f66e1798b000002aff00000000e66801000000000000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000000000000200ff0500000000000000000000000000000000000000000000000000ff011f009b0112000000");
        let h = Header::parse(&m).unwrap();
        assert_eq!(h.command(), cmd::NT_CREATE_ANDX);
        assert!(h.is_response());
        assert!(!h.is_unicode());
        assert!(h.is_extended_security());
        assert_eq!(h.flags2(), 0x4803);
        assert_eq!(h.status(), Status::Nt(0));
        assert!(h.status().is_success());
        assert_eq!(h.tid(), 0xF692);
        assert_eq!(h.pid_low(), 0x176E);
        assert_eq!(h.uid(), 0xB098);
        assert_eq!(h.mid(), 0);
    }
}
