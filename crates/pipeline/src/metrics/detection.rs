//! Detection geometry and scoring: IoU, VOC all-point AP@0.5 over a dataset, F1 matching.
//!
//! The semantics are the peer harness's (`bench_ptq.py`: `box_iou`, `map50`, `f1_match`), in
//! float32 like its numpy arrays.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::LabeledBox;

/// One detected box: corners in model-input pixels, a class and a confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Class index.
    pub class: usize,
    /// Confidence (the class score).
    pub score: f32,
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
}

impl Detection {
    /// The box without its score.
    pub fn to_box(&self) -> LabeledBox {
        LabeledBox {
            class: self.class,
            x1: self.x1,
            y1: self.y1,
            x2: self.x2,
            y2: self.y2,
        }
    }

    /// Corners `[x1, y1, x2, y2]`.
    pub fn corners(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

/// Corners `[x1, y1, x2, y2]` of a labelled box.
pub fn box_corners(b: &LabeledBox) -> [f32; 4] {
    [b.x1, b.y1, b.x2, b.y2]
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes. Disjoint or touching boxes give 0; the
/// union is floored at `1e-9`, so two empty boxes give 0, not NaN (as the harness's `box_iou`).
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    inter / (area_a + area_b - inter).max(1e-9)
}

/// One image's ground truth and detections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageDetections {
    /// Ground-truth boxes.
    pub truth: Vec<LabeledBox>,
    /// Detections (any order; sorted by score when scored).
    pub detections: Vec<Detection>,
}

/// VOC all-point interpolated average precision from cumulative recall and precision (detections
/// by descending score): the area under the precision envelope, `sum (r[i+1] - r[i]) * p_env[i+1]`
/// over the points where recall changes, with sentinels `r = 0 .. 1`, `p = 1 .. 0`.
pub fn average_precision(recall: &[f64], precision: &[f64]) -> f64 {
    let mut mrec = Vec::with_capacity(recall.len() + 2);
    mrec.push(0.0);
    mrec.extend_from_slice(recall);
    mrec.push(1.0);
    let mut mpre = Vec::with_capacity(precision.len() + 2);
    mpre.push(1.0);
    mpre.extend_from_slice(precision);
    mpre.push(0.0);
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (0..mrec.len() - 1)
        .filter(|&i| mrec[i + 1] != mrec[i])
        .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
        .sum()
}

/// AP@`iou_threshold` per class over a dataset, for every class with at least one ground-truth box
/// (detections of other classes are ignored, as in the harness). A class with ground truth but no
/// detection has AP 0.
///
/// Matching: each class's detections from all images, by descending score (ties keep image order,
/// then detection order), take the same-class ground-truth box of their image with the highest IoU;
/// it is a true positive when that IoU reaches the threshold and the box is not already taken
/// (otherwise a false positive — a taken best match is not replaced by the second best).
pub fn ap_per_class(images: &[ImageDetections], iou_threshold: f32) -> BTreeMap<usize, f64> {
    let mut gt_count: BTreeMap<usize, usize> = BTreeMap::new();
    for image in images {
        for b in &image.truth {
            *gt_count.entry(b.class).or_default() += 1;
        }
    }
    let mut aps = BTreeMap::new();
    for (&class, &n_gt) in &gt_count {
        let mut dets: Vec<(f32, usize, &Detection)> = images
            .iter()
            .enumerate()
            .flat_map(|(i, image)| {
                image
                    .detections
                    .iter()
                    .filter(move |d| d.class == class)
                    .map(move |d| (d.score, i, d))
            })
            .collect();
        if dets.is_empty() {
            aps.insert(class, 0.0);
            continue;
        }
        dets.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: Vec<Vec<[f32; 4]>> = images
            .iter()
            .map(|image| {
                image
                    .truth
                    .iter()
                    .filter(|b| b.class == class)
                    .map(box_corners)
                    .collect()
            })
            .collect();
        let mut used: Vec<Vec<bool>> = truth.iter().map(|t| vec![false; t.len()]).collect();
        let mut tp_cum = 0usize;
        let mut recall = Vec::with_capacity(dets.len());
        let mut precision = Vec::with_capacity(dets.len());
        for (j, (_, i, d)) in dets.iter().enumerate() {
            if let Some((m, best)) = best_match(d.corners(), &truth[*i])
                && best >= iou_threshold
                && !used[*i][m]
            {
                used[*i][m] = true;
                tp_cum += 1;
            }
            recall.push(tp_cum as f64 / n_gt as f64);
            precision.push(tp_cum as f64 / (j + 1) as f64);
        }
        aps.insert(class, average_precision(&recall, &precision));
    }
    aps
}

/// Mean of [`ap_per_class`]; `None` when no image has a ground-truth box (undefined).
pub fn mean_ap(images: &[ImageDetections], iou_threshold: f32) -> Option<f64> {
    let aps = ap_per_class(images, iou_threshold);
    (!aps.is_empty()).then(|| aps.values().sum::<f64>() / aps.len() as f64)
}

/// The first box with the highest IoU with `b` (numpy `argmax`), and that IoU.
fn best_match(b: [f32; 4], truth: &[[f32; 4]]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (m, t) in truth.iter().enumerate() {
        let v = iou(b, *t);
        if best.is_none_or(|(_, bv)| v > bv) {
            best = Some((m, v));
        }
    }
    best
}

/// True positives, false positives and false negatives of one image's detections against its
/// ground truth at `iou_threshold`, detections taken in the given order (the harness's
/// `f1_match`): each detection takes the unused same-class box of highest IoU if it reaches the
/// threshold.
pub fn match_counts(image: &ImageDetections, iou_threshold: f32) -> MatchCounts {
    let truth: Vec<[f32; 4]> = image.truth.iter().map(box_corners).collect();
    let mut used = vec![false; truth.len()];
    let mut counts = MatchCounts::default();
    for d in &image.detections {
        let mut best: Option<(usize, f32)> = None;
        for (m, t) in truth.iter().enumerate() {
            let v = if image.truth[m].class != d.class || used[m] {
                0.0
            } else {
                iou(d.corners(), *t)
            };
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((m, v));
            }
        }
        match best {
            Some((m, v)) if v >= iou_threshold => {
                used[m] = true;
                counts.true_positives += 1;
            }
            _ => counts.false_positives += 1,
        }
    }
    counts.false_negatives = used.iter().filter(|u| !**u).count();
    counts
}

/// Matching outcome of detections against ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCounts {
    /// Detections that matched a box.
    pub true_positives: usize,
    /// Detections that matched nothing.
    pub false_positives: usize,
    /// Boxes nothing matched.
    pub false_negatives: usize,
}

impl MatchCounts {
    /// `2 TP / (2 TP + FP + FN)`; 1 when there is nothing to find and nothing was found.
    pub fn f1(&self) -> f64 {
        let denominator = 2 * self.true_positives + self.false_positives + self.false_negatives;
        if denominator == 0 {
            1.0
        } else {
            (2 * self.true_positives) as f64 / denominator as f64
        }
    }

    /// Adds another image's counts.
    pub fn add(&mut self, other: MatchCounts) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.false_negatives += other.false_negatives;
    }
}
