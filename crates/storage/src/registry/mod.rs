//! The registry boundary: the [`Registry`] trait, the records it stores and the queries it answers.
//!
//! Implementations: [`SqlRegistry`] (SQLite or PostgreSQL through one sqlx code path). The trait
//! is small and required; conveniences built from it live in [`RegistryExt`].

mod error;
mod sql;
mod types;

use async_trait::async_trait;
use kiln_entities::{ModelId, Sha256Digest};

pub use error::RegistryError;
pub use sql::{SqlRegistry, SqlRegistryOptions};
pub use types::{
    BlobUse, ENTITY_ROLE_PREFIX, Event, EventKind, EventQuery, LineageDirection, LineageQuery,
    ModelBlob, ModelQuery, Page, Project, StoredModel, TaskRecord,
};

/// Where models, their lineage, metadata, tags and events are kept.
///
/// Every write is one transaction: a reader sees all of it or none of it. Blobs are not the
/// registry's business beyond the references it keeps ([`ModelBlob`]); the caller stores a blob
/// durably before it puts a model that refers to it.
#[async_trait]
pub trait Registry: Send + Sync + std::fmt::Debug {
    /// The project called `name`, created when missing.
    async fn ensure_project(&self, name: &str) -> Result<Project, RegistryError>;

    /// The project with this id or, failing that, this name.
    async fn project(&self, id_or_name: &str) -> Result<Project, RegistryError>;

    /// The task called `name` in `project` (a project id), created when missing.
    async fn ensure_task(&self, project: &str, name: &str) -> Result<TaskRecord, RegistryError>;

    /// The task with this id.
    async fn task(&self, id: &str) -> Result<TaskRecord, RegistryError>;

    /// Inserts the model, or replaces the stored one with the same id, in one transaction (row,
    /// tags, metadata and blob references together).
    ///
    /// `expected_version` is optimistic concurrency: `Some(v)` fails with
    /// [`RegistryError::Conflict`] unless the stored version is `v` (`Some(0)`: must not exist
    /// yet); `None` writes unconditionally. Blob references whose role the new model no longer has,
    /// or has with another digest, are kept as superseded (see [`BlobUse`]). Returns the model as
    /// stored, with its new version and timestamps.
    async fn put_model(
        &self,
        model: &StoredModel,
        expected_version: Option<i64>,
    ) -> Result<StoredModel, RegistryError>;

    /// The model with this id; [`RegistryError::ModelNotFound`] when there is none.
    async fn model(&self, id: ModelId) -> Result<StoredModel, RegistryError>;

    /// Removes the model row (its events and blob references too). The blobs stay until `gc`.
    async fn delete_model(&self, id: ModelId) -> Result<(), RegistryError>;

    /// The catalogue query (ClearML's `query_models`), one page at a time, newest first.
    async fn query_models(&self, query: &ModelQuery) -> Result<Page<StoredModel>, RegistryError>;

    /// The models reachable from `query.model` through `parent` links, nearest first.
    async fn lineage(&self, query: &LineageQuery) -> Result<Vec<StoredModel>, RegistryError>;

    /// Appends events in one transaction.
    async fn add_events(&self, events: &[Event]) -> Result<(), RegistryError>;

    /// The events matching the query, in the order they were reported.
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, RegistryError>;

    /// Every blob digest a model refers to, with how: current, or only superseded.
    async fn blob_uses(&self) -> Result<Vec<(Sha256Digest, BlobUse)>, RegistryError>;

    /// Forgets superseded blob references (so that `gc` may delete those blobs); returns how many.
    async fn drop_superseded(&self) -> Result<u64, RegistryError>;
}

/// Conveniences over any [`Registry`].
#[async_trait]
pub trait RegistryExt: Registry {
    /// Every model matching the query, following pages until the last one.
    async fn query_all_models(
        &self,
        query: &ModelQuery,
    ) -> Result<Vec<StoredModel>, RegistryError> {
        let mut query = query.clone();
        let mut all = Vec::new();
        loop {
            let page = self.query_models(&query).await?;
            all.extend(page.items);
            match page.next {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(all),
            }
        }
    }

    /// The ancestors of `model`, parent first.
    async fn ancestors(&self, model: ModelId) -> Result<Vec<StoredModel>, RegistryError> {
        self.lineage(&LineageQuery::new(model, LineageDirection::Ancestors))
            .await
    }

    /// The descendants of `model`, children first.
    async fn descendants(&self, model: ModelId) -> Result<Vec<StoredModel>, RegistryError> {
        self.lineage(&LineageQuery::new(model, LineageDirection::Descendants))
            .await
    }
}

impl<R: Registry + ?Sized> RegistryExt for R {}
