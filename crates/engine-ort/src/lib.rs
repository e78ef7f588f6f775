//! kiln-engine-ort: kiln on ONNX Runtime — finding and installing the runtime library, sessions
//! with typed inputs and outputs, kiln-pipeline's `Engine` ([`OrtEngine`]), and measuring models
//! ([`measure`]).
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`): building kiln never needs the
//! library, and one binary runs with whichever compatible library a machine has. [`runtime`] finds
//! it — an explicit path, `ORT_DYLIB_PATH`, kiln's runtime directory, then the system loader —
//! checks it (it loads, it is ONNX Runtime, version 1.31 or newer), says which one is used and why
//! ([`RuntimeStatus`]), and names every place it looked when none works
//! ([`EngineError::RuntimeNotFound`]). [`install`] fetches the library from the pinned `onnxruntime`
//! PyPI wheel, sha256-verified, into kiln's runtime directory.
//!
//! [`OrtSession`] wraps one model: [`TensorInfo`] metadata for inputs and outputs (symbolic
//! dimensions kept by name), and [`OrtSession::run`] from named [`TensorInput`]s (ndarray, owned or
//! borrowed) to [`Outputs`] of typed arrays. Inputs are checked against the model before ONNX Runtime
//! sees them.
//!
//! ```no_run
//! use kiln_engine_ort::{OrtSession, SessionOptions, TensorInput};
//! # fn main() -> Result<(), kiln_engine_ort::EngineError> {
//! let mut session = OrtSession::from_file("model.onnx", &SessionOptions::default())?;
//! let x = ndarray::Array4::<f32>::zeros((1, 3, 224, 224));
//! let outputs = session.run(&[("x", TensorInput::from(x))])?;
//! let probabilities = outputs.f32("softmax")?;
//! # let _ = probabilities;
//! # Ok(())
//! # }
//! ```
//!
//! [`OrtEngine`] implements kiln-pipeline's [`Engine`](kiln_pipeline::Engine) (POT's engine): it
//! runs a single model over a data loader in batches through kiln-pipeline's shared predict loop
//! ([`EngineCore::predict_with`](kiln_pipeline::EngineCore::predict_with)), supplying the one
//! runtime-specific step — run a batch on a session, hand back the model's outputs and the statistic
//! outputs separately. Sessions are built lazily from the model encoded in memory: a plain one, and
//! one per statistics layout on a copy whose layout tensors are exposed as graph outputs, cached
//! until the next `set_model`. Inputs are fed borrowed and outputs moved, so each tensor is copied
//! once (out of ONNX Runtime). A model whose batch dimension is fixed to 1 runs sample by sample.
//! Progress goes to an indicatif bar ([`IndicatifProgress`]) when asked ([`ProgressMode`]) and
//! stderr is a terminal.
//!
//! [`measure`] measures models as kiln's peers do: size, median batch-1 latency and batch-B
//! throughput with the peers' session options ([`measure_model`]); FP32 against INT8 in alternating
//! rounds with one live session at a time, so speedups are measured under the same noise
//! ([`compare`]); the operators ONNX Runtime really executes, read from the optimized graph it writes
//! ([`executed_ops`]: `QLinearConv` against float `Conv`); and the model entity of the quantized
//! model ([`fill_quantized_entity`]).
//!
//! ## Architecture invariants
//!
//! - This is the only kiln crate that names `ort`; no `ort` type appears in its public API, and
//!   `ort`'s errors (the session builder's is not `Send`) are flattened into [`EngineError`].
//!   kiln-pipeline stays runtime-agnostic: [`OrtEngine`] reports through
//!   [`PipelineError::Engine`](kiln_pipeline::PipelineError::Engine) with the [`EngineError`] as its
//!   source.
//! - The engine keeps nothing per sample unless the caller asks (`KeepOutputs`,
//!   `metric_per_sample`): memory follows the batch size, never the dataset size.
//! - Measurements never assert speed: tests check that numbers are sane, timings are compared only
//!   as ratios measured in one [`compare`].
//! - One ONNX Runtime per process, started once ([`runtime::init`]); asking for another library
//!   afterwards is an error, never a silent mismatch.
//! - An execution provider that cannot be used is an error
//!   ([`EngineError::ExecutionProviderUnavailable`]), never a silent CPU fallback.
//!
//! ## Cargo features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `cuda` | no | [`ExecutionProvider::Cuda`] through `ort`'s CUDA provider; needs an ONNX Runtime library built with CUDA (the `onnxruntime-gpu` wheel's), the `onnxruntime` wheel kiln installs is CPU-only. Without it, asking for CUDA is an `ExecutionProviderUnavailable` error. |

pub mod engine;
pub mod error;
pub mod measure;
pub mod runtime;
pub mod session;

pub use error::{EngineError, OrtErrorKind, Result};
pub use runtime::{
    Candidate, InstalledRuntime, Outcome, ProbeFailure, Runtime, RuntimeOptions, RuntimeSource,
    RuntimeStatus, discover, install,
};
pub use session::{
    Dim, ElementType, ExecutionProvider, OptimizationLevel, OrtSession, Outputs, SessionOptions,
    TensorInfo, TensorInput, TensorOutput,
};

pub use engine::{IndicatifProgress, OrtEngine, OrtEngineConfig, ProgressMode};
pub use measure::{
    Comparison, ExecutedOps, InputSpec, MeasureError, MeasureOptions, Measurement,
    MetricComparison, ModelSource, compare, executed_ops, fill_measured_entity,
    fill_quantized_entity, measure_model,
};
