//! Small hand-built graphs for the quantization unit tests.

use kiln_onnx::graph::NodeBuilder;
use kiln_onnx::proto::{GraphProto, NodeProto, ValueInfoProto};

/// A default-domain node named after its single output.
pub(crate) fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeBuilder::new(op)
        .name(output)
        .inputs(inputs.iter().copied())
        .output(output)
        .build()
}

/// `HardSigmoid(input; alpha, beta = 1/2)` named after its output.
pub(crate) fn hard_sigmoid(input: &str, output: &str, alpha: f32) -> NodeProto {
    NodeBuilder::new("HardSigmoid")
        .name(output)
        .input(input)
        .output(output)
        .attr_f("alpha", alpha)
        .attr_f("beta", 0.5)
        .build()
}

/// A graph of `nodes` with `outputs` as its (untyped) graph outputs.
pub(crate) fn graph(nodes: Vec<NodeProto>, outputs: &[&str]) -> GraphProto {
    GraphProto {
        node: nodes,
        output: outputs
            .iter()
            .map(|o| ValueInfoProto {
                name: (*o).to_owned(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
