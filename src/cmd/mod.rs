//! One file per command.

pub mod eval;
mod follow;
pub mod live;
pub mod read;
pub mod report;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

/// Exit status for bad input (unreadable or malformed files, bad option values).
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when output could not be written.
pub const EXIT_OUTPUT_ERROR: u8 = 1;

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Read(a) => read::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Live(a) => live::run(a),
        Command::Report(a) => report::run(a),
    }
}
