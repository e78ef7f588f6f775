//! Training and inference parameters of the Encord models SDK, with their defaults, their limits
//! and `validate()` — so that clients reject a bad request before sending it and the server
//! rejects it the same way.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalogue::{ModelType, ModelWeights};
use crate::macros::wire_enum;
use crate::sniff::{self, FileType, SNIFF_LEN, detect_file_type};

/// Default confidence threshold.
pub const DEFAULT_CONF_THRESH: f64 = 0.6;
/// Default intersection-over-union threshold.
pub const DEFAULT_IOU_THRESH: f64 = 0.3;
/// Default polygon coarseness (Ramer–Douglas–Peucker epsilon).
pub const DEFAULT_RDP_THRESH: f64 = 0.005;
/// Largest polygon coarseness.
pub const MAX_RDP_THRESH: f64 = 0.01;
/// Default training batch size.
pub const DEFAULT_BATCH_SIZE: u32 = 24;
/// Largest `end - start` of a detection frame range.
pub const MAX_DETECTION_FRAME_SPAN: i64 = 1000;
/// Largest total size of the inputs of one inference: 1 GB, taken as the SI gigabyte the SDK
/// writes (10^9 bytes, not 2^30).
pub const MAX_TOTAL_INPUT_BYTES: u64 = 1_000_000_000;

/// Why training or inference parameters (or a model row) are not acceptable. Each variant
/// carries the offending names and values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A threshold is NaN or outside its closed range.
    #[error("{name} must be between {min} and {max}, got {value}")]
    ThresholdOutOfRange {
        /// `"conf_thresh"`, `"iou_thresh"` or `"rdp_thresh"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// The detection frame range is negative, reversed or too long (Encord
    /// `DetectionRangeInvalidError`).
    #[error("detection frame range [{start}, {end}] is invalid: {problem}")]
    DetectionRangeInvalid {
        /// The first frame.
        start: i64,
        /// The last frame.
        end: i64,
        /// What is wrong.
        problem: FrameRangeProblem,
    },
    /// A video input was given without a detection frame range.
    #[error("{input} is a video: a detection frame range is required")]
    DetectionRangeRequired {
        /// The video input (file name or `base64_strings[i]`).
        input: String,
    },
    /// The inputs are larger than [`MAX_TOTAL_INPUT_BYTES`] in total (Encord
    /// `FileSizeNotSupportedError`).
    #[error("inputs total {total} bytes; at most {max} bytes are supported")]
    FileSizeNotSupported {
        /// The total size in bytes.
        total: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// An input is not JPEG, PNG, MP4 or WebM by content (Encord `FileTypeNotSupportedError`).
    #[error("{name} is not a supported file type (JPEG, PNG, MP4, WebM); it starts with {magic}")]
    FileTypeNotSupported {
        /// The input (file name or `base64_strings[i]`).
        name: String,
        /// Its first bytes (up to 8), in hex.
        magic: String,
    },
    /// A base64 input is not base64.
    #[error("{name} is not valid base64: {reason}")]
    InvalidBase64 {
        /// `base64_strings[i]`.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The weights cannot train this model type (Encord `ModelWeightsInconsistentError`).
    #[error("weights {weights} cannot train a {model} model")]
    ModelWeightsInconsistent {
        /// The model type.
        model: ModelType,
        /// The weights.
        weights: ModelWeights,
    },
    /// No input kind was given.
    #[error("to run inference, pass file_paths, base64_strings or data_hashes")]
    NoInputs,
    /// More than one input kind was given.
    #[error("pass only one of file_paths, base64_strings and data_hashes; got {}", given.join(", "))]
    ConflictingInputs {
        /// The kinds given.
        given: Vec<&'static str>,
    },
    /// The input list is empty.
    #[error("{kind} is empty")]
    EmptyInputs {
        /// `"file_paths"`, `"base64_strings"` or `"data_hashes"`.
        kind: &'static str,
    },
    /// A required text or list is empty or blank.
    #[error("{field} must not be empty")]
    EmptyField {
        /// The field, e.g. `"label_rows"` or `"label_rows[2]"`.
        field: String,
    },
    /// A count is below its minimum.
    #[error("{field} must be at least {min}, got {value}")]
    BelowMinimum {
        /// The field, e.g. `"epochs"`.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The minimum.
        min: u64,
    },
}

/// What is wrong with a detection frame range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameRangeProblem {
    /// A frame number is below 0.
    Negative,
    /// The start is after the end.
    Reversed,
    /// `end - start` is more than [`MAX_DETECTION_FRAME_SPAN`].
    SpanTooLarge,
}

impl fmt::Display for FrameRangeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Negative => "frame numbers must not be negative",
            Self::Reversed => "the start frame is after the end frame",
            Self::SpanTooLarge => "it spans more than 1000 frames",
        })
    }
}

