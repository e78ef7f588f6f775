//! [`Task`]: one run inside a project (ClearML's `Task.init(project_name, task_name)`); models are
//! created on it, and its uploads are waited for through it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use kiln_entities::ModelId;

use crate::backend::{ProjectInfo, TaskInfo, TrackingBackend};
use crate::error::TrackingError;
use crate::upload::{UploadPolicy, UploadTracker, WaitOptions};

/// How a task is opened.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// The project's name (created when missing).
    pub project: String,
    /// The task's name (created when missing).
    pub name: String,
    /// How uploads of this task's models are run.
    pub upload_policy: UploadPolicy,
    /// Where this task's models upload weights unless told otherwise (`None`: the backend's
    /// default store). See [`Task::set_default_upload_uri`].
    pub default_upload_uri: Option<String>,
}

/// A task: the client handle every model is created on.
///
/// Cheap to clone (all clones share the task's settings and pending uploads).
#[derive(Debug, Clone)]
pub struct Task {
    inner: Arc<TaskInner>,
}

#[derive(Debug)]
struct TaskInner {
    backend: Arc<dyn TrackingBackend>,
    project: ProjectInfo,
    info: TaskInfo,
    policy: UploadPolicy,
    default_upload_uri: RwLock<Option<String>>,
    uploads: Arc<UploadTracker>,
    connected: Mutex<BTreeMap<String, ModelId>>,
}

impl Task {
    /// The task `name` in project `project`, both created when missing.
    pub async fn init(
        backend: Arc<dyn TrackingBackend>,
        project: &str,
        name: &str,
    ) -> Result<Self, TrackingError> {
        Self::init_with(
            backend,
            TaskOptions {
                project: project.to_owned(),
                name: name.to_owned(),
                ..TaskOptions::default()
            },
        )
        .await
    }

    /// The task described by `options`.
    pub async fn init_with(
        backend: Arc<dyn TrackingBackend>,
        options: TaskOptions,
    ) -> Result<Self, TrackingError> {
        if options.project.trim().is_empty() {
            return Err(TrackingError::InvalidArgument {
                field: "project",
                reason: "the project name is empty".into(),
            });
        }
        if options.name.trim().is_empty() {
            return Err(TrackingError::InvalidArgument {
                field: "name",
                reason: "the task name is empty".into(),
            });
        }
        if options.upload_policy.max_in_flight == 0 || options.upload_policy.max_attempts == 0 {
            return Err(TrackingError::InvalidArgument {
                field: "upload_policy",
                reason: format!(
                    "max_in_flight ({}) and max_attempts ({}) must be at least 1",
                    options.upload_policy.max_in_flight, options.upload_policy.max_attempts
                ),
            });
        }
        if let Some(uri) = &options.default_upload_uri {
            backend.check_destination(uri).await?;
        }
        let project = backend.ensure_project(&options.project).await?;
        let info = backend.ensure_task(&project.id, &options.name).await?;
        Ok(Self {
            inner: Arc::new(TaskInner {
                backend,
                project,
                info,
                policy: options.upload_policy,
                default_upload_uri: RwLock::new(options.default_upload_uri),
                uploads: Arc::default(),
                connected: Mutex::default(),
            }),
        })
    }

    /// The task's id.
    pub fn id(&self) -> &str {
        &self.inner.info.id
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The project's id.
    pub fn project_id(&self) -> &str {
        &self.inner.project.id
    }

    /// The project's name.
    pub fn project_name(&self) -> &str {
        &self.inner.project.name
    }

    /// The backend the task talks to.
    pub fn backend(&self) -> &Arc<dyn TrackingBackend> {
        &self.inner.backend
    }

    /// How uploads of this task's models are run.
    pub fn upload_policy(&self) -> &UploadPolicy {
        &self.inner.policy
    }

    /// Sets where this task's models upload weights when neither `update_weights` nor
    /// `set_upload_destination` says (ClearML's `OutputModel.set_default_upload_uri`, which is
    /// process-wide there; kiln keeps it per task so that independent clients in one process do
    /// not interfere). `None` goes back to the backend's default store. The destination is
    /// checked first: an unsupported scheme is an error listing the supported ones.
    pub async fn set_default_upload_uri(&self, uri: Option<&str>) -> Result<(), TrackingError> {
        if let Some(uri) = uri {
            self.inner.backend.check_destination(uri).await?;
        }
        *self
            .inner
            .default_upload_uri
            .write()
            .unwrap_or_else(PoisonError::into_inner) = uri.map(str::to_owned);
        Ok(())
    }

    /// The task-wide default destination, if one is set.
    pub fn default_upload_uri(&self) -> Option<String> {
        self.inner
            .default_upload_uri
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for the background uploads of every model of this task (ClearML's
    /// `OutputModel.wait_for_uploads`) and returns their URIs, oldest first.
    ///
    /// Every failed upload among them is returned in [`TrackingError::UploadsFailed`]; running
    /// out of time is [`TrackingError::WaitTimeout`], and then the unfinished uploads stay
    /// pending for a later wait. With nothing pending, returns at once.
    pub async fn wait_for_uploads(
        &self,
        options: WaitOptions,
    ) -> Result<Vec<String>, TrackingError> {
        self.inner.uploads.wait(None, options).await
    }

    /// How many background uploads no wait has observed yet.
    pub fn pending_uploads(&self) -> usize {
        self.inner.uploads.pending(None)
    }

    /// The models connected to this task by name (`OutputModel::connect`), in this process.
    pub fn connected_models(&self) -> BTreeMap<String, ModelId> {
        self.inner
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn uploads(&self) -> &Arc<UploadTracker> {
        &self.inner.uploads
    }

    pub(crate) fn connect_model(&self, name: String, id: ModelId) {
        self.inner
            .connected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, id);
    }
}
