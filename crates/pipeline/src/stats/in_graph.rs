//! Min/max statistics reduced inside the graph: `ReduceMin`/`ReduceMax` per sample, so the engine
//! reads two numbers per sample and tensor instead of the whole activation.
//!
//! Exposing a tensor as a graph output makes the runtime copy it out every batch (tens of MB per
//! sample for a detector) and the collector scan it again. For the statistics that only need each
//! sample's extremes ([`StatKind::Min`], [`StatKind::Max`], [`StatKind::MeanMin`],
//! [`StatKind::MeanMax`]) the runtime can reduce in place: `Reshape(t, [0, -1])` then
//! `ReduceMin`/`ReduceMax` over axis 1 give `[N]` per-sample extremes. [`InGraphStats::assemble`]
//! turns the two outputs into an `[N, 2]` batch under the tensor's own name, whose per-sample and
//! global extremes are exactly those of the tensor, so the [`StatsCollector`](super::StatsCollector)
//! needs no special case. Tensors needing other statistics (histograms, per-channel) are exposed
//! whole, as [`add_stat_outputs`](super::add_stat_outputs) does.
//!
//! A tensor whose layout asks only for maxima ([`StatKind::Max`], [`StatKind::MeanMax`]: the
//! quantizer does so for activation outputs, whose least value it knows) gets a single
//! `ReduceMax`, after a `GlobalMaxPool` for image batches; ONNX Runtime runs that pool in the
//! blocked (NCHWc) layout its fused convolutions write, so measuring does not force a layout
//! conversion of the whole activation.

use kiln_onnx::graph::{
    self, AddOutputsOptions, GraphIndex, NameGen, NodeBuilder, tensor_from_values,
    tensor_type_proto,
};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{GraphProto, NodeProto, ValueInfoProto};
use ndarray::Array2;

use super::{StatKind, StatsLayout};
use crate::error::PipelineError;
use crate::quantization::activations::image_batch;
use crate::tensor::{Tensor, TensorMap};

/// Which tensors are reduced in the graph, and the outputs carrying their extremes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InGraphStats {
    /// `(tensor, per-sample min output, per-sample max output)`.
    pub reduced: Vec<(String, String, String)>,
    /// `(tensor, per-sample max output)`: tensors whose layout asks for maxima only.
    pub maxima: Vec<(String, String)>,
    /// Tensors exposed whole.
    pub exposed: Vec<String>,
}

/// `op` (`ReduceMin`, `ReduceMax`, `ReduceSumSquare`, ...) of the `[N, K]` tensor `flat` over
/// axis 1 without keeping it: `[N]`. From opset 18 the axes are the input `axes` (an initializer
/// holding `[1]`), before that an attribute.
pub(crate) fn reduce_axis1(
    op: &str,
    flat: &str,
    output: &str,
    axes: &str,
    opset: i64,
) -> NodeProto {
    let node = NodeBuilder::new(op)
        .name(output)
        .input(flat)
        .output(output)
        .attr_i("keepdims", 0);
    if opset >= 18 {
        node.input(axes).build()
    } else {
        node.attr_ints("axes", [1]).build()
    }
}

/// Adds the constants [`reduce_axis1`] reductions read: `shape` = `[0, -1]` (the `Reshape` to
/// `[N, K]`) and, from opset 18, `axes` = `[1]`.
pub(crate) fn add_reduction_constants(
    graph: &mut GraphProto,
    shape: &str,
    axes: &str,
    opset: i64,
) -> Result<(), PipelineError> {
    graph
        .initializer
        .push(tensor_from_values(shape, &[2], &[0i64, -1])?);
    if opset >= 18 {
        graph
            .initializer
            .push(tensor_from_values(axes, &[1], &[1i64])?);
    }
    Ok(())
}

/// A float graph output declared without a shape (per-sample reductions: `[N]`).
pub(crate) fn unshaped_float_output(name: &str) -> ValueInfoProto {
    let mut float = tensor_type_proto(DataType::Float as i32, &[]);
    if let Some(kiln_onnx::proto::type_proto::Value::TensorType(t)) = float.value.as_mut() {
        t.shape = None;
    }
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(float),
        ..Default::default()
    }
}

/// Whether every statistic of `kinds` can be computed from per-sample extremes.
fn extremes_suffice(kinds: &[StatKind]) -> bool {
    kinds.iter().all(|k| {
        matches!(
            k,
            StatKind::Min | StatKind::Max | StatKind::MeanMin | StatKind::MeanMax
        )
    })
}

