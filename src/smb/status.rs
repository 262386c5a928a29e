//! NT status codes by name (MS-ERREF 2.3), the ones SMB servers actually send.

pub const STATUS_SUCCESS: u32 = 0x0000_0000;
pub const STATUS_PENDING: u32 = 0x0000_0103;
pub const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

const NAMES: &[(u32, &str)] = &[
    (0x0000_0000, "STATUS_SUCCESS"),
    (0x0000_0103, "STATUS_PENDING"),
    (0x0000_010B, "STATUS_NOTIFY_CLEANUP"),
    (0x0000_010C, "STATUS_NOTIFY_ENUM_DIR"),
    (0x8000_0005, "STATUS_BUFFER_OVERFLOW"),
    (0x8000_0006, "STATUS_NO_MORE_FILES"),
    (0xC000_0001, "STATUS_UNSUCCESSFUL"),
    (0xC000_0002, "STATUS_NOT_IMPLEMENTED"),
    (0xC000_0003, "STATUS_INVALID_INFO_CLASS"),
    (0xC000_0008, "STATUS_INVALID_HANDLE"),
    (0xC000_000D, "STATUS_INVALID_PARAMETER"),
    (0xC000_000F, "STATUS_NO_SUCH_FILE"),
    (0xC000_0010, "STATUS_INVALID_DEVICE_REQUEST"),
    (0xC000_0011, "STATUS_END_OF_FILE"),
    (0xC000_0016, "STATUS_MORE_PROCESSING_REQUIRED"),
    (0xC000_0022, "STATUS_ACCESS_DENIED"),
    (0xC000_0023, "STATUS_BUFFER_TOO_SMALL"),
    (0xC000_0033, "STATUS_OBJECT_NAME_INVALID"),
    (0xC000_0034, "STATUS_OBJECT_NAME_NOT_FOUND"),
    (0xC000_0035, "STATUS_OBJECT_NAME_COLLISION"),
    (0xC000_003A, "STATUS_OBJECT_PATH_NOT_FOUND"),
    (0xC000_0043, "STATUS_SHARING_VIOLATION"),
    (0xC000_0054, "STATUS_FILE_LOCK_CONFLICT"),
    (0xC000_0056, "STATUS_DELETE_PENDING"),
    (0xC000_0061, "STATUS_PRIVILEGE_NOT_HELD"),
    (0xC000_006A, "STATUS_WRONG_PASSWORD"),
    (0xC000_006D, "STATUS_LOGON_FAILURE"),
    (0xC000_006E, "STATUS_ACCOUNT_RESTRICTION"),
    (0xC000_0071, "STATUS_PASSWORD_EXPIRED"),
    (0xC000_0072, "STATUS_ACCOUNT_DISABLED"),
    (0xC000_009A, "STATUS_INSUFFICIENT_RESOURCES"),
    (0xC000_00BA, "STATUS_FILE_IS_A_DIRECTORY"),
    (0xC000_00BB, "STATUS_NOT_SUPPORTED"),
    (0xC000_00C9, "STATUS_NETWORK_NAME_DELETED"),
    (0xC000_00CC, "STATUS_BAD_NETWORK_NAME"),
    (0xC000_00D0, "STATUS_REQUEST_NOT_ACCEPTED"),
    (0xC000_0101, "STATUS_DIRECTORY_NOT_EMPTY"),
    (0xC000_0103, "STATUS_NOT_A_DIRECTORY"),
    (0xC000_0120, "STATUS_CANCELLED"),
    (0xC000_0128, "STATUS_FILE_CLOSED"),
    (0xC000_014B, "STATUS_PIPE_BROKEN"),
    (0xC000_0184, "STATUS_INVALID_DEVICE_STATE"),
    (0xC000_0203, "STATUS_USER_SESSION_DELETED"),
    (0xC000_0225, "STATUS_NOT_FOUND"),
    (0xC000_0257, "STATUS_PATH_NOT_COVERED"),
    (0xC000_035C, "STATUS_NETWORK_SESSION_EXPIRED"),
    (0xC000_A100, "STATUS_HASH_NOT_SUPPORTED"),
];

/// The status's name, or `0x%08x` for codes not in the table.
pub fn nt_status_name(code: u32) -> String {
    match NAMES.binary_search_by_key(&code, |&(c, _)| c) {
        Ok(i) => NAMES
            .get(i)
            .map(|(_, n)| (*n).to_string())
            .unwrap_or_default(),
        Err(_) => format!("0x{code:08x}"),
    }
}

/// Whether the status is an error (severity bits 11), as opposed to success/informational/warning.
pub fn is_error(code: u32) -> bool {
    code >> 30 == 3
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn table_is_sorted_and_names_resolve() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(nt_status_name(0), "STATUS_SUCCESS");
        assert_eq!(nt_status_name(0xC000_0022), "STATUS_ACCESS_DENIED");
        assert_eq!(nt_status_name(0xC0DE_0001), "0xc0de0001");
        assert!(is_error(0xC000_0016));
        assert!(!is_error(STATUS_BUFFER_OVERFLOW));
    }
}
