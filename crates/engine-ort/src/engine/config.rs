//! [`OrtEngineConfig`]: how an [`OrtEngine`](super::OrtEngine) builds its sessions, batches its
//! samples, finds ONNX Runtime and reports progress.

use crate::runtime::RuntimeOptions;
use crate::session::SessionOptions;

/// Whether an engine draws a progress bar when [`PredictOptions::progress`] is not given.
///
/// [`PredictOptions::progress`]: kiln_pipeline::PredictOptions::progress
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// A bar on stderr ([`IndicatifProgress`](super::IndicatifProgress)): position and length,
    /// rate, ETA and what runs. Hidden anyway when stderr is not a terminal.
    Bar,
    /// Nothing (the default; `--json` and `--quiet` runs).
    #[default]
    Hidden,
}

/// How an [`OrtEngine`](super::OrtEngine) runs.
#[derive(Debug, Clone)]
pub struct OrtEngineConfig {
    /// Session options for every session the engine builds: threads, graph optimization level,
    /// execution provider (an unavailable provider is an error at
    /// [`OrtEngine::new`](super::OrtEngine::new), never a CPU fallback).
    pub session: SessionOptions,
    /// Samples per batch when no sampler is given (0 is taken as 1). A model whose batch dimension
    /// is fixed to 1 runs one sample at a time whatever this says.
    pub batch_size: usize,
    /// Where to find ONNX Runtime if the process has not started it yet ([`crate::runtime::init`]).
    pub runtime: RuntimeOptions,
    /// Progress reporting when the caller gives none.
    pub progress: ProgressMode,
}

impl Default for OrtEngineConfig {
    /// Default session options, batches of 1, runtime discovery from the environment, no progress
    /// bar.
    fn default() -> OrtEngineConfig {
        OrtEngineConfig {
            session: SessionOptions::default(),
            batch_size: 1,
            runtime: RuntimeOptions::default(),
            progress: ProgressMode::Hidden,
        }
    }
}

impl OrtEngineConfig {
    /// The default configuration with batches of `batch_size`.
    pub fn with_batch_size(batch_size: usize) -> OrtEngineConfig {
        OrtEngineConfig {
            batch_size,
            ..OrtEngineConfig::default()
        }
    }

    /// Replaces the session options.
    pub fn session(mut self, session: SessionOptions) -> OrtEngineConfig {
        self.session = session;
        self
    }

    /// Replaces the progress mode.
    pub fn progress(mut self, progress: ProgressMode) -> OrtEngineConfig {
        self.progress = progress;
        self
    }
}
