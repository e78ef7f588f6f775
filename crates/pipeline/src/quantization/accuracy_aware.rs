//! `AccuracyAwareQuantization`: quantize, and while the metric drops by more than
//! `maximal_drop`, return the layer that hurts most to float, one at a time.
//!
//! Ranking is one pass, not one evaluation per layer: the FP32 (prepared) model and the INT8 model
//! run side by side on the ranking subset ([`comparison_model`]: one graph that reduces each
//! quantized layer's output difference in place, so memory stays flat), and each layer is scored
//! by how much relative error it *adds* — the error of its output minus the largest error of its
//! inputs. Errors accumulate downstream, so the raw error would always blame the last layers; the
//! increment points at the layers that do the damage. Reverting re-plans with the layer ignored
//! (the calibrated ranges are reused: no new calibration) and re-evaluates the metric.

use std::collections::HashMap;

use kiln_onnx::Model;
use kiln_onnx::graph::{self, GraphIndex, Producer};
use serde_json::json;

use super::compare::comparison_model;
use super::default::{self, DefaultQuantization, Quantized};
use super::placement::{self, OpClass, PlacementOptions};
use crate::config::{AccuracyAwareParams, IgnoredScope};
use crate::engine::{Engine, KeepOutputs, PredictOptions};
use crate::error::PipelineError;
use crate::model::CompressedModel;
use crate::pipeline::{Algorithm, AlgorithmReport};
use crate::sampler::{Subset, SubsetSampler};
use crate::tensor::Tensor;

const NAME: &str = "AccuracyAwareQuantization";

/// POT's `AccuracyAwareQuantization` (see the module docs).
#[derive(Debug, Clone)]
pub struct AccuracyAwareQuantization {
    params: AccuracyAwareParams,
}

/// One evaluation during the search.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    /// The node returned to float in this step (`None`: the fully quantized model).
    pub reverted: Option<String>,
    /// The metric after the step.
    pub metric: f64,
    /// The drop against FP32 after the step.
    pub drop: f64,
}

/// What the search did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchReport {
    /// The FP32 metric.
    pub fp32_metric: f64,
    /// The final INT8 metric.
    pub int8_metric: f64,
    /// The final drop.
    pub drop: f64,
    /// Whether the final drop is within `maximal_drop`.
    pub met: bool,
    /// Nodes returned to float, in order.
    pub reverted: Vec<String>,
    /// Every evaluation.
    pub steps: Vec<Step>,
    /// The ranking: node -> added relative error.
    pub ranking: Vec<(String, f64)>,
}

impl AccuracyAwareQuantization {
    /// The algorithm with `params`.
    pub fn new(params: AccuracyAwareParams) -> AccuracyAwareQuantization {
        AccuracyAwareQuantization { params }
    }

    fn error(param: &str, reason: impl Into<String>) -> PipelineError {
        PipelineError::InvalidParam {
            algorithm: NAME.to_owned(),
            param: param.to_owned(),
            reason: reason.into(),
        }
    }

    /// Runs the search on `model`; returns the final quantized model and the report.
    pub fn search(
        &self,
        model: &Model,
        engine: &mut dyn Engine,
    ) -> Result<(Quantized, SearchReport), PipelineError> {
        if self.params.quantization.bias_correction {
            return Err(Self::error(
                "bias_correction",
                "not with AccuracyAwareQuantization: a layer returned to float must keep its \
                 original bias, and re-planning does not track corrected ones; use \
                 DefaultQuantization for bias correction",
            ));
        }
        let Some(metric) = engine.metric() else {
            return Err(Self::error(
                "metric",
                "the engine has no metric: accuracy-aware quantization needs one",
            ));
        };
        let higher_better = metric.higher_better();
        let metric_name = metric.name().to_owned();
        let len = engine.data_loader().len();
        let eval_size = ((len as f64) * self.params.metric_subset_ratio).ceil() as usize;
        let eval = SubsetSampler::new(
            len,
            Subset::First(eval_size.clamp(1, len.max(1))),
            engine.batch_size(),
        );
        let evaluate = |engine: &mut dyn Engine, m: &Model| -> Result<f64, PipelineError> {
            engine.set_model(&CompressedModel::single("candidate", m.clone()))?;
            let p = engine.predict(&PredictOptions::new().sampler(&eval))?;
            p.metrics
                .get(&metric_name)
                .or_else(|| p.metrics.values().next())
                .copied()
                .ok_or_else(|| Self::error("metric", "the metric gave no value"))
        };
        let drop_of = |fp32: f64, value: f64| {
            let (r, v) = if higher_better {
                (fp32, value)
            } else {
                (-fp32, -value)
            };
            self.params.drop_type.drop(r, v)
        };

        let fp32_metric = evaluate(engine, model)?;
        let dq = DefaultQuantization::new(self.params.quantization.clone());
        let mut quantized = dq.quantize(model, engine)?;
        let mut current = evaluate(engine, &quantized.model)?;
        let mut steps = vec![Step {
            reverted: None,
            metric: current,
            drop: drop_of(fp32_metric, current),
        }];
        let mut reverted: Vec<String> = Vec::new();
        let mut ranking = Vec::new();

        if drop_of(fp32_metric, current) > self.params.maximal_drop {
            ranking = self.rank(engine, &quantized)?;
            let limit = self.params.max_iter_num.unwrap_or(usize::MAX);
            let mut ignored = self.params.quantization.ignored_scope.clone();
            for (node, _) in ranking.iter() {
                if reverted.len() >= limit
                    || drop_of(fp32_metric, current) <= self.params.maximal_drop
                {
                    break;
                }
                ignored.names.push(node.clone());
                let candidate = replan(&quantized, &ignored)?;
                let value = evaluate(engine, &candidate.model)?;
                reverted.push(node.clone());
                steps.push(Step {
                    reverted: Some(node.clone()),
                    metric: value,
                    drop: drop_of(fp32_metric, value),
                });
                current = value;
                quantized = candidate;
            }
        }
        let drop = drop_of(fp32_metric, current);
        let report = SearchReport {
            fp32_metric,
            int8_metric: current,
            drop,
            met: drop <= self.params.maximal_drop,
            reverted,
            steps,
            ranking,
        };
        Ok((quantized, report))
    }

