//! SMB3 encryption: key derivation from supplied secrets and AES-CCM/GCM decryption of transform
//! messages.
//!
//! The contract with the SMB2 state machine: one [`ConnDecryptor`] per TCP connection. The state
//! machine shows it every cleartext NEGOTIATE and SESSION_SETUP message (whole SMB2 messages, header
//! included) as it passes, and hands it each transform (0xFD) message; the decryptor answers with the
//! plaintext SMB2 message(s) when it holds keys for that session. What it learns or fails at is
//! queued as [`DecryptNote`]s, which the SMB layer drains with [`ConnDecryptor::take_notes`] and turns
//! into `anomaly` events of kind `decrypt` (failures) or visibility facts (keys derived). Notes never
//! carry a secret.
//!
//! The path from a password to plaintext (see issue 7 and the module of each step):
//! [`ntlm`] (NT hash → NTOWFv2 → NTProofStr check → session base key → KEY_EXCH unwrap) →
//! [`preauth`] (SMB 3.1.1 SHA-512 chain over NEGOTIATE and SESSION_SETUP) → [`kdf`] (SP800-108,
//! HMAC-SHA256) → [`cipher`] (AES-128/256-CCM/GCM, AAD = transform header bytes 20..52).
//!
//! With a keytab (`--keytab`) a Kerberos session's key comes from its AP-REQ instead of NTLM
//! ([`crate::kerberos::ticket`]: the ticket decrypted with the service's key, then the
//! authenticator's and the AP-REP's subkeys); from there the path is the same.

pub mod cipher;
pub mod kdf;
pub mod keyfile;
pub mod ntlm;
pub mod preauth;
#[cfg(test)]
pub(crate) mod testutil;

use crate::flow::Direction;
use crate::kerberos::keytab::Keytab;
use crate::kerberos::ticket::{self, KrbClient, OpenError, OpenedApReq};
use crate::smb::smb2::records::{
    parse_header, parse_negotiate_response, parse_session_setup_request,
    parse_session_setup_response, parse_transform_header, Command, Header, SessionSetupRequest,
    SESSION_FLAG_BINDING, SESSION_FLAG_ENCRYPT_DATA, STATUS_MORE_PROCESSING_REQUIRED,
    STATUS_SUCCESS,
};
use crate::wire::parsed;
use cipher::Cipher;
use keyfile::{Credential, KeyFileError, SessionSecret};
use preauth::PreauthHash;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Sessions tracked per connection (a client opens one or two; more is hostile).
pub const MAX_SESSIONS_PER_CONN: usize = 64;
/// SESSION_SETUP requests with SessionId 0 awaiting the response that names their session.
pub const MAX_PENDING_SETUPS: usize = 16;
/// Notes queued between two `take_notes` calls; past this only a count is kept.
pub const MAX_PENDING_NOTES: usize = 64;
/// Transform messages larger than this are not decrypted (the NetBIOS length field allows at most
/// 16 MiB, SMB2 messages are smaller still).
pub const MAX_TRANSFORM_MESSAGE: usize = 16 << 20;
/// SESSION_SETUP round trips folded into one session's preauth hash (NTLM needs two, Kerberos one
/// or two; more is hostile or broken).
pub const MAX_SETUP_ROUNDS: u32 = 8;

/// Secrets supplied with `--smb-keys` (format in [`keyfile`]) and `--keytab`. Debug shows counts
/// only.
#[derive(Default)]
pub struct KeyStore {
    creds: Vec<Credential>,
    sessions: Vec<SessionSecret>,
    keytab: Option<Keytab>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("credentials", &self.creds.len())
            .field("session_keys", &self.sessions.len())
            .field(
                "keytab_keys",
                &self.keytab.as_ref().map_or(0, |k| k.keys.len()),
            )
            .finish()
    }
}

