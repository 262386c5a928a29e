//! Flows: bidirectional TCP connections keyed by their 5-tuple, each with a per-direction reassembler
//! and an application parser (SMB, DCE-RPC over TCP) chosen by port or by the first bytes.

pub mod id;
mod lru;
pub mod policy;
pub mod reassembly;
pub mod receiver;
mod shadow;
pub mod suspect;
pub mod table;

pub use id::{ConnId, Direction, FlowCtx, Uid};

use crate::sink::Sink;
use crate::time::Ts;

/// An application-layer parser fed one TCP connection's reassembled bytes, in order, per direction.
/// Implemented by the SMB parser and by DCE-RPC over TCP. It must never panic on any input, never
/// buffer without a cap, and report what it drops through the sink.
pub trait StreamParser {
    /// In-order bytes of one direction. `bytes` may cut messages anywhere.
    fn data(&mut self, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink);
    /// `len` bytes are missing in `dir` (lost, or dropped by a cap). The parser resynchronises.
    fn gap(&mut self, ts: Ts, dir: Direction, len: u64, sink: &mut Sink);
    /// The connection ended (FIN/RST, idle timeout, end of input): flush pending state as events.
    fn close(&mut self, ts: Ts, sink: &mut Sink);
}

/// Chooses the parser for a new connection from its ports and its first payload bytes.
/// Returns None to ignore the connection (its bytes are then skipped, never buffered).
pub trait ParserFactory {
    fn parser_for(
        &mut self,
        ctx: &FlowCtx,
        first_dir: Direction,
        first_bytes: &[u8],
    ) -> Option<Box<dyn StreamParser>>;
}
