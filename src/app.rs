//! Which application parser serves a new TCP connection: SMB on 445/139 or wherever its header
//! shows, DCE-RPC on 135 or wherever a connection-oriented PDU starts, Kerberos on 88; everything
//! else is skipped.

use crate::dcerpc;
use crate::flow::{Direction, FlowCtx, ParserFactory, StreamParser};
use crate::kerberos;
use crate::smb::{self, SmbShared};
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

/// (server, port) pairs learned from endpoint-mapper answers: a later connection to one is
/// DCE-RPC even when it is picked up midstream. Oldest forgotten first beyond the cap.
#[derive(Debug, Default)]
pub struct EpmEndpoints {
    order: VecDeque<(IpAddr, u16)>,
}

impl EpmEndpoints {
    pub fn learn(&mut self, host: IpAddr, port: u16) {
        if self.contains(host, port) {
            return;
        }
        if self.order.len() >= MAX_EPM_ENDPOINTS {
            self.order.pop_front();
        }
        self.order.push_back((host, port));
    }
    pub fn contains(&self, host: IpAddr, port: u16) -> bool {
        self.order.iter().any(|e| *e == (host, port))
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
        let learned = {
            let epm = self.epm.borrow();
            !epm.is_empty()
                && (epm.contains(ctx.conn.resp_h, ctx.conn.resp_p)
                    || epm.contains(ctx.conn.orig_h, ctx.conn.orig_p))
        };
        // SMB ports still win: a learned port that is 445 stays SMB.
        let kind = match choose(ctx, first) {
            Some(AppKind::Smb) => Some(AppKind::Smb),
            _ if learned => Some(AppKind::DceRpc),
            other => other,
        };
        match kind? {
            AppKind::Smb => Some(Box::new(smb::SmbParser::new(*ctx, self.smb.clone()))),
            AppKind::DceRpc => Some(Box::new(
                dcerpc::TcpParser::new(*ctx).with_secrets(self.smb.keys.clone()),
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
        f.epm.borrow_mut().learn(c.conn.resp_h, 49667);
        assert!(f
            .parser_for(&c, Direction::ToClient, b"midstream bytes")
            .is_some());
        for p in 0..(MAX_EPM_ENDPOINTS as u16 + 10) {
            f.epm.borrow_mut().learn(c.conn.resp_h, 1000 + p);
        }
        assert_eq!(f.epm.borrow().len(), MAX_EPM_ENDPOINTS);
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
