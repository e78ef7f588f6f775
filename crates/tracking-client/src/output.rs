//! [`OutputModel`]: ClearML's read-write model of a task — weights (files, packages, registered
//! URIs; uploaded in the background with retries), design, labels, tags, metadata,
//! publish/archive. The `report_*` methods are in [`crate::report`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use kiln_entities::{
    BlobRef, Design, MetadataEntry, MetadataType, MetadataValue, ModelId, ModelRecord, PACKAGE_TAG,
};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use crate::backend::{ModelSnapshot, TrackingBackend, WEIGHTS_ROLE};
use crate::error::{TrackingError, UploadFailure};
use crate::properties::ModelProperties;
use crate::task::Task;
use crate::upload::{WaitOptions, WeightsUpload};
use crate::weights::{self, GetWeightsOptions, GetWeightsPackageOptions, PackageEntry};

/// The first words of the comment line `update_weights` keeps (with `update_comment`).
pub const WEIGHTS_COMMENT_PREFIX: &str = "weights: ";

/// How [`OutputModel::new`] creates (or reuses) a model.
#[derive(Debug, Clone, Default)]
pub struct OutputModelOptions {
    /// The configuration as text (prototxt, INI, YAML, …). Not with `config_dict`.
    pub config_text: Option<String>,
    /// The configuration as a dict. Not with `config_text`.
    pub config_dict: Option<Map<String, Value>>,
    /// The label enumeration, e.g. `{"background": 0, "person": 1}`.
    pub label_enumeration: Option<BTreeMap<String, i64>>,
    /// The model's name (default: the task's name).
    pub name: Option<String>,
    /// User tags.
    pub tags: Vec<String>,
    /// A comment / description.
    pub comment: Option<String>,
    /// The framework (`"PyTorch"`, `"ONNX"`, …).
    pub framework: Option<String>,
    /// Reuse this existing model (connected to the task) instead of creating one; the options
    /// given replace its fields, those not given keep theirs.
    pub base_model_id: Option<ModelId>,
}

/// What [`OutputModel::update_weights`] stores. Defaults are ClearML's: `auto_delete_file`,
/// `update_comment` and `async_enable` are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateWeightsOptions {
    /// The local weights file to upload. Exactly one of this and `register_uri`.
    pub weights_filename: Option<PathBuf>,
    /// The URI of weights already stored somewhere, recorded as is (no upload). Exactly one of
    /// this and `weights_filename`.
    pub register_uri: Option<String>,
    /// The destination store URL for this upload (and, like ClearML's "previously used URI",
    /// for this model's later uploads).
    pub upload_uri: Option<String>,
    /// The file's name in the model's provenance comment (default: the local file name). Blobs
    /// are content-addressed, so it does not change where the bytes are stored.
    pub target_filename: Option<String>,
    /// Delete the local file once it is uploaded (only after a successful upload).
    pub auto_delete_file: bool,
    /// The training iteration the weights are from (recorded in the provenance comment).
    pub iteration: Option<i64>,
    /// Keep a `weights: <file>` line in the model's comment (provenance).
    pub update_comment: bool,
    /// The file is a package (a zip): sets the system tag `package`.
    pub is_package: bool,
    /// Upload in the background and return at once (see [`WeightsUpload`]).
    pub async_enable: bool,
}

impl Default for UpdateWeightsOptions {
    fn default() -> Self {
        Self {
            weights_filename: None,
            register_uri: None,
            upload_uri: None,
            target_filename: None,
            auto_delete_file: true,
            iteration: None,
            update_comment: true,
            is_package: false,
            async_enable: true,
        }
    }
}

impl UpdateWeightsOptions {
    /// Upload the file at `path` (ClearML's defaults otherwise).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            weights_filename: Some(path.into()),
            ..Self::default()
        }
    }

    /// Record `uri` as the weights (ClearML's defaults otherwise).
    pub fn register(uri: impl Into<String>) -> Self {
        Self {
            register_uri: Some(uri.into()),
            ..Self::default()
        }
    }
}

