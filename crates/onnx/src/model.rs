//! [`Model`]: a decoded `ModelProto`, where it came from, and the memory backing its weights.
//!
//! Reading is the first of two steps: decode (here: map the file, decode without copying the
//! weights, check the structure), then edit or translate the proto (the `graph` module, the
//! engines). Writing goes the other way: encode, refusing anything a protobuf reader would refuse
//! (2 GiB and more), and replace the target file atomically.

mod save;
mod validate;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use memmap2::Mmap;
use prost::Message;

use crate::error::{OnnxError, Origin, PROTOBUF_LIMIT, Result};
use crate::external::{self, ExternalDataResolver, FsResolver, NoResolver};
use crate::proto::{GraphProto, ModelProto, OperatorSetIdProto, TensorProto};
use crate::summary::ModelSummary;
use crate::walk;

pub use save::{AUTO_THRESHOLD_BYTES, ExternalDataPolicy, SaveOptions};
pub use validate::MAX_IR_VERSION;

/// How [`Model::open_with_options`] reads a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Map the file into memory and decode weights without copying them (default). When `false`
    /// the file is read into memory instead, which is safe even if another process rewrites the
    /// file in place later.
    pub mmap: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { mmap: true }
    }
}

/// An ONNX model: the decoded proto, where it came from, and how to reach its external data.
///
/// Tensors' `raw_data` share the memory the model was decoded from (the file mapping for
/// [`Model::open`]); that memory stays alive as long as any of those `Bytes` does, and the model
/// also keeps it in [`Model::backing`].
#[derive(Debug, Clone)]
pub struct Model {
    proto: ModelProto,
    origin: Origin,
    base_dir: Option<PathBuf>,
    backing: Bytes,
    resolver: Arc<dyn ExternalDataResolver>,
}

static EMPTY_GRAPH: LazyLock<GraphProto> = LazyLock::new(GraphProto::default);

impl Model {
    /// Opens the ONNX file at `path`: maps it, decodes it without copying weights, checks its
    /// structure. External data is resolved later, relative to the file's directory.
    pub fn open(path: impl AsRef<Path>) -> Result<Model> {
        Model::open_with_options(path, &OpenOptions::default())
    }

    /// [`Model::open`] with options.
    pub fn open_with_options(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Model> {
        let path = path.as_ref();
        let file = File::open(path).map_err(OnnxError::io("opening", path))?;
        let meta = file
            .metadata()
            .map_err(OnnxError::io("reading metadata of", path))?;
        if meta.is_dir() {
            return Err(OnnxError::Io {
                op: "reading",
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::IsADirectory,
                    "a directory, not a model file",
                ),
            });
        }
        let bytes = if meta.len() == 0 {
            Bytes::new()
        } else if options.mmap {
            // SAFETY: the mapping is read-only and private. It is undefined behaviour only if
            // another process truncates or rewrites this file in place while it is mapped; kiln
            // replaces files by rename only (`save`), which leaves existing mappings intact. Use
            // `OpenOptions { mmap: false }` where that cannot be ruled out.
            let map = unsafe { Mmap::map(&file) }.map_err(OnnxError::io("mapping", path))?;
            Bytes::from_owner(map)
        } else {
            Bytes::from(std::fs::read(path).map_err(OnnxError::io("reading", path))?)
        };
        let base_dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let model = Model::decode(bytes, Origin::File(path.to_path_buf()))?;
        Ok(model.with_base_dir(base_dir))
    }

