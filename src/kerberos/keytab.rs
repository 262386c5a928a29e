//! MIT keytab files (`--keytab FILE`): the long-term keys of service principals, as `ktutil`,
//! `samba-tool domain exportkeytab` and Windows' `ktpass` write them. With them the sensor decrypts
//! service tickets (and from there the session's keys), the way Wireshark does with a keytab.
//!
//! Format (MIT krb5 doc/formats/keytab_file_format.rst): 0x05 then the version, 0x01 or 0x02; then
//! records, each a signed 32-bit length (negative: a hole of that many bytes to skip) and the entry:
//! number of principal components, realm, components (16-bit length-counted octet strings), name
//! type (version 2 only), timestamp, 8-bit kvno, key type, key (counted), and, when the record has
//! room, a 32-bit kvno that supersedes the 8-bit one. Version 2 is big-endian; version 1 used the
//! writer's byte order and counted the realm among the components (read here as little-endian,
//! the order of every machine that still has such files).
//!
//! Key bytes never leave this module other than as [`crypto::Key`], whose Debug redacts them, and no
//! error message quotes file content.

use super::crypto::{Enctype, Key};
use nom::bytes::complete::take;
use nom::multi::count;
use nom::number::complete::{i32 as nom_i32, u16 as nom_u16, u32 as nom_u32, u8 as nom_u8};
use nom::number::Endianness;
use nom::{IResult, Parser};
use std::path::Path;

/// Largest keytab file read (a keytab of a whole domain's accounts stays far below).
pub const MAX_KEYTAB_BYTES: u64 = 4 << 20;
/// Entries kept from all keytabs together; more is an error, not a silent cut.
pub const MAX_KEYTAB_ENTRIES: usize = 65_536;
/// Principal name components per entry (service/host is two).
pub const MAX_KEYTAB_COMPONENTS: usize = 16;

/// One keytab record as it is in the file (borrowed).
#[derive(Debug, PartialEq, Eq)]
pub struct RawEntry<'a> {
    pub realm: &'a [u8],
    pub components: Vec<&'a [u8]>,
    /// Absent in version 1.
    pub name_type: Option<u32>,
    pub timestamp: u32,
    /// The 32-bit kvno when present and non-zero, else the 8-bit one.
    pub kvno: u32,
    pub key_type: u16,
    pub key: &'a [u8],
}

/// The file header: 0x05 and the version byte (1 or 2).
pub fn header(i: &[u8]) -> IResult<&[u8], Endianness> {
    let (i, (magic, version)) = (nom_u8, nom_u8).parse(i)?;
    match (magic, version) {
        (5, 2) => Ok((i, Endianness::Big)),
        (5, 1) => Ok((i, Endianness::Little)),
        _ => Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::Tag,
        ))),
    }
}

fn counted(e: Endianness) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |i| {
        let (i, n) = nom_u16(e).parse(i)?;
        take(n).parse(i)
    }
}

/// One entry's body (the bytes its length field counts). `v1` counts the realm as a component.
pub fn entry(e: Endianness, v1: bool) -> impl Fn(&[u8]) -> IResult<&[u8], RawEntry<'_>> {
    move |body| {
        let (i, n) = nom_u16(e).parse(body)?;
        let n = if v1 { n.saturating_sub(1) } else { n } as usize;
        if n == 0 || n > MAX_KEYTAB_COMPONENTS {
            return Err(nom::Err::Failure(nom::error::Error::new(
                i,
                nom::error::ErrorKind::TooLarge,
            )));
        }
        let (i, realm) = counted(e)(i)?;
        let (i, components) = count(counted(e), n).parse(i)?;
        let (i, name_type) = if v1 {
            (i, None)
        } else {
            let (i, t) = nom_u32(e).parse(i)?;
            (i, Some(t))
        };
        let (i, (timestamp, kvno8, key_type)) = (nom_u32(e), nom_u8, nom_u16(e)).parse(i)?;
        let (i, key) = counted(e)(i)?;
        // The optional 32-bit kvno: written by every current tool, zero meaning "use the 8-bit".
        let (i, kvno) = match nom_u32::<_, nom::error::Error<&[u8]>>(e).parse(i) {
            Ok((rest, k)) if k != 0 => (rest, k),
            Ok((rest, _)) => (rest, kvno8 as u32),
            Err(_) => (i, kvno8 as u32),
        };
        Ok((
            i,
            RawEntry {
                realm,
                components,
                name_type,
                timestamp,
                kvno,
                key_type,
                key,
            },
        ))
    }
}

