//! [`BlobError`]: why a blob store could not be opened, or a blob stored, read or verified.

use std::path::PathBuf;

use kiln_entities::Sha256Digest;

/// The URL forms [`super::BlobStore::open`] accepts, for error messages.
pub const SUPPORTED_SCHEMES: &str = "file:///absolute/path (or a plain filesystem path), \
     memory://, s3://bucket/prefix, gs://bucket/prefix, azure://container/prefix (or az://)";

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// The URL's scheme names no backend kiln supports.
    #[error(
        "unsupported blob store URL {url:?}: scheme {scheme:?} is not supported; use one of {supported}"
    )]
    UnsupportedScheme {
        /// The URL given.
        url: String,
        /// Its scheme.
        scheme: String,
        /// The forms that are supported.
        supported: &'static str,
    },
    /// A cloud store was asked for but no credentials are configured.
    #[error("no credentials for {scheme} blob store {url:?}: set {variables}")]
    MissingCredentials {
        /// The URL given.
        url: String,
        /// The backend (`s3`, `gs`, `azure`).
        scheme: &'static str,
        /// The environment variables (or `BlobStoreOptions::config` keys) that would do.
        variables: &'static str,
    },
    /// The store URL cannot be used.
    #[error("invalid blob store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob URI is not `<store url>/sha256/<2 hex>/<62 hex>`.
    #[error("invalid blob URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option has a value that cannot work.
    #[error("invalid blob store option {field}: {reason}")]
    InvalidOptions {
        /// The option (`part_size`, `config.<key>`, ...).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`super::BlobStore::fetch`] needs a download cache, and the store has none.
    #[error(
        "cannot fetch blob sha256:{digest} from {url}: no download cache configured \
         (set BlobStoreOptions::cache_dir, or use download(digest, dest))"
    )]
    NoCacheDir {
        /// The blob asked for.
        digest: Sha256Digest,
        /// The store.
        url: String,
    },
    /// The store holds no blob with this digest.
    #[error("blob sha256:{digest} not found at {uri}")]
    NotFound {
        /// The blob asked for.
        digest: Sha256Digest,
        /// Where it was looked for.
        uri: String,
    },
    /// Bytes read do not hash to the digest they were stored under.
    #[error("digest mismatch at {location}: expected sha256:{expected}, got sha256:{actual}")]
    DigestMismatch {
        /// The digest asked for.
        expected: Sha256Digest,
        /// The digest of the bytes read.
        actual: Sha256Digest,
        /// Where the bytes were read (a blob URI or a local path).
        location: String,
    },
    /// Local file IO failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done (`read`, `write`, `create directory`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stream handed to [`super::BlobStore::put_stream`] failed.
    #[error("upload source failed after {bytes} bytes")]
    Source {
        /// Bytes read before the failure.
        bytes: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The object store failed.
    #[error("blob store {url}")]
    Store {
        /// The store.
        url: String,
        /// Why (object_store's error, naming the object).
        #[source]
        source: object_store::Error,
    },
    /// An object under `sha256/` is not named by a digest.
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey {
        /// The object key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A background hashing or IO task died.
    #[error("blob {operation} task failed: {reason}")]
    Task {
        /// The operation (`upload`, `download`, `hash`, ...).
        operation: &'static str,
        /// Why.
        reason: String,
    },
}

impl BlobError {
    /// An [`BlobError::Io`] error.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A [`BlobError::Task`] error from a failed join.
    pub(crate) fn task(operation: &'static str, error: tokio::task::JoinError) -> Self {
        Self::Task {
            operation,
            reason: error.to_string(),
        }
    }

    /// Whether this is [`BlobError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether this is [`BlobError::DigestMismatch`].
    pub fn is_digest_mismatch(&self) -> bool {
        matches!(self, Self::DigestMismatch { .. })
    }
}
