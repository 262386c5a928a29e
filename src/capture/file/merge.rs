//! Several capture files read as one capture, in time order (a directory that tcpdump `-G`/`-C`,
//! Arkime or Stenographer cut at arbitrary packets; a set of captures given on the command line).
//!
//! * [`plan`] opens every file once to read its first frame's time and orders the files by it (the
//!   given order breaks ties); file names say nothing about time. Files without a first frame
//!   (empty, unreadable, not a capture) come first: they only report.
//! * [`Merge`] then yields their frames as one stream. Files that do not overlap in time are read
//!   one after the other, one open at a time. Where they overlap, frames are merged by timestamp
//!   (what Zeek does with several `-r` inputs): a file is opened only when the merge reaches its
//!   first frame's time, and closed at its end, so only the files that overlap the current time are
//!   open (at most [`MAX_MERGE_OPEN_FILES`]). Equal times go to the file earlier in the plan, so
//!   the stream is a pure function of the plan: every worker that reads it sees the same frames in
//!   the same order.
//! * Each file's end (clean or not) is a step of its own ([`Step::Ended`]), at the point of the
//!   stream where it happened: a bad file is reported and the others go on.

use super::{CaptureError, CaptureReader};
use crate::capture::{Frame, Packet};
use crate::time::Ts;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Files a merge keeps open at once (files overlapping in time). Beyond it, a file whose time has
/// come waits until another one ends, and its earlier frames come late (counted in
/// `capture.merge_deferred_files`): memory stays bounded (a reader holds a buffer of up to
/// 1 MiB) whatever a directory holds.
pub const MAX_MERGE_OPEN_FILES: usize = 64;

/// One input in time order.
#[derive(Debug)]
pub struct Planned {
    pub path: PathBuf,
    /// Time of its first frame; None when it has none (empty, or it could not be read that far).
    pub first_ts: Option<Ts>,
    /// A reader that cannot be opened twice (standard input), kept open from planning with the
    /// packet that holds its peeked frame.
    held: Mutex<Option<(CaptureReader, Packet)>>,
}

/// The inputs of one run, in the order [`Merge`] reads them.
#[derive(Debug, Default)]
pub struct Plan {
    pub inputs: Vec<Planned>,
}

/// Orders `files` by the time of their first frame (ties: the given order). Opens each file once
/// and closes it again (reading only its first bytes), except standard input (`-`), which stays
/// open for the merge.
pub fn plan(files: &[PathBuf]) -> Plan {
    let mut inputs: Vec<(usize, Planned)> = files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let (first_ts, held) = if path.as_os_str() == "-" {
                match CaptureReader::open(path) {
                    Ok(mut r) => {
                        let mut spare = Packet::empty();
                        let ts = r.peek_ts(&mut spare).ok().flatten();
                        (ts, Some((r, spare)))
                    }
                    Err(_) => (None, None),
                }
            } else {
                (CaptureReader::first_frame_time(path).ok().flatten(), None)
            };
            let held = Mutex::new(held);
            let path = path.clone();
            (
                i,
                Planned {
                    path,
                    first_ts,
                    held,
                },
            )
        })
        .collect();
    inputs.sort_by_key(|(i, p)| (p.first_ts, *i));
    Plan {
        inputs: inputs.into_iter().map(|(_, p)| p).collect(),
    }
}

impl Plan {
    pub fn len(&self) -> usize {
        self.inputs.len()
    }
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.inputs.iter().map(|p| p.path.as_path())
    }
}

/// How one file of a merge ended.
#[derive(Debug)]
pub struct FileEnd {
    pub path: PathBuf,
    /// Frames read from it.
    pub packets: u64,
    /// The file could not be read (to the end); its frames before the problem were merged.
    pub error: Option<CaptureError>,
    /// The error came while reading, after the file opened (a capture anomaly in the stream).
    pub opened: bool,
    /// pcapng packet blocks skipped because their interface was never described.
    pub unknown_interface_packets: u64,
}

/// What the merged stream holds next.
pub enum Step<'a> {
    Frame(Frame<'a>),
    /// One file is done (read to its end, or stopped by an error).
    Ended(FileEnd),
    /// Every file is done.
    End,
}

struct Open {
    reader: CaptureReader,
    /// Holds the peeked frame for formats read through pcap-parser.
    spare: Packet,
    /// Its next frame's time.
    head: Ts,
    /// Its position in the plan (ties between equal times).
    order: usize,
}

