//! kiln-pipeline: post-training INT8 quantization, runtime-agnostic.
//!
//! The OpenVINO Post-training Optimization Tool's contracts as Rust traits — [`DataLoader`],
//! [`Metric`], [`Engine`], [`Pipeline`] — with streaming statistics, the quantization algorithms,
//! and ready loaders and metrics.
//!
//! # Map
//!
//! | module | what | POT name |
//! |---|---|---|
//! | [`tensor`] | [`Tensor`], [`TensorMap`]: typed arrays by name | numpy arrays, dicts |
//! | [`data`] | [`DataLoader`], [`Sample`], [`Annotation`] | `DataLoader` |
//! | [`metric`] | [`Metric`] and its attributes | `Metric` |
//! | [`engine`] | [`Engine`], [`PredictOptions`], [`Prediction`], [`Progress`]; [`EngineCore`], the runtime-free predict loop engines reuse | `Engine` |
//! | [`sampler`] | [`Sampler`], [`BatchSampler`], [`SubsetSampler`] over a [`Subset`] (first, even, seeded random) | `Sampler`, `BatchSampler` |
//! | [`stats`] | [`StatsLayout`] -> streaming reducers -> [`Statistics`]; [`Histogram`] quantiles and MSE ranges; [`StatsCache`] | `stats_layout` |
//! | [`model`] | [`CompressedModel`] (one model or a named cascade), [`load_model`], [`save_model`] | `CompressedModel`, `load_model`, `save_model` |
//! | [`config`] | POT's algorithm JSON parsed into [`AlgorithmParams`] with precise errors | `algo_config` |
//! | [`pipeline`] | [`Algorithm`], [`Pipeline`], [`create_pipeline`], [`AlgorithmRegistry`] | `Pipeline`, `create_pipeline` |
//! | [`quantization`] | `DefaultQuantization`, `AccuracyAwareQuantization` | same |
//! | [`loaders`], [`metrics`] | ready data loaders and metrics | |
//! | [`error`] | [`PipelineError`], the crate's one boundary error | |
//!
//! # Flow
//!
//! `create_pipeline(algo_config, engine)` checks every algorithm's parameters, then builds the
//! algorithms; `Pipeline::run(model)` hands the model from one algorithm to the next. An algorithm
//! asks the engine for statistics (`predict` with a [`StatsLayout`] and a calibration
//! [`SubsetSampler`]); the engine exposes those tensors as outputs
//! ([`stats::add_stat_outputs`]) and reduces each batch as it arrives, so memory is
//! O(tensors × bins), never O(samples). Statistics are serde data, cached on disk under a key of
//! model digest + data fingerprint + layout.
//!
//! # Architecture invariants
//!
//! - This crate never names an inference runtime. Engines (kiln-engine-ort) implement its
//!   [`Engine`] trait; models are kiln-onnx protos; runtime errors arrive boxed in
//!   [`PipelineError::Engine`].
//! - No progress bars or terminal output: engines report through the [`Progress`] callback.
//! - Statistics never keep samples: every reducer's memory is independent of how many it saw.

pub mod config;
pub mod data;
pub mod engine;
pub mod error;
pub mod loaders;
pub mod metric;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod quantization;
pub mod sampler;
pub mod stats;
pub mod tensor;

pub use data::{Annotation, DataError, DataLoader, LabeledBox, Sample, SampleMetadata};
pub use metric::{Direction, Metric, MetricAttributes, MetricError, SampleRef};
pub use tensor::{Tensor, TensorMap};

pub use config::{
    AccuracyAwareParams, AlgorithmParams, AlgorithmSpec, DefaultQuantizationParams, DropType,
    IgnoredScope, Preset, RangeEstimator, RangeEstimatorParams, TargetDevice,
};
pub use engine::{
    BatchOutputs, Engine, EngineCore, KeepOutputs, NoProgress, PredictOptions, Prediction,
    Progress, SampleMetric,
};
pub use error::PipelineError;
pub use model::{
    CompressedModel, ModelConfig, NamedModel, SavedModel, load_model, model_digest, save_model,
};
pub use pipeline::{
    Algorithm, AlgorithmRegistry, AlgorithmReport, Pipeline, PipelineReport, create_pipeline,
    create_pipeline_from_str,
};
pub use sampler::{BatchSampler, Sampler, Subset, SubsetSampler};
pub use stats::{
    Histogram, StatKind, Statistics, StatsCache, StatsCollector, StatsKey, StatsLayout, TensorStats,
};

pub use loaders::{ImageFolder, MnistCsv, NpyLoader, Preprocess, Rotations};
pub use metrics::{Agreement, AgreementKind, MeanAp50, TopK};
