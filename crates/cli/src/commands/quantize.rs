//! `kiln quantize MODEL --data PATH [...]`: quantizes an FP32 ONNX model to INT8 with
//! kiln-pipeline's POT algorithms on ONNX Runtime, then measures both models as the peers do.
//!
//! # Steps
//!
//! 1. **Arguments and files, before any work**: `--max-drop` in `[0, 1]`; the algorithm
//!    configuration (POT's JSON) parsed, so an invalid `--ignore` pattern fails here; the model
//!    decoded; `--out`/`--report` writable and not the model; the data opened ([`data`]: loader
//!    chosen by content, every image header read, the first sample checked against the model
//!    inputs); the preprocessing checked against the model input ([`preprocess`]); the metric
//!    checked against the output and the labels ([`metric`]).
//! 2. **The pipeline** is built (`create_pipeline`) on an [`OrtEngine`] over the calibration data:
//!    `DefaultQuantization`, or `AccuracyAwareQuantization` with `--max-drop`.
//! 3. **FP32 on the evaluation data**, keeping the outputs reference-based metrics compare with
//!    (or computing `top1` directly).
//! 4. **Quantization**, its peak RSS measured ([`memory`]); then plain FP32 inference over the same
//!    calibration samples in the same batches, for the time ratio.
//! 5. The INT8 model is **saved atomically** (kiln-onnx writes a temporary file and renames it).
//! 6. **INT8 on the evaluation data**; FP32 and INT8 **measured** in alternating rounds with the
//!    peers' session options; the operators ONNX Runtime executes counted; the INT8
//!    [`ModelEntity`] filled.
//! 7. The **report** ([`summary`]) printed (a table, or JSON with `--json`) and written to
//!    `--report`.
//!
//! The default output is `<model stem>.int8.onnx` next to the model, so the pair stays together.

mod data;
mod memory;
mod metric;
mod preprocess;
mod register;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kiln_engine_ort::{
    Comparison, InputSpec, MeasureOptions, MetricComparison, OrtEngine, OrtEngineConfig,
    ProgressMode, SessionOptions, compare, executed_ops, fill_quantized_entity,
};
use kiln_entities::{ModelConfiguration, ModelEntity};
use kiln_pipeline::{
    AlgorithmParams, CompressedModel, Engine, KeepOutputs, PredictOptions, Subset, SubsetSampler,
    create_pipeline,
};
use serde_json::{Value, json};

use self::data::{DataOptions, Dataset};
use self::metric::{MetricPlan, Reference};
use self::preprocess::Resolved;
use self::summary::{
    AlgorithmSection, Calibration, DataSection, Evaluation, Measurements, Pair, PreprocessSection,
    QuantizeReport, Side, Speedup,
};
use super::errors::InputError;
use super::files;
use super::measure::{self, ExecutedOpsJson, MeasurementJson};
use super::model::ModelFile;
use crate::cli::{GlobalArgs, QuantizeArgs};

