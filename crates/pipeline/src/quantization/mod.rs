//! The quantization algorithms (`DefaultQuantization`, `AccuracyAwareQuantization`): a stub that
//! the real implementations replace. [`build`] is the hook `create_pipeline` calls for built-in
//! algorithm names, with parameters already parsed and checked.

use crate::config::AlgorithmParams;
use crate::error::PipelineError;
use crate::pipeline::Algorithm;

/// Builds the built-in algorithm `name` from its parsed parameters.
pub fn build(name: &str, params: AlgorithmParams) -> Result<Box<dyn Algorithm>, PipelineError> {
    let _ = params;
    Err(PipelineError::NotImplemented {
        algorithm: name.to_owned(),
    })
}
