//! The `Engine` contract (POT's `Engine`): runs a [`CompressedModel`] over the data loader's
//! samples, computing metrics and collecting statistics as it goes.
//!
//! # Writing an engine
//!
//! An engine is built (by its own constructor, as POT's `Engine(config, data_loader, metric)`)
//! with an `Arc<dyn DataLoader>` and an optional `Box<dyn Metric>`. Everything that does not touch
//! the runtime is shared: keep an [`EngineCore`] (loader, metric, batch size) and call
//! [`EngineCore::predict_with`] from [`Engine::predict`], giving it a closure that runs one
//! batch. The loop loads and batches the samples the sampler chooses, feeds each sample's outputs
//! to the metric, reduces statistics as each batch arrives (nothing is kept per sample unless
//! [`KeepOutputs`] asks), reports progress and times the run:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use kiln_pipeline::{CompressedModel, DataLoader, Metric, PipelineError, TensorMap};
//! # use kiln_pipeline::engine::{BatchOutputs, Engine, EngineCore, PredictOptions, Prediction};
//! #[derive(Debug)]
//! struct MyEngine { core: EngineCore /* , session: ... */ }
//!
//! impl Engine for MyEngine {
//!     fn set_model(&mut self, model: &CompressedModel) -> Result<(), PipelineError> {
//!         // Build a session; when predicting with a stats layout, run a copy of the model with
//!         // `stats::add_stat_outputs` applied.
//!         Ok(())
//!     }
//!     fn predict(&mut self, options: &PredictOptions<'_>) -> Result<Prediction, PipelineError> {
//!         self.core.predict_with(options, |_indices, inputs| {
//!             // run the session on `inputs`; split off the statistic outputs
//!             Ok(BatchOutputs { outputs: inputs.clone(), extra: TensorMap::new() })
//!         })
//!     }
//!     fn data_loader(&self) -> &Arc<dyn DataLoader> { self.core.data_loader() }
//!     fn metric(&self) -> Option<&dyn Metric> { self.core.metric() }
//!     fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)> { self.core.metric_mut() }
//!     fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>> {
//!         self.core.set_metric(metric)
//!     }
//!     fn batch_size(&self) -> usize { self.core.batch_size() }
//! }
//! ```
//!
//! Progress is the engine's business: this crate only defines the [`Progress`] callback, so a
//! command-line engine can plug a progress bar in without this crate depending on one.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::data::{DataLoader, Sample};
use crate::error::PipelineError;
use crate::metric::{Metric, SampleRef};
use crate::model::CompressedModel;
use crate::sampler::{BatchSampler, Sampler};
use crate::stats::{Statistics, StatsCollector, StatsLayout};
use crate::tensor::TensorMap;

/// Progress of a long run. Methods take `&self` (progress bars are shared handles).
pub trait Progress: Sync {
    /// A run of `total` units (samples) starts; `label` says what it is.
    fn start(&self, total: u64, label: &str);

    /// `n` more units are done.
    fn advance(&self, n: u64);

    /// The run is over (successfully or not).
    fn finish(&self);
}

/// Progress reporting that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64, _label: &str) {}

    fn advance(&self, _n: u64) {}

    fn finish(&self) {}
}

/// Which model outputs [`Engine::predict`] keeps per sample (e.g. FP32 reference outputs for an
/// agreement metric).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeepOutputs {
    /// None (the default: memory stays independent of the number of samples).
    #[default]
    None,
    /// Every model output.
    All,
    /// These outputs.
    Named(Vec<String>),
}

/// What [`Engine::predict`] does (POT's `predict` arguments).
#[derive(Clone, Default)]
pub struct PredictOptions<'a> {
    /// Statistics to collect (POT's `stats_layout`); `None`: none.
    pub stats_layout: Option<&'a StatsLayout>,
    /// Samples to run; `None`: the whole dataset in batches of the engine's batch size.
    pub sampler: Option<&'a dyn Sampler>,
    /// Record the metric's value for each sample ([`Prediction::per_sample`]).
    pub metric_per_sample: bool,
    /// Outputs to keep per sample ([`Prediction::outputs`]).
    pub keep_outputs: KeepOutputs,
    /// Where to report progress; `None`: nowhere.
    pub progress: Option<&'a dyn Progress>,
}

