//! One module per command; [`run`] dispatches.
//!
//! A command prints its result on stdout — human text, or one JSON document with `--json` — and
//! returns errors for [`crate::report`] to print.
//!
//! | module | what |
//! |---|---|
//! | [`runtime`], [`inspect`], [`quantize`], [`bench`], [`models`] | the commands (`models` also runs `kiln gc`) |
//! | [`model`] | a model file opened, with its inputs and outputs (shared) |
//! | [`measure`] | starting ONNX Runtime; measurements and executed operators as JSON (shared) |
//! | [`files`] | output paths checked before work, files written atomically (shared) |
//! | [`errors`] | [`errors::InputError`]: bad arguments and inputs, naming the file or option |

pub mod bench;
pub mod errors;
pub mod files;
pub mod inspect;
pub mod measure;
pub mod model;
pub mod models;
pub mod quantize;
pub mod runtime;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Runtime(args) => runtime::run(args, &cli.global),
        Command::Inspect(args) => inspect::run(args, &cli.global),
        Command::Quantize(args) => quantize::run(args, &cli.global),
        Command::Bench(args) => bench::run(args, &cli.global),
        Command::Models(args) => models::run(args, &cli.global),
        Command::Gc(args) => models::gc(args, &cli.global),
    }
}
