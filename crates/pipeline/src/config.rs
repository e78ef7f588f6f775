//! Algorithm configuration: POT's JSON (`[{"name": "DefaultQuantization", "params": {...}}]`)
//! parsed into typed parameters ([`AlgorithmParams`]), with an error naming the algorithm and the
//! parameter (as a dotted path) for every unknown name, wrong type or value out of range, and the
//! accepted names or values listed.
//!
//! # Defaults
//!
//! | parameter | default | note |
//! |---|---|---|
//! | `preset` | `performance` | accepted for POT compatibility; kiln's encodings are the same for both (see [`Preset`]) |
//! | `stat_subset_size` | 300 | POT's and NNCF's recommendation; the whole dataset when smaller |
//! | `stat_batch_size` | 1 | POT's default; works for models with a fixed batch of 1. Per-sample statistics do not depend on it |
//! | `shuffle_data`, `seed` | `false`, 0 | without shuffling the first `stat_subset_size` samples are used |
//! | `range_estimator` | activations `min_max`, weights `min_max` | kiln: POT's `mean_min_max` for activations kept YOLOv8n's mAP50 at 0.75, `min_max` at 0.99 |
//! | `bias_correction` | `false` | kiln: each convolution's own mean output shift, measured on FP32 inputs in one extra pass, is subtracted from its bias (`quantization::bias`); not with `AccuracyAwareQuantization` |
//! | `target_device` | `ANY` | |
//! | `histogram_bins` | 2048 | kiln: bins of histogram-based estimators |
//! | `stats_cache_dir`, `data_fingerprint` | none | kiln: reuse calibration statistics for the same model, data, subset and layout |
//! | `maximal_drop`, `drop_type` | 0.01, `absolute` | AccuracyAwareQuantization |
//! | `ranking_subset_size` | 300 | |
//! | `max_iter_num` | unlimited | |
//! | `metric_subset_ratio` | 0.5 | POT's default |
//!
//! # Range estimators
//!
//! `range_estimator.activations` / `.weights` take a kiln name (`"min_max"`, `"mean_min_max"`,
//! `"quantile"`, `"mse"`), a kiln object (`{"type": "quantile", "outlier_prob": 1e-4}`), POT's
//! preset (`{"preset": "quantile"}`), or POT's min/max form
//! (`{"min": {"type": "min", "aggregator": "mean"}, "max": {"type": "max", "aggregator": "mean"}}`:
//! the `mean` aggregator of per-sample extremes is `mean_min_max`, `min`/`max` aggregators are
//! `min_max`, `quantile` types are `quantile`). `range_estimator.preset` sets both.
//!
//! # Ignored scope
//!
//! NNCF's `ignored_scope: {"names": [...], "types": [...], "patterns": [...]}` (patterns are
//! regular expressions searched in node names; anchor them with `^...$` to match whole names) and
//! POT's `ignored: {"scope": [...names], "operations": [{"type": "Add"}]}` are both accepted and
//! merged.

#![warn(missing_docs)]

use std::fmt;

use kiln_onnx::proto::NodeProto;
use regex::Regex;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::PipelineError;
use crate::sampler::Subset;
use crate::stats::{DEFAULT_BINS, MAX_BINS, MseOptions, StatKind, TensorStats};

/// The algorithms kiln knows, in the order error messages list them.
pub const ALGORITHMS: &[&str] = &["DefaultQuantization", "AccuracyAwareQuantization"];

/// One entry of the algorithm list, before its parameters are interpreted.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgorithmSpec {
    /// The algorithm's name.
    pub name: String,
    /// Its parameters as given (`{}` when absent).
    pub params: Value,
}

