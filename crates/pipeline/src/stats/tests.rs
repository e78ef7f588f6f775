//! Tests of the statistics: reducers against naive references on random data (any batching, NaN
//! and ±inf mixed in), histogram re-binning exactness and quantile error, MSE clipping, memory
//! independence, serialization and the cache.

use kiln_onnx::graph::{NodeBuilder, tensor_type_proto};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{GraphProto, ValueInfoProto};
use ndarray::{Array, ArrayD, Axis, IxDyn};
use proptest::prelude::*;

use super::*;
use crate::sampler::SplitMix64;

// ---------------------------------------------------------------------------------------------
// Data

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        20 => -100.0f32..100.0,
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
    ]
}

/// A `[samples, channels, width]` tensor and a split of its samples into batches.
fn tensor_and_batches() -> impl Strategy<Value = (ArrayD<f32>, Vec<usize>)> {
    (1usize..12, 1usize..5, 1usize..40).prop_flat_map(|(n, c, w)| {
        (
            prop::collection::vec(value(), n * c * w)
                .prop_map(move |v| Array::from_shape_vec(IxDyn(&[n, c, w]), v).expect("shape")),
            prop::collection::vec(1usize..5, 1..12),
        )
    })
}

/// Splits `t` along axis 0 into batches of the sizes given (cycled), covering every sample.
fn split(t: &ArrayD<f32>, sizes: &[usize]) -> Vec<ArrayD<f32>> {
    let n = t.len_of(Axis(0));
    let mut out = Vec::new();
    let (mut start, mut k) = (0, 0);
    while start < n {
        let end = (start + sizes[k % sizes.len()]).min(n);
        out.push(t.slice_axis(Axis(0), (start..end).into()).to_owned());
        start = end;
        k += 1;
    }
    out
}

fn finite(xs: impl IntoIterator<Item = f32>) -> Vec<f32> {
    xs.into_iter().filter(|x| x.is_finite()).collect()
}

fn min_of(xs: &[f32]) -> Option<f32> {
    xs.iter().copied().reduce(f32::min)
}

