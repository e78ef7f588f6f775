//! Weights on the local side: fetching them into the verified cache (`get_weights`,
//! `get_weights_package`), extracting packages, and building the zip a package is uploaded as.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

use kiln_entities::ModelId;
use sha2::{Digest as _, Sha256};

use crate::backend::{ModelSnapshot, TrackingBackend};
use crate::error::TrackingError;

/// How `get_weights` fetches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetWeightsOptions {
    /// Return the error when the weights cannot be had; otherwise log a warning and return
    /// `None` (ClearML's default).
    pub raise_on_error: bool,
    /// Download again even when the cache holds a verified copy.
    pub force_download: bool,
    /// For a package: return the directory it is extracted into instead of the zip.
    pub extract_archive: bool,
}

/// How `get_weights_package` fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetWeightsPackageOptions {
    /// Return the directory the package is extracted into ([`WeightsPackage::Directory`])
    /// instead of the list of its files ([`WeightsPackage::Files`]). Default false.
    pub return_path: bool,
    /// Return the error when the package cannot be had; otherwise log a warning and return
    /// `None`. Default false.
    pub raise_on_error: bool,
    /// Download (and extract) again even when cached. Default false.
    pub force_download: bool,
    /// Extract the zip (default true); without, the zip itself is returned
    /// ([`WeightsPackage::Archive`]).
    pub extract_archive: bool,
}

impl Default for GetWeightsPackageOptions {
    fn default() -> Self {
        Self {
            return_path: false,
            raise_on_error: false,
            force_download: false,
            extract_archive: true,
        }
    }
}

/// A fetched weights package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsPackage {
    /// The directory the package was extracted into (`return_path`).
    Directory(PathBuf),
    /// The extracted files, sorted by path.
    Files(Vec<PathBuf>),
    /// The zip itself (`extract_archive: false`).
    Archive(PathBuf),
}

/// The weights of `snapshot` as a local file: the uploaded blob from the verified cache, or a
/// registered `file://` URI. Returns the path and a key naming the content (for extraction).
pub(crate) async fn local_weights(
    backend: &dyn TrackingBackend,
    snapshot: &ModelSnapshot,
    force: bool,
) -> Result<(PathBuf, String), TrackingError> {
    if let Some(blob) = snapshot.weights() {
        let path = backend.fetch_blob(blob, force).await?;
        return Ok((path, blob.digest.to_string()));
    }
    let uri = snapshot
        .record
        .uri
        .as_deref()
        .ok_or(TrackingError::NoWeights { id: snapshot.id() })?;
    let path = registered_file(uri)?;
    let key = hex::encode(Sha256::digest(uri.as_bytes()));
    Ok((path, format!("uri-{key}")))
}

/// The local file a registered `file://` URI names.
fn registered_file(uri: &str) -> Result<PathBuf, TrackingError> {
    let not_downloadable = || TrackingError::NotDownloadable {
        uri: uri.to_owned(),
    };
    let parsed = url::Url::parse(uri).map_err(|_| not_downloadable())?;
    if parsed.scheme() != "file" {
        return Err(not_downloadable());
    }
    let path = parsed.to_file_path().map_err(|()| not_downloadable())?;
    if !path.is_file() {
        return Err(TrackingError::FileNotFound {
            what: "registered weights file",
            path,
        });
    }
    Ok(path)
}

/// `get_weights`: the local path of the weights (or of the extracted package).
pub(crate) async fn get_weights(
    backend: &dyn TrackingBackend,
    snapshot: &ModelSnapshot,
    options: GetWeightsOptions,
) -> Result<Option<PathBuf>, TrackingError> {
    let result = async {
        let (path, key) = local_weights(backend, snapshot, options.force_download).await?;
        if options.extract_archive && snapshot.record.is_package() {
            extract(&path, &backend.cache_dir(), &key, options.force_download).await
        } else {
            Ok(path)
        }
    }
    .await;
    soften(result, options.raise_on_error, snapshot.id())
}

/// `get_weights_package`: the package's files, directory or zip.
pub(crate) async fn get_weights_package(
    backend: &dyn TrackingBackend,
    snapshot: &ModelSnapshot,
    options: GetWeightsPackageOptions,
) -> Result<Option<WeightsPackage>, TrackingError> {
    if !snapshot.record.is_package() {
        return Err(TrackingError::NotAPackage { id: snapshot.id() });
    }
    let result = async {
        let (path, key) = local_weights(backend, snapshot, options.force_download).await?;
        if !options.extract_archive {
            return Ok(WeightsPackage::Archive(path));
        }
        let dir = extract(&path, &backend.cache_dir(), &key, options.force_download).await?;
        if options.return_path {
            Ok(WeightsPackage::Directory(dir))
        } else {
            let files = tokio::task::spawn_blocking(move || list_files(&dir))
                .await
                .map_err(|e| TrackingError::task("list", &e))??;
            Ok(WeightsPackage::Files(files))
        }
    }
    .await;
    soften(result, options.raise_on_error, snapshot.id())
}

