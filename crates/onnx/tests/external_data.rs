//! External data: saving real models with every tensor external and loading them back, and the
//! resolver's checks (bounds, path escapes, lengths), each with its own typed error.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use kiln_assets::catalog;
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{ModelProto, StringStringEntryProto};
use kiln_onnx::{
    ExternalDataError, ExternalDataPolicy, ExternalDataRef, FsResolver, Model, OnnxError,
    SaveOptions,
};
use prost::Message;

use crate::common::{self, real_models};

fn all_external(location: &str) -> SaveOptions {
    SaveOptions {
        external: ExternalDataPolicy::Always {
            threshold_bytes: 0,
            location: Some(location.to_owned()),
        },
        ..SaveOptions::default()
    }
}

#[test]
fn real_models_round_trip_through_external_data() {
    for (name, path) in real_models() {
        let original = Model::open(&path).expect("open");
        let dir = tempfile::tempdir().expect("tempdir");
        let saved = dir.path().join("model.onnx");
        original
            .save_with_options(&saved, &all_external("model.onnx.data"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        let mut model = Model::open(&saved).expect("reopen");
        assert!(model.has_external_data(), "{name}");
        // The model file holds the graph only.
        let model_len = fs::metadata(&saved).expect("meta").len();
        let data_len = fs::metadata(dir.path().join("model.onnx.data"))
            .expect("data")
            .len();
        assert!(
            model_len * 5 < data_len,
            "{name}: {model_len} vs {data_len}"
        );
        // A summary needs no external data and sees the same parameters.
        assert_eq!(
            model.summary().parameters,
            original.summary().parameters,
            "{name}"
        );
        assert!(model.summary().external_tensors > 100, "{name}");

        model
            .load_external_data()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!model.has_external_data(), "{name}");
        assert_eq!(
            model.proto(),
            original.proto(),
            "{name}: external round trip changed the model"
        );
    }
}

#[test]
fn external_tensor_bytes_are_slices_of_the_mapped_data_file() {
    let original = common::open(&catalog::YOLOV8N);
    let dir = tempfile::tempdir().expect("tempdir");
    let saved = dir.path().join("yolo.onnx");
    original
        .save_with_options(&saved, &all_external("weights/yolo.bin"))
        .expect("save");
    let model = Model::open(&saved).expect("reopen");

    let (first, last) = {
        let inits = &model.graph().initializer;
        (&inits[0], &inits[inits.len() - 1])
    };
    let a = model.tensor_bytes(first).expect("first");
    let b = model.tensor_bytes(last).expect("last");
    let reference = ExternalDataRef::of(last).expect("ref").expect("external");
    assert_eq!(reference.location, "weights/yolo.bin");
    assert_eq!(reference.offset % 4096, 0, "aligned");
    // Both are views of one mapping: their distance is the distance of their offsets.
    let first_offset = ExternalDataRef::of(first)
        .expect("ref")
        .expect("external")
        .offset;
    assert_eq!(
        b.as_ptr() as usize - a.as_ptr() as usize,
        (reference.offset - first_offset) as usize
    );
    assert_eq!(a, original.graph().initializer[0].raw_data);
}

#[test]
fn resaving_an_external_model_elsewhere_moves_its_data() {
    let original = common::open(&catalog::PPOCR_V4_DET);
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let first = one.path().join("det.onnx");
    original
        .save_with_options(&first, &all_external("det.data"))
        .expect("save");
    let external = Model::open(&first).expect("open");

    // Into another directory, external again (data copied from the first data file)...
    let second = two.path().join("det.onnx");
    external
        .save_with_options(&second, &all_external("det.data"))
        .expect("resave");
    // ...and over itself, reading from the file being replaced.
    external
        .save_with_options(&first, &all_external("det.data"))
        .expect("overwrite");
    for path in [&first, &second] {
        let mut model = Model::open(path).expect("reopen");
        model.load_external_data().expect("load");
        assert_eq!(model.proto(), original.proto(), "{}", path.display());
    }
}

/// A model whose one initializer `w` (float32, `dims`) is external at `location`, with a 16-byte
/// data file `w.bin` in `dir`.
fn model_with_reference(dir: &Path, dims: &[i64], entries: &[(&str, &str)]) -> Model {
    fs::write(dir.join("w.bin"), [7u8; 16]).expect("data file");
    let mut proto = common::tiny_model();
    let w = &mut proto.graph.as_mut().expect("graph").initializer[0];
    w.dims = dims.to_vec();
    w.raw_data = Bytes::new();
    w.data_location = 1;
    w.external_data = entries
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: (*k).to_owned(),
            value: (*v).to_owned(),
        })
        .collect();
    Model::from_bytes(proto.encode_to_vec())
        .expect("decodes")
        .with_base_dir(dir)
}

/// Reads `w` of a model referencing external data by `entries` and returns the outcome.
fn read_w(dims: &[i64], entries: &[(&str, &str)]) -> Result<Bytes, OnnxError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model_with_reference(dir.path(), dims, entries);
    let w = model.graph().initializer[0].clone();
    model.tensor_bytes(&w)
}

/// Asserts that `result` failed for tensor `w` with an external-data error matching `expect`.
#[track_caller]
fn check_err(result: Result<Bytes, OnnxError>, expect: fn(&ExternalDataError) -> bool) {
    match result {
        Err(OnnxError::ExternalData { tensor, source }) => {
            assert_eq!(tensor, "w");
            assert!(expect(&source), "unexpected error kind: {source:?}");
        }
        other => panic!("expected an external data error, got {other:?}"),
    }
}

