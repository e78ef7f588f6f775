//! [`EngineError`]: everything that can go wrong in kiln-engine-ort, by meaning.
//!
//! ONNX Runtime's own errors (`ort::Error<R>`, of which the session-builder flavour is neither `Send`
//! nor `Sync`) never cross this crate's boundary: they are flattened into [`EngineError::Ort`] with
//! their message and an [`OrtErrorKind`], so callers can match on meaning and put the error in
//! `anyhow` or a thread.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::runtime::Candidate;
use crate::session::{Dim, ElementType, fmt_dims};

/// The error type of kiln-engine-ort.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No usable ONNX Runtime library was found; every place looked at is listed, with what
    /// happened there.
    #[error("{}", not_found_message(candidates))]
    RuntimeNotFound {
        /// Every place considered, in discovery order.
        candidates: Vec<Candidate>,
    },

    /// ONNX Runtime is already initialised in this process from another library. A process can
    /// hold only one ONNX Runtime.
    #[error(
        "ONNX Runtime is already initialised in this process from {}; it cannot be initialised again from {}",
        loaded.display(),
        requested.display()
    )]
    RuntimeAlreadyInitialized {
        /// The library in use.
        loaded: PathBuf,
        /// The library asked for.
        requested: PathBuf,
    },

    /// The library was found and checked, but ONNX Runtime failed to start from it.
    #[error("initialising ONNX Runtime from {}: {message}", library.display())]
    RuntimeInit {
        /// The library.
        library: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Fetching the runtime library (`kiln runtime install`) failed.
    #[error("installing the ONNX Runtime library")]
    Install(#[source] kiln_assets::AssetError),

    /// An execution provider was asked for but cannot be used. kiln never falls back to the CPU
    /// silently.
    #[error("execution provider {provider} is unavailable: {reason}")]
    ExecutionProviderUnavailable {
        /// The provider (`CUDA`).
        provider: &'static str,
        /// Why.
        reason: String,
    },

    /// ONNX Runtime reported an error.
    #[error("{context}: {message} (ONNX Runtime: {kind})")]
    Ort {
        /// What kiln was doing (`loading model x.onnx`, `running the model`).
        context: String,
        /// The error's kind.
        kind: OrtErrorKind,
        /// ONNX Runtime's message.
        message: String,
    },

    /// A local file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`reading model`).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// An input was given that the model does not have.
    #[error("the model has no input named `{name}` (its inputs: {})", known.join(", "))]
    UnknownInput {
        /// The name given.
        name: String,
        /// The model's input names.
        known: Vec<String>,
    },

    /// A model input was not given.
    #[error("input `{name}` is required but was not given")]
    MissingInput {
        /// The input's name.
        name: String,
    },

    /// The same input was given twice.
    #[error("input `{name}` was given more than once")]
    DuplicateInput {
        /// The input's name.
        name: String,
    },

    /// An input has the wrong element type.
    #[error("input `{name}` must be a {expected} tensor, got {actual}")]
    InputType {
        /// The input's name.
        name: String,
        /// What the model declares.
        expected: ElementType,
        /// What was given.
        actual: ElementType,
    },

    /// An input has the wrong rank or a wrong fixed dimension.
    #[error(
        "input `{name}` must have shape {}, got {actual:?}",
        fmt_dims(expected)
    )]
    InputShape {
        /// The input's name.
        name: String,
        /// What the model declares.
        expected: Vec<Dim>,
        /// What was given.
        actual: Vec<usize>,
    },

    /// An output was asked for that the model does not have.
    #[error("the model has no output named `{name}` (its outputs: {})", known.join(", "))]
    UnknownOutput {
        /// The name asked for.
        name: String,
        /// The model's output names.
        known: Vec<String>,
    },

    /// An output was read as the wrong element type.
    #[error("output `{name}` is a {actual} tensor, not {expected}")]
    OutputType {
        /// The output's name.
        name: String,
        /// The type asked for.
        expected: ElementType,
        /// The output's type.
        actual: ElementType,
    },

    /// The model produced an output kiln cannot read (a sequence, a map, or an exotic element type).
    #[error("output `{name}` is {what}, which kiln does not read")]
    UnsupportedOutput {
        /// The output's name.
        name: String,
        /// What it is.
        what: String,
    },
}

/// The kind of an ONNX Runtime error (its status code, grouped by meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OrtErrorKind {
    /// An argument was invalid (a wrong input shape or type, a bad option).
    InvalidArgument,
    /// A file does not exist.
    NoSuchFile,
    /// The model is not a valid ONNX model (bad protobuf, invalid graph, no model).
    InvalidModel,
    /// Something is not implemented (an operator, an option in this build).
    NotImplemented,
    /// An execution provider failed.
    ExecutionProvider,
    /// Any other failure while running.
    Runtime,
}

impl fmt::Display for OrtErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OrtErrorKind::InvalidArgument => "invalid argument",
            OrtErrorKind::NoSuchFile => "no such file",
            OrtErrorKind::InvalidModel => "invalid model",
            OrtErrorKind::NotImplemented => "not implemented",
            OrtErrorKind::ExecutionProvider => "execution provider failure",
            OrtErrorKind::Runtime => "runtime failure",
        })
    }
}

impl From<ort::ErrorCode> for OrtErrorKind {
    fn from(code: ort::ErrorCode) -> OrtErrorKind {
        use ort::ErrorCode as C;
        match code {
            C::InvalidArgument => OrtErrorKind::InvalidArgument,
            C::NoSuchFile | C::NotFound => OrtErrorKind::NoSuchFile,
            C::NoModel | C::InvalidProtobuf | C::InvalidGraph | C::ModelLoaded => {
                OrtErrorKind::InvalidModel
            }
            C::NotImplemented => OrtErrorKind::NotImplemented,
            C::ExecutionProviderFailure => OrtErrorKind::ExecutionProvider,
            _ => OrtErrorKind::Runtime,
        }
    }
}

impl EngineError {
    /// Flattens an `ort` error (of any recovery type, including the non-`Send` session-builder
    /// error) into [`EngineError::Ort`].
    pub(crate) fn ort<R>(context: impl Into<String>, error: &ort::Error<R>) -> EngineError {
        EngineError::Ort {
            context: context.into(),
            kind: error.code().into(),
            message: error.message().to_owned(),
        }
    }

    /// A `map_err` adapter for [`EngineError::ort`].
    pub(crate) fn ort_with<R>(context: &str) -> impl FnOnce(ort::Error<R>) -> EngineError + '_ {
        move |error| EngineError::ort(context, &error)
    }
}

/// The message of [`EngineError::RuntimeNotFound`]: every place, then the fix.
fn not_found_message(candidates: &[Candidate]) -> String {
    let mut message = format!(
        "no usable ONNX Runtime library (kiln needs ONNX Runtime 1.{}.x or newer); looked in:",
        crate::runtime::REQUIRED_MINOR_VERSION
    );
    for (i, candidate) in candidates.iter().enumerate() {
        message.push_str(&format!("\n  {}. {candidate}", i + 1));
    }
    message.push_str(&format!(
        "\nto fix it: run `kiln runtime install` (or `cargo xtask setup` in a kiln checkout), \
         or set ORT_DYLIB_PATH to a libonnxruntime 1.{}.x or newer",
        crate::runtime::REQUIRED_MINOR_VERSION
    ));
    message
}

/// `Result` with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
