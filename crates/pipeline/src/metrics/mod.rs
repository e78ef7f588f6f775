//! Ready-made [`Metric`](crate::Metric)s: classification accuracy, YOLOv8 mAP@0.5, and agreement
//! with a reference (FP32) model.
//!
//! | metric | name | needs | direction |
//! |---|---|---|---|
//! | [`TopK`] | `top1`, `top5`, ... | [`Annotation::Class`](crate::Annotation::Class) labels | higher better |
//! | [`MeanAp50`] | `map50` | [`Annotation::Boxes`](crate::Annotation::Boxes), or a reference model's outputs | higher better |
//! | [`Agreement`] | `top1_agreement`, `cosine`, `relative_l2` | a reference model's outputs | higher better, except `relative_l2` |
//!
//! Reference-based metrics take the reference outputs as `Arc<BTreeMap<usize, TensorMap>>`, keyed
//! by sample index ([`SampleRef::index`](crate::SampleRef::index)); a missing entry is
//! [`MetricError::NoReference`]. Raw-output agreement can hide a broken detector (0.998 cosine at
//! mAP 0.05 on YOLOv8n): judge detectors by [`MeanAp50`].
//!
//! [`yolo`] decodes YOLOv8 outputs and [`detection`] scores detections (IoU, AP, F1), both usable
//! on their own.

pub mod detection;
pub mod yolo;

mod agreement;
mod map;
mod topk;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use ndarray::ArrayD;

pub use agreement::{Agreement, AgreementKind};
pub use detection::{Detection, ImageDetections, MatchCounts};
pub use map::{MapOptions, MeanAp50};
pub use topk::TopK;

use crate::metric::MetricError;
use crate::tensor::TensorMap;

/// The float output called `name`, or the first output.
pub(crate) fn float_output<'a>(
    metric: &str,
    outputs: &'a TensorMap,
    name: Option<&str>,
) -> Result<(&'a str, &'a ArrayD<f32>), MetricError> {
    let error = |output: &str, reason: String| MetricError::Output {
        metric: metric.to_owned(),
        output: output.to_owned(),
        reason,
    };
    let (name, tensor) = match name {
        Some(name) => outputs.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            error(
                name,
                format!(
                    "is not among the outputs ({})",
                    outputs.names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
        None => outputs
            .first()
            .ok_or_else(|| error("<first>", "is missing: the model gave no outputs".into()))?,
    };
    let array = tensor.as_f32().ok_or_else(|| {
        error(
            name,
            format!("is {} but the metric needs float32", tensor.elem_type()),
        )
    })?;
    Ok((name, array))
}

/// The reference's float output `name` for sample `index`.
pub(crate) fn reference_output<'a>(
    metric: &str,
    reference: &'a BTreeMap<usize, TensorMap>,
    index: usize,
    name: &str,
) -> Result<&'a ArrayD<f32>, MetricError> {
    let outputs = reference
        .get(&index)
        .ok_or_else(|| MetricError::NoReference {
            metric: metric.to_owned(),
            index,
        })?;
    let tensor = outputs.get(name).ok_or_else(|| MetricError::Output {
        metric: metric.to_owned(),
        output: name.to_owned(),
        reason: format!(
            "is not among the reference outputs of sample {index} ({})",
            outputs.names().collect::<Vec<_>>().join(", ")
        ),
    })?;
    tensor.as_f32().ok_or_else(|| MetricError::Output {
        metric: metric.to_owned(),
        output: name.to_owned(),
        reason: format!(
            "is {} in the reference but the metric needs float32",
            tensor.elem_type()
        ),
    })
}
