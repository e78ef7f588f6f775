//! The registry's error type: one enum for every way a registry call can fail.

use kiln_entities::ModelId;

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No model has this id.
    #[error("no model with id {id}")]
    ModelNotFound {
        /// The id asked for.
        id: ModelId,
    },
    /// No project has this id or name.
    #[error("no project with id or name {0:?}")]
    ProjectNotFound(String),
    /// No task has this id.
    #[error("no task with id {0:?}")]
    TaskNotFound(String),
    /// The model changed since it was read (optimistic concurrency).
    #[error("model {id} is at version {found}, not {expected}: it changed since it was read")]
    Conflict {
        /// The model.
        id: ModelId,
        /// The version the writer expected.
        expected: i64,
        /// The version stored (0: none).
        found: i64,
    },
    /// The database was written by a newer kiln; kiln never migrates down.
    #[error(
        "the registry database {url} has schema version {found}, newer than this kiln's {supported}: upgrade kiln (it never migrates a database down)"
    )]
    NewerSchema {
        /// The database (password removed).
        url: String,
        /// The schema version found.
        found: i64,
        /// The newest this kiln knows.
        supported: i64,
    },
    /// The database URL's scheme is not one kiln can open.
    #[error("unsupported database URL {url:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL given.
        url: String,
    },
    /// A query argument is invalid (a bad cursor, an empty name, …).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Which argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A stored value could not be decoded (a corrupt row, or one written by an incompatible
    /// kiln).
    #[error("corrupt registry row ({what}): {reason}")]
    Corrupt {
        /// Which row or column.
        what: String,
        /// Why.
        reason: String,
    },
    /// Opening the database failed.
    #[error("cannot open the registry database {url}")]
    Open {
        /// The database (password removed).
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Migrating the database failed.
    #[error("cannot migrate the registry database")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database failed a query.
    #[error("registry database error")]
    Database(#[from] sqlx::Error),
}
