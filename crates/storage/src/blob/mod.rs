//! Content-addressed blobs on object_store: streamed, digest-verified, cached locally by digest.
//!
//! # Layout
//!
//! A store is a URL ([`BlobStore::open`]): `file:///abs/dir` (or a plain path, relative ones
//! resolved against the current directory; the directory is created), `memory://`,
//! `s3://bucket/prefix`, `gs://bucket/prefix`, `azure://container/prefix` (or `az://`). A blob
//! with digest `abcd…` lives at `<prefix>/sha256/ab/cd…` and its URI ([`BlobStore::uri`], the
//! `uri` of a [`BlobRef`]) is the store URL followed by that key:
//! `file:///var/kiln/blobs/sha256/ab/cd…`. [`BlobStore::split_uri`] takes a URI apart again.
//!
//! # Writes
//!
//! On `file://`, [`BlobStore::put_file`] lets the kernel copy the file into a staging file under
//! `uploads/` while another thread hashes it (see `local.rs`), then renames the copy into place.
//! Elsewhere, and for [`BlobStore::put_stream`], the upload is streamed: [`BlobStore::put_file`]
//! reads the file in [`BlobStoreOptions::part_size`] chunks on a blocking
//! thread, hashes on another while earlier parts upload (at most
//! [`BlobStoreOptions::max_concurrent_parts`] in flight), so memory is bounded by a few parts
//! whatever the file size. Inputs shorter than one part are hashed first and `put` in one piece,
//! larger ones go to a multipart upload; both land at a staging key `<prefix>/uploads/<uuid v7>`
//! which is renamed to its `sha256/` key once the digest is known (atomic on file systems, a copy
//! on object stores). When the key exists already the same bytes overwrite it, which refreshes
//! its modification time so that `gc` (sparing young blobs) cannot collect a blob a
//! registration has just deduplicated onto. A crash leaves
//! at most junk under `uploads/` (an incomplete multipart upload, or on `file://` a hidden
//! `uploads/<uuid>#N` temp file), which [`BlobStore::cleanup_uploads`] removes. On S3 a server
//! side copy is limited to 5 GiB, so larger files are hashed in a first pass and uploaded
//! straight to their final key (completed only if the second pass hashes the same).
//!
//! Incomplete S3/GCS/Azure multipart uploads are invisible and cannot be listed through
//! object_store: configure the bucket's lifecycle rule (e.g. S3 `AbortIncompleteMultipartUpload`).
//!
//! # Reads
//!
//! Every read is verified: [`BlobStore::get_bytes`], [`BlobStore::download`] (a temp file in the
//! destination's directory, hashed while written, fsynced, renamed into place only when the
//! digest matches), [`BlobStore::verify`] and [`BlobStore::fetch`] (a local cache keyed by digest
//! under [`BlobStoreOptions::cache_dir`]; a cache hit is re-hashed, and refetched when it no
//! longer matches).
//!
//! # Credentials
//!
//! Cloud stores read their settings from the environment (object_store's `from_env`:
//! `AWS_*`, `GOOGLE_*`, `AZURE_*`, including `AWS_ENDPOINT_URL`/`AWS_ENDPOINT` and
//! `AWS_ALLOW_HTTP` for S3-compatible services) and from [`BlobStoreOptions::config`]. Before any
//! network call, [`BlobStore::open`] checks that some credentials are configured and otherwise
//! fails with [`BlobError::MissingCredentials`] naming the variables that would do (see
//! [`location::S3_CREDENTIALS`], [`location::GCS_CREDENTIALS`], [`location::AZURE_CREDENTIALS`]);
//! set [`BlobStoreOptions::allow_implicit_credentials`] to rely on instance metadata instead.

mod chunks;
mod error;
mod local;
pub mod location;
mod upload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use kiln_entities::{BlobRef, Sha256Digest};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

pub use error::{BlobError, SUPPORTED_SCHEMES};
use location::Backend;

