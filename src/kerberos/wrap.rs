//! GSS-API Kerberos wrap tokens as DCE-RPC packet privacy carries them ("DCE style", MS-KILE
//! 3.4.5.4, MS-RPCE 2.2.2.11): the token in the PDU's auth verifier, the sealed stub in place in
//! the PDU body, never moved. Unsealing only: the sensor reads, it never wraps.
//!
//! - AES (RFC 4121 4.2.6.2): a 16-byte header (TOK_ID 05 04, flags, filler FF, EC, RRC, SND_SEQ)
//!   then E(confounder | stub | EC filler bytes | copy of the header) | HMAC, rotated right by
//!   RRC + EC (Windows and impacket count the filler in the rotation; Wireshark's `is_dce` rule),
//!   so that the verifier holds the header, filler, header copy, checksum and confounder and the
//!   body holds exactly the stub. A strict RFC 4121 rotation (RRC alone) is tried second.
//! - RC4-HMAC (RFC 4757 7.3): a 32-byte token (TOK_ID 02 01, SGN_ALG 11 00, SEAL_ALG 10 00,
//!   filler, encrypted SND_SEQ, SGN_CKSUM, encrypted confounder) after the GSS framing; one RC4
//!   stream seals the confounder and then the stub.
//!
//! With DCE-RPC header signing (PFC_SUPPORT_HEADER_SIGN, MS-RPCE 3.3.1.5.2.2) the checksum also
//! covers the PDU header before the stub and the sec_trailer after it, unencrypted ([`Signed`]);
//! the integrity check tells which was used, so both are tried.

use super::crypto::{self, Enctype, Key, Signed};
use nom::bytes::complete::{tag, take};
use nom::number::complete::{be_u16, be_u64, u8 as byte};
use nom::{IResult, Parser};

/// RFC 4121 2: key usages of wrap tokens.
pub const KG_USAGE_ACCEPTOR_SEAL: u32 = 22;
pub const KG_USAGE_INITIATOR_SEAL: u32 = 24;
/// RFC 4757 7.3: the RC4-HMAC seal checksum's usage.
const RC4_USAGE_SEAL: u32 = 13;

const TOK_ID_CFX_WRAP: [u8; 2] = [0x05, 0x04];
const TOK_ID_RC4_WRAP: [u8; 2] = [0x02, 0x01];
/// RFC 4121 4.2.2 flags.
pub const FLAG_SENT_BY_ACCEPTOR: u8 = 0x01;
pub const FLAG_SEALED: u8 = 0x02;
pub const FLAG_ACCEPTOR_SUBKEY: u8 = 0x04;
pub const CFX_HEADER_LEN: usize = 16;
/// RFC 4757: TOK_ID .. filler (8) + SND_SEQ (8) + SGN_CKSUM (8) + confounder (8).
pub const RC4_TOKEN_LEN: usize = 32;
/// The GSS framing before an RC4 token: 60 len 06 09 <krb5 OID>.
const RC4_GSS_PREFIX: [u8; 13] = [
    0x60, 0x2b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];

/// The RFC 4121 wrap token header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CfxHeader {
    pub flags: u8,
    pub ec: u16,
    pub rrc: u16,
    pub seq: u64,
}

pub fn cfx_header(i: &[u8]) -> IResult<&[u8], CfxHeader> {
    let (i, (_, flags, _, ec, rrc, seq)) = (
        tag(&TOK_ID_CFX_WRAP[..]),
        byte,
        tag(&[0xffu8][..]),
        be_u16,
        be_u16,
        be_u64,
    )
        .parse(i)?;
    Ok((
        i,
        CfxHeader {
            flags,
            ec,
            rrc,
            seq,
        },
    ))
}

/// An RFC 4757 wrap token (after its GSS framing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rc4Token<'a> {
    /// TOK_ID, SGN_ALG, SEAL_ALG and filler: the bytes the checksum covers.
    pub header: &'a [u8],
    /// SEAL_ALG 10 00 (RC4); FF FF means integrity only.
    pub sealed: bool,
    pub snd_seq: &'a [u8],
    pub cksum: &'a [u8],
    pub confounder: &'a [u8],
}

