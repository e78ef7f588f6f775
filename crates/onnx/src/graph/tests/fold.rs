//! Batch-norm folding, identity and unused-weight removal, and `simplify_for_quantization`, checked
//! structurally and numerically against a plain-loop evaluator of 1x1 convolutions.

use std::collections::HashMap;

use super::fixtures::{assert_topological, constant, model, node, value};
use crate::graph::{
    GraphError, NodeBuilder, NodeExt, SkipReason, find_weight, fold_batch_norm, remove_identities,
    remove_unused_initializers, simplify_for_quantization, tensor_from_values, tensor_to_f32,
};
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, NodeProto, TensorProto};

/// Spatial positions of every activation (`[1, C, P, 1]` flattened to `c * P + p`).
const P: usize = 3;

fn f32s(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    tensor_from_values(name, dims, values).expect("dims match")
}

/// Deterministic, varied values.
fn seq(n: usize, seed: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.37 + seed).sin() * 1.3)
        .collect()
}

fn conv(op: &str, name: &str, inputs: &[&str], output: &str, group: i64) -> NodeProto {
    NodeBuilder::new(op)
        .name(name)
        .inputs(inputs.iter().copied())
        .output(output)
        .attr_ints("kernel_shape", [1, 1])
        .attr_i("group", group)
        .build()
}

fn bn(name: &str, x: &str, prefix: &str, output: &str, epsilon: Option<f32>) -> NodeProto {
    let p = |s: &str| format!("{prefix}_{s}");
    let mut b = NodeBuilder::new("BatchNormalization")
        .name(name)
        .inputs([x.to_owned(), p("scale"), p("B"), p("mean"), p("var")])
        .output(output)
        .attr_f("momentum", 0.9);
    if let Some(e) = epsilon {
        b = b.attr_f("epsilon", e);
    }
    b.build()
}

/// The four batch-norm parameters for `m` channels (variances positive, some small).
fn bn_params(prefix: &str, m: usize, seed: f32) -> Vec<TensorProto> {
    let dims = [m as i64];
    let var: Vec<f32> = seq(m, seed + 3.0).iter().map(|v| v * v + 0.01).collect();
    vec![
        f32s(&format!("{prefix}_scale"), &dims, &seq(m, seed)),
        f32s(&format!("{prefix}_B"), &dims, &seq(m, seed + 1.0)),
        f32s(&format!("{prefix}_mean"), &dims, &seq(m, seed + 2.0)),
        f32s(&format!("{prefix}_var"), &dims, &var),
    ]
}

fn graph(
    channels: usize,
    outputs: &[(&str, usize)],
    initializer: Vec<TensorProto>,
    nodes: Vec<NodeProto>,
) -> GraphProto {
    GraphProto {
        name: "fold".to_owned(),
        input: vec![value(
            "x",
            DataType::Float,
            Some(&[1, channels as i64, P as i64, 1]),
        )],
        output: outputs
            .iter()
            .map(|(n, c)| value(n, DataType::Float, Some(&[1, *c as i64, P as i64, 1])))
            .collect(),
        initializer,
        node: nodes,
        ..Default::default()
    }
}

fn weight(g: &GraphProto, name: &str) -> Vec<f32> {
    let w = find_weight(g, name).unwrap_or_else(|| panic!("no weight {name:?}"));
    tensor_to_f32(&w.tensor).expect("f32 weight")
}

