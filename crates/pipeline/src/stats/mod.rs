//! Streaming statistics of model tensors, for calibration: what to collect ([`StatsLayout`]), the
//! reducers that collect it batch by batch, and the serializable result ([`Statistics`]).
//!
//! # Shape of the work
//!
//! An engine runs the calibration subset with the layout's tensors exposed as extra outputs
//! ([`add_stat_outputs`]); a [`StatsCollector`] takes each batch as it arrives
//! ([`StatsCollector::update_from`]) and forgets it. Memory is O(tensors × bins), never
//! O(samples): every reducer holds a fixed number of counters (per-channel ones, one per
//! channel). NaN and ±inf are counted ([`NonFinite`]) and skipped, so one bad value cannot poison a
//! range.
//!
//! Batches carry the batch on axis 0. Per-sample statistics ([`StatKind::MeanMin`],
//! [`StatKind::MeanMax`]) split it there, so results do not depend on the batch size.
//!
//! # Speed
//!
//! One fused pass per tensor and batch computes min, max and the non-finite count (lane loops the
//! compiler vectorizes); histograms reuse that range, then bin with a precomputed multiply into
//! four interleaved sub-histograms. See `benches/stats.rs`.
//!
//! # Caching
//!
//! [`Statistics`] are plain serde data; [`StatsCache`] keeps them on disk under a [`StatsKey`]
//! derived from the model, the data and the layout.

#![warn(missing_docs)]

mod cache;
mod histogram;
pub(crate) mod in_graph;
mod reducers;
mod scan;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use kiln_onnx::graph::{AddOutputsOptions, AddedOutputs, add_outputs};
use kiln_onnx::proto::GraphProto;
use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use crate::error::PipelineError;
use crate::tensor::{Tensor, TensorMap};

pub use cache::{StatsCache, StatsKey, data_fingerprint, fingerprint};
pub use histogram::{DEFAULT_BINS, Histogram, HistogramReducer, MAX_BINS, MseOptions};
pub use in_graph::{InGraphStats, add_stat_reductions};
pub use reducers::{
    ChannelMeanReducer, MeanMinMaxReducer, MinMaxReducer, PerChannelReducer, Reducer,
};
pub use scan::NonFinite;

use reducers::standard;

/// A statistic of one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatKind {
    /// Smallest finite value.
    Min,
    /// Largest finite value.
    Max,
    /// Mean over samples of each sample's minimum (POT's default activation estimator).
    MeanMin,
    /// Mean over samples of each sample's maximum.
    MeanMax,
    /// A histogram of `bins` bins (even), for quantiles and MSE-optimal ranges.
    Histogram {
        /// Number of bins.
        bins: usize,
    },
    /// Minimum per channel along `axis`.
    PerChannelMin {
        /// The channel axis (1 for NCHW).
        axis: usize,
    },
    /// Maximum per channel along `axis`.
    PerChannelMax {
        /// The channel axis.
        axis: usize,
    },
    /// Mean per channel along `axis` (bias correction).
    Mean {
        /// The channel axis.
        axis: usize,
    },
}

impl fmt::Display for StatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatKind::Min => f.write_str("min"),
            StatKind::Max => f.write_str("max"),
            StatKind::MeanMin => f.write_str("mean_min"),
            StatKind::MeanMax => f.write_str("mean_max"),
            StatKind::Histogram { bins } => write!(f, "histogram({bins})"),
            StatKind::PerChannelMin { axis } => write!(f, "per_channel_min(axis {axis})"),
            StatKind::PerChannelMax { axis } => write!(f, "per_channel_max(axis {axis})"),
            StatKind::Mean { axis } => write!(f, "mean(axis {axis})"),
        }
    }
}

/// What to collect: tensor name -> statistics (POT's `stats_layout`). Serialized as a map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatsLayout {
    tensors: BTreeMap<String, Vec<StatKind>>,
}

impl StatsLayout {
    /// An empty layout.
    pub fn new() -> StatsLayout {
        StatsLayout::default()
    }