impl KeyStore {
    /// Reads a key file. Returns the store and warnings for the user (a file readable by group or
    /// others). Errors name the file and line.
    pub fn load(path: &std::path::Path) -> Result<(KeyStore, Vec<String>), KeyFileError> {
        let origin = path.display().to_string();
        let io = |e: std::io::Error| KeyFileError {
            origin: origin.clone(),
            line: 0,
            what: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.len() > keyfile::MAX_KEY_FILE_BYTES {
            return Err(KeyFileError {
                origin: origin.clone(),
                line: 0,
                what: format!(
                    "larger than {} bytes (MAX_KEY_FILE_BYTES)",
                    keyfile::MAX_KEY_FILE_BYTES
                ),
            });
        }
        let warnings: Vec<String> = keyfile::permission_warning(path, &meta)
            .into_iter()
            .collect();
        let text = std::fs::read_to_string(path).map_err(io)?;
        let store = KeyStore::parse(&text, &origin)?;
        Ok((store, warnings))
    }

    /// Parses key file text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<KeyStore, KeyFileError> {
        let (creds, sessions) = keyfile::parse(text, origin)?;
        Ok(KeyStore {
            creds,
            sessions,
            keytab: None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty() && self.sessions.is_empty() && self.keytab.is_none()
    }

    /// Adds the keys of a keytab (`--keytab`, repeatable).
    pub fn add_keytab(&mut self, kt: Keytab) -> Result<(), crate::kerberos::keytab::KeytabError> {
        match self.keytab.as_mut() {
            Some(have) => have.extend(kt),
            None => {
                self.keytab = Some(kt);
                Ok(())
            }
        }
    }

    /// The keytab's keys, when one was supplied (DCE-RPC packet privacy opens with them too).
    pub fn keytab(&self) -> Option<&Keytab> {
        self.keytab.as_ref()
    }

    fn session_secret(&self, session_id: u64) -> Option<&SessionSecret> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }

    /// Credentials that may belong to `user`@`domain` as the AUTHENTICATE message names them.
    fn credentials_for<'a>(
        &'a self,
        user: &'a str,
        domain: &'a str,
    ) -> impl Iterator<Item = &'a Credential> + 'a {
        self.creds.iter().filter(move |c| {
            c.user.to_lowercase() == user.to_lowercase()
                && match &c.domain {
                    None => true,
                    Some(d) => domain.is_empty() || d.to_lowercase() == domain.to_lowercase(),
                }
        })
    }
}

/// What a note is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// Keys for a session were derived or taken from the key file (informational).
    KeysDerived,
    /// Keys could not be derived for a session (wrong password, no entry, missing handshake …).
    DeriveFailed,
    /// A transform message of a keyed session failed to decrypt (first failure per session).
    DecryptFailed,
    /// Something the decryptor does not handle (session binding, NTLMv1, unknown cipher …).
    Unsupported,
    /// A named cap was reached (the constant's name); the SMB layer reports it with `cap_reached`.
    CapReached(&'static str),
}

/// One thing worth reporting. `text` is for people and never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptNote {
    pub kind: NoteKind,
    pub session_id: Option<u64>,
    pub text: String,
}

