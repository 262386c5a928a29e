//! The `--smb-keys FILE` format: secrets that let the sensor decrypt SMB3.
//!
//! One entry per line; blank lines and lines whose first non-blank character is `#` are ignored.
//!
//! ```text
//! # password of a user (any domain), or of a user in one domain
//! admin:Passw0rd!Lab
//! CORP\alice:correct horse:battery
//! # the same, explicitly (needed only for users literally named password, nthash or session)
//! password:CORP\alice:correct horse:battery
//! # an NT hash (32 hex digits) instead of a password
//! nthash:CORP\bob:8846f7eaee8fb117ad06bdd830b7586c
//! # a session key for one session (Wireshark's "SMB2 Session Key" table), optionally with the
//! # server-to-client and client-to-server cipher keys
//! session:0x00000000d33abc15:0123456789abcdef0123456789abcdef
//! session:d33abc15:<session key>:<s2c key>:<c2s key>
//! ```
//!
//! * A password is everything after the first `:` following the user name, to the end of the line
//!   (it may contain `:`, `#` and spaces; only the line break is removed).
//! * User names match the NTLMSSP user case-insensitively. Without `DOMAIN\`, an entry serves any
//!   domain; with it, the domain must match the NTLMSSP domain case-insensitively (or the client
//!   sent an empty domain). A wrong guess costs nothing: the NTProofStr check picks the entry.
//! * The session id is the number as tshark shows `smb2.sesid` (hex, optional `0x`, up to 16
//!   digits) — not the little-endian byte string of Wireshark's UAT file.
//! * A session key is 16 bytes (NTLM; 32 hex digits) or 32 bytes (a Kerberos AES-256 key; 64 hex
//!   digits — MS-SMB2 3.2.5.3.1 derives AES-256 cipher keys from this full key, AES-128 ones from
//!   its first 16 bytes). Cipher keys are 16 or 32 bytes and are used as given, which also works
//!   for SMB 3.1.1 sessions whose handshake the capture does not show.
//!
//! Errors name the file and line, never the secret. Passwords are turned into NT hashes at load.

use super::ntlm::nt_hash;
use std::fmt;

/// A password or NT hash for a user.
#[derive(Clone)]
pub struct Credential {
    /// As written (compared case-insensitively).
    pub user: String,
    /// `None`: any domain.
    pub domain: Option<String>,
    pub nt_hash: [u8; 16],
    /// Where it came from, for notes: "password" or "nthash".
    pub source: &'static str,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("source", &self.source)
            .field("nt_hash", &"<redacted>")
            .finish()
    }
}

