//! Opening a Kerberos AP exchange with a keytab (RFC 4120 5.5, RFC 4121): the service ticket's
//! enc-part (EncTicketPart: client name and realm, session key), the authenticator (initiator
//! subkey) and, when the acceptor answered, the AP-REP's EncAPRepPart (acceptor subkey). The GSS
//! session key SMB3 derives its keys from is the acceptor subkey, else the initiator subkey, else
//! the ticket's session key (RFC 4121 2; MS-KILE 3.1.1.2).
//!
//! The AP-REQ/AP-REP sit in a SESSION_SETUP security blob as a GSS-API krb5 token (RFC 1964 1.1:
//! the krb5 OID, then TOK_ID 01 00 for AP-REQ, 02 00 for AP-REP), usually inside SPNEGO; like the
//! NTLMSSP token ([`crate::smb::ntlmssp`]) it is found by that signature rather than by walking
//! SPNEGO. The DER here is the minimum these six structures need (definite lengths, low tag
//! numbers), as nom parsers over borrowed bytes.

use super::crypto::{self, Enctype, Key};
use super::keytab::Keytab;
use super::{gss, records};
use crate::smb::ntlmssp::find;
use nom::bytes::complete::take;
use nom::number::complete::u8 as nom_u8;
use nom::{IResult, Parser};

/// RFC 4120 7.5.1 key usages.
pub const USAGE_TICKET: u32 = 2;
pub const USAGE_AP_REQ_AUTHENTICATOR: u32 = 11;
pub const USAGE_AP_REP_ENC_PART: u32 = 12;

/// Principal name components kept (service/host is two; more is hostile).
pub const MAX_PRINCIPAL_COMPONENTS: usize = 8;
/// Characters of a principal name component or realm kept for output.
pub const MAX_PRINCIPAL_CHARS: usize = 256;

type Res<'a, T> = IResult<&'a [u8], T>;

fn fail<T>(i: &[u8]) -> Res<'_, T> {
    Err(nom::Err::Error(nom::error::Error::new(
        i,
        nom::error::ErrorKind::Verify,
    )))
}

/// One DER TLV: tag byte and contents. Long-form lengths up to 4 bytes; indefinite lengths and
/// multi-byte tags (not used by Kerberos' structures) are errors.
fn tlv(i: &[u8]) -> Res<'_, (u8, &[u8])> {
    let (i, tag) = nom_u8(i)?;
    if tag & 0x1f == 0x1f {
        return fail(i);
    }
    let (i, first) = nom_u8(i)?;
    let (i, len) = match first {
        0..=0x7f => (i, first as usize),
        0x81..=0x84 => {
            let (i, bytes) = take((first & 0x7f) as usize).parse(i)?;
            (i, bytes.iter().fold(0usize, |n, b| (n << 8) | *b as usize))
        }
        _ => return fail(i),
    };
    let (i, value) = take(len).parse(i)?;
    Ok((i, (tag, value)))
}

/// Contents of a TLV with `tag`.
fn expect(tag: u8) -> impl Fn(&[u8]) -> Res<'_, &[u8]> {
    move |i| {
        let (rest, (t, v)) = tlv(i)?;
        if t != tag {
            return fail(i);
        }
        Ok((rest, v))
    }
}

/// The explicitly tagged fields [0]..[15] of a SEQUENCE's contents, each as its inner TLV bytes.
/// Unknown or repeated tags are ignored (the first wins), so extensions do not break parsing.
fn fields(contents: &[u8]) -> Result<[Option<&[u8]>; 16], ()> {
    let mut out = [None; 16];
    let mut i = contents;
    while !i.is_empty() {
        let (rest, (tag, inner)) = tlv(i).map_err(|_| ())?;
        let n = tag.wrapping_sub(0xA0) as usize;
        if n < out.len() && out[n].is_none() {
            out[n] = Some(inner);
        }
        i = rest;
    }
    Ok(out)
}

/// `[APPLICATION n] SEQUENCE { … }` → its fields.
fn app_seq(app: u8, i: &[u8]) -> Result<[Option<&[u8]>; 16], ()> {
    let (_, outer) = expect(0x60 | app)(i).map_err(|_| ())?;
    let (_, seq) = expect(0x30)(outer).map_err(|_| ())?;
    fields(seq)
}

fn seq(i: &[u8]) -> Result<[Option<&[u8]>; 16], ()> {
    let (_, seq) = expect(0x30)(i).map_err(|_| ())?;
    fields(seq)
}

fn integer(i: &[u8]) -> Option<i64> {
    let (_, v) = expect(0x02)(i).ok()?;
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    let neg = v[0] & 0x80 != 0;
    Some(
        v.iter()
            .fold(if neg { -1i64 } else { 0 }, |n, b| (n << 8) | *b as i64),
    )
}

fn octets(i: &[u8]) -> Option<&[u8]> {
    expect(0x04)(i).ok().map(|(_, v)| v)
}

/// KerberosString (GeneralString, 0x1B).
fn kstring(i: &[u8]) -> Option<&[u8]> {
    expect(0x1B)(i).ok().map(|(_, v)| v)
}

/// PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF KerberosString }
fn principal(i: &[u8]) -> Option<Vec<&[u8]>> {
    let f = seq(i).ok()?;
    let (_, mut list) = expect(0x30)(f[1]?).ok()?;
    let mut out = Vec::new();
    while !list.is_empty() && out.len() < MAX_PRINCIPAL_COMPONENTS {
        let (rest, (tag, v)) = tlv(list).ok()?;
        if tag != 0x1B {
            return None;
        }
        out.push(v);
        list = rest;
    }
    Some(out)
}

/// EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL, cipher [2] OCTET STRING }
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptedData<'a> {
    pub etype: i32,
    pub kvno: Option<u32>,
    pub cipher: &'a [u8],
}

fn encrypted_data(i: &[u8]) -> Option<EncryptedData<'_>> {
    let f = seq(i).ok()?;
    Some(EncryptedData {
        etype: integer(f[0]?)? as i32,
        kvno: f[1].and_then(integer).map(|k| k as u32),
        cipher: octets(f[2]?)?,
    })
}

/// EncryptionKey ::= SEQUENCE { keytype [0] Int32, keyvalue [1] OCTET STRING }; None for a key
/// the sensor cannot use.
fn encryption_key(i: &[u8]) -> Option<Key> {
    let f = seq(i).ok()?;
    let t = Enctype::from_id(integer(f[0]?)? as i32)?;
    Key::new(t, octets(f[1]?)?)
}

/// The public parts of an AP-REQ that decryption needs.
#[derive(Debug, PartialEq, Eq)]
pub struct ApReq<'a> {
    pub realm: String,
    pub sname: String,
    pub ticket: EncryptedData<'a>,
    pub authenticator: EncryptedData<'a>,
}

impl<'a> From<&records::EncryptedData<'a>> for EncryptedData<'a> {
    fn from(e: &records::EncryptedData<'a>) -> Self {
        EncryptedData {
            etype: e.etype.0,
            kvno: e.kvno,
            cipher: e.cipher,
        }
    }
}

/// AP-REP ::= [APPLICATION 15] SEQUENCE { pvno [0], msg-type [1], enc-part [2] EncryptedData }.
pub fn ap_rep(i: &[u8]) -> Option<EncryptedData<'_>> {
    let f = app_seq(15, i).ok()?;
    encrypted_data(f[2]?)
}

/// What the decrypted EncTicketPart ([APPLICATION 3]) says: key [1], crealm [2], cname [3].
pub struct TicketPart<'a> {
    pub session_key: Key,
    pub crealm: &'a [u8],
    pub cname: Vec<&'a [u8]>,
}

pub fn enc_ticket_part(i: &[u8]) -> Option<TicketPart<'_>> {
    let f = app_seq(3, i).ok()?;
    Some(TicketPart {
        session_key: encryption_key(f[1]?)?,
        crealm: kstring(f[2]?)?,
        cname: principal(f[3]?)?,
    })
}

/// Authenticator ([APPLICATION 2]): crealm [1], cname [2], subkey [6] OPTIONAL.
pub struct AuthenticatorPart<'a> {
    pub crealm: &'a [u8],
    pub cname: Vec<&'a [u8]>,
    pub subkey: Option<Key>,
}

pub fn authenticator(i: &[u8]) -> Option<AuthenticatorPart<'_>> {
    let f = app_seq(2, i).ok()?;
    Some(AuthenticatorPart {
        crealm: kstring(f[1]?)?,
        cname: principal(f[2]?)?,
        subkey: f[6].and_then(encryption_key),
    })
}

/// EncAPRepPart ([APPLICATION 27]): subkey [2] OPTIONAL. Outer None: not an EncAPRepPart.
pub fn enc_ap_rep_part(i: &[u8]) -> Option<Option<Key>> {
    let f = app_seq(27, i).ok()?;
    Some(f[2].and_then(encryption_key))
}

/// The krb5 GSS token with `tok_id` in a security blob: the bytes after the OID and TOK_ID.
fn gss_krb5_token(blob: &[u8], tok_id: [u8; 2]) -> Option<&[u8]> {
    for oid in &gss::KRB5_OID_ELEMENTS {
        let mut from = 0;
        // The OID also appears in SPNEGO's mechTypes list; the token is where TOK_ID follows it.
        while let Some(at) = blob.get(from..).and_then(|b| find(b, oid)) {
            let after = from + at + oid.len();
            if blob.get(after..after + 2) == Some(&tok_id[..]) {
                return blob.get(after + 2..);
            }
            from = after;
        }
    }
    None
}

/// The AP-REQ of a security blob (SPNEGO or bare GSS krb5 token), if any: framed and parsed by
/// the readers the ticket join uses ([`gss::ap_req_bytes`], [`records::ap_req`]).
pub fn find_ap_req(blob: &[u8]) -> Option<ApReq<'_>> {
    let ap = records::ap_req(gss::ap_req_bytes(blob)?).ok()?;
    Some(ApReq {
        realm: records::realm(&ap.ticket.realm),
        sname: records::principal(&ap.ticket.sname),
        ticket: (&ap.ticket.enc_part).into(),
        authenticator: (&ap.authenticator).into(),
    })
}

