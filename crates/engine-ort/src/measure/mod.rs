//! Measuring models as kiln's peers do: size, batch-1 latency, batch-B throughput
//! ([`measure_model`]); FP32 against INT8 in alternating rounds ([`compare`]); the operators ONNX
//! Runtime really executes ([`executed_ops`]); and the model entity of a quantized model
//! ([`fill_quantized_entity`]).
//!
//! # Method (the peer harness's, `shared/bench`)
//!
//! Session options are the same for every model: CPU, 2 intra-op threads, 1 inter-op thread,
//! sequential execution, every graph optimization ([`MeasureOptions::peer_session`]). Per round and
//! model: build a session, run [`warmup`](MeasureOptions::warmup) untimed batch-1 runs, time
//! `runs / rounds` batch-1 runs, then one untimed and `batch_runs / rounds` timed runs at batch
//! [`batch`](MeasureOptions::batch); drop the session. Only one session is alive at a time (an idle
//! session's spinning intra-op threads would steal CPU from the measured one), and FP32 and INT8
//! alternate round by round, so both see the same noise and their ratio is meaningful even when
//! absolute times are not. Latency is the median batch-1 run; throughput is `B / median batch-B
//! run`. Inputs are deterministic and synthetic, shaped from the session's input metadata
//! ([`InputSpec`]); the timed call includes copying the outputs out of ONNX Runtime, as Python's
//! `run()` does.
//!
//! Timings are noisy on shared machines: compare ratios measured in one [`compare`], never absolute
//! milliseconds across runs or machines.

mod entity;
mod inputs;
mod ops;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_onnx::OnnxError;

pub use self::entity::{MetricComparison, fill_measured_entity, fill_quantized_entity};
pub use self::inputs::InputSpec;
pub use self::ops::{ExecutedOps, FLOAT_CONV_OPS, INTEGER_OPS, executed_ops};
use crate::error::EngineError;
use crate::runtime::{self, Runtime};
use crate::session::{
    Dim, ElementType, ExecutionProvider, OptimizationLevel, OrtSession, SessionOptions, fmt_dims,
};
use inputs::{Synthetic, feeds};

/// Why a model could not be measured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// An input dimension is open in the model and not given by the [`InputSpec`].
    #[error(
        "input `{input}`: dimension {axis} ({dim}) is not fixed by the model; give its size in the input spec"
    )]
    UnresolvedDim {
        /// The input.
        input: String,
        /// The axis.
        axis: usize,
        /// The dimension as the model declares it (`height`, `?`).
        dim: String,
    },

    /// A shape given in the [`InputSpec`] does not fit the model.
    #[error(
        "input `{input}`: the given shape {given:?} does not fit the model's {}",
        fmt_dims(expected)
    )]
    ShapeMismatch {
        /// The input.
        input: String,
        /// The shape given.
        given: Vec<usize>,
        /// The model's declaration.
        expected: Vec<Dim>,
    },

    /// The [`InputSpec`] names an input the model does not have.
    #[error("the input spec names `{name}`, which the model does not have (its inputs: {})", known.join(", "))]
    UnknownInput {
        /// The name given.
        name: String,
        /// The model's inputs.
        known: Vec<String>,
    },

    /// No synthetic data can be made for an input of this element type.
    #[error(
        "input `{input}` is a {element_type} tensor; synthetic inputs are f32, f64, i64, i32, u8, i8 or bool"
    )]
    UnsupportedInput {
        /// The input.
        input: String,
        /// Its element type.
        element_type: ElementType,
    },

    /// ONNX Runtime failed (building a session, running it) or could not be started.
    #[error(transparent)]
    Engine(#[from] EngineError),

    /// An optimized model written by ONNX Runtime could not be read.
    #[error(transparent)]
    Onnx(#[from] OnnxError),

    /// A file operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A model to measure: a file (with its external data, if any) or serialized bytes.
#[derive(Debug, Clone, Copy)]
pub enum ModelSource<'a> {
    /// An ONNX file.
    File(&'a Path),
    /// A serialized model (no external data).
    Bytes(&'a [u8]),
}

impl<'a> From<&'a Path> for ModelSource<'a> {
    fn from(path: &'a Path) -> ModelSource<'a> {
        ModelSource::File(path)
    }
}

impl<'a> From<&'a PathBuf> for ModelSource<'a> {
    fn from(path: &'a PathBuf) -> ModelSource<'a> {
        ModelSource::File(path)
    }
}

impl<'a> From<&'a [u8]> for ModelSource<'a> {
    fn from(bytes: &'a [u8]) -> ModelSource<'a> {
        ModelSource::Bytes(bytes)
    }
}

impl<'a> From<&'a Vec<u8>> for ModelSource<'a> {
    fn from(bytes: &'a Vec<u8>) -> ModelSource<'a> {
        ModelSource::Bytes(bytes)
    }
}

impl fmt::Display for ModelSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSource::File(path) => write!(f, "{}", path.display()),
            ModelSource::Bytes(bytes) => write!(f, "a model of {} bytes in memory", bytes.len()),
        }
    }
}