    /// Asks for `kind` on `tensor` (once: repeats are ignored).
    pub fn add(&mut self, tensor: impl Into<String>, kind: StatKind) -> &mut StatsLayout {
        let kinds = self.tensors.entry(tensor.into()).or_default();
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
        self
    }

    /// Builder form of [`add`](Self::add) for several kinds.
    pub fn with(
        mut self,
        tensor: impl Into<String>,
        kinds: impl IntoIterator<Item = StatKind>,
    ) -> StatsLayout {
        let tensor = tensor.into();
        for kind in kinds {
            self.add(tensor.clone(), kind);
        }
        self
    }

    /// Adds everything `other` asks for.
    pub fn merge(&mut self, other: &StatsLayout) {
        for (tensor, kinds) in &other.tensors {
            for &kind in kinds {
                self.add(tensor.clone(), kind);
            }
        }
    }

    /// The statistics asked for on `tensor` (empty if none).
    pub fn kinds(&self, tensor: &str) -> &[StatKind] {
        self.tensors.get(tensor).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `tensor` is in the layout.
    pub fn contains(&self, tensor: &str) -> bool {
        self.tensors.contains_key(tensor)
    }

    /// Tensor names, sorted.
    pub fn tensors(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// `(tensor, statistics)`, sorted by tensor.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[StatKind])> {
        self.tensors.iter().map(|(t, k)| (t.as_str(), k.as_slice()))
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether no tensor is asked for.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Checks every statistic's parameters (histogram bins even, 2 to [`MAX_BINS`]).
    pub fn validate(&self) -> Result<(), PipelineError> {
        for (tensor, kinds) in &self.tensors {
            TensorReducer::new(kinds).map_err(PipelineError::stats(tensor))?;
        }
        Ok(())
    }
}

/// Per-channel values with the number of finite values behind each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channels {
    /// One value per channel (0 where the channel had no finite value).
    pub values: Vec<f32>,
    /// Finite values per channel.
    pub counts: Vec<u64>,
}

/// The value of one statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StatValue {
    /// A number (min, max, mean min, mean max).
    Scalar(f32),
    /// Per-channel values.
    Channels(Channels),
    /// A histogram.
    Histogram(Histogram),
}

/// One collected statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// What it is.
    #[serde(flatten)]
    pub kind: StatKind,
    /// Its value.
    pub value: StatValue,
}

/// The statistics of one tensor. Statistics that are undefined (a min without any finite value)
/// are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TensorStats {
    /// Samples seen (items along axis 0).
    pub samples: u64,
    /// Finite values seen.
    pub finite: u64,
    /// Non-finite values skipped.
    pub nonfinite: NonFinite,
    /// The statistics, in layout order.
    pub stats: Vec<Stat>,
}

impl TensorStats {
    /// The value of `kind`, if collected and defined.
    pub fn get(&self, kind: &StatKind) -> Option<&StatValue> {
        self.stats
            .iter()
            .find(|s| s.kind == *kind)
            .map(|s| &s.value)
    }

    fn scalar(&self, kind: StatKind) -> Option<f32> {
        match self.get(&kind)? {
            StatValue::Scalar(v) => Some(*v),
            _ => None,
        }
    }

    fn channels(&self, kind: StatKind) -> Option<&Channels> {
        match self.get(&kind)? {
            StatValue::Channels(c) => Some(c),
            _ => None,
        }
    }

    /// [`StatKind::Min`].
    pub fn min(&self) -> Option<f32> {
        self.scalar(StatKind::Min)
    }

    /// [`StatKind::Max`].
    pub fn max(&self) -> Option<f32> {
        self.scalar(StatKind::Max)
    }

    /// [`StatKind::MeanMin`].
    pub fn mean_min(&self) -> Option<f32> {
        self.scalar(StatKind::MeanMin)
    }

    /// [`StatKind::MeanMax`].
    pub fn mean_max(&self) -> Option<f32> {
        self.scalar(StatKind::MeanMax)
    }

    /// The first histogram collected, whatever its bins.
    pub fn histogram(&self) -> Option<&Histogram> {
        self.stats.iter().find_map(|s| match &s.value {
            StatValue::Histogram(h) => Some(h),
            _ => None,
        })
    }

