//! The optimization pipeline (POT's `Pipeline` and `create_pipeline`): algorithms applied to a
//! model in order, each using the engine to run it.
//!
//! [`create_pipeline`] reads POT's algorithm list (see [`config`](crate::config)), checks every
//! entry's parameters before building anything, then builds each algorithm through an
//! [`AlgorithmRegistry`]: built-in names go to `crate::quantization::build` with typed
//! [`AlgorithmParams`]; names registered with [`AlgorithmRegistry::register`] go to their factory
//! with the raw `params`.

#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ALGORITHMS, AlgorithmParams, AlgorithmSpec, parse_algorithms};
use crate::engine::Engine;
use crate::error::PipelineError;
use crate::model::CompressedModel;

/// An optimization algorithm (`DefaultQuantization`, `AccuracyAwareQuantization`, or one of
/// yours).
pub trait Algorithm: Send {
    /// The algorithm's name.
    fn name(&self) -> &str;

    /// Optimizes `model`, running it on `engine` as needed (setting the engine's model is the
    /// algorithm's job). Returns the new model and a report.
    fn run(
        &mut self,
        model: CompressedModel,
        engine: &mut dyn Engine,
    ) -> Result<(CompressedModel, AlgorithmReport), PipelineError>;
}

/// What an algorithm did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlgorithmReport {
    /// The algorithm.
    pub name: String,
    /// Wall-clock seconds (set by the pipeline).
    pub wall_s: f64,
    /// Metric values the algorithm measured (`fp32/top1`, `int8/top1`, ...).
    pub metrics: BTreeMap<String, f64>,
    /// Algorithm-specific details (quantized and reverted nodes, ranges, ...).
    pub details: Value,
}

impl AlgorithmReport {
    /// An empty report for `name`.
    pub fn new(name: impl Into<String>) -> AlgorithmReport {
        AlgorithmReport {
            name: name.into(),
            ..AlgorithmReport::default()
        }
    }
}

/// What a pipeline run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineReport {
    /// One report per algorithm, in order.
    pub algorithms: Vec<AlgorithmReport>,
    /// Wall-clock seconds of the whole run.
    pub wall_s: f64,
}

/// Builds a custom algorithm from its raw `params`.
pub type AlgorithmFactory = fn(&Value) -> Result<Box<dyn Algorithm>, PipelineError>;

/// Algorithm names and how to build them: the built-ins ([`ALGORITHMS`]) plus registered ones.
#[derive(Clone, Default)]
pub struct AlgorithmRegistry {
    custom: Vec<(&'static str, AlgorithmFactory)>,
}

impl fmt::Debug for AlgorithmRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlgorithmRegistry")
            .field("names", &self.names())
            .finish()
    }
}

impl AlgorithmRegistry {
    /// The built-in algorithms only.
    pub fn new() -> AlgorithmRegistry {
        AlgorithmRegistry::default()
    }

    /// Adds (or replaces, built-ins included) the algorithm `name`.
    pub fn register(&mut self, name: &'static str, factory: AlgorithmFactory) -> &mut Self {
        self.custom.retain(|(n, _)| *n != name);
        self.custom.push((name, factory));
        self
    }