/// Splits POT's algorithm list into entries: an array of `{"name": ..., "params": {...}}`
/// objects, or one such object.
pub fn parse_algorithms(config: &Value) -> Result<Vec<AlgorithmSpec>, PipelineError> {
    let entries: Vec<(String, &Value)> = match config {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("algorithms[{i}]"), v))
            .collect(),
        Value::Object(_) => vec![("algorithms".to_owned(), config)],
        other => {
            return Err(PipelineError::Config {
                field: "algorithms".into(),
                reason: format!(
                    "expected a list of {{\"name\": ..., \"params\": {{...}}}} objects, got {}",
                    kind(other)
                ),
            });
        }
    };
    entries
        .into_iter()
        .map(|(field, entry)| {
            let Value::Object(map) = entry else {
                return Err(PipelineError::Config {
                    field,
                    reason: format!("expected an object, got {}", kind(entry)),
                });
            };
            if let Some(key) = map
                .keys()
                .find(|k| !["name", "params"].contains(&k.as_str()))
            {
                return Err(PipelineError::Config {
                    field: format!("{field}.{key}"),
                    reason: "unknown key; accepted: name, params".into(),
                });
            }
            let name = match map.get("name") {
                Some(Value::String(name)) => name.clone(),
                Some(other) => {
                    return Err(PipelineError::Config {
                        field: format!("{field}.name"),
                        reason: format!("expected a string, got {}", kind(other)),
                    });
                }
                None => {
                    return Err(PipelineError::Config {
                        field: format!("{field}.name"),
                        reason: format!("missing; accepted: {}", ALGORITHMS.join(", ")),
                    });
                }
            };
            let params = match map.get("params") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(other) => {
                    return Err(PipelineError::Config {
                        field: format!("{field}.params"),
                        reason: format!("expected an object, got {}", kind(other)),
                    });
                }
            };
            Ok(AlgorithmSpec { name, params })
        })
        .collect()
}

/// The typed parameters of a built-in algorithm.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "name", content = "params")]
pub enum AlgorithmParams {
    /// `DefaultQuantization`.
    DefaultQuantization(DefaultQuantizationParams),
    /// `AccuracyAwareQuantization`.
    AccuracyAwareQuantization(AccuracyAwareParams),
}

impl AlgorithmParams {
    /// Parses the parameters of the built-in algorithm `name`.
    pub fn parse(name: &str, params: &Value) -> Result<AlgorithmParams, PipelineError> {
        match name {
            "DefaultQuantization" => Ok(AlgorithmParams::DefaultQuantization(
                DefaultQuantizationParams::from_json(params)?,
            )),
            "AccuracyAwareQuantization" => Ok(AlgorithmParams::AccuracyAwareQuantization(
                AccuracyAwareParams::from_json(params)?,
            )),
            _ => Err(PipelineError::UnknownAlgorithm {
                name: name.to_owned(),
                accepted: ALGORITHMS.to_vec(),
            }),
        }
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        match self {
            AlgorithmParams::DefaultQuantization(_) => "DefaultQuantization",
            AlgorithmParams::AccuracyAwareQuantization(_) => "AccuracyAwareQuantization",
        }
    }

    /// The quantization parameters every built-in algorithm has.
    pub fn quantization(&self) -> &DefaultQuantizationParams {
        match self {
            AlgorithmParams::DefaultQuantization(p) => p,
            AlgorithmParams::AccuracyAwareQuantization(p) => &p.quantization,
        }
    }
}

/// POT's presets. Accepted for compatibility: on ONNX Runtime kiln writes the same encodings for
/// both (S8 symmetric weights, U8 asymmetric activations — the ones x86 integer kernels fuse), so
/// the preset changes nothing in the quantized model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Symmetric weights and activations.
    #[default]
    Performance,
    /// Symmetric weights, asymmetric activations.
    Mixed,
}

impl Preset {
    const NAMES: &[(&str, Preset)] = &[
        ("performance", Preset::Performance),
        ("mixed", Preset::Mixed),
    ];

    /// Whether POT quantizes activations symmetrically with this preset. kiln's ONNX Runtime
    /// path uses asymmetric U8 activations with either preset: x86 integer kernels need U8, and
    /// a symmetric U8 encoding would waste half its codes on non-negative activations.
    pub fn symmetric_activations(self) -> bool {
        self == Preset::Performance
    }

    /// Whether weights are quantized symmetrically (always, in both presets).
    pub fn symmetric_weights(self) -> bool {
        true
    }
}

/// The device the quantized model targets (POT's `target_device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetDevice {
    /// Any device.
    #[default]
    Any,
    /// CPU (ONNX Runtime's integer CPU kernels: U8 activations, S8 weights).
    Cpu,
    /// GPU.
    Gpu,
}

impl TargetDevice {
    const NAMES: &[(&str, TargetDevice)] = &[
        ("ANY", TargetDevice::Any),
        ("CPU", TargetDevice::Cpu),
        ("GPU", TargetDevice::Gpu),
    ];
}

/// How a tensor's quantization range is estimated from its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RangeEstimator {
    /// Global min and max.
    MinMax,
    /// Mean over samples of per-sample min and max (POT's default for activations).
    MeanMinMax,
    /// Quantiles of the histogram, cutting `outlier_prob` of the mass on each side.
    Quantile {
        /// Mass cut on each side, in `(0, 0.5)` (POT's default 1e-4).
        outlier_prob: f64,
    },
    /// The MSE-optimal clipping range over the histogram.
    Mse,
}

