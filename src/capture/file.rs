//! Capture files: pcap (µs and ns), pcapng (several interfaces, per-interface resolution and offset),
//! gzip-compressed files and directories of captures.
//!
//! Files are streamed through a bounded buffer: memory does not grow with the file, only with the
//! largest record (capped by [`MAX_CAPTURE_RECORD_BYTES`]). The format is chosen from the first
//! bytes, never from the file name.

use super::{Frame, Linktype, Packet};
use crate::time::Ts;
use flate2::read::MultiGzDecoder;
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Largest single capture record (pcap frame or pcapng block) we accept. Real snaplens top out at
/// 262144; a record beyond this cap is treated as a corrupt length, not as a reason to allocate.
pub const MAX_CAPTURE_RECORD_BYTES: usize = 4 << 20;

/// Initial read buffer; grown (doubling) up to [`MAX_CAPTURE_RECORD_BYTES`] when a record needs it.
const INITIAL_BUFFER_BYTES: usize = 256 << 10;

/// Bytes read up front to recognise the format (and handed back to the parser unchanged).
const SNIFF_BYTES: usize = 64 << 10;

/// Interfaces per pcapng section we keep; more is a corrupt or hostile file.
pub const MAX_PCAPNG_INTERFACES: usize = 4096;

const PCAP_MAGICS: [[u8; 4]; 6] = [
    [0xd4, 0xc3, 0xb2, 0xa1], // µs, little-endian
    [0xa1, 0xb2, 0xc3, 0xd4], // µs, big-endian
    [0x4d, 0x3c, 0xb2, 0xa1], // ns, little-endian
    [0xa1, 0xb2, 0x3c, 0x4d], // ns, big-endian
    [0x34, 0xcd, 0xb2, 0xa1], // modified (Kuznetzov), little-endian
    [0xa1, 0xb2, 0xcd, 0x34], // modified, big-endian
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a capture file could not be read (or not to the end). `Display` gives "FILE: reason".
#[derive(Debug)]
pub enum CaptureError {
    Missing {
        path: PathBuf,
    },
    Unreadable {
        path: PathBuf,
        reason: String,
    },
    NotACapture {
        path: PathBuf,
        reason: String,
    },
    /// The file ended inside a record; `packets` good packets were read before it.
    Truncated {
        path: PathBuf,
        packets: u64,
    },
    /// A record declared a length beyond [`MAX_CAPTURE_RECORD_BYTES`].
    RecordTooLarge {
        path: PathBuf,
        packets: u64,
    },
    /// A record did not parse.
    Malformed {
        path: PathBuf,
        packets: u64,
        reason: String,
    },
}

impl CaptureError {
    pub fn path(&self) -> &Path {
        match self {
            CaptureError::Missing { path }
            | CaptureError::Unreadable { path, .. }
            | CaptureError::NotACapture { path, .. }
            | CaptureError::Truncated { path, .. }
            | CaptureError::RecordTooLarge { path, .. }
            | CaptureError::Malformed { path, .. } => path,
        }
    }

    /// Good packets read before the error (0 when the file could not be opened).
    pub fn packets_before(&self) -> u64 {
        match self {
            CaptureError::Truncated { packets, .. }
            | CaptureError::RecordTooLarge { packets, .. }
            | CaptureError::Malformed { packets, .. } => *packets,
            _ => 0,
        }
    }

    /// The reason alone, without the file name.
    pub fn reason(&self) -> String {
        match self {
            CaptureError::Missing { .. } => "no such file or directory".to_string(),
            CaptureError::Unreadable { reason, .. } => format!("unreadable: {reason}"),
            CaptureError::NotACapture { reason, .. } => format!("not a capture file: {reason}"),
            CaptureError::Truncated { packets, .. } => {
                format!("truncated: the file ends inside a record (after {packets} good packets)")
            }
            CaptureError::RecordTooLarge { packets, .. } => format!(
                "absurd record length (over {MAX_CAPTURE_RECORD_BYTES} bytes) after {packets} good packets"
            ),
            CaptureError::Malformed { packets, reason, .. } => {
                format!("malformed record after {packets} good packets: {reason}")
            }
        }
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for CaptureError {}

/// What the first bytes say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap,
    PcapNg,
}

fn sniff_plain(head: &[u8]) -> Option<Format> {
    let m: [u8; 4] = head.get(..4)?.try_into().ok()?;
    if PCAP_MAGICS.contains(&m) {
        Some(Format::Pcap)
    } else if m == PCAPNG_MAGIC {
        Some(Format::PcapNg)
    } else {
        None
    }
}

/// Fill `buf` from `r` until it is full or the reader ends; returns how many bytes were read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Counts bytes read from the underlying (compressed) file, for progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

type DynRead = Box<dyn Read + Send>;

/// Open `path`, undo gzip if its magic says so, and return the decoded stream with its first bytes
/// already read (`head`) and the format those bytes show.
/// An opened capture: its format, its first bytes (already read), the rest of the stream, and the
/// file's length when it is a plain file (not compressed, not standard input).
struct Opened {
    format: Format,
    head: Vec<u8>,
    rest: DynRead,
    plain_len: Option<u64>,
}

fn open_stream(path: &Path, progress: Arc<AtomicU64>) -> Result<Opened, CaptureError> {
    let mut plain_len = None;
    let mut raw: DynRead = if path.as_os_str() == "-" {
        // `tcpdump -w - | psexec-sensor read -`
        Box::new(Counting {
            inner: io::stdin(),
            read: progress,
        })
    } else {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CaptureError::Missing {
                path: path.to_owned(),
            },
            _ => CaptureError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        })?;
        let meta = file.metadata().ok();
        if meta.as_ref().is_some_and(|m| m.is_dir()) {
            return Err(CaptureError::Unreadable {
                path: path.to_owned(),
                reason: "is a directory".into(),
            });
        }
        plain_len = meta.map(|m| m.len());
        Box::new(Counting {
            inner: file,
            read: progress,
        })
    };
    let unreadable = |e: io::Error| CaptureError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut head = vec![0u8; SNIFF_BYTES];
    let n = read_up_to(&mut raw, &mut head).map_err(unreadable)?;
    head.truncate(n);
    if n == 0 {
        return Err(CaptureError::NotACapture {
            path: path.to_owned(),
            reason: "empty file".into(),
        });
    }
    let mut stream = raw;
    if head.starts_with(&GZIP_MAGIC) {
        let joined: DynRead = Box::new(io::Cursor::new(head).chain(stream));
        let mut gz: DynRead = Box::new(MultiGzDecoder::new(joined));
        let mut ghead = vec![0u8; SNIFF_BYTES];
        let n = read_up_to(&mut gz, &mut ghead).map_err(|e| CaptureError::NotACapture {
            path: path.to_owned(),
            reason: format!("gzip stream does not decompress: {e}"),
        })?;
        ghead.truncate(n);
        head = ghead;
        stream = gz;
        plain_len = None;
        if n == 0 {
            return Err(CaptureError::NotACapture {
                path: path.to_owned(),
                reason: "empty gzip stream".into(),
            });
        }
    }
    match sniff_plain(&head) {
        Some(format) => Ok(Opened {
            format,
            head,
            rest: stream,
            plain_len,
        }),
        None if head.len() < 4 => Err(CaptureError::NotACapture {
            path: path.to_owned(),
            reason: format!("only {} bytes", head.len()),
        }),
        None => Err(CaptureError::NotACapture {
            path: path.to_owned(),
            reason: format!(
                "bad magic {:02x}{:02x}{:02x}{:02x} (expected pcap, pcapng or gzip)",
                head[0], head[1], head[2], head[3]
            ),
        }),
    }
}

