//! JSON lines writers: one object per line, to a file or to stdout ("-").

use super::socket::{self, LineSink};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

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
}

impl JsonLines {
    /// `-` is stdout; anything else a file, created or truncated.
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        JsonLines::create_for(path, "-")
    }

    /// Like [`JsonLines::create`], and `syslog:`, `unix:PATH`, `unixgram:PATH` open a socket
    /// (`output::socket`); `kind` is the syslog MSGID ("alert", "event", "eve" …).
    pub fn create_for(path: &Path, kind: &str) -> io::Result<JsonLines> {
        if path.as_os_str() == "-" {
            return Ok(JsonLines::stdout());
        }
        if let Some(sink) = path.to_str().and_then(|p| socket::open(p, kind)) {
            return Ok(JsonLines {
                out: Target::Socket(sink?, Vec::with_capacity(1024)),
                path: path.display().to_string(),
                lines: 0,
            });
        }
        let w: Box<dyn Write + Send> = Box::new(File::create(path)?);
        Ok(JsonLines {
            out: Target::Buffered(BufWriter::with_capacity(1 << 16, w)),
            path: path.display().to_string(),
            lines: 0,
        })
    }

    pub fn stdout() -> JsonLines {
        JsonLines {
            out: Target::Stdout(Vec::with_capacity(1024)),
            path: "-".into(),
            lines: 0,
        }
    }

    /// Any writer (tests).
    pub fn to_writer(w: Box<dyn Write + Send>) -> JsonLines {
        JsonLines {
            out: Target::Buffered(BufWriter::new(w)),
            path: "<memory>".into(),
            lines: 0,
        }
    }

    pub fn write<T: Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        match &mut self.out {
            Target::Buffered(w) => {
                serde_json::to_writer(&mut *w, v).map_err(io::Error::other)?;
                w.write_all(b"\n")?;
            }
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
}
