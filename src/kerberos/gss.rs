//! The GSS-API and SPNEGO framing around a Kerberos AP-REQ (RFC 2743 §3.1, RFC 4178 §4.2,
//! RFC 4121 §4.1), as SMB SESSION_SETUP security blobs and DCE-RPC auth verifiers carry it:
//!
//! ```text
//! 0x60 len  06 OID(SPNEGO)  a0 len NegTokenInit ::= 30 len { [0] mechTypes, [1] reqFlags,
//!                                                            [2] mechToken OCTET STRING, [3] … }
//!   mechToken = 0x60 len  06 OID(KRB5 | MS-KRB5)  01 00 (TOK_ID AP-REQ)  AP-REQ
//! ```
//!
//! DCE-RPC auth type 16 (Kerberos) carries the inner KRB5 token alone; auth type 9 (SPNEGO) the
//! whole. No rusticata crate parses SPNEGO (Suricata walks it by hand with der-parser), so these
//! few tags are read here with nom 8, bounded: each step goes one level in, never recursing.

use nom::bytes::complete::take;
use nom::number::complete::u8 as byte;
use nom::IResult;

/// SPNEGO 1.3.6.1.5.5.2, DER body of the OID.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// Kerberos 5 1.2.840.113554.1.2.2 and Microsoft's (mistaken, still sent) 1.2.840.48018.1.2.2.
const KRB5_OID: &[u8] = &KRB5_OID_BODY;
const MS_KRB5_OID: &[u8] = &MS_KRB5_OID_BODY;
const KRB5_OID_BODY: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
const MS_KRB5_OID_BODY: [u8; 9] = [0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];
/// Both KRB5 OIDs as DER elements (tag, length, body): how they stand in a security blob.
pub(crate) const KRB5_OID_ELEMENTS: [[u8; 11]; 2] =
    [oid_element(KRB5_OID_BODY), oid_element(MS_KRB5_OID_BODY)];
/// RFC 4121 §4.1: the token ids of an AP-REQ and an AP-REP inside a KRB5 context token.
const TOK_ID_AP_REQ: [u8; 2] = [0x01, 0x00];
const TOK_ID_AP_REP: [u8; 2] = [0x02, 0x00];

const TAG_APPLICATION_0: u8 = 0x60;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NEG_TOKEN_INIT: u8 = 0xa0;
const TAG_MECH_TOKEN: u8 = 0xa2;
const TAG_AP_REQ: u8 = 0x6e;
const TAG_AP_REP: u8 = 0x6f;
const TAG_NEG_TOKEN_RESP: u8 = 0xa1;
const TAG_RESPONSE_TOKEN: u8 = 0xa2;

/// A DER length (definite: short form, or long form of 1 to 4 octets).
fn der_len(i: &[u8]) -> IResult<&[u8], usize> {
    let (i, first) = byte(i)?;
    if first < 0x80 {
        return Ok((i, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return Err(nom::Err::Error(nom::error::Error::new(
            i,
            nom::error::ErrorKind::LengthValue,
        )));
    }
    let (i, bytes) = take(n)(i)?;
    Ok((
        i,
        bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b)),
    ))
}

/// One DER element: its identifier octet and contents.
fn tlv(i: &[u8]) -> IResult<&[u8], (u8, &[u8])> {
    let (i, tag) = byte(i)?;
    let (i, len) = der_len(i)?;
    let (i, value) = take(len)(i)?;
    Ok((i, (tag, value)))
}

/// The element with `tag` at the start of `i`.
fn expect(tag: u8, i: &[u8]) -> Option<&[u8]> {
    match tlv(i) {
        Ok((_, (t, v))) if t == tag => Some(v),
        _ => None,
    }
}

