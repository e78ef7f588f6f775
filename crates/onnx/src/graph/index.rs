//! [`GraphIndex`]: who produces and who consumes each tensor of a graph, and its declared type.
//!
//! The index is a snapshot: build it, query it, edit the graph, build it again. Node indices are
//! positions in `GraphProto::node` at the time the index was built.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, NodeProto, TypeProto};

use super::error::GraphError;
use super::node::NodeExt;
use super::types::{Dim, TensorType, tensor_type_proto};
use super::weights::{WeightRef, weight_at};

/// Where a tensor comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Producer {
    /// A graph input without an initializer.
    GraphInput,
    /// `GraphProto::initializer[index]` (possibly also listed as a graph input, IR < 4 style).
    Initializer {
        /// Position in `GraphProto::initializer`.
        index: usize,
    },
    /// `GraphProto::sparse_initializer[index]`.
    SparseInitializer {
        /// Position in `GraphProto::sparse_initializer`.
        index: usize,
    },
    /// The output of a default-domain `Constant` node.
    Constant {
        /// Position in `GraphProto::node`.
        node: usize,
    },
    /// Output `output` of node `node` (any op other than `Constant`).
    Node {
        /// Position in `GraphProto::node`.
        node: usize,
        /// Position in the node's outputs.
        output: usize,
    },
}

impl Producer {
    /// The producing node, for [`Producer::Constant`] and [`Producer::Node`].
    pub fn node(self) -> Option<usize> {
        match self {
            Self::Constant { node } | Self::Node { node, .. } => Some(node),
            Self::GraphInput | Self::Initializer { .. } | Self::SparseInitializer { .. } => None,
        }
    }

    /// Whether the value is known before the graph runs: an initializer or a `Constant` node.
    pub fn is_constant(self) -> bool {
        matches!(
            self,
            Self::Initializer { .. } | Self::SparseInitializer { .. } | Self::Constant { .. }
        )
    }
}

/// A node input reading a tensor: `GraphProto::node[node].input[slot]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Consumer {
    /// Position in `GraphProto::node`.
    pub node: usize,
    /// Position in the node's inputs.
    pub slot: usize,
}

/// Producers, consumers and declared types of the tensors of one graph (not of its subgraphs).
///
/// Building it checks static single assignment: a tensor produced twice is a
/// [`GraphError::DuplicateProducer`]. A node holding subgraphs (`If`, `Loop`, `Scan`) that reads
/// outer-scope tensors inside them is recorded as a *capturing* node of those tensors, not as a
/// consumer with a slot.
#[derive(Debug, Clone, Default)]
pub struct GraphIndex {
    producers: HashMap<String, Producer>,
    consumers: HashMap<String, Vec<Consumer>>,
    captures: HashMap<String, Vec<usize>>,
    types: HashMap<String, TypeProto>,
    graph_inputs: HashSet<String>,
    graph_outputs: HashSet<String>,
}

fn describe_producer(graph: &GraphProto, producer: Producer) -> String {
    match producer {
        Producer::GraphInput => "a graph input".to_owned(),
        Producer::Initializer { index } => format!("initializer #{index}"),
        Producer::SparseInitializer { index } => format!("sparse initializer #{index}"),
        Producer::Constant { node } | Producer::Node { node, .. } => {
            super::node::describe_node(graph, node)
        }
    }
}

