//! The streaming reducers: [`MinMaxReducer`], [`MeanMinMaxReducer`] (per sample),
//! [`PerChannelReducer`] and [`ChannelMeanReducer`] (per channel along an axis). Each takes batches
//! with the batch on axis 0, skips NaN and ±inf, and holds memory independent of the number of
//! batches (per-channel reducers: one slot per channel).

use std::borrow::Cow;

use ndarray::ArrayViewD;

use super::scan::{self, NonFinite, Scan};
use super::{HistogramReducer, StatsError};

/// A streaming reduction over batches of one tensor.
pub trait Reducer: Send + std::fmt::Debug {
    /// Takes one batch into account (batch on axis 0).
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError>;

    /// Bytes held (inline and heap): constant in the number of batches.
    fn memory_bytes(&self) -> usize;
}

/// The batch's values in row-major order, copied only when the view is not already laid out so.
pub(crate) fn standard<'a>(batch: &'a ArrayViewD<'_, f32>) -> Cow<'a, [f32]> {
    match batch.as_slice() {
        Some(s) => Cow::Borrowed(s),
        // `iter` walks in logical (row-major) order whatever the strides.
        None => Cow::Owned(batch.iter().copied().collect()),
    }
}

/// Global min and max of the finite values, with non-finite counts.
#[derive(Debug, Clone)]
pub struct MinMaxReducer {
    scan: Scan,
    nonfinite: NonFinite,
}

impl Default for MinMaxReducer {
    fn default() -> Self {
        MinMaxReducer {
            scan: Scan::EMPTY,
            nonfinite: NonFinite::default(),
        }
    }
}

impl MinMaxReducer {
    /// A reducer that has seen nothing.
    pub fn new() -> MinMaxReducer {
        MinMaxReducer::default()
    }

    /// Adds the values of a slice.
    pub fn update_slice(&mut self, xs: &[f32]) {
        let s = scan::scan(xs);
        if s.nonfinite > 0 {
            self.nonfinite.merge(&NonFinite::count(xs));
        }
        self.scan.merge(&s);
    }

    /// `(min, max)` of the finite values, `None` before the first one.
    pub fn range(&self) -> Option<(f32, f32)> {
        self.scan.range()
    }

    /// Finite values seen.
    pub fn finite(&self) -> u64 {
        self.scan.finite
    }

    /// Non-finite values skipped.
    pub fn nonfinite(&self) -> NonFinite {
        self.nonfinite
    }
}

impl Reducer for MinMaxReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let data = standard(&batch);
        self.update_slice(&data);
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// The mean over samples of each sample's min and max (POT's `mean` aggregator over per-sample
/// `min`/`max`). Independent of how samples are batched. Samples without a finite value are left
/// out of the means.
#[derive(Debug, Clone, Default)]
pub struct MeanMinMaxReducer {
    sum_min: f64,
    sum_max: f64,
    /// Samples with at least one finite value.
    counted: u64,
    /// All samples.
    samples: u64,
}

impl MeanMinMaxReducer {
    /// A reducer that has seen nothing.
    pub fn new() -> MeanMinMaxReducer {
        MeanMinMaxReducer::default()
    }

    /// Adds a batch given as row-major data of `shape`; returns the scan of the whole batch.
    pub(crate) fn update_standard(
        &mut self,
        data: &[f32],
        shape: &[usize],
    ) -> Result<Scan, StatsError> {
        let Some(&batch) = shape.first() else {
            return Err(StatsError::NoBatchAxis {
                what: "a per-sample statistic",
            });
        };
        let mut total = Scan::EMPTY;
        if batch == 0 {
            return Ok(total);
        }
        let per_sample = data.len() / batch;
        for i in 0..batch {
            let s = scan::scan(&data[i * per_sample..(i + 1) * per_sample]);
            if let Some((min, max)) = s.range() {
                self.sum_min += f64::from(min);
                self.sum_max += f64::from(max);
                self.counted += 1;
            }
            total.merge(&s);
        }
        self.samples += batch as u64;
        Ok(total)
    }

    /// Mean of the per-sample minima.
    pub fn mean_min(&self) -> Option<f32> {
        (self.counted > 0).then(|| (self.sum_min / self.counted as f64) as f32)
    }

    /// Mean of the per-sample maxima.
    pub fn mean_max(&self) -> Option<f32> {
        (self.counted > 0).then(|| (self.sum_max / self.counted as f64) as f32)
    }

