//! Simplifications before quantization: `BatchNormalization` folded into the preceding `Conv` /
//! `ConvTranspose` ([`fold_batch_norm`]), `Identity` nodes bypassed ([`remove_identities`]),
//! unread initializers and `Constant` nodes dropped ([`remove_unused_initializers`]), and all of
//! it in one call that leaves the graph unchanged on error ([`simplify_for_quantization`]).
//!
//! Folding writes the scaled weight and the new bias as *new* initializers under fresh names, so
//! a weight shared with another node is never changed under it; the old weights stay until
//! [`remove_unused_initializers`] finds nothing reads them.

use std::collections::{HashMap, HashSet};

use crate::external::ExternalDataResolver;
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, ModelProto, NodeProto, TensorProto};

use super::edit::NameGen;
use super::error::{GraphError, dtype_name};
use super::index::{GraphIndex, Producer, subgraph_captures};
use super::node::{NodeExt, describe};
use super::topo::toposort_in_place;
use super::values::tensor_from_values;
use super::{model_graph_mut, tensor_to_f32, tensor_to_f32_with};

/// The default `epsilon` of `BatchNormalization`.
pub const BATCH_NORM_EPSILON: f32 = 1e-5;

/// One `Conv` (or `ConvTranspose`) + `BatchNormalization` pair folded into a single node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedPair {
    /// The convolution, described as `Conv "name" (#index)` (position in the graph as passed).
    pub conv: String,
    /// The removed `BatchNormalization`, described the same way.
    pub batch_norm: String,
    /// The tensor the convolution now produces (the batch norm's output, unchanged downstream).
    pub output: String,
    /// The new initializer holding the folded weight.
    pub weight: String,
    /// The new initializer holding the folded bias.
    pub bias: String,
}

/// Why a `BatchNormalization` was not folded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its input `X` is not produced by a `Conv` or `ConvTranspose` node of this graph.
    NotAfterConv,
    /// Training mode: more than one output, or `training_mode = 1`.
    TrainingMode,
    /// `spatial = 0` (opset < 9): per-activation statistics are not folded.
    NotSpatial,
    /// The convolution output has other readers (nodes, subgraph captures) besides the batch norm.
    SharedConvOutput,
    /// The convolution output is a graph output.
    ConvOutputIsGraphOutput,
    /// A weight or batch-norm parameter is not a constant (initializer or `Constant` node), or is
    /// an initializer that is also a graph input (overridable).
    NotConstant {
        /// The tensor.
        tensor: String,
    },
    /// A weight or parameter is not FLOAT.
    NotFloat {
        /// The tensor.
        tensor: String,
        /// Its element type, as an ONNX name.
        data_type: String,
    },
    /// Shapes that do not fit together (parameter length vs output channels, ...).
    Shape {
        /// The tensor.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The tensor data could not be read (external data without a resolver, bad length, ...).
    Unreadable {
        /// The tensor.
        tensor: String,
        /// The error message.
        error: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAfterConv => f.write_str("its input is not the output of a Conv"),
            Self::TrainingMode => f.write_str("it is in training mode"),
            Self::NotSpatial => f.write_str("it has spatial = 0"),
            Self::SharedConvOutput => f.write_str("the Conv output has other readers"),
            Self::ConvOutputIsGraphOutput => f.write_str("the Conv output is a graph output"),
            Self::NotConstant { tensor } => write!(f, "{tensor:?} is not a constant"),
            Self::NotFloat { tensor, data_type } => {
                write!(f, "{tensor:?} has element type {data_type}, not FLOAT")
            }
            Self::Shape { tensor, reason } => write!(f, "{tensor:?}: {reason}"),
            Self::Unreadable { tensor, error } => write!(f, "{tensor:?} cannot be read: {error}"),
        }
    }
}

/// A `BatchNormalization` that was left in place, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPair {
    /// The convolution before it, when there is one (described as `Conv "name" (#index)`).
    pub conv: Option<String>,
    /// The batch norm, described the same way.
    pub batch_norm: String,
    /// Why it was not folded.
    pub reason: SkipReason,
}

/// What [`fold_batch_norm`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldReport {
    /// The folded pairs, in batch-norm order.
    pub folded: Vec<FoldedPair>,
    /// Every default-domain `BatchNormalization` that was not folded, in node order.
    pub skipped: Vec<SkippedPair>,
}

