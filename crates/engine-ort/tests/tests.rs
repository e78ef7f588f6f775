//! Integration tests of kiln-engine-ort against the real ONNX Runtime library and real models (one
//! test binary; modules inside).

mod common;
mod engine;
mod engine_memory;
mod measure;
mod runtime;
mod sessions;
mod threads;
