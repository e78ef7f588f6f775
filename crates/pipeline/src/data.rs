//! The `DataLoader` contract (POT's `DataLoader`): samples by index, each with named inputs, an
//! annotation and optional metadata.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tensor::TensorMap;

/// One sample: what the model is fed, what it should say, and what post-processing needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Model inputs by name, each with a leading batch axis of 1.
    pub inputs: TensorMap,
    /// The expected answer, in the form the metric expects.
    pub annotation: Annotation,
    /// Where the sample came from and how it was transformed.
    pub metadata: Option<SampleMetadata>,
}

/// The expected answer of a sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Annotation {
    /// No label: metrics compare against the FP32 model instead.
    #[default]
    None,
    /// A class index (classification).
    Class(usize),
    /// Ground-truth boxes (detection), in model-input pixel coordinates.
    Boxes(Vec<LabeledBox>),
}

/// An axis-aligned box with a class, corners in pixels (`x1 < x2`, `y1 < y2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabeledBox {
    /// Class index.
    pub class: usize,
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
}

/// Where a sample came from and how it was transformed (for post-processing and reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleMetadata {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    /// Original size before preprocessing, `[height, width]`.
    pub original_size: Option<[usize; 2]>,
    /// Scale applied to the original, `[y, x]` (model pixels per original pixel).
    pub scale: Option<[f32; 2]>,
    /// Padding added after scaling, `[top, left]`, in model pixels.
    pub pad: Option<[f32; 2]>,
}

/// Loads samples by index. Implementations read lazily: `get` does the IO and preprocessing, so a
/// loader over 3 000 images holds none of them.
pub trait DataLoader: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// The sample at `index` (`0..len()`).
    fn get(&self, index: usize) -> Result<Sample, DataError>;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why data could not be loaded. Every variant names the file or field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A folder holds no usable samples.
    #[error("{} holds no {what}", path.display())]
    Empty {
        /// The folder.
        path: PathBuf,
        /// What was looked for (`images (jpg, png)`, `rows`).
        what: String,
    },
    /// A file could not be decoded (an image, a CSV row, an array).
    #[error("cannot decode {}: {reason}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A preprocessing spec or loader option is invalid or does not match the model.
    #[error("invalid {field}: {reason}")]
    Spec {
        /// The field (`size`, `mean`, `layout`, input name...).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Labels do not match the data or the model.
    #[error("labels: {reason}")]
    Labels {
        /// What is wrong.
        reason: String,
    },
    /// `get` was called past the end.
    #[error("sample {index} is out of range (the loader has {len})")]
    OutOfRange {
        /// The index asked for.
        index: usize,
        /// The number of samples.
        len: usize,
    },
}
