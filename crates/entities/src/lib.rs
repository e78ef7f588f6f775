//! kiln-entities: kiln's plain data — the model entity, its enums, the registry record and the
//! training/inference parameters, with their validation. No IO, no async.
//!
//! Every type here is plain data with public fields in the vocabulary of the projects kiln follows
//! (OpenVINO Training Extensions, ClearML, the Encord models SDK), serde round-trippable, and
//! validated on the type itself. Storage, the CLI, the server and the clients build on it.
//!
//! # Overview
//!
//! | Area | Types | From |
//! |---|---|---|
//! | The model | [`ModelEntity`], [`ModelId`], [`DatasetRef`], [`ModelData`], [`BlobRef`], [`Sha256Digest`] | OTX `ModelEntity` |
//! | How it was made | [`ModelConfiguration`], [`LabelSchema`], [`Label`], [`LabelGroup`], [`Color`] | OTX `ModelConfiguration` |
//! | How it performs | [`Performance`], [`ScoreMetric`] | OTX `Performance` |
//! | Its vocabularies | [`ModelPrecision`], [`ModelFormat`], [`ModelOptimizationType`], [`OptimizationMethod`], [`TargetDevice`] | OTX `IntEnum`s |
//! | The registry record | [`ModelRecord`], [`Design`], [`Metadata`], [`MetadataEntry`], [`MetadataType`], [`MetadataValue`] | ClearML `OutputModel` |
//! | The model catalogue | [`ModelRow`], [`ModelType`], [`TaskKind`], [`ModelWeights`], [`WeightsFamily`] | Encord models SDK |
//! | Training and inference | [`TrainingParams`], [`InferenceParams`], [`InferenceInputs`], [`InputFile`], [`DataHashInput`], [`FrameRange`], [`Device`], [`FileType`], [`detect_file_type`] | Encord models SDK |
//!
//! # Errors
//!
//! One error enum per boundary, each variant carrying the offending names and values:
//! [`ParseEnumError`] (unknown enum names and codes), [`DataError`] (model data and digests),
//! [`SchemaError`] (label schemas, colours), [`DesignError`] (`config_text` / `config_dict`),
//! [`MetadataError`] (metadata casts) and [`ValidationError`] (training and inference
//! parameters, model rows).
//!
//! # Wire forms
//!
//! Enums are their snake_case names (`"fp32"`, `"openvino"`, `"faster_rcnn_R_50_C4_1x"`), and the
//! OTX ones also have stable integer codes numbered from 1 (`code()`, `TryFrom<i32>`) for
//! storage. Bytes (inline model data, file heads) are lowercase hex strings. Dates are RFC 3339.
//! Floats round-trip exactly through JSON; non-finite floats do not (JSON has no NaN).
//!
//! # Example
//!
//! ```
//! use kiln_entities::{
//!     ModelConfiguration, ModelEntity, ModelOptimizationType, ModelPrecision, OptimizationMethod,
//! };
//!
//! let fp32 = ModelEntity::new(ModelConfiguration::default());
//! let mut int8 = ModelEntity::new(fp32.configuration.clone());
//! int8.previous_revision = Some(fp32.id);
//! int8.precision = vec![ModelPrecision::Int8];
//! int8.optimization_type = ModelOptimizationType::Pot;
//! int8.optimization_methods = vec![OptimizationMethod::Quantization];
//! assert!(int8.is_optimized() && !fp32.is_optimized());
//!
//! let json = serde_json::to_string(&int8).expect("entities serialize");
//! let back: ModelEntity = serde_json::from_str(&json).expect("and read back");
//! assert!(back.same_as(&int8));
//! ```

mod macros;

mod catalogue;
mod configuration;
mod enums;
mod hex;
mod literal;
mod metadata;
mod model;
mod params;
mod performance;
mod record;
mod sniff;

pub use catalogue::{ModelRow, ModelType, ModelWeights, TaskKind, WeightsFamily};
pub use configuration::{
    Color, Label, LabelGroup, LabelGroupType, LabelId, LabelSchema, ModelConfiguration, SchemaError,
};
pub use enums::{
    ModelFormat, ModelOptimizationType, ModelPrecision, OptimizationMethod, ParseEnumError,
    TargetDevice,
};
pub use metadata::{Metadata, MetadataEntry, MetadataError, MetadataType, MetadataValue};
pub use model::{BlobRef, DataError, DatasetRef, ModelData, ModelEntity, ModelId, Sha256Digest};
pub use params::{
    DEFAULT_BATCH_SIZE, DEFAULT_CONF_THRESH, DEFAULT_IOU_THRESH, DEFAULT_RDP_THRESH, DataHashInput,
    Device, FrameRange, FrameRangeProblem, InferenceInputs, InferenceParams, InputFile,
    MAX_DETECTION_FRAME_SPAN, MAX_RDP_THRESH, MAX_TOTAL_INPUT_BYTES, TrainingParams,
    ValidationError,
};
pub use performance::{Performance, ScoreMetric};
pub use record::{ARCHIVED_TAG, Design, DesignError, ModelRecord, PACKAGE_TAG};
pub use sniff::{FileType, SNIFF_LEN, detect_file_type};
