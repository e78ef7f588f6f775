//! Proptest strategies for every public type, built through the public API.

use chrono::{DateTime, Utc};
use kiln_entities::{
    BlobRef, Color, DataHashInput, DatasetRef, Design, Device, FrameRange, InferenceInputs,
    InferenceParams, InputFile, Label, LabelGroup, LabelGroupType, LabelId, LabelSchema, Metadata,
    MetadataEntry, MetadataType, MetadataValue, ModelConfiguration, ModelData, ModelEntity,
    ModelFormat, ModelId, ModelOptimizationType, ModelPrecision, ModelRecord, ModelRow, ModelType,
    ModelWeights, OptimizationMethod, Performance, Sha256Digest, TargetDevice, TrainingParams,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Short printable text.
pub fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

/// Any finite float.
pub fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

/// One member of an enum, from its `ALL`.
pub fn member<T: Copy + std::fmt::Debug + 'static>(all: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(text(), json_value(), 0..4).prop_map(|m| m.into_iter().collect())
}

pub fn datetime() -> impl Strategy<Value = DateTime<Utc>> {
    (0_i64..253_402_300_799, 0_u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).expect("in chrono's range"))
}

pub fn model_id() -> impl Strategy<Value = ModelId> {
    any::<u128>().prop_map(|n| ModelId::from_uuid(Uuid::from_u128(n)))
}

pub fn digest() -> impl Strategy<Value = Sha256Digest> {
    any::<[u8; 32]>().prop_map(Sha256Digest::from_bytes)
}

pub fn blob() -> impl Strategy<Value = BlobRef> {
    (digest(), any::<u64>(), text()).prop_map(|(digest, size, uri)| BlobRef { digest, size, uri })
}

pub fn model_data() -> impl Strategy<Value = ModelData> {
    prop_oneof![
        vec(any::<u8>(), 0..16).prop_map(ModelData::Inline),
        blob().prop_map(ModelData::Stored),
    ]
}

pub fn color() -> impl Strategy<Value = Color> {
    any::<[u8; 4]>().prop_map(|[red, green, blue, alpha]| Color {
        red,
        green,
        blue,
        alpha,
    })
}

pub fn label() -> impl Strategy<Value = Label> {
    (
        text(),
        text(),
        option::of(color()),
        option::of(text()),
        any::<bool>(),
    )
        .prop_map(|(id, name, color, hotkey, is_empty)| Label {
            id: LabelId(id),
            name,
            color,
            hotkey,
            is_empty,
        })
}

pub fn label_schema() -> impl Strategy<Value = LabelSchema> {
    let group = (
        text(),
        vec(text().prop_map(LabelId), 0..3),
        member(LabelGroupType::ALL),
    )
        .prop_map(|(name, labels, group_type)| LabelGroup {
            name,
            labels,
            group_type,
        });
    (vec(label(), 0..4), vec(group, 0..3))
        .prop_map(|(labels, groups)| LabelSchema { labels, groups })
}

pub fn configuration() -> impl Strategy<Value = ModelConfiguration> {
    (json_map(), label_schema()).prop_map(|(p, s)| ModelConfiguration::new(p, s))
}

pub fn performance() -> impl Strategy<Value = Performance> {
    (text(), finite(), btree_map(text(), finite(), 0..3)).prop_map(|(name, value, metrics)| {
        let mut performance = Performance::new(name, value);
        performance.metrics = metrics;
        performance
    })
}

pub fn dataset() -> impl Strategy<Value = DatasetRef> {
    (text(), option::of(text())).prop_map(|(id, name)| DatasetRef { id, name })
}

/// Data operations applied through the public API, so pending deletions are reachable states.
#[derive(Debug, Clone)]
pub enum DataOp {
    Set(String, ModelData, bool),
    Delete(String),
    Code(Option<ModelData>),
}

/// Model data from a small pool, so that operations often meet the same blob again.
pub fn pooled_data() -> impl Strategy<Value = ModelData> {
    prop_oneof![
        vec(any::<u8>(), 0..4).prop_map(ModelData::Inline),
        (0_u8..3).prop_map(|n| ModelData::Stored(BlobRef {
            digest: Sha256Digest::from_bytes([n; 32]),
            size: u64::from(n),
            uri: format!("mem://{n}"),
        })),
    ]
}

pub fn data_op() -> impl Strategy<Value = DataOp> {
    let key = proptest::sample::select(&["weights.onnx", "model.xml", "labels.json"][..])
        .prop_map(String::from);
    prop_oneof![
        (key.clone(), pooled_data(), any::<bool>()).prop_map(|(k, d, s)| DataOp::Set(k, d, s)),
        key.prop_map(DataOp::Delete),
        option::of(pooled_data()).prop_map(DataOp::Code),
    ]
}

pub fn apply(model: &mut ModelEntity, op: DataOp) {
    match op {
        DataOp::Set(key, data, skip) => {
            model.set_data(key, data, skip);
        }
        DataOp::Delete(key) => {
            model.delete_data(&key);
        }
        DataOp::Code(code) => {
            model.set_exportable_code(code);
        }
    }
}