/// The default part size: 8 MiB.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// The default number of parts uploading at once.
pub const DEFAULT_MAX_CONCURRENT_PARTS: usize = 4;
/// The largest object S3 copies in one request; larger uploads to S3 hash first.
const S3_COPY_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// How a blob store behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobStoreOptions {
    /// Where [`BlobStore::fetch`] caches downloaded blobs by digest (default: none, and `fetch`
    /// fails with [`BlobError::NoCacheDir`]).
    pub cache_dir: Option<PathBuf>,
    /// Bytes per read chunk and multipart part (default [`DEFAULT_PART_SIZE`]); inputs shorter
    /// than this are uploaded with one `put`. S3, GCS and Azure need at least 5 MiB.
    pub part_size: usize,
    /// Parts uploading at once (default [`DEFAULT_MAX_CONCURRENT_PARTS`]).
    pub max_concurrent_parts: usize,
    /// `file://` only: fsync written files and their directories before a write returns
    /// (default true: a model row must only point at durable blobs).
    pub fsync: bool,
    /// object_store configuration keys (`aws_endpoint`, `aws_allow_http`, `aws_region`,
    /// `google_service_account`, `azure_storage_account_name`, ...), applied after the
    /// environment.
    pub config: BTreeMap<String, String>,
    /// Read cloud settings from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`; default true).
    pub from_env: bool,
    /// Skip the credential check and let object_store find credentials itself (instance
    /// metadata, managed identity; default false).
    pub allow_implicit_credentials: bool,
}

impl Default for BlobStoreOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            part_size: DEFAULT_PART_SIZE,
            max_concurrent_parts: DEFAULT_MAX_CONCURRENT_PARTS,
            fsync: true,
            config: BTreeMap::new(),
            from_env: true,
            allow_implicit_credentials: false,
        }
    }
}

impl BlobStoreOptions {
    /// Checks that the options can work.
    pub fn validate(&self) -> Result<(), BlobError> {
        let invalid = |field: &str, reason: &str| BlobError::InvalidOptions {
            field: field.to_owned(),
            reason: reason.to_owned(),
        };
        if self.part_size == 0 {
            return Err(invalid("part_size", "must be at least 1 byte"));
        }
        if self.max_concurrent_parts == 0 {
            return Err(invalid("max_concurrent_parts", "must be at least 1"));
        }
        Ok(())
    }
}

/// Progress of a long transfer: called with the bytes done so far.
pub type ProgressFn = Arc<dyn Fn(u64) + Send + Sync>;

/// One stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its digest.
    pub digest: Sha256Digest,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
}

/// A content-addressed blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn ObjectStore>,
    url: String,
    prefix: ObjectPath,
    local_root: Option<PathBuf>,
    /// Files larger than this are hashed before uploading, straight to their final key (the
    /// backend cannot copy them server-side): 5 GiB on S3, never elsewhere.
    hash_first_above: Option<u64>,
    options: BlobStoreOptions,
}

impl BlobStore {
    /// Opens the store `url` names (see the [module docs](self) for the forms and credentials).
    pub fn open(url: &str, options: BlobStoreOptions) -> Result<Self, BlobError> {
        options.validate()?;
        Ok(Self::from_opened(location::open(url, &options)?, options))
    }

    /// A fresh, empty store in process memory (`memory://`). Invalid sizes in `options` are
    /// raised to 1.
    pub fn in_memory(mut options: BlobStoreOptions) -> Self {
        options.part_size = options.part_size.max(1);
        options.max_concurrent_parts = options.max_concurrent_parts.max(1);
        Self::from_opened(location::in_memory(), options)
    }

    /// Opens the store that holds `blob`, from its URI. A `memory://` URI opens a new, empty
    /// store.
    pub fn open_for(blob: &BlobRef, options: BlobStoreOptions) -> Result<Self, BlobError> {
        let (url, digest) = Self::split_uri(&blob.uri)?;
        if digest != blob.digest {
            return Err(BlobError::InvalidUri {
                uri: blob.uri.clone(),
                reason: format!(
                    "names sha256:{digest}, but the blob's digest is sha256:{}",
                    blob.digest
                ),
            });
        }
        Self::open(&url, options)
    }