/// Runs `kiln quantize`.
pub fn run(args: &QuantizeArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mut notes = Notes::new(global.json);

    // 1. Arguments and files.
    // With --register the registry opens first: a bad database URL fails before any work, and
    // the statistics go to a cache the INT8 model can refer to.
    let registration = args
        .register
        .then(|| register::Registration::open(args))
        .transpose()?;
    let stats_cache = args.stats_cache.clone().or_else(|| {
        registration
            .as_ref()
            .map(register::Registration::default_stats_dir)
    });
    let algorithm = AlgorithmChoice::from_args(args, stats_cache.as_deref())?;
    let model = ModelFile::open(&args.model)?;
    let out = args.out.clone().unwrap_or_else(|| default_out(&model));
    files::check_output("--out", &out, &[&args.model])?;
    if let Some(report) = &args.report {
        files::check_output("--report", report, &[&args.model, &out])?;
    }
    let (calibration, evaluation, resolved) = open_data(args, &model)?;
    match &resolved {
        Some(r) if r.derived => notes.push(format!(
            "no --preprocess: {} ({}); give --preprocess for the model's own preprocessing",
            preprocess::describe(&r.spec),
            r.origin
        )),
        None if args.preprocess.is_some() => {
            notes.push("--preprocess is not used: the data are arrays (.npy/.npz)".into());
        }
        _ => {}
    }
    let plan = MetricPlan::choose(
        args.metric,
        &model,
        &evaluation,
        algorithm.accuracy_aware.then_some(&calibration),
    )?;
    if args.metric.is_none() {
        notes.push(format!(
            "metric: {} on output {:?} (the default; choose with --metric)",
            plan.name(),
            plan.output()
        ));
    }

    // 2. The pipeline on an engine over the calibration data.
    measure::start_runtime(global).context("starting ONNX Runtime")?;
    let engine_config = OrtEngineConfig {
        session: SessionOptions::default(),
        batch_size: args.batch,
        runtime: measure::runtime_options(global),
        progress: if global.json {
            ProgressMode::Hidden
        } else {
            ProgressMode::Bar
        },
    };
    let engine = OrtEngine::new(engine_config.clone(), Arc::clone(&calibration.loader), None)
        .context("starting the calibration engine")?;
    let mut pipeline = create_pipeline(&algorithm.config, engine)
        .with_context(|| format!("building the {} pipeline", algorithm.name))?;
    let fp32 = CompressedModel::single(model.stem(), model.model.clone());

    // 3. FP32 on the evaluation data.
    notes.progress(&format!(
        "FP32 inference on {} evaluation samples",
        evaluation.info.samples
    ));
    let mut eval_engine = OrtEngine::new(
        engine_config.clone(),
        Arc::clone(&evaluation.loader),
        plan.labelled(),
    )
    .context("starting the evaluation engine")?;
    eval_engine.set_model(&fp32)?;
    let keep = if plan.needs_reference() {
        KeepOutputs::Named(vec![plan.output().to_owned()])
    } else {
        KeepOutputs::None
    };
    let fp32_eval = eval_engine
        .predict(&PredictOptions::new().keep(keep.clone()))
        .context("running the FP32 model on the evaluation data")?;
    // Free the FP32 session: the peak RSS measured below is the quantization's.
    drop(eval_engine);
    let reference: Reference = Arc::new(fp32_eval.outputs);
    let fp32_metric = if plan.needs_reference() {
        metric::replay(plan.build(&reference).as_mut(), &reference)
            .context("computing the FP32 metric")?
    } else {
        fp32_eval.metrics.get(plan.name()).copied()
    };

    // The accuracy-aware search judges layers with the metric on the calibration data.
    if algorithm.accuracy_aware {
        let search_reference = if plan.needs_reference() && args.eval_data.is_some() {
            notes.progress("FP32 reference outputs on the calibration data (--max-drop)");
            let engine = pipeline.engine_mut();
            engine.set_model(&fp32)?;
            let prediction = engine
                .predict(&PredictOptions::new().keep(keep))
                .context("running the FP32 model on the calibration data")?;
            Arc::new(prediction.outputs)
        } else {
            Arc::clone(&reference)
        };
        pipeline
            .engine_mut()
            .set_metric(Some(plan.build(&search_reference)));
    }

    // 4. Quantization, its peak memory, and FP32 inference on the same samples.
    notes.progress(&format!(
        "{}: {} calibration samples",
        algorithm.name,
        algorithm.subset.size(calibration.info.samples)
    ));
    let peak_rss_reset = memory::reset_peak();
    let (int8, pipeline_report) = pipeline
        .run(fp32.clone())
        .with_context(|| format!("quantizing {}", args.model.display()))?;
    let peak_rss_bytes = memory::peak_rss_bytes();
    let engine = pipeline.engine_mut();
    engine.set_metric(None);
    engine.set_model(&fp32)?;
    let sampler = SubsetSampler::for_loader(
        calibration.loader.as_ref(),
        algorithm.subset,
        algorithm.batch,
    );
    let fp32_calibration = engine
        .predict(&PredictOptions::new().sampler(&sampler))
        .context("timing FP32 inference on the calibration samples")?;
    drop(pipeline);

    // 5. Save.
    let int8_model = int8.model().ok_or_else(|| {
        anyhow::anyhow!(
            "the pipeline returned a cascade of {} models, not one model",
            int8.models().len()
        )
    })?;
    int8_model
        .save(&out)
        .with_context(|| format!("writing the INT8 model to {}", out.display()))?;

    // 6. INT8 on the evaluation data; measurement; executed operators; the entity.
    notes.progress(&format!(
        "INT8 inference on {} evaluation samples",
        evaluation.info.samples
    ));
    let mut eval_engine = OrtEngine::new(
        engine_config,
        Arc::clone(&evaluation.loader),
        Some(plan.build(&reference)),
    )
    .context("starting the evaluation engine")?;
    eval_engine.set_model(&int8)?;
    let int8_eval = eval_engine
        .predict(&PredictOptions::new())
        .context("running the INT8 model on the evaluation data")?;
    let int8_metric = int8_eval.metrics.get(plan.name()).copied();
    drop(eval_engine);
    drop(reference);

    notes.progress("measuring FP32 and INT8 (latency, throughput, executed operators)");
    let measure_options = MeasureOptions::default();
    let spec = input_spec(&calibration);
    let comparison = compare(&args.model, &out, &spec, &measure_options)
        .context("measuring the FP32 and INT8 models")?;
    let ops = Pair {
        fp32: ExecutedOpsJson::from(
            &executed_ops(&args.model, &measure_options.session)
                .context("counting the operators ONNX Runtime runs for the FP32 model")?,
        ),
        int8: ExecutedOpsJson::from(
            &executed_ops(&out, &measure_options.session)
                .context("counting the operators ONNX Runtime runs for the INT8 model")?,
        ),
    };
    let metric_comparison = match (fp32_metric, int8_metric) {
        (Some(a), Some(b)) => Some(MetricComparison::new(plan.name(), a, b)),
        _ => None,
    };
    let fp32_parent = registration
        .as_ref()
        .map(|r| r.fp32_parent(&args.model, &comparison.fp32))
        .transpose()?;
    let parent_entity = match &fp32_parent {
        Some((parent, _)) => parent.entity.clone().unwrap_or_else(|| {
            let mut entity = ModelEntity::new(ModelConfiguration::default());
            entity.id = parent.id();
            entity
        }),
        None => ModelEntity::new(ModelConfiguration::default()),
    };
    let entity = int8_entity(
        args,
        &algorithm,
        &comparison,
        metric_comparison.as_ref(),
        &parent_entity,
    );
    let registered = fp32_parent
        .as_ref()
        .map(|(parent, new)| register::Registered {
            project: args.project.clone(),
            fp32: parent.id().to_string(),
            fp32_new: *new,
            int8: entity.id.to_string(),
        });

    // 7. The report.
    let fp32_measured = MeasurementJson::from(&comparison.fp32);
    let int8_measured = MeasurementJson::from(&comparison.int8);
    let wall_s = pipeline_report.wall_s;
    let report = QuantizeReport {
        model: args.model.display().to_string(),
        out: out.display().to_string(),
        metric_name: plan.name().to_owned(),
        metric_output: plan.output().to_owned(),
        fp32: Side::new(&fp32_measured, fp32_metric),
        int8: Side::new(&int8_measured, int8_metric),
        speedup: Speedup {
            latency: comparison.latency_speedup,
            throughput: comparison.throughput_speedup,
        },
        size_reduction: comparison.size_reduction(),
        calibration: Calibration {
            samples: fp32_calibration.samples,
            batch: algorithm.batch,
            wall_s,
            fp32_inference_s: fp32_calibration.wall_s,
            time_ratio: ratio(wall_s, fp32_calibration.wall_s),
            peak_rss_bytes,
            peak_rss_reset,
        },
        evaluation: Evaluation {
            data: evaluation.info.path.clone(),
            samples: int8_eval.samples,
            fp32_s: fp32_eval.wall_s,
            int8_s: int8_eval.wall_s,
        },
        reverted: summary::reverted_nodes(&pipeline_report),
        executed_ops: ops,
        measurement: Measurements {
            fp32: fp32_measured,
            int8: int8_measured,
            session: format!(
                "{}, intra_op_num_threads {}, inter_op_num_threads {}, sequential, \
                 ORT_ENABLE_ALL",
                measure_options.session.execution_provider,
                measure_options.session.intra_threads.unwrap_or(0),
                measure_options.session.inter_threads.unwrap_or(0)
            ),
        },
        algorithm: AlgorithmSection {
            name: algorithm.name.to_owned(),
            config: algorithm.config.clone(),
            report: pipeline_report,
        },
        data: DataSection {
            calibration: calibration.info.clone(),
            evaluation: evaluation.info.clone(),
            preprocess: resolved.map(|r| PreprocessSection {
                origin: r.origin,
                spec: r.spec,
            }),
        },
        entity,
        registered,
        notes: notes.items,
    };
    let document = serde_json::to_string_pretty(&report).context("serializing the report")?;
    if let (Some(registration), Some((parent, _))) = (&registration, &fp32_parent) {
        if !global.json {
            eprintln!("registering the INT8 model…");
        }
        let statistics_file = statistics_file(&report.algorithm.report);
        registration.int8_child(
            parent,
            register::Int8Child {
                weights: &out,
                entity: report.entity.clone(),
                measured: &comparison.int8,
                metric: metric_comparison
                    .as_ref()
                    .map(|m| (m.name.as_str(), m.fp32, m.int8)),
                algorithm: algorithm.name,
                calibration_samples: report.calibration.samples,
                report_json: document.clone(),
                statistics_file: statistics_file.as_deref(),
            },
        )?;
    }
    if let Some(path) = &args.report {
        files::write_atomically(path, format!("{document}\n").as_bytes())?;
    }
    if global.json {
        println!("{document}");
    } else {
        let report_path = args.report.as_ref().map(|p| p.display().to_string());
        print!("{}", summary::render(&report, report_path.as_deref()));
    }
    Ok(())
}