/// Runs a graph of 1x1 `Conv` / `ConvTranspose` (stride 1, any group), `BatchNormalization`,
/// `Identity` and `Relu` nodes on `x` with plain loops; returns every tensor computed.
fn evaluate(g: &GraphProto, x: &[f32]) -> HashMap<String, Vec<f32>> {
    let mut values: HashMap<String, Vec<f32>> = HashMap::new();
    values.insert("x".to_owned(), x.to_vec());
    let get = |values: &HashMap<String, Vec<f32>>, name: &str| {
        values.get(name).cloned().unwrap_or_else(|| weight(g, name))
    };
    for n in &g.node {
        let input = |i: usize| get(&values, &n.input[i]);
        let out = match n.op_type.as_str() {
            "Constant" => continue,
            "Identity" => input(0),
            "Relu" => input(0).iter().map(|v| v.max(0.0)).collect(),
            "BatchNormalization" => {
                let (x, s, b, m, v) = (input(0), input(1), input(2), input(3), input(4));
                let eps = n.attr_f("epsilon").unwrap_or(1e-5);
                (0..x.len())
                    .map(|i| {
                        let c = i / P;
                        s[c] * (x[i] - m[c]) / (v[c] + eps).sqrt() + b[c]
                    })
                    .collect()
            }
            op @ ("Conv" | "ConvTranspose") => {
                let (x, w) = (input(0), input(1));
                let dims = &find_weight(g, &n.input[1]).expect("weight").tensor.dims;
                let group = n.attr_i("group").unwrap_or(1) as usize;
                let (d0, d1) = (dims[0] as usize, dims[1] as usize);
                let c_in = x.len() / P;
                let m_out = if op == "Conv" { d0 } else { d1 * group };
                let bias = match n.input.get(2).filter(|b| !b.is_empty()) {
                    Some(b) => get(&values, b),
                    None => vec![0.0; m_out],
                };
                let (c_per, m_per) = (c_in / group, m_out / group);
                let mut y = vec![0f32; m_out * P];
                for m in 0..m_out {
                    let gi = m / m_per;
                    for p in 0..P {
                        let mut acc = bias[m];
                        for k in 0..c_per {
                            let c = gi * c_per + k;
                            let wv = if op == "Conv" {
                                w[m * d1 + k]
                            } else {
                                w[c * d1 + m % m_per]
                            };
                            acc += wv * x[c * P + p];
                        }
                        y[m * P + p] = acc;
                    }
                }
                y
            }
            other => panic!("the evaluator does not run {other}"),
        };
        values.insert(n.output[0].clone(), out);
    }
    values
}

/// Asserts the graph outputs of `a` and `b` agree to `1e-5` relative on a varied input.
fn assert_same_outputs(a: &GraphProto, b: &GraphProto, channels: usize) {
    let x = seq(channels * P, 0.5);
    let (ya, yb) = (evaluate(a, &x), evaluate(b, &x));
    for out in &a.output {
        let (u, v) = (&ya[&out.name], &yb[&out.name]);
        assert_eq!(u.len(), v.len());
        for (i, (p, q)) in u.iter().zip(v).enumerate() {
            assert!(
                (p - q).abs() <= 1e-5 * p.abs().max(1.0),
                "{}[{i}]: {p} vs {q}",
                out.name
            );
        }
    }
}

fn count_op(g: &GraphProto, op: &str) -> usize {
    g.node.iter().filter(|n| n.op_type == op).count()
}

/// `x[4] -> Conv(w[3,4,1,1], b) -> c -> BN(bn) -> y`.
fn conv_bn(with_bias: bool, epsilon: Option<f32>) -> GraphProto {
    let mut init = vec![f32s("w", &[3, 4, 1, 1], &seq(12, 0.1))];
    let mut inputs = vec!["x", "w"];
    if with_bias {
        init.push(f32s("b", &[3], &[0.5, -0.25, 2.0]));
        inputs.push("b");
    }
    init.extend(bn_params("bn", 3, 0.7));
    graph(
        4,
        &[("y", 3)],
        init,
        vec![
            conv("Conv", "conv", &inputs, "c", 1),
            bn("bn", "c", "bn", "y", epsilon),
        ],
    )
}

#[test]
fn hand_computed_fold() {
    // One channel in, one out: y = 2 * x + 1, then BN(scale 3, B 0.5, mean 1, var 3, eps 1):
    // k = 3 / 2 = 1.5, W' = 3, b' = (1 - 1) * 1.5 + 0.5 = 0.5.
    let mut g = graph(
        1,
        &[("y", 1)],
        vec![
            f32s("w", &[1, 1, 1, 1], &[2.0]),
            f32s("b", &[1], &[1.0]),
            f32s("bn_scale", &[1], &[3.0]),
            f32s("bn_B", &[1], &[0.5]),
            f32s("bn_mean", &[1], &[1.0]),
            f32s("bn_var", &[1], &[3.0]),
        ],
        vec![
            conv("Conv", "conv", &["x", "w", "b"], "c", 1),
            bn("bn", "c", "bn", "y", Some(1.0)),
        ],
    );
    let report = fold_batch_norm(&mut g, None).expect("folds");
    assert_eq!(report.folded.len(), 1);
    let pair = &report.folded[0];
    assert_eq!(weight(&g, &pair.weight), [3.0]);
    assert_eq!(weight(&g, &pair.bias), [0.5]);
    assert_eq!(evaluate(&g, &[1.0, -2.0, 0.25])["y"], [3.5, -5.5, 1.25]);
}

