//! A single-pass histogram over an unknown range: [`Histogram`] (the serializable result, with
//! quantiles and MSE-optimal clipping ranges) and [`HistogramReducer`] (the streaming reducer).
//!
//! # Growing the range
//!
//! The first values fix the range: `bins` bins of width `(max - min) / (bins - 1)` starting at
//! `min`, so the largest value sits inside the last bin (bins are half-open, `[e_i, e_{i+1})`).
//! When later values fall outside, the width doubles, anchored at the opposite edge (growing down
//! keeps the top edge, growing up keeps the bottom edge), and adjacent bin pairs merge into the
//! half of the new range the old one covers. Old edges are new edges, so re-binning is exact: no
//! count moves across a boundary it did not already sit behind. Memory is `bins` counters,
//! whatever the number of values.
//!
//! # Using it
//!
//! [`Histogram::quantile`] inverts the CDF with linear interpolation inside a bin (error at most
//! one bin width); [`Histogram::mse_range`] finds the clipping range that minimizes the expected
//! squared error of quantizing the distribution to a number of levels (clipping error of the
//! values outside plus the exact rounding error of those inside, with values spread uniformly
//! inside each bin).

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::scan::{self, Binning, NonFinite, Scan};

/// The default number of bins (as NNCF and POT use for histogram-based range estimation).
pub const DEFAULT_BINS: usize = 2048;

/// The most bins a histogram may have.
pub const MAX_BINS: usize = 1 << 20;

/// A histogram of the finite values seen, with the exact extremes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HistogramRepr", into = "HistogramRepr")]
pub struct Histogram {
    /// Left edge of bin 0.
    lo: f64,
    /// Bin width (0 while empty).
    width: f64,
    counts: Vec<u64>,
    total: u64,
    /// Exact finite extremes (`+inf` / `-inf` while empty).
    min: f32,
    max: f32,
}

/// The serialized form: the same fields, extremes as options (JSON has no infinity).
#[derive(Serialize, Deserialize)]
struct HistogramRepr {
    lo: f64,
    width: f64,
    counts: Vec<u64>,
    min: Option<f32>,
    max: Option<f32>,
}

impl From<Histogram> for HistogramRepr {
    fn from(h: Histogram) -> HistogramRepr {
        let empty = h.total == 0;
        HistogramRepr {
            lo: h.lo,
            width: h.width,
            counts: h.counts,
            min: (!empty).then_some(h.min),
            max: (!empty).then_some(h.max),
        }
    }
}

impl TryFrom<HistogramRepr> for Histogram {
    type Error = String;

    fn try_from(r: HistogramRepr) -> Result<Histogram, String> {
        check_bins(r.counts.len()).map_err(|e| e.to_string())?;
        let total: u64 = r.counts.iter().sum();
        let (min, max) = match (total, r.min, r.max) {
            (0, None, None) => (f32::INFINITY, f32::NEG_INFINITY),
            (t, Some(min), Some(max)) if t > 0 && min <= max => (min, max),
            _ => return Err("min/max do not match the counts".into()),
        };
        let valid_range = r.lo.is_finite()
            && r.width.is_finite()
            && (r.width > 0.0 || total == 0)
            && r.width >= 0.0;
        if !valid_range {
            return Err(format!("invalid range: lo {} width {}", r.lo, r.width));
        }
        Ok(Histogram {
            lo: r.lo,
            width: r.width,
            counts: r.counts,
            total,
            min,
            max,
        })
    }
}

fn check_bins(bins: usize) -> Result<(), StatsError> {
    if bins < 2 || !bins.is_multiple_of(2) || bins > MAX_BINS {
        return Err(StatsError::Bins { bins });
    }
    Ok(())
}

/// Options of [`Histogram::mse_range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MseOptions {
    /// Quantization levels (256 for 8 bits; 255 for a symmetric signed range `[-127, 127]`).
    pub levels: u32,
    /// Search a range symmetric around zero, `[-t, t]`.
    pub symmetric: bool,
    /// Keep zero inside the range (asymmetric quantization needs an exact zero point).
    pub include_zero: bool,
}

