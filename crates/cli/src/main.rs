//! `kiln`: describe, shrink, keep and serve deep-learning models — the command line.
//!
//! This file only wires the parts: [`cli`] declares the arguments, [`logging`] sends logs to
//! stderr, [`commands`] runs one module per command, and [`report`] prints errors (a readable chain
//! on stderr; in `--json` mode also a JSON object on stdout) with a non-zero exit code.

mod cli;
mod commands;
mod logging;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(&cli.global);
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report::error(&error, &cli.global),
    }
}