/// Whether `path` is a file whose first bytes (after gzip) are a pcap or pcapng magic.
pub fn looks_like_capture(path: &Path) -> bool {
    open_stream(path, Arc::new(AtomicU64::new(0))).is_ok()
}

/// Whether reading `path` means decompressing it (gzip magic), or it can be read only once
/// (standard input, `-`): inputs one capture thread should read for all workers, rather than
/// each worker reading them again.
pub fn read_once_is_best(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return true;
    }
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == GZIP_MAGIC
}

/// Expand files and directories into the list of captures to read, in a stable order: each
/// argument in turn; a directory contributes every capture below it (recursively, sorted by path,
/// recognised by magic, so `.truth.json` and the like are skipped). Files named explicitly are
/// kept whatever they contain, so that a bad one is reported.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, 0);
            found.sort();
            out.extend(found.into_iter().filter(|f| looks_like_capture(f)));
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Directory depth we descend; deeper trees (or symlink loops) are not followed.
const MAX_DIR_DEPTH: usize = 32;

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > MAX_DIR_DEPTH {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out, depth + 1),
            Ok(t) if t.is_file() => out.push(path),
            Ok(t) if t.is_symlink() => {
                if path.is_file() {
                    out.push(path)
                } else if path.is_dir() {
                    walk(&path, out, depth + 1)
                }
            }
            _ => {}
        }
    }
}