    fn from_opened(opened: location::Opened, options: BlobStoreOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: opened.store,
                url: opened.url,
                prefix: opened.prefix,
                local_root: opened.local_root,
                hash_first_above: (opened.backend == Backend::S3).then_some(S3_COPY_LIMIT),
                options,
            }),
        }
    }

    /// The store's canonical URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &BlobStoreOptions {
        &self.inner.options
    }

    /// The object store underneath (for tools and tests that need raw access).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    /// The object key of `digest`: `<prefix>/sha256/<2 hex>/<62 hex>`.
    pub fn key(&self, digest: &Sha256Digest) -> ObjectPath {
        let hex = digest.as_str();
        let (head, tail) = hex.split_at(2);
        self.inner
            .prefix
            .clone()
            .join("sha256")
            .join(head)
            .join(tail)
    }

    /// The URI of `digest` in this store: the store URL, then `/sha256/<2 hex>/<62 hex>`.
    pub fn uri(&self, digest: &Sha256Digest) -> String {
        let hex = digest.as_str();
        let (head, tail) = hex.split_at(2);
        format!("{}/sha256/{head}/{tail}", self.inner.url)
    }

    /// Splits a blob URI into its store URL and digest (the inverse of [`BlobStore::uri`]).
    pub fn split_uri(uri: &str) -> Result<(String, Sha256Digest), BlobError> {
        let invalid = |reason: &str| BlobError::InvalidUri {
            uri: uri.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = uri.rsplitn(4, '/');
        let (Some(tail), Some(head), Some(marker), Some(url)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("expected <store url>/sha256/<2 hex>/<62 hex>"));
        };
        if marker != "sha256" {
            return Err(invalid("expected <store url>/sha256/<2 hex>/<62 hex>"));
        }
        if head.len() != 2 || tail.len() != 62 {
            return Err(invalid(&format!(
                "the digest must be split 2/62 hex digits, got {}/{}",
                head.len(),
                tail.len()
            )));
        }
        if !url.contains("://") || url.ends_with(":/") {
            return Err(invalid("no store URL before /sha256/"));
        }
        let digest =
            Sha256Digest::parse(&format!("{head}{tail}")).map_err(|e| invalid(&e.to_string()))?;
        Ok((url.to_owned(), digest))
    }

    /// Stores the file at `path`, streamed in constant memory; `progress` is called with the
    /// bytes read so far.
    pub async fn put_file(
        &self,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<BlobRef, BlobError> {
        let owned = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&owned).map_err(|e| BlobError::io("open", &owned, e))?;
            let len = file
                .metadata()
                .map_err(|e| BlobError::io("read metadata of", &owned, e))?
                .len();
            Ok::<_, BlobError>((file, len))
        })
        .await
        .map_err(|e| BlobError::task("upload", e))?;
        let (file, len) = file?;
        if let Some(root) = &self.inner.local_root {
            drop(file);
            return self.put_file_local(root, path, progress).await;
        }
        let part_size = self.inner.options.part_size;
        if self.inner.hash_first_above.is_some_and(|limit| len > limit) {
            return self.put_file_hashed_first(path, file, progress).await;
        }
        let chunks = chunks::read_file(file, path.to_path_buf(), None, part_size);
        self.upload_chunks(chunks, progress, None).await
    }

    /// For objects too large to copy server-side: hash, skip when present, upload to the key.
    async fn put_file_hashed_first(
        &self,
        path: &Path,
        file: std::fs::File,
        progress: Option<ProgressFn>,
    ) -> Result<BlobRef, BlobError> {
        let part_size = self.inner.options.part_size;
        let cloned = file
            .try_clone()
            .map_err(|e| BlobError::io("reopen", path, e))?;
        let chunks = chunks::read_file(cloned, path.to_path_buf(), None, part_size);
        let (digest, size) = hash_chunks(chunks).await?;
        let digest = Sha256Digest::from_bytes(digest);
        if self.head(&digest).await?.is_some() {
            if let Some(progress) = &progress {
                progress(size);
            }
            return Ok(BlobRef {
                uri: self.uri(&digest),
                digest,
                size,
            });
        }
        let mut file = file;
        {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(0))
                .map_err(|e| BlobError::io("seek", path, e))?;
        }
        let chunks = chunks::read_file(file, path.to_path_buf(), None, part_size);
        self.upload_chunks(chunks, progress, Some(digest)).await
    }

    /// Stores `bytes`.
    pub async fn put_bytes(&self, bytes: Bytes) -> Result<BlobRef, BlobError> {
        let part_size = self.inner.options.part_size;
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            let mut rest = bytes;
            loop {
                let chunk = rest.split_to(rest.len().min(part_size));
                let last = rest.is_empty();
                if (!chunk.is_empty() && tx.send(Ok(chunk)).await.is_err()) || last {
                    return;
                }
            }
        });
        self.upload_chunks(rx, None, None).await
    }

    /// Stores what `stream` yields, streamed in constant memory; an error from the stream aborts
    /// the upload ([`BlobError::Source`]) and leaves nothing under `sha256/`.
    pub async fn put_stream<S>(
        &self,
        stream: S,
        progress: Option<ProgressFn>,
    ) -> Result<BlobRef, BlobError>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let chunks = chunks::rechunk(stream, self.inner.options.part_size);
        self.upload_chunks(chunks, progress, None).await
    }

    /// The size and time of `digest`, or `None` when the store does not hold it.
    pub async fn head(&self, digest: &Sha256Digest) -> Result<Option<BlobInfo>, BlobError> {
        match self.inner.store.head(&self.key(digest)).await {
            Ok(meta) => Ok(Some(BlobInfo {
                digest: digest.clone(),
                size: meta.size,
                last_modified: meta.last_modified,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// The bytes of `digest`, verified (the whole blob is held in memory: prefer
    /// [`BlobStore::download`] or [`BlobStore::fetch`] for large ones).
    pub async fn get_bytes(&self, digest: &Sha256Digest) -> Result<Bytes, BlobError> {
        let result = self.get(digest).await?;
        let bytes = result
            .bytes()
            .await
            .map_err(|e| self.read_error(digest, e))?;
        let actual = Sha256Digest::from_bytes(chunks::hash_bytes(bytes.clone()).await?);
        self.check(digest, actual)?;
        Ok(bytes)
    }

    /// Reads `digest` through, hashing it, without keeping it; returns its size.
    pub async fn verify(&self, digest: &Sha256Digest) -> Result<u64, BlobError> {
        let result = self.get(digest).await?;
        let chunks =
            chunks::read_object(result, self.inner.url.clone(), self.inner.options.part_size);
        let (actual, size) = hash_chunks(chunks).await?;
        self.check(digest, Sha256Digest::from_bytes(actual))?;
        Ok(size)
    }

    /// Downloads `digest` to `dest` (creating its directory): streamed to a temp file next to
    /// `dest`, hashed, fsynced and renamed into place only when the digest matches; on a
    /// mismatch nothing is left at `dest`. Returns the size.
    pub async fn download(&self, digest: &Sha256Digest, dest: &Path) -> Result<u64, BlobError> {
        let result = self.get(digest).await?;
        let dir = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let chunks =
            chunks::read_object(result, self.inner.url.clone(), self.inner.options.part_size);
        let dest_owned = dest.to_path_buf();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| BlobError::io("create directory", &dir, e))?;
            let mut temp = tempfile::Builder::new()
                .prefix(".kiln-download-")
                .tempfile_in(&dir)
                .map_err(|e| BlobError::io("create a temp file in", &dir, e))?;
            let temp_path = temp.path().to_path_buf();
            let (digest, size) = {
                let mut writer = std::io::BufWriter::with_capacity(1 << 20, temp.as_file_mut());
                let out = chunks::consume_blocking(chunks, Some((&mut writer, &temp_path)))?;
                std::io::Write::flush(&mut writer)
                    .map_err(|e| BlobError::io("write", &temp_path, e))?;
                out
            };
            Ok::<_, BlobError>((temp, digest, size, dest_owned, dir))
        })
        .await
        .map_err(|e| BlobError::task("download", e))?;
        let (temp, actual, size, dest_owned, dir) = written?;
        self.check(digest, Sha256Digest::from_bytes(actual))?;
        tokio::task::spawn_blocking(move || {
            temp.as_file()
                .sync_all()
                .map_err(|e| BlobError::io("sync", temp.path(), e))?;
            temp.persist(&dest_owned)
                .map_err(|e| BlobError::io("rename a download to", &dest_owned, e.error))?;
            sync_dir(&dir);
            Ok::<_, BlobError>(())
        })
        .await
        .map_err(|e| BlobError::task("download", e))??;
        Ok(size)
    }

    /// Where [`BlobStore::fetch`] caches `digest`: `<cache_dir>/sha256/<2 hex>/<62 hex>`.
    pub fn cache_path(&self, digest: &Sha256Digest) -> Option<PathBuf> {
        let hex = digest.as_str();
        let (head, tail) = hex.split_at(2);
        self.inner
            .options
            .cache_dir
            .as_ref()
            .map(|dir| dir.join("sha256").join(head).join(tail))
    }

    /// The local path of `digest` in the download cache, downloading it when missing, when the
    /// cached file no longer matches its digest, or when `force` is set. Needs
    /// [`BlobStoreOptions::cache_dir`] ([`BlobError::NoCacheDir`] otherwise).
    pub async fn fetch(&self, digest: &Sha256Digest, force: bool) -> Result<PathBuf, BlobError> {
        let path = self
            .cache_path(digest)
            .ok_or_else(|| BlobError::NoCacheDir {
                digest: digest.clone(),
                url: self.inner.url.clone(),
            })?;
        if !force && let Some(actual) = hash_local(&path, self.inner.options.part_size).await? {
            if actual == *digest {
                return Ok(path);
            }
            tracing::warn!(
                path = %path.display(),
                expected = %digest,
                %actual,
                "cached blob no longer matches its digest; fetching it again"
            );
        }
        self.download(digest, &path).await?;
        Ok(path)
    }

    /// Every blob the store holds (objects under `sha256/`; staging uploads and keys that are
    /// not digests are skipped), sorted by digest.
    pub async fn list(&self) -> Result<Vec<BlobInfo>, BlobError> {
        let prefix = self.inner.prefix.clone().join("sha256");
        let metas: Vec<ObjectMeta> = self
            .inner
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error(e))?;
        let mut blobs = Vec::with_capacity(metas.len());
        for meta in metas {
            match self.digest_of_key(&meta.location) {
                Ok(digest) => blobs.push(BlobInfo {
                    digest,
                    size: meta.size,
                    last_modified: meta.last_modified,
                }),
                Err(e) => tracing::warn!(error = %e, "skipping an object that is not a blob"),
            }
        }
        blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        Ok(blobs)
    }

    /// The digest an object key under `sha256/` names.
    pub fn digest_of_key(&self, key: &ObjectPath) -> Result<Sha256Digest, BlobError> {
        let invalid = |reason: &str| BlobError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_owned(),
        };
        let prefix = self.inner.prefix.clone().join("sha256");
        let parts: Vec<String> = key
            .prefix_match(&prefix)
            .ok_or_else(|| invalid("not under sha256/"))?
            .map(|part| part.as_ref().to_owned())
            .collect();
        match parts.as_slice() {
            [head, tail] if head.len() == 2 && tail.len() == 62 => {
                Sha256Digest::parse(&format!("{head}{tail}")).map_err(|e| invalid(&e.to_string()))
            }
            _ => Err(invalid("expected sha256/<2 hex>/<62 hex>")),
        }
    }

    /// Deletes `digest` (succeeds when it is already absent).
    pub async fn delete(&self, digest: &Sha256Digest) -> Result<(), BlobError> {
        match self.inner.store.delete(&self.key(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error(e)),
        }
    }

    /// Deletes staging uploads (under `uploads/`) last written more than `older_than` ago, left
    /// by crashed or cancelled uploads; on `file://` this includes object_store's hidden temp
    /// files. Returns how many were deleted.
    pub async fn cleanup_uploads(&self, older_than: chrono::Duration) -> Result<u64, BlobError> {
        let cutoff = Utc::now() - older_than;
        let prefix = self.inner.prefix.clone().join("uploads");
        let metas: Vec<ObjectMeta> = self
            .inner
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| self.store_error(e))?;
        let mut deleted = 0;
        for meta in metas.into_iter().filter(|m| m.last_modified < cutoff) {
            match self.inner.store.delete(&meta.location).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_error(e)),
            }
        }
        if let Some(root) = &self.inner.local_root {
            let dir = root.join("uploads");
            deleted += tokio::task::spawn_blocking(move || remove_stale_temp_files(&dir, cutoff))
                .await
                .map_err(|e| BlobError::task("cleanup", e))??;
        }
        Ok(deleted)
    }

    async fn get(&self, digest: &Sha256Digest) -> Result<object_store::GetResult, BlobError> {
        self.inner
            .store
            .get(&self.key(digest))
            .await
            .map_err(|e| self.read_error(digest, e))
    }

    fn check(&self, expected: &Sha256Digest, actual: Sha256Digest) -> Result<(), BlobError> {
        if *expected == actual {
            Ok(())
        } else {
            Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual,
                location: self.uri(expected),
            })
        }
    }

    fn read_error(&self, digest: &Sha256Digest, error: object_store::Error) -> BlobError {
        match error {
            object_store::Error::NotFound { .. } => BlobError::NotFound {
                digest: digest.clone(),
                uri: self.uri(digest),
            },
            other => self.store_error(other),
        }
    }

    fn store_error(&self, source: object_store::Error) -> BlobError {
        BlobError::Store {
            url: self.inner.url.clone(),
            source,
        }
    }
}

