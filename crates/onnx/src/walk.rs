//! Visiting every tensor of a model, in a fixed order: initializers and node attributes of the
//! main graph, its subgraphs (If/Loop/Scan bodies), training graphs and local functions.

use crate::error::Result;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, SparseTensorProto, TensorProto,
};

/// Where a visited tensor sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// A graph initializer.
    Initializer,
    /// The values or indices of a sparse initializer or sparse attribute.
    Sparse,
    /// A node attribute (`Constant.value`, `ConstantOfShape.value`, ...).
    Attribute,
}

/// Calls `f` on every tensor of `model`.
pub(crate) fn tensors<'a>(model: &'a ModelProto, f: &mut dyn FnMut(&'a TensorProto, Site)) {
    for graph in top_graphs(model) {
        graph_tensors(graph, f);
    }
    for node in model.functions.iter().flat_map(|func| &func.node) {
        node_tensors(node, f);
    }
}

fn top_graphs(model: &ModelProto) -> impl Iterator<Item = &GraphProto> {
    let training = model
        .training_info
        .iter()
        .flat_map(|t| t.initialization.iter().chain(&t.algorithm));
    model.graph.iter().chain(training)
}

fn graph_tensors<'a>(graph: &'a GraphProto, f: &mut dyn FnMut(&'a TensorProto, Site)) {
    graph
        .initializer
        .iter()
        .for_each(|t| f(t, Site::Initializer));
    graph
        .sparse_initializer
        .iter()
        .for_each(|s| sparse_tensors(s, f));
    for node in &graph.node {
        node_tensors(node, f);
    }
}

fn sparse_tensors<'a>(s: &'a SparseTensorProto, f: &mut dyn FnMut(&'a TensorProto, Site)) {
    s.values
        .iter()
        .chain(&s.indices)
        .for_each(|t| f(t, Site::Sparse));
}

fn node_tensors<'a>(node: &'a NodeProto, f: &mut dyn FnMut(&'a TensorProto, Site)) {
    for attr in &node.attribute {
        attribute_tensors(attr, f);
    }
}

fn attribute_tensors<'a>(attr: &'a AttributeProto, f: &mut dyn FnMut(&'a TensorProto, Site)) {
    attr.t
        .iter()
        .chain(&attr.tensors)
        .for_each(|t| f(t, Site::Attribute));
    attr.sparse_tensor
        .iter()
        .chain(&attr.sparse_tensors)
        .for_each(|s| sparse_tensors(s, f));
    for graph in attr.g.iter().chain(&attr.graphs) {
        graph_tensors(graph, f);
    }
}

/// Calls `f` on every tensor of `model`, mutably, in the same order as [`tensors`]; stops at the
/// first error.
pub(crate) fn tensors_mut(
    model: &mut ModelProto,
    f: &mut dyn FnMut(&mut TensorProto, Site) -> Result<()>,
) -> Result<()> {
    if let Some(graph) = &mut model.graph {
        graph_tensors_mut(graph, f)?;
    }
    for t in &mut model.training_info {
        for graph in t.initialization.iter_mut().chain(&mut t.algorithm) {
            graph_tensors_mut(graph, f)?;
        }
    }
    for node in model.functions.iter_mut().flat_map(|func| &mut func.node) {
        node_tensors_mut(node, f)?;
    }
    Ok(())
}

fn graph_tensors_mut(
    graph: &mut GraphProto,
    f: &mut dyn FnMut(&mut TensorProto, Site) -> Result<()>,
) -> Result<()> {
    for t in &mut graph.initializer {
        f(t, Site::Initializer)?;
    }
    for s in &mut graph.sparse_initializer {
        sparse_tensors_mut(s, f)?;
    }
    for node in &mut graph.node {
        node_tensors_mut(node, f)?;
    }
    Ok(())
}

fn sparse_tensors_mut(
    s: &mut SparseTensorProto,
    f: &mut dyn FnMut(&mut TensorProto, Site) -> Result<()>,
) -> Result<()> {
    for t in s.values.iter_mut().chain(&mut s.indices) {
        f(t, Site::Sparse)?;
    }
    Ok(())
}

fn node_tensors_mut(
    node: &mut NodeProto,
    f: &mut dyn FnMut(&mut TensorProto, Site) -> Result<()>,
) -> Result<()> {
    for attr in &mut node.attribute {
        for t in attr.t.iter_mut().chain(&mut attr.tensors) {
            f(t, Site::Attribute)?;
        }
        for s in attr
            .sparse_tensor
            .iter_mut()
            .chain(&mut attr.sparse_tensors)
        {
            sparse_tensors_mut(s, f)?;
        }
        for graph in attr.g.iter_mut().chain(&mut attr.graphs) {
            graph_tensors_mut(graph, f)?;
        }
    }
    Ok(())
}

/// Calls `f` on `graph` and every subgraph below it (attributes `g` and `graphs`), depth first,
/// with the nesting depth (0 for `graph`).
pub(crate) fn graphs<'a>(graph: &'a GraphProto, f: &mut dyn FnMut(&'a GraphProto, usize)) {
    fn go<'a>(graph: &'a GraphProto, depth: usize, f: &mut dyn FnMut(&'a GraphProto, usize)) {
        f(graph, depth);
        for attr in graph.node.iter().flat_map(|n| &n.attribute) {
            for sub in attr.g.iter().chain(&attr.graphs) {
                go(sub, depth + 1, f);
            }
        }
    }
    go(graph, 0, f);
}