impl RangeEstimator {
    const NAMES: &[&str] = &["min_max", "mean_min_max", "quantile", "mse"];

    /// POT's default `outlier_prob` for quantile estimators.
    pub const DEFAULT_OUTLIER_PROB: f64 = 1e-4;

    /// The statistics an activation needs for this estimator.
    pub fn stat_kinds(&self, histogram_bins: usize) -> Vec<StatKind> {
        match self {
            RangeEstimator::MinMax => vec![StatKind::Min, StatKind::Max],
            RangeEstimator::MeanMinMax => vec![StatKind::MeanMin, StatKind::MeanMax],
            RangeEstimator::Quantile { .. } | RangeEstimator::Mse => vec![
                StatKind::Min,
                StatKind::Max,
                StatKind::Histogram {
                    bins: histogram_bins,
                },
            ],
        }
    }

    /// The statistics the upper end alone needs, for a tensor whose lower end is known (an
    /// activation's floor). `None` when the estimator needs the whole distribution.
    pub fn upper_stat_kinds(&self) -> Option<Vec<StatKind>> {
        match self {
            RangeEstimator::MinMax => Some(vec![StatKind::Max]),
            RangeEstimator::MeanMinMax => Some(vec![StatKind::MeanMax]),
            RangeEstimator::Quantile { .. } | RangeEstimator::Mse => None,
        }
    }

    /// The upper end from statistics collected with [`upper_stat_kinds`](Self::upper_stat_kinds).
    pub fn upper(&self, stats: &TensorStats) -> Option<f32> {
        match self {
            RangeEstimator::MinMax => stats.max(),
            RangeEstimator::MeanMinMax => stats.mean_max(),
            RangeEstimator::Quantile { .. } | RangeEstimator::Mse => None,
        }
    }

    /// The range this estimator gives from collected statistics (`mse` applies to
    /// [`RangeEstimator::Mse`] only). `None` when the statistics it needs are missing.
    pub fn range(&self, stats: &TensorStats, mse: &MseOptions) -> Option<(f32, f32)> {
        match *self {
            RangeEstimator::MinMax => Some((stats.min()?, stats.max()?)),
            RangeEstimator::MeanMinMax => Some((stats.mean_min()?, stats.mean_max()?)),
            RangeEstimator::Quantile { outlier_prob } => {
                let h = stats.histogram()?;
                Some((h.quantile(outlier_prob)?, h.quantile(1.0 - outlier_prob)?))
            }
            RangeEstimator::Mse => stats.histogram()?.mse_range(mse),
        }
    }
}

/// Range estimators for activations and weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RangeEstimatorParams {
    /// For activations (default [`RangeEstimator::MinMax`]: on YOLOv8n, POT's `mean_min_max`
    /// kept mAP50 0.75 where the global min/max kept 0.99; see docs/benchmarks.md).
    pub activations: RangeEstimator,
    /// For weights (default [`RangeEstimator::MinMax`]; weights are constants, so
    /// `mean_min_max` does not apply).
    pub weights: RangeEstimator,
}

impl Default for RangeEstimatorParams {
    fn default() -> Self {
        RangeEstimatorParams {
            activations: RangeEstimator::MinMax,
            weights: RangeEstimator::MinMax,
        }
    }
}

/// Nodes left in float: by name, by operator type, or by a regular expression searched in the
/// name.
#[derive(Clone, Default)]
pub struct IgnoredScope {
    /// Node names.
    pub names: Vec<String>,
    /// Operator types (`Add`, `Concat`).
    pub types: Vec<String>,
    patterns: Vec<Regex>,
}

impl IgnoredScope {
    /// A scope; fails on the first invalid pattern.
    pub fn new(
        names: Vec<String>,
        types: Vec<String>,
        patterns: &[&str],
    ) -> Result<IgnoredScope, regex::Error> {
        let patterns = patterns
            .iter()
            .map(|p| Regex::new(p))
            .collect::<Result<_, _>>()?;
        Ok(IgnoredScope {
            names,
            types,
            patterns,
        })
    }

    /// The patterns, as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.patterns.iter().map(Regex::as_str)
    }

    /// Whether the scope ignores nothing.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.types.is_empty() && self.patterns.is_empty()
    }

    /// Whether a node with this name and operator type is ignored.
    pub fn matches(&self, node_name: &str, op_type: &str) -> bool {
        self.names.iter().any(|n| n == node_name)
            || self.types.iter().any(|t| t == op_type)
            || self.patterns.iter().any(|p| p.is_match(node_name))
    }

    /// Whether `node` is ignored.
    pub fn matches_node(&self, node: &NodeProto) -> bool {
        self.matches(&node.name, &node.op_type)
    }
}

