//! Integration tests of kiln-onnx, one binary: real models (fetched through kiln-assets), model
//! IO, external data, summaries and robustness against files that are not models.

mod common;
mod external_data;
mod model_io;
mod robustness;
mod summary;
