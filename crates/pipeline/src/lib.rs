//! kiln-pipeline: post-training INT8 quantization, runtime-agnostic.
//!
//! The OpenVINO Post-training Optimization Tool's contracts as Rust traits — [`DataLoader`],
//! [`Metric`], `Engine`, `Pipeline` — with streaming statistics, the quantization algorithms, and
//! ready loaders and metrics.
//!
//! Architecture invariant: this crate never names an inference runtime. Engines (kiln-engine-ort)
//! implement its `Engine` trait; models are kiln-onnx protos.

pub mod data;
pub mod metric;
pub mod tensor;

pub use data::{Annotation, DataError, DataLoader, LabeledBox, Sample, SampleMetadata};
pub use metric::{Direction, Metric, MetricAttributes, MetricError, SampleRef};
pub use tensor::{Tensor, TensorMap};
