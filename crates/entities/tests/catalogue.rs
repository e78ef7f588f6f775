//! The Encord catalogue: model types and weights with the seed's exact wire names, tasks,
//! which weights fit which model, model rows.

use kiln_entities::{
    ModelRow, ModelType, ModelWeights, TaskKind, TrainingParams, ValidationError, WeightsFamily,
};

#[test]
fn model_types_as_in_the_seed() {
    use ModelType as M;
    use TaskKind as T;
    let expect = [
        (M::FastAi, "fast_ai", T::Classification),
        (M::Resnet18, "resnet18", T::Classification),
        (M::Resnet34, "resnet34", T::Classification),
        (M::Resnet50, "resnet50", T::Classification),
        (M::Resnet101, "resnet101", T::Classification),
        (M::Resnet152, "resnet152", T::Classification),
        (M::Vgg16, "vgg16", T::Classification),
        (M::Vgg19, "vgg19", T::Classification),
        (M::Yolov5, "yolov5", T::ObjectDetection),
        (M::FasterRcnn, "faster_rcnn", T::ObjectDetection),
        (M::MaskRcnn, "mask_rcnn", T::InstanceSegmentation),
    ];
    assert_eq!(M::ALL, expect.map(|e| e.0));
    for (model, name, task) in expect {
        assert_eq!(model.as_str(), name);
        assert_eq!(name.parse::<M>(), Ok(model));
        assert_eq!(model.task(), task, "{model}");
    }
    assert!(
        "FASTER_RCNN".parse::<M>() == Ok(M::FasterRcnn),
        "the SDK's constant names parse too"
    );
}

#[test]
fn weights_as_in_the_seed() {
    use ModelWeights as W;
    use WeightsFamily as F;
    let expect = [
        (W::FastAi, "fast_ai", F::FastAi),
        (W::Yolov5x, "yolov5x", F::Yolov5),
        (W::Yolov5s, "yolov5s", F::Yolov5),
        (
            W::FasterRcnnR50C4_1x,
            "faster_rcnn_R_50_C4_1x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR50Dc5_1x,
            "faster_rcnn_R_50_DC5_1x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR50Fpn_1x,
            "faster_rcnn_R_50_FPN_1x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR50C4_3x,
            "faster_rcnn_R_50_C4_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR50Dc5_3x,
            "faster_rcnn_R_50_DC5_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR50Fpn_3x,
            "faster_rcnn_R_50_FPN_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR101C4_3x,
            "faster_rcnn_R_101_C4_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR101Dc5_3x,
            "faster_rcnn_R_101_DC5_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnR101Fpn_3x,
            "faster_rcnn_R_101_FPN_3x",
            F::FasterRcnn,
        ),
        (
            W::FasterRcnnX101_32x8dFpn_3x,
            "faster_rcnn_X_101_32x8d_FPN_3x",
            F::FasterRcnn,
        ),
        (
            W::MaskRcnnX101_32x8dFpn_3x,
            "mask_rcnn_X_101_32x8d_FPN_3x",
            F::MaskRcnn,
        ),
        (W::MaskRcnnR50C4_1x, "mask_rcnn_R_50_C4_1x", F::MaskRcnn),
        (W::MaskRcnnR50C4_3x, "mask_rcnn_R_50_C4_3x", F::MaskRcnn),
        (W::MaskRcnnR101Fpn_3x, "mask_rcnn_R_101_FPN_3x", F::MaskRcnn),
    ];
    assert_eq!(W::ALL, expect.map(|e| e.0));
    for (weights, name, family) in expect {
        assert_eq!(weights.to_string(), name);
        assert_eq!(name.parse::<W>(), Ok(weights));
        assert_eq!(
            serde_json::to_value(weights).ok(),
            Some(serde_json::json!(name))
        );
        assert_eq!(weights.family(), family);
        assert_eq!(weights.task(), family.task());
    }
    assert_eq!(F::FastAi.task(), TaskKind::Classification);
    assert_eq!(F::Yolov5.task(), TaskKind::ObjectDetection);
    assert_eq!(F::FasterRcnn.task(), TaskKind::ObjectDetection);
    assert_eq!(F::MaskRcnn.task(), TaskKind::InstanceSegmentation);
}

/// The weights each model type accepts, written out by hand.
fn compatible(model: ModelType) -> &'static [&'static str] {
    const FASTER: &[&str] = &[
        "faster_rcnn_R_50_C4_1x",
        "faster_rcnn_R_50_DC5_1x",
        "faster_rcnn_R_50_FPN_1x",
        "faster_rcnn_R_50_C4_3x",
        "faster_rcnn_R_50_DC5_3x",
        "faster_rcnn_R_50_FPN_3x",
        "faster_rcnn_R_101_C4_3x",
        "faster_rcnn_R_101_DC5_3x",
        "faster_rcnn_R_101_FPN_3x",
        "faster_rcnn_X_101_32x8d_FPN_3x",
    ];
    const MASK: &[&str] = &[
        "mask_rcnn_X_101_32x8d_FPN_3x",
        "mask_rcnn_R_50_C4_1x",
        "mask_rcnn_R_50_C4_3x",
        "mask_rcnn_R_101_FPN_3x",
    ];
    match model.as_str() {
        "fast_ai" | "resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152" | "vgg16"
        | "vgg19" => &["fast_ai"],
        "yolov5" => &["yolov5x", "yolov5s"],
        "faster_rcnn" => FASTER,
        "mask_rcnn" => MASK,
        other => panic!("unexpected model type {other}"),
    }
}

#[test]
fn every_model_weights_pair() {
    let mut pairs = 0;
    for &model in ModelType::ALL {
        let expect = compatible(model);
        assert_eq!(
            model
                .compatible_weights()
                .map(|w| w.as_str())
                .collect::<Vec<_>>(),
            expect,
            "{model}"
        );
        for &weights in ModelWeights::ALL {
            let fits = expect.contains(&weights.as_str());
            assert_eq!(
                weights.is_compatible_with(model),
                fits,
                "{weights} / {model}"
            );
            let params = TrainingParams::new(vec!["row".into()], 1, weights);
            let expect_err = ValidationError::ModelWeightsInconsistent { model, weights };
            assert_eq!(
                params.validate(model),
                if fits { Ok(()) } else { Err(expect_err) }
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 11 * 17);
}

#[test]
fn model_rows() {
    let row = ModelRow::new(
        "Sample title",
        vec!["feature_uid_1".into(), "feature_uid_2".into()],
        ModelType::FasterRcnn,
    );
    assert_eq!(row.validate(), Ok(()));
    assert_eq!(row.uid.get_version_num(), 7);
    assert_eq!(row.description, None);
    let check = |edit: fn(&mut ModelRow), field: &str| {
        let mut bad = row.clone();
        edit(&mut bad);
        assert_eq!(
            bad.validate(),
            Err(ValidationError::EmptyField {
                field: field.into()
            })
        );
    };
    check(|r| r.title = " ".into(), "title");
    check(|r| r.features.clear(), "features");
    check(|r| r.features.push(String::new()), "features[2]");
    let json = serde_json::to_value(&row).expect("serializes");
    assert_eq!(json["model"], serde_json::json!("faster_rcnn"));
}
