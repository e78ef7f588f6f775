//! `kiln quantize --register`: the FP32 parent and the INT8 child in the registry, with their
//! lineage, measurements, metric, the report and the calibration statistics.
//!
//! The FP32 model is found by the sha256 of its file (metadata `weights_sha256`) in the project
//! and reused, so repeated quantizations of one model hang under one parent and "all INT8 models
//! derived from X" is one lineage query. Each model is one registration: its blobs are stored
//! first, then its row in one transaction.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_engine_ort::{Measurement, fill_measured_entity};
use kiln_entities::{
    MetadataType, ModelConfiguration, ModelEntity, ModelPrecision, ModelRecord, Sha256Digest,
};
use kiln_storage::{ModelQuery, Project, Store, StoredModel, WEIGHTS_ROLE};
use serde::Serialize;

use super::super::models::{open_store, runtime, set_weights_file_name};
use crate::cli::QuantizeArgs;

/// The metadata key holding the sha256 of the weights file (the FP32 parent is found by it).
pub const WEIGHTS_SHA256_KEY: &str = "weights_sha256";
/// The blob role of the quantization report (JSON).
pub const REPORT_ROLE: &str = "quantize_report";
/// The blob role of the calibration statistics (kiln-pipeline's statistics cache file).
pub const STATISTICS_ROLE: &str = "calibration_statistics";

/// The registry a `kiln quantize --register` run writes to, opened before any work.
#[derive(Debug)]
pub struct Registration {
    runtime: tokio::runtime::Runtime,
    store: Store,
    project: Project,
    home: PathBuf,
}

/// What was registered, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registered {
    /// The project's name.
    pub project: String,
    /// The FP32 parent's id.
    pub fp32: String,
    /// Whether the FP32 parent was registered by this run (`false`: found by its digest).
    pub fp32_new: bool,
    /// The INT8 child's id.
    pub int8: String,
}

impl Registration {
    /// Opens the registry the flags name and ensures the project.
    pub fn open(args: &QuantizeArgs) -> anyhow::Result<Self> {
        let runtime = runtime()?;
        let store = runtime.block_on(open_store(&args.store))?;
        let project = runtime
            .block_on(store.registry().ensure_project(&args.project))
            .with_context(|| format!("creating project {:?}", args.project))?;
        Ok(Self {
            runtime,
            store,
            project,
            home: args.store.home.clone(),
        })
    }

    /// The statistics cache used when `--stats-cache` is not given, so that the INT8 model can
    /// refer to the statistics it was calibrated with.
    pub fn default_stats_dir(&self) -> PathBuf {
        self.home.join("stats-cache")
    }

    /// The registered FP32 model with this file's weights, or a new one registered now.
    pub fn fp32_parent(
        &self,
        model: &Path,
        measured: &Measurement,
    ) -> anyhow::Result<(StoredModel, bool)> {
        let digest = sha256_file(model)?;
        let query = ModelQuery {
            project: Some(self.project.id.clone()),
            metadata: vec![(WEIGHTS_SHA256_KEY.to_owned(), digest.to_string())],
            include_archived: true,
            precision: vec![ModelPrecision::Fp32],
            max_results: Some(1),
            ..ModelQuery::default()
        };
        let found = self
            .runtime
            .block_on(self.store.registry().query_models(&query))?;
        if let Some(existing) = found.items.into_iter().next() {
            return Ok((existing, false));
        }
        let mut record = ModelRecord::new(stem(model));
        record.framework = Some("ONNX".to_owned());
        record.project = Some(self.project.id.clone());
        record.set_metadata(WEIGHTS_SHA256_KEY, digest.to_string(), MetadataType::Str);
        set_weights_file_name(&mut record, model);
        set_measurement(&mut record, "", measured);
        let mut entity = ModelEntity::new(ModelConfiguration::default());
        entity.id = record.id;
        entity.precision = vec![ModelPrecision::Fp32];
        fill_measured_entity(&mut entity, measured);
        let mut stored = StoredModel::new(record);
        stored.entity = Some(entity);
        let stored = self.register(stored, &[(WEIGHTS_ROLE, model)], None)?;
        Ok((stored, true))
    }

