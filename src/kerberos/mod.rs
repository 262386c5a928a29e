//! Kerberos (issue 16). Part B: secrets — keytabs ([`keytab`]) and decryption ([`crypto`]), for
//! reading service tickets and the keys of Kerberos-authenticated SMB3 sessions.

pub mod crypto;
pub mod keytab;
pub mod ticket;