impl ModelSource<'_> {
    /// The model's size on disk: the file plus every distinct external data file it names (read
    /// from the top-level initializers); for bytes, their length.
    pub fn size_bytes(&self) -> Result<u64, MeasureError> {
        match self {
            ModelSource::Bytes(bytes) => Ok(bytes.len() as u64),
            ModelSource::File(path) => {
                let size = |p: &Path| {
                    std::fs::metadata(p)
                        .map(|m| m.len())
                        .map_err(|source| MeasureError::Io {
                            op: "reading the size of",
                            path: p.to_path_buf(),
                            source,
                        })
                };
                let mut total = size(path)?;
                let model = kiln_onnx::Model::open(path)?;
                let mut locations: Vec<String> = Vec::new();
                for tensor in &model.graph().initializer {
                    if let Ok(Some(external)) = kiln_onnx::ExternalDataRef::of(tensor)
                        && !locations.contains(&external.location)
                    {
                        locations.push(external.location);
                    }
                }
                let dir = model.base_dir().unwrap_or_else(|| Path::new("."));
                for location in &locations {
                    total += size(&dir.join(location))?;
                }
                Ok(total)
            }
        }
    }

    /// A session on this model in `runtime`.
    pub fn session(
        &self,
        runtime: &Runtime,
        options: &SessionOptions,
    ) -> Result<OrtSession, EngineError> {
        match self {
            ModelSource::File(path) => OrtSession::from_file_in(runtime, path, options),
            ModelSource::Bytes(bytes) => OrtSession::from_bytes_in(runtime, bytes, options),
        }
    }
}

/// How to measure (defaults: the peer harness's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureOptions {
    /// Untimed batch-1 runs per round and model (10).
    pub warmup: usize,
    /// Timed batch-1 runs per model over all rounds (60).
    pub runs: usize,
    /// The throughput batch (8); 1 measures throughput from the batch-1 runs.
    pub batch: usize,
    /// Timed batch-B runs per model over all rounds (6).
    pub batch_runs: usize,
    /// Rounds; models alternate within each (2).
    pub rounds: usize,
    /// Session options for every model ([`MeasureOptions::peer_session`]).
    pub session: SessionOptions,
}

impl Default for MeasureOptions {
    fn default() -> MeasureOptions {
        MeasureOptions {
            warmup: 10,
            runs: 60,
            batch: 8,
            batch_runs: 6,
            rounds: 2,
            session: MeasureOptions::peer_session(),
        }
    }
}

