//! Typed model metadata (ClearML model metadata): entries `{key, value, type}` whose value is kept
//! as text and cast to its type on read, falling back to the text when the cast fails.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value};

use crate::literal;
use crate::macros::wire_enum;

wire_enum! {
    /// The declared type of a metadata value (Python's type names, as ClearML stores them).
    pub enum MetadataType ("metadata type") {
        /// A float.
        Float => "float",
        /// An integer (64-bit).
        Int => "int",
        /// A boolean.
        Bool => "bool",
        /// Text.
        Str => "str",
        /// A list.
        List => "list",
        /// A tuple.
        Tuple => "tuple",
        /// A dict.
        Dict => "dict",
    }
}

/// Why a metadata entry cannot be read as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// There is no entry with this key.
    #[error("no metadata entry {key:?}")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The raw value does not read as its declared type.
    #[error("metadata {key:?}: cannot read {value:?} as {ty}: {reason}")]
    Cast {
        /// The entry's key.
        key: String,
        /// The raw value.
        value: String,
        /// The declared type.
        ty: MetadataType,
        /// What went wrong.
        reason: String,
    },
}

/// One metadata entry: a key, the value as text, and its declared type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataEntry {
    /// The key.
    pub key: String,
    /// The value as text (what ClearML calls the raw value).
    pub value: String,
    /// The declared type (`"type"` on the wire).
    #[serde(rename = "type")]
    pub ty: MetadataType,
}

impl MetadataEntry {
    /// An entry from its parts.
    pub fn new(key: impl Into<String>, value: impl Into<String>, ty: MetadataType) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            ty,
        }
    }

    /// An entry holding `value`, rendered as text with its own type.
    pub fn from_value(key: impl Into<String>, value: &MetadataValue) -> Self {
        Self::new(key, value.render(), value.ty())
    }

    /// The value cast to its declared type; when that fails, the raw text as
    /// [`MetadataValue::Str`] (ClearML's behaviour).
    pub fn cast(&self) -> MetadataValue {
        self.try_cast()
            .unwrap_or_else(|_| MetadataValue::Str(self.value.clone()))
    }

    /// The value cast to its declared type, or why it cannot be.
    ///
    /// Rules (those of ClearML's `cast_basic_type`, with JSON and Python literals for the
    /// containers): `float` and `int` parse the trimmed text (`int` takes no fraction); `bool` is
    /// `true` for `"true"` and `false` for `"false"` or blank, any case, trimmed; `str` is the
    /// text; `list` and `tuple` read `[..]`, `(..)` or bare `a, b` items; `dict` reads a JSON object
    /// or a Python dict literal.
    pub fn try_cast(&self) -> Result<MetadataValue, MetadataError> {
        let fail = |reason: String| MetadataError::Cast {
            key: self.key.clone(),
            value: self.value.clone(),
            ty: self.ty,
            reason,
        };
        let text = self.value.trim();
        match self.ty {
            MetadataType::Float => text
                .parse::<f64>()
                .map(MetadataValue::Float)
                .map_err(|e| fail(e.to_string())),
            MetadataType::Int => text
                .parse::<i64>()
                .map(MetadataValue::Int)
                .map_err(|e| fail(e.to_string())),
            MetadataType::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(MetadataValue::Bool(true)),
                "false" | "" => Ok(MetadataValue::Bool(false)),
                _ => Err(fail("expected true or false".into())),
            },
            MetadataType::Str => Ok(MetadataValue::Str(self.value.clone())),
            MetadataType::List | MetadataType::Tuple => {
                let items = if text.starts_with(['[', '(']) {
                    literal::parse(text)
                } else {
                    literal::parse(&format!("[{text}]"))
                };
                match items.map_err(|e| fail(e.to_string()))? {
                    Value::Array(items) if self.ty == MetadataType::List => {
                        Ok(MetadataValue::List(items))
                    }
                    Value::Array(items) => Ok(MetadataValue::Tuple(items)),
                    // `(x)` reads as x: a one-item sequence.
                    other if text.starts_with('(') && self.ty == MetadataType::Tuple => {
                        Ok(MetadataValue::Tuple(vec![other]))
                    }
                    other if text.starts_with('(') => Ok(MetadataValue::List(vec![other])),
                    other => Err(fail(format!(
                        "expected a sequence, got {}",
                        json_kind(&other)
                    ))),
                }
            }
            MetadataType::Dict => match literal::parse(text).map_err(|e| fail(e.to_string()))? {
                Value::Object(map) => Ok(MetadataValue::Dict(map)),
                other => Err(fail(format!("expected a dict, got {}", json_kind(&other)))),
            },
        }
    }
}

pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A metadata value cast to its type.
///
/// On the wire: `{"type": "int", "value": 3}`, so a tuple stays a tuple and `"3"` stays text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum MetadataValue {
    /// A float.
    Float(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Text — also what a failed cast gives.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict.
    Dict(Map<String, Value>),
}

