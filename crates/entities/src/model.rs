//! The model entity (OTX `ModelEntity`): what a trained or optimized model is, how it was made and
//! measured, and where its bytes live.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::configuration::ModelConfiguration;
use crate::enums::{
    ModelFormat, ModelOptimizationType, ModelPrecision, OptimizationMethod, TargetDevice,
};
use crate::performance::Performance;

/// Why model data cannot be read or referenced as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The model has no data under this key.
    #[error("model has no data under key {key:?} (keys: {})", available.join(", "))]
    KeyNotFound {
        /// The key asked for.
        key: String,
        /// The keys the model has.
        available: Vec<String>,
    },
    /// The data is in the blob store, not in memory: fetch `blob` from the registry.
    #[error("data {key:?} is stored as blob sha256:{} at {}; fetch it from the registry", blob.digest, blob.uri)]
    NotLoaded {
        /// The key asked for.
        key: String,
        /// Where the bytes are.
        blob: BlobRef,
    },
    /// Some data is still inline: the model has not been saved by a repository yet.
    #[error("model data not saved yet; inline keys: {}", keys.join(", "))]
    NotSaved {
        /// The keys whose data is inline.
        keys: Vec<String>,
    },
    /// A string is not a SHA-256 digest.
    #[error("invalid sha256 digest {value:?}: {reason}")]
    InvalidDigest {
        /// The offending text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The identifier of a model: a UUID, version 7 (time-ordered) when kiln makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelId(Uuid);

impl ModelId {
    /// A fresh, time-ordered (UUID v7) id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for ModelId {
    /// A fresh id, as [`ModelId::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for ModelId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl From<Uuid> for ModelId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl From<ModelId> for Uuid {
    fn from(id: ModelId) -> Self {
        id.0
    }
}

/// A reference to the dataset a model was trained on. Entities do no IO, so this names the
/// dataset rather than holding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The dataset's id in whatever system holds it.
    pub id: String,
    /// A human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl DatasetRef {
    /// A reference by id only.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
        }
    }

    /// A reference by id and name.
    pub fn named(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: Some(name.into()),
        }
    }
}

/// A SHA-256 digest, kept as 64 lowercase hex digits (uppercase input is accepted and lowered).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest(String);

impl Sha256Digest {
    /// The digest of the 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(crate::hex::encode(&bytes))
    }

    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Result<Self, DataError> {
        let invalid = |reason: String| DataError::InvalidDigest {
            value: text.to_owned(),
            reason,
        };
        if text.len() != 64 {
            return Err(invalid(format!(
                "expected 64 hex digits, got {} bytes",
                text.len()
            )));
        }
        crate::hex::decode(text).map_err(|e| invalid(e.to_string()))?;
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// The 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Sha256Digest {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = DataError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Sha256Digest> for String {
    fn from(digest: Sha256Digest) -> Self {
        digest.0
    }
}

/// Where a blob lives in the blob store: its content digest, size and URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// SHA-256 of the content.
    pub digest: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
    /// Where to fetch it, e.g. `file:///var/kiln/blobs/sha256/ab/cdef…` or `s3://bucket/…`.
    pub uri: String,
}

/// The bytes of one piece of model data (weights, an XML graph, a label map, ...), either held in
/// memory or stored in the blob store.
///
/// On the wire: `{"inline": "<lowercase hex>"}` or `{"stored": {"digest", "size", "uri"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelData {
    /// Bytes in memory, not yet saved (serialized as one lowercase hex string).
    Inline(#[serde(with = "crate::hex::bytes")] Vec<u8>),
    /// Bytes in the blob store.
    Stored(BlobRef),
}

impl ModelData {
    /// The bytes, when they are inline.
    pub fn inline_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Inline(bytes) => Some(bytes),
            Self::Stored(_) => None,
        }
    }

    /// The blob, when the data is stored.
    pub fn blob(&self) -> Option<&BlobRef> {
        match self {
            Self::Inline(_) => None,
            Self::Stored(blob) => Some(blob),
        }
    }

    /// The size of the data in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Self::Inline(bytes) => u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            Self::Stored(blob) => blob.size,
        }
    }
}

