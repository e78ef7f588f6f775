//! `--data` / `--eval-data`: which kiln-pipeline loader reads a path, chosen by content, with its
//! labels, and checked against the model's inputs on the first sample — so a bad folder, an
//! undecodable image or data of the wrong shape fails before any long work, naming the file.
//!
//! | the path holds | loader | labels |
//! |---|---|---|
//! | jpg/png images (anywhere below a folder, or one image file) | [`ImageFolder`] through the preprocessing spec | class sub-folders with `--labels`, or when every image sits in one of 2+ sub-folders; [`Rotations`] with `--rotations` |
//! | a CSV, plain or gzipped (`784 pixels, label` rows) | [`MnistCsv`], normalised as the spec says | the label column |
//! | a `.npy` file | [`NpyLoader`] feeding the model's one input | none |
//! | a `.npz` file | [`NpyLoader`], one array per input (an array named `labels` gives labels) | `labels` array |
//!
//! A folder without images is searched (top level only) for one CSV/npy/npz file. Files are
//! recognised by their first bytes, then by their extension, so a misnamed file still loads and a
//! damaged one is reported by its loader, naming the file.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_pipeline::loaders::{
    ImageFolderOptions, LabelMode, Layout, MnistCsvOptions, NpyOptions, PixelNorm,
    has_image_extension, read_label_names, visible_entries,
};
use kiln_pipeline::{DataError, DataLoader, ImageFolder, MnistCsv, NpyLoader, Rotations};
use serde::Serialize;

use super::preprocess::Resolved;
use crate::commands::errors::InputError;
use crate::commands::model::ModelFile;

/// Symbolic-link loops and absurd trees stop here (as in [`ImageFolder`]).
const MAX_DEPTH: usize = 32;

/// What the data files are, for messages.
const KINDS: &str = "images (jpg, jpeg, png), an MNIST-style CSV (.csv, .csv.gz), .npy or .npz";

/// Options that shape how data is read.
#[derive(Debug, Clone, Copy)]
pub struct DataOptions<'a> {
    /// `--labels`: class names for sub-folders.
    pub labels: Option<&'a Path>,
    /// `--rotations`: label images by rotating them.
    pub rotations: bool,
}

/// Where a dataset's class labels come from and how many classes they name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// In words (`class sub-folders of data/`, `--labels classes.txt`).
    pub source: String,
    /// Number of classes, when known.
    pub classes: Option<usize>,
}

/// A summary of a dataset, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct DataInfo {
    /// The path given.
    pub path: String,
    /// `image_folder`, `rotations`, `mnist_csv`, `npy`.
    pub loader: &'static str,
    /// The data file, when a folder held one (or the path is a file).
    pub file: Option<String>,
    /// Samples.
    pub samples: usize,
    /// Labels, if any.
    pub labels: Option<Labels>,
    /// Files in an image folder that were not taken as images.
    pub skipped_files: usize,
}

/// A dataset ready for an engine.
#[derive(Clone)]
pub struct Dataset {
    /// The loader.
    pub loader: Arc<dyn DataLoader>,
    /// Its summary.
    pub info: DataInfo,
    /// Model input name -> shape of one sample (batch axis 1).
    pub input_shapes: Vec<(String, Vec<usize>)>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("info", &self.info)
            .field("input_shapes", &self.input_shapes)
            .finish_non_exhaustive()
    }
}

impl Dataset {
    /// The labels, if the samples carry class labels.
    pub fn labels(&self) -> Option<&Labels> {
        self.info.labels.as_ref()
    }
}

/// What a file holds, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Image,
    Csv,
    Npy,
    Npz,
}

/// What a `--data` path is.
#[derive(Debug)]
enum Found {
    /// Images: a folder with images below it, or one image file.
    Images,
    /// One data file.
    File(PathBuf, FileKind),
}