/// One pcapng interface: link type and how to turn its timestamps into nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
}

/// if_tsresol → units per second. Our own because pcap-parser 0.17 rejects every power-of-two
/// resolution (it range-checks the value with the 0x80 flag still set).
fn ts_resolution(tsresol: u8) -> Option<u64> {
    let exp = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exp)
    } else {
        1u64.checked_shl(exp).filter(|_| exp < 64)
    }
}

/// Timestamp units since the epoch → nanoseconds, saturating; never divides by zero.
fn units_to_ns(units: u64, per_sec: u64, offset_secs: i64) -> Ts {
    let per_sec = per_sec.max(1) as u128;
    let ns = (units as u128) * 1_000_000_000u128 / per_sec;
    let off = (offset_secs as i128) * 1_000_000_000i128;
    let total = (ns as i128).saturating_add(off).clamp(0, u64::MAX as i128);
    Ts(total as u64)
}

pub mod follow;
mod legacy;
pub mod merge;

/// Where records come from: our own classic-pcap reader (the common case, and the hot path), or
/// pcap-parser for pcapng and the rare "modified" pcap.
enum Source {
    Legacy(legacy::LegacyReader),
    Parser(Box<dyn PcapReaderIterator + Send>),
}

/// A streaming reader of one capture file.
pub struct CaptureReader {
    path: PathBuf,
    inner: Source,
    format: Format,
    state: BlockState,
    packets: u64,
    buffer_size: usize,
    done: bool,
    /// [`CaptureReader::peek_ts`] holds a frame (in the reader's buffer, or in the caller's spare
    /// packet for the other formats) that [`CaptureReader::take_frame`] hands out.
    peeked: bool,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("path", &self.path)
            .field("packets", &self.packets)
            .finish()
    }
}

/// What earlier blocks said that later ones need.
struct BlockState {
    /// Legacy pcap: link type and fraction units per second.
    legacy_linktype: Linktype,
    legacy_per_sec: u64,
    /// pcapng: interfaces of the current section.
    interfaces: Vec<Interface>,
    last_ts: Ts,
    /// Packet blocks skipped because they named an interface that was never described.
    unknown_interface_packets: u64,
}