/// Every record of a keytab: entries, and the number of holes (deleted entries) skipped.
pub fn records(input: &[u8]) -> IResult<&[u8], (Vec<RawEntry<'_>>, usize)> {
    let (mut i, e) = header(input)?;
    let v1 = e == Endianness::Little;
    let mut entries = Vec::new();
    let mut holes = 0;
    while !i.is_empty() {
        let (rest, len) = nom_i32(e).parse(i)?;
        if len == 0 {
            // MIT stops at a zero length: the rest of the file is unused.
            return Ok((&[], (entries, holes)));
        }
        let (rest, body) = take(len.unsigned_abs()).parse(rest)?;
        if len > 0 {
            if entries.len() >= MAX_KEYTAB_ENTRIES {
                return Err(nom::Err::Failure(nom::error::Error::new(
                    i,
                    nom::error::ErrorKind::TooLarge,
                )));
            }
            let (_, ent) = entry(e, v1)(body)?;
            entries.push(ent);
        } else {
            holes += 1;
        }
        i = rest;
    }
    Ok((i, (entries, holes)))
}

/// A usable key from a keytab, with the principal it belongs to (for notes: "decrypted with the key
/// of cifs/dc1@REALM").
#[derive(Clone, Debug)]
pub struct KeytabKey {
    /// `comp1/comp2@REALM`.
    pub principal: String,
    pub kvno: u32,
    pub key: Key,
}

/// Keys loaded from one or more keytabs. Debug shows counts and principals, never keys.
#[derive(Clone, Debug, Default)]
pub struct Keytab {
    pub keys: Vec<KeytabKey>,
    /// Entries whose enctype the sensor cannot use (DES, 3DES, Camellia, SHA-2 AES).
    pub unsupported: usize,
}

/// A keytab that could not be used. Names the file and the problem, never its content.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {what}")]
pub struct KeytabError {
    pub origin: String,
    pub what: String,
}

impl Keytab {
    /// Parses keytab bytes; `origin` names them in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Keytab, KeytabError> {
        let err = |what: String| KeytabError {
            origin: origin.to_string(),
            what,
        };
        let (entries, _holes) = match records(bytes) {
            Ok((_, r)) => r,
            Err(nom::Err::Failure(e)) if e.code == nom::error::ErrorKind::TooLarge => {
                return Err(err(format!(
                    "too many entries or principal components (MAX_KEYTAB_ENTRIES {MAX_KEYTAB_ENTRIES}, MAX_KEYTAB_COMPONENTS {MAX_KEYTAB_COMPONENTS})"
                )))
            }
            Err(_) if bytes.first() != Some(&5) || !matches!(bytes.get(1), Some(1 | 2)) => {
                return Err(err(
                    "not a keytab (expected 0x05 0x01 or 0x05 0x02 at the start)".into(),
                ))
            }
            Err(_) => {
                return Err(err(
                    "truncated or malformed keytab entry (keytab format 0x0501/0x0502)".into(),
                ))
            }
        };
        let mut kt = Keytab::default();
        for e in entries {
            let Some(key) = Enctype::from_id(e.key_type as i32).and_then(|t| Key::new(t, e.key))
            else {
                kt.unsupported += 1;
                continue;
            };
            let comps: Vec<String> = e
                .components
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            kt.keys.push(KeytabKey {
                principal: format!("{}@{}", comps.join("/"), String::from_utf8_lossy(e.realm)),
                kvno: e.kvno,
                key,
            });
        }
        if kt.keys.is_empty() {
            return Err(err(format!(
                "no usable key (AES128/AES256-CTS-HMAC-SHA1-96 or RC4-HMAC); {} entries of other enctypes",
                kt.unsupported
            )));
        }
        Ok(kt)
    }

    /// Reads a keytab file.
    pub fn load(path: &Path) -> Result<Keytab, KeytabError> {
        let origin = path.display().to_string();
        let err = |what: String| KeytabError {
            origin: origin.clone(),
            what,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        if meta.len() > MAX_KEYTAB_BYTES {
            return Err(err(format!(
                "larger than {MAX_KEYTAB_BYTES} bytes (MAX_KEYTAB_BYTES)"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        Keytab::parse(&bytes, &origin)
    }

    /// Adds another keytab's keys (several `--keytab` flags make one store).
    pub fn extend(&mut self, other: Keytab) -> Result<(), KeytabError> {
        if self.keys.len() + other.keys.len() > MAX_KEYTAB_ENTRIES {
            return Err(KeytabError {
                origin: "--keytab".into(),
                what: format!("more than {MAX_KEYTAB_ENTRIES} keys in all (MAX_KEYTAB_ENTRIES)"),
            });
        }
        self.keys.extend(other.keys);
        self.unsupported += other.unsupported;
        Ok(())
    }

    /// Keys of `enctype`, those with the wanted kvno first (a ticket names its kvno; keytabs often
    /// hold several generations of a key).
    pub fn candidates(&self, enctype: Enctype, kvno: Option<u32>) -> Vec<&KeytabKey> {
        let mut v: Vec<&KeytabKey> = self
            .keys
            .iter()
            .filter(|k| k.key.enctype == enctype)
            .collect();
        if let Some(n) = kvno {
            v.sort_by_key(|k| k.kvno != n);
        }
        v
    }
}

#[cfg(test)]
mod tests;
