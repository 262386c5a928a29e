//! SMB 3.1.1 pre-authentication integrity (MS-SMB2 3.2.5.2, 3.2.5.3): a SHA-512 chain
//! H' = SHA-512(H || message) that starts from 64 zero bytes at the NEGOTIATE request, covers
//! the NEGOTIATE response (connection level), then per session each SESSION_SETUP request and
//! each SESSION_SETUP response except the final successful one. The final value is the context
//! of the 3.1.1 key derivation, so both peers' keys depend on every byte of the handshake.

use sha2::{Digest, Sha512};

#[derive(Clone, PartialEq, Eq)]
pub struct PreauthHash(pub [u8; 64]);

impl PreauthHash {
    pub fn zero() -> PreauthHash {
        PreauthHash([0u8; 64])
    }
    pub fn update(&mut self, whole_smb2_message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.0);
        h.update(whole_smb2_message);
        self.0.copy_from_slice(&h.finalize());
    }
}

impl std::fmt::Debug for PreauthHash {
    // Not secret, but long; the first bytes are enough to tell values apart in test output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PreauthHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smb::crypto::testutil::*;

    // Microsoft's published chain, message by message.
    #[test]
    fn published_chain() {
        let msgs = [
            MS_NEGOTIATE_REQUEST,
            MS_NEGOTIATE_RESPONSE,
            MS_SESSION_SETUP_REQUEST_1,
            MS_SESSION_SETUP_RESPONSE_1,
        ];
        let mut h = PreauthHash::zero();
        for (m, want) in msgs.iter().zip(MS_PREAUTH_HASHES) {
            h.update(&hex(m));
            assert_eq!(h.0.to_vec(), hex(want));
        }
        h.update(&hex(MS_SESSION_SETUP_REQUEST_2));
        assert_eq!(h.0.to_vec(), hex(MS_PREAUTH_FINAL));
    }
}