#[test]
fn conv_bn_with_initializers_folds() {
    for (with_bias, epsilon) in [(true, None), (false, Some(1e-3))] {
        let original = conv_bn(with_bias, epsilon);
        let mut g = original.clone();
        let report = fold_batch_norm(&mut g, None).expect("folds");
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        assert_eq!(report.folded.len(), 1);
        let pair = &report.folded[0];
        assert_eq!(pair.output, "y");
        assert_eq!(pair.conv, r#"Conv "conv" (#0)"#);
        assert_eq!(pair.batch_norm, r#"BatchNormalization "bn" (#1)"#);
        assert_eq!(pair.weight, "w_bn_folded");
        assert_eq!(
            pair.bias,
            if with_bias {
                "b_bn_folded"
            } else {
                "w_bias_bn_folded"
            }
        );
        assert_eq!(g.node.len(), 1);
        let c = &g.node[0];
        assert_eq!((c.op_type.as_str(), c.name.as_str()), ("Conv", "conv"));
        assert_eq!(c.input, ["x", "w_bn_folded", pair.bias.as_str()]);
        assert_eq!(c.output, ["y"]);
        assert_eq!(c.attr_i("group"), Some(1), "attributes kept");
        // The original weights are untouched and still there until cleanup.
        assert_eq!(weight(&g, "w"), weight(&original, "w"));
        assert_same_outputs(&original, &g, 4);
        let removed = remove_unused_initializers(&mut g);
        assert_eq!(removed, 5 + usize::from(with_bias));
        let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["w_bn_folded", pair.bias.as_str()]);
        assert_same_outputs(&original, &g, 4);
    }
}

#[test]
fn constant_node_weights_fold() {
    let mut nodes: Vec<NodeProto> = vec![
        constant("w", f32s("", &[2, 3, 1, 1], &seq(6, 0.3))),
        constant("b", f32s("", &[2], &[0.1, -0.1])),
    ];
    nodes.extend(
        bn_params("bn", 2, 1.1)
            .into_iter()
            .map(|t| constant(&t.name.clone(), t)),
    );
    nodes.push(conv("Conv", "conv", &["x", "w", "b"], "c", 1));
    nodes.push(bn("bn", "c", "bn", "bn_out", None));
    nodes.push(node("Relu", &["bn_out"], &["y"]));
    let original = graph(3, &[("y", 2)], vec![], nodes);
    let mut g = original.clone();
    let report = fold_batch_norm(&mut g, None).expect("folds");
    assert_eq!(report.folded.len(), 1, "{:?}", report.skipped);
    assert_eq!(count_op(&g, "BatchNormalization"), 0);
    assert_same_outputs(&original, &g, 3);
    assert_eq!(
        remove_unused_initializers(&mut g),
        6,
        "the six Constant nodes"
    );
    assert_eq!(count_op(&g, "Constant"), 0);
    assert_eq!(g.initializer.len(), 2);
    assert_same_outputs(&original, &g, 3);
}

#[test]
fn grouped_conv_folds_per_output_channel() {
    // 4 input channels, 6 output channels, 2 groups: W [6, 2, 1, 1].
    let mut init = vec![
        f32s("w", &[6, 2, 1, 1], &seq(12, 0.9)),
        f32s("b", &[6], &seq(6, 2.2)),
    ];
    init.extend(bn_params("bn", 6, 0.4));
    let original = graph(
        4,
        &[("y", 6)],
        init,
        vec![
            conv("Conv", "conv", &["x", "w", "b"], "c", 2),
            bn("bn", "c", "bn", "y", None),
        ],
    );
    let mut g = original.clone();
    let report = fold_batch_norm(&mut g, None).expect("folds");
    assert_eq!(report.folded.len(), 1, "{:?}", report.skipped);
    assert_eq!(g.node[0].attr_i("group"), Some(2));
    assert_same_outputs(&original, &g, 4);

    // Depthwise: 4 -> 4, group 4, W [4, 1, 1, 1].
    let mut init = vec![f32s("w", &[4, 1, 1, 1], &[0.5, -1.0, 2.0, 1.5])];
    init.extend(bn_params("bn", 4, 0.2));
    let original = graph(
        4,
        &[("y", 4)],
        init,
        vec![
            conv("Conv", "conv", &["x", "w"], "c", 4),
            bn("bn", "c", "bn", "y", None),
        ],
    );
    let mut g = original.clone();
    assert_eq!(
        fold_batch_norm(&mut g, None).expect("folds").folded.len(),
        1
    );
    assert_same_outputs(&original, &g, 4);
}

#[test]
fn conv_transpose_folds_along_axis_1_per_group() {
    // 4 input channels, 2 groups, 3 outputs per group: W [4, 3, 1, 1], 6 output channels.
    let mut init = vec![
        f32s("w", &[4, 3, 1, 1], &seq(12, 1.7)),
        f32s("b", &[6], &seq(6, 0.8)),
    ];
    init.extend(bn_params("bn", 6, 2.5));
    let original = graph(
        4,
        &[("y", 6)],
        init,
        vec![
            conv("ConvTranspose", "deconv", &["x", "w", "b"], "c", 2),
            bn("bn", "c", "bn", "y", None),
        ],
    );
    let mut g = original.clone();
    let report = fold_batch_norm(&mut g, None).expect("folds");
    assert_eq!(report.folded.len(), 1, "{:?}", report.skipped);
    assert_eq!(g.node[0].op_type, "ConvTranspose");
    assert_same_outputs(&original, &g, 4);
}

#[test]
fn shared_weight_gets_one_folded_copy_per_conv() {
    // Three convs read `w`; the first two are followed by their own batch norms.
    let mut init = vec![f32s("w", &[2, 2, 1, 1], &[1.0, 2.0, -3.0, 0.5])];
    init.extend(bn_params("bn1", 2, 0.1));
    init.extend(bn_params("bn2", 2, 5.0));
    let original = graph(
        2,
        &[("y1", 2), ("y2", 2), ("y3", 2)],
        init,
        vec![
            conv("Conv", "conv1", &["x", "w"], "c1", 1),
            bn("bn1", "c1", "bn1", "y1", None),
            conv("Conv", "conv2", &["x", "w"], "c2", 1),
            bn("bn2", "c2", "bn2", "y2", None),
            conv("Conv", "conv3", &["x", "w"], "y3", 1),
        ],
    );
    let mut g = original.clone();
    let report = fold_batch_norm(&mut g, None).expect("folds");
    assert_eq!(report.folded.len(), 2);
    let (a, b) = (&report.folded[0], &report.folded[1]);
    assert_ne!(a.weight, b.weight);
    assert_ne!(a.bias, b.bias);
    assert_ne!(weight(&g, &a.weight), weight(&g, &b.weight));
    assert_eq!(
        weight(&g, "w"),
        [1.0, 2.0, -3.0, 0.5],
        "shared weight unchanged"
    );
    assert_eq!(g.node[2].input, ["x", "w"], "conv3 still reads w");
    assert_same_outputs(&original, &g, 2);
    remove_unused_initializers(&mut g);
    assert!(find_weight(&g, "w").is_some(), "w is still read by conv3");
    assert_same_outputs(&original, &g, 2);
}

#[test]
fn conv_output_read_elsewhere_is_not_folded() {
    let mut init = vec![f32s("w", &[2, 2, 1, 1], &seq(4, 0.0))];
    init.extend(bn_params("bn", 2, 0.0));
    // `c` is also read by a Relu.
    let shared = graph(
        2,
        &[("y", 2), ("r", 2)],
        init.clone(),
        vec![
            conv("Conv", "conv", &["x", "w"], "c", 1),
            bn("bn", "c", "bn", "y", None),
            node("Relu", &["c"], &["r"]),
        ],
    );
    let mut g = shared.clone();
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert!(report.folded.is_empty());
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].reason, SkipReason::SharedConvOutput);
    assert_eq!(
        report.skipped[0].conv.as_deref(),
        Some(r#"Conv "conv" (#0)"#)
    );
    assert_eq!(g, shared, "nothing changed");

    // `c` is a graph output.
    let exposed = graph(
        2,
        &[("y", 2), ("c", 2)],
        init,
        vec![
            conv("Conv", "conv", &["x", "w"], "c", 1),
            bn("bn", "c", "bn", "y", None),
        ],
    );
    let mut g = exposed.clone();
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::ConvOutputIsGraphOutput
    );
    assert_eq!(g, exposed);
}

