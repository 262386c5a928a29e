//! Dropping root once the capture sockets and the outputs are open.

use std::ffi::CString;
use std::fmt;

use super::LiveError;

/// What [`drop_privileges`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrivilegeDrop {
    /// Not running as root: nothing to drop.
    NotRoot,
    /// Now running as this user and group, with no supplementary groups.
    Dropped { user: String, uid: u32, gid: u32 },
    /// The user does not exist here; still root. The caller should warn.
    UserMissing { user: String },
}

impl fmt::Display for PrivilegeDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivilegeDrop::NotRoot => write!(f, "not root, privileges unchanged"),
            PrivilegeDrop::Dropped { user, uid, gid } => {
                write!(f, "dropped privileges to {user} (uid {uid}, gid {gid})")
            }
            PrivilegeDrop::UserMissing { user } => {
                write!(
                    f,
                    "warning: user {user:?} does not exist, still running as root"
                )
            }
        }
    }
}

/// Once the interface is open the sensor needs no privilege: switch to `user` (group: the user's
/// primary group; supplementary groups: none). Call it after opening the capture and any output
/// files, and before starting worker threads. Verifies that root cannot be regained.
pub fn drop_privileges(user: &str) -> Result<PrivilegeDrop, LiveError> {
    let err = |detail: String| LiveError::Privileges {
        user: user.to_string(),
        detail,
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(PrivilegeDrop::NotRoot);
    }
    let Some((uid, gid)) = lookup_user(user).map_err(err)? else {
        return Ok(PrivilegeDrop::UserMissing {
            user: user.to_string(),
        });
    };
    // SAFETY: plain syscalls on integers; order is groups, gid, uid (after setuid the others
    // would be refused).
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(err(format!(
                "setgroups: {}",
                std::io::Error::last_os_error()
            )));
        }
        if libc::setgid(gid) != 0 {
            return Err(err(format!(
                "setgid({gid}): {}",
                std::io::Error::last_os_error()
            )));
        }
        if libc::setuid(uid) != 0 {
            return Err(err(format!(
                "setuid({uid}): {}",
                std::io::Error::last_os_error()
            )));
        }
        if uid != 0 && libc::setuid(0) == 0 {
            return Err(err("could regain root after setuid".to_string()));
        }
    }
    Ok(PrivilegeDrop::Dropped {
        user: user.to_string(),
        uid,
        gid,
    })
}

/// Whether `user` exists here (`--user` is checked before anything is opened).
pub fn user_exists(user: &str) -> Result<bool, String> {
    lookup_user(user).map(|u| u.is_some())
}

/// (uid, primary gid) of `user`, `None` if there is no such user.
fn lookup_user(user: &str) -> Result<Option<(u32, u32)>, String> {
    let name = CString::new(user).map_err(|_| "user name contains NUL".to_string())?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r writes only into `pwd` and `buf` (whose length we pass) and sets
    // `result` to null or to `&pwd`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 {
            return Err(format!(
                "getpwnam_r: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() {
            return Ok(None);
        }
        Ok(Some((pwd.pw_uid, pwd.pw_gid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_reported_not_fatal() {
        assert_eq!(lookup_user("no-such-user-psexec-sensor-xyz"), Ok(None));
        assert_eq!(lookup_user("root"), Ok(Some((0, 0))));
        assert!(lookup_user("a\0b").is_err());
        assert_eq!(user_exists("root"), Ok(true));
        assert_eq!(user_exists("no-such-user-psexec-sensor-xyz"), Ok(false));
    }
}