/// The AP-REQ message inside a security blob or auth verifier: an SPNEGO NegTokenInit (with or
/// without the GSS header) whose mechToken is Kerberos, a KRB5 GSS token, or a bare AP-REQ.
/// None for anything else (NTLMSSP, NegTokenResp legs, AP-REP, cut or malformed tokens).
pub fn ap_req_bytes(blob: &[u8]) -> Option<&[u8]> {
    match *blob.first()? {
        TAG_AP_REQ => Some(blob),
        TAG_NEG_TOKEN_INIT => krb5_token(mech_token(expect(TAG_NEG_TOKEN_INIT, blob)?)?),
        TAG_APPLICATION_0 => {
            let inner = expect(TAG_APPLICATION_0, blob)?;
            let (rest, (tag, oid)) = tlv(inner).ok()?;
            if tag != TAG_OID {
                return None;
            }
            if oid == SPNEGO_OID {
                krb5_token(mech_token(expect(TAG_NEG_TOKEN_INIT, rest)?)?)
            } else {
                after_krb5_oid(oid, rest, TOK_ID_AP_REQ, TAG_AP_REQ)
            }
        }
        _ => None,
    }
}

/// The AP-REP message in an acceptor's token: an SPNEGO NegTokenResp whose responseToken is
/// Kerberos, a KRB5 GSS token, or a bare AP-REP (DCE-style Kerberos sends it unframed: MS-KILE
/// 3.4.5.1, DCE-RPC auth type 16 and inside SPNEGO alike). None for anything else (KRB-ERROR,
/// NTLMSSP, a NegTokenResp without a token, cut or malformed tokens).
pub fn ap_rep_bytes(blob: &[u8]) -> Option<&[u8]> {
    match *blob.first()? {
        TAG_AP_REP => Some(blob),
        TAG_NEG_TOKEN_RESP => {
            let token = field(expect(TAG_NEG_TOKEN_RESP, blob)?, TAG_RESPONSE_TOKEN)?;
            krb5_message(expect(TAG_OCTET_STRING, token)?, TOK_ID_AP_REP, TAG_AP_REP)
        }
        TAG_APPLICATION_0 => krb5_message(blob, TOK_ID_AP_REP, TAG_AP_REP),
        _ => None,
    }
}

/// The `[n]` field with `tag` of a SEQUENCE.
fn field(sequence: &[u8], tag: u8) -> Option<&[u8]> {
    let mut fields = expect(TAG_SEQUENCE, sequence)?;
    while !fields.is_empty() {
        let (rest, (t, value)) = tlv(fields).ok()?;
        if t == tag {
            return Some(value);
        }
        fields = rest;
    }
    None
}

/// NegTokenInit's `mechToken` [2] OCTET STRING contents.
fn mech_token(neg_token_init: &[u8]) -> Option<&[u8]> {
    expect(TAG_OCTET_STRING, field(neg_token_init, TAG_MECH_TOKEN)?)
}

/// Whether `blob` holds a KRB5 or MS-KRB5 OID element anywhere (a mechanism list or token):
/// a security blob that speaks Kerberos, even where its token does not parse.
pub(crate) fn mentions_krb5(blob: &[u8]) -> bool {
    KRB5_OID_ELEMENTS
        .iter()
        .any(|oid| blob.windows(oid.len()).any(|w| w == oid))
}

