//! GraphIndex: producers, consumers, captures and declared types.

use super::fixtures::{if_graph, node, small_cnn, value};
use crate::graph::{Consumer, Dim, GraphError, GraphIndex, Producer, subgraph_captures};
use crate::proto::GraphProto;
use crate::proto::tensor_proto::DataType;

fn check(
    graph: &GraphProto,
    tensor: &str,
    producer: Option<Producer>,
    consumers: &[(usize, usize)],
) {
    let index = GraphIndex::new(graph).expect("index builds");
    assert_eq!(index.producer(tensor), producer, "producer of {tensor}");
    let expected: Vec<Consumer> = consumers
        .iter()
        .map(|&(node, slot)| Consumer { node, slot })
        .collect();
    assert_eq!(
        index.consumers(tensor),
        expected.as_slice(),
        "consumers of {tensor}"
    );
}

#[test]
fn producers_and_consumers_of_the_small_cnn() {
    let g = small_cnn();
    check(&g, "x", Some(Producer::GraphInput), &[(0, 0)]);
    check(
        &g,
        "w1",
        Some(Producer::Initializer { index: 0 }),
        &[(0, 1)],
    );
    check(
        &g,
        "b1",
        Some(Producer::Initializer { index: 1 }),
        &[(0, 2)],
    );
    check(
        &g,
        "c1",
        Some(Producer::Node { node: 0, output: 0 }),
        &[(1, 0)],
    );
    check(
        &g,
        "r1",
        Some(Producer::Node { node: 1, output: 0 }),
        &[(4, 0), (5, 1), (6, 1)],
    );
    check(&g, "w2", Some(Producer::Constant { node: 2 }), &[(4, 1)]);
    check(&g, "b2", Some(Producer::Constant { node: 3 }), &[(4, 2)]);
    check(&g, "y", Some(Producer::Node { node: 6, output: 0 }), &[]);
    check(&g, "nope", None, &[]);
}

#[test]
fn declared_types_and_flags() {
    let g = small_cnn();
    let index = GraphIndex::new(&g).expect("index");
    assert!(index.is_graph_input("x") && !index.is_graph_input("w1"));
    assert!(index.is_graph_output("y") && !index.is_graph_output("r1"));
    assert!(index.is_used("r1") && index.is_used("y") && index.contains("w2"));
    assert_eq!(index.elem_type("x"), Some(DataType::Float));
    assert_eq!(index.rank("x"), Some(4));
    // Initializers and Constant outputs have exact types.
    let w2 = index.tensor_type("w2").expect("constant type");
    assert_eq!(w2.elem_type, DataType::Float);
    assert_eq!(
        w2.dims,
        Some(vec![
            Dim::Value(4),
            Dim::Value(4),
            Dim::Value(1),
            Dim::Value(1)
        ])
    );
    assert_eq!(index.rank("b1"), Some(1));
    // Intermediate tensors are not declared.
    assert_eq!(index.elem_type("c1"), None);
    assert!(index.producer("w1").is_some_and(Producer::is_constant));
    assert!(index.producer("w2").is_some_and(Producer::is_constant));
    assert!(!index.producer("c1").is_some_and(Producer::is_constant));
}

#[test]
fn duplicate_producers_are_an_error_but_initializers_may_be_inputs() {
    let mut g = small_cnn();
    g.node.push(node("Relu", &["x"], &["c1"]));
    match GraphIndex::new(&g) {
        Err(GraphError::DuplicateProducer {
            tensor,
            first,
            second,
        }) => {
            assert_eq!(tensor, "c1");
            assert!(
                first.contains("conv1") && second.contains("#7"),
                "{first} / {second}"
            );
        }
        other => panic!("expected a duplicate producer, got {other:?}"),
    }

    let mut g = small_cnn();
    g.input
        .push(value("w1", DataType::Float, Some(&[4, 3, 3, 3])));
    let index = GraphIndex::new(&g).expect("an initializer may be a graph input");
    assert_eq!(
        index.producer("w1"),
        Some(Producer::Initializer { index: 0 })
    );
    assert!(index.is_graph_input("w1"));
}

#[test]
fn subgraph_reads_are_captures() {
    let g = if_graph();
    let index = GraphIndex::new(&g).expect("index");
    assert_eq!(subgraph_captures(&g.node[0]), ["s"]);
    assert_eq!(index.capturing_nodes("s"), &[0]);
    assert!(index.consumers("s").is_empty());
    assert!(index.is_used("s"));
    // Names defined inside a branch are not captures.
    assert!(index.capturing_nodes("then_out").is_empty());
}

#[test]
fn index_finds_weights_like_the_linear_scan() {
    let g = small_cnn();
    let index = GraphIndex::new(&g).expect("index");
    for name in ["w1", "b1", "w2", "b2", "c1", "x", "missing"] {
        assert_eq!(
            index.find_weight(&g, name),
            crate::graph::find_weight(&g, name),
            "{name}"
        );
    }
}
