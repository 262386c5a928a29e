//! SMB over TCP (445, 139, or any port whose bytes say SMB): NetBIOS framing, SMB2/3 and SMB1,
//! into smb_mapping / smb_files / smb_auth / smb_visibility events; named pipes go to DCE-RPC.

pub mod crypto;
pub mod smb1;
pub mod smb2;

use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::time::Ts;

/// State shared by every SMB connection of one worker: supplied decryption secrets (and, later,
/// sessions that span connections, for multichannel).
#[derive(Clone, Default)]
pub struct SmbShared {
    pub keys: Option<std::sync::Arc<crypto::KeyStore>>,
}

/// Whether `first` starts like SMB over TCP: a NetBIOS session message or session request whose
/// payload begins with an SMB1/SMB2/transform/compression magic.
pub fn looks_like_smb(first: &[u8]) -> bool {
    if first.len() >= 8 && first[0] == 0 && matches!(first[4], 0xFF | 0xFE | 0xFD | 0xFC) {
        return &first[5..8] == b"SMB";
    }
    first.first() == Some(&0x81)
}

/// One TCP connection's SMB parser.
pub struct SmbParser {
    ctx: FlowCtx,
    shared: SmbShared,
}

impl SmbParser {
    pub fn new(ctx: FlowCtx, shared: SmbShared) -> SmbParser {
        SmbParser { ctx, shared }
    }
}

impl StreamParser for SmbParser {
    fn data(&mut self, _ts: Ts, _dir: Direction, _bytes: &[u8], _sink: &mut Sink) {
        let _ = (&self.ctx, &self.shared);
    }
    fn gap(&mut self, _ts: Ts, _dir: Direction, _len: u64, _sink: &mut Sink) {}
    fn close(&mut self, _ts: Ts, _sink: &mut Sink) {}
}
