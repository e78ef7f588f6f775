//! Separable 8-bit image resampling with Pillow's exact arithmetic.
//!
//! Pillow (`Image.resize`, used by the peer harness and most Python preprocessing) resamples in two
//! passes, horizontal then vertical, each rounding to 8 bits: per output pixel a window of the
//! filter's support, widened by the scale when shrinking (antialiasing), with weights normalised to
//! sum 1 and stored as fixed-point integers (22 fractional bits). Reproducing that here — rather
//! than resampling in float — makes kiln's inputs identical to the harness's, bit for bit in
//! practice, for bilinear, bicubic and Lanczos alike. OpenCV's `INTER_LINEAR` does not widen the
//! filter when shrinking and so differs on downscaled edges.

use crate::loaders::preprocess::Filter;

/// Fractional bits of the fixed-point weights (Pillow's `PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// An interleaved 8-bit image: `height` rows of `width` pixels of `channels` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Raw {
    pub data: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl Raw {
    /// A `width x height` image filled with `value`.
    pub fn filled(width: usize, height: usize, channels: usize, value: u8) -> Raw {
        Raw {
            data: vec![value; width * height * channels],
            width,
            height,
            channels,
        }
    }

    /// Copies `src` with its top-left corner at `(top, left)` (which must fit).
    pub fn paste(&mut self, src: &Raw, top: usize, left: usize) {
        let c = self.channels;
        let row = src.width * c;
        for y in 0..src.height {
            let dst = ((top + y) * self.width + left) * c;
            self.data[dst..dst + row].copy_from_slice(&src.data[y * row..(y + 1) * row]);
        }
    }

    /// Resized to `width x height` with `filter` (a copy when the size is unchanged).
    pub fn resize(&self, width: usize, height: usize, filter: Filter) -> Raw {
        if (width, height) == (self.width, self.height) || self.data.is_empty() {
            return Raw {
                data: if self.data.is_empty() {
                    vec![0; width * height * self.channels]
                } else {
                    self.data.clone()
                },
                width,
                height,
                channels: self.channels,
            };
        }
        if filter == Filter::Nearest {
            return self.nearest(width, height);
        }
        let horizontal = (width != self.width).then(|| self.pass_horizontal(width, filter));
        let source = horizontal.as_ref().unwrap_or(self);
        if height != source.height {
            source.pass_vertical(height, filter)
        } else {
            source.clone()
        }
    }

    /// Pillow's nearest neighbour: the source pixel under each output pixel's centre.
    fn nearest(&self, width: usize, height: usize) -> Raw {
        let c = self.channels;
        let pick = |out: usize, size_in: usize, size_out: usize| {
            let x = ((out as f64 + 0.5) * size_in as f64 / size_out as f64) as usize;
            x.min(size_in - 1)
        };
        let xs: Vec<usize> = (0..width).map(|x| pick(x, self.width, width)).collect();
        let mut data = Vec::with_capacity(width * height * c);
        for y in 0..height {
            let sy = pick(y, self.height, height);
            let row = &self.data[sy * self.width * c..(sy + 1) * self.width * c];
            for &sx in &xs {
                data.extend_from_slice(&row[sx * c..(sx + 1) * c]);
            }
        }
        Raw {
            data,
            width,
            height,
            channels: c,
        }
    }

    fn pass_horizontal(&self, width: usize, filter: Filter) -> Raw {
        let c = self.channels;
        let coeffs = Coefficients::new(self.width, width, filter);
        let mut data = vec![0u8; width * self.height * c];
        for y in 0..self.height {
            let row = &self.data[y * self.width * c..(y + 1) * self.width * c];
            let out = &mut data[y * width * c..(y + 1) * width * c];
            for x in 0..width {
                let (start, weights) = coeffs.window(x);
                for ch in 0..c {
                    let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &w) in weights.iter().enumerate() {
                        acc += i64::from(row[(start + i) * c + ch]) * i64::from(w);
                    }
                    out[x * c + ch] = clip8(acc);
                }
            }
        }
        Raw {
            data,
            width,
            height: self.height,
            channels: c,
        }
    }

    fn pass_vertical(&self, height: usize, filter: Filter) -> Raw {
        let c = self.channels;
        let stride = self.width * c;
        let coeffs = Coefficients::new(self.height, height, filter);
        let mut data = vec![0u8; stride * height];
        let mut acc = vec![0i64; stride];
        for y in 0..height {
            let (start, weights) = coeffs.window(y);
            acc.fill(1 << (PRECISION_BITS - 1));
            for (i, &w) in weights.iter().enumerate() {
                let row = &self.data[(start + i) * stride..(start + i + 1) * stride];
                for (a, &p) in acc.iter_mut().zip(row) {
                    *a += i64::from(p) * i64::from(w);
                }
            }
            for (o, &a) in data[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
                *o = clip8(a);
            }
        }
        Raw {
            data,
            width: self.width,
            height,
            channels: c,
        }
    }
}

