//! The outputs `read` and `live` share beyond `--events` and `--alerts`: the stamp every record
//! carries (`--sensor-name`, `--community-id-seed`), Zeek's log layout (`--log-dir`) and the EVE
//! form (`--eve`).

use super::eve::EveWriter;
use super::json::JsonLines;
use super::logdir::{LogDir, OpenMode};
use super::stamp::Stamp;
use crate::config::FormatsSetup;
use crate::event::alert::Alert;
use crate::event::Event;
use crate::flow::table::FlowSummary;
use std::io;

/// A write that failed: the output's name and the error.
pub type WriteError = (String, io::Error);

pub struct Formats {
    pub stamp: Stamp,
    pub log_dir: Option<LogDir>,
    pub eve: Option<EveWriter>,
}

impl Formats {
    /// Opens what `setup` asks for; the error names the output that could not be opened.
    pub fn open(setup: &FormatsSetup) -> Result<Formats, WriteError> {
        let stamp = Stamp::new(setup.sensor_name.as_deref(), setup.community_id_seed);
        let mode = setup.live.map_or(OpenMode::Truncate, OpenMode::Append);
        let log_dir = match &setup.log_dir {
            Some(d) => Some(
                LogDir::create(d, setup.log_format, mode, stamp.clone())
                    .map_err(|e| (d.display().to_string(), e))?,
            ),
            None => None,
        };
        let eve = match &setup.eve {
            Some(p) => {
                let out = match setup.live {
                    Some(rotation) => JsonLines::append(p, "eve", rotation),
                    None => JsonLines::create_for(p, "eve"),
                };
                Some(EveWriter::new(
                    out.map_err(|e| (p.display().to_string(), e))?,
                    stamp.clone(),
                ))
            }
            None => None,
        };
        Ok(Formats {
            stamp,
            log_dir,
            eve,
        })
    }

    /// Flow summaries are needed (conn.log, EVE flow records).
    pub fn wants_flows(&self) -> bool {
        self.log_dir.is_some() || self.eve.is_some()
    }

    pub fn event(&mut self, ev: &Event) -> Result<(), WriteError> {
        self.each(|d| d.event(ev), |w| w.event(ev))
    }

    pub fn alert(&mut self, a: &Alert) -> Result<(), WriteError> {
        self.each(|d| d.alert(a), |w| w.alert(a))
    }

    pub fn flow(&mut self, f: &FlowSummary) -> Result<(), WriteError> {
        self.each(|d| d.flow(f), |w| w.flow(f))
    }

    /// Periodic flush (live).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.each(LogDir::flush, EveWriter::flush)
    }

    /// One step on each open output; the error names the output.
    fn each(
        &mut self,
        log_dir: impl FnOnce(&mut LogDir) -> io::Result<()>,
        eve: impl FnOnce(&mut EveWriter) -> io::Result<()>,
    ) -> Result<(), WriteError> {
        // Both are tried: one failing output must not starve the other.
        let mut first_err = None;
        if let Some(d) = self.log_dir.as_mut() {
            if let Err(e) = log_dir(d) {
                first_err = Some((d.dir().display().to_string(), e));
            }
        }
        if let Some(w) = self.eve.as_mut() {
            if let Err(e) = eve(w) {
                first_err.get_or_insert((w.path().to_string(), e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// End of run: TSV logs get `#close`, everything is flushed.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        self.each(LogDir::finish, EveWriter::flush)
    }
}
