//! How well a model does: one headline score plus any named metrics (OTX `Performance`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A named scalar, e.g. `accuracy = 0.91` (OTX `ScoreMetric`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreMetric {
    /// What is measured, e.g. `"top-1 accuracy"`.
    pub name: String,
    /// The measured value.
    pub value: f64,
}

impl ScoreMetric {
    /// A metric called `name` with `value`.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self {
            name: name.into(),
            value,
        }
    }
}

/// The performance of a model: the score models are ranked by, plus named metrics shown beside it
/// (OTX's dashboard metrics), e.g. `{"top-5 accuracy": 0.98, "mAP@0.5": 0.61}`.
///
/// Equality compares the score and every metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// The headline score.
    pub score: ScoreMetric,
    /// Further metrics by name.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl Performance {
    /// A performance with a score called `name` and no further metrics.
    pub fn new(name: impl Into<String>, value: f64) -> Self {
        Self {
            score: ScoreMetric::new(name, value),
            metrics: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the metric `name`.
    #[must_use]
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.insert(name.into(), value);
        self
    }
}
