//! Encoding and saving: the 2 GiB check, where tensor data goes ([`ExternalDataPolicy`]), and
//! atomic file replacement (temporary file in the target directory, fsync, rename, fsync of the
//! directory).

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use tempfile::NamedTempFile;

use super::Model;
use crate::error::{OnnxError, Result};
use crate::external::{self, ExternalDataRef, ExternalDataResolver};
use crate::proto::tensor_proto::{DataLocation, DataType};
use crate::proto::{ModelProto, TensorProto};
use crate::walk::{self, Site};

/// The size from which [`ExternalDataPolicy::Auto`] moves a tensor out of a too-large model
/// (the `onnx` package's default `size_threshold`).
pub const AUTO_THRESHOLD_BYTES: u64 = 1024;

/// Where a save puts tensor data.
///
/// Only tensors stored as `raw_data` (what exporters write) are moved to an external file;
/// tensors in typed fields (`float_data`, ...), string tensors and sparse tensors stay inline, as
/// the `onnx` package does. Tensors already external are read and re-placed by the policy,
/// except with [`Keep`](ExternalDataPolicy::Keep).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExternalDataPolicy {
    /// Everything inline, in one file; [`OnnxError::TooLarge`] if that reaches 2 GiB.
    Never,
    /// One file when it stays below 2 GiB, else tensors of [`AUTO_THRESHOLD_BYTES`] and more go
    /// to `<model file name>.data` next to the model.
    #[default]
    Auto,
    /// Tensors of `threshold_bytes` and more (0: all) go to one external file.
    Always {
        /// Tensors smaller than this stay inline.
        threshold_bytes: u64,
        /// The data file, relative to the model's directory (`None`: `<model file name>.data`).
        location: Option<String>,
    },
    /// Write the proto as it is: inline tensors stay inline, external references stay as written.
    /// Only allowed when saving into the directory the external data is resolved from (edit the
    /// graph of a large model, write it next to its weights). Fails at 2 GiB.
    Keep,
}

/// How [`Model::save_with_options`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveOptions {
    /// Where tensor data goes.
    pub external: ExternalDataPolicy,
    /// Offsets of tensors in an external file are multiples of this (default 4096, the page size
    /// the ONNX spec recommends so data can be memory-mapped; 0 or 1: packed).
    pub alignment: u64,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions {
            external: ExternalDataPolicy::Auto,
            alignment: 4096,
        }
    }
}

/// Encodes `proto`, refusing `limit` bytes and more.
pub(crate) fn encode_checked(proto: &ModelProto, limit: u64) -> Result<Vec<u8>> {
    let size = proto.encoded_len() as u64;
    if size >= limit {
        return Err(OnnxError::TooLarge { size });
    }
    Ok(proto.encode_to_vec())
}

