//! External tensor data: the [`ExternalDataResolver`] trait, its filesystem implementation
//! [`FsResolver`], and [`tensor_bytes`], which reads one tensor's bytes wherever they live.
//!
//! # Design
//!
//! A tensor with `data_location = EXTERNAL` names its bytes by `external_data` key/values:
//! `location` (a path relative to the model's directory), `offset` and `length` (optional). The
//! resolver turns such a reference into bytes and is the only place that touches data files, so
//! callers with their weights elsewhere (a blob store, an archive) implement one method. The
//! filesystem resolver is deliberately strict, because a model file is untrusted input:
//!
//! - `location` must be a relative path without `..`; after following links it must still lie in
//!   the model's directory ([`ExternalDataError::PathEscape`]);
//! - `offset + length` must lie inside the file, computed without overflow
//!   ([`ExternalDataError::OutOfBounds`]);
//! - [`tensor_bytes`] checks the length against dims x element size
//!   ([`ExternalDataError::LengthMismatch`]).
//!
//! Data files are memory-mapped once per resolver and sliced, so reading weights copies nothing.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use memmap2::Mmap;

use crate::error::{ExternalDataError, OnnxError, Result};
use crate::proto::tensor_proto::{DataLocation, DataType};
use crate::proto::{StringStringEntryProto, TensorProto};
use crate::tensor;

/// Reads external tensor data by reference. Implement it to serve weights from somewhere other
/// than the model's directory.
pub trait ExternalDataResolver: fmt::Debug + Send + Sync {
    /// Returns `length` bytes (all bytes to the end when `None`) at `offset` of the data named
    /// `location` (as written in the model, relative to its directory).
    ///
    /// Implementations must reject locations that escape their root and ranges outside the data.
    fn read(
        &self,
        location: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Bytes, ExternalDataError>;
}

/// A tensor's parsed `external_data` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDataRef {
    /// Path of the data file relative to the model's directory.
    pub location: String,
    /// Byte offset into the file.
    pub offset: u64,
    /// Number of bytes; `None` reads to the end of the file.
    pub length: Option<u64>,
    /// The optional `checksum` entry (SHA-1 of the file), kept but not verified.
    pub checksum: Option<String>,
}

impl ExternalDataRef {
    /// The external reference of `tensor`, or `None` when its data is inline.
    pub fn of(tensor: &TensorProto) -> Result<Option<ExternalDataRef>, ExternalDataError> {
        if !is_external(tensor) {
            return Ok(None);
        }
        let bad = |reason: String| ExternalDataError::BadReference { reason };
        if tensor.data_type == DataType::String as i32 {
            return Err(bad("string tensors cannot have external data".into()));
        }
        let (mut location, mut offset, mut length, mut checksum) = (None, 0, None, None);
        let number = |e: &StringStringEntryProto| {
            e.value
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("{} {:?} is not a byte count", e.key, e.value)))
        };
        for entry in &tensor.external_data {
            match entry.key.as_str() {
                "location" => location = Some(entry.value.clone()),
                "offset" => offset = number(entry)?,
                "length" => length = Some(number(entry)?),
                "checksum" => checksum = Some(entry.value.clone()),
                _ => {}
            }
        }
        let location = location.ok_or_else(|| bad("no \"location\" entry".into()))?;
        Ok(Some(ExternalDataRef {
            location,
            offset,
            length,
            checksum,
        }))
    }

    /// The `external_data` entries for this reference (`location`, `offset`, `length`, `checksum`).
    pub fn to_entries(&self) -> Vec<StringStringEntryProto> {
        let entry = |key: &str, value: String| StringStringEntryProto {
            key: key.to_owned(),
            value,
        };
        let mut entries = vec![
            entry("location", self.location.clone()),
            entry("offset", self.offset.to_string()),
        ];
        entries.extend(self.length.map(|l| entry("length", l.to_string())));
        entries.extend(self.checksum.clone().map(|c| entry("checksum", c)));
        entries
    }

    /// Points `tensor` at this reference: sets `data_location = EXTERNAL` and the entries, and
    /// clears its inline `raw_data`.
    pub fn apply_to(&self, tensor: &mut TensorProto) {
        tensor.data_location = DataLocation::External as i32;
        tensor.external_data = self.to_entries();
        tensor.raw_data = Bytes::new();
    }
}

