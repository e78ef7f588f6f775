//! The command line, declared with clap's derive API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kiln: describe, shrink, keep and serve deep-learning models.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes (before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Machine output: one JSON document on stdout, no progress or log noise (errors still go to
    /// stderr, and a JSON `{"error": ...}` object to stdout).
    #[arg(long, global = true)]
    pub json: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace); `KILN_LOG` (an env-filter) wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Use exactly this ONNX Runtime library (before ORT_DYLIB_PATH and kiln's runtime directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the ONNX Runtime library kiln runs models on.
    Runtime(RuntimeArgs),
    /// Describe an ONNX model: inputs and outputs, opsets, IR version, producer, nodes by operator,
    /// parameters (initializers and `Constant` weights), size and metadata.
    Inspect(InspectArgs),
}

/// `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The `.onnx` file (external data is looked up next to it, but never read).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
}

/// `kiln runtime`.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// What to do with the runtime.
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

/// `kiln runtime <command>`.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Fetch ONNX Runtime from the pinned `onnxruntime` PyPI wheel (sha256-verified) into kiln's
    /// runtime directory.
    Install,
    /// Show which ONNX Runtime library kiln uses and why, and every place it looked.
    Status,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["kiln", "runtime", "status", "--json", "-vv"]).expect("parse");
        assert!(cli.global.json);
        assert_eq!(cli.global.verbose, 2);
        let cli = Cli::try_parse_from(["kiln", "--ort-lib", "/x.so", "runtime", "install"])
            .expect("parse");
        assert_eq!(
            cli.global.ort_lib.as_deref(),
            Some(std::path::Path::new("/x.so"))
        );
        assert!(matches!(
            cli.command,
            Command::Runtime(RuntimeArgs {
                command: RuntimeCommand::Install
            })
        ));
    }
}
