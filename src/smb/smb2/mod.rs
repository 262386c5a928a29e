//! SMB2/3: wire formats in [`records`], the per-connection state machine in [`state`].

pub mod compression;
pub mod records;
pub mod state;
pub mod stream_plan;
pub mod xpress;

pub use state::{Smb2State, StreamTarget, MAX_PENDING_SMB_REQUESTS};

#[cfg(test)]
mod multichannel_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod stream_tests;
