//! `kiln runtime install` and `kiln runtime status`.

use std::path::Path;

use anyhow::Context;
use kiln_engine_ort::runtime::{self, RuntimeOptions};
use kiln_engine_ort::{Candidate, RuntimeStatus};
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, RuntimeArgs, RuntimeCommand};

/// Runs `kiln runtime <command>`.
pub fn run(args: &RuntimeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let options = RuntimeOptions {
        library_path: global.ort_lib.clone(),
        ..RuntimeOptions::default()
    };
    match args.command {
        RuntimeCommand::Install => install(&options, global),
        RuntimeCommand::Status => status(&options, global),
    }
}

fn install(options: &RuntimeOptions, global: &GlobalArgs) -> anyhow::Result<()> {
    if !global.json {
        eprintln!("fetching ONNX Runtime from PyPI (nothing is downloaded when it is cached)…");
    }
    let installed = runtime::install(options).context("`kiln runtime install` failed")?;
    // Which library discovery now picks: an explicit path or ORT_DYLIB_PATH may still win.
    let in_use = runtime::discover(options).context("the installed library cannot be used")?;
    if global.json {
        let files: Vec<String> = installed.files.iter().map(|p| path_str(p)).collect();
        let document = json!({
            "library": path_str(&installed.library),
            "files": files,
            "wheel": installed.wheel,
            "sha256_verified": true,
            "in_use": status_json(&in_use),
        });
        println!("{document}");
    } else {
        println!(
            "installed ONNX Runtime from {} (sha256 verified):",
            installed.wheel
        );
        for file in &installed.files {
            println!("  {}", file.display());
        }
        println!(
            "in use: ONNX Runtime {} from {} ({})",
            in_use.version,
            in_use.library.display(),
            in_use.source
        );
        let installed_path = installed
            .library
            .canonicalize()
            .unwrap_or(installed.library);
        if in_use.library != installed_path {
            println!("  because {}", in_use.why);
        }
    }
    Ok(())
}

fn status(options: &RuntimeOptions, global: &GlobalArgs) -> anyhow::Result<()> {
    let status = runtime::discover(options)?;
    if global.json {
        println!("{}", status_json(&status));
    } else {
        println!("ONNX Runtime {}", status.version);
        println!("library: {}", status.library.display());
        println!("source:  {}", status.source);
        println!("why:     {}", status.why);
        println!("candidates:");
        for (i, candidate) in status.candidates.iter().enumerate() {
            println!("  {}. {candidate}", i + 1);
        }
    }
    Ok(())
}

/// `status` as JSON: the wire form of [`RuntimeStatus`], made here at the edge.
pub fn status_json(status: &RuntimeStatus) -> Value {
    json!({
        "library": path_str(&status.library),
        "source": status.source.as_str(),
        "version": status.version,
        "why": status.why,
        "candidates": candidates_json(&status.candidates),
    })
}

/// Candidates as JSON: place, path (or null), outcome name, and the outcome in words.
pub fn candidates_json(candidates: &[Candidate]) -> Value {
    Value::Array(
        candidates
            .iter()
            .map(|candidate| {
                json!({
                    "place": candidate.place.as_str(),
                    "path": candidate.path.as_deref().map(path_str),
                    "outcome": candidate.outcome.as_str(),
                    "detail": candidate.outcome.to_string(),
                })
            })
            .collect(),
    )
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}
