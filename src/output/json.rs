//! JSON lines writers: one object per line, to a file or to stdout ("-").
//!
//! For long runs (`live`), a file writer can be reopened (SIGHUP, after logrotate moved the file:
//! later lines go to a new file at the same path) and rotated by size or age (the file is moved to
//! `PATH.<unix seconds>` and a new one started). Both happen between lines, so no line is split or
//! lost, and both keep writing to the old file if the new one cannot be opened (the error is
//! returned; the next reopen or rotation tries again).

use super::socket::{self, LineSink};
use crate::config::Rotation;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Several writers may share stdout (`--events -` with alerts on stdout): each line is then written
/// whole, under stdout's lock, so lines never interleave mid-way.
enum Target {
    Buffered(BufWriter<Box<dyn Write + Send>>),
    Stdout(Vec<u8>),
    /// syslog or a Unix socket (`output::socket`): one message per record.
    Socket(Box<dyn LineSink>, Vec<u8>),
}

pub struct JsonLines {
    out: Target,
    path: String,
    lines: u64,
    /// Set for writers to a named file: what reopen and rotation work on.
    file: Option<FileState>,
}

struct FileState {
    path: PathBuf,
    rotation: Rotation,
    /// Bytes in the current file (as far as this writer knows: appended files start at their size).
    bytes: u64,
    opened: Instant,
}

fn open_append(path: &Path) -> io::Result<(BufWriter<Box<dyn Write + Send>>, u64)> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata().map_or(0, |m| m.len());
    let w: Box<dyn Write + Send> = Box::new(f);
    Ok((BufWriter::with_capacity(1 << 16, w), size))
}