impl CaptureReader {
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        CaptureReader::open_with_progress(path, Arc::new(AtomicU64::new(0)))
    }

    /// Like [`CaptureReader::open`]; `progress` is advanced by the bytes read from the file.
    pub fn open_with_progress(
        path: &Path,
        progress: Arc<AtomicU64>,
    ) -> Result<CaptureReader, CaptureError> {
        let Opened {
            format,
            head,
            rest,
            plain_len,
        } = open_stream(path, progress)?;
        if let Some(h) = legacy::header(&head).filter(|_| format == Format::Pcap) {
            // A small file gets a buffer of its size, not a whole block (archives of many small
            // files).
            let block = plain_len.map_or(legacy::READ_BLOCK_BYTES, |n| {
                usize::try_from(n).map_or(legacy::READ_BLOCK_BYTES, |n| {
                    n.min(legacy::READ_BLOCK_BYTES)
                })
            });
            let reader = legacy::LegacyReader::new(h, head, rest, block);
            return Ok(CaptureReader::with_source(
                path,
                Source::Legacy(reader),
                format,
                legacy::READ_BLOCK_BYTES,
            ));
        }
        let head_len = head.len();
        let stream: DynRead = Box::new(io::Cursor::new(head).chain(rest));
        // The first read must see the whole sniffed head, so the buffer holds at least that much.
        let cap = INITIAL_BUFFER_BYTES.max(head_len);
        let bad_header = |e: PcapError<&'static [u8]>| CaptureError::NotACapture {
            path: path.to_owned(),
            reason: format!("header does not parse ({})", describe(&e)),
        };
        let inner: Box<dyn PcapReaderIterator + Send> = match format {
            Format::Pcap => Box::new(LegacyPcapReader::new(cap, stream).map_err(bad_header)?),
            Format::PcapNg => Box::new(PcapNGReader::new(cap, stream).map_err(bad_header)?),
        };
        Ok(CaptureReader::with_source(
            path,
            Source::Parser(inner),
            format,
            cap,
        ))
    }

    fn with_source(
        path: &Path,
        inner: Source,
        format: Format,
        buffer_size: usize,
    ) -> CaptureReader {
        CaptureReader {
            path: path.to_owned(),
            inner,
            format,
            state: BlockState {
                legacy_linktype: 1,
                legacy_per_sec: 1_000_000,
                interfaces: Vec::new(),
                last_ts: Ts(0),
                unknown_interface_packets: 0,
            },
            packets: 0,
            buffer_size,
            done: false,
            peeked: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn format(&self) -> Format {
        self.format
    }
    /// Packets returned so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }
    /// pcapng packet blocks skipped because their interface was never described.
    pub fn unknown_interface_packets(&self) -> u64 {
        self.state.unknown_interface_packets
    }

    /// Read the next packet into `pkt` (its buffer is reused). Ok(false) at the end of the file.
    pub fn next_packet(&mut self, pkt: &mut Packet) -> Result<bool, CaptureError> {
        if self.done {
            return Ok(false);
        }
        if matches!(self.inner, Source::Legacy(_)) {
            return self.next_legacy(pkt);
        }
        let Source::Parser(inner) = &mut self.inner else {
            return Ok(false);
        };
        loop {
            let outcome = match inner.next() {
                Ok((offset, block)) => {
                    let got = self.state.take_block(block, pkt);
                    Step::Consumed(offset, got)
                }
                Err(PcapError::Eof) => Step::End,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::UnexpectedEof) => {
                    if declared_record_len(self.format, inner.data())
                        .is_some_and(|n| n > MAX_CAPTURE_RECORD_BYTES)
                    {
                        Step::Fail(CaptureError::RecordTooLarge {
                            path: self.path.clone(),
                            packets: self.packets,
                        })
                    } else {
                        Step::Fail(CaptureError::Truncated {
                            path: self.path.clone(),
                            packets: self.packets,
                        })
                    }
                }
                Err(e) => Step::Fail(CaptureError::Malformed {
                    path: self.path.clone(),
                    packets: self.packets,
                    reason: describe(&e),
                }),
            };
            match outcome {
                Step::Consumed(offset, got) => {
                    inner.consume(offset);
                    if got {
                        self.packets += 1;
                        return Ok(true);
                    }
                }
                Step::End => {
                    self.done = true;
                    return Ok(false);
                }
                Step::Refill => {
                    if let Err(e) = inner.refill() {
                        self.done = true;
                        return Err(CaptureError::Unreadable {
                            path: self.path.clone(),
                            reason: describe(&e),
                        });
                    }
                }
                Step::Grow => {
                    if self.buffer_size >= MAX_CAPTURE_RECORD_BYTES {
                        self.done = true;
                        return Err(CaptureError::RecordTooLarge {
                            path: self.path.clone(),
                            packets: self.packets,
                        });
                    }
                    self.buffer_size = (self.buffer_size * 2).min(MAX_CAPTURE_RECORD_BYTES);
                    inner.grow(self.buffer_size);
                    if let Err(e) = inner.refill() {
                        self.done = true;
                        return Err(CaptureError::Unreadable {
                            path: self.path.clone(),
                            reason: describe(&e),
                        });
                    }
                }
                Step::Fail(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }
}

impl CaptureReader {
    /// The next frame, borrowed: from the reader's block buffer for classic pcap (no copy), from
    /// `spare` (refilled) for the other formats. Ok(None) at the end of the file.
    pub fn next_frame<'s>(
        &'s mut self,
        spare: &'s mut Packet,
    ) -> Result<Option<Frame<'s>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        if !matches!(self.inner, Source::Legacy(_)) {
            return Ok(self.next_packet(spare)?.then(|| spare.frame()));
        }
        self.legacy_frame()
    }

    /// The time of the first frame of `path` (None: it has none, or it is cut inside it), reading
    /// as little as possible: for classic pcap, the bytes read to recognise the format.
    pub fn first_frame_time(path: &Path) -> Result<Option<Ts>, CaptureError> {
        let Opened {
            format, head, rest, ..
        } = open_stream(path, Arc::new(AtomicU64::new(0)))?;
        if let Some(h) = legacy::header(&head).filter(|_| format == Format::Pcap) {
            return Ok(legacy::LegacyReader::new(h, head, rest, 0)
                .ready()
                .ok()
                .flatten());
        }
        let mut r = CaptureReader::open(path)?;
        Ok(r.peek_ts(&mut Packet::empty()).ok().flatten())
    }

    /// The time of the next frame, which stays unread until [`Self::take_frame`] (with the same
    /// `spare`) takes it; Ok(None) at the end of the file. What a merge of several files needs:
    /// every open file's next time, before it takes the earliest.
    pub fn peek_ts(&mut self, spare: &mut Packet) -> Result<Option<Ts>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        let Source::Legacy(r) = &mut self.inner else {
            if !self.peeked {
                self.peeked = self.next_packet(spare)?;
            }
            return Ok(self.peeked.then_some(spare.ts));
        };
        match r.ready() {
            Ok(Some(ts)) => {
                self.peeked = true;
                Ok(Some(ts))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(stop) => {
                self.done = true;
                Err(legacy_stopped(&self.path, self.packets, stop))
            }
        }
    }

    /// The frame [`Self::peek_ts`] announced (None when it announced none).
    pub fn take_frame<'s>(&'s mut self, spare: &'s Packet) -> Option<Frame<'s>> {
        if !std::mem::take(&mut self.peeked) {
            return None;
        }
        let Source::Legacy(r) = &mut self.inner else {
            return Some(spare.frame());
        };
        let linktype = r.linktype();
        let rec = r.take();
        self.packets += 1;
        self.state.last_ts = rec.ts;
        Some(Frame {
            ts: rec.ts,
            linktype,
            orig_len: rec.orig_len.max(rec.data.len() as u32),
            data: rec.data,
        })
    }

    /// The next classic-pcap record, borrowed from the walker's block buffer.
    fn legacy_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let Source::Legacy(r) = &mut self.inner else {
            return Ok(None);
        };
        let linktype = r.linktype();
        let stop = match r.next() {
            Ok(Some(rec)) => {
                self.packets += 1;
                self.state.last_ts = rec.ts;
                let orig_len = rec.orig_len.max(rec.data.len() as u32);
                return Ok(Some(Frame {
                    ts: rec.ts,
                    linktype,
                    orig_len,
                    data: rec.data,
                }));
            }
            Ok(None) => {
                self.done = true;
                return Ok(None);
            }
            Err(stop) => stop,
        };
        self.done = true;
        Err(legacy_stopped(&self.path, self.packets, stop))
    }

    fn next_legacy(&mut self, pkt: &mut Packet) -> Result<bool, CaptureError> {
        let Some(f) = self.legacy_frame()? else {
            return Ok(false);
        };
        pkt.ts = f.ts;
        pkt.linktype = f.linktype;
        pkt.orig_len = f.orig_len;
        pkt.data.clear();
        pkt.data.extend_from_slice(f.data);
        Ok(true)
    }
}