pub fn rc4_token(i: &[u8]) -> IResult<&[u8], Rc4Token<'_>> {
    let i = i.strip_prefix(&RC4_GSS_PREFIX[..]).unwrap_or(i);
    let (rest, header) = take(8usize).parse(i)?;
    let (_, (_, _sgn_alg, seal_alg, _filler)) = (
        tag(&TOK_ID_RC4_WRAP[..]),
        tag(&[0x11u8, 0x00][..]),
        take(2usize),
        tag(&[0xffu8, 0xff][..]),
    )
        .parse(header)?;
    let (rest, (snd_seq, cksum, confounder)) =
        (take(8usize), take(8usize), take(8usize)).parse(rest)?;
    Ok((
        rest,
        Rc4Token {
            header,
            sealed: seal_alg == [0x10, 0x00],
            snd_seq,
            cksum,
            confounder,
        },
    ))
}

/// The keys of an established Kerberos security context. The wrap token says which it uses.
#[derive(Clone, Debug)]
pub struct ContextKeys {
    pub ticket: Key,
    pub initiator_subkey: Option<Key>,
    pub acceptor_subkey: Option<Key>,
}

impl ContextKeys {
    /// RFC 4121 2: the acceptor subkey when the token's flag says so, else the initiator's
    /// subkey, else the ticket's session key.
    fn cfx_key(&self, flags: u8) -> Option<&Key> {
        if flags & FLAG_ACCEPTOR_SUBKEY != 0 {
            self.acceptor_subkey.as_ref()
        } else {
            Some(self.initiator_subkey.as_ref().unwrap_or(&self.ticket))
        }
    }

    /// RFC 4757 / MS-KILE 3.1.1.2: the context's session key, the AP-REP's subkey first.
    fn rc4_key(&self) -> &Key {
        self.acceptor_subkey
            .as_ref()
            .or(self.initiator_subkey.as_ref())
            .unwrap_or(&self.ticket)
    }
}

/// Why a sealed stub could not be opened. Carries no key material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    #[error("the auth verifier is not a Kerberos wrap token")]
    NotAWrapToken,
    #[error("the wrap token is not sealed (integrity only)")]
    NotSealed,
    #[error("the token uses the acceptor subkey, and no AP-REP with one was seen")]
    NoAcceptorSubkey,
    #[error("the token's enctype does not match the context key")]
    WrongEnctype,
    #[error("the sealed data did not pass its integrity check (wrong key or corrupted)")]
    Integrity,
}

/// A stub opened from its wrap token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsealed {
    /// The stub as the sender wrote it (with its DCE-RPC auth padding).
    pub plaintext: Vec<u8>,
    /// The token says the acceptor (server) sent it.
    pub sent_by_acceptor: bool,
    pub seq: u64,
}

/// Opens `sealed` (the PDU body bytes after the request/response header, up to the sec_trailer)
/// with the wrap token in `verifier`. `signed` are the header-signing buffers (PDU header before
/// the stub, sec_trailer); they are tried after the plain form.
pub fn unseal_dce(
    keys: &ContextKeys,
    verifier: &[u8],
    sealed: &[u8],
    signed: (&[u8], &[u8]),
) -> Result<Unsealed, UnsealError> {
    if let Ok((rest, h)) = cfx_header(verifier) {
        return unseal_cfx(keys, &h, rest, sealed, signed);
    }
    if let Ok((_, t)) = rc4_token(verifier) {
        return unseal_rc4(keys, &t, sealed, signed);
    }
    Err(UnsealError::NotAWrapToken)
}

