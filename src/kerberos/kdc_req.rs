//! KDC-REQ (RFC 4120 §5.4.1), the AS-REQ and TGS-REQ body, read with the nonce as real clients
//! encode it.
//!
//! RFC 4120 types the nonce `UInt32` (0..4294967295), but MIT krb5 encodes it as a signed 32-bit
//! INTEGER (`asn1_encode_int32` of a random `krb5_int32`), so about half of its requests carry a
//! negative one on the wire, and Heimdal and Windows KDCs accept them. `kerberos-parser` 0.9 (the
//! latest) reads the nonce as `u32` and refuses the whole request (`IntegerNegative`). This
//! module is that crate's KDC-REQ reader with one difference: the nonce is any INTEGER that fits
//! 32 bits, signed or not, kept as its 32-bit pattern (what MIT meant). Every field is read by
//! the crate's own `FromDer` types, so the result is the crate's [`KdcReq`] and the rest of the
//! sensor does not know which reader ran. The difference is small enough to offer upstream.

use der_parser::asn1_rs::{
    BitString, Class, Error, FromDer, GeneralizedTime, Integer, OptTaggedParser, ParseResult,
    Sequence, Tag, TaggedParser,
};
use kerberos_parser::krb5::{
    EncryptedData, EncryptionType, HostAddress, KdcReq, KdcReqBody, MessageType, PAData,
    PrincipalName, Realm, Ticket,
};

const CS: Class = Class::ContextSpecific;

/// APPLICATION tag numbers of the two requests (RFC 4120 §5.4.1).
pub const APP_AS_REQ: u32 = 10;
pub const APP_TGS_REQ: u32 = 12;

/// `[APPLICATION app] KDC-REQ`: an AS-REQ (10) or TGS-REQ (12).
pub fn kdc_req(i: &[u8], app: u32) -> ParseResult<'_, KdcReq<'_>, Error> {
    TaggedParser::from_der_and_then(Class::Application, app, i, req)
}

/// KDC-REQ ::= SEQUENCE { pvno [1], msg-type [2], padata [3] OPTIONAL, req-body [4] }
fn req(bytes: &[u8]) -> ParseResult<'_, KdcReq<'_>, Error> {
    Sequence::from_der_and_then(bytes, |i| {
        let (i, pvno) = TaggedParser::from_der_and_then(CS, 1, i, u32::from_der)?;
        let (i, msg_type) = TaggedParser::from_der_and_then(CS, 2, i, u32::from_der)?;
        let (i, padata) =
            OptTaggedParser::new(CS, Tag(3)).parse_der(i, |_, d| <Vec<PAData>>::from_der(d))?;
        let (i, req_body) = TaggedParser::from_der_and_then(CS, 4, i, body)?;
        let req = KdcReq {
            pvno,
            msg_type: MessageType(msg_type),
            padata: padata.unwrap_or_default(),
            req_body,
        };
        Ok((i, req))
    })
}

/// KDC-REQ-BODY, fields [0]..[11] in order, as the crate reads them but for the nonce.
fn body(bytes: &[u8]) -> ParseResult<'_, KdcReqBody<'_>, Error> {
    Sequence::from_der_and_then(bytes, |i| {
        let (i, kdc_options) = TaggedParser::from_der_and_then(CS, 0, i, BitString::from_der)?;
        let (i, cname) =
            OptTaggedParser::new(CS, Tag(1)).parse_der(i, |_, d| PrincipalName::from_der(d))?;
        let (i, realm) = TaggedParser::from_der_and_then(CS, 2, i, Realm::from_der)?;
        let (i, sname) =
            OptTaggedParser::new(CS, Tag(3)).parse_der(i, |_, d| PrincipalName::from_der(d))?;
        let (i, from) =
            OptTaggedParser::new(CS, Tag(4)).parse_der(i, |_, d| GeneralizedTime::from_der(d))?;
        let (i, till) = TaggedParser::from_der_and_then(CS, 5, i, GeneralizedTime::from_der)?;
        let (i, rtime) =
            OptTaggedParser::new(CS, Tag(6)).parse_der(i, |_, d| GeneralizedTime::from_der(d))?;
        let (i, nonce) = TaggedParser::from_der_and_then(CS, 7, i, nonce)?;
        let (i, etype) = TaggedParser::from_der_and_then(CS, 8, i, <Vec<i32>>::from_der)?;
        let (i, addresses) = OptTaggedParser::new(CS, Tag(9))
            .parse_der(i, |_, d| <Vec<HostAddress>>::from_der(d))?;
        let (i, enc_authorization_data) =
            OptTaggedParser::new(CS, Tag(10)).parse_der(i, |_, d| EncryptedData::from_der(d))?;
        let (i, additional_tickets) =
            OptTaggedParser::new(CS, Tag(11)).parse_der(i, |_, d| <Vec<Ticket>>::from_der(d))?;
        let body = KdcReqBody {
            kdc_options,
            cname,
            realm,
            sname,
            from,
            till,
            rtime,
            nonce,
            etype: etype.into_iter().map(EncryptionType).collect(),
            addresses: addresses.unwrap_or_default(),
            enc_authorization_data,
            additional_tickets: additional_tickets.unwrap_or_default(),
        };
        Ok((i, body))
    })
}

/// The nonce: an INTEGER in 0..=u32::MAX (RFC 4120) or in i32's range (MIT), as 32 bits.
fn nonce(i: &[u8]) -> ParseResult<'_, u32, Error> {
    let (rest, int) = Integer::from_der(i)?;
    let value = match (int.as_u32(), int.as_i32()) {
        (Ok(v), _) => v,
        // Two's complement: the bits MIT drew, read back as the unsigned nonce.
        (Err(_), Ok(v)) => v as u32,
        (Err(e), Err(_)) => return Err(der_parser::nom::Err::Error(e)),
    };
    Ok((rest, value))
}

#[cfg(test)]
#[path = "kdc_req_tests.rs"]
mod tests;
