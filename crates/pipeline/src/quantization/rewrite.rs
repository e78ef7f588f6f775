//! Applying a [`Plan`]: Q/DQ pairs on activations, S8 per-channel weights and INT32 biases behind
//! `DequantizeLinear`, U8 constants, and the integer lowering of `HardSwish` / `HardSigmoid`.
//!
//! The output is a standard ONNX QDQ model; ONNX Runtime fuses `DQ -> op -> Q` into its integer
//! kernels (`QLinearConv`, `QLinearAdd`, `QLinearMul`, `QLinearSigmoid`, `QLinearConcat`, ...).
//!
//! `HardSigmoid(x) = clip(αx + β, 0, 1)` has no integer kernel, and between `DQ` and `Q` ONNX
//! Runtime runs it (and `HardSwish = x · HardSigmoid(x)`) in float, slower than the FP32 model. It
//! is lowered exactly onto integer ops instead: `Add(x, β/α) -> Q(scale = (1/α)/255, zp 0)`
//! saturates to `[0, 1/α]` (the clip), and the same bytes read with `DQ(scale = 1/255)` are the
//! hard sigmoid; `HardSwish` multiplies by `x`. ONNX Runtime runs it as `QLinearAdd` + `QLinearMul`.

use std::collections::{BTreeMap, HashMap};

use kiln_onnx::ExternalDataResolver;
use kiln_onnx::graph::{
    self, Consumer, Consumers, EdgeInsert, GraphError, NameGen, NodeBuilder, NodeExt, QdqSpec,
    find_weight, qdq_edge, tensor_from_values, tensor_to_f32_with,
};
use kiln_onnx::proto::GraphProto;

use super::activations;
use super::placement::Plan;
use super::qparams::{
    ActivationParams, quantize_bias, quantize_weights_last_axis, quantize_weights_per_channel,
};
use crate::error::PipelineError;

/// What [`apply`] did, for reports.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RewriteReport {
    /// Activation tensors given Q/DQ.
    pub activations: usize,
    /// Weights stored as S8.
    pub weights: usize,
    /// Biases stored as INT32.
    pub biases: usize,
    /// `HardSwish`/`HardSigmoid` nodes lowered to integer ops.
    pub lowered_activations: usize,
    /// The encoding of each quantized activation: tensor -> (scale, zero point).
    pub encodings: BTreeMap<String, (f32, u8)>,
}

fn graph_error(e: GraphError) -> PipelineError {
    PipelineError::from(e)
}

