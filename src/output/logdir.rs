//! `--log-dir DIR`: Zeek's layout, one file per log (`smb_mapping.log`, `smb_files.log`,
//! `dce_rpc.log`, `ntlm.log`, `kerberos.log`, `smb_visibility.log`, `conn.log`, `notice.log`,
//! `weird.log`), each record with `_path`, as JSON lines (Zeek's `LogAscii::use_json`) or Zeek's
//! TSV (`--log-format tsv`). Which record goes where and the columns: `event::zeek`.
//! A log's file is created with its first record, as Zeek does.
//!
//! `read` starts each file afresh. `live` appends (a restarted service keeps what it wrote),
//! reopens every file on SIGHUP (after logrotate moved them) and rotates them by size or age like
//! its JSON lines outputs; a TSV log that ends gets `#close` and the next file its own headers.

use super::json::{move_aside, Counted};
use super::stamp::{AlertFlow, Stamp};
use super::tsv;
use crate::config::Rotation;
use crate::event::alert::Alert;
use crate::event::community_id::CommunityId;
use crate::event::zeek::{self, AuthLog, IdColumns, NoticeLog, WeirdLog};
use crate::event::Event;
use crate::flow::table::FlowSummary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, with `_path`.
    Json,
    /// Zeek's ASCII format: tab-separated columns under `#fields` / `#types` headers.
    Tsv,
}

/// A Zeek log record: `_path`, the record's own fields, `community_id` and `sensor`.
#[derive(Serialize)]
struct ZeekRecord<'a, T: Serialize> {
    #[serde(rename = "_path")]
    path: &'static str,
    #[serde(flatten)]
    record: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<CommunityId>,
    sensor: &'a str,
}

/// How the log files are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Created or truncated (`read`).
    Truncate,
    /// Appended to, reopened on SIGHUP, rotated by this policy (`live`).
    Append(Rotation),
}

/// One open log file.
struct LogFile {
    w: BufWriter<File>,
    /// Bytes written to this file by this process (for size rotation).
    bytes: u64,
    opened: Instant,
}

pub struct LogDir {
    dir: PathBuf,
    format: LogFormat,
    mode: OpenMode,
    stamp: Stamp,
    files: BTreeMap<&'static str, LogFile>,
    /// Reused TSV row buffer.
    row: Vec<u8>,
}

impl LogDir {
    /// Creates `dir` if needed; log files appear as records come.
    pub fn create(
        dir: &Path,
        format: LogFormat,
        mode: OpenMode,
        stamp: Stamp,
    ) -> io::Result<LogDir> {
        std::fs::create_dir_all(dir)?;
        Ok(LogDir {
            dir: dir.to_path_buf(),
            format,
            mode,
            stamp,
            files: BTreeMap::new(),
            row: Vec::new(),
        })
    }

    fn file_path(&self, log: &str) -> PathBuf {
        self.dir.join(format!("{log}.log"))
    }

    /// Opens `log`'s file as the mode says; a TSV file starts with its headers (an appended one
    /// too: the file it continues ended with `#close`).
    fn open(&self, log: &'static str) -> io::Result<LogFile> {
        let path = self.file_path(log);
        let f = match self.mode {
            OpenMode::Truncate => File::create(&path)?,
            OpenMode::Append(_) => OpenOptions::new().create(true).append(true).open(&path)?,
        };
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let mut counted = Counted(&mut w, 0);
        if self.format == LogFormat::Tsv {
            let schema = zeek::schema(log)
                .ok_or_else(|| io::Error::other(format!("no schema for log {log}")))?;
            tsv::write_header(&mut counted, schema, &tsv::zeek_wall_time())?;
        }
        let bytes = counted.1;
        Ok(LogFile {
            w,
            bytes,
            opened: Instant::now(),
        })
    }

    /// Ends one file: `#close` under a TSV log, then flush.
    fn close(format: LogFormat, f: &mut LogFile) -> io::Result<()> {
        if format == LogFormat::Tsv {
            tsv::write_close(&mut f.w, &tsv::zeek_wall_time())?;
        }
        f.w.flush()
    }

    /// SIGHUP: every open file is ended and closed; the next record of each log opens its path
    /// again (a new file after logrotate renamed the old one). Nothing buffered is lost: it is
    /// flushed to the old file first.
    pub fn reopen(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for f in self.files.values_mut() {
            if let Err(e) = Self::close(self.format, f) {
                first_err.get_or_insert(e);
            }
        }
        self.files.clear();
        first_err.map_or(Ok(()), Err)
    }