/// What [`OutputModel::update_weights_package`] stores: several files zipped into one package.
/// Defaults are ClearML's: `auto_delete_file` and `async_enable` are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateWeightsPackageOptions {
    /// The files, each stored under its file name. Exactly one of this and `weights_path`.
    pub weights_filenames: Option<Vec<PathBuf>>,
    /// A directory: every file under it, by relative path. Exactly one of this and
    /// `weights_filenames`.
    pub weights_path: Option<PathBuf>,
    /// The destination store URL (see [`UpdateWeightsOptions::upload_uri`]).
    pub upload_uri: Option<String>,
    /// The package's name in the provenance comment (default: `<model name>.zip`).
    pub target_filename: Option<String>,
    /// Delete the packaged files once the package is uploaded (directories stay).
    pub auto_delete_file: bool,
    /// The training iteration the weights are from.
    pub iteration: Option<i64>,
    /// Zip and upload in the background and return at once.
    pub async_enable: bool,
}

impl Default for UpdateWeightsPackageOptions {
    fn default() -> Self {
        Self {
            weights_filenames: None,
            weights_path: None,
            upload_uri: None,
            target_filename: None,
            auto_delete_file: true,
            iteration: None,
            async_enable: true,
        }
    }
}

/// A model a task writes (ClearML's `OutputModel`).
///
/// Every setter writes through to the backend at once (optimistic versions; a concurrent change
/// by another writer is re-read and the setter re-applied on it), except the design:
/// [`OutputModel::update_design`] is lazy, as in ClearML, and is stored with the next weights
/// update. The read-only properties come from [`ModelProperties`].
///
/// Cheap to clone: clones share the model's state and uploads.
#[derive(Debug, Clone)]
pub struct OutputModel {
    inner: Arc<ModelInner>,
}

#[derive(Debug)]
pub(crate) struct ModelInner {
    task: Task,
    state: Mutex<ModelState>,
    /// Serializes writes (held across the backend call; the state mutex never is).
    write: tokio::sync::Mutex<()>,
    /// At most `max_in_flight` uploads of this model at once.
    slots: Semaphore,
    /// Numbers weights updates in call order, so a slow early upload cannot overwrite a later one.
    next_seq: AtomicU64,
}

#[derive(Debug)]
struct ModelState {
    snapshot: ModelSnapshot,
    /// The newest weights update stored.
    applied_seq: u64,
    /// This model's upload destination (`set_upload_destination`, or the last `upload_uri`).
    destination: Option<String>,
    /// A design waiting for the next weights update.
    pending_design: Option<Design>,
}

/// One weights update, applied to the model row once the bytes are durable.
#[derive(Debug, Clone)]
struct WeightsChange {
    seq: u64,
    uri: String,
    blob: Option<BlobRef>,
    is_package: bool,
    /// The provenance comment line, if any.
    note: Option<String>,
}

impl WeightsChange {
    fn apply(&self, snapshot: &mut ModelSnapshot, design: Option<&Design>) {
        let record = &mut snapshot.record;
        record.uri = Some(self.uri.clone());
        match &self.blob {
            Some(blob) => {
                snapshot.blobs.insert(WEIGHTS_ROLE.to_owned(), blob.clone());
            }
            None => {
                snapshot.blobs.remove(WEIGHTS_ROLE);
            }
        }
        if self.is_package {
            if !record.is_package() {
                record.system_tags.push(PACKAGE_TAG.to_owned());
            }
        } else {
            record.system_tags.retain(|t| t != PACKAGE_TAG);
        }
        if let Some(design) = design {
            record.design = Some(design.clone());
        }
        if let Some(note) = &self.note {
            record.comment = with_provenance(&record.comment, note);
        }
    }
}

