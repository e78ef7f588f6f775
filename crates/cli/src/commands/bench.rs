//! `kiln bench MODEL [--batch N] [--dim NAME=SIZE]... [--shape INPUT=DxD..]... [--json]`: one
//! model measured as kiln's peers measure (kiln-engine-ort's [`measure_model`]): size, batch-1
//! latency (median, p10, p90), batch-N throughput, and the operators ONNX Runtime executes after
//! its optimizations — CPU, 2 intra-op threads, 1 inter-op thread, sequential, every graph
//! optimization. Inputs are synthetic; open dimensions need `--dim` or `--shape`.

use anyhow::Context;
use kiln_engine_ort::{InputSpec, MeasureError, MeasureOptions, executed_ops, measure_model};
use serde::Serialize;

use super::measure::{self, ExecutedOpsJson, MeasurementJson, human_bytes};
use super::model::ModelFile;
use crate::cli::{BenchArgs, GlobalArgs};

/// The `--json` document.
#[derive(Debug, Serialize)]
struct BenchReport {
    /// The model.
    model: String,
    /// Inputs with their declared shapes (`null` for an open dimension).
    inputs: Vec<InputJson>,
    /// The measurement (size, latency, throughput).
    #[serde(flatten)]
    measurement: MeasurementJson,
    /// The operators ONNX Runtime executes.
    executed_ops: ExecutedOpsJson,
    /// The session options.
    session: String,
}

#[derive(Debug, Serialize)]
struct InputJson {
    name: String,
    shape: Option<Vec<Option<usize>>>,
}

/// Runs `kiln bench`.
pub fn run(args: &BenchArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let model = ModelFile::open(&args.model)?;
    let spec = args
        .shapes
        .iter()
        .fold(InputSpec::new(), |spec, (name, shape)| {
            spec.shape(name.clone(), shape.clone())
        });
    let spec = args
        .dims
        .iter()
        .fold(spec, |spec, (name, size)| spec.dim(name.clone(), *size));
    let options = MeasureOptions {
        batch: args.batch,
        ..MeasureOptions::default()
    };
    measure::start_runtime(global).context("starting ONNX Runtime")?;
    if !global.json {
        eprintln!(
            "measuring {} ({} timed batch-1 runs, {} at batch {})…",
            args.model.display(),
            options.runs,
            options.batch_runs,
            options.batch
        );
    }
    let measured = measure_model(&args.model, &spec, &options).map_err(|error| {
        let hint = match &error {
            MeasureError::UnresolvedDim { dim, .. } => {
                format!(" (give it with --dim {dim}=SIZE, or the whole shape with --shape)")
            }
            _ => String::new(),
        };
        anyhow::Error::new(error).context(format!("cannot measure {}{hint}", args.model.display()))
    })?;
    let ops = executed_ops(&args.model, &options.session).with_context(|| {
        format!(
            "counting the operators ONNX Runtime runs for {}",
            args.model.display()
        )
    })?;
    let report = BenchReport {
        model: args.model.display().to_string(),
        inputs: model
            .inputs
            .iter()
            .map(|i| InputJson {
                name: i.name.clone(),
                shape: i.shape.clone(),
            })
            .collect(),
        measurement: MeasurementJson::from(&measured),
        executed_ops: ExecutedOpsJson::from(&ops),
        session: format!(
            "{}, intra_op_num_threads {}, inter_op_num_threads {}, sequential, ORT_ENABLE_ALL",
            options.session.execution_provider,
            options.session.intra_threads.unwrap_or(0),
            options.session.inter_threads.unwrap_or(0)
        ),
    };
    if global.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let m = &report.measurement;
        println!("{}", report.model);
        println!("size:        {}", human_bytes(m.size_bytes));
        println!(
            "latency:     {:.2} ms median, {:.2} ms p90 (batch 1, {} runs)",
            m.latency_ms, m.latency_p90_ms, m.runs
        );
        println!(
            "throughput:  {:.1} samples/s (batch {})",
            m.throughput_fps, m.batch
        );
        println!("kernels:     {}", report.executed_ops.summary());
        let mut ops: Vec<(&String, &usize)> = report.executed_ops.ops.iter().collect();
        ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = ops
            .iter()
            .take(8)
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        println!(
            "operators:   {} nodes: {}",
            report.executed_ops.total,
            top.join(", ")
        );
        println!("session:     {}", report.session);
    }
    Ok(())
}
