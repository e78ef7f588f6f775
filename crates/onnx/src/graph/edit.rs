//! Structural edits: unique names ([`NameGen`]), nodes inserted on an edge ([`insert_on_edge`],
//! [`insert_on_edges`], [`qdq_edge`]), node removal, tensor renaming and dead-node pruning.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::proto::{GraphProto, NodeProto};

use super::error::GraphError;
use super::index::{Consumer, GraphIndex, subgraph_captures};
use super::node::{NodeBuilder, NodeExt, describe};
use super::topo::toposort_in_place;

/// Generates names that no tensor or node of a graph (subgraphs included) uses, and remembers the
/// ones it handed out.
#[derive(Debug, Clone, Default)]
pub struct NameGen {
    used: HashSet<String>,
    next: HashMap<String, usize>,
}

fn collect_names(graph: &GraphProto, with_nodes: bool, out: &mut HashSet<String>) {
    let values = graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info);
    out.extend(values.map(|v| v.name.clone()));
    out.extend(graph.initializer.iter().map(|t| t.name.clone()));
    out.extend(
        graph
            .sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref().map(|v| v.name.clone())),
    );
    for node in &graph.node {
        if with_nodes && !node.name.is_empty() {
            out.insert(node.name.clone());
        }
        out.extend(
            node.input
                .iter()
                .chain(&node.output)
                .filter(|n| !n.is_empty())
                .cloned(),
        );
        for sub in node.subgraphs() {
            collect_names(sub, with_nodes, out);
        }
    }
}

impl NameGen {
    /// A generator avoiding every tensor and node name of `graph` and its subgraphs.
    pub fn new(graph: &GraphProto) -> Self {
        let mut used = HashSet::new();
        collect_names(graph, true, &mut used);
        Self {
            used,
            next: HashMap::new(),
        }
    }

    /// `base` if it is free, else `base_1`, `base_2`, ... (the first free one); the name is then
    /// taken. An empty `base` counts as `"t"`.
    pub fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "t" } else { base };
        if self.used.insert(base.to_owned()) {
            return base.to_owned();
        }
        let counter = self.next.entry(base.to_owned()).or_insert(1);
        loop {
            let candidate = format!("{base}_{counter}");
            *counter += 1;
            if self.used.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// Marks `name` as taken; `false` when it already was.
    pub fn reserve(&mut self, name: &str) -> bool {
        self.used.insert(name.to_owned())
    }

    /// Whether `name` is taken.
    pub fn contains(&self, name: &str) -> bool {
        self.used.contains(name)
    }
}

/// Which readers of a tensor an edge edit rewires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Consumers {
    /// Every node input that reads it.
    #[default]
    All,
    /// These node inputs only (positions in the graph as passed to the edit).
    Only(Vec<Consumer>),
}

/// Nodes to insert on the edge `tensor -> consumers`: the chosen consumers read `output` instead
/// of `tensor`, and `nodes` (which read `tensor` and produce `output`) are inserted.
///
/// The nodes may read `tensor`, each other's outputs (of earlier nodes in the list) and any
/// tensor the graph defines (scales and zero points added with
/// [`add_initializer`](super::add_initializer) first). Their outputs must be new names: take them
/// from a [`NameGen`].
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeInsert {
    /// The tensor whose readers are rewired.
    pub tensor: String,
    /// Which readers.
    pub consumers: Consumers,
    /// The nodes to insert, in execution order.
    pub nodes: Vec<NodeProto>,
    /// The tensor the rewired readers read instead.
    pub output: String,
}

/// What one edge edit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeReport {
    /// The tensor of the edge.
    pub tensor: String,
    /// What the rewired readers now read.
    pub output: String,
    /// The rewired inputs, as positions in the graph before the edit.
    pub rewired: Vec<Consumer>,
}

/// Applies one [`EdgeInsert`]; see [`insert_on_edges`].
pub fn insert_on_edge(graph: &mut GraphProto, edit: EdgeInsert) -> Result<EdgeReport, GraphError> {
    let tensor = edit.tensor.clone();
    insert_on_edges(graph, vec![edit])?
        .into_iter()
        .next()
        .ok_or_else(|| GraphError::InvalidEdit {
            tensor,
            reason: "the edit produced no report".to_owned(),
        })
}