    /// Registers the INT8 child of `parent`: weights, report and statistics as blobs, the entity,
    /// the measurements and the metric as metadata.
    pub fn int8_child(
        &self,
        parent: &StoredModel,
        child: Int8Child<'_>,
    ) -> anyhow::Result<StoredModel> {
        let mut record = ModelRecord::new(format!("{}.int8", parent.record.name));
        record.id = child.entity.id;
        record.framework = Some("ONNX".to_owned());
        record.project = Some(self.project.id.clone());
        record.parent = Some(parent.id());
        record.labels = parent.record.labels.clone();
        record.tags = vec!["int8".to_owned(), "kiln-quantize".to_owned()];
        record.comment = format!(
            "INT8 quantization of {} by {}",
            parent.record.name, child.algorithm
        );
        record.set_metadata(
            WEIGHTS_SHA256_KEY,
            sha256_file(child.weights)?.to_string(),
            MetadataType::Str,
        );
        set_weights_file_name(&mut record, child.weights);
        set_measurement(&mut record, "", child.measured);
        record.set_metadata("algorithm", child.algorithm, MetadataType::Str);
        record.set_metadata(
            "calibration_samples",
            child.calibration_samples.to_string(),
            MetadataType::Int,
        );
        if let Some((name, fp32, int8)) = child.metric {
            record.set_metadata("metric_name", name, MetadataType::Str);
            record.set_metadata("metric", int8.to_string(), MetadataType::Float);
            record.set_metadata("fp32_metric", fp32.to_string(), MetadataType::Float);
        }
        let mut stored = StoredModel::new(record);
        stored.entity = Some(child.entity);
        let report = self
            .runtime
            .block_on(self.store.blobs().put_bytes(child.report_json.into()))
            .context("storing the quantization report")?;
        stored.set_blob(REPORT_ROLE, report);
        let mut files = vec![(WEIGHTS_ROLE, child.weights)];
        if let Some(statistics) = child.statistics_file.filter(|p| p.is_file()) {
            files.push((STATISTICS_ROLE, statistics));
        }
        self.register(stored, &files, Some(0))
    }

    fn register(
        &self,
        model: StoredModel,
        files: &[(&str, &Path)],
        expected_version: Option<i64>,
    ) -> anyhow::Result<StoredModel> {
        let files: Vec<(String, PathBuf)> = files
            .iter()
            .map(|(role, path)| ((*role).to_owned(), path.to_path_buf()))
            .collect();
        self.runtime
            .block_on(self.store.register(model, &files, expected_version, None))
            .context("registering the model")
    }
}

/// What [`Registration::int8_child`] registers.
#[derive(Debug)]
pub struct Int8Child<'a> {
    /// The INT8 `.onnx`.
    pub weights: &'a Path,
    /// Its entity (its id becomes the model's).
    pub entity: ModelEntity,
    /// Its measurements.
    pub measured: &'a Measurement,
    /// The metric: name, FP32 value, INT8 value.
    pub metric: Option<(&'a str, f64, f64)>,
    /// The algorithm's name.
    pub algorithm: &'a str,
    /// Samples calibrated on.
    pub calibration_samples: usize,
    /// The report JSON.
    pub report_json: String,
    /// The statistics cache file, when there is one.
    pub statistics_file: Option<&'a Path>,
}

fn set_measurement(record: &mut ModelRecord, prefix: &str, m: &Measurement) {
    record.set_metadata(
        format!("{prefix}size_bytes"),
        m.size_bytes.to_string(),
        MetadataType::Int,
    );
    record.set_metadata(
        format!("{prefix}latency_ms"),
        format!("{:.4}", m.latency_ms),
        MetadataType::Float,
    );
    record.set_metadata(
        format!("{prefix}throughput_fps"),
        format!("{:.3}", m.throughput_fps),
        MetadataType::Float,
    );
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "model".to_owned(), |s| s.to_string_lossy().into_owned())
}

/// The sha256 of a file (the digest its blob is stored under).
fn sha256_file(path: &Path) -> anyhow::Result<Sha256Digest> {
    kiln_storage::blob::sha256_file(path).with_context(|| format!("hashing {}", path.display()))
}