/// The frames of every planned file, as one stream in time order.
pub struct Merge<'p> {
    plan: &'p Plan,
    /// The next planned file to open.
    next: usize,
    open: Vec<Open>,
    /// The open file whose frame was handed out last (it must look at its next frame).
    taken: Option<usize>,
    ended: VecDeque<FileEnd>,
    progress: Arc<AtomicU64>,
    /// Time of the latest frame handed out.
    last: Ts,
    deferred: u64,
}

impl<'p> Merge<'p> {
    /// `progress` is advanced by the bytes read from the files.
    pub fn new(plan: &'p Plan, progress: Arc<AtomicU64>) -> Merge<'p> {
        Merge {
            plan,
            next: 0,
            open: Vec::new(),
            taken: None,
            ended: VecDeque::new(),
            progress,
            last: Ts(0),
            deferred: 0,
        }
    }

    /// Files that were opened later than their time because [`MAX_MERGE_OPEN_FILES`] were open.
    pub fn deferred_files(&self) -> u64 {
        self.deferred
    }

    /// Files open right now.
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// The next frame, file end, or the end of the stream.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Step<'_> {
        if let Some(w) = self.taken.take() {
            self.look_ahead(w);
        }
        if let Some(end) = self.ended.pop_front() {
            return Step::Ended(end);
        }
        if self.next < self.plan.inputs.len() {
            self.open_due();
            if let Some(end) = self.ended.pop_front() {
                return Step::Ended(end);
            }
        }
        let Some(w) = self.earliest() else {
            return Step::End;
        };
        self.taken = Some(w);
        let o = &mut self.open[w];
        self.last = self.last.max(o.head);
        match o.reader.take_frame(&o.spare) {
            Some(f) => Step::Frame(f),
            // Not reached: every open file has a peeked frame.
            None => Step::End,
        }
    }

    /// The open file with the earliest next frame (the plan's order on equal times).
    fn earliest(&self) -> Option<usize> {
        if self.open.len() == 1 {
            // One file (the common case): nothing to compare.
            return Some(0);
        }
        let mut best: Option<(Ts, usize, usize)> = None;
        for (w, o) in self.open.iter().enumerate() {
            if best.is_none_or(|(t, ord, _)| (o.head, o.order) < (t, ord)) {
                best = Some((o.head, o.order, w));
            }
        }
        best.map(|(_, _, w)| w)
    }

    /// Opens every planned file whose first frame is due: when nothing is open, or its first
    /// frame is not later than the earliest frame of the open files.
    fn open_due(&mut self) {
        while let Some(p) = self.plan.inputs.get(self.next) {
            let now = self.open.iter().map(|o| o.head).min();
            let due = match (now, p.first_ts) {
                (None, _) | (_, None) => true,
                (Some(now), Some(t)) => t <= now,
            };
            if !due {
                return;
            }
            if self.open.len() >= MAX_MERGE_OPEN_FILES {
                return;
            }
            if p.first_ts.is_some_and(|t| t < self.last) {
                // Held back by the cap: frames after its first were already handed out.
                self.deferred += 1;
            }
            let order = self.next;
            self.next += 1;
            let held = p.held.lock().ok().and_then(|mut h| h.take());
            let opened = match held {
                Some(r) => Ok(r),
                None => CaptureReader::open_with_progress(&p.path, self.progress.clone())
                    .map(|r| (r, Packet::empty())),
            };
            match opened {
                Ok((reader, spare)) => {
                    self.open.push(Open {
                        reader,
                        spare,
                        head: Ts(0),
                        order,
                    });
                    self.look_ahead(self.open.len() - 1);
                }
                Err(e) => self.ended.push_back(FileEnd {
                    path: p.path.clone(),
                    packets: 0,
                    error: Some(e),
                    opened: false,
                    unknown_interface_packets: 0,
                }),
            }
        }
    }

    /// Reads open file `w`'s next frame time; closes it (a [`Step::Ended`]) at its end.
    fn look_ahead(&mut self, w: usize) {
        let Some(o) = self.open.get_mut(w) else {
            return;
        };
        let error = match o.reader.peek_ts(&mut o.spare) {
            Ok(Some(ts)) => {
                o.head = ts;
                return;
            }
            Ok(None) => None,
            Err(e) => Some(e),
        };
        let o = self.open.swap_remove(w);
        self.ended.push_back(FileEnd {
            path: o.reader.path().to_owned(),
            packets: o.reader.packets(),
            error,
            opened: true,
            unknown_interface_packets: o.reader.unknown_interface_packets(),
        });
    }
}

#[cfg(test)]
mod tests;