/// Applies several edge edits at once; all consumer positions refer to the graph as passed, so a
/// whole quantization plan can be computed on one [`GraphIndex`] and applied in one call.
///
/// Placement: the inserted nodes go right after the last node producing anything they read (the
/// producer of `tensor`, usually), or first when they read only graph inputs and initializers. A
/// topologically sorted graph stays sorted; if that placement would come after a rewired
/// consumer, the graph is re-sorted (and a cycle is an error).
///
/// Graph outputs: when `tensor` is a graph output it stays one, with the original (unedited)
/// value; only node inputs are rewired. Subgraphs that capture `tensor` keep reading the original
/// too. An edit whose consumers select no node input is an error, as is a node input claimed by
/// two edits, and an inserted node reading another edit's output (apply those in two calls).
///
/// On error the graph is unchanged.
pub fn insert_on_edges(
    graph: &mut GraphProto,
    edits: Vec<EdgeInsert>,
) -> Result<Vec<EdgeReport>, GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut new_names: HashSet<String> = HashSet::new();
    let mut claimed: HashSet<Consumer> = HashSet::new();
    let mut plans: Vec<(Option<usize>, Vec<Consumer>)> = Vec::with_capacity(edits.len());
    let mut needs_sort = false;
    for edit in &edits {
        let tensor = &edit.tensor;
        let invalid = |reason: String| GraphError::InvalidEdit {
            tensor: tensor.clone(),
            reason,
        };
        let producer = index
            .producer(tensor)
            .ok_or_else(|| GraphError::UnknownTensor {
                tensor: tensor.clone(),
            })?;
        if edit.nodes.is_empty() {
            return Err(invalid("there are no nodes to insert".to_owned()));
        }
        let mut anchor = producer.node();
        let mut local: HashSet<&str> = HashSet::new();
        for (k, node) in edit.nodes.iter().enumerate() {
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                if input == tensor || local.contains(input.as_str()) {
                    continue;
                }
                match index.producer(input) {
                    Some(p) => anchor = anchor.max(p.node()),
                    None => {
                        return Err(GraphError::MissingProducer {
                            tensor: input.clone(),
                            node: format!("inserted {}", describe(node, k)),
                        });
                    }
                }
            }
            for output in node.output.iter().filter(|o| !o.is_empty()) {
                if index.contains(output) || !new_names.insert(output.clone()) {
                    return Err(GraphError::NameTaken {
                        name: output.clone(),
                    });
                }
                local.insert(output.as_str());
            }
        }
        if !local.contains(edit.output.as_str()) {
            return Err(invalid(format!(
                "no inserted node produces {:?}",
                edit.output
            )));
        }
        let mut rewired: Vec<Consumer> = match &edit.consumers {
            Consumers::All => index.consumers(tensor).to_vec(),
            Consumers::Only(list) => {
                for c in list {
                    let reads = graph
                        .node
                        .get(c.node)
                        .and_then(|n| n.input.get(c.slot))
                        .is_some_and(|i| i == tensor);
                    if !reads {
                        return Err(GraphError::NotAConsumer {
                            tensor: tensor.clone(),
                            node: c.node,
                            slot: c.slot,
                        });
                    }
                }
                list.clone()
            }
        };
        rewired.sort_unstable();
        rewired.dedup();
        if rewired.is_empty() {
            return Err(invalid("no node input reads it".to_owned()));
        }
        for c in &rewired {
            if !claimed.insert(*c) {
                return Err(invalid(format!(
                    "input {} of node #{} is rewired by two edits",
                    c.slot, c.node
                )));
            }
        }
        if let Some(a) = anchor {
            needs_sort |= rewired.iter().any(|c| c.node <= a);
        }
        plans.push((anchor, rewired));
    }

    // Validated: apply.
    let backup = needs_sort.then(|| graph.node.clone());
    for (edit, (_, rewired)) in edits.iter().zip(&plans) {
        for c in rewired {
            if let Some(slot) = graph
                .node
                .get_mut(c.node)
                .and_then(|n| n.input.get_mut(c.slot))
            {
                slot.clone_from(&edit.output);
            }
        }
    }
    let mut by_anchor: BTreeMap<Option<usize>, Vec<Vec<NodeProto>>> = BTreeMap::new();
    let mut reports = Vec::with_capacity(edits.len());
    for (edit, (anchor, rewired)) in edits.into_iter().zip(plans) {
        by_anchor.entry(anchor).or_default().push(edit.nodes);
        reports.push(EdgeReport {
            tensor: edit.tensor,
            output: edit.output,
            rewired,
        });
    }
    let old = std::mem::take(&mut graph.node);
    let mut nodes =
        Vec::with_capacity(old.len() + by_anchor.values().flatten().map(Vec::len).sum::<usize>());
    nodes.extend(by_anchor.remove(&None).into_iter().flatten().flatten());
    for (i, node) in old.into_iter().enumerate() {
        nodes.push(node);
        nodes.extend(by_anchor.remove(&Some(i)).into_iter().flatten().flatten());
    }
    graph.node = nodes;
    if let Some(backup) = backup
        && let Err(e) = toposort_in_place(graph)
    {
        graph.node = backup;
        return Err(e);
    }
    Ok(reports)
}

