//! The records the registry stores (models, projects, tasks, events) and the queries it answers.

use chrono::{DateTime, Utc};
use kiln_entities::{BlobRef, ModelEntity, ModelId, ModelPrecision, ModelRecord};
use serde::{Deserialize, Serialize};

/// A project: a named folder of tasks and models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The project's id (a UUID as text).
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A task: one run (training, quantization…) inside a project; models and events point at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's id (a UUID as text).
    pub id: String,
    /// The id of its project.
    pub project: String,
    /// Its name, unique within the project.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// The role prefix of the blobs a model's entity refers to: the registry keeps references
/// `entity:<model-data key>` (and `entity:exportable_code`) itself, derived from the entity on
/// every [`put_model`](crate::Registry::put_model), so `gc` never collects them. They are not
/// listed in [`StoredModel::blobs`] (the entity holds them); roles with this prefix given there
/// are ignored.
pub const ENTITY_ROLE_PREFIX: &str = "entity:";

/// A blob a model refers to, under a role (`"weights"`, `"quantize_report"`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelBlob {
    /// What the blob is to the model; unique per model.
    pub role: String,
    /// Where the bytes are.
    pub blob: BlobRef,
}

/// How the registry refers to a blob (for `gc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobUse {
    /// A model's current blob: never collected.
    Current,
    /// Only ever a superseded blob (weights that were replaced): collected when asked.
    Superseded,
}

/// A model as the registry keeps it: the ClearML record, the OTX entity, the blobs, and
/// bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredModel {
    /// Name, comment, framework, project, task, parent, labels, design, tags, system tags,
    /// published, uri and metadata. `record.id` is the model's id.
    pub record: ModelRecord,
    /// The typed model entity (precision, performance, optimization, …), when known. Its `id`
    /// is the record's.
    pub entity: Option<ModelEntity>,
    /// The blobs the model refers to now, one per role.
    pub blobs: Vec<ModelBlob>,
    /// When the model was first stored (set by the registry).
    pub created_at: DateTime<Utc>,
    /// When it was last stored (set by the registry).
    pub updated_at: DateTime<Utc>,
    /// Incremented by every [`put_model`](crate::Registry::put_model); 0 before the first.
    pub version: i64,
}

impl StoredModel {
    /// A model not stored yet.
    pub fn new(record: ModelRecord) -> Self {
        let now = Utc::now();
        Self {
            record,
            entity: None,
            blobs: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    /// The model's id.
    pub fn id(&self) -> ModelId {
        self.record.id
    }

    /// The blob under `role`, if any.
    pub fn blob(&self, role: &str) -> Option<&BlobRef> {
        self.blobs.iter().find(|b| b.role == role).map(|b| &b.blob)
    }

    /// Sets (or replaces) the blob under `role`.
    pub fn set_blob(&mut self, role: impl Into<String>, blob: BlobRef) {
        let role = role.into();
        match self.blobs.iter_mut().find(|b| b.role == role) {
            Some(slot) => slot.blob = blob,
            None => self.blobs.push(ModelBlob { role, blob }),
        }
    }

    /// The entity's precisions (empty without an entity).
    pub fn precision(&self) -> &[ModelPrecision] {
        self.entity.as_ref().map_or(&[], |e| e.precision.as_slice())
    }
}

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// Pass as the query's `cursor` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// The catalogue query (ClearML's `Model.query_models`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelQuery {
    /// Only models of this project (id or name).
    pub project: Option<String>,
    /// Only models whose name matches: `*` matches any run of characters, `?` one character,
    /// everything else literally, case-insensitively; without a wildcard, a substring match.
    pub name_pattern: Option<String>,
    /// Tags the model must all have; a leading `-` means the model must not have it.
    pub tags: Vec<String>,
    /// Only published models.
    pub only_published: bool,
    /// Include archived models (excluded by default).
    pub include_archived: bool,
    /// Metadata the model must have, key and raw value, all of them.
    pub metadata: Vec<(String, String)>,
    /// Only models with one of these precisions (any of them).
    pub precision: Vec<ModelPrecision>,
    /// At most this many models per page (default and maximum: 500).
    pub max_results: Option<u32>,
    /// The cursor of the page to return (from [`Page::next`]).
    pub cursor: Option<String>,
}

/// Which way a lineage query walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineageDirection {
    /// Parent, grandparent, …
    Ancestors,
    /// Children, grandchildren, …
    Descendants,
}

/// A lineage query: "what was derived from X", "where does X come from", optionally filtered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageQuery {
    /// The model to start from (not itself part of the answer).
    pub model: ModelId,
    /// Which way to walk.
    pub direction: LineageDirection,
    /// Only models with one of these precisions (e.g. all INT8 models derived from X); the walk
    /// still passes through the others.
    pub precision: Vec<ModelPrecision>,
    /// How many generations at most (`None`: all).
    pub max_depth: Option<u32>,
}

impl LineageQuery {
    /// Every model in `direction` from `model`.
    pub fn new(model: ModelId, direction: LineageDirection) -> Self {
        Self {
            model,
            direction,
            precision: Vec::new(),
            max_depth: None,
        }
    }

    /// Only models with this precision.
    pub fn with_precision(mut self, precision: ModelPrecision) -> Self {
        self.precision.push(precision);
        self
    }
}

/// What an event says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// One point of a scalar series (a training curve).
    Scalar {
        /// The plot's title, e.g. `"loss"`.
        title: String,
        /// The series within it, e.g. `"train"`.
        series: String,
        /// The iteration (x value).
        iteration: i64,
        /// The value.
        value: f64,
    },
    /// A single named value (a summary metric).
    SingleValue {
        /// The value's name, e.g. `"mAP50"`.
        name: String,
        /// The value.
        value: f64,
    },
    /// A plot as a plotly figure (`{"data": [...], "layout": {...}}`).
    Plot {
        /// The plot's title.
        title: String,
        /// The series within it.
        series: String,
        /// The iteration it belongs to.
        iteration: i64,
        /// The plotly figure.
        figure: serde_json::Value,
    },
}

/// Something reported against a model or a task: a scalar, a single value or a plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The model it was reported against.
    pub model: Option<ModelId>,
    /// The task it was reported against.
    pub task: Option<String>,
    /// When it was reported.
    pub timestamp: DateTime<Utc>,
    /// What it says.
    pub kind: EventKind,
}

/// Which events to return.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Only events of this model.
    pub model: Option<ModelId>,
    /// Only events of this task.
    pub task: Option<String>,
    /// Only events with this title (for single values: this name).
    pub title: Option<String>,
    /// At most this many (`None`: all).
    pub limit: Option<u32>,
}
