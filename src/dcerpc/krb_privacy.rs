//! Kerberos packet privacy on one association, with a keytab (issue 16), the way Wireshark opens
//! it: the bind's (or alter_context's) AP-REQ, its ticket decrypted with the service's key from
//! the keytab, gives the client, the ticket's session key and the authenticator's subkey; the
//! server's AP-REP (bind_ack / alter_context_resp) the acceptor subkey; the wrap token in each
//! request's and response's auth verifier then opens its stub ([`crate::kerberos::wrap`]).
//!
//! One security context per association (the latest AP-REQ wins): a client that binds again
//! re-keys. The client's own third-leg AP-REP (alter_context or auth3, DCE style) carries no
//! subkey and is not the acceptor's, so only the server's direction is read for it.

use super::pdu::{self, AuthTrailer, Header};
use crate::kerberos::keytab::Keytab;
use crate::kerberos::ticket::{self, KrbClient, OpenError};
use crate::kerberos::wrap::{self, ContextKeys, UnsealError};

/// An opened context: who, and the keys. Debug shows no key bytes (Key's Debug redacts).
#[derive(Clone, Debug)]
pub struct KrbContext {
    pub client: KrbClient,
    keys: ContextKeys,
}

impl KrbContext {
    /// Opens the AP-REQ in a bind's auth verifier. None: no AP-REQ there (NTLMSSP, a later leg).
    pub fn open(keytab: &Keytab, verifier: &[u8]) -> Option<Result<KrbContext, OpenError>> {
        crate::kerberos::gss::ap_req_bytes(verifier)?;
        Some(ticket::open_ap_req(keytab, verifier).map(|o| KrbContext {
            client: o.client.clone(),
            keys: ContextKeys {
                ticket: o.ticket_key,
                initiator_subkey: o.initiator_subkey,
                acceptor_subkey: None,
            },
        }))
    }

    /// The server's AP-REP in a bind_ack / alter_context_resp verifier: its subkey, when it has
    /// one, keys the tokens flagged AcceptorSubkey. Returns whether one was learned.
    pub fn acceptor_answer(&mut self, verifier: &[u8]) -> bool {
        let Some(enc) = ticket::find_ap_rep(verifier) else {
            return false;
        };
        let subkey = crate::kerberos::crypto::decrypt(
            &self.keys.ticket,
            ticket::USAGE_AP_REP_ENC_PART,
            enc.cipher,
        )
        .ok()
        .and_then(|plain| ticket::enc_ap_rep_part(&plain).flatten());
        match subkey {
            Some(k) => {
                self.keys.acceptor_subkey = Some(k);
                true
            }
            None => false,
        }
    }

    /// Opens the stub of a request or response sealed under this context. `pdu` is the whole PDU,
    /// `trailer` its sec_trailer. Returns the stub without its auth padding.
    pub fn unseal(
        &self,
        pdu: &[u8],
        h: &Header,
        trailer: &AuthTrailer,
    ) -> Result<Vec<u8>, UnsealError> {
        let frag = usize::from(h.frag_len);
        let trailer_at = frag
            .checked_sub(usize::from(h.auth_len) + pdu::SEC_TRAILER_LEN)
            .ok_or(UnsealError::NotAWrapToken)?;
        let stub_at = pdu::stub_offset(h);
        let (Some(pre), Some(sealed), Some(post), Some(verifier)) = (
            pdu.get(..stub_at),
            pdu.get(stub_at..trailer_at),
            pdu.get(trailer_at..trailer_at + pdu::SEC_TRAILER_LEN),
            pdu::auth_value(pdu, h),
        ) else {
            return Err(UnsealError::NotAWrapToken);
        };
        let u = wrap::unseal_dce(&self.keys, verifier, sealed, (pre, post))?;
        let mut stub = u.plaintext;
        // The auth padding was sealed with the stub.
        stub.truncate(stub.len().saturating_sub(usize::from(trailer.pad_len)));
        Ok(stub)
    }
}
