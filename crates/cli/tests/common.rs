//! Shared helpers: run the built `kiln` binary in a clean environment and read what it printed.

use std::process::{Command, Output};

use serde_json::Value;

/// `kiln ARGS` with a clean discovery environment (no ORT_DYLIB_PATH, no KILN_LOG).
pub fn kiln(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
    command
        .args(args)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("KILN_LOG");
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("running kiln")
}

pub fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not one JSON document ({error}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
