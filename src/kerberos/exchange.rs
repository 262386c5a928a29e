//! KDC exchanges into `kerberos` events: a request (AS-REQ, TGS-REQ) paired with its reply
//! (AS-REP, TGS-REP) or KRB-ERROR, over TCP (record marking, [`KdcTcp`]) and UDP (one message per
//! datagram, [`KdcUdp`]).

use super::records::{self, KdcOptions, KdcRep, KdcReq, KrbError, Message, RecordLen};
use super::{TicketDigest, KERBEROS_PORT};
use crate::decode::checksum::{ChecksumAuto, ChecksumMode};
use crate::decode::UdpDatagram;
use crate::event::{
    AnomalyKind, ConnFields, Event, IssuedTicket, Kerberos, KrbCipher, KrbErrorCode,
    KrbRequestType, UserSource,
};
use crate::flow::{ConnId, Direction, FlowCtx, StreamParser, Uid};
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::maps::{shrink_if_sparse, KeyedMap};
use std::net::IpAddr;

/// How long a ticket is assumed valid when the request asked for longer (or for nothing): the
/// default "maximum lifetime for service ticket" of an Active Directory domain (600 minutes),
/// plus the default 5 minutes of clock skew a server tolerates. The real end time is inside the
/// encrypted part, which only a keytab opens.
pub const ASSUMED_TICKET_LIFETIME_SECS: u64 = 10 * 3600 + 300;

/// UDP requests waiting for their reply (per worker); the oldest is logged unanswered beyond it.
pub const MAX_KERBEROS_UDP_PENDING: usize = 4096;

/// Senders whose UDP checksums are tracked (the `auto` decision, per sender); beyond it a new
/// sender's bad checksums are believed (kept), as before any good one is seen.
pub const MAX_KERBEROS_UDP_SENDERS: usize = 4096;

/// A UDP request unanswered after this long is logged without a reply (Kerberos clients retry
/// after 1 to 3 seconds).
const UDP_REPLY_TIMEOUT_SECS: u64 = 30;

/// A request waiting for its reply.
#[derive(Clone, Debug)]
struct Request {
    ts: Ts,
    request_type: KrbRequestType,
    client: Option<String>,
    service: Option<String>,
    from: Option<Ts>,
    till: Option<Ts>,
    options: KdcOptions,
}

impl Request {
    fn of(ts: Ts, request_type: KrbRequestType, req: &KdcReq<'_>) -> Request {
        let body = &req.req_body;
        let realm = records::realm(&body.realm);
        Request {
            ts,
            request_type,
            client: body
                .cname
                .as_ref()
                .map(|c| format!("{}/{realm}", records::principal(c))),
            service: body.sname.as_ref().map(records::principal),
            from: body.from.as_ref().and_then(records::time),
            till: records::time(&body.till),
            options: KdcOptions::of(body),
        }
    }

    /// The record for this request (its reply's fields are filled by the caller).
    fn record(&self, conn: ConnFields, transport: &'static str) -> Kerberos {
        Kerberos {
            conn: ConnFields {
                ts: self.ts,
                ..conn
            },
            request_type: self.request_type,
            client: self.client.clone(),
            service: self.service.clone(),
            success: None,
            error_msg: None,
            from: self.from,
            till: self.till,
            cipher: None,
            forwardable: Some(self.options.forwardable),
            renewable: Some(self.options.renewable),
            transport,
            issued: None,
        }
    }
}

/// One conversation with a KDC: a TCP connection, or a UDP client port. Clients send one request
/// and wait for its reply, so one pending request is all the state (a second request before the
/// reply logs the first unanswered).
#[derive(Debug)]
struct Exchange {
    conn: ConnFields,
    transport: &'static str,
    pending: Option<Request>,
}

impl Exchange {
    fn new(conn: ConnFields, transport: &'static str) -> Exchange {
        Exchange {
            conn,
            transport,
            pending: None,
        }
    }

