//! Element-type inference per op and typed graph outputs.

use super::fixtures::{constant, if_graph, small_cnn, value};
use crate::graph::{
    AddOutputsOptions, GraphError, NodeBuilder, OnUnknownType, TensorType, add_output, add_outputs,
    attr, scalar_tensor,
};
use crate::proto::tensor_proto::DataType::{
    self, Bool, Double, Float, Float16, Int8, Int32, Int64, Uint8,
};
use crate::proto::{AttributeProto, GraphProto};

/// Builds `op(inputs) -> o0..o{n}` over graph inputs of the given types (`None`: declared without
/// a type), exposes every output and compares their element types (`None`: undeterminable).
fn check(
    op: &str,
    inputs: &[(&str, Option<DataType>)],
    attrs: Vec<AttributeProto>,
    expected: &[Option<DataType>],
) {
    let outputs: Vec<String> = (0..expected.len()).map(|i| format!("o{i}")).collect();
    let mut node = NodeBuilder::new(op)
        .inputs(inputs.iter().map(|(n, _)| *n))
        .outputs(outputs.clone());
    for a in attrs {
        node = node.attr(a);
    }
    let mut graph = GraphProto {
        node: vec![node.build()],
        input: inputs
            .iter()
            .filter(|(n, _)| !n.is_empty())
            .map(|(n, t)| match t {
                Some(t) => value(n, *t, None),
                None => crate::proto::ValueInfoProto {
                    name: (*n).to_owned(),
                    ..Default::default()
                },
            })
            .collect(),
        ..Default::default()
    };
    let options = AddOutputsOptions {
        on_unknown: OnUnknownType::Skip,
    };
    let report = add_outputs(&mut graph, &outputs, &options).expect("add_outputs");
    for (i, want) in expected.iter().enumerate() {
        let name = &outputs[i];
        let got = graph
            .output
            .iter()
            .find(|o| &o.name == name)
            .and_then(|o| o.r#type.as_ref())
            .and_then(TensorType::from_proto)
            .map(|t| t.elem_type);
        assert_eq!(got, *want, "{op} output {i}");
        if want.is_none() {
            assert!(
                report.skipped.iter().any(|(n, _)| n == name),
                "{op} {name} skipped"
            );
        }
    }
}

fn to(elem: DataType) -> Vec<AttributeProto> {
    vec![attr::int("to", elem as i64)]
}

#[test]
fn element_types_per_op() {
    let f = Some(Float);
    let x = ("x", f);
    check("Conv", &[x, ("w", f)], vec![], &[f]);
    check("Relu", &[("h", Some(Float16))], vec![], &[Some(Float16)]);
    check("Add", &[x, ("b", f)], vec![], &[f]);
    check(
        "Mul",
        &[("i", Some(Int32)), ("j", Some(Int32))],
        vec![],
        &[Some(Int32)],
    );
    check("Sigmoid", &[x], vec![], &[f]);
    check("HardSwish", &[x], vec![], &[f]);
    check("HardSigmoid", &[x], vec![], &[f]);
    check("Concat", &[x, ("b", f)], vec![attr::int("axis", 1)], &[f]);
    check("Reshape", &[x, ("shape", Some(Int64))], vec![], &[f]);
    check("Transpose", &[x], vec![], &[f]);
    check("MaxPool", &[x], vec![], &[f, Some(Int64)]);
    check("Resize", &[x, ("", None), ("scales", f)], vec![], &[f]);
    check("Split", &[x], vec![], &[f, f, f]);
    check(
        "Slice",
        &[x, ("starts", Some(Int64)), ("ends", Some(Int64))],
        vec![],
        &[f],
    );
    check("Gather", &[x, ("idx", Some(Int64))], vec![], &[f]);
    check("Dropout", &[x], vec![], &[f, Some(Bool)]);
    check("Shape", &[x], vec![], &[Some(Int64)]);
    check("Size", &[x], vec![], &[Some(Int64)]);
    check("Cast", &[x], to(Int32), &[Some(Int32)]);
    check("Cast", &[x], vec![], &[None]);
    check(
        "CastLike",
        &[x, ("like", Some(Float16))],
        vec![],
        &[Some(Float16)],
    );
    check(
        "QuantizeLinear",
        &[x, ("s", f), ("zp", Some(Int8))],
        vec![],
        &[Some(Int8)],
    );
    check("QuantizeLinear", &[x, ("s", f)], vec![], &[Some(Uint8)]);
    check(
        "QuantizeLinear",
        &[x, ("s", f)],
        vec![attr::int("output_dtype", Int8 as i64)],
        &[Some(Int8)],
    );
    check(
        "DequantizeLinear",
        &[("q", Some(Int8)), ("s", f), ("zp", Some(Int8))],
        vec![],
        &[f],
    );
    check(
        "DequantizeLinear",
        &[("q", Some(Uint8)), ("s", Some(Float16))],
        vec![],
        &[Some(Float16)],
    );
    check(
        "DynamicQuantizeLinear",
        &[x],
        vec![],
        &[Some(Uint8), f, Some(Uint8)],
    );
    check("ArgMax", &[x], vec![], &[Some(Int64)]);
    check("Equal", &[x, ("b", f)], vec![], &[Some(Bool)]);
    check("Greater", &[x, ("b", f)], vec![], &[Some(Bool)]);
    check("LessOrEqual", &[x, ("b", f)], vec![], &[Some(Bool)]);
    check("Not", &[("c", Some(Bool))], vec![], &[Some(Bool)]);
    check(
        "NonMaxSuppression",
        &[("boxes", f), ("scores", f)],
        vec![],
        &[Some(Int64)],
    );
    check("NonZero", &[x], vec![], &[Some(Int64)]);
    check(
        "Where",
        &[
            ("c", Some(Bool)),
            ("a", Some(Float16)),
            ("b", Some(Float16)),
        ],
        vec![],
        &[Some(Float16)],
    );
    check("TopK", &[x, ("k", Some(Int64))], vec![], &[f, Some(Int64)]);
    check(
        "OneHot",
        &[("i", Some(Int64)), ("d", Some(Int64)), ("v", f)],
        vec![],
        &[f],
    );
    check(
        "ConvInteger",
        &[("a", Some(Uint8)), ("w", Some(Int8))],
        vec![],
        &[Some(Int32)],
    );
    check(
        "QLinearConv",
        &[
            ("a", Some(Uint8)),
            ("as", f),
            ("az", Some(Uint8)),
            ("w", Some(Int8)),
            ("ws", f),
            ("wz", Some(Int8)),
            ("ys", f),
            ("yz", Some(Int8)),
        ],
        vec![],
        &[Some(Int8)],
    );
    check("ConstantOfShape", &[("shape", Some(Int64))], vec![], &[f]);
    check(
        "ConstantOfShape",
        &[("shape", Some(Int64))],
        vec![attr::tensor("value", scalar_tensor("v", 7i32))],
        &[Some(Int32)],
    );
    check(
        "RandomNormalLike",
        &[("h", Some(Float16))],
        vec![],
        &[Some(Float16)],
    );
    check(
        "RandomNormalLike",
        &[x],
        vec![attr::int("dtype", Double as i64)],
        &[Some(Double)],
    );
    check(
        "LayerNormalization",
        &[("h", Some(Float16)), ("g", Some(Float16))],
        vec![],
        &[Some(Float16), f, f],
    );
    // No rule, an unknown input type, a missing input, an unknown domain.
    check("FancyOp", &[x], vec![], &[None]);
    check("Relu", &[("u", None)], vec![], &[None]);
    check("Relu", &[], vec![], &[None]);
}

#[test]
fn custom_domains_have_no_rule_except_microsoft_qdq() {
    let mut g = GraphProto {
        input: vec![
            value("x", Float, None),
            value("s", Float, None),
            value("zp", Int8, None),
        ],
        node: vec![
            NodeBuilder::new("Relu")
                .domain("my.domain")
                .input("x")
                .output("a")
                .build(),
            NodeBuilder::new("QuantizeLinear")
                .domain("com.microsoft")
                .inputs(["x", "s", "zp"])
                .output("q")
                .build(),
        ],
        ..Default::default()
    };
    assert!(matches!(
        add_output(&mut g, "a"),
        Err(GraphError::UnknownElemType { tensor, reason }) if tensor == "a" && reason.contains("my.domain")
    ));
    assert!(add_output(&mut g, "q").expect("typed"));
    assert_eq!(
        TensorType::from_proto(g.output[0].r#type.as_ref().expect("type")).map(|t| t.elem_type),
        Some(Int8)
    );
}

#[test]
fn chains_infer_through_undeclared_tensors() {
    let mut g = small_cnn();
    let report = add_outputs(
        &mut g,
        ["c1", "r1", "c2", "a1", "w2"],
        &AddOutputsOptions::default(),
    )
    .expect("typed");
    assert_eq!(report.added, ["c1", "r1", "c2", "a1", "w2"]);
    for o in &g.output {
        let t = TensorType::from_proto(o.r#type.as_ref().expect("type")).expect("tensor");
        assert_eq!(t.elem_type, Float, "{}", o.name);
    }
    // The Constant output keeps its exact dims; inferred ones have no shape.
    let dims = |name: &str| {
        g.output
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.r#type.as_ref())
            .and_then(TensorType::from_proto)
            .and_then(|t| t.dims)
    };
    assert_eq!(dims("w2").map(|d| d.len()), Some(4));
    assert_eq!(dims("c1"), None);

    // Cast to FLOAT16 then Relu: the half type flows on.
    let mut g = small_cnn();
    g.node.push(
        NodeBuilder::new("Cast")
            .input("y")
            .output("h")
            .attr_i("to", Float16 as i64)
            .build(),
    );
    g.node
        .push(NodeBuilder::new("Relu").input("h").output("hr").build());
    assert!(add_output(&mut g, "hr").expect("typed"));
    assert_eq!(
        TensorType::from_proto(g.output[1].r#type.as_ref().expect("type")).map(|t| t.elem_type),
        Some(Float16)
    );
}

#[test]
fn declarations_win_and_keep_their_shape() {
    let mut g = small_cnn();
    g.value_info.push(value("c1", Double, Some(&[1, 4, 8, 8])));
    assert!(add_output(&mut g, "c1").expect("declared"));
    let t = TensorType::from_proto(g.output[1].r#type.as_ref().expect("type")).expect("tensor");
    assert_eq!(t.elem_type, Double);
    assert_eq!(t.dims.map(|d| d.len()), Some(4));
}

#[test]
fn outputs_are_added_once() {
    let mut g = small_cnn();
    assert!(!add_output(&mut g, "y").expect("already an output"));
    let report = add_outputs(
        &mut g,
        ["r1", "r1", "y", "x"],
        &AddOutputsOptions::default(),
    )
    .expect("typed");
    assert_eq!(report.added, ["r1", "x"]);
    assert_eq!(report.existing, ["r1", "y"]);
    let names: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["y", "r1", "x"]);
}

#[test]
fn unknown_types_fail_without_changes_unless_skipped() {
    let mut g = small_cnn();
    g.node
        .push(NodeBuilder::new("Mystery").input("y").output("m").build());
    let before = g.clone();
    match add_outputs(&mut g, ["r1", "m"], &AddOutputsOptions::default()) {
        Err(GraphError::UnknownElemType { tensor, reason }) => {
            assert_eq!(tensor, "m");
            assert!(reason.contains("Mystery"), "{reason}");
        }
        other => panic!("expected an unknown type, got {other:?}"),
    }
    assert_eq!(g, before, "nothing added on error");
    assert!(matches!(
        add_output(&mut g, "no_such_tensor"),
        Err(GraphError::UnknownTensor { tensor }) if tensor == "no_such_tensor"
    ));

    let skip = AddOutputsOptions {
        on_unknown: OnUnknownType::Skip,
    };
    let report = add_outputs(&mut g, ["r1", "m"], &skip).expect("skips");
    assert_eq!(report.added, ["r1"]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].0, "m");
}

#[test]
fn subgraph_ops_take_their_branch_output_types() {
    let mut g = if_graph();
    g.output.clear();
    assert!(add_output(&mut g, "out").expect("typed from then_branch"));
    assert_eq!(
        TensorType::from_proto(g.output[0].r#type.as_ref().expect("type")).map(|t| t.elem_type),
        Some(Float)
    );
}

#[test]
fn constant_nodes_of_every_form_are_typed() {
    let mut g = GraphProto::default();
    g.node.push(constant("t", scalar_tensor("", 3i64)));
    g.node.push(
        NodeBuilder::new("Constant")
            .output("f")
            .attr_f("value_float", 1.0)
            .build(),
    );
    g.node.push(
        NodeBuilder::new("Constant")
            .output("is")
            .attr_ints("value_ints", [1, 2])
            .build(),
    );
    let report =
        add_outputs(&mut g, ["t", "f", "is"], &AddOutputsOptions::default()).expect("typed");
    assert_eq!(report.added.len(), 3);
    let elem: Vec<_> = g
        .output
        .iter()
        .map(|o| TensorType::from_proto(o.r#type.as_ref().expect("type")).map(|t| t.elem_type))
        .collect();
    assert_eq!(elem, [Some(Int64), Some(Float), Some(Int64)]);
}
