//! Kerberos V5 messages (RFC 4120 §5): AS-REQ/REP, TGS-REQ/REP, AP-REQ/REP, KRB-ERROR, and the
//! TCP record marking (§7.2.2).
//!
//! The DER itself is rusticata's `kerberos-parser` (the parser Suricata runs on the same traffic,
//! fuzzed there): a crate made for the field beats a second hand-written ASN.1 decoder. It is
//! built on nom 7; this module (with `kdc_req`, its KDC-REQ reader) is the one place that sees it, so the rest of the sensor sees
//! [`Message`] and the crate's record types (re-exported: a ticket's realm, sname and enc-part
//! etype / kvno / cipher bytes, an AP-REQ's ticket and authenticator, for decryption with a
//! keytab). What is ours: the message-type dispatch, record marking (nom 8), times in capture
//! time, and the names as Zeek's kerberos.log writes them.

use super::kdc_req::{kdc_req, APP_AS_REQ, APP_TGS_REQ};
use crate::time::Ts;
use der_parser::asn1_rs::{FromDer, GeneralizedTime};
use kerberos_parser::krb5_parser::{parse_as_rep, parse_tgs_rep};
use nom::number::complete::be_u32;
use nom::IResult;

pub use kerberos_parser::krb5::{
    ApRep, ApReq, EncryptedData, EncryptionType, ErrorCode, KdcRep, KdcReq, KdcReqBody, KrbError,
    PrincipalName, Realm, Ticket,
};

/// Largest Kerberos message read (one TCP record or one UDP datagram). A ticket with a large PAC
/// (many group memberships) runs to tens of kilobytes; Windows' MaxTokenSize is 48,000 bytes by
/// default and 65,535 at most. Larger records are skipped (counted, and a cap anomaly).
pub const MAX_KERBEROS_MESSAGE_BYTES: usize = 65_535;

/// Characters kept of a principal or realm name in the logs (longer ones are cut).
pub const MAX_KERBEROS_NAME_CHARS: usize = 256;