/// The algorithm the options ask for, as POT's configuration.
#[derive(Debug)]
struct AlgorithmChoice {
    name: &'static str,
    config: Value,
    accuracy_aware: bool,
    subset: Subset,
    batch: usize,
}

/// A cheap identity of the calibration data for the statistics cache: every file under `--data`
/// (relative path, size, modification time), the preprocessing argument and `--rotations`.
fn data_identity(args: &QuantizeArgs) -> String {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&path, root, out);
            } else {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                let rel = path.strip_prefix(root).unwrap_or(&path);
                out.push(format!("{}:{}:{modified}", rel.display(), meta.len()));
            }
        }
    }
    let mut parts = vec![
        args.data
            .canonicalize()
            .unwrap_or_else(|_| args.data.clone())
            .display()
            .to_string(),
        format!("preprocess={:?}", args.preprocess),
        format!("rotations={}", args.rotations),
    ];
    // A spec file's content, not only its name.
    if let Some(spec) = args.preprocess.as_deref()
        && let Ok(text) = std::fs::read_to_string(spec)
    {
        parts.push(text);
    }
    if args.data.is_dir() {
        walk(&args.data, &args.data, &mut parts);
    } else if let Ok(meta) = std::fs::metadata(&args.data) {
        parts.push(format!("{}", meta.len()));
    }
    kiln_pipeline::stats::fingerprint(parts)
}