impl GraphIndex {
    /// Indexes `graph`.
    pub fn new(graph: &GraphProto) -> Result<Self, GraphError> {
        let mut index = Self::default();
        let mut exact_types: HashMap<String, TypeProto> = HashMap::new();

        for input in &graph.input {
            index.define(graph, &input.name, Producer::GraphInput)?;
            index.graph_inputs.insert(input.name.clone());
        }
        for (i, init) in graph.initializer.iter().enumerate() {
            index.define(graph, &init.name, Producer::Initializer { index: i })?;
            exact_types.insert(
                init.name.clone(),
                tensor_type_proto(init.data_type, &init.dims),
            );
        }
        for (i, sparse) in graph.sparse_initializer.iter().enumerate() {
            if let Some(values) = &sparse.values {
                index.define(
                    graph,
                    &values.name,
                    Producer::SparseInitializer { index: i },
                )?;
                exact_types.insert(
                    values.name.clone(),
                    tensor_type_proto(values.data_type, &sparse.dims),
                );
            }
        }
        for (n, node) in graph.node.iter().enumerate() {
            let is_constant = node.is_op("Constant");
            for (o, output) in node.output.iter().enumerate() {
                if output.is_empty() {
                    continue;
                }
                let producer = if is_constant {
                    Producer::Constant { node: n }
                } else {
                    Producer::Node { node: n, output: o }
                };
                index.define(graph, output, producer)?;
            }
            if is_constant
                && let (Some(output), Some(ty)) = (node.output.first(), constant_type(node))
            {
                exact_types.insert(output.clone(), ty);
            }
            for (slot, input) in node.input.iter().enumerate() {
                if !input.is_empty() {
                    index
                        .consumers
                        .entry(input.clone())
                        .or_default()
                        .push(Consumer { node: n, slot });
                }
            }
            for captured in subgraph_captures(node) {
                index.captures.entry(captured).or_default().push(n);
            }
        }
        for output in &graph.output {
            index.graph_outputs.insert(output.name.clone());
        }

        // Exact types (initializers, constants) first, then declarations.
        index.types = exact_types;
        for value in graph
            .input
            .iter()
            .chain(&graph.output)
            .chain(&graph.value_info)
        {
            if let Some(ty) = &value.r#type {
                index
                    .types
                    .entry(value.name.clone())
                    .or_insert_with(|| ty.clone());
            }
        }
        Ok(index)
    }

    fn define(
        &mut self,
        graph: &GraphProto,
        name: &str,
        producer: Producer,
    ) -> Result<(), GraphError> {
        match self.producers.get(name).copied() {
            None => {
                self.producers.insert(name.to_owned(), producer);
                Ok(())
            }
            // An initializer may also be listed as a graph input (a default value).
            Some(Producer::GraphInput) if matches!(producer, Producer::Initializer { .. }) => {
                self.producers.insert(name.to_owned(), producer);
                Ok(())
            }
            Some(first) => Err(GraphError::DuplicateProducer {
                tensor: name.to_owned(),
                first: describe_producer(graph, first),
                second: describe_producer(graph, producer),
            }),
        }
    }

    /// Where `tensor` comes from; `None` when nothing in this graph defines it (an outer-scope
    /// capture in a subgraph, or a dangling name).
    pub fn producer(&self, tensor: &str) -> Option<Producer> {
        self.producers.get(tensor).copied()
    }

    /// The node inputs reading `tensor`, in node order.
    pub fn consumers(&self, tensor: &str) -> &[Consumer] {
        self.consumers.get(tensor).map_or(&[], Vec::as_slice)
    }

    /// The nodes whose subgraphs read `tensor` from this (outer) scope.
    pub fn capturing_nodes(&self, tensor: &str) -> &[usize] {
        self.captures.get(tensor).map_or(&[], Vec::as_slice)
    }

    /// Whether `tensor` is read by any node, subgraph or graph output.
    pub fn is_used(&self, tensor: &str) -> bool {
        !self.consumers(tensor).is_empty()
            || !self.capturing_nodes(tensor).is_empty()
            || self.is_graph_output(tensor)
    }

    /// Whether `tensor` is a graph input (with or without an initializer).
    pub fn is_graph_input(&self, tensor: &str) -> bool {
        self.graph_inputs.contains(tensor)
    }

    /// Whether `tensor` is a graph output.
    pub fn is_graph_output(&self, tensor: &str) -> bool {
        self.graph_outputs.contains(tensor)
    }

    /// Whether this graph defines `tensor` (graph input, initializer or node output).
    pub fn contains(&self, tensor: &str) -> bool {
        self.producers.contains_key(tensor)
    }

    /// The names this graph defines, in no particular order.
    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.producers.keys().map(String::as_str)
    }

    /// The type of `tensor` as known without inference: from its initializer or `Constant` node
    /// (exact dims), else from the graph inputs, outputs or `value_info`.
    pub fn value_type(&self, tensor: &str) -> Option<&TypeProto> {
        self.types.get(tensor)
    }

    /// The tensor type (element type and shape) of `tensor`, when known without inference and a
    /// tensor (not a sequence or map).
    pub fn tensor_type(&self, tensor: &str) -> Option<TensorType> {
        self.value_type(tensor).and_then(TensorType::from_proto)
    }

    /// The declared element type of `tensor`; see [`super::ElemTypes`] for inferred ones.
    pub fn elem_type(&self, tensor: &str) -> Option<DataType> {
        self.tensor_type(tensor).map(|t| t.elem_type)
    }

    /// The declared dims of `tensor`, when its shape is known.
    pub fn dims(&self, tensor: &str) -> Option<Vec<Dim>> {
        self.tensor_type(tensor).and_then(|t| t.dims)
    }

    /// The declared rank of `tensor`, when its shape is known.
    pub fn rank(&self, tensor: &str) -> Option<usize> {
        self.dims(tensor).map(|d| d.len())
    }

    /// The weight named `name` (an initializer or a `Constant` node output) in O(1); `graph` must
    /// be the graph this index was built from.
    pub fn find_weight<'g>(&self, graph: &'g GraphProto, name: &str) -> Option<WeightRef<'g>> {
        weight_at(graph, name, self.producer(name)?)
    }

    /// The value of `name` when it is a constant (initializer or `Constant` output) holding
    /// exactly one number, read as `f32`.
    pub fn scalar_f32(&self, graph: &GraphProto, name: &str) -> Option<f32> {
        let weight = self.find_weight(graph, name)?;
        match super::tensor_to_f32(&weight.tensor).ok()?.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }
}