wire_enum! {
    /// Where training or inference runs (default CUDA).
    pub enum Device ("device") {
        /// An NVIDIA GPU.
        Cuda => "cuda",
        /// The CPU.
        Cpu => "cpu",
    }
}

impl Default for Device {
    /// [`Device::Cuda`], as in the SDK.
    fn default() -> Self {
        Self::Cuda
    }
}

/// Checks that a list is not empty and has no blank entries.
pub(crate) fn check_list(field: &str, items: &[String]) -> Result<(), ValidationError> {
    if items.is_empty() {
        return Err(ValidationError::EmptyField {
            field: field.to_owned(),
        });
    }
    match items.iter().position(|item| item.trim().is_empty()) {
        Some(i) => Err(ValidationError::EmptyField {
            field: format!("{field}[{i}]"),
        }),
        None => Ok(()),
    }
}

fn default_batch_size() -> u32 {
    DEFAULT_BATCH_SIZE
}

/// The parameters of a training run (Encord `model_train`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingParams {
    /// The label rows to train on, by uid.
    pub label_rows: Vec<String>,
    /// Passes through the training data (at least 1).
    pub epochs: u32,
    /// Examples per iteration (default 24, at least 1).
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// The weights to start from; they must fit the model type.
    pub weights: ModelWeights,
    /// Where to train (default CUDA).
    #[serde(default)]
    pub device: Device,
}

impl TrainingParams {
    /// Parameters with the SDK's defaults: batch size 24, CUDA.
    pub fn new(label_rows: Vec<String>, epochs: u32, weights: ModelWeights) -> Self {
        Self {
            label_rows,
            epochs,
            batch_size: DEFAULT_BATCH_SIZE,
            weights,
            device: Device::default(),
        }
    }

    /// Checks, in this order: label rows given and none blank, `epochs >= 1`, `batch_size >= 1`,
    /// and that the weights fit `model` ([`ModelWeights::is_compatible_with`]). Reports the
    /// first problem.
    pub fn validate(&self, model: ModelType) -> Result<(), ValidationError> {
        check_list("label_rows", &self.label_rows)?;
        for (field, value) in [("epochs", self.epochs), ("batch_size", self.batch_size)] {
            if value < 1 {
                return Err(ValidationError::BelowMinimum {
                    field,
                    value: value.into(),
                    min: 1,
                });
            }
        }
        if !self.weights.is_compatible_with(model) {
            return Err(ValidationError::ModelWeightsInconsistent {
                model,
                weights: self.weights,
            });
        }
        Ok(())
    }
}

/// The frames to run detection on, first to last inclusive; `[start, end]` on the wire.
///
/// Images take `[1, 1]` in the SDK's examples; videos a range such as `[0, 100]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "[i64; 2]", into = "[i64; 2]")]
pub struct FrameRange {
    /// The first frame.
    pub start: i64,
    /// The last frame.
    pub end: i64,
}

