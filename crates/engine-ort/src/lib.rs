//! kiln-engine-ort: kiln on ONNX Runtime — finding and installing the runtime library, and sessions
//! with typed inputs and outputs.
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
//! ## Architecture invariants
//!
//! - This is the only kiln crate that names `ort`; no `ort` type appears in its public API, and
//!   `ort`'s errors (the session builder's is not `Send`) are flattened into [`EngineError`].
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

pub mod error;
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