fn unseal_cfx(
    keys: &ContextKeys,
    h: &CfxHeader,
    rest: &[u8],
    sealed: &[u8],
    signed: (&[u8], &[u8]),
) -> Result<Unsealed, UnsealError> {
    if h.flags & FLAG_SEALED == 0 {
        return Err(UnsealError::NotSealed);
    }
    let key = keys.cfx_key(h.flags).ok_or(UnsealError::NoAcceptorSubkey)?;
    if key.enctype == Enctype::Rc4Hmac {
        return Err(UnsealError::WrongEnctype);
    }
    let sent_by_acceptor = h.flags & FLAG_SENT_BY_ACCEPTOR != 0;
    let usage = if sent_by_acceptor {
        KG_USAGE_ACCEPTOR_SEAL
    } else {
        KG_USAGE_INITIATOR_SEAL
    };
    let rotated: Vec<u8> = [rest, sealed].concat();
    let len = rotated.len();
    if len == 0 {
        return Err(UnsealError::Integrity);
    }
    let dce = (usize::from(h.rrc) + usize::from(h.ec)) % len;
    let strict = usize::from(h.rrc) % len;
    let rotations = if dce == strict {
        vec![dce]
    } else {
        vec![dce, strict]
    };
    for rot in rotations {
        let mut ciphertext = Vec::with_capacity(len);
        ciphertext.extend_from_slice(&rotated[rot..]);
        ciphertext.extend_from_slice(&rotated[..rot]);
        for (pre, post) in sign_variants(signed) {
            let signed = Signed {
                pre,
                data_len: sealed.len(),
                post,
            };
            if let Ok(mut plain) = crypto::decrypt_aes_signed(key, usage, &ciphertext, signed) {
                // The stub, then EC filler bytes and the header copy (checksummed, dropped).
                plain.truncate(sealed.len());
                return Ok(Unsealed {
                    plaintext: plain,
                    sent_by_acceptor,
                    seq: h.seq,
                });
            }
        }
    }
    Err(UnsealError::Integrity)
}

fn unseal_rc4(
    keys: &ContextKeys,
    t: &Rc4Token<'_>,
    sealed: &[u8],
    signed: (&[u8], &[u8]),
) -> Result<Unsealed, UnsealError> {
    use rc4::StreamCipher;
    if !t.sealed {
        return Err(UnsealError::NotSealed);
    }
    let key = keys.rc4_key();
    if key.enctype != Enctype::Rc4Hmac {
        return Err(UnsealError::WrongEnctype);
    }
    let kss = key.bytes();
    // The sequence number is sealed with a key made from the checksum.
    let kseq = hmac_md5(&hmac_md5(kss, &0u32.to_le_bytes()), t.cksum);
    let mut seq = t.snd_seq.to_vec();
    rc4_apply(&kseq, &mut seq);
    let klocal: Vec<u8> = kss.iter().map(|b| b ^ 0xf0).collect();
    let kcrypt = hmac_md5(&hmac_md5(&klocal, &0u32.to_le_bytes()), &seq[..4]);
    let mut stream = <rc4::Rc4 as rc4::KeyInit>::new_from_slice(&kcrypt).expect("16-byte key");
    let mut confounder = t.confounder.to_vec();
    stream.apply_keystream(&mut confounder);
    let mut plain = sealed.to_vec();
    stream.apply_keystream(&mut plain);
    let ksign = hmac_md5(kss, b"signaturekey\0");
    for (p, q) in sign_variants(signed) {
        use md5::Digest;
        let mut md5 = md5::Md5::new();
        for part in [
            &RC4_USAGE_SEAL.to_le_bytes()[..],
            t.header,
            &confounder,
            p,
            &plain,
            q,
        ] {
            md5.update(part);
        }
        let cksum = hmac_md5(&ksign, &md5.finalize());
        if cksum[..8] == *t.cksum {
            // The direction: the acceptor's sequence numbers end in FF FF FF FF (RFC 4757 7.2).
            let sent_by_acceptor = seq[4..] == [0xff; 4];
            let n = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
            return Ok(Unsealed {
                plaintext: plain,
                sent_by_acceptor,
                seq: u64::from(n),
            });
        }
    }
    Err(UnsealError::Integrity)
}

/// Without header signing first, then with it (when there is something to sign).
fn sign_variants<'a>(signed: (&'a [u8], &'a [u8])) -> Vec<(&'a [u8], &'a [u8])> {
    let plain: (&[u8], &[u8]) = (&[], &[]);
    if signed.0.is_empty() && signed.1.is_empty() {
        vec![plain]
    } else {
        vec![plain, signed]
    }
}

fn rc4_apply(key: &[u8], data: &mut [u8]) {
    use rc4::StreamCipher;
    let mut c = <rc4::Rc4 as rc4::KeyInit>::new_from_slice(key).expect("16-byte key");
    c.apply_keystream(data);
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    crate::smb::crypto::ntlm::hmac_md5(key, &[data])
}

#[cfg(test)]
mod tests;