/// The AP-REP enc-part of a security blob, if any.
pub fn find_ap_rep(blob: &[u8]) -> Option<EncryptedData<'_>> {
    ap_rep(gss_krb5_token(blob, [0x02, 0x00])?)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .take(MAX_PRINCIPAL_CHARS)
        .collect()
}

fn joined(parts: &[&[u8]]) -> String {
    parts.iter().map(|p| text(p)).collect::<Vec<_>>().join("/")
}

/// Who the ticket says the client is, and for which service. No secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KrbClient {
    pub user: String,
    pub realm: String,
    /// The ticket's service principal, `cifs/host`.
    pub service: String,
}

/// An AP-REQ opened with a keytab. Debug shows no key.
#[derive(Clone, Debug)]
pub struct OpenedApReq {
    pub client: KrbClient,
    /// The keytab principal whose key decrypted the ticket.
    pub keytab_principal: String,
    pub ticket_key: Key,
    pub initiator_subkey: Option<Key>,
}

impl OpenedApReq {
    /// The GSS session key: `acceptor_subkey` (from the AP-REP), else the authenticator's subkey,
    /// else the ticket's session key.
    pub fn session_key<'a>(&'a self, acceptor_subkey: Option<&'a Key>) -> &'a Key {
        acceptor_subkey
            .or(self.initiator_subkey.as_ref())
            .unwrap_or(&self.ticket_key)
    }
}

/// Why an AP-REQ could not be opened: for a note, so no secret and no key bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("no Kerberos AP-REQ in the security blob")]
    NoApReq,
    #[error("the ticket for {service} uses enctype {etype}, which the sensor cannot decrypt")]
    UnsupportedEnctype { service: String, etype: i32 },
    #[error("no {enctype:?} key in the keytab for the ticket to {service}")]
    NoKey { service: String, enctype: Enctype },
    #[error(
        "the ticket to {service} did not decrypt with any of {tried} keytab keys (kvno {kvno:?})"
    )]
    WrongKeys {
        service: String,
        tried: usize,
        kvno: Option<u32>,
    },
    #[error("the ticket to {service} decrypted but its contents did not parse")]
    BadTicket { service: String },
    #[error("the authenticator for {service} did not decrypt with the ticket's session key")]
    BadAuthenticator { service: String },
}

/// Decrypts the ticket of the AP-REQ in `blob` with the keytab's keys of its enctype (the right
/// kvno first; the integrity check tells which key fits), then its authenticator.
pub fn open_ap_req(keytab: &Keytab, blob: &[u8]) -> Result<OpenedApReq, OpenError> {
    let req = find_ap_req(blob).ok_or(OpenError::NoApReq)?;
    let service = format!("{}@{}", req.sname, req.realm);
    let Some(enctype) = Enctype::from_id(req.ticket.etype) else {
        return Err(OpenError::UnsupportedEnctype {
            service,
            etype: req.ticket.etype,
        });
    };
    let candidates = keytab.candidates(enctype, req.ticket.kvno);
    if candidates.is_empty() {
        return Err(OpenError::NoKey { service, enctype });
    }
    let Some((plain, principal)) = candidates.iter().find_map(|k| {
        crypto::decrypt(&k.key, USAGE_TICKET, req.ticket.cipher)
            .ok()
            .map(|p| (p, k.principal.clone()))
    }) else {
        return Err(OpenError::WrongKeys {
            service,
            tried: candidates.len(),
            kvno: req.ticket.kvno,
        });
    };
    let Some(part) = enc_ticket_part(&plain) else {
        return Err(OpenError::BadTicket { service });
    };
    let initiator_subkey = crypto::decrypt(
        &part.session_key,
        USAGE_AP_REQ_AUTHENTICATOR,
        req.authenticator.cipher,
    )
    .ok()
    .and_then(|a| authenticator(&a).map(|a| a.subkey));
    let Some(initiator_subkey) = initiator_subkey else {
        return Err(OpenError::BadAuthenticator { service });
    };
    Ok(OpenedApReq {
        client: KrbClient {
            user: joined(&part.cname),
            realm: text(part.crealm),
            service: req.sname,
        },
        keytab_principal: principal,
        ticket_key: part.session_key,
        initiator_subkey,
    })
}

/// The acceptor subkey of the AP-REP in `blob`, decrypted with the ticket's session key. Outer
/// None: no AP-REP, or it did not decrypt; inner None: an AP-REP without a subkey.
pub fn open_ap_rep(opened: &OpenedApReq, blob: &[u8]) -> Option<Option<Key>> {
    let enc = find_ap_rep(blob)?;
    let plain = crypto::decrypt(&opened.ticket_key, USAGE_AP_REP_ENC_PART, enc.cipher).ok()?;
    enc_ap_rep_part(&plain)
}

#[cfg(test)]
mod tests;
