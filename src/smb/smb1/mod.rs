//! SMB1 (NT LM 0.12).
//!
//! Wire formats: [`records`], nom parsers over one SMB1 message (`msg` starts at the `0xFF 'SMB'`
//! magic, so every offset is relative to the header start, as AndX offsets, data offsets and
//! Unicode alignment all are on the wire). The connection state machine on the shared tables,
//! which consumes the records, is [`state::Smb1State`]. Typical use of the records:
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

pub mod dos_error;
pub mod records;
pub mod state;

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod test_util;

pub use records::andx::{AndxChain, Block, MAX_ANDX_DEPTH};
pub use records::strings::{SmbStr, MAX_STRING_BYTES};
pub use records::{cmd, Header, Smb1Error, Status, SMB1_HEADER_LEN};
pub use state::Smb1State;
