//! Streamed uploads: chunks are hashed on one thread while earlier parts upload (bounded
//! in-flight parts), into a staging object under `uploads/` that is moved to its `sha256/` key
//! once the digest is known, so a partial blob is never visible under `sha256/`.

use bytes::Bytes;
use kiln_entities::{BlobRef, Sha256Digest};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::sync::mpsc;

use super::chunks::{Chunk, hash_bytes, spawn_hasher};
use super::error::BlobError;
use super::{BlobStore, ProgressFn};

/// Where a multipart upload goes.
enum Target {
    /// A staging object, moved into place once the digest is known.
    Staging(Path),
    /// The final key: the digest was computed beforehand and is checked before completing.
    Final(Sha256Digest),
}

impl BlobStore {
    /// Uploads `chunks` (each exactly `part_size` bytes but the last). With `expected`, the
    /// digest is known up front: a multipart upload goes straight to its final key (atomic on
    /// completion) and is completed only if the bytes hash to it.
    pub(crate) async fn upload_chunks(
        &self,
        mut chunks: mpsc::Receiver<Chunk>,
        progress: Option<ProgressFn>,
        expected: Option<Sha256Digest>,
    ) -> Result<BlobRef, BlobError> {
        let part_size = self.inner.options.part_size;
        let first = chunks.recv().await.transpose()?.unwrap_or_default();
        if first.len() < part_size {
            return self.upload_small(first, progress, expected).await;
        }
        let target = match expected {
            Some(digest) => Target::Final(digest),
            None => Target::Staging(self.staging_key()),
        };
        let location = match &target {
            Target::Staging(path) => path.clone(),
            Target::Final(digest) => self.key(digest),
        };
        let upload = self
            .inner
            .store
            .put_multipart(&location)
            .await
            .map_err(|e| self.store_error(e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let streamed = self
            .stream_parts(first, chunks, &mut writer, progress.as_ref())
            .await;
        let (digest, size) = match streamed {
            Ok(done) => done,
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%location, error = %abort, "could not abort a failed upload");
                }
                return Err(e);
            }
        };
        if let Target::Final(expected) = &target
            && *expected != digest
        {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(%location, error = %abort, "could not abort a changed upload");
            }
            return Err(BlobError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
                location: "the upload source (it changed while being uploaded)".to_owned(),
            });
        }
        writer.finish().await.map_err(|e| self.store_error(e))?;
        if let Target::Staging(staging) = &target {
            self.publish(staging, &digest).await?;
        }
        if let Some(progress) = &progress {
            progress(size);
        }
        Ok(BlobRef {
            uri: self.uri(&digest),
            digest,
            size,
        })
    }

    /// Feeds `first` and the rest of `chunks` to the hasher and to `writer` (at most
    /// `max_concurrent_parts` parts in flight); returns the digest and size.
    async fn stream_parts(
        &self,
        first: Bytes,
        mut chunks: mpsc::Receiver<Chunk>,
        writer: &mut WriteMultipart,
        progress: Option<&ProgressFn>,
    ) -> Result<(Sha256Digest, u64), BlobError> {
        let max_parts = self.inner.options.max_concurrent_parts;
        let (hash_tx, hasher) = spawn_hasher();
        let mut size: u64 = 0;
        let mut next = Some(first);
        while let Some(chunk) = next {
            size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            hash_tx
                .send(chunk.clone())
                .await
                .map_err(|_| BlobError::Task {
                    operation: "hash",
                    reason: "the hashing thread stopped".to_owned(),
                })?;
            writer
                .wait_for_capacity(max_parts)
                .await
                .map_err(|e| self.store_error(e))?;
            writer.put(chunk);
            if let Some(progress) = progress {
                progress(size);
            }
            next = chunks.recv().await.transpose()?;
        }
        drop(hash_tx);
        let digest = hasher.await.map_err(|e| BlobError::task("hash", e))?;
        Ok((Sha256Digest::from_bytes(digest), size))
    }

    /// One `put` to a staging key, then moved to the final key: on `file://` a `put` goes
    /// through a temp file next to its key, which a killed process would leave under `sha256/`;
    /// staged, such junk can only be under `uploads/`, where `cleanup_uploads` finds it.
    async fn upload_small(
        &self,
        bytes: Bytes,
        progress: Option<ProgressFn>,
        expected: Option<Sha256Digest>,
    ) -> Result<BlobRef, BlobError> {
        let digest = Sha256Digest::from_bytes(hash_bytes(bytes.clone()).await?);
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(BlobError::DigestMismatch {
                expected,
                actual: digest,
                location: "the upload source (it changed while being uploaded)".to_owned(),
            });
        }
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let staging = self.staging_key();
        self.inner
            .store
            .put(&staging, PutPayload::from(bytes))
            .await
            .map_err(|e| self.store_error(e))?;
        self.publish(&staging, &digest).await?;
        if let Some(progress) = &progress {
            progress(size);
        }
        Ok(BlobRef {
            uri: self.uri(&digest),
            digest,
            size,
        })
    }

    /// Moves a completed staging object to the key of `digest`.
    ///
    /// When the key exists already (the same content was stored before) it is overwritten with
    /// the same bytes: atomic on file systems (a rename), harmless on object stores (a copy). The
    /// overwrite refreshes the blob's modification time, so `gc`, which spares blobs younger
    /// than its grace period, cannot delete a blob that a registration in progress has just
    /// deduplicated onto.
    async fn publish(&self, staging: &Path, digest: &Sha256Digest) -> Result<(), BlobError> {
        match self.inner.store.rename(staging, &self.key(digest)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = self.delete_staging(staging).await;
                Err(self.store_error(e))
            }
        }
    }

    /// A fresh staging key under `uploads/`.
    pub(super) fn staging_key(&self) -> Path {
        self.inner
            .prefix
            .clone()
            .join("uploads")
            .join(uuid::Uuid::now_v7().to_string())
    }

    async fn delete_staging(&self, staging: &Path) -> Result<(), BlobError> {
        match self.inner.store.delete(staging).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error(e)),
        }
    }
}