/// Rewrites `graph` (topologically sorted, the graph `plan` was computed on) with `ranges`
/// (calibrated `(lo, hi)` per tensor). Tensors of the plan without a range stay float.
pub fn apply(
    graph: &mut GraphProto,
    plan: &Plan,
    ranges: &HashMap<String, (f32, f32)>,
    resolver: &dyn ExternalDataResolver,
) -> Result<RewriteReport, PipelineError> {
    let mut report = RewriteReport::default();
    let mut names = NameGen::new(graph);
    let index = graph::GraphIndex::new(graph).map_err(graph_error)?;

    // Activation encodings: one per group, over the union of its members' (dead-zone clipped)
    // ranges.
    let mut encoding: HashMap<String, ActivationParams> = HashMap::new();
    for group in &plan.groups {
        let mut lo = f32::INFINITY;
        let mut hi = f32::NEG_INFINITY;
        for t in group {
            if let Some(&(a, b)) = ranges.get(t) {
                let (a, b) = dead_zone(graph, &index, t, a, b);
                lo = lo.min(a);
                hi = hi.max(b);
            }
        }
        if lo > hi {
            continue; // no statistics: the group stays float
        }
        let params = ActivationParams::from_range(lo, hi);
        for t in group {
            encoding.insert(t.clone(), params);
        }
    }

    // Outputs of lowered HardSigmoid nodes are already DequantizeLinear outputs.
    let lowered_sigmoid_outputs: Vec<String> = plan
        .nodes
        .iter()
        .map(|&i| &graph.node[i])
        .filter(|n| n.op_type == "HardSigmoid")
        .filter_map(|n| n.output.first().cloned())
        .collect();

    let mut edits: Vec<EdgeInsert> = Vec::new();
    // Group scale/zero-point initializers, shared by every tensor of the group.
    let mut group_params: HashMap<(u32, u8), (String, String)> = HashMap::new();
    for t in &plan.tensors {
        if lowered_sigmoid_outputs.contains(t) {
            continue;
        }
        let Some(params) = encoding.get(t) else {
            continue;
        };
        let (scale, zp) = group_params
            .entry((params.scale.to_bits(), params.zero_point))
            .or_insert_with(|| {
                let scale = add_scalar(graph, &mut names, &format!("{t}_scale"), params.scale);
                let zp = add_u8(
                    graph,
                    &mut names,
                    &format!("{t}_zero_point"),
                    params.zero_point,
                );
                (scale, zp)
            })
            .clone();
        edits.push(qdq_edge(
            &mut names,
            t,
            Consumers::All,
            &QdqSpec::per_tensor(scale, zp),
        ));
        report
            .encodings
            .insert(t.clone(), (params.scale, params.zero_point));
        report.activations += 1;
    }

    // Weights and biases of quantized compute nodes.
    for site in &plan.weights {
        let Some(input) = encoding.get(&site.input) else {
            continue;
        };
        let Some(weight) = find_weight(graph, &site.tensor) else {
            continue;
        };
        let dims = weight.dims().to_vec();
        let values = tensor_to_f32_with(&weight.tensor, resolver).map_err(PipelineError::from)?;
        let channels = match site.axis {
            Some(axis) => dims.get(axis).copied().unwrap_or(1).max(1) as usize,
            None => 1,
        };
        let quantized = match site.axis {
            Some(0) | None => quantize_weights_per_channel(&values, channels),
            Some(_) => quantize_weights_last_axis(&values, channels),
        };
        let Some(quantized) = quantized else { continue };
        let base = site.tensor.clone();
        let q = graph::add_initializer(
            graph,
            &mut names,
            tensor_from_values(&format!("{base}_quantized"), &dims, &quantized.values)
                .map_err(PipelineError::from)?,
        );
        let scale_dims = if site.axis.is_some() {
            vec![channels as i64]
        } else {
            vec![]
        };
        let scale = graph::add_initializer(
            graph,
            &mut names,
            tensor_from_values(&format!("{base}_scale"), &scale_dims, &quantized.scales)
                .map_err(PipelineError::from)?,
        );
        let zero = graph::add_initializer(
            graph,
            &mut names,
            tensor_from_values(
                &format!("{base}_zero_point"),
                &scale_dims,
                &vec![0i8; quantized.scales.len()],
            )
            .map_err(PipelineError::from)?,
        );
        let output = names.fresh(&format!("{base}_dequantized"));
        let mut dq = NodeBuilder::new("DequantizeLinear")
            .name(names.fresh(&format!("{base}_DequantizeLinear")))
            .inputs([q, scale, zero])
            .output(output.clone());
        if let Some(axis) = site.axis {
            dq = dq.attr_i("axis", axis as i64);
        }
        edits.push(EdgeInsert {
            tensor: site.tensor.clone(),
            consumers: Consumers::Only(vec![Consumer {
                node: site.node,
                slot: 1,
            }]),
            nodes: vec![dq.build()],
            output,
        });
        report.weights += 1;

        if let Some(bias) = &site.bias {
            let Some(b) = find_weight(graph, bias) else {
                continue;
            };
            let values = tensor_to_f32_with(&b.tensor, resolver).map_err(PipelineError::from)?;
            if values.len() != quantized.scales.len() && quantized.scales.len() != 1 {
                continue;
            }
            let weight_scales: Vec<f32> = if quantized.scales.len() == 1 {
                vec![quantized.scales[0]; values.len()]
            } else {
                quantized.scales.clone()
            };
            let (q_bias, bias_scales) = quantize_bias(&values, input.scale, &weight_scales);
            let dims = vec![values.len() as i64];
            let qb = graph::add_initializer(
                graph,
                &mut names,
                tensor_from_values(&format!("{bias}_quantized"), &dims, &q_bias)
                    .map_err(PipelineError::from)?,
            );
            let sb = graph::add_initializer(
                graph,
                &mut names,
                tensor_from_values(&format!("{bias}_scale"), &dims, &bias_scales)
                    .map_err(PipelineError::from)?,
            );
            let zb = graph::add_initializer(
                graph,
                &mut names,
                tensor_from_values(
                    &format!("{bias}_zero_point"),
                    &dims,
                    &vec![0i32; values.len()],
                )
                .map_err(PipelineError::from)?,
            );
            let output = names.fresh(&format!("{bias}_dequantized"));
            let dq = NodeBuilder::new("DequantizeLinear")
                .name(names.fresh(&format!("{bias}_DequantizeLinear")))
                .inputs([qb, sb, zb])
                .output(output.clone())
                .attr_i("axis", 0)
                .build();
            edits.push(EdgeInsert {
                tensor: bias.clone(),
                consumers: Consumers::Only(vec![Consumer {
                    node: site.node,
                    slot: 2,
                }]),
                nodes: vec![dq],
                output,
            });
            report.biases += 1;
        }
    }

    // Constant inputs of quantized Add/Mul/Concat: U8 per tensor.
    for c in &plan.constants {
        let Some(weight) = find_weight(graph, c) else {
            continue;
        };
        if weight.data_type() != Some(kiln_onnx::proto::tensor_proto::DataType::Float) {
            continue;
        }
        let dims = weight.dims().to_vec();
        let values = tensor_to_f32_with(&weight.tensor, resolver).map_err(PipelineError::from)?;
        let (lo, hi) = values
            .iter()
            .fold((0f32, 0f32), |(a, b), v| (a.min(*v), b.max(*v)));
        let params = ActivationParams::from_range(lo, hi);
        let q: Vec<u8> = values
            .iter()
            .map(|v| {
                ((v / params.scale).round() + f32::from(params.zero_point)).clamp(0.0, 255.0) as u8
            })
            .collect();
        let consumers: Vec<Consumer> = index
            .consumers(c)
            .iter()
            .filter(|k| plan.nodes.contains(&k.node))
            .copied()
            .collect();
        if consumers.is_empty() {
            continue;
        }
        let qn = graph::add_initializer(
            graph,
            &mut names,
            tensor_from_values(&format!("{c}_quantized"), &dims, &q)
                .map_err(PipelineError::from)?,
        );
        let scale = add_scalar(graph, &mut names, &format!("{c}_scale"), params.scale);
        let zp = add_u8(
            graph,
            &mut names,
            &format!("{c}_zero_point"),
            params.zero_point,
        );
        let output = names.fresh(&format!("{c}_dequantized"));
        let dq = NodeBuilder::new("DequantizeLinear")
            .name(names.fresh(&format!("{c}_DequantizeLinear")))
            .inputs([qn, scale, zp])
            .output(output.clone())
            .build();
        edits.push(EdgeInsert {
            tensor: c.clone(),
            consumers: Consumers::Only(consumers),
            nodes: vec![dq],
            output,
        });
    }

    // The nodes to lower, by output name (positions move with the edge edits).
    let hard_activations: Vec<String> = plan
        .nodes
        .iter()
        .filter_map(|&i| graph.node.get(i))
        .filter(|n| matches!(n.op_type.as_str(), "HardSwish" | "HardSigmoid"))
        .filter_map(|n| n.output.first().cloned())
        .collect();
    graph::insert_on_edges(graph, edits).map_err(graph_error)?;

    // Integer lowering of HardSwish / HardSigmoid (after the edges: their input now reads a DQ).
    report.lowered_activations = lower_hard_activations(graph, &hard_activations, &mut names)?;
    graph::toposort_in_place(graph).map_err(graph_error)?;
    Ok(report)
}