impl From<Vec<u8>> for ModelData {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Inline(bytes)
    }
}

impl From<BlobRef> for ModelData {
    fn from(blob: BlobRef) -> Self {
        Self::Stored(blob)
    }
}

/// A model: how it was made (configuration, training dataset, lineage), how it performs, how it
/// was optimized and where its bytes are (OTX `ModelEntity`).
///
/// Properties of OTX are public fields; the model data (OTX's model adapters) and the deletions
/// they queue are private, so that [`ModelEntity::set_data`] and [`ModelEntity::delete_data`] keep
/// the deletion queue right.
///
/// # Equality
///
/// As in OTX, `==` says whether two models **use the same training dataset and have the same
/// performance** — nothing else is compared: two different models trained on the same dataset to
/// the same score are equal. Use [`ModelEntity::same_as`] to compare every field.
///
/// # Example
///
/// ```
/// use kiln_entities::{ModelConfiguration, ModelData, ModelEntity, ModelPrecision};
///
/// let mut model = ModelEntity::new(ModelConfiguration::default());
/// assert_eq!(model.precision, [ModelPrecision::Fp32]);
/// model.set_data("weights.onnx", ModelData::Inline(vec![0x08, 0x07]), false);
/// assert_eq!(model.get_bytes("weights.onnx").ok(), Some(&[0x08, 0x07][..]));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelEntity {
    /// The model's id.
    pub id: ModelId,
    /// The dataset the model was trained on, when known.
    #[serde(default)]
    pub train_dataset: Option<DatasetRef>,
    /// The task configuration used to produce the model.
    pub configuration: ModelConfiguration,
    /// When the model was created (default: now).
    pub creation_date: DateTime<Utc>,
    /// How well the model does, once measured.
    #[serde(default)]
    pub performance: Option<Performance>,
    /// The model this one was last trained from.
    #[serde(default)]
    pub previous_trained_revision: Option<ModelId>,
    /// The model this one is a revision of (e.g. the float model an INT8 model came from).
    #[serde(default)]
    pub previous_revision: Option<ModelId>,
    /// The version (default 1).
    pub version: u32,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The file format (default [`ModelFormat::Onnx`], kiln's native format; OTX defaults to
    /// OpenVINO).
    pub model_format: ModelFormat,
    /// How long training took, in seconds (default 0.0).
    pub training_duration: f64,
    /// The precisions the model uses (default `[Fp32]`).
    pub precision: Vec<ModelPrecision>,
    /// Inference latency in milliseconds (default 0: not measured).
    pub latency: u64,
    /// Throughput in frames per second (default 0: not measured).
    pub fps_throughput: u64,
    /// The kind of device the model is deployed on (default [`TargetDevice::Cpu`]).
    pub target_device: TargetDevice,
    /// The specific device type, e.g. `"Intel(R) Xeon(R) Gold 6338"` or `"NVIDIA H100"`.
    #[serde(default)]
    pub target_device_type: Option<String>,
    /// The tool that optimized the model (default [`ModelOptimizationType::None`]).
    pub optimization_type: ModelOptimizationType,
    /// The optimization methods applied.
    #[serde(default)]
    pub optimization_methods: Vec<OptimizationMethod>,
    /// The optimization objectives or levels, e.g. `{"preset": "performance"}`.
    #[serde(default)]
    pub optimization_objectives: BTreeMap<String, String>,
    /// How much optimization improved each measure, e.g. `{"latency": 2.7}`.
    #[serde(default)]
    pub performance_improvement: BTreeMap<String, f64>,
    /// How much optimization reduced the model size, as a ratio (default 0.0).
    pub model_size_reduction: f64,
    #[serde(default)]
    data: BTreeMap<String, ModelData>,
    #[serde(default)]
    exportable_code: Option<ModelData>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending_deletions: Vec<BlobRef>,
}

