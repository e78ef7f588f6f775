//! The model entity: OTX's defaults, the model data and its deletion queue, equality, digests.

use std::collections::BTreeMap;

use chrono::Utc;
use kiln_entities::{
    BlobRef, DataError, DatasetRef, Label, LabelSchema, ModelConfiguration, ModelData, ModelEntity,
    ModelFormat, ModelOptimizationType, ModelPrecision, OptimizationMethod, Performance,
    SchemaError, Sha256Digest, TargetDevice,
};
use proptest::prelude::*;
use serde_json::json;

use crate::strategies::{DataOp, apply, data_op};

fn blob(n: u8) -> BlobRef {
    BlobRef {
        digest: Sha256Digest::from_bytes([n; 32]),
        size: u64::from(n) * 100,
        uri: format!("file:///blobs/{n}"),
    }
}

fn stored(n: u8) -> ModelData {
    ModelData::Stored(blob(n))
}

fn inline(bytes: &[u8]) -> ModelData {
    ModelData::Inline(bytes.to_vec())
}

#[test]
fn defaults_of_otx() {
    let before = Utc::now();
    let model = ModelEntity::new(ModelConfiguration::default());
    let after = Utc::now();
    assert_eq!(model.precision, [ModelPrecision::Fp32]);
    assert_eq!(model.version, 1);
    assert!(before <= model.creation_date && model.creation_date <= after);
    assert_eq!(model.model_format, ModelFormat::Onnx);
    assert_eq!(model.latency, 0);
    assert_eq!(model.fps_throughput, 0);
    assert_eq!(model.target_device, TargetDevice::Cpu);
    assert_eq!(model.target_device_type, None);
    assert_eq!(model.optimization_type, ModelOptimizationType::None);
    assert!(model.optimization_methods.is_empty());
    assert!(model.optimization_objectives.is_empty());
    assert!(model.performance_improvement.is_empty());
    assert_eq!(model.training_duration, 0.0);
    assert_eq!(model.model_size_reduction, 0.0);
    assert!(model.tags.is_empty());
    assert_eq!(model.performance, None);
    assert_eq!(model.train_dataset, None);
    assert_eq!(model.previous_revision, None);
    assert_eq!(model.previous_trained_revision, None);
    assert!(model.model_data().is_empty());
    assert_eq!(model.exportable_code(), None);
    assert!(model.pending_deletions().is_empty());
    assert!(!model.is_optimized());
    assert_eq!(model.id.as_uuid().get_version_num(), 7);
    assert_eq!(model.weight_paths(), Ok(BTreeMap::new()));

    let default = ModelEntity::default();
    assert_eq!(default.configuration, ModelConfiguration::default());
    assert_ne!(default.id, model.id, "every model gets a fresh id");
}

#[test]
fn is_optimized_is_optimization_type_not_none() {
    for &kind in ModelOptimizationType::ALL {
        let mut model = ModelEntity::default();
        model.optimization_type = kind;
        assert_eq!(
            model.is_optimized(),
            kind != ModelOptimizationType::None,
            "{kind}"
        );
    }
}

#[test]
fn equality_is_dataset_and_performance() {
    let mut a = ModelEntity::default();
    a.train_dataset = Some(DatasetRef::named("ds-1", "coco"));
    a.performance = Some(Performance::new("accuracy", 0.9).with_metric("top-5", 0.99));
    let mut b = ModelEntity::default();
    b.train_dataset = a.train_dataset.clone();
    b.performance = a.performance.clone();
    b.precision = vec![ModelPrecision::Int8];
    b.version = 7;
    assert_eq!(a, b, "different models, same dataset and performance");
    assert!(!a.same_as(&b));
    assert!(a.same_as(&a.clone()));

    let mut c = b.clone();
    c.performance = Some(Performance::new("accuracy", 0.8));
    assert_ne!(a, c);
    let mut d = b.clone();
    d.performance = Some(Performance::new("accuracy", 0.9));
    assert_ne!(a, d, "metrics are part of the performance");
    let mut e = b.clone();
    e.train_dataset = Some(DatasetRef::new("ds-2"));
    assert_ne!(a, e);
    let mut f = a.clone();
    f.set_data("w", inline(b"x"), false);
    assert_eq!(a, f);
    assert!(!a.same_as(&f));
}

