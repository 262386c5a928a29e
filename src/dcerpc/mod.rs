//! DCE-RPC connection-oriented protocol over SMB named pipes and over TCP.
//!
//! The contract with the SMB layer: one [`Conversation`] per pipe handle, fed the bytes written to
//! the pipe (`ToServer`: WRITE, IOCTL FSCTL_PIPE_TRANSCEIVE input, SMB1 TRANS data) and read from it
//! (`ToClient`: READ response, IOCTL output, TRANS response data), in order, cut anywhere. The
//! conversation frames PDUs by frag_length itself and emits `dce_rpc` events.
//! Over TCP, [`TcpParser`] wraps a Conversation as a flow's [`StreamParser`].

use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::time::Ts;

/// How the conversation travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    SmbPipe,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::SmbPipe => "smb_pipe",
            Transport::Tcp => "tcp",
        }
    }
}

/// One DCE-RPC association: a named-pipe handle (both directions) or a TCP connection.
#[derive(Debug)]
pub struct Conversation {
    transport: Transport,
    named_pipe: Option<String>,
}

impl Conversation {
    /// `named_pipe` is the pipe's name as opened (e.g. "svcctl"); a hint only, used when the bind
    /// was missed.
    pub fn new(transport: Transport, named_pipe: Option<&str>) -> Conversation {
        Conversation { transport, named_pipe: named_pipe.map(str::to_owned) }
    }

    /// Whether `first` (the first bytes written to a pipe or sent on a connection) starts a
    /// DCE-RPC connection-oriented PDU.
    pub fn looks_like_dcerpc(first: &[u8]) -> bool {
        first.len() >= 2 && first[0] == 5 && first[1] == 0
    }

    pub fn data(&mut self, _ctx: &FlowCtx, _ts: Ts, _dir: Direction, _bytes: &[u8], _sink: &mut Sink) {
        let _ = (&self.transport, &self.named_pipe);
    }

    /// Bytes of this conversation were lost or skipped in `dir`: resynchronise on the next PDU.
    pub fn gap(&mut self, _ctx: &FlowCtx, _ts: Ts, _dir: Direction, _sink: &mut Sink) {}

    /// The pipe handle was closed or the connection ended: log calls still waiting for a response.
    pub fn close(&mut self, _ctx: &FlowCtx, _ts: Ts, _sink: &mut Sink) {}
}

/// DCE-RPC directly over TCP (port 135 and dynamic ports).
pub struct TcpParser {
    ctx: FlowCtx,
    conv: Conversation,
}

impl TcpParser {
    pub fn new(ctx: FlowCtx) -> TcpParser {
        TcpParser { ctx, conv: Conversation::new(Transport::Tcp, None) }
    }
}

impl StreamParser for TcpParser {
    fn data(&mut self, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        self.conv.data(&self.ctx, ts, dir, bytes, sink);
    }
    fn gap(&mut self, ts: Ts, dir: Direction, _len: u64, sink: &mut Sink) {
        self.conv.gap(&self.ctx, ts, dir, sink);
    }
    fn close(&mut self, ts: Ts, sink: &mut Sink) {
        self.conv.close(&self.ctx, ts, sink);
    }
}
