//! Detection: the PsExec technique per (source, target) and per source host, from events.
pub mod inferred;
