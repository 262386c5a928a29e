//! The state of one DCE-RPC association: presentation contexts (ctx_id → interface and transfer
//! syntax), binds awaiting their ack, and calls in flight by call_id with their fragments
//! reassembled. Fed whole PDUs by the framer; emits `dce_rpc` events. Every table is capped.

use super::interfaces::{self, endpoint_or_unknown, operation_name};
use super::krb_privacy::KrbContext;
use super::ndr::Syntax;
use super::pdu::{self, AuthTrailer, Header};
use super::{epm, stubs, svcctl, Transport};
use crate::event::UserSource;
use crate::event::{AnomalyKind, BindContext, ConnFields, DceArgs, DceRpc, Event, Principal};
use crate::flow::{Direction, FlowCtx};
use crate::kerberos;
use crate::sink::Sink;
use crate::smb::crypto::KeyStore;
use crate::time::Ts;
use crate::wire::parsed;
use std::collections::BTreeMap;
use std::sync::Arc;

#[path = "conversation_responses.rs"]
mod responses;

/// Most calls awaiting a response per association (Zeek reassembles at most 20 fragmented calls;
/// pipelined clients rarely keep more than a handful outstanding). Beyond it the oldest call is
/// logged as `<no response>` and dropped.
pub const MAX_DCERPC_CALLS_IN_FLIGHT: usize = 64;
/// Most stub bytes reassembled per call and direction (Suricata: 1 MiB). The rest is dropped and
/// the stub decoded as far as it goes.
pub const MAX_DCERPC_STUB_BYTES: usize = 1024 * 1024;
/// Most fragments reassembled per call and direction: tools can force tiny fragments.
pub const MAX_DCERPC_FRAGMENTS_PER_CALL: u32 = 4096;
/// Most stub bytes held for reassembly by one association, over all its calls in flight: with
/// [`MAX_DCERPC_CALLS_IN_FLIGHT`] calls of [`MAX_DCERPC_STUB_BYTES`] each an association could
/// otherwise pin 64 MiB. Beyond it fragments are counted but not kept.
pub const MAX_DCERPC_ASSOCIATION_STUB_BYTES: usize = 4 * 1024 * 1024;
/// Most presentation contexts remembered per association (one bind offers at most 255).
pub const MAX_DCERPC_CONTEXTS: usize = 512;
/// Most binds / alter_contexts awaiting their ack.
pub const MAX_DCERPC_PENDING_BINDS: usize = 8;
/// A call with no response for this long (packet time) is logged as `<no response>` and dropped.
pub const DCERPC_CALL_TIMEOUT_SECS: u64 = 300;

pub const STATUS_OK: &str = "ok";
pub const STATUS_NO_RESPONSE: &str = "<no response>";

#[derive(Clone, Debug)]
struct Context {
    uuid: String,
    syntax: Syntax,
}

#[derive(Clone, Debug)]
struct PendingBind {
    ts: Ts,
    /// Who the bind's Kerberos auth verifier presented: its ticket (for the join), and with a
    /// keytab the client itself.
    principal: Principal,
    operation: &'static str,
    items: Vec<BindContext>,
    /// ctx_id and offered transfer syntaxes, in offer order, to apply the ack's results.
    offered: Vec<(u16, String)>,
}

/// One direction of a call: its stub reassembled from fragments within the caps.
#[derive(Clone, Debug, Default)]
struct Reassembly {
    stub: Vec<u8>,
    /// Stub bytes seen (kept or not).
    len: usize,
    frags: u32,
    /// Stub incomplete (cap, gap or missed first fragment): decoded best-effort only.
    partial: bool,
    /// The first fragment was never seen: the stub's start is unknown, so it is not decoded.
    missed_start: bool,
    /// Bytes were lost (gap): keep the prefix, append nothing after the hole.
    frozen: bool,
}