    /// Every name accepted: built-ins, then registered ones.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = ALGORITHMS.to_vec();
        for (name, _) in &self.custom {
            if !names.contains(name) {
                names.push(name);
            }
        }
        names
    }

    fn factory(&self, name: &str) -> Option<AlgorithmFactory> {
        self.custom
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, f)| f)
    }

    /// Checks an entry's name and (for built-ins) parameters without building anything.
    pub fn check(&self, spec: &AlgorithmSpec) -> Result<Option<AlgorithmParams>, PipelineError> {
        if self.factory(&spec.name).is_some() {
            return Ok(None);
        }
        if !ALGORITHMS.contains(&spec.name.as_str()) {
            return Err(PipelineError::UnknownAlgorithm {
                name: spec.name.clone(),
                accepted: self.names(),
            });
        }
        AlgorithmParams::parse(&spec.name, &spec.params).map(Some)
    }

    /// Builds the algorithm of one entry.
    pub fn build(&self, spec: &AlgorithmSpec) -> Result<Box<dyn Algorithm>, PipelineError> {
        if let Some(factory) = self.factory(&spec.name) {
            return factory(&spec.params);
        }
        match self.check(spec)? {
            Some(params) => crate::quantization::build(params),
            None => Err(PipelineError::UnknownAlgorithm {
                name: spec.name.clone(),
                accepted: self.names(),
            }),
        }
    }

    /// A pipeline of the algorithms of `algo_config` (POT's list) on `engine`. Every entry is
    /// checked before any algorithm is built.
    pub fn create_pipeline<E: Engine>(
        &self,
        algo_config: &Value,
        engine: E,
    ) -> Result<Pipeline<E>, PipelineError> {
        let specs = parse_algorithms(algo_config)?;
        for spec in &specs {
            self.check(spec)?;
        }
        let algorithms = specs
            .iter()
            .map(|spec| self.build(spec))
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { engine, algorithms })
    }
}

/// POT's `create_pipeline`: the algorithms of `algo_config` (`[{"name": ..., "params": {...}}]`)
/// with the built-in registry.
pub fn create_pipeline<E: Engine>(
    algo_config: &Value,
    engine: E,
) -> Result<Pipeline<E>, PipelineError> {
    AlgorithmRegistry::new().create_pipeline(algo_config, engine)
}

/// [`create_pipeline`] from JSON text.
pub fn create_pipeline_from_str<E: Engine>(
    algo_config: &str,
    engine: E,
) -> Result<Pipeline<E>, PipelineError> {
    let value: Value = serde_json::from_str(algo_config).map_err(|e| PipelineError::Config {
        field: "algorithms".into(),
        reason: format!("not valid JSON: {e}"),
    })?;
    create_pipeline(&value, engine)
}

/// Algorithms and the engine they run on (POT's `Pipeline`).
pub struct Pipeline<E> {
    engine: E,
    algorithms: Vec<Box<dyn Algorithm>>,
}

impl<E: fmt::Debug> fmt::Debug for Pipeline<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("engine", &self.engine)
            .field(
                "algorithms",
                &self.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<E: Engine> Pipeline<E> {
    /// A pipeline without algorithms.
    pub fn new(engine: E) -> Pipeline<E> {
        Pipeline {
            engine,
            algorithms: Vec::new(),
        }
    }

    /// Appends an algorithm.
    pub fn push(&mut self, algorithm: Box<dyn Algorithm>) -> &mut Self {
        self.algorithms.push(algorithm);
        self
    }

    /// Names of the algorithms, in order.
    pub fn algorithm_names(&self) -> Vec<&str> {
        self.algorithms.iter().map(|a| a.name()).collect()
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The engine, mutably (to measure the result, for instance).
    pub fn engine_mut(&mut self) -> &mut E {
        &mut self.engine
    }

    /// The engine, giving up the pipeline.
    pub fn into_engine(self) -> E {
        self.engine
    }

    /// Applies every algorithm in order, each to the previous one's model; stops at the first
    /// error.
    pub fn run(
        &mut self,
        model: CompressedModel,
    ) -> Result<(CompressedModel, PipelineReport), PipelineError> {
        let started = Instant::now();
        let mut model = model;
        let mut reports = Vec::with_capacity(self.algorithms.len());
        for algorithm in &mut self.algorithms {
            let span = tracing::info_span!("algorithm", name = algorithm.name());
            let _entered = span.enter();
            let t = Instant::now();
            let (next, mut report) = algorithm.run(model, &mut self.engine)?;
            report.wall_s = t.elapsed().as_secs_f64();
            if report.name.is_empty() {
                report.name = algorithm.name().to_owned();
            }
            tracing::info!(wall_s = report.wall_s, "algorithm done");
            model = next;
            reports.push(report);
        }
        Ok((
            model,
            PipelineReport {
                algorithms: reports,
                wall_s: started.elapsed().as_secs_f64(),
            },
        ))
    }
}

#[cfg(test)]
mod tests;