impl AlgorithmChoice {
    /// Checks `--max-drop` and builds and parses the configuration (so a bad `--ignore` pattern
    /// fails here, before any work).
    fn from_args(
        args: &QuantizeArgs,
        stats_cache: Option<&std::path::Path>,
    ) -> Result<AlgorithmChoice, InputError> {
        if let Some(drop) = args.max_drop
            && !(0.0..=1.0).contains(&drop)
        {
            return Err(InputError::MaxDrop { value: drop });
        }
        let mut params = json!({
            "preset": args.preset.as_str(),
            "stat_subset_size": args.subset,
            "stat_batch_size": args.stat_batch,
            // A seeded random subset: sorted data (MNIST grouped by digit) is covered evenly and
            // runs repeat exactly.
            "shuffle_data": true,
            "seed": 0,
        });
        // Bias correction by default; the accuracy-aware search re-plans without it.
        if !args.no_bias_correction
            && args.max_drop.is_none()
            && let Value::Object(map) = &mut params
        {
            map.insert("bias_correction".into(), json!(true));
        }
        if !args.ignore.is_empty()
            && let Value::Object(map) = &mut params
        {
            map.insert("ignored_scope".into(), json!({ "patterns": args.ignore }));
        }
        if let Some(dir) = stats_cache
            && let Value::Object(map) = &mut params
        {
            map.insert("stats_cache_dir".into(), json!(dir));
            map.insert("data_fingerprint".into(), json!(data_identity(args)));
        }
        let name = match args.max_drop {
            Some(drop) => {
                if let Value::Object(map) = &mut params {
                    map.insert("maximal_drop".into(), json!(drop));
                }
                "AccuracyAwareQuantization"
            }
            None => "DefaultQuantization",
        };
        let parsed = AlgorithmParams::parse(name, &params).map_err(InputError::Algorithm)?;
        let quantization = parsed.quantization();
        Ok(AlgorithmChoice {
            name,
            config: json!([{ "name": name, "params": params }]),
            accuracy_aware: args.max_drop.is_some(),
            subset: quantization.stat_subset(),
            batch: quantization.stat_batch_size,
        })
    }
}

