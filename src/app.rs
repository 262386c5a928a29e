//! Which application parser serves a new TCP connection: SMB on 445/139 or wherever its header
//! shows, DCE-RPC on 135 or wherever a connection-oriented PDU starts, Kerberos on 88; everything
//! else is skipped.

use crate::dcerpc;
use crate::flow::{Direction, FlowCtx, ParserFactory, StreamParser};
use crate::kerberos;
use crate::smb::{self, SmbShared};
use crate::time::Ts;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;

/// TCP ports that are SMB whatever the first bytes say (midstream pickups start anywhere).
pub const SMB_PORTS: [u16; 2] = [445, 139];
/// The endpoint mapper's port: DCE-RPC over TCP.
pub const EPM_PORT: u16 = 135;

/// Server endpoints the endpoint mapper named (host, dynamic port) remembered per worker.
pub const MAX_EPM_ENDPOINTS: usize = 4096;
/// How long (packet time) a learned endpoint is trusted after the mapper last named it: a client
/// connects within seconds of the answer, and a dynamic port is reused by another interface once
/// its server restarts.
pub const EPM_ENDPOINT_TTL_SECS: u64 = 3600;

/// One endpoint the mapper named.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Learned {
    host: IpAddr,
    port: u16,
    /// The interface UUID the answer's tower named.
    interface: Option<String>,
    at: Ts,
}

/// (server, port) pairs learned from endpoint-mapper answers, with the interface each serves: a
/// later connection to one is DCE-RPC even when it is picked up midstream, and its responses
/// belong to that interface when the bind is not seen. Kept in learning order: expired from the
/// front after [`EPM_ENDPOINT_TTL_SECS`], oldest forgotten first beyond [`MAX_EPM_ENDPOINTS`].
#[derive(Debug, Default)]
pub struct EpmEndpoints {
    order: VecDeque<Learned>,
}

impl EpmEndpoints {
    /// Learns (or refreshes) an endpoint at `ts`; true when the cap forgot the oldest one.
    pub fn learn(&mut self, host: IpAddr, port: u16, interface: Option<String>, ts: Ts) -> bool {
        self.order.retain(|e| (e.host, e.port) != (host, port));
        let full = self.order.len() >= MAX_EPM_ENDPOINTS;
        if full {
            self.order.pop_front();
        }
        self.order.push_back(Learned {
            host,
            port,
            interface,
            at: ts,
        });
        full
    }

    /// Packet time reached `now`: forgets what the mapper said longer than the TTL ago.
    pub fn expire(&mut self, now: Ts) {
        let ttl = EPM_ENDPOINT_TTL_SECS.saturating_mul(1_000_000_000);
        while self
            .order
            .front()
            .is_some_and(|e| e.at.0.saturating_add(ttl) < now.0)
        {
            self.order.pop_front();
        }
    }

    /// Whether `host:port` was named, and for which interface.
    pub fn lookup(&self, host: IpAddr, port: u16) -> Option<Option<&str>> {
        self.order
            .iter()
            .rev()
            .find(|e| (e.host, e.port) == (host, port))
            .map(|e| e.interface.as_deref())
    }
    pub fn contains(&self, host: IpAddr, port: u16) -> bool {
        self.lookup(host, port).is_some()
    }
    pub fn len(&self) -> usize {
        self.order.len()
    }
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The sensor's parser factory.
#[derive(Clone, Default)]
pub struct AppFactory {
    pub smb: SmbShared,
    /// Shared with the engine, which fills it with the endpoints the DCE-RPC layer learned from
    /// `ept_map` responses ([`crate::sink::Sink::learned_endpoints`]).
    pub epm: Rc<RefCell<EpmEndpoints>>,
}

impl AppFactory {
    pub fn new(smb: SmbShared) -> AppFactory {
        AppFactory {
            smb,
            epm: Rc::default(),
        }
    }
}

/// Which parser a connection gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    Smb,
    DceRpc,
    /// Kerberos on 88/tcp (record-marked KDC exchanges).
    Kerberos,
}

/// The choice alone, as a pure function (tested without building parsers).
pub fn choose(ctx: &FlowCtx, first: &[u8]) -> Option<AppKind> {
    let ports = [ctx.conn.resp_p, ctx.conn.orig_p];
    if ports.iter().any(|p| SMB_PORTS.contains(p)) || smb::looks_like_smb(first) {
        Some(AppKind::Smb)
    } else if ports.contains(&EPM_PORT) || dcerpc::Conversation::looks_like_dcerpc(first) {
        Some(AppKind::DceRpc)
    } else if ports.contains(&kerberos::KERBEROS_PORT) {
        Some(AppKind::Kerberos)
    } else {
        None
    }
}