#[test]
fn resolver_checks_bounds_paths_and_lengths() {
    use ExternalDataError as E;
    // In bounds: 4 floats = 16 bytes, with and without an explicit length.
    let ok = read_w(
        &[4],
        &[("location", "w.bin"), ("offset", "0"), ("length", "16")],
    );
    assert_eq!(ok.expect("in bounds").as_ref(), &[7u8; 16]);
    assert_eq!(
        read_w(&[2], &[("location", "w.bin"), ("offset", "8")])
            .expect("to end")
            .len(),
        8
    );

    // Offset beyond the end of the file.
    check_err(
        read_w(
            &[1],
            &[("location", "w.bin"), ("offset", "17"), ("length", "4")],
        ),
        |e| {
            matches!(
                e,
                E::OutOfBounds {
                    offset: 17,
                    file_len: 16,
                    ..
                }
            )
        },
    );
    // Offset inside, end outside.
    check_err(
        read_w(
            &[4],
            &[("location", "w.bin"), ("offset", "4"), ("length", "16")],
        ),
        |e| matches!(e, E::OutOfBounds { .. }),
    );
    // offset + length overflows u64.
    let max = u64::MAX.to_string();
    check_err(
        read_w(
            &[1],
            &[("location", "w.bin"), ("offset", "8"), ("length", &max)],
        ),
        |e| matches!(e, E::OutOfBounds { .. }),
    );
    // Escapes: parent directory, absolute paths (even to an existing file).
    check_err(
        read_w(&[4], &[("location", "../w.bin")]),
        |e| matches!(e, E::PathEscape { location } if location == "../w.bin"),
    );
    check_err(read_w(&[4], &[("location", "sub/../../w.bin")]), |e| {
        matches!(e, E::PathEscape { .. })
    });
    check_err(read_w(&[4], &[("location", "/etc/passwd")]), |e| {
        matches!(e, E::PathEscape { .. })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let absolute = dir.path().join("w.bin");
    let model = model_with_reference(
        dir.path(),
        &[4],
        &[("location", absolute.to_str().expect("utf-8"))],
    );
    check_err(model.tensor_bytes(&model.graph().initializer[0]), |e| {
        matches!(e, E::PathEscape { .. })
    });
    // Missing file, malformed entries.
    check_err(
        read_w(&[4], &[("location", "nope.bin")]),
        |e| matches!(e, E::NotFound { path } if path.ends_with("nope.bin")),
    );
    check_err(read_w(&[4], &[("offset", "0")]), |e| {
        matches!(e, E::BadReference { .. })
    });
    check_err(
        read_w(&[4], &[("location", "w.bin"), ("offset", "x")]),
        |e| matches!(e, E::BadReference { .. }),
    );
    // Length that does not match dims x element size (5 floats need 20 bytes).
    check_err(
        read_w(&[5], &[("location", "w.bin"), ("length", "16")]),
        |e| {
            matches!(
                e,
                E::LengthMismatch {
                    expected: 20,
                    actual: 16,
                    ..
                }
            )
        },
    );
}

#[cfg(unix)]
#[test]
fn links_out_of_the_model_directory_are_refused() {
    let outside = tempfile::tempdir().expect("tempdir");
    fs::write(outside.path().join("secret.bin"), [1u8; 16]).expect("write");
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        outside.path().join("secret.bin"),
        dir.path().join("link.bin"),
    )
    .expect("symlink");
    let model = model_with_reference(dir.path(), &[4], &[("location", "link.bin")]);
    check_err(model.tensor_bytes(&model.graph().initializer[0]), |e| {
        matches!(e, ExternalDataError::PathEscape { .. })
    });
}

#[test]
fn load_external_data_reports_the_tensor_and_changes_nothing_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = model_with_reference(dir.path(), &[4], &[("location", "../w.bin")]);
    let before = model.proto().clone();
    let err = model.load_external_data().expect_err("escape");
    assert!(err.to_string().contains("\"w\""), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(cause.is_some_and(|c| c.contains("escapes")), "{err:?}");
    assert_eq!(model.proto(), &before);
}

#[test]
fn models_from_memory_need_a_base_directory_or_a_resolver() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model_with_reference(dir.path(), &[4], &[("location", "w.bin")]);
    let proto: ModelProto = model.proto().clone();
    let w = proto.graph.as_ref().expect("graph").initializer[0].clone();

    let bare = Model::from_proto(proto.clone()).expect("valid");
    check_err(bare.tensor_bytes(&w), |e| {
        matches!(e, ExternalDataError::NoBaseDirectory { .. })
    });

    let resolved = Model::from_proto(proto)
        .expect("valid")
        .with_resolver(Arc::new(FsResolver::new(dir.path())));
    assert_eq!(resolved.tensor_bytes(&w).expect("resolved").len(), 16);
}

#[test]
fn string_tensors_cannot_be_external() {
    let w = kiln_onnx::proto::TensorProto {
        name: "s".into(),
        data_type: DataType::String as i32,
        data_location: 1,
        external_data: vec![StringStringEntryProto {
            key: "location".into(),
            value: "s.bin".into(),
        }],
        ..Default::default()
    };
    assert!(matches!(
        kiln_onnx::tensor_bytes(&w, &FsResolver::new(".")),
        Err(OnnxError::ExternalData {
            source: ExternalDataError::BadReference { .. },
            ..
        })
    ));
}