    fn message(&mut self, ts: Ts, bytes: &[u8], sink: &mut Sink) {
        let msg = match records::message(bytes) {
            Ok(m) => m,
            Err(e) => {
                sink.count("kerberos.malformed", 1);
                sink.anomaly(
                    ts,
                    Some(ConnFields { ts, ..self.conn }),
                    AnomalyKind::Malformed,
                    "kerberos",
                    format!("{} bytes are not a Kerberos message ({e:?})", bytes.len()),
                );
                return;
            }
        };
        sink.count("kerberos.messages", 1);
        match msg {
            Message::AsReq(r) => self.request(Request::of(ts, KrbRequestType::As, &r), sink),
            Message::TgsReq(r) => self.request(Request::of(ts, KrbRequestType::Tgs, &r), sink),
            Message::AsRep(r) => self.reply(ts, KrbRequestType::As, &r, sink),
            Message::TgsRep(r) => self.reply(ts, KrbRequestType::Tgs, &r, sink),
            Message::Error(e) => self.error(ts, &e, sink),
            // AP exchanges to the KDC itself (rare: kpasswd, set-password) log nothing.
            Message::ApReq(_) | Message::ApRep(_) => {}
        }
    }

    fn request(&mut self, r: Request, sink: &mut Sink) {
        self.flush(sink);
        self.pending = Some(r);
    }

    /// The record of the pending request, or of a reply seen without one (midstream).
    fn take_record(&mut self, ts: Ts, request_type: KrbRequestType) -> Kerberos {
        match self.pending.take() {
            Some(r) => r.record(self.conn, self.transport),
            None => {
                let mut k = Request {
                    ts,
                    request_type,
                    client: None,
                    service: None,
                    from: None,
                    till: None,
                    options: KdcOptions::default(),
                }
                .record(self.conn, self.transport);
                // The request was not seen: its options are unknown.
                k.forwardable = None;
                k.renewable = None;
                k
            }
        }
    }

    fn reply(&mut self, ts: Ts, request_type: KrbRequestType, rep: &KdcRep<'_>, sink: &mut Sink) {
        let mut k = self.take_record(ts, request_type);
        let user = records::principal(&rep.cname);
        let realm = records::realm(&rep.crealm);
        k.client = Some(format!("{user}/{realm}"));
        if k.service.is_none() {
            k.service = Some(records::principal(&rep.ticket.sname));
        }
        k.success = Some(true);
        k.cipher = Some(KrbCipher(rep.ticket.enc_part.etype.0));
        let longest = ts.saturating_add_secs(ASSUMED_TICKET_LIFETIME_SECS);
        k.issued = Some(IssuedTicket {
            digest: TicketDigest::of(&rep.ticket),
            user,
            realm,
            source: match request_type {
                KrbRequestType::As => UserSource::KerberosAsRep,
                KrbRequestType::Tgs => UserSource::KerberosTgsRep,
            },
            expires: k.till.map_or(longest, |t| t.min(longest)),
        });
        sink.emit(Event::Kerberos(Box::new(k)));
    }

    fn error(&mut self, ts: Ts, e: &KrbError<'_>, sink: &mut Sink) {
        let request_type = self
            .pending
            .as_ref()
            .map_or(KrbRequestType::As, |r| r.request_type);
        let mut k = self.take_record(ts, request_type);
        if k.service.is_none() {
            k.service = Some(records::principal(&e.sname));
        }
        if k.client.is_none() {
            if let (Some(c), Some(r)) = (&e.cname, &e.crealm) {
                k.client = Some(format!("{}/{}", records::principal(c), records::realm(r)));
            }
        }
        k.success = Some(false);
        k.error_msg = Some(KrbErrorCode(e.error_code.0));
        sink.emit(Event::Kerberos(Box::new(k)));
    }

    /// Log a request that got no reply.
    fn flush(&mut self, sink: &mut Sink) {
        if let Some(r) = self.pending.take() {
            sink.emit(Event::Kerberos(Box::new(
                r.record(self.conn, self.transport),
            )));
        }
    }
}