/// A supplied session key (and optionally the two cipher keys) for one session id.
#[derive(Clone)]
pub struct SessionSecret {
    pub session_id: u64,
    /// 16 or 32 bytes.
    pub session_key: Vec<u8>,
    /// (server-to-client, client-to-server) cipher keys, 16 or 32 bytes each.
    pub cipher_keys: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSecret")
            .field("session_id", &format_args!("{:#018x}", self.session_id))
            .field("session_key", &"<redacted>")
            .field(
                "cipher_keys",
                &self.cipher_keys.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A key file line that could not be read. Shows file and line and what is wrong, not the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileError {
    pub origin: String,
    pub line: usize,
    pub what: String,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.origin, self.what)
        } else {
            write!(f, "{}:{}: {}", self.origin, self.line, self.what)
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Most entries one key file may hold (a key file is written by a person; a huge one is a mistake
/// and would make every SESSION_SETUP try thousands of hashes).
pub const MAX_KEY_FILE_ENTRIES: usize = 10_000;
/// Largest key file read, in bytes.
pub const MAX_KEY_FILE_BYTES: u64 = 4 << 20;

pub fn parse(
    text: &str,
    origin: &str,
) -> Result<(Vec<Credential>, Vec<SessionSecret>), KeyFileError> {
    let mut creds = Vec::new();
    let mut sessions = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |what: &str| KeyFileError {
            origin: origin.to_string(),
            line: i + 1,
            what: what.to_string(),
        };
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if creds.len() + sessions.len() >= MAX_KEY_FILE_ENTRIES {
            return Err(err(&format!(
                "more than {MAX_KEY_FILE_ENTRIES} entries (MAX_KEY_FILE_ENTRIES)"
            )));
        }
        let Some((head, rest)) = line.split_once(':') else {
            return Err(err("expected `[DOMAIN\\]user:password`, `nthash:[DOMAIN\\]user:HASH` or `session:ID:KEY`"));
        };
        match head.trim() {
            "session" => sessions.push(parse_session(rest).map_err(err)?),
            "nthash" => {
                let (who, hash) = rest
                    .rsplit_once(':')
                    .ok_or_else(|| err("expected `nthash:[DOMAIN\\]user:<32 hex digits>`"))?;
                let bytes = unhex(hash.trim())
                    .filter(|b| b.len() == 16)
                    .ok_or_else(|| err("NT hash must be 32 hex digits"))?;
                let mut h = [0u8; 16];
                h.copy_from_slice(&bytes);
                let (user, domain) = split_user(who).map_err(err)?;
                creds.push(Credential {
                    user,
                    domain,
                    nt_hash: h,
                    source: "nthash",
                });
            }
            "password" => {
                let (who, pw) = rest
                    .split_once(':')
                    .ok_or_else(|| err("expected `password:[DOMAIN\\]user:PASSWORD`"))?;
                let (user, domain) = split_user(who).map_err(err)?;
                creds.push(Credential {
                    user,
                    domain,
                    nt_hash: nt_hash(pw),
                    source: "password",
                });
            }
            _ => {
                let (user, domain) = split_user(head).map_err(err)?;
                creds.push(Credential {
                    user,
                    domain,
                    nt_hash: nt_hash(rest),
                    source: "password",
                });
            }
        }
    }
    Ok((creds, sessions))
}

fn split_user(who: &str) -> Result<(String, Option<String>), &'static str> {
    let who = who.trim();
    let (domain, user) = match who.split_once('\\') {
        Some((d, u)) => (Some(d.trim().to_string()), u.trim().to_string()),
        None => (None, who.to_string()),
    };
    if user.is_empty() {
        return Err("empty user name");
    }
    Ok((user, domain.filter(|d| !d.is_empty())))
}

fn parse_session(rest: &str) -> Result<SessionSecret, &'static str> {
    let parts: Vec<&str> = rest.split(':').map(str::trim).collect();
    if parts.len() != 2 && parts.len() != 4 {
        return Err("expected `session:ID:SESSIONKEY` or `session:ID:SESSIONKEY:S2CKEY:C2SKEY`");
    }
    let id = parts[0]
        .strip_prefix("0x")
        .or_else(|| parts[0].strip_prefix("0X"))
        .unwrap_or(parts[0]);
    if id.is_empty() || id.len() > 16 {
        return Err("session id must be 1 to 16 hex digits");
    }
    let session_id = u64::from_str_radix(id, 16).map_err(|_| "session id must be hex")?;
    let key_ok = |b: &Vec<u8>| b.len() == 16 || b.len() == 32;
    let session_key = unhex(parts[1])
        .filter(key_ok)
        .ok_or("session key must be 32 or 64 hex digits")?;
    let cipher_keys = if parts.len() == 4 {
        let s2c = unhex(parts[2])
            .filter(key_ok)
            .ok_or("server-to-client key must be 32 or 64 hex digits")?;
        let c2s = unhex(parts[3])
            .filter(key_ok)
            .ok_or("client-to-server key must be 32 or 64 hex digits")?;
        if s2c.len() != c2s.len() {
            return Err("server-to-client and client-to-server keys differ in length");
        }
        Some((s2c, c2s))
    } else {
        None
    };
    Ok(SessionSecret {
        session_id,
        session_key,
        cipher_keys,
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A warning when the key file can be read by group or others (it holds passwords).
#[cfg(unix)]
pub fn permission_warning(path: &std::path::Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "warning: key file {} is accessible by group or others (mode {:03o}); it holds passwords: chmod 600 it",
            path.display(),
            mode
        )
    })
}

