//! One module per command; [`run`] dispatches.
//!
//! A command prints its result on stdout — human text, or one JSON document with `--json` — and
//! returns errors for [`crate::report`] to print.

pub mod inspect;
pub mod runtime;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Runtime(args) => runtime::run(args, &cli.global),
        Command::Inspect(args) => inspect::run(args, &cli.global),
    }
}
