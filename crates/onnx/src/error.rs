//! The crate's IO boundary error: [`OnnxError`], plus [`ExternalDataError`], the error of the
//! external-data resolver trait.
//!
//! Callers match on meaning (`Decode`, `Invalid`, `ExternalData`, `TooLarge`, `Io`); the variants
//! carry the path or tensor name involved so a message alone says what to look at.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The protobuf size limit: a serialized message must stay below 2 GiB.
///
/// ONNX Runtime and every protobuf reader refuse larger single files; weights beyond it belong in
/// external data files.
pub const PROTOBUF_LIMIT: u64 = 2 * 1024 * 1024 * 1024;

/// A `Result` with [`OnnxError`].
pub type Result<T, E = OnnxError> = std::result::Result<T, E>;

/// Where a model's bytes came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk.
    File(PathBuf),
    /// Bytes or a proto handed over in memory.
    Memory,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Memory => f.write_str("<in-memory model>"),
        }
    }
}

/// Everything that can go wrong reading, checking, resolving or writing an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// A file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`opening`, `mapping`, `writing`, ...).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The bytes are not a protobuf `ModelProto`: not an ONNX file, or a truncated one.
    #[error("{origin} is not an ONNX model (or it is truncated)")]
    Decode {
        /// Where the bytes came from.
        origin: Origin,
        /// What the protobuf decoder said.
        #[source]
        source: prost::DecodeError,
    },

    /// The bytes decode as protobuf but do not form a usable ONNX model (no graph, IR version out
    /// of range, no opset imports, nameless values, ...). Arbitrary bytes often decode as
    /// protobuf, so this is also what most non-ONNX files produce.
    #[error("{origin} is not a valid ONNX model: {reason}")]
    Invalid {
        /// Where the model came from.
        origin: Origin,
        /// The first problem found.
        reason: String,
    },

    /// A tensor's external data could not be read.
    #[error("tensor {tensor:?}: its external data cannot be read")]
    ExternalData {
        /// The tensor's name.
        tensor: String,
        /// What went wrong.
        #[source]
        source: ExternalDataError,
    },

    /// A tensor's inline data is unusable (unknown data type, size not matching its dims).
    #[error("tensor {tensor:?}: {reason}")]
    TensorData {
        /// The tensor's name.
        tensor: String,
        /// What is wrong.
        reason: String,
    },

    /// The model would be a protobuf message of 2 GiB or more.
    #[error(
        "the model would be {size} bytes, over the 2 GiB protobuf limit: keep its weights in \
         external data (save with ExternalDataPolicy::Auto or Always instead of inlining them)"
    )]
    TooLarge {
        /// The size the message would have, in bytes.
        size: u64,
    },

    /// A save was refused before anything was written.
    #[error("cannot save {}: {reason}", path.display())]
    Save {
        /// The target path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl OnnxError {
    pub(crate) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Self + 'a {
        move |source| OnnxError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn external(tensor: &str) -> impl FnOnce(ExternalDataError) -> Self + '_ {
        move |source| OnnxError::ExternalData {
            tensor: tensor.to_owned(),
            source,
        }
    }
}

/// Why external tensor data could not be read: the error of
/// [`ExternalDataResolver`](crate::external::ExternalDataResolver).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExternalDataError {
    /// The model has external data but no directory to resolve it against (it was decoded from
    /// memory without [`Model::with_base_dir`](crate::Model::with_base_dir)).
    #[error("external data {location:?} cannot be resolved: the model has no base directory")]
    NoBaseDirectory {
        /// The `location` asked for.
        location: String,
    },

    /// The `external_data` entries are malformed (no `location`, an offset that is not a number,
    /// external data on a string tensor, ...).
    #[error("malformed external data reference: {reason}")]
    BadReference {
        /// What is wrong.
        reason: String,
    },

    /// The location is absolute, contains `..`, or resolves (through links) outside the model's
    /// directory.
    #[error("external data location {location:?} escapes the model directory")]
    PathEscape {
        /// The `location` as written in the model.
        location: String,
    },

    /// The data file does not exist.
    #[error("external data file {} does not exist", path.display())]
    NotFound {
        /// The resolved path.
        path: PathBuf,
    },

    /// The data file could not be opened or mapped.
    #[error("{op} external data file {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// `offset` and `length` do not lie inside the data file.
    #[error(
        "external data {location:?}: offset {offset} + length {} is outside the file ({file_len} bytes)",
        length.map_or_else(|| "(to end)".to_owned(), |l| l.to_string())
    )]
    OutOfBounds {
        /// The `location`.
        location: String,
        /// The requested offset.
        offset: u64,
        /// The requested length (`None`: to the end of the file).
        length: Option<u64>,
        /// The data file's size.
        file_len: u64,
    },

    /// The number of bytes read differs from what the tensor's dims and data type need.
    #[error("external data {location:?}: {actual} bytes, but dims x data type need {expected}")]
    LengthMismatch {
        /// The `location`.
        location: String,
        /// Bytes needed by dims x element size.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
}
