//! Kerberos (issue 16): the KDC exchanges on 88/udp and 88/tcp as Zeek's kerberos.log records,
//! and the join of a service ticket to the client it was issued to.
//!
//! The client's name travels in the clear twice: in the TGS-REP (`cname`/`crealm`) next to the
//! service ticket, and nowhere else an SMB or DCE-RPC server sees; the AP-REQ that opens the
//! session carries that ticket verbatim (its encrypted part byte for byte). So a digest of the
//! ticket's encrypted part ([`TicketDigest`]) joins the two: the KDC exchange indexes it
//! ([`exchange`] emits the reply with the issued ticket), the session's AP-REQ presents it
//! ([`presented`]), and [`join::TicketJoin`] fills the session's user where the workers' outputs
//! merge (the KDC and the server are different host pairs, so often different workers).
//!
//! - [`records`]: the messages (RFC 4120), wrapping rusticata's `kerberos-parser`; `kdc_req`
//!   reads the requests with the nonce MIT encodes signed.
//! - [`gss`]: SPNEGO / GSS-API framing around an AP-REQ.
//! - [`exchange`]: request ↔ reply pairing into events, over TCP (a stream parser) and UDP.
//! - [`join`]: the bounded, expiring ticket index and the join.
//! - With secrets (`--keytab`): [`keytab`] (MIT keytab files), [`crypto`] (RFC 3961/3962/4757
//!   decryption) and [`ticket`] (service ticket, authenticator and AP-REP opened with them: the
//!   client without its TGS-REP, and the session key of a Kerberos-authenticated SMB3 session).

pub mod crypto;
pub mod exchange;
pub mod gss;
pub mod join;
mod kdc_req;
pub mod keytab;
pub mod records;
pub mod ticket;

use crate::wire::hash::StableHash;

/// Kerberos' well-known port (RFC 4120 §7.2), UDP and TCP.
pub const KERBEROS_PORT: u16 = 88;

/// A stable digest of a ticket's encrypted part (etype and cipher bytes): the same in the
/// TGS-REP that issued the ticket and in every AP-REQ that presents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TicketDigest(pub u64);

impl TicketDigest {
    pub fn of(ticket: &records::Ticket<'_>) -> TicketDigest {
        TicketDigest(StableHash::of_parts(&[
            &ticket.enc_part.etype.0.to_be_bytes(),
            ticket.enc_part.cipher,
        ]))
    }
}

/// What an AP-REQ presents to a server: which ticket, for which service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    pub ticket: TicketDigest,
    /// The ticket's `sname` (`cifs/host`, `host/host` …) and realm.
    pub service: String,
    pub realm: String,
}

/// The ticket an AP-REQ presents, from a security blob or auth verifier (SPNEGO, a KRB5 GSS
/// token, or a bare AP-REQ). None when the blob holds no AP-REQ or it does not parse.
pub fn presented(blob: &[u8]) -> Option<Presented> {
    let ap = records::ap_req(gss::ap_req_bytes(blob)?).ok()?;
    Some(Presented {
        ticket: TicketDigest::of(&ap.ticket),
        service: records::principal(&ap.ticket.sname),
        realm: records::realm(&ap.ticket.realm),
    })
}