impl Default for MseOptions {
    fn default() -> Self {
        MseOptions {
            levels: 256,
            symmetric: false,
            include_zero: true,
        }
    }
}

impl Histogram {
    /// An empty histogram of `bins` bins (even, 2 to [`MAX_BINS`]).
    pub fn new(bins: usize) -> Result<Histogram, StatsError> {
        check_bins(bins)?;
        Ok(Histogram {
            lo: 0.0,
            width: 0.0,
            counts: vec![0; bins],
            total: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        })
    }

    /// Adds the finite values of `xs` (non-finite ones are skipped; see
    /// [`HistogramReducer`] to count them and reuse scratch memory).
    pub fn add(&mut self, xs: &[f32]) {
        let mut lanes = Vec::new();
        let s = scan::scan(xs);
        self.add_scanned(xs, &s, &mut lanes);
    }

    /// Adds `xs`, whose [`Scan`] is `s`, using `lanes` as scratch.
    pub(crate) fn add_scanned(&mut self, xs: &[f32], s: &Scan, lanes: &mut Vec<u32>) {
        let Some((min, max)) = s.range() else {
            return;
        };
        self.cover(min, max);
        let bins = self.counts.len();
        lanes.clear();
        lanes.resize(4 * (bins + 1), 0);
        // u32 sub-histogram counters: flush every 2^31 values.
        for part in xs.chunks(1 << 31) {
            scan::bin_into(part, self.binning(), lanes);
            for (i, count) in self.counts.iter_mut().enumerate() {
                *count += (0..4)
                    .map(|k| u64::from(lanes[k * (bins + 1) + i]))
                    .sum::<u64>();
            }
            lanes.fill(0);
        }
        self.total += s.finite;
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    fn binning(&self) -> Binning {
        Binning {
            lo: self.lo,
            inv: 1.0 / self.width,
            bins: self.counts.len(),
        }
    }

    /// Makes the range cover `[min, max]`: fixes it on first use, else doubles the width as often
    /// as needed, each time anchored at the edge opposite to the side that must grow.
    fn cover(&mut self, min: f32, max: f32) {
        let (min, max) = (f64::from(min), f64::from(max));
        let n = self.counts.len();
        if self.width == 0.0 {
            self.lo = min;
            self.width = if max > min {
                (max - min) / (n - 1) as f64
            } else {
                // A constant: a width at the resolution of f32 around it.
                min.abs().max(1.0) * f64::from(f32::EPSILON)
            };
            return;
        }
        loop {
            let hi = self.hi();
            let down = min < self.lo;
            let up = max >= hi;
            if !down && !up {
                return;
            }
            if down && (!up || self.lo - min >= max - hi) {
                self.grow_down();
            } else {
                self.grow_up();
            }
        }
    }

    /// Doubles the width keeping the top edge: old bins fill the upper half, pairwise merged.
    fn grow_down(&mut self) {
        let n = self.counts.len();
        let half = n / 2;
        // Descending: target `half + j` lies above every source still to be read.
        for j in (0..half).rev() {
            self.counts[half + j] = self.counts[2 * j] + self.counts[2 * j + 1];
        }
        self.counts[..half].fill(0);
        self.lo -= n as f64 * self.width;
        self.width *= 2.0;
    }

    /// Doubles the width keeping the bottom edge: old bins fill the lower half, pairwise merged.
    fn grow_up(&mut self) {
        let n = self.counts.len();
        let half = n / 2;
        for j in 0..half {
            self.counts[j] = self.counts[2 * j] + self.counts[2 * j + 1];
        }
        self.counts[half..].fill(0);
        self.width *= 2.0;
    }

    /// Number of bins.
    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    /// Count per bin.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Number of values counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether no value was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Left edge of bin 0.
    pub fn lo(&self) -> f64 {
        self.lo
    }

    /// Right edge of the last bin.
    pub fn hi(&self) -> f64 {
        self.lo + self.counts.len() as f64 * self.width
    }

    /// Bin width (0 while empty).
    pub fn width(&self) -> f64 {
        self.width
    }

    /// Left edge of bin `i` (`i == bins()` gives the right edge of the last bin).
    pub fn edge(&self, i: usize) -> f64 {
        self.lo + i as f64 * self.width
    }

    /// Smallest value counted.
    pub fn min(&self) -> Option<f32> {
        (self.total > 0).then_some(self.min)
    }

    /// Largest value counted.
    pub fn max(&self) -> Option<f32> {
        (self.total > 0).then_some(self.max)
    }

    /// The `q`-quantile (`q` in `[0, 1]`, clamped): the inverse CDF, linear inside a bin, clamped
    /// to the exact extremes. Within one bin width of the exact order statistic.
    pub fn quantile(&self, q: f64) -> Option<f32> {
        if self.total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.5 } else { q.clamp(0.0, 1.0) };
        if q <= 0.0 {
            return Some(self.min);
        }
        if q >= 1.0 {
            return Some(self.max);
        }
        let target = q * self.total as f64;
        let mut cum = 0.0f64;
        for (i, &c) in self.counts.iter().enumerate() {
            if c == 0 {
                continue;
            }
            let next = cum + c as f64;
            if next >= target {
                let frac = (target - cum) / c as f64;
                let v = self.lo + (i as f64 + frac) * self.width;
                return Some((v as f32).clamp(self.min, self.max));
            }
            cum = next;
        }
        Some(self.max)
    }

