//! Logs go to stderr through tracing-subscriber, filtered by `KILN_LOG` (an env-filter such as
//! `kiln=debug,ort=info`) or else by `-v` and `--json`.

use tracing_subscriber::EnvFilter;

use crate::cli::GlobalArgs;

/// The environment variable holding the log filter.
pub const KILN_LOG: &str = "KILN_LOG";

/// Installs the global subscriber.
pub fn init(global: &GlobalArgs) {
    let default = default_filter(global);
    let filter = match std::env::var(KILN_LOG) {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|error| {
            eprintln!("warning: ignoring {KILN_LOG}={spec:?}: {error}");
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(global.verbose > 0)
        .try_init();
}

/// The filter without `KILN_LOG`: quiet in `--json` mode, louder with each `-v`. ONNX Runtime's
/// own log (target `ort`) stays one step quieter than kiln's.
fn default_filter(global: &GlobalArgs) -> &'static str {
    if global.json && global.verbose == 0 {
        return "error";
    }
    match global.verbose {
        // ONNX Runtime warns on every optimized-model dump (`executed_ops`): not the user's concern.
        0 => "warn,ort=error",
        1 => "info,ort=warn",
        2 => "debug,ort=info",
        _ => "trace",
    }
}