impl Reassembly {
    /// Appends one fragment's stub within the caps (`budget`: what the association may still hold).
    /// `keep` false counts the fragment without storing it (ciphertext).
    fn append(
        &mut self,
        more: &[u8],
        keep: bool,
        budget: usize,
        ts: Ts,
        ctx: &FlowCtx,
        sink: &mut Sink,
    ) {
        self.len = self.len.saturating_add(more.len());
        if self.frags >= MAX_DCERPC_FRAGMENTS_PER_CALL {
            if self.frags == MAX_DCERPC_FRAGMENTS_PER_CALL {
                sink.cap_reached(
                    "MAX_DCERPC_FRAGMENTS_PER_CALL",
                    ts,
                    Some(conn(ctx, ts)),
                    "dcerpc",
                    "fragments dropped",
                );
            }
            self.frags = self.frags.saturating_add(1);
            self.partial = true;
            return;
        }
        self.frags += 1;
        if !keep || self.frozen {
            return;
        }
        let mut room = MAX_DCERPC_STUB_BYTES.saturating_sub(self.stub.len());
        if more.len() > room {
            if room > 0 || !self.partial {
                sink.cap_reached(
                    "MAX_DCERPC_STUB_BYTES",
                    ts,
                    Some(conn(ctx, ts)),
                    "dcerpc",
                    "stub truncated",
                );
            }
            self.partial = true;
        }
        if more.len().min(room) > budget {
            if budget > 0 || !self.partial {
                let detail = "association reassembly budget spent";
                sink.cap_reached(
                    "MAX_DCERPC_ASSOCIATION_STUB_BYTES",
                    ts,
                    Some(conn(ctx, ts)),
                    "dcerpc",
                    detail,
                );
            }
            self.partial = true;
            room = budget;
        }
        self.stub.extend_from_slice(&more[..more.len().min(room)]);
    }
}

#[derive(Clone, Debug, Default)]
struct Call {
    ts: Ts,
    call_id: u32,
    ctx_id: u16,
    opnum: u16,
    big_endian: bool,
    req: Reassembly,
    req_done: bool,
    resp: Reassembly,
    resp_big_endian: bool,
    auth: Option<AuthTrailer>,
    stub_encrypted: bool,
    /// Sealed, and opened with the association's Kerberos context.
    decrypted: bool,
    args: DceArgs,
}

/// One association's state (both directions).
#[derive(Debug)]
pub struct Association {
    transport: Transport,
    pipe_name: Option<String>,
    sec_addr: Option<String>,
    contexts: BTreeMap<u16, Context>,
    pending_binds: BTreeMap<u32, PendingBind>,
    calls: BTreeMap<u32, Call>,
    /// Auth negotiated at bind / alter_context / auth3.
    auth: Option<AuthTrailer>,
    /// Well-formed PDUs seen (both directions).
    pdus: u64,
    /// A PDU came from the server. Until one does, the capture may hold the client's half only.
    server_seen: bool,
    /// A PDU came from the client. Until one does, the capture may hold the server's half only:
    /// responses are then read by their layout ([`responses`]).
    client_seen: bool,
    responses: super::response_shapes::ScmSequence,
    /// Over TCP: the interface the endpoint mapper named for this server port (a hint for a
    /// server→client-only capture, where the bind that names it is not seen).
    learned_interface: Option<String>,
    /// The transfer syntax a bind_ack without its bind accepted (NDR64 or NDR 2.0).
    acked_syntax: Syntax,
    /// Supplied secrets (a keytab opens Kerberos packet privacy).
    secrets: Option<Arc<KeyStore>>,
    /// The Kerberos security context the latest bind opened with the keytab.
    krb: Option<Box<KrbContext>>,
    /// A failure to open or unseal was reported (one anomaly per association; counters count all).
    krb_failure_reported: bool,
}

impl Association {
    pub fn new(transport: Transport, pipe_name: Option<&str>) -> Association {
        Association {
            transport,
            pipe_name: pipe_name.map(str::to_owned),
            sec_addr: None,
            contexts: BTreeMap::new(),
            pending_binds: BTreeMap::new(),
            calls: BTreeMap::new(),
            auth: None,
            pdus: 0,
            server_seen: false,
            client_seen: false,
            responses: Default::default(),
            learned_interface: None,
            acked_syntax: Syntax::Ndr20,
            secrets: None,
            krb: None,
            krb_failure_reported: false,
        }
    }

    /// The interface the endpoint mapper named for this connection's server port.
    pub fn set_learned_interface(&mut self, uuid: Option<String>) {
        self.learned_interface = uuid;
    }

    pub fn set_secrets(&mut self, secrets: Option<Arc<KeyStore>>) {
        self.secrets = secrets.filter(|s| s.keytab().is_some());
    }