/// The type of a `Constant` node's output, from whichever `value*` attribute it carries.
pub(crate) fn constant_type(node: &NodeProto) -> Option<TypeProto> {
    let attr = node
        .attribute
        .iter()
        .find(|a| a.name.starts_with("value") || a.name == "sparse_value")?;
    let len = |n: usize| vec![i64::try_from(n).unwrap_or(i64::MAX)];
    let (elem, dims) = match attr.name.as_str() {
        "value" => {
            let t = attr.t.as_ref()?;
            return Some(tensor_type_proto(t.data_type, &t.dims));
        }
        "sparse_value" => {
            let s = attr.sparse_tensor.as_ref()?;
            let values = s.values.as_ref()?;
            return Some(tensor_type_proto(values.data_type, &s.dims));
        }
        "value_float" => (DataType::Float, vec![]),
        "value_floats" => (DataType::Float, len(attr.floats.len())),
        "value_int" => (DataType::Int64, vec![]),
        "value_ints" => (DataType::Int64, len(attr.ints.len())),
        "value_string" => (DataType::String, vec![]),
        "value_strings" => (DataType::String, len(attr.strings.len())),
        _ => return None,
    };
    Some(tensor_type_proto(elem as i32, &dims))
}

/// The outer-scope names that the subgraphs of `node` read (node inputs and subgraph outputs not
/// defined inside the subgraph, recursively), sorted and without duplicates. Empty for nodes
/// without subgraphs.
pub fn subgraph_captures(node: &NodeProto) -> Vec<String> {
    let mut out = BTreeSet::new();
    for graph in node.subgraphs() {
        free_names(graph, &mut out);
    }
    out.into_iter().collect()
}

fn free_names(graph: &GraphProto, out: &mut BTreeSet<String>) {
    let mut defined: HashSet<&str> = HashSet::new();
    defined.extend(graph.input.iter().map(|v| v.name.as_str()));
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    defined.extend(
        graph
            .sparse_initializer
            .iter()
            .filter_map(|s| s.values.as_ref().map(|v| v.name.as_str())),
    );
    for node in &graph.node {
        defined.extend(node.output.iter().map(String::as_str));
    }
    let mut inner = BTreeSet::new();
    for node in &graph.node {
        for input in &node.input {
            if !input.is_empty() && !defined.contains(input.as_str()) {
                out.insert(input.clone());
            }
        }
        for sub in node.subgraphs() {
            free_names(sub, &mut inner);
        }
    }
    for output in &graph.output {
        if !defined.contains(output.name.as_str()) {
            out.insert(output.name.clone());
        }
    }
    out.extend(inner.into_iter().filter(|n| !defined.contains(n.as_str())));
}
