//! `Agreement`: how closely a model's outputs follow a reference model's (FP32) outputs, for any
//! model — no labels needed.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::metric::{Metric, MetricError, SampleRef};
use crate::metrics::{float_output, reference_output};
use crate::tensor::TensorMap;

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementKind {
    /// Share of rows (every position of the leading axes) whose argmax over the last axis equals
    /// the reference's. Higher is better.
    Top1,
    /// Cosine similarity of the flattened outputs; over the dataset, of everything concatenated
    /// (accumulated dot products and norms, the harness's `cosine_global`). 1 when both are all
    /// zeros. Higher is better.
    Cosine,
    /// `||out - ref|| / ||ref||`; over the dataset, of everything concatenated (the harness's
    /// `rel_l2_global`). 0 when both are all zeros, infinite when only the reference is. Lower is
    /// better.
    RelativeL2,
}

impl AgreementKind {
    fn name(self) -> &'static str {
        match self {
            AgreementKind::Top1 => "top1_agreement",
            AgreementKind::Cosine => "cosine",
            AgreementKind::RelativeL2 => "relative_l2",
        }
    }
}

/// Running sums: agreeing/total rows for top-1; dot, |a|², |b|², |a-b|² for the others.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sums {
    agree: usize,
    rows: usize,
    dot: f64,
    aa: f64,
    bb: f64,
    dd: f64,
}

impl Sums {
    fn add(&mut self, other: Sums) {
        self.agree += other.agree;
        self.rows += other.rows;
        self.dot += other.dot;
        self.aa += other.aa;
        self.bb += other.bb;
        self.dd += other.dd;
    }

    fn value(&self, kind: AgreementKind) -> f64 {
        match kind {
            AgreementKind::Top1 => {
                if self.rows == 0 {
                    1.0
                } else {
                    self.agree as f64 / self.rows as f64
                }
            }
            AgreementKind::Cosine => match (self.aa == 0.0, self.bb == 0.0) {
                (true, true) => 1.0,
                (true, false) | (false, true) => 0.0,
                (false, false) => self.dot / (self.aa.sqrt() * self.bb.sqrt()),
            },
            AgreementKind::RelativeL2 => {
                if self.bb == 0.0 {
                    if self.dd == 0.0 { 0.0 } else { f64::INFINITY }
                } else {
                    (self.dd / self.bb).sqrt()
                }
            }
        }
    }
}

/// Agreement of one output with a reference model's outputs for the same sample, keyed by the
/// sample index (see [`AgreementKind`]).
#[derive(Debug, Clone)]
pub struct Agreement {
    kind: AgreementKind,
    output: Option<String>,
    reference: Arc<BTreeMap<usize, TensorMap>>,
    total: Sums,
    last: Option<f64>,
    updates: usize,
}

impl Agreement {
    /// Compares the first output with `reference` (FP32 outputs by sample index).
    pub fn new(kind: AgreementKind, reference: Arc<BTreeMap<usize, TensorMap>>) -> Agreement {
        Agreement {
            kind,
            output: None,
            reference,
            total: Sums::default(),
            last: None,
            updates: 0,
        }
    }

    /// Compares the output called `name` instead of the first.
    pub fn with_output(mut self, name: impl Into<String>) -> Agreement {
        self.output = Some(name.into());
        self
    }

    /// What is compared.
    pub fn kind(&self) -> AgreementKind {
        self.kind
    }
}

fn sums(kind: AgreementKind, a: &ArrayD<f32>, b: &ArrayD<f32>) -> Sums {
    let mut s = Sums::default();
    match kind {
        AgreementKind::Top1 => {
            let n = a.shape().last().copied().unwrap_or(1).max(1);
            let a: Vec<f32> = a.iter().copied().collect();
            let b: Vec<f32> = b.iter().copied().collect();
            for (ra, rb) in a.chunks(n).zip(b.chunks(n)) {
                s.rows += 1;
                s.agree += usize::from(argmax(ra) == argmax(rb));
            }
        }
        AgreementKind::Cosine | AgreementKind::RelativeL2 => {
            for (&x, &y) in a.iter().zip(b.iter()) {
                let (x, y) = (f64::from(x), f64::from(y));
                s.dot += x * y;
                s.aa += x * x;
                s.bb += y * y;
                s.dd += (x - y) * (x - y);
            }
        }
    }
    s
}

/// numpy `argmax`: the first maximum, a NaN counting as the maximum.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        let b = v[best];
        if b.is_nan() {
            break;
        }
        if x > b || x.is_nan() {
            best = i;
        }
    }
    best
}

impl Metric for Agreement {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn update(&mut self, sample: SampleRef<'_>, outputs: &TensorMap) -> Result<(), MetricError> {
        let metric = self.kind.name();
        let (name, actual) = float_output(metric, outputs, self.output.as_deref())?;
        let expected = reference_output(metric, &self.reference, sample.index, name)?;
        if actual.shape() != expected.shape() {
            return Err(MetricError::Output {
                metric: metric.to_owned(),
                output: name.to_owned(),
                reason: format!(
                    "has shape {:?} but the reference's is {:?}",
                    actual.shape(),
                    expected.shape()
                ),
            });
        }
        let s = sums(self.kind, actual, expected);
        self.last = Some(s.value(self.kind));
        self.total.add(s);
        self.updates += 1;
        Ok(())
    }

    fn value(&self) -> Option<f64> {
        self.last
    }

    fn avg_value(&self) -> Option<f64> {
        (self.updates > 0).then(|| self.total.value(self.kind))
    }

    fn reset(&mut self) {
        self.total = Sums::default();
        self.last = None;
        self.updates = 0;
    }

    fn higher_better(&self) -> bool {
        self.kind != AgreementKind::RelativeL2
    }
}