/// One Kerberos message, by its APPLICATION tag.
#[derive(Debug, PartialEq)]
pub enum Message<'a> {
    AsReq(KdcReq<'a>),
    AsRep(KdcRep<'a>),
    TgsReq(KdcReq<'a>),
    TgsRep(KdcRep<'a>),
    ApReq(ApReq<'a>),
    ApRep(ApRep<'a>),
    Error(KrbError<'a>),
}

/// Why bytes are not a Kerberos message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The first byte is not one of the message APPLICATION tags (10–15, 30).
    NotKerberos,
    /// The tag is right but the DER inside does not parse.
    Malformed,
}

/// The APPLICATION tags (RFC 4120 §5.10), as the DER identifier octet (constructed, class 01).
const TAG_AS_REQ: u8 = 0x6a;
const TAG_AS_REP: u8 = 0x6b;
const TAG_TGS_REQ: u8 = 0x6c;
const TAG_TGS_REP: u8 = 0x6d;
const TAG_AP_REQ: u8 = 0x6e;
const TAG_AP_REP: u8 = 0x6f;
const TAG_KRB_ERROR: u8 = 0x7e;

/// Whether `first` can start a Kerberos message (a cheap check before parsing).
pub fn is_message_tag(first: u8) -> bool {
    matches!(
        first,
        TAG_AS_REQ
            | TAG_AS_REP
            | TAG_TGS_REQ
            | TAG_TGS_REP
            | TAG_AP_REQ
            | TAG_AP_REP
            | TAG_KRB_ERROR
    )
}

/// One message from its first byte. Trailing bytes after the DER are ignored (the caller framed
/// the message: a datagram, a TCP record, a GSS token).
pub fn message(i: &[u8]) -> Result<Message<'_>, RecordError> {
    fn ok<T>(r: Result<(&[u8], T), impl Sized>) -> Result<T, RecordError> {
        r.map(|(_, v)| v).map_err(|_| RecordError::Malformed)
    }
    match i.first() {
        // The KDC messages' `FromDer` reads the SEQUENCE inside the APPLICATION tag; these
        // functions read the tag too (the others' `FromDer` does).
        // Requests are read by kdc_req (MIT's negative nonces), replies by the crate.
        Some(&TAG_AS_REQ) => ok(kdc_req(i, APP_AS_REQ)).map(Message::AsReq),
        Some(&TAG_AS_REP) => ok(parse_as_rep(i)).map(Message::AsRep),
        Some(&TAG_TGS_REQ) => ok(kdc_req(i, APP_TGS_REQ)).map(Message::TgsReq),
        Some(&TAG_TGS_REP) => ok(parse_tgs_rep(i)).map(Message::TgsRep),
        Some(&TAG_AP_REQ) => ok(ApReq::from_der(i)).map(Message::ApReq),
        Some(&TAG_AP_REP) => ok(ApRep::from_der(i)).map(Message::ApRep),
        Some(&TAG_KRB_ERROR) => ok(KrbError::from_der(i)).map(Message::Error),
        _ => Err(RecordError::NotKerberos),
    }
}

/// An AP-REQ alone (GSS-API tokens carry exactly this message).
pub fn ap_req(i: &[u8]) -> Result<ApReq<'_>, RecordError> {
    match message(i)? {
        Message::ApReq(r) => Ok(r),
        _ => Err(RecordError::NotKerberos),
    }
}

/// The record mark of Kerberos over TCP (RFC 4120 §7.2.2): a 4-byte big-endian length whose
/// high bit is reserved (a KDC that sees it set answers KRB_ERR_FIELD_TOOLONG). Returns the
/// announced length; the record follows.
pub fn record_mark(i: &[u8]) -> IResult<&[u8], RecordLen> {
    let (i, word) = be_u32(i)?;
    let len = if word & 0x8000_0000 != 0 {
        RecordLen::Reserved
    } else {
        RecordLen::Bytes(word as usize)
    };
    Ok((i, len))
}

/// What a TCP record mark announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordLen {
    Bytes(usize),
    /// The reserved high bit is set: not a length this sensor reads.
    Reserved,
}

/// A KerberosTime (GeneralizedTime, always UTC "Z" in RFC 4120 §5.2.3) as capture time; None for
/// dates a timestamp cannot hold (before 1970, after 2554, or invalid).
pub fn time(t: &GeneralizedTime) -> Option<Ts> {
    let d = &t.0;
    let date = jiff::civil::Date::new(
        i16::try_from(d.year).ok()?,
        i8::try_from(d.month).ok()?,
        i8::try_from(d.day).ok()?,
    )
    .ok()?;
    let time = jiff::civil::Time::new(
        i8::try_from(d.hour).ok()?,
        i8::try_from(d.minute).ok()?,
        i8::try_from(d.second.min(59)).ok()?,
        0,
    )
    .ok()?;
    let secs = jiff::tz::Offset::UTC
        .to_timestamp(date.to_datetime(time))
        .ok()?
        .as_second();
    Ts::checked_from_secs(u64::try_from(secs).ok()?)
}

/// `name/instance` as Zeek and Wireshark write a principal, cut at [`MAX_KERBEROS_NAME_CHARS`].
pub fn principal(p: &PrincipalName) -> String {
    cut(p.name_string.join("/"))
}

/// A realm, cut at [`MAX_KERBEROS_NAME_CHARS`].
pub fn realm(r: &Realm) -> String {
    cut(r.0.clone())
}

fn cut(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(MAX_KERBEROS_NAME_CHARS) {
        s.truncate(at);
    }
    s
}

/// KDC options (RFC 4120 §5.4.1) a request asks for, as kerberos.log reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KdcOptions {
    pub forwardable: bool,
    pub renewable: bool,
}

impl KdcOptions {
    pub fn of(body: &KdcReqBody<'_>) -> KdcOptions {
        KdcOptions {
            forwardable: body.kdc_options.is_set(1),
            renewable: body.kdc_options.is_set(8),
        }
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
