//! [`TrackingError`]: the one error type at the crate boundary, and [`UploadFailure`], one failed
//! background upload as `wait_for_uploads` reports it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kiln_entities::{DesignError, ModelId};

/// Why a tracking call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackingError {
    /// `config_text` and `config_dict` were both given (or the config text cannot be read as a
    /// dict).
    #[error(transparent)]
    Design(#[from] DesignError),
    /// Two arguments that exclude each other were both given (`weights_filename` and
    /// `register_uri`, `weights_filenames` and `weights_path`).
    #[error("specify {first} or {second}, not both")]
    ConflictingArguments {
        /// The first argument.
        first: &'static str,
        /// The second argument.
        second: &'static str,
    },
    /// Neither of two arguments, one of which is required, was given.
    #[error("specify {first} or {second}")]
    MissingArgument {
        /// The first argument.
        first: &'static str,
        /// The second argument.
        second: &'static str,
    },
    /// An argument has a value that cannot work.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// The argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A local file to upload does not exist (or is not a regular file).
    #[error("{what} {path} does not exist or is not a regular file")]
    FileNotFound {
        /// What the file was for (`weights file`, `package file`, `CSV file`, ...).
        what: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// Local file IO failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`read`, `delete`, `create directory`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A URI (`register_uri`, an upload destination) is not a valid absolute URI.
    #[error("invalid URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// Why.
        reason: String,
    },
    /// No model has this id.
    #[error("no model with id {id}")]
    ModelNotFound {
        /// The id asked for.
        id: ModelId,
    },
    /// No model matches a name query.
    #[error("no model named {name:?}{}", project.as_ref().map(|p| format!(" in project {p:?}")).unwrap_or_default())]
    NoModelNamed {
        /// The name asked for.
        name: String,
        /// The project it was looked for in.
        project: Option<String>,
    },
    /// No project has this id or name.
    #[error("no project with id or name {0:?}")]
    ProjectNotFound(String),
    /// The model has no weights (neither uploaded nor registered).
    #[error("model {id} has no weights: update_weights has not stored any yet")]
    NoWeights {
        /// The model.
        id: ModelId,
    },
    /// `get_weights_package` on a model whose weights are not a package.
    #[error("model {id} is not a package (it has no `package` system tag)")]
    NotAPackage {
        /// The model.
        id: ModelId,
    },
    /// The weights URI names neither a blob the backend stores nor a local file.
    #[error(
        "cannot download {uri:?}: it is not a blob of this backend's stores, and only file:// \
         URIs are read directly"
    )]
    NotDownloadable {
        /// The URI.
        uri: String,
    },
    /// The model changed since it was read (optimistic concurrency), and re-applying the change
    /// on the new version kept conflicting.
    #[error("model {id} is at version {found}, not {expected}: it changed since it was read")]
    Conflict {
        /// The model.
        id: ModelId,
        /// The version the writer expected.
        expected: i64,
        /// The version stored.
        found: i64,
    },
    /// A plot's data does not fit its options (ragged matrix, wrong number of labels, ...).
    #[error("cannot plot {title:?}: {reason}")]
    InvalidPlot {
        /// The plot's title.
        title: String,
        /// Why.
        reason: String,
    },
    /// A weights package (zip) could not be written or read.
    #[error("cannot {action} the weights package {path}")]
    Package {
        /// What was being done (`write`, `read`, `extract`).
        action: &'static str,
        /// The zip file.
        path: PathBuf,
        /// Why.
        #[source]
        source: zip::result::ZipError,
    },
    /// One or more background uploads failed; every failure is listed.
    #[error("{} upload(s) failed: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    UploadsFailed(Vec<UploadFailure>),
    /// `wait_for_uploads` ran out of time. The uploads still running stay pending: a later
    /// wait reports them.
    #[error("timed out after {timeout:?} waiting for uploads: {pending} still running")]
    WaitTimeout {
        /// The timeout.
        timeout: Duration,
        /// How many of the awaited uploads had not finished.
        pending: usize,
    },
    /// A background task died (panicked or was cancelled).
    #[error("background {operation} task failed: {reason}")]
    Task {
        /// What the task did (`upload`, `package`, `extract`).
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// A backend other than the built-in ones failed.
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend.
        backend: String,
        /// What went wrong.
        message: String,
        /// Whether retrying may help (a lost connection, a timeout, a 5xx).
        transient: bool,
    },
    /// The registry failed (the `Local` backend).
    #[cfg(feature = "local")]
    #[error(transparent)]
    Registry(kiln_storage::RegistryError),
    /// A blob store failed (the `Local` backend); an unsupported destination scheme lists the
    /// supported ones.
    #[cfg(feature = "local")]
    #[error(transparent)]
    Blob(#[from] kiln_storage::BlobError),
}

