//! SMB over TCP (445, 139, or any port whose bytes say SMB): NetBIOS framing, SMB2/3 and SMB1,
//! into smb_mapping / smb_files / smb_auth / smb_visibility events; named pipes go to DCE-RPC.
//!
//! The framer here cuts each direction's byte stream into NetBIOS session messages. Messages up to
//! [`MAX_SMB_MESSAGE_BUFFER`] are buffered whole and handed to the dialect; larger ones are WRITE
//! requests or READ responses in practice, so only their header and fixed part are buffered
//! (at most [`MAX_SMB_HEADER_BUFFER`]) and their data streams to the file tracker or the pipe as it
//! arrives. After a gap the framer scans for the next plausible NetBIOS + SMB header.

pub mod crypto;
pub mod files;
pub mod netbios;
pub mod ntlmssp;
pub mod smb1;
pub mod smb2;
pub mod status;
pub mod tables;

use crate::event::{AnomalyKind, SmbVersion};
use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::time::Ts;
use netbios::{find_nbss_smb_record, parse_nbss_header, NBSS_HEADER_LEN, NBSS_MESSAGE};
use smb2::records::{parse_transform_header, COMPRESSION_HEADER_LEN, TRANSFORM_HEADER_LEN, WRITE_REQUEST_FIXED};
use smb1::Smb1State;
use smb2::{Smb2State, StreamTarget};
use tables::{Cx, Tables};

/// Whole SMB messages up to this size are buffered; larger ones stream (WRITE / READ data) or are
/// skipped.
pub const MAX_SMB_MESSAGE_BUFFER: usize = 256 * 1024;
/// The most we buffer of a large message before its data starts (header + fixed part + padding).
pub const MAX_SMB_HEADER_BUFFER: usize = 4096;
/// Transform messages are buffered whole (for decryption) up to this size when keys were
/// supplied; without keys only their header is kept.
pub const MAX_SMB_TRANSFORM_BUFFER: usize = 8 * 1024 * 1024 + 4096;
/// Bytes scanned for a NetBIOS + SMB header after a gap before the direction is given up on
/// until the next gap or data (the scan itself keeps no more than a few bytes).
const RESYNC_CARRY: usize = NBSS_HEADER_LEN + 3;

/// State shared by every SMB connection of one worker: supplied decryption secrets (and, later,
/// sessions that span connections, for multichannel).
#[derive(Clone, Default)]
pub struct SmbShared {
    pub keys: Option<std::sync::Arc<crypto::KeyStore>>,
    /// Trees and handles published across connections (multichannel).
    pub names: tables::SharedRegistry,
}

/// Whether `first` starts like SMB over TCP: a NetBIOS session message or session request whose
/// payload begins with an SMB1/SMB2/transform/compression magic.
pub fn looks_like_smb(first: &[u8]) -> bool {
    if first.first() == Some(&NBSS_MESSAGE) {
        return first.get(NBSS_HEADER_LEN..).is_some_and(netbios::is_smb_magic);
    }
    first.first() == Some(&netbios::NBSS_SESSION_REQUEST)
}

/// What the framer does with the body of the current NetBIOS message.
#[derive(Debug)]
enum Body {
    /// Collect the whole message, then parse it.
    Buffer,
    /// Large message: collect `need` bytes of prefix, then decide.
    Prefix { need: usize },
    /// Data of a large WRITE / READ streams to the state machine.
    Stream(StreamTarget),
    /// Discard the rest (non-message NetBIOS types, messages we will not read).
    Skip,
}

/// One direction's framing state.
#[derive(Debug)]
struct Reader {
    hdr: [u8; NBSS_HEADER_LEN],
    hdr_have: usize,
    /// In a message body: its type, length, bytes consumed so far.
    in_msg: bool,
    kind: u8,
    len: usize,
    got: usize,
    buf: Vec<u8>,
    body: Body,
    /// Lost sync after a gap or a bad header: scanning for the next record.
    lost: bool,
    carry: Vec<u8>,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            hdr: [0; NBSS_HEADER_LEN],
            hdr_have: 0,
            in_msg: false,
            kind: 0,
            len: 0,
            got: 0,
            buf: Vec::new(),
            body: Body::Skip,
            lost: false,
            carry: Vec::new(),
        }
    }
    fn reset_message(&mut self) {
        self.in_msg = false;
        self.hdr_have = 0;
        self.got = 0;
        self.len = 0;
        self.buf = Vec::new();
        self.body = Body::Skip;
    }
}