/// Applies `ops` to a fresh model; checks the queued deletions and the keys left.
fn check(ops: &[DataOp], pending: &[u8], keys: &[&str]) {
    let mut model = ModelEntity::default();
    for op in ops {
        apply(&mut model, op.clone());
    }
    let expect: Vec<BlobRef> = pending.iter().map(|&n| blob(n)).collect();
    assert_eq!(model.pending_deletions(), expect, "{ops:?}");
    assert_eq!(
        model
            .model_data()
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        keys,
        "{ops:?}"
    );
    let taken = model.take_pending_deletions();
    assert_eq!(taken, expect);
    assert!(model.pending_deletions().is_empty());
}

#[test]
fn set_and_delete_queue_deletions() {
    use DataOp::{Code, Delete, Set};
    let set = |k: &str, d: ModelData| Set(k.into(), d, false);
    let skip = |k: &str, d: ModelData| Set(k.into(), d, true);
    let del = |k: &str| Delete(k.into());

    // Inline data was never saved: replacing or deleting it queues nothing.
    check(
        &[set("w", inline(b"a")), set("w", inline(b"b"))],
        &[],
        &["w"],
    );
    check(&[set("w", inline(b"a")), del("w")], &[], &[]);
    // Replacing stored data queues its blob, unless skip_deletion.
    check(&[set("w", stored(1)), set("w", stored(2))], &[1], &["w"]);
    check(&[set("w", stored(1)), skip("w", stored(2))], &[], &["w"]);
    check(
        &[set("w", stored(1)), set("w", inline(b"new"))],
        &[1],
        &["w"],
    );
    check(&[set("w", stored(1)), set("w", stored(1))], &[], &["w"]);
    // Deleting stored data queues it; deleting a missing key is a no-op.
    check(&[set("w", stored(1)), del("w")], &[1], &[]);
    check(&[del("w")], &[], &[]);
    check(&[set("w", stored(1)), del("w"), del("w")], &[1], &[]);
    // Queue order is oldest first.
    check(
        &[
            set("w", stored(1)),
            set("w", stored(2)),
            set("w", stored(3)),
        ],
        &[1, 2],
        &["w"],
    );
    check(
        &[set("a", stored(1)), set("b", stored(2)), del("b"), del("a")],
        &[2, 1],
        &[],
    );
    // A blob another key still uses is not queued until the last reference goes.
    check(
        &[
            set("a", stored(1)),
            set("b", stored(1)),
            set("a", stored(2)),
        ],
        &[],
        &["a", "b"],
    );
    check(
        &[
            set("a", stored(1)),
            set("b", stored(1)),
            set("a", stored(2)),
            del("b"),
        ],
        &[1],
        &["a"],
    );
    // Setting a queued blob again takes it off the queue.
    check(
        &[
            set("w", stored(1)),
            set("w", stored(2)),
            set("x", stored(1)),
        ],
        &[],
        &["w", "x"],
    );
    check(
        &[
            set("w", stored(1)),
            set("w", stored(2)),
            set("w", stored(1)),
        ],
        &[2],
        &["w"],
    );
    // No duplicates in the queue.
    check(
        &[set("w", stored(1)), del("w"), set("w", stored(1)), del("w")],
        &[1],
        &[],
    );
    // Exportable code follows the same rules and counts as a reference.
    check(&[Code(Some(stored(1))), Code(Some(stored(2)))], &[1], &[]);
    check(&[Code(Some(stored(1))), Code(None)], &[1], &[]);
    check(&[Code(Some(inline(b"zip"))), Code(None)], &[], &[]);
    check(
        &[set("w", stored(1)), Code(Some(stored(1))), del("w")],
        &[],
        &[],
    );
    check(
        &[set("w", stored(1)), del("w"), Code(Some(stored(1)))],
        &[],
        &[],
    );
}

proptest! {
    /// Whatever the operations, nothing queued is still referenced and nothing is queued twice.
    #[test]
    fn queue_never_holds_a_live_blob(ops in proptest::collection::vec(data_op(), 0..16)) {
        let mut model = ModelEntity::default();
        for op in ops {
            apply(&mut model, op);
        }
        let live: Vec<&BlobRef> = model
            .model_data()
            .values()
            .chain(model.exportable_code())
            .filter_map(ModelData::blob)
            .collect();
        let pending = model.pending_deletions().to_vec();
        for (i, blob) in pending.iter().enumerate() {
            prop_assert!(!live.contains(&blob));
            prop_assert!(!pending[..i].contains(blob));
        }
        prop_assert_eq!(model.take_pending_deletions(), pending);
    }
}