    /// Zeek's `named_pipe`: the bind_ack secondary address when there is one (`\PIPE\svcctl` over
    /// SMB, the port number over TCP, as Zeek logs it); otherwise, over SMB, `\PIPE\<name>` from
    /// the name the pipe was opened with.
    pub fn named_pipe(&self) -> Option<String> {
        if let Some(s) = self.sec_addr.as_ref().filter(|s| !s.is_empty()) {
            return Some(s.clone());
        }
        match (self.transport, &self.pipe_name) {
            (Transport::SmbPipe, Some(n)) => {
                let n = n.trim_start_matches('\\');
                // Byte-wise: the name is from the wire and may hold multi-byte characters.
                if n.as_bytes()
                    .get(..5)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"pipe\\"))
                {
                    Some(format!("\\{n}"))
                } else {
                    Some(format!("\\PIPE\\{n}"))
                }
            }
            _ => None,
        }
    }

    /// Well-formed PDUs seen so far.
    pub fn pdus_seen(&self) -> u64 {
        self.pdus
    }

    /// A whole PDU from `dir`.
    pub fn pdu(&mut self, ctx: &FlowCtx, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        let Some(h) = parsed(pdu::parse_header(bytes)) else {
            return self.malformed(ctx, ts, sink, "bad common header");
        };
        let Some((body, trailer)) = pdu::split_auth(bytes, &h) else {
            return self.malformed(ctx, ts, sink, "auth verifier outside the PDU");
        };
        sink.count("dcerpc.pdus", 1);
        self.pdus = self.pdus.saturating_add(1);
        if dir == Direction::ToClient {
            self.server_seen = true;
        } else {
            self.client_seen = true;
            if !self.server_seen && matches!(h.ptype, pdu::PTYPE_REQUEST | pdu::PTYPE_BIND) {
                self.log_unanswered(ctx, ts, sink);
            }
        }
        self.expire(ctx, ts, sink);
        let be = h.big_endian();
        match h.ptype {
            pdu::PTYPE_BIND | pdu::PTYPE_ALTER_CONTEXT => match parsed(pdu::parse_bind(body, be)) {
                Some(items) => {
                    let principal = self.bind_principal(ctx, ts, bytes, &h, trailer, sink);
                    self.on_bind(ctx, ts, &h, items, trailer, principal, sink)
                }
                None => self.malformed(ctx, ts, sink, "truncated bind"),
            },
            pdu::PTYPE_BIND_ACK | pdu::PTYPE_ALTER_CONTEXT_RESP => {
                if let (Some(krb), Some(t)) = (self.krb.as_mut(), trailer) {
                    if pdu::AUTH_TYPES_KERBEROS.contains(&t.auth_type) {
                        let found =
                            pdu::auth_value(bytes, &h).is_some_and(|v| krb.acceptor_answer(v));
                        if found {
                            sink.count("dcerpc.krb_acceptor_subkeys", 1);
                        }
                    }
                }
                match parsed(pdu::parse_bind_ack(body, be)) {
                    Some(ack) => self.on_bind_ack(ctx, ts, &h, ack, sink),
                    None => self.malformed(ctx, ts, sink, "truncated bind_ack"),
                }
            }
            pdu::PTYPE_BIND_NAK => {
                let reason = parsed(pdu::parse_bind_nak(body, &h)).unwrap_or(0);
                if let Some(b) = self.pending_binds.remove(&h.call_id) {
                    self.emit_bind(
                        ctx,
                        ts,
                        h.call_id,
                        b,
                        format!("bind_nak reason {reason}"),
                        sink,
                    );
                }
            }
            pdu::PTYPE_AUTH3 if trailer.is_some() => self.auth = trailer,
            pdu::PTYPE_REQUEST => match parsed(pdu::parse_request(body, &h)) {
                Some(req) => {
                    let opened = self.unseal(ctx, ts, bytes, &h, trailer, sink);
                    self.on_request(ctx, ts, &h, req, trailer, opened, sink)
                }
                None => self.malformed(ctx, ts, sink, "truncated request"),
            },
            pdu::PTYPE_RESPONSE => match parsed(pdu::parse_response(body, &h)) {
                Some(resp) if !self.client_seen && !self.calls.contains_key(&h.call_id) => {
                    let ok = STATUS_OK.to_string();
                    let call = (h.call_id, Some(resp.ctx_id), ok);
                    self.response_only(ctx, ts, &h, call, Some(resp.stub), trailer, sink)
                }
                Some(resp) => {
                    let opened = self.unseal(ctx, ts, bytes, &h, trailer, sink);
                    self.on_response(ctx, ts, &h, resp.stub, opened, sink)
                }
                None => self.malformed(ctx, ts, sink, "truncated response"),
            },
            pdu::PTYPE_FAULT => {
                let status =
                    parsed(pdu::parse_fault(body, &h)).map(|(_, s)| pdu::fault_status_name(s));
                if let Some(call) = self.calls.remove(&h.call_id) {
                    let status = status.unwrap_or_else(|| "fault".to_string());
                    self.emit_call(ctx, Some(ts), call, status, sink);
                } else if !self.client_seen {
                    let status = status.unwrap_or_else(|| "fault".to_string());
                    self.response_only(ctx, ts, &h, (h.call_id, None, status), None, trailer, sink);
                }
            }
            pdu::PTYPE_ORPHANED => {
                if let Some(call) = self.calls.remove(&h.call_id) {
                    self.emit_call(ctx, None, call, "<orphaned>".to_string(), sink);
                }
            }
            _ => {} // shutdown, co_cancel: nothing to log
        }
    }

    /// Who a bind's Kerberos auth verifier presented: the ticket for the join, and with a keytab
    /// the client the ticket names (the association's security context is kept for unsealing).
    fn bind_principal(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        pdu_bytes: &[u8],
        h: &Header,
        trailer: Option<AuthTrailer>,
        sink: &mut Sink,
    ) -> Principal {
        let Some(verifier) = trailer
            .filter(|t| pdu::AUTH_TYPES_KERBEROS.contains(&t.auth_type))
            .and_then(|_| pdu::auth_value(pdu_bytes, h))
        else {
            return Principal::default();
        };
        let mut principal = Principal {
            ticket: kerberos::presented(verifier).map(|p| p.ticket),
            ..Principal::default()
        };
        let Some(keytab) = self.secrets.as_ref().and_then(|s| s.keytab()) else {
            return principal;
        };
        match KrbContext::open(keytab, verifier) {
            None => {}
            Some(Ok(krb)) => {
                sink.count("dcerpc.krb_contexts_opened", 1);
                principal.user = Some(krb.client.user.clone());
                principal.domain = Some(krb.client.realm.clone());
                principal.user_source = Some(UserSource::Keytab);
                self.krb = Some(Box::new(krb));
            }
            Some(Err(e)) => {
                sink.count("dcerpc.krb_open_failed", 1);
                self.krb = None;
                self.krb_failure(ctx, ts, format!("Kerberos bind not opened: {e}"), sink);
            }
        }
        principal
    }

    /// The stub of a request or response sealed under the association's Kerberos context, opened;
    /// None when it is not sealed, there is no context, or it did not open (an anomaly says why).
    fn unseal(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        pdu_bytes: &[u8],
        h: &Header,
        trailer: Option<AuthTrailer>,
        sink: &mut Sink,
    ) -> Option<Vec<u8>> {
        let t = trailer.filter(|t| {
            t.auth_level == pdu::AUTH_LEVEL_PRIVACY
                && pdu::AUTH_TYPES_KERBEROS.contains(&t.auth_type)
        })?;
        let krb = self.krb.as_ref()?;
        match krb.unseal(pdu_bytes, h, &t) {
            Ok(stub) => {
                sink.count("dcerpc.krb_stubs_decrypted", 1);
                Some(stub)
            }
            Err(e) => {
                sink.count("dcerpc.krb_unseal_failed", 1);
                let what = format!("sealed stub of call {} not opened: {e}", h.call_id);
                self.krb_failure(ctx, ts, what, sink);
                None
            }
        }
    }

    /// The first Kerberos failure of the association as an anomaly (never a key).
    fn krb_failure(&mut self, ctx: &FlowCtx, ts: Ts, what: String, sink: &mut Sink) {
        if std::mem::replace(&mut self.krb_failure_reported, true) {
            return;
        }
        sink.anomaly(
            ts,
            Some(conn(ctx, ts)),
            AnomalyKind::Decrypt,
            "dcerpc",
            what,
        );
    }

    fn malformed(&mut self, ctx: &FlowCtx, ts: Ts, sink: &mut Sink, what: &str) {
        sink.anomaly(
            ts,
            Some(conn(ctx, ts)),
            AnomalyKind::Malformed,
            "dcerpc",
            what.to_string(),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn on_bind(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        items: Vec<pdu::ContextItem>,
        trailer: Option<AuthTrailer>,
        principal: Principal,
        sink: &mut Sink,
    ) {
        if trailer.is_some() {
            self.auth = trailer;
        }
        let operation = if h.ptype == pdu::PTYPE_BIND {
            "bind"
        } else {
            "alter_context"
        };
        let mut b = PendingBind {
            ts,
            principal,
            operation,
            items: Vec::with_capacity(items.len()),
            offered: Vec::new(),
        };
        for it in items {
            let abstract_uuid = it.abstract_uuid.to_string();
            let version = format!("{}.{}", it.version_major, it.version_minor);
            b.items.push(BindContext {
                ctx_id: it.ctx_id,
                uuid: abstract_uuid.clone(),
                version,
                endpoint: endpoint_or_unknown(&abstract_uuid),
                transfer_syntax: it.transfer_syntaxes.first().map(pdu::transfer_syntax_name),
                result: None,
            });
            b.offered.push((it.ctx_id, abstract_uuid.clone()));
            // Remember the offer now: a missed bind_ack must not cost us the interface name.
            if self.contexts.len() >= MAX_DCERPC_CONTEXTS && !self.contexts.contains_key(&it.ctx_id)
            {
                sink.cap_reached(
                    "MAX_DCERPC_CONTEXTS",
                    ts,
                    Some(conn(ctx, ts)),
                    "dcerpc",
                    "context table full",
                );
                continue;
            }
            let syntax = match it.transfer_syntaxes.as_slice() {
                [only] if *only == pdu::NDR64 => Syntax::Ndr64,
                _ => Syntax::Ndr20,
            };
            self.contexts.insert(
                it.ctx_id,
                Context {
                    uuid: abstract_uuid,
                    syntax,
                },
            );
        }
        if self.pending_binds.len() >= MAX_DCERPC_PENDING_BINDS {
            if let Some((&old_id, _)) = self.pending_binds.iter().next() {
                if let Some(old) = self.pending_binds.remove(&old_id) {
                    sink.cap_reached(
                        "MAX_DCERPC_PENDING_BINDS",
                        ts,
                        Some(conn(ctx, ts)),
                        "dcerpc",
                        "bind never acked",
                    );
                    self.emit_bind(ctx, ts, old_id, old, STATUS_NO_RESPONSE.to_string(), sink);
                }
            }
        }
        if let Some(old) = self.pending_binds.insert(h.call_id, b) {
            self.emit_bind(
                ctx,
                ts,
                h.call_id,
                old,
                STATUS_NO_RESPONSE.to_string(),
                sink,
            );
        }
    }

    fn on_bind_ack(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        ack: pdu::BindAck,
        sink: &mut Sink,
    ) {
        if !ack.sec_addr.is_empty() {
            self.sec_addr = Some(ack.sec_addr.clone());
        }
        let Some(mut b) = self.pending_binds.remove(&h.call_id) else {
            // The bind was missed: nothing to pair the results with, unless the capture is the
            // server's half only, where the ack is all there is.
            if !self.client_seen {
                self.bind_ack_only(ctx, ts, h, &ack, sink);
            }
            return;
        };
        for (i, r) in ack.results.iter().enumerate() {
            let (Some(item), Some((ctx_id, uuid))) = (b.items.get_mut(i), b.offered.get(i)) else {
                break;
            };
            item.result = Some(pdu::result_name(r.result));
            if r.result == 0 {
                item.transfer_syntax = Some(pdu::transfer_syntax_name(&r.transfer_syntax));
                let syntax = if r.transfer_syntax == pdu::NDR64 {
                    Syntax::Ndr64
                } else {
                    Syntax::Ndr20
                };
                if self.contexts.len() < MAX_DCERPC_CONTEXTS || self.contexts.contains_key(ctx_id) {
                    self.contexts.insert(
                        *ctx_id,
                        Context {
                            uuid: uuid.clone(),
                            syntax,
                        },
                    );
                }
            } else if self.contexts.get(ctx_id).is_some_and(|c| &c.uuid == uuid) {
                // A rejected offer does not define the context.
                self.contexts.remove(ctx_id);
            }
        }
        let accepted = b.items.iter().any(|i| i.result == Some("acceptance"));
        self.emit_bind(
            ctx,
            ts,
            h.call_id,
            b,
            if accepted {
                STATUS_OK.into()
            } else {
                "rejected".into()
            },
            sink,
        );
    }

    fn emit_bind(
        &self,
        ctx: &FlowCtx,
        ts: Ts,
        call_id: u32,
        b: PendingBind,
        status: String,
        sink: &mut Sink,
    ) {
        // The interface the bind is "about": the accepted one (Metasploit's eleven decoys are
        // rejected and svcctl accepted), else the last offered (the decoys come first).
        let main = b
            .items
            .iter()
            .find(|i| i.result == Some("acceptance"))
            .or(b.items.last());
        let rtt = if status == STATUS_NO_RESPONSE {
            None
        } else {
            Some(ts.secs_since(b.ts))
        };
        let ev = DceRpc {
            conn: conn(ctx, b.ts),
            rtt,
            named_pipe: self.named_pipe(),
            endpoint: main
                .map(|m| m.endpoint.clone())
                .unwrap_or_else(|| "unknown".into()),
            operation: b.operation.to_string(),
            transport: self.transport,
            opnum: None,
            call_id,
            ctx_id: main.map(|m| m.ctx_id),
            uuid: main.map(|m| m.uuid.clone()),
            auth_type: self.auth.map(|a| pdu::auth_type_name(a.auth_type)),
            auth_level: self.auth.map(|a| pdu::auth_level_name(a.auth_level)),
            stub_encrypted: false,
            decrypted: false,
            status,
            request_stub_len: None,
            request_frags: None,
            interfaces: Some(b.items),
            inferred_operation: None,
            principal: b.principal,
            args: DceArgs::default(),
        };
        sink.emit(Event::DceRpc(Box::new(ev)));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_request(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        req: pdu::Request<'_>,
        trailer: Option<AuthTrailer>,
        opened: Option<Vec<u8>>,
        sink: &mut Sink,
    ) {
        let existing = self
            .calls
            .get(&h.call_id)
            .is_some_and(|c| !c.req_done && !h.first_frag());
        if !existing {
            if let Some(old) = self.calls.remove(&h.call_id) {
                // The same call_id again: the earlier call never got its response.
                self.emit_call(ctx, None, old, STATUS_NO_RESPONSE.into(), sink);
            }
            if self.calls.len() >= MAX_DCERPC_CALLS_IN_FLIGHT {
                sink.cap_reached(
                    "MAX_DCERPC_CALLS_IN_FLIGHT",
                    ts,
                    Some(conn(ctx, ts)),
                    "dcerpc",
                    "oldest call dropped",
                );
                if let Some(oldest) = self.calls.values().min_by_key(|c| c.ts).map(|c| c.call_id) {
                    if let Some(old) = self.calls.remove(&oldest) {
                        self.emit_call(ctx, None, old, STATUS_NO_RESPONSE.into(), sink);
                    }
                }
            }
            let auth = trailer.or(self.auth);
            let call = Call {
                ts,
                call_id: h.call_id,
                ctx_id: req.ctx_id,
                opnum: req.opnum,
                big_endian: h.big_endian(),
                req: Reassembly {
                    partial: !h.first_frag(),
                    missed_start: !h.first_frag(),
                    ..Reassembly::default()
                },
                auth,
                stub_encrypted: opened.is_none()
                    && trailer.is_some_and(|t| t.auth_level == pdu::AUTH_LEVEL_PRIVACY),
                decrypted: opened.is_some(),
                ..Call::default()
            };
            self.calls.insert(h.call_id, call);
        }
        let syntax = self
            .contexts
            .get(&req.ctx_id)
            .map(|c| c.syntax)
            .unwrap_or_default();
        let uuid = self.call_uuid(req.ctx_id).map(str::to_owned);
        let budget = self.stub_budget();
        let Some(call) = self.calls.get_mut(&h.call_id) else {
            return;
        };
        // Under packet privacy the stub is ciphertext: count it, never keep it. A decrypted call
        // whose later fragment did not open keeps what opened before it.
        if call.decrypted && opened.is_none() {
            call.req.partial = true;
            call.req.frozen = true;
        }
        let stub = opened.as_deref().unwrap_or(req.stub);
        call.req
            .append(stub, !call.stub_encrypted, budget, ts, ctx, sink);
        if h.last_frag() {
            call.req_done = true;
            if let (false, false, Some(u)) = (call.stub_encrypted, call.req.missed_start, uuid) {
                stubs::request_args(
                    &u,
                    call.opnum,
                    &call.req.stub,
                    call.big_endian,
                    syntax,
                    &mut call.args,
                );
            }
            call.req.stub = Vec::new();
        }
    }

    fn on_response(
        &mut self,
        ctx: &FlowCtx,
        ts: Ts,
        h: &Header,
        stub: &[u8],
        opened: Option<Vec<u8>>,
        sink: &mut Sink,
    ) {
        let budget = self.stub_budget();
        let Some(call) = self.calls.get_mut(&h.call_id) else {
            sink.count("dcerpc.response_without_request", 1);
            return;
        };
        if call.resp.frags == 0 {
            call.resp.partial = !h.first_frag();
            call.resp.missed_start = !h.first_frag();
            call.resp_big_endian = h.big_endian();
        }
        // The request was opened: so must the response be, or it is read no further.
        if call.decrypted && opened.is_none() {
            call.resp.partial = true;
            call.resp.frozen = true;
        }
        let stub = opened.as_deref().unwrap_or(stub);
        call.resp
            .append(stub, !call.stub_encrypted, budget, ts, ctx, sink);
        if !h.last_frag() {
            return;
        }
        let Some(mut call) = self.calls.remove(&h.call_id) else {
            return;
        };
        let stub = std::mem::take(&mut call.resp.stub);
        if call.stub_encrypted {
            // nothing readable
        } else if call.resp.missed_start {
            // Only the return code (the last four bytes) does not depend on the missed start.
            if !call.resp.frozen {
                call.args.return_code = svcctl::return_code(&stub, call.resp_big_endian);
            }
        } else if let Some(u) = self.call_uuid(call.ctx_id) {
            let syntax = self
                .contexts
                .get(&call.ctx_id)
                .map(|c| c.syntax)
                .unwrap_or_default();
            stubs::response_args(
                u,
                call.opnum,
                &stub,
                call.resp_big_endian,
                syntax,
                &mut call.args,
            );
            if call.resp.frozen {
                call.args.return_code = None; // the stub's end was lost
            }
        }
        self.emit_call(ctx, Some(ts), call, STATUS_OK.into(), sink);
    }

    /// Stub bytes this association may still buffer.
    fn stub_budget(&self) -> usize {
        let held: usize = self
            .calls
            .values()
            .map(|c| c.req.stub.len() + c.resp.stub.len())
            .sum();
        MAX_DCERPC_ASSOCIATION_STUB_BYTES.saturating_sub(held)
    }

    /// The interface of a context: from the bind, else (bind missed) from the pipe name.
    fn call_uuid(&self, ctx_id: u16) -> Option<&str> {
        match self.contexts.get(&ctx_id) {
            Some(c) => Some(c.uuid.as_str()),
            None => self
                .pipe_name
                .as_deref()
                .and_then(interfaces::uuid_for_pipe),
        }
    }

    fn emit_call(
        &self,
        ctx: &FlowCtx,
        resp_ts: Option<Ts>,
        call: Call,
        status: String,
        sink: &mut Sink,
    ) {
        let bound = self.contexts.get(&call.ctx_id);
        let uuid = self.call_uuid(call.ctx_id);
        let (endpoint, operation) = match uuid {
            Some(u) => (endpoint_or_unknown(u), operation_name(u, call.opnum)),
            None => ("unknown".to_string(), format!("unknown-{}", call.opnum)),
        };
        let ev = DceRpc {
            conn: conn(ctx, call.ts),
            rtt: resp_ts.map(|t| t.secs_since(call.ts)),
            named_pipe: self.named_pipe(),
            endpoint,
            operation,
            transport: self.transport,
            opnum: Some(call.opnum),
            call_id: call.call_id,
            ctx_id: Some(call.ctx_id),
            // Only a bound context says which interface it is; a pipe-name guess names the
            // endpoint but is not reported as the uuid.
            uuid: bound.map(|c| c.uuid.clone()),
            auth_type: call.auth.map(|a| pdu::auth_type_name(a.auth_type)),
            auth_level: call.auth.map(|a| pdu::auth_level_name(a.auth_level)),
            stub_encrypted: call.stub_encrypted,
            decrypted: call.decrypted,
            status,
            request_stub_len: Some(u32::try_from(call.req.len).unwrap_or(u32::MAX)),
            request_frags: Some(call.req.frags),
            interfaces: None,
            inferred_operation: None,
            principal: Principal::default(),
            args: call.args,
        };
        sink.learned_endpoints
            .extend(epm::expectation_from_event(&ev));
        sink.emit(Event::DceRpc(Box::new(ev)));
    }

    /// Calls older than the timeout are logged without response.
    pub fn expire(&mut self, ctx: &FlowCtx, now: Ts, sink: &mut Sink) {
        let limit = DCERPC_CALL_TIMEOUT_SECS;
        let stale: Vec<u32> = self
            .calls
            .values()
            .filter(|c| c.ts.saturating_add_secs(limit) < now)
            .map(|c| c.call_id)
            .collect();
        for id in stale {
            if let Some(c) = self.calls.remove(&id) {
                self.emit_call(ctx, None, c, STATUS_NO_RESPONSE.into(), sink);
            }
        }
    }

    /// The server has never answered on this association (a one-sided capture, or its half was
    /// lost): a request in a later packet means the earlier whole ones are not waiting for
    /// anything we will see, so they are logged now, in order, instead of at the timeout or the
    /// end of the flow. (PDUs of one packet may be pipelined: they wait.)
    fn log_unanswered(&mut self, ctx: &FlowCtx, ts: Ts, sink: &mut Sink) {
        let old: Vec<u32> = self
            .pending_binds
            .iter()
            .filter(|(_, b)| b.ts < ts)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            if let Some(b) = self.pending_binds.remove(&id) {
                self.emit_bind(ctx, ts, id, b, STATUS_NO_RESPONSE.into(), sink);
            }
        }
        let done: Vec<u32> = self
            .calls
            .values()
            .filter(|c| c.req_done && c.ts < ts)
            .map(|c| c.call_id)
            .collect();
        let mut calls: Vec<Call> = done.iter().filter_map(|id| self.calls.remove(id)).collect();
        calls.sort_by_key(|c| (c.ts, c.call_id));
        for c in calls {
            self.emit_call(ctx, None, c, STATUS_NO_RESPONSE.into(), sink);
        }
    }

    /// Bytes were lost in `dir`: a reassembly in progress in that direction is incomplete.
    pub fn gap(&mut self, dir: Direction) {
        for c in self.calls.values_mut() {
            match dir {
                Direction::ToServer if !c.req_done => {
                    c.req.partial = true;
                    c.req.frozen = true;
                }
                Direction::ToClient if c.resp.frags > 0 => {
                    c.resp.partial = true;
                    c.resp.frozen = true;
                }
                _ => {}
            }
        }
    }

    /// End of the association: log every call and bind still waiting.
    pub fn close(&mut self, ctx: &FlowCtx, ts: Ts, sink: &mut Sink) {
        let binds = std::mem::take(&mut self.pending_binds);
        for (id, b) in binds {
            self.emit_bind(ctx, ts, id, b, STATUS_NO_RESPONSE.into(), sink);
        }
        let calls = std::mem::take(&mut self.calls);
        let mut calls: Vec<Call> = calls.into_values().collect();
        calls.sort_by_key(|c| (c.ts, c.call_id));
        for mut c in calls {
            // A request whose last fragment never came: decode what we have.
            if !c.req_done && !c.stub_encrypted && !c.req.missed_start {
                let syntax = self
                    .contexts
                    .get(&c.ctx_id)
                    .map(|x| x.syntax)
                    .unwrap_or_default();
                if let Some(u) = self.call_uuid(c.ctx_id) {
                    stubs::request_args(u, c.opnum, &c.req.stub, c.big_endian, syntax, &mut c.args);
                }
            }
            self.emit_call(ctx, None, c, STATUS_NO_RESPONSE.into(), sink);
        }
    }
}

fn conn(ctx: &FlowCtx, ts: Ts) -> ConnFields {
    ConnFields::new(ts, ctx.uid, &ctx.conn)
}