/// The INT8 model's entity: what [`fill_quantized_entity`] records from the comparison, plus the
/// optimization objectives (algorithm, preset, maximal drop). The FP32 parent is a fresh entity
/// (its id is the lineage link).
fn int8_entity(
    args: &QuantizeArgs,
    algorithm: &AlgorithmChoice,
    comparison: &Comparison,
    metric: Option<&MetricComparison>,
    parent: &ModelEntity,
) -> ModelEntity {
    let mut entity = ModelEntity::new(parent.configuration.clone());
    let objectives = &mut entity.optimization_objectives;
    objectives.insert("algorithm".into(), algorithm.name.into());
    objectives.insert("preset".into(), args.preset.as_str().into());
    if let Some(drop) = args.max_drop {
        objectives.insert("maximal_drop".into(), drop.to_string());
    }
    fill_quantized_entity(&mut entity, parent, comparison, metric);
    entity
}

/// The statistics cache file the quantization used, from its report's details.
fn statistics_file(report: &kiln_pipeline::PipelineReport) -> Option<PathBuf> {
    report.algorithms.iter().find_map(|a| {
        a.details
            .get("statistics_file")
            .and_then(Value::as_str)
            .map(PathBuf::from)
    })
}

/// `<dir>/<stem>.int8.onnx` next to the model.
fn default_out(model: &ModelFile) -> PathBuf {
    files::parent_dir(&model.path).join(format!("{}.int8.onnx", model.stem()))
}

/// Opens `--data` and `--eval-data` (the same data when not given), resolving the preprocessing
/// once, when images or CSV rows need it.
fn open_data(
    args: &QuantizeArgs,
    model: &ModelFile,
) -> Result<(Dataset, Dataset, Option<Resolved>), InputError> {
    let mut resolved: Option<Resolved> = None;
    let mut preprocess = || -> Result<Resolved, InputError> {
        if let Some(r) = &resolved {
            return Ok(r.clone());
        }
        let r = preprocess::resolve(args.preprocess.as_deref(), model)?;
        resolved = Some(r.clone());
        Ok(r)
    };
    let options = DataOptions {
        labels: args.labels.as_deref(),
        rotations: args.rotations,
    };
    let calibration = data::open("--data", &args.data, options, model, &mut preprocess)?;
    let evaluation = match &args.eval_data {
        Some(path) => data::open("--eval-data", path, options, model, &mut preprocess)?,
        None => calibration.clone(),
    };
    Ok((calibration, evaluation, resolved))
}