/// Hashes `chunks` on a blocking thread.
async fn hash_chunks(
    chunks: tokio::sync::mpsc::Receiver<chunks::Chunk>,
) -> Result<([u8; 32], u64), BlobError> {
    tokio::task::spawn_blocking(move || chunks::consume_blocking(chunks, None))
        .await
        .map_err(|e| BlobError::task("hash", e))?
}

/// The digest of the local file at `path`, or `None` when there is none.
async fn hash_local(path: &Path, chunk_size: usize) -> Result<Option<Sha256Digest>, BlobError> {
    let owned = path.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || local::hash_file(&owned, chunk_size, None))
        .await
        .map_err(|e| BlobError::task("hash", e))?;
    match hashed {
        Ok((digest, _)) => Ok(Some(digest)),
        Err(BlobError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The sha256 of the local file at `path`, read in [`BlobStoreOptions::part_size`] pieces (what a
/// blob stored from it would be named by). Blocking.
pub fn sha256_file(path: &Path) -> Result<Sha256Digest, BlobError> {
    local::hash_file(path, BlobStoreOptions::default().part_size, None).map(|(digest, _)| digest)
}

/// Best-effort fsync of a directory, so a rename into it is durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = std::fs::File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Removes object_store's hidden temp files (`<name>#<n>`) under `dir` older than `cutoff`.
fn remove_stale_temp_files(dir: &Path, cutoff: DateTime<Utc>) -> Result<u64, BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(BlobError::io("list", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| BlobError::io("list", dir, e))?;
        let path = entry.path();
        let is_temp = entry.file_name().to_string_lossy().contains('#');
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .map(DateTime::<Utc>::from);
        if is_temp && modified.is_ok_and(|m| m < cutoff) {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BlobError::io("delete", &path, e)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashed_first_store(part_size: usize) -> BlobStore {
        let opened = location::in_memory();
        let options = BlobStoreOptions {
            part_size,
            ..BlobStoreOptions::default()
        };
        let mut store = BlobStore::from_opened(opened, options);
        if let Some(inner) = Arc::get_mut(&mut store.inner) {
            inner.hash_first_above = Some(0);
        }
        store
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_files_can_be_hashed_first_and_uploaded_to_their_key() {
        let store = hashed_first_store(4);
        assert_eq!(store.inner.hash_first_above, Some(0));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("weights.bin");
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        std::fs::write(&path, &bytes).expect("write");
        let blob = store.put_file(&path, None).await.expect("put hashed first");
        assert_eq!(store.get_bytes(&blob.digest).await.expect("get"), bytes);
        // Present already: nothing is uploaded again.
        assert_eq!(store.put_file(&path, None).await.expect("dedupe"), blob);
        let keys: Vec<ObjectMeta> = store
            .object_store()
            .list(None)
            .try_collect()
            .await
            .expect("list");
        assert_eq!(keys.len(), 1, "no staging objects: {keys:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_to_the_final_key_completes_only_when_the_digest_matches() {
        let store = hashed_first_store(4);
        let bytes = Bytes::from_static(b"twelve bytes and more");
        let wrong = Sha256Digest::from_bytes([7; 32]);
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes.clone())]);
        let chunks = chunks::rechunk(stream, 4);
        let error = store
            .upload_chunks(chunks, None, Some(wrong.clone()))
            .await
            .expect_err("the source does not hash to the expected digest");
        assert!(error.is_digest_mismatch(), "{error:?}");
        assert!(store.list().await.expect("list").is_empty());
        assert!(store.head(&wrong).await.expect("head").is_none());
    }
}
