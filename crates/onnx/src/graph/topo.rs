//! Topological order of a graph's nodes (Kahn's algorithm), with errors that name the tensors of a
//! cycle or the tensor nothing produces.
//!
//! Graph inputs, initializers and omitted optional inputs (`""`) are sources. A node holding
//! subgraphs (`If`, `Loop`, `Scan`) depends on every outer-scope tensor its subgraphs read, as if
//! those were inputs. Among ready nodes the lowest original position goes first, so an already
//! sorted graph keeps its order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::proto::GraphProto;

use super::error::GraphError;
use super::index::{GraphIndex, subgraph_captures};
use super::node::describe;

/// The nodes of `graph` in a topological order, as positions in `GraphProto::node`.
pub fn toposort(graph: &GraphProto) -> Result<Vec<usize>, GraphError> {
    let index = GraphIndex::new(graph)?;
    order_with(graph, &index)
}

/// Reorders `GraphProto::node` topologically; on error the graph is unchanged.
pub fn toposort_in_place(graph: &mut GraphProto) -> Result<(), GraphError> {
    let order = toposort(graph)?;
    let mut slots: Vec<Option<_>> = std::mem::take(&mut graph.node)
        .into_iter()
        .map(Some)
        .collect();
    graph.node = order
        .iter()
        .filter_map(|&i| slots.get_mut(i).and_then(Option::take))
        .collect();
    Ok(())
}

/// The tensors node `node` depends on: its non-empty inputs, then its subgraph captures.
fn dependencies(graph: &GraphProto, node: usize) -> Vec<String> {
    graph.node.get(node).map_or_else(Vec::new, |n| {
        n.input
            .iter()
            .filter(|i| !i.is_empty())
            .cloned()
            .chain(subgraph_captures(n))
            .collect()
    })
}

/// Kahn's algorithm over an index built from `graph`.
pub(crate) fn order_with(graph: &GraphProto, index: &GraphIndex) -> Result<Vec<usize>, GraphError> {
    let count = graph.node.len();
    let mut preds: Vec<Vec<usize>> = Vec::with_capacity(count);
    for (i, node) in graph.node.iter().enumerate() {
        let mut deps = Vec::new();
        for tensor in dependencies(graph, i) {
            match index.producer(&tensor) {
                Some(producer) => deps.extend(producer.node()),
                None => {
                    return Err(GraphError::MissingProducer {
                        tensor,
                        node: describe(node, i),
                    });
                }
            }
        }
        deps.sort_unstable();
        deps.dedup();
        preds.push(deps);
    }
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut indegree: Vec<usize> = vec![0; count];
    for (i, deps) in preds.iter().enumerate() {
        indegree[i] = deps.len();
        for &d in deps {
            if let Some(s) = succs.get_mut(d) {
                s.push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = indegree
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succs[i] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == count {
        return Ok(order);
    }
    Err(cycle_error(graph, index, &preds, &indegree))
}

/// Finds one cycle among the nodes Kahn's algorithm could not emit and names it.
fn cycle_error(
    graph: &GraphProto,
    index: &GraphIndex,
    preds: &[Vec<usize>],
    indegree: &[usize],
) -> GraphError {
    // Every node left has a predecessor that is also left: walk predecessors until one repeats.
    let left = |i: usize| indegree.get(i).is_some_and(|d| *d > 0);
    let mut walk: Vec<usize> = Vec::new();
    let mut seen_at = vec![usize::MAX; indegree.len()];
    let mut current = (0..indegree.len()).find(|&i| left(i));
    while let Some(node) = current {
        if seen_at[node] != usize::MAX {
            walk.drain(..seen_at[node]);
            break;
        }
        seen_at[node] = walk.len();
        walk.push(node);
        current = preds[node].iter().copied().find(|&p| left(p));
    }
    // `walk` runs against the data flow; turn it around.
    walk.reverse();
    let mut tensors = Vec::new();
    for (k, &to) in walk.iter().enumerate() {
        let from = walk[(k + walk.len() - 1) % walk.len()];
        let tensor = dependencies(graph, to)
            .into_iter()
            .find(|t| index.producer(t).and_then(|p| p.node()) == Some(from));
        tensors.extend(tensor);
    }
    let nodes = walk
        .iter()
        .filter_map(|&i| graph.node.get(i).map(|n| describe(n, i)))
        .collect();
    GraphError::Cycle { tensors, nodes }
}
