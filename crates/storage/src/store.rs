//! [`Store`]: a registry and its default blob store together, with the ordering rules that make a
//! registration durable (blobs first, then one transaction) and garbage collection.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_entities::{BlobRef, Sha256Digest};
use serde::Serialize;

use crate::blob::{BlobError, BlobStore, BlobStoreOptions, ProgressFn};
use crate::registry::{
    BlobUse, Registry, RegistryError, SqlRegistry, SqlRegistryOptions, StoredModel,
};

/// The blob role of a model's weights: [`Store::register`] sets the record's `uri` from it.
pub const WEIGHTS_ROLE: &str = "weights";

/// The environment variable naming kiln's data directory (default `./kiln-data`).
pub const HOME_ENV: &str = "KILN_HOME";
/// The environment variable overriding the registry database URL (default: SQLite in the home).
pub const DATABASE_URL_ENV: &str = "KILN_DATABASE_URL";
/// The environment variable overriding the default blob store URL (default: `<home>/blobs`).
pub const BLOB_URL_ENV: &str = "KILN_BLOB_URL";

/// Why a [`Store`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A blob store failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A file to register could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where a [`Store`] keeps things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// kiln's data directory: the SQLite registry, the default blobs and the download cache.
    pub home: PathBuf,
    /// The registry database (`sqlite://…` or `postgres://…`); default `<home>/registry.db`.
    pub database_url: Option<String>,
    /// The default blob store (`file://`, `s3://`, `gs://`, `azure://`); default `<home>/blobs`.
    pub blob_url: Option<String>,
}

impl StoreOptions {
    /// Everything in `home`.
    pub fn at(home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            database_url: None,
            blob_url: None,
        }
    }

    /// From the environment: [`HOME_ENV`] (default `./kiln-data`), [`DATABASE_URL_ENV`],
    /// [`BLOB_URL_ENV`].
    pub fn from_env() -> Self {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Self {
            home: var(HOME_ENV).map_or_else(|| PathBuf::from("kiln-data"), PathBuf::from),
            database_url: var(DATABASE_URL_ENV),
            blob_url: var(BLOB_URL_ENV),
        }
    }

    /// The registry URL these options resolve to.
    pub fn resolved_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.home.join("registry.db").display()))
    }

    /// The default blob store URL these options resolve to.
    pub fn resolved_blob_url(&self) -> String {
        self.blob_url
            .clone()
            .unwrap_or_else(|| self.home.join("blobs").display().to_string())
    }

    /// The local download cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }
}

/// What [`Store::gc`] does.
#[derive(Debug, Clone, PartialEq)]
pub struct GcOptions {
    /// Also delete blobs only superseded weights refer to (and forget those references).
    pub superseded: bool,
    /// Only report what would be deleted.
    pub dry_run: bool,
    /// Keep unreferenced blobs younger than this: a registration in progress has stored its
    /// blobs but not yet committed its row (default: one hour).
    pub grace: chrono::Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            superseded: false,
            dry_run: false,
            grace: chrono::Duration::hours(1),
        }
    }
}

/// What [`Store::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Blobs looked at.
    pub scanned: u64,
    /// Blobs deleted (or that would be, on a dry run).
    pub deleted: Vec<Sha256Digest>,
    /// Their total size.
    pub bytes_freed: u64,
    /// Unreferenced blobs kept because they are younger than the grace period.
    pub kept_young: u64,
    /// Superseded references forgotten.
    pub superseded_dropped: u64,
    /// Stale staging uploads removed.
    pub stale_uploads: u64,
}

/// A registry and its default blob store, plus the stores other blob URIs live in.
#[derive(Debug, Clone)]
pub struct Store {
    registry: Arc<dyn Registry>,
    blobs: BlobStore,
    blob_options: BlobStoreOptions,
    /// Stores opened for blobs that live elsewhere, by store URL.
    others: Arc<Mutex<BTreeMap<String, BlobStore>>>,
}

