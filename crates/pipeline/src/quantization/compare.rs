//! One model running the FP32 and the INT8 graph side by side on the same inputs and reducing
//! their difference inside the graph, so comparing them layer by layer needs two numbers per
//! tensor and sample instead of the tensors themselves.
//!
//! The INT8 graph's names (tensors, nodes, initializers, subgraphs included) get the
//! [`INT8_PREFIX`]; only the graph inputs are shared. For each compared float tensor `t` two
//! outputs of shape `[N]` are added: `sum((t - int8/t)^2)` and `sum(t^2)` over each sample. The
//! INT8 half still runs ONNX Runtime's integer kernels wherever the compared tensor is not a
//! kernel's internal value.

use std::collections::HashSet;

use kiln_onnx::Model;
use kiln_onnx::graph::{self, GraphIndex, NameGen, NodeBuilder};
use kiln_onnx::proto::GraphProto;
use kiln_onnx::proto::tensor_proto::DataType;

use crate::error::PipelineError;
use crate::stats::in_graph::{add_reduction_constants, reduce_axis1, unshaped_float_output};

/// The prefix of every name of the INT8 half.
pub const INT8_PREFIX: &str = "kiln_int8/";

/// The merged model and, per compared tensor, its two output names.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// FP32 and INT8 side by side.
    pub model: Model,
    /// `(tensor, squared-difference output, squared-norm output)`.
    pub outputs: Vec<(String, String, String)>,
}

impl Comparison {
    /// Every added output name.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .flat_map(|(_, d, n)| [d.clone(), n.clone()])
            .collect()
    }
}

/// Builds the comparison of `reference` and `quantized` (which share graph inputs and the names
/// of `tensors`). Tensors missing from either graph, or known not to be float, are left out.
pub fn comparison_model(
    reference: &Model,
    quantized: &Model,
    tensors: &[String],
) -> Result<Comparison, PipelineError> {
    let mut model = reference.clone();
    let opset = graph::opset_version(model.proto(), "").unwrap_or(13);
    let mut int8 = graph::model_graph(quantized.proto())?.clone();
    let shared: HashSet<String> = int8.input.iter().map(|i| i.name.clone()).collect();
    prefix_names(&mut int8, &shared);

    let graph = graph::model_graph_mut(model.proto_mut())?;
    let (ref_index, int8_index) = (GraphIndex::new(graph)?, GraphIndex::new(&int8)?);
    let compared: Vec<&String> = tensors
        .iter()
        .filter(|t| {
            let q = format!("{INT8_PREFIX}{t}");
            let float = |index: &GraphIndex, name: &str| {
                index.contains(name) && index.elem_type(name).is_none_or(|d| d == DataType::Float)
            };
            float(&ref_index, t) && float(&int8_index, &q)
        })
        .collect();

    graph.node.extend(int8.node);
    // Initializers listed as (shared) graph inputs are the reference's own.
    graph.initializer.extend(
        int8.initializer
            .into_iter()
            .filter(|t| !shared.contains(&t.name)),
    );
    graph.sparse_initializer.extend(int8.sparse_initializer);
    graph.value_info.extend(int8.value_info);

    let mut names = NameGen::new(graph);
    let shape = names.fresh("kiln_compare_flatten_shape");
    let axes = names.fresh("kiln_compare_axes");
    add_reduction_constants(graph, &shape, &axes, opset)?;
    let mut nodes = Vec::new();
    let mut outputs = Vec::new();
    let sum_squares = |names: &mut NameGen, nodes: &mut Vec<_>, input: &str, what: &str| {
        let flat = names.fresh(&format!("{input}_kiln_{what}_flat"));
        nodes.push(
            NodeBuilder::new("Reshape")
                .name(flat.clone())
                .inputs([input, shape.as_str()])
                .output(flat.clone())
                .build(),
        );
        let out = names.fresh(&format!("{input}_kiln_{what}"));
        nodes.push(reduce_axis1("ReduceSumSquare", &flat, &out, &axes, opset));
        out
    };
    for t in compared {
        let q = format!("{INT8_PREFIX}{t}");
        let diff = names.fresh(&format!("{t}_kiln_diff"));
        nodes.push(
            NodeBuilder::new("Sub")
                .name(diff.clone())
                .inputs([t.as_str(), q.as_str()])
                .output(diff.clone())
                .build(),
        );
        let d2 = sum_squares(&mut names, &mut nodes, &diff, "diff2");
        let n2 = sum_squares(&mut names, &mut nodes, t, "norm2");
        outputs.push((t.clone(), d2, n2));
    }
    graph.node.extend(nodes);
    for (_, d, n) in &outputs {
        graph.output.push(unshaped_float_output(d));
        graph.output.push(unshaped_float_output(n));
    }
    graph::toposort_in_place(graph)?;
    Ok(Comparison { model, outputs })
}

/// Prefixes every name in `graph` and its subgraphs (tensors, nodes) except `shared` ones and
/// empty (absent optional) inputs.
fn prefix_names(graph: &mut GraphProto, shared: &HashSet<String>) {
    let rename = |name: &mut String| {
        if !name.is_empty() && !shared.contains(name.as_str()) {
            *name = format!("{INT8_PREFIX}{name}");
        }
    };
    for node in &mut graph.node {
        if !node.name.is_empty() {
            node.name = format!("{INT8_PREFIX}{}", node.name);
        }
        node.input.iter_mut().for_each(rename);
        node.output.iter_mut().for_each(rename);
        for attr in &mut node.attribute {
            if let Some(g) = attr.g.as_mut() {
                prefix_names(g, shared);
            }
            for g in &mut attr.graphs {
                prefix_names(g, shared);
            }
        }
    }
    for t in &mut graph.initializer {
        rename(&mut t.name);
    }
    for t in &mut graph.sparse_initializer {
        if let Some(v) = t.values.as_mut() {
            rename(&mut v.name);
        }
        if let Some(i) = t.indices.as_mut() {
            rename(&mut i.name);
        }
    }
    for v in graph
        .value_info
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.input.iter_mut())
    {
        rename(&mut v.name);
    }
    for a in &mut graph.quantization_annotation {
        rename(&mut a.tensor_name);
    }
}
