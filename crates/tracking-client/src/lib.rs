//! kiln-tracking-client: ClearML's `OutputModel` / `InputModel` surface in Rust — weights
//! uploads (in the background, retried), packages, labels, design, metadata, tags,
//! publish/archive and plots — over a small [`TrackingBackend`] trait, with the embedded
//! [`Local`] backend (a kiln-storage registry and blob stores) by default.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), kiln_tracking_client::TrackingError> {
//! use std::sync::Arc;
//! use kiln_tracking_client::{
//!     Local, ModelProperties, OutputModel, OutputModelOptions, Task, UpdateWeightsOptions,
//!     WaitOptions,
//! };
//!
//! let backend = Arc::new(Local::open_default().await?); // $KILN_HOME or ./kiln-data
//! let task = Task::init(backend, "detection", "train yolo").await?;
//! let model = OutputModel::new(&task, OutputModelOptions {
//!     label_enumeration: Some([("background".to_owned(), 0), ("person".to_owned(), 1)].into()),
//!     framework: Some("ONNX".into()),
//!     ..OutputModelOptions::default()
//! }).await?;
//! model.report_scalar("loss", "train", 0.25, 10).await?;
//! model.update_weights(UpdateWeightsOptions {
//!     auto_delete_file: false,
//!     ..UpdateWeightsOptions::file("best.onnx")
//! }).await?; // returns at once: the upload runs in the background
//! task.wait_for_uploads(WaitOptions::default()).await?; // every failure surfaces here
//! println!("{} is at {:?}", model.id(), model.url());
//! # Ok(()) }
//! ```
//!
//! # Map
//!
//! | ClearML | kiln |
//! |---|---|
//! | `Task.init(project, name)` | [`Task::init`] (per-task settings: [`TaskOptions`]) |
//! | `OutputModel(task, config_text, config_dict, label_enumeration, name, tags, comment, framework, base_model_id)` | [`OutputModel::new`] with [`OutputModelOptions`] |
//! | properties `id`, `name`, `comment`, `tags`, `system_tags`, `framework`, `config_text`, `config_dict`, `labels`, `task`, `project`, `published`, `archived`, `url` | [`ModelProperties`] (on [`OutputModel`] and [`InputModel`]) |
//! | `upload_storage_uri`, `set_upload_destination` | [`OutputModel::upload_storage_uri`], [`OutputModel::set_upload_destination`] |
//! | `OutputModel.set_default_upload_uri` (class method) | [`OutputModel::set_default_upload_uri`] / [`Task::set_default_upload_uri`] — per task, not process-wide |
//! | `update_weights(…)` | [`OutputModel::update_weights`] with [`UpdateWeightsOptions`] → [`WeightsUpload`] |
//! | `update_weights_package(…)` | [`OutputModel::update_weights_package`] with [`UpdateWeightsPackageOptions`] |
//! | `get_weights(…)`, `get_weights_package(…)` | [`OutputModel::get_weights`] / [`InputModel::get_weights`] with [`GetWeightsOptions`]; `…_package` with [`GetWeightsPackageOptions`] → [`WeightsPackage`] |
//! | `update_design`, `update_labels` | [`OutputModel::update_design`] (lazy), [`OutputModel::update_labels`] |
//! | `OutputModel.wait_for_uploads(timeout, max_num_uploads)` | [`Task::wait_for_uploads`] (all models of the task) / [`OutputModel::wait_for_uploads`] with [`WaitOptions`] |
//! | `connect(task, name)` | [`OutputModel::connect`] |
//! | `publish`, `archive`, `unarchive` | the same names |
//! | `set_metadata`, `set_all_metadata`, `get_metadata(_casted)`, `get_all_metadata(_casted)` | the same names (getters on [`ModelProperties`]) |
//! | `report_scalar`, `report_single_value`, `report_histogram`, `report_vector`, `report_line_plot`, `report_scatter2d`, `report_scatter3d`, `report_confusion_matrix`, `report_matrix`, `report_surface`, `report_table`, (plotly) | the same names on [`OutputModel`]; figures from [`plots`] |
//! | `InputModel(model_id)` / `InputModel(name, project, tags, only_published)` | [`InputModel::load`] / [`InputModel::find`] with [`InputModelQuery`] |
//!
//! ## Trains (ClearML's predecessor)
//!
//! Trains' `trains.model.OutputModel` is a subset of ClearML's and maps onto the same API:
//!
//! | Trains | kiln |
//! |---|---|
//! | `OutputModel(task, config_text, config_dict, label_enumeration, name, tags, comment, framework, base_model_id)` | [`OutputModel::new`] with [`OutputModelOptions`] |
//! | `comment`, `config_dict`, `config_text`, `id`, `labels`, `name`, `published`, `tags`, `task`, `url` | [`ModelProperties`] |
//! | `connect(task)` | [`OutputModel::connect`]`(task, None)` |
//! | `get_weights(raise_on_error)` | [`OutputModel::get_weights`] (`force_download`, `extract_archive` false) |
//! | `get_weights_package(return_path, raise_on_error)` | [`OutputModel::get_weights_package`] |
//! | `publish()` | [`OutputModel::publish`] |
//! | `set_upload_destination(uri)` | [`OutputModel::set_upload_destination`] |
//! | `update_design(config_text, config_dict)` | [`OutputModel::update_design`] (lazy there too) |
//! | `update_labels(labels)` | [`OutputModel::update_labels`] |
//! | `update_weights(weights_filename, upload_uri, target_filename, auto_delete_file, register_uri, iteration, update_comment)` | [`OutputModel::update_weights`]; Trains always uploads in the background: `async_enable: true` (the default), `is_package: false` |
//! | `update_weights_package(weights_filenames, weights_path, upload_uri, target_filename, auto_delete_file, iteration)` | [`OutputModel::update_weights_package`] with `async_enable: true` |
//! | `wait_for_uploads(timeout, max_num_uploads)` (class method) | [`Task::wait_for_uploads`] |
//!
//! # Where kiln differs from ClearML, and why
//!
//! - **Content-addressed weights.** A blob's URI is `<store url>/sha256/<2 hex>/<62 hex>`, so
//!   `target_filename` names the weights only in the provenance comment, and the URI of a
//!   background upload is known once it is stored: [`OutputModel::update_weights`] returns a
//!   [`WeightsUpload`] whose [`WeightsUpload::uri`] is set at once for synchronous uploads and
//!   registered URIs, and whose [`WeightsUpload::wait`] gives it for background ones.
//!   [`OutputModel::get_weights`] returns the verified cache path (named by digest).
//! - **Uploads are never lost.** Each background upload stores its blob first (retrying
//!   transient errors per [`UploadPolicy`], at most two per model at once), then updates the
//!   model row; weights updates land in call order. `wait_for_uploads` returns every failure
//!   ([`TrackingError::UploadsFailed`]); a timeout leaves the rest pending. `auto_delete_file`
//!   deletes only after a successful upload. Background uploads are tokio tasks of the
//!   caller's runtime: wait for them before it shuts down (a shutdown cancels them; a cancelled
//!   upload that is waited for is reported as a failed `upload` task).
//! - **Lazy design.** [`OutputModel::update_design`] is applied on the next weights update, as
//!   ClearML documents; labels, tags, metadata, publish and archive are stored at once.
//! - **Per-task defaults.** `set_default_upload_uri` applies to one [`Task`] (and its models),
//!   so two clients in one process do not change each other's destinations.
//! - **`iteration`** has no field in the registry record; it is kept in the provenance comment
//!   line (`weights: <file> (iteration N)`), which `update_comment` maintains (replaced, not
//!   stacked).
//! - **Errors, not booleans.** Setters ClearML answers with `True`/`False` return
//!   `Result<(), TrackingError>`; an unsupported destination scheme is an error listing the
//!   supported ones.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `local` | yes | [`Local`]: the embedded backend on kiln-storage (SQLite or PostgreSQL registry, `file://`/S3/GCS/Azure blob stores). Without it the crate depends on neither sqlx nor object_store; the [`TrackingBackend`] trait uses only this crate's records and kiln-entities. |
//!
//! # Errors
//!
//! One enum, [`TrackingError`], for the crate boundary; the `Local` backend's registry and blob
//! errors are wrapped (`Registry`, `Blob`) except those the client acts on (a missing model, a
//! version conflict, a missing project), which get their own variants.