    /// The `p`-th percentile (`p` in `[0, 100]`): [`quantile`](Histogram::quantile)`(p / 100)`.
    pub fn percentile(&self, p: f64) -> Option<f32> {
        self.quantile(p / 100.0)
    }

    /// The clipping range `[lo, hi]` minimizing the expected squared quantization error over this
    /// histogram, taking values as uniformly spread inside each bin: values outside the range cost
    /// their squared distance to it, values inside their squared distance to the nearest of the
    /// `levels` grid points (computed exactly per bin, not as the `step² / 12` approximation, which
    /// overestimates coarse grids). The search is coarse-to-fine (an exhaustive coarse grid, then
    /// coordinate descent at finer spacings down to one bin). The result is clamped to the exact
    /// extremes (with `include_zero`, then widened to contain 0). `None` when empty or
    /// `levels < 2`.
    pub fn mse_range(&self, options: &MseOptions) -> Option<(f32, f32)> {
        if self.total == 0 || options.levels < 2 {
            return None;
        }
        let (first, last) = self.occupied()?;
        let search = MseSearch {
            counts: &self.counts,
            first,
            end: last + 1,
            levels: options.levels,
        };
        // Positions are in bin units: bin `i` spans `[i, i + 1)`; `zero` is where 0 falls.
        let zero = -self.lo / self.width;
        let to_abs = |p: f64| (self.lo + p * self.width) as f32;
        if options.symmetric {
            let max_abs = self.min.abs().max(self.max.abs());
            let t = search.symmetric(zero, f64::from(max_abs) / self.width);
            let t = ((t * self.width) as f32).min(max_abs);
            return Some((-t, t));
        }
        let (a, b) = search.asymmetric(options.include_zero.then_some(zero));
        let mut lo = to_abs(a).max(self.min);
        let mut hi = to_abs(b).min(self.max);
        if options.include_zero {
            lo = lo.min(0.0);
            hi = hi.max(0.0);
        }
        Some((lo, hi.max(lo)))
    }

    /// First and last non-empty bins.
    fn occupied(&self) -> Option<(usize, usize)> {
        let first = self.counts.iter().position(|&c| c > 0)?;
        let last = self.counts.iter().rposition(|&c| c > 0)?;
        Some((first, last))
    }
}

/// A bin of a (possibly regrouped) histogram in bin units: `[l, r)` holding `count` values.
#[derive(Debug, Clone, Copy)]
struct Span {
    l: f64,
    r: f64,
    count: f64,
}

