//! The report of `kiln quantize`: one JSON document (stdout with `--json`, the `--report` file)
//! and its human form, a compact FP32-vs-INT8 table.
//!
//! # Schema
//!
//! ```text
//! model, out                  the FP32 input and the INT8 output paths
//! metric_name, metric_output  the metric (top1, map50, top1_agreement, cosine) and the output it reads
//! fp32, int8                  {size_bytes, latency_ms, latency_p90_ms, throughput_fps, throughput_batch, metric}
//! speedup                     {latency: FP32/INT8 median batch-1 latency, throughput: INT8/FP32 throughput}
//! size_reduction              1 - int8_bytes / fp32_bytes
//! calibration                 {samples, batch, wall_s, fp32_inference_s, time_ratio, peak_rss_bytes, peak_rss_reset}
//! evaluation                  {data, samples, fp32_s, int8_s}
//! reverted                    node names AccuracyAwareQuantization returned to float ([] otherwise)
//! executed_ops                {fp32, int8}: what ONNX Runtime runs (integer_convs, float_convs, integer_kernels, ops, ...)
//! measurement                 {fp32, int8}: the full measurements (p10/p90, runs, batch runs) and the session options
//! algorithm                   {name, config (POT's JSON), report (kiln-pipeline's PipelineReport)}
//! data                        {calibration, evaluation (loader, samples, labels), preprocess {origin, spec}}
//! entity                      the INT8 ModelEntity (precision, optimization, size reduction, speedups, metric)
//! notes                       what kiln chose for you (derived preprocessing, default metric, ...)
//! ```

use kiln_entities::ModelEntity;
use kiln_pipeline::{PipelineReport, Preprocess};
use serde::Serialize;
use serde_json::Value;

use super::data::DataInfo;
use crate::commands::measure::{ExecutedOpsJson, MeasurementJson, human_bytes};

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    /// The FP32 model.
    pub model: String,
    /// Where the INT8 model was written.
    pub out: String,
    /// The metric's name.
    pub metric_name: String,
    /// The output it reads.
    pub metric_output: String,
    /// The FP32 model.
    pub fp32: Side,
    /// The INT8 model.
    pub int8: Side,
    /// INT8 against FP32 (above 1: faster).
    pub speedup: Speedup,
    /// `1 - int8 size / fp32 size`.
    pub size_reduction: f64,
    /// The quantization run.
    pub calibration: Calibration,
    /// The metric's runs.
    pub evaluation: Evaluation,
    /// Nodes returned to float by the accuracy-aware search.
    pub reverted: Vec<String>,
    /// Operators ONNX Runtime executes.
    pub executed_ops: Pair<ExecutedOpsJson>,
    /// The full measurements.
    pub measurement: Measurements,
    /// The algorithm: configuration and report.
    pub algorithm: AlgorithmSection,
    /// The data and preprocessing.
    pub data: DataSection,
    /// The INT8 model entity.
    pub entity: ModelEntity,
    /// The registry ids, with `--register`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered: Option<super::register::Registered>,
    /// What kiln chose for the user.
    pub notes: Vec<String>,
}

/// One model's headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// File size, bytes.
    pub size_bytes: u64,
    /// Median batch-1 latency, ms.
    pub latency_ms: f64,
    /// 90th percentile batch-1 latency, ms.
    pub latency_p90_ms: f64,
    /// Samples per second at `throughput_batch`.
    pub throughput_fps: f64,
    /// The throughput batch.
    pub throughput_batch: usize,
    /// The metric on the evaluation data (`null` when undefined, e.g. mAP without any FP32
    /// detection).
    pub metric: Option<f64>,
}

impl Side {
    /// From a measurement and a metric value.
    pub fn new(m: &MeasurementJson, metric: Option<f64>) -> Side {
        Side {
            size_bytes: m.size_bytes,
            latency_ms: m.latency_ms,
            latency_p90_ms: m.latency_p90_ms,
            throughput_fps: m.throughput_fps,
            throughput_batch: m.batch,
            metric,
        }
    }
}

/// Speed ratios (above 1: INT8 is faster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Speedup {
    /// FP32 latency / INT8 latency.
    pub latency: f64,
    /// INT8 throughput / FP32 throughput.
    pub throughput: f64,
}

/// The quantization run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Calibration samples.
    pub samples: usize,
    /// Samples per calibration batch.
    pub batch: usize,
    /// Wall time of the whole quantization pipeline, s.
    pub wall_s: f64,
    /// Plain FP32 inference over the same samples in the same batches, s.
    pub fp32_inference_s: f64,
    /// `wall_s / fp32_inference_s`.
    pub time_ratio: f64,
    /// Peak RSS of the process during quantization, bytes (`null` where unknown).
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak was reset before quantization (else it covers the whole process).
    pub peak_rss_reset: bool,
}

