//! [`OrtSession`]: one ONNX model loaded in ONNX Runtime, with typed metadata and typed tensors.
//!
//! Inputs are checked against the model's declaration before ONNX Runtime sees them (names,
//! element types, ranks and fixed dimensions), so a mistake is a precise [`EngineError`] rather than
//! a runtime message. `run` takes `&mut self` because ONNX Runtime's `Run` is not safe to call
//! concurrently on one session: hold one session per thread, or a pool.

mod provider;
mod tensor;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

pub use self::provider::check_execution_provider;
pub use self::tensor::{
    Dim, ElementType, Outputs, TensorInfo, TensorInput, TensorOutput, fmt_dims,
};
use crate::error::{EngineError, Result};
use crate::runtime::{self, Runtime};

/// How much ONNX Runtime rewrites the graph before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OptimizationLevel {
    /// No graph optimisation.
    Disable,
    /// Semantics-preserving rewrites: constant folding, redundant node removal.
    Basic,
    /// Adds node fusions (Conv+Add, QDQ into QLinear* integer kernels, GELU, attention…).
    Extended,
    /// Everything, including layout changes (NCHWc) specific to this machine.
    #[default]
    All,
}

impl From<OptimizationLevel> for GraphOptimizationLevel {
    fn from(level: OptimizationLevel) -> GraphOptimizationLevel {
        match level {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::All,
        }
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU kernels.
    #[default]
    Cpu,
    /// NVIDIA CUDA (needs the `cuda` feature and an ONNX Runtime library built with CUDA).
    Cuda {
        /// The GPU's index.
        device_id: u32,
    },
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecutionProvider::Cpu => f.write_str("CPU"),
            ExecutionProvider::Cuda { device_id } => write!(f, "CUDA (device {device_id})"),
        }
    }
}

/// How to build a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionOptions {
    /// Threads used inside one operator; `None` lets ONNX Runtime choose (one per physical core).
    pub intra_threads: Option<usize>,
    /// Threads used to run independent operators at once; only used with `parallel_execution`.
    pub inter_threads: Option<usize>,
    /// Run independent branches of the graph in parallel (ONNX Runtime's parallel execution mode).
    pub parallel_execution: bool,
    /// Graph optimisation level.
    pub optimization_level: OptimizationLevel,
    /// Where ONNX Runtime writes the optimised graph when the session is built (to inspect what it
    /// fused, e.g. count `QLinearConv` nodes).
    pub optimized_model_path: Option<PathBuf>,
    /// Where the model runs. Asking for an unavailable provider is an error, never a CPU fallback.
    pub execution_provider: ExecutionProvider,
}

/// One model loaded in ONNX Runtime.
pub struct OrtSession {
    session: ort::session::Session,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    execution_provider: ExecutionProvider,
}

impl fmt::Debug for OrtSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtSession")
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("execution_provider", &self.execution_provider)
            .finish_non_exhaustive()
    }
}

impl OrtSession {
    /// Loads the model at `path` in the process's runtime ([`runtime::global`]).
    pub fn from_file(path: impl AsRef<Path>, options: &SessionOptions) -> Result<OrtSession> {
        OrtSession::from_file_in(runtime::global()?, path, options)
    }

    /// Loads a model from its serialized bytes in the process's runtime ([`runtime::global`]).
    pub fn from_bytes(bytes: &[u8], options: &SessionOptions) -> Result<OrtSession> {
        OrtSession::from_bytes_in(runtime::global()?, bytes, options)
    }

    /// Loads the model at `path` in `runtime`.
    pub fn from_file_in(
        runtime: &Runtime,
        path: impl AsRef<Path>,
        options: &SessionOptions,
    ) -> Result<OrtSession> {
        let path = path.as_ref();
        if let Err(source) = std::fs::metadata(path) {
            return Err(EngineError::Io {
                op: "reading model",
                path: path.to_path_buf(),
                source,
            });
        }
        let context = format!("loading model {}", path.display());
        let session = builder(runtime, options)?
            .commit_from_file(path)
            .map_err(|error| EngineError::ort(context, &error))?;
        Ok(OrtSession::new(session, options))
    }

