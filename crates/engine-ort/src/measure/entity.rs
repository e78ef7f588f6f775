//! [`fill_quantized_entity`] and [`fill_measured_entity`]: what a quantization run tells the model entity (OTX's fields for an
//! optimized model) — precision, optimization type and methods, size reduction, speedups, latency,
//! throughput, lineage and the metric.

use kiln_entities::{
    ModelEntity, ModelOptimizationType, ModelPrecision, OptimizationMethod, Performance,
    TargetDevice,
};

use super::{Comparison, Measurement};
use crate::session::ExecutionProvider;

/// A task metric measured on both models (`top1`: 0.93 FP32, 0.92 INT8).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricComparison {
    /// The metric's name, as the pipeline's metric reports it.
    pub name: String,
    /// Its value on the FP32 model.
    pub fp32: f64,
    /// Its value on the INT8 model.
    pub int8: f64,
}

impl MetricComparison {
    /// A metric called `name` with its FP32 and INT8 values.
    pub fn new(name: impl Into<String>, fp32: f64, int8: f64) -> MetricComparison {
        MetricComparison {
            name: name.into(),
            fp32,
            int8,
        }
    }
}

/// Records in `entity` (the INT8 model) what its quantization from `parent` (the FP32 model) gave:
///
/// | field | value |
/// |---|---|
/// | `precision` | `[Int8]` |
/// | `optimization_type` | `Pot` (kiln implements POT's algorithms) |
/// | `optimization_methods` | `[Quantization]` |
/// | `model_size_reduction` | the share of the FP32 size saved, `1 - int8_bytes / fp32_bytes` ([`Comparison::size_reduction`]): OTX's "reduction in model size by optimizing", as a ratio, so 0 (its default) means no reduction |
/// | `performance_improvement` | `{"latency": FP32/INT8 latency, "throughput": INT8/FP32 throughput}` (above 1: faster) |
/// | `latency` | INT8 batch-1 median, whole milliseconds (the field is an integer), at least 1 once measured (0 means "not measured") |
/// | `fps_throughput` | INT8 throughput, whole samples per second, at least 1 once measured |
/// | `target_device` | `Cpu`, or `Gpu` for a CUDA measurement |
/// | `previous_revision` | `parent.id` |
/// | `train_dataset` | the parent's, when `entity` has none |
/// | `performance` | with `metric`: score = the INT8 value under the metric's name, plus `fp32_<name>` = the FP32 value |
///
/// Other fields are left as they are.
pub fn fill_quantized_entity(
    entity: &mut ModelEntity,
    parent: &ModelEntity,
    comparison: &Comparison,
    metric: Option<&MetricComparison>,
) {
    entity.precision = vec![ModelPrecision::Int8];
    entity.optimization_type = ModelOptimizationType::Pot;
    entity.optimization_methods = vec![OptimizationMethod::Quantization];
    entity.model_size_reduction = comparison.size_reduction();
    entity
        .performance_improvement
        .insert("latency".to_owned(), comparison.latency_speedup);
    entity
        .performance_improvement
        .insert("throughput".to_owned(), comparison.throughput_speedup);
    fill_measured_entity(entity, &comparison.int8);
    entity.previous_revision = Some(parent.id);
    if entity.train_dataset.is_none() {
        entity.train_dataset = parent.train_dataset.clone();
    }
    if let Some(metric) = metric {
        entity.performance = Some(
            Performance::new(metric.name.clone(), metric.int8)
                .with_metric(format!("fp32_{}", metric.name), metric.fp32),
        );
    }
}

/// Records a model's own measurement in its entity: `latency` (batch-1 median) and
/// `fps_throughput` in whole units, at least 1 once measured (0 means "not measured"), and
/// `target_device` (`Cpu`, or `Gpu` for a CUDA measurement).
pub fn fill_measured_entity(entity: &mut ModelEntity, measured: &Measurement) {
    entity.latency = whole(measured.latency_ms);
    entity.fps_throughput = whole(measured.throughput_fps);
    entity.target_device = match measured.execution_provider {
        ExecutionProvider::Cpu => TargetDevice::Cpu,
        ExecutionProvider::Cuda { .. } => TargetDevice::Gpu,
    };
}

/// A measured quantity as the entity's integer fields keep it: rounded, at least 1 when positive
/// (0 is "not measured"), 0 when not finite or not positive.
fn whole(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        (value.round() as u64).max(1)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_keeps_measured_values_nonzero() {
        assert_eq!(whole(0.3), 1);
        assert_eq!(whole(2.5), 3);
        assert_eq!(whole(41.2), 41);
        assert_eq!(whole(0.0), 0);
        assert_eq!(whole(f64::NAN), 0);
        assert_eq!(whole(f64::INFINITY), 0);
    }
}
