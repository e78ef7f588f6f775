//! [`Local`]: the embedded backend — a kiln-storage [`Registry`] (SQLite by default) and
//! content-addressed [`BlobStore`]s (the default store, plus one per upload destination).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use kiln_entities::{BlobRef, ModelId};
use kiln_storage::{
    BlobStore, BlobStoreOptions, Event, EventKind, ModelQuery, Project, Registry, SqlRegistry,
    StoredModel, TaskRecord,
};

use crate::backend::{
    ModelFilter, ModelPage, ModelSnapshot, ProjectInfo, Report, ReportKind, TaskInfo,
    TrackingBackend,
};
use crate::error::TrackingError;

/// The environment variable naming the directory [`Local::open_default`] opens.
pub const KILN_HOME_ENV: &str = "KILN_HOME";
/// The directory [`Local::open_default`] opens when [`KILN_HOME_ENV`] is not set.
pub const DEFAULT_KILN_HOME: &str = "./kiln-data";

/// The embedded backend: models, projects, tasks and reports in a kiln-storage registry, weights
/// in blob stores.
///
/// Uploads without a destination go to the default store; a destination URL (`file:///…`,
/// `s3://bucket/prefix`, `gs://…`, `azure://…`) opens a store of its own, kept for the life of
/// the backend. Downloads go through the default store's download cache (blobs are keyed by
/// digest, so one cache serves every store) and are verified against their digest.
#[derive(Debug)]
pub struct Local {
    registry: Arc<dyn Registry>,
    default_store: BlobStore,
    stores: Mutex<HashMap<String, BlobStore>>,
    cache_dir: PathBuf,
}

impl Local {
    /// The backend over `registry`, uploading to `default_store` by default. The default store
    /// must have a download cache ([`BlobStoreOptions::cache_dir`]); stores opened for other
    /// destinations get the same options.
    pub fn new(
        registry: Arc<dyn Registry>,
        default_store: BlobStore,
    ) -> Result<Self, TrackingError> {
        let cache_dir = default_store.options().cache_dir.clone().ok_or_else(|| {
            TrackingError::InvalidArgument {
                field: "default_store",
                reason: format!(
                    "the blob store {} has no download cache (BlobStoreOptions::cache_dir)",
                    default_store.url()
                ),
            }
        })?;
        Ok(Self {
            registry,
            default_store,
            stores: Mutex::new(HashMap::new()),
            cache_dir,
        })
    }

    /// The embedded default in `home`: the SQLite registry `<home>/registry.db`, blobs in
    /// `<home>/blobs` (`file://`), the download cache in `<home>/cache`. Everything is created
    /// when missing.
    pub async fn open(home: &Path) -> Result<Self, TrackingError> {
        std::fs::create_dir_all(home).map_err(TrackingError::io("create directory", home))?;
        let registry = SqlRegistry::open_sqlite(home.join("registry.db")).await?;
        let blobs = home.join("blobs");
        let blobs_url = blobs
            .to_str()
            .ok_or_else(|| TrackingError::InvalidArgument {
                field: "home",
                reason: format!("{} is not valid UTF-8", home.display()),
            })?;
        let store = BlobStore::open(
            blobs_url,
            BlobStoreOptions {
                cache_dir: Some(home.join("cache")),
                ..BlobStoreOptions::default()
            },
        )?;
        Self::new(Arc::new(registry), store)
    }

    /// [`Local::open`] on the directory named by `KILN_HOME`, or `./kiln-data`.
    pub async fn open_default() -> Result<Self, TrackingError> {
        let home = std::env::var_os(KILN_HOME_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_KILN_HOME), PathBuf::from);
        Self::open(&home).await
    }

    /// The registry underneath.
    pub fn registry(&self) -> &Arc<dyn Registry> {
        &self.registry
    }

    /// The store uploads go to by default.
    pub fn default_store(&self) -> &BlobStore {
        &self.default_store
    }

    /// The store at `url`: the default one, or one opened (once) for it.
    pub fn store(&self, url: &str) -> Result<BlobStore, TrackingError> {
        if url == self.default_store.url() {
            return Ok(self.default_store.clone());
        }
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = stores.get(url) {
            return Ok(store.clone());
        }
        let opened = BlobStore::open(url, self.default_store.options().clone())?;
        let store = if opened.url() == self.default_store.url() {
            self.default_store.clone()
        } else {
            stores
                .entry(opened.url().to_owned())
                .or_insert(opened)
                .clone()
        };
        stores.insert(url.to_owned(), store.clone());
        Ok(store)
    }

    fn store_of(&self, blob: &BlobRef) -> Result<BlobStore, TrackingError> {
        let (url, digest) = BlobStore::split_uri(&blob.uri)?;
        if digest != blob.digest {
            return Err(TrackingError::InvalidUri {
                uri: blob.uri.clone(),
                reason: format!(
                    "names sha256:{digest}, but the blob's digest is sha256:{}",
                    blob.digest
                ),
            });
        }
        self.store(&url)
    }
}