impl fmt::Debug for IgnoredScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IgnoredScope")
            .field("names", &self.names)
            .field("types", &self.types)
            .field("patterns", &self.patterns().collect::<Vec<_>>())
            .finish()
    }
}

impl PartialEq for IgnoredScope {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
            && self.types == other.types
            && self.patterns().eq(other.patterns())
    }
}

impl Serialize for IgnoredScope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Repr<'a> {
            names: &'a [String],
            types: &'a [String],
            patterns: Vec<&'a str>,
        }
        Repr {
            names: &self.names,
            types: &self.types,
            patterns: self.patterns().collect(),
        }
        .serialize(serializer)
    }
}

/// Parameters of `DefaultQuantization` (see the module docs for defaults).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultQuantizationParams {
    /// Symmetric or mixed quantization.
    pub preset: Preset,
    /// Calibration samples (the whole dataset when it is smaller).
    pub stat_subset_size: usize,
    /// Samples per calibration batch.
    pub stat_batch_size: usize,
    /// Draw the calibration subset at random (with `seed`) instead of taking the first samples.
    pub shuffle_data: bool,
    /// Seed of the random subset.
    pub seed: u64,
    /// How ranges are estimated.
    pub range_estimator: RangeEstimatorParams,
    /// Nodes left in float.
    pub ignored_scope: IgnoredScope,
    /// Subtract each quantized convolution's own mean output shift (measured on FP32 inputs)
    /// from its bias (`quantization::bias`).
    pub bias_correction: bool,
    /// The target device.
    pub target_device: TargetDevice,
    /// Bins of histogram-based estimators (even, 2 to 2^20).
    pub histogram_bins: usize,
    /// kiln: a folder where calibration statistics are cached, keyed by the prepared model's
    /// digest, [`data_fingerprint`](Self::data_fingerprint), the subset and the layout; a hit skips
    /// calibration. Needs `data_fingerprint`.
    pub stats_cache_dir: Option<std::path::PathBuf>,
    /// kiln: an identity of the calibration data (files, preprocessing) for the statistics cache.
    pub data_fingerprint: Option<String>,
}

impl Default for DefaultQuantizationParams {
    fn default() -> Self {
        DefaultQuantizationParams {
            preset: Preset::Performance,
            stat_subset_size: 300,
            stat_batch_size: 1,
            shuffle_data: false,
            seed: 0,
            range_estimator: RangeEstimatorParams::default(),
            ignored_scope: IgnoredScope::default(),
            bias_correction: false,
            target_device: TargetDevice::Any,
            histogram_bins: DEFAULT_BINS,
            stats_cache_dir: None,
            data_fingerprint: None,
        }
    }
}

impl DefaultQuantizationParams {
    /// The parameters `DefaultQuantization` accepts.
    pub const ACCEPTED: &[&str] = &[
        "preset",
        "stat_subset_size",
        "stat_batch_size",
        "shuffle_data",
        "seed",
        "range_estimator",
        "ignored_scope",
        "ignored",
        "bias_correction",
        "target_device",
        "histogram_bins",
        "stats_cache_dir",
        "data_fingerprint",
    ];

    /// Parses `DefaultQuantization`'s `params`.
    pub fn from_json(params: &Value) -> Result<DefaultQuantizationParams, PipelineError> {
        let r = Reader::new("DefaultQuantization", "", params)?;
        r.check_keys(Self::ACCEPTED)?;
        Self::read(&r)
    }

