//! The SQL registry: one sqlx `Any` code path over SQLite (embedded, the default) and PostgreSQL.
//!
//! # Design
//!
//! - **One dialect.** Every statement is written once in the SQL both engines speak: `$n`
//!   placeholders, `ON CONFLICT … DO NOTHING`, `WITH RECURSIVE`, row values, no `RETURNING`, no
//!   auto-increment. Ids are UUIDs as `TEXT`, times `BIGINT` milliseconds, flags `BIGINT` 0/1,
//!   JSON `TEXT`. The engines differ in two places only: a write transaction starts with
//!   SQLite's `BEGIN IMMEDIATE`, which takes the write lock up front (waiting up to the busy
//!   timeout) so that a transaction that reads then writes never fails half-way with
//!   `SQLITE_BUSY`; and generated statements (filters, multi-row inserts) use SQLite's anonymous
//!   `?` placeholders, which sqlx binds in constant time where a `$n` costs a linear search.
//! - **Authoritative JSON, queryable columns.** A model's record and entity are kept whole as
//!   JSON; the columns and child tables (tags, metadata, blob references) repeat what queries
//!   filter on and are written in the same transaction.
//! - **Migrations are embedded** (`migrations/`) and run on open. A database whose migrations
//!   table names a version this kiln does not know was written by a newer kiln:
//!   [`RegistryError::NewerSchema`], never a migration down.
//! - **Optimistic concurrency** on `models.version`: an update is `… WHERE version = $found`, an
//!   insert is `ON CONFLICT (id) DO NOTHING`; zero rows affected means another writer won.

mod connect;
mod events;
mod lineage;
mod models;
mod projects;
mod query;
mod sqlbuf;

use std::time::Duration;

use async_trait::async_trait;
use kiln_entities::{ModelId, Sha256Digest};
use sqlx::{Any, AnyPool, Transaction};

use super::{
    BlobUse, Event, EventQuery, LineageQuery, ModelQuery, Page, Project, Registry, RegistryError,
    StoredModel, TaskRecord,
};

/// How [`SqlRegistry::open`] connects.
#[derive(Debug, Clone)]
pub struct SqlRegistryOptions {
    /// The most connections the pool opens (default 8; an in-memory SQLite database always uses
    /// one, since every connection to `sqlite::memory:` is a database of its own).
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing (default 30 s).
    pub acquire_timeout: Duration,
    /// SQLite: how long a writer waits for another process's write lock (default 30 s).
    pub busy_timeout: Duration,
    /// SQLite: `true` (the default) syncs the WAL at every commit (`synchronous = FULL`), so a
    /// commit survives a power loss or an OS crash too; `false` syncs at checkpoints only
    /// (`synchronous = NORMAL`: faster, and a commit still survives the process being killed).
    pub sqlite_full_sync: bool,
}

impl Default for SqlRegistryOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            busy_timeout: Duration::from_secs(30),
            sqlite_full_sync: true,
        }
    }
}

/// Which engine a [`SqlRegistry`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SqlBackend {
    /// SQLite (a file, or memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The model registry in SQLite or PostgreSQL, through one sqlx code path.
///
/// - Every write is one transaction; `put_model` is optimistic (see [`Registry::put_model`]).
/// - SQLite runs in WAL mode with `synchronous = FULL` by default: a call that returned has its
///   data on disk, even if the process is killed right after. Several processes may share one
///   file: writers wait for each other up to the busy timeout.
/// - Times are kept to the millisecond (`created_at`, `updated_at`, event timestamps).
/// - Opening applies the embedded migrations, and refuses a database written by a newer kiln
///   ([`RegistryError::NewerSchema`]).
///
/// Cloning is cheap: clones share the connection pool.
#[derive(Debug, Clone)]
pub struct SqlRegistry {
    pool: AnyPool,
    backend: SqlBackend,
    /// The URL it was opened with, password removed (for messages).
    url: String,
}

