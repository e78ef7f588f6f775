//! `DefaultQuantization`: simplify, calibrate in one streaming pass, place Q/DQ, rewrite.
//!
//! 1. **Prepare** a copy of the model: opset raised to 13 when lower (per-channel
//!    `DequantizeLinear` needs its `axis`), `Identity` nodes removed, `BatchNormalization` folded
//!    into the preceding `Conv` (so weights are quantized as they are computed with).
//! 2. **Place** Q/DQ on the prepared graph ([`placement::plan`]).
//! 3. **Calibrate**: the engine runs the calibration subset once with the plan's tensors exposed,
//!    reducing each batch as it arrives (memory independent of the number of samples). Ranges
//!    that follow from others ([`Derivations`]: pre-activation tensors, a SiLU's `Sigmoid`) are
//!    not measured but derived afterwards, and a tensor with a known floor ([`known_floor`]: an
//!    activation output and sums, pools, concatenations of them) has only its upper end measured.
//! 4. **Rewrite** ([`rewrite::apply`]) and drop the float weights nothing reads any more.

use std::collections::{BTreeMap, HashMap};

use kiln_onnx::Model;
use kiln_onnx::graph::{self, GraphIndex, UpgradeOptions};
use serde_json::json;

use super::activations::{Derivations, known_floor};
use super::bias;
use super::placement::{self, PlacementOptions, Plan};
use super::rewrite::{self, RewriteReport};
use crate::config::DefaultQuantizationParams;
use crate::engine::{Engine, KeepOutputs, PredictOptions};
use crate::error::PipelineError;
use crate::model::CompressedModel;
use crate::model::model_digest;
use crate::pipeline::{Algorithm, AlgorithmReport};
use crate::sampler::{BatchSampler, SubsetSampler};
use crate::stats::{MseOptions, StatsCache, StatsKey, StatsLayout, fingerprint};
use crate::tensor::Tensor;

/// POT's `DefaultQuantization` on ONNX QDQ (see the module docs).
#[derive(Debug, Clone)]
pub struct DefaultQuantization {
    params: DefaultQuantizationParams,
}

/// A quantized model with everything needed to change it again (the accuracy-aware search
/// reverts nodes of the plan and rewrites).
#[derive(Debug, Clone)]
pub struct Quantized {
    /// The prepared float model the plan refers to.
    pub prepared: Model,
    /// The placement.
    pub plan: Plan,
    /// Calibrated range per tensor.
    pub ranges: HashMap<String, (f32, f32)>,
    /// The quantized model.
    pub model: Model,
    /// What the rewrite did.
    pub rewrite: RewriteReport,
    /// Samples calibrated on.
    pub samples: usize,
    /// Seconds spent calibrating (0 on a statistics-cache hit).
    pub calibration_s: f64,
    /// Whether the statistics came from the cache.
    pub statistics_cache: StatsCacheUse,
    /// The cache file holding the statistics, when the cache is on.
    pub statistics_file: Option<std::path::PathBuf>,
}

/// How the statistics cache was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsCacheUse {
    /// No cache configured.
    Off,
    /// The statistics were found in the cache: no calibration ran.
    Hit,
    /// Calibration ran and its statistics were stored.
    Stored,
}

impl DefaultQuantization {
    /// The algorithm with `params`.
    pub fn new(params: DefaultQuantizationParams) -> DefaultQuantization {
        DefaultQuantization { params }
    }

    /// The parameters.
    pub fn params(&self) -> &DefaultQuantizationParams {
        &self.params
    }