    /// [`StatKind::PerChannelMin`] along `axis`.
    pub fn per_channel_min(&self, axis: usize) -> Option<&Channels> {
        self.channels(StatKind::PerChannelMin { axis })
    }

    /// [`StatKind::PerChannelMax`] along `axis`.
    pub fn per_channel_max(&self, axis: usize) -> Option<&Channels> {
        self.channels(StatKind::PerChannelMax { axis })
    }

    /// [`StatKind::Mean`] along `axis`.
    pub fn mean(&self, axis: usize) -> Option<&Channels> {
        self.channels(StatKind::Mean { axis })
    }
}

/// Collected statistics: tensor name -> its statistics. Serialized as a map.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Statistics {
    /// By tensor name.
    pub tensors: BTreeMap<String, TensorStats>,
}

impl Statistics {
    /// The statistics of `tensor`.
    pub fn get(&self, tensor: &str) -> Option<&TensorStats> {
        self.tensors.get(tensor)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// `(tensor, statistics)`, sorted by tensor.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &TensorStats)> {
        self.tensors.iter().map(|(t, s)| (t.as_str(), s))
    }
}

/// Why statistics of a tensor could not be collected. [`PipelineError::Stats`] adds the tensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A histogram's bin count is odd, below 2 or above [`MAX_BINS`].
    #[error("histogram bins must be even and between 2 and {MAX_BINS}, got {bins}")]
    Bins {
        /// The bins asked for.
        bins: usize,
    },
    /// A per-channel axis does not exist in the tensor.
    #[error("axis {axis} is out of range for a tensor of {ndim} dimensions")]
    Axis {
        /// The axis.
        axis: usize,
        /// The tensor's dimensions.
        ndim: usize,
    },
    /// The channel count changed between batches.
    #[error("axis {axis} had {expected} channels in earlier batches, {got} now")]
    Channels {
        /// The axis.
        axis: usize,
        /// Channels in earlier batches.
        expected: usize,
        /// Channels in this batch.
        got: usize,
    },
    /// A per-sample statistic was asked of a scalar.
    #[error("{what} needs a batch axis; the tensor is a scalar")]
    NoBatchAxis {
        /// The statistic.
        what: &'static str,
    },
    /// The tensor is not in the collector's layout.
    #[error("not in the statistics layout")]
    NotInLayout,
    /// The tensor is in the layout but not among the engine's outputs.
    #[error("not among the model's outputs or inputs")]
    Missing,
    /// The tensor is not float32.
    #[error("is {elem_type}; statistics need float32")]
    NotFloat {
        /// Its element type.
        elem_type: &'static str,
    },
}

/// All the statistics of one tensor, updated in one fused pass per batch.
#[derive(Debug, Clone)]
pub struct TensorReducer {
    kinds: Vec<StatKind>,
    samples: u64,
    scan: scan::Scan,
    nonfinite: NonFinite,
    mean_min_max: Option<MeanMinMaxReducer>,
    histograms: Vec<(usize, HistogramReducer)>,
    per_channel: Vec<PerChannelReducer>,
    means: Vec<ChannelMeanReducer>,
}

impl TensorReducer {
    /// A reducer for `kinds`.
    pub fn new(kinds: &[StatKind]) -> Result<TensorReducer, StatsError> {
        let mut r = TensorReducer {
            kinds: Vec::new(),
            samples: 0,
            scan: scan::Scan::EMPTY,
            nonfinite: NonFinite::default(),
            mean_min_max: None,
            histograms: Vec::new(),
            per_channel: Vec::new(),
            means: Vec::new(),
        };
        for &kind in kinds {
            if r.kinds.contains(&kind) {
                continue;
            }
            r.kinds.push(kind);
            match kind {
                StatKind::Min | StatKind::Max => {}
                StatKind::MeanMin | StatKind::MeanMax => {
                    r.mean_min_max.get_or_insert_with(MeanMinMaxReducer::new);
                }
                StatKind::Histogram { bins } => {
                    if !r.histograms.iter().any(|(b, _)| *b == bins) {
                        r.histograms.push((bins, HistogramReducer::new(bins)?));
                    }
                }
                StatKind::PerChannelMin { axis } | StatKind::PerChannelMax { axis } => {
                    if !r.per_channel.iter().any(|p| p.axis() == axis) {
                        r.per_channel.push(PerChannelReducer::new(axis));
                    }
                }
                StatKind::Mean { axis } => {
                    if !r.means.iter().any(|m| m.axis() == axis) {
                        r.means.push(ChannelMeanReducer::new(axis));
                    }
                }
            }
        }
        Ok(r)
    }