    /// Decodes a model from bytes, sharing them for `raw_data` (no copy). The model has no base
    /// directory: give it one with [`Model::with_base_dir`] if it has external data.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Model> {
        Model::decode(bytes.into(), Origin::Memory)
    }

    /// Wraps a proto built or edited in memory, after the same structural checks as decoding.
    pub fn from_proto(proto: ModelProto) -> Result<Model> {
        validate::validate(&proto, &Origin::Memory)?;
        Ok(Model::new(proto, Origin::Memory, Bytes::new()))
    }

    fn decode(bytes: Bytes, origin: Origin) -> Result<Model> {
        if bytes.is_empty() {
            return Err(OnnxError::Invalid {
                origin,
                reason: "it is empty".into(),
            });
        }
        let proto = ModelProto::decode(bytes.clone()).map_err(|source| OnnxError::Decode {
            origin: origin.clone(),
            source,
        })?;
        validate::validate(&proto, &origin)?;
        Ok(Model::new(proto, origin, bytes))
    }

    fn new(proto: ModelProto, origin: Origin, backing: Bytes) -> Model {
        Model {
            proto,
            origin,
            base_dir: None,
            backing,
            resolver: Arc::new(NoResolver),
        }
    }

    /// Resolves external data against `dir` (with an [`FsResolver`]).
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> Model {
        let dir = dir.into();
        self.resolver = Arc::new(FsResolver::new(dir.clone()));
        self.base_dir = Some(dir);
        self
    }

    /// Reads external data through `resolver` instead (weights kept in a blob store, an
    /// archive, ...). The base directory, if any, is kept for saving.
    pub fn with_resolver(mut self, resolver: Arc<dyn ExternalDataResolver>) -> Model {
        self.resolver = resolver;
        self
    }

    /// The decoded proto.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The proto, for editing. Edits are not re-validated until the next
    /// [`validate`](Model::validate) or save.
    pub fn proto_mut(&mut self) -> &mut ModelProto {
        &mut self.proto
    }

    /// The proto, giving up the model (the backing memory stays alive through the `Bytes`
    /// inside it).
    pub fn into_proto(self) -> ModelProto {
        self.proto
    }

    /// Where the model came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The file the model was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(path) => Some(path),
            Origin::Memory => None,
        }
    }

    /// The directory external data is resolved against, if any.
    pub fn base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// The bytes the model was decoded from (empty for [`Model::from_proto`]).
    pub fn backing(&self) -> &Bytes {
        &self.backing
    }

    /// The size of the file or bytes the model was decoded from; `None` for
    /// [`Model::from_proto`].
    pub fn source_len(&self) -> Option<u64> {
        (!self.backing.is_empty()).then_some(self.backing.len() as u64)
    }

    /// The main graph (an empty graph if the proto has none, which only an edit can cause).
    pub fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().unwrap_or(&EMPTY_GRAPH)
    }

    /// The main graph, for editing (created empty if missing).
    pub fn graph_mut(&mut self) -> &mut GraphProto {
        self.proto.graph.get_or_insert_with(GraphProto::default)
    }

    /// The IR version.
    pub fn ir_version(&self) -> i64 {
        self.proto.ir_version
    }

    /// The operator sets imported.
    pub fn opsets(&self) -> &[OperatorSetIdProto] {
        &self.proto.opset_import
    }

    /// The version imported for `domain`; `""` and `"ai.onnx"` both name the default domain.
    pub fn opset_version(&self, domain: &str) -> Option<i64> {
        let default = |d: &str| d.is_empty() || d == "ai.onnx";
        self.proto
            .opset_import
            .iter()
            .find(|o| o.domain == domain || (default(domain) && default(&o.domain)))
            .map(|o| o.version)
    }

    /// Runs the structural checks that decoding runs (useful after edits).
    pub fn validate(&self) -> Result<()> {
        validate::validate(&self.proto, &self.origin)
    }

    /// The size of the encoded proto in bytes.
    pub fn encoded_len(&self) -> u64 {
        self.proto.encoded_len() as u64
    }

    /// Encodes the proto as it is (external references left as they are). Fails with
    /// [`OnnxError::TooLarge`] at 2 GiB and more.
    pub fn encode(&self) -> Result<Vec<u8>> {
        save::encode_checked(&self.proto, PROTOBUF_LIMIT)
    }

    /// Saves to `path` with [`SaveOptions::default`]: a single file when it fits below 2 GiB,
    /// else weights in `<file name>.data` next to it. The file is replaced atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with_options(path, &SaveOptions::default())
    }

    /// Saves to `path`, placing tensor data as `options` say.
    ///
    /// Files are written to a temporary file in the target directory, flushed to disk and then
    /// renamed over the target, so a reader never sees a half-written model; the data file (if
    /// any) is completed before the model that references it. External data already referenced by
    /// this model is read (through the mappings this model holds) before anything is replaced, so
    /// saving over the model's own files is safe.
    pub fn save_with_options(&self, path: impl AsRef<Path>, options: &SaveOptions) -> Result<()> {
        save::save(self, path.as_ref(), options, PROTOBUF_LIMIT)
    }

    /// The resolver used for external data.
    pub fn resolver(&self) -> &dyn ExternalDataResolver {
        self.resolver.as_ref()
    }

    /// The bytes of one of this model's tensors (or any tensor whose external data lives where
    /// this model's does), inline or external, as `raw_data` would hold them. See
    /// [`external::tensor_bytes`].
    pub fn tensor_bytes(&self, tensor: &TensorProto) -> Result<Bytes> {
        external::tensor_bytes(tensor, self.resolver())
    }

    /// Whether any tensor keeps its data in an external file.
    pub fn has_external_data(&self) -> bool {
        let mut any = false;
        walk::tensors(&self.proto, &mut |t, _| any |= external::is_external(t));
        any
    }

    /// Reads all external tensor data into the proto (`raw_data`, zero-copy slices of the mapped
    /// data files), so the model no longer depends on them. Fails with [`OnnxError::TooLarge`],
    /// changing nothing, when the inlined model would reach 2 GiB.
    pub fn load_external_data(&mut self) -> Result<()> {
        save::inline_external(&mut self.proto, self.resolver.as_ref(), PROTOBUF_LIMIT)
    }

    /// A summary of the model: inputs, outputs, operators, parameters. See [`ModelSummary`].
    pub fn summary(&self) -> ModelSummary {
        ModelSummary::of(self)
    }
}