impl MeasureOptions {
    /// The peers' session options: CPU, `intra_op_num_threads = 2`, `inter_op_num_threads = 1`,
    /// sequential execution, `ORT_ENABLE_ALL`.
    pub fn peer_session() -> SessionOptions {
        SessionOptions {
            intra_threads: Some(2),
            inter_threads: Some(1),
            parallel_execution: false,
            optimization_level: OptimizationLevel::All,
            optimized_model_path: None,
            execution_provider: ExecutionProvider::Cpu,
        }
    }
}

/// What [`measure_model`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The model's size in bytes ([`ModelSource::size_bytes`]).
    pub size_bytes: u64,
    /// Median batch-1 run time, in milliseconds (at the model's fixed batch if it has one).
    pub latency_ms: f64,
    /// 10th percentile of the batch-1 runs, in milliseconds.
    pub latency_p10_ms: f64,
    /// 90th percentile of the batch-1 runs, in milliseconds.
    pub latency_p90_ms: f64,
    /// Timed batch-1 runs.
    pub runs: usize,
    /// The throughput batch: [`MeasureOptions::batch`], or the model's own batch when it is fixed
    /// (or when `batch` is 1; throughput then comes from the batch-1 runs).
    pub batch: usize,
    /// Median batch-`batch` run time, in milliseconds.
    pub batch_latency_ms: f64,
    /// `batch / median batch run time`, in samples per second.
    pub throughput_fps: f64,
    /// Timed batch runs (0 when throughput comes from the batch-1 runs).
    pub batch_runs: usize,
    /// Where the model ran.
    pub execution_provider: ExecutionProvider,
}

/// FP32 against INT8, measured in one [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The float model.
    pub fp32: Measurement,
    /// The quantized model.
    pub int8: Measurement,
    /// FP32 latency / INT8 latency: above 1, INT8 is faster.
    pub latency_speedup: f64,
    /// INT8 throughput / FP32 throughput: above 1, INT8 is faster.
    pub throughput_speedup: f64,
}

impl Comparison {
    /// The share of the FP32 size the INT8 model saves: `1 - int8 / fp32` (0.74 for a model
    /// shrunk to 26 %; negative if it grew; 0 for an empty FP32 model).
    pub fn size_reduction(&self) -> f64 {
        if self.fp32.size_bytes == 0 {
            return 0.0;
        }
        1.0 - self.int8.size_bytes as f64 / self.fp32.size_bytes as f64
    }
}

/// Measures one model (see the [module docs](self) for the method).
pub fn measure_model<'a>(
    model: impl Into<ModelSource<'a>>,
    inputs: &InputSpec,
    options: &MeasureOptions,
) -> Result<Measurement, MeasureError> {
    let [measurement] = measure_rounds([model.into()], inputs, options)?;
    Ok(measurement)
}

/// Measures a float model and its quantized version in alternating rounds, one live session at a
/// time, so the speedups are measured under the same noise.
pub fn compare<'a, 'b>(
    fp32: impl Into<ModelSource<'a>>,
    int8: impl Into<ModelSource<'b>>,
    inputs: &InputSpec,
    options: &MeasureOptions,
) -> Result<Comparison, MeasureError> {
    let [fp32, int8] = measure_rounds([fp32.into(), int8.into()], inputs, options)?;
    Ok(Comparison {
        latency_speedup: ratio(fp32.latency_ms, int8.latency_ms),
        throughput_speedup: ratio(int8.throughput_fps, fp32.throughput_fps),
        fp32,
        int8,
    })
}

/// `a / b`, 0 when `b` is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Timings of one model over the rounds.
#[derive(Debug, Default)]
struct Timings {
    inputs: Option<Synthetic>,
    one_ms: Vec<f64>,
    batch_ms: Vec<f64>,
}

