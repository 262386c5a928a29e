//! `psexec-sensor live`: live capture (its own issue; not built yet).

use crate::cli::PassThroughArgs;
use std::process::ExitCode;

pub fn run(_args: PassThroughArgs) -> ExitCode {
    eprintln!("psexec-sensor: live: not yet implemented");
    ExitCode::from(super::EXIT_BAD_INPUT)
}