#[test]
fn non_constant_or_non_float_params_are_skipped() {
    // The mean is a graph input.
    let mut g = conv_bn(true, None);
    g.initializer.retain(|t| t.name != "bn_mean");
    g.input.push(value("bn_mean", DataType::Float, Some(&[3])));
    let before = g.clone();
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::NotConstant {
            tensor: "bn_mean".to_owned()
        }
    );
    assert_eq!(g, before);

    // An initializer that is also a graph input can be overridden: not a constant.
    let mut g = conv_bn(true, None);
    g.input.push(value("bn_var", DataType::Float, Some(&[3])));
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert!(matches!(
        &report.skipped[0].reason,
        SkipReason::NotConstant { tensor } if tensor == "bn_var"
    ));

    // A double weight.
    let mut g = conv_bn(true, None);
    g.initializer[0] = tensor_from_values("w", &[3, 4, 1, 1], &[0.5f64; 12]).expect("dims");
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert_eq!(
        report.skipped[0].reason,
        SkipReason::NotFloat {
            tensor: "w".to_owned(),
            data_type: "DOUBLE".to_owned()
        }
    );

    // A parameter of the wrong length.
    let mut g = conv_bn(true, None);
    let at = g
        .initializer
        .iter()
        .position(|t| t.name == "bn_scale")
        .expect("scale");
    g.initializer[at] = f32s("bn_scale", &[2], &[1.0, 1.0]);
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert!(matches!(
        &report.skipped[0].reason,
        SkipReason::Shape { tensor, .. } if tensor == "bn_scale"
    ));

    // Training mode, and a batch norm after something other than a Conv.
    let mut g = conv_bn(true, None);
    g.node[1].output.extend(["running_mean".to_owned()]);
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert_eq!(report.skipped[0].reason, SkipReason::TrainingMode);
    let mut g = conv_bn(true, None);
    g.node.insert(1, node("Relu", &["c"], &["r"]));
    g.node[2].input[0] = "r".to_owned();
    let report = fold_batch_norm(&mut g, None).expect("runs");
    assert_eq!(report.skipped[0].reason, SkipReason::NotAfterConv);
    assert_eq!(report.skipped[0].conv, None);
}

