//! The registry's record of a model (ClearML / Trains `OutputModel`): name, comment, framework,
//! lineage, labels, design (configuration), tags, publish/archive state, URI and typed metadata.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::literal;
use crate::metadata::{
    Metadata, MetadataEntry, MetadataError, MetadataType, MetadataValue, json_kind,
};
use crate::model::ModelId;

/// The system tag that marks a model archived (ClearML's convention).
pub const ARCHIVED_TAG: &str = "archived";
/// The system tag that marks a model's weights as a package (a zip of several files).
pub const PACKAGE_TAG: &str = "package";

/// Why a design (model configuration) cannot be set or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DesignError {
    /// Both `config_text` and `config_dict` were given; only one may be.
    #[error("specify config_text or config_dict, not both (config_text: {config_text:?}, config_dict keys: {})", config_dict.keys().cloned().collect::<Vec<_>>().join(", "))]
    TextAndDict {
        /// The text given.
        config_text: String,
        /// The dict given.
        config_dict: Map<String, Value>,
    },
    /// A line of config text is neither a `[section]` nor `key = value` / `key: value`.
    #[error("config text line {line} is not `key = value`, `key: value` or `[section]`: {text:?}")]
    UnparsableLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// The config text is JSON, but not a JSON object.
    #[error("config text is JSON but {found}, not an object")]
    NotAnObject {
        /// What it is instead, e.g. `"an array"`.
        found: &'static str,
    },
}

/// A model's design: its configuration, kept either as text (prototxt, INI, YAML, Python...) or as
/// a dict — never both (ClearML's `config_text` XOR `config_dict`).
///
/// On the wire: `{"text": "..."}` or `{"dict": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// Configuration as text.
    Text(String),
    /// Configuration as a dict.
    Dict(Map<String, Value>),
}

impl Design {
    /// The design from ClearML's two optional arguments: `Ok(None)` when neither is given,
    /// [`DesignError::TextAndDict`] when both are.
    pub fn from_options(
        config_text: Option<String>,
        config_dict: Option<Map<String, Value>>,
    ) -> Result<Option<Self>, DesignError> {
        match (config_text, config_dict) {
            (Some(config_text), Some(config_dict)) => Err(DesignError::TextAndDict {
                config_text,
                config_dict,
            }),
            (Some(text), None) => Ok(Some(Self::Text(text))),
            (None, Some(dict)) => Ok(Some(Self::Dict(dict))),
            (None, None) => Ok(None),
        }
    }

    /// The configuration as text: the text itself, or the dict rendered as pretty JSON (which
    /// [`Design::config_dict`] reads back to the same dict).
    pub fn config_text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            // Serializing a map with string keys to memory cannot fail.
            Self::Dict(dict) => Cow::Owned(serde_json::to_string_pretty(dict).unwrap_or_default()),
        }
    }

    /// The configuration as a dict: the dict itself, or the text parsed — as a JSON object first,
    /// then as lines of `key = value` or `key: value` with optional `[section]` headers (keys
    /// after a header go into a nested dict of that name). Blank lines and lines starting with
    /// `#` or `;` are skipped; values are read as JSON or Python literals when they are one
    /// (`3`, `0.5`, `true`, `'x'`, `[1, 2]`) and kept as trimmed text otherwise. A repeated key
    /// takes the last value.
    pub fn config_dict(&self) -> Result<Cow<'_, Map<String, Value>>, DesignError> {
        match self {
            Self::Dict(dict) => Ok(Cow::Borrowed(dict)),
            Self::Text(text) => parse_config_text(text).map(Cow::Owned),
        }
    }
}

fn parse_config_text(text: &str) -> Result<Map<String, Value>, DesignError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => return Ok(map),
        Ok(other) => {
            return Err(DesignError::NotAnObject {
                found: json_kind(&other),
            });
        }
        Err(_) => {}
    }
    let mut root = Map::new();
    let mut section: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let unparsable = || DesignError::UnparsableLine {
            line: index + 1,
            text: raw.to_owned(),
        };
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            if name.is_empty() {
                return Err(unparsable());
            }
            section = Some(name.to_owned());
            continue;
        }
        let split = line.find(['=', ':']).ok_or_else(unparsable)?;
        let key = line[..split].trim();
        if key.is_empty() {
            return Err(unparsable());
        }
        let raw_value = line[split + 1..].trim();
        let value =
            literal::parse(raw_value).unwrap_or_else(|_| Value::String(raw_value.to_owned()));
        let target = match &section {
            None => &mut root,
            Some(name) => {
                let slot = root
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                match slot {
                    Value::Object(map) => map,
                    _ => return Err(unparsable()),
                }
            }
        };
        target.insert(key.to_owned(), value);
    }
    Ok(root)
}