fn soften<T>(
    result: Result<T, TrackingError>,
    raise_on_error: bool,
    model: ModelId,
) -> Result<Option<T>, TrackingError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if raise_on_error => Err(error),
        Err(error) => {
            tracing::warn!(%model, error = %error, "cannot get the model weights");
            Ok(None)
        }
    }
}

/// Extracts the zip at `zip` into `<cache_dir>/extracted/<key>` (once: a complete extraction is
/// reused unless `force`). The files are written into a temporary directory first and renamed
/// into place, so a half-extracted package is never returned.
async fn extract(
    zip: &Path,
    cache_dir: &Path,
    key: &str,
    force: bool,
) -> Result<PathBuf, TrackingError> {
    let zip = zip.to_owned();
    let root = cache_dir.join("extracted");
    let dest = root.join(key);
    tokio::task::spawn_blocking(move || {
        if dest.is_dir() && !force {
            return Ok(dest);
        }
        std::fs::create_dir_all(&root).map_err(TrackingError::io("create directory", &root))?;
        let staging = tempfile::Builder::new()
            .prefix(".extracting-")
            .tempdir_in(&root)
            .map_err(TrackingError::io("create a temporary directory in", &root))?;
        let file = File::open(&zip).map_err(TrackingError::io("open", &zip))?;
        let package_error = |action| {
            let zip = zip.clone();
            move |source| TrackingError::Package {
                action,
                path: zip,
                source,
            }
        };
        let mut archive =
            zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(package_error("read"))?;
        archive
            .extract(staging.path())
            .map_err(package_error("extract"))?;
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(TrackingError::io("remove", &dest))?;
        }
        let staged = staging.keep();
        match std::fs::rename(&staged, &dest) {
            Ok(()) => Ok(dest),
            // Another extraction of the same package finished first: use it.
            Err(_) if dest.is_dir() => {
                let _ = std::fs::remove_dir_all(&staged);
                Ok(dest)
            }
            Err(e) => Err(TrackingError::io("rename into", &dest)(e)),
        }
    })
    .await
    .map_err(|e| TrackingError::task("extract", &e))?
}

/// Every regular file under `dir`, sorted.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, TrackingError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(TrackingError::io("list", &current))?;
        for entry in entries {
            let entry = entry.map_err(TrackingError::io("list", &current))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(TrackingError::io("inspect", &path))?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One file of a package: where it is, and its name in the zip (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PackageEntry {
    pub source: PathBuf,
    pub name: String,
}

/// The files of a package: each of `filenames` under its file name, or every file under `dir`
/// under its path relative to `dir`. Missing files, duplicate names and empty packages are
/// errors.
pub(crate) fn package_entries(
    filenames: Option<&[PathBuf]>,
    dir: Option<&Path>,
) -> Result<Vec<PackageEntry>, TrackingError> {
    let entries = match (filenames, dir) {
        (Some(_), Some(_)) => {
            return Err(TrackingError::ConflictingArguments {
                first: "weights_filenames",
                second: "weights_path",
            });
        }
        (None, None) => {
            return Err(TrackingError::MissingArgument {
                first: "weights_filenames",
                second: "weights_path",
            });
        }
        (Some(filenames), None) => {
            let mut entries = Vec::with_capacity(filenames.len());
            for path in filenames {
                if !path.is_file() {
                    return Err(TrackingError::FileNotFound {
                        what: "package file",
                        path: path.clone(),
                    });
                }
                let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                    TrackingError::InvalidArgument {
                        field: "weights_filenames",
                        reason: format!("{} has no UTF-8 file name", path.display()),
                    }
                })?;
                entries.push(PackageEntry {
                    source: path.clone(),
                    name: name.to_owned(),
                });
            }
            entries
        }
        (None, Some(dir)) => {
            if !dir.is_dir() {
                return Err(TrackingError::FileNotFound {
                    what: "package directory",
                    path: dir.to_owned(),
                });
            }
            let mut entries = Vec::new();
            for path in list_files(dir)? {
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                let parts: Option<Vec<&str>> = relative
                    .components()
                    .map(|c| c.as_os_str().to_str())
                    .collect();
                let name =
                    parts
                        .map(|p| p.join("/"))
                        .ok_or_else(|| TrackingError::InvalidArgument {
                            field: "weights_path",
                            reason: format!("{} is not a UTF-8 path", path.display()),
                        })?;
                entries.push(PackageEntry { source: path, name });
            }
            entries
        }
    };
    if entries.is_empty() {
        return Err(TrackingError::InvalidArgument {
            field: if dir.is_some() {
                "weights_path"
            } else {
                "weights_filenames"
            },
            reason: "the package would be empty".into(),
        });
    }
    let mut names = BTreeSet::new();
    for entry in &entries {
        if !names.insert(entry.name.as_str()) {
            return Err(TrackingError::InvalidArgument {
                field: "weights_filenames",
                reason: format!("two files are named {:?}", entry.name),
            });
        }
    }
    Ok(entries)
}

