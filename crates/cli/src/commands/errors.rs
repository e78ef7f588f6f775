//! [`InputError`]: what is wrong with the files and options a user gave, found before any long
//! work starts. Every variant names the file or the option at fault; the source, when there is
//! one, carries the detail (the chain is printed by [`crate::report`]).

use std::path::PathBuf;

use kiln_onnx::OnnxError;
use kiln_pipeline::{DataError, PipelineError};

/// A bad argument or input file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// `--max-drop` outside `[0, 1]`.
    #[error("--max-drop {value}: must be in [0, 1] (the largest accepted metric drop, e.g. 0.01)")]
    MaxDrop {
        /// The value given.
        value: f64,
    },

    /// The quantization options do not make a valid algorithm configuration (an invalid
    /// `--ignore` pattern, for instance).
    #[error("invalid quantization options")]
    Algorithm(#[source] PipelineError),

    /// The model cannot be read as ONNX.
    #[error("cannot load model {}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: OnnxError,
    },

    /// The model's inputs do not suit the data.
    #[error("model {}: {reason}", path.display())]
    ModelInputs {
        /// The model file.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },

    /// `--out` would overwrite the model, or its folder does not exist.
    #[error("{option} {}: {reason}", path.display())]
    OutputPath {
        /// `--out` or `--report`.
        option: &'static str,
        /// The path given (or the default).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Data cannot be read, is empty, or does not fit the model.
    #[error("{option} {}", path.display())]
    Data {
        /// `--data` or `--eval-data`.
        option: &'static str,
        /// The path given.
        path: PathBuf,
        /// What went wrong (names the file inside the folder).
        #[source]
        source: DataError,
    },

    /// `--preprocess` names neither a preset nor a readable JSON spec.
    #[error(
        "--preprocess {spec:?} is neither a preset ({}) nor a JSON spec file",
        presets.join(", ")
    )]
    UnknownPreprocess {
        /// What was given.
        spec: String,
        /// The presets accepted.
        presets: Vec<&'static str>,
    },

    /// A file named by an option cannot be read.
    #[error("{option} {}: cannot read it", path.display())]
    Read {
        /// The option (`--preprocess`).
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The data's samples do not fit the model's inputs.
    #[error("{option} {}: {reason}", path.display())]
    DataMismatch {
        /// `--data` or `--eval-data`.
        option: &'static str,
        /// The path given.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },

    /// A `--preprocess` JSON file is not a valid spec.
    #[error("--preprocess {}: not a valid preprocessing spec", path.display())]
    PreprocessFile {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },

    /// A preset's size is not a positive number, or the preset takes none.
    #[error("--preprocess {spec}: {reason}")]
    PresetSize {
        /// What was given (`yolov8:abc`).
        spec: String,
        /// What is wrong.
        reason: String,
    },

    /// The preprocessing (given or derived) does not fit the model input.
    #[error("preprocessing ({origin}) does not fit model input {input}")]
    Preprocess {
        /// Where the spec came from (`preset mnist`, `file spec.json`, `derived`).
        origin: String,
        /// The model input, with its shape.
        input: String,
        /// The field at fault, with the reason.
        #[source]
        source: DataError,
    },

    /// The metric cannot be computed on this model or data.
    #[error("--metric {metric}: {reason}")]
    Metric {
        /// The metric.
        metric: &'static str,
        /// Why not.
        reason: String,
    },

    /// The labels do not fit the model's output.
    #[error("labels ({source_desc}): {reason}")]
    Labels {
        /// Where the labels come from (`--labels classes.txt`, `class sub-folders of data/`).
        source_desc: String,
        /// What does not fit.
        reason: String,
    },

    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// An argument is not a valid value of its kind (a model id, a precision).
    #[error("{what} {value:?}: {reason}")]
    Invalid {
        /// What the argument is.
        what: String,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },

    /// A file the command needs does not exist.
    #[error("{what} {} does not exist or is not a file", path.display())]
    Missing {
        /// What the file is.
        what: String,
        /// The path given.
        path: PathBuf,
    },
}