/// Reads every external tensor of `proto` into `raw_data`; leaves `proto` unchanged on error,
/// including when the result would reach `limit` bytes.
pub(crate) fn inline_external(
    proto: &mut ModelProto,
    resolver: &dyn ExternalDataResolver,
    limit: u64,
) -> Result<()> {
    let mut loaded = Vec::new();
    let mut failure = None;
    walk::tensors(proto, &mut |t, _| {
        if failure.is_none() && external::is_external(t) {
            match external::tensor_bytes(t, resolver) {
                Ok(bytes) => loaded.push(bytes),
                Err(e) => failure = Some(e),
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if loaded.is_empty() {
        return Ok(());
    }
    // Inline into a copy (cheap: `raw_data` are shared slices) to learn the exact size first.
    let mut inlined = proto.clone();
    let mut loaded = loaded.into_iter();
    walk::tensors_mut(&mut inlined, &mut |t, _| {
        if external::is_external(t)
            && let Some(bytes) = loaded.next()
        {
            set_inline(t, bytes);
        }
        Ok(())
    })?;
    let size = inlined.encoded_len() as u64;
    if size >= limit {
        return Err(OnnxError::TooLarge { size });
    }
    *proto = inlined;
    Ok(())
}

fn set_inline(t: &mut TensorProto, bytes: Bytes) {
    t.raw_data = bytes;
    t.data_location = DataLocation::Default as i32;
    t.external_data.clear();
}

pub(crate) fn save(model: &Model, path: &Path, options: &SaveOptions, limit: u64) -> Result<()> {
    let refuse = |reason: String| OnnxError::Save {
        path: path.to_path_buf(),
        reason,
    };
    let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(refuse("the path has no UTF-8 file name".into()));
    };
    let dir = parent_dir(path);
    let inlined = || -> Result<Vec<u8>> {
        let mut proto = model.proto.clone();
        inline_external(&mut proto, model.resolver(), limit)?;
        encode_checked(&proto, limit)
    };
    let external = |threshold_bytes: u64, location: Option<&str>| Externalise {
        model,
        path,
        dir: &dir,
        threshold_bytes,
        location: location.map_or_else(|| format!("{file_name}.data"), str::to_owned),
        alignment: options.alignment,
        limit,
    };
    match &options.external {
        ExternalDataPolicy::Never => write_atomic(path, &inlined()?),
        ExternalDataPolicy::Auto => match inlined() {
            Ok(bytes) => write_atomic(path, &bytes),
            Err(OnnxError::TooLarge { .. }) => external(AUTO_THRESHOLD_BYTES, None).run(),
            Err(e) => Err(e),
        },
        ExternalDataPolicy::Always {
            threshold_bytes,
            location,
        } => external(*threshold_bytes, location.as_deref()).run(),
        ExternalDataPolicy::Keep => {
            if model.has_external_data() && !same_dir(model.base_dir(), &dir) {
                return Err(refuse(format!(
                    "its external data is resolved from {}, not from the target directory; \
                     save with ExternalDataPolicy::Always or Auto to rewrite it",
                    model
                        .base_dir()
                        .map_or_else(|| "nowhere".to_owned(), |d| d.display().to_string())
                )));
            }
            write_atomic(path, &encode_checked(&model.proto, limit)?)
        }
    }
}

fn same_dir(base: Option<&Path>, dir: &Path) -> bool {
    match (base.map(fs::canonicalize), fs::canonicalize(dir)) {
        (Some(Ok(a)), Ok(b)) => a == b,
        _ => false,
    }
}

/// One save with an external data file.
struct Externalise<'a> {
    model: &'a Model,
    path: &'a Path,
    dir: &'a Path,
    threshold_bytes: u64,
    location: String,
    alignment: u64,
    limit: u64,
}

impl Externalise<'_> {
    fn run(self) -> Result<()> {
        let refuse = |reason: String| OnnxError::Save {
            path: self.path.to_path_buf(),
            reason,
        };
        let relative = external::check_location(&self.location)
            .map_err(|e| refuse(format!("bad external data location: {e}")))?;
        let data_path = self.dir.join(relative);
        if data_path == self.path {
            return Err(refuse(
                "the external data file would be the model file".into(),
            ));
        }
        let data_dir = parent_dir(&data_path);
        fs::create_dir_all(&data_dir).map_err(OnnxError::io("creating", &data_dir))?;

        let mut proto = self.model.proto.clone();
        let mut data = temp_in(&data_path)?;
        let written = self.move_tensors(&mut proto, &mut data, &data_path)?;
        let bytes = encode_checked(&proto, self.limit)?;
        if written {
            data.as_file()
                .sync_all()
                .map_err(OnnxError::io("flushing", data.path()))?;
            data.persist(&data_path).map_err(|e| OnnxError::Io {
                op: "renaming a temporary file onto",
                path: data_path.clone(),
                source: e.error,
            })?;
            sync_dir(&data_dir)?;
        }
        write_atomic(self.path, &bytes)
    }

    /// Writes the tensors the policy moves into `data` and points them at it; returns whether
    /// anything was written.
    fn move_tensors(
        &self,
        proto: &mut ModelProto,
        data: &mut NamedTempFile,
        data_path: &Path,
    ) -> Result<bool> {
        let resolver = self.model.resolver();
        let mut out = BufWriter::new(data);
        let mut offset = 0u64;
        let mut written = false;
        walk::tensors_mut(proto, &mut |t, site| {
            let bytes = if external::is_external(t) {
                external::tensor_bytes(t, resolver)?
            } else {
                t.raw_data.clone()
            };
            let movable = site != Site::Sparse && t.data_type != DataType::String as i32;
            let len = bytes.len() as u64;
            if !movable || bytes.is_empty() || len < self.threshold_bytes {
                if external::is_external(t) {
                    set_inline(t, bytes);
                }
                return Ok(());
            }
            let start = if self.alignment > 1 {
                offset.next_multiple_of(self.alignment)
            } else {
                offset
            };
            io::copy(&mut io::repeat(0).take(start - offset), &mut out)
                .and_then(|_| out.write_all(&bytes))
                .map_err(OnnxError::io("writing", data_path))?;
            ExternalDataRef {
                location: self.location.clone(),
                offset: start,
                length: Some(len),
                checksum: None,
            }
            .apply_to(t);
            offset = start + len;
            written = true;
            Ok(())
        })?;
        out.flush().map_err(OnnxError::io("writing", data_path))?;
        Ok(written)
    }
}

/// The directory of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary file next to `target`, named `.<target name>.<random>.tmp`.
fn temp_in(target: &Path) -> Result<NamedTempFile> {
    let dir = parent_dir(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // A model is a document, not a secret: the usual 0644 (less the umask), not 0600.
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder
        .tempfile_in(&dir)
        .map_err(OnnxError::io("creating a temporary file in", &dir))
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_in(path)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(OnnxError::io("writing", path))?;
    tmp.persist(path).map_err(|e| OnnxError::Io {
        op: "renaming a temporary file onto",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    sync_dir(&parent_dir(path))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OnnxError::io("syncing directory", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, OperatorSetIdProto, ValueInfoProto};

    /// A model with `n` float initializers of `len` elements each.
    fn model(n: usize, len: usize) -> Model {
        let initializer = (0..n)
            .map(|i| TensorProto {
                name: format!("w{i}"),
                data_type: DataType::Float as i32,
                dims: vec![len as i64],
                raw_data: Bytes::from(vec![i as u8; len * 4]),
                ..Default::default()
            })
            .collect();
        let proto = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(GraphProto {
                initializer,
                output: vec![ValueInfoProto {
                    name: "w0".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        Model::from_proto(proto).expect("valid")
    }

    #[test]
    fn too_large_models_are_refused_or_externalised() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = model(4, 1000); // ~16 kB
        let limit = 10_000;
        let path = dir.path().join("m.onnx");
        let never = SaveOptions {
            external: ExternalDataPolicy::Never,
            ..SaveOptions::default()
        };
        assert!(matches!(
            save(&m, &path, &never, limit),
            Err(OnnxError::TooLarge { .. })
        ));
        assert!(matches!(
            encode_checked(m.proto(), limit),
            Err(OnnxError::TooLarge { .. })
        ));
        assert!(!path.exists(), "nothing written on refusal");

        save(&m, &path, &SaveOptions::default(), limit).expect("auto externalises");
        let mut back = Model::open(&path).expect("reopen");
        assert!(back.has_external_data());
        assert!(dir.path().join("m.onnx.data").exists());
        assert!(back.encoded_len() < limit);

        assert!(matches!(
            inline_external(&mut back.proto, back.resolver.as_ref(), limit),
            Err(OnnxError::TooLarge { .. })
        ));
        assert!(back.has_external_data(), "unchanged after refusal");
        back.load_external_data().expect("fits the real limit");
        assert_eq!(back.proto(), m.proto());
    }

    #[test]
    fn thresholds_and_alignment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = model(3, 100); // 400 bytes each
        let path = dir.path().join("m.onnx");
        let options = |threshold_bytes, alignment| SaveOptions {
            external: ExternalDataPolicy::Always {
                threshold_bytes,
                location: Some("weights/w.bin".into()),
            },
            alignment,
        };
        save(&m, &path, &options(0, 4096), u64::MAX).expect("save");
        let data_len = |p: &Path| fs::metadata(p).expect("data").len();
        assert_eq!(data_len(&dir.path().join("weights/w.bin")), 2 * 4096 + 400);
        let back = Model::open(&path).expect("reopen");
        let offsets: Vec<_> = back
            .graph()
            .initializer
            .iter()
            .map(|t| {
                ExternalDataRef::of(t)
                    .expect("ref")
                    .expect("external")
                    .offset
            })
            .collect();
        assert_eq!(offsets, [0, 4096, 8192]);

        save(&m, &path, &options(0, 1), u64::MAX).expect("packed");
        assert_eq!(data_len(&dir.path().join("weights/w.bin")), 1200);

        save(&m, &path, &options(401, 1), u64::MAX).expect("all below threshold");
        assert!(!Model::open(&path).expect("reopen").has_external_data());
    }
}
