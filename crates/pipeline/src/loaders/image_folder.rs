//! `ImageFolder`: the image files of a folder, in sorted order, optionally labelled by sub-folder.
//!
//! Files are chosen by extension (`jpg`, `jpeg`, `png`, any case) and decoded by content, so a PNG
//! named `.jpg` still loads. Other files are skipped and counted ([`ImageFolder::skipped`]);
//! entries whose name starts with `.` are ignored. A file with an image extension that does not
//! decode is a [`DataError::Decode`] naming it when [`get`](DataLoader::get) reaches it —
//! [`ImageFolder::scan`] finds such files upfront by reading every header.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use serde::{Deserialize, Serialize};

use crate::data::{Annotation, DataError, DataLoader, Sample};
use crate::loaders::preprocess::{Preprocess, decode_image, image_size};
use crate::tensor::TensorMap;

/// File extensions taken as images (compared case-insensitively).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// Symbolic-link loops and absurd trees stop here.
const MAX_DEPTH: usize = 32;

/// Where an [`ImageFolder`]'s labels come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LabelMode {
    /// No labels ([`Annotation::None`]): every image under the folder, recursively.
    #[default]
    None,
    /// The folder holds one sub-folder per class (images anywhere below it); the class index is:
    /// * with `names` (a labels file, see [`read_label_names`]): the sub-folder name's position in
    ///   `names`, or the folder name itself when it is an integer below `names.len()`; any other
    ///   name is a [`DataError::Labels`] listing them all;
    /// * without: the integer value when every sub-folder name is an integer (`0`..`9`, so `10`
    ///   sorts after `9`), else the position in the alphabetically sorted sub-folder names.
    ///
    /// Files directly in the folder are skipped.
    FromSubfolders {
        /// Class names by index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        names: Option<Vec<String>>,
    },
}

/// Options of [`ImageFolder::open`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFolderOptions {
    /// How images become tensors (and which input they feed).
    pub preprocess: Preprocess,
    /// Where labels come from.
    #[serde(default)]
    pub labels: LabelMode,
}

impl ImageFolderOptions {
    /// Unlabelled images through `preprocess`.
    pub fn new(preprocess: Preprocess) -> ImageFolderOptions {
        ImageFolderOptions {
            preprocess,
            labels: LabelMode::None,
        }
    }

    /// Labels from sub-folders, indexed by `names` when given.
    pub fn with_subfolder_labels(mut self, names: Option<Vec<String>>) -> ImageFolderOptions {
        self.labels = LabelMode::FromSubfolders { names };
        self
    }
}

/// Images of a folder, decoded and preprocessed lazily in [`get`](DataLoader::get).
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    files: Vec<(PathBuf, Option<usize>)>,
    classes: Vec<String>,
    skipped: Vec<PathBuf>,
    preprocess: Preprocess,
}

impl ImageFolder {
    /// Lists the images under `root` (sorted by path) and resolves their labels. Reads no image.
    ///
    /// Errors: [`DataError::Io`] when `root` (or a folder below it) cannot be read or is not a
    /// folder, [`DataError::Empty`] when no image is found, [`DataError::Labels`] for sub-folders
    /// the labels do not name, [`DataError::Spec`] for an invalid preprocessing spec.
    pub fn open(
        root: impl AsRef<Path>,
        options: ImageFolderOptions,
    ) -> Result<ImageFolder, DataError> {
        let root = root.as_ref().to_owned();
        options.preprocess.validate()?;
        let meta = fs::metadata(&root).map_err(|source| DataError::Io {
            path: root.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(DataError::Io {
                path: root.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a folder"),
            });
        }
        let mut skipped = Vec::new();
        let (files, classes) = match &options.labels {
            LabelMode::None => {
                let mut images = Vec::new();
                collect(&root, 0, &mut images, &mut skipped)?;
                (images.into_iter().map(|p| (p, None)).collect(), Vec::new())
            }
            LabelMode::FromSubfolders { names } => {
                let mut folders = Vec::new();
                for entry in visible_entries(&root)? {
                    if is_dir(&entry) {
                        folders.push(entry);
                    } else {
                        skipped.push(entry);
                    }
                }
                if folders.is_empty() {
                    return Err(DataError::Empty {
                        path: root,
                        what: "class sub-folders".into(),
                    });
                }
                let folder_names: Vec<String> = folders
                    .iter()
                    .map(|f| {
                        f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    })
                    .collect();
                let (indices, classes) = class_indices(&folder_names, names.as_deref())?;
                let mut files = Vec::new();
                for (folder, class) in folders.iter().zip(indices) {
                    let mut images = Vec::new();
                    collect(folder, 1, &mut images, &mut skipped)?;
                    files.extend(images.into_iter().map(|p| (p, Some(class))));
                }
                (files, classes)
            }
        };
        for path in &skipped {
            tracing::debug!(path = %path.display(), "image folder: skipped (not a jpg/png)");
        }
        if files.is_empty() {
            return Err(DataError::Empty {
                path: root,
                what: "images (jpg, jpeg, png)".into(),
            });
        }
        Ok(ImageFolder {
            root,
            files,
            classes,
            skipped,
            preprocess: options.preprocess,
        })
    }

    /// A loader over the given image files, in the given order, unlabelled.
    pub fn from_files(
        files: Vec<PathBuf>,
        preprocess: Preprocess,
    ) -> Result<ImageFolder, DataError> {
        preprocess.validate()?;
        let root = files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_owned)
            .unwrap_or_default();
        if files.is_empty() {
            return Err(DataError::Empty {
                path: root,
                what: "images (no file given)".into(),
            });
        }
        Ok(ImageFolder {
            root,
            files: files.into_iter().map(|f| (f, None)).collect(),
            classes: Vec::new(),
            skipped: Vec::new(),
            preprocess,
        })
    }