/// Whether `tensor`'s data lives in an external file.
pub fn is_external(tensor: &TensorProto) -> bool {
    tensor.data_location == DataLocation::External as i32
}

/// The bytes of `tensor` as `raw_data` would hold them, wherever they live.
///
/// Inline `raw_data` and external data are returned without copying (a shared slice of the
/// model's or the data file's mapping); typed fields (`float_data`, ...) are converted to
/// little-endian bytes. The length is checked against dims x element size.
pub fn tensor_bytes(tensor: &TensorProto, resolver: &dyn ExternalDataResolver) -> Result<Bytes> {
    let Some(reference) = ExternalDataRef::of(tensor).map_err(OnnxError::external(&tensor.name))?
    else {
        return tensor::inline_bytes(tensor);
    };
    let bytes = resolver
        .read(&reference.location, reference.offset, reference.length)
        .map_err(OnnxError::external(&tensor.name))?;
    let expected = tensor::numel(&tensor.dims).and_then(|n| tensor::byte_len(tensor.data_type, n));
    match expected {
        Some(expected) if expected == bytes.len() as u64 => Ok(bytes),
        Some(expected) => Err(OnnxError::ExternalData {
            tensor: tensor.name.clone(),
            source: ExternalDataError::LengthMismatch {
                location: reference.location,
                expected,
                actual: bytes.len() as u64,
            },
        }),
        None => Err(OnnxError::TensorData {
            tensor: tensor.name.clone(),
            reason: format!(
                "no byte size for dims {:?} of type {}",
                tensor.dims,
                tensor::elem_type_label(tensor.data_type)
            ),
        }),
    }
}

/// Checks that `location` is a plain relative path that stays below its root: not empty, not
/// absolute, no `..`, no Windows prefix or backslash tricks.
pub fn check_location(location: &str) -> Result<&Path, ExternalDataError> {
    let escape = || ExternalDataError::PathEscape {
        location: location.to_owned(),
    };
    if location.is_empty() || location.contains('\0') {
        return Err(ExternalDataError::BadReference {
            reason: format!("location {location:?} is not a file name"),
        });
    }
    // Locations are POSIX paths; a backslash would be a separator on Windows.
    if location.contains('\\') {
        return Err(escape());
    }
    let path = Path::new(location);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !plain || path.file_name().is_none() {
        return Err(escape());
    }
    Ok(path)
}

/// Resolves external data from files below a root directory (the model's directory), mapping
/// each data file into memory once and handing out slices of it.
///
/// The mappings are kept for the resolver's lifetime, so bytes it returned stay valid even when
/// the file is later replaced by a rename (as [`Model::save`](crate::Model::save) does). Like
/// every memory-mapped reader it assumes nobody truncates or rewrites a data file in place while
/// it is mapped.
pub struct FsResolver {
    root: PathBuf,
    files: Mutex<HashMap<PathBuf, Bytes>>,
}

impl fmt::Debug for FsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsResolver")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl FsResolver {
    /// A resolver for data files below `root`.
    pub fn new(root: impl Into<PathBuf>) -> FsResolver {
        FsResolver {
            root: root.into(),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The directory locations are resolved against.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The whole content of the data file at `location`, mapped (and cached).
    fn file(&self, location: &str) -> Result<Bytes, ExternalDataError> {
        let relative = check_location(location)?;
        let joined = self.root.join(relative);
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source: std::io::Error| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    ExternalDataError::NotFound { path }
                } else {
                    ExternalDataError::Io { op, path, source }
                }
            }
        };
        let path = joined.canonicalize().map_err(io("resolving", &joined))?;
        let root = self
            .root
            .canonicalize()
            .map_err(io("resolving the model directory of", &joined))?;
        if !path.starts_with(&root) {
            return Err(ExternalDataError::PathEscape {
                location: location.to_owned(),
            });
        }
        let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bytes) = files.get(&path) {
            return Ok(bytes.clone());
        }
        let file = File::open(&path).map_err(io("opening", &path))?;
        let meta = file.metadata().map_err(io("reading metadata of", &path))?;
        if !meta.is_file() {
            return Err(ExternalDataError::BadReference {
                reason: format!("{} is not a regular file", path.display()),
            });
        }
        let bytes = if meta.len() == 0 {
            Bytes::new()
        } else {
            // SAFETY: the mapping is read-only and private to this process. It is undefined
            // behaviour only if another process truncates or rewrites the file in place while it
            // is mapped; kiln itself only ever replaces files by renaming (see `Model::save`).
            let map = unsafe { Mmap::map(&file) }.map_err(io("mapping", &path))?;
            Bytes::from_owner(map)
        };
        files.insert(path, bytes.clone());
        Ok(bytes)
    }
}