#[async_trait]
impl TrackingBackend for Local {
    async fn ensure_project(&self, name: &str) -> Result<ProjectInfo, TrackingError> {
        Ok(project_info(self.registry.ensure_project(name).await?))
    }

    async fn ensure_task(&self, project: &str, name: &str) -> Result<TaskInfo, TrackingError> {
        Ok(task_info(self.registry.ensure_task(project, name).await?))
    }

    async fn model(&self, id: ModelId) -> Result<ModelSnapshot, TrackingError> {
        Ok(to_snapshot(self.registry.model(id).await?))
    }

    async fn put_model(
        &self,
        model: &ModelSnapshot,
        expected_version: Option<i64>,
    ) -> Result<ModelSnapshot, TrackingError> {
        let stored = self
            .registry
            .put_model(&to_stored(model), expected_version)
            .await?;
        Ok(to_snapshot(stored))
    }

    async fn query_models(&self, filter: &ModelFilter) -> Result<ModelPage, TrackingError> {
        let query = ModelQuery {
            project: filter.project.clone(),
            name_pattern: filter.name_pattern.clone(),
            tags: filter.tags.clone(),
            only_published: filter.only_published,
            include_archived: filter.include_archived,
            max_results: filter.max_results,
            cursor: filter.cursor.clone(),
            ..ModelQuery::default()
        };
        let page = self.registry.query_models(&query).await?;
        Ok(ModelPage {
            items: page.items.into_iter().map(to_snapshot).collect(),
            next: page.next,
        })
    }

    async fn add_reports(&self, reports: &[Report]) -> Result<(), TrackingError> {
        let events: Vec<Event> = reports.iter().cloned().map(to_event).collect();
        Ok(self.registry.add_events(&events).await?)
    }

    async fn check_destination(&self, destination: &str) -> Result<(), TrackingError> {
        self.store(destination).map(drop)
    }

    fn default_destination(&self) -> Option<String> {
        Some(self.default_store.url().to_owned())
    }

    async fn upload_file(
        &self,
        path: &Path,
        destination: Option<&str>,
    ) -> Result<BlobRef, TrackingError> {
        let store = match destination {
            Some(url) => self.store(url)?,
            None => self.default_store.clone(),
        };
        Ok(store.put_file(path, None).await?)
    }

    async fn fetch_blob(&self, blob: &BlobRef, force: bool) -> Result<PathBuf, TrackingError> {
        Ok(self.store_of(blob)?.fetch(&blob.digest, force).await?)
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone()
    }
}

fn project_info(project: Project) -> ProjectInfo {
    ProjectInfo {
        id: project.id,
        name: project.name,
    }
}

fn task_info(task: TaskRecord) -> TaskInfo {
    TaskInfo {
        id: task.id,
        project: task.project,
        name: task.name,
    }
}

fn to_snapshot(stored: StoredModel) -> ModelSnapshot {
    ModelSnapshot {
        record: stored.record,
        entity: stored.entity,
        blobs: stored.blobs.into_iter().map(|b| (b.role, b.blob)).collect(),
        version: stored.version,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

fn to_stored(snapshot: &ModelSnapshot) -> StoredModel {
    let mut stored = StoredModel::new(snapshot.record.clone());
    stored.entity = snapshot.entity.clone();
    for (role, blob) in &snapshot.blobs {
        stored.set_blob(role.clone(), blob.clone());
    }
    stored.version = snapshot.version;
    stored.created_at = snapshot.created_at;
    stored.updated_at = snapshot.updated_at;
    stored
}

fn to_event(report: Report) -> Event {
    let kind = match report.kind {
        ReportKind::Scalar {
            title,
            series,
            iteration,
            value,
        } => EventKind::Scalar {
            title,
            series,
            iteration,
            value,
        },
        ReportKind::SingleValue { name, value } => EventKind::SingleValue { name, value },
        ReportKind::Plot {
            title,
            series,
            iteration,
            figure,
        } => EventKind::Plot {
            title,
            series,
            iteration,
            figure,
        },
    };
    Event {
        model: report.model,
        task: report.task,
        timestamp: report.timestamp,
        kind,
    }
}
