//! DOS-style SMB1 errors (class, code) — MS-CIFS 2.2.2.4 — by name, and their usual NT status
//! equivalents so that the state machine can treat both kinds of status alike.

pub const ERRDOS: u8 = 0x01;
pub const ERRSRV: u8 = 0x02;
pub const ERRHRD: u8 = 0x03;
pub const ERRCMD: u8 = 0xFF;

pub const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;
pub const STATUS_NO_MORE_FILES: u32 = 0x8000_0006;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

/// (class, code, name, NT equivalent or 0 when none is usual).
const DOS_ERRORS: &[(u8, u16, &str, u32)] = &[
    (ERRDOS, 1, "ERRbadfunc", 0xC000_0010),
    (ERRDOS, 2, "ERRbadfile", 0xC000_0034),
    (ERRDOS, 3, "ERRbadpath", 0xC000_003A),
    (ERRDOS, 4, "ERRnofids", 0xC000_011F),
    (ERRDOS, 5, "ERRnoaccess", 0xC000_0022),
    (ERRDOS, 6, "ERRbadfid", 0xC000_0008),
    (ERRDOS, 7, "ERRbadmcb", 0),
    (ERRDOS, 8, "ERRnomem", 0xC000_0017),
    (ERRDOS, 9, "ERRbadmem", 0),
    (ERRDOS, 10, "ERRbadenv", 0),
    (ERRDOS, 11, "ERRbadformat", 0),
    (ERRDOS, 12, "ERRbadaccess", 0xC000_0022),
    (ERRDOS, 13, "ERRbaddata", 0xC000_0003),
    (ERRDOS, 15, "ERRbaddrive", 0),
    (ERRDOS, 16, "ERRremcd", 0xC000_0055),
    (ERRDOS, 17, "ERRdiffdevice", 0xC000_00D4),
    (ERRDOS, 18, "ERRnofiles", STATUS_NO_MORE_FILES),
    (ERRDOS, 31, "ERRgeneral", 0xC000_0001),
    (ERRDOS, 32, "ERRbadshare", 0xC000_0043),
    (ERRDOS, 33, "ERRlock", 0xC000_0054),
    (ERRDOS, 38, "ERReof", 0xC000_0011),
    (ERRDOS, 50, "ERRunsup", 0xC000_00BB),
    (ERRDOS, 80, "ERRfilexists", 0xC000_0035),
    (ERRDOS, 87, "ERRinvalidparam", 0xC000_000D),
    (ERRDOS, 123, "ERRinvalidname", 0xC000_0033),
    (ERRDOS, 124, "ERRunknownlevel", 0xC000_0003),
    (ERRDOS, 131, "ERRinvalidseek", 0),
    (ERRDOS, 145, "ERRdirnotempty", 0xC000_0101),
    (ERRDOS, 183, "ERRalreadyexists", 0xC000_0035),
    (ERRDOS, 230, "ERRbadpipe", 0xC000_00AD),
    (ERRDOS, 231, "ERRpipebusy", 0xC000_00AE),
    (ERRDOS, 232, "ERRpipeclosing", 0xC000_00B1),
    (ERRDOS, 233, "ERRnotconnected", 0xC000_00B0),
    (ERRDOS, 234, "ERRmoredata", STATUS_BUFFER_OVERFLOW),
    (ERRDOS, 2142, "ERRunknownipc", 0),
    (ERRSRV, 1, "ERRerror", 0xC000_0001),
    (ERRSRV, 2, "ERRbadpw", 0xC000_006D),
    (ERRSRV, 4, "ERRaccess", 0xC000_0022),
    (ERRSRV, 5, "ERRinvtid", 0xC000_00C9),
    (ERRSRV, 6, "ERRinvnetname", 0xC000_00CC),
    (ERRSRV, 7, "ERRinvdevice", 0xC000_00CB),
    (ERRSRV, 49, "ERRqfull", 0),
    (ERRSRV, 50, "ERRqtoobig", 0),
    (ERRSRV, 51, "ERRqeof", 0),
    (ERRSRV, 52, "ERRinvpfid", 0),
    (ERRSRV, 64, "ERRsmbcmd", 0xC000_0002),
    (ERRSRV, 65, "ERRsrverror", 0xC000_0001),
    (ERRSRV, 67, "ERRfilespecs", 0),
    (ERRSRV, 69, "ERRbadpermits", 0),
    (ERRSRV, 71, "ERRsetattrmode", 0),
    (ERRSRV, 88, "ERRtimeout", 0xC000_00B5),
    (ERRSRV, 89, "ERRnoresource", 0xC000_009A),
    (ERRSRV, 90, "ERRtoomanyuids", 0xC000_0205),
    (ERRSRV, 91, "ERRbaduid", 0xC000_0203),
    (ERRSRV, 250, "ERRusempx", 0),
    (ERRSRV, 251, "ERRusestd", 0),
    (ERRSRV, 252, "ERRcontmpx", 0),
    (ERRSRV, 0xFFFF, "ERRnosupport", 0xC000_00BB),
    (ERRHRD, 19, "ERRnowrite", 0xC000_00A2),
    (ERRHRD, 20, "ERRbadunit", 0),
    (ERRHRD, 21, "ERRnotready", 0xC000_00A3),
    (ERRHRD, 22, "ERRbadcmd", 0),
    (ERRHRD, 23, "ERRdata", 0xC000_003E),
    (ERRHRD, 24, "ERRbadreq", 0),
    (ERRHRD, 25, "ERRseek", 0),
    (ERRHRD, 26, "ERRbadmedia", 0),
    (ERRHRD, 27, "ERRbadsector", 0),
    (ERRHRD, 28, "ERRnopaper", 0),
    (ERRHRD, 29, "ERRwrite", 0),
    (ERRHRD, 30, "ERRread", 0),
    (ERRHRD, 31, "ERRgeneral", 0xC000_0001),
    (ERRHRD, 32, "ERRbadshare", 0xC000_0043),
    (ERRHRD, 33, "ERRlock", 0xC000_0054),
    (ERRHRD, 34, "ERRwrongdisk", 0),
    (ERRHRD, 35, "ERRFCBUnavail", 0),
    (ERRHRD, 36, "ERRsharebufexc", 0),
    (ERRHRD, 39, "ERRdiskfull", 0xC000_007F),
];