/// Cipher keys for one session, one per direction. Debug redacts.
#[derive(Clone)]
struct SessionKeys {
    /// Client-to-server (ToServer) key; 16 or 32 bytes.
    c2s: Vec<u8>,
    /// Server-to-client (ToClient) key.
    s2c: Vec<u8>,
    /// Ciphers to try, in order; narrowed to one after the first success.
    ciphers: Vec<Cipher>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("ciphers", &self.ciphers)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Session {
    /// 3.1.1 preauth hash so far (None: dialect below 3.1.1, or the handshake was not all seen).
    hash: Option<PreauthHash>,
    challenge: Option<crate::smb::ntlmssp::Challenge>,
    auth: Option<ntlm::AuthMaterial>,
    /// Kerberos: the AP-REQ opened with the keytab, or why it could not be.
    krb: Option<Result<OpenedApReq, OpenError>>,
    /// Kerberos: the AP-REP's acceptor subkey, when the server sent one.
    acceptor_subkey: Option<crate::kerberos::crypto::Key>,
    /// Kerberos: who the ticket names (kept after the key material is dropped).
    krb_client: Option<KrbClient>,
    rounds: u32,
    keys: Option<SessionKeys>,
    /// Derivation was tried and failed: do not try again, do not note every message.
    gave_up: bool,
    /// Why it failed, until reported. Reported when the session turns out to be encrypted (its
    /// first transform message, or a final response demanding encryption): a failure for a
    /// session that never encrypts is no one's concern.
    unreported_failure: Option<String>,
    /// The server set SMB2_SESSION_FLAG_ENCRYPT_DATA in the final SESSION_SETUP response.
    encrypt_data: bool,
    decrypted: u64,
    failed: u64,
}

/// Per-connection key tracking and decryption.
#[derive(Debug, Default)]
pub struct ConnDecryptor {
    keys: Option<Arc<KeyStore>>,
    dialect: Option<u16>,
    cipher: Option<Cipher>,
    /// Connection preauth hash: after the NEGOTIATE request, then after the response (3.1.1).
    conn_hash: Option<PreauthHash>,
    pending: Vec<(u64, Session)>,
    sessions: BTreeMap<u64, Session>,
    notes: Vec<DecryptNote>,
    notes_dropped: u64,
}

impl ConnDecryptor {
    pub fn new(keys: Option<Arc<KeyStore>>) -> ConnDecryptor {
        ConnDecryptor {
            keys: keys.filter(|k| !k.is_empty()),
            ..ConnDecryptor::default()
        }
    }

    /// A cleartext SMB2 message (64-byte header + body) seen in `dir`.
    pub fn observe(&mut self, dir: Direction, smb2_message: &[u8]) {
        if self.keys.is_none() {
            return;
        }
        let Some(m) = parsed(parse_header(smb2_message)) else {
            return;
        };
        // Trust the header's response flag over `dir` only where they agree; a message whose
        // direction contradicts its flag is not part of a handshake we can reproduce.
        if m.is_response() != (dir == Direction::ToClient) {
            return;
        }
        match (m.command, m.is_response()) {
            (Command::Negotiate, false) => {
                // Every NEGOTIATE request (re)starts the chain; the SMB1→SMB2 upgrade's 0x02FF
                // response that may precede it is thereby left out, as MS-SMB2 requires.
                let mut h = PreauthHash::zero();
                h.update(smb2_message);
                self.conn_hash = Some(h);
            }
            (Command::Negotiate, true) => self.on_negotiate_response(&m, smb2_message),
            (Command::SessionSetup, false) => self.on_setup_request(&m, smb2_message),
            (Command::SessionSetup, true) => self.on_setup_response(&m, smb2_message),
            _ => {}
        }
    }