    /// Loads a model from its serialized bytes in `runtime`.
    pub fn from_bytes_in(
        runtime: &Runtime,
        bytes: &[u8],
        options: &SessionOptions,
    ) -> Result<OrtSession> {
        let session = builder(runtime, options)?
            .commit_from_memory(bytes)
            .map_err(EngineError::ort_with("loading model from memory"))?;
        Ok(OrtSession::new(session, options))
    }

    fn new(session: ort::session::Session, options: &SessionOptions) -> OrtSession {
        let inputs = session
            .inputs()
            .iter()
            .map(TensorInfo::from_outlet)
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(TensorInfo::from_outlet)
            .collect();
        OrtSession {
            session,
            inputs,
            outputs,
            execution_provider: options.execution_provider,
        }
    }

    /// The model's inputs, in order.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The model's outputs, in order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// The input named `name`.
    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|info| info.name == name)
    }

    /// The output named `name`.
    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|info| info.name == name)
    }

    /// The provider the session was built for.
    pub fn execution_provider(&self) -> ExecutionProvider {
        self.execution_provider
    }

    /// Runs the model on named inputs (every model input, once) and returns every output.
    pub fn run(&mut self, inputs: &[(&str, TensorInput<'_>)]) -> Result<Outputs> {
        self.check_inputs(inputs)?;
        let mut values = Vec::with_capacity(inputs.len());
        for (name, input) in inputs {
            values.push((Cow::Borrowed(*name), input.to_ort()?));
        }
        let outputs = self
            .session
            .run(values)
            .map_err(EngineError::ort_with("running the model"))?;
        let mut entries = Vec::with_capacity(outputs.len());
        for (name, value) in outputs.iter() {
            entries.push((name.to_owned(), TensorOutput::from_ort(name, &value)?));
        }
        Ok(Outputs::new(entries))
    }

    fn check_inputs(&self, inputs: &[(&str, TensorInput<'_>)]) -> Result<()> {
        for (i, (name, input)) in inputs.iter().enumerate() {
            let Some(info) = self.input(name) else {
                return Err(EngineError::UnknownInput {
                    name: (*name).to_owned(),
                    known: self.inputs.iter().map(|info| info.name.clone()).collect(),
                });
            };
            if inputs[..i].iter().any(|(earlier, _)| earlier == name) {
                return Err(EngineError::DuplicateInput {
                    name: (*name).to_owned(),
                });
            }
            if input.element_type() != info.element_type {
                return Err(EngineError::InputType {
                    name: (*name).to_owned(),
                    expected: info.element_type.clone(),
                    actual: input.element_type(),
                });
            }
            if !info.accepts_shape(input.shape()) {
                return Err(EngineError::InputShape {
                    name: (*name).to_owned(),
                    expected: info.shape.clone(),
                    actual: input.shape().to_vec(),
                });
            }
        }
        if let Some(missing) = self
            .inputs
            .iter()
            .find(|info| !inputs.iter().any(|(name, _)| *name == info.name))
        {
            return Err(EngineError::MissingInput {
                name: missing.name.clone(),
            });
        }
        Ok(())
    }
}

/// A session builder configured by `options`. Builder errors (`ort::Error<SessionBuilder>`, not
/// `Send`) are flattened here.
fn builder(runtime: &Runtime, options: &SessionOptions) -> Result<SessionBuilder> {
    let mut builder = ort::session::Session::builder(runtime.env())
        .map_err(EngineError::ort_with("creating a session builder"))?
        .with_optimization_level(options.optimization_level.into())
        .map_err(EngineError::ort_with("setting the optimization level"))?;
    if let Some(threads) = options.intra_threads {
        builder = builder
            .with_intra_threads(threads)
            .map_err(EngineError::ort_with("setting intra-op threads"))?;
    }
    if options.parallel_execution {
        builder = builder
            .with_parallel_execution(true)
            .map_err(EngineError::ort_with("enabling parallel execution"))?;
    }
    if let Some(threads) = options.inter_threads {
        builder = builder
            .with_inter_threads(threads)
            .map_err(EngineError::ort_with("setting inter-op threads"))?;
    }
    if let Some(path) = &options.optimized_model_path {
        builder = builder
            .with_optimized_model_path(path)
            .map_err(EngineError::ort_with("setting the optimized model path"))?;
    }
    provider::apply(runtime, builder, options.execution_provider)
}
