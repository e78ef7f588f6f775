//! The quantization algorithms: `DefaultQuantization` and `AccuracyAwareQuantization` (POT's
//! names), producing standard ONNX QDQ models that ONNX Runtime runs with integer kernels.
//!
//! | module | what |
//! |---|---|
//! | [`activations`] | dead zones, floors and inverses of activations; derived ranges |
//! | [`bias`] | bias correction: each layer's own mean output shift, measured on FP32 inputs |
//! | [`compare`] | FP32 and INT8 side by side in one graph, differences reduced in place |
//! | [`qparams`] | U8 activations, S8 per-channel weights, INT32 biases |
//! | [`placement`] | where Q/DQ goes: graph-aware rules, shared scales, what stays float |
//! | [`rewrite`] | applying a placement; integer lowering of `HardSwish`/`HardSigmoid` |
//! | [`default`] | `DefaultQuantization`: prepare, calibrate once (streaming), place, rewrite |
//! | [`accuracy_aware`] | `AccuracyAwareQuantization`: rank layers by added error, revert one at a time |
//!
//! [`build`] is the hook `create_pipeline` calls for built-in algorithm names, with parameters
//! already parsed and checked.

pub mod accuracy_aware;
pub mod activations;
pub mod bias;
pub mod compare;
pub mod default;
pub mod placement;
pub mod qparams;
pub mod rewrite;
#[cfg(test)]
mod test_graph;

pub use accuracy_aware::{AccuracyAwareQuantization, SearchReport};
pub use default::{DefaultQuantization, Quantized};
pub use placement::{OpClass, PlacementOptions, Plan};

use crate::config::AlgorithmParams;
use crate::error::PipelineError;
use crate::pipeline::Algorithm;

/// Builds the built-in algorithm its parsed parameters name.
pub fn build(params: AlgorithmParams) -> Result<Box<dyn Algorithm>, PipelineError> {
    match params {
        AlgorithmParams::DefaultQuantization(params) => {
            Ok(Box::new(DefaultQuantization::new(params)))
        }
        AlgorithmParams::AccuracyAwareQuantization(params) => {
            Ok(Box::new(AccuracyAwareQuantization::new(params)))
        }
    }
}