    /// Moves aside every file whose rotation is due (`NAME.log.<unix seconds>`); its log starts a
    /// new file with its next record. Returns where each went.
    pub fn rotate_due(&mut self) -> io::Result<Vec<PathBuf>> {
        let OpenMode::Append(rotation) = self.mode else {
            return Ok(Vec::new());
        };
        let due: Vec<&'static str> = self
            .files
            .iter()
            .filter(|(_, f)| rotation.due(f.bytes, f.opened))
            .map(|(log, _)| *log)
            .collect();
        let mut aside = Vec::new();
        for log in due {
            if let Some(mut f) = self.files.remove(log) {
                Self::close(self.format, &mut f)?;
                aside.push(move_aside(&self.file_path(log))?);
            }
        }
        Ok(aside)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        let Some(path) = zeek::event_path(ev) else {
            return Ok(());
        };
        let cid = ev.conn().map(|c| self.stamp.conn_community_id(c));
        match ev {
            Event::SmbMapping(e) => self.write(path, e, cid),
            Event::SmbFiles(e) => self.write(path, e, cid),
            Event::DceRpc(e) => self.write(path, e.as_ref(), cid),
            Event::SmbVisibility(e) => self.write(path, e, cid),
            Event::SmbAuth(a) => match zeek::auth_log(a) {
                Some(AuthLog::Ntlm(l)) => self.write(path, &l, cid),
                Some(AuthLog::Kerberos(l)) => self.write(path, &l, cid),
                None => Ok(()),
            },
            Event::Anomaly(a) => {
                let c = a.conn.as_ref();
                let sensor = self.stamp.sensor.clone();
                let rec = WeirdLog {
                    ts: a.ts,
                    conn: c.map(|c| IdColumns::from(&c.flow())),
                    name: a.kind,
                    addl: &a.detail,
                    notice: false,
                    peer: &sensor,
                    source: a.layer,
                    cap: a.cap,
                };
                self.write(path, &rec, cid)
            }
            Event::SmbOpaque(_) => Ok(()),
        }
    }

    pub fn flow(&mut self, f: &FlowSummary) -> io::Result<()> {
        let cid = Some(self.stamp.conn_community_id(&f.conn));
        self.write("conn", &zeek::conn_log(f), cid)
    }

    pub fn alert(&mut self, alert: &Alert) -> io::Result<()> {
        let Some(note) = zeek::notice_name(alert) else {
            return Ok(());
        };
        let flow = AlertFlow::of(alert, &self.stamp);
        let base = |ts, msg, src, dst| NoticeLog {
            ts,
            conn: flow.map(|f| IdColumns::from(&f.ctx)),
            proto: flow.map(|f| f.proto),
            note,
            msg,
            sub: None,
            src,
            dst,
            p: flow.map(|f| f.ctx.conn.resp_p),
            actions: ["Notice::ACTION_LOG"],
            alert_id: None,
            severity: None,
            confidence: None,
            attack: &[],
            tool: None,
            suppressed_by: None,
        };
        let rec = match alert {
            Alert::Technique(t) => NoticeLog {
                sub: Some(technique_sub(t)),
                alert_id: Some(&t.id),
                severity: Some(t.severity),
                confidence: Some(t.confidence),
                attack: &t.attack,
                tool: Some(&t.tool),
                suppressed_by: t.suppressed_by.as_deref(),
                ..base(t.ts, &t.reason, t.src_ip, Some(t.dst_ip))
            },
            Alert::Signal(s) => NoticeLog {
                sub: s.service_name.clone().or_else(|| {
                    s.upload
                        .as_ref()
                        .map(|u| format!("{}\\{}", u.share, u.name))
                }),
                alert_id: Some(&s.id),
                severity: Some(s.severity),
                attack: &s.attack,
                suppressed_by: s.suppressed_by.as_deref(),
                ..base(s.ts, &s.reason, s.src_ip, s.dst_ip)
            },
            Alert::Visibility(v) => NoticeLog {
                sub: Some(v.visibility.clone()),
                ..base(v.ts, &v.reason, v.src_ip, Some(v.dst_ip))
            },
            Alert::HostSummary(_) => return Ok(()),
        };
        self.write("notice", &rec, flow.map(|f| f.community_id))
    }

