//! The [`TrackingBackend`] boundary: the few calls the client makes, and the plain records they
//! exchange.
//!
//! # Design note
//!
//! The trait is small and required; everything ClearML users call (`OutputModel`, `InputModel`,
//! reports, packages, background uploads, retries) is built on it in this crate, once, for every
//! backend. A backend only stores and fetches: projects and tasks, model snapshots with
//! optimistic versions, events, and content-addressed blobs.
//!
//! The records here are this crate's own (not kiln-storage's), so that a backend that talks HTTP
//! needs neither sqlx nor object_store; the `Local` backend converts to and from kiln-storage's
//! records field by field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kiln_entities::{BlobRef, ModelEntity, ModelId, ModelRecord};
use serde::{Deserialize, Serialize};

use crate::error::TrackingError;

/// The blob role of a model's weights (the file, or the package zip).
pub const WEIGHTS_ROLE: &str = "weights";

/// A project as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    /// Its id.
    pub id: String,
    /// Its unique name.
    pub name: String,
}

/// A task (one run inside a project) as the backend knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// Its id.
    pub id: String,
    /// The id of its project.
    pub project: String,
    /// Its name, unique within the project.
    pub name: String,
}

/// A model as the backend stores it: the ClearML record, the OTX entity when known, the blobs by
/// role, and the optimistic-concurrency version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSnapshot {
    /// Name, comment, framework, project, task, labels, design, tags, system tags, published, uri
    /// and metadata. `record.id` is the model's id.
    pub record: ModelRecord,
    /// The typed model entity, when one was stored (kept as is by the client).
    pub entity: Option<ModelEntity>,
    /// The blobs the model refers to, by role ([`WEIGHTS_ROLE`] for the weights).
    pub blobs: BTreeMap<String, BlobRef>,
    /// Incremented by every stored write; 0 before the first.
    pub version: i64,
    /// When the model was first stored.
    pub created_at: DateTime<Utc>,
    /// When it was last stored.
    pub updated_at: DateTime<Utc>,
}

impl ModelSnapshot {
    /// A model not stored yet.
    pub fn new(record: ModelRecord) -> Self {
        let now = Utc::now();
        Self {
            record,
            entity: None,
            blobs: BTreeMap::new(),
            version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The model's id.
    pub fn id(&self) -> ModelId {
        self.record.id
    }

    /// The weights blob, if weights were uploaded (not merely registered by URI).
    pub fn weights(&self) -> Option<&BlobRef> {
        self.blobs.get(WEIGHTS_ROLE)
    }
}

/// Which models a query returns (a subset of ClearML's `Model.query_models`), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFilter {
    /// Only models of this project (id or name).
    pub project: Option<String>,
    /// Only models whose name matches: `*` any run of characters, `?` one character, otherwise
    /// literally and case-insensitively; without a wildcard, a substring match.
    pub name_pattern: Option<String>,
    /// Tags the model must all have; a leading `-` excludes models with that tag.
    pub tags: Vec<String>,
    /// Only published models.
    pub only_published: bool,
    /// Include archived models (excluded by default).
    pub include_archived: bool,
    /// At most this many models per page (the backend may cap it).
    pub max_results: Option<u32>,
    /// The page to return (a [`ModelPage::next`] cursor).
    pub cursor: Option<String>,
}

/// One page of a model query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPage {
    /// The models on this page, newest first.
    pub items: Vec<ModelSnapshot>,
    /// The cursor of the next page; `None` on the last.
    pub next: Option<String>,
}

/// What a report says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReportKind {
    /// One point of a scalar series.
    Scalar {
        /// The plot's title.
        title: String,
        /// The series within it.
        series: String,
        /// The iteration (x value).
        iteration: i64,
        /// The value.
        value: f64,
    },
    /// A single named value (ClearML's `report_single_value`, which ClearML itself stores as a
    /// scalar titled `"Summary"` at iteration −2^31).
    SingleValue {
        /// The value's name.
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

/// One report (an event) against a model and its task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The model it is about.
    pub model: Option<ModelId>,
    /// The task it is about.
    pub task: Option<String>,
    /// When it was reported.
    pub timestamp: DateTime<Utc>,
    /// What it says.
    pub kind: ReportKind,
}

/// Where the client keeps models, blobs and reports.
///
/// Implementations: [`crate::Local`] (embedded: a kiln-storage registry and blob stores; feature
/// `local`). Every method may be called concurrently (background uploads run beside the caller).
#[async_trait]
pub trait TrackingBackend: Send + Sync + std::fmt::Debug {
    /// The project called `name`, created when missing.
    async fn ensure_project(&self, name: &str) -> Result<ProjectInfo, TrackingError>;

    /// The task called `name` in the project with id `project`, created when missing.
    async fn ensure_task(&self, project: &str, name: &str) -> Result<TaskInfo, TrackingError>;

    /// The model with this id ([`TrackingError::ModelNotFound`] when there is none).
    async fn model(&self, id: ModelId) -> Result<ModelSnapshot, TrackingError>;

    /// Stores the model (inserting or replacing the one with its id) and returns it as stored,
    /// with its new version.
    ///
    /// `expected_version`: `Some(v)` fails with [`TrackingError::Conflict`] unless the stored
    /// version is `v` (`Some(0)`: the model must not exist yet); `None` writes unconditionally.
    /// The caller stores blobs durably before it puts a model that refers to them.
    async fn put_model(
        &self,
        model: &ModelSnapshot,
        expected_version: Option<i64>,
    ) -> Result<ModelSnapshot, TrackingError>;

    /// One page of the models matching `filter`, newest first.
    async fn query_models(&self, filter: &ModelFilter) -> Result<ModelPage, TrackingError>;

    /// Appends reports, all or none.
    async fn add_reports(&self, reports: &[Report]) -> Result<(), TrackingError>;

    /// Checks that `destination` (a blob store URL: `file:///…`, `s3://bucket/prefix`, …) can be
    /// uploaded to; an unsupported scheme is an error that lists the supported ones.
    async fn check_destination(&self, destination: &str) -> Result<(), TrackingError>;

    /// The store URL uploads go to when no destination is given, if the backend has one.
    fn default_destination(&self) -> Option<String>;

    /// Uploads the local file at `path` to `destination` (`None`: the default store) and returns
    /// its blob once it is durable.
    async fn upload_file(
        &self,
        path: &Path,
        destination: Option<&str>,
    ) -> Result<BlobRef, TrackingError>;

    /// A local path holding the blob's bytes, verified against its digest: from the download
    /// cache, or downloaded into it (again when `force`).
    async fn fetch_blob(&self, blob: &BlobRef, force: bool) -> Result<PathBuf, TrackingError>;

    /// A directory where the client may keep files derived from fetched blobs (extracted
    /// packages, packages being built).
    fn cache_dir(&self) -> PathBuf;
}