/// `comment` with its `weights: …` line replaced by `note` (or `note` appended).
fn with_provenance(comment: &str, note: &str) -> String {
    let mut lines: Vec<&str> = comment
        .lines()
        .filter(|l| !l.starts_with(WEIGHTS_COMMENT_PREFIX))
        .collect();
    let line = format!("{WEIGHTS_COMMENT_PREFIX}{note}");
    lines.push(&line);
    lines
        .into_iter()
        .skip_while(|l| l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn provenance(name: &str, iteration: Option<i64>) -> String {
    match iteration {
        Some(i) => format!("{name} (iteration {i})"),
        None => name.to_owned(),
    }
}

/// What a background (or inline) upload uploads.
#[derive(Debug)]
enum UploadSource {
    /// A file, deleted after a successful upload when `delete` is set.
    File { path: PathBuf, delete: bool },
    /// Files zipped into a package first; the sources are deleted after a successful upload
    /// when `delete` is set.
    Package {
        entries: Vec<PackageEntry>,
        delete: bool,
    },
}

impl UploadSource {
    fn describe(&self) -> String {
        match self {
            Self::File { path, .. } => path.display().to_string(),
            Self::Package { entries, .. } => format!(
                "a package of {} file(s) ({})",
                entries.len(),
                entries
                    .iter()
                    .map(|e| e.source.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[derive(Debug)]
struct UploadJob {
    id: u64,
    source: UploadSource,
    destination: Option<String>,
    change: WeightsChange,
}

impl OutputModel {
    /// Creates a model on `task` (stored at once), or reuses `options.base_model_id`.
    ///
    /// Giving both `config_text` and `config_dict` is [`TrackingError::Design`].
    pub async fn new(task: &Task, options: OutputModelOptions) -> Result<Self, TrackingError> {
        let design = Design::from_options(options.config_text, options.config_dict)?;
        let backend = task.backend();
        let stored = match options.base_model_id {
            Some(id) => {
                let mut snapshot = backend.model(id).await?;
                let expected = snapshot.version;
                let record = &mut snapshot.record;
                if let Some(name) = options.name {
                    record.name = name;
                }
                if let Some(comment) = options.comment {
                    record.comment = comment;
                }
                if options.framework.is_some() {
                    record.framework = options.framework;
                }
                if let Some(labels) = options.label_enumeration {
                    record.labels = labels;
                }
                if design.is_some() {
                    record.design = design;
                }
                if !options.tags.is_empty() {
                    record.tags = options.tags;
                }
                record.task = Some(task.id().to_owned());
                if record.project.is_none() {
                    record.project = Some(task.project_id().to_owned());
                }
                backend.put_model(&snapshot, Some(expected)).await?
            }
            None => {
                let mut record =
                    ModelRecord::new(options.name.unwrap_or_else(|| task.name().to_owned()));
                record.comment = options.comment.unwrap_or_default();
                record.framework = options.framework;
                record.labels = options.label_enumeration.unwrap_or_default();
                record.design = design;
                record.tags = options.tags;
                record.project = Some(task.project_id().to_owned());
                record.task = Some(task.id().to_owned());
                backend
                    .put_model(&ModelSnapshot::new(record), Some(0))
                    .await?
            }
        };
        Ok(Self {
            inner: Arc::new(ModelInner {
                task: task.clone(),
                state: Mutex::new(ModelState {
                    snapshot: stored,
                    applied_seq: 0,
                    destination: None,
                    pending_design: None,
                }),
                write: tokio::sync::Mutex::new(()),
                slots: Semaphore::new(task.upload_policy().max_in_flight),
                next_seq: AtomicU64::new(0),
            }),
        })
    }

    /// The task the model was created on.
    pub fn task_handle(&self) -> &Task {
        &self.inner.task
    }

    fn backend(&self) -> &Arc<dyn TrackingBackend> {
        self.inner.task.backend()
    }

    /// Re-reads the model from the backend (changes made by other writers).
    pub async fn reload(&self) -> Result<(), TrackingError> {
        let _write = self.inner.write.lock().await;
        let fresh = self.backend().model(self.id()).await?;
        self.inner.state().snapshot = fresh;
        Ok(())
    }

    /// Connects the model to `task` (ClearML's `connect`): the model's task becomes `task`, and
    /// the task lists it under `name` (default: the model's name) in
    /// [`Task::connected_models`].
    pub async fn connect(&self, task: &Task, name: Option<&str>) -> Result<(), TrackingError> {
        let task_id = task.id().to_owned();
        self.inner
            .mutate(move |s| {
                s.record.task = Some(task_id.clone());
                Ok(())
            })
            .await?;
        task.connect_model(name.map_or_else(|| self.name(), str::to_owned), self.id());
        Ok(())
    }

    /// Sets the model's name.
    pub async fn set_name(&self, name: impl Into<String>) -> Result<(), TrackingError> {
        let name = name.into();
        self.inner
            .mutate(move |s| {
                s.record.name.clone_from(&name);
                Ok(())
            })
            .await
    }

    /// Sets the comment (description).
    pub async fn set_comment(&self, comment: impl Into<String>) -> Result<(), TrackingError> {
        let comment = comment.into();
        self.inner
            .mutate(move |s| {
                s.record.comment.clone_from(&comment);
                Ok(())
            })
            .await
    }

    /// Replaces the user tags.
    pub async fn set_tags(&self, tags: Vec<String>) -> Result<(), TrackingError> {
        self.inner
            .mutate(move |s| {
                s.record.tags.clone_from(&tags);
                Ok(())
            })
            .await
    }

    /// Sets the framework.
    pub async fn set_framework(
        &self,
        framework: Option<impl Into<String>>,
    ) -> Result<(), TrackingError> {
        let framework = framework.map(Into::into);
        self.inner
            .mutate(move |s| {
                s.record.framework.clone_from(&framework);
                Ok(())
            })
            .await
    }

    /// Updates the configuration — lazily, as ClearML does: the new design is stored with the
    /// next weights update (`update_weights`, `update_weights_package`, a registered URI), and
    /// until then [`ModelProperties::config_text`] still reads the stored one
    /// ([`OutputModel::pending_design`] reads the waiting one). A later call replaces a waiting
    /// design. Exactly one of `config_text` and `config_dict`.
    pub fn update_design(
        &self,
        config_text: Option<String>,
        config_dict: Option<Map<String, Value>>,
    ) -> Result<(), TrackingError> {
        let design = Design::from_options(config_text, config_dict)?.ok_or(
            TrackingError::MissingArgument {
                first: "config_text",
                second: "config_dict",
            },
        )?;
        self.inner.state().pending_design = Some(design);
        Ok(())
    }

    /// The design waiting for the next weights update, if any.
    pub fn pending_design(&self) -> Option<Design> {
        self.inner.state().pending_design.clone()
    }

    /// Replaces the label enumeration (stored at once).
    pub async fn update_labels(&self, labels: BTreeMap<String, i64>) -> Result<(), TrackingError> {
        self.inner
            .mutate(move |s| {
                s.record.update_labels(labels.clone());
                Ok(())
            })
            .await
    }

    /// Publishes the model; a no-op when it already is.
    pub async fn publish(&self) -> Result<(), TrackingError> {
        if self.published() {
            return Ok(());
        }
        self.inner
            .mutate(|s| {
                s.record.publish();
                Ok(())
            })
            .await
    }

    /// Archives the model (system tag `archived`); a no-op when it already is.
    pub async fn archive(&self) -> Result<(), TrackingError> {
        if self.archived() {
            return Ok(());
        }
        self.inner
            .mutate(|s| {
                s.record.archive();
                Ok(())
            })
            .await
    }

    /// Unarchives the model; a no-op when it is not archived.
    pub async fn unarchive(&self) -> Result<(), TrackingError> {
        if !self.archived() {
            return Ok(());
        }
        self.inner
            .mutate(|s| {
                s.record.unarchive();
                Ok(())
            })
            .await
    }

    /// Sets one metadata entry (the value is kept as text and cast to `ty` on read).
    pub async fn set_metadata(
        &self,
        key: impl Into<String>,
        value: impl Into<String>,
        ty: MetadataType,
    ) -> Result<(), TrackingError> {
        let entry = MetadataEntry::new(key, value, ty);
        if entry.key.is_empty() {
            return Err(TrackingError::InvalidArgument {
                field: "key",
                reason: "a metadata key must not be empty".into(),
            });
        }
        self.inner
            .mutate(move |s| {
                s.record.metadata.insert(entry.clone());
                Ok(())
            })
            .await
    }

    /// Sets one metadata entry from a typed value (rendered so that it casts back to itself).
    pub async fn set_metadata_value(
        &self,
        key: impl Into<String>,
        value: &MetadataValue,
    ) -> Result<(), TrackingError> {
        let entry = MetadataEntry::from_value(key, value);
        self.set_metadata(entry.key, entry.value, entry.ty).await
    }

    /// Sets many metadata entries: with `replace` they become the whole metadata, otherwise they
    /// are added to (or change) the current ones.
    pub async fn set_all_metadata(
        &self,
        entries: Vec<MetadataEntry>,
        replace: bool,
    ) -> Result<(), TrackingError> {
        if let Some(bad) = entries.iter().find(|e| e.key.is_empty()) {
            return Err(TrackingError::InvalidArgument {
                field: "key",
                reason: format!("a metadata key must not be empty (value {:?})", bad.value),
            });
        }
        self.inner
            .mutate(move |s| {
                s.record.set_all_metadata(entries.clone(), replace);
                Ok(())
            })
            .await
    }

    /// Sets where this model's weights are uploaded (a blob store URL: `file:///…`,
    /// `s3://bucket/prefix`, `gs://…`, `azure://…`). An unsupported scheme is an error listing
    /// the supported ones (ClearML returns `false`).
    pub async fn set_upload_destination(&self, uri: &str) -> Result<(), TrackingError> {
        self.backend().check_destination(uri).await?;
        self.inner.state().destination = Some(uri.to_owned());
        Ok(())
    }

    /// Where this model's weights go: its own destination, else the task's default, else the
    /// backend's default store.
    pub fn upload_storage_uri(&self) -> Option<String> {
        let own = self.inner.state().destination.clone();
        own.or_else(|| self.inner.task.default_upload_uri())
            .or_else(|| self.backend().default_destination())
    }

    /// Sets the default destination of every model of `task` (ClearML's class method
    /// `OutputModel.set_default_upload_uri`, kept per task in kiln; see
    /// [`Task::set_default_upload_uri`]).
    pub async fn set_default_upload_uri(
        task: &Task,
        uri: Option<&str>,
    ) -> Result<(), TrackingError> {
        task.set_default_upload_uri(uri).await
    }

    /// Waits for this model's background uploads; see [`Task::wait_for_uploads`] for the rules
    /// (every failure returned, timeouts leave uploads pending).
    pub async fn wait_for_uploads(
        &self,
        options: WaitOptions,
    ) -> Result<Vec<String>, TrackingError> {
        self.inner
            .task
            .uploads()
            .wait(Some(self.id()), options)
            .await
    }

    /// How many of this model's background uploads no wait has observed yet.
    pub fn pending_uploads(&self) -> usize {
        self.inner.task.uploads().pending(Some(self.id()))
    }

    /// Updates the weights from a local file (uploaded) or an existing URI (recorded).
    ///
    /// Exactly one of `weights_filename` and `register_uri` ([`TrackingError::ConflictingArguments`]
    /// or [`TrackingError::MissingArgument`] otherwise); a missing file is
    /// [`TrackingError::FileNotFound`], checked before anything starts. A registered URI must be
    /// an absolute URI; it is recorded without upload. An upload stores the blob first and
    /// updates the model (blob, URI, `package` tag, a waiting design, the provenance comment) only
    /// once the blob is durable; weights updates land in call order (a slow earlier upload never
    /// replaces later weights).
    ///
    /// With `async_enable` the upload runs on a background tokio task, at most
    /// [`crate::UploadPolicy::max_in_flight`] per model, retrying transient failures with
    /// backoff; the returned [`WeightsUpload`] is pending, and its outcome is reported by
    /// [`WeightsUpload::wait`] or `wait_for_uploads`. Otherwise the call returns when the upload
    /// is done, with its error if it failed.
    pub async fn update_weights(
        &self,
        options: UpdateWeightsOptions,
    ) -> Result<WeightsUpload, TrackingError> {
        match (options.weights_filename, options.register_uri) {
            (Some(_), Some(_)) => Err(TrackingError::ConflictingArguments {
                first: "weights_filename",
                second: "register_uri",
            }),
            (None, None) => Err(TrackingError::MissingArgument {
                first: "weights_filename",
                second: "register_uri",
            }),
            (None, Some(uri)) => {
                validate_register_uri(&uri)?;
                let id = self.inner.task.uploads().next_id();
                let change = WeightsChange {
                    seq: self.inner.next_seq(),
                    uri: uri.clone(),
                    blob: None,
                    is_package: options.is_package,
                    note: options.update_comment.then(|| {
                        provenance(
                            options.target_filename.as_deref().unwrap_or(&uri),
                            options.iteration,
                        )
                    }),
                };
                self.inner.apply_weights(&change).await?;
                Ok(WeightsUpload::done(id, self.id(), uri))
            }
            (Some(path), None) => {
                if !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                    return Err(TrackingError::FileNotFound {
                        what: "weights file",
                        path,
                    });
                }
                let destination = self.destination(options.upload_uri).await?;
                let name = options.target_filename.clone().unwrap_or_else(|| {
                    path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    )
                });
                let job = UploadJob {
                    id: self.inner.task.uploads().next_id(),
                    source: UploadSource::File {
                        path,
                        delete: options.auto_delete_file,
                    },
                    destination,
                    change: WeightsChange {
                        seq: self.inner.next_seq(),
                        uri: String::new(),
                        blob: None,
                        is_package: options.is_package,
                        note: options
                            .update_comment
                            .then(|| provenance(&name, options.iteration)),
                    },
                };
                self.start(job, options.async_enable).await
            }
        }
    }

    /// Updates the weights with a package: the given files (each under its file name), or every
    /// file under a directory (by relative path), zipped (deflate) and uploaded as one blob with
    /// the system tag `package`. Exactly one of `weights_filenames` and `weights_path`; the files
    /// are checked before anything starts. The zip is made in the backend's cache directory
    /// (on the background task with `async_enable`) and removed after the upload.
    pub async fn update_weights_package(
        &self,
        options: UpdateWeightsPackageOptions,
    ) -> Result<WeightsUpload, TrackingError> {
        let filenames = options.weights_filenames;
        let dir = options.weights_path;
        let entries = tokio::task::spawn_blocking(move || {
            weights::package_entries(filenames.as_deref(), dir.as_deref())
        })
        .await
        .map_err(|e| TrackingError::task("package", &e))??;
        let destination = self.destination(options.upload_uri).await?;
        let name = options
            .target_filename
            .unwrap_or_else(|| format!("{}.zip", self.name()));
        let job = UploadJob {
            id: self.inner.task.uploads().next_id(),
            source: UploadSource::Package {
                entries,
                delete: options.auto_delete_file,
            },
            destination,
            change: WeightsChange {
                seq: self.inner.next_seq(),
                uri: String::new(),
                blob: None,
                is_package: true,
                note: Some(provenance(&name, options.iteration)),
            },
        };
        self.start(job, options.async_enable).await
    }

    /// Downloads the weights into the verified cache and returns the local path (for a package
    /// with `extract_archive`: the extracted directory). Reads the weights this handle last
    /// stored: wait for pending uploads first to get theirs. Without `raise_on_error`, a failure
    /// is logged and gives `None`.
    pub async fn get_weights(
        &self,
        options: GetWeightsOptions,
    ) -> Result<Option<PathBuf>, TrackingError> {
        weights::get_weights(self.backend().as_ref(), &self.snapshot(), options).await
    }

    /// Downloads the weights package and returns its files, its extracted directory or the zip.
    /// A model whose weights are not a package is [`TrackingError::NotAPackage`].
    pub async fn get_weights_package(
        &self,
        options: GetWeightsPackageOptions,
    ) -> Result<Option<weights::WeightsPackage>, TrackingError> {
        weights::get_weights_package(self.backend().as_ref(), &self.snapshot(), options).await
    }

    /// The destination of one upload: `explicit` (checked, and remembered as this model's
    /// destination), else the model's, else the task's default (`None`: the backend's default).
    async fn destination(&self, explicit: Option<String>) -> Result<Option<String>, TrackingError> {
        match explicit {
            Some(uri) => {
                self.backend().check_destination(&uri).await?;
                self.inner.state().destination = Some(uri.clone());
                Ok(Some(uri))
            }
            None => {
                let own = self.inner.state().destination.clone();
                Ok(own.or_else(|| self.inner.task.default_upload_uri()))
            }
        }
    }

    async fn start(
        &self,
        job: UploadJob,
        background: bool,
    ) -> Result<WeightsUpload, TrackingError> {
        let id = job.id;
        let model = self.id();
        if !background {
            let uri = self
                .inner
                .clone()
                .run(job)
                .await
                .map_err(|(error, _)| error)?;
            return Ok(WeightsUpload::done(id, model, uri));
        }
        let source = job.source.describe();
        let destination = job.destination.clone();
        let inner = Arc::clone(&self.inner);
        let failure = {
            let (source, destination) = (source.clone(), destination.clone());
            move |error: TrackingError, attempts: u32| UploadFailure {
                upload: id,
                model,
                source,
                destination,
                attempts,
                error: Arc::new(error),
            }
        };
        let handle = tokio::spawn(async move { inner.run(job).await });
        let future = async move {
            match handle.await {
                Ok(Ok(uri)) => Ok(uri),
                Ok(Err((error, attempts))) => Err(failure(error, attempts)),
                Err(join) => Err(failure(TrackingError::task("upload", &join), 0)),
            }
        }
        .boxed();
        Ok(self.inner.task.uploads().register(id, model, future))
    }
}

impl ModelProperties for OutputModel {
    fn with_snapshot<R>(&self, f: impl FnOnce(&ModelSnapshot) -> R) -> R {
        f(&self.inner.state().snapshot)
    }
}

fn validate_register_uri(uri: &str) -> Result<(), TrackingError> {
    let parsed = url::Url::parse(uri).map_err(|e| TrackingError::InvalidUri {
        uri: uri.to_owned(),
        reason: e.to_string(),
    })?;
    if parsed.cannot_be_a_base() {
        return Err(TrackingError::InvalidUri {
            uri: uri.to_owned(),
            reason: "not a hierarchical URI (expected scheme://…)".into(),
        });
    }
    Ok(())
}

impl ModelInner {
    fn state(&self) -> MutexGuard<'_, ModelState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn backend(&self) -> &Arc<dyn TrackingBackend> {
        self.task.backend()
    }

    /// Applies `change` to the stored model and stores it, re-reading and re-applying when
    /// another writer got there first. Call with the write lock held.
    async fn put_changed(
        &self,
        mut current: ModelSnapshot,
        change: &(dyn Fn(&mut ModelSnapshot) -> Result<(), TrackingError> + Send + Sync),
    ) -> Result<ModelSnapshot, TrackingError> {
        const ATTEMPTS: u32 = 3;
        let mut attempt = 1;
        loop {
            let mut next = current.clone();
            change(&mut next)?;
            match self.backend().put_model(&next, Some(current.version)).await {
                Err(TrackingError::Conflict { .. }) if attempt < ATTEMPTS => {
                    attempt += 1;
                    current = self.backend().model(current.id()).await?;
                }
                other => return other,
            }
        }
    }

    /// One write: `change` applied to the model and stored.
    async fn mutate(
        &self,
        change: impl Fn(&mut ModelSnapshot) -> Result<(), TrackingError> + Send + Sync,
    ) -> Result<(), TrackingError> {
        let _write = self.write.lock().await;
        let current = self.state().snapshot.clone();
        let stored = self.put_changed(current, &change).await?;
        self.state().snapshot = stored;
        Ok(())
    }

    /// Stores a weights update (with the waiting design), unless a later one is already stored.
    async fn apply_weights(&self, change: &WeightsChange) -> Result<(), TrackingError> {
        let _write = self.write.lock().await;
        let (current, design) = {
            let state = self.state();
            if change.seq < state.applied_seq {
                tracing::debug!(
                    model = %state.snapshot.id(),
                    uri = %change.uri,
                    "a later weights update is already stored; this one is kept as a blob only"
                );
                return Ok(());
            }
            (state.snapshot.clone(), state.pending_design.clone())
        };
        let stored = self
            .put_changed(current, &|s| {
                change.apply(s, design.as_ref());
                Ok(())
            })
            .await?;
        let mut state = self.state();
        state.snapshot = stored;
        state.applied_seq = change.seq;
        if design.is_some() && state.pending_design == design {
            state.pending_design = None;
        }
        Ok(())
    }

    /// Runs one upload: takes a slot, makes the package if needed, uploads with retries, stores
    /// the weights update, then deletes the local files asked for. Errors come with the number
    /// of attempts made.
    async fn run(self: Arc<Self>, job: UploadJob) -> Result<String, (TrackingError, u32)> {
        let _slot = self.slots.acquire().await.map_err(|e| {
            let error = TrackingError::Task {
                operation: "upload",
                reason: e.to_string(),
            };
            (error, 0)
        })?;
        let (path, _package, delete) = match job.source {
            UploadSource::File { path, delete } => {
                let delete = if delete {
                    vec![path.clone()]
                } else {
                    Vec::new()
                };
                (path, None, delete)
            }
            UploadSource::Package { entries, delete } => {
                let package = self
                    .make_package(entries.clone())
                    .await
                    .map_err(|e| (e, 0))?;
                let delete = if delete {
                    entries.into_iter().map(|e| e.source).collect()
                } else {
                    Vec::new()
                };
                (package.to_path_buf(), Some(package), delete)
            }
        };
        let policy = self.task.upload_policy().clone();
        let mut attempt = 0;
        let blob = loop {
            attempt += 1;
            match self
                .backend()
                .upload_file(&path, job.destination.as_deref())
                .await
            {
                Ok(blob) => break blob,
                Err(error) if error.is_transient() && attempt < policy.max_attempts => {
                    let delay = policy.backoff(attempt);
                    tracing::warn!(
                        file = %path.display(),
                        attempt,
                        ?delay,
                        error = %error,
                        "upload failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err((error, attempt)),
            }
        };
        let change = WeightsChange {
            uri: blob.uri.clone(),
            blob: Some(blob),
            ..job.change
        };
        self.apply_weights(&change)
            .await
            .map_err(|e| (e, attempt))?;
        for file in delete {
            if let Err(error) = tokio::fs::remove_file(&file).await
                && error.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %file.display(), %error, "cannot delete the uploaded file");
            }
        }
        Ok(change.uri)
    }

    /// Zips `entries` into a temporary file in the backend's cache directory.
    async fn make_package(
        &self,
        entries: Vec<PackageEntry>,
    ) -> Result<tempfile::TempPath, TrackingError> {
        let dir = self.backend().cache_dir().join("packages");
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(TrackingError::io("create directory", &dir))?;
            let file = tempfile::Builder::new()
                .prefix("package-")
                .suffix(".zip")
                .tempfile_in(&dir)
                .map_err(TrackingError::io("create a temporary file in", &dir))?;
            let path = file.into_temp_path();
            weights::write_package(&entries, &path)?;
            Ok(path)
        })
        .await
        .map_err(|e| TrackingError::task("package", &e))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_line_is_replaced_not_stacked() {
        let once = with_provenance("my model", "a.bin");
        assert_eq!(once, "my model\nweights: a.bin");
        let twice = with_provenance(&once, "b.bin (iteration 3)");
        assert_eq!(twice, "my model\nweights: b.bin (iteration 3)");
        assert_eq!(with_provenance("", "c.bin"), "weights: c.bin");
    }

    #[test]
    fn register_uris_must_be_absolute() {
        assert!(validate_register_uri("s3://bucket/model.bin").is_ok());
        assert!(validate_register_uri("file:///tmp/model.bin").is_ok());
        assert!(matches!(
            validate_register_uri("model.bin"),
            Err(TrackingError::InvalidUri { .. })
        ));
        assert!(matches!(
            validate_register_uri("mailto:someone@example.com"),
            Err(TrackingError::InvalidUri { .. })
        ));
    }
}
