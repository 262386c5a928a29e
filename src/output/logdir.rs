//! `--log-dir DIR`: Zeek's layout, one file per log (`smb_mapping.log`, `smb_files.log`,
//! `dce_rpc.log`, `ntlm.log`, `kerberos.log`, `smb_visibility.log`, `conn.log`, `notice.log`,
//! `weird.log`), each record with `_path`, as JSON lines (Zeek's `LogAscii::use_json`) or Zeek's
//! TSV (`--log-format tsv`). Which record goes where and the columns: `event::zeek`.
//! A log's file is created with its first record, as Zeek does.

use super::stamp::{AlertFlow, Stamp};
use super::tsv;
use crate::event::alert::Alert;
use crate::event::community_id::CommunityId;
use crate::event::zeek::{self, AuthLog, IdColumns, NoticeLog, WeirdLog};
use crate::event::Event;
use crate::flow::table::FlowSummary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

pub struct LogDir {
    dir: PathBuf,
    format: LogFormat,
    stamp: Stamp,
    open_time: String,
    files: BTreeMap<&'static str, BufWriter<File>>,
    /// Reused TSV row buffer.
    row: Vec<u8>,
}

impl LogDir {
    /// Creates `dir` if needed; log files appear as records come.
    pub fn create(dir: &Path, format: LogFormat, stamp: Stamp) -> io::Result<LogDir> {
        std::fs::create_dir_all(dir)?;
        Ok(LogDir {
            dir: dir.to_path_buf(),
            format,
            stamp,
            open_time: tsv::zeek_wall_time(),
            files: BTreeMap::new(),
            row: Vec::new(),
        })
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
            Event::Kerberos(e) => self.write(path, e.as_ref(), cid),
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
        let close = tsv::zeek_wall_time();
        let mut first_err = None;
        for w in self.files.values_mut() {
            let r = match self.format {
                LogFormat::Tsv => tsv::write_close(w, &close).and_then(|_| w.flush()),
                LogFormat::Json => w.flush(),
            };
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        for w in self.files.values_mut() {
            w.flush()?;
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
        let w = match self.files.entry(path) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let f = File::create(self.dir.join(format!("{path}.log")))?;
                let mut w = BufWriter::with_capacity(1 << 16, f);
                if self.format == LogFormat::Tsv {
                    tsv::write_header(&mut w, schema, &self.open_time)?;
                }
                v.insert(w)
            }
        };
        match self.format {
            LogFormat::Json => {
                serde_json::to_writer(&mut *w, &rec).map_err(io::Error::other)?;
                w.write_all(b"\n")
            }
            LogFormat::Tsv => {
                let value = serde_json::to_value(&rec).map_err(io::Error::other)?;
                self.row.clear();
                tsv::write_row(&mut self.row, schema, &value)?;
                w.write_all(&self.row)
            }
        }
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
