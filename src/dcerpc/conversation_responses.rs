//! Associations seen from the server's side only (a server→client-only capture): the bind_ack
//! names the endpoint by its secondary address, and every response or fault without a request is
//! logged as a call whose operation is inferred from its layout and order
//! ([`crate::dcerpc::response_shapes`]), with `opnum` absent and `inferred_operation` set.

use super::{conn, Association};
use crate::dcerpc::pdu::{self, AuthTrailer, Header};
use crate::dcerpc::response_shapes::{classify, Endpoint, InferredOp, Shape};
use crate::event::{DceArgs, DceRpc, Event};
use crate::flow::FlowCtx;
use crate::sink::Sink;
use crate::time::Ts;

/// A response's call_id, context id (absent in a fault) and status ("ok" or the fault's name).
pub(super) type Answered = (u32, Option<u16>, String);

impl Association {
    fn endpoint_kind(&self) -> Endpoint {
        self.sec_addr
            .as_deref()
            .map_or(Endpoint::Other, Endpoint::of_sec_addr)
    }

    /// A bind_ack without its bind: a new association on this pipe (the sequence starts over).
    pub(super) fn bind_ack_only(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        ack: &pdu::BindAck,
        sink: &mut Sink,
    ) {
        self.responses = Default::default();
        let accepted = ack.results.iter().any(|r| r.result == 0);
        let e = self.endpoint_kind();
        let ev = DceRpc {
            conn: conn(ctx, ts),
            rtt: None,
            named_pipe: self.named_pipe(),
            endpoint: InferredOp::Unknown.endpoint(e).to_string(),
            operation: if h.ptype == pdu::PTYPE_BIND_ACK {
                "bind"
            } else {
                "alter_context"
            }
            .to_string(),
            transport: self.transport,
            opnum: None,
            call_id: h.call_id,
            ctx_id: None,
            uuid: None,
            auth_type: None,
            auth_level: None,
            stub_encrypted: false,
            decrypted: false,
            status: if accepted { "ok" } else { "rejected" }.to_string(),
            request_stub_len: None,
            request_frags: None,
            interfaces: None,
            inferred_operation: None,
            principal: Default::default(),
            args: DceArgs::default(),
        };
        sink.emit(Event::DceRpc(Box::new(ev)));
    }

    /// A response (`stub` Some) or fault (None) whose request was never seen.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn response_only(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        (call_id, ctx_id, status): Answered,
        stub: Option<&[u8]>,
        trailer: Option<AuthTrailer>,
        sink: &mut Sink,
    ) {
        let e = self.endpoint_kind();
        let encrypted = trailer.is_some_and(|t| t.auth_level == pdu::AUTH_LEVEL_PRIVACY);
        // Only a whole, readable stub has a layout; a fragment or ciphertext has a length only.
        let shape = stub.map(|s| {
            if encrypted || !h.first_frag() || !h.last_frag() {
                Shape::Other { len: s.len() }
            } else {
                classify(e, s, h.big_endian())
            }
        });
        let op = self.responses.next(e, shape.as_ref());
        let mut args = DceArgs {
            return_code: shape.as_ref().and_then(Shape::status),
            ..DceArgs::default()
        };
        if let Some(Shape::TaskPath { path, .. }) = &shape {
            args.task_path = Some(path.clone());
        }
        sink.count("dcerpc.response_only_calls", 1);
        let ev = DceRpc {
            conn: conn(ctx, ts),
            rtt: None,
            named_pipe: self.named_pipe(),
            endpoint: op.endpoint(e).to_string(),
            operation: op.operation().to_string(),
            transport: self.transport,
            opnum: None,
            call_id,
            ctx_id,
            uuid: None,
            auth_type: trailer.map(|a| pdu::auth_type_name(a.auth_type)),
            auth_level: trailer.map(|a| pdu::auth_level_name(a.auth_level)),
            stub_encrypted: encrypted,
            decrypted: false,
            status,
            request_stub_len: None,
            request_frags: None,
            interfaces: None,
            inferred_operation: Some(op),
            principal: Default::default(),
            args,
        };
        sink.emit(Event::DceRpc(Box::new(ev)));
    }
}