    /// Samples seen.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

impl Reducer for MeanMinMaxReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let data = standard(&batch);
        self.update_standard(&data, batch.shape()).map(|_| ())
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// `(outer, channels, inner)`: row-major `shape` seen as `[outer, channels, inner]` around `axis`.
fn split_axis(shape: &[usize], axis: usize) -> Result<(usize, usize, usize), StatsError> {
    if axis >= shape.len() {
        return Err(StatsError::Axis {
            axis,
            ndim: shape.len(),
        });
    }
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    Ok((outer, shape[axis], inner))
}

/// Checks that a batch of `shape` fits a per-channel reducer over `axis` that has `slots`
/// channels so far (0: none yet). Returns whether the slots must be created.
pub(crate) fn check_channels(
    slots: usize,
    axis: usize,
    shape: &[usize],
) -> Result<bool, StatsError> {
    let (_, channels, _) = split_axis(shape, axis)?;
    if slots == 0 {
        return Ok(true);
    }
    if slots != channels {
        return Err(StatsError::Channels {
            axis,
            expected: slots,
            got: channels,
        });
    }
    Ok(false)
}

/// Inner extents below this are reduced element by element rather than by slice scans.
const SCAN_MIN_INNER: usize = 16;

/// Min and max per channel along `axis` (every other axis reduced, the batch axis included).
#[derive(Debug, Clone)]
pub struct PerChannelReducer {
    axis: usize,
    min: Vec<f32>,
    max: Vec<f32>,
    counts: Vec<u64>,
}

impl PerChannelReducer {
    /// A reducer over channels along `axis` (1 for NCHW activations).
    pub fn new(axis: usize) -> PerChannelReducer {
        PerChannelReducer {
            axis,
            min: Vec::new(),
            max: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// The axis.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// Checks that a batch of `shape` fits (axis in range, same channels as earlier batches).
    pub(crate) fn check(&self, shape: &[usize]) -> Result<(), StatsError> {
        check_channels(self.counts.len(), self.axis, shape).map(|_| ())
    }

    pub(crate) fn update_standard(
        &mut self,
        data: &[f32],
        shape: &[usize],
    ) -> Result<(), StatsError> {
        let (outer, channels, inner) = split_axis(shape, self.axis)?;
        if check_channels(self.counts.len(), self.axis, shape)? {
            self.min = vec![f32::INFINITY; channels];
            self.max = vec![f32::NEG_INFINITY; channels];
            self.counts = vec![0; channels];
        }
        if channels == 0 || inner == 0 || outer == 0 {
            return Ok(());
        }
        if inner >= SCAN_MIN_INNER {
            for (k, slice) in data.chunks_exact(inner).enumerate() {
                let c = k % channels;
                let s = scan::scan(slice);
                self.min[c] = self.min[c].min(s.min);
                self.max[c] = self.max[c].max(s.max);
                self.counts[c] += s.finite;
            }
        } else {
            for row in data.chunks_exact(channels * inner) {
                for (c, values) in row.chunks_exact(inner).enumerate() {
                    for &x in values {
                        if x.is_finite() {
                            self.min[c] = self.min[c].min(x);
                            self.max[c] = self.max[c].max(x);
                            self.counts[c] += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Minimum per channel (0 for a channel without finite values; see [`counts`](Self::counts)).
    pub fn min(&self) -> Vec<f32> {
        self.finite_or_zero(&self.min)
    }

    /// Maximum per channel (0 for a channel without finite values).
    pub fn max(&self) -> Vec<f32> {
        self.finite_or_zero(&self.max)
    }

    /// Finite values per channel.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    fn finite_or_zero(&self, values: &[f32]) -> Vec<f32> {
        values
            .iter()
            .zip(&self.counts)
            .map(|(&v, &n)| if n > 0 { v } else { 0.0 })
            .collect()
    }
}

impl Reducer for PerChannelReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let data = standard(&batch);
        self.update_standard(&data, batch.shape())
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.min.capacity() + self.max.capacity()) * std::mem::size_of::<f32>()
            + self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

/// Mean per channel along `axis` of the finite values (for bias correction).
#[derive(Debug, Clone)]
pub struct ChannelMeanReducer {
    axis: usize,
    sums: Vec<f64>,
    counts: Vec<u64>,
}

impl ChannelMeanReducer {
    /// A reducer over channels along `axis`.
    pub fn new(axis: usize) -> ChannelMeanReducer {
        ChannelMeanReducer {
            axis,
            sums: Vec::new(),
            counts: Vec::new(),
        }
    }

    /// The axis.
    pub fn axis(&self) -> usize {
        self.axis
    }

    /// Checks that a batch of `shape` fits (axis in range, same channels as earlier batches).
    pub(crate) fn check(&self, shape: &[usize]) -> Result<(), StatsError> {
        check_channels(self.counts.len(), self.axis, shape).map(|_| ())
    }

    pub(crate) fn update_standard(
        &mut self,
        data: &[f32],
        shape: &[usize],
    ) -> Result<(), StatsError> {
        let (outer, channels, inner) = split_axis(shape, self.axis)?;
        if check_channels(self.counts.len(), self.axis, shape)? {
            self.sums = vec![0.0; channels];
            self.counts = vec![0; channels];
        }
        if channels == 0 || inner == 0 || outer == 0 {
            return Ok(());
        }
        if inner >= SCAN_MIN_INNER {
            for (k, slice) in data.chunks_exact(inner).enumerate() {
                let c = k % channels;
                let (sum, n) = scan::sum_finite(slice);
                self.sums[c] += sum;
                self.counts[c] += n;
            }
        } else {
            for row in data.chunks_exact(channels * inner) {
                for (c, values) in row.chunks_exact(inner).enumerate() {
                    for &x in values {
                        if x.is_finite() {
                            self.sums[c] += f64::from(x);
                            self.counts[c] += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Mean per channel (0 for a channel without finite values).
    pub fn mean(&self) -> Vec<f32> {
        self.sums
            .iter()
            .zip(&self.counts)
            .map(|(&s, &n)| if n > 0 { (s / n as f64) as f32 } else { 0.0 })
            .collect()
    }

    /// Finite values per channel.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

impl Reducer for ChannelMeanReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let data = standard(&batch);
        self.update_standard(&data, batch.shape())
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.sums.capacity() * std::mem::size_of::<f64>()
            + self.counts.capacity() * std::mem::size_of::<u64>()
    }
}

impl Reducer for HistogramReducer {
    fn update(&mut self, batch: ArrayViewD<'_, f32>) -> Result<(), StatsError> {
        let data = standard(&batch);
        self.update_slice(&data);
        Ok(())
    }

    fn memory_bytes(&self) -> usize {
        HistogramReducer::memory_bytes(self)
    }
}