    /// The statistics collected.
    pub fn kinds(&self) -> &[StatKind] {
        &self.kinds
    }

    /// Takes one batch (batch on axis 0) into account.
    pub fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let shape = batch.shape();
        // Check every per-channel reducer before changing anything, so an error leaves the
        // reducer as it was.
        for p in &self.per_channel {
            p.check(shape)?;
        }
        for m in &self.means {
            m.check(shape)?;
        }
        if self.mean_min_max.is_some() && shape.is_empty() {
            return Err(StatsError::NoBatchAxis {
                what: "a per-sample statistic",
            });
        }
        let data = standard(&batch);
        let s = match &mut self.mean_min_max {
            Some(mm) => mm.update_standard(&data, shape)?,
            None => scan::scan(&data),
        };
        for p in &mut self.per_channel {
            p.update_standard(&data, shape)?;
        }
        for m in &mut self.means {
            m.update_standard(&data, shape)?;
        }
        if s.nonfinite > 0 {
            self.nonfinite.merge(&NonFinite::count(&data));
        }
        for (_, h) in &mut self.histograms {
            h.update_scanned_uncounted(&data, &s);
        }
        self.scan.merge(&s);
        self.samples += shape.first().map_or(1, |&b| b as u64);
        Ok(())
    }

    /// The statistics so far.
    pub fn finish(&self) -> TensorStats {
        let stats = self
            .kinds
            .iter()
            .filter_map(|&kind| {
                let value = match kind {
                    StatKind::Min => StatValue::Scalar(self.scan.range()?.0),
                    StatKind::Max => StatValue::Scalar(self.scan.range()?.1),
                    StatKind::MeanMin => StatValue::Scalar(self.mean_min_max.as_ref()?.mean_min()?),
                    StatKind::MeanMax => StatValue::Scalar(self.mean_min_max.as_ref()?.mean_max()?),
                    StatKind::Histogram { bins } => StatValue::Histogram(
                        self.histograms
                            .iter()
                            .find(|(b, _)| *b == bins)?
                            .1
                            .histogram()
                            .clone(),
                    ),
                    StatKind::PerChannelMin { axis } | StatKind::PerChannelMax { axis } => {
                        let p = self.per_channel.iter().find(|p| p.axis() == axis)?;
                        let values = if matches!(kind, StatKind::PerChannelMin { .. }) {
                            p.min()
                        } else {
                            p.max()
                        };
                        StatValue::Channels(Channels {
                            values,
                            counts: p.counts().to_vec(),
                        })
                    }
                    StatKind::Mean { axis } => {
                        let m = self.means.iter().find(|m| m.axis() == axis)?;
                        StatValue::Channels(Channels {
                            values: m.mean(),
                            counts: m.counts().to_vec(),
                        })
                    }
                };
                Some(Stat { kind, value })
            })
            .collect();
        TensorStats {
            samples: self.samples,
            finite: self.scan.finite,
            nonfinite: self.nonfinite,
            stats,
        }
    }

    /// Bytes held (inline and heap): constant in the number of batches.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.kinds.capacity() * std::mem::size_of::<StatKind>()
            + self.mean_min_max.as_ref().map_or(0, Reducer::memory_bytes)
            + self
                .histograms
                .iter()
                .map(|(_, h)| h.memory_bytes())
                .sum::<usize>()
            + self
                .per_channel
                .iter()
                .map(Reducer::memory_bytes)
                .sum::<usize>()
            + self.means.iter().map(Reducer::memory_bytes).sum::<usize>()
    }
}

