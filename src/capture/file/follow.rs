//! A directory still being written (tcpdump `-G`/`-C`/`-W` rotation, a packet broker's spool):
//! which of its captures are complete, so `read --follow` can read them.
//!
//! A file is complete when either
//! * another capture file in the directory was modified later and this one did not change between
//!   two looks (a rotating writer has moved on to the next file, and closed this one), or
//! * it has not changed (size and modification time) for the settle time (the writer is idle, or
//!   it is the last file of a run that stopped).
//!
//! The settle time should exceed the writer's rotation period when the link can be quiet longer
//! than that (tcpdump keeps a file open until the packet that rotates it arrives). A file that
//! changes again after it was read is not read twice: when it grew, the new part is lost and
//! counted (`capture.follow_regrown_files`); when it shrank, it was rewritten (a `-W` ring
//! reusing names) and is read again as a new file.
//!
//! What is remembered is one entry per file present: entries of files that disappear (rotated
//! away, moved to an archive) are forgotten, so memory follows the directory, not the run.

use super::{looks_like_capture, walk};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Size and modification time: what "did not change" compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    len: u64,
    mtime: SystemTime,
}

#[derive(Debug)]
struct Seen {
    shape: Shape,
    /// When its shape last changed (or it first appeared).
    since: Instant,
    /// The last look saw it as a capture, with the same shape as this one.
    looked: bool,
    /// Whether its first bytes are a capture's (known once it has some).
    is_capture: Option<bool>,
    /// Handed out as complete, with the shape it had then.
    read_as: Option<Shape>,
    /// Its growth after it was read was already counted.
    regrowth_counted: bool,
}

/// Bytes a file needs before its format is judged (a magic number).
const MAGIC_BYTES: u64 = 4;

/// Watches one directory (recursively) for complete capture files.
pub struct Watcher {
    dir: PathBuf,
    settle: Duration,
    seen: HashMap<PathBuf, Seen>,
    regrown: u64,
}

impl Watcher {
    pub fn new(dir: &Path, settle: Duration) -> std::io::Result<Watcher> {
        if !std::fs::metadata(dir)?.is_dir() {
            return Err(std::io::Error::other("not a directory"));
        }
        Ok(Watcher {
            dir: dir.to_owned(),
            settle,
            seen: HashMap::new(),
            regrown: 0,
        })
    }

    /// Files read that grew afterwards (their new part was not read).
    pub fn regrown_files(&self) -> u64 {
        self.regrown
    }

    /// Capture files that became complete since the last look (`all`: every capture file not yet
    /// read, complete or not: the last look before stopping). Unordered: order them by time with
    /// `merge::plan`.
    pub fn poll(&mut self, now: Instant, all: bool) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        walk(&self.dir, &mut paths, 0);
        // Hidden files are copies in progress (rsync, curl and editors write `.name.tmp` and
        // rename it when done): read the name they get.
        paths.retain(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        });
        let mut present: HashMap<PathBuf, Shape> = HashMap::with_capacity(paths.len());
        for p in paths {
            if let Ok(m) = std::fs::metadata(&p) {
                let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                present.insert(
                    p,
                    Shape {
                        len: m.len(),
                        mtime,
                    },
                );
            }
        }
        self.seen.retain(|p, _| present.contains_key(p));
        for (path, shape) in &present {
            let entry = self.seen.entry(path.clone()).or_insert(Seen {
                shape: *shape,
                since: now,
                looked: false,
                is_capture: None,
                read_as: None,
                regrowth_counted: false,
            });
            entry.looked = entry.is_capture.is_some() && entry.shape == *shape;
            if entry.shape != *shape {
                entry.shape = *shape;
                entry.since = now;
            }
            if entry.is_capture.is_none() && shape.len >= MAGIC_BYTES {
                entry.is_capture = Some(looks_like_capture(path));
            }
        }
        // Only captures tell that a writer moved on (not notes or truth files written beside).
        let newest = self
            .seen
            .values()
            .filter(|e| e.is_capture == Some(true))
            .map(|e| e.shape.mtime)
            .max();
        let mut ready = Vec::new();
        for (path, entry) in &mut self.seen {
            if entry.is_capture != Some(true) {
                continue;
            }
            let shape = entry.shape;
            if let Some(read) = entry.read_as {
                if shape.len < read.len {
                    // Rewritten under the same name: a new file.
                    entry.read_as = None;
                    entry.regrowth_counted = false;
                } else {
                    if shape != read && !entry.regrowth_counted {
                        entry.regrowth_counted = true;
                        self.regrown += 1;
                    }
                    continue;
                }
            }
            let moved_on = entry.looked && newest.is_some_and(|n| n > shape.mtime);
            let settled = now.duration_since(entry.since) >= self.settle;
            if all || moved_on || settled {
                entry.read_as = Some(shape);
                ready.push(path.clone());
            }
        }
        // Deterministic ties for the plan.
        ready.sort();
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::tests::{pcap, temp_dir};

    #[test]
    fn files_complete_when_a_newer_one_appears_or_they_settle() {
        let d = temp_dir("follow");
        let header = pcap(1, false, false, &[(1, 0, b"x")]);
        let mut w = Watcher::new(&d, Duration::from_secs(5)).unwrap();
        let t0 = Instant::now();
        let a = d.join("a.pcap");
        std::fs::write(&a, &header).unwrap();
        std::fs::write(d.join("notes.txt"), b"not a capture").unwrap();
        assert!(
            w.poll(t0, false).is_empty(),
            "a file being written is not complete"
        );
        // A later file appears: the first is complete once it is seen unchanged.
        std::thread::sleep(Duration::from_millis(20));
        let b = d.join("b.pcap");
        std::fs::write(&b, &header).unwrap();
        let filetime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert!(
            filetime(&b) > filetime(&a),
            "file times too coarse for this test"
        );
        assert_eq!(w.poll(t0, false), vec![a.clone()]);
        assert!(w.poll(t0, false).is_empty(), "read once");
        // The newest settles after the settle time; the text file is never a capture.
        assert_eq!(w.poll(t0 + Duration::from_secs(6), false), vec![b.clone()]);
        assert!(w.poll(t0 + Duration::from_secs(7), false).is_empty());
        // Growth after reading is counted, not read again; a rewrite is a new file.
        let mut grown = header.clone();
        grown.extend_from_slice(&header[24..]);
        std::fs::write(&b, &grown).unwrap();
        assert!(w.poll(t0 + Duration::from_secs(8), true).is_empty());
        assert_eq!(w.regrown_files(), 1);
        std::fs::write(&a, &header[..24]).unwrap();
        assert_eq!(w.poll(t0 + Duration::from_secs(9), true), vec![a.clone()]);
        // A vanished file is forgotten.
        std::fs::remove_file(&a).unwrap();
        w.poll(t0 + Duration::from_secs(10), true);
        assert!(!w.seen.contains_key(&a));
    }

    #[test]
    fn the_last_look_takes_everything_not_read() {
        let d = temp_dir("follow-all");
        let header = pcap(1, false, false, &[(1, 0, b"x")]);
        std::fs::write(d.join("a.pcap"), &header).unwrap();
        std::fs::write(d.join("empty.pcap"), b"").unwrap();
        std::fs::write(d.join(".partial.pcap"), &header).unwrap();
        let mut w = Watcher::new(&d, Duration::from_secs(3600)).unwrap();
        let now = Instant::now();
        assert!(w.poll(now, false).is_empty());
        assert_eq!(w.poll(now, true), vec![d.join("a.pcap")]);
        assert!(Watcher::new(&d.join("a.pcap"), Duration::ZERO).is_err());
    }
}