impl FrameRange {
    /// The frames `start..=end`.
    pub const fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }

    /// `end - start` (saturating).
    pub const fn span(self) -> i64 {
        self.end.saturating_sub(self.start)
    }

    /// Checks, in this order: no negative frame, start not after end, span at most
    /// [`MAX_DETECTION_FRAME_SPAN`].
    pub fn validate(self) -> Result<(), ValidationError> {
        let problem = if self.start < 0 || self.end < 0 {
            FrameRangeProblem::Negative
        } else if self.start > self.end {
            FrameRangeProblem::Reversed
        } else if self.span() > MAX_DETECTION_FRAME_SPAN {
            FrameRangeProblem::SpanTooLarge
        } else {
            return Ok(());
        };
        Err(ValidationError::DetectionRangeInvalid {
            start: self.start,
            end: self.end,
            problem,
        })
    }
}

impl From<[i64; 2]> for FrameRange {
    fn from([start, end]: [i64; 2]) -> Self {
        Self { start, end }
    }
}

impl From<FrameRange> for [i64; 2] {
    fn from(range: FrameRange) -> Self {
        [range.start, range.end]
    }
}

/// A local file to run inference on, described by what validation needs: its name, its size and
/// its first bytes (the type is decided by content, never by name).
///
/// A client fills it from disk without reading whole files: the name is the path as given, the
/// size from the file's metadata, and `head` the first [`SNIFF_LEN`] bytes (fewer when the file is
/// shorter). [`InputFile::from_bytes`] does it from bytes already in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The file's name or path (the inference identifier in results).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its first bytes (lowercase hex on the wire).
    #[serde(with = "crate::hex::bytes")]
    pub head: Vec<u8>,
}

impl InputFile {
    /// Describes the whole file `bytes`: size = length, head = the first [`SNIFF_LEN`] bytes.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> Self {
        Self {
            name: name.into(),
            size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            head: bytes[..bytes.len().min(SNIFF_LEN)].to_vec(),
        }
    }

    /// The file's type by content.
    pub fn file_type(&self) -> Option<FileType> {
        detect_file_type(&self.head)
    }
}

/// A video or image group already on the platform, by data hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataHashInput {
    /// The data hash.
    pub hash: String,
    /// Its size in bytes when the caller knows it. A client usually does not; the server fills
    /// it in from its records before validating, so the 1 GB total is enforced there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

impl DataHashInput {
    /// A data hash of unknown size.
    pub fn new(hash: impl Into<String>) -> Self {
        Self {
            hash: hash.into(),
            size: None,
        }
    }

    /// A data hash of known size.
    pub fn sized(hash: impl Into<String>, size: u64) -> Self {
        Self {
            hash: hash.into(),
            size: Some(size),
        }
    }
}

/// What to run inference on: exactly one kind of input.
///
/// On the wire: `{"file_paths": [...]}`, `{"base64_strings": [...]}` or `{"data_hashes": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InferenceInputs {
    /// Local files (the SDK's `file_paths`); images must be JPEG or PNG, videos MP4 or WebM.
    #[serde(rename = "file_paths")]
    Files(Vec<InputFile>),
    /// Base64-encoded images or videos.
    Base64Strings(Vec<String>),
    /// Videos or image groups on the platform.
    DataHashes(Vec<DataHashInput>),
}

impl InferenceInputs {
    /// The inputs from the SDK's three optional arguments: exactly one must be given
    /// ([`ValidationError::NoInputs`], [`ValidationError::ConflictingInputs`] otherwise).
    pub fn from_options(
        file_paths: Option<Vec<InputFile>>,
        base64_strings: Option<Vec<String>>,
        data_hashes: Option<Vec<DataHashInput>>,
    ) -> Result<Self, ValidationError> {
        match (file_paths, base64_strings, data_hashes) {
            (Some(files), None, None) => Ok(Self::Files(files)),
            (None, Some(strings), None) => Ok(Self::Base64Strings(strings)),
            (None, None, Some(hashes)) => Ok(Self::DataHashes(hashes)),
            (None, None, None) => Err(ValidationError::NoInputs),
            (files, strings, hashes) => Err(ValidationError::ConflictingInputs {
                given: [
                    files.map(|_| "file_paths"),
                    strings.map(|_| "base64_strings"),
                    hashes.map(|_| "data_hashes"),
                ]
                .into_iter()
                .flatten()
                .collect(),
            }),
        }
    }

