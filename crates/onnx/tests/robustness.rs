//! Files that are not (whole) ONNX models give typed errors and never panic: a PNG, text, an
//! empty file, a directory, truncated copies of YOLOv8n, and arbitrary or mutated bytes.

use std::fs;

use kiln_assets::catalog;
use kiln_onnx::{Model, OnnxError, Origin};
use proptest::prelude::*;
use prost::Message;

use crate::common;

/// Opens `bytes` written to a file; asserts a decode or validation error naming the file.
#[track_caller]
fn assert_not_a_model(what: &str, bytes: &[u8]) -> OnnxError {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input.onnx");
    fs::write(&path, bytes).expect("write");
    let err = Model::open(&path).expect_err(what);
    match &err {
        OnnxError::Decode { origin, .. } | OnnxError::Invalid { origin, .. } => {
            assert_eq!(origin, &Origin::File(path.clone()), "{what}");
        }
        other => panic!("{what}: expected Decode or Invalid, got {other:?}"),
    }
    assert!(err.to_string().contains("input.onnx"), "{what}: {err}");
    err
}

#[test]
fn other_files_are_not_models() {
    let png = fs::read(common::asset(&catalog::PAGE)).expect("page.png");
    assert_not_a_model("a PNG", &png);
    assert_not_a_model("text", b"hello, this is a text file\nnot a model\n");
    assert_not_a_model("JSON", br#"{"ir_version": 8, "graph": {}}"#);
    let empty = assert_not_a_model("empty", b"");
    assert!(empty.to_string().contains("empty"), "{empty}");
    assert_not_a_model("zeros", &[0u8; 4096]);
}

#[test]
fn missing_files_and_directories_are_io_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    for path in [dir.path().join("missing.onnx"), dir.path().to_path_buf()] {
        match Model::open(&path) {
            Err(OnnxError::Io { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{}: expected Io, got {other:?}", path.display()),
        }
    }
}

#[test]
fn truncated_models_are_rejected() {
    let bytes = fs::read(common::asset(&catalog::YOLOV8N)).expect("yolo");
    let len = bytes.len();
    // Every cut inside the graph message. (A cut exactly between two trailing `metadata_props`
    // entries would decode as a valid model with fewer metadata: protobuf has no end marker, so
    // no reader can tell.)
    for cut in [
        1,
        2,
        10,
        100,
        4096,
        len / 4,
        len / 2,
        3 * len / 4,
        len - 2000,
    ] {
        let err = assert_not_a_model(&format!("cut at {cut}"), &bytes[..cut]);
        assert!(
            matches!(err, OnnxError::Decode { .. } | OnnxError::Invalid { .. }),
            "cut at {cut}: {err}"
        );
    }
}

/// Any outcome but a panic is fine; a model that decodes must also summarize and encode.
fn exercise(bytes: Vec<u8>) {
    if let Ok(mut model) = Model::from_bytes(bytes) {
        let summary = model.summary();
        let _ = summary.to_string();
        let _ = model.encode();
        let _ = model.load_external_data();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(bytes);
    }

    #[test]
    fn decoding_mutated_models_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = common::tiny_model().encode_to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        bytes.truncate(keep);
        exercise(bytes);
    }
}