/// The measurement loop: rounds, models alternating inside each, one live session at a time.
fn measure_rounds<const N: usize>(
    models: [ModelSource<'_>; N],
    spec: &InputSpec,
    options: &MeasureOptions,
) -> Result<[Measurement; N], MeasureError> {
    let runtime = runtime::global()?;
    let mut sizes = [0u64; N];
    for (size, model) in sizes.iter_mut().zip(&models) {
        *size = model.size_bytes()?;
    }
    let rounds = options.rounds.max(1);
    let runs = options.runs.max(1).div_ceil(rounds);
    let batch_runs = options.batch_runs.max(1).div_ceil(rounds);
    let mut timings: [Timings; N] = std::array::from_fn(|_| Timings::default());
    for round in 0..rounds {
        for (model, t) in models.iter().zip(&mut timings) {
            tracing::debug!(%model, round, "measuring");
            let mut session = model.session(runtime, &options.session)?;
            let inputs = match &mut t.inputs {
                Some(inputs) => inputs,
                empty => empty.insert(Synthetic::new(session.inputs(), spec, options.batch)?),
            };
            let one = feeds(&inputs.one);
            for _ in 0..options.warmup {
                session.run(&one)?;
            }
            for _ in 0..runs {
                let started = Instant::now();
                session.run(&one)?;
                t.one_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            if let Some((_, batch)) = &inputs.batch {
                let batch = feeds(batch);
                session.run(&batch)?;
                for _ in 0..batch_runs {
                    let started = Instant::now();
                    session.run(&batch)?;
                    t.batch_ms.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
            drop(session);
        }
    }
    Ok(std::array::from_fn(|i| {
        summarize(sizes[i], &timings[i], options.session.execution_provider)
    }))
}

/// The measurement of one model from its timings.
fn summarize(size_bytes: u64, t: &Timings, execution_provider: ExecutionProvider) -> Measurement {
    let latency_ms = percentile(&t.one_ms, 50.0);
    let (batch, batch_latency_ms, batch_runs) = match &t.inputs {
        Some(Synthetic {
            batch: Some((batch, _)),
            ..
        }) => (*batch, percentile(&t.batch_ms, 50.0), t.batch_ms.len()),
        Some(inputs) => (inputs.base_batch, latency_ms, 0),
        None => (1, latency_ms, 0),
    };
    Measurement {
        size_bytes,
        latency_ms,
        latency_p10_ms: percentile(&t.one_ms, 10.0),
        latency_p90_ms: percentile(&t.one_ms, 90.0),
        runs: t.one_ms.len(),
        batch,
        batch_latency_ms,
        throughput_fps: ratio(batch as f64 * 1e3, batch_latency_ms),
        batch_runs,
        execution_provider,
    }
}

/// The `p`-th percentile of `values` with linear interpolation between closest ranks (numpy's
/// default); 0 for no values.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => {
            let rank = p.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
            let lo = rank.floor() as usize;
            let hi = rank.ceil() as usize;
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_numpy() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&v, 50.0), 3.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 100.0), 5.0);
        assert!((percentile(&v, 90.0) - 4.6).abs() < 1e-12);
        assert!((percentile(&v, 10.0) - 1.4).abs() < 1e-12);
        assert_eq!(percentile(&[1.0, 2.0], 50.0), 1.5);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn ratios_and_size_reduction() {
        assert_eq!(ratio(6.0, 3.0), 2.0);
        assert_eq!(ratio(6.0, 0.0), 0.0);
        let m = |size_bytes| Measurement {
            size_bytes,
            latency_ms: 1.0,
            latency_p10_ms: 1.0,
            latency_p90_ms: 1.0,
            runs: 1,
            batch: 1,
            batch_latency_ms: 1.0,
            throughput_fps: 1000.0,
            batch_runs: 0,
            execution_provider: ExecutionProvider::Cpu,
        };
        let c = Comparison {
            fp32: m(100),
            int8: m(26),
            latency_speedup: 1.0,
            throughput_speedup: 1.0,
        };
        assert!((c.size_reduction() - 0.74).abs() < 1e-12);
        let empty = Comparison { fp32: m(0), ..c };
        assert_eq!(empty.size_reduction(), 0.0);
    }
}