impl TrackingError {
    /// An [`TrackingError::Io`] error.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// A [`TrackingError::Task`] error from a failed join.
    pub(crate) fn task(operation: &'static str, error: &tokio::task::JoinError) -> Self {
        Self::Task {
            operation,
            reason: error.to_string(),
        }
    }

    /// Whether retrying the same call may succeed: lost connections, timeouts, object-store
    /// errors, failed background tasks. Bad arguments, missing files, unsupported schemes and
    /// digest mismatches are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Io { source, .. } => is_transient_io(source),
            Self::Task { .. } => true,
            Self::Backend { transient, .. } => *transient,
            #[cfg(feature = "local")]
            Self::Registry(error) => {
                matches!(error, kiln_storage::RegistryError::Database(_))
            }
            #[cfg(feature = "local")]
            Self::Blob(error) => match error {
                kiln_storage::BlobError::Io { source, .. }
                | kiln_storage::BlobError::Source { source, .. } => is_transient_io(source),
                kiln_storage::BlobError::Store { .. } | kiln_storage::BlobError::Task { .. } => {
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

fn is_transient_io(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::Interrupted
            | ErrorKind::TimedOut
            | ErrorKind::WouldBlock
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionRefused
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof
    )
}

#[cfg(feature = "local")]
impl From<kiln_storage::RegistryError> for TrackingError {
    /// Registry errors the client acts on (a missing model, a version conflict, a missing
    /// project) become this crate's own variants; the rest are wrapped.
    fn from(error: kiln_storage::RegistryError) -> Self {
        use kiln_storage::RegistryError;
        match error {
            RegistryError::ModelNotFound { id } => Self::ModelNotFound { id },
            RegistryError::Conflict {
                id,
                expected,
                found,
            } => Self::Conflict {
                id,
                expected,
                found,
            },
            RegistryError::ProjectNotFound(name) => Self::ProjectNotFound(name),
            other => Self::Registry(other),
        }
    }
}

/// One background upload that failed, as `wait_for_uploads` reports it.
#[derive(Debug, Clone)]
pub struct UploadFailure {
    /// The upload's number (see [`crate::WeightsUpload::id`]).
    pub upload: u64,
    /// The model the weights were for.
    pub model: ModelId,
    /// What was being uploaded: the local file, or the files of a package.
    pub source: String,
    /// The destination store URL (`None`: the backend's default store).
    pub destination: Option<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The last attempt's error.
    pub error: Arc<TrackingError>,
}

impl fmt::Display for UploadFailure {
    /// One line with the error's whole chain (a cause whose text is already shown is skipped),
    /// since a list of failures has no single `source`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut message = self.error.to_string();
        let mut source = std::error::Error::source(self.error.as_ref());
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        write!(
            f,
            "upload #{} of {} for model {} to {} failed after {} attempt(s): {message}",
            self.upload,
            self.source,
            self.model,
            self.destination.as_deref().unwrap_or("the default store"),
            self.attempts,
        )
    }
}