/// Opens `path` for `option` (`--data`, `--eval-data`). `preprocess` is called when images or
/// CSV rows need a spec.
pub fn open(
    option: &'static str,
    path: &Path,
    options: DataOptions<'_>,
    model: &ModelFile,
    preprocess: &mut dyn FnMut() -> Result<Resolved, InputError>,
) -> Result<Dataset, InputError> {
    let data_error = |source: DataError| InputError::Data {
        option,
        path: path.to_owned(),
        source,
    };
    let found = find(path).map_err(data_error)?;
    let (loader, loader_name, file, labels, skipped): (
        Arc<dyn DataLoader>,
        &'static str,
        Option<PathBuf>,
        Option<Labels>,
        usize,
    ) = match found {
        Found::Images => {
            let spec = preprocess()?.spec;
            let (loader, name, labels, skipped) = open_images(option, path, options, spec)?;
            (loader, name, None, labels, skipped)
        }
        Found::File(file, FileKind::Csv) => {
            refuse_rotations(options, &file).map_err(data_error)?;
            let spec = preprocess()?.spec;
            let (loader, labels) = open_csv(&file, options, &spec).map_err(data_error)?;
            (loader, "mnist_csv", Some(file), labels, 0)
        }
        Found::File(file, kind) => {
            refuse_rotations(options, &file).map_err(data_error)?;
            let (loader, labels) = open_npy(option, &file, kind, options, model)?;
            let name = if kind == FileKind::Npz { "npz" } else { "npy" };
            (loader, name, Some(file), labels, 0)
        }
    };
    let labels = match (labels, options.labels) {
        (Some(labels), _) => Some(labels),
        (None, Some(file)) => {
            return Err(InputError::Labels {
                source_desc: format!("--labels {}", file.display()),
                reason: format!(
                    "{} gives no class labels to name: labels apply to class sub-folders of an \
                     image folder, CSV label columns and .npz label arrays",
                    path.display()
                ),
            });
        }
        (None, None) => None,
    };
    let input_shapes = check_first_sample(option, path, loader.as_ref(), model)?;
    Ok(Dataset {
        info: DataInfo {
            path: path.display().to_string(),
            loader: loader_name,
            file: file.map(|f| f.display().to_string()),
            samples: loader.len(),
            labels,
            skipped_files: skipped,
        },
        loader,
        input_shapes,
    })
}

