//! `MeanAp50`: mAP@0.5 of a YOLOv8 detector, against labelled boxes or a reference model's
//! detections.
//!
//! As in the peer harness: predictions are decoded at confidence 0.001 (so the precision/recall
//! curve is complete), the reference model's detections — the "ground truth" when there are no
//! labels — at 0.25; both with class-wise NMS at IoU 0.45 and at most 300 boxes. AP is VOC
//! all-point interpolated at IoU 0.5, per class with ground truth, averaged over those classes
//! (see [`ap_per_class`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::Annotation;
use crate::metric::{Metric, MetricError, SampleRef};
use crate::metrics::detection::{ImageDetections, MatchCounts, ap_per_class, match_counts};
use crate::metrics::yolo::{DecodeOptions, decode};
use crate::metrics::{float_output, reference_output};
use crate::tensor::TensorMap;

/// Thresholds of [`MeanAp50`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapOptions {
    /// Confidence threshold for the evaluated model's detections in the AP (0.001).
    pub pred_conf: f32,
    /// Confidence threshold for the reference model's detections (the ground truth without
    /// labels) and for the per-sample F1 (0.25).
    pub truth_conf: f32,
    /// NMS IoU threshold (0.45).
    pub nms_iou: f32,
    /// Most detections per image (300).
    pub max_detections: usize,
    /// IoU for a detection to match a box (0.5).
    pub match_iou: f32,
}

impl Default for MapOptions {
    fn default() -> MapOptions {
        MapOptions {
            pred_conf: 0.001,
            truth_conf: 0.25,
            nms_iou: 0.45,
            max_detections: 300,
            match_iou: 0.5,
        }
    }
}

impl MapOptions {
    fn decode_options(&self, conf_threshold: f32) -> DecodeOptions {
        DecodeOptions {
            conf_threshold,
            iou_threshold: self.nms_iou,
            max_detections: self.max_detections,
        }
    }
}

/// mAP@0.5 of YOLOv8 outputs (`[1, 4+C, A]`), accumulated over samples.
///
/// * [`value`](Metric::value): the last sample's F1 at IoU 0.5 of its detections at
///   `truth_conf` against its ground truth (1 when both are empty) — AP is not defined per image
///   without ground truth, F1 always is;
/// * [`avg_value`](Metric::avg_value): the dataset mAP@0.5, `None` while no sample has a
///   ground-truth box (the harness reports no value either).
#[derive(Debug, Clone)]
pub struct MeanAp50 {
    output: Option<String>,
    reference: Option<Arc<BTreeMap<usize, TensorMap>>>,
    options: MapOptions,
    images: Vec<ImageDetections>,
    counts: MatchCounts,
    last: Option<f64>,
}

impl Default for MeanAp50 {
    fn default() -> MeanAp50 {
        MeanAp50::new()
    }
}

impl MeanAp50 {
    /// Against [`Annotation::Boxes`] labels (model-input pixels).
    pub fn new() -> MeanAp50 {
        MeanAp50 {
            output: None,
            reference: None,
            options: MapOptions::default(),
            images: Vec::new(),
            counts: MatchCounts::default(),
            last: None,
        }
    }

    /// Against a reference model's detections: `reference` holds its outputs by sample index.
    /// Labels, if any, are ignored.
    pub fn against_reference(reference: Arc<BTreeMap<usize, TensorMap>>) -> MeanAp50 {
        MeanAp50 {
            reference: Some(reference),
            ..MeanAp50::new()
        }
    }

    /// Reads the output called `name` (in the reference too) instead of the first.
    pub fn with_output(mut self, name: impl Into<String>) -> MeanAp50 {
        self.output = Some(name.into());
        self
    }

    /// Other thresholds.
    pub fn with_options(mut self, options: MapOptions) -> MeanAp50 {
        self.options = options;
        self
    }

    /// AP@0.5 per class with ground truth, over every sample since the last reset.
    pub fn per_class(&self) -> BTreeMap<usize, f64> {
        ap_per_class(&self.images, self.options.match_iou)
    }

    /// Dataset F1 of detections at `truth_conf` (the harness's `f1_at_conf0.25_iou0.5`), `None`
    /// before the first update.
    pub fn f1(&self) -> Option<f64> {
        (!self.images.is_empty()).then(|| self.counts.f1())
    }

    /// Every sample's ground truth and detections (at `pred_conf`), in update order.
    pub fn images(&self) -> &[ImageDetections] {
        &self.images
    }
}

impl Metric for MeanAp50 {
    fn name(&self) -> &str {
        "map50"
    }

    fn update(&mut self, sample: SampleRef<'_>, outputs: &TensorMap) -> Result<(), MetricError> {
        let metric = self.name().to_owned();
        let (name, output) = float_output(&metric, outputs, self.output.as_deref())?;
        let detections = decode(
            output.view(),
            &self.options.decode_options(self.options.pred_conf),
        )
        .map_err(|e| MetricError::Output {
            metric: metric.clone(),
            output: name.to_owned(),
            reason: e.to_string(),
        })?;
        let truth = match &self.reference {
            Some(reference) => {
                let expected = reference_output(&metric, reference, sample.index, name)?;
                decode(
                    expected.view(),
                    &self.options.decode_options(self.options.truth_conf),
                )
                .map_err(|e| MetricError::Output {
                    metric: metric.clone(),
                    output: name.to_owned(),
                    reason: format!("(reference) {e}"),
                })?
                .iter()
                .map(|d| d.to_box())
                .collect()
            }
            None => match sample.annotation {
                Annotation::Boxes(boxes) => boxes.clone(),
                other => {
                    return Err(MetricError::Annotation {
                        metric,
                        index: sample.index,
                        reason: format!(
                            "needs ground-truth boxes (or a reference model), got {other:?}"
                        ),
                    });
                }
            },
        };
        let confident = ImageDetections {
            truth,
            detections: detections
                .iter()
                .filter(|d| d.score >= self.options.truth_conf)
                .copied()
                .collect(),
        };
        let counts = match_counts(&confident, self.options.match_iou);
        self.counts.add(counts);
        self.last = Some(counts.f1());
        self.images.push(ImageDetections {
            truth: confident.truth,
            detections,
        });
        Ok(())
    }

    fn value(&self) -> Option<f64> {
        self.last
    }

    fn avg_value(&self) -> Option<f64> {
        let aps = self.per_class();
        (!aps.is_empty()).then(|| aps.values().sum::<f64>() / aps.len() as f64)
    }

    fn reset(&mut self) {
        self.images.clear();
        self.counts = MatchCounts::default();
        self.last = None;
    }
}
