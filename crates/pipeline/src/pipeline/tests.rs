//! Tests of the pipeline: building from POT's JSON through the registry (built-ins checked before
//! anything is built, custom algorithms by name), running algorithms in order on the engine, and
//! reports.

use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_onnx::graph::tensor_from_values;
use serde_json::json;

use super::*;
use crate::engine::PredictOptions;
use crate::engine::tests::{MockEngine, mul_model, scale_of};

static BUILT: AtomicUsize = AtomicUsize::new(0);

/// Multiplies the model's scale by `factor`, measuring top-1 before and after on the engine.
#[derive(Debug)]
struct Scale {
    factor: f32,
}

fn scale_factory(params: &Value) -> Result<Box<dyn Algorithm>, PipelineError> {
    BUILT.fetch_add(1, Ordering::SeqCst);
    let factor = params
        .get("factor")
        .and_then(Value::as_f64)
        .ok_or_else(|| PipelineError::InvalidParam {
            algorithm: "Scale".into(),
            param: "factor".into(),
            reason: "expected a number".into(),
        })?;
    Ok(Box::new(Scale {
        factor: factor as f32,
    }))
}

impl Algorithm for Scale {
    fn name(&self) -> &str {
        "Scale"
    }

    fn run(
        &mut self,
        mut model: CompressedModel,
        engine: &mut dyn Engine,
    ) -> Result<(CompressedModel, AlgorithmReport), PipelineError> {
        if self.factor == 0.0 {
            return Err(PipelineError::Algorithm {
                algorithm: "Scale".into(),
                reason: "a zero factor".into(),
            });
        }
        let mut report = AlgorithmReport::new("");
        engine.set_model(&model)?;
        let before = engine.predict(&PredictOptions::new())?;
        let scale = scale_of(&model) * self.factor;
        let m = model.model_mut().expect("single");
        m.graph_mut().initializer[0] = tensor_from_values("s", &[1], &[scale])?;
        engine.set_model(&model)?;
        let after = engine.predict(&PredictOptions::new())?;
        report
            .metrics
            .insert("before/top1".into(), before.metrics["top1"]);
        report
            .metrics
            .insert("after/top1".into(), after.metrics["top1"]);
        report.details = json!({ "scale": scale });
        Ok((model, report))
    }
}

fn registry() -> AlgorithmRegistry {
    let mut r = AlgorithmRegistry::new();
    r.register("Scale", scale_factory);
    r
}

#[test]
fn custom_algorithms_run_in_order_on_the_engine() {
    let config = json!([
        {"name": "Scale", "params": {"factor": 2.0}},
        {"name": "Scale", "params": {"factor": -3.0}}
    ]);
    let mut pipeline = registry()
        .create_pipeline(&config, MockEngine::new(9, 4))
        .expect("pipeline");
    assert_eq!(pipeline.algorithm_names(), ["Scale", "Scale"]);
    let (model, report) = pipeline
        .run(CompressedModel::single("mul", mul_model(1.5)))
        .expect("run");
    assert_eq!(scale_of(&model), 1.5 * 2.0 * -3.0);
    assert_eq!(report.algorithms.len(), 2);
    let first = &report.algorithms[0];
    assert_eq!(first.name, "Scale", "the pipeline names unnamed reports");
    assert_eq!(first.details, json!({"scale": 3.0}));
    // A positive scale keeps the argmax, a negative one changes it.
    assert_eq!(
        first.metrics["before/top1"],
        report.algorithms[0].metrics["after/top1"]
    );
    assert_ne!(
        report.algorithms[1].metrics["before/top1"],
        report.algorithms[1].metrics["after/top1"]
    );
    assert!(report.wall_s >= first.wall_s);
    // Two predictions per algorithm, three batches of 9 samples each.
    assert_eq!(pipeline.engine().batches, 4 * 3);
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["algorithms"][1]["details"]["scale"], json!(-9.0));
}

#[test]
fn every_entry_is_checked_before_anything_is_built() {
    let before = BUILT.load(Ordering::SeqCst);
    let config = json!([
        {"name": "Scale", "params": {"factor": 2.0}},
        {"name": "DefaultQuantization", "params": {"stat_subset_size": 0}}
    ]);
    let err = registry()
        .create_pipeline(&config, MockEngine::new(3, 1))
        .expect_err("bad subset size");
    assert!(
        matches!(err, PipelineError::InvalidParam { ref param, .. } if param == "stat_subset_size"),
        "{err}"
    );
    let err = registry()
        .create_pipeline(
            &json!([{"name": "Scale", "params": {"factor": 1}}, {"name": "Nope"}]),
            MockEngine::new(3, 1),
        )
        .expect_err("unknown");
    match err {
        PipelineError::UnknownAlgorithm { name, accepted } => {
            assert_eq!(name, "Nope");
            assert_eq!(
                accepted,
                ["DefaultQuantization", "AccuracyAwareQuantization", "Scale"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(BUILT.load(Ordering::SeqCst), before, "nothing was built");
}

#[test]
fn built_ins_go_through_the_quantization_hook() {
    for name in ["DefaultQuantization", "AccuracyAwareQuantization"] {
        let config = format!(r#"[{{"name": "{name}", "params": {{"preset": "mixed"}}}}]"#);
        match create_pipeline_from_str(&config, MockEngine::new(3, 1)) {
            Ok(p) => assert_eq!(p.algorithm_names(), [name]),
            Err(PipelineError::NotImplemented { algorithm }) => assert_eq!(algorithm, name),
            Err(other) => panic!("{name}: {other}"),
        }
    }
    let err = create_pipeline_from_str("[{\"name\": ", MockEngine::new(3, 1)).expect_err("json");
    assert!(matches!(err, PipelineError::Config { ref field, .. } if field == "algorithms"));
    // Registered names replace built-ins.
    let mut r = AlgorithmRegistry::new();
    r.register("DefaultQuantization", scale_factory);
    let p = r
        .create_pipeline(
            &json!({"name": "DefaultQuantization", "params": {"factor": 1}}),
            MockEngine::new(3, 1),
        )
        .expect("custom default");
    assert_eq!(p.algorithm_names(), ["Scale"]);
    assert_eq!(r.names(), ALGORITHMS);
}

#[test]
fn an_algorithm_error_stops_the_pipeline() {
    let config = json!([
        {"name": "Scale", "params": {"factor": 0.0}},
        {"name": "Scale", "params": {"factor": 2.0}}
    ]);
    let mut pipeline = registry()
        .create_pipeline(&config, Box::new(MockEngine::new(3, 1)) as Box<dyn Engine>)
        .expect("pipeline");
    let err = pipeline
        .run(CompressedModel::single("mul", mul_model(1.0)))
        .expect_err("zero factor");
    assert_eq!(err.to_string(), "Scale: a zero factor");
    let empty = Pipeline::new(MockEngine::new(3, 1))
        .run(CompressedModel::single("mul", mul_model(4.0)))
        .expect("no algorithms");
    assert_eq!(scale_of(&empty.0), 4.0);
    assert!(empty.1.algorithms.is_empty());
}