    fn read(r: &Reader<'_>) -> Result<DefaultQuantizationParams, PipelineError> {
        let d = DefaultQuantizationParams::default();
        let mut scope = match r.get("ignored_scope") {
            Some(v) => parse_ignored_scope(&r.child("ignored_scope", v)?)?,
            None => IgnoredScope::default(),
        };
        if let Some(v) = r.get("ignored") {
            let pot = parse_pot_ignored(&r.child("ignored", v)?)?;
            scope.names.extend(pot.names);
            scope.types.extend(pot.types);
        }
        let histogram_bins = r.usize("histogram_bins", d.histogram_bins, 2)?;
        if !histogram_bins.is_multiple_of(2) || histogram_bins > MAX_BINS {
            return Err(r.invalid(
                "histogram_bins",
                format!("must be even and at most {MAX_BINS}, got {histogram_bins}"),
            ));
        }
        Ok(DefaultQuantizationParams {
            preset: r.choice("preset", d.preset, Preset::NAMES)?,
            stat_subset_size: r.usize("stat_subset_size", d.stat_subset_size, 1)?,
            stat_batch_size: r.usize("stat_batch_size", d.stat_batch_size, 1)?,
            shuffle_data: r.bool("shuffle_data", d.shuffle_data)?,
            seed: r.u64("seed", d.seed)?,
            range_estimator: match r.get("range_estimator") {
                Some(v) => parse_range_estimator(&r.child("range_estimator", v)?)?,
                None => d.range_estimator,
            },
            ignored_scope: scope,
            bias_correction: r.bool("bias_correction", d.bias_correction)?,
            target_device: r.choice("target_device", d.target_device, TargetDevice::NAMES)?,
            histogram_bins,
            stats_cache_dir: match r.get("stats_cache_dir") {
                Some(_) => Some(r.string("stats_cache_dir")?.into()),
                None => None,
            },
            data_fingerprint: match r.get("data_fingerprint") {
                Some(_) => Some(r.string("data_fingerprint")?),
                None => None,
            },
        })
    }

    /// The calibration subset: the first `stat_subset_size` samples, or as many drawn with
    /// `seed` when `shuffle_data`.
    pub fn stat_subset(&self) -> Subset {
        if self.shuffle_data {
            Subset::Random {
                size: self.stat_subset_size,
                seed: self.seed,
            }
        } else {
            Subset::First(self.stat_subset_size)
        }
    }
}

/// How the accuracy drop is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropType {
    /// `reference - quantized`.
    #[default]
    Absolute,
    /// `(reference - quantized) / reference`.
    Relative,
}

impl DropType {
    const NAMES: &[(&str, DropType)] = &[
        ("absolute", DropType::Absolute),
        ("relative", DropType::Relative),
    ];

    /// The drop from `reference` to `value`, for a metric where higher is better (negate both
    /// for one where lower is better).
    pub fn drop(self, reference: f64, value: f64) -> f64 {
        match self {
            DropType::Absolute => reference - value,
            DropType::Relative if reference == 0.0 => reference - value,
            DropType::Relative => (reference - value) / reference.abs(),
        }
    }
}

/// Parameters of `AccuracyAwareQuantization`: its own, plus every `DefaultQuantization`
/// parameter (in the same `params` object, as in POT).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccuracyAwareParams {
    /// The quantization parameters.
    #[serde(flatten)]
    pub quantization: DefaultQuantizationParams,
    /// Largest accepted metric drop, in `[0, 1]` (default 0.01).
    pub maximal_drop: f64,
    /// How the drop is measured.
    pub drop_type: DropType,
    /// Samples used to rank layers by their effect on the metric (default 300).
    pub ranking_subset_size: usize,
    /// Most layers reverted to float; `None`: until the drop is met or nothing is left.
    pub max_iter_num: Option<usize>,
    /// Share of the dataset used for the metric during the search, in `(0, 1]` (default 0.5).
    pub metric_subset_ratio: f64,
}

impl Default for AccuracyAwareParams {
    fn default() -> Self {
        AccuracyAwareParams {
            quantization: DefaultQuantizationParams::default(),
            maximal_drop: 0.01,
            drop_type: DropType::Absolute,
            ranking_subset_size: 300,
            max_iter_num: None,
            metric_subset_ratio: 0.5,
        }
    }
}

impl AccuracyAwareParams {
    /// The parameters of its own `AccuracyAwareQuantization` accepts (besides
    /// [`DefaultQuantizationParams::ACCEPTED`]).
    pub const OWN: &[&str] = &[
        "maximal_drop",
        "drop_type",
        "ranking_subset_size",
        "max_iter_num",
        "metric_subset_ratio",
    ];

    /// Every parameter accepted.
    pub fn accepted() -> Vec<&'static str> {
        let mut all = Self::OWN.to_vec();
        all.extend_from_slice(DefaultQuantizationParams::ACCEPTED);
        all
    }

    /// Parses `AccuracyAwareQuantization`'s `params`.
    pub fn from_json(params: &Value) -> Result<AccuracyAwareParams, PipelineError> {
        let r = Reader::new("AccuracyAwareQuantization", "", params)?;
        r.check_keys(&Self::accepted())?;
        let d = AccuracyAwareParams::default();
        let max_iter_num = match r.get("max_iter_num") {
            None => None,
            Some(_) => Some(r.usize("max_iter_num", 0, 1)?),
        };
        Ok(AccuracyAwareParams {
            quantization: DefaultQuantizationParams::read(&r)?,
            maximal_drop: r.f64_in("maximal_drop", d.maximal_drop, (0.0, true), (1.0, true))?,
            drop_type: r.choice("drop_type", d.drop_type, DropType::NAMES)?,
            ranking_subset_size: r.usize("ranking_subset_size", d.ranking_subset_size, 1)?,
            max_iter_num,
            metric_subset_ratio: r.f64_in(
                "metric_subset_ratio",
                d.metric_subset_ratio,
                (0.0, false),
                (1.0, true),
            )?,
        })
    }
}