    /// A whole transform message (from 0xFD 'SMB' through the end of the encrypted payload).
    /// Returns the decrypted SMB2 message bytes, or None without keys or when it fails to verify.
    /// The plaintext is exactly OriginalMessageSize bytes and may be a compound chain, or (SMB
    /// 3.1.1 with compression) a 0xFC 'SMB' compressed message: the caller parses it as if it had
    /// arrived in clear. Only a message whose tag verifies is ever returned.
    pub fn decrypt(&mut self, dir: Direction, transform_message: &[u8]) -> Option<Vec<u8>> {
        self.keys.as_ref()?;
        let (ciphertext, t) = parse_transform_header(transform_message).ok()?;
        let sid = t.session_id;
        if transform_message.len() > MAX_TRANSFORM_MESSAGE {
            self.note(
                NoteKind::CapReached("MAX_TRANSFORM_MESSAGE"),
                Some(sid),
                format!(
                    "transform message of {} bytes for session {sid:#018x} not decrypted",
                    transform_message.len()
                ),
            );
            return None;
        }
        if !self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.keys.is_some() || s.gave_up)
        {
            self.keys_from_session_secret(sid);
        }
        self.report_failure(sid);
        let s = self.sessions.get_mut(&sid)?;
        let keys = s.keys.as_mut()?;
        // CCM and GCM ciphertext is exactly as long as the plaintext.
        let outcome = if ciphertext.len() != t.original_size as usize {
            Err(format!(
                "transform message for session {sid:#018x} carries {} bytes but says OriginalMessageSize {}",
                ciphertext.len(),
                t.original_size
            ))
        } else {
            let key = match dir {
                Direction::ToServer => &keys.c2s,
                Direction::ToClient => &keys.s2c,
            };
            let mut buf = ciphertext.to_vec();
            let (nonce, tag, aad) = (t.nonce, t.signature, t.aad);
            let mut hit = None;
            for &c in &keys.ciphers {
                if c.key_len() != key.len() {
                    continue;
                }
                if cipher::decrypt_in_place(c, key, &nonce, aad, &mut buf, &tag) {
                    hit = Some(c);
                    break;
                }
                buf.copy_from_slice(ciphertext);
            }
            match hit {
                Some(c) => {
                    keys.ciphers = vec![c];
                    Ok(buf)
                }
                None => Err(format!(
                    "decryption failed for session {sid:#018x} ({}): authentication tag mismatch; keys do not fit this session",
                    keys.ciphers.iter().map(|c| c.name()).collect::<Vec<_>>().join(" or ")
                )),
            }
        };
        match outcome {
            Ok(plain) => {
                s.decrypted += 1;
                Some(plain)
            }
            Err(text) => {
                s.failed += 1;
                // Only the first failure per session: a session with wrong keys fails every time.
                if s.failed == 1 {
                    self.note(NoteKind::DecryptFailed, Some(sid), text);
                }
                None
            }
        }
    }

    /// Notes queued since the last call (oldest first).
    pub fn take_notes(&mut self) -> Vec<DecryptNote> {
        if self.notes_dropped > 0 {
            let n = std::mem::take(&mut self.notes_dropped);
            self.notes.push(DecryptNote {
                kind: NoteKind::CapReached("MAX_PENDING_NOTES"),
                session_id: None,
                text: format!("{n} decryption notes dropped"),
            });
        }
        std::mem::take(&mut self.notes)
    }

    /// Drains the notes into `sink`: caps as `cap_reached`, everything else as `anomaly` events of
    /// kind `decrypt` (layer "smb3-crypto"), keys derived included so the output says which
    /// sessions were decrypted and from what kind of secret.
    pub fn report_notes(
        &mut self,
        sink: &mut crate::sink::Sink,
        ts: crate::time::Ts,
        conn: Option<crate::event::ConnFields>,
    ) {
        for n in self.take_notes() {
            match n.kind {
                NoteKind::CapReached(cap) => sink.cap_reached(cap, ts, conn, "smb3-crypto", n.text),
                _ => sink.anomaly(
                    ts,
                    conn,
                    crate::event::AnomalyKind::Decrypt,
                    "smb3-crypto",
                    n.text,
                ),
            }
        }
    }

    /// Whether the sensor holds keys for `session_id` on this connection.
    pub fn has_keys(&self, session_id: u64) -> bool {
        self.sessions
            .get(&session_id)
            .is_some_and(|s| s.keys.is_some())
    }

    /// The client a keytab-decrypted Kerberos ticket names for `session_id` (user, realm, service).
    pub fn kerberos_client(&self, session_id: u64) -> Option<&KrbClient> {
        self.sessions
            .get(&session_id)
            .and_then(|s| s.krb_client.as_ref())
    }

    /// Transform messages decrypted so far for `session_id`.
    pub fn decrypted_count(&self, session_id: u64) -> u64 {
        self.sessions.get(&session_id).map_or(0, |s| s.decrypted)
    }

