//! Associations seen from the server's side only (a server→client-only capture): the bind_ack
//! names the endpoint by its secondary address, and every response or fault without a request is
//! logged as a call whose operation is inferred from its layout and order
//! ([`crate::dcerpc::response_shapes`]), with `opnum` absent and `inferred_operation` set.
//! Over TCP the bind_ack names a port: the interface is the one the endpoint mapper's answer named
//! for that server port (learned here too, from an `ept_map` answer whose request was not seen).

use super::{conn, Association};
use crate::dcerpc::ndr::Syntax;
use crate::dcerpc::pdu::{self, AuthTrailer, Header};
use crate::dcerpc::response_shapes::{classify, Endpoint, InferredOp, Shape};
use crate::dcerpc::{epm, Transport};
use crate::event::{DceArgs, DceRpc, Event};
use crate::flow::FlowCtx;
use crate::sink::Sink;
use crate::time::Ts;

/// A response's call_id, context id (absent in a fault) and status ("ok" or the fault's name).
pub(super) type Answered = (u32, Option<u16>, String);

impl Association {
    /// The interface of a response-only association: the pipe the bind_ack names, else (over TCP)
    /// the interface the endpoint mapper named for this server port, else the mapper itself on
    /// its own port.
    fn endpoint_kind(&self, ctx: &FlowCtx) -> Endpoint {
        let by_addr = self
            .sec_addr
            .as_deref()
            .map_or(Endpoint::Other, Endpoint::of_sec_addr);
        if by_addr != Endpoint::Other || self.transport != Transport::Tcp {
            return by_addr;
        }
        match &self.learned_interface {
            Some(uuid) => Endpoint::of_interface(uuid),
            None if ctx.conn.resp_p == crate::app::EPM_PORT => Endpoint::EndpointMapper,
            None => Endpoint::Other,
        }
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
        let accepted = ack.results.iter().find(|r| r.result == 0);
        self.acked_syntax = match accepted {
            Some(r) if r.transfer_syntax == pdu::NDR64 => Syntax::Ndr64,
            _ => Syntax::Ndr20,
        };
        let e = self.endpoint_kind(ctx);
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
            status: if accepted.is_some() { "ok" } else { "rejected" }.to_string(),
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
        let e = self.endpoint_kind(ctx);
        let encrypted = trailer.is_some_and(|t| t.auth_level == pdu::AUTH_LEVEL_PRIVACY);
        let whole = h.first_frag() && h.last_frag();
        // Only a whole, readable stub has a layout; a whole ciphertext has its exact length (the
        // auth padding is already off: `pdu::split_auth`), whose sizes are NDR 2.0's (NDR64's
        // pointers are 8 bytes); a fragment has a length only.
        let ndr20 = self.acked_syntax == Syntax::Ndr20;
        let shape = stub.map(|s| match (whole, encrypted) {
            (true, false) => classify(e, s, h.big_endian()),
            (true, true) if ndr20 => Shape::Sealed { len: s.len() },
            _ => Shape::Other { len: s.len() },
        });
        let mut args = DceArgs {
            return_code: shape.as_ref().and_then(Shape::status),
            ..DceArgs::default()
        };
        let mapped = match (e, stub) {
            (Endpoint::EndpointMapper, Some(s)) if whole && !encrypted => {
                epm::decode_map_response(s, h.big_endian(), self.acked_syntax, &mut args)
            }
            _ => None,
        };
        let op = match mapped {
            Some(_) => InferredOp::EptMap,
            None => self.responses.next(e, shape.as_ref()),
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
        if op == InferredOp::EptMap {
            sink.learned_endpoints
                .extend(epm::expectation_from_event(&ev));
        }
        sink.emit(Event::DceRpc(Box::new(ev)));
    }
}
