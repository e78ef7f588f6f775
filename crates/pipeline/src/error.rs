//! [`PipelineError`]: the one error type at kiln-pipeline's boundary, by meaning.
//!
//! Loaders, metrics and kiln-onnx keep their own errors ([`DataError`], [`MetricError`],
//! [`OnnxError`], [`GraphError`], [`TensorError`], [`OpsetError`]); they cross this boundary
//! unchanged (`#[error(transparent)]`), so a caller can still match on them. Configuration errors
//! name the algorithm and the parameter (a dotted path such as `range_estimator.activations.type`)
//! and, for unknown names, list what is accepted. Engines report their failures as
//! [`PipelineError::Engine`] with the runtime's error as the `source`, so this crate never names a
//! runtime type.
//!
//! A source is shown by the error chain, never repeated in the `Display` of its wrapper.

#![warn(missing_docs)]

use std::error::Error as StdError;
use std::path::{Path, PathBuf};

use kiln_onnx::OnnxError;
use kiln_onnx::graph::{GraphError, OpsetError, TensorError};

use crate::data::DataError;
use crate::metric::MetricError;
use crate::stats::StatsError;

/// A boxed error from outside this crate (an engine's runtime error).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in kiln-pipeline.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A sample could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),

    /// A metric could not use a sample's outputs.
    #[error(transparent)]
    Metric(#[from] MetricError),

    /// A model could not be read, checked or written.
    #[error(transparent)]
    Onnx(#[from] OnnxError),

    /// A graph edit failed (statistic outputs, Q/DQ insertion).
    #[error(transparent)]
    Graph(#[from] GraphError),

    /// A tensor's data could not be read or built (kiln-onnx's tensor helpers).
    #[error(transparent)]
    Tensor(#[from] TensorError),

    /// The model's opset does not allow an edit (per-channel Q/DQ needs opset 13).
    #[error(transparent)]
    Opset(#[from] OpsetError),

    /// Statistics of one tensor could not be collected.
    #[error("statistics of tensor {tensor:?}")]
    Stats {
        /// The tensor.
        tensor: String,
        /// What went wrong.
        #[source]
        source: StatsError,
    },

    /// An algorithm configuration names an algorithm that does not exist.
    #[error("unknown algorithm {name:?}; accepted: {}", accepted.join(", "))]
    UnknownAlgorithm {
        /// The name given.
        name: String,
        /// The names accepted.
        accepted: Vec<&'static str>,
    },

    /// An algorithm configuration has a parameter the algorithm does not know.
    #[error("{algorithm}: unknown parameter {param:?}; accepted: {}", accepted.join(", "))]
    UnknownParam {
        /// The algorithm.
        algorithm: String,
        /// The parameter, as a dotted path (`ignored_scope.name`).
        param: String,
        /// The parameters accepted at that level.
        accepted: Vec<&'static str>,
    },

    /// A parameter has the wrong type or a value out of range.
    #[error("{algorithm}: parameter {param}: {reason}")]
    InvalidParam {
        /// The algorithm.
        algorithm: String,
        /// The parameter, as a dotted path (`range_estimator.activations.outlier_prob`).
        param: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A configuration outside any algorithm's parameters is malformed: the shape of the algorithm
    /// list, a model config.
    #[error("{field}: {reason}")]
    Config {
        /// The field (`algorithms[1].name`, `model_config.cascade`).
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// The algorithm is known but has no implementation in this build.
    #[error("algorithm {algorithm} is not implemented")]
    NotImplemented {
        /// The algorithm.
        algorithm: String,
    },

    /// An algorithm failed for a reason of its own.
    #[error("{algorithm}: {reason}")]
    Algorithm {
        /// The algorithm.
        algorithm: String,
        /// What went wrong.
        reason: String,
    },

    /// The engine failed: the runtime's error, if any, is the source.
    #[error("engine: {message}")]
    Engine {
        /// What the engine was doing and what went wrong.
        message: String,
        /// The runtime's error.
        #[source]
        source: Option<BoxError>,
    },

    /// Samples could not be put in one batch (their inputs differ in shape or type).
    #[error("samples {indices:?} cannot be batched: {reason}")]
    Batch {
        /// The sample indices of the batch.
        indices: Vec<usize>,
        /// Why.
        reason: String,
    },

    /// A model output is missing or unusable (kept outputs, per-sample splitting).
    #[error("output {name:?}: {reason}")]
    Output {
        /// The output.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// A compressed model is malformed (an empty or duplicate-named cascade).
    #[error("model: {reason}")]
    Model {
        /// What is wrong.
        reason: String,
    },

    /// A file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`creating directory`, `writing statistics`).
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Something could not be serialized (statistics for the cache).
    #[error("serializing {what}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

impl PipelineError {
    /// An engine error with a message only.
    pub fn engine(message: impl Into<String>) -> PipelineError {
        PipelineError::Engine {
            message: message.into(),
            source: None,
        }
    }

    /// An engine error wrapping the runtime's error.
    pub fn engine_with(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> PipelineError {
        PipelineError::Engine {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// A closure turning an IO error on `path` into [`PipelineError::Io`].
    pub fn io<'a>(
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> PipelineError + 'a {
        move |source| PipelineError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A closure turning a [`StatsError`] of `tensor` into [`PipelineError::Stats`].
    pub fn stats(tensor: &str) -> impl FnOnce(StatsError) -> PipelineError + '_ {
        move |source| PipelineError::Stats {
            tensor: tensor.to_owned(),
            source,
        }
    }
}
