//! Printing errors: the readable chain on stderr, and in `--json` mode a JSON object on stdout.

use std::process::ExitCode;

use kiln_engine_ort::EngineError;
use serde_json::{Value, json};

use crate::cli::GlobalArgs;
use crate::commands::runtime::candidates_json;

/// Prints `error` and returns the exit code for it.
pub fn error(error: &anyhow::Error, global: &GlobalArgs) -> ExitCode {
    let chain: Vec<String> = error.chain().map(ToString::to_string).collect();
    let mut text = format!("error: {}", chain.first().map_or("", String::as_str));
    for cause in chain.iter().skip(1) {
        text.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{text}");
    if global.json {
        let mut object = json!({
            "error": chain.first(),
            "causes": &chain[1.min(chain.len())..],
        });
        // A runtime that was not found carries every place looked at: give them to machines too.
        if let Some(EngineError::RuntimeNotFound { candidates }) = error
            .chain()
            .find_map(|cause| cause.downcast_ref::<EngineError>())
            && let Value::Object(map) = &mut object
        {
            map.insert("candidates".to_owned(), candidates_json(candidates));
        }
        println!("{object}");
    }
    ExitCode::FAILURE
}