#[test]
fn set_and_delete_return_the_old_data() {
    let mut model = ModelEntity::default();
    assert_eq!(model.set_data("w", inline(b"a"), false), None);
    assert_eq!(model.set_data("w", stored(1), false), Some(inline(b"a")));
    assert_eq!(model.delete_data("w"), Some(stored(1)));
    assert_eq!(model.delete_data("w"), None);
    assert_eq!(model.set_exportable_code(Some(inline(b"zip"))), None);
    assert_eq!(model.exportable_code(), Some(&inline(b"zip")));
    assert_eq!(
        model.exportable_code().and_then(ModelData::inline_bytes),
        Some(&b"zip"[..])
    );
}

#[test]
fn get_data_and_bytes() {
    let mut model = ModelEntity::default();
    model.set_data("model.xml", inline(b"<net/>"), false);
    model.set_data("weights.bin", stored(3), false);
    assert_eq!(model.get_data("model.xml"), Ok(&inline(b"<net/>")));
    assert_eq!(model.get_bytes("model.xml"), Ok(&b"<net/>"[..]));
    assert_eq!(model.get_data("weights.bin"), Ok(&stored(3)));
    assert_eq!(
        model.get_bytes("weights.bin"),
        Err(DataError::NotLoaded {
            key: "weights.bin".into(),
            blob: blob(3)
        })
    );
    let missing = DataError::KeyNotFound {
        key: "labels".into(),
        available: vec!["model.xml".into(), "weights.bin".into()],
    };
    assert_eq!(model.get_data("labels"), Err(missing.clone()));
    assert_eq!(model.get_bytes("labels"), Err(missing.clone()));
    assert_eq!(
        missing.to_string(),
        "model has no data under key \"labels\" (keys: model.xml, weights.bin)"
    );
    assert_eq!(stored(3).size(), 300);
    assert_eq!(inline(b"abc").size(), 3);
}

#[test]
fn weight_paths_need_saved_data() {
    let mut model = ModelEntity::default();
    model.set_data("a", stored(1), false);
    model.set_data("b", stored(2), false);
    let paths = model.weight_paths().expect("all stored");
    assert_eq!(paths.get("a").map(String::as_str), Some("file:///blobs/1"));
    assert_eq!(paths.get("b").map(String::as_str), Some("file:///blobs/2"));
    model.set_data("c", inline(b"new"), false);
    model.set_data("d", inline(b"new"), false);
    assert_eq!(
        model.weight_paths(),
        Err(DataError::NotSaved {
            keys: vec!["c".into(), "d".into()]
        })
    );
}

#[test]
fn digests() {
    let lower = "ab".repeat(32);
    let check = |text: &str, ok: bool| {
        let parsed = Sha256Digest::parse(text);
        match (parsed, ok) {
            (Ok(digest), true) => assert_eq!(digest.as_str(), text.to_ascii_lowercase()),
            (Err(DataError::InvalidDigest { value, .. }), false) => assert_eq!(value, text),
            (other, _) => panic!("{text:?}: {other:?}"),
        }
    };
    check(&lower, true);
    check(&"AB".repeat(32), true);
    check(&"0".repeat(64), true);
    check(&"a".repeat(63), false);
    check(&"a".repeat(65), false);
    check(&format!("{}g", "a".repeat(63)), false);
    check("", false);
    check(&"é".repeat(32), false);
    assert_eq!(Sha256Digest::from_bytes([0xab; 32]).as_str(), lower);
    assert!(serde_json::from_value::<Sha256Digest>(json!("xyz")).is_err());
    assert_eq!(
        serde_json::to_value(Sha256Digest::from_bytes([0xab; 32])).ok(),
        Some(json!(lower))
    );
}