    /// Reads every image's header (cheap: no pixel is decoded) and returns the `[height, width]`
    /// of each; the first unreadable or undecodable file is the error.
    pub fn scan(&self) -> Result<Vec<[usize; 2]>, DataError> {
        self.files
            .iter()
            .map(|(path, _)| image_size(path))
            .collect()
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image files in sample order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(p, _)| p.as_path())
    }

    /// The file of sample `index`.
    pub fn file(&self, index: usize) -> Option<&Path> {
        self.files.get(index).map(|(p, _)| p.as_path())
    }

    /// The class of sample `index` (`None` when unlabelled or out of range).
    pub fn label(&self, index: usize) -> Option<usize> {
        self.files.get(index).and_then(|(_, c)| *c)
    }

    /// Class names by index (empty when unlabelled).
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Files that were not taken as images.
    pub fn skipped(&self) -> &[PathBuf] {
        &self.skipped
    }

    /// The preprocessing spec.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The decoded image of sample `index`, before preprocessing.
    pub fn image(&self, index: usize) -> Result<DynamicImage, DataError> {
        let (path, _) = self.files.get(index).ok_or(DataError::OutOfRange {
            index,
            len: self.files.len(),
        })?;
        decode_image(path)
    }

    /// Preprocesses `image` as sample `index` (the rotation adapter feeds transformed images).
    pub(crate) fn sample_from(
        &self,
        index: usize,
        image: &DynamicImage,
        annotation: Annotation,
    ) -> Result<Sample, DataError> {
        let (tensor, mut metadata) = self.preprocess.apply(image)?;
        metadata.source = self.file(index).map(Path::to_owned);
        let mut inputs = TensorMap::new();
        inputs.insert(self.preprocess.input_name(), tensor);
        Ok(Sample {
            inputs,
            annotation,
            metadata: Some(metadata),
        })
    }
}

impl DataLoader for ImageFolder {
    fn len(&self) -> usize {
        self.files.len()
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let image = self.image(index)?;
        let annotation = self
            .label(index)
            .map_or(Annotation::None, Annotation::Class);
        self.sample_from(index, &image, annotation)
    }
}

/// The entries of a folder whose names do not start with `.`, sorted (how kiln lists data).
pub fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

