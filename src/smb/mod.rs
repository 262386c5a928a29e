//! SMB over TCP (445, 139, or any port whose bytes say SMB): NetBIOS framing, SMB2/3 and SMB1,
//! into smb_mapping / smb_files / smb_auth / smb_visibility events; named pipes go to DCE-RPC.
//!
//! The framer here cuts each direction's byte stream into NetBIOS session messages. Messages up to
//! [`MAX_SMB_MESSAGE_BUFFER`] are buffered whole and handed to the dialect, except a WRITE of more
//! than [`STREAM_WRITE_ABOVE`] bytes to a known disk file: its data goes straight to the file
//! tracker (no copy), with the outcome of a buffered one. Larger messages are WRITE requests or
//! READ responses in practice, possibly at the end of a compound (CREATE + WRITE): only what
//! precedes their data is buffered (the earlier commands whole, within the buffer cap) and the
//! data streams to the file tracker or the pipe as it arrives
//! ([`smb2::stream_plan`] says how much to buffer). A message that arrives whole in one chunk is
//! parsed where it lies; the reader's buffer is reused while small ([`MAX_KEPT_MESSAGE_BUFFER`]).
//! After a gap the framer scans for the next plausible NetBIOS + SMB header.

pub mod crypto;
pub mod files;
pub mod netbios;
pub mod ntlmssp;
pub mod registry;
pub mod smb1;
pub mod smb2;
pub mod status;
pub mod tables;

use crate::event::AnomalyKind;
use crate::flow::{Direction, FlowCtx, StreamParser};
use crate::sink::Sink;
use crate::time::Ts;
use crate::wire::parsed;
use netbios::{find_nbss_smb_record, parse_nbss_header, NbssKind, NBSS_HEADER_LEN};
use smb1::Smb1State;
use smb2::compression::COMPRESSION_HEADER_LEN;
use smb2::records::{parse_transform_header, TRANSFORM_HEADER_LEN, WRITE_REQUEST_FIXED};
use smb2::state::MAX_COMPOUND_COMMANDS;
use smb2::stream_plan::{plan_stream, Plan};
use smb2::{Smb2State, StreamTarget};
use tables::{Cx, Tables};

/// Whole SMB messages up to this size are buffered; larger ones stream (WRITE / READ data) or are
/// skipped.
pub const MAX_SMB_MESSAGE_BUFFER: usize = 256 * 1024;
/// A WRITE request whose data is longer than this streams it to the file tracker instead of
/// being buffered (when its handle is a known disk file): the copy is what large writes cost.
/// Pipe writes stay whole (DCE-RPC wants them so), and small ones are cheaper to buffer.
pub const STREAM_WRITE_ABOVE: usize = 4 * 1024;
/// A reader keeps its message buffer's allocation between messages up to this capacity, so
/// the usual small messages reuse it; a larger one (a big buffered message) is freed at the
/// message end, so idle connections hold little.
pub const MAX_KEPT_MESSAGE_BUFFER: usize = 16 * 1024;
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
    if first.first() == Some(&netbios::NBSS_MESSAGE) {
        return first
            .get(NBSS_HEADER_LEN..)
            .is_some_and(netbios::is_smb_magic);
    }
    first.first() == Some(&netbios::NBSS_SESSION_REQUEST)
}