impl ModelEntity {
    /// A new model with a fresh id, created now, with OTX's defaults: version 1, precision
    /// `[Fp32]`, target device CPU, not optimized, latency/throughput 0, no data — and format ONNX.
    pub fn new(configuration: ModelConfiguration) -> Self {
        Self {
            id: ModelId::new(),
            train_dataset: None,
            configuration,
            creation_date: Utc::now(),
            performance: None,
            previous_trained_revision: None,
            previous_revision: None,
            version: 1,
            tags: Vec::new(),
            model_format: ModelFormat::default(),
            training_duration: 0.0,
            precision: vec![ModelPrecision::Fp32],
            latency: 0,
            fps_throughput: 0,
            target_device: TargetDevice::default(),
            target_device_type: None,
            optimization_type: ModelOptimizationType::default(),
            optimization_methods: Vec::new(),
            optimization_objectives: BTreeMap::new(),
            performance_improvement: BTreeMap::new(),
            model_size_reduction: 0.0,
            data: BTreeMap::new(),
            exportable_code: None,
            pending_deletions: Vec::new(),
        }
    }

    /// Whether the model has been optimized: `optimization_type != None`.
    pub fn is_optimized(&self) -> bool {
        self.optimization_type != ModelOptimizationType::None
    }

    /// Every piece of model data by key (OTX's `model_adapters`).
    pub fn model_data(&self) -> &BTreeMap<String, ModelData> {
        &self.data
    }

    /// The data under `key`. Stored data is returned as its [`BlobRef`]: fetching the bytes is
    /// the registry's job (see [`ModelEntity::get_bytes`] for bytes or an error).
    pub fn get_data(&self, key: &str) -> Result<&ModelData, DataError> {
        self.data.get(key).ok_or_else(|| DataError::KeyNotFound {
            key: key.to_owned(),
            available: self.data.keys().cloned().collect(),
        })
    }

    /// The bytes under `key` when they are inline; [`DataError::NotLoaded`] (carrying the blob
    /// to fetch) when they are stored.
    pub fn get_bytes(&self, key: &str) -> Result<&[u8], DataError> {
        match self.get_data(key)? {
            ModelData::Inline(bytes) => Ok(bytes),
            ModelData::Stored(blob) => Err(DataError::NotLoaded {
                key: key.to_owned(),
                blob: blob.clone(),
            }),
        }
    }

    /// Sets the data under `key` and returns what was there.
    ///
    /// When the key held stored data, its blob is queued for deletion (see
    /// [`ModelEntity::pending_deletions`]) unless `skip_deletion` is true — OTX says to skip only
    /// when replacing bytes with a file that must be kept. Inline data was never saved, so
    /// replacing it queues nothing. A blob still referenced by another key (or by the exportable
    /// code) is never queued, and setting a queued blob again takes it off the queue.
    pub fn set_data(
        &mut self,
        key: impl Into<String>,
        data: ModelData,
        skip_deletion: bool,
    ) -> Option<ModelData> {
        self.unqueue(&data);
        let old = self.data.insert(key.into(), data);
        if let Some(ModelData::Stored(blob)) = &old
            && !skip_deletion
        {
            self.queue_deletion(blob);
        }
        old
    }

    /// Removes the data under `key` and returns it; stored data has its blob queued for deletion
    /// (unless still referenced elsewhere in the model). A missing key is a no-op (`None`).
    ///
    /// As OTX notes, an optimized model must keep at least one piece of data to stay usable.
    pub fn delete_data(&mut self, key: &str) -> Option<ModelData> {
        let old = self.data.remove(key);
        if let Some(ModelData::Stored(blob)) = &old {
            self.queue_deletion(blob);
        }
        old
    }

    /// The blobs to delete once the model is saved, oldest first, without duplicates. None of
    /// them is referenced by this model any more; a repository should still check that no other
    /// model refers to one before deleting it.
    pub fn pending_deletions(&self) -> &[BlobRef] {
        &self.pending_deletions
    }

    /// Takes the queued deletions, leaving the queue empty: what a repository calls after saving.
    pub fn take_pending_deletions(&mut self) -> Vec<BlobRef> {
        let mut taken = std::mem::take(&mut self.pending_deletions);
        taken.retain(|blob| !self.references(blob));
        taken
    }

