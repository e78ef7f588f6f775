//! Metric tests: hand-computed cases for accuracy, IoU, NMS, AP and agreement, and typed errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::detection::{
    ImageDetections, ap_per_class, average_precision, iou, match_counts, mean_ap,
};
use super::yolo::{DecodeOptions, decode};
use super::*;
use crate::data::{Annotation, LabeledBox};
use crate::metric::{Direction, Metric, MetricError, SampleRef};
use crate::tensor::TensorMap;

fn outputs(name: &str, shape: &[usize], values: Vec<f32>) -> TensorMap {
    let mut map = TensorMap::new();
    map.insert(
        name,
        ArrayD::from_shape_vec(IxDyn(shape), values).expect("shape"),
    );
    map
}

fn sample(index: usize, annotation: &Annotation) -> SampleRef<'_> {
    SampleRef {
        index,
        annotation,
        metadata: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

// ---------------------------------------------------------------------------------------------
// TopK

#[test]
fn top_k_accuracy() {
    let logits = |v: [f32; 4]| outputs("logits", &[1, 4], v.to_vec());
    let mut top1 = TopK::top1();
    let mut top2 = TopK::new(2).with_output("logits");
    let cases = [
        ([0.1, 3.0, 0.2, -1.0], 1, true, true),
        ([0.1, 3.0, 0.2, -1.0], 2, false, true),
        ([0.1, 3.0, 0.2, -1.0], 3, false, false),
        // Ties rank by index (numpy argmax): class 0 wins, class 2 is second.
        ([5.0, 1.0, 5.0, 0.0], 0, true, true),
        ([5.0, 1.0, 5.0, 0.0], 2, false, true),
        ([f32::NAN, 1.0, 0.0, 0.0], 0, false, false),
    ];
    for (i, (scores, label, in1, in2)) in cases.into_iter().enumerate() {
        let annotation = Annotation::Class(label);
        top1.update(sample(i, &annotation), &logits(scores))
            .expect("top1");
        top2.update(sample(i, &annotation), &logits(scores))
            .expect("top2");
        assert_eq!(top1.value(), Some(if in1 { 1.0 } else { 0.0 }), "case {i}");
        assert_eq!(top2.value(), Some(if in2 { 1.0 } else { 0.0 }), "case {i}");
    }
    assert!(close(top1.avg_value().expect("avg"), 2.0 / 6.0));
    assert!(close(top2.avg_value().expect("avg"), 4.0 / 6.0));
    assert_eq!((top1.name(), top2.name()), ("top1", "top2"));
    assert_eq!(top1.attributes().direction, Direction::HigherBetter);
    top1.reset();
    assert_eq!((top1.value(), top1.avg_value()), (None, None));

    // Perfect and all wrong, with [1, C, 1, 1] and [C] outputs.
    let mut m = TopK::top1();
    for label in 0..3 {
        let mut v = vec![0.0; 3];
        v[label] = 1.0;
        m.update(
            sample(label, &Annotation::Class(label)),
            &outputs("p", &[1, 3, 1, 1], v),
        )
        .expect("ok");
    }
    assert_eq!(m.avg_value(), Some(1.0));
    m.reset();
    for label in 0..3 {
        let mut v = vec![0.0; 3];
        v[(label + 1) % 3] = 1.0;
        m.update(
            sample(label, &Annotation::Class(label)),
            &outputs("p", &[3], v),
        )
        .expect("ok");
    }
    assert_eq!(m.avg_value(), Some(0.0));
}

#[test]
fn top_k_errors_are_typed() {
    let mut m = TopK::top1();
    let class = Annotation::Class(1);
    let output_err = |r: Result<(), MetricError>| match r {
        Err(MetricError::Output { output, .. }) => output,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        output_err(m.update(sample(0, &class), &outputs("y", &[2, 4], vec![0.0; 8]))),
        "y"
    );
    assert_eq!(
        output_err(m.update(sample(0, &class), &outputs("y", &[1, 2, 3], vec![0.0; 6]))),
        "y"
    );
    let mut ints = TensorMap::new();
    ints.insert("ids", ArrayD::from_elem(IxDyn(&[1, 4]), 1i64));
    assert_eq!(output_err(m.update(sample(0, &class), &ints)), "ids");
    assert_eq!(
        output_err(m.update(sample(0, &class), &TensorMap::new())),
        "<first>"
    );
    let mut named = TopK::top1().with_output("logits");
    assert_eq!(
        output_err(named.update(sample(0, &class), &outputs("y", &[1, 4], vec![0.0; 4]))),
        "logits"
    );
    for annotation in [
        Annotation::None,
        Annotation::Class(4),
        Annotation::Boxes(vec![]),
    ] {
        match m.update(sample(7, &annotation), &outputs("y", &[1, 4], vec![0.0; 4])) {
            Err(MetricError::Annotation { index: 7, .. }) => {}
            other => panic!("{annotation:?}: {other:?}"),
        }
    }
    assert_eq!(m.value(), None, "failed updates count nothing");
}

// ---------------------------------------------------------------------------------------------
// IoU, NMS, decode

#[test]
fn iou_edge_cases() {
    let a = [0.0, 0.0, 2.0, 2.0];
    assert_eq!(iou(a, a), 1.0);
    assert_eq!(iou(a, [1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
    assert_eq!(iou([0.0, 0.0, 4.0, 4.0], [1.0, 1.0, 3.0, 3.0]), 0.25);
    assert_eq!(iou(a, [2.0, 0.0, 4.0, 2.0]), 0.0, "touching");
    assert_eq!(iou(a, [5.0, 5.0, 6.0, 6.0]), 0.0, "disjoint");
    assert_eq!(
        iou([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),
        0.0,
        "empty boxes"
    );
    assert_eq!(
        iou(a, [0.0, 0.0, 2.0, 2.0 + 1e-3]).to_bits(),
        iou([0.0, 0.0, 2.0, 2.0 + 1e-3], a).to_bits()
    );
}

/// A YOLOv8 output `[1, 4+C, A]` from `(class, score, cx, cy, w, h)` anchors (other classes 0).
fn yolo(classes: usize, anchors: &[(usize, f32, f32, f32, f32, f32)]) -> ArrayD<f32> {
    let a = anchors.len();
    let mut out = ArrayD::zeros(IxDyn(&[1, 4 + classes, a]));
    for (j, &(class, score, cx, cy, w, h)) in anchors.iter().enumerate() {
        out[[0, 0, j]] = cx;
        out[[0, 1, j]] = cy;
        out[[0, 2, j]] = w;
        out[[0, 3, j]] = h;
        out[[0, 4 + class, j]] = score;
    }
    out
}

fn yolo_map(classes: usize, anchors: &[(usize, f32, f32, f32, f32, f32)]) -> TensorMap {
    let mut map = TensorMap::new();
    map.insert("output0", yolo(classes, anchors));
    map
}

#[test]
fn decode_thresholds_and_class_wise_nms() {
    let out = yolo(
        2,
        &[
            (0, 0.9, 50.0, 50.0, 20.0, 20.0),
            (0, 0.8, 52.0, 50.0, 20.0, 20.0), // IoU 0.82 with the first: suppressed
            (1, 0.85, 50.0, 50.0, 20.0, 20.0), // same box, other class: kept
            (0, 0.3, 150.0, 150.0, 10.0, 10.0),
            (0, 0.25, 200.0, 20.0, 10.0, 10.0), // exactly at the threshold: kept
            (1, 0.2, 100.0, 100.0, 10.0, 10.0), // below: dropped
        ],
    );
    let dets = decode(out.view(), &DecodeOptions::default()).expect("decode");
    let got: Vec<(usize, f32)> = dets.iter().map(|d| (d.class, d.score)).collect();
    assert_eq!(got, [(0, 0.9), (1, 0.85), (0, 0.3), (0, 0.25)]);
    assert_eq!(dets[0].corners(), [40.0, 40.0, 60.0, 60.0]);
    let only = decode(
        out.view(),
        &DecodeOptions {
            max_detections: 2,
            ..DecodeOptions::default()
        },
    )
    .expect("decode");
    assert_eq!(only.len(), 2);

    // Suppression needs IoU strictly above the threshold.
    let pair = yolo(
        1,
        &[(0, 0.9, 1.0, 1.0, 2.0, 2.0), (0, 0.8, 2.0, 1.0, 2.0, 2.0)],
    );
    let at = DecodeOptions {
        iou_threshold: 2.0 / 6.0,
        ..DecodeOptions::default()
    };
    assert_eq!(decode(pair.view(), &at).expect("decode").len(), 2);
    let below = DecodeOptions {
        iou_threshold: 0.3,
        ..DecodeOptions::default()
    };
    assert_eq!(decode(pair.view(), &below).expect("decode").len(), 1);

    // The highest class score is the confidence; the 2-D form decodes too.
    let mut two = ArrayD::zeros(IxDyn(&[7, 1]));
    for (r, v) in [10.0, 10.0, 4.0, 4.0, 0.3, 0.6, 0.5].iter().enumerate() {
        two[[r, 0]] = *v;
    }
    let d = decode(two.view(), &DecodeOptions::default()).expect("decode");
    assert_eq!((d[0].class, d[0].score), (1, 0.6));

    for shape in [vec![1, 4, 10], vec![2, 6, 10], vec![6], vec![1, 1, 6, 10]] {
        let bad = ArrayD::<f32>::zeros(IxDyn(&shape));
        assert_eq!(
            decode(bad.view(), &DecodeOptions::default()).map_err(|e| e.shape),
            Err(shape)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AP

fn gt(class: usize, x1: f32, y1: f32, x2: f32, y2: f32) -> LabeledBox {
    LabeledBox {
        class,
        x1,
        y1,
        x2,
        y2,
    }
}

fn det(class: usize, score: f32, b: LabeledBox) -> Detection {
    Detection {
        class,
        score,
        x1: b.x1,
        y1: b.y1,
        x2: b.x2,
        y2: b.y2,
    }
}

#[test]
fn all_point_interpolation() {
    // TP, FP, TP over 2 boxes: recall .5 .5 1, precision 1 .5 .667 -> .5 * 1 + .5 * .667.
    assert!(close(
        average_precision(&[0.5, 0.5, 1.0], &[1.0, 0.5, 2.0 / 3.0]),
        0.5 + 1.0 / 3.0
    ));
    assert!(close(average_precision(&[], &[]), 0.0));
    // Recall that never reaches 1 leaves the rest of the area out.
    assert!(close(average_precision(&[0.25, 0.5], &[1.0, 1.0]), 0.5));
    // The envelope takes the best precision at any higher recall.
    assert!(close(
        average_precision(&[0.0, 0.5, 1.0], &[0.0, 0.5, 1.0]),
        1.0
    ));

    let b0 = gt(0, 0.0, 0.0, 10.0, 10.0);
    let b1 = gt(0, 20.0, 20.0, 30.0, 30.0);
    let far = gt(0, 50.0, 50.0, 60.0, 60.0);
    let image = ImageDetections {
        truth: vec![b0, b1],
        detections: vec![det(0, 0.7, b1), det(0, 0.9, b0), det(0, 0.8, far)],
    };
    let aps = ap_per_class(std::slice::from_ref(&image), 0.5);
    assert!(close(aps[&0], 0.5 + 1.0 / 3.0));

    // A duplicate of a matched box is a false positive; a class without ground truth is ignored;
    // a class with ground truth and no detection scores 0.
    let image = ImageDetections {
        truth: vec![b0, gt(2, 0.0, 0.0, 5.0, 5.0)],
        detections: vec![det(0, 0.9, b0), det(0, 0.8, b0), det(1, 0.9, b1)],
    };
    let aps = ap_per_class(std::slice::from_ref(&image), 0.5);
    assert_eq!(aps.keys().copied().collect::<Vec<_>>(), [0, 2]);
    assert!(close(aps[&0], 1.0));
    assert!(close(aps[&2], 0.0));
    assert!(close(mean_ap(&[image], 0.5).expect("map"), 0.5));
    assert_eq!(mean_ap(&[ImageDetections::default()], 0.5), None);

    // Across images the detections are ranked together.
    let images = [
        ImageDetections {
            truth: vec![b0],
            detections: vec![det(0, 0.6, b0)],
        },
        ImageDetections {
            truth: vec![b0],
            detections: vec![det(0, 0.9, far)],
        },
    ];
    // FP (0.9), TP (0.6): recall 0 .5, precision 0 .5 -> .5 * .5.
    assert!(close(ap_per_class(&images, 0.5)[&0], 0.25));
}

#[test]
fn best_match_taken_is_a_false_positive() {
    // VOC: a detection whose best box is taken does not fall back to its second best.
    let a = gt(0, 0.0, 0.0, 10.0, 10.0);
    let b = gt(0, 4.0, 0.0, 14.0, 10.0);
    let image = ImageDetections {
        truth: vec![a, b],
        detections: vec![det(0, 0.9, a), det(0, 0.8, gt(0, 1.0, 0.0, 11.0, 10.0))],
    };
    // Second detection: IoU 0.82 with a (taken), 0.54 with b.
    let aps = ap_per_class(std::slice::from_ref(&image), 0.5);
    assert!(close(aps[&0], 0.5));
    // F1 matching (the harness's f1_match) skips taken boxes instead.
    let counts = match_counts(&image, 0.5);
    assert_eq!(
        (
            counts.true_positives,
            counts.false_positives,
            counts.false_negatives
        ),
        (2, 0, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// MeanAp50

#[test]
fn map50_against_labels() {
    let face = (0usize, 0.9f32, 50.0f32, 50.0f32, 20.0f32, 20.0f32);
    let hand = (1, 0.8, 150.0, 150.0, 30.0, 30.0);
    let truth = Annotation::Boxes(vec![
        gt(0, 40.0, 40.0, 60.0, 60.0),
        gt(1, 135.0, 135.0, 165.0, 165.0),
    ]);
    let mut m = MeanAp50::new();
    m.update(sample(0, &truth), &yolo_map(2, &[face, hand]))
        .expect("perfect");
    assert_eq!(m.value(), Some(1.0));
    assert_eq!(m.avg_value(), Some(1.0));
    // Second image: the face is found in the wrong place, the hand missed.
    let wrong = (0, 0.9, 250.0, 250.0, 20.0, 20.0);
    m.update(sample(1, &truth), &yolo_map(2, &[wrong]))
        .expect("wrong");
    assert_eq!(m.value(), Some(0.0));
    // Class 0: TP .9 (image 0) and FP .9 (image 1), tie kept in image order -> recall .5 at
    // precision 1 -> AP .5. Class 1: one TP of two boxes -> .5.
    let per_class = m.per_class();
    assert!(
        close(per_class[&0], 0.5) && close(per_class[&1], 0.5),
        "{per_class:?}"
    );
    assert!(close(m.avg_value().expect("map"), 0.5));
    // Dataset F1: TP 2, FP 1, FN 2.
    assert!(close(m.f1().expect("f1"), 4.0 / 7.0));
    assert_eq!(m.name(), "map50");

    // Empty predictions against ground truth: 0; nothing to find and nothing found: F1 1, mAP
    // undefined.
    let mut m = MeanAp50::new();
    m.update(sample(0, &truth), &yolo_map(2, &[]))
        .expect("empty");
    assert_eq!((m.value(), m.avg_value()), (Some(0.0), Some(0.0)));
    let mut m = MeanAp50::new();
    m.update(
        sample(0, &Annotation::Boxes(vec![])),
        &yolo_map(2, &[(0, 0.1, 5.0, 5.0, 2.0, 2.0)]),
    )
    .expect("none");
    assert_eq!((m.value(), m.avg_value()), (Some(1.0), None));
    m.reset();
    assert_eq!((m.value(), m.avg_value(), m.f1()), (None, None, None));
}

#[test]
fn map50_counts_low_confidence_predictions() {
    // Predictions down to 0.001 enter the AP (not the F1 at 0.25).
    let truth = Annotation::Boxes(vec![gt(0, 40.0, 40.0, 60.0, 60.0)]);
    let mut m = MeanAp50::new();
    m.update(
        sample(0, &truth),
        &yolo_map(1, &[(0, 0.01, 50.0, 50.0, 20.0, 20.0)]),
    )
    .expect("ok");
    assert_eq!(m.avg_value(), Some(1.0));
    assert_eq!(m.value(), Some(0.0));
}

#[test]
fn map50_against_a_reference_model() {
    let fp32 = [
        (0usize, 0.9f32, 50.0f32, 50.0f32, 20.0f32, 20.0f32),
        (1, 0.7, 100.0, 100.0, 10.0, 10.0),
        (1, 0.2, 10.0, 10.0, 4.0, 4.0),
    ];
    let reference: BTreeMap<usize, TensorMap> =
        BTreeMap::from([(0, yolo_map(2, &fp32)), (1, yolo_map(2, &fp32[..1]))]);
    let reference = Arc::new(reference);
    let mut m = MeanAp50::against_reference(reference.clone());
    // The reference itself agrees perfectly (the low-confidence box is not ground truth).
    for i in 0..2 {
        m.update(sample(i, &Annotation::None), &reference[&i])
            .expect("self");
        assert_eq!(m.value(), Some(1.0));
    }
    assert_eq!(m.avg_value(), Some(1.0));
    // An INT8 model that lost the second class on sample 0.
    let mut m = MeanAp50::against_reference(reference.clone()).with_output("output0");
    m.update(sample(0, &Annotation::None), &yolo_map(2, &fp32[..1]))
        .expect("int8");
    assert!(close(m.avg_value().expect("map"), 0.5));
    assert!(close(m.value().expect("f1"), 2.0 / 3.0));
    match m.update(sample(5, &Annotation::None), &yolo_map(2, &fp32)) {
        Err(MetricError::NoReference { index: 5, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn map50_errors_are_typed() {
    let mut m = MeanAp50::new();
    match m.update(sample(3, &Annotation::Class(1)), &yolo_map(2, &[])) {
        Err(MetricError::Annotation { index: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
    match m.update(
        sample(0, &Annotation::Boxes(vec![])),
        &outputs("logits", &[1, 10], vec![0.0; 10]),
    ) {
        Err(MetricError::Output { output, reason, .. }) => {
            assert_eq!(output, "logits");
            assert!(reason.contains("[1, 10]"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let reference = Arc::new(BTreeMap::from([(
        0,
        outputs("output0", &[1, 3], vec![0.0; 3]),
    )]));
    let mut m = MeanAp50::against_reference(reference);
    match m.update(sample(0, &Annotation::None), &yolo_map(2, &[])) {
        Err(MetricError::Output { reason, .. }) => {
            assert!(reason.contains("reference"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Agreement

fn reference_of(items: &[(usize, Vec<f32>, &[usize])]) -> Arc<BTreeMap<usize, TensorMap>> {
    Arc::new(
        items
            .iter()
            .map(|(i, v, s)| (*i, outputs("y", s, v.clone())))
            .collect(),
    )
}

#[test]
fn top1_agreement_per_row() {
    let reference = reference_of(&[
        (0, vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.2], &[1, 3, 2]),
        (1, vec![0.0, 1.0], &[1, 2]),
    ]);
    let mut m = Agreement::new(AgreementKind::Top1, reference);
    // Rows (argmax over the last axis): reference 0, 1, 0; ours 0, 0, 0 -> 2 of 3.
    m.update(
        sample(0, &Annotation::None),
        &outputs("y", &[1, 3, 2], vec![2.0, 1.0, 3.0, 1.0, 0.0, -1.0]),
    )
    .expect("ok");
    assert!(close(m.value().expect("v"), 2.0 / 3.0));
    m.update(
        sample(1, &Annotation::None),
        &outputs("y", &[1, 2], vec![0.0, 5.0]),
    )
    .expect("ok");
    assert_eq!(m.value(), Some(1.0));
    assert!(close(m.avg_value().expect("avg"), 3.0 / 4.0));
    assert_eq!(m.name(), "top1_agreement");
    assert!(m.higher_better());
}

#[test]
fn cosine_is_dataset_level() {
    let reference = reference_of(&[
        (0, vec![1.0, 0.0], &[1, 2]),
        (1, vec![10.0, 0.0], &[1, 2]),
        (2, vec![0.0, 0.0], &[1, 2]),
    ]);
    let mut m = Agreement::new(AgreementKind::Cosine, reference);
    m.update(
        sample(0, &Annotation::None),
        &outputs("y", &[1, 2], vec![2.0, 0.0]),
    )
    .expect("ok");
    assert!(close(m.value().expect("v"), 1.0));
    m.update(
        sample(1, &Annotation::None),
        &outputs("y", &[1, 2], vec![0.0, 10.0]),
    )
    .expect("ok");
    assert!(close(m.value().expect("v"), 0.0));
    // Global: dot 2, |a|^2 104, |b|^2 101 — not the mean of the per-sample values.
    assert!(close(
        m.avg_value().expect("avg"),
        2.0 / (104.0f64.sqrt() * 101.0f64.sqrt())
    ));
    m.update(
        sample(2, &Annotation::None),
        &outputs("y", &[1, 2], vec![0.0, 0.0]),
    )
    .expect("ok");
    assert_eq!(m.value(), Some(1.0), "both zero");
    let mut opposite = Agreement::new(
        AgreementKind::Cosine,
        reference_of(&[(0, vec![1.0, -2.0], &[2])]),
    );
    opposite
        .update(
            sample(0, &Annotation::None),
            &outputs("y", &[2], vec![-1.0, 2.0]),
        )
        .expect("ok");
    assert!(close(opposite.value().expect("v"), -1.0));
}

#[test]
fn relative_l2_is_lower_better() {
    let reference = reference_of(&[(0, vec![3.0, 4.0], &[1, 2]), (1, vec![0.0, 0.0], &[1, 2])]);
    let mut m = Agreement::new(AgreementKind::RelativeL2, reference).with_output("y");
    assert!(!m.higher_better());
    assert_eq!(m.attributes().direction, Direction::HigherWorse);
    m.update(
        sample(0, &Annotation::None),
        &outputs("y", &[1, 2], vec![3.0, 4.0]),
    )
    .expect("ok");
    assert_eq!(m.value(), Some(0.0));
    m.update(
        sample(0, &Annotation::None),
        &outputs("y", &[1, 2], vec![0.0, 4.0]),
    )
    .expect("ok");
    assert!(close(m.value().expect("v"), 3.0 / 5.0));
    // Over both updates: sqrt(9) / sqrt(50).
    assert!(close(m.avg_value().expect("avg"), 3.0 / 50.0f64.sqrt()));
    m.update(
        sample(1, &Annotation::None),
        &outputs("y", &[1, 2], vec![1.0, 0.0]),
    )
    .expect("ok");
    assert_eq!(m.value(), Some(f64::INFINITY));
    m.reset();
    assert_eq!(m.avg_value(), None);
}

#[test]
fn agreement_errors_are_typed() {
    let reference = reference_of(&[(0, vec![1.0, 0.0], &[1, 2])]);
    let mut m = Agreement::new(AgreementKind::Cosine, reference);
    match m.update(
        sample(1, &Annotation::None),
        &outputs("y", &[1, 2], vec![1.0, 0.0]),
    ) {
        Err(MetricError::NoReference { index: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    match m.update(
        sample(0, &Annotation::None),
        &outputs("y", &[1, 3], vec![1.0, 0.0, 0.0]),
    ) {
        Err(MetricError::Output { reason, .. }) => {
            assert!(reason.contains("reference"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    match m.update(
        sample(0, &Annotation::None),
        &outputs("z", &[1, 2], vec![1.0, 0.0]),
    ) {
        Err(MetricError::Output { output, .. }) => assert_eq!(output, "z"),
        other => panic!("{other:?}"),
    }
    assert_eq!(m.value(), None);
}

// ---------------------------------------------------------------------------------------------
// Against the peer harness

/// A deterministic pseudo-random stream in `[0, 1)` (64-bit LCG, top 24 bits).
struct Stream(u64);

impl Stream {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Synthetic YOLOv8 outputs `[1, 4+4, 400]` for 6 images: anchors clustered on 1-8 objects with
/// a confident class, plus background anchors; and a perturbed copy (an "INT8" model).
fn synthetic_yolo_pair() -> Vec<(ArrayD<f32>, ArrayD<f32>)> {
    const C: usize = 4;
    const A: usize = 400;
    let mut r = Stream(2024);
    (0..6)
        .map(|_| {
            let k = 1 + (r.next() * 8.0) as usize;
            let objects: Vec<[f32; 5]> = (0..k)
                .map(|_| {
                    let class = (r.next() * C as f32) as usize;
                    [
                        30.0 + r.next() * 260.0,
                        30.0 + r.next() * 260.0,
                        10.0 + r.next() * 70.0,
                        10.0 + r.next() * 70.0,
                        class as f32,
                    ]
                })
                .collect();
            let mut fp = ArrayD::<f32>::zeros(IxDyn(&[1, 4 + C, A]));
            let mut q = fp.clone();
            for a in 0..A {
                let near = r.next() < 0.6;
                let o = objects[(r.next() * k as f32) as usize % k];
                let boxes = if near {
                    [
                        o[0] + (r.next() - 0.5) * 8.0,
                        o[1] + (r.next() - 0.5) * 8.0,
                        o[2] * (0.8 + 0.4 * r.next()),
                        o[3] * (0.8 + 0.4 * r.next()),
                    ]
                } else {
                    [
                        r.next() * 320.0,
                        r.next() * 320.0,
                        5.0 + r.next() * 55.0,
                        5.0 + r.next() * 55.0,
                    ]
                };
                for (i, v) in boxes.iter().enumerate() {
                    fp[[0, i, a]] = *v;
                    q[[0, i, a]] = *v + (r.next() - 0.5) * 16.0;
                }
                for c in 0..C {
                    let s = if near && c == o[4] as usize {
                        r.next()
                    } else {
                        r.next() * if near { 0.1 } else { 0.2 }
                    };
                    fp[[0, 4 + c, a]] = s;
                    q[[0, 4 + c, a]] = s * (0.3 + 0.7 * r.next());
                }
            }
            (fp, q)
        })
        .collect()
}

/// The peer harness on [`synthetic_yolo_pair`]: ground-truth (FP32 at 0.25) and predicted (at
/// 0.001) boxes per image, mAP@0.5 and F1 at 0.25.
const HARNESS_TRUTH: [usize; 6] = [4, 9, 5, 1, 7, 7];
const HARNESS_PREDICTED: [usize; 6] = [198, 193, 181, 156, 210, 187];
const HARNESS_MAP: f64 = 0.7480627351950881;
const HARNESS_F1: f64 = 0.5;

/// mAP@0.5, F1 and box counts equal the peer harness's `yolo_decode` + `map50` + `f1_match` on
/// the same outputs (computed once with bench_ptq.py's functions; numpy 2.4).
#[test]
fn map50_matches_the_peer_harness() {
    let pairs = synthetic_yolo_pair();
    let reference: BTreeMap<usize, TensorMap> = pairs
        .iter()
        .enumerate()
        .map(|(i, (fp, _))| {
            let mut m = TensorMap::new();
            m.insert("output0", fp.clone());
            (i, m)
        })
        .collect();
    let mut m = MeanAp50::against_reference(Arc::new(reference));
    for (i, (_, q)) in pairs.iter().enumerate() {
        let mut out = TensorMap::new();
        out.insert("output0", q.clone());
        m.update(sample(i, &Annotation::None), &out)
            .expect("update");
    }
    let truth: Vec<usize> = m.images().iter().map(|im| im.truth.len()).collect();
    let predicted: Vec<usize> = m.images().iter().map(|im| im.detections.len()).collect();
    assert_eq!(truth, HARNESS_TRUTH);
    assert_eq!(predicted, HARNESS_PREDICTED);
    assert!((m.avg_value().expect("map") - HARNESS_MAP).abs() < 1e-12);
    assert!((m.f1().expect("f1") - HARNESS_F1).abs() < 1e-12);
}