    /// The negotiated dialect and cipher, as far as seen (None before NEGOTIATE or without keys).
    pub fn negotiated(&self) -> (Option<u16>, Option<Cipher>) {
        (self.dialect, self.cipher)
    }

    fn note(&mut self, kind: NoteKind, session_id: Option<u64>, text: String) {
        if self.notes.len() >= MAX_PENDING_NOTES {
            self.notes_dropped += 1;
            return;
        }
        self.notes.push(DecryptNote {
            kind,
            session_id,
            text,
        });
    }

    fn on_negotiate_response(&mut self, m: &Header, msg: &[u8]) {
        if m.status != STATUS_SUCCESS {
            return;
        }
        let Some(n) = parsed(parse_negotiate_response(msg)) else {
            return;
        };
        match n.dialect {
            0x0311 => {
                if let Some(h) = self.conn_hash.as_mut() {
                    h.update(msg);
                }
                self.cipher = match n.cipher() {
                    Some(id) => {
                        let c = Cipher::from_id(id);
                        if c.is_none() && id != 0 {
                            self.note(
                                NoteKind::Unsupported,
                                None,
                                format!("server chose unknown cipher id {id:#06x}"),
                            );
                        }
                        c
                    }
                    None => None,
                };
            }
            0x0300 | 0x0302 => {
                self.conn_hash = None;
                self.cipher = n.cipher().and_then(Cipher::from_id);
            }
            // 0x02FF (wildcard, a real NEGOTIATE follows) and 2.x (no encryption).
            _ => {
                self.conn_hash = None;
                self.cipher = None;
            }
        }
        self.dialect = Some(n.dialect);
    }

    fn on_setup_request(&mut self, m: &Header, msg: &[u8]) {
        let Some(SessionSetupRequest {
            flags,
            security_buffer: buf,
        }) = parsed(parse_session_setup_request(msg))
        else {
            return;
        };
        let sid = m.session_id;
        if flags & SESSION_FLAG_BINDING != 0 {
            self.note(NoteKind::Unsupported, Some(sid), format!(
                "session {sid:#018x} is bound to a further channel (multichannel); its keys come from the first connection and are not derived here"
            ));
            return;
        }
        let auth = ntlm::AuthMaterial::from_blob(buf);
        let krb = match (&auth, self.keys.as_ref().and_then(|k| k.keytab.as_ref())) {
            (None, Some(kt)) => match ticket::open_ap_req(kt, buf) {
                Err(OpenError::NoApReq) => None,
                r => Some(r),
            },
            _ => None,
        };
        let session = if sid == 0 {
            if self.pending.len() >= MAX_PENDING_SETUPS {
                // Requests whose responses never came: forget the oldest.
                self.pending.remove(0);
                self.note(
                    NoteKind::CapReached("MAX_PENDING_SETUPS"),
                    None,
                    "oldest unanswered SESSION_SETUP request forgotten".into(),
                );
            }
            let hash = if self.dialect == Some(0x0311) {
                self.conn_hash.clone()
            } else {
                None
            };
            self.pending.push((
                m.message_id,
                Session {
                    hash,
                    ..Session::default()
                },
            ));
            self.pending.last_mut().map(|(_, s)| s)
        } else {
            if !self.sessions.contains_key(&sid) {
                if self.sessions.len() >= MAX_SESSIONS_PER_CONN {
                    self.note(
                        NoteKind::CapReached("MAX_SESSIONS_PER_CONN"),
                        Some(sid),
                        "session not tracked".into(),
                    );
                    return;
                }
                // A session whose first round we missed: no 3.1.1 preauth hash for it.
                self.sessions.insert(sid, Session::default());
            }
            self.sessions.get_mut(&sid)
        };
        let Some(s) = session else { return };
        if s.keys.is_some() || s.gave_up {
            // Re-authentication keeps the keys the session already has (MS-SMB2 3.3.5.5.3).
            return;
        }
        s.rounds += 1;
        if s.rounds > MAX_SETUP_ROUNDS {
            s.hash = None;
        }
        if let Some(h) = s.hash.as_mut() {
            h.update(msg);
        }
        if auth.is_some() {
            s.auth = auth;
        }
        if let Some(r) = krb {
            if let Ok(o) = &r {
                s.krb_client = Some(o.client.clone());
            }
            s.krb = Some(r);
        }
    }