    /// The URI of each piece of data, by key (OTX's `weight_paths`). Fails with
    /// [`DataError::NotSaved`] naming the inline keys when any data has not been saved yet.
    pub fn weight_paths(&self) -> Result<BTreeMap<String, String>, DataError> {
        let inline: Vec<String> = self
            .data
            .iter()
            .filter(|(_, data)| data.blob().is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if !inline.is_empty() {
            return Err(DataError::NotSaved { keys: inline });
        }
        Ok(self
            .data
            .iter()
            .filter_map(|(key, data)| data.blob().map(|blob| (key.clone(), blob.uri.clone())))
            .collect())
    }

    /// The exportable code (a deployable package: demo, model wrapper), if any.
    pub fn exportable_code(&self) -> Option<&ModelData> {
        self.exportable_code.as_ref()
    }

    /// Sets (or clears) the exportable code and returns the previous one. A previous stored code
    /// is queued for deletion by the same rule as [`ModelEntity::set_data`].
    pub fn set_exportable_code(&mut self, code: Option<ModelData>) -> Option<ModelData> {
        if let Some(code) = &code {
            self.unqueue(code);
        }
        let old = std::mem::replace(&mut self.exportable_code, code);
        if let Some(ModelData::Stored(blob)) = &old {
            self.queue_deletion(blob);
        }
        old
    }

    /// Structural equality: every field, data and queued deletions included (unlike `==`, which
    /// compares the training dataset and performance only, as OTX does).
    pub fn same_as(&self, other: &Self) -> bool {
        let Self {
            id,
            train_dataset,
            configuration,
            creation_date,
            performance,
            previous_trained_revision,
            previous_revision,
            version,
            tags,
            model_format,
            training_duration,
            precision,
            latency,
            fps_throughput,
            target_device,
            target_device_type,
            optimization_type,
            optimization_methods,
            optimization_objectives,
            performance_improvement,
            model_size_reduction,
            data,
            exportable_code,
            pending_deletions,
        } = self;
        *id == other.id
            && *train_dataset == other.train_dataset
            && *configuration == other.configuration
            && *creation_date == other.creation_date
            && *performance == other.performance
            && *previous_trained_revision == other.previous_trained_revision
            && *previous_revision == other.previous_revision
            && *version == other.version
            && *tags == other.tags
            && *model_format == other.model_format
            && *training_duration == other.training_duration
            && *precision == other.precision
            && *latency == other.latency
            && *fps_throughput == other.fps_throughput
            && *target_device == other.target_device
            && *target_device_type == other.target_device_type
            && *optimization_type == other.optimization_type
            && *optimization_methods == other.optimization_methods
            && *optimization_objectives == other.optimization_objectives
            && *performance_improvement == other.performance_improvement
            && *model_size_reduction == other.model_size_reduction
            && *data == other.data
            && *exportable_code == other.exportable_code
            && *pending_deletions == other.pending_deletions
    }

    fn references(&self, blob: &BlobRef) -> bool {
        self.data
            .values()
            .chain(&self.exportable_code)
            .any(|data| data.blob() == Some(blob))
    }

    fn queue_deletion(&mut self, blob: &BlobRef) {
        if !self.references(blob) && !self.pending_deletions.contains(blob) {
            self.pending_deletions.push(blob.clone());
        }
    }

    fn unqueue(&mut self, data: &ModelData) {
        if let Some(blob) = data.blob() {
            self.pending_deletions.retain(|queued| queued != blob);
        }
    }
}

impl Default for ModelEntity {
    /// [`ModelEntity::new`] with an empty [`ModelConfiguration`].
    fn default() -> Self {
        Self::new(ModelConfiguration::default())
    }
}

impl PartialEq for ModelEntity {
    /// OTX's equality: same training dataset and same performance. See [`ModelEntity::same_as`].
    fn eq(&self, other: &Self) -> bool {
        self.train_dataset == other.train_dataset && self.performance == other.performance
    }
}
