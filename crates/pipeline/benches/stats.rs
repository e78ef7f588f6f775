//! Throughput of the statistics reducers on a realistic activation batch (8×64×80×80 f32, 13 MB):
//! min/max, per-sample mean min/max, the 2048-bin histogram, per-channel min/max, and a full
//! tensor reducer (min, max, mean min/max, histogram); then the MSE range search and a quantile on
//! the resulting histogram. Run with `cargo bench -p kiln-pipeline`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_pipeline::stats::{
    HistogramReducer, MeanMinMaxReducer, MinMaxReducer, MseOptions, PerChannelReducer, Reducer,
    StatKind, TensorReducer,
};
use ndarray::{ArrayD, IxDyn};
use std::hint::black_box;

/// A ReLU-like activation: half zeros, the rest a skewed positive distribution, a few outliers.
fn activation() -> ArrayD<f32> {
    let shape = [8, 64, 80, 80];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    ArrayD::from_shape_simple_fn(IxDyn(&shape), || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let u = (r >> 40) as f32 / (1u64 << 24) as f32;
        if u < 0.5 {
            0.0
        } else if u > 0.99999 {
            40.0 * u
        } else {
            (u - 0.5) * (u - 0.5) * 12.0
        }
    })
}

fn reducers(c: &mut Criterion) {
    let batch = activation();
    let mut group = c.benchmark_group("stats");
    group.throughput(Throughput::Bytes((batch.len() * 4) as u64));
    group.sample_size(20);

    group.bench_function("min_max", |b| {
        b.iter(|| {
            let mut r = MinMaxReducer::new();
            r.update(black_box(batch.view())).expect("update");
            black_box(r.range())
        })
    });
    group.bench_function("mean_min_max", |b| {
        b.iter(|| {
            let mut r = MeanMinMaxReducer::new();
            r.update(black_box(batch.view())).expect("update");
            black_box(r.mean_max())
        })
    });
    // Warm histogram: its range is fixed by earlier batches, as in a calibration run.
    let mut hist = HistogramReducer::new(2048).expect("bins");
    hist.update(batch.view()).expect("update");
    group.bench_function("histogram_2048", |b| {
        b.iter(|| {
            hist.update(black_box(batch.view())).expect("update");
        })
    });
    group.bench_function("per_channel_min_max_axis1", |b| {
        b.iter(|| {
            let mut r = PerChannelReducer::new(1);
            r.update(black_box(batch.view())).expect("update");
            black_box(r.counts().len())
        })
    });
    let mut full = TensorReducer::new(&[
        StatKind::Min,
        StatKind::Max,
        StatKind::MeanMin,
        StatKind::MeanMax,
        StatKind::Histogram { bins: 2048 },
    ])
    .expect("kinds");
    full.update(batch.view()).expect("update");
    group.bench_function("tensor_reducer_all", |b| {
        b.iter(|| {
            full.update(black_box(batch.view())).expect("update");
        })
    });
    group.finish();

    // The MSE range search runs once per activation after calibration (not per batch).
    let histogram = hist.histogram().clone();
    let mut search = c.benchmark_group("range");
    search.sample_size(20);
    for symmetric in [false, true] {
        let options = MseOptions {
            symmetric,
            ..MseOptions::default()
        };
        let name = if symmetric {
            "mse_symmetric_2048"
        } else {
            "mse_asymmetric_2048"
        };
        search.bench_function(name, |b| {
            b.iter(|| black_box(histogram.mse_range(&options)))
        });
    }
    search.bench_function("quantile_2048", |b| {
        b.iter(|| black_box(histogram.quantile(black_box(0.9999))))
    });
    search.finish();
}

criterion_group!(benches, reducers);
criterion_main!(benches);