impl JsonLines {
    /// `-` is stdout; anything else a file, created or truncated.
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        JsonLines::create_for(path, "-")
    }

    /// A socket target (`syslog:`, `unix:PATH`, `unixgram:PATH`, see `output::socket`; `kind` is
    /// the syslog MSGID), if `path` names one.
    fn socket_for(path: &Path, kind: &str) -> Option<io::Result<JsonLines>> {
        let sink = path.to_str().and_then(|p| socket::open(p, kind))?;
        Some(sink.map(|sink| JsonLines {
            out: Target::Socket(sink, Vec::with_capacity(1024)),
            path: path.display().to_string(),
            lines: 0,
            file: None,
        }))
    }

    /// Like [`JsonLines::create`], and `syslog:`, `unix:PATH`, `unixgram:PATH` open a socket
    /// (`output::socket`); `kind` is the syslog MSGID ("alert", "event", "eve" …).
    pub fn create_for(path: &Path, kind: &str) -> io::Result<JsonLines> {
        if path.as_os_str() == "-" {
            return Ok(JsonLines::stdout());
        }
        if let Some(j) = JsonLines::socket_for(path, kind) {
            return j;
        }
        let w: Box<dyn Write + Send> = Box::new(File::create(path)?);
        Ok(JsonLines {
            out: Target::Buffered(BufWriter::with_capacity(1 << 16, w)),
            path: path.display().to_string(),
            lines: 0,
            file: None,
        })
    }

    /// `-` is stdout; anything else a file, created or appended to (a restarted service keeps
    /// what it wrote before), which [`Self::reopen`] and `rotation` apply to.
    /// Sockets as in [`Self::create_for`] (neither reopened nor rotated).
    pub fn append(path: &Path, kind: &str, rotation: Rotation) -> io::Result<JsonLines> {
        if path.as_os_str() == "-" {
            return Ok(JsonLines::stdout());
        }
        if let Some(j) = JsonLines::socket_for(path, kind) {
            return j;
        }
        let (w, bytes) = open_append(path)?;
        Ok(JsonLines {
            out: Target::Buffered(w),
            path: path.display().to_string(),
            lines: 0,
            file: Some(FileState {
                path: path.to_owned(),
                rotation,
                bytes,
                opened: Instant::now(),
            }),
        })
    }

    /// Flushes and closes the file, then opens the same path again (appending): after the file
    /// was renamed, later lines go to a new file. Stdout and in-memory writers only flush.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.flush()?;
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let (w, bytes) = open_append(&f.path)?;
        self.out = Target::Buffered(w);
        f.bytes = bytes;
        f.opened = Instant::now();
        Ok(())
    }

    /// Moves the file aside to `PATH.<unix seconds>` (`.N` added if that exists) and starts a new
    /// one. Returns where the old lines went.
    pub fn rotate(&mut self) -> io::Result<Option<PathBuf>> {
        self.flush()?;
        let Some(f) = self.file.as_ref() else {
            return Ok(None);
        };
        let aside = move_aside(&f.path)?;
        self.reopen()?;
        Ok(Some(aside))
    }

    /// Whether the rotation policy says the file is due (size reached or age passed).
    pub fn rotation_due(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| f.rotation.due(f.bytes, f.opened))
    }

    pub fn stdout() -> JsonLines {
        JsonLines {
            out: Target::Stdout(Vec::with_capacity(1024)),
            path: "-".into(),
            lines: 0,
            file: None,
        }
    }

    /// Any writer (tests).
    pub fn to_writer(w: Box<dyn Write + Send>) -> JsonLines {
        JsonLines {
            out: Target::Buffered(BufWriter::new(w)),
            path: "<memory>".into(),
            lines: 0,
            file: None,
        }
    }

    pub fn write<T: Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        match &mut self.out {
            Target::Buffered(w) => match &mut self.file {
                None => {
                    serde_json::to_writer(&mut *w, v).map_err(io::Error::other)?;
                    w.write_all(b"\n")?;
                }
                Some(f) => {
                    let mut counted = Counted(&mut *w, 0);
                    serde_json::to_writer(&mut counted, v).map_err(io::Error::other)?;
                    counted.write_all(b"\n")?;
                    f.bytes += counted.1;
                }
            },
            Target::Stdout(line) => {
                line.clear();
                serde_json::to_writer(&mut *line, v).map_err(io::Error::other)?;
                line.push(b'\n');
                io::stdout().lock().write_all(line)?;
            }
            Target::Socket(sink, buf) => {
                buf.clear();
                serde_json::to_writer(&mut *buf, v).map_err(io::Error::other)?;
                sink.send(buf)?;
            }
        }
        self.lines += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Target::Buffered(w) => w.flush(),
            Target::Stdout(_) => io::stdout().lock().flush(),
            Target::Socket(sink, _) => sink.flush(),
        }
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// Renames `path` to `PATH.<unix seconds>` (`.N` added if that exists): where rotation puts a
/// finished file (JSON lines here, each log of `--log-dir` in `output::logdir`).
pub(crate) fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.{secs}", path.display());
    let mut aside = PathBuf::from(&base);
    // Bounded: a few rotations in one second at most.
    for n in 1..1000 {
        if !aside.exists() {
            break;
        }
        aside = PathBuf::from(format!("{base}.{n}"));
    }
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// A writer that counts what passes through (for size rotation).
pub(crate) struct Counted<'a, W: Write>(pub &'a mut W, pub u64);

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = self.0.write(b)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Anomaly, AnomalyKind, Event};
    use crate::time::Ts;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_object_per_line_with_log_field() {
        let buf = Shared::default();
        let mut j = JsonLines::to_writer(Box::new(buf.clone()));
        let ev = Event::Anomaly(Anomaly {
            ts: Ts::from_secs(2),
            conn: None,
            kind: AnomalyKind::Gap,
            layer: "tcp",
            cap: None,
            detail: "x".into(),
        });
        j.write(&ev).unwrap();
        j.write(&ev).unwrap();
        j.flush().unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["log"], "anomaly");
        assert_eq!(v["kind"], "gap");
        assert_eq!(v["ts"], 2.0);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("psx-json-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn lines_of(p: &Path) -> usize {
        std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
    }

    #[test]
    fn reopen_after_rename_writes_a_new_file_and_loses_nothing() {
        let d = temp_dir("reopen");
        let p = d.join("alerts.json");
        std::fs::write(&p, "{\"earlier\":1}\n").unwrap();
        let mut j = JsonLines::append(&p, "alert", Rotation::default()).unwrap();
        j.write(&serde_json::json!({"n": 1})).unwrap();
        std::fs::rename(&p, d.join("alerts.json.1")).unwrap();
        // Buffered but not yet flushed: still belongs to the old file.
        j.write(&serde_json::json!({"n": 2})).unwrap();
        j.reopen().unwrap();
        j.write(&serde_json::json!({"n": 3})).unwrap();
        j.flush().unwrap();
        assert_eq!(
            lines_of(&d.join("alerts.json.1")),
            3,
            "appended, not truncated"
        );
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"n\":3}\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rotation_by_size_moves_the_file_aside() {
        let d = temp_dir("rotate");
        let p = d.join("events.json");
        let rot = Rotation {
            max_bytes: Some(100),
            every: None,
        };
        let mut j = JsonLines::append(&p, "event", rot).unwrap();
        let mut aside = Vec::new();
        for n in 0..30 {
            j.write(&serde_json::json!({"line": n, "pad": "xxxxxxxx"}))
                .unwrap();
            if j.rotation_due() {
                aside.push(j.rotate().unwrap().unwrap());
            }
        }
        j.flush().unwrap();
        assert!(aside.len() >= 5, "{aside:?}");
        let total: usize = aside.iter().map(|a| lines_of(a)).sum::<usize>() + lines_of(&p);
        assert_eq!(total, 30, "every line in exactly one file");
        assert!(aside
            .iter()
            .all(|a| std::fs::metadata(a).unwrap().len() <= 100 + 40));
        let age = Rotation {
            max_bytes: None,
            every: Some(std::time::Duration::ZERO),
        };
        assert!(JsonLines::append(&d.join("x.json"), "event", age)
            .unwrap()
            .rotation_due());
        assert!(!JsonLines::stdout().rotation_due());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