/// One TCP connection's SMB parser.
pub struct SmbParser {
    ctx: FlowCtx,
    readers: [Reader; 2],
    tables: Tables,
    smb2: Smb2State,
    smb1: Smb1State,
    have_keys: bool,
}

impl SmbParser {
    pub fn new(ctx: FlowCtx, shared: SmbShared) -> SmbParser {
        let have_keys = shared.keys.is_some();
        SmbParser {
            ctx,
            readers: [Reader::new(), Reader::new()],
            tables: Tables::with_registry(shared.names.clone()),
            smb2: Smb2State::new(crypto::ConnDecryptor::new(shared.keys.clone())),
            smb1: Smb1State::new(),
            have_keys,
        }
    }

    fn feed(&mut self, ts: Ts, dir: Direction, mut input: &[u8], sink: &mut Sink) {
        while !input.is_empty() {
            let r = &mut self.readers[dir.index()];
            if r.lost {
                let mut scan = std::mem::take(&mut r.carry);
                scan.extend_from_slice(input);
                match find_nbss_smb_record(&scan) {
                    Some(at) => {
                        r.lost = false;
                        r.reset_message();
                        sink.count("smb.resync", 1);
                        let rest = scan.get(at..).unwrap_or(&[]).to_vec();
                        self.feed(ts, dir, &rest, sink);
                    }
                    None => {
                        let keep = scan.len().saturating_sub(RESYNC_CARRY);
                        r.carry = scan.get(keep..).unwrap_or(&[]).to_vec();
                    }
                }
                return;
            }
            if !r.in_msg {
                let want = NBSS_HEADER_LEN - r.hdr_have;
                let n = want.min(input.len());
                r.hdr[r.hdr_have..r.hdr_have + n].copy_from_slice(&input[..n]);
                r.hdr_have += n;
                input = &input[n..];
                if r.hdr_have < NBSS_HEADER_LEN {
                    return;
                }
                let Some(h) = parse_nbss_header(&r.hdr) else {
                    let conn = crate::event::ConnFields::new(ts, self.ctx.uid, &self.ctx.conn);
                    sink.anomaly(ts, Some(conn), AnomalyKind::Malformed, "smb", format!("bad NetBIOS header {:02x?}", r.hdr));
                    r.lost = true;
                    r.carry = r.hdr[1..].to_vec();
                    r.hdr_have = 0;
                    continue;
                };
                r.in_msg = true;
                r.kind = h.kind;
                r.len = h.length as usize;
                r.got = 0;
                r.body = if h.kind != NBSS_MESSAGE {
                    Body::Skip
                } else if r.len <= MAX_SMB_MESSAGE_BUFFER {
                    r.buf = Vec::with_capacity(r.len.min(64 * 1024));
                    Body::Buffer
                } else {
                    Body::Prefix { need: WRITE_REQUEST_FIXED.max(TRANSFORM_HEADER_LEN) }
                };
                if r.len == 0 {
                    self.end_message(ts, dir, sink);
                }
                continue;
            }
            let n = (r.len - r.got).min(input.len());
            let (chunk, rest) = input.split_at(n);
            input = rest;
            r.got += n;
            self.body_chunk(ts, dir, chunk, sink);
            let r = &mut self.readers[dir.index()];
            if r.in_msg && r.got >= r.len {
                self.end_message(ts, dir, sink);
            }
        }
    }