impl SqlRegistry {
    /// Opens (creating and migrating when needed) the registry at `url`:
    ///
    /// - `sqlite://PATH` or `sqlite:PATH` (relative or absolute; the file and its parent
    ///   directories are created when missing; WAL journal, foreign keys on, the options' busy
    ///   timeout and synchronous mode), `sqlite::memory:` for a private in-memory database;
    /// - `postgres://…` or `postgresql://…` (the database must exist).
    ///
    /// Anything else is [`RegistryError::UnsupportedUrl`]; a database written by a newer kiln is
    /// [`RegistryError::NewerSchema`].
    pub async fn open(url: &str, options: &SqlRegistryOptions) -> Result<Self, RegistryError> {
        connect::open(url, options).await
    }

    /// Opens the SQLite registry in the file at `path` with default options (see
    /// [`SqlRegistry::open`]).
    pub async fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self, RegistryError> {
        let url = connect::sqlite_url(path.as_ref())?;
        connect::open(&url, &SqlRegistryOptions::default()).await
    }

    /// A fresh, private in-memory SQLite registry (for tests and throw-away work): it lives as
    /// long as this registry and its clones.
    pub async fn open_in_memory() -> Result<Self, RegistryError> {
        connect::open("sqlite::memory:", &SqlRegistryOptions::default()).await
    }

    /// Whether this registry is in PostgreSQL (`false`: SQLite).
    pub fn is_postgres(&self) -> bool {
        self.backend == SqlBackend::Postgres
    }

    /// The URL it was opened with, password removed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection pool, for maintenance and tests. The schema is not an API: kiln may change
    /// it in any release (through a migration).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The newest schema version this kiln knows (the last embedded migration).
    pub fn supported_schema_version() -> i64 {
        connect::supported_version()
    }

    /// Refreshes the query planner's statistics: PostgreSQL `ANALYZE` of the registry's tables,
    /// SQLite `PRAGMA optimize`. PostgreSQL's autovacuum does this by itself after a while; call
    /// it after a bulk import and before querying, since a planner without statistics can pick a
    /// plan thousands of times slower.
    pub async fn analyze(&self) -> Result<(), RegistryError> {
        let statement = match self.backend {
            SqlBackend::Sqlite => "PRAGMA optimize",
            SqlBackend::Postgres => {
                "ANALYZE projects, tasks, models, model_tags, model_metadata, model_blobs, events"
            }
        };
        sqlx::query(statement).execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction: on SQLite `BEGIN IMMEDIATE`, which takes the write lock now
    /// (waiting up to the busy timeout) so that reads followed by writes cannot fail half-way.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            SqlBackend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            SqlBackend::Postgres => self.pool.begin().await,
        }
    }
}

#[async_trait]
impl Registry for SqlRegistry {
    async fn ensure_project(&self, name: &str) -> Result<Project, RegistryError> {
        projects::ensure_project(self, name).await
    }

    async fn project(&self, id_or_name: &str) -> Result<Project, RegistryError> {
        projects::project(self, id_or_name).await
    }

    async fn ensure_task(&self, project: &str, name: &str) -> Result<TaskRecord, RegistryError> {
        projects::ensure_task(self, project, name).await
    }

    async fn task(&self, id: &str) -> Result<TaskRecord, RegistryError> {
        projects::task(self, id).await
    }

    async fn put_model(
        &self,
        model: &StoredModel,
        expected_version: Option<i64>,
    ) -> Result<StoredModel, RegistryError> {
        models::put_model(self, model, expected_version).await
    }

    async fn model(&self, id: ModelId) -> Result<StoredModel, RegistryError> {
        models::model(self, id).await
    }

    async fn delete_model(&self, id: ModelId) -> Result<(), RegistryError> {
        models::delete_model(self, id).await
    }

    async fn query_models(&self, query: &ModelQuery) -> Result<Page<StoredModel>, RegistryError> {
        query::query_models(self, query).await
    }

    async fn lineage(&self, query: &LineageQuery) -> Result<Vec<StoredModel>, RegistryError> {
        lineage::lineage(self, query).await
    }

    async fn add_events(&self, events: &[Event]) -> Result<(), RegistryError> {
        events::add_events(self, events).await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, RegistryError> {
        events::events(self, query).await
    }

    async fn blob_uses(&self) -> Result<Vec<(Sha256Digest, BlobUse)>, RegistryError> {
        models::blob_uses(self).await
    }

    async fn drop_superseded(&self) -> Result<u64, RegistryError> {
        models::drop_superseded(self).await
    }
}