impl fmt::Debug for PredictOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PredictOptions")
            .field("stats_layout", &self.stats_layout)
            .field("sampler", &self.sampler)
            .field("metric_per_sample", &self.metric_per_sample)
            .field("keep_outputs", &self.keep_outputs)
            .field("progress", &self.progress.map(|_| "..."))
            .finish()
    }
}

impl<'a> PredictOptions<'a> {
    /// Nothing but the metric over the whole dataset.
    pub fn new() -> PredictOptions<'a> {
        PredictOptions::default()
    }

    /// Also collects `layout`.
    pub fn stats(mut self, layout: &'a StatsLayout) -> PredictOptions<'a> {
        self.stats_layout = Some(layout);
        self
    }

    /// Runs the samples of `sampler` only.
    pub fn sampler(mut self, sampler: &'a dyn Sampler) -> PredictOptions<'a> {
        self.sampler = Some(sampler);
        self
    }

    /// Records the metric per sample.
    pub fn per_sample(mut self) -> PredictOptions<'a> {
        self.metric_per_sample = true;
        self
    }

    /// Keeps outputs per sample.
    pub fn keep(mut self, keep: KeepOutputs) -> PredictOptions<'a> {
        self.keep_outputs = keep;
        self
    }

    /// Reports progress to `progress`.
    pub fn progress(mut self, progress: &'a dyn Progress) -> PredictOptions<'a> {
        self.progress = Some(progress);
        self
    }
}

/// The metric's value for one sample (POT's per-sample record).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleMetric {
    /// The sample's index in the loader.
    pub sample_id: usize,
    /// The metric's name.
    pub metric_name: String,
    /// Its value on that sample.
    pub result: f64,
}

/// What [`Engine::predict`] returns.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    /// Metric name -> value over the samples run (empty without a metric).
    pub metrics: BTreeMap<String, f64>,
    /// Per-sample values, in run order (with [`PredictOptions::metric_per_sample`]).
    pub per_sample: Vec<SampleMetric>,
    /// Collected statistics (empty without a layout).
    pub statistics: Statistics,
    /// Kept outputs by sample index, each with a batch axis of 1.
    pub outputs: BTreeMap<usize, TensorMap>,
    /// Samples run.
    pub samples: usize,
    /// Wall-clock seconds of the run.
    pub wall_s: f64,
}

/// Runs models (POT's `Engine`).
pub trait Engine: Send {
    /// Sets (or replaces) the model to run.
    fn set_model(&mut self, model: &CompressedModel) -> Result<(), PipelineError>;

    /// Runs the model as `options` say.
    fn predict(&mut self, options: &PredictOptions<'_>) -> Result<Prediction, PipelineError>;

    /// The data loader the engine was built with.
    fn data_loader(&self) -> &Arc<dyn DataLoader>;

    /// The metric, if any.
    fn metric(&self) -> Option<&dyn Metric>;

    /// The metric, for resetting or reconfiguring it.
    fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)>;

    /// Replaces the metric (e.g. an agreement-with-FP32 metric during accuracy-aware search),
    /// returning the previous one.
    fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>>;

    /// Samples per batch when no sampler is given.
    fn batch_size(&self) -> usize {
        1
    }
}

impl<E: Engine + ?Sized> Engine for Box<E> {
    fn set_model(&mut self, model: &CompressedModel) -> Result<(), PipelineError> {
        (**self).set_model(model)
    }

    fn predict(&mut self, options: &PredictOptions<'_>) -> Result<Prediction, PipelineError> {
        (**self).predict(options)
    }

    fn data_loader(&self) -> &Arc<dyn DataLoader> {
        (**self).data_loader()
    }

    fn metric(&self) -> Option<&dyn Metric> {
        (**self).metric()
    }

    fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)> {
        (**self).metric_mut()
    }

    fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>> {
        (**self).set_metric(metric)
    }

    fn batch_size(&self) -> usize {
        (**self).batch_size()
    }
}