/// What [`simplify_for_quantization`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimplifyReport {
    /// `Identity` nodes removed.
    pub identities: usize,
    /// Decomposed `HardSigmoid`s fused into one node ([`fuse_hard_swishes`](super::fuse_hard_swishes),
    /// [`fuse_hard_sigmoids`](super::fuse_hard_sigmoids)).
    pub hard_sigmoids: usize,
    /// Batch norms folded and skipped.
    pub fold: FoldReport,
    /// Initializers and `Constant` nodes removed because nothing read them any more.
    pub unused: usize,
}

/// A validated fold, ready to apply.
struct Plan {
    conv: usize,
    batch_norm: usize,
    output: String,
    weight: TensorProto,
    bias: TensorProto,
}

fn read_f32(
    graph: &GraphProto,
    index: &GraphIndex,
    name: &str,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<(Vec<f32>, Vec<i64>), SkipReason> {
    let constant = matches!(
        index.producer(name),
        Some(Producer::Initializer { .. } | Producer::Constant { .. })
    ) && !index.is_graph_input(name);
    let weight = constant
        .then(|| index.find_weight(graph, name))
        .flatten()
        .ok_or_else(|| SkipReason::NotConstant {
            tensor: name.to_owned(),
        })?;
    if weight.tensor.data_type != DataType::Float as i32 {
        return Err(SkipReason::NotFloat {
            tensor: name.to_owned(),
            data_type: dtype_name(weight.tensor.data_type),
        });
    }
    let mut tensor = weight.tensor.into_owned();
    name.clone_into(&mut tensor.name);
    let values = match resolver {
        Some(r) => tensor_to_f32_with(&tensor, r),
        None => tensor_to_f32(&tensor),
    }
    .map_err(|e| SkipReason::Unreadable {
        tensor: name.to_owned(),
        error: e.to_string(),
    })?;
    Ok((values, tensor.dims))
}

fn shape(tensor: &str, reason: String) -> SkipReason {
    SkipReason::Shape {
        tensor: tensor.to_owned(),
        reason,
    }
}

/// The output channel of each element of a convolution weight with `dims`: axis 0 for `Conv`;
/// for `ConvTranspose` (`[C, M/group, k...]`) channel `g * M/group + m` of group `g = c / (C/group)`.
fn output_channels(
    weight: &str,
    dims: &[i64],
    transpose: bool,
    group: i64,
) -> Result<(usize, Vec<usize>), SkipReason> {
    let dim = |i: usize| {
        dims.get(i)
            .and_then(|&d| usize::try_from(d).ok())
            .filter(|&d| d > 0)
            .ok_or_else(|| {
                shape(
                    weight,
                    format!("weight dims {dims:?} are not a convolution's"),
                )
            })
    };
    if dims.len() < 3 {
        return Err(shape(weight, format!("weight rank {} < 3", dims.len())));
    }
    let d0 = dim(0)?;
    let d1 = dim(1)?;
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
        .ok_or_else(|| shape(weight, format!("invalid dims {dims:?}")))?;
    let kernel = count / d0 / d1;
    if !transpose {
        let per_channel = count / d0;
        return Ok((d0, (0..count).map(|p| p / per_channel).collect()));
    }
    let group = usize::try_from(group)
        .ok()
        .filter(|&g| g > 0 && d0 % g == 0)
        .ok_or_else(|| {
            shape(
                weight,
                format!("group {group} does not divide the input channels {d0}"),
            )
        })?;
    let in_per_group = d0 / group;
    let channels = (0..count)
        .map(|p| {
            let c = p / (d1 * kernel);
            let m = (p / kernel) % d1;
            (c / in_per_group) * d1 + m
        })
        .collect();
    Ok((group * d1, channels))
}

/// Plans the fold of batch norm `bn` (a node of `graph`), or says why not.
fn plan_one(
    graph: &GraphProto,
    index: &GraphIndex,
    names: &mut NameGen,
    bn: usize,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<Plan, (Option<usize>, SkipReason)> {
    let Some(node) = graph.node.get(bn) else {
        return Err((None, SkipReason::NotAfterConv));
    };
    let conv_at = node
        .input
        .first()
        .and_then(|x| index.producer(x))
        .and_then(|p| match p {
            Producer::Node { node, output: 0 } => Some(node),
            _ => None,
        })
        .filter(|&c| {
            graph
                .node
                .get(c)
                .is_some_and(|n| n.is_op("Conv") || n.is_op("ConvTranspose"))
        });
    let Some(c) = conv_at else {
        return Err((None, SkipReason::NotAfterConv));
    };
    let skip = |reason: SkipReason| (Some(c), reason);
    let Some(conv) = graph.node.get(c) else {
        return Err(skip(SkipReason::NotAfterConv));
    };
    let outputs = node.output.iter().filter(|o| !o.is_empty()).count();
    if outputs != 1
        || node.output.first().is_none_or(String::is_empty)
        || node.attr_i("training_mode").is_some_and(|t| t != 0)
    {
        return Err(skip(SkipReason::TrainingMode));
    }
    if node.attr_i("spatial") == Some(0) {
        return Err(skip(SkipReason::NotSpatial));
    }
    let (Some(x), Some(output)) = (conv.output.first(), node.output.first()) else {
        return Err(skip(SkipReason::NotAfterConv));
    };
    if index.is_graph_output(x) {
        return Err(skip(SkipReason::ConvOutputIsGraphOutput));
    }
    let readers = index.consumers(x);
    if readers.len() != 1
        || readers.first().is_some_and(|r| r.node != bn || r.slot != 0)
        || !index.capturing_nodes(x).is_empty()
        || conv.output.iter().skip(1).any(|o| !o.is_empty())
    {
        return Err(skip(SkipReason::SharedConvOutput));
    }
    if node.input.len() != 5 || node.input.iter().any(String::is_empty) {
        return Err(skip(shape(
            &node.name,
            "a BatchNormalization needs 5 inputs".to_owned(),
        )));
    }
    let Some(w_name) = conv.input.get(1).filter(|w| !w.is_empty()) else {
        return Err(skip(shape(&conv.name, "the Conv has no weight".to_owned())));
    };
    let read = |name: &str| read_f32(graph, index, name, resolver).map_err(skip);
    let (w, w_dims) = read(w_name)?;
    let transpose = conv.is_op("ConvTranspose");
    let group = conv.attr_i("group").unwrap_or(1);
    let (channels, channel_of) =
        output_channels(w_name, &w_dims, transpose, group).map_err(skip)?;
    if channel_of.len() != w.len() {
        return Err(skip(shape(w_name, "data does not match dims".to_owned())));
    }
    let per_channel = |name: &str| -> Result<Vec<f32>, (Option<usize>, SkipReason)> {
        let (v, _) = read(name)?;
        if v.len() == channels {
            Ok(v)
        } else {
            Err(skip(shape(
                name,
                format!("{} values for {channels} output channels", v.len()),
            )))
        }
    };
    let bias_name = conv.input.get(2).filter(|b| !b.is_empty());
    let bias = match bias_name {
        Some(b) => per_channel(b)?,
        None => vec![0.0; channels],
    };
    let params: Vec<Vec<f32>> = node
        .input
        .iter()
        .skip(1)
        .map(|p| per_channel(p))
        .collect::<Result<_, _>>()?;
    let [gamma, beta, mean, var] = params.as_slice() else {
        return Err(skip(SkipReason::NotAfterConv));
    };
    let epsilon = f64::from(node.attr_f("epsilon").unwrap_or(BATCH_NORM_EPSILON));
    let mut k = Vec::with_capacity(channels);
    let mut new_bias = Vec::with_capacity(channels);
    for m in 0..channels {
        let scale = f64::from(gamma[m]) / (f64::from(var[m]) + epsilon).sqrt();
        if !scale.is_finite() {
            let var_name = node.input.get(4).map_or("var", String::as_str);
            return Err(skip(shape(
                var_name,
                format!("channel {m}: var + epsilon <= 0"),
            )));
        }
        k.push(scale);
        #[allow(clippy::cast_possible_truncation)]
        new_bias
            .push(((f64::from(bias[m]) - f64::from(mean[m])) * scale + f64::from(beta[m])) as f32);
    }
    #[allow(clippy::cast_possible_truncation)]
    let new_w: Vec<f32> = w
        .iter()
        .zip(&channel_of)
        .map(|(&v, &m)| (f64::from(v) * k[m]) as f32)
        .collect();
    let channels_i64 = i64::try_from(channels).unwrap_or(i64::MAX);
    let weight = tensor_from_values(w_name, &w_dims, &new_w)
        .map_err(|e| skip(shape(w_name, e.to_string())))?;
    let bias = tensor_from_values("", &[channels_i64], &new_bias)
        .map_err(|e| skip(shape(w_name, e.to_string())))?;
    let weight_base = format!("{w_name}_bn_folded");
    let bias_base = format!(
        "{}_bn_folded",
        bias_name.map_or_else(|| format!("{w_name}_bias"), Clone::clone)
    );
    let mut weight = weight;
    weight.name = names.fresh(&weight_base);
    let mut bias = bias;
    bias.name = names.fresh(&bias_base);
    Ok(Plan {
        conv: c,
        batch_norm: bn,
        output: output.clone(),
        weight,
        bias,
    })
}

/// Folds every `BatchNormalization` (inference mode) that is the only reader of a `Conv` or
/// `ConvTranspose` output into that convolution: `W' = W * k` per output channel and
/// `b' = (b - mean) * k + beta` with `k = scale / sqrt(var + epsilon)`.
///
/// Conditions: the convolution output is read only by the batch norm (no other node, subgraph or
/// graph output); the weight, the bias (when present) and the four batch-norm parameters are FLOAT
/// constants (initializers that are not graph inputs, or `Constant` nodes); the parameters have one
/// value per output channel (axis 0 of a `Conv` weight, grouped convolutions included; axis 1
/// per group of a `ConvTranspose` weight). Anything else is reported in
/// [`FoldReport::skipped`] and left alone. External data is read through `resolver`; without one
/// such weights are skipped as unreadable.
///
/// The convolution takes the batch norm's output name (readers downstream are unchanged) and
/// reads the folded weight and bias from new initializers (`{weight}_bn_folded`,
/// `{bias}_bn_folded`); the original weights are not modified and stay in the graph (see
/// [`remove_unused_initializers`]). The batch norm is removed, and `value_info` of the old
/// convolution output with it. Node order is kept.
///
/// Errors (an invalid graph: a tensor produced twice) leave the graph unchanged.
pub fn fold_batch_norm(
    graph: &mut GraphProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<FoldReport, GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut names = NameGen::new(graph);
    let mut report = FoldReport::default();
    let mut plans = Vec::new();
    for (bn, node) in graph.node.iter().enumerate() {
        if !node.is_op("BatchNormalization") {
            continue;
        }
        match plan_one(graph, &index, &mut names, bn, resolver) {
            Ok(plan) => plans.push(plan),
            Err((conv, reason)) => report.skipped.push(SkippedPair {
                conv: conv.and_then(|c| graph.node.get(c).map(|n| describe(n, c))),
                batch_norm: describe(node, bn),
                reason,
            }),
        }
    }
    if plans.is_empty() {
        return Ok(report);
    }

    // Validated: apply (nothing below can fail).
    let mut stale: HashSet<String> = HashSet::new();
    let mut doomed: HashSet<usize> = HashSet::new();
    for plan in plans {
        let (Some(conv_desc), Some(bn_desc)) = (
            graph.node.get(plan.conv).map(|n| describe(n, plan.conv)),
            graph
                .node
                .get(plan.batch_norm)
                .map(|n| describe(n, plan.batch_norm)),
        ) else {
            continue;
        };
        let Some(conv) = graph.node.get_mut(plan.conv) else {
            continue;
        };
        conv.input.truncate(2);
        if let Some(w) = conv.input.get_mut(1) {
            w.clone_from(&plan.weight.name);
        }
        conv.input.push(plan.bias.name.clone());
        if let Some(out) = conv.output.get_mut(0) {
            stale.insert(std::mem::replace(out, plan.output.clone()));
        }
        report.folded.push(FoldedPair {
            conv: conv_desc,
            batch_norm: bn_desc,
            output: plan.output,
            weight: plan.weight.name.clone(),
            bias: plan.bias.name.clone(),
        });
        graph.initializer.push(plan.weight);
        graph.initializer.push(plan.bias);
        doomed.insert(plan.batch_norm);
    }
    let old = std::mem::take(&mut graph.node);
    graph.node = old
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !doomed.contains(i))
        .map(|(_, n)| n)
        .collect();
    graph.value_info.retain(|v| !stale.contains(&v.name));
    Ok(report)
}

/// Whether `node` is a removable `Identity`: default domain, one input, one output.
fn identity_io(node: &NodeProto) -> Option<(&str, &str)> {
    if !node.is_op("Identity") || node.input.len() != 1 || node.output.len() != 1 {
        return None;
    }
    let (input, output) = (node.input.first()?, node.output.first()?);
    (!input.is_empty() && !output.is_empty()).then_some((input.as_str(), output.as_str()))
}

/// Removes the `Identity` nodes whose output is neither a graph output nor read by a subgraph
/// (`If`/`Loop`/`Scan` captures keep theirs), rewiring their readers to the identity's input
/// (through chains of identities). `value_info` of the removed outputs goes too. Returns the
/// number of nodes removed.
pub fn remove_identities(graph: &mut GraphProto) -> usize {
    let outputs: HashSet<&str> = graph.output.iter().map(|v| v.name.as_str()).collect();
    let captured: HashSet<String> = graph.node.iter().flat_map(subgraph_captures).collect();
    let bypass: HashMap<String, String> = graph
        .node
        .iter()
        .filter_map(identity_io)
        .filter(|(_, out)| !outputs.contains(out) && !captured.contains(*out))
        .map(|(i, o)| (o.to_owned(), i.to_owned()))
        .collect();
    if bypass.is_empty() {
        return 0;
    }
    let resolve = |name: &str| -> Option<String> {
        let mut current = bypass.get(name)?;
        // Bounded: a (malformed) cycle of identities stops after `len` steps.
        for _ in 0..bypass.len() {
            match bypass.get(current) {
                Some(next) => current = next,
                None => break,
            }
        }
        Some(current.clone())
    };
    let before = graph.node.len();
    graph
        .node
        .retain(|n| identity_io(n).is_none_or(|(_, out)| !bypass.contains_key(out)));
    for node in &mut graph.node {
        for input in &mut node.input {
            if let Some(source) = resolve(input) {
                *input = source;
            }
        }
    }
    graph.value_info.retain(|v| !bypass.contains_key(&v.name));
    before - graph.node.len()
}

/// Removes the initializers (dense and sparse) and `Constant` nodes that no node input, subgraph
/// capture or graph output reads. Initializers that are also graph inputs stay (they are part of
/// the model's interface). `value_info` of removed tensors goes too. Returns how many
/// initializers and nodes were removed.
pub fn remove_unused_initializers(graph: &mut GraphProto) -> usize {
    let mut read: HashSet<String> = graph.output.iter().map(|v| v.name.clone()).collect();
    for node in &graph.node {
        read.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
        read.extend(subgraph_captures(node));
    }
    read.extend(graph.input.iter().map(|v| v.name.clone()));
    let mut removed: HashSet<String> = HashSet::new();
    let mut count = 0;
    graph.initializer.retain(|t| {
        let keep = read.contains(&t.name);
        if !keep {
            removed.insert(t.name.clone());
            count += 1;
        }
        keep
    });
    graph.sparse_initializer.retain(|s| {
        let keep = s.values.as_ref().is_none_or(|v| read.contains(&v.name));
        if !keep {
            removed.extend(s.values.as_ref().map(|v| v.name.clone()));
            count += 1;
        }
        keep
    });
    graph.node.retain(|n| {
        let unused = n.is_op("Constant")
            && n.output
                .iter()
                .all(|o| o.is_empty() || !read.contains(o.as_str()));
        if unused {
            removed.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
            count += 1;
        }
        !unused
    });
    graph.value_info.retain(|v| !removed.contains(&v.name));
    count
}

/// Prepares a float model for INT8 quantization with per-channel weights: removes `Identity`
/// nodes ([`remove_identities`]), fuses decomposed `HardSigmoid`s
/// ([`fuse_hard_sigmoids`](super::fuse_hard_sigmoids)), folds batch norms and scalar scales and
/// shifts after convolutions ([`scalar_affine_to_batch_norm`](super::scalar_affine_to_batch_norm)) into convolutions ([`fold_batch_norm`]),
/// removes initializers and constants nothing reads any more ([`remove_unused_initializers`]) and
/// sorts the nodes topologically. On error the model is unchanged.
pub fn simplify_for_quantization(
    model: &mut ModelProto,
    resolver: Option<&dyn ExternalDataResolver>,
) -> Result<SimplifyReport, GraphError> {
    let graph = model_graph_mut(model)?;
    let mut work = graph.clone();
    let identities = remove_identities(&mut work);
    let hard_sigmoids =
        super::fuse_hard_swishes(&mut work)? + super::fuse_hard_sigmoids(&mut work)?;
    let mut fold = fold_batch_norm(&mut work, resolver)?;
    // Scalar scales and shifts after convolutions (possibly freed by the first fold) as batch
    // norms, folded the same way.
    let affine = super::scalar_affine_to_batch_norm(&mut work)?;
    if affine > 0 {
        // The second pass sees every batch norm still there: its skips replace the first's.
        let more = fold_batch_norm(&mut work, resolver)?;
        fold.folded.extend(more.folded);
        fold.skipped = more.skipped;
    }
    let unused = remove_unused_initializers(&mut work);
    toposort_in_place(&mut work)?;
    *graph = work;
    Ok(SimplifyReport {
        identities,
        hard_sigmoids,
        fold,
        unused,
    })
}
