//! Tests of the predict loop through a mock engine that interprets a one-node `Mul` model, and
//! the fixtures the pipeline tests share (loader, metric, engine, model).

use std::sync::Mutex;

use kiln_onnx::Model;
use kiln_onnx::graph::{NodeBuilder, tensor_from_values, tensor_to_f32, tensor_type_proto};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto};
use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::data::{Annotation, DataError};
use crate::metric::MetricError;
use crate::sampler::{Subset, SubsetSampler};
use crate::stats::StatKind;

/// `len` samples; sample `i` has input `x` of shape `[1, 3]` = `[i, -i, i/2]` (or `[1, 4]` for
/// indices in `wide`) and class `i % 3`.
#[derive(Debug)]
pub(crate) struct VecLoader {
    pub len: usize,
    pub wide: Vec<usize>,
}

impl VecLoader {
    pub fn new(len: usize) -> VecLoader {
        VecLoader {
            len,
            wide: Vec::new(),
        }
    }

    pub fn input(i: usize) -> Vec<f32> {
        let v = i as f32;
        vec![v, -v, v / 2.0]
    }
}

impl DataLoader for VecLoader {
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
        let mut values = VecLoader::input(index);
        if self.wide.contains(&index) {
            values.push(0.0);
        }
        let mut inputs = TensorMap::new();
        inputs.insert(
            "x",
            ArrayD::from_shape_vec(IxDyn(&[1, values.len()]), values).expect("shape"),
        );
        Ok(Sample {
            inputs,
            annotation: Annotation::Class(index % 3),
            metadata: None,
        })
    }
}

/// Top-1 accuracy of output `y` (argmax over the last axis) against the class annotation.
#[derive(Debug, Default)]
pub(crate) struct Argmax {
    hits: usize,
    seen: usize,
    last: Option<f64>,
}

impl Metric for Argmax {
    fn name(&self) -> &str {
        "top1"
    }

    fn update(&mut self, sample: SampleRef<'_>, outputs: &TensorMap) -> Result<(), MetricError> {
        let y = outputs.f32("y").ok_or_else(|| MetricError::Output {
            metric: "top1".into(),
            output: "y".into(),
            reason: "missing".into(),
        })?;
        assert_eq!(y.shape()[0], 1, "one sample at a time");
        let argmax = y
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        let Annotation::Class(class) = sample.annotation else {
            return Err(MetricError::Annotation {
                metric: "top1".into(),
                index: sample.index,
                reason: "no class".into(),
            });
        };
        let hit = argmax == Some(*class);
        self.hits += usize::from(hit);
        self.seen += 1;
        self.last = Some(if hit { 1.0 } else { 0.0 });
        Ok(())
    }

    fn value(&self) -> Option<f64> {
        self.last
    }

    fn avg_value(&self) -> Option<f64> {
        (self.seen > 0).then(|| self.hits as f64 / self.seen as f64)
    }

    fn reset(&mut self) {
        *self = Argmax::default();
    }
}

/// `y = x * s` with `s` a one-element initializer; input `x` is `[N, 3]`.
pub(crate) fn mul_model(scale: f32) -> Model {
    let value = |name: &str| ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(tensor_type_proto(DataType::Float as i32, &[-1, 3])),
        ..Default::default()
    };
    let graph = GraphProto {
        name: "mul".into(),
        input: vec![value("x")],
        output: vec![value("y")],
        initializer: vec![tensor_from_values("s", &[1], &[scale]).expect("tensor")],
        node: vec![
            NodeBuilder::new("Mul")
                .name("mul")
                .inputs(["x", "s"])
                .output("y")
                .build(),
        ],
        ..Default::default()
    };
    Model::from_proto(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    })
    .expect("valid model")
}

/// The scale of a [`mul_model`].
pub(crate) fn scale_of(model: &CompressedModel) -> f32 {
    let model = model.model().expect("single model");
    tensor_to_f32(&model.graph().initializer[0]).expect("scale")[0]
}

/// An engine interpreting [`mul_model`]s; it exposes `h = x + 1` as a statistic output, and
/// counts the batches it ran.
#[derive(Debug)]
pub(crate) struct MockEngine {
    pub core: EngineCore,
    pub scale: Option<f32>,
    pub batches: usize,
    pub fail_at_batch: Option<usize>,
}

impl MockEngine {
    pub fn new(len: usize, batch_size: usize) -> MockEngine {
        MockEngine::with_loader(VecLoader::new(len), batch_size)
    }

    pub fn with_loader(loader: VecLoader, batch_size: usize) -> MockEngine {
        MockEngine {
            core: EngineCore::new(
                Arc::new(loader),
                Some(Box::new(Argmax::default())),
                batch_size,
            ),
            scale: None,
            batches: 0,
            fail_at_batch: None,
        }
    }
}

impl Engine for MockEngine {
    fn set_model(&mut self, model: &CompressedModel) -> Result<(), PipelineError> {
        self.scale = Some(scale_of(model));
        Ok(())
    }