/// The quantization parameters of a `QuantizeLinear -> DequantizeLinear` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QdqSpec {
    /// The scale tensor (an initializer or Constant output).
    pub scale: String,
    /// The zero-point tensor; its element type is the quantized type (UINT8 when absent).
    pub zero_point: Option<String>,
    /// The channel axis for per-channel parameters; needs opset 13
    /// (see [`require_qdq_opset`](super::require_qdq_opset)).
    pub axis: Option<i64>,
}

impl QdqSpec {
    /// Per-tensor parameters.
    pub fn per_tensor(scale: impl Into<String>, zero_point: impl Into<String>) -> Self {
        Self {
            scale: scale.into(),
            zero_point: Some(zero_point.into()),
            axis: None,
        }
    }

    /// Per-channel parameters along `axis`.
    pub fn per_channel(scale: impl Into<String>, zero_point: impl Into<String>, axis: i64) -> Self {
        Self {
            axis: Some(axis),
            ..Self::per_tensor(scale, zero_point)
        }
    }
}

/// The edit inserting `tensor -> QuantizeLinear -> DequantizeLinear -> consumers`, with names
/// from `names`: nodes `{tensor}_QuantizeLinear` / `{tensor}_DequantizeLinear`, tensors
/// `{tensor}_quantized` / `{tensor}_dequantized` (suffixed `_1`, `_2`, ... when taken).
pub fn qdq_edge(
    names: &mut NameGen,
    tensor: &str,
    consumers: Consumers,
    spec: &QdqSpec,
) -> EdgeInsert {
    let quantized = names.fresh(&format!("{tensor}_quantized"));
    let dequantized = names.fresh(&format!("{tensor}_dequantized"));
    let params = |input: &str| {
        let mut inputs = vec![input.to_owned(), spec.scale.clone()];
        inputs.extend(spec.zero_point.clone());
        inputs
    };
    let with_axis = |builder: NodeBuilder| match spec.axis {
        Some(axis) => builder.attr_i("axis", axis),
        None => builder,
    };
    let q = with_axis(
        NodeBuilder::new("QuantizeLinear")
            .name(names.fresh(&format!("{tensor}_QuantizeLinear")))
            .inputs(params(tensor))
            .output(quantized.clone()),
    )
    .build();
    let dq = with_axis(
        NodeBuilder::new("DequantizeLinear")
            .name(names.fresh(&format!("{tensor}_DequantizeLinear")))
            .inputs(params(&quantized))
            .output(dequantized.clone()),
    )
    .build();
    EdgeInsert {
        tensor: tensor.to_owned(),
        consumers,
        nodes: vec![q, dq],
        output: dequantized,
    }
}

/// Removes the nodes at `indices` (any order, duplicates ignored) and returns them in graph
/// order. Their outputs are left dangling: rewire readers first.
pub fn remove_nodes(
    graph: &mut GraphProto,
    indices: &[usize],
) -> Result<Vec<NodeProto>, GraphError> {
    let len = graph.node.len();
    if let Some(&index) = indices.iter().find(|&&i| i >= len) {
        return Err(GraphError::NodeOutOfRange { index, len });
    }
    let doomed: HashSet<usize> = indices.iter().copied().collect();
    let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut graph.node)
        .into_iter()
        .enumerate()
        .partition(|(i, _)| doomed.contains(i));
    graph.node = kept.into_iter().map(|(_, n)| n).collect();
    Ok(removed.into_iter().map(|(_, n)| n).collect())
}

fn defines(graph: &GraphProto, name: &str) -> bool {
    graph.input.iter().any(|v| v.name == name)
        || graph.initializer.iter().any(|t| t.name == name)
        || graph
            .node
            .iter()
            .any(|n| n.output.iter().any(|o| o == name))
}

