//! What a task needed to produce a model: its configurable parameters and its label schema (OTX
//! `ModelConfiguration`, `LabelSchemaEntity`, `LabelEntity`, `LabelGroup`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::macros::{deserialize_from_str, wire_enum};

/// The task configuration used to produce a model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfiguration {
    /// The task's configurable parameters (hyper-parameters, preprocessing, ...), as JSON.
    #[serde(default)]
    pub configurable_parameters: Map<String, Value>,
    /// The labels the model predicts.
    #[serde(default)]
    pub label_schema: LabelSchema,
}

impl ModelConfiguration {
    /// A configuration from its parameters and label schema.
    pub fn new(configurable_parameters: Map<String, Value>, label_schema: LabelSchema) -> Self {
        Self {
            configurable_parameters,
            label_schema,
        }
    }
}

/// Why a label schema or a colour is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// Two labels share an id.
    #[error("label id {id:?} is used by more than one label")]
    DuplicateLabelId {
        /// The repeated id.
        id: LabelId,
    },
    /// Two labels share a name.
    #[error("label name {name:?} is used by more than one label")]
    DuplicateLabelName {
        /// The repeated name.
        name: String,
    },
    /// A label has an empty (or blank) name.
    #[error("label {id:?} has an empty name")]
    EmptyLabelName {
        /// The label's id.
        id: LabelId,
    },
    /// Two groups share a name.
    #[error("label group name {name:?} is used by more than one group")]
    DuplicateGroupName {
        /// The repeated name.
        name: String,
    },
    /// A group refers to a label id that is not in the schema.
    #[error("label group {group:?} refers to unknown label id {label:?}")]
    UnknownLabel {
        /// The group's name.
        group: String,
        /// The unknown id.
        label: LabelId,
    },
    /// A colour is not `#rrggbb` or `#rrggbbaa`.
    #[error("invalid colour {value:?}: expected #rrggbb or #rrggbbaa")]
    InvalidColor {
        /// The offending text.
        value: String,
    },
}

/// The identifier of a label within its schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LabelId(pub String);

impl LabelId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LabelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for LabelId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<String> for LabelId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

/// An RGBA colour, written `#rrggbb` (opaque) or `#rrggbbaa` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Color {
    /// Red, 0–255.
    pub red: u8,
    /// Green, 0–255.
    pub green: u8,
    /// Blue, 0–255.
    pub blue: u8,
    /// Opacity, 0 (transparent) – 255 (opaque).
    pub alpha: u8,
}

impl Color {
    /// An opaque colour.
    pub const fn rgb(red: u8, green: u8, blue: u8) -> Self {
        Self {
            red,
            green,
            blue,
            alpha: 255,
        }
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.red, self.green, self.blue)?;
        if self.alpha != 255 {
            write!(f, "{:02x}", self.alpha)?;
        }
        Ok(())
    }
}

impl FromStr for Color {
    type Err = SchemaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || SchemaError::InvalidColor {
            value: s.to_owned(),
        };
        let digits = s.strip_prefix('#').ok_or_else(invalid)?;
        if digits.len() != 6 && digits.len() != 8 {
            return Err(invalid());
        }
        let bytes = crate::hex::decode(digits).map_err(|_| invalid())?;
        match bytes[..] {
            [red, green, blue] => Ok(Self::rgb(red, green, blue)),
            [red, green, blue, alpha] => Ok(Self {
                red,
                green,
                blue,
                alpha,
            }),
            _ => Err(invalid()),
        }
    }
}

impl Serialize for Color {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer)
    }
}

/// One label a model can predict (OTX `LabelEntity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Unique within the schema.
    pub id: LabelId,
    /// What users see, e.g. `"person"`.
    pub name: String,
    /// Display colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<Color>,
    /// Keyboard shortcut in annotation tools, e.g. `"ctrl+1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotkey: Option<String>,
    /// Whether this is the "nothing here" label of its group (OTX's empty label).
    #[serde(default)]
    pub is_empty: bool,
}

impl Label {
    /// A non-empty label without colour or hotkey.
    pub fn new(id: impl Into<LabelId>, name: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            color: None,
            hotkey: None,
            is_empty: false,
        }
    }
}

wire_enum! {
    /// How the labels of a group relate (OTX `LabelGroupType`).
    pub enum LabelGroupType ("label group type") {
        /// Exactly one label of the group applies.
        Exclusive => "exclusive",
        /// The group holds the empty label.
        EmptyLabel => "empty_label",
    }
}