fn parse_range_estimator(r: &Reader<'_>) -> Result<RangeEstimatorParams, PipelineError> {
    r.check_keys(&["preset", "activations", "weights"])?;
    let mut out = match r.get("preset") {
        None => RangeEstimatorParams::default(),
        Some(v) => pot_preset(r, r.path("preset"), v)?,
    };
    if let Some(v) = r.get("activations") {
        out.activations = parse_estimator(r, "activations", v, false)?;
    }
    if let Some(v) = r.get("weights") {
        out.weights = parse_estimator(r, "weights", v, true)?;
    }
    Ok(out)
}

/// POT's `"preset": "default" | "quantile"`.
fn pot_preset(
    r: &Reader<'_>,
    path: String,
    v: &Value,
) -> Result<RangeEstimatorParams, PipelineError> {
    let quantile = RangeEstimator::Quantile {
        outlier_prob: RangeEstimator::DEFAULT_OUTLIER_PROB,
    };
    match v.as_str() {
        Some("default") => Ok(RangeEstimatorParams {
            activations: RangeEstimator::MeanMinMax,
            weights: RangeEstimator::MinMax,
        }),
        Some("quantile") => Ok(RangeEstimatorParams {
            activations: quantile,
            weights: quantile,
        }),
        _ => Err(r.invalid_at(
            path,
            format!("expected one of: default, quantile; got {}", show(v)),
        )),
    }
}

/// One estimator, in any of the accepted forms (see the module docs).
fn parse_estimator(
    parent: &Reader<'_>,
    key: &str,
    v: &Value,
    weights: bool,
) -> Result<RangeEstimator, PipelineError> {
    let path = parent.path(key);
    let estimator = match v {
        Value::String(name) => by_name(parent, &path, name, None)?,
        Value::Object(map) => {
            let r = parent.child(key, v)?;
            if map.contains_key("type") {
                r.check_keys(&["type", "outlier_prob"])?;
                let name = r.string("type")?;
                let prob = r
                    .get("outlier_prob")
                    .map(|_| r.outlier_prob("outlier_prob"))
                    .transpose()?;
                by_name(&r, &r.path("type"), &name, prob)?
            } else if map.contains_key("preset") {
                r.check_keys(&["preset"])?;
                let preset = pot_preset(
                    &r,
                    r.path("preset"),
                    map.get("preset").unwrap_or(&Value::Null),
                )?;
                if weights {
                    preset.weights
                } else {
                    preset.activations
                }
            } else {
                pot_min_max(&r, weights)?
            }
        }
        other => {
            return Err(parent.invalid(
                key,
                format!(
                    "expected an estimator name ({}) or object, got {}",
                    RangeEstimator::NAMES.join(", "),
                    kind(other)
                ),
            ));
        }
    };
    if weights && estimator == RangeEstimator::MeanMinMax {
        return Err(parent.invalid(
            key,
            "weights are constants: mean_min_max applies to activations only; accepted: min_max, quantile, mse",
        ));
    }
    Ok(estimator)
}

fn by_name(
    r: &Reader<'_>,
    path: &str,
    name: &str,
    outlier_prob: Option<f64>,
) -> Result<RangeEstimator, PipelineError> {
    let estimator = match name {
        "min_max" => RangeEstimator::MinMax,
        "mean_min_max" => RangeEstimator::MeanMinMax,
        "quantile" => RangeEstimator::Quantile {
            outlier_prob: outlier_prob.unwrap_or(RangeEstimator::DEFAULT_OUTLIER_PROB),
        },
        "mse" => RangeEstimator::Mse,
        other => {
            return Err(r.invalid_at(
                path.to_owned(),
                format!(
                    "unknown estimator {other:?}; accepted: {}",
                    RangeEstimator::NAMES.join(", ")
                ),
            ));
        }
    };
    if outlier_prob.is_some() && !matches!(estimator, RangeEstimator::Quantile { .. }) {
        return Err(r.invalid_at(
            path.to_owned(),
            format!("outlier_prob applies to quantile only, not {name}"),
        ));
    }
    Ok(estimator)
}

