//! Every public type survives a JSON round trip unchanged (property tests).

use std::fmt::Debug;

use kiln_entities::{
    Device, FileType, FrameRangeProblem, LabelGroupType, MetadataType, ModelFormat,
    ModelOptimizationType, ModelPrecision, ModelType, ModelWeights, OptimizationMethod,
    TargetDevice, TaskKind, WeightsFamily,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::strategies::*;

/// Serializes to JSON and reads back.
pub fn roundtrip<T: Serialize + DeserializeOwned>(value: &T) -> T {
    let json = serde_json::to_string(value).expect("serializes");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("reads back {json}: {e}"))
}

fn check_eq<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    assert_eq!(&roundtrip(value), value);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn model_entity_roundtrip(model in model_entity()) {
        let back = roundtrip(&model);
        prop_assert!(back.same_as(&model), "{model:#?}\n!=\n{back:#?}");
    }

    #[test]
    fn model_record_roundtrip(record in model_record()) {
        check_eq(&record);
    }

    #[test]
    fn metadata_roundtrip(metadata in metadata()) {
        check_eq(&metadata);
    }

    #[test]
    fn metadata_values(value in metadata_value()) {
        check_eq(&value);
    }

    #[test]
    fn designs(design in design()) {
        check_eq(&design);
    }

    #[test]
    fn model_rows(row in model_row()) {
        check_eq(&row);
    }

    #[test]
    fn training_params_roundtrip(params in training_params()) {
        check_eq(&params);
    }

    #[test]
    fn inference_params_roundtrip(params in inference_params()) {
        check_eq(&params);
    }

    #[test]
    fn configurations(configuration in configuration()) {
        check_eq(&configuration);
    }

    #[test]
    fn performances(performance in performance()) {
        check_eq(&performance);
    }

    #[test]
    fn model_data_and_blobs(data in model_data(), blob in blob(), id in model_id()) {
        check_eq(&data);
        check_eq(&blob);
        check_eq(&id);
    }
}

fn check_enum<T: Serialize + DeserializeOwned + PartialEq + Debug + Copy>(
    all: &[T],
    names: &[&str],
) {
    assert_eq!(all.len(), names.len());
    for (member, name) in all.iter().zip(names) {
        assert_eq!(
            serde_json::to_value(member).expect("serializes"),
            serde_json::json!(name)
        );
        check_eq(member);
    }
}

#[test]
fn every_enum() {
    check_enum(ModelPrecision::ALL, ModelPrecision::NAMES);
    check_enum(ModelFormat::ALL, ModelFormat::NAMES);
    check_enum(ModelOptimizationType::ALL, ModelOptimizationType::NAMES);
    check_enum(OptimizationMethod::ALL, OptimizationMethod::NAMES);
    check_enum(TargetDevice::ALL, TargetDevice::NAMES);
    check_enum(MetadataType::ALL, MetadataType::NAMES);
    check_enum(ModelType::ALL, ModelType::NAMES);
    check_enum(ModelWeights::ALL, ModelWeights::NAMES);
    check_enum(WeightsFamily::ALL, WeightsFamily::NAMES);
    check_enum(TaskKind::ALL, TaskKind::NAMES);
    check_enum(Device::ALL, Device::NAMES);
    check_enum(FileType::ALL, FileType::NAMES);
    check_enum(LabelGroupType::ALL, LabelGroupType::NAMES);
    check_enum(
        &[
            FrameRangeProblem::Negative,
            FrameRangeProblem::Reversed,
            FrameRangeProblem::SpanTooLarge,
        ],
        &["negative", "reversed", "span_too_large"],
    );
    // Unknown names are refused on the wire.
    assert!(serde_json::from_str::<ModelPrecision>("\"fp64\"").is_err());
    assert!(serde_json::from_str::<ModelPrecision>("4").is_err());
}
