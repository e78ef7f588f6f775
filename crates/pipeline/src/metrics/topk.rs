//! `TopK`: classification accuracy against [`Annotation::Class`] labels.

use crate::data::Annotation;
use crate::metric::{Metric, MetricError, SampleRef};
use crate::metrics::float_output;
use crate::tensor::TensorMap;

/// Top-k accuracy: a sample is right when its label is among the `k` highest scores. Works on
/// logits or probabilities alike (only the order matters). Ties rank by index, so top-1 is
/// numpy's `argmax`; a NaN score for the label is wrong.
///
/// The output (named, or the model's first) must hold one score per class for one sample:
/// `[C]`, `[1, C]` or `[1, C, 1, 1]`.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    output: Option<String>,
    name: String,
    correct: usize,
    total: usize,
    last: Option<bool>,
}

impl TopK {
    /// Top-`k` accuracy on the first output (`k` of 0 counts as 1).
    pub fn new(k: usize) -> TopK {
        let k = k.max(1);
        TopK {
            k,
            output: None,
            name: format!("top{k}"),
            correct: 0,
            total: 0,
            last: None,
        }
    }

    /// Top-1 accuracy on the first output.
    pub fn top1() -> TopK {
        TopK::new(1)
    }

    /// Reads the output called `name` instead of the first.
    pub fn with_output(mut self, name: impl Into<String>) -> TopK {
        self.output = Some(name.into());
        self
    }

    /// `k`.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// The label's rank among `scores` (0 = best), ties broken by index; `None` for a NaN label score.
fn rank(scores: &[f32], label: usize) -> Option<usize> {
    let s = scores[label];
    if s.is_nan() {
        return None;
    }
    Some(
        scores
            .iter()
            .enumerate()
            .filter(|&(j, &v)| v > s || (v == s && j < label))
            .count(),
    )
}

impl Metric for TopK {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, sample: SampleRef<'_>, outputs: &TensorMap) -> Result<(), MetricError> {
        let (output, array) = float_output(&self.name, outputs, self.output.as_deref())?;
        let shape = array.shape();
        let batch_ok = shape.len() == 1 || shape.first() == Some(&1);
        let classes = shape
            .iter()
            .skip(usize::from(shape.len() > 1))
            .filter(|&&d| d != 1)
            .count();
        if array.is_empty() || !batch_ok || classes > 1 {
            return Err(MetricError::Output {
                metric: self.name.clone(),
                output: output.to_owned(),
                reason: format!("has shape {shape:?}, not one sample's class scores [1, C]"),
            });
        }
        let Annotation::Class(label) = *sample.annotation else {
            return Err(MetricError::Annotation {
                metric: self.name.clone(),
                index: sample.index,
                reason: format!("needs a class label, got {:?}", sample.annotation),
            });
        };
        let scores: Vec<f32> = array.iter().copied().collect();
        if label >= scores.len() {
            return Err(MetricError::Annotation {
                metric: self.name.clone(),
                index: sample.index,
                reason: format!(
                    "class {label} but output {output:?} scores {} classes",
                    scores.len()
                ),
            });
        }
        let right = rank(&scores, label).is_some_and(|r| r < self.k);
        self.correct += usize::from(right);
        self.total += 1;
        self.last = Some(right);
        Ok(())
    }

    fn value(&self) -> Option<f64> {
        self.last.map(|r| if r { 1.0 } else { 0.0 })
    }

    fn avg_value(&self) -> Option<f64> {
        (self.total > 0).then(|| self.correct as f64 / self.total as f64)
    }

    fn reset(&mut self) {
        self.correct = 0;
        self.total = 0;
        self.last = None;
    }
}