/// Narrows a tensor's range where its readers cannot tell values apart: below −3 `HardSwish` is
/// 0, outside `[-β/α, (1-β)/α]` `HardSigmoid` saturates, below 0 `Relu` is 0. Applies only when
/// every reader is such an op (exact). A tensor read only by a gated activation is clipped to
/// that activation's dead zone: `Mul(x, HardSigmoid(x; 1/6, 1/2))` is a `HardSwish` (exact), and
/// `Mul(x, Sigmoid(x))` is clipped at [`activations::SILU_DEAD_ZONE`], which changes the SiLU by at
/// most [`activations::SILU_DEAD_ZONE_ERROR`].
fn dead_zone(
    graph: &GraphProto,
    index: &graph::GraphIndex,
    tensor: &str,
    lo: f32,
    hi: f32,
) -> (f32, f32) {
    let consumers = index.consumers(tensor);
    if consumers.is_empty() || index.is_graph_output(tensor) {
        return (lo, hi);
    }
    if let Some(used) = activations::sole_activation(graph, index, tensor)
        && used.gate.is_some()
    {
        let (a, b) = used.activation.dead_zone();
        return (lo.max(a), hi.min(b));
    }
    let mut new_lo = f32::INFINITY;
    let mut new_hi = f32::NEG_INFINITY;
    for c in consumers {
        let n = &graph.node[c.node];
        let (a, b) = match n.op_type.as_str() {
            "HardSwish" => (-3.0, f32::INFINITY),
            "HardSigmoid" => {
                let alpha = n.attr_f("alpha").unwrap_or(0.2);
                let beta = n.attr_f("beta").unwrap_or(0.5);
                if alpha <= 0.0 {
                    return (lo, hi);
                }
                (-beta / alpha, (1.0 - beta) / alpha)
            }
            "Relu" => (0.0, f32::INFINITY),
            _ => return (lo, hi),
        };
        new_lo = new_lo.min(a);
        new_hi = new_hi.max(b);
    }
    (lo.max(new_lo), hi.min(new_hi))
}

