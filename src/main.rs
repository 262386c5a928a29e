use clap::Parser;

fn main() -> std::process::ExitCode {
    psexec_sensor::cmd::run(psexec_sensor::cli::Cli::parse())
}