/// Shapes for the synthetic timing inputs: one sample's, so open dimensions (YOLOv8's height
/// and width) take the data's size.
fn input_spec(data: &Dataset) -> InputSpec {
    data.input_shapes
        .iter()
        .fold(InputSpec::new(), |spec, (name, shape)| {
            spec.shape(name.clone(), shape.clone())
        })
}

/// `a / b`, 0 when `b` is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Notes for the user (stderr as they come, unless `--json`; always in the report) and progress
/// lines (stderr, unless `--json`).
#[derive(Debug)]
struct Notes {
    json: bool,
    items: Vec<String>,
}

impl Notes {
    fn new(json: bool) -> Notes {
        Notes {
            json,
            items: Vec::new(),
        }
    }

    fn push(&mut self, note: String) {
        if !self.json {
            eprintln!("note: {note}");
        }
        self.items.push(note);
    }

    fn progress(&self, step: &str) {
        if !self.json {
            eprintln!("{step}…");
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(extra: &[&str]) -> QuantizeArgs {
        let mut argv = vec!["kiln", "quantize", "m.onnx", "--data", "d"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parse").command {
            Command::Quantize(args) => *args,
            other => panic!("not quantize: {other:?}"),
        }
    }

    #[test]
    fn options_become_pot_configurations() {
        let default = AlgorithmChoice::from_args(&args(&[]), None).expect("default");
        assert_eq!(default.name, "DefaultQuantization");
        assert_eq!(
            default.config,
            json!([{"name": "DefaultQuantization", "params": {
                "preset": "performance", "stat_subset_size": 300, "stat_batch_size": 1,
                "shuffle_data": true, "seed": 0, "bias_correction": true}}])
        );
        assert_eq!(default.subset, Subset::Random { size: 300, seed: 0 });
        let plain = AlgorithmChoice::from_args(&args(&["--no-bias-correction"]), None)
            .expect("no bias correction");
        assert!(plain.config[0]["params"].get("bias_correction").is_none());

        let aa = AlgorithmChoice::from_args(
            &args(&[
                "--max-drop",
                "0.02",
                "--ignore",
                "^/model.22/",
                "--preset",
                "mixed",
                "--subset",
                "50",
                "--stat-batch",
                "4",
            ]),
            None,
        )
        .expect("accuracy aware");
        assert_eq!(aa.name, "AccuracyAwareQuantization");
        assert!(aa.accuracy_aware);
        let params = &aa.config[0]["params"];
        assert_eq!(params["maximal_drop"], 0.02);
        assert_eq!(params["ignored_scope"]["patterns"][0], "^/model.22/");
        assert_eq!(params["preset"], "mixed");
        assert!(params.get("bias_correction").is_none(), "{params}");
        assert_eq!((aa.batch, aa.subset.size(1000)), (4, 50));
    }

    #[test]
    fn bad_options_are_typed_errors() {
        for drop in ["1.5", "-0.1", "NaN"] {
            let err =
                AlgorithmChoice::from_args(&args(&["--max-drop", drop]), None).expect_err(drop);
            assert!(matches!(err, InputError::MaxDrop { .. }), "{err:?}");
            assert!(err.to_string().contains("--max-drop"), "{err}");
        }
        let err =
            AlgorithmChoice::from_args(&args(&["--ignore", "(unclosed"]), None).expect_err("regex");
        assert!(matches!(err, InputError::Algorithm(_)), "{err:?}");
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert!(chain.contains("ignored_scope.patterns[0]"), "{chain}");
    }

    #[test]
    fn the_default_output_sits_next_to_the_model() {
        let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let file = ModelFile::open(&data.join("selfcnn_mnist5k.onnx")).expect("open");
        assert_eq!(default_out(&file), data.join("selfcnn_mnist5k.int8.onnx"));
        assert_eq!(file.inputs[0].to_string(), "\"input\" [?, 1, 28, 28]");
        assert_eq!(file.outputs[0].classes(), Some(10));
    }
}