/// What the framer does with the body of the current NetBIOS message.
#[derive(Debug)]
enum Body {
    /// Collect the whole message, then parse it.
    Buffer,
    /// Collect `need` bytes of prefix, then decide (again).
    Prefix { need: usize },
    /// Data of a WRITE / READ streams to the state machine, after `skip` more bytes of the
    /// message (padding up to its data offset) are passed over.
    Stream { target: StreamTarget, skip: usize },
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
    kind: NbssKind,
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
            kind: NbssKind::Message,
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
        let buf = std::mem::take(&mut self.buf);
        self.give_back(buf);
        self.body = Body::Skip;
    }

    /// Returns a message buffer for the next message: kept (emptied) up to
    /// [`MAX_KEPT_MESSAGE_BUFFER`], freed beyond.
    fn give_back(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= MAX_KEPT_MESSAGE_BUFFER {
            buf.clear();
            self.buf = buf;
        } else {
            self.buf = Vec::new();
        }
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
    /// The supplied secrets, for the DCE-RPC pipes (Kerberos packet privacy with a keytab).
    secrets: Option<std::sync::Arc<crypto::KeyStore>>,
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
            secrets: shared.keys.clone(),
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
            // A whole message at the start of this chunk needs no copy: parse it where it lies.
            if !r.in_msg && r.hdr_have == 0 {
                if let Some((msg, rest)) = whole_message(dir, input) {
                    let SmbParser {
                        ctx,
                        tables,
                        smb2,
                        smb1,
                        secrets,
                        ..
                    } = self;
                    let cx = Cx::smb2(ctx, ts).with_secrets(secrets.as_ref());
                    dispatch(&cx, tables, smb2, smb1, dir, msg, sink);
                    input = rest;
                    continue;
                }
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
                let Some(h) = parsed(parse_nbss_header(&r.hdr)) else {
                    let conn = crate::event::ConnFields::new(ts, self.ctx.uid, &self.ctx.conn);
                    sink.anomaly(
                        ts,
                        Some(conn),
                        AnomalyKind::Malformed,
                        "smb",
                        format!("bad NetBIOS header {:02x?}", r.hdr),
                    );
                    r.lost = true;
                    r.carry = r.hdr[1..].to_vec();
                    r.hdr_have = 0;
                    continue;
                };
                r.in_msg = true;
                r.kind = h.kind;
                r.len = h.length as usize;
                r.got = 0;
                r.body = if h.kind != NbssKind::Message {
                    Body::Skip
                } else if buffered_outright(dir, r.len) {
                    r.buf.reserve(r.len.min(64 * 1024));
                    Body::Buffer
                } else {
                    // A possible write to stream (or a message too large to buffer).
                    Body::Prefix {
                        need: WRITE_REQUEST_FIXED.max(TRANSFORM_HEADER_LEN).min(r.len),
                    }
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
        let SmbParser {
            ctx,
            readers,
            tables,
            smb2,
            have_keys,
            secrets,
            ..
        } = self;
        let cx = Cx::smb2(ctx, ts).with_secrets(secrets.as_ref());
        let r = &mut readers[dir.index()];
        loop {
            match &mut r.body {
                Body::Skip => return,
                Body::Buffer => {
                    r.buf.extend_from_slice(chunk);
                    return;
                }
                Body::Stream { target, skip } => {
                    let pass = (*skip).min(chunk.len());
                    *skip -= pass;
                    if let Some(data) = chunk.get(pass..).filter(|d| !d.is_empty()) {
                        smb2.stream_data(&cx, tables, target, data, sink);
                    }
                    return;
                }
                Body::Prefix { need } => {
                    let need = *need;
                    let take = need.saturating_sub(r.buf.len()).min(chunk.len());
                    let (head, rest) = chunk.split_at(take);
                    r.buf.extend_from_slice(head);
                    chunk = rest;
                    if r.buf.len() < need {
                        return;
                    }
                    let buf = std::mem::take(&mut r.buf);
                    let mut body = decide(&cx, tables, smb2, *have_keys, dir, &buf, r.len, sink);
                    let keep_prefix = matches!(body, Body::Prefix { .. } | Body::Buffer);
                    if let Body::Stream { target, skip } = &mut body {
                        // Data may already sit in the prefix past its offset (or, with a lying
                        // offset, inside the header: what a buffered message would use too).
                        if let Some(early) = buf.get(*skip..).filter(|e| !e.is_empty()) {
                            smb2.stream_data(&cx, tables, target, early, sink);
                        }
                        *skip = skip.saturating_sub(buf.len());
                    }
                    r.body = body;
                    if keep_prefix {
                        r.buf = buf;
                    } else {
                        r.give_back(buf);
                    }
                    if chunk.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    fn end_message(&mut self, ts: Ts, dir: Direction, sink: &mut Sink) {
        let SmbParser {
            ctx,
            readers,
            tables,
            smb2,
            smb1,
            secrets,
            ..
        } = self;
        let cx = Cx::smb2(ctx, ts).with_secrets(secrets.as_ref());
        let r = &mut readers[dir.index()];
        let body = std::mem::replace(&mut r.body, Body::Skip);
        let buf = std::mem::take(&mut r.buf);
        let kind = r.kind;
        r.reset_message();
        if kind != NbssKind::Message {
            sink.count("smb.netbios_control", 1);
        } else {
            match body {
                // A Prefix here is a message that ended before its prefix did (its length lied,
                // or it was short): parse what there is as a whole message.
                Body::Buffer | Body::Prefix { .. } => {
                    dispatch(&cx, tables, smb2, smb1, dir, &buf, sink)
                }
                Body::Stream { target, .. } => smb2.end_stream(&cx, tables, &target, false, sink),
                Body::Skip => {}
            }
        }
        readers[dir.index()].give_back(buf);
    }
}

/// Whether a message of `len` bytes is buffered whole without looking at it: it fits, and it
/// cannot be a WRITE worth streaming (a response, or too short).
fn buffered_outright(dir: Direction, len: usize) -> bool {
    len <= MAX_SMB_MESSAGE_BUFFER
        && (dir == Direction::ToClient || len <= STREAM_WRITE_ABOVE + WRITE_REQUEST_FIXED)
}

/// A complete session message at the start of `input` that would be buffered outright: its
/// payload and the bytes after it.
fn whole_message(dir: Direction, input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (body, h) = parse_nbss_header(input).ok()?;
    let len = h.length as usize;
    if h.kind != NbssKind::Message || len == 0 || !buffered_outright(dir, len) {
        return None;
    }
    (body.len() >= len).then(|| body.split_at(len))
}

/// A message's prefix is in (it was not buffered outright: a possible write to stream, or too
/// large to buffer): choose between streaming its data (the returned `Stream`'s `skip` counts
/// from the message start here), buffering it whole, needing more prefix, or skipping it.
#[allow(clippy::too_many_arguments)]
fn decide(
    cx: &Cx<'_>,
    t: &mut Tables,
    smb2: &mut Smb2State,
    have_keys: bool,
    dir: Direction,
    prefix: &[u8],
    len: usize,
    sink: &mut Sink,
) -> Body {
    let fits = len <= MAX_SMB_MESSAGE_BUFFER;
    match prefix.first() {
        Some(0xFE) => {
            // A compound that fits is read whole; a larger one may stream its last command
            // after its earlier ones, buffered within the cap.
            let max_head = if fits { 0 } else { MAX_SMB_MESSAGE_BUFFER };
            let plan = match plan_stream(prefix, len, max_head, MAX_COMPOUND_COMMANDS) {
                Plan::Need(n) => return Body::Prefix { need: n },
                Plan::Stream(p) if !fits || p.length as usize > STREAM_WRITE_ABOVE => Some(p),
                Plan::Stream(_) | Plan::Whole => None,
            };
            let target = plan.and_then(|p| {
                smb2.begin_stream(cx, t, dir, prefix, &p, fits, sink)
                    .map(|target| (target, p.data_at))
            });
            match target {
                Some((target, skip)) => {
                    sink.count("smb2.streamed_messages", 1);
                    Body::Stream { target, skip }
                }
                None if fits => Body::Buffer,
                None => skip_large(cx, "SMB2 message", len, sink),
            }
        }
        _ if fits => Body::Buffer,
        Some(0xFD) => {
            if have_keys && len <= MAX_SMB_TRANSFORM_BUFFER {
                return Body::Buffer;
            }
            match parsed(parse_transform_header(prefix)) {
                Some(th) => smb2.transform_opaque(cx, t, dir, &th, len as u64, sink),
                None => sink.anomaly(
                    cx.ts,
                    Some(cx.conn()),
                    AnomalyKind::Malformed,
                    "smb2",
                    "short transform header",
                ),
            }
            Body::Skip
        }
        // Compressed messages are rebuilt whole, like transforms with keys.
        Some(0xFC) if len <= MAX_SMB_TRANSFORM_BUFFER => Body::Buffer,
        Some(0xFC) => {
            smb2.compressed(
                cx,
                t,
                dir,
                prefix.get(..COMPRESSION_HEADER_LEN).unwrap_or(prefix),
                len as u64,
                sink,
            );
            Body::Skip
        }
        Some(0xFF) => {
            // NetBIOS caps SMB1 at 128 KiB (17-bit length); a larger one is not read.
            sink.count("smb1.messages", 1);
            skip_large(cx, "SMB1 message", len, sink)
        }
        _ => {
            sink.anomaly(
                cx.ts,
                Some(cx.conn()),
                AnomalyKind::Malformed,
                "smb",
                "NetBIOS message without SMB magic",
            );
            Body::Skip
        }
    }
}

fn skip_large(cx: &Cx<'_>, what: &str, len: usize, sink: &mut Sink) -> Body {
    sink.cap_reached(
        "MAX_SMB_MESSAGE_BUFFER",
        cx.ts,
        Some(cx.conn()),
        "smb",
        format!("{what} of {len} bytes skipped"),
    );
    Body::Skip
}

/// A whole NetBIOS message payload.
fn dispatch(
    cx: &Cx<'_>,
    t: &mut Tables,
    smb2: &mut Smb2State,
    smb1: &mut Smb1State,
    dir: Direction,
    msg: &[u8],
    sink: &mut Sink,
) {
    match msg.first() {
        Some(0xFE) => smb2.message(cx, t, dir, msg, false, sink),
        Some(0xFD) => smb2.transform(cx, t, dir, msg, sink),
        Some(0xFC) => smb2.compressed(cx, t, dir, msg, msg.len() as u64, sink),
        Some(0xFF) => {
            sink.count("smb1.messages", 1);
            smb1.message(&cx.smb1(), t, dir, msg, sink)
        }
        _ => sink.anomaly(
            cx.ts,
            Some(cx.conn()),
            AnomalyKind::Malformed,
            "smb",
            "NetBIOS message without SMB magic",
        ),
    }
}

impl StreamParser for SmbParser {
    fn data(&mut self, ts: Ts, dir: Direction, bytes: &[u8], sink: &mut Sink) {
        self.feed(ts, dir, bytes, sink);
    }

    fn gap(&mut self, ts: Ts, dir: Direction, len: u64, sink: &mut Sink) {
        let SmbParser {
            ctx,
            readers,
            tables,
            smb2,
            secrets,
            ..
        } = self;
        let cx = Cx {
            layer: "smb",
            ..Cx::smb2(ctx, ts).with_secrets(secrets.as_ref())
        };
        let r = &mut readers[dir.index()];
        sink.count("smb.gap_bytes", len);
        // Inside a streamed or skipped body the framing survives: account and move on.
        if r.in_msg && !r.lost {
            let left = (r.len - r.got) as u64;
            let lost = len.min(left);
            if let Body::Stream { target, skip } = &mut r.body {
                // Padding before the data is no loss; the rest of the lost bytes were data.
                let pad = (*skip as u64).min(lost);
                *skip -= pad as usize;
                smb2.stream_gap(&cx, tables, target, lost - pad, sink);
                if len >= left {
                    smb2.end_stream(&cx, tables, target, false, sink);
                }
            }
            if len < left && matches!(r.body, Body::Stream { .. } | Body::Skip) {
                r.got += len as usize;
                return;
            }
        }
        sink.anomaly(
            ts,
            Some(cx.conn()),
            AnomalyKind::Gap,
            "smb",
            format!("{len} bytes missing {dir:?}; resynchronising"),
        );
        r.reset_message();
        r.lost = true;
        r.carry.clear();
    }

    fn close(&mut self, ts: Ts, sink: &mut Sink) {
        let SmbParser {
            ctx,
            readers,
            tables,
            smb2,
            smb1,
            secrets,
            ..
        } = self;
        let cx = Cx::smb2(ctx, ts).with_secrets(secrets.as_ref());
        // A write still streaming when the flow ends is dated before its handle is finished.
        for r in readers.iter_mut() {
            if let Body::Stream { target, .. } = std::mem::replace(&mut r.body, Body::Skip) {
                smb2.end_stream(&cx, tables, &target, true, sink);
            }
        }
        smb2.close(&cx, tables, sink);
        smb1.close(&cx.smb1(), tables, sink);
        tables.end_all(&cx, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small messages reuse one allocation; a large buffered one is freed at its end.
    #[test]
    fn message_buffer_kept_when_small_freed_when_large() {
        let conn = crate::flow::ConnId {
            orig_h: "192.0.2.1".parse().unwrap(),
            orig_p: 1,
            resp_h: "192.0.2.2".parse().unwrap(),
            resp_p: 445,
        };
        let mut p = SmbParser::new(
            FlowCtx {
                conn,
                uid: crate::flow::Uid::new(&conn, 1),
            },
            SmbShared::default(),
        );
        let mut sink = Sink::new();
        let framed = |n: usize| {
            let mut v = vec![
                0,
                (n >> 16) as u8,
                (n >> 8) as u8,
                n as u8,
                0xFE,
                b'S',
                b'M',
                b'B',
            ];
            v.resize(NBSS_HEADER_LEN + n, 0);
            v
        };
        let reader = |p: &SmbParser| (p.readers[1].buf.capacity(), p.readers[1].buf.as_ptr());
        // in two pieces, so the message is buffered (a whole one in one piece is not copied)
        let feed = |p: &mut SmbParser, sink: &mut Sink, m: Vec<u8>| {
            let (a, b) = m.split_at(10);
            p.data(Ts(1), Direction::ToClient, a, sink);
            p.data(Ts(1), Direction::ToClient, b, sink);
        };
        feed(&mut p, &mut sink, framed(300));
        let (cap, at) = reader(&p);
        assert!((300..=MAX_KEPT_MESSAGE_BUFFER).contains(&cap), "{cap}");
        feed(&mut p, &mut sink, framed(200));
        assert_eq!(reader(&p), (cap, at), "reused");
        p.data(Ts(2), Direction::ToClient, &framed(100), &mut sink);
        assert_eq!(
            reader(&p),
            (cap, at),
            "a whole message in one piece is parsed in place"
        );
        feed(&mut p, &mut sink, framed(100_000));
        assert_eq!(reader(&p).0, 0, "freed");
    }
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
