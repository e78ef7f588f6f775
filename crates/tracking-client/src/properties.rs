//! [`ModelProperties`]: the read-only ClearML model properties (`id`, `name`, `labels`,
//! `config_text`, metadata getters, …), shared by [`crate::OutputModel`] and
//! [`crate::InputModel`].

use std::collections::BTreeMap;

use kiln_entities::{MetadataEntry, MetadataValue, ModelId, ModelRecord};
use serde_json::{Map, Value};

use crate::backend::ModelSnapshot;
use crate::error::TrackingError;

/// The properties of a model handle, read from its last known state (no backend call).
///
/// Implementors provide [`ModelProperties::with_snapshot`]; everything else is built on it.
pub trait ModelProperties {
    /// Calls `f` with the model as this handle last read or wrote it.
    fn with_snapshot<R>(&self, f: impl FnOnce(&ModelSnapshot) -> R) -> R;

    /// A copy of the model's state.
    fn snapshot(&self) -> ModelSnapshot {
        self.with_snapshot(Clone::clone)
    }

    /// A copy of the model's record.
    fn record(&self) -> ModelRecord {
        self.with_snapshot(|s| s.record.clone())
    }

    /// The model's id.
    fn id(&self) -> ModelId {
        self.with_snapshot(ModelSnapshot::id)
    }

    /// The model's name.
    fn name(&self) -> String {
        self.with_snapshot(|s| s.record.name.clone())
    }

    /// The comment (description).
    fn comment(&self) -> String {
        self.with_snapshot(|s| s.record.comment.clone())
    }

    /// The user tags.
    fn tags(&self) -> Vec<String> {
        self.with_snapshot(|s| s.record.tags.clone())
    }

    /// The system tags (`archived`, `package`, …).
    fn system_tags(&self) -> Vec<String> {
        self.with_snapshot(|s| s.record.system_tags.clone())
    }

    /// The framework (`"PyTorch"`, `"ONNX"`, …).
    fn framework(&self) -> Option<String> {
        self.with_snapshot(|s| s.record.framework.clone())
    }

    /// The configuration as text (a dict design rendered as JSON); `None` without a design.
    fn config_text(&self) -> Option<String> {
        self.with_snapshot(|s| s.record.config_text().map(|t| t.into_owned()))
    }

    /// The configuration as a dict (a text design parsed: JSON, or `key = value` lines with
    /// `[section]`s); `Ok(None)` without a design.
    fn config_dict(&self) -> Result<Option<Map<String, Value>>, TrackingError> {
        self.with_snapshot(|s| Ok(s.record.config_dict()?.map(std::borrow::Cow::into_owned)))
    }

    /// The label enumeration (label to integer).
    fn labels(&self) -> BTreeMap<String, i64> {
        self.with_snapshot(|s| s.record.labels.clone())
    }

    /// The id of the task that created (or is connected to) the model.
    fn task(&self) -> Option<String> {
        self.with_snapshot(|s| s.record.task.clone())
    }

    /// The id of the model's project.
    fn project(&self) -> Option<String> {
        self.with_snapshot(|s| s.record.project.clone())
    }

    /// Whether the model is published.
    fn published(&self) -> bool {
        self.with_snapshot(|s| s.record.published)
    }

    /// Whether the model is archived (system tag `archived`).
    fn archived(&self) -> bool {
        self.with_snapshot(|s| s.record.archived())
    }

    /// Whether the weights are a package (system tag `package`).
    fn is_package(&self) -> bool {
        self.with_snapshot(|s| s.record.is_package())
    }

    /// The URL of the weights (the file, or the package), once some were stored.
    fn url(&self) -> Option<String> {
        self.with_snapshot(|s| s.record.uri.clone())
    }

    /// The stored version (incremented by every write).
    fn version(&self) -> i64 {
        self.with_snapshot(|s| s.version)
    }

    /// The raw (text) metadata value under `key`.
    fn get_metadata(&self, key: &str) -> Option<String> {
        self.with_snapshot(|s| s.record.get_metadata(key).map(str::to_owned))
    }

    /// The metadata value under `key`, cast to its declared type; when the cast fails, the text
    /// (as ClearML does).
    fn get_metadata_casted(&self, key: &str) -> Option<MetadataValue> {
        self.with_snapshot(|s| s.record.get_metadata_casted(key))
    }

    /// Every metadata entry (`{key, value, type}`) by key, raw.
    fn get_all_metadata(&self) -> BTreeMap<String, MetadataEntry> {
        self.with_snapshot(|s| s.record.get_all_metadata().clone())
    }

    /// Every metadata value by key, cast (with the text fallback).
    fn get_all_metadata_casted(&self) -> BTreeMap<String, MetadataValue> {
        self.with_snapshot(|s| s.record.get_all_metadata_casted())
    }
}
