//! Shared helpers: the real models (fetched and verified on first use), the process's ONNX
//! Runtime, deterministic inputs and exact output comparison.

use std::path::PathBuf;

use kiln::engine_ort::runtime::{self, Runtime};
use kiln::engine_ort::{OrtSession, Outputs, RuntimeOptions, SessionOptions, TensorInput};
use ndarray::{Array4, ArrayD};

/// The process's runtime, started from kiln's installed library (fetched if needed).
pub fn runtime() -> &'static Runtime {
    let installed =
        kiln::engine_ort::install(&RuntimeOptions::default()).expect("installing ONNX Runtime");
    runtime::init(&RuntimeOptions::with_library(installed.library)).expect("starting ONNX Runtime")
}

/// A real model from the pinned catalogue.
pub fn model(asset: &kiln::assets::Asset) -> PathBuf {
    kiln::assets::fetch(asset).expect("fetching a real model")
}

/// A deterministic, image-like batch in [0, 1] (not constant, so every channel matters).
pub fn images(batch: usize, height: usize, width: usize) -> ArrayD<f32> {
    Array4::from_shape_fn((batch, 3, height, width), |(b, c, y, x)| {
        (((b * 131 + c * 71 + y * 13 + x * 7) ^ (y * x)) % 256) as f32 / 255.0
    })
    .into_dyn()
}

/// Single-threaded, deterministic session options (same kernels, same summation order).
pub fn deterministic() -> SessionOptions {
    SessionOptions {
        intra_threads: Some(1),
        inter_threads: Some(1),
        ..SessionOptions::default()
    }
}

/// Runs a session on one named input.
pub fn run(session: &mut OrtSession, input: &str, x: &ArrayD<f32>) -> Outputs {
    session
        .run(&[(input, TensorInput::from(x.view()))])
        .expect("running the model")
}

/// Asserts that two runs produced bit-identical float outputs, output by output.
pub fn assert_identical(expected: &Outputs, actual: &Outputs) {
    let names: Vec<&str> = expected.names().collect();
    assert_eq!(names, actual.names().collect::<Vec<_>>(), "output names");
    for name in names {
        let a = expected.f32(name).expect("float output");
        let b = actual.f32(name).expect("float output");
        assert_eq!(a.shape(), b.shape(), "{name}: shape");
        let differing = a
            .iter()
            .zip(b.iter())
            .filter(|(x, y)| x.to_bits() != y.to_bits())
            .count();
        assert_eq!(
            differing,
            0,
            "{name}: {differing} of {} values differ",
            a.len()
        );
    }
}

/// Asserts that two runs agree to `tolerance` relative to each output's largest magnitude (for
/// edits that change which kernels ONNX Runtime fuses, and so the float summation order).
pub fn assert_close(expected: &Outputs, actual: &Outputs, tolerance: f32) {
    let names: Vec<&str> = expected.names().collect();
    assert_eq!(names, actual.names().collect::<Vec<_>>(), "output names");
    for name in names {
        let a = expected.f32(name).expect("float output");
        let b = actual.f32(name).expect("float output");
        assert_eq!(a.shape(), b.shape(), "{name}: shape");
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(b.iter())
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= tolerance * scale,
            "{name}: largest difference {worst} exceeds {tolerance} x {scale}"
        );
    }
}