    /// Prepares, calibrates and quantizes `model` on `engine`.
    pub fn quantize(
        &self,
        model: &Model,
        engine: &mut dyn Engine,
    ) -> Result<Quantized, PipelineError> {
        let mut prepared = prepare(model)?;
        let options = PlacementOptions {
            ignored: self.params.ignored_scope.clone(),
            ..PlacementOptions::default()
        };
        let graph = graph::model_graph(prepared.proto())?;
        let plan = placement::plan(graph, &options, &|_| None)?;

        // Calibration: one pass over the subset, the plan's tensors exposed and reduced.
        let estimator = self.params.range_estimator.activations;
        let kinds = estimator.stat_kinds(self.params.histogram_bins);
        // Ranges that follow from others are derived, not measured; a tensor with a known floor
        // (an activation output) needs only its upper end measured.
        let (derivations, floors) = {
            let index = GraphIndex::new(graph)?;
            let derivations = Derivations::new(graph, &index, plan.stat_tensors());
            let floors: HashMap<String, f32> = match estimator.upper_stat_kinds() {
                Some(_) => derivations
                    .measured(plan.stat_tensors())
                    .into_iter()
                    .filter_map(|t| Some((t.clone(), known_floor(graph, &index, &t)?)))
                    .collect(),
                None => HashMap::new(),
            };
            (derivations, floors)
        };
        let upper_kinds = estimator.upper_stat_kinds().unwrap_or_default();
        let mut layout = StatsLayout::new();
        for tensor in derivations.measured(plan.stat_tensors()) {
            let kinds = if floors.contains_key(&tensor) {
                &upper_kinds
            } else {
                &kinds
            };
            for kind in kinds {
                layout.add(&tensor, *kind);
            }
        }
        let calibration = CompressedModel::single("calibration", prepared.clone());
        engine.set_model(&calibration)?;
        let loader = engine.data_loader().clone();
        let sampler = SubsetSampler::for_loader(
            loader.as_ref(),
            self.params.stat_subset(),
            self.params.stat_batch_size.max(1),
        );
        let samples = sampler.indices().len();
        if samples == 0 {
            return Err(PipelineError::InvalidParam {
                algorithm: "DefaultQuantization".to_owned(),
                param: "stat_subset_size".to_owned(),
                reason: "the data loader has no samples to calibrate on".to_owned(),
            });
        }
        // The statistics cache: same prepared model, data, subset and layout -> same statistics.
        let cache = match (&self.params.stats_cache_dir, &self.params.data_fingerprint) {
            (Some(dir), Some(data)) => {
                let subset = fingerprint(sampler.indices().iter().map(|i| i.to_le_bytes()));
                let key = StatsKey::new(
                    &model_digest(&prepared)?,
                    &format!("{data}/{subset}"),
                    &layout,
                );
                Some((StatsCache::new(dir), key))
            }
            _ => None,
        };
        let cached = cache.as_ref().and_then(|(c, key)| c.load(key));
        let cache_hit = cached.is_some();
        let (statistics, calibration_s) = match cached {
            Some(statistics) => (statistics, 0.0),
            None => {
                let predicted =
                    engine.predict(&PredictOptions::new().stats(&layout).sampler(&sampler))?;
                if let Some((c, key)) = &cache {
                    c.store(key, &predicted.statistics)?;
                }
                (predicted.statistics, predicted.wall_s)
            }
        };
        let mse = MseOptions::default();
        let mut ranges: HashMap<String, (f32, f32)> = statistics
            .iter()
            .filter_map(|(tensor, stats)| {
                let range = match floors.get(tensor) {
                    Some(&floor) => {
                        let upper = estimator.upper(stats)?;
                        (floor.min(upper), upper)
                    }
                    None => estimator.range(stats, &mse)?,
                };
                Some((tensor.to_owned(), range))
            })
            .collect();
        derivations.fill(&mut ranges);
        plan.fill_covered(&mut ranges);

        let (mut model, mut rewrite) = build(&prepared, &plan, &ranges)?;
        if self.params.bias_correction {
            let corrected = correct_biases(
                engine,
                &mut prepared,
                &model,
                &sampler,
                self.params.stat_batch_size,
            )?;
            tracing::debug!(corrected, "bias correction");
            (model, rewrite) = build(&prepared, &plan, &ranges)?;
        }
        Ok(Quantized {
            prepared,
            plan,
            ranges,
            model,
            rewrite,
            samples,
            calibration_s,
            statistics_file: cache.as_ref().map(|(c, key)| c.path(key)),
            statistics_cache: match (&cache, cache_hit) {
                (None, _) => StatsCacheUse::Off,
                (Some(_), true) => StatsCacheUse::Hit,
                (Some(_), false) => StatsCacheUse::Stored,
            },
        })
    }
}

/// Calibration samples the bias-correction pass uses (the first of the calibration subset).
pub const BIAS_CORRECTION_SAMPLES: usize = 32;