    fn body_chunk(&mut self, ts: Ts, dir: Direction, mut chunk: &[u8], sink: &mut Sink) {
        let SmbParser { ctx, readers, tables, smb2, have_keys, .. } = self;
        let cx = Cx { flow: ctx, ts, version: SmbVersion::Smb2, layer: "smb2" };
        let r = &mut readers[dir.index()];
        loop {
            match &mut r.body {
                Body::Skip => return,
                Body::Buffer => {
                    r.buf.extend_from_slice(chunk);
                    return;
                }
                Body::Stream(target) => {
                    smb2.stream_data(&cx, tables, target, chunk, sink);
                    return;
                }
                Body::Prefix { need } => {
                    let need = *need;
                    let take = need.saturating_sub(r.buf.len()).min(chunk.len());
                    r.buf.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if r.buf.len() < need {
                        return;
                    }
                    let (body, data_at) = decide_large(&cx, tables, smb2, *have_keys, dir, &r.buf, r.len, sink);
                    r.body = body;
                    match &mut r.body {
                        Body::Prefix { .. } | Body::Buffer => {}
                        Body::Stream(target) => {
                            // Data may already sit in the prefix past the data offset.
                            if let Some(early) = r.buf.get(data_at..).filter(|e| !e.is_empty()) {
                                let early = early.to_vec();
                                smb2.stream_data(&cx, tables, target, &early, sink);
                            }
                            r.buf = Vec::new();
                        }
                        Body::Skip => r.buf = Vec::new(),
                    }
                    if chunk.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    fn end_message(&mut self, ts: Ts, dir: Direction, sink: &mut Sink) {
        let SmbParser { ctx, readers, tables, smb2, smb1, .. } = self;
        let cx = Cx { flow: ctx, ts, version: SmbVersion::Smb2, layer: "smb2" };
        let r = &mut readers[dir.index()];
        let body = std::mem::replace(&mut r.body, Body::Skip);
        let buf = std::mem::take(&mut r.buf);
        let (kind, len) = (r.kind, r.len);
        r.reset_message();
        if kind != NBSS_MESSAGE {
            sink.count("smb.netbios_control", 1);
            return;
        }
        match body {
            Body::Buffer => dispatch(&cx, tables, smb2, smb1, dir, &buf, sink),
            Body::Prefix { .. } => {
                // A large message that ended before its prefix did (its length lied): parse
                // what there is as a whole message.
                dispatch(&cx, tables, smb2, smb1, dir, &buf, sink)
            }
            Body::Stream(_) | Body::Skip => {
                let _ = len;
            }
        }
    }
}

/// A large message's prefix is in: choose between streaming its data, buffering it whole
/// (transforms with keys), needing more prefix, or skipping it.
#[allow(clippy::too_many_arguments)]
/// Returns the new body mode and, when streaming, where the data starts in the message.
fn decide_large(cx: &Cx<'_>, t: &mut Tables, smb2: &mut Smb2State, have_keys: bool, dir: Direction, prefix: &[u8], len: usize, sink: &mut Sink) -> (Body, usize) {
    match prefix.first() {
        Some(0xFE) => {
            if let Some(off) = data_offset_hint(prefix) {
                if off > prefix.len() && off <= MAX_SMB_HEADER_BUFFER && off <= len {
                    return (Body::Prefix { need: off }, 0);
                }
            }
            match smb2.begin_stream(cx, t, dir, prefix, sink) {
                Some((target, data_offset)) => {
                    sink.count("smb2.streamed_messages", 1);
                    (Body::Stream(target), data_offset)
                }
                None => (skip_large(cx, "SMB2 message", len, sink), 0),
            }
        }
        Some(0xFD) => {
            if have_keys && len <= MAX_SMB_TRANSFORM_BUFFER {
                return (Body::Buffer, 0);
            }
            match parse_transform_header(prefix) {
                Some(th) => smb2.transform_opaque(cx, t, dir, &th, len as u64, sink),
                None => sink.anomaly(cx.ts, Some(cx.conn()), AnomalyKind::Malformed, "smb2", "short transform header"),
            }
            (Body::Skip, 0)
        }
        Some(0xFC) => {
            smb2.compressed(cx, t, dir, prefix.get(..COMPRESSION_HEADER_LEN).unwrap_or(prefix), len as u64, sink);
            (Body::Skip, 0)
        }
        Some(0xFF) => {
            // NetBIOS caps SMB1 at 128 KiB (17-bit length); a larger one is not read.
            sink.count("smb1.messages", 1);
            (skip_large(cx, "SMB1 message", len, sink), 0)
        }
        _ => {
            sink.anomaly(cx.ts, Some(cx.conn()), AnomalyKind::Malformed, "smb", "NetBIOS message without SMB magic");
            (Body::Skip, 0)
        }
    }
}

fn skip_large(cx: &Cx<'_>, what: &str, len: usize, sink: &mut Sink) -> Body {
    sink.cap_reached("MAX_SMB_MESSAGE_BUFFER", cx.ts, Some(cx.conn()), "smb", format!("{what} of {len} bytes skipped"));
    Body::Skip
}

/// The data offset of a WRITE request or READ response prefix, to know how much to buffer.
fn data_offset_hint(prefix: &[u8]) -> Option<usize> {
    use smb2::records::*;
    let h = parse_header(prefix)?;
    match (h.command, h.is_response()) {
        (WRITE, false) => parse_write_request(prefix).map(|w| usize::from(w.data_offset)),
        (READ, true) => parse_read_response(prefix).map(|r| usize::from(r.data_offset)),
        _ => None,
    }
}

/// A whole NetBIOS message payload.
fn dispatch(cx: &Cx<'_>, t: &mut Tables, smb2: &mut Smb2State, smb1: &mut Smb1State, dir: Direction, msg: &[u8], sink: &mut Sink) {
    match msg.first() {
        Some(0xFE) => smb2.message(cx, t, dir, msg, false, sink),
        Some(0xFD) => smb2.transform(cx, t, dir, msg, sink),
        Some(0xFC) => smb2.compressed(cx, t, dir, msg, msg.len() as u64, sink),
        Some(0xFF) => {
            sink.count("smb1.messages", 1);
            let cx1 = Cx { version: SmbVersion::Smb1, layer: "smb1", ..*cx };
            smb1.message(&cx1, t, dir, msg, sink)
        }
        _ => sink.anomaly(cx.ts, Some(cx.conn()), AnomalyKind::Malformed, "smb", "NetBIOS message without SMB magic"),
    }
}

impl StreamParser for SmbParser {
    fn data(&mut self, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        self.feed(ts, dir, bytes, sink);
    }

    fn gap(&mut self, ts: Ts, dir: Direction, len: u64, sink: &mut Sink) {
        let SmbParser { ctx, readers, tables, smb2, .. } = self;
        let cx = Cx { flow: ctx, ts, version: SmbVersion::Smb2, layer: "smb" };
        let r = &mut readers[dir.index()];
        sink.count("smb.gap_bytes", len);
        // Inside a streamed or skipped body the framing survives: account and move on.
        if r.in_msg && !r.lost {
            let left = (r.len - r.got) as u64;
            if len < left {
                match &mut r.body {
                    Body::Stream(target) => {
                        smb2.stream_gap(&cx, tables, target, len, sink);
                        r.got += len as usize;
                        return;
                    }
                    Body::Skip => {
                        r.got += len as usize;
                        return;
                    }
                    _ => {}
                }
            }
            if let Body::Stream(target) = &mut r.body {
                smb2.stream_gap(&cx, tables, target, left, sink);
            }
        }
        sink.anomaly(ts, Some(cx.conn()), AnomalyKind::Gap, "smb", format!("{len} bytes missing {dir:?}; resynchronising"));
        r.reset_message();
        r.lost = true;
        r.carry.clear();
    }

    fn close(&mut self, ts: Ts, sink: &mut Sink) {
        let SmbParser { ctx, tables, smb2, smb1, .. } = self;
        let cx = Cx { flow: ctx, ts, version: SmbVersion::Smb2, layer: "smb2" };
        smb2.close(&cx, tables, sink);
        smb1.close(&Cx { version: SmbVersion::Smb1, layer: "smb1", ..cx }, tables, sink);
        tables.end_all(&cx, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_smb;
    #[test]
    fn smb_by_its_first_bytes() {
        assert!(looks_like_smb(b"\x00\x00\x00\x48\xfeSMB@"));
        assert!(looks_like_smb(b"\x00\x00\x01\x00\xfdSMB"));
        assert!(looks_like_smb(b"\x81\x00\x00\x44"));
        assert!(!looks_like_smb(b"\x00\x00\x00\x48\xfeSM"));
        assert!(!looks_like_smb(b"\x05\x00\x0b\x03"));
        assert!(!looks_like_smb(b""));
    }
}