    fn on_setup_response(&mut self, m: &Header, msg: &[u8]) {
        let sid = m.session_id;
        if !self.sessions.contains_key(&sid) {
            let Some(i) = self
                .pending
                .iter()
                .position(|(mid, _)| *mid == m.message_id)
            else {
                return;
            };
            let (_, s) = self.pending.swap_remove(i);
            if self.sessions.len() >= MAX_SESSIONS_PER_CONN {
                self.note(
                    NoteKind::CapReached("MAX_SESSIONS_PER_CONN"),
                    Some(sid),
                    "session not tracked".into(),
                );
                return;
            }
            self.sessions.insert(sid, s);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.keys.is_some() || s.gave_up {
            return;
        }
        if let Some(Ok(o)) = &s.krb {
            let sub = parsed(parse_session_setup_response(msg))
                .and_then(|r| ticket::open_ap_rep(o, r.security_buffer));
            if let Some(sub) = sub {
                s.acceptor_subkey = sub;
            }
        }
        match m.status {
            STATUS_MORE_PROCESSING_REQUIRED => {
                if let Some(h) = s.hash.as_mut() {
                    h.update(msg);
                }
                if let Some(r) = parsed(parse_session_setup_response(msg)) {
                    let buf = r.security_buffer;
                    if let Some(c) = ntlm::challenge_from_blob(buf) {
                        s.challenge = Some(c);
                    }
                }
            }
            STATUS_SUCCESS => {
                s.encrypt_data = parsed(parse_session_setup_response(msg))
                    .is_some_and(|r| r.session_flags & SESSION_FLAG_ENCRYPT_DATA != 0);
                self.derive(sid);
                if self.sessions.get(&sid).is_some_and(|s| s.encrypt_data) {
                    self.report_failure(sid);
                }
            }
            // Logon failure and the like: the session never exists.
            _ => {
                self.sessions.remove(&sid);
            }
        }
    }

    /// The session key for `sid`: from a `session:` line, else from a password or NT hash that
    /// reproduces the client's NTProofStr.
    fn session_key(&mut self, sid: u64) -> Result<(Vec<u8>, String), String> {
        let store = self.keys.clone().ok_or("no key file")?;
        if let Some(sec) = store.session_secret(sid) {
            return Ok((sec.session_key.clone(), "the key file's session key".into()));
        }
        let s = self.sessions.get(&sid).ok_or("session not tracked")?;
        match &s.krb {
            Some(Ok(o)) => {
                let key = o.session_key(s.acceptor_subkey.as_ref());
                let which = if s.acceptor_subkey.is_some() {
                    "acceptor subkey"
                } else if o.initiator_subkey.is_some() {
                    "authenticator subkey"
                } else {
                    "ticket session key"
                };
                return Ok((
                    key.bytes().to_vec(),
                    format!(
                        "the Kerberos {which} ({:?}) of {}@{}'s ticket to {}, opened with the keytab key of {}",
                        key.enctype, o.client.user, o.client.realm, o.client.service, o.keytab_principal
                    ),
                ));
            }
            Some(Err(e)) => return Err(format!("Kerberos: {e}")),
            None => {}
        }
        let Some(auth) = s.auth.as_ref() else {
            let hint = if store.keytab.is_some() {
                "supply `session:` keys"
            } else {
                "supply `session:` keys, or a keytab with the service's key for Kerberos"
            };
            return Err(format!("no NTLMSSP AUTHENTICATE or Kerberos AP-REQ seen (a handshake outside the capture?); {hint}"));
        };
        let Some(ch) = s.challenge.as_ref() else {
            return Err(format!(
                "no NTLMSSP CHALLENGE seen for user '{}'",
                auth.user
            ));
        };
        if auth.nt_response.len() < 16 + 28 {
            return Err(format!(
                "user '{}' sent no NTLMv2 response (anonymous or NTLMv1, unsupported)",
                auth.user
            ));
        }
        let x = ntlm::Exchange {
            server_challenge: ch.server_challenge,
            flags: auth.flags,
            nt_response: &auth.nt_response,
            encrypted_session_key: &auth.encrypted_session_key,
        };
        let mut tried = 0;
        for c in store.credentials_for(&auth.user, &auth.domain) {
            let mut domains = vec![auth.domain.as_str()];
            if let Some(d) = c.domain.as_deref() {
                if d != auth.domain {
                    domains.push(d);
                }
            }
            for d in domains {
                tried += 1;
                if let Ok(k) = ntlm::exported_session_key(&c.nt_hash, &auth.user, d, &x) {
                    return Ok((
                        k.to_vec(),
                        format!("the {} of {}", c.source, display_user(&auth.user, d)),
                    ));
                }
            }
        }
        if tried == 0 {
            Err(format!(
                "no password or NT hash for user '{}' in the key file",
                display_user(&auth.user, &auth.domain)
            ))
        } else {
            Err(format!(
                "NTProofStr mismatch (wrong password?) for user '{}'",
                display_user(&auth.user, &auth.domain)
            ))
        }
    }

    /// Called at the final successful SESSION_SETUP response.
    fn derive(&mut self, sid: u64) {
        let given = self
            .keys
            .as_ref()
            .and_then(|k| k.session_secret(sid))
            .and_then(|s| s.cipher_keys.clone());
        if let Some((s2c, c2s)) = given {
            let ciphers = self.ciphers_for_len(c2s.len());
            self.install(
                sid,
                SessionKeys { c2s, s2c, ciphers },
                "the key file's cipher keys".into(),
            );
            return;
        }
        let (session_key, from) = match self.session_key(sid) {
            Ok(k) => k,
            Err(why) => return self.give_up(sid, why),
        };
        let hash = self.sessions.get(&sid).and_then(|s| s.hash.clone());
        let result = match self.dialect {
            Some(0x0311) => match hash {
                Some(h) => Ok(derive_311(&session_key, &h, self.cipher)),
                None => Err(
                    "the SMB 3.1.1 preauth hash is incomplete (handshake not fully seen)"
                        .to_string(),
                ),
            },
            Some(0x0300) | Some(0x0302) => Ok(derive_30(&session_key)),
            Some(d) => Err(format!("dialect {d:#06x} has no encryption")),
            None => Err("NEGOTIATE not seen, dialect unknown".to_string()),
        };
        match result {
            Ok(keys) => self.install(sid, keys, from),
            Err(why) => self.give_up(sid, why),
        }
    }

    /// For a session first seen in a transform message: keys from a `session:` line, if any.
    fn keys_from_session_secret(&mut self, sid: u64) {
        let Some(sec) = self
            .keys
            .as_ref()
            .and_then(|k| k.session_secret(sid))
            .cloned()
        else {
            return;
        };
        if !self.sessions.contains_key(&sid) {
            if self.sessions.len() >= MAX_SESSIONS_PER_CONN {
                return;
            }
            self.sessions.insert(sid, Session::default());
        }
        if let Some((s2c, c2s)) = sec.cipher_keys {
            let ciphers = self.ciphers_for_len(c2s.len());
            self.install(
                sid,
                SessionKeys { c2s, s2c, ciphers },
                "the key file's cipher keys".into(),
            );
            return;
        }
        match self.dialect {
            // Midstream or SMB 3.0.x: the 3.0 derivation needs no handshake.
            None | Some(0x0300) | Some(0x0302) => {
                self.install(sid, derive_30(&sec.session_key), "the key file's session key (SMB 3.0 derivation)".into())
            }
            _ => self.give_up(
                sid,
                "the key file has only a session key, and SMB 3.1.1 also needs the preauth hash of a handshake this connection did not show; give the s2c and c2s keys instead".into(),
            ),
        }
    }

    fn ciphers_for_len(&self, len: usize) -> Vec<Cipher> {
        match self.cipher {
            Some(c) if c.key_len() == len => vec![c],
            _ => Cipher::candidates_for_key_len(len).to_vec(),
        }
    }

    fn install(&mut self, sid: u64, keys: SessionKeys, from: String) {
        let names: Vec<&str> = keys.ciphers.iter().map(|c| c.name()).collect();
        let text = format!(
            "derived SMB3 keys for session {sid:#018x} ({}) from {from}",
            names.join(" or ")
        );
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.keys = Some(keys);
            // The handshake material is no longer needed.
            s.auth = None;
            s.challenge = None;
            s.hash = None;
            s.krb = None;
            s.acceptor_subkey = None;
        }
        self.note(NoteKind::KeysDerived, Some(sid), text);
    }