/// Adds per-sample `ReduceMin`/`ReduceMax` outputs for the layout's tensors that only need
/// extremes, and exposes the others whole. Graph inputs are skipped (the engine has them).
/// `opset` is the model's default-domain opset (`ReduceMin` takes `axes` as an input from 18).
pub fn add_stat_reductions(
    graph: &mut GraphProto,
    layout: &StatsLayout,
    opset: i64,
) -> Result<InGraphStats, PipelineError> {
    let index = GraphIndex::new(graph)?;
    let mut names = NameGen::new(graph);
    let mut result = InGraphStats::default();
    let mut nodes = Vec::new();
    let mut outputs = Vec::new();
    let shape = names.fresh("kiln_stats_flatten_shape");
    let axes = names.fresh("kiln_stats_axes");
    for (tensor, kinds) in layout.iter() {
        if graph.input.iter().any(|i| i.name == tensor) {
            continue;
        }
        let scalar = index.rank(tensor) == Some(0);
        let float = index.elem_type(tensor).is_none_or(|t| t == DataType::Float);
        if !extremes_suffice(kinds) || scalar || !float {
            result.exposed.push(tensor.to_owned());
            continue;
        }
        // Only maxima asked for (the caller knows the lower end, e.g. an activation's floor):
        // reduce the maximum alone, after a `GlobalMaxPool` when the tensor is an image batch
        // (ONNX Runtime runs it in the blocked layout its fused convolutions write, and the
        // reduction then reads only `[N, C]`).
        let max_only = !kinds
            .iter()
            .any(|k| matches!(k, StatKind::Min | StatKind::MeanMin));
        let mut source = tensor.to_owned();
        if max_only && image_batch(graph, &index, tensor) {
            source = names.fresh(&format!("{tensor}_kiln_GlobalMaxPool"));
            nodes.push(
                NodeBuilder::new("GlobalMaxPool")
                    .name(source.clone())
                    .input(tensor)
                    .output(source.clone())
                    .build(),
            );
        }
        let flat = names.fresh(&format!("{tensor}_kiln_flat"));
        nodes.push(
            NodeBuilder::new("Reshape")
                .name(names.fresh(&format!("{tensor}_kiln_Reshape")))
                .inputs([source.as_str(), shape.as_str()])
                .output(flat.clone())
                .build(),
        );
        if max_only {
            let out = names.fresh(&format!("{tensor}_kiln_ReduceMax"));
            nodes.push(reduce_axis1("ReduceMax", &flat, &out, &axes, opset));
            outputs.push(out.clone());
            result.maxima.push((tensor.to_owned(), out));
            continue;
        }
        let mut pair = Vec::new();
        for op in ["ReduceMin", "ReduceMax"] {
            let out = names.fresh(&format!("{tensor}_kiln_{op}"));
            nodes.push(reduce_axis1(op, &flat, &out, &axes, opset));
            outputs.push(out.clone());
            pair.push(out);
        }
        let (min, max) = (pair[0].clone(), pair[1].clone());
        result.reduced.push((tensor.to_owned(), min, max));
    }
    if !result.reduced.is_empty() || !result.maxima.is_empty() {
        add_reduction_constants(graph, &shape, &axes, opset)?;
        graph.node.extend(nodes);
        graph
            .output
            .extend(outputs.into_iter().map(|name| unshaped_float_output(&name)));
    }
    graph::add_outputs(graph, &result.exposed, &AddOutputsOptions::default())?;
    tracing::debug!(
        min_max = result.reduced.len(),
        max_only = result.maxima.len(),
        exposed = result.exposed.len(),
        "statistics reduced in the graph"
    );
    tracing::trace!(min_max = ?result.reduced.iter().map(|r| &r.0).collect::<Vec<_>>());
    Ok(result)
}

impl InGraphStats {
    /// Replaces each reduced tensor's two outputs in `extra` by an `[N, 2]` batch of its per-sample
    /// `[min, max]` (`[N, 1]` maxima for max-only tensors), under the tensor's name.
    pub fn assemble(&self, extra: &mut TensorMap) -> Result<(), PipelineError> {
        for (tensor, min, max) in &self.reduced {
            let (Some(Tensor::F32(lo)), Some(Tensor::F32(hi))) =
                (extra.remove(min), extra.remove(max))
            else {
                return Err(PipelineError::Output {
                    name: tensor.clone(),
                    reason: "the in-graph min/max reductions did not come back as float tensors"
                        .to_owned(),
                });
            };
            let lo: Vec<f32> = lo.iter().copied().collect();
            let hi: Vec<f32> = hi.iter().copied().collect();
            if lo.len() != hi.len() {
                return Err(PipelineError::Output {
                    name: tensor.clone(),
                    reason: format!("{} minima but {} maxima", lo.len(), hi.len()),
                });
            }
            let mut pairs = Array2::<f32>::zeros((lo.len(), 2));
            for (i, (a, b)) in lo.iter().zip(&hi).enumerate() {
                pairs[[i, 0]] = *a;
                pairs[[i, 1]] = *b;
            }
            extra.insert(tensor.clone(), pairs.into_dyn());
        }
        for (tensor, max) in &self.maxima {
            let Some(Tensor::F32(hi)) = extra.remove(max) else {
                return Err(PipelineError::Output {
                    name: tensor.clone(),
                    reason: "the in-graph max reduction did not come back as a float tensor"
                        .to_owned(),
                });
            };
            let hi: Vec<f32> = hi.iter().copied().collect();
            let column =
                Array2::from_shape_vec((hi.len(), 1), hi).map_err(|e| PipelineError::Output {
                    name: tensor.clone(),
                    reason: e.to_string(),
                })?;
            extra.insert(tensor.clone(), column.into_dyn());
        }
        Ok(())
    }
}