#[test]
fn model_data_wire_form() {
    assert_eq!(
        serde_json::to_value(inline(&[0, 1, 0xff])).ok(),
        Some(json!({"inline": "0001ff"}))
    );
    assert_eq!(
        serde_json::from_value::<ModelData>(json!({"inline": "0001FF"})).ok(),
        Some(inline(&[0, 1, 0xff]))
    );
    assert!(serde_json::from_value::<ModelData>(json!({"inline": "001"})).is_err());
    assert!(serde_json::from_value::<ModelData>(json!({"inline": "zz"})).is_err());
    let value = serde_json::to_value(stored(1)).expect("serializes");
    assert_eq!(value["stored"]["digest"], json!("01".repeat(32)));
    assert_eq!(value["stored"]["size"], json!(100));
}

#[test]
fn entity_json_reads_with_optional_fields_missing() {
    let model = ModelEntity::default();
    let mut value = serde_json::to_value(&model).expect("serializes");
    let object = value.as_object_mut().expect("an object");
    for optional in [
        "train_dataset",
        "performance",
        "tags",
        "data",
        "exportable_code",
        "optimization_methods",
    ] {
        object.remove(optional);
    }
    let back: ModelEntity = serde_json::from_value(value).expect("reads");
    assert!(back.same_as(&model));
}

#[test]
fn label_schema() {
    let schema = LabelSchema::exclusive(
        "animals",
        vec![
            Label::new("1", "cat"),
            Label::new("2", "dog"),
            Label::new("3", "bird"),
        ],
    );
    assert_eq!(schema.validate(), Ok(()));
    assert_eq!(
        schema.label_by_name("dog").map(|l| l.id.as_str()),
        Some("2")
    );
    let group = schema.group("animals").expect("group");
    assert_eq!(
        schema
            .labels_of(group)
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["cat", "dog", "bird"]
    );
    assert_eq!(
        schema.label_enumeration(),
        BTreeMap::from([
            ("cat".to_owned(), 0),
            ("dog".to_owned(), 1),
            ("bird".to_owned(), 2)
        ])
    );

    let check =
        |schema: LabelSchema, expect: SchemaError| assert_eq!(schema.validate(), Err(expect));
    let mut dup_id = schema.clone();
    dup_id.labels.push(Label::new("1", "fish"));
    check(dup_id, SchemaError::DuplicateLabelId { id: "1".into() });
    let mut dup_name = schema.clone();
    dup_name.labels.push(Label::new("4", "cat"));
    check(
        dup_name,
        SchemaError::DuplicateLabelName { name: "cat".into() },
    );
    let mut blank = schema.clone();
    blank.labels.push(Label::new("4", " "));
    check(blank, SchemaError::EmptyLabelName { id: "4".into() });
    let mut unknown = schema.clone();
    unknown.groups[0].labels.push("9".into());
    check(
        unknown,
        SchemaError::UnknownLabel {
            group: "animals".into(),
            label: "9".into(),
        },
    );
    let mut dup_group = schema.clone();
    dup_group.groups.push(dup_group.groups[0].clone());
    check(
        dup_group,
        SchemaError::DuplicateGroupName {
            name: "animals".into(),
        },
    );
}

#[test]
fn quantized_revision_example() {
    let fp32 = ModelEntity::default();
    let mut int8 = ModelEntity::new(fp32.configuration.clone());
    int8.previous_revision = Some(fp32.id);
    int8.precision = vec![ModelPrecision::Int8, ModelPrecision::Fp32];
    int8.optimization_type = ModelOptimizationType::Pot;
    int8.optimization_methods = vec![OptimizationMethod::Quantization];
    int8.performance_improvement.insert("latency".into(), 2.5);
    int8.model_size_reduction = 0.74;
    let json = serde_json::to_value(&int8).expect("serializes");
    assert_eq!(json["precision"], json!(["int8", "fp32"]));
    assert_eq!(json["optimization_type"], json!("pot"));
    assert_eq!(json["previous_revision"], json!(fp32.id.to_string()));
    assert_eq!(json["model_format"], json!("onnx"));
}

#[test]
fn take_skips_blobs_a_read_model_still_uses() {
    let mut model = ModelEntity::default();
    model.set_data("w", stored(1), false);
    let mut json = serde_json::to_value(&model).expect("serializes");
    json["pending_deletions"] = json!([blob(1), blob(2)]);
    let mut read: ModelEntity = serde_json::from_value(json).expect("reads");
    assert_eq!(read.take_pending_deletions(), [blob(2)]);
    assert!(read.pending_deletions().is_empty());
}