/// Kerberos over TCP: record-marked messages, one buffer per direction up to
/// [`records::MAX_KERBEROS_MESSAGE_BYTES`].
pub struct KdcTcp {
    exchange: Exchange,
    bufs: [Vec<u8>; 2],
    /// Bytes of an oversized (or unreadable) record still to skip, per direction.
    skip: [u64; 2],
}

impl KdcTcp {
    pub fn new(ctx: FlowCtx) -> KdcTcp {
        KdcTcp {
            exchange: Exchange::new(ConnFields::new(Ts(0), ctx.uid, &ctx.conn), "tcp"),
            bufs: [Vec::new(), Vec::new()],
            skip: [0, 0],
        }
    }
}

impl StreamParser for KdcTcp {
    fn data(&mut self, ts: Ts, dir: Direction, mut bytes: &[u8], sink: &mut Sink) {
        let d = dir.index();
        if self.skip[d] > 0 {
            let n = bytes
                .len()
                .min(usize::try_from(self.skip[d]).unwrap_or(usize::MAX));
            self.skip[d] -= n as u64;
            bytes = &bytes[n..];
        }
        let buf = &mut self.bufs[d];
        buf.extend_from_slice(bytes);
        loop {
            let Ok((rest, len)) = records::record_mark(buf) else {
                return;
            };
            let len = match len {
                RecordLen::Bytes(n) if n <= records::MAX_KERBEROS_MESSAGE_BYTES => n,
                other => {
                    let n = match other {
                        RecordLen::Bytes(n) => n as u64,
                        // Unreadable framing: nothing more on this direction can be trusted.
                        RecordLen::Reserved => u64::MAX,
                    };
                    sink.cap_reached(
                        "MAX_KERBEROS_MESSAGE_BYTES",
                        ts,
                        Some(ConnFields {
                            ts,
                            ..self.exchange.conn
                        }),
                        "kerberos",
                        format!("a Kerberos TCP record of {n} bytes is skipped"),
                    );
                    let have = buf.len() as u64 - 4;
                    self.skip[d] = n.saturating_sub(have);
                    buf.clear();
                    return;
                }
            };
            if rest.len() < len {
                return;
            }
            self.exchange.message(ts, &rest[..len], sink);
            buf.drain(..4 + len);
        }
    }

    fn gap(&mut self, _ts: Ts, dir: Direction, _len: u64, sink: &mut Sink) {
        // Record boundaries are lost with the bytes: drop the partial record and take the next
        // data as the start of a record (a KDC connection carries one exchange).
        sink.count("kerberos.gap_resync", 1);
        self.bufs[dir.index()].clear();
        self.skip[dir.index()] = 0;
    }

    fn close(&mut self, _ts: Ts, sink: &mut Sink) {
        self.exchange.flush(sink);
    }
}

/// Kerberos over UDP, per worker: a pending request per (client, KDC) port pair, bounded and
/// expiring, and the `auto` checksum decision per sender (as TCP's flows make it).
#[derive(Default)]
pub struct KdcUdp {
    exchanges: KeyedMap<ConnId, Exchange>,
    senders: KeyedMap<IpAddr, ChecksumAuto>,
    pub checksums: ChecksumMode,
}