fn class_name(class: u8) -> Option<&'static str> {
    match class {
        0 => Some("SUCCESS"),
        ERRDOS => Some("ERRDOS"),
        ERRSRV => Some("ERRSRV"),
        ERRHRD => Some("ERRHRD"),
        ERRCMD => Some("ERRCMD"),
        _ => None,
    }
}

fn lookup(class: u8, code: u16) -> Option<&'static (u8, u16, &'static str, u32)> {
    DOS_ERRORS.iter().find(|e| e.0 == class && e.1 == code)
}

/// "ERRDOS/ERRbadfile"; unknown pairs as "ERRDOS/0x1234" or "0x07/0x0001"; success as "SUCCESS".
pub fn dos_error_name(class: u8, code: u16) -> String {
    if class == 0 && code == 0 {
        return "SUCCESS".to_string();
    }
    match (class_name(class), lookup(class, code)) {
        (Some(c), Some(e)) => format!("{c}/{}", e.2),
        (Some(c), None) => format!("{c}/{code:#06x}"),
        (None, _) => format!("{class:#04x}/{code:#06x}"),
    }
}

/// The NT status a server would send instead of this DOS error, where one is usual.
pub fn dos_to_nt(class: u8, code: u16) -> Option<u32> {
    if class == 0 && code == 0 {
        return Some(0);
    }
    lookup(class, code).map(|e| e.3).filter(|&nt| nt != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_equivalents() {
        assert_eq!(dos_error_name(ERRDOS, 2), "ERRDOS/ERRbadfile");
        assert_eq!(dos_error_name(ERRDOS, 5), "ERRDOS/ERRnoaccess");
        assert_eq!(dos_error_name(ERRDOS, 32), "ERRDOS/ERRbadshare");
        assert_eq!(dos_error_name(ERRSRV, 2), "ERRSRV/ERRbadpw");
        assert_eq!(dos_error_name(ERRHRD, 32), "ERRHRD/ERRbadshare");
        assert_eq!(dos_error_name(ERRDOS, 0x1234), "ERRDOS/0x1234");
        assert_eq!(dos_error_name(0x42, 1), "0x42/0x0001");
        assert_eq!(dos_error_name(0, 0), "SUCCESS");
        assert_eq!(dos_to_nt(ERRDOS, 2), Some(0xC000_0034));
        assert_eq!(dos_to_nt(ERRDOS, 234), Some(STATUS_BUFFER_OVERFLOW));
        assert_eq!(dos_to_nt(ERRSRV, 91), Some(0xC000_0203));
        assert_eq!(dos_to_nt(ERRDOS, 7), None);
        assert_eq!(dos_to_nt(0, 0), Some(0));
    }

    #[test]
    fn table_has_no_duplicate_keys() {
        for (i, a) in DOS_ERRORS.iter().enumerate() {
            for b in &DOS_ERRORS[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "duplicate {:?}", (a.0, a.1));
            }
        }
    }
}
