//! JSON lines writers: one object per line, to a file or to stdout ("-").

use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

pub struct JsonLines {
    out: BufWriter<Box<dyn Write + Send>>,
    path: String,
    lines: u64,
}

impl JsonLines {
    /// `-` is stdout; anything else a file, created or truncated.
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        let w: Box<dyn Write + Send> = if path.as_os_str() == "-" {
            Box::new(io::stdout())
        } else {
            Box::new(File::create(path)?)
        };
        Ok(JsonLines { out: BufWriter::with_capacity(1 << 16, w), path: path.display().to_string(), lines: 0 })
    }

    pub fn stdout() -> JsonLines {
        JsonLines { out: BufWriter::with_capacity(1 << 16, Box::new(io::stdout())), path: "-".into(), lines: 0 }
    }

    /// An in-memory writer (tests).
    pub fn to_writer(w: Box<dyn Write + Send>) -> JsonLines {
        JsonLines { out: BufWriter::new(w), path: "<memory>".into(), lines: 0 }
    }

    pub fn write<T: Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, v).map_err(io::Error::other)?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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
