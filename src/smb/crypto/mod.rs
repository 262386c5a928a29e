//! SMB3 encryption: key derivation from supplied secrets and AES-CCM/GCM decryption of transform
//! messages.
//!
//! The contract with the SMB2 state machine: one [`ConnDecryptor`] per TCP connection. The state
//! machine shows it every cleartext NEGOTIATE and SESSION_SETUP message (whole SMB2 messages, header
//! included) as it passes, and hands it each transform (0xFD) message; the decryptor answers with the
//! plaintext SMB2 message(s) when it holds keys for that session.

use crate::flow::Direction;

/// Secrets supplied with `--smb-keys`.
#[derive(Debug, Default)]
pub struct KeyStore {}

/// Per-connection key tracking and decryption.
#[derive(Debug, Default)]
pub struct ConnDecryptor {}

impl ConnDecryptor {
    pub fn new(_keys: Option<std::sync::Arc<KeyStore>>) -> ConnDecryptor {
        ConnDecryptor {}
    }
    /// A cleartext SMB2 message (64-byte header + body) seen in `dir`.
    pub fn observe(&mut self, _dir: Direction, _smb2_message: &[u8]) {}
    /// A whole transform message (from 0xFD 'SMB' through the end of the encrypted payload).
    /// Returns the decrypted SMB2 message bytes, or None without keys or when it fails to verify.
    pub fn decrypt(&mut self, _dir: Direction, _transform_message: &[u8]) -> Option<Vec<u8>> {
        None
    }
}
