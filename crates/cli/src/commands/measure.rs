//! Measurement shared by `kiln quantize` and `kiln bench`: starting ONNX Runtime as the global
//! flags say, and the wire forms (JSON) of kiln-engine-ort's measurements and executed-operator
//! counts, with their human renderings.

use std::collections::BTreeMap;

use kiln_engine_ort::runtime::{self, Runtime, RuntimeOptions};
use kiln_engine_ort::{ExecutedOps, Measurement, OptimizationLevel};
use serde::Serialize;

use crate::cli::GlobalArgs;

/// The runtime options the global flags ask for (`--ort-lib`).
pub fn runtime_options(global: &GlobalArgs) -> RuntimeOptions {
    RuntimeOptions {
        library_path: global.ort_lib.clone(),
        ..RuntimeOptions::default()
    }
}

/// Starts ONNX Runtime (once per process) as the global flags say.
pub fn start_runtime(
    global: &GlobalArgs,
) -> Result<&'static Runtime, kiln_engine_ort::EngineError> {
    runtime::init(&runtime_options(global))
}

/// One model's measurement (the peers' method: median of batch-1 runs, batch-B throughput).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeasurementJson {
    /// The model file's size (plus external data), bytes.
    pub size_bytes: u64,
    /// Median batch-1 latency, ms.
    pub latency_ms: f64,
    /// 10th percentile of the batch-1 runs, ms.
    pub latency_p10_ms: f64,
    /// 90th percentile of the batch-1 runs, ms.
    pub latency_p90_ms: f64,
    /// Timed batch-1 runs.
    pub runs: usize,
    /// The throughput batch.
    pub batch: usize,
    /// Median batch-B run, ms.
    pub batch_latency_ms: f64,
    /// Samples per second at batch B.
    pub throughput_fps: f64,
    /// Timed batch-B runs.
    pub batch_runs: usize,
    /// Where it ran (`CPU`).
    pub execution_provider: String,
}

impl From<&Measurement> for MeasurementJson {
    fn from(m: &Measurement) -> MeasurementJson {
        MeasurementJson {
            size_bytes: m.size_bytes,
            latency_ms: m.latency_ms,
            latency_p10_ms: m.latency_p10_ms,
            latency_p90_ms: m.latency_p90_ms,
            runs: m.runs,
            batch: m.batch,
            batch_latency_ms: m.batch_latency_ms,
            throughput_fps: m.throughput_fps,
            batch_runs: m.batch_runs,
            execution_provider: m.execution_provider.to_string(),
        }
    }
}

/// The operators ONNX Runtime executes for a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutedOpsJson {
    /// The optimization level of the counted graph (`all`, or `extended` as a fallback).
    pub optimization_level: &'static str,
    /// Convolutions in integer kernels (`QLinearConv`, `ConvInteger`).
    pub integer_convs: usize,
    /// Convolutions still in float (`Conv`, `FusedConv`, ...).
    pub float_convs: usize,
    /// Integer kernels by type (`QLinearConv`, `QLinearAdd`, ...).
    pub integer_kernels: BTreeMap<String, usize>,
    /// `QuantizeLinear` / `DequantizeLinear` nodes left unfused.
    pub remaining_qdq: usize,
    /// Every node.
    pub total: usize,
    /// Node count by operator type.
    pub ops: BTreeMap<String, usize>,
}

impl From<&ExecutedOps> for ExecutedOpsJson {
    fn from(ops: &ExecutedOps) -> ExecutedOpsJson {
        ExecutedOpsJson {
            optimization_level: match ops.optimization_level {
                OptimizationLevel::Disable => "disable",
                OptimizationLevel::Basic => "basic",
                OptimizationLevel::Extended => "extended",
                OptimizationLevel::All => "all",
            },
            integer_convs: ops.integer_convs(),
            float_convs: ops.float_convs(),
            integer_kernels: ops
                .integer_kernels()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            remaining_qdq: ops.remaining_qdq(),
            total: ops.total(),
            ops: ops.ops.clone(),
        }
    }
}

impl ExecutedOpsJson {
    /// `57 QLinearConv, 3 QLinearAdd; 7 convs in float`.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .integer_kernels
            .iter()
            .map(|(op, n)| format!("{n} {op}"))
            .collect();
        if parts.is_empty() {
            parts.push("no integer kernels".into());
        }
        let mut text = parts.join(", ");
        text.push_str(&format!("; {} convs in float", self.float_convs));
        if self.remaining_qdq > 0 {
            text.push_str(&format!(", {} Q/DQ left unfused", self.remaining_qdq));
        }
        text
    }
}

/// `12.3 MiB`, `456 KiB`, `789 B`.
pub fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.2} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(789), "789 B");
        assert_eq!(human_bytes(2048), "2.0 KiB");
        assert_eq!(human_bytes(12_582_912), "12.00 MiB");
        assert_eq!(human_bytes(3 << 30), "3.00 GiB");
    }

    #[test]
    fn op_summaries_name_kernels_and_float_convs() {
        let ops = ExecutedOpsJson {
            optimization_level: "all",
            integer_convs: 2,
            float_convs: 1,
            integer_kernels: [("QLinearConv".to_owned(), 2)].into_iter().collect(),
            remaining_qdq: 0,
            total: 5,
            ops: BTreeMap::new(),
        };
        assert_eq!(ops.summary(), "2 QLinearConv; 1 convs in float");
    }
}
