//! The sensor's own JSON lines read back (README "Alerts" and "Events").
//!
//! Most write-side types (`event::alert`, `event`) hold `&'static str` and typed addresses and only
//! serialize, so the report reads the subset it shows into these structs (uploads and severity
//! are read into the write-side types themselves) and writes them into the
//! page under the same field names. Every field is optional on the way in: a file written by an
//! older or newer sensor still loads, and absent fields stay absent in the page.

use crate::event::alert::{Severity, Upload};
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead};

/// Longest alert or event line read; a longer one is a corrupt or hostile file, not an alert.
pub const MAX_REPORT_LINE_BYTES: usize = 4 << 20;

/// The alert kinds of README "Alerts"; an unknown kind is an error naming the line.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Technique,
    Signal,
    Visibility,
    HostSummary,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct CallRecord {
    pub ts: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(default)]
    pub status: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct EvidenceRecord {
    pub ts: f64,
    pub log: LogName,
    pub uid: String,
    #[serde(default)]
    pub summary: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One alert line of any kind: the union of the kinds' fields.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct AlertRecord {
    pub kind: AlertKind,
    pub ts: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_end: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub decrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workstation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<Upload>,
    /// `signal` alerts carry one upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Upload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_type: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRecord>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub started: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<EvidenceRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
    /// `visibility` alerts: the session's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher: Option<String>,
}

/// The `log` names of README "Events"; others are counted under `other`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LogName {
    SmbMapping,
    SmbFiles,
    SmbAuth,
    SmbVisibility,
    SmbOpaque,
    DceRpc,
    Anomaly,
    Flow,
    #[serde(other)]
    Other,
}

impl LogName {
    pub fn as_str(self) -> &'static str {
        match self {
            LogName::SmbMapping => "smb_mapping",
            LogName::SmbFiles => "smb_files",
            LogName::SmbAuth => "smb_auth",
            LogName::SmbVisibility => "smb_visibility",
            LogName::SmbOpaque => "smb_opaque",
            LogName::DceRpc => "dce_rpc",
            LogName::Anomaly => "anomaly",
            LogName::Flow => "flow",
            LogName::Other => "other",
        }
    }
}

/// One event line: the fields an analyst needs to see behind an alert, and an anomaly's.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EventRecord {
    pub log: LogName,
    #[serde(default)]
    pub ts: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(rename = "id.orig_h", default, skip_serializing_if = "Option::is_none")]
    pub orig_h: Option<String>,
    #[serde(rename = "id.resp_h", default, skip_serializing_if = "Option::is_none")]
    pub resp_h: Option<String>,
    #[serde(rename = "id.resp_p", default, skip_serializing_if = "Option::is_none")]
    pub resp_p: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
    /// FILE_WRITE: when the first write came (the record itself is written at close; evidence
    /// of an upload carries this time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_write_ts: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pe: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// smb_opaque: the message's direction and sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_server: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named_pipe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opnum: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// `anomaly`: kind, layer, cap, detail; `smb_visibility`: kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// JSON lines out of a reader, each at most [`MAX_REPORT_LINE_BYTES`]; blank lines skipped.
pub struct Lines<R> {
    reader: R,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    pub line: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            buf: Vec::new(),
            line: 0,
        }
    }

    /// The next non-blank line, or `None` at the end; an over-long line is an error.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            self.buf.clear();
            let limit = MAX_REPORT_LINE_BYTES as u64 + 1;
            let n = io::Read::take(&mut self.reader, limit).read_until(b'\n', &mut self.buf)?;
            if n == 0 {
                return Ok(None);
            }
            self.line += 1;
            if self.buf.len() > MAX_REPORT_LINE_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line longer than {MAX_REPORT_LINE_BYTES} bytes (MAX_REPORT_LINE_BYTES)"
                    ),
                ));
            }
            if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                return Ok(Some(&self.buf));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_refuses_an_over_long_one() {
        let text = b"{\"a\":1}\n\n  \n{\"b\":2}";
        let mut l = Lines::new(&text[..]);
        assert_eq!(l.next_line().unwrap(), Some(&b"{\"a\":1}\n"[..]));
        assert_eq!(l.next_line().unwrap(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(l.line, 4);
        assert_eq!(l.next_line().unwrap(), None);

        let long = vec![b'x'; MAX_REPORT_LINE_BYTES + 10];
        let mut l = Lines::new(&long[..]);
        let e = l.next_line().unwrap_err();
        assert!(e.to_string().contains("MAX_REPORT_LINE_BYTES"), "{e}");
    }

    #[test]
    fn unknown_alert_kind_is_an_error_unknown_log_is_other() {
        assert!(serde_json::from_str::<AlertRecord>(r#"{"kind":"nope","ts":1}"#).is_err());
        let e: EventRecord = serde_json::from_str(r#"{"log":"conn","ts":1.5}"#).unwrap();
        assert_eq!(e.log, LogName::Other);
        let a: AlertRecord =
            serde_json::from_str(r#"{"kind":"host_summary","ts":1,"final":true,"attacks":2}"#)
                .unwrap();
        assert_eq!(a.kind, AlertKind::HostSummary);
    }
}