    /// The SDK's name of this kind: `"file_paths"`, `"base64_strings"` or `"data_hashes"`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Files(_) => "file_paths",
            Self::Base64Strings(_) => "base64_strings",
            Self::DataHashes(_) => "data_hashes",
        }
    }

    /// How many inputs there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Files(files) => files.len(),
            Self::Base64Strings(strings) => strings.len(),
            Self::DataHashes(hashes) => hashes.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `Option<FrameRange>` as the SDK's list: `[]` for none, `[start, end]` for a range.
mod optional_range {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::FrameRange;

    pub(super) fn serialize<S: Serializer>(
        range: &Option<FrameRange>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match range {
            Some(range) => range.serialize(serializer),
            None => serializer.collect_seq(std::iter::empty::<i64>()),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<FrameRange>, D::Error> {
        match Option::<Vec<i64>>::deserialize(deserializer)?.as_deref() {
            None | Some([]) => Ok(None),
            Some(&[start, end]) => Ok(Some(FrameRange::new(start, end))),
            Some(other) => Err(de::Error::invalid_length(
                other.len(),
                &"0 or 2 frame numbers",
            )),
        }
    }
}

fn default_conf_thresh() -> f64 {
    DEFAULT_CONF_THRESH
}

fn default_iou_thresh() -> f64 {
    DEFAULT_IOU_THRESH
}

fn default_rdp_thresh() -> f64 {
    DEFAULT_RDP_THRESH
}

/// The parameters of an inference request (Encord `model_inference`).
///
/// Fields other than `inputs` may be left out on the wire and take the SDK's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceParams {
    /// What to run on.
    pub inputs: InferenceInputs,
    /// Confidence threshold in [0, 1] (default 0.6).
    #[serde(default = "default_conf_thresh")]
    pub conf_thresh: f64,
    /// Intersection-over-union threshold for non-maximum suppression, in [0, 1] (default 0.3).
    #[serde(default = "default_iou_thresh")]
    pub iou_thresh: f64,
    /// Polygon coarseness (Ramer–Douglas–Peucker epsilon) in [0, 0.01] (default 0.005).
    #[serde(default = "default_rdp_thresh")]
    pub rdp_thresh: f64,
    /// The frames to run detection on. `None` (the SDK's default, sent as `[]`) leaves the choice
    /// to the server, and is accepted for images and data hashes; video files and video base64
    /// strings need a range, so that the span limit applies to them. On the wire `None` is `[]`
    /// (as the SDK sends it); `null` and a missing field read as `None` too.
    #[serde(default, with = "optional_range")]
    pub detection_frame_range: Option<FrameRange>,
    /// Where to run (default CUDA).
    #[serde(default)]
    pub device: Device,
    /// Whether detected objects are matched to existing ones across frames (default false).
    #[serde(default)]
    pub allocation_enabled: bool,
}

impl InferenceParams {
    /// Parameters with the SDK's defaults: conf 0.6, iou 0.3, rdp 0.005, no frame range, CUDA,
    /// allocation off.
    pub fn new(inputs: InferenceInputs) -> Self {
        Self {
            inputs,
            conf_thresh: DEFAULT_CONF_THRESH,
            iou_thresh: DEFAULT_IOU_THRESH,
            rdp_thresh: DEFAULT_RDP_THRESH,
            detection_frame_range: None,
            device: Device::default(),
            allocation_enabled: false,
        }
    }