fn rename_in(graph: &mut GraphProto, old: &str, new: &str) -> usize {
    let mut count = 0;
    let mut swap = |s: &mut String| {
        if s == old {
            new.clone_into(s);
            count += 1;
        }
    };
    for v in graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
    {
        swap(&mut v.name);
    }
    for t in &mut graph.initializer {
        swap(&mut t.name);
    }
    for s in &mut graph.sparse_initializer {
        if let Some(v) = &mut s.values {
            swap(&mut v.name);
        }
    }
    for a in &mut graph.quantization_annotation {
        swap(&mut a.tensor_name);
        for p in &mut a.quant_parameter_tensor_names {
            swap(&mut p.value);
        }
    }
    let mut nested = 0;
    for node in &mut graph.node {
        for s in node.input.iter_mut().chain(node.output.iter_mut()) {
            swap(s);
        }
        for sub in node.subgraphs_mut() {
            // A subgraph defining the name itself shadows the outer one.
            if !defines(sub, old) {
                nested += rename_in(sub, old, new);
            }
        }
    }
    count + nested
}

/// Renames tensor `old` to `new` everywhere in `graph`: node inputs and outputs, graph inputs,
/// outputs, `value_info`, initializers, quantization annotations, and references from subgraphs.
/// Returns the number of references changed. Renaming a graph input or output changes the
/// model's interface.
pub fn rename_tensor(graph: &mut GraphProto, old: &str, new: &str) -> Result<usize, GraphError> {
    if old == new {
        return Ok(0);
    }
    let mut names = HashSet::new();
    collect_names(graph, false, &mut names);
    if !names.contains(old) {
        return Err(GraphError::UnknownTensor {
            tensor: old.to_owned(),
        });
    }
    if names.contains(new) {
        return Err(GraphError::NameTaken {
            name: new.to_owned(),
        });
    }
    Ok(rename_in(graph, old, new))
}

/// Options of [`prune_dead_nodes`].
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Also remove initializers nothing reads (initializers that are graph inputs stay).
    pub initializers: bool,
    /// Also remove `value_info` entries of tensors that no longer exist.
    pub value_info: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            initializers: true,
            value_info: true,
        }
    }
}

/// What [`prune_dead_nodes`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The removed nodes, described as `Op "name" (#index)`.
    pub nodes: Vec<String>,
    /// The removed initializers.
    pub initializers: Vec<String>,
    /// How many `value_info` entries were removed.
    pub value_info: usize,
}

/// Removes the nodes from which no graph output can be reached (and, per `options`, unused
/// initializers and stale `value_info`).
pub fn prune_dead_nodes(
    graph: &mut GraphProto,
    options: &PruneOptions,
) -> Result<PruneReport, GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut live = vec![false; graph.node.len()];
    let mut needed: HashSet<String> = HashSet::new();
    let mut stack: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    while let Some(tensor) = stack.pop() {
        if !needed.insert(tensor.clone()) {
            continue;
        }
        let Some(n) = index.producer(&tensor).and_then(|p| p.node()) else {
            continue;
        };
        if live.get(n).copied().unwrap_or(true) {
            continue;
        }
        live[n] = true;
        if let Some(node) = graph.node.get(n) {
            stack.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
            stack.extend(subgraph_captures(node));
        }
    }
    let mut report = PruneReport::default();
    let old = std::mem::take(&mut graph.node);
    for (i, node) in old.into_iter().enumerate() {
        if live.get(i).copied().unwrap_or(false) {
            graph.node.push(node);
        } else {
            report.nodes.push(describe(&node, i));
        }
    }
    if options.initializers {
        let inputs: HashSet<&str> = graph.input.iter().map(|v| v.name.as_str()).collect();
        let (keep, drop): (Vec<_>, Vec<_>) = std::mem::take(&mut graph.initializer)
            .into_iter()
            .partition(|t| needed.contains(&t.name) || inputs.contains(t.name.as_str()));
        graph.initializer = keep;
        report.initializers = drop.into_iter().map(|t| t.name).collect();
    }
    if options.value_info {
        let mut defined: HashSet<String> = HashSet::new();
        defined.extend(graph.input.iter().map(|v| v.name.clone()));
        defined.extend(graph.initializer.iter().map(|t| t.name.clone()));
        defined.extend(graph.node.iter().flat_map(|n| n.output.iter().cloned()));
        let before = graph.value_info.len();
        graph.value_info.retain(|v| defined.contains(&v.name));
        report.value_info = before - graph.value_info.len();
    }
    Ok(report)
}