    /// Scores every quantized compute node by the relative error it adds (module docs).
    fn rank(
        &self,
        engine: &mut dyn Engine,
        q: &Quantized,
    ) -> Result<Vec<(String, f64)>, PipelineError> {
        let graph = graph::model_graph(q.prepared.proto())?;
        let index = GraphIndex::new(graph)?;
        let nodes: Vec<usize> = q
            .plan
            .nodes
            .iter()
            .copied()
            .filter(|&i| OpClass::of(&graph.node[i].op_type) == Some(OpClass::Compute))
            .collect();
        // Tensors to compare: each compute node's output and its activation input.
        let mut tensors: Vec<String> = Vec::new();
        for &i in &nodes {
            let n = &graph.node[i];
            for t in n.output.iter().take(1).chain(n.input.iter().take(1)) {
                if !tensors.contains(t) {
                    tensors.push(t.clone());
                }
            }
        }
        let samples = self.params.ranking_subset_size.max(1);
        let len = engine.data_loader().len();
        // One sample per batch: the runtime keeps every compared tensor of both halves alive
        // until its difference is reduced, so memory is about two models' activations of one
        // sample, and does not grow with the number of samples.
        let sampler = SubsetSampler::new(len, Subset::First(samples.min(len)), 1);
        // FP32 and INT8 side by side, differences reduced in the graph.
        let comparison = comparison_model(&q.prepared, &q.model, &tensors)?;
        engine.set_model(&CompressedModel::single(
            "ranking",
            comparison.model.clone(),
        ))?;
        let p = engine.predict(
            &PredictOptions::new()
                .sampler(&sampler)
                .keep(KeepOutputs::Named(comparison.output_names())),
        )?;
        let total = |name: &str| -> f64 {
            p.outputs
                .values()
                .filter_map(|o| match o.get(name) {
                    Some(Tensor::F32(a)) => Some(a.iter().map(|v| f64::from(*v)).sum::<f64>()),
                    _ => None,
                })
                .sum()
        };
        let error: HashMap<&str, f64> = comparison
            .outputs
            .iter()
            .map(|(t, diff, norm)| {
                let (diff, norm) = (total(diff), total(norm));
                let e = if norm > 0.0 {
                    (diff / norm).sqrt()
                } else {
                    0.0
                };
                (t.as_str(), e)
            })
            .collect();
        let mut ranking: Vec<(String, f64)> = nodes
            .iter()
            .filter_map(|&i| {
                let n = &graph.node[i];
                let out = error.get(n.output.first()?.as_str()).copied()?;
                let input = n
                    .input
                    .first()
                    .filter(|x| matches!(index.producer(x), Some(Producer::Node { .. })))
                    .and_then(|x| error.get(x.as_str()).copied())
                    .unwrap_or(0.0);
                Some((n.name.clone(), out - input))
            })
            .filter(|(name, _)| !name.is_empty())
            .collect();
        ranking.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranking)
    }
}

/// The quantization of `q.prepared` with `ignored` nodes kept float, reusing the calibrated ranges.
fn replan(q: &Quantized, ignored: &IgnoredScope) -> Result<Quantized, PipelineError> {
    let graph = graph::model_graph(q.prepared.proto())?;
    let options = PlacementOptions {
        ignored: ignored.clone(),
        ..PlacementOptions::default()
    };
    let plan = placement::plan(graph, &options, &|_| None)?;
    let (model, rewrite) = default::build(&q.prepared, &plan, &q.ranges)?;
    Ok(Quantized {
        plan,
        model,
        rewrite,
        ..q.clone()
    })
}

impl Algorithm for AccuracyAwareQuantization {
    fn name(&self) -> &str {
        NAME
    }

    fn run(
        &mut self,
        model: CompressedModel,
        engine: &mut dyn Engine,
    ) -> Result<(CompressedModel, AlgorithmReport), PipelineError> {
        let Some(float) = model.model() else {
            return Err(Self::error(
                "model",
                format!(
                    "{} is a cascade; quantize its models one at a time",
                    model.name()
                ),
            ));
        };
        let (quantized, search) = self.search(float, engine)?;
        let mut report = AlgorithmReport::new(NAME);
        report.metrics.insert("fp32".to_owned(), search.fp32_metric);
        report.metrics.insert("int8".to_owned(), search.int8_metric);
        let mut details = default::details(&quantized);
        if let Some(map) = details.as_object_mut() {
            map.insert("reverted".to_owned(), json!(search.reverted));
            map.insert("search".to_owned(), json!(search));
        }
        report.details = details;
        Ok((
            CompressedModel::single(model.name(), quantized.model),
            report,
        ))
    }
}
