//! The `file://` fast path of [`BlobStore::put_file`]: the kernel copies the file into a staging
//! file (`std::fs::copy`, i.e. `copy_file_range`: no byte passes through kiln) while another
//! thread hashes the source, then the staged copy is fsynced and renamed to its `sha256/` path.
//!
//! Hashing the source rather than the copy lets the two run side by side; a file that changes
//! meanwhile is caught by comparing its length and modification time before and after (as git
//! and rsync do), and every read of a blob verifies its digest anyway.

use std::io::Read;
use std::path::Path;

use kiln_entities::{BlobRef, Sha256Digest};
use sha2::{Digest, Sha256};

use super::error::BlobError;
use super::{BlobStore, ProgressFn, sync_dir};

impl BlobStore {
    /// Stores `path` in the local store rooted at `root` (see the module docs).
    pub(super) async fn put_file_local(
        &self,
        root: &Path,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<BlobRef, BlobError> {
        let staging = root.join(self.staging_key().as_ref());
        let source = path.to_path_buf();
        let fsync = self.inner.options.fsync;
        let chunk = self.inner.options.part_size;
        let (digest, size) = {
            let staging = staging.clone();
            tokio::task::spawn_blocking(move || {
                copy_and_hash(&source, &staging, fsync, chunk, progress.as_ref())
            })
            .await
            .map_err(|e| BlobError::task("upload", e))?
        }
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&staging);
        })?;
        let target = root.join(self.key(&digest).as_ref());
        tokio::task::spawn_blocking(move || publish(&staging, &target, fsync))
            .await
            .map_err(|e| BlobError::task("upload", e))??;
        Ok(BlobRef {
            uri: self.uri(&digest),
            digest,
            size,
        })
    }
}

/// Copies `source` to `staging` on one thread while hashing `source` on this one, `chunk`
/// bytes at a time (the store's part size: progress is reported per chunk).
fn copy_and_hash(
    source: &Path,
    staging: &Path,
    fsync: bool,
    chunk: usize,
    progress: Option<&ProgressFn>,
) -> Result<(Sha256Digest, u64), BlobError> {
    let stamp = |path: &Path| -> Result<(u64, Option<std::time::SystemTime>), BlobError> {
        let meta =
            std::fs::metadata(path).map_err(|e| BlobError::io("read metadata of", path, e))?;
        Ok((meta.len(), meta.modified().ok()))
    };
    let before = stamp(source)?;
    if let Some(dir) = staging.parent() {
        std::fs::create_dir_all(dir).map_err(|e| BlobError::io("create directory", dir, e))?;
    }
    let copier = {
        let (source, staging) = (source.to_path_buf(), staging.to_path_buf());
        std::thread::spawn(move || -> Result<u64, BlobError> {
            let copied = std::fs::copy(&source, &staging)
                .map_err(|e| BlobError::io("copy into the store", &staging, e))?;
            if fsync {
                std::fs::File::open(&staging)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| BlobError::io("fsync", &staging, e))?;
            }
            Ok(copied)
        })
    };
    let hashed = hash_file(source, chunk, progress);
    let copied = copier.join().map_err(|_| BlobError::Task {
        operation: "upload",
        reason: "the copying thread panicked".to_owned(),
    })?;
    let (digest, size) = hashed?;
    let copied = copied?;
    let after = stamp(source)?;
    if before != after || copied != size || size != before.0 {
        return Err(BlobError::Source {
            bytes: size,
            source: std::io::Error::other(format!(
                "{} changed while it was being stored",
                source.display()
            )),
        });
    }
    Ok((digest, size))
}

/// The sha256 and size of the file at `path`, read `chunk` bytes at a time.
pub(super) fn hash_file(
    path: &Path,
    chunk: usize,
    progress: Option<&ProgressFn>,
) -> Result<(Sha256Digest, u64), BlobError> {
    let mut file = std::fs::File::open(path).map_err(|e| BlobError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; chunk.max(1)];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| BlobError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
        if let Some(progress) = progress {
            progress(size);
        }
    }
    Ok((Sha256Digest::from_bytes(hasher.finalize().into()), size))
}

/// Renames the staged copy to its `sha256/` path (replacing an identical blob, which refreshes
/// its age for `gc`), then makes the new directory entries durable.
fn publish(staging: &Path, target: &Path, fsync: bool) -> Result<(), BlobError> {
    let dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(|e| BlobError::io("create directory", &dir, e))?;
    std::fs::rename(staging, target).map_err(|e| BlobError::io("rename into", target, e))?;
    if fsync {
        sync_dir(&dir);
        if let Some(parent) = dir.parent() {
            sync_dir(parent);
        }
    }
    Ok(())
}
