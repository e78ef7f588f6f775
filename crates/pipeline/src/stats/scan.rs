//! Hot loops over `&[f32]`: finite min/max with non-finite counting, finite sums, histogram bin
//! indices. Written as fixed-width lane loops without branches so the compiler vectorizes them.

use serde::{Deserialize, Serialize};

/// Lanes of the min/max and sum loops (a multiple of every SIMD width in use).
const LANES: usize = 16;

/// Elements per outer block, so `u32` lane counters cannot overflow.
const BLOCK: usize = 1 << 28;

/// Min, max and counts of the finite values of a slice; NaN and ±inf are counted and skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    /// Smallest finite value (`+inf` when there is none).
    pub min: f32,
    /// Largest finite value (`-inf` when there is none).
    pub max: f32,
    /// Finite values seen.
    pub finite: u64,
    /// Non-finite values seen (and skipped).
    pub nonfinite: u64,
}

impl Scan {
    /// Nothing seen.
    pub const EMPTY: Scan = Scan {
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        finite: 0,
        nonfinite: 0,
    };

    /// Adds another scan's values.
    pub fn merge(&mut self, other: &Scan) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.finite += other.finite;
        self.nonfinite += other.nonfinite;
    }

    /// `(min, max)` when at least one finite value was seen.
    pub fn range(&self) -> Option<(f32, f32)> {
        (self.finite > 0).then_some((self.min, self.max))
    }
}

/// Non-finite values skipped, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonFinite {
    /// NaNs.
    pub nan: u64,
    /// `+inf`.
    pub pos_inf: u64,
    /// `-inf`.
    pub neg_inf: u64,
}

impl NonFinite {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.nan + self.pos_inf + self.neg_inf
    }

    /// Counts the non-finite values of `xs` by kind (the slow path, run only when a scan found
    /// some).
    pub fn count(xs: &[f32]) -> NonFinite {
        let mut out = NonFinite::default();
        for &x in xs {
            if x.is_nan() {
                out.nan += 1;
            } else if x == f32::INFINITY {
                out.pos_inf += 1;
            } else if x == f32::NEG_INFINITY {
                out.neg_inf += 1;
            }
        }
        out
    }

    /// Adds another count.
    pub fn merge(&mut self, other: &NonFinite) {
        self.nan += other.nan;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
    }
}

/// Min and max of the finite values of `xs`, counting the others.
pub fn scan(xs: &[f32]) -> Scan {
    let mut out = Scan::EMPTY;
    for block in xs.chunks(BLOCK) {
        out.merge(&scan_block(block));
    }
    out
}

fn scan_block(xs: &[f32]) -> Scan {
    let mut mn = [f32::INFINITY; LANES];
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut bad = [0u32; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    for chunk in chunks {
        for i in 0..LANES {
            let x = chunk[i];
            // False for NaN and ±inf; compiles to an and + compare.
            let ok = x.abs() < f32::INFINITY;
            let lo = if ok { x } else { f32::INFINITY };
            let hi = if ok { x } else { f32::NEG_INFINITY };
            mn[i] = if lo < mn[i] { lo } else { mn[i] };
            mx[i] = if hi > mx[i] { hi } else { mx[i] };
            bad[i] += u32::from(!ok);
        }
    }
    let mut out = Scan::EMPTY;
    for i in 0..LANES {
        out.min = out.min.min(mn[i]);
        out.max = out.max.max(mx[i]);
        out.nonfinite += u64::from(bad[i]);
    }
    for &x in rest {
        if x.is_finite() {
            out.min = out.min.min(x);
            out.max = out.max.max(x);
        } else {
            out.nonfinite += 1;
        }
    }
    out.finite = xs.len() as u64 - out.nonfinite;
    out
}

/// Sum and count of the finite values of `xs` (f32 lanes per block, accumulated in f64).
pub fn sum_finite(xs: &[f32]) -> (f64, u64) {
    // Short blocks keep the f32 lane sums accurate; the running total is f64.
    const SUM_BLOCK: usize = 1024;
    let mut total = 0.0f64;
    let mut finite = 0u64;
    for block in xs.chunks(SUM_BLOCK) {
        let mut acc = [0.0f32; LANES];
        let mut ok_count = [0u32; LANES];
        let (chunks, rest) = block.as_chunks::<LANES>();
        for chunk in chunks {
            for i in 0..LANES {
                let x = chunk[i];
                let ok = x.abs() < f32::INFINITY;
                acc[i] += if ok { x } else { 0.0 };
                ok_count[i] += u32::from(ok);
            }
        }
        let mut sum = 0.0f64;
        for i in 0..LANES {
            sum += f64::from(acc[i]);
            finite += u64::from(ok_count[i]);
        }
        for &x in rest {
            if x.is_finite() {
                sum += f64::from(x);
                finite += 1;
            }
        }
        total += sum;
    }
    (total, finite)
}

/// How values map to bins: `floor((x - lo) * inv)`, clamped to `0..bins`, non-finite values to
/// the sentinel `bins`. Computed in f32 when the range allows (twice the lanes), else in f64.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binning {
    pub lo: f64,
    pub inv: f64,
    pub bins: usize,
}