    fn predict(&mut self, options: &PredictOptions<'_>) -> Result<Prediction, PipelineError> {
        let scale = self
            .scale
            .ok_or_else(|| PipelineError::engine("no model set"))?;
        let batches = &mut self.batches;
        let fail_at = self.fail_at_batch;
        self.core.predict_with(options, |_indices, inputs| {
            if Some(*batches) == fail_at {
                return Err(PipelineError::engine_with(
                    "running the model",
                    std::io::Error::other("device lost"),
                ));
            }
            *batches += 1;
            let x = inputs.f32("x").expect("x");
            let mut outputs = TensorMap::new();
            outputs.insert("y", x.mapv(|v| v * scale));
            let mut extra = TensorMap::new();
            extra.insert("h", x.mapv(|v| v + 1.0));
            Ok(BatchOutputs { outputs, extra })
        })
    }

    fn data_loader(&self) -> &Arc<dyn DataLoader> {
        self.core.data_loader()
    }

    fn metric(&self) -> Option<&dyn Metric> {
        self.core.metric()
    }

    fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)> {
        self.core.metric_mut()
    }

    fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>> {
        self.core.set_metric(metric)
    }

    fn batch_size(&self) -> usize {
        self.core.batch_size()
    }
}

/// Records progress calls.
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn start(&self, total: u64, label: &str) {
        self.calls
            .lock()
            .expect("lock")
            .push(format!("start {total} {label}"));
    }

    fn advance(&self, n: u64) {
        self.calls
            .lock()
            .expect("lock")
            .push(format!("advance {n}"));
    }

    fn finish(&self) {
        self.calls.lock().expect("lock").push("finish".into());
    }
}

/// The expected top-1 over `indices` for scale `s`: argmax of `[i, -i, i/2] * s` vs `i % 3`.
fn expected_top1(indices: &[usize], s: f32) -> f64 {
    let hits = indices
        .iter()
        .filter(|&&i| {
            let y: Vec<f32> = VecLoader::input(i).iter().map(|v| v * s).collect();
            let argmax = y
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, _)| k);
            argmax == Some(i % 3)
        })
        .count();
    hits as f64 / indices.len() as f64
}

fn engine_with_model(len: usize, batch: usize, scale: f32) -> MockEngine {
    let mut engine = MockEngine::new(len, batch);
    engine
        .set_model(&CompressedModel::single("mul", mul_model(scale)))
        .expect("model");
    engine
}

#[test]
fn predicts_the_whole_dataset_in_batches() {
    for (batch, scale) in [(1, 1.0), (3, 1.0), (4, -1.0), (20, -1.0)] {
        let mut engine = engine_with_model(10, batch, scale);
        let progress = Recorder::default();
        let p = engine
            .predict(&PredictOptions::new().per_sample().progress(&progress))
            .expect("predict");
        let all: Vec<usize> = (0..10).collect();
        assert_eq!(p.samples, 10);
        assert_eq!(engine.batches, 10usize.div_ceil(batch));
        assert_eq!(p.metrics.get("top1"), Some(&expected_top1(&all, scale)));
        let ids: Vec<usize> = p.per_sample.iter().map(|s| s.sample_id).collect();
        assert_eq!(ids, all);
        for s in &p.per_sample {
            assert_eq!(s.metric_name, "top1");
            assert_eq!(s.result, expected_top1(&[s.sample_id], scale));
        }
        assert!(p.statistics.is_empty() && p.outputs.is_empty());
        let calls = progress.calls.lock().expect("lock").clone();
        assert_eq!(
            calls.first().map(String::as_str),
            Some("start 10 inference")
        );
        assert_eq!(calls.last().map(String::as_str), Some("finish"));
        let advanced: u64 = calls
            .iter()
            .filter_map(|c| c.strip_prefix("advance ")?.parse::<u64>().ok())
            .sum();
        assert_eq!(advanced, 10);
    }
}

#[test]
fn collects_statistics_from_extra_outputs_model_outputs_and_inputs() {
    let layout = StatsLayout::new()
        .with("h", [StatKind::Min, StatKind::Max, StatKind::MeanMax])
        .with("y", [StatKind::Max])
        .with("x", [StatKind::Min, StatKind::PerChannelMax { axis: 1 }]);
    let sampler = SubsetSampler::new(10, Subset::Even(5), 2);
    let mut by_batch = Vec::new();
    for batch in [1, 3] {
        let mut engine = engine_with_model(10, batch, 2.0);
        let p = engine
            .predict(&PredictOptions::new().stats(&layout))
            .expect("predict");
        assert_eq!(p.samples, 10);
        // x_i = [i, -i, i/2] for i in 0..10.
        let h = p.statistics.get("h").expect("h");
        assert_eq!((h.min(), h.max()), (Some(-8.0), Some(10.0)));
        assert_eq!(h.mean_max(), Some((1..=10).sum::<i32>() as f32 / 10.0));
        assert_eq!(p.statistics.get("y").expect("y").max(), Some(18.0));
        let x = p.statistics.get("x").expect("x");
        assert_eq!(x.min(), Some(-9.0));
        assert_eq!(
            x.per_channel_max(1).expect("channels").values,
            [9.0, 0.0, 4.5]
        );
        by_batch.push(p.statistics);

        // A subset: samples 0, 2, 4, 6, 8.
        let p = engine
            .predict(&PredictOptions::new().stats(&layout).sampler(&sampler))
            .expect("predict");
        assert_eq!(p.samples, 5);
        assert_eq!(p.statistics.get("x").expect("x").min(), Some(-8.0));
        assert_eq!(p.metrics["top1"], expected_top1(&[0, 2, 4, 6, 8], 2.0));
    }
    assert_eq!(
        by_batch[0], by_batch[1],
        "batching does not change statistics"
    );
}