impl MetadataValue {
    /// The type this value has.
    pub fn ty(&self) -> MetadataType {
        match self {
            Self::Float(_) => MetadataType::Float,
            Self::Int(_) => MetadataType::Int,
            Self::Bool(_) => MetadataType::Bool,
            Self::Str(_) => MetadataType::Str,
            Self::List(_) => MetadataType::List,
            Self::Tuple(_) => MetadataType::Tuple,
            Self::Dict(_) => MetadataType::Dict,
        }
    }

    /// The value as text, in a form [`MetadataEntry::cast`] reads back to the same value:
    /// floats in shortest round-trip form (`0.5`, `1.0`, `inf`, `NaN`), booleans as Python writes
    /// them (`True`/`False`), lists and dicts as JSON, tuples as Python tuples of JSON items
    /// (`(1, "a")`, `(1,)`, `()`).
    pub fn render(&self) -> String {
        match self {
            Self::Float(x) => match Number::from_f64(*x) {
                Some(n) => n.to_string(),
                None => x.to_string(),
            },
            Self::Int(i) => i.to_string(),
            Self::Bool(true) => "True".to_owned(),
            Self::Bool(false) => "False".to_owned(),
            Self::Str(s) => s.clone(),
            Self::List(items) => Value::Array(items.clone()).to_string(),
            Self::Tuple(items) => {
                let mut out = String::from("(");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{item}");
                }
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
                out
            }
            Self::Dict(map) => Value::Object(map.clone()).to_string(),
        }
    }
}

impl From<f64> for MetadataValue {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

impl From<i64> for MetadataValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for MetadataValue {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

impl From<&str> for MetadataValue {
    fn from(value: &str) -> Self {
        Self::Str(value.to_owned())
    }
}

impl From<String> for MetadataValue {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}

/// A model's metadata: entries by key, each `{key, value, type}`.
///
/// On the wire: a list of entries sorted by key (on reading, a later duplicate key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    entries: BTreeMap<String, MetadataEntry>,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry under `key`.
    pub fn get(&self, key: &str) -> Option<&MetadataEntry> {
        self.entries.get(key)
    }

    /// The raw (text) value under `key`.
    pub fn get_metadata(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|e| e.value.as_str())
    }

    /// The value under `key` cast to its type, falling back to the text (see
    /// [`MetadataEntry::cast`]).
    pub fn get_metadata_casted(&self, key: &str) -> Option<MetadataValue> {
        self.entries.get(key).map(MetadataEntry::cast)
    }

    /// The value under `key` cast to its type, or why not (no fallback).
    pub fn try_get_casted(&self, key: &str) -> Result<MetadataValue, MetadataError> {
        self.entries
            .get(key)
            .ok_or_else(|| MetadataError::NotFound {
                key: key.to_owned(),
            })?
            .try_cast()
    }

    /// Every entry by key, raw.
    pub fn get_all_metadata(&self) -> &BTreeMap<String, MetadataEntry> {
        &self.entries
    }

    /// Every value by key, cast (with the text fallback).
    pub fn get_all_metadata_casted(&self) -> BTreeMap<String, MetadataValue> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), e.cast()))
            .collect()
    }

    /// Sets one entry and returns the one it replaced. The value is stored as given; it is cast
    /// only on read.
    pub fn set_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        ty: MetadataType,
    ) -> Option<MetadataEntry> {
        self.insert(MetadataEntry::new(key, value, ty))
    }

    /// Sets one entry from a typed value (rendered with [`MetadataValue::render`]).
    pub fn set_value(
        &mut self,
        key: impl Into<String>,
        value: &MetadataValue,
    ) -> Option<MetadataEntry> {
        self.insert(MetadataEntry::from_value(key, value))
    }

    /// Adds or replaces one entry under its own key, returning the one it replaced.
    pub fn insert(&mut self, entry: MetadataEntry) -> Option<MetadataEntry> {
        self.entries.insert(entry.key.clone(), entry)
    }

    /// Sets many entries: with `replace`, they become the whole metadata; otherwise they are added
    /// to (or change) the current entries.
    pub fn set_all_metadata(
        &mut self,
        entries: impl IntoIterator<Item = MetadataEntry>,
        replace: bool,
    ) {
        if replace {
            self.entries.clear();
        }
        self.extend(entries);
    }

    /// Removes the entry under `key`.
    pub fn remove(&mut self, key: &str) -> Option<MetadataEntry> {
        self.entries.remove(key)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = &MetadataEntry> {
        self.entries.values()
    }
}

impl Extend<MetadataEntry> for Metadata {
    fn extend<I: IntoIterator<Item = MetadataEntry>>(&mut self, entries: I) {
        for entry in entries {
            self.insert(entry);
        }
    }
}

impl FromIterator<MetadataEntry> for Metadata {
    fn from_iter<I: IntoIterator<Item = MetadataEntry>>(entries: I) -> Self {
        let mut metadata = Self::new();
        metadata.extend(entries);
        metadata
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = &'a MetadataEntry;
    type IntoIter = std::collections::btree_map::Values<'a, String, MetadataEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.values()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.values())
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<MetadataEntry>::deserialize(deserializer).map(Self::from_iter)
    }
}