/// Adds the bin index of every value of `xs` to `lanes` (four sub-histograms of `bins + 1`
/// counters each, the last one the non-finite sentinel). Four sub-histograms break the
/// store-to-load dependency when consecutive values fall in the same bin.
pub(crate) fn bin_into(xs: &[f32], binning: Binning, lanes: &mut [u32]) {
    const IDX_BLOCK: usize = 256;
    let stride = binning.bins + 1;
    debug_assert_eq!(lanes.len(), 4 * stride);
    let (h0, rest) = lanes.split_at_mut(stride);
    let (h1, rest) = rest.split_at_mut(stride);
    let (h2, h3) = rest.split_at_mut(stride);
    let mut idx = [0u32; IDX_BLOCK];
    let lo32 = binning.lo as f32;
    let inv32 = binning.inv as f32;
    // f32 arithmetic is exact enough when the range and its inverse are representable.
    let use_f32 = lo32.is_finite()
        && inv32.is_finite()
        && inv32 > 0.0
        && (binning.bins as f64 / binning.inv) < f64::from(f32::MAX) / 4.0;
    let last = (binning.bins - 1) as f32;
    let sentinel = binning.bins as u32;
    for block in xs.chunks(IDX_BLOCK) {
        let slots = &mut idx[..block.len()];
        if use_f32 {
            for (slot, &x) in slots.iter_mut().zip(block) {
                let t = (x - lo32) * inv32;
                let t = if t < last { t } else { last };
                // `as` saturates: negatives (rounding below `lo`) become bin 0.
                *slot = if x.abs() < f32::INFINITY {
                    t as u32
                } else {
                    sentinel
                };
            }
        } else {
            let last = last as f64;
            for (slot, &x) in slots.iter_mut().zip(block) {
                let t = (f64::from(x) - binning.lo) * binning.inv;
                let t = if t < last { t } else { last };
                *slot = if x.is_finite() { t as u32 } else { sentinel };
            }
        }
        let (quads, tail) = slots.as_chunks::<4>();
        for q in quads {
            h0[q[0] as usize] += 1;
            h1[q[1] as usize] += 1;
            h2[q[2] as usize] += 1;
            h3[q[3] as usize] += 1;
        }
        for &i in tail {
            h0[i as usize] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = f32> {
        prop_oneof![
            8 => -1e6f32..1e6f32,
            1 => Just(f32::NAN),
            1 => Just(f32::INFINITY),
            1 => Just(f32::NEG_INFINITY),
            1 => Just(-0.0f32),
        ]
    }

    proptest! {
        #[test]
        fn scan_matches_a_naive_filter(xs in prop::collection::vec(value(), 0..200)) {
            let s = scan(&xs);
            let finite: Vec<f32> = xs.iter().copied().filter(|x| x.is_finite()).collect();
            prop_assert_eq!(s.finite, finite.len() as u64);
            prop_assert_eq!(s.nonfinite, (xs.len() - finite.len()) as u64);
            prop_assert_eq!(NonFinite::count(&xs).total(), s.nonfinite);
            if finite.is_empty() {
                prop_assert_eq!(s.range(), None);
            } else {
                let mn = finite.iter().copied().fold(f32::INFINITY, f32::min);
                let mx = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                prop_assert_eq!(s.range(), Some((mn, mx)));
            }
        }

        #[test]
        fn sum_matches_a_naive_sum(xs in prop::collection::vec(value(), 0..3000)) {
            let (sum, n) = sum_finite(&xs);
            let finite: Vec<f64> = xs.iter().filter(|x| x.is_finite()).map(|&x| f64::from(x)).collect();
            let naive: f64 = finite.iter().sum();
            let scale: f64 = finite.iter().map(|x| x.abs()).sum::<f64>().max(1.0);
            prop_assert_eq!(n, finite.len() as u64);
            prop_assert!((sum - naive).abs() <= 1e-5 * scale, "{sum} vs {naive}");
        }
    }
}