#[test]
fn keeps_outputs_by_sample() {
    let mut engine = engine_with_model(6, 4, 3.0);
    let sampler = SubsetSampler::new(6, Subset::First(3), 2);
    let options = PredictOptions::new()
        .sampler(&sampler)
        .keep(KeepOutputs::Named(vec!["y".into()]));
    let p = engine.predict(&options).expect("predict");
    assert_eq!(p.outputs.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let y1 = p.outputs[&1].f32("y").expect("y");
    assert_eq!(y1.shape(), [1, 3]);
    assert_eq!(y1.iter().copied().collect::<Vec<_>>(), [3.0, -3.0, 1.5]);

    let all = engine
        .predict(&PredictOptions::new().keep(KeepOutputs::All))
        .expect("predict");
    assert_eq!(all.outputs.len(), 6);

    // Keeping works without a metric too.
    let previous = engine.set_metric(None);
    assert_eq!(
        previous.map(|m| m.name().to_owned()).as_deref(),
        Some("top1")
    );
    let p = engine.predict(&options).expect("predict");
    assert!(p.metrics.is_empty());
    assert_eq!(p.outputs.len(), 3);

    let err = engine
        .predict(&PredictOptions::new().keep(KeepOutputs::Named(vec!["z".into()])))
        .expect_err("no output z");
    assert!(
        matches!(err, PipelineError::Output { ref name, .. } if name == "z"),
        "{err}"
    );
}

#[test]
fn samples_of_different_shapes_cannot_share_a_batch() {
    let loader = VecLoader {
        len: 4,
        wide: vec![2],
    };
    let mut engine = MockEngine::with_loader(loader, 2);
    engine.set_metric(None);
    engine
        .set_model(&CompressedModel::single("mul", mul_model(1.0)))
        .expect("model");
    let err = engine
        .predict(&PredictOptions::new())
        .expect_err("2 is wide");
    assert!(
        matches!(err, PipelineError::Batch { ref indices, .. } if indices == &[2, 3]),
        "{err}"
    );
    // One at a time, it runs.
    let single = BatchSampler::new(4, 1);
    let p = engine
        .predict(&PredictOptions::new().sampler(&single))
        .expect("predict");
    assert_eq!(p.samples, 4);
}

#[test]
fn errors_stop_the_run_and_still_finish_progress() {
    let mut engine = engine_with_model(10, 2, 1.0);
    engine.fail_at_batch = Some(2);
    let progress = Recorder::default();
    let err = engine
        .predict(&PredictOptions::new().progress(&progress))
        .expect_err("fails");
    assert_eq!(err.to_string(), "engine: running the model");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("device lost"));
    let calls = progress.calls.lock().expect("lock").clone();
    assert_eq!(
        calls,
        ["start 10 inference", "advance 2", "advance 2", "finish"]
    );

    // A sampler past the end of the data is a data error.
    let mut engine = engine_with_model(3, 1, 1.0);
    let sampler = BatchSampler::with_subset(vec![1, 7], 1);
    let err = engine
        .predict(&PredictOptions::new().sampler(&sampler))
        .expect_err("7 is out of range");
    assert!(matches!(
        err,
        PipelineError::Data(DataError::OutOfRange { index: 7, len: 3 })
    ));
}

#[test]
fn engines_box_and_swap_metrics() {
    let mut engine: Box<dyn Engine> = Box::new(engine_with_model(5, 2, 1.0));
    assert_eq!(engine.batch_size(), 2);
    assert_eq!(engine.data_loader().len(), 5);
    assert_eq!(engine.metric().map(|m| m.name()), Some("top1"));
    let first = engine.predict(&PredictOptions::new()).expect("predict");
    // The loop resets the metric each run: the same run gives the same value.
    let again = engine.predict(&PredictOptions::new()).expect("predict");
    assert_eq!(first.metrics, again.metrics);
    engine.metric_mut().expect("metric").reset();
    assert_eq!(engine.metric().and_then(|m| m.avg_value()), None);
    let old = engine.set_metric(Some(Box::new(Argmax::default())));
    assert!(old.is_some());
}
