//! Topological order: shuffled graphs, cycles, missing producers, subgraph captures.

use super::fixtures::{assert_topological, cycle_graph, if_graph, missing_graph, node, small_cnn};
use crate::graph::{GraphError, toposort, toposort_in_place};
use crate::proto::GraphProto;

/// Sorts a copy of `graph` with its nodes in `permutation` order and checks the result.
fn check(graph: &GraphProto, permutation: &[usize]) {
    let mut shuffled = graph.clone();
    shuffled.node = permutation.iter().map(|&i| graph.node[i].clone()).collect();
    toposort_in_place(&mut shuffled).expect("sorts");
    assert_topological(&shuffled);
    let mut names: Vec<_> = shuffled.node.iter().map(|n| n.name.clone()).collect();
    let mut expected: Vec<_> = graph.node.iter().map(|n| n.name.clone()).collect();
    names.sort();
    expected.sort();
    assert_eq!(names, expected, "same nodes after sorting {permutation:?}");
}

#[test]
fn shuffled_graphs_sort() {
    let g = small_cnn();
    let n = g.node.len();
    let identity: Vec<usize> = (0..n).collect();
    check(&g, &identity);
    check(&g, &identity.iter().rev().copied().collect::<Vec<_>>());
    for k in 1..n {
        let rotated: Vec<usize> = (0..n).map(|i| (i + k) % n).collect();
        check(&g, &rotated);
    }
    // A few pseudo-random permutations (LCG driven Fisher-Yates).
    let mut state = 0x2545_f491_u64;
    for _ in 0..20 {
        let mut p = identity.clone();
        for i in (1..n).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let j = (state >> 33) as usize % (i + 1);
            p.swap(i, j);
        }
        check(&g, &p);
    }
}

#[test]
fn a_sorted_graph_keeps_its_order() {
    let g = small_cnn();
    assert_eq!(
        toposort(&g).expect("sorted"),
        (0..g.node.len()).collect::<Vec<_>>()
    );
}

#[test]
fn cycles_name_their_tensors() {
    let mut g = cycle_graph();
    let before = g.clone();
    match toposort_in_place(&mut g) {
        Err(GraphError::Cycle { mut tensors, nodes }) => {
            tensors.sort();
            assert_eq!(tensors, ["t1", "t2"]);
            assert_eq!(nodes.len(), 2, "{nodes:?}");
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert_eq!(g, before, "unchanged on error");

    // A node reading its own output.
    let mut g = cycle_graph();
    g.node = vec![node("Add", &["x", "y"], &["y"])];
    assert!(matches!(
        toposort(&g),
        Err(GraphError::Cycle { tensors, .. }) if tensors == ["y"]
    ));
}

#[test]
fn missing_producers_are_named() {
    match toposort(&missing_graph()) {
        Err(GraphError::MissingProducer { tensor, node }) => {
            assert_eq!(tensor, "ghost");
            assert!(node.contains("Relu"), "{node}");
        }
        other => panic!("expected a missing producer, got {other:?}"),
    }
}

#[test]
fn omitted_optional_inputs_are_sources() {
    let mut g = small_cnn();
    g.node.push(node("Clip", &["y", "", "b1"], &["clipped"]));
    toposort(&g).expect("\"\" is not a tensor");
}

#[test]
fn subgraph_captures_are_dependencies() {
    let mut g = if_graph();
    toposort_in_place(&mut g).expect("sorts");
    let order: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(order, ["Sigmoid", "If"]);
    assert_topological(&g);

    // A capture nothing produces is a missing producer.
    let mut g = if_graph();
    g.node.pop();
    assert!(matches!(
        toposort(&g),
        Err(GraphError::MissingProducer { tensor, .. }) if tensor == "s"
    ));
}