impl Reducer for TensorReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        TensorReducer::update(self, batch)
    }

    fn memory_bytes(&self) -> usize {
        TensorReducer::memory_bytes(self)
    }
}

/// Collects a [`StatsLayout`]'s statistics batch by batch.
#[derive(Debug, Clone)]
pub struct StatsCollector {
    reducers: BTreeMap<String, TensorReducer>,
}

impl StatsCollector {
    /// A collector for `layout` (checked: see [`StatsLayout::validate`]).
    pub fn new(layout: &StatsLayout) -> Result<StatsCollector, PipelineError> {
        let reducers = layout
            .iter()
            .map(|(tensor, kinds)| {
                let r = TensorReducer::new(kinds).map_err(PipelineError::stats(tensor))?;
                Ok((tensor.to_owned(), r))
            })
            .collect::<Result<_, PipelineError>>()?;
        Ok(StatsCollector { reducers })
    }

    /// Tensors collected, sorted.
    pub fn tensors(&self) -> impl Iterator<Item = &str> {
        self.reducers.keys().map(String::as_str)
    }

    /// Takes one batch of `tensor` into account.
    pub fn update(
        &mut self,
        tensor: &str,
        batch: ArrayViewD<'_, f32>,
    ) -> Result<(), PipelineError> {
        let reducer = self
            .reducers
            .get_mut(tensor)
            .ok_or_else(|| PipelineError::stats(tensor)(StatsError::NotInLayout))?;
        reducer.update(batch).map_err(PipelineError::stats(tensor))
    }

    /// [`update`](Self::update) with a [`Tensor`], which must be float32.
    pub fn update_tensor(&mut self, name: &str, tensor: &Tensor) -> Result<(), PipelineError> {
        match tensor {
            Tensor::F32(a) => self.update(name, a.view()),
            other => Err(PipelineError::stats(name)(StatsError::NotFloat {
                elem_type: other.elem_type(),
            })),
        }
    }

    /// Updates every tensor of the layout from the first of `sources` that has it (the engine's
    /// statistic outputs, then the model outputs, then the batch inputs). A tensor found nowhere
    /// is [`StatsError::Missing`]; every tensor is found and type-checked before any is updated.
    pub fn update_from(&mut self, sources: &[&TensorMap]) -> Result<(), PipelineError> {
        let mut found = Vec::with_capacity(self.reducers.len());
        for name in self.reducers.keys() {
            let tensor = sources
                .iter()
                .find_map(|m| m.get(name))
                .ok_or_else(|| PipelineError::stats(name)(StatsError::Missing))?;
            match tensor {
                Tensor::F32(a) => found.push(a),
                other => {
                    return Err(PipelineError::stats(name)(StatsError::NotFloat {
                        elem_type: other.elem_type(),
                    }));
                }
            }
        }
        for ((name, reducer), array) in self.reducers.iter_mut().zip(found) {
            reducer
                .update(array.view())
                .map_err(PipelineError::stats(name))?;
        }
        Ok(())
    }

    /// The statistics so far.
    pub fn finish(&self) -> Statistics {
        Statistics {
            tensors: self
                .reducers
                .iter()
                .map(|(name, r)| (name.clone(), r.finish()))
                .collect(),
        }
    }

    /// Bytes held: constant in the number of batches.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .reducers
                .iter()
                .map(|(name, r)| name.capacity() + r.memory_bytes())
                .sum::<usize>()
    }
}

/// Exposes the layout's tensors as graph outputs (typed, via kiln-onnx's `add_outputs`) so an
/// engine can read them. Graph inputs are skipped: the engine has them already (see
/// [`StatsCollector::update_from`]). Outputs are appended after the model's own, so the model's
/// outputs keep their positions.
pub fn add_stat_outputs(
    graph: &mut GraphProto,
    layout: &StatsLayout,
) -> Result<AddedOutputs, PipelineError> {
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    let wanted: Vec<String> = layout
        .tensors()
        .filter(|t| !inputs.contains(t))
        .map(str::to_owned)
        .collect();
    Ok(add_outputs(graph, &wanted, &AddOutputsOptions::default())?)
}
