//! Shared fixtures: a `Local` backend in a temporary directory, a task on it, files to upload,
//! and backends wrapping `Local` that gate or fail uploads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use async_trait::async_trait;
use kiln_entities::{BlobRef, ModelId};
use kiln_storage::{Registry, StoredModel};
use kiln_tracking_client::{
    Local, ModelFilter, ModelPage, ModelSnapshot, ProjectInfo, Report, Task, TaskInfo, TaskOptions,
    TrackingBackend, TrackingError, UploadPolicy,
};
use tokio::sync::Semaphore;

/// A `Local` backend in a temporary directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub local: Arc<Local>,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let local = Arc::new(
            Local::open(&dir.path().join("home"))
                .await
                .expect("open the local backend"),
        );
        Self { dir, local }
    }

    pub fn backend(&self) -> Arc<dyn TrackingBackend> {
        self.local.clone()
    }

    pub fn registry(&self) -> &Arc<dyn Registry> {
        self.local.registry()
    }

    pub async fn task(&self, project: &str, name: &str) -> Task {
        Task::init(self.backend(), project, name)
            .await
            .expect("init task")
    }

    /// Writes `bytes` to `<dir>/<name>` and returns the path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    /// The model as the registry stores it.
    pub async fn stored(&self, id: ModelId) -> StoredModel {
        self.registry().model(id).await.expect("stored model")
    }
}

/// A fast retry policy for tests.
pub fn quick_policy(max_attempts: u32) -> UploadPolicy {
    UploadPolicy {
        max_attempts,
        initial_backoff: std::time::Duration::from_millis(1),
        max_backoff: std::time::Duration::from_millis(4),
        ..UploadPolicy::default()
    }
}

/// A task on `backend` with `policy`.
pub async fn task_with(backend: Arc<dyn TrackingBackend>, policy: UploadPolicy) -> Task {
    Task::init_with(
        backend,
        TaskOptions {
            project: "p".into(),
            name: "t".into(),
            upload_policy: policy,
            default_upload_uri: None,
        },
    )
    .await
    .expect("init task")
}

/// `Local`, with uploads that fail a number of times first, that wait at a gate (files whose
/// name starts with `gated`), and that count how many run at once.
#[derive(Debug)]
pub struct Wrapped {
    pub inner: Arc<Local>,
    pub failures_left: AtomicU32,
    pub transient: bool,
    pub attempts: AtomicU32,
    pub gate: Semaphore,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub hold: std::time::Duration,
}

impl Wrapped {
    pub fn new(inner: Arc<Local>) -> Self {
        Self {
            inner,
            failures_left: AtomicU32::new(0),
            transient: true,
            attempts: AtomicU32::new(0),
            gate: Semaphore::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            hold: std::time::Duration::ZERO,
        }
    }

    /// Fails the next `n` uploads (transiently or not).
    pub fn failing(self, n: u32, transient: bool) -> Self {
        self.failures_left.store(n, Ordering::SeqCst);
        Self { transient, ..self }
    }

    /// Makes every upload take `hold` (so that uploads overlap when allowed to).
    pub fn holding(self, hold: std::time::Duration) -> Self {
        Self { hold, ..self }
    }

    /// Lets gated uploads through.
    pub fn open_gate(&self) {
        self.gate.add_permits(1_000);
    }
}

#[async_trait]
impl TrackingBackend for Wrapped {
    async fn ensure_project(&self, name: &str) -> Result<ProjectInfo, TrackingError> {
        self.inner.ensure_project(name).await
    }

    async fn ensure_task(&self, project: &str, name: &str) -> Result<TaskInfo, TrackingError> {
        self.inner.ensure_task(project, name).await
    }

    async fn model(&self, id: ModelId) -> Result<ModelSnapshot, TrackingError> {
        self.inner.model(id).await
    }

    async fn put_model(
        &self,
        model: &ModelSnapshot,
        expected_version: Option<i64>,
    ) -> Result<ModelSnapshot, TrackingError> {
        self.inner.put_model(model, expected_version).await
    }

    async fn query_models(&self, filter: &ModelFilter) -> Result<ModelPage, TrackingError> {
        self.inner.query_models(filter).await
    }

    async fn add_reports(&self, reports: &[Report]) -> Result<(), TrackingError> {
        self.inner.add_reports(reports).await
    }

    async fn check_destination(&self, destination: &str) -> Result<(), TrackingError> {
        self.inner.check_destination(destination).await
    }

    fn default_destination(&self) -> Option<String> {
        self.inner.default_destination()
    }

    async fn upload_file(
        &self,
        path: &Path,
        destination: Option<&str>,
    ) -> Result<BlobRef, TrackingError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let result = async {
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("gated"))
            {
                let _permit = self.gate.acquire().await.expect("gate open");
            }
            if !self.hold.is_zero() {
                tokio::time::sleep(self.hold).await;
            }
            let fail = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if fail {
                return Err(TrackingError::Backend {
                    backend: "wrapped".into(),
                    message: format!("injected failure uploading {}", path.display()),
                    transient: self.transient,
                });
            }
            self.inner.upload_file(path, destination).await
        }
        .await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn fetch_blob(&self, blob: &BlobRef, force: bool) -> Result<PathBuf, TrackingError> {
        self.inner.fetch_blob(blob, force).await
    }

    fn cache_dir(&self) -> PathBuf {
        self.inner.cache_dir()
    }
}
