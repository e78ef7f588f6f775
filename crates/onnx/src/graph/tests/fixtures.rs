//! Synthetic graphs shared by the graph tests: a small CNN (initializer and Constant weights), a
//! cycle, a missing producer, an `If` capturing an outer tensor; and a topological-order check.

use std::collections::HashSet;

use crate::graph::{NodeBuilder, subgraph_captures, tensor_from_values};
use crate::proto::tensor_proto::DataType;
use crate::proto::{
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, ValueInfoProto,
};

/// A tensor-typed value; `dims: None` declares no shape.
pub fn value(name: &str, elem: DataType, dims: Option<&[i64]>) -> ValueInfoProto {
    let ty = match dims {
        Some(dims) => crate::graph::tensor_type_proto(elem as i32, dims),
        None => crate::graph::TensorType {
            elem_type: elem,
            dims: None,
        }
        .to_proto(),
    };
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(ty),
        ..Default::default()
    }
}

/// An f32 tensor in `raw_data` with values `start, start+step, ...`.
pub fn f32_tensor(name: &str, dims: &[i64], start: f32, step: f32) -> TensorProto {
    let n: i64 = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| start + step * i as f32).collect();
    tensor_from_values(name, dims, &values).expect("dims match")
}

/// A node named after its first output.
pub fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeBuilder::new(op)
        .name(format!("{}_node", outputs.first().copied().unwrap_or(op)))
        .inputs(inputs.iter().copied())
        .outputs(outputs.iter().copied())
        .build()
}

/// A `Constant` node producing `output` from `value`.
pub fn constant(output: &str, value: TensorProto) -> NodeProto {
    NodeBuilder::new("Constant")
        .name(format!("{output}_const"))
        .output(output)
        .attr_tensor("value", value)
        .build()
}

/// A model around `graph` importing default-domain `opset`.
pub fn model(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "kiln-tests".to_owned(),
        graph: Some(graph),
        ..Default::default()
    }
}

/// `x -> Conv(w1, b1 initializers) -> Relu -> Conv(w2, b2 Constant nodes) -> Add(+r1)
/// -> Concat(a1, r1) -> y`. Node positions: 0 conv1, 1 relu1, 2 w2 const, 3 b2 const, 4 conv2,
/// 5 add, 6 concat. `r1` has three readers: (4, 0), (5, 1), (6, 1).
pub fn small_cnn() -> GraphProto {
    let b1 = TensorProto {
        name: "b1".to_owned(),
        dims: vec![4],
        data_type: DataType::Float as i32,
        float_data: vec![0.5, -0.5, 1.0, -1.0],
        ..Default::default()
    };
    let b2 = TensorProto {
        dims: vec![4],
        data_type: DataType::Float as i32,
        float_data: vec![0.1, 0.2, 0.3, 0.4],
        ..Default::default()
    };
    GraphProto {
        name: "small_cnn".to_owned(),
        input: vec![value("x", DataType::Float, Some(&[1, 3, 8, 8]))],
        output: vec![value("y", DataType::Float, Some(&[1, 8, 8, 8]))],
        initializer: vec![f32_tensor("w1", &[4, 3, 3, 3], -0.5, 0.01), b1],
        node: vec![
            NodeBuilder::new("Conv")
                .name("conv1")
                .inputs(["x", "w1", "b1"])
                .output("c1")
                .attr_ints("pads", [1, 1, 1, 1])
                .build(),
            NodeBuilder::new("Relu")
                .name("relu1")
                .input("c1")
                .output("r1")
                .build(),
            constant("w2", f32_tensor("", &[4, 4, 1, 1], 0.0, 0.125)),
            constant("b2", b2),
            NodeBuilder::new("Conv")
                .name("conv2")
                .inputs(["r1", "w2", "b2"])
                .output("c2")
                .build(),
            NodeBuilder::new("Add")
                .name("add")
                .inputs(["c2", "r1"])
                .output("a1")
                .build(),
            NodeBuilder::new("Concat")
                .name("concat")
                .inputs(["a1", "r1"])
                .output("y")
                .attr_i("axis", 1)
                .build(),
        ],
        ..Default::default()
    }
}

/// `t1 = Add(x, t2); t2 = Relu(t1); y = Relu(t2)`: a cycle through `t1` and `t2`.
pub fn cycle_graph() -> GraphProto {
    GraphProto {
        input: vec![value("x", DataType::Float, Some(&[2]))],
        output: vec![value("y", DataType::Float, Some(&[2]))],
        node: vec![
            node("Add", &["x", "t2"], &["t1"]),
            node("Relu", &["t1"], &["t2"]),
            node("Relu", &["t2"], &["y"]),
        ],
        ..Default::default()
    }
}

/// `y = Relu(ghost)` where nothing produces `ghost`.
pub fn missing_graph() -> GraphProto {
    GraphProto {
        input: vec![value("x", DataType::Float, Some(&[2]))],
        output: vec![value("y", DataType::Float, Some(&[2]))],
        node: vec![node("Relu", &["ghost"], &["y"])],
        ..Default::default()
    }
}

/// `out = If(cond) { Relu(s) } else { Identity(s) }` with `s = Sigmoid(x)` listed after the `If`
/// (unsorted): the `If` depends on `s` only through its branches.
pub fn if_graph() -> GraphProto {
    let branch = |op: &str, out: &str| GraphProto {
        name: format!("{out}_branch"),
        node: vec![node(op, &["s"], &[out])],
        output: vec![value(out, DataType::Float, None)],
        ..Default::default()
    };
    GraphProto {
        input: vec![
            value("cond", DataType::Bool, Some(&[])),
            value("x", DataType::Float, Some(&[2])),
        ],
        output: vec![value("out", DataType::Float, None)],
        node: vec![
            NodeBuilder::new("If")
                .name("if")
                .input("cond")
                .output("out")
                .attr_graph("then_branch", branch("Relu", "then_out"))
                .attr_graph("else_branch", branch("Identity", "else_out"))
                .build(),
            node("Sigmoid", &["x"], &["s"]),
        ],
        ..Default::default()
    }
}

/// Panics unless every tensor a node reads (inputs and subgraph captures) is a graph input, an
/// initializer or the output of an earlier node.
pub fn assert_topological(graph: &GraphProto) {
    let mut available: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
    available.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    let mut captures = Vec::new();
    for (i, n) in graph.node.iter().enumerate() {
        captures.clear();
        captures.extend(subgraph_captures(n));
        for input in n
            .input
            .iter()
            .filter(|s| !s.is_empty())
            .chain(captures.iter())
        {
            assert!(
                available.contains(input.as_str()),
                "node #{i} {} reads {input:?} before it is produced",
                n.op_type
            );
        }
        available.extend(n.output.iter().map(String::as_str));
    }
    for output in &graph.output {
        assert!(
            available.contains(output.name.as_str()),
            "output {:?} is never produced",
            output.name
        );
    }
}

/// The positions of nodes named `name`.
pub fn position(graph: &GraphProto, name: &str) -> usize {
    graph
        .node
        .iter()
        .position(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node named {name:?}"))
}

/// The node producing `tensor`.
pub fn producer_of<'g>(graph: &'g GraphProto, tensor: &str) -> &'g NodeProto {
    graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == tensor))
        .unwrap_or_else(|| panic!("nothing produces {tensor:?}"))
}