/// Candidates per coordinate at the coarsest level, and the refinement factor between levels.
const COARSE_STEPS: usize = 64;
const REFINE: f64 = 8.0;

/// The MSE range search over the occupied bins `first..end` of a histogram, in bin units.
struct MseSearch<'a> {
    counts: &'a [u64],
    first: usize,
    end: usize,
    levels: u32,
}

impl MseSearch<'_> {
    /// The occupied bins regrouped by `group` (the last group may be shorter).
    fn spans(&self, group: usize) -> Vec<Span> {
        let group = group.max(1);
        (self.first..self.end)
            .step_by(group)
            .map(|l| {
                let r = (l + group).min(self.end);
                Span {
                    l: l as f64,
                    r: r as f64,
                    count: self.counts[l..r].iter().sum::<u64>() as f64,
                }
            })
            .filter(|s| s.count > 0.0)
            .collect()
    }

    /// The expected squared error (times the count) of quantizing `spans` onto `levels` grid
    /// points spanning `[a, b]`, each span's mass uniform over it.
    fn error(&self, spans: &[Span], a: f64, b: f64) -> f64 {
        let step = (b - a) / f64::from(self.levels - 1);
        let mut e = 0.0;
        for s in spans {
            let density = s.count / (s.r - s.l);
            if s.l < a {
                let r = s.r.min(a);
                e += density * ((a - s.l).powi(3) - (a - r).powi(3)) / 3.0;
            }
            if s.r > b {
                let l = s.l.max(b);
                e += density * ((s.r - b).powi(3) - (l - b).powi(3)) / 3.0;
            }
            let (l, r) = (s.l.max(a), s.r.min(b));
            if r > l && step > 0.0 {
                e += density * step.powi(3) * (sawtooth((r - a) / step) - sawtooth((l - a) / step));
            }
        }
        e
    }

    /// The best `(a, b)`; with `zero`, `a <= zero <= b`.
    fn asymmetric(&self, zero: Option<f64>) -> (f64, f64) {
        let (p0, p1) = (self.first as f64, self.end as f64);
        // Where each end may lie.
        let (ra, rb) = match zero {
            Some(z) if z <= p0 => ((z, z), (p0, p1)),
            Some(z) if z >= p1 => ((p0, p1), (z, z)),
            Some(z) => ((p0, z), (z, p1)),
            None => ((p0, p1), (p0, p1)),
        };
        let span = p1 - p0;
        let mut spacing = span / COARSE_STEPS as f64;
        // Coarse: every pair on a grid over both ranges.
        let spans = self.spans((spacing / 2.0).floor() as usize);
        let grid = |(lo, hi): (f64, f64)| -> Vec<f64> {
            if hi <= lo {
                return vec![lo];
            }
            let n = ((hi - lo) / spacing).ceil().max(1.0) as usize;
            (0..=n)
                .map(|k| lo + (hi - lo) * k as f64 / n as f64)
                .collect()
        };
        let mut best = (f64::INFINITY, ra.0, rb.1);
        for &a in &grid(ra) {
            for &b in &grid(rb) {
                if b > a {
                    let e = self.error(&spans, a, b);
                    if e < best.0 {
                        best = (e, a, b);
                    }
                }
            }
        }
        let (_, mut a, mut b) = best;
        // Refine: coordinate descent around the best at finer spacings, down to one bin.
        while spacing > 1.0 {
            let window = 2.0 * spacing;
            spacing = (spacing / REFINE).max(1.0);
            let spans = self.spans((spacing / 2.0).floor() as usize);
            for _ in 0..2 {
                a = self.line_search(&spans, a, window, spacing, ra, |x| (x, b));
                b = self.line_search(&spans, b, window, spacing, rb, |x| (a, x));
            }
        }
        (a, b)
    }

    /// The best `t` for the range `[zero - t, zero + t]`, `t` up to `max_t` (all in bin units).
    fn symmetric(&self, zero: f64, max_t: f64) -> f64 {
        let range = (max_t / COARSE_STEPS as f64 / 4.0, max_t);
        let mut spacing = max_t / COARSE_STEPS as f64;
        let spans = self.spans((spacing / 2.0).floor() as usize);
        let mut t = self.line_search(&spans, max_t / 2.0, max_t, spacing, range, |t| {
            (zero - t, zero + t)
        });
        while spacing > 1.0 {
            let window = 2.0 * spacing;
            spacing = (spacing / REFINE).max(1.0);
            let spans = self.spans((spacing / 2.0).floor() as usize);
            t = self.line_search(&spans, t, window, spacing, range, |t| (zero - t, zero + t));
        }
        t
    }

    /// The best `x` within `center ± window` at `spacing` (clamped to `range`, where the range
    /// ends are candidates too), for the range `ends(x)`.
    fn line_search(
        &self,
        spans: &[Span],
        center: f64,
        window: f64,
        spacing: f64,
        (lo, hi): (f64, f64),
        ends: impl Fn(f64) -> (f64, f64),
    ) -> f64 {
        let from = (center - window).max(lo);
        let to = (center + window).min(hi);
        let steps = ((to - from) / spacing).ceil().max(0.0) as usize;
        let mut best = (f64::INFINITY, center);
        let candidates = (0..=steps)
            .map(|k| (from + k as f64 * spacing).min(to))
            .chain([center, lo, hi]);
        for x in candidates {
            let (a, b) = ends(x);
            if b > a && x >= lo && x <= hi {
                let e = self.error(spans, a, b);
                if e < best.0 {
                    best = (e, x);
                }
            }
        }
        best.1
    }
}

