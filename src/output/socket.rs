//! Outputs that are not files: syslog (RFC 5424 over the local datagram socket, `/dev/log`) and
//! Unix sockets (stream or datagram), as Suricata's EVE offers. Every JSON output option takes
//! them: `--alerts syslog:`, `--eve unix:/run/x.sock`, `--events unixgram:/run/y.sock`.
//!
//! One record is one message: a datagram, or a line on a stream.

use std::io::{self, Write};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;

/// The local syslog socket.
pub const SYSLOG_SOCKET: &str = "/dev/log";
/// syslog facility local5 (Suricata's default for EVE to syslog), severity informational.
const SYSLOG_PRI: u8 = 21 * 8 + 6;

/// Where one serialized record goes.
pub trait LineSink: Send {
    fn send(&mut self, record: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `syslog:` (the local socket) or `syslog:SOCKET`, `unix:PATH` (stream), `unixgram:PATH`;
/// `None` for a plain file path.
pub fn open(spec: &str, msgid: &str) -> Option<io::Result<Box<dyn LineSink>>> {
    if let Some(rest) = spec.strip_prefix("syslog:") {
        let socket = if rest.is_empty() { SYSLOG_SOCKET } else { rest };
        return Some(Syslog::connect(Path::new(socket), msgid).map(|s| Box::new(s) as _));
    }
    if let Some(path) = spec.strip_prefix("unixgram:") {
        return Some(
            UnixDatagram::unbound()
                .and_then(|s| s.connect(path).map(|_| s))
                .map(|s| Box::new(Datagrams(s)) as _),
        );
    }
    if let Some(path) = spec.strip_prefix("unix:") {
        return Some(
            UnixStream::connect(path)
                .map(|s| Box::new(Lines(io::BufWriter::with_capacity(1 << 16, s))) as _),
        );
    }
    None
}

/// RFC 5424 messages: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG`, the record as MSG.
pub struct Syslog {
    sock: UnixDatagram,
    /// Everything before the timestamp and after it up to the message, fixed for the run.
    pri: String,
    rest: String,
    buf: Vec<u8>,
}

impl Syslog {
    pub fn connect(socket: &Path, msgid: &str) -> io::Result<Syslog> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(socket)?;
        let host = super::stamp::host_name().unwrap_or_else(|| "-".into());
        Ok(Syslog {
            sock,
            pri: format!("<{SYSLOG_PRI}>1 "),
            rest: format!(" {host} psexec-sensor {} {msgid} - ", std::process::id()),
            buf: Vec::new(),
        })
    }
}

impl LineSink for Syslog {
    fn send(&mut self, record: &[u8]) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(self.pri.as_bytes());
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ");
        write!(self.buf, "{now}")?;
        self.buf.extend_from_slice(self.rest.as_bytes());
        self.buf.extend_from_slice(record);
        self.sock.send(&self.buf).map(|_| ())
    }
}

struct Datagrams(UnixDatagram);

impl LineSink for Datagrams {
    fn send(&mut self, record: &[u8]) -> io::Result<()> {
        self.0.send(record).map(|_| ())
    }
}

struct Lines(io::BufWriter<UnixStream>);

impl LineSink for Lines {
    fn send(&mut self, record: &[u8]) -> io::Result<()> {
        self.0.write_all(record)?;
        self.0.write_all(b"\n")
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_messages_are_rfc5424_with_the_record_as_message() {
        let dir = std::env::temp_dir().join(format!("psx-syslog-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let mut s = open(&format!("syslog:{}", path.display()), "alert")
            .unwrap()
            .unwrap();
        s.send(br#"{"kind":"technique"}"#).unwrap();
        let mut buf = [0u8; 4096];
        let n = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let parts: Vec<&str> = msg.splitn(8, ' ').collect();
        assert_eq!(parts[0], "<174>1", "local5.info, version 1");
        assert!(parts[1].ends_with('Z') && parts[1].contains('T'), "{msg}");
        assert_eq!(parts[3], "psexec-sensor");
        assert_eq!(parts[4], std::process::id().to_string());
        assert_eq!((parts[5], parts[6]), ("alert", "-"));
        assert_eq!(parts[7], r#"{"kind":"technique"}"#);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unix_stream_gets_one_line_per_record() {
        let dir = std::env::temp_dir().join(format!("psx-unix-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("eve.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut s = open(&format!("unix:{}", path.display()), "eve")
            .unwrap()
            .unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        s.send(b"{\"a\":1}").unwrap();
        s.send(b"{\"b\":2}").unwrap();
        s.flush().unwrap();
        drop(s);
        let mut text = String::new();
        io::Read::read_to_string(&mut conn, &mut text).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
        assert!(open("plain.json", "x").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