    /// Checks, in this order, reporting the first problem:
    ///
    /// 1. `conf_thresh` and `iou_thresh` in [0, 1], `rdp_thresh` in [0, 0.01] (NaN never is);
    /// 2. the frame range, when given ([`FrameRange::validate`]);
    /// 3. the inputs: not empty; files and base64 strings are JPEG, PNG, MP4 or WebM by content
    ///    (base64 strings must be base64); a video needs a frame range; data hashes not blank;
    /// 4. the known sizes total at most [`MAX_TOTAL_INPUT_BYTES`] (1 GB). The SDK states this
    ///    limit for data hashes; kiln applies it to every input kind (base64 strings count their
    ///    decoded size).
    ///
    /// ```
    /// use kiln_entities::{InferenceInputs, InferenceParams, InputFile, ValidationError};
    ///
    /// let png = InputFile::from_bytes("cat.png", b"\x89PNG\r\n\x1a\n rest of the image");
    /// let mut params = InferenceParams::new(InferenceInputs::Files(vec![png]));
    /// assert_eq!(params.validate(), Ok(()));
    /// params.conf_thresh = 1.5;
    /// assert!(matches!(params.validate(), Err(ValidationError::ThresholdOutOfRange { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (name, value, max) in [
            ("conf_thresh", self.conf_thresh, 1.0),
            ("iou_thresh", self.iou_thresh, 1.0),
            ("rdp_thresh", self.rdp_thresh, MAX_RDP_THRESH),
        ] {
            if !(0.0..=max).contains(&value) {
                return Err(ValidationError::ThresholdOutOfRange {
                    name,
                    value,
                    min: 0.0,
                    max,
                });
            }
        }
        if let Some(range) = self.detection_frame_range {
            range.validate()?;
        }
        if self.inputs.is_empty() {
            return Err(ValidationError::EmptyInputs {
                kind: self.inputs.kind(),
            });
        }
        let total = match &self.inputs {
            InferenceInputs::Files(files) => {
                for file in files {
                    self.check_content(&file.name, &file.head)?;
                }
                files
                    .iter()
                    .fold(0_u64, |total, file| total.saturating_add(file.size))
            }
            InferenceInputs::Base64Strings(strings) => {
                let mut total = 0_u64;
                for (i, text) in strings.iter().enumerate() {
                    let name = format!("base64_strings[{i}]");
                    let summary = sniff::read_base64(text).map_err(|reason| {
                        ValidationError::InvalidBase64 {
                            name: name.clone(),
                            reason,
                        }
                    })?;
                    self.check_content(&name, &summary.head)?;
                    total = total.saturating_add(summary.size);
                }
                total
            }
            InferenceInputs::DataHashes(hashes) => {
                if let Some(i) = hashes.iter().position(|h| h.hash.trim().is_empty()) {
                    return Err(ValidationError::EmptyField {
                        field: format!("data_hashes[{i}]"),
                    });
                }
                hashes
                    .iter()
                    .filter_map(|h| h.size)
                    .fold(0_u64, u64::saturating_add)
            }
        };
        if total > MAX_TOTAL_INPUT_BYTES {
            return Err(ValidationError::FileSizeNotSupported {
                total,
                max: MAX_TOTAL_INPUT_BYTES,
            });
        }
        Ok(())
    }

    fn check_content(&self, name: &str, head: &[u8]) -> Result<(), ValidationError> {
        match detect_file_type(head) {
            None => Err(ValidationError::FileTypeNotSupported {
                name: name.to_owned(),
                magic: crate::hex::encode(&head[..head.len().min(8)]),
            }),
            Some(kind) if kind.is_video() && self.detection_frame_range.is_none() => {
                Err(ValidationError::DetectionRangeRequired {
                    input: name.to_owned(),
                })
            }
            Some(_) => Ok(()),
        }
    }
}