fn max_of(xs: &[f32]) -> Option<f32> {
    xs.iter().copied().reduce(f32::max)
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

fn gaussian(rng: &mut SplitMix64) -> f32 {
    // Box–Muller.
    let u1 = rng.next_f64().max(1e-300);
    let u2 = rng.next_f64();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

const ALL_KINDS: &[StatKind] = &[
    StatKind::Min,
    StatKind::Max,
    StatKind::MeanMin,
    StatKind::MeanMax,
    StatKind::PerChannelMin { axis: 1 },
    StatKind::PerChannelMax { axis: 1 },
    StatKind::Mean { axis: 1 },
    StatKind::Histogram { bins: 64 },
];

// ---------------------------------------------------------------------------------------------
// Reducers against naive references

proptest! {
    #[test]
    fn reducers_match_naive_references_under_any_batching((t, sizes) in tensor_and_batches()) {
        let mut r = TensorReducer::new(ALL_KINDS).expect("kinds");
        for b in split(&t, &sizes) {
            r.update(b.view()).expect("update");
        }
        let got = r.finish();
        let all = finite(t.iter().copied());
        let (n, c) = (t.shape()[0], t.shape()[1]);

        prop_assert_eq!(got.samples, n as u64);
        prop_assert_eq!(got.finite, all.len() as u64);
        let nonfinite = NonFinite {
            nan: t.iter().filter(|x| x.is_nan()).count() as u64,
            pos_inf: t.iter().filter(|&&x| x == f32::INFINITY).count() as u64,
            neg_inf: t.iter().filter(|&&x| x == f32::NEG_INFINITY).count() as u64,
        };
        prop_assert_eq!(got.nonfinite, nonfinite);
        prop_assert_eq!(got.min(), min_of(&all));
        prop_assert_eq!(got.max(), max_of(&all));

        // Per sample: mean of the extremes of samples that have a finite value.
        let per_sample: Vec<(f32, f32)> = t
            .axis_iter(Axis(0))
            .filter_map(|s| {
                let f = finite(s.iter().copied());
                Some((min_of(&f)?, max_of(&f)?))
            })
            .collect();
        let mean = |f: fn(&(f32, f32)) -> f32| {
            (!per_sample.is_empty()).then(|| {
                (per_sample.iter().map(|p| f64::from(f(p))).sum::<f64>() / per_sample.len() as f64) as f32
            })
        };
        match (got.mean_min(), mean(|p| p.0)) {
            (Some(a), Some(b)) => prop_assert!(close(a, b, 1e-5), "mean min {a} vs {b}"),
            (a, b) => prop_assert_eq!(a, b),
        }
        match (got.mean_max(), mean(|p| p.1)) {
            (Some(a), Some(b)) => prop_assert!(close(a, b, 1e-5), "mean max {a} vs {b}"),
            (a, b) => prop_assert_eq!(a, b),
        }

        // Per channel along axis 1.
        let pmin = got.per_channel_min(1).expect("per-channel min");
        let pmax = got.per_channel_max(1).expect("per-channel max");
        let pmean = got.mean(1).expect("mean");
        prop_assert_eq!(pmin.values.len(), c);
        for ch in 0..c {
            let f = finite(t.index_axis(Axis(1), ch).iter().copied());
            prop_assert_eq!(pmin.counts[ch], f.len() as u64);
            prop_assert_eq!(pmean.counts[ch], f.len() as u64);
            prop_assert_eq!(pmin.values[ch], min_of(&f).unwrap_or(0.0));
            prop_assert_eq!(pmax.values[ch], max_of(&f).unwrap_or(0.0));
            let m = if f.is_empty() { 0.0 } else {
                (f.iter().map(|&x| f64::from(x)).sum::<f64>() / f.len() as f64) as f32
            };
            prop_assert!(close(pmean.values[ch], m, 1e-5), "mean {} vs {m}", pmean.values[ch]);
        }

        // The histogram counts every finite value once.
        let h = got.histogram().expect("histogram");
        prop_assert_eq!(h.total(), all.len() as u64);
        prop_assert_eq!(h.counts().iter().sum::<u64>(), all.len() as u64);
        prop_assert_eq!(h.min(), min_of(&all));
        prop_assert_eq!(h.max(), max_of(&all));
    }

    #[test]
    fn wide_channels_and_non_contiguous_views_agree(
        v in prop::collection::vec(-50.0f32..50.0, 2 * 3 * 40),
    ) {
        // inner = 40 takes the slice-scan path; a transposed view takes the copying path.
        let t = Array::from_shape_vec(IxDyn(&[2, 3, 40]), v).expect("shape");
        let mut a = TensorReducer::new(ALL_KINDS).expect("kinds");
        a.update(t.view()).expect("update");
        let transposed = t.view().permuted_axes(IxDyn(&[0, 2, 1]));
        let mut b = TensorReducer::new(&[StatKind::PerChannelMin { axis: 2 }, StatKind::Mean { axis: 2 }]).expect("kinds");
        b.update(transposed).expect("update");
        let (a, b) = (a.finish(), b.finish());
        prop_assert_eq!(&a.per_channel_min(1).expect("min").values, &b.per_channel_min(2).expect("min").values);
        for (x, y) in a.mean(1).expect("mean").values.iter().zip(&b.mean(2).expect("mean").values) {
            prop_assert!(close(*x, *y, 1e-5));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Histogram

/// Counts of `xs` binned naively with the histogram's final edges.
fn naive_counts(h: &Histogram, xs: &[f32]) -> Vec<u64> {
    let mut counts = vec![0u64; h.bins()];
    for &x in finite(xs.iter().copied()).iter() {
        let i = ((f64::from(x) - h.lo()) / h.width()).floor();
        assert!(
            i >= 0.0 && (i as usize) < h.bins(),
            "{x} outside [{}, {})",
            h.lo(),
            h.hi()
        );
        counts[i as usize] += 1;
    }
    counts
}

proptest! {
    #[test]
    fn rebinning_is_exact(
        batches in prop::collection::vec(prop::collection::vec(-300i32..400, 1..60), 1..12),
    ) {
        // Integer data with a first batch spanning [0, 15] over 16 bins: every edge is an integer
        // (a power-of-two width after growth), so the naive binning with the final edges is exact
        // and must agree with the streamed counts bin for bin.
        let mut h = HistogramReducer::new(16).expect("bins");
        let first: Vec<f32> = (0..16).map(|i| i as f32).collect();
        h.update_slice(&first);
        let mut all = first;
        for b in &batches {
            let xs: Vec<f32> = b.iter().map(|&i| i as f32).collect();
            h.update_slice(&xs);
            all.extend(xs);
        }
        let h = h.histogram();
        let naive = naive_counts(h, &all);
        prop_assert_eq!(h.counts(), naive.as_slice());
        prop_assert_eq!(h.total(), all.len() as u64);
        prop_assert!(h.width().log2().fract() == 0.0, "width {} is a power of two", h.width());
    }

    #[test]
    fn quantiles_are_within_one_bin_of_the_exact_order_statistic(
        batches in prop::collection::vec(prop::collection::vec(
            prop_oneof![4 => -10.0f32..10.0, 1 => -1000.0f32..1000.0, 1 => Just(f32::NAN)], 1..300), 1..10),
        bins in prop::sample::select(vec![2usize, 16, 256, 2048]),
    ) {
        let mut r = HistogramReducer::new(bins).expect("bins");
        for b in &batches {
            r.update_slice(b);
        }
        let mut all = finite(batches.iter().flatten().copied());
        prop_assume!(!all.is_empty());
        all.sort_by(f32::total_cmp);
        let h = r.histogram();
        prop_assert_eq!(h.total(), all.len() as u64);
        for q in [0.0, 1e-3, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0] {
            let k = ((q * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1;
            let exact = all[k];
            let got = h.quantile(q).expect("quantile");
            let tol = h.width() * 1.0001 + 1e-4 * f64::from(exact.abs());
            prop_assert!(
                (f64::from(got) - f64::from(exact)).abs() <= tol,
                "q {q}: {got} vs exact {exact} (bin width {})", h.width()
            );
        }
        prop_assert_eq!(h.percentile(50.0), h.quantile(0.5));
    }
}

#[test]
fn histogram_grows_in_both_directions() {
    let mut r = HistogramReducer::new(64).expect("bins");
    r.update_slice(&[0.0, 0.5, 1.0]);
    let first_width = r.histogram().width();
    r.update_slice(&[-10.0, -5.0]);
    r.update_slice(&[100.0, 200.0]);
    r.update_slice(&[-3000.0]);
    let h = r.histogram();
    assert_eq!(h.total(), 8);
    assert_eq!(h.min(), Some(-3000.0));
    assert_eq!(h.max(), Some(200.0));
    assert!(
        h.lo() <= -3000.0 && h.hi() > 200.0,
        "[{}, {})",
        h.lo(),
        h.hi()
    );
    let doublings = (h.width() / first_width).log2();
    assert!(doublings.fract() == 0.0 && doublings >= 1.0, "{doublings}");
    assert_eq!(h.quantile(0.0), Some(-3000.0));
    assert_eq!(h.quantile(1.0), Some(200.0));
}

#[test]
fn constant_data_then_spread() {
    let mut r = HistogramReducer::new(2048).expect("bins");
    r.update_slice(&[3.0; 100]);
    assert_eq!(r.histogram().quantile(0.5), Some(3.0));
    r.update_slice(&[-1.0, 7.0]);
    let h = r.histogram();
    assert_eq!(h.total(), 102);
    let median = h.quantile(0.5).expect("median");
    assert!(f64::from((median - 3.0).abs()) <= h.width(), "{median}");
    assert_eq!((h.min(), h.max()), (Some(-1.0), Some(7.0)));
}

#[test]
fn extreme_ranges_use_the_wide_path() {
    let mut r = HistogramReducer::new(16).expect("bins");
    r.update_slice(&[-f32::MAX, f32::MAX, 0.0, 1.0]);
    r.update_slice(&[f32::MIN_POSITIVE]);
    let h = r.histogram();
    assert_eq!(h.total(), 5);
    assert_eq!(h.counts().iter().sum::<u64>(), 5);
    assert_eq!(h.quantile(1.0), Some(f32::MAX));
}

#[test]
fn bad_bin_counts_are_rejected() {
    for bins in [0, 1, 3, 2047, MAX_BINS + 2] {
        assert_eq!(
            Histogram::new(bins).expect_err("bad bins"),
            StatsError::Bins { bins }
        );
    }
    let layout = StatsLayout::new().with("x", [StatKind::Histogram { bins: 5 }]);
    let err = layout.validate().expect_err("odd bins");
    assert!(
        matches!(err, PipelineError::Stats { ref tensor, source: StatsError::Bins { bins: 5 } } if tensor == "x")
    );
}

// ---------------------------------------------------------------------------------------------
// Non-finite values

#[test]
fn non_finite_values_are_counted_and_skipped() {
    let data = vec![
        1.0,
        f32::NAN,
        -2.0,
        f32::INFINITY,
        3.0,
        f32::NEG_INFINITY,
        f32::NAN,
        0.5,
    ];
    let t = Array::from_shape_vec(IxDyn(&[2, 4]), data).expect("shape");
    let mut r = TensorReducer::new(ALL_KINDS).expect("kinds");
    r.update(t.view()).expect("update");
    let s = r.finish();
    assert_eq!(
        s.nonfinite,
        NonFinite {
            nan: 2,
            pos_inf: 1,
            neg_inf: 1
        }
    );
    assert_eq!(s.finite, 4);
    assert_eq!((s.min(), s.max()), (Some(-2.0), Some(3.0)));
    // Sample 0: [1, -2] finite; sample 1: [3, 0.5] finite.
    assert_eq!(s.mean_min(), Some((-2.0 + 0.5) / 2.0));
    assert_eq!(s.mean_max(), Some((1.0 + 3.0) / 2.0));
    assert_eq!(s.histogram().expect("histogram").total(), 4);

    // A batch of nothing but NaN leaves scalar statistics undefined, not NaN.
    let mut r = TensorReducer::new(ALL_KINDS).expect("kinds");
    r.update(ArrayD::from_elem(IxDyn(&[3, 2, 2]), f32::NAN).view())
        .expect("update");
    let s = r.finish();
    assert_eq!((s.min(), s.max(), s.mean_min()), (None, None, None));
    assert_eq!(s.per_channel_min(1).expect("channels").counts, [0, 0]);
    assert_eq!(s.histogram().expect("histogram").quantile(0.5), None);
    // Undefined statistics serialize (JSON has no NaN).
    let json = serde_json::to_string(&s).expect("json");
    assert!(
        !json.contains("NaN") && !json.contains("null,\"value\""),
        "{json}"
    );
}

// ---------------------------------------------------------------------------------------------
// MSE clipping

/// The exact mean squared error of quantizing `xs` to `levels` levels over `[lo, hi]`.
fn quantization_mse(xs: &[f32], lo: f32, hi: f32, levels: u32) -> f64 {
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let step = (hi - lo) / f64::from(levels - 1);
    let sum: f64 = xs
        .iter()
        .map(|&x| {
            let x = f64::from(x);
            let q = lo + ((x.clamp(lo, hi) - lo) / step).round() * step;
            (x - q) * (x - q)
        })
        .sum();
    sum / xs.len() as f64
}

#[test]
fn mse_range_clips_huge_outliers_and_beats_the_obvious_ranges() {
    let mut rng = SplitMix64::new(42);
    let mut xs: Vec<f32> = (0..1_000_000).map(|_| gaussian(&mut rng)).collect();
    xs.extend([-100.0, 100.0]);
    let mut r = HistogramReducer::new(2048).expect("bins");
    r.update_slice(&xs);
    let h = r.histogram();
    for options in [
        MseOptions {
            levels: 256,
            symmetric: false,
            include_zero: false,
        },
        MseOptions {
            levels: 255,
            symmetric: true,
            include_zero: true,
        },
        MseOptions {
            levels: 16,
            symmetric: false,
            include_zero: true,
        },
    ] {
        let (lo, hi) = h.mse_range(&options).expect("range");
        // The two huge outliers are clipped, the bulk is kept.
        assert!(lo > -60.0 && hi < 60.0, "{options:?}: [{lo}, {hi}]");
        assert!(lo < -2.0 && hi > 2.0, "{options:?}: [{lo}, {hi}]");
        if options.symmetric {
            assert_eq!(lo, -hi);
        }
        // Its true error is no worse than the full range's or a tight 4-sigma range's (within the
        // histogram's resolution), and far better than at least one of them.
        let chosen = quantization_mse(&xs, lo, hi, options.levels);
        let full = quantization_mse(&xs, -100.0, 100.0, options.levels);
        let tight = quantization_mse(&xs, -4.0, 4.0, options.levels);
        assert!(
            chosen <= 1.02 * full.min(tight),
            "{options:?}: {chosen} vs full {full}, tight {tight}"
        );
        assert!(
            chosen < 0.8 * full.max(tight),
            "{options:?}: {chosen} vs full {full}, tight {tight}"
        );
    }
    // Where outliers weigh more than the bulk's rounding error, MSE keeps them (the objective,
    // not a defect): 1 outlier at 1000 among 10 000 N(0, 1) values.
    let few: Vec<f32> = xs[..10_000].iter().copied().chain([1000.0]).collect();
    let mut r = HistogramReducer::new(2048).expect("bins");
    r.update_slice(&few);
    let options = MseOptions {
        include_zero: false,
        ..MseOptions::default()
    };
    let (lo, hi) = r.histogram().mse_range(&options).expect("range");
    let chosen = quantization_mse(&few, lo, hi, 256);
    let clipped = quantization_mse(&few, lo, 4.0, 256);
    assert!(
        chosen < clipped,
        "[{lo}, {hi}]: {chosen} vs clipping at 4: {clipped}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn mse_ranges_are_no_worse_than_obvious_alternatives(
        seed in any::<u64>(),
        shift in -3.0f32..3.0,
        outliers in prop::collection::vec(-50.0f32..50.0, 0..4),
        levels in prop::sample::select(vec![16u32, 256]),
        symmetric in any::<bool>(),
        include_zero in any::<bool>(),
    ) {
        let mut rng = SplitMix64::new(seed);
        let mut xs: Vec<f32> = (0..4000).map(|_| gaussian(&mut rng) + shift).collect();
        xs.extend(&outliers);
        let mut r = HistogramReducer::new(2048).expect("bins");
        r.update_slice(&xs);
        let h = r.histogram();
        let options = MseOptions { levels, symmetric, include_zero };
        let (lo, hi) = h.mse_range(&options).expect("range");
        let chosen = quantization_mse(&xs, lo, hi, levels);
        let (min, max) = (h.min().expect("min"), h.max().expect("max"));
        let q = |p: f64| h.quantile(p).expect("quantile");
        let mut alternatives = vec![(min, max), (q(0.001), q(0.999)), (q(0.01), q(0.99))];
        if symmetric {
            alternatives = alternatives.into_iter().map(|(a, b)| { let t = a.abs().max(b.abs()); (-t, t) }).collect();
        } else if include_zero {
            alternatives = alternatives.into_iter().map(|(a, b)| (a.min(0.0), b.max(0.0))).collect();
        }
        for (a, b) in alternatives {
            let other = quantization_mse(&xs, a, b, levels);
            prop_assert!(
                chosen <= other * 1.05 + 1e-9,
                "{options:?}: chosen [{lo}, {hi}] error {chosen} vs [{a}, {b}] error {other}"
            );
        }
    }
}

#[test]
fn mse_range_of_uniform_data_is_about_the_full_range() {
    let mut rng = SplitMix64::new(7);
    let xs: Vec<f32> = (0..200_000)
        .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
        .collect();
    let mut r = HistogramReducer::new(2048).expect("bins");
    r.update_slice(&xs);
    let (lo, hi) = r
        .histogram()
        .mse_range(&MseOptions::default())
        .expect("range");
    assert!(
        (lo + 1.0).abs() < 0.02 && (hi - 1.0).abs() < 0.02,
        "[{lo}, {hi}]"
    );
    let (_, t) = r
        .histogram()
        .mse_range(&MseOptions {
            symmetric: true,
            ..MseOptions::default()
        })
        .expect("range");
    assert!((t - 1.0).abs() < 0.02, "{t}");
}

#[test]
fn mse_range_keeps_zero_when_asked() {
    // ReLU output: all values in [2, 10].
    let xs: Vec<f32> = (0..10_000)
        .map(|i| 2.0 + 8.0 * i as f32 / 10_000.0)
        .collect();
    let mut r = HistogramReducer::new(256).expect("bins");
    r.update_slice(&xs);
    let h = r.histogram();
    let (lo, hi) = h.mse_range(&MseOptions::default()).expect("range");
    assert_eq!(lo, 0.0);
    assert!(hi > 9.5 && hi <= 10.0, "{hi}");
    let (lo, _) = h
        .mse_range(&MseOptions {
            include_zero: false,
            ..MseOptions::default()
        })
        .expect("range");
    assert!((2.0..2.1).contains(&lo), "{lo}");
    assert_eq!(
        Histogram::new(8)
            .expect("bins")
            .mse_range(&MseOptions::default()),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Memory, errors, collector

#[test]
fn memory_does_not_grow_with_samples() {
    let layout = StatsLayout::new()
        .with("a", ALL_KINDS.iter().copied())
        .with("b", [StatKind::Min, StatKind::Histogram { bins: 2048 }]);
    let mut c = StatsCollector::new(&layout).expect("collector");
    let mut rng = SplitMix64::new(1);
    let mut batch = |scale: f32| {
        let a = ArrayD::from_shape_simple_fn(IxDyn(&[4, 8, 6, 6]), || gaussian(&mut rng) * scale);
        let mut m = TensorMap::new();
        m.insert("b", a.clone());
        m.insert("a", a);
        m
    };
    c.update_from(&[&batch(1.0)]).expect("update");
    let after_one = c.memory_bytes();
    for i in 0..300 {
        c.update_from(&[&batch(1.0 + i as f32)]).expect("update");
    }
    assert_eq!(c.memory_bytes(), after_one);
    let stats = c.finish();
    assert_eq!(stats.get("a").expect("a").samples, 4 * 301);
}

#[test]
fn collector_errors_name_the_tensor_and_leave_state_alone() {
    let layout = StatsLayout::new()
        .with("x", [StatKind::Min, StatKind::PerChannelMax { axis: 1 }])
        .with("ids", [StatKind::Max]);
    let mut c = StatsCollector::new(&layout).expect("collector");
    c.update("x", ArrayD::from_elem(IxDyn(&[2, 3]), 1.0f32).view())
        .expect("3 channels");
    let before = c.finish();
    let mut m = TensorMap::new();
    m.insert("x", ArrayD::from_elem(IxDyn(&[2, 3]), 9.0f32));
    let missing = c.update_from(&[&m]).expect_err("ids missing");
    assert!(
        matches!(missing, PipelineError::Stats { ref tensor, source: StatsError::Missing } if tensor == "ids"),
        "{missing:?}"
    );
    m.insert("ids", ArrayD::from_elem(IxDyn(&[2]), 7i64));
    let not_float = c.update_from(&[&m]).expect_err("ids is int64");
    assert!(matches!(
        not_float,
        PipelineError::Stats {
            source: StatsError::NotFloat { elem_type: "int64" },
            ..
        }
    ));
    assert_eq!(c.finish(), before, "failed updates change nothing");
    let err = c
        .update("x", ArrayD::from_elem(IxDyn(&[2, 4]), -5.0f32).view())
        .expect_err("4 channels after 3");
    assert!(matches!(
        err,
        PipelineError::Stats {
            source: StatsError::Channels {
                axis: 1,
                expected: 3,
                got: 4
            },
            ..
        }
    ));
    assert_eq!(c.finish(), before, "a failed update changes nothing");
    let err = c
        .update("y", ArrayD::from_elem(IxDyn(&[1]), 0.0f32).view())
        .expect_err("not in layout");
    assert!(matches!(
        err,
        PipelineError::Stats {
            source: StatsError::NotInLayout,
            ..
        }
    ));
    let mut scalar = TensorReducer::new(&[StatKind::MeanMax]).expect("kinds");
    assert!(matches!(
        scalar.update(ArrayD::from_elem(IxDyn(&[]), 1.0f32).view()),
        Err(StatsError::NoBatchAxis { .. })
    ));
    let mut axis = TensorReducer::new(&[StatKind::Mean { axis: 3 }]).expect("kinds");
    assert_eq!(
        axis.update(ArrayD::from_elem(IxDyn(&[1, 2]), 1.0f32).view()),
        Err(StatsError::Axis { axis: 3, ndim: 2 })
    );
}

#[test]
fn layouts_dedupe_and_merge() {
    let mut a = StatsLayout::new();
    a.add("x", StatKind::Min)
        .add("x", StatKind::Min)
        .add("x", StatKind::Max);
    let b = StatsLayout::new()
        .with("x", [StatKind::Max, StatKind::MeanMax])
        .with("y", [StatKind::Min]);
    a.merge(&b);
    assert_eq!(
        a.kinds("x"),
        [StatKind::Min, StatKind::Max, StatKind::MeanMax]
    );
    assert_eq!(a.tensors().collect::<Vec<_>>(), ["x", "y"]);
    assert!(a.kinds("z").is_empty());
    let json = serde_json::to_value(&a).expect("json");
    assert_eq!(json["x"][2], serde_json::json!({"kind": "mean_max"}));
    let back: StatsLayout = serde_json::from_value(json).expect("parse");
    assert_eq!(back, a);
}

// ---------------------------------------------------------------------------------------------
// Serialization and cache

fn sample_statistics(seed: u64) -> Statistics {
    let layout = StatsLayout::new()
        .with("conv1", ALL_KINDS.iter().copied())
        .with("empty", [StatKind::Min, StatKind::Histogram { bins: 8 }]);
    let mut c = StatsCollector::new(&layout).expect("collector");
    let mut rng = SplitMix64::new(seed);
    let a = ArrayD::from_shape_simple_fn(IxDyn(&[3, 2, 5]), || gaussian(&mut rng));
    c.update("conv1", a.view()).expect("update");
    c.update("empty", ArrayD::from_elem(IxDyn(&[1, 2]), f32::NAN).view())
        .expect("update");
    c.finish()
}

#[test]
fn statistics_round_trip_through_json() {
    let stats = sample_statistics(3);
    let json = serde_json::to_string(&stats).expect("json");
    let back: Statistics = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, stats);
    let conv1 = back.get("conv1").expect("conv1");
    assert!(conv1.histogram().is_some() && conv1.mean(1).is_some());
    // A histogram whose counts do not match its extremes is refused.
    let bad = r#"{"lo": 0.0, "width": 1.0, "counts": [1, 0], "min": null, "max": null}"#;
    assert!(serde_json::from_str::<Histogram>(bad).is_err());
    let odd = r#"{"lo": 0.0, "width": 1.0, "counts": [1, 0, 0], "min": 0.5, "max": 0.5}"#;
    assert!(serde_json::from_str::<Histogram>(odd).is_err());
}

#[test]
fn cache_round_trips_and_keys_follow_their_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = StatsCache::new(dir.path().join("stats"));
    let layout = StatsLayout::new().with("x", [StatKind::Min]);
    let key = StatsKey::new("model-a", "data-a", &layout);
    assert_eq!(key.as_str().len(), 64);
    assert!(cache.load(&key).is_none(), "empty cache");
    let stats = sample_statistics(5);
    let path = cache.store(&key, &stats).expect("store");
    assert_eq!(path, cache.path(&key));
    assert_eq!(cache.load(&key), Some(stats.clone()));
    // Overwriting is atomic and leaves no temporary files behind.
    cache.store(&key, &sample_statistics(6)).expect("store");
    assert_eq!(cache.load(&key), Some(sample_statistics(6)));
    let files = std::fs::read_dir(cache.dir()).expect("dir").count();
    assert_eq!(files, 1);

    // Every input changes the key.
    let other_layout = StatsLayout::new().with("x", [StatKind::Max]);
    let keys = [
        StatsKey::new("model-b", "data-a", &layout),
        StatsKey::new("model-a", "data-b", &layout),
        StatsKey::new("model-a", "data-a", &other_layout),
        StatsKey::new("model-ad", "ata-a", &layout),
    ];
    for k in &keys {
        assert_ne!(*k, key);
        assert!(cache.load(k).is_none());
    }
    assert_eq!(key, StatsKey::new("model-a", "data-a", &layout));

    // A file copied under another key, or a corrupt one, is a miss.
    std::fs::copy(cache.path(&key), cache.path(&keys[0])).expect("copy");
    assert!(cache.load(&keys[0]).is_none());
    std::fs::write(cache.path(&key), b"{not json").expect("write");
    assert!(cache.load(&key).is_none());
}

#[test]
fn fingerprints_are_length_prefixed() {
    assert_ne!(fingerprint(["ab", "c"]), fingerprint(["a", "bc"]));
    assert_eq!(fingerprint(["ab", "c"]), fingerprint(["ab", "c"]));
}

// ---------------------------------------------------------------------------------------------
// Graph outputs

#[test]
fn stat_outputs_are_added_after_the_model_outputs() {
    let value = |name: &str| ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(tensor_type_proto(DataType::Float as i32, &[1, 4])),
        ..Default::default()
    };
    let mut graph = GraphProto {
        name: "g".into(),
        input: vec![value("x")],
        output: vec![value("y")],
        node: vec![
            NodeBuilder::new("Relu")
                .name("relu")
                .input("x")
                .output("h")
                .build(),
            NodeBuilder::new("Neg")
                .name("neg")
                .input("h")
                .output("y")
                .build(),
        ],
        ..Default::default()
    };
    let layout = StatsLayout::new()
        .with("x", [StatKind::Min])
        .with("h", [StatKind::Max])
        .with("y", [StatKind::Max]);
    let added = add_stat_outputs(&mut graph, &layout).expect("added");
    assert_eq!(added.added, ["h"]);
    assert_eq!(added.existing, ["y"]);
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(outputs, ["y", "h"]);
    let unknown = StatsLayout::new().with("nope", [StatKind::Min]);
    assert!(matches!(
        add_stat_outputs(&mut graph, &unknown),
        Err(PipelineError::Graph(_))
    ));
}