/// Writes `entries` into a new zip at `out` (deflated, fixed timestamps: the same files give
/// the same bytes, hence the same blob).
pub(crate) fn write_package(entries: &[PackageEntry], out: &Path) -> Result<(), TrackingError> {
    let package_error = |source| TrackingError::Package {
        action: "write",
        path: out.to_owned(),
        source,
    };
    let file = File::create(out).map_err(TrackingError::io("create", out))?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    for entry in entries {
        let mut source =
            File::open(&entry.source).map_err(TrackingError::io("read", &entry.source))?;
        let size = source
            .metadata()
            .map_err(TrackingError::io("inspect", &entry.source))?
            .len();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(size >= u64::from(u32::MAX));
        zip.start_file(entry.name.as_str(), options)
            .map_err(package_error)?;
        std::io::copy(&mut source, &mut zip).map_err(TrackingError::io("read", &entry.source))?;
    }
    let mut writer = zip.finish().map_err(package_error)?;
    writer.flush().map_err(TrackingError::io("write", out))?;
    writer
        .get_ref()
        .sync_all()
        .map_err(TrackingError::io("sync", out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_round_trips_through_extract() {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("nested")).expect("mkdir");
        std::fs::write(src.join("a.bin"), b"alpha").expect("write a");
        std::fs::write(src.join("nested").join("b.txt"), b"beta").expect("write b");
        let entries = package_entries(None, Some(&src)).expect("entries");
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["a.bin", "nested/b.txt"]);

        let zip = dir.path().join("p.zip");
        write_package(&entries, &zip).expect("zip");
        let zip2 = dir.path().join("p2.zip");
        write_package(&entries, &zip2).expect("zip again");
        assert_eq!(
            std::fs::read(&zip).expect("read"),
            std::fs::read(&zip2).expect("read"),
            "the same files give the same zip"
        );

        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let cache = dir.path().join("cache");
        let out = rt
            .block_on(extract(&zip, &cache, "k", false))
            .expect("extract");
        assert_eq!(out, cache.join("extracted").join("k"));
        assert_eq!(std::fs::read(out.join("a.bin")).expect("a"), b"alpha");
        assert_eq!(
            std::fs::read(out.join("nested").join("b.txt")).expect("b"),
            b"beta"
        );
        let files = list_files(&out).expect("list");
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn package_arguments_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = dir.path().join("a");
        std::fs::write(&a, b"x").expect("write");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let a2 = sub.join("a");
        std::fs::write(&a2, b"y").expect("write");
        let files = [a.clone()];
        assert!(matches!(
            package_entries(Some(&files), Some(dir.path())),
            Err(TrackingError::ConflictingArguments { .. })
        ));
        assert!(matches!(
            package_entries(None, None),
            Err(TrackingError::MissingArgument { .. })
        ));
        let missing = [dir.path().join("nope")];
        assert!(matches!(
            package_entries(Some(&missing), None),
            Err(TrackingError::FileNotFound { .. })
        ));
        let twins = [a, a2];
        assert!(matches!(
            package_entries(Some(&twins), None),
            Err(TrackingError::InvalidArgument { .. })
        ));
        let empty = tempfile::tempdir().expect("empty dir");
        assert!(matches!(
            package_entries(None, Some(empty.path())),
            Err(TrackingError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn only_file_uris_are_read_directly() {
        assert!(matches!(
            registered_file("s3://bucket/model.bin"),
            Err(TrackingError::NotDownloadable { .. })
        ));
        assert!(matches!(
            registered_file("file:///definitely/not/here.bin"),
            Err(TrackingError::FileNotFound { .. })
        ));
    }
}