/// POT's `{"min": {"type", "aggregator", "outlier_prob"}, "max": {...}}`.
fn pot_min_max(r: &Reader<'_>, weights: bool) -> Result<RangeEstimator, PipelineError> {
    r.check_keys(&["min", "max"])?;
    struct Side {
        quantile: bool,
        aggregator: Option<String>,
        outlier_prob: Option<f64>,
    }
    let side = |key: &str, types: &'static [&'static str]| -> Result<Option<Side>, PipelineError> {
        let Some(v) = r.get(key) else {
            return Ok(None);
        };
        let s = r.child(key, v)?;
        s.check_keys(&["type", "aggregator", "outlier_prob"])?;
        let ty = match s.get("type") {
            Some(_) => s.string("type")?,
            None => types[0].to_owned(),
        };
        if !types.contains(&ty.as_str()) {
            return Err(s.invalid(
                "type",
                format!("expected one of: {}; got {ty:?}", types.join(", ")),
            ));
        }
        let aggregator = match s.get("aggregator") {
            Some(_) => {
                let a = s.string("aggregator")?;
                if !["mean", "min", "max"].contains(&a.as_str()) {
                    return Err(s.invalid(
                        "aggregator",
                        format!("expected one of: mean, min, max; got {a:?}"),
                    ));
                }
                Some(a)
            }
            None => None,
        };
        let outlier_prob = s
            .get("outlier_prob")
            .map(|_| s.outlier_prob("outlier_prob"))
            .transpose()?;
        if outlier_prob.is_some() && ty != "quantile" {
            return Err(s.invalid("outlier_prob", "applies to the quantile type only"));
        }
        Ok(Some(Side {
            quantile: ty == "quantile",
            aggregator,
            outlier_prob,
        }))
    };
    let min = side("min", &["min", "quantile"])?;
    let max = side("max", &["max", "abs_max", "quantile"])?;
    let sides: Vec<&Side> = min.iter().chain(max.iter()).collect();
    if sides.is_empty() {
        return Err(r.invalid_at(
            r.prefix.clone(),
            "expected `min` and/or `max` (POT form), `type` (kiln form) or `preset`".into(),
        ));
    }
    let quantile = sides.iter().filter(|s| s.quantile).count();
    if quantile > 0 && quantile < sides.len() {
        return Err(r.invalid_at(
            r.prefix.clone(),
            "min and max must both be quantile estimators or neither".into(),
        ));
    }
    if quantile > 0 {
        let outlier_prob = sides
            .iter()
            .find_map(|s| s.outlier_prob)
            .unwrap_or(RangeEstimator::DEFAULT_OUTLIER_PROB);
        return Ok(RangeEstimator::Quantile { outlier_prob });
    }
    // Activations aggregate per-sample extremes by their mean unless told `min`/`max`.
    let global = weights
        || sides
            .iter()
            .any(|s| matches!(s.aggregator.as_deref(), Some("min" | "max")));
    Ok(if global {
        RangeEstimator::MinMax
    } else {
        RangeEstimator::MeanMinMax
    })
}

