//! The real library: discovery reports it, the process starts once, a second library is refused.

use std::path::PathBuf;

use kiln_engine_ort::runtime::{self, DylibProbe, Location, Probe};
use kiln_engine_ort::{EngineError, Outcome, ProbeFailure, RuntimeOptions, RuntimeSource};

use crate::common;

#[test]
fn the_installed_library_reports_1_31_1() {
    let library = common::library();
    let probed = DylibProbe
        .probe(&Location::File(library.clone()))
        .expect("the installed library passes every check");
    assert_eq!(probed.version, "1.31.1");

    let status = runtime::discover(&RuntimeOptions::with_library(&library)).expect("discovered");
    assert_eq!(status.source, RuntimeSource::Explicit);
    assert_eq!(status.version, "1.31.1");
    assert_eq!(
        status.candidates[0].outcome,
        Outcome::Used {
            version: "1.31.1".into()
        }
    );
}

#[test]
fn init_is_once_per_process_and_refuses_another_library() {
    let started = common::runtime();
    assert_eq!(started.version(), "1.31.1");
    assert_eq!(started.status().source, RuntimeSource::Explicit);

    // The same library, or no preference: the same runtime.
    let again =
        runtime::init(&RuntimeOptions::with_library(common::library())).expect("same library");
    assert!(std::ptr::eq(started, again));
    let default = runtime::global().expect("no preference");
    assert!(std::ptr::eq(started, default));

    // Another library: a typed error, not a silent mismatch.
    let err = runtime::init(&RuntimeOptions::with_library(
        "/usr/lib/libonnxruntime.so.1.20.0",
    ))
    .expect_err("a second library");
    assert!(
        matches!(err, EngineError::RuntimeAlreadyInitialized { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("already initialised"), "{err}");
}

#[test]
fn a_garbage_explicit_library_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("libonnxruntime.so");
    std::fs::write(&garbage, "not a library\n").expect("write");
    let err = runtime::discover(&RuntimeOptions::with_library(&garbage)).expect_err("garbage");
    let EngineError::RuntimeNotFound { candidates } = &err else {
        panic!("unexpected {err:?}");
    };
    assert!(matches!(
        &candidates[0].outcome,
        Outcome::Failed(ProbeFailure::NotALibrary { .. })
    ));
    // Every place is named, tried or not.
    assert!(candidates.len() >= 4, "{candidates:?}");
    let message = err.to_string();
    assert!(message.contains("kiln runtime install"), "{message}");

    let missing = PathBuf::from("/nonexistent/libonnxruntime.so");
    let err = runtime::discover(&RuntimeOptions::with_library(&missing)).expect_err("missing");
    assert!(
        err.to_string()
            .contains("/nonexistent/libonnxruntime.so: missing"),
        "{err}"
    );
}