pub fn model_entity() -> impl Strategy<Value = ModelEntity> {
    (
        (
            model_id(),
            option::of(dataset()),
            configuration(),
            datetime(),
            option::of(performance()),
            option::of(model_id()),
            option::of(model_id()),
            any::<u32>(),
            vec(text(), 0..3),
        ),
        (
            member(ModelFormat::ALL),
            finite(),
            vec(member(ModelPrecision::ALL), 0..4),
            any::<u64>(),
            any::<u64>(),
            member(TargetDevice::ALL),
            option::of(text()),
            member(ModelOptimizationType::ALL),
            vec(member(OptimizationMethod::ALL), 0..3),
        ),
        (
            btree_map(text(), text(), 0..3),
            btree_map(text(), finite(), 0..3),
            finite(),
            vec(data_op(), 0..8),
        ),
    )
        .prop_map(|(a, b, c)| {
            let (
                id,
                train_dataset,
                configuration,
                creation_date,
                performance,
                ptr,
                pr,
                version,
                tags,
            ) = a;
            let (
                model_format,
                training_duration,
                precision,
                latency,
                fps,
                device,
                device_type,
                opt,
                methods,
            ) = b;
            let (objectives, improvement, reduction, ops) = c;
            let mut model = ModelEntity::new(configuration);
            model.id = id;
            model.train_dataset = train_dataset;
            model.creation_date = creation_date;
            model.performance = performance;
            model.previous_trained_revision = ptr;
            model.previous_revision = pr;
            model.version = version;
            model.tags = tags;
            model.model_format = model_format;
            model.training_duration = training_duration;
            model.precision = precision;
            model.latency = latency;
            model.fps_throughput = fps;
            model.target_device = device;
            model.target_device_type = device_type;
            model.optimization_type = opt;
            model.optimization_methods = methods;
            model.optimization_objectives = objectives;
            model.performance_improvement = improvement;
            model.model_size_reduction = reduction;
            for op in ops {
                apply(&mut model, op);
            }
            model
        })
}

pub fn metadata_value() -> impl Strategy<Value = MetadataValue> {
    prop_oneof![
        finite().prop_map(MetadataValue::Float),
        any::<i64>().prop_map(MetadataValue::Int),
        any::<bool>().prop_map(MetadataValue::Bool),
        text().prop_map(MetadataValue::Str),
        vec(json_value(), 0..4).prop_map(MetadataValue::List),
        vec(json_value(), 0..4).prop_map(MetadataValue::Tuple),
        json_map().prop_map(MetadataValue::Dict),
    ]
}

pub fn metadata_entry() -> impl Strategy<Value = MetadataEntry> {
    (text(), text(), member(MetadataType::ALL)).prop_map(|(k, v, t)| MetadataEntry::new(k, v, t))
}

pub fn metadata() -> impl Strategy<Value = Metadata> {
    vec(metadata_entry(), 0..5).prop_map(Metadata::from_iter)
}

pub fn design() -> impl Strategy<Value = Design> {
    prop_oneof![
        text().prop_map(Design::Text),
        json_map().prop_map(Design::Dict)
    ]
}

pub fn model_record() -> impl Strategy<Value = ModelRecord> {
    (
        (
            model_id(),
            text(),
            text(),
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(model_id()),
        ),
        (
            btree_map(text(), any::<i64>(), 0..4),
            option::of(design()),
            vec(text(), 0..3),
            vec(
                prop_oneof![
                    Just("archived".to_owned()),
                    Just("package".to_owned()),
                    text()
                ],
                0..3,
            ),
            any::<bool>(),
            option::of(text()),
            metadata(),
        ),
    )
        .prop_map(
            |((id, name, comment, framework, project, task, parent), b)| {
                let (labels, design, tags, system_tags, published, uri, metadata) = b;
                ModelRecord {
                    id,
                    name,
                    comment,
                    framework,
                    project,
                    task,
                    parent,
                    labels,
                    design,
                    tags,
                    system_tags,
                    published,
                    uri,
                    metadata,
                }
            },
        )
}

pub fn model_row() -> impl Strategy<Value = ModelRow> {
    (
        any::<u128>(),
        text(),
        option::of(text()),
        vec(text(), 0..4),
        member(ModelType::ALL),
    )
        .prop_map(|(uid, title, description, features, model)| ModelRow {
            uid: Uuid::from_u128(uid),
            title,
            description,
            features,
            model,
        })
}

pub fn training_params() -> impl Strategy<Value = TrainingParams> {
    (
        vec(text(), 0..4),
        any::<u32>(),
        any::<u32>(),
        member(ModelWeights::ALL),
        member(Device::ALL),
    )
        .prop_map(
            |(label_rows, epochs, batch_size, weights, device)| TrainingParams {
                label_rows,
                epochs,
                batch_size,
                weights,
                device,
            },
        )
}

pub fn inference_inputs() -> impl Strategy<Value = InferenceInputs> {
    let file = (text(), any::<u64>(), vec(any::<u8>(), 0..70))
        .prop_map(|(name, size, head)| InputFile { name, size, head });
    let hash =
        (text(), option::of(any::<u64>())).prop_map(|(hash, size)| DataHashInput { hash, size });
    prop_oneof![
        vec(file, 0..3).prop_map(InferenceInputs::Files),
        vec(text(), 0..3).prop_map(InferenceInputs::Base64Strings),
        vec(hash, 0..3).prop_map(InferenceInputs::DataHashes),
    ]
}

pub fn inference_params() -> impl Strategy<Value = InferenceParams> {
    (
        inference_inputs(),
        finite(),
        finite(),
        finite(),
        option::of(any::<(i64, i64)>().prop_map(|(s, e)| FrameRange::new(s, e))),
        member(Device::ALL),
        any::<bool>(),
    )
        .prop_map(
            |(
                inputs,
                conf_thresh,
                iou_thresh,
                rdp_thresh,
                detection_frame_range,
                device,
                allocation_enabled,
            )| {
                InferenceParams {
                    inputs,
                    conf_thresh,
                    iou_thresh,
                    rdp_thresh,
                    detection_frame_range,
                    device,
                    allocation_enabled,
                }
            },
        )
}