    /// Writes `#close` under every TSV log and flushes every file.
    pub fn finish(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for f in self.files.values_mut() {
            if let Err(e) = Self::close(self.format, f) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for f in self.files.values_mut() {
            f.w.flush()?;
        }
        Ok(())
    }

    fn write<T: Serialize>(
        &mut self,
        path: &'static str,
        record: &T,
        community_id: Option<CommunityId>,
    ) -> io::Result<()> {
        let rec = ZeekRecord {
            path,
            record,
            community_id,
            sensor: &self.stamp.sensor,
        };
        let schema = zeek::schema(path)
            .ok_or_else(|| io::Error::other(format!("no schema for log {path}")))?;
        if !self.files.contains_key(path) {
            let f = self.open(path)?;
            self.files.insert(path, f);
        }
        let Some(f) = self.files.get_mut(path) else {
            return Ok(());
        };
        match self.format {
            LogFormat::Json => {
                let mut w = Counted(&mut f.w, 0);
                serde_json::to_writer(&mut w, &rec).map_err(io::Error::other)?;
                w.write_all(b"\n")?;
                f.bytes += w.1;
            }
            LogFormat::Tsv => {
                let value = serde_json::to_value(&rec).map_err(io::Error::other)?;
                self.row.clear();
                tsv::write_row(&mut self.row, schema, &value)?;
                f.w.write_all(&self.row)?;
                f.bytes += self.row.len() as u64;
            }
        }
        Ok(())
    }
}

fn technique_sub(t: &crate::event::alert::TechniqueAlert) -> String {
    let what = t
        .service_name
        .as_deref()
        .or(t.task_path.as_deref())
        .unwrap_or("?");
    match t.binary_path.as_deref().or(t.command.as_deref()) {
        Some(b) => format!("{what}: {b}"),
        None => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Anomaly, AnomalyKind};
    use crate::time::Ts;

    fn weird(n: u64) -> Event {
        Event::Anomaly(Anomaly {
            ts: Ts::from_secs(n),
            conn: None,
            kind: AnomalyKind::Gap,
            layer: "tcp",
            cap: None,
            detail: format!("record {n}"),
        })
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("psx-logdir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn text(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn reopen_after_rename_ends_the_old_tsv_file_and_starts_a_new_one_with_headers() {
        let d = temp_dir("reopen");
        let stamp = Stamp::new(Some("s"), 0);
        let mode = OpenMode::Append(Rotation::default());
        let mut logs = LogDir::create(&d, LogFormat::Tsv, mode, stamp).unwrap();
        logs.event(&weird(1)).unwrap();
        let (path, moved) = (d.join("weird.log"), d.join("weird.log.1"));
        std::fs::rename(&path, &moved).unwrap();
        logs.event(&weird(2)).unwrap(); // buffered: belongs to the renamed file
        logs.reopen().unwrap();
        logs.event(&weird(3)).unwrap();
        logs.finish().unwrap();
        let (old, new) = (text(&moved), text(&path));
        assert!(
            old.contains("record 1") && old.contains("record 2"),
            "{old}"
        );
        assert!(old.trim_end().lines().last().unwrap().starts_with("#close"));
        assert!(!old.contains("record 3"));
        assert!(
            new.starts_with("#separator") && new.contains("#fields\t"),
            "{new}"
        );
        assert!(
            new.contains("record 3") && !new.contains("record 1"),
            "{new}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn live_appends_and_rotates_by_size_read_truncates() {
        let d = temp_dir("rotate");
        let stamp = Stamp::new(None, 0);
        let rotation = Rotation {
            max_bytes: Some(300),
            every: None,
        };
        let mut logs = LogDir::create(
            &d,
            LogFormat::Json,
            OpenMode::Append(rotation),
            stamp.clone(),
        )
        .unwrap();
        let mut aside = Vec::new();
        for n in 0..20 {
            logs.event(&weird(n)).unwrap();
            aside.extend(logs.rotate_due().unwrap());
        }
        logs.finish().unwrap();
        assert!(aside.len() >= 3, "{aside:?}");
        let lines = |p: &Path| text(p).lines().count();
        let total: usize =
            aside.iter().map(|p| lines(p)).sum::<usize>() + lines(&d.join("weird.log"));
        assert_eq!(total, 20, "every record in exactly one file");
        // A restarted live sensor appends; `read` starts afresh.
        let before = lines(&d.join("weird.log"));
        let mut again = LogDir::create(
            &d,
            LogFormat::Json,
            OpenMode::Append(rotation),
            stamp.clone(),
        )
        .unwrap();
        again.event(&weird(99)).unwrap();
        again.finish().unwrap();
        assert_eq!(lines(&d.join("weird.log")), before + 1);
        let mut read = LogDir::create(&d, LogFormat::Json, OpenMode::Truncate, stamp).unwrap();
        read.event(&weird(100)).unwrap();
        read.finish().unwrap();
        assert_eq!(lines(&d.join("weird.log")), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
