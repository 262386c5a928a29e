//! SMB1 (NT LM 0.12).
//!
//! Wire formats: every parser here is a pure function over one SMB1 message
//! (`msg` starts at the `0xFF 'SMB'` magic, so every offset is relative to the header start, as
//! AndX offsets, data offsets and Unicode alignment all are on the wire).
//!
//! The connection state machine on the shared tables is [`state::Smb1State`]. Typical use of
//! the wire formats:
//! ```ignore
//! let hdr = Header::parse(msg)?;
//! for block in AndxChain::new(msg, &hdr) {
//!     let block = block?;            // Err(AndxBackward | AndxPastEnd | AndxTooDeep | …) → anomaly
//!     match (block.command, hdr.is_response()) {
//!         (cmd::NT_CREATE_ANDX, false) => { let r = NtCreateRequest::parse(msg, &block, hdr.is_unicode())?; … }
//!         …
//!     }
//! }
//! ```

pub mod andx;
pub mod create;
pub mod dos_error;
pub mod header;
pub mod negotiate;
pub mod paths;
pub mod rw;
pub mod session_setup;
pub mod state;
pub mod strings;
pub mod trans;
pub mod trans2;
pub mod tree;
mod wire;
mod words;

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod test_util;

pub use andx::{AndxChain, Block, MAX_ANDX_DEPTH};
pub use header::{cmd, Header, Smb1Error, Status, SMB1_HEADER_LEN};
pub use state::Smb1State;
pub use strings::{SmbStr, MAX_STRING_BYTES};