mod backend;
mod error;
mod input;
#[cfg(feature = "local")]
mod local;
mod output;
pub mod plots;
mod properties;
mod report;
mod task;
mod upload;
mod weights;

pub use backend::{
    ModelFilter, ModelPage, ModelSnapshot, ProjectInfo, Report, ReportKind, TaskInfo,
    TrackingBackend, WEIGHTS_ROLE,
};
pub use error::{TrackingError, UploadFailure};
pub use input::{InputModel, InputModelQuery};
#[cfg(feature = "local")]
pub use local::{DEFAULT_KILN_HOME, KILN_HOME_ENV, Local};
pub use output::{
    OutputModel, OutputModelOptions, UpdateWeightsOptions, UpdateWeightsPackageOptions,
    WEIGHTS_COMMENT_PREFIX,
};
pub use plots::{
    BarMode, HistogramOptions, LinePlotOptions, LineSeries, MatrixOptions, Scatter2dOptions,
    Scatter3dOptions, ScatterMode, SurfaceOptions, TableOptions, TableSource,
};
pub use properties::ModelProperties;
pub use task::{Task, TaskOptions};
pub use upload::{UploadPolicy, WaitOptions, WeightsUpload};
pub use weights::{GetWeightsOptions, GetWeightsPackageOptions, WeightsPackage};
