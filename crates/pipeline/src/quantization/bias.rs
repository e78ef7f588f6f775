//! Bias correction (`bias_correction: true`): each quantized convolution's own mean output error,
//! measured on the FP32 model's inputs, is subtracted from its bias.
//!
//! The error a layer adds is measured locally: inside the side-by-side graph
//! ([`comparison_model`]), each quantized `Conv` of the INT8 half is run once more on the FP32
//! half's input, quantized and dequantized with the INT8 input encoding, with the INT8 weights and
//! bias; the per-channel mean of its difference to the FP32 output is that layer's shift. Measuring
//! every layer on FP32 inputs keeps the corrections independent of each other: correcting all layers
//! at once from the INT8 model's own outputs would count an upstream layer's shift again in every
//! layer below it. One pass over the first
//! [`BIAS_CORRECTION_SAMPLES`](super::default::BIAS_CORRECTION_SAMPLES) calibration samples; per
//! sample the engine hands back one number per output channel and layer.

use std::collections::HashMap;

use kiln_onnx::Model;
use kiln_onnx::graph::{
    self, GraphIndex, NameGen, NodeBuilder, Producer, replace_weight, tensor_from_values,
    tensor_to_f32,
};
use kiln_onnx::proto::NodeProto;

use super::compare::{INT8_PREFIX, comparison_model};
use crate::error::PipelineError;
use crate::stats::in_graph::unshaped_float_output;

/// The bias-correction model and, per corrected convolution, its output name in the FP32 graph
/// (the key for [`apply_shifts`]) and the output carrying its per-sample, per-channel mean shift.
#[derive(Debug, Clone)]
pub struct ShiftModel {
    /// FP32 and INT8 side by side, with the local re-runs.
    pub model: Model,
    /// `(conv output in the FP32 graph, shift output)`.
    pub outputs: Vec<(String, String)>,
}

