//! Bounded chunk pipelines: readers that produce [`Bytes`] chunks on their own task (files on a
//! blocking thread, object streams on an async task), and a hashing consumer on another, so
//! reading, hashing and writing overlap while memory stays bounded by the channel capacities.

use std::io::{Read, Write};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use object_store::{GetResult, GetResultPayload};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::error::BlobError;

/// A chunk, or why the source failed.
pub(crate) type Chunk = Result<Bytes, BlobError>;

/// How many chunks a reader may run ahead of its consumer.
const READ_AHEAD: usize = 1;

/// Reads `file` (at most `limit` bytes when given) in chunks of exactly `chunk_size` bytes (the
/// last one shorter) on a blocking thread. Dropping the receiver stops the reader.
pub(crate) fn read_file(
    file: std::fs::File,
    path: PathBuf,
    limit: Option<u64>,
    chunk_size: usize,
) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        let mut remaining = limit.unwrap_or(u64::MAX);
        loop {
            let want = remaining.min(u64::try_from(chunk_size).unwrap_or(u64::MAX));
            let capacity = usize::try_from(want).unwrap_or(chunk_size);
            let mut buffer = Vec::with_capacity(capacity);
            let read = (&mut file).take(want).read_to_end(&mut buffer);
            let chunk = match read {
                Ok(n) => {
                    remaining -= u64::try_from(n).unwrap_or(want);
                    Ok((Bytes::from(buffer), n < capacity || remaining == 0))
                }
                Err(e) => Err(BlobError::io("read", &path, e)),
            };
            match chunk {
                Ok((bytes, last)) => {
                    if !bytes.is_empty() && tx.blocking_send(Ok(bytes)).is_err() {
                        return;
                    }
                    if last {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}

/// Regroups `stream` into chunks of exactly `chunk_size` bytes (the last one shorter) on an async
/// task. Dropping the receiver stops the task.
pub(crate) fn rechunk<S>(stream: S, chunk_size: usize) -> mpsc::Receiver<Chunk>
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut buffer = BytesMut::new();
        let mut bytes: u64 = 0;
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                // The upload was dropped: stop pulling from the source.
                () = tx.closed() => return,
            };
            let Some(item) = item else { break };
            match item {
                Ok(data) => {
                    bytes += u64::try_from(data.len()).unwrap_or(u64::MAX);
                    buffer.extend_from_slice(&data);
                    while buffer.len() >= chunk_size {
                        let chunk = buffer.split_to(chunk_size).freeze();
                        if tx.send(Ok(chunk)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(source) => {
                    let _ = tx.send(Err(BlobError::Source { bytes, source })).await;
                    return;
                }
            }
        }
        if !buffer.is_empty() {
            let _ = tx.send(Ok(buffer.freeze())).await;
        }
    });
    rx
}

/// The chunks of a `get` result: a local file is read in `chunk_size` chunks on a blocking
/// thread, a remote body is forwarded as it arrives.
pub(crate) fn read_object(
    result: GetResult,
    url: String,
    chunk_size: usize,
) -> mpsc::Receiver<Chunk> {
    let length = result.range.end.saturating_sub(result.range.start);
    match result.payload {
        GetResultPayload::File(mut file, path) => {
            if result.range.start != 0 {
                use std::io::{Seek, SeekFrom};
                if let Err(e) = file.seek(SeekFrom::Start(result.range.start)) {
                    let (tx, rx) = mpsc::channel(1);
                    let _ = tx.try_send(Err(BlobError::io("seek", path, e)));
                    return rx;
                }
            }
            read_file(file, path, Some(length), chunk_size)
        }
        GetResultPayload::Stream(mut stream) => {
            let (tx, rx) = mpsc::channel(READ_AHEAD.max(4));
            tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    let item = item.map_err(|source| BlobError::Store {
                        url: url.clone(),
                        source,
                    });
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
            });
            rx
        }
    }
}

/// Hashes `chunks` (and writes them to `sink` when given) on the calling blocking thread,
/// returning the digest and the byte count.
pub(crate) fn consume_blocking(
    mut chunks: mpsc::Receiver<Chunk>,
    mut sink: Option<(&mut dyn Write, &std::path::Path)>,
) -> Result<([u8; 32], u64), BlobError> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = chunks.blocking_recv() {
        let chunk = chunk?;
        hasher.update(&chunk);
        if let Some((writer, path)) = sink.as_mut() {
            writer
                .write_all(&chunk)
                .map_err(|e| BlobError::io("write", *path, e))?;
        }
        size += u64::try_from(chunk.len()).unwrap_or(u64::MAX);
    }
    Ok((hasher.finalize().into(), size))
}

/// A hasher on a blocking thread: send it chunks, drop the sender, await the digest.
pub(crate) fn spawn_hasher() -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<[u8; 32]>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let handle = tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher.finalize().into()
    });
    (tx, handle)
}

/// The SHA-256 of `bytes`, computed on a blocking thread.
pub(crate) async fn hash_bytes(bytes: Bytes) -> Result<[u8; 32], BlobError> {
    tokio::task::spawn_blocking(move || Sha256::digest(&bytes).into())
        .await
        .map_err(|e| BlobError::task("hash", e))
}
