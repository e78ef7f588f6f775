//! The `Metric` contract (POT's `Metric`): updated sample by sample with the model's outputs,
//! read per sample (`value`) and over everything seen (`avg_value`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::data::{Annotation, SampleMetadata};
use crate::tensor::TensorMap;

/// What a metric knows about the sample whose outputs it is given.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    /// The sample's index in its loader (metrics comparing with a reference model key on it).
    pub index: usize,
    /// The expected answer.
    pub annotation: &'a Annotation,
    /// The sample's metadata.
    pub metadata: Option<&'a SampleMetadata>,
}

/// Whether larger values are better (POT's `direction` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Larger is better (accuracy, mAP).
    HigherBetter,
    /// Smaller is better (error, L2 distance).
    HigherWorse,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::HigherBetter => "higher-better",
            Direction::HigherWorse => "higher-worse",
        })
    }
}

/// POT's metric attributes: `direction` and `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricAttributes {
    /// Whether larger is better.
    pub direction: Direction,
    /// The kind of metric (`accuracy`, `map`, `agreement`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// An accuracy metric.
///
/// The engine calls [`update`](Metric::update) once per sample with that sample's outputs (batch
/// axis of 1). [`value`](Metric::value) is the last sample's value (used to rank samples and
/// layers); [`avg_value`](Metric::avg_value) the value over every sample since the last
/// [`reset`](Metric::reset) — for dataset-level metrics such as mAP, computed over all
/// accumulated detections rather than as a mean of per-sample values.
pub trait Metric: Send {
    /// The metric's name in reports (`top1`, `map50`, `agreement`).
    fn name(&self) -> &str;

    /// Takes one sample's outputs into account.
    fn update(&mut self, sample: SampleRef<'_>, outputs: &TensorMap) -> Result<(), MetricError>;

    /// The last sample's value, `None` before the first update.
    fn value(&self) -> Option<f64>;

    /// The value over every sample since the last reset, `None` before the first update.
    fn avg_value(&self) -> Option<f64>;

    /// Forgets every sample.
    fn reset(&mut self);

    /// Whether larger values are better.
    fn higher_better(&self) -> bool {
        true
    }

    /// POT's attributes: `direction` and `type`.
    fn attributes(&self) -> MetricAttributes {
        MetricAttributes {
            direction: if self.higher_better() {
                Direction::HigherBetter
            } else {
                Direction::HigherWorse
            },
            kind: self.name().to_owned(),
        }
    }
}

/// Why a metric could not use a sample.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// The model's outputs do not have the shape or type the metric needs.
    #[error("metric {metric}: output {output:?} {reason}")]
    Output {
        /// The metric.
        metric: String,
        /// The output name.
        output: String,
        /// What is wrong.
        reason: String,
    },
    /// The sample's annotation is not what the metric needs.
    #[error("metric {metric}: sample {index}: {reason}")]
    Annotation {
        /// The metric.
        metric: String,
        /// The sample index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A reference-based metric has no reference for this sample.
    #[error("metric {metric}: no reference outputs for sample {index}")]
    NoReference {
        /// The metric.
        metric: String,
        /// The sample index.
        index: usize,
    },
}
