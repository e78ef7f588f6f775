//! Shared helpers: the process's runtime (the installed library, fetched if needed), real models,
//! deterministic inputs.

use std::path::PathBuf;

use kiln_engine_ort::runtime::{self, Runtime};
use kiln_engine_ort::{RuntimeOptions, install};
use ndarray::{Array4, ArrayD};

/// kiln's installed runtime library (fetched and verified on first use).
pub fn library() -> PathBuf {
    install(&RuntimeOptions::default())
        .expect("installing the ONNX Runtime library")
        .library
}

/// The process's runtime, started from kiln's installed library.
pub fn runtime() -> &'static Runtime {
    runtime::init(&RuntimeOptions::with_library(library())).expect("starting ONNX Runtime")
}

/// A real model from the pinned catalogue.
pub fn model(asset: &kiln_assets::Asset) -> PathBuf {
    runtime();
    kiln_assets::fetch(asset).expect("fetching a model")
}

/// A deterministic image batch in [0, 1].
pub fn images(batch: usize, height: usize, width: usize) -> ArrayD<f32> {
    Array4::from_shape_fn((batch, 3, height, width), |(b, c, y, x)| {
        ((b * 31 + c * 17 + y * 7 + x * 3) % 256) as f32 / 255.0
    })
    .into_dyn()
}

/// Runs the test `name` of this binary alone in a child process with `env` set (for measurements
/// that need a fresh process: thread counts, heap totals), and fails if it did not pass.
pub fn run_child_test(name: &str, env: &str) {
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child test did not run:\n{stdout}"
    );
}
