//! Which application parser serves a new TCP connection: SMB on 445/139 or wherever its header
//! shows, DCE-RPC on 135 or wherever a connection-oriented PDU starts; everything else is skipped.

use crate::dcerpc;
use crate::flow::{Direction, FlowCtx, ParserFactory, StreamParser};
use crate::smb::{self, SmbShared};

/// TCP ports that are SMB whatever the first bytes say (midstream pickups start anywhere).
pub const SMB_PORTS: [u16; 2] = [445, 139];
/// The endpoint mapper's port: DCE-RPC over TCP.
pub const EPM_PORT: u16 = 135;

/// The sensor's parser factory.
#[derive(Clone, Default)]
pub struct AppFactory {
    pub smb: SmbShared,
}

impl AppFactory {
    pub fn new(smb: SmbShared) -> AppFactory {
        AppFactory { smb }
    }
}

/// Which parser a connection gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    Smb,
    DceRpc,
}

/// The choice alone, as a pure function (tested without building parsers).
pub fn choose(ctx: &FlowCtx, first: &[u8]) -> Option<AppKind> {
    let ports = [ctx.conn.resp_p, ctx.conn.orig_p];
    if ports.iter().any(|p| SMB_PORTS.contains(p)) || smb::looks_like_smb(first) {
        Some(AppKind::Smb)
    } else if ports.contains(&EPM_PORT) || dcerpc::Conversation::looks_like_dcerpc(first) {
        Some(AppKind::DceRpc)
    } else {
        None
    }
}

impl ParserFactory for AppFactory {
    fn parser_for(&mut self, ctx: &FlowCtx, _first_dir: Direction, first: &[u8]) -> Option<Box<dyn StreamParser>> {
        match choose(ctx, first)? {
            AppKind::Smb => Some(Box::new(smb::SmbParser::new(*ctx, self.smb.clone()))),
            AppKind::DceRpc => Some(Box::new(dcerpc::TcpParser::new(*ctx))),
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
    fn by_port_and_by_bytes() {
        assert_eq!(choose(&ctx(50000, 445), b"anything"), Some(AppKind::Smb));
        assert_eq!(choose(&ctx(50000, 139), b"\x81\0\0\x44"), Some(AppKind::Smb));
        assert_eq!(choose(&ctx(50000, 8445), b"\0\0\0\x40\xfeSMB@\0"), Some(AppKind::Smb));
        assert_eq!(choose(&ctx(50000, 135), b"whatever"), Some(AppKind::DceRpc));
        assert_eq!(choose(&ctx(50000, 49667), &[5, 0, 11, 3, 0x10, 0, 0, 0]), Some(AppKind::DceRpc));
        assert_eq!(choose(&ctx(50000, 80), b"GET / HTTP/1.1\r\n"), None);
    }
}