/// Measures each quantized convolution's local mean output shift on the calibration samples
/// ([`bias::shift_model`]) and subtracts it from the convolution's bias in `prepared`. Returns how
/// many biases changed.
fn correct_biases(
    engine: &mut dyn Engine,
    prepared: &mut Model,
    quantized: &Model,
    sampler: &SubsetSampler,
    batch: usize,
) -> Result<usize, PipelineError> {
    let shift = bias::shift_model(prepared, quantized)?;
    let names: Vec<String> = shift.outputs.iter().map(|(_, o)| o.clone()).collect();
    engine.set_model(&CompressedModel::single("bias correction", shift.model))?;
    // A mean per channel over every position of this many samples is already precise; more would
    // only lengthen the extra pass (FP32, INT8 and the local re-runs: about three FP32 passes).
    let indices: Vec<usize> = sampler
        .indices()
        .iter()
        .copied()
        .take(BIAS_CORRECTION_SAMPLES)
        .collect();
    let subset = BatchSampler::with_subset(indices, batch.max(1));
    let p = engine.predict(
        &PredictOptions::new()
            .sampler(&subset)
            .keep(KeepOutputs::Named(names)),
    )?;
    let mut shifts: HashMap<String, Vec<f64>> = HashMap::new();
    for (conv, output) in &shift.outputs {
        let mut sum: Vec<f64> = Vec::new();
        let mut samples = 0usize;
        for outputs in p.outputs.values() {
            let Some(Tensor::F32(v)) = outputs.get(output) else {
                continue;
            };
            if sum.is_empty() {
                sum = vec![0.0; v.len()];
            }
            if v.len() != sum.len() {
                continue;
            }
            for (s, x) in sum.iter_mut().zip(v.iter()) {
                *s += f64::from(*x);
            }
            samples += 1;
        }
        if samples > 0 {
            let n = samples as f64;
            shifts.insert(conv.clone(), sum.into_iter().map(|s| s / n).collect());
        }
    }
    bias::apply_shifts(prepared, &shifts)
}

/// Raises the opset to 13 when lower and simplifies the graph for quantization.
pub fn prepare(model: &Model) -> Result<Model, PipelineError> {
    let mut prepared = model.clone();
    prepared.load_external_data()?;
    if graph::opset_version(prepared.proto(), "").is_some_and(|v| v < 13) {
        graph::upgrade_opset_to_13(prepared.proto_mut(), &UpgradeOptions::default())?;
    }
    graph::simplify_for_quantization(prepared.proto_mut(), None)?;
    // Every node gets a unique name: ignored scopes, reports and reverts refer to nodes by name.
    let graph = graph::model_graph_mut(prepared.proto_mut())?;
    let mut names = graph::NameGen::new(graph);
    for node in &mut graph.node {
        if node.name.is_empty() {
            node.name = names.fresh(&node.op_type);
        }
    }
    Ok(prepared)
}

/// Rewrites a copy of `prepared` with `plan` and `ranges`, dropping the float weights nothing
/// reads any more.
pub fn build(
    prepared: &Model,
    plan: &Plan,
    ranges: &HashMap<String, (f32, f32)>,
) -> Result<(Model, RewriteReport), PipelineError> {
    let mut model = prepared.clone();
    let resolver = prepared.resolver();
    let report = {
        let graph = graph::model_graph_mut(model.proto_mut())?;
        let report = rewrite::apply(graph, plan, ranges, resolver)?;
        graph::remove_unused_initializers(graph);
        report
    };
    model.validate()?;
    Ok((model, report))
}

impl Algorithm for DefaultQuantization {
    fn name(&self) -> &str {
        "DefaultQuantization"
    }

    fn run(
        &mut self,
        model: CompressedModel,
        engine: &mut dyn Engine,
    ) -> Result<(CompressedModel, AlgorithmReport), PipelineError> {
        let Some(float) = model.model() else {
            return Err(PipelineError::InvalidParam {
                algorithm: "DefaultQuantization".to_owned(),
                param: "model".to_owned(),
                reason: format!(
                    "{} is a cascade; quantize its models one at a time",
                    model.name()
                ),
            });
        };
        let quantized = self.quantize(float, engine)?;
        let mut report = AlgorithmReport::new(self.name());
        report.details = details(&quantized);
        Ok((
            CompressedModel::single(model.name(), quantized.model),
            report,
        ))
    }
}

/// The report details of a quantization: counts and where Q/DQ went.
pub fn details(q: &Quantized) -> serde_json::Value {
    let graph = graph::model_graph(q.prepared.proto()).ok();
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    if let Some(graph) = graph {
        for &i in &q.plan.nodes {
            if let Some(n) = graph.node.get(i) {
                *ops.entry(n.op_type.clone()).or_default() += 1;
            }
        }
    }
    json!({
        "quantized_nodes": q.plan.nodes.len(),
        "quantized_nodes_by_op": ops,
        "quantized_tensors": q.rewrite.activations,
        "scale_groups": q.plan.groups.len(),
        "weights_int8": q.rewrite.weights,
        "biases_int32": q.rewrite.biases,
        "lowered_hard_activations": q.rewrite.lowered_activations,
        "calibration_samples": q.samples,
        "calibration_s": q.calibration_s,
        "statistics_cache": q.statistics_cache,
        "statistics_file": q.statistics_file,
    })
}