/// The integral of the squared distance to the nearest integer from `-0.5` to `u`: the integral
/// over `[u0, u1]` is `sawtooth(u1) - sawtooth(u0)`. Each whole period contributes `1/12`.
fn sawtooth(u: f64) -> f64 {
    let v = u + 0.5;
    let periods = v.floor();
    let f = v - periods;
    periods / 12.0 + ((f - 0.5).powi(3) + 0.125) / 3.0
}

/// Streams values into a [`Histogram`], counting and skipping non-finite ones. Memory: the bins
/// plus a scratch of four `u32` sub-histograms, independent of the number of values.
#[derive(Debug, Clone)]
pub struct HistogramReducer {
    hist: Histogram,
    nonfinite: NonFinite,
    scratch: Vec<u32>,
}

impl HistogramReducer {
    /// A reducer of `bins` bins (even, 2 to [`MAX_BINS`]).
    pub fn new(bins: usize) -> Result<HistogramReducer, StatsError> {
        Ok(HistogramReducer {
            hist: Histogram::new(bins)?,
            nonfinite: NonFinite::default(),
            scratch: Vec::new(),
        })
    }

    /// Adds the values of `xs`.
    pub fn update_slice(&mut self, xs: &[f32]) {
        let s = scan::scan(xs);
        self.update_scanned(xs, &s);
    }

    /// Adds `xs` whose scan is already known (shared with other reducers of the same tensor).
    pub(crate) fn update_scanned(&mut self, xs: &[f32], s: &Scan) {
        if s.nonfinite > 0 {
            self.nonfinite.merge(&NonFinite::count(xs));
        }
        self.update_scanned_uncounted(xs, s);
    }

    /// Adds `xs` whose scan is known and whose non-finite values the caller counts.
    pub(crate) fn update_scanned_uncounted(&mut self, xs: &[f32], s: &Scan) {
        self.hist.add_scanned(xs, s, &mut self.scratch);
    }

    /// The histogram so far.
    pub fn histogram(&self) -> &Histogram {
        &self.hist
    }

    /// Non-finite values skipped.
    pub fn nonfinite(&self) -> NonFinite {
        self.nonfinite
    }

    /// Heap and inline bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.hist.counts.capacity() * std::mem::size_of::<u64>()
            + self.scratch.capacity() * std::mem::size_of::<u32>()
    }
}