impl KdcUdp {
    /// One datagram to or from port 88. Others are not for this parser (counted and skipped).
    pub fn datagram(&mut self, ts: Ts, dg: &UdpDatagram<'_>, sink: &mut Sink) {
        let to_server = dg.dport == KERBEROS_PORT;
        if !to_server && dg.sport != KERBEROS_PORT {
            sink.count("udp.skipped", 1);
            return;
        }
        if !self.believe(dg, ts, sink) {
            return;
        }
        let conn = if to_server {
            ConnId {
                orig_h: dg.src,
                orig_p: dg.sport,
                resp_h: dg.dst,
                resp_p: dg.dport,
            }
        } else {
            ConnId {
                orig_h: dg.dst,
                orig_p: dg.dport,
                resp_h: dg.src,
                resp_p: dg.sport,
            }
        };
        if !self.exchanges.contains_key(&conn) {
            self.expire(ts, sink);
            if self.exchanges.len() >= MAX_KERBEROS_UDP_PENDING {
                sink.cap_reached(
                    "MAX_KERBEROS_UDP_PENDING",
                    ts,
                    None,
                    "kerberos",
                    "UDP Kerberos exchanges pending: the oldest is logged without its reply",
                );
                if let Some(k) = self.oldest() {
                    if let Some(mut x) = self.exchanges.remove(&k) {
                        x.flush(sink);
                    }
                }
            }
        }
        let x = self.exchanges.entry(conn).or_insert_with(|| {
            // One uid per client port, from the tuple alone: every worker gives the same.
            Exchange::new(ConnFields::new(ts, Uid::new(&conn, 17), &conn), "udp")
        });
        x.message(ts, dg.payload, sink);
        if x.pending.is_none() {
            self.exchanges.remove(&conn);
        }
    }

    /// The `auto` rule for UDP as for TCP: a bad checksum from a sender that has shown good ones
    /// is dropped as the endpoint drops it.
    fn believe(&mut self, dg: &UdpDatagram<'_>, ts: Ts, sink: &mut Sink) -> bool {
        let mode = self.checksums;
        let full = self.senders.len() >= MAX_KERBEROS_UDP_SENDERS;
        let keep = match self.senders.get_mut(&dg.src) {
            Some(s) => s.keep(dg.checksum, mode),
            None if full => {
                sink.count("MAX_KERBEROS_UDP_SENDERS", 1);
                ChecksumAuto::default().keep(dg.checksum, mode)
            }
            None => {
                let mut s = ChecksumAuto::default();
                let keep = s.keep(dg.checksum, mode);
                self.senders.insert(dg.src, s);
                keep
            }
        };
        if !keep {
            sink.anomaly(
                ts,
                None,
                AnomalyKind::BadChecksum,
                "udp",
                format!(
                    "UDP {}:{} → {}:{} with a bad checksum from a validated sender: dropped",
                    dg.src, dg.sport, dg.dst, dg.dport
                ),
            );
        }
        keep
    }

    fn oldest(&self) -> Option<ConnId> {
        self.exchanges
            .iter()
            .min_by_key(|(k, x)| (x.pending.as_ref().map_or(Ts(0), |r| r.ts), order(k)))
            .map(|(k, _)| *k)
    }

    /// Log the requests whose reply is overdue.
    fn expire(&mut self, now: Ts, sink: &mut Sink) {
        let due = |x: &Exchange| {
            x.pending
                .as_ref()
                .is_none_or(|r| r.ts.saturating_add_secs(UDP_REPLY_TIMEOUT_SECS) < now)
        };
        if !self.exchanges.values().any(due) {
            return;
        }
        let mut overdue: Vec<ConnId> = self
            .exchanges
            .iter()
            .filter(|(_, x)| due(x))
            .map(|(k, _)| *k)
            .collect();
        // Map order is seeded per process: log in a stable order.
        overdue.sort_by_key(|k| (self.exchanges[k].pending.as_ref().map(|r| r.ts), order(k)));
        for k in overdue {
            if let Some(mut x) = self.exchanges.remove(&k) {
                x.flush(sink);
            }
        }
        shrink_if_sparse(&mut self.exchanges);
    }

    /// End of input: every pending request is logged unanswered.
    pub fn finish(&mut self, sink: &mut Sink) {
        self.expire(Ts(u64::MAX), sink);
    }
}

/// A total order of tuples (the maps' own order is seeded per process).
fn order(k: &ConnId) -> (IpAddr, u16, IpAddr, u16) {
    (k.orig_h, k.orig_p, k.resp_h, k.resp_p)
}

#[cfg(test)]
#[path = "exchange_tests.rs"]
mod tests;