/// The metric's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// The evaluation data.
    pub data: String,
    /// Samples.
    pub samples: usize,
    /// FP32 pass, s.
    pub fp32_s: f64,
    /// INT8 pass, s.
    pub int8_s: f64,
}

/// An FP32/INT8 pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair<T> {
    /// The FP32 model's.
    pub fp32: T,
    /// The INT8 model's.
    pub int8: T,
}

/// The full measurements and how they were taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurements {
    /// The FP32 model's.
    pub fp32: MeasurementJson,
    /// The INT8 model's.
    pub int8: MeasurementJson,
    /// The session options (the peers').
    pub session: String,
}

/// The algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct AlgorithmSection {
    /// `DefaultQuantization` or `AccuracyAwareQuantization`.
    pub name: String,
    /// POT's configuration as given to `create_pipeline`.
    pub config: Value,
    /// What the pipeline reported.
    pub report: PipelineReport,
}

/// The data.
#[derive(Debug, Clone, Serialize)]
pub struct DataSection {
    /// Calibration data.
    pub calibration: DataInfo,
    /// Evaluation data.
    pub evaluation: DataInfo,
    /// The image/CSV preprocessing, when data needed one.
    pub preprocess: Option<PreprocessSection>,
}

/// A preprocessing spec and its origin.
#[derive(Debug, Clone, Serialize)]
pub struct PreprocessSection {
    /// `preset yolov8`, `file spec.json`, `derived from input ...`.
    pub origin: String,
    /// The spec.
    pub spec: Preprocess,
}

/// Node names returned to float, read from the AccuracyAwareQuantization report's
/// `details.reverted`: a list of names, or of objects with a `name` (or `node`) field.
pub fn reverted_nodes(report: &PipelineReport) -> Vec<String> {
    report
        .algorithms
        .iter()
        .filter(|a| a.name == "AccuracyAwareQuantization")
        .filter_map(|a| a.details.get("reverted")?.as_array())
        .flatten()
        .filter_map(|v| match v {
            Value::String(name) => Some(name.clone()),
            Value::Object(map) => map
                .get("name")
                .or_else(|| map.get("node"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The human form: a table, then calibration, kernels and where things were written.
pub fn render(report: &QuantizeReport, report_path: Option<&str>) -> String {
    let metric = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.4}"));
    let (f, i) = (&report.fp32, &report.int8);
    let metric_change = match (f.metric, i.metric) {
        (Some(a), Some(b)) => format!("{:+.4}", b - a),
        _ => String::new(),
    };
    let rows = [
        ("", "FP32".to_owned(), "INT8".to_owned(), String::new()),
        (
            "size",
            human_bytes(f.size_bytes),
            human_bytes(i.size_bytes),
            format!("-{:.0}%", report.size_reduction * 100.0),
        ),
        (
            "latency (b1, median)",
            format!("{:.2} ms", f.latency_ms),
            format!("{:.2} ms", i.latency_ms),
            format!("{:.2}x", report.speedup.latency),
        ),
        (
            &format!("throughput (b{})", i.throughput_batch),
            format!("{:.1} /s", f.throughput_fps),
            format!("{:.1} /s", i.throughput_fps),
            format!("{:.2}x", report.speedup.throughput),
        ),
        (
            &report.metric_name,
            metric(f.metric),
            metric(i.metric),
            metric_change,
        ),
    ];
    let mut text = String::new();
    for (label, a, b, c) in rows {
        let line = format!("{label:<22} {a:>12} {b:>12} {c:>10}");
        text.push_str(line.trim_end());
        text.push('\n');
    }
    let c = &report.calibration;
    let memory = c
        .peak_rss_bytes
        .map_or_else(|| "unknown".to_owned(), human_bytes);
    text.push_str(&format!(
        "calibration: {} samples in {:.1} s (FP32 inference on them: {:.1} s, {:.1}x); peak RSS {memory}\n",
        c.samples, c.wall_s, c.fp32_inference_s, c.time_ratio
    ));
    text.push_str(&format!(
        "{}: {}\n",
        report.algorithm.name,
        if report.reverted.is_empty() {
            "no layer returned to float".to_owned()
        } else {
            format!(
                "{} layer(s) returned to float ({})",
                report.reverted.len(),
                report.reverted.join(", ")
            )
        }
    ));
    text.push_str(&format!(
        "INT8 kernels run: {}\n",
        report.executed_ops.int8.summary()
    ));
    text.push_str(&format!("INT8 model written to {}\n", report.out));
    if let Some(r) = &report.registered {
        text.push_str(&format!(
            "registered in project {:?}: FP32 {} ({}), INT8 {} (child of the FP32 model)\n",
            r.project,
            r.fp32,
            if r.fp32_new {
                "new"
            } else {
                "found by its sha256"
            },
            r.int8
        ));
    }
    if let Some(path) = report_path {
        text.push_str(&format!("report written to {path}\n"));
    }
    text
}