/// What an engine's batch function returns: the model's outputs and, separately, the statistic
/// outputs added for the layout (either may hold a layout tensor; the loop looks in `extra`,
/// then `outputs`, then the batch inputs).
#[derive(Debug, Clone, Default)]
pub struct BatchOutputs {
    /// The model's own outputs, batch on axis 0.
    pub outputs: TensorMap,
    /// Outputs added for statistics.
    pub extra: TensorMap,
}

/// The runtime-independent part of an engine: the data loader, the metric, the batch size, and the
/// predict loop ([`EngineCore::predict_with`]).
pub struct EngineCore {
    loader: Arc<dyn DataLoader>,
    metric: Option<Box<dyn Metric>>,
    batch_size: usize,
}

impl fmt::Debug for EngineCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineCore")
            .field("samples", &self.loader.len())
            .field("metric", &self.metric.as_ref().map(|m| m.name().to_owned()))
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl EngineCore {
    /// A core over `loader` with an optional `metric`; `batch_size` 0 is taken as 1.
    pub fn new(
        loader: Arc<dyn DataLoader>,
        metric: Option<Box<dyn Metric>>,
        batch_size: usize,
    ) -> EngineCore {
        EngineCore {
            loader,
            metric,
            batch_size: batch_size.max(1),
        }
    }

    /// The data loader.
    pub fn data_loader(&self) -> &Arc<dyn DataLoader> {
        &self.loader
    }

    /// The metric.
    pub fn metric(&self) -> Option<&dyn Metric> {
        self.metric.as_deref()
    }

    /// The metric, mutably.
    pub fn metric_mut(&mut self) -> Option<&mut (dyn Metric + 'static)> {
        self.metric.as_deref_mut()
    }

    /// Replaces the metric, returning the previous one.
    pub fn set_metric(&mut self, metric: Option<Box<dyn Metric>>) -> Option<Box<dyn Metric>> {
        std::mem::replace(&mut self.metric, metric)
    }

    /// Samples per batch when no sampler is given.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The predict loop. For each batch of the sampler (default: the whole dataset in batches of
    /// [`batch_size`](Self::batch_size)): load the samples, stack their inputs along axis 0, call
    /// `run(indices, inputs)`, reduce the layout's tensors, then give each sample's outputs to the
    /// metric (resetting it first) and keep the outputs asked for.
    ///
    /// Samples whose inputs differ in shape cannot share a batch ([`PipelineError::Batch`]); with
    /// a batch of one, outputs go to the metric as they are, so models whose outputs have no batch
    /// axis (a detection count) still work.
    pub fn predict_with<F>(
        &mut self,
        options: &PredictOptions<'_>,
        mut run: F,
    ) -> Result<Prediction, PipelineError>
    where
        F: FnMut(&[usize], &TensorMap) -> Result<BatchOutputs, PipelineError>,
    {
        let started = Instant::now();
        let default_sampler;
        let sampler: &dyn Sampler = match options.sampler {
            Some(s) => s,
            None => {
                default_sampler = BatchSampler::for_loader(self.loader.as_ref(), self.batch_size);
                &default_sampler
            }
        };
        let mut collector = options.stats_layout.map(StatsCollector::new).transpose()?;
        if let Some(metric) = self.metric.as_deref_mut() {
            metric.reset();
        }
        let progress: &dyn Progress = options.progress.unwrap_or(&NoProgress);
        let label = if collector.is_some() {
            "collecting statistics"
        } else {
            "inference"
        };
        progress.start(sampler.sample_count() as u64, label);
        let mut prediction = Prediction::default();
        let result = (|| {
            for indices in sampler.batches() {
                self.run_batch(
                    &indices,
                    options,
                    collector.as_mut(),
                    &mut prediction,
                    &mut run,
                )?;
                progress.advance(indices.len() as u64);
            }
            Ok::<(), PipelineError>(())
        })();
        progress.finish();
        result?;
        if let Some(metric) = self.metric.as_deref()
            && let Some(value) = metric.avg_value()
        {
            prediction.metrics.insert(metric.name().to_owned(), value);
        }
        if let Some(collector) = collector {
            prediction.statistics = collector.finish();
        }
        prediction.wall_s = started.elapsed().as_secs_f64();
        Ok(prediction)
    }

    fn run_batch<F>(
        &mut self,
        indices: &[usize],
        options: &PredictOptions<'_>,
        collector: Option<&mut StatsCollector>,
        prediction: &mut Prediction,
        run: &mut F,
    ) -> Result<(), PipelineError>
    where
        F: FnMut(&[usize], &TensorMap) -> Result<BatchOutputs, PipelineError>,
    {
        if indices.is_empty() {
            return Ok(());
        }
        let samples: Vec<Sample> = indices
            .iter()
            .map(|&i| self.loader.get(i))
            .collect::<Result<_, _>>()?;
        let stacked;
        let inputs = match samples.as_slice() {
            [one] => &one.inputs,
            many => {
                let maps: Vec<&TensorMap> = many.iter().map(|s| &s.inputs).collect();
                stacked = TensorMap::concat(&maps).ok_or_else(|| PipelineError::Batch {
                    indices: indices.to_vec(),
                    reason: "their inputs differ in names, types or shapes; use a batch size of 1"
                        .into(),
                })?;
                &stacked
            }
        };
        let batch = run(indices, inputs)?;
        if let Some(collector) = collector {
            collector.update_from(&[&batch.extra, &batch.outputs, inputs])?;
        }
        let wants_outputs = self.metric.is_some() || options.keep_outputs != KeepOutputs::None;
        if !wants_outputs {
            prediction.samples += indices.len();
            return Ok(());
        }
        for (k, (&index, sample)) in indices.iter().zip(&samples).enumerate() {
            let item;
            let outputs = if indices.len() == 1 {
                &batch.outputs
            } else {
                item = split_item(&batch.outputs, k, indices.len())?;
                &item
            };
            if let Some(metric) = self.metric.as_deref_mut() {
                metric.update(
                    SampleRef {
                        index,
                        annotation: &sample.annotation,
                        metadata: sample.metadata.as_ref(),
                    },
                    outputs,
                )?;
                if options.metric_per_sample
                    && let Some(result) = metric.value()
                {
                    prediction.per_sample.push(SampleMetric {
                        sample_id: index,
                        metric_name: metric.name().to_owned(),
                        result,
                    });
                }
            }
            if let Some(kept) = keep(outputs, &options.keep_outputs)? {
                prediction.outputs.insert(index, kept);
            }
        }
        prediction.samples += indices.len();
        Ok(())
    }
}