/// Whether `path` is a folder (following links).
fn is_dir(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether the file name has an image extension.
/// Whether `path` ends in one of [`IMAGE_EXTENSIONS`] (any case).
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Image files below `dir`, depth-first in sorted order.
fn collect(
    dir: &Path,
    depth: usize,
    images: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), DataError> {
    for entry in visible_entries(dir)? {
        if is_dir(&entry) {
            if depth < MAX_DEPTH {
                collect(&entry, depth + 1, images, skipped)?;
            }
        } else if has_image_extension(&entry) {
            images.push(entry);
        } else {
            skipped.push(entry);
        }
    }
    Ok(())
}

/// Class index of each sub-folder, and the class names by index.
fn class_indices(
    folders: &[String],
    names: Option<&[String]>,
) -> Result<(Vec<usize>, Vec<String>), DataError> {
    let as_int = |s: &str| -> Option<usize> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let indices: Vec<usize> = match names {
        Some(names) => {
            let by_name: BTreeMap<&str, usize> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect();
            let mut unknown = Vec::new();
            let indices = folders
                .iter()
                .map(|f| {
                    by_name
                        .get(f.as_str())
                        .copied()
                        .or_else(|| as_int(f).filter(|&i| i < names.len()))
                        .unwrap_or_else(|| {
                            unknown.push(f.clone());
                            0
                        })
                })
                .collect();
            if !unknown.is_empty() {
                return Err(DataError::Labels {
                    reason: format!(
                        "sub-folder(s) {} are not in the labels ({} names: {})",
                        quote_list(&unknown),
                        names.len(),
                        preview(names)
                    ),
                });
            }
            indices
        }
        None => match folders
            .iter()
            .map(|f| as_int(f))
            .collect::<Option<Vec<_>>>()
        {
            Some(ints) => ints,
            None => {
                let mut sorted: Vec<&String> = folders.iter().collect();
                sorted.sort();
                folders
                    .iter()
                    .map(|f| sorted.iter().position(|s| *s == f).unwrap_or(0))
                    .collect()
            }
        },
    };
    // Two folders for one class (`1` and `01`, or a name and its index) is ambiguous.
    let mut seen: BTreeMap<usize, &str> = BTreeMap::new();
    for (folder, &index) in folders.iter().zip(&indices) {
        if let Some(other) = seen.insert(index, folder) {
            return Err(DataError::Labels {
                reason: format!("sub-folders {other:?} and {folder:?} both map to class {index}"),
            });
        }
    }
    let classes = match names {
        Some(names) => names.to_vec(),
        None => {
            let n = indices.iter().max().map_or(0, |m| m + 1);
            let mut classes: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            for (folder, &index) in folders.iter().zip(&indices) {
                classes[index] = folder.clone();
            }
            classes
        }
    };
    Ok((indices, classes))
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn preview(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = quote_list(&names[..names.len().min(SHOWN)]);
    if names.len() > SHOWN {
        s.push_str(", ...");
    }
    s
}

/// Reads class names from a labels file: a JSON list (`["cat", "dog"]`), a JSON object mapping
/// indices to names (`{"0": "cat", "1": "dog"}`) or names to indices (`{"cat": 0, "dog": 1}`),
/// or plain text with one name per line (blank lines ignored, surrounding spaces trimmed).
///
/// Errors: [`DataError::Io`] (unreadable), [`DataError::Decode`] (bad JSON), [`DataError::Labels`]
/// (empty, duplicate names, indices that are not exactly `0..n`).
pub fn read_label_names(path: &Path) -> Result<Vec<String>, DataError> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_label_names(&text).map_err(|e| match e {
        LabelParseError::Json(reason) => DataError::Decode {
            path: path.to_owned(),
            reason,
        },
        LabelParseError::Labels(reason) => DataError::Labels {
            reason: format!("{}: {reason}", path.display()),
        },
    })
}

enum LabelParseError {
    Json(String),
    Labels(String),
}

fn parse_label_names(text: &str) -> Result<Vec<String>, LabelParseError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let names: Vec<String> = if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|e| LabelParseError::Json(e.to_string()))?;
        match value {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(LabelParseError::Labels(format!(
                        "entry {i} is {other}, not a string"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            serde_json::Value::Object(map) => {
                let mut by_index: BTreeMap<usize, String> = BTreeMap::new();
                for (key, value) in map {
                    let (index, name) = match (key.parse::<usize>(), value) {
                        (Ok(i), serde_json::Value::String(name)) => (i, name),
                        (_, serde_json::Value::Number(n)) => match n.as_u64() {
                            Some(i) => (i as usize, key),
                            None => {
                                return Err(LabelParseError::Labels(format!(
                                    "{key:?} maps to {n}, not a class index"
                                )));
                            }
                        },
                        (_, other) => {
                            return Err(LabelParseError::Labels(format!(
                                "{key:?}: {other} is neither an index->name nor a name->index entry"
                            )));
                        }
                    };
                    if let Some(previous) = by_index.insert(index, name.clone()) {
                        return Err(LabelParseError::Labels(format!(
                            "{previous:?} and {name:?} both have index {index}"
                        )));
                    }
                }
                if let Some((i, _)) = by_index.iter().enumerate().find(|(i, (k, _))| *i != **k) {
                    return Err(LabelParseError::Labels(format!(
                        "indices must be 0..{}; index {i} is missing",
                        by_index.len()
                    )));
                }
                by_index.into_values().collect()
            }
            other => {
                return Err(LabelParseError::Labels(format!(
                    "{other} is not a list or map"
                )));
            }
        }
    } else {
        trimmed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    if names.is_empty() {
        return Err(LabelParseError::Labels("no class names".into()));
    }
    let mut seen = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = seen.insert(name.as_str(), i) {
            return Err(LabelParseError::Labels(format!(
                "{name:?} is both class {j} and class {i}"
            )));
        }
    }
    Ok(names)
}