impl Store {
    /// Opens (creating when missing) the registry and default blob store `options` name.
    pub async fn open(options: &StoreOptions) -> Result<Self, StorageError> {
        let registry = SqlRegistry::open(
            &options.resolved_database_url(),
            &SqlRegistryOptions::default(),
        )
        .await?;
        let blob_options = BlobStoreOptions {
            cache_dir: Some(options.cache_dir()),
            ..BlobStoreOptions::default()
        };
        let blobs = BlobStore::open(&options.resolved_blob_url(), blob_options.clone())?;
        Ok(Self::new(Arc::new(registry), blobs, blob_options))
    }

    /// A store over an open registry and blob store; `blob_options` are used for the stores
    /// opened later for blobs that live elsewhere.
    pub fn new(
        registry: Arc<dyn Registry>,
        blobs: BlobStore,
        blob_options: BlobStoreOptions,
    ) -> Self {
        Self {
            registry,
            blobs,
            blob_options,
            others: Arc::default(),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The default blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The blob store holding `blob` (the default one, or one opened from its URI).
    pub fn store_for(&self, blob: &BlobRef) -> Result<BlobStore, StorageError> {
        let (url, _) = BlobStore::split_uri(&blob.uri)?;
        if url == self.blobs.url() {
            return Ok(self.blobs.clone());
        }
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = others.get(&url) {
            return Ok(store.clone());
        }
        let store = BlobStore::open(&url, self.blob_options.clone())?;
        others.insert(url, store.clone());
        Ok(store)
    }

    /// Registers `model` with `files` (role, path): each file is stored durably first, then the
    /// model row with its blob references is written in one transaction. A crash before the
    /// commit leaves at most unreferenced blobs (for `gc`), never a row without its blobs.
    ///
    /// The [`WEIGHTS_ROLE`] blob's URI becomes the record's `uri`.
    pub async fn register(
        &self,
        mut model: StoredModel,
        files: &[(String, PathBuf)],
        expected_version: Option<i64>,
        progress: Option<ProgressFn>,
    ) -> Result<StoredModel, StorageError> {
        for (role, path) in files {
            let blob = self.blobs.put_file(path, progress.clone()).await?;
            if role == WEIGHTS_ROLE {
                model.record.uri = Some(blob.uri.clone());
            }
            model.set_blob(role.clone(), blob);
        }
        Ok(self.registry.put_model(&model, expected_version).await?)
    }

    /// The local path of `blob`'s bytes, from the verified download cache.
    pub async fn fetch(&self, blob: &BlobRef, force: bool) -> Result<PathBuf, StorageError> {
        Ok(self.store_for(blob)?.fetch(&blob.digest, force).await?)
    }

    /// Downloads `blob` to `dest` (verified; written to a temp file and renamed).
    pub async fn download(&self, blob: &BlobRef, dest: &Path) -> Result<u64, StorageError> {
        Ok(self.store_for(blob)?.download(&blob.digest, dest).await?)
    }

    /// Checks that every blob of `model` is present and matches its digest.
    pub async fn verify(&self, model: &StoredModel) -> Result<(), StorageError> {
        for blob in &model.blobs {
            self.store_for(&blob.blob)?
                .verify(&blob.blob.digest)
                .await?;
        }
        Ok(())
    }

    /// Deletes the default store's blobs no model refers to (older than the grace period), and
    /// with [`GcOptions::superseded`] those only replaced weights refer to.
    pub async fn gc(&self, options: &GcOptions) -> Result<GcReport, StorageError> {
        let mut report = GcReport::default();
        if options.superseded && !options.dry_run {
            report.superseded_dropped = self.registry.drop_superseded().await?;
        }
        let mut keep = BTreeSet::new();
        for (digest, used) in self.registry.blob_uses().await? {
            if used == BlobUse::Current || !options.superseded {
                keep.insert(digest);
            }
        }
        let cutoff = chrono::Utc::now() - options.grace;
        for info in self.blobs.list().await? {
            report.scanned += 1;
            if keep.contains(&info.digest) {
                continue;
            }
            if info.last_modified > cutoff {
                report.kept_young += 1;
                continue;
            }
            if !options.dry_run {
                self.blobs.delete(&info.digest).await?;
            }
            report.bytes_freed += info.size;
            report.deleted.push(info.digest);
        }
        if !options.dry_run {
            report.stale_uploads = self.blobs.cleanup_uploads(options.grace).await?;
        }
        Ok(report)
    }
}
