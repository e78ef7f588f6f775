//! kiln-storage: the model registry (SQLite or PostgreSQL through one sqlx code path) and the
//! content-addressed blob store (object_store) that holds the weights.
//!
//! The two halves meet in [`Store`]: a model row refers to blobs only after they are durable, and
//! a registration is one transaction.

pub mod blob;
pub mod registry;
pub mod store;

pub use blob::{BlobError, BlobInfo, BlobStore, BlobStoreOptions, ProgressFn};
pub use registry::{
    Event, EventKind, EventQuery, LineageDirection, LineageQuery, ModelBlob, ModelQuery, Page,
    Project, Registry, RegistryError, RegistryExt, SqlRegistry, SqlRegistryOptions, StoredModel,
    TaskRecord,
};
pub use store::{GcOptions, GcReport, StorageError, Store, StoreOptions, WEIGHTS_ROLE};