const fn oid_element(body: [u8; 9]) -> [u8; 11] {
    let mut e = [TAG_OID, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut i = 0;
    while i < body.len() {
        e[i + 2] = body[i];
        i += 1;
    }
    e
}

/// The AP-REQ in a mechToken: a KRB5 GSS token or a bare AP-REQ (never another SPNEGO layer).
fn krb5_token(token: &[u8]) -> Option<&[u8]> {
    krb5_message(token, TOK_ID_AP_REQ, TAG_AP_REQ)
}

/// The Kerberos message with `tag` in a KRB5 GSS token with `tok_id`, or bare.
fn krb5_message(token: &[u8], tok_id: [u8; 2], tag: u8) -> Option<&[u8]> {
    if *token.first()? == tag {
        return Some(token);
    }
    let inner = expect(TAG_APPLICATION_0, token)?;
    let (rest, (t, oid)) = tlv(inner).ok()?;
    if t != TAG_OID {
        return None;
    }
    after_krb5_oid(oid, rest, tok_id, tag)
}

/// After a KRB5 OID: the token id, then the message with `tag`.
fn after_krb5_oid<'a>(oid: &[u8], rest: &'a [u8], tok_id: [u8; 2], tag: u8) -> Option<&'a [u8]> {
    if oid != KRB5_OID && oid != MS_KRB5_OID {
        return None;
    }
    let body = rest.strip_prefix(&tok_id[..])?;
    (body.first() == Some(&tag)).then_some(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// DER element with a long-form length when needed (also the Kerberos exchange tests').
    pub(crate) fn el(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if v.len() < 0x80 {
            out.push(v.len() as u8);
        } else {
            out.extend([0x82, (v.len() >> 8) as u8, v.len() as u8]);
        }
        out.extend_from_slice(v);
        out
    }

    fn krb5_gss(ap_req: &[u8]) -> Vec<u8> {
        let mut inner = el(TAG_OID, KRB5_OID);
        inner.extend_from_slice(&TOK_ID_AP_REQ);
        inner.extend_from_slice(ap_req);
        el(TAG_APPLICATION_0, &inner)
    }

    fn spnego_init(mech_token: &[u8]) -> Vec<u8> {
        let mech_types = el(0xa0, &el(TAG_SEQUENCE, &el(TAG_OID, MS_KRB5_OID)));
        let mut seq = mech_types;
        seq.extend(el(TAG_MECH_TOKEN, &el(TAG_OCTET_STRING, mech_token)));
        let init = el(TAG_NEG_TOKEN_INIT, &el(TAG_SEQUENCE, &seq));
        let mut gss = el(TAG_OID, SPNEGO_OID);
        gss.extend(init);
        el(TAG_APPLICATION_0, &gss)
    }

    #[test]
    fn finds_the_ap_req_in_every_framing() {
        // A stand-in AP-REQ body, long enough for a long-form length on the way out.
        let ap = el(TAG_AP_REQ, &[0x30; 300]);
        assert_eq!(ap_req_bytes(&ap), Some(&ap[..]));
        assert_eq!(ap_req_bytes(&krb5_gss(&ap)), Some(&ap[..]));
        assert_eq!(ap_req_bytes(&spnego_init(&krb5_gss(&ap))), Some(&ap[..]));
        assert_eq!(ap_req_bytes(&spnego_init(&ap)), Some(&ap[..]));
        // NegTokenInit without the GSS header (some DCE-RPC SPNEGO verifiers).
        let bare = spnego_init(&krb5_gss(&ap));
        let no_header = &bare[2 + 2 + SPNEGO_OID.len() + 2..];
        assert_eq!(no_header[0], TAG_NEG_TOKEN_INIT);
        assert_eq!(ap_req_bytes(no_header), Some(&ap[..]));
    }

    #[test]
    fn other_tokens_and_cut_ones_give_nothing() {
        let ap = el(TAG_AP_REQ, &[0x30; 40]);
        // NTLMSSP inside SPNEGO.
        assert_eq!(ap_req_bytes(&spnego_init(b"NTLMSSP\0\x01\0\0\0")), None);
        // A KRB5 token with the AP-REP token id.
        let mut rep = krb5_gss(&ap);
        let at = 2 + 2 + KRB5_OID.len();
        rep[at] = 0x02;
        assert_eq!(ap_req_bytes(&rep), None);
        // Every cut of a good token fails cleanly (never reads past the end, never panics).
        let good = spnego_init(&krb5_gss(&ap));
        for n in 0..good.len() {
            assert_eq!(ap_req_bytes(&good[..n]), None, "cut at {n}");
        }
        // A length of more than four octets.
        assert_eq!(ap_req_bytes(&[0x60, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(ap_req_bytes(&[]), None);
    }
}