/// Decides what `path` is.
fn find(path: &Path) -> Result<Found, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        return match sniff(path).map_err(io)? {
            Some(FileKind::Image) => Ok(Found::Images),
            Some(kind) => Ok(Found::File(path.to_owned(), kind)),
            None => Err(DataError::Decode {
                path: path.to_owned(),
                reason: format!("not {KINDS}"),
            }),
        };
    }
    if has_images(path, 0)? {
        return Ok(Found::Images);
    }
    let mut files = Vec::new();
    for entry in visible_entries(path)? {
        if entry.is_file()
            && let Some(kind) = sniff(&entry).map_err(|source| DataError::Io {
                path: entry.clone(),
                source,
            })?
        {
            files.push((entry, kind));
        }
    }
    match files.len() {
        0 => Err(DataError::Empty {
            path: path.to_owned(),
            what: KINDS.to_owned(),
        }),
        1 => {
            let (file, kind) = files.remove(0);
            Ok(Found::File(file, kind))
        }
        _ => Err(DataError::Spec {
            field: "data".into(),
            reason: format!(
                "{} holds several data files ({}); give one of them",
                path.display(),
                files
                    .iter()
                    .map(|(f, _)| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// The first bytes of a file, judged.
fn sniff(path: &Path) -> std::io::Result<Option<FileKind>> {
    let mut head = [0u8; 512];
    let mut file = fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    let text_like = !head.is_empty()
        && head
            .iter()
            .all(|b| b.is_ascii_digit() || b",.-+eE \t\r\n".contains(b));
    Ok(if head.starts_with(b"\x93NUMPY") {
        Some(FileKind::Npy)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(FileKind::Npz)
    } else if head.starts_with(&[0x1f, 0x8b]) || text_like {
        Some(FileKind::Csv)
    } else if head.starts_with(b"\x89PNG") || head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(FileKind::Image)
    } else {
        // Named as data but not recognised: the loader for its name reports what is wrong
        // (an image that does not decode, a CSV with a header row), naming the file.
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv" | "gz") => Some(FileKind::Csv),
            Some("npy") => Some(FileKind::Npy),
            Some("npz") => Some(FileKind::Npz),
            _ if has_image_extension(path) => Some(FileKind::Image),
            _ => None,
        }
    })
}

/// Whether an image file sits anywhere below `dir` (the files [`ImageFolder`] would take).
fn has_images(dir: &Path, depth: usize) -> Result<bool, DataError> {
    for entry in visible_entries(dir)? {
        if entry.is_dir() {
            if depth < MAX_DEPTH && has_images(&entry, depth + 1)? {
                return Ok(true);
            }
        } else if has_image_extension(&entry) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the folder is labelled by its layout: no image directly in it, and 2+ sub-folders
/// with images.
fn labelled_by_subfolders(dir: &Path) -> Result<bool, DataError> {
    let mut classes = 0;
    for entry in visible_entries(dir)? {
        if entry.is_dir() {
            if has_images(&entry, 1)? {
                classes += 1;
            }
        } else if has_image_extension(&entry) {
            return Ok(false);
        }
    }
    Ok(classes >= 2)
}

fn refuse_rotations(options: DataOptions<'_>, file: &Path) -> Result<(), DataError> {
    if options.rotations {
        return Err(DataError::Spec {
            field: "rotations".into(),
            reason: format!(
                "--rotations labels images of a folder; {} is not images",
                file.display()
            ),
        });
    }
    Ok(())
}

type Opened = (Arc<dyn DataLoader>, &'static str, Option<Labels>, usize);

/// An image folder (or one image file), every header read so an undecodable file fails now.
fn open_images(
    option: &'static str,
    path: &Path,
    options: DataOptions<'_>,
    spec: kiln_pipeline::Preprocess,
) -> Result<Opened, InputError> {
    let data_error = |source: DataError| InputError::Data {
        option,
        path: path.to_owned(),
        source,
    };
    let (mode, source) = if options.rotations {
        (LabelMode::None, None)
    } else if let Some(file) = options.labels {
        let names = read_label_names(file).map_err(|source| InputError::Data {
            option: "--labels",
            path: file.to_owned(),
            source,
        })?;
        (
            LabelMode::FromSubfolders { names: Some(names) },
            Some(format!("--labels {} (class sub-folders)", file.display())),
        )
    } else if path.is_dir() && labelled_by_subfolders(path).map_err(data_error)? {
        (
            LabelMode::FromSubfolders { names: None },
            Some(format!("class sub-folders of {}", path.display())),
        )
    } else {
        (LabelMode::None, None)
    };
    let folder = if path.is_file() {
        if options.labels.is_some() {
            return Err(data_error(DataError::Labels {
                reason: "--labels names class sub-folders; give a folder, not one image".into(),
            }));
        }
        ImageFolder::from_files(vec![path.to_owned()], spec)
    } else {
        ImageFolder::open(
            path,
            ImageFolderOptions {
                preprocess: spec,
                labels: mode,
            },
        )
    }
    .map_err(data_error)?;
    folder.scan().map_err(data_error)?;
    let skipped = folder.skipped().len();
    if options.rotations {
        let labels = Labels {
            source: "rotations by 0/90/180/270 degrees clockwise (--rotations)".into(),
            classes: Some(4),
        };
        return Ok((
            Arc::new(Rotations::new(folder)),
            "rotations",
            Some(labels),
            skipped,
        ));
    }
    let labels = source.map(|source| Labels {
        source,
        classes: Some(folder.classes().len()),
    });
    Ok((Arc::new(folder), "image_folder", labels, skipped))
}

/// An MNIST-style CSV, its pixels normalised as the spec says.
fn open_csv(
    file: &Path,
    options: DataOptions<'_>,
    spec: &kiln_pipeline::Preprocess,
) -> Result<(Arc<dyn DataLoader>, Option<Labels>), DataError> {
    if spec.layout != Layout::Nchw {
        return Err(DataError::Spec {
            field: "layout".into(),
            reason: "CSV rows become NCHW tensors; the spec asks for NHWC".into(),
        });
    }
    let single = |field: &str, values: &[f32]| -> Result<f32, DataError> {
        match values {
            [first, rest @ ..] if rest.iter().all(|v| v == first) => Ok(*first),
            _ => Err(DataError::Spec {
                field: field.into(),
                reason: format!(
                    "{values:?}: CSV pixels take one {field} for every channel, not one per channel"
                ),
            }),
        }
    };
    let csv = MnistCsv::open(
        file,
        MnistCsvOptions {
            input: spec.input_name().to_owned(),
            shape: [spec.channels.count(), spec.size[0], spec.size[1]],
            norm: PixelNorm {
                scale: spec.scale,
                mean: single("mean", &spec.mean)?,
                std: single("std", &spec.std)?,
            },
            ..MnistCsvOptions::default()
        },
    )?;
    let classes = csv.labels().max().map_or(0, |m| m + 1);
    let labels = match options.labels {
        Some(names_file) => {
            let names = read_label_names(names_file)?;
            if classes > names.len() {
                return Err(DataError::Labels {
                    reason: format!(
                        "{} has labels up to {} but {} names {} classes",
                        file.display(),
                        classes - 1,
                        names_file.display(),
                        names.len()
                    ),
                });
            }
            Labels {
                source: format!("--labels {}", names_file.display()),
                classes: Some(names.len()),
            }
        }
        None => Labels {
            source: format!("the label column of {}", file.display()),
            classes: Some(classes),
        },
    };
    Ok((Arc::new(csv), Some(labels)))
}

/// A `.npy` (the model's one input) or `.npz` (one array per input, `labels` for labels).
fn open_npy(
    option: &'static str,
    file: &Path,
    kind: FileKind,
    options: DataOptions<'_>,
    model: &ModelFile,
) -> Result<(Arc<dyn DataLoader>, Option<Labels>), InputError> {
    let data_error = |source: DataError| InputError::Data {
        option,
        path: file.to_owned(),
        source,
    };
    let names_labels = |classes: Option<usize>| -> Result<Option<Labels>, InputError> {
        match options.labels {
            Some(names_file) => {
                let names = read_label_names(names_file).map_err(|source| InputError::Data {
                    option: "--labels",
                    path: names_file.to_owned(),
                    source,
                })?;
                Ok(Some(Labels {
                    source: format!("--labels {}", names_file.display()),
                    classes: Some(names.len()),
                }))
            }
            None => Ok(classes.map(|_| Labels {
                source: format!("array \"labels\" of {}", file.display()),
                classes: None,
            })),
        }
    };
    if kind == FileKind::Npy {
        let [input] = model.inputs.as_slice() else {
            return Err(InputError::ModelInputs {
                path: model.path.clone(),
                reason: format!(
                    "a .npy file feeds one input, but the model has {}; give an .npz file with \
                     one array per input",
                    model.inputs.len()
                ),
            });
        };
        let loader = NpyLoader::open(
            file,
            NpyOptions {
                input: Some(input.name.clone()),
                ..NpyOptions::default()
            },
        )
        .map_err(data_error)?;
        return Ok((Arc::new(loader), names_labels(None)?));
    }
    // An array called `labels`, when there is one, labels the samples.
    let with_labels = NpyOptions {
        labels: Some("labels".into()),
        ..NpyOptions::default()
    };
    let (mut loader, mut npy_options, labelled) = match NpyLoader::open(file, with_labels.clone()) {
        Ok(loader) => (loader, with_labels, true),
        Err(DataError::Spec { field, .. }) if field == "labels" => {
            let plain = NpyOptions::default();
            (
                NpyLoader::open(file, plain.clone()).map_err(data_error)?,
                plain,
                false,
            )
        }
        Err(e) => return Err(data_error(e)),
    };
    // One array for a one-input model feeds that input whatever its name.
    let arrays: Vec<String> = loader.inputs().map(|(n, _)| n.to_owned()).collect();
    if let ([input], [array]) = (model.inputs.as_slice(), arrays.as_slice())
        && input.name != *array
    {
        npy_options.inputs = Some([(input.name.clone(), array.clone())].into_iter().collect());
        loader = NpyLoader::open(file, npy_options).map_err(data_error)?;
    }
    Ok((Arc::new(loader), names_labels(labelled.then_some(0))?))
}

/// Loads sample 0 and checks it carries every model input with the model's fixed dimensions;
/// returns each model input's sample shape.
fn check_first_sample(
    option: &'static str,
    path: &Path,
    loader: &dyn DataLoader,
    model: &ModelFile,
) -> Result<Vec<(String, Vec<usize>)>, InputError> {
    let sample = loader.get(0).map_err(|source| InputError::Data {
        option,
        path: path.to_owned(),
        source,
    })?;
    let mismatch = |reason: String| InputError::DataMismatch {
        option,
        path: path.to_owned(),
        reason,
    };
    let mut shapes = Vec::new();
    for input in &model.inputs {
        let Some(tensor) = sample.inputs.get(&input.name) else {
            return Err(mismatch(format!(
                "the samples carry {} but the model takes {input}",
                sample.inputs.names().collect::<Vec<_>>().join(", ")
            )));
        };
        let shape = tensor.shape().to_vec();
        if let Some(dims) = &input.shape {
            let fits = dims.len() == shape.len()
                && dims
                    .iter()
                    .zip(&shape)
                    .skip(1)
                    .all(|(d, &n)| d.is_none_or(|d| d == n));
            if !fits {
                return Err(mismatch(format!(
                    "a sample of input {:?} has shape {shape:?}, which the model's {input} does \
                     not take",
                    input.name
                )));
            }
        }
        shapes.push((input.name.clone(), shape));
    }
    Ok(shapes)
}
