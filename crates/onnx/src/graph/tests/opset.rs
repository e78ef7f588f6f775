//! Opset detection, the per-channel rule and the 11/12 -> 13 upgrade.

use super::fixtures::{assert_topological, model, node, value};
use crate::graph::{
    Change, GraphError, NodeBuilder, NodeExt, OpsetError, QdqSpec, UpgradeOptions, opset_version,
    require_opset, require_qdq_opset, supports_per_channel_qdq, tensor_to_f32, tensor_to_i64,
    upgrade_opset_to_13,
};
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};

fn with_imports(imports: &[(&str, i64)]) -> ModelProto {
    ModelProto {
        opset_import: imports
            .iter()
            .map(|(d, v)| OperatorSetIdProto {
                domain: (*d).to_owned(),
                version: *v,
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn opset_versions_per_domain() {
    let check = |imports: &[(&str, i64)], domain: &str, expected: Option<i64>| {
        assert_eq!(
            opset_version(&with_imports(imports), domain),
            expected,
            "{imports:?} {domain:?}"
        );
    };
    check(&[("", 12)], "", Some(12));
    check(&[("", 12)], "ai.onnx", Some(12));
    check(&[("ai.onnx", 13)], "", Some(13));
    check(&[("", 12)], "com.microsoft", None);
    check(&[("", 11), ("com.microsoft", 1)], "com.microsoft", Some(1));
    check(&[], "", None);
}

#[test]
fn per_channel_qdq_needs_opset_13() {
    for (version, expected) in [
        (10, false),
        (11, false),
        (12, false),
        (13, true),
        (17, true),
    ] {
        assert_eq!(
            supports_per_channel_qdq(&with_imports(&[("", version)])),
            expected,
            "{version}"
        );
    }
    assert!(!supports_per_channel_qdq(&with_imports(&[(
        "com.microsoft",
        13
    )])));

    let per_channel = QdqSpec::per_channel("s", "z", 0);
    let per_tensor = QdqSpec::per_tensor("s", "z");
    match require_qdq_opset(&with_imports(&[("", 12)]), &per_channel) {
        Err(OpsetError::TooOld {
            required: 13,
            found: Some(12),
            feature,
            ..
        }) => {
            assert!(feature.contains("per-channel"));
        }
        other => panic!("expected TooOld, got {other:?}"),
    }
    require_qdq_opset(&with_imports(&[("", 12)]), &per_tensor).expect("per-tensor Q/DQ at 12");
    require_qdq_opset(&with_imports(&[("", 13)]), &per_channel).expect("per-channel at 13");
    assert!(matches!(
        require_qdq_opset(&with_imports(&[("", 9)]), &per_tensor),
        Err(OpsetError::TooOld { required: 10, .. })
    ));
    assert!(matches!(
        require_opset(&with_imports(&[]), "", 13, "x"),
        Err(OpsetError::TooOld { found: None, .. })
    ));
}

/// A model importing `from` with graph input `x` (FLOAT, the given rank or undeclared shape) and
/// the node under test reading `x` and writing `y`.
fn single(from: i64, node: NodeProto, rank: Option<usize>) -> ModelProto {
    let dims = rank.map(|r| vec![2; r]);
    let graph = GraphProto {
        input: vec![value("x", DataType::Float, dims.as_deref())],
        output: vec![value("y", DataType::Float, None)],
        node: vec![node],
        ..Default::default()
    };
    let mut m = model(graph, from);
    m.ir_version = 6;
    m
}

/// Upgrades and returns the model and the single change made (if any), after checking the
/// opset, the IR version, the order and that initializers are typed INT64 or FLOAT.
fn upgrade(
    m: ModelProto,
    options: &UpgradeOptions,
) -> Result<(ModelProto, Option<Change>), GraphError> {
    let mut m = m;
    let before = m.clone();
    match upgrade_opset_to_13(&mut m, options) {
        Ok(report) => {
            assert_eq!(report.to, 13);
            assert_eq!(opset_version(&m, ""), Some(13));
            assert_eq!(m.ir_version, 7);
            assert!(report.converted.len() <= 1, "{:?}", report.converted);
            let g = m.graph.as_ref().expect("graph");
            assert_topological(g);
            crate::graph::GraphIndex::new(g).expect("single assignment");
            Ok((m, report.converted.first().map(|c| c.change)))
        }
        Err(e) => {
            assert_eq!(m, before, "unchanged on error");
            Err(e)
        }
    }
}

fn graph(m: &ModelProto) -> &GraphProto {
    m.graph.as_ref().expect("graph")
}

/// The INT64 values of the initializer feeding input `slot` of the last node named `name`.
fn input_ints(m: &ModelProto, name: &str, slot: usize) -> Vec<i64> {
    let g = graph(m);
    let n = g.node.iter().rev().find(|n| n.name == name).expect("node");
    let input = &n.input[slot];
    let t = g
        .initializer
        .iter()
        .find(|t| &t.name == input)
        .expect("initializer");
    assert_eq!(t.data_type, DataType::Int64 as i32);
    tensor_to_i64(t).expect("ints")
}

/// Checks an attribute-to-input conversion: the attribute is gone and input 1 holds `values`.
fn check_to_input(from: i64, op: &str, attr: &str, values: &[i64], change: Change) {
    let n = NodeBuilder::new(op)
        .name("n")
        .input("x")
        .output("y")
        .attr_ints(attr, values.iter().copied())
        .attr_i("keepdims", 0)
        .build();
    let (m, got) = upgrade(single(from, n, Some(4)), &UpgradeOptions::default()).expect("upgrades");
    assert_eq!(got, Some(change), "{op}");
    let n = &graph(&m).node[0];
    assert!(n.attr(attr).is_none(), "{op}: attribute removed");
    assert_eq!(n.attr_i("keepdims"), Some(0), "{op}: other attributes kept");
    assert_eq!(n.input.len(), 2);
    assert_eq!(input_ints(&m, "n", 1), values, "{op}");
}

#[test]
fn attributes_that_became_inputs() {
    for from in [11, 12] {
        check_to_input(from, "Split", "split", &[1, 3], Change::SplitToInput);
        check_to_input(from, "Squeeze", "axes", &[0], Change::AxesToInput);
        check_to_input(from, "Unsqueeze", "axes", &[0, 3], Change::AxesToInput);
        check_to_input(from, "ReduceSum", "axes", &[1, -1], Change::AxesToInput);
    }
    // Without the attribute nothing changes, except Unsqueeze, which needs axes.
    for op in ["Split", "Squeeze", "ReduceSum"] {
        let (m, change) = upgrade(
            single(12, node(op, &["x"], &["y"]), None),
            &UpgradeOptions::default(),
        )
        .expect("ok");
        assert_eq!(change, None, "{op}");
        assert_eq!(graph(&m).node[0].input, ["x"]);
    }
    let e = upgrade(
        single(12, node("Unsqueeze", &["x"], &["y"]), None),
        &UpgradeOptions::default(),
    )
    .expect_err("no axes");
    assert!(
        matches!(e, GraphError::Opset(OpsetError::Unconvertible { ref op_type, .. }) if op_type == "Unsqueeze"),
        "{e}"
    );
    // ReduceMean keeps its axes attribute until opset 18.
    let n = NodeBuilder::new("ReduceMean")
        .input("x")
        .output("y")
        .attr_ints("axes", [1])
        .build();
    let (m, change) = upgrade(single(12, n, None), &UpgradeOptions::default()).expect("ok");
    assert_eq!(change, None);
    assert_eq!(graph(&m).node[0].attr_ints("axes"), Some([1].as_slice()));
}

#[test]
fn new_inputs_get_fresh_names() {
    let n = NodeBuilder::new("Unsqueeze")
        .name("n")
        .input("x")
        .output("y")
        .attr_ints("axes", [0])
        .build();
    let mut m = single(12, n, None);
    m.graph
        .as_mut()
        .expect("g")
        .value_info
        .push(value("n_axes", DataType::Float, None));
    let (m, _) = upgrade(m, &UpgradeOptions::default()).expect("upgrades");
    assert_eq!(graph(&m).node[0].input[1], "n_axes_1");
}

/// Checks a softmax-family node with `axis` on an input of `rank`.
fn check_softmax(op: &str, axis: Option<i64>, rank: Option<usize>, expected: Change) {
    let mut b = NodeBuilder::new(op).name("sm").input("x").output("y");
    if let Some(axis) = axis {
        b = b.attr_i("axis", axis);
    }
    let (m, change) =
        upgrade(single(12, b.build(), rank), &UpgradeOptions::default()).expect("upgrades");
    assert_eq!(change, Some(expected), "{op} {axis:?} {rank:?}");
    let g = graph(&m);
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    let sm = g.node.iter().find(|n| n.op_type == op).expect("op kept");
    assert_eq!(sm.attr_i("axis"), Some(-1));
    match expected {
        Change::SoftmaxLastAxis => assert_eq!(ops, [op]),
        Change::SoftmaxFlattened => {
            assert_eq!(ops, ["Shape", "Flatten", op, "Reshape"]);
            assert_eq!(
                g.node[1].attr_i("axis"),
                Some(axis.unwrap_or(1)),
                "Flatten at the old axis"
            );
            assert_eq!(g.node[0].input, ["x"]);
            assert_eq!(g.node[3].output, ["y"], "the output name is kept");
            assert_eq!(g.node[3].input[1], g.node[0].output[0]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn softmax_axis_semantics() {
    check_softmax("Softmax", None, Some(2), Change::SoftmaxLastAxis);
    check_softmax("Softmax", Some(3), Some(4), Change::SoftmaxLastAxis);
    check_softmax("Softmax", Some(-1), None, Change::SoftmaxLastAxis);
    check_softmax("LogSoftmax", Some(2), Some(3), Change::SoftmaxLastAxis);
    check_softmax("Hardmax", Some(-1), Some(3), Change::SoftmaxLastAxis);
    check_softmax("Softmax", Some(1), Some(4), Change::SoftmaxFlattened);
    check_softmax("Softmax", None, None, Change::SoftmaxFlattened);
    check_softmax("LogSoftmax", Some(-2), Some(3), Change::SoftmaxFlattened);

    let strict = UpgradeOptions {
        rewrite_softmax: false,
    };
    let e = upgrade(single(12, node("Softmax", &["x"], &["y"]), None), &strict)
        .expect_err("unknown rank");
    assert!(
        matches!(e, GraphError::Opset(OpsetError::Unconvertible { ref reason, .. }) if reason.contains("unknown")),
        "{e}"
    );
    upgrade(
        single(12, node("Softmax", &["x"], &["y"]), Some(2)),
        &strict,
    )
    .expect("rank 2, default axis 1 is last");
}

#[test]
fn dropout_resize_and_compatible_ops() {
    let dropout = || {
        NodeBuilder::new("Dropout")
            .name("d")
            .input("x")
            .output("y")
            .attr_f("ratio", 0.25)
            .build()
    };
    let (m, change) = upgrade(single(11, dropout(), None), &UpgradeOptions::default()).expect("11");
    assert_eq!(change, Some(Change::DropoutRatioToInput));
    let g = graph(&m);
    assert!(g.node[0].attr("ratio").is_none());
    let ratio = g
        .initializer
        .iter()
        .find(|t| t.name == g.node[0].input[1])
        .expect("ratio");
    assert_eq!(tensor_to_f32(ratio).expect("f32"), [0.25]);
    assert!(ratio.dims.is_empty(), "a scalar");
    // At 12 Dropout already takes the ratio as an input.
    let (_, change) = upgrade(single(12, dropout(), None), &UpgradeOptions::default()).expect("12");
    assert_eq!(change, None);

    let resize = |mode: &str, inputs: &[&str]| {
        NodeBuilder::new("Resize")
            .name("r")
            .inputs(inputs.iter().copied())
            .output("y")
            .attr_s("coordinate_transformation_mode", mode)
            .build()
    };
    let e = upgrade(
        single(12, resize("tf_half_pixel_for_nn", &["x"]), None),
        &UpgradeOptions::default(),
    )
    .expect_err("removed mode");
    assert!(
        matches!(e, GraphError::Opset(OpsetError::Unconvertible { .. })),
        "{e}"
    );
    let mut m = single(
        11,
        resize("asymmetric", &["x", "roi", "scales", "sizes"]),
        None,
    );
    let g = m.graph.as_mut().expect("g");
    for name in ["roi", "scales", "sizes"] {
        g.input.push(value(name, DataType::Float, None));
    }
    let (m, change) = upgrade(m, &UpgradeOptions::default()).expect("sizes given");
    assert_eq!(change, Some(Change::ResizeScalesOmitted));
    assert_eq!(graph(&m).node[0].input, ["x", "roi", "", "sizes"]);
    let mut m = single(12, resize("half_pixel", &["x", "roi", "scales"]), None);
    let g = m.graph.as_mut().expect("g");
    g.input.push(value("roi", DataType::Float, None));
    g.input.push(value("scales", DataType::Float, None));
    let (m, change) = upgrade(m, &UpgradeOptions::default()).expect("scales given");
    assert_eq!(change, None);
    assert_eq!(graph(&m).node[0].input, ["x", "roi", "scales"]);

    // Most ops are compatible; other domains are left alone.
    for op in ["Conv", "Relu", "Clip", "Pad", "Concat", "Resize"] {
        let (m, change) = upgrade(
            single(12, node(op, &["x"], &["y"]), None),
            &UpgradeOptions::default(),
        )
        .expect(op);
        assert_eq!(change, None, "{op}");
        assert_eq!(graph(&m).node[0].input, ["x"]);
    }
    let custom = NodeBuilder::new("Unsqueeze")
        .domain("my.domain")
        .input("x")
        .output("y")
        .build();
    upgrade(single(12, custom, None), &UpgradeOptions::default()).expect("not ours to convert");
}

#[test]
fn subgraphs_are_upgraded() {
    let branch = |out: &str| GraphProto {
        name: out.to_owned(),
        node: vec![
            NodeBuilder::new("Unsqueeze")
                .name(format!("{out}_u"))
                .input("x")
                .output(out)
                .attr_ints("axes", [0])
                .build(),
        ],
        output: vec![value(out, DataType::Float, None)],
        ..Default::default()
    };
    let iff = NodeBuilder::new("If")
        .name("if")
        .input("c")
        .output("y")
        .attr_graph("then_branch", branch("a"))
        .attr_graph("else_branch", branch("b"))
        .build();
    let mut m = single(12, iff, None);
    m.graph
        .as_mut()
        .expect("g")
        .input
        .push(value("c", DataType::Bool, Some(&[])));
    let mut copy = m.clone();
    let report = upgrade_opset_to_13(&mut copy, &UpgradeOptions::default()).expect("upgrades");
    assert_eq!(report.converted.len(), 2);
    let g = graph(&copy);
    for sub in g.node[0].subgraphs() {
        let u = &sub.node[0];
        assert!(u.attr("axes").is_none());
        let axes = sub
            .initializer
            .iter()
            .find(|t| t.name == u.input[1])
            .expect("local initializer");
        assert_eq!(tensor_to_i64(axes).expect("ints"), [0]);
    }
    assert!(
        g.initializer.is_empty(),
        "initializers live in the subgraph that reads them"
    );
}

#[test]
fn versions_outside_11_and_12() {
    for from in [13, 17] {
        let n = NodeBuilder::new("Unsqueeze").input("x").output("y").build();
        let mut m = single(from, n, None);
        let before = m.clone();
        let report = upgrade_opset_to_13(&mut m, &UpgradeOptions::default()).expect("no-op");
        assert_eq!((report.from, report.to), (from, from));
        assert!(report.converted.is_empty());
        assert_eq!(m, before);
    }
    for imports in [&[("", 10)][..], &[("com.microsoft", 1)][..]] {
        let mut m = single(12, node("Relu", &["x"], &["y"]), None);
        m.opset_import = with_imports(imports).opset_import;
        assert!(matches!(
            upgrade_opset_to_13(&mut m, &UpgradeOptions::default()),
            Err(GraphError::Opset(OpsetError::UnsupportedSource { .. }))
        ));
    }
    let mut m = single(12, node("Relu", &["x"], &["y"]), None);
    m.graph = None;
    assert!(matches!(
        upgrade_opset_to_13(&mut m, &UpgradeOptions::default()),
        Err(GraphError::NoGraph)
    ));
}
