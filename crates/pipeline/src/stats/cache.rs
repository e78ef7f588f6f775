//! [`StatsCache`]: collected statistics on disk, keyed by what they depend on, so a calibration run
//! can be reused. The key ([`StatsKey`]) is a SHA-256 over the model's digest, a fingerprint of the
//! calibration data and the layout; files are JSON written atomically (temporary file in the cache
//! directory, then rename). A missing, unreadable or mismatched file is a miss, never an error: a
//! cache must not fail the run it is meant to speed up.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Statistics, StatsLayout};
use crate::data::DataLoader;
use crate::error::PipelineError;
use crate::tensor::Tensor;

/// Version of the cache file format (and of the key derivation).
const FORMAT: u32 = 1;

/// What a set of statistics depends on, as a hex SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatsKey(String);

impl StatsKey {
    /// The key of statistics collected with `layout` on the model of digest `model_digest` (see
    /// [`model_digest`](crate::model::model_digest)) over the data of `data_fingerprint` (see
    /// [`data_fingerprint`], or any string that changes whenever the data or its subset does).
    pub fn new(model_digest: &str, data_fingerprint: &str, layout: &StatsLayout) -> StatsKey {
        // A layout is a BTreeMap of plain enums: serializing it cannot fail, and is canonical.
        let layout = serde_json::to_vec(layout).unwrap_or_default();
        let format = FORMAT.to_le_bytes();
        StatsKey(fingerprint([
            b"kiln-stats".as_slice(),
            &format,
            model_digest.as_bytes(),
            data_fingerprint.as_bytes(),
            &layout,
        ]))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StatsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The hex SHA-256 of `parts`, each length-prefixed (so `["ab", "c"]` and `["a", "bc"]` differ).
pub fn fingerprint<I, B>(parts: I) -> String
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut hasher = Sha256::new();
    for part in parts {
        let part = part.as_ref();
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// A fingerprint of the samples at `indices` of `loader`: their indices and input tensors (names,
/// types, shapes, values) after preprocessing, so a change of files or of preprocessing changes
/// it. Loads every sample once; callers with a cheaper identity for their data (a dataset
/// version) can use [`fingerprint`] over it instead.
pub fn data_fingerprint(
    loader: &dyn DataLoader,
    indices: &[usize],
) -> Result<String, PipelineError> {
    let mut hasher = Sha256::new();
    hasher.update(b"kiln-data");
    hasher.update((indices.len() as u64).to_le_bytes());
    let mut buf = Vec::new();
    for &index in indices {
        let sample = loader.get(index)?;
        hasher.update((index as u64).to_le_bytes());
        hasher.update((sample.inputs.len() as u64).to_le_bytes());
        for (name, tensor) in sample.inputs.iter() {
            hasher.update((name.len() as u64).to_le_bytes());
            hasher.update(name.as_bytes());
            hasher.update(tensor.elem_type().as_bytes());
            for &d in tensor.shape() {
                hasher.update((d as u64).to_le_bytes());
            }
            buf.clear();
            tensor_bytes(tensor, &mut buf);
            hasher.update((buf.len() as u64).to_le_bytes());
            hasher.update(&buf);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The little-endian bytes of a tensor's values in logical order.
fn tensor_bytes(tensor: &Tensor, out: &mut Vec<u8>) {
    match tensor {
        Tensor::F32(a) => a.iter().for_each(|v| out.extend(v.to_le_bytes())),
        Tensor::I64(a) => a.iter().for_each(|v| out.extend(v.to_le_bytes())),
        Tensor::I32(a) => a.iter().for_each(|v| out.extend(v.to_le_bytes())),
        Tensor::U8(a) => out.extend(a.iter()),
        Tensor::I8(a) => a.iter().for_each(|v| out.extend(v.to_le_bytes())),
        Tensor::Bool(a) => out.extend(a.iter().map(|&b| u8::from(b))),
    }
}

/// The file format: the key is repeated inside, so a renamed file is not mistaken for another.
#[derive(Deserialize)]
struct CacheFile {
    format: u32,
    key: String,
    statistics: Statistics,
}

/// [`CacheFile`] borrowed, for writing.
#[derive(Serialize)]
struct CacheFileRef<'a> {
    format: u32,
    key: &'a str,
    statistics: &'a Statistics,
}

/// Statistics on disk, one JSON file per key in a directory.
#[derive(Debug, Clone)]
pub struct StatsCache {
    dir: PathBuf,
}

impl StatsCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> StatsCache {
        StatsCache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of `key`.
    pub fn path(&self, key: &StatsKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.as_str()))
    }

    /// The statistics stored under `key`; `None` when there are none or the file is unreadable,
    /// of another format or of another key (logged).
    pub fn load(&self, key: &StatsKey) -> Option<Statistics> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "statistics cache: cannot read; ignoring it");
                return None;
            }
        };
        match serde_json::from_slice::<CacheFile>(&bytes) {
            Ok(file) if file.format == FORMAT && file.key == key.as_str() => Some(file.statistics),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "statistics cache: another format or key; ignoring it");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "statistics cache: cannot parse; ignoring it");
                None
            }
        }
    }

    /// Stores `statistics` under `key`, atomically: readers see the old file or the new one,
    /// never a part. Returns the file written.
    pub fn store(&self, key: &StatsKey, statistics: &Statistics) -> Result<PathBuf, PipelineError> {
        std::fs::create_dir_all(&self.dir).map_err(PipelineError::io(
            "creating statistics cache directory",
            &self.dir,
        ))?;
        let file = CacheFileRef {
            format: FORMAT,
            key: key.as_str(),
            statistics,
        };
        let bytes = serde_json::to_vec(&file).map_err(|source| PipelineError::Serialize {
            what: "statistics",
            source,
        })?;
        let path = self.path(key);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(PipelineError::io("creating a temporary file in", &self.dir))?;
        std::io::Write::write_all(&mut tmp, &bytes)
            .map_err(PipelineError::io("writing statistics to", tmp.path()))?;
        tmp.as_file()
            .sync_all()
            .map_err(PipelineError::io("flushing statistics to", &path))?;
        tmp.persist(&path)
            .map_err(|e| PipelineError::io("replacing", &path)(e.error))?;
        Ok(path)
    }
}