/// Item `k` of a batch of `n` along axis 0 of every output.
fn split_item(outputs: &TensorMap, k: usize, n: usize) -> Result<TensorMap, PipelineError> {
    for (name, tensor) in outputs.iter() {
        if tensor.shape().first() != Some(&n) {
            return Err(PipelineError::Output {
                name: name.to_owned(),
                reason: format!(
                    "has shape {:?}, not a batch of {n} on axis 0; run with a batch size of 1",
                    tensor.shape()
                ),
            });
        }
    }
    outputs.item(k).ok_or_else(|| PipelineError::Output {
        name: outputs
            .first()
            .map_or_else(String::new, |(n, _)| n.to_owned()),
        reason: format!("has no item {k} on axis 0"),
    })
}

/// The outputs `keep` asks for.
fn keep(outputs: &TensorMap, keep: &KeepOutputs) -> Result<Option<TensorMap>, PipelineError> {
    match keep {
        KeepOutputs::None => Ok(None),
        KeepOutputs::All => Ok(Some(outputs.clone())),
        KeepOutputs::Named(names) => names
            .iter()
            .map(|name| {
                let tensor = outputs.get(name).ok_or_else(|| PipelineError::Output {
                    name: name.clone(),
                    reason: format!(
                        "is not a model output (outputs: {})",
                        outputs.names().collect::<Vec<_>>().join(", ")
                    ),
                })?;
                Ok((name.clone(), tensor.clone()))
            })
            .collect::<Result<TensorMap, PipelineError>>()
            .map(Some),
    }
}

#[cfg(test)]
pub(crate) mod tests;