/// The registry's record of a model (ClearML `OutputModel`).
///
/// Archiving is the system tag [`ARCHIVED_TAG`]: [`ModelRecord::archived`] reads it, so the state
/// lives in one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The model's id.
    pub id: ModelId,
    /// The model's name.
    pub name: String,
    /// A comment or description.
    #[serde(default)]
    pub comment: String,
    /// The framework, e.g. `"PyTorch"`, `"ONNX"`.
    #[serde(default)]
    pub framework: Option<String>,
    /// The id of the project the model belongs to.
    #[serde(default)]
    pub project: Option<String>,
    /// The id of the task that created the model.
    #[serde(default)]
    pub task: Option<String>,
    /// The model this one was derived from.
    #[serde(default)]
    pub parent: Option<ModelId>,
    /// The label enumeration: label name to integer value, e.g. `{"background": 0, "person": 1}`.
    #[serde(default)]
    pub labels: BTreeMap<String, i64>,
    /// The configuration, as text or as a dict.
    #[serde(default)]
    pub design: Option<Design>,
    /// User tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// System tags (e.g. [`ARCHIVED_TAG`], [`PACKAGE_TAG`]).
    #[serde(default)]
    pub system_tags: Vec<String>,
    /// Whether the model is published (read-only, for public use).
    #[serde(default)]
    pub published: bool,
    /// Where the weights are (the model file, or its package).
    #[serde(default)]
    pub uri: Option<String>,
    /// Typed metadata.
    #[serde(default)]
    pub metadata: Metadata,
}

impl ModelRecord {
    /// A record called `name` with a fresh id and nothing else set.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            id: ModelId::new(),
            name: name.into(),
            comment: String::new(),
            framework: None,
            project: None,
            task: None,
            parent: None,
            labels: BTreeMap::new(),
            design: None,
            tags: Vec::new(),
            system_tags: Vec::new(),
            published: false,
            uri: None,
            metadata: Metadata::new(),
        }
    }

    /// Sets the design from ClearML's two optional arguments; giving both is
    /// [`DesignError::TextAndDict`] and changes nothing; giving neither clears the design.
    pub fn update_design(
        &mut self,
        config_text: Option<String>,
        config_dict: Option<Map<String, Value>>,
    ) -> Result<(), DesignError> {
        self.design = Design::from_options(config_text, config_dict)?;
        Ok(())
    }

    /// The configuration as text (see [`Design::config_text`]); `None` without a design.
    pub fn config_text(&self) -> Option<Cow<'_, str>> {
        self.design.as_ref().map(Design::config_text)
    }

    /// The configuration as a dict (see [`Design::config_dict`]); `Ok(None)` without a design.
    pub fn config_dict(&self) -> Result<Option<Cow<'_, Map<String, Value>>>, DesignError> {
        self.design.as_ref().map(Design::config_dict).transpose()
    }

    /// Replaces the label enumeration.
    pub fn update_labels(&mut self, labels: BTreeMap<String, i64>) {
        self.labels = labels;
    }

    /// Whether the model is archived (has the system tag [`ARCHIVED_TAG`]).
    pub fn archived(&self) -> bool {
        self.has_system_tag(ARCHIVED_TAG)
    }

    /// Archives the model; a no-op when it already is.
    pub fn archive(&mut self) {
        if !self.archived() {
            self.system_tags.push(ARCHIVED_TAG.to_owned());
        }
    }

    /// Unarchives the model; a no-op when it is not archived.
    pub fn unarchive(&mut self) {
        self.system_tags.retain(|tag| tag != ARCHIVED_TAG);
    }

    /// Publishes the model; a no-op when it already is.
    pub fn publish(&mut self) {
        self.published = true;
    }

    /// Whether the weights are a package (system tag [`PACKAGE_TAG`]).
    pub fn is_package(&self) -> bool {
        self.has_system_tag(PACKAGE_TAG)
    }

    /// Whether the model has this system tag.
    pub fn has_system_tag(&self, tag: &str) -> bool {
        self.system_tags.iter().any(|t| t == tag)
    }

    /// The raw (text) metadata value under `key`.
    pub fn get_metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get_metadata(key)
    }

    /// The metadata value under `key`, cast to its type, falling back to the text.
    pub fn get_metadata_casted(&self, key: &str) -> Option<MetadataValue> {
        self.metadata.get_metadata_casted(key)
    }

    /// The metadata value under `key`, cast to its type, or why not.
    pub fn try_get_metadata_casted(&self, key: &str) -> Result<MetadataValue, MetadataError> {
        self.metadata.try_get_casted(key)
    }

    /// Every metadata entry by key, raw.
    pub fn get_all_metadata(&self) -> &BTreeMap<String, MetadataEntry> {
        self.metadata.get_all_metadata()
    }

    /// Every metadata value by key, cast (with the text fallback).
    pub fn get_all_metadata_casted(&self) -> BTreeMap<String, MetadataValue> {
        self.metadata.get_all_metadata_casted()
    }

    /// Sets one metadata entry, returning the one it replaced.
    pub fn set_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        ty: MetadataType,
    ) -> Option<MetadataEntry> {
        self.metadata.set_metadata(key, value, ty)
    }

    /// Sets many metadata entries, replacing all of them or updating (see
    /// [`Metadata::set_all_metadata`]).
    pub fn set_all_metadata(
        &mut self,
        entries: impl IntoIterator<Item = MetadataEntry>,
        replace: bool,
    ) {
        self.metadata.set_all_metadata(entries, replace);
    }
}
