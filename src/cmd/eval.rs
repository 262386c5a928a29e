//! `psexec-sensor eval`: scoring against truth files (its own issue; not built yet).

use crate::cli::PassThroughArgs;
use std::process::ExitCode;

pub fn run(_args: PassThroughArgs) -> ExitCode {
    eprintln!("psexec-sensor: eval: not yet implemented");
    ExitCode::from(super::EXIT_BAD_INPUT)
}
