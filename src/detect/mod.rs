//! Detection: the PsExec technique per (source, target) and per source host, from events.
//!
//! # API (what the pipeline calls)
//! ```ignore
//! // RuleError displays as `file:line: problem`. load_dir_over_defaults layers DIR over the embedded
//! // files by name (an exceptions-only DIR keeps the tool signatures); load_dir replaces them.
//! let rules = match dir { Some(d) => Rules::load_dir_over_defaults(d)?, None => Rules::embedded() };
//! let mut det = Detector::new(rules);
//! let mut alerts = Vec::new();
//! for ev in events { det.on_event(&ev, &mut alerts); /* write and clear alerts */ }
//! det.tick(now, &mut alerts);   // live mode, periodically: closes expired instances, periodic host summaries
//! det.finish(&mut alerts);      // end of input: flush open attack instances, host summaries
//! det.finish_with(&mut alerts, &mut |a| write_and_clear(a)); // same, handing alerts over in batches
//! det.tables();                 // entries held now (pairs, live and retired sources, …)
//! det.report_caps(&mut sink);   // now and then / at the end: detection caps reached -> cap_reached
//! det.on_inferred(call);        // size inference (detect::inferred) -> InferredCall -> basis "inferred"
//! ```
//! Events must arrive in packet-time order (the order the protocol layers emit them). Alerts are
//! `crate::event::alert::Alert` (serialize with `kind`: technique / signal / visibility /
//! host_summary). A technique alert is written when its attack instance closes: `window_secs`
//! (default 600) of packet time after its last activity, or at `finish`, so that what happens after
//! the service creation (start, pipes, delete, more repeats) is part of the same alert.
//!
//! # What counts
//! * Attack instance: svcctl create (opnums 12, 24, 44, 45, 60) or change-config (11, 23), or a task
//!   registration (ITaskSchedulerService SchRpcRegisterTask, atsvc NetrJobAdd), from a source on a
//!   target, whether or not the call succeeded. Stub-encrypted calls count on interface+opnum alone
//!   (`basis: stub-encrypted`, lower confidence).
//! * Evidence in the sliding window: admin-share tree connects, files written there (name, size,
//!   PE, SHA-256), whether the binary path names one of them (`names::share_relative`), interpreter
//!   in the binary path, name shape, start/delete of the service (by name or handle chain), pipes,
//!   the authenticated user. Upload-then-create scores higher than create-then-upload.
//! * Folding: while an instance of the same technique is open for the pair, further creates fold
//!   into it (`count`, `calls`).
//! * Signals (never the technique): executable written to an admin share with no service/task
//!   around it (T1570), admin-share connects to many hosts from one source, start/control of an
//!   existing service.
//! * Visibility: one record per SMB3-encrypted session (source, target, user, dialect, cipher).
//! * Exceptions (rules) never drop an alert: they set `suppressed_by`.
//!
//! # State over long runs
//! Everything per host is expired by packet time or capped: pairs after the window (a day when
//! they authenticated or attacked, `MAX_PAIRS`); sources quiet for longer than both windows leave
//! the live table and keep only a packed host-summary record (`retired`, `MAX_RETIRED_SOURCES`;
//! beyond it their final summary is written early), brought back whole if they return; reported
//! SMB3 sessions a day after their last sign (`MAX_VISIBILITY_KEYS`); targets per summary
//! `MAX_SOURCE_TARGETS`. The end-of-run summaries are therefore the same as if nothing retired.

pub mod attribution;
mod calls;
pub mod handles;
pub mod inferred;
mod instance;
pub mod matcher;
pub mod names;
mod report;
pub mod responses;

pub mod rules;

mod pair;
mod source;
pub mod stage;
mod upload;

pub use attribution::{attribute, AttribInput, Attribution};
pub use matcher::{DetectStats, DetectTables, Detector, InferredCall};
pub use rules::{RuleError, Rules, Settings};
pub use source::MAX_RETIRED_SOURCES;
pub use stage::Detection;

use crate::event::alert::Alert;
use crate::event::Event;

/// Offline convenience: every alert for a finite, packet-ordered event sequence (on_event for each,
/// then finish).
pub fn detect_all<'a>(rules: Rules, events: impl IntoIterator<Item = &'a Event>) -> Vec<Alert> {
    let mut d = Detector::new(rules);
    let mut out = Vec::new();
    for e in events {
        d.on_event(e, &mut out);
    }
    d.finish(&mut out);
    out
}