/// Why the classic-pcap walker stopped, as the error callers see.
fn legacy_stopped(path: &Path, packets: u64, stop: legacy::Stop) -> CaptureError {
    let path = path.to_owned();
    match stop {
        legacy::Stop::Truncated => CaptureError::Truncated { path, packets },
        legacy::Stop::TooLarge => CaptureError::RecordTooLarge { path, packets },
        legacy::Stop::Io => CaptureError::Unreadable {
            path,
            reason: describe::<&[u8]>(&PcapError::ReadError),
        },
    }
}

impl BlockState {
    /// Handle one block; true when it produced a packet in `pkt`.
    fn take_block(&mut self, block: PcapBlockOwned<'_>, pkt: &mut Packet) -> bool {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.legacy_linktype = h.network.0 as u32;
                self.legacy_per_sec = if h.is_nanosecond_precision() {
                    1_000_000_000
                } else {
                    1_000_000
                };
                false
            }
            PcapBlockOwned::Legacy(b) => {
                let ts = Ts((b.ts_sec as u64) * 1_000_000_000)
                    .0
                    .saturating_add(units_to_ns(b.ts_usec as u64, self.legacy_per_sec, 0).0);
                self.fill(pkt, Ts(ts), self.legacy_linktype, b.origlen, b.data);
                true
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                // Interface ids are per section.
                self.interfaces.clear();
                false
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                if self.interfaces.len() < MAX_PCAPNG_INTERFACES {
                    self.interfaces.push(Interface {
                        linktype: idb.linktype.0 as u32,
                        // An invalid resolution (beyond u64) falls back to the default, µs.
                        resolution: ts_resolution(idb.if_tsresol).unwrap_or(1_000_000),
                        offset_secs: idb.ts_offset(),
                    });
                }
                false
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = self.interfaces.get(epb.if_id as usize).copied() else {
                    self.unknown_interface_packets += 1;
                    return false;
                };
                let units = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                let ts = units_to_ns(units, iface.resolution, iface.offset_secs);
                self.fill(pkt, ts, iface.linktype, epb.origlen, epb.packet_data());
                true
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // No timestamp of its own: it inherits the previous packet's time.
                let Some(iface) = self.interfaces.first().copied() else {
                    self.unknown_interface_packets += 1;
                    return false;
                };
                let ts = self.last_ts;
                self.fill(pkt, ts, iface.linktype, spb.origlen, spb.packet_data());
                true
            }
            PcapBlockOwned::NG(_) => false,
        }
    }

    fn fill(&mut self, pkt: &mut Packet, ts: Ts, linktype: Linktype, orig_len: u32, data: &[u8]) {
        pkt.ts = ts;
        pkt.linktype = linktype;
        pkt.orig_len = orig_len.max(data.len() as u32);
        pkt.data.clear();
        pkt.data.extend_from_slice(data);
        self.last_ts = ts;
    }
}

/// The length the record at the start of `buf` declares (the smaller of both byte orders, as the
/// record's own byte order is not tracked here), to tell an absurd length from a cut file.
fn declared_record_len(format: Format, buf: &[u8]) -> Option<usize> {
    let field = |at: usize| -> Option<usize> {
        let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b).min(u32::from_be_bytes(b)) as usize)
    };
    match format {
        Format::Pcap => field(8),   // caplen
        Format::PcapNg => field(4), // block total length
    }
}

enum Step {
    Consumed(usize, bool),
    End,
    Refill,
    Grow,
    Fail(CaptureError),
}

fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "end of file".into(),
        PcapError::BufferTooSmall => "record larger than the buffer".into(),
        PcapError::UnexpectedEof => "unexpected end of file".into(),
        PcapError::ReadError => "read error".into(),
        PcapError::Incomplete(n) => format!("incomplete (needs {n} more bytes)"),
        PcapError::HeaderNotRecognized => "header not recognised".into(),
        PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
            format!("parse error ({k:?})")
        }
    }
}

#[cfg(test)]
mod tests;