impl ExternalDataResolver for FsResolver {
    fn read(
        &self,
        location: &str,
        offset: u64,
        length: Option<u64>,
    ) -> Result<Bytes, ExternalDataError> {
        let file = self.file(location)?;
        slice_checked(&file, location, offset, length)
    }
}

/// A resolver that has nothing to resolve against: every read fails with
/// [`ExternalDataError::NoBaseDirectory`]. Models decoded from memory use it until given a base
/// directory or another resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResolver;

impl ExternalDataResolver for NoResolver {
    fn read(&self, location: &str, _: u64, _: Option<u64>) -> Result<Bytes, ExternalDataError> {
        Err(ExternalDataError::NoBaseDirectory {
            location: location.to_owned(),
        })
    }
}

/// `data[offset .. offset + length]`, or [`ExternalDataError::OutOfBounds`]. Useful to other
/// resolvers that hold whole data files in memory.
pub fn slice_checked(
    data: &Bytes,
    location: &str,
    offset: u64,
    length: Option<u64>,
) -> Result<Bytes, ExternalDataError> {
    let file_len = data.len() as u64;
    let end = match length {
        Some(length) => offset.checked_add(length),
        None => Some(file_len),
    };
    match end {
        Some(end) if offset <= end && end <= file_len => {
            // Both fit in usize: they are at most `data.len()`.
            Ok(data.slice(offset as usize..end as usize))
        }
        _ => Err(ExternalDataError::OutOfBounds {
            location: location.to_owned(),
            offset,
            length,
            file_len,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        for ok in ["w.bin", "./w.bin", "data/w.bin", "a.onnx.data"] {
            assert!(check_location(ok).is_ok(), "{ok}");
        }
        for escape in [
            "../w.bin",
            "data/../../w.bin",
            "/etc/passwd",
            "..",
            ".",
            "a\\..\\b",
        ] {
            assert!(
                matches!(
                    check_location(escape),
                    Err(ExternalDataError::PathEscape { .. })
                ),
                "{escape}"
            );
        }
        assert!(matches!(
            check_location(""),
            Err(ExternalDataError::BadReference { .. })
        ));
    }

    #[test]
    fn slices_are_bounds_checked() {
        let data = Bytes::from_static(b"0123456789");
        let ok = |o, l| slice_checked(&data, "d", o, l).expect("in bounds");
        assert_eq!(ok(2, Some(3)).as_ref(), b"234");
        assert_eq!(ok(10, Some(0)).as_ref(), b"");
        assert_eq!(ok(4, None).as_ref(), b"456789");
        for (o, l) in [(11, Some(0)), (8, Some(3)), (1, Some(u64::MAX)), (11, None)] {
            assert!(
                matches!(
                    slice_checked(&data, "d", o, l),
                    Err(ExternalDataError::OutOfBounds { .. })
                ),
                "{o} {l:?}"
            );
        }
    }

    #[test]
    fn references_parse_and_round_trip() {
        let reference = ExternalDataRef {
            location: "w.bin".into(),
            offset: 4096,
            length: Some(12),
            checksum: None,
        };
        let mut t = TensorProto {
            name: "w".into(),
            data_type: DataType::Float as i32,
            dims: vec![3],
            raw_data: Bytes::from_static(&[0; 12]),
            ..Default::default()
        };
        assert_eq!(ExternalDataRef::of(&t).expect("inline"), None);
        reference.apply_to(&mut t);
        assert!(t.raw_data.is_empty());
        assert_eq!(ExternalDataRef::of(&t).expect("parses"), Some(reference));

        t.external_data[1].value = "-1".into();
        assert!(matches!(
            ExternalDataRef::of(&t),
            Err(ExternalDataError::BadReference { .. })
        ));
        t.external_data.clear();
        assert!(matches!(
            ExternalDataRef::of(&t),
            Err(ExternalDataError::BadReference { .. })
        ));
    }
}
