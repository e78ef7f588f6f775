//! The quantization algorithms: `DefaultQuantization` and `AccuracyAwareQuantization` (POT's
//! names), producing standard ONNX QDQ models that ONNX Runtime runs with integer kernels.
//!
//! | module | what |
//! |---|---|
//! | [`qparams`] | U8 activations, S8 per-channel weights, INT32 biases |
//! | [`placement`] | where Q/DQ goes: graph-aware rules, shared scales, what stays float |
//! | [`rewrite`] | applying a placement; integer lowering of `HardSwish`/`HardSigmoid` |
//! | [`default`] | `DefaultQuantization`: prepare, calibrate once (streaming), place, rewrite |
//!
//! [`build`] is the hook `create_pipeline` calls for built-in algorithm names, with parameters
//! already parsed and checked.

pub mod default;
pub mod placement;
pub mod qparams;
pub mod rewrite;

pub use default::{DefaultQuantization, Quantized};
pub use placement::{OpClass, PlacementOptions, Plan};

use crate::config::AlgorithmParams;
use crate::error::PipelineError;
use crate::pipeline::Algorithm;

/// Builds the built-in algorithm `name` from its parsed parameters.
pub fn build(name: &str, params: AlgorithmParams) -> Result<Box<dyn Algorithm>, PipelineError> {
    match params {
        AlgorithmParams::DefaultQuantization(params) => {
            Ok(Box::new(DefaultQuantization::new(params)))
        }
        AlgorithmParams::AccuracyAwareQuantization(_) => Err(PipelineError::NotImplemented {
            algorithm: name.to_owned(),
        }),
    }
}
