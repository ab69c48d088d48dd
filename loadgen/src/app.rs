//! The entry point and command dispatch: each subcommand's body is in [`crate::cmd`].

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::cmd::{self, run::Job};
use crate::exit::{self, BadInput};

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // One rustls crypto provider for every TLS client (targets, remote write, kube): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    ExitCode::from(dispatch(cli))
}

/// Runs a parsed command line and returns the exit code: errors are printed here, and their
/// kind picks the code (usage 2, interrupted before the start 130, else runtime 1).
pub fn dispatch(cli: Cli) -> u8 {
    let result = match cli.command {
        None => cmd::run::run(Job::Quick(cli.quick)),
        Some(Command::Run(r)) => cmd::run::run(Job::Scenario(r)),
        Some(Command::Capacity(c)) => cmd::capacity::run(*c),
        Some(Command::Compare(c)) => cmd::compare::run(c),
        Some(Command::Merge(m)) => cmd::merge::run(m),
        Some(Command::Report(r)) => cmd::report::run(r),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            crate::errln!("error: {e:#}");
            if e.downcast_ref::<BadInput>().is_some() {
                exit::USAGE
            } else if e.downcast_ref::<exit::InterruptedBeforeStart>().is_some() {
                exit::INTERRUPTED
            } else {
                exit::RUNTIME
            }
        }
    }
}