#[test]
fn identity_chains_are_bypassed() {
    // x -> Conv -> Identity -> Identity -> BN -> Identity -> Relu -> y, and Identity(x) -> z.
    let mut init = vec![f32s("w", &[2, 2, 1, 1], &seq(4, 0.6))];
    init.extend(bn_params("bn", 2, 0.9));
    let original = graph(
        2,
        &[("y", 2), ("z", 2)],
        init,
        vec![
            conv("Conv", "conv", &["x", "w"], "c", 1),
            node("Identity", &["c"], &["i1"]),
            node("Identity", &["i1"], &["i2"]),
            bn("bn", "i2", "bn", "n", None),
            node("Identity", &["n"], &["i3"]),
            node("Relu", &["i3"], &["y"]),
            node("Identity", &["x"], &["z"]),
        ],
    );
    let mut g = original.clone();
    g.value_info.push(value("i2", DataType::Float, None));
    assert_eq!(remove_identities(&mut g), 3);
    assert!(g.value_info.is_empty(), "stale value_info removed");
    assert_eq!(count_op(&g, "Identity"), 1, "the graph output z stays");
    assert_eq!(g.node[1].input[0], "c", "BN reads the Conv directly");
    assert_eq!(g.node[2].input, ["n"]);
    assert_same_outputs(&original, &g, 2);
    assert_eq!(remove_identities(&mut g), 0);

    let mut m = model(original.clone(), 13);
    let report = simplify_for_quantization(&mut m, None).expect("simplifies");
    assert_eq!(report.identities, 3);
    assert_eq!(report.fold.folded.len(), 1);
    assert_eq!(report.unused, 5, "w and the four BN parameters");
    let g = m.graph.as_ref().expect("graph");
    assert_eq!(count_op(g, "BatchNormalization"), 0);
    assert_topological(g);
    assert_same_outputs(&original, g, 2);
}