impl ParserFactory for AppFactory {
    fn parser_for(
        &mut self,
        ctx: &FlowCtx,
        _first_dir: Direction,
        first: &[u8],
    ) -> Option<Box<dyn StreamParser>> {
        let learned: Option<Option<String>> = {
            let epm = self.epm.borrow();
            if epm.is_empty() {
                None
            } else {
                epm.lookup(ctx.conn.resp_h, ctx.conn.resp_p)
                    .or_else(|| epm.lookup(ctx.conn.orig_h, ctx.conn.orig_p))
                    .map(|i| i.map(str::to_owned))
            }
        };
        // SMB ports still win: a learned port that is 445 stays SMB.
        let kind = match choose(ctx, first) {
            Some(AppKind::Smb) => Some(AppKind::Smb),
            _ if learned.is_some() => Some(AppKind::DceRpc),
            other => other,
        };
        match kind? {
            AppKind::Smb => Some(Box::new(smb::SmbParser::new(*ctx, self.smb.clone()))),
            AppKind::DceRpc => Some(Box::new(
                dcerpc::TcpParser::with_learned_interface(*ctx, learned.flatten())
                    .with_secrets(self.smb.keys.clone()),
            )),
            AppKind::Kerberos => Some(Box::new(kerberos::exchange::KdcTcp::new(*ctx))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ConnId, Uid};

    fn ctx(orig_p: u16, resp_p: u16) -> FlowCtx {
        let conn = ConnId {
            orig_h: "192.0.2.1".parse().unwrap(),
            orig_p,
            resp_h: "192.0.2.2".parse().unwrap(),
            resp_p,
        };
        FlowCtx { conn, uid: Uid(1) }
    }

    #[test]
    fn epm_learned_ports_are_dce_rpc_even_midstream() {
        let mut f = AppFactory::default();
        let c = ctx(50000, 49667);
        assert!(f
            .parser_for(&c, Direction::ToClient, b"midstream bytes")
            .is_none());
        let svcctl = Some(dcerpc::interfaces::SVCCTL.to_string());
        let t0 = Ts::from_secs(100);
        assert!(!f
            .epm
            .borrow_mut()
            .learn(c.conn.resp_h, 49667, svcctl.clone(), t0));
        assert!(f
            .parser_for(&c, Direction::ToClient, b"midstream bytes")
            .is_some());
        assert_eq!(
            f.epm.borrow().lookup(c.conn.resp_h, 49667),
            Some(svcctl.as_deref())
        );
        // Named again later: refreshed, not duplicated; gone once the TTL passed since.
        let t1 = Ts::from_secs(200);
        f.epm.borrow_mut().learn(c.conn.resp_h, 49667, None, t1);
        assert_eq!(f.epm.borrow().len(), 1);
        f.epm
            .borrow_mut()
            .expire(t0.saturating_add_secs(EPM_ENDPOINT_TTL_SECS + 1));
        assert!(f.epm.borrow().contains(c.conn.resp_h, 49667));
        f.epm
            .borrow_mut()
            .expire(t1.saturating_add_secs(EPM_ENDPOINT_TTL_SECS + 1));
        assert!(f.epm.borrow().is_empty());
        let mut forgot = 0;
        for p in 0..(MAX_EPM_ENDPOINTS as u16 + 10) {
            forgot += u32::from(f.epm.borrow_mut().learn(c.conn.resp_h, 1000 + p, None, t1));
        }
        assert_eq!(f.epm.borrow().len(), MAX_EPM_ENDPOINTS);
        assert_eq!(forgot, 10);
    }

    #[test]
    fn by_port_and_by_bytes() {
        assert_eq!(choose(&ctx(50000, 445), b"anything"), Some(AppKind::Smb));
        assert_eq!(
            choose(&ctx(50000, 139), b"\x81\0\0\x44"),
            Some(AppKind::Smb)
        );
        assert_eq!(
            choose(&ctx(50000, 8445), b"\0\0\0\x40\xfeSMB@\0"),
            Some(AppKind::Smb)
        );
        assert_eq!(choose(&ctx(50000, 135), b"whatever"), Some(AppKind::DceRpc));
        assert_eq!(
            choose(&ctx(50000, 49667), &[5, 0, 11, 3, 0x10, 0, 0, 0]),
            Some(AppKind::DceRpc)
        );
        assert_eq!(choose(&ctx(50000, 80), b"GET / HTTP/1.1\r\n"), None);
    }
}