/// Replaces every quantized `HardSwish`/`HardSigmoid` by its integer lowering (module docs).
fn lower_hard_activations(
    graph: &mut GraphProto,
    targets: &[String],
    names: &mut NameGen,
) -> Result<usize, PipelineError> {
    let mut lowered = 0;
    for output in targets {
        let Some(at) = graph.node.iter().position(|n| {
            matches!(n.op_type.as_str(), "HardSwish" | "HardSigmoid")
                && n.output.first() == Some(output)
        }) else {
            continue;
        };
        let node = graph.node[at].clone();
        let Some(x) = node.input.first().cloned() else {
            continue;
        };
        // The input must already be a dequantized tensor (its Q/DQ was inserted).
        let input_quantized = graph
            .node
            .iter()
            .any(|n| n.op_type == "DequantizeLinear" && n.output.first() == Some(&x));
        if !input_quantized {
            continue;
        }
        let (alpha, beta) = if node.op_type == "HardSwish" {
            (1.0 / 6.0, 0.5)
        } else {
            (
                node.attr_f("alpha").unwrap_or(0.2),
                node.attr_f("beta").unwrap_or(0.5),
            )
        };
        if alpha <= 0.0 {
            continue;
        }
        let offset = beta / alpha;
        let offset_params = ActivationParams::from_range(offset, offset);
        let offset_q = ((offset / offset_params.scale).round()
            + f32::from(offset_params.zero_point))
        .clamp(0.0, 255.0) as u8;
        let c_q = graph::add_initializer(
            graph,
            names,
            tensor_from_values(&format!("{output}_offset_quantized"), &[], &[offset_q])
                .map_err(PipelineError::from)?,
        );
        let c_s = add_scalar(
            graph,
            names,
            &format!("{output}_offset_scale"),
            offset_params.scale,
        );
        let c_z = add_u8(
            graph,
            names,
            &format!("{output}_offset_zero_point"),
            offset_params.zero_point,
        );
        let q_scale = add_scalar(
            graph,
            names,
            &format!("{output}_hsig_qscale"),
            (1.0 / alpha) / 255.0,
        );
        let dq_scale = add_scalar(graph, names, &format!("{output}_hsig_scale"), 1.0 / 255.0);
        let zero = add_u8(graph, names, &format!("{output}_hsig_zero_point"), 0);
        let c_dq = names.fresh(&format!("{output}_offset"));
        let shifted = names.fresh(&format!("{output}_shifted"));
        let saturated = names.fresh(&format!("{output}_saturated"));
        let hsig = if node.op_type == "HardSigmoid" {
            output.clone()
        } else {
            names.fresh(&format!("{output}_hard_sigmoid"))
        };
        let base = if node.name.is_empty() {
            output.clone()
        } else {
            node.name.clone()
        };
        let mut new_nodes = vec![
            NodeBuilder::new("DequantizeLinear")
                .name(names.fresh(&format!("{base}_offset_DequantizeLinear")))
                .inputs([c_q, c_s, c_z])
                .output(c_dq.clone())
                .build(),
            NodeBuilder::new("Add")
                .name(names.fresh(&format!("{base}_Add")))
                .inputs([x.clone(), c_dq])
                .output(shifted.clone())
                .build(),
            NodeBuilder::new("QuantizeLinear")
                .name(names.fresh(&format!("{base}_QuantizeLinear")))
                .inputs([shifted, q_scale, zero.clone()])
                .output(saturated.clone())
                .build(),
            NodeBuilder::new("DequantizeLinear")
                .name(names.fresh(&format!("{base}_DequantizeLinear")))
                .inputs([saturated, dq_scale, zero])
                .output(hsig.clone())
                .build(),
        ];
        if node.op_type == "HardSwish" {
            new_nodes.push(
                NodeBuilder::new("Mul")
                    .name(names.fresh(&format!("{base}_Mul")))
                    .inputs([x, hsig])
                    .output(output.clone())
                    .build(),
            );
        }
        graph.node.splice(at..=at, new_nodes);
        lowered += 1;
    }
    Ok(lowered)
}