/// Rounds a fixed-point sum to a byte, clamped (Pillow's `clip8`).
fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Per output pixel: the first source pixel and the fixed-point weights of its window.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

impl Coefficients {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the whole input range.
    fn new(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
        let scale = in_size as f64 / out_size as f64;
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * ksize];
        let mut k = vec![0f64; ksize];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates toward zero, as `as` does.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64)
                .min(in_size as i64)
                .max(xmin as i64) as usize;
            let count = (xmax - xmin).min(ksize);
            let mut total = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(count) {
                let w = filter.kernel(((x + xmin) as f64 - center + 0.5) / filterscale);
                *kx = w;
                total += w;
            }
            for (x, &kx) in k.iter().enumerate().take(count) {
                let w = if total != 0.0 { kx / total } else { kx };
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                weights[xx * ksize + x] = if w < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            bounds.push((xmin, count));
        }
        Coefficients {
            bounds,
            ksize,
            weights,
        }
    }

    fn window(&self, out: usize) -> (usize, &[i32]) {
        let (start, count) = self.bounds[out];
        let at = out * self.ksize;
        (start, &self.weights[at..at + count])
    }
}

impl Filter {
    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Nearest => 0.5,
            Filter::Triangle => 1.0,
            Filter::CatmullRom => 2.0,
            Filter::Lanczos3 => 3.0,
        }
    }

    /// The kernel (Pillow's `bilinear_filter`, `bicubic_filter` with a = -0.5, `lanczos_filter`).
    fn kernel(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Nearest => {
                if x < 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Triangle => (1.0 - x).max(0.0),
            Filter::CatmullRom => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Filter::Lanczos3 => {
                if x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = x * std::f64::consts::PI;
        px.sin() / px
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(width: usize, height: usize, data: Vec<u8>) -> Raw {
        Raw {
            data,
            width,
            height,
            channels: 1,
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        for filter in [
            Filter::Nearest,
            Filter::Triangle,
            Filter::CatmullRom,
            Filter::Lanczos3,
        ] {
            let img = Raw::filled(37, 23, 3, 200);
            for (w, h) in [(10, 7), (80, 50), (37, 5), (3, 23)] {
                let out = img.resize(w, h, filter);
                assert_eq!((out.width, out.height, out.data.len()), (w, h, w * h * 3));
                assert!(out.data.iter().all(|&v| v == 200), "{filter:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn bilinear_matches_hand_computed_pillow_values() {
        // Halving [0, 100, 200, 250] with the widened (support 2) triangle: centres 1 and 3,
        // windows [0, 3) weights 1/3, 1/3... exactly: taps at distance .5 and 1.5 -> .75, .25.
        let img = gray(4, 1, vec![0, 100, 200, 250]);
        let out = img.resize(2, 1, Filter::Triangle);
        // x0: (0*.75 + 100*.75 + 200*.25) / 1.75 = 71.43 -> 71; x1: (100*.25 + 200*.75 + 250*.75)
        // / 1.75 = 207.1 -> 207.
        assert_eq!(out.data, [71, 207]);
        // Doubling: output centres at .25, .75, ... of the source pixel grid.
        let out = gray(2, 1, vec![0, 100]).resize(4, 1, Filter::Triangle);
        assert_eq!(out.data, [0, 25, 75, 100]);
    }

    #[test]
    fn paste_places_rows() {
        let mut canvas = Raw::filled(3, 3, 1, 0);
        canvas.paste(&gray(2, 2, vec![1, 2, 3, 4]), 1, 1);
        assert_eq!(canvas.data, [0, 0, 0, 0, 1, 2, 0, 3, 4]);
    }
}