/// A named group of labels (OTX `LabelGroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelGroup {
    /// Unique within the schema.
    pub name: String,
    /// The labels of the group, by id.
    pub labels: Vec<LabelId>,
    /// How the labels relate.
    pub group_type: LabelGroupType,
}

impl LabelGroup {
    /// An exclusive group.
    pub fn exclusive(name: impl Into<String>, labels: impl IntoIterator<Item = LabelId>) -> Self {
        Self {
            name: name.into(),
            labels: labels.into_iter().collect(),
            group_type: LabelGroupType::Exclusive,
        }
    }
}

/// The labels of the project a model was trained in, and their groups (OTX `LabelSchemaEntity`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSchema {
    /// Every label, in a stable order (see [`LabelSchema::label_enumeration`]).
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Groups of labels.
    #[serde(default)]
    pub groups: Vec<LabelGroup>,
}

impl LabelSchema {
    /// A schema of `labels` in one exclusive group called `group`.
    pub fn exclusive(group: impl Into<String>, labels: Vec<Label>) -> Self {
        let ids = labels.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
        Self {
            labels,
            groups: vec![LabelGroup::exclusive(group, ids)],
        }
    }

    /// The label with this id.
    pub fn label(&self, id: &LabelId) -> Option<&Label> {
        self.labels.iter().find(|l| &l.id == id)
    }

    /// The label with this name.
    pub fn label_by_name(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.name == name)
    }

    /// The group with this name.
    pub fn group(&self, name: &str) -> Option<&LabelGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The labels of a group, resolved (unknown ids are skipped; see [`LabelSchema::validate`]).
    pub fn labels_of<'a>(&'a self, group: &'a LabelGroup) -> impl Iterator<Item = &'a Label> + 'a {
        group.labels.iter().filter_map(|id| self.label(id))
    }

    /// The registry's label enumeration (ClearML `labels`): each label name mapped to its position
    /// in [`LabelSchema::labels`]. With duplicate names the first position wins.
    pub fn label_enumeration(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for (index, label) in (0_i64..).zip(&self.labels) {
            out.entry(label.name.clone()).or_insert(index);
        }
        out
    }

    /// Checks that ids, label names and group names are unique and non-empty, and that every
    /// group refers to known labels. Reports the first problem found, in that order.
    pub fn validate(&self) -> Result<(), SchemaError> {
        let mut ids = BTreeSet::new();
        let mut names = BTreeSet::new();
        for label in &self.labels {
            if !ids.insert(&label.id) {
                return Err(SchemaError::DuplicateLabelId {
                    id: label.id.clone(),
                });
            }
            if label.name.trim().is_empty() {
                return Err(SchemaError::EmptyLabelName {
                    id: label.id.clone(),
                });
            }
            if !names.insert(label.name.as_str()) {
                return Err(SchemaError::DuplicateLabelName {
                    name: label.name.clone(),
                });
            }
        }
        let mut groups = BTreeSet::new();
        for group in &self.groups {
            if !groups.insert(group.name.as_str()) {
                return Err(SchemaError::DuplicateGroupName {
                    name: group.name.clone(),
                });
            }
            if let Some(unknown) = group.labels.iter().find(|id| !ids.contains(id)) {
                return Err(SchemaError::UnknownLabel {
                    group: group.name.clone(),
                    label: unknown.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_color(text: &str, expect: Result<Color, ()>) {
        let parsed = text.parse::<Color>();
        match expect {
            Ok(color) => {
                assert_eq!(parsed, Ok(color), "{text}");
                assert_eq!(color.to_string().parse::<Color>(), Ok(color));
            }
            Err(()) => {
                assert_eq!(
                    parsed,
                    Err(SchemaError::InvalidColor {
                        value: text.to_owned()
                    })
                )
            }
        }
    }

    #[test]
    fn colors() {
        check_color("#ff8000", Ok(Color::rgb(255, 128, 0)));
        check_color("#FF8000", Ok(Color::rgb(255, 128, 0)));
        check_color(
            "#ff800080",
            Ok(Color {
                red: 255,
                green: 128,
                blue: 0,
                alpha: 128,
            }),
        );
        check_color("ff8000", Err(()));
        check_color("#ff800", Err(()));
        check_color("#ff80000", Err(()));
        check_color("#gg8000", Err(()));
        check_color("#ééé", Err(()));
        check_color("", Err(()));
        assert_eq!(Color::rgb(1, 2, 3).to_string(), "#010203");
    }
}