fn add_scalar(graph: &mut GraphProto, names: &mut NameGen, name: &str, value: f32) -> String {
    graph::add_initializer(graph, names, graph::scalar_tensor(name, value))
}

fn add_u8(graph: &mut GraphProto, names: &mut NameGen, name: &str, value: u8) -> String {
    graph::add_initializer(graph, names, graph::scalar_tensor(name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantization::test_graph::{self, node};

    #[test]
    fn dead_zones_narrow_only_tensors_every_reader_ignores_there() {
        let g = test_graph::graph(
            vec![
                node("Conv", &["x", "w"], "c1"),
                node("Sigmoid", &["c1"], "s1"),
                node("Mul", &["c1", "s1"], "a1"),
                node("Conv", &["a1", "w"], "c2"),
                node("HardSwish", &["c2"], "a2"),
                node("Conv", &["a2", "w"], "c3"),
                node("Relu", &["c3"], "a3"),
                node("Add", &["a3", "c3"], "a4"),
                node("Conv", &["a4", "w"], "c4"),
                test_graph::hard_sigmoid("c4", "g4", 1.0 / 6.0),
                node("Mul", &["c4", "g4"], "y"),
            ],
            &["y"],
        );
        let index = graph::GraphIndex::new(&g).expect("index");
        let narrowed = |t: &str| dead_zone(&g, &index, t, -100.0, 50.0);
        assert_eq!(narrowed("c1"), (activations::SILU_DEAD_ZONE, 50.0));
        assert_eq!(narrowed("c2"), (-3.0, 50.0));
        // c3 is also read by the Add: every value matters.
        assert_eq!(narrowed("c3"), (-100.0, 50.0));
        // x * HardSigmoid(x; 1/6, 1/2) is a HardSwish.
        assert_eq!(narrowed("c4"), (-3.0, 50.0));
        assert_eq!(narrowed("y"), (-100.0, 50.0));
    }
}