/// Builds the model measuring each quantized convolution's local output shift (module docs).
/// Only 2-D convolutions whose input, weight and bias all come through `DequantizeLinear` in
/// `quantized` take part.
pub fn shift_model(prepared: &Model, quantized: &Model) -> Result<ShiftModel, PipelineError> {
    let mut model = comparison_model(prepared, quantized, &[])?.model;
    let opset = graph::opset_version(model.proto(), "").unwrap_or(13);
    let graph = graph::model_graph_mut(model.proto_mut())?;
    let index = GraphIndex::new(graph)?;
    let mut names = NameGen::new(graph);
    let dq_inputs = |tensor: &str| -> Option<&NodeProto> {
        let Some(Producer::Node { node, .. }) = index.producer(tensor) else {
            return None;
        };
        let n = &graph.node[node];
        (n.op_type == "DequantizeLinear" && n.domain.is_empty()).then_some(n)
    };
    let axes_name = names.fresh("kiln_bias_axes");
    let mut nodes = Vec::new();
    let mut outputs = Vec::new();
    for conv in graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv" && n.domain.is_empty() && n.name.starts_with(INT8_PREFIX))
    {
        let (Some(x), Some(w), Some(b), Some(y)) = (
            conv.input.first(),
            conv.input.get(1),
            conv.input.get(2),
            conv.output.first(),
        ) else {
            continue;
        };
        let (Some(x_dq), Some(_), Some(_)) = (dq_inputs(x), dq_inputs(w), dq_inputs(b)) else {
            continue;
        };
        // The DQ of the input reads Q(x): x is the INT8 half's name of an FP32 tensor.
        let Some(Producer::Node { node: q, .. }) =
            x_dq.input.first().and_then(|t| index.producer(t))
        else {
            continue;
        };
        let q = &graph.node[q];
        let (Some(x8), Some(y8)) = (q.input.first(), Some(y)) else {
            continue;
        };
        if q.op_type != "QuantizeLinear" || x_dq.input.len() < 3 {
            continue;
        }
        let (Some(x32), Some(y32)) = (x8.strip_prefix(INT8_PREFIX), y8.strip_prefix(INT8_PREFIX))
        else {
            continue;
        };
        if !index.contains(x32) || !index.contains(y32) {
            continue;
        }
        // The FP32 twin must be a 2-D convolution (4-D weight): the shift is averaged over H, W.
        let twin_is_2d = match index.producer(y32) {
            Some(Producer::Node { node, .. }) => graph.node[node]
                .input
                .get(1)
                .and_then(|w| index.find_weight(graph, w))
                .is_some_and(|w| w.dims().len() == 4),
            _ => false,
        };
        if !twin_is_2d {
            continue;
        }
        let base = names.fresh(&format!("{y32}_kiln_bias"));
        let (xq, xd, yl, diff, shift) = (
            format!("{base}_xq"),
            format!("{base}_x"),
            format!("{base}_y"),
            format!("{base}_diff"),
            format!("{base}_shift"),
        );
        nodes.push(
            NodeBuilder::new("QuantizeLinear")
                .name(xq.clone())
                .inputs([x32, x_dq.input[1].as_str(), x_dq.input[2].as_str()])
                .output(xq.clone())
                .build(),
        );
        nodes.push(
            NodeBuilder::new("DequantizeLinear")
                .name(xd.clone())
                .inputs([xq.as_str(), x_dq.input[1].as_str(), x_dq.input[2].as_str()])
                .output(xd.clone())
                .build(),
        );
        let mut local = conv.clone();
        local.name.clone_from(&yl);
        local.input[0].clone_from(&xd);
        local.output = vec![yl.clone()];
        nodes.push(local);
        nodes.push(
            NodeBuilder::new("Sub")
                .name(diff.clone())
                .inputs([yl.as_str(), y32])
                .output(diff.clone())
                .build(),
        );
        let mut mean = NodeBuilder::new("ReduceMean")
            .name(shift.clone())
            .input(diff.clone())
            .output(shift.clone())
            .attr_i("keepdims", 0);
        mean = if opset >= 18 {
            mean.input(axes_name.clone())
        } else {
            mean.attr_ints("axes", [2, 3])
        };
        nodes.push(mean.build());
        outputs.push((y32.to_owned(), shift));
    }
    if opset >= 18 {
        graph
            .initializer
            .push(tensor_from_values(&axes_name, &[2], &[2i64, 3])?);
    }
    graph.node.extend(nodes);
    for (_, shift) in &outputs {
        graph.output.push(unshaped_float_output(shift));
    }
    // Only the FP32 half, the INT8 constants and the re-runs feed the shifts: the INT8 half's
    // own activations are dead here, and the runtime would compute them anyway.
    graph::prune_dead_nodes(
        graph,
        &graph::PruneOptions {
            initializers: true,
            value_info: true,
        },
    )?;
    graph::toposort_in_place(graph)?;
    Ok(ShiftModel { model, outputs })
}

/// Subtracts `shifts` (conv output in `prepared` -> per-channel mean shift) from the biases of the
/// convolutions producing those outputs. Returns how many biases changed.
pub fn apply_shifts(
    prepared: &mut Model,
    shifts: &HashMap<String, Vec<f64>>,
) -> Result<usize, PipelineError> {
    let graph = graph::model_graph_mut(prepared.proto_mut())?;
    let index = GraphIndex::new(graph)?;
    let mut updates = Vec::new();
    for conv in graph.node.iter().filter(|n| n.op_type == "Conv") {
        let (Some(y), Some(b)) = (conv.output.first(), conv.input.get(2)) else {
            continue;
        };
        let Some(shift) = shifts.get(y) else {
            continue;
        };
        let Some(weight) = index.find_weight(graph, b) else {
            continue;
        };
        let mut values = tensor_to_f32(&weight.tensor)?;
        if values.len() != shift.len() {
            continue;
        }
        for (v, s) in values.iter_mut().zip(shift) {
            #[allow(clippy::cast_possible_truncation)]
            let corrected = (f64::from(*v) - s) as f32;
            if corrected.is_finite() {
                *v = corrected;
            }
        }
        let dims = weight.dims().to_vec();
        updates.push((b.clone(), tensor_from_values(b, &dims, &values)?));
    }
    let count = updates.len();
    for (name, tensor) in updates {
        replace_weight(graph, &name, tensor)?;
    }
    Ok(count)
}