fn parse_ignored_scope(r: &Reader<'_>) -> Result<IgnoredScope, PipelineError> {
    r.check_keys(&["names", "types", "patterns"])?;
    let names = r.strings("names")?;
    let types = r.strings("types")?;
    let patterns = r
        .strings("patterns")?
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Regex::new(p).map_err(|e| {
                r.invalid_at(
                    format!("{}[{i}]", r.path("patterns")),
                    format!("invalid regular expression {p:?}: {e}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(IgnoredScope {
        names,
        types,
        patterns,
    })
}

/// POT's `ignored: {"scope": [...], "operations": [{"type": "Add"}]}`.
fn parse_pot_ignored(r: &Reader<'_>) -> Result<IgnoredScope, PipelineError> {
    r.check_keys(&["scope", "operations"])?;
    let names = r.strings("scope")?;
    let mut types = Vec::new();
    if let Some(v) = r.get("operations") {
        let Value::Array(ops) = v else {
            return Err(r.invalid("operations", format!("expected a list, got {}", kind(v))));
        };
        for (i, op) in ops.iter().enumerate() {
            let o = r.child(&format!("operations[{i}]"), op)?;
            if o.get("attributes").is_some() {
                return Err(o.invalid(
                    "attributes",
                    "matching operations on attributes is not supported; ignore the nodes by name",
                ));
            }
            o.check_keys(&["type"])?;
            types.push(o.string("type")?);
        }
    }
    Ok(IgnoredScope {
        names,
        types,
        patterns: Vec::new(),
    })
}

/// A JSON value's kind, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a value, for messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// Reads one object of an algorithm's parameters; every error names the algorithm and the
/// parameter's dotted path. `null` reads as absent.
struct Reader<'a> {
    algorithm: &'static str,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Reader<'a> {
    fn new(
        algorithm: &'static str,
        prefix: &str,
        v: &'a Value,
    ) -> Result<Reader<'a>, PipelineError> {
        match v {
            Value::Object(map) => Ok(Reader {
                algorithm,
                prefix: prefix.to_owned(),
                map,
            }),
            other => Err(PipelineError::InvalidParam {
                algorithm: algorithm.to_owned(),
                param: if prefix.is_empty() {
                    "params".to_owned()
                } else {
                    prefix.to_owned()
                },
                reason: format!("expected an object, got {}", kind(other)),
            }),
        }
    }

    fn child(&self, key: &str, v: &'a Value) -> Result<Reader<'a>, PipelineError> {
        Reader::new(self.algorithm, &self.path(key), v)
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn check_keys(&self, accepted: &[&'static str]) -> Result<(), PipelineError> {
        match self.map.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(key) => Err(PipelineError::UnknownParam {
                algorithm: self.algorithm.to_owned(),
                param: self.path(key),
                accepted: accepted.to_vec(),
            }),
            None => Ok(()),
        }
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> PipelineError {
        self.invalid_at(self.path(key), reason.into())
    }

    fn invalid_at(&self, param: String, reason: String) -> PipelineError {
        PipelineError::InvalidParam {
            algorithm: self.algorithm.to_owned(),
            param,
            reason,
        }
    }

    fn u64(&self, key: &str, default: u64) -> Result<u64, PipelineError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| {
                self.invalid(
                    key,
                    format!("expected a non-negative integer, got {}", show(v)),
                )
            }),
        }
    }

    fn usize(&self, key: &str, default: usize, min: usize) -> Result<usize, PipelineError> {
        let n = self.u64(key, default as u64)?;
        let n = usize::try_from(n).map_err(|_| self.invalid(key, format!("{n} is too large")))?;
        if n < min {
            return Err(self.invalid(key, format!("must be at least {min}, got {n}")));
        }
        Ok(n)
    }

    fn f64_in(
        &self,
        key: &str,
        default: f64,
        (lo, lo_closed): (f64, bool),
        (hi, hi_closed): (f64, bool),
    ) -> Result<f64, PipelineError> {
        let x = match self.get(key) {
            None => return Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.invalid(key, format!("expected a number, got {}", show(v))))?,
        };
        let above = if lo_closed { x >= lo } else { x > lo };
        let below = if hi_closed { x <= hi } else { x < hi };
        if !(above && below) {
            return Err(self.invalid(
                key,
                format!(
                    "must be in {}{lo}, {hi}{}, got {x}",
                    if lo_closed { "[" } else { "(" },
                    if hi_closed { "]" } else { ")" }
                ),
            ));
        }
        Ok(x)
    }

    fn outlier_prob(&self, key: &str) -> Result<f64, PipelineError> {
        self.f64_in(
            key,
            RangeEstimator::DEFAULT_OUTLIER_PROB,
            (0.0, false),
            (0.5, false),
        )
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, PipelineError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| {
                self.invalid(key, format!("expected true or false, got {}", show(v)))
            }),
        }
    }

    fn string(&self, key: &str) -> Result<String, PipelineError> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.invalid(key, format!("expected a string, got {}", kind(v)))),
            None => Err(self.invalid(key, "missing")),
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, PipelineError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.invalid_at(
                        format!("{}[{i}]", self.path(key)),
                        format!("expected a string, got {}", kind(other)),
                    )),
                })
                .collect(),
            Some(v) => {
                Err(self.invalid(key, format!("expected a list of strings, got {}", kind(v))))
            }
        }
    }

    /// One of `options` by name (case-insensitive).
    fn choice<T: Copy>(
        &self,
        key: &str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, PipelineError> {
        let Some(v) = self.get(key) else {
            return Ok(default);
        };
        let names = || {
            options
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(s) = v.as_str() else {
            return Err(self.invalid(
                key,
                format!("expected one of: {}; got {}", names(), show(v)),
            ));
        };
        options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|&(_, t)| t)
            .ok_or_else(|| self.invalid(key, format!("expected one of: {}; got {s:?}", names())))
    }
}

#[cfg(test)]
mod tests;