#[cfg(not(unix))]
pub fn permission_warning(_path: &std::path::Path, _meta: &std::fs::Metadata) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_form() {
        let text = "# comment\n\n  # indented comment\r\nadmin:Passw0rd!Lab\r\nCORP\\alice:a:b #c \n\
                    password:session:pw\nnthash:CORP\\bob:8846F7EAEE8FB117AD06BDD830B7586C\n\
                    session:0x00000000d33abc15:0123456789abcdef0123456789abcdef\n\
                    session:25:000102030405060708090a0b0c0d0e0f:101112131415161718191a1b1c1d1e1f:202122232425262728292a2b2c2d2e2f\n";
        let (c, s) = parse(text, "k.txt").unwrap();
        assert_eq!(c.len(), 4);
        assert_eq!(
            (c[0].user.as_str(), c[0].domain.as_deref()),
            ("admin", None)
        );
        assert_eq!(c[0].nt_hash, nt_hash("Passw0rd!Lab"));
        assert_eq!(
            (c[1].user.as_str(), c[1].domain.as_deref()),
            ("alice", Some("CORP"))
        );
        assert_eq!(
            c[1].nt_hash,
            nt_hash("a:b #c "),
            "the password runs to the end of the line"
        );
        assert_eq!(
            (c[2].user.as_str(), c[2].nt_hash),
            ("session", nt_hash("pw"))
        );
        assert_eq!(
            (c[3].user.as_str(), c[3].domain.as_deref(), c[3].source),
            ("bob", Some("CORP"), "nthash")
        );
        assert_eq!(c[3].nt_hash, nt_hash("password"));
        assert_eq!(s[0].session_id, 0xd33abc15);
        assert_eq!(s[0].session_key.len(), 16);
        assert!(s[0].cipher_keys.is_none());
        assert_eq!(s[1].session_id, 0x25);
        let (s2c, c2s) = s[1].cipher_keys.clone().unwrap();
        assert_eq!((s2c[0], c2s[0]), (0x10, 0x20));
    }

    #[test]
    fn errors_name_file_and_line_but_not_the_secret() {
        for (text, line) in [
            ("ok:pw\nno colon here\n", 2),
            ("nthash:bob:1234\n", 1),
            ("#\nsession:xyz:00112233445566778899aabbccddeeff\n", 2),
            ("session:1:0011\n", 1),
            ("session:1:00112233445566778899aabbccddeeff:00\n", 1),
            ("\\:pw\n", 1),
        ] {
            let e = parse(text, "keys.txt").unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("keys.txt:{line}: ")), "{shown}");
            assert!(
                !shown.contains("1234") && !shown.contains("0011") && !shown.contains("pw"),
                "{shown}"
            );
        }
    }

    #[test]
    fn debug_redacts() {
        let (c, s) = parse(
            "admin:Passw0rd!Lab\nsession:1:00112233445566778899aabbccddeeff\n",
            "k",
        )
        .unwrap();
        let d = format!("{c:?} {s:?}");
        assert!(d.contains("admin") && d.contains("<redacted>"));
        assert!(!d.contains("nt_hash: ["));
        assert!(!d.contains("Passw0rd") && !d.contains("00112233") && !d.contains("[0, 17"));
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("psexec-sensor-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keys");
        std::fs::write(&p, "a:b\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = permission_warning(&p, &std::fs::metadata(&p).unwrap()).unwrap();
        assert!(w.contains("644") && w.contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(permission_warning(&p, &std::fs::metadata(&p).unwrap()).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