#[test]
fn identity_read_by_a_subgraph_is_kept() {
    let branch = |out: &str| GraphProto {
        name: format!("{out}_branch"),
        node: vec![node("Relu", &["i"], &[out])],
        output: vec![value(out, DataType::Float, None)],
        ..Default::default()
    };
    let mut g = GraphProto {
        input: vec![
            value("cond", DataType::Bool, Some(&[])),
            value("x", DataType::Float, Some(&[2])),
        ],
        output: vec![value("out", DataType::Float, None)],
        node: vec![
            node("Identity", &["x"], &["i"]),
            NodeBuilder::new("If")
                .name("if")
                .input("cond")
                .output("out")
                .attr_graph("then_branch", branch("a"))
                .attr_graph("else_branch", branch("b"))
                .build(),
        ],
        ..Default::default()
    };
    let before = g.clone();
    assert_eq!(remove_identities(&mut g), 0);
    assert_eq!(g, before);
}

#[test]
fn unused_initializers_respect_inputs_outputs_and_captures() {
    let mut g = GraphProto {
        input: vec![
            value("x", DataType::Float, Some(&[2])),
            value("default", DataType::Float, Some(&[2])),
        ],
        output: vec![
            value("y", DataType::Float, Some(&[2])),
            value("k", DataType::Float, Some(&[2])),
        ],
        initializer: vec![
            f32s("default", &[2], &[1.0, 2.0]),
            f32s("unused", &[2], &[1.0, 2.0]),
            f32s("captured", &[2], &[1.0, 2.0]),
            f32s("read", &[2], &[1.0, 2.0]),
        ],
        node: vec![
            constant("k", f32s("", &[2], &[3.0, 4.0])),
            constant("dead", f32s("", &[2], &[3.0, 4.0])),
            node("Add", &["x", "read"], &["s"]),
            NodeBuilder::new("If")
                .name("if")
                .input("cond")
                .output("y")
                .attr_graph(
                    "then_branch",
                    GraphProto {
                        node: vec![node("Add", &["s", "captured"], &["t"])],
                        output: vec![value("t", DataType::Float, None)],
                        ..Default::default()
                    },
                )
                .build(),
        ],
        value_info: vec![value("unused", DataType::Float, Some(&[2]))],
        ..Default::default()
    };
    assert_eq!(remove_unused_initializers(&mut g), 2);
    let names: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["default", "captured", "read"]);
    assert_eq!(count_op(&g, "Constant"), 1);
    assert_eq!(g.node[0].output, ["k"]);
    assert!(g.value_info.is_empty());
}

#[test]
fn simplify_errors_leave_the_model_unchanged() {
    // A foldable pair plus an identity, but a node reading a tensor nothing produces: the final
    // topological sort fails after the other steps ran on the working copy.
    let mut g = conv_bn(true, None);
    g.node.push(node("Identity", &["y"], &["i"]));
    g.node.push(node("Relu", &["ghost"], &["r"]));
    g.output.push(value("r", DataType::Float, None));
    let mut m = model(g, 13);
    let before = m.clone();
    let err = simplify_for_quantization(&mut m, None).expect_err("missing producer");
    assert!(matches!(err, GraphError::MissingProducer { .. }), "{err}");
    assert_eq!(m, before);

    // A tensor produced twice: the index cannot be built.
    let mut g = conv_bn(true, None);
    g.node.push(node("Relu", &["x"], &["c"]));
    let mut m = model(g, 13);
    let before = m.clone();
    let err = simplify_for_quantization(&mut m, None).expect_err("duplicate");
    assert!(matches!(err, GraphError::DuplicateProducer { .. }), "{err}");
    assert_eq!(m, before);

    let mut m = model(GraphProto::default(), 13);
    m.graph = None;
    assert!(matches!(
        simplify_for_quantization(&mut m, None),
        Err(GraphError::NoGraph)
    ));
}
