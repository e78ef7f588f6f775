//! YOLOv8 output decoding: `[1, 4+C, A]` head output to class-wise NMS'd detections.
//!
//! Rows 0..4 are `cx, cy, w, h` in model-input pixels, rows `4..4+C` the per-class scores (already
//! sigmoid; YOLOv8 has no objectness). The semantics are the peer harness's `yolo_decode`: the
//! confidence is the highest class score (first on ties) and the class its index; anchors below
//! `conf_threshold` are dropped; per class, by descending confidence, a box suppresses the later
//! ones whose IoU with it *exceeds* `iou_threshold`; the survivors of all classes are sorted by
//! descending confidence and cut at `max_detections`.

use ndarray::{ArrayView2, ArrayViewD, Axis, Ix2};
use serde::{Deserialize, Serialize};

use crate::metrics::detection::{Detection, iou};

/// Decoding thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DecodeOptions {
    /// Lowest class score kept (0.25; mAP evaluation decodes predictions at 0.001).
    pub conf_threshold: f32,
    /// NMS: a box is suppressed by a higher-scored same-class box when their IoU exceeds this.
    pub iou_threshold: f32,
    /// At most this many detections per image.
    pub max_detections: usize,
}

impl Default for DecodeOptions {
    fn default() -> DecodeOptions {
        DecodeOptions {
            conf_threshold: 0.25,
            iou_threshold: 0.45,
            max_detections: 300,
        }
    }
}

impl DecodeOptions {
    /// The defaults with another confidence threshold.
    pub fn with_conf(conf_threshold: f32) -> DecodeOptions {
        DecodeOptions {
            conf_threshold,
            ..DecodeOptions::default()
        }
    }
}

/// The output is not a YOLOv8 head output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shape {shape:?} is not a YOLOv8 output [1, 4+C, A] with C >= 1")]
pub struct DecodeError {
    /// The shape given.
    pub shape: Vec<usize>,
}

/// Decodes one image's output, `[1, 4+C, A]` or `[4+C, A]`.
pub fn decode(
    output: ArrayViewD<'_, f32>,
    options: &DecodeOptions,
) -> Result<Vec<Detection>, DecodeError> {
    let shape = output.shape().to_vec();
    let err = || DecodeError {
        shape: shape.clone(),
    };
    let rows = match output.ndim() {
        3 if shape[0] == 1 => output.index_axis_move(Axis(0), 0),
        2 => output,
        _ => return Err(err()),
    };
    let rows: ArrayView2<'_, f32> = rows.into_dimensionality::<Ix2>().map_err(|_| err())?;
    if rows.nrows() < 5 {
        return Err(err());
    }
    Ok(decode_rows(rows, options))
}

/// Decodes a `[4+C, A]` view (at least 5 rows; fewer give no detection).
pub fn decode_rows(rows: ArrayView2<'_, f32>, options: &DecodeOptions) -> Vec<Detection> {
    if rows.nrows() < 5 {
        return Vec::new();
    }
    let classes = rows.nrows() - 4;
    let mut candidates: Vec<Detection> = Vec::new();
    for a in 0..rows.ncols() {
        let mut class = 0;
        let mut score = rows[[4, a]];
        for c in 1..classes {
            let s = rows[[4 + c, a]];
            // numpy argmax: the first maximum; a NaN wins (and is then dropped by the threshold).
            if s > score || (s.is_nan() && !score.is_nan()) {
                class = c;
                score = s;
            }
        }
        if score >= options.conf_threshold {
            let (cx, cy, w, h) = (rows[[0, a]], rows[[1, a]], rows[[2, a]], rows[[3, a]]);
            candidates.push(Detection {
                class,
                score,
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
            });
        }
    }
    let mut kept = nms(&candidates, options.iou_threshold);
    kept.truncate(options.max_detections);
    kept
}

/// Class-wise non-maximum suppression: classes in ascending order, each by descending score (ties
/// in input order); the result sorted by descending score (stable).
pub fn nms(detections: &[Detection], iou_threshold: f32) -> Vec<Detection> {
    let mut classes: Vec<usize> = detections.iter().map(|d| d.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut kept = Vec::new();
    for class in classes {
        let mut order: Vec<&Detection> = detections.iter().filter(|d| d.class == class).collect();
        order.sort_by(|a, b| b.score.total_cmp(&a.score));
        while let Some((&first, rest)) = order.split_first() {
            kept.push(*first);
            order = rest
                .iter()
                .copied()
                .filter(|d| iou(first.corners(), d.corners()) <= iou_threshold)
                .collect();
        }
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept
}