    fn give_up(&mut self, sid: u64, why: String) {
        let text = format!("could not derive keys for session {sid:#018x}: {why}");
        match self.sessions.get_mut(&sid) {
            Some(s) => {
                s.gave_up = true;
                s.auth = None;
                s.hash = None;
                s.krb = None;
                s.acceptor_subkey = None;
                s.unreported_failure = Some(text);
            }
            None => self.note(NoteKind::DeriveFailed, Some(sid), text),
        }
    }

    fn report_failure(&mut self, sid: u64) {
        if let Some(text) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.unreported_failure.take())
        {
            self.note(NoteKind::DeriveFailed, Some(sid), text);
        }
    }
}

fn display_user(user: &str, domain: &str) -> String {
    if domain.is_empty() {
        user.to_string()
    } else {
        format!("{domain}\\{user}")
    }
}

/// SMB 3.0 / 3.0.2: AES-128-CCM keys from fixed labels (MS-SMB2 3.2.5.3.1).
fn derive_30(session_key: &[u8]) -> SessionKeys {
    let sk = &session_key[..session_key.len().min(16)];
    let mut c2s = vec![0u8; 16];
    let mut s2c = vec![0u8; 16];
    kdf::sp800_108_hmac_sha256(sk, b"SMB2AESCCM\0", b"ServerIn \0", &mut c2s);
    kdf::sp800_108_hmac_sha256(sk, b"SMB2AESCCM\0", b"ServerOut\0", &mut s2c);
    SessionKeys {
        c2s,
        s2c,
        ciphers: vec![Cipher::Aes128Ccm],
    }
}

/// SMB 3.1.1: keys from the preauth hash. AES-256 ciphers use the full session key and L = 256;
/// AES-128 ones its first 16 bytes and L = 128 (MS-SMB2 3.1.4.2, 3.2.5.3.1). With no cipher
/// negotiated we derive 128-bit keys and let the tag decide between CCM and GCM.
fn derive_311(session_key: &[u8], hash: &PreauthHash, cipher: Option<Cipher>) -> SessionKeys {
    let (len, ciphers) = match cipher {
        Some(c) => (c.key_len(), vec![c]),
        None => (16, Cipher::candidates_for_key_len(16).to_vec()),
    };
    let sk = if len == 32 {
        session_key
    } else {
        &session_key[..session_key.len().min(16)]
    };
    let mut c2s = vec![0u8; len];
    let mut s2c = vec![0u8; len];
    kdf::sp800_108_hmac_sha256(sk, b"SMBC2SCipherKey\0", &hash.0, &mut c2s);
    kdf::sp800_108_hmac_sha256(sk, b"SMBS2CCipherKey\0", &hash.0, &mut s2c);
    SessionKeys { c2s, s2c, ciphers }
}

#[cfg(test)]
mod tests;
