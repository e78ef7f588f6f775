//! Edge insertion (Q/DQ), unique names, renaming, removal and pruning.

use super::fixtures::{
    assert_topological, constant, if_graph, node, position, producer_of, small_cnn, value,
};
use crate::graph::{
    Consumer, Consumers, EdgeInsert, ElemTypes, GraphError, GraphIndex, NameGen, NodeExt,
    PruneOptions, QdqSpec, add_initializer, insert_on_edge, insert_on_edges, prune_dead_nodes,
    qdq_edge, remove_nodes, rename_tensor, scalar_tensor,
};
use crate::proto::GraphProto;
use crate::proto::tensor_proto::DataType;

fn consumers(list: &[(usize, usize)]) -> Vec<Consumer> {
    list.iter()
        .map(|&(node, slot)| Consumer { node, slot })
        .collect()
}

/// Adds a per-tensor scale and UINT8 zero point as initializers.
fn qparams(graph: &mut GraphProto, names: &mut NameGen, tensor: &str) -> QdqSpec {
    let scale = add_initializer(
        graph,
        names,
        scalar_tensor(&format!("{tensor}_scale"), 0.05f32),
    );
    let zero = add_initializer(
        graph,
        names,
        scalar_tensor(&format!("{tensor}_zero_point"), 128u8),
    );
    QdqSpec::per_tensor(scale, zero)
}

/// Inserts Q/DQ on `tensor` for `which` and checks: the reported consumers, that exactly those
/// inputs read the dequantized tensor, that the others still read `tensor`, that the pair sits
/// right after `after` (a node name, or `None` for the front), and that the graph stays valid.
fn check(
    tensor: &str,
    which: Consumers,
    rewired: &[(usize, usize)],
    after: Option<&str>,
) -> GraphProto {
    let mut g = small_cnn();
    let before = g.clone();
    let mut names = NameGen::new(&g);
    let spec = qparams(&mut g, &mut names, tensor);
    let edit = qdq_edge(&mut names, tensor, which, &spec);
    let report = insert_on_edge(&mut g, edit).expect("inserts");
    assert_eq!(report.rewired, consumers(rewired));
    assert_eq!(report.output, format!("{tensor}_dequantized"));

    // Rewired inputs (positions shift by 2 for nodes after the insertion point).
    let q_at = position(&g, &format!("{tensor}_QuantizeLinear"));
    assert_eq!(
        position(&g, &format!("{tensor}_DequantizeLinear")),
        q_at + 1
    );
    let expected_at = after.map_or(0, |name| position(&g, name) + 1);
    assert_eq!(q_at, expected_at, "Q/DQ placed right after the producer");
    for (i, old) in before.node.iter().enumerate() {
        let new_i = if i >= q_at { i + 2 } else { i };
        let new = &g.node[new_i];
        assert_eq!(new.name, old.name);
        for (slot, input) in old.input.iter().enumerate() {
            let want = if report.rewired.contains(&Consumer { node: i, slot }) {
                report.output.clone()
            } else {
                input.clone()
            };
            assert_eq!(new.input[slot], want, "{} input {slot}", old.name);
        }
    }
    assert_topological(&g);
    assert_eq!(g.output, before.output, "graph outputs unchanged");
    let types = ElemTypes::infer(&g).expect("types");
    assert_eq!(
        types.get(&format!("{tensor}_quantized")),
        Some(DataType::Uint8)
    );
    assert_eq!(types.get(&report.output), Some(DataType::Float));
    g
}

#[test]
fn qdq_on_an_edge_with_many_readers() {
    // All readers of r1: conv2, add, concat.
    check(
        "r1",
        Consumers::All,
        &[(4, 0), (5, 1), (6, 1)],
        Some("relu1"),
    );
    // A subset.
    check(
        "r1",
        Consumers::Only(consumers(&[(5, 1)])),
        &[(5, 1)],
        Some("relu1"),
    );
    check(
        "r1",
        Consumers::Only(consumers(&[(6, 1), (4, 0), (6, 1)])),
        &[(4, 0), (6, 1)],
        Some("relu1"),
    );
    // A graph input: inserted first.
    check("x", Consumers::All, &[(0, 0)], None);
    // A Constant weight: right after its Constant node.
    check("w2", Consumers::All, &[(4, 1)], Some("w2_const"));
    // An initializer weight.
    check("w1", Consumers::All, &[(0, 1)], None);
}

#[test]
fn per_channel_qdq_carries_the_axis() {
    let mut g = small_cnn();
    let mut names = NameGen::new(&g);
    let scale = add_initializer(
        &mut g,
        &mut names,
        crate::graph::tensor_from_values("w2_scale", &[4], &[0.1f32; 4]).expect("t"),
    );
    let zero = add_initializer(
        &mut g,
        &mut names,
        crate::graph::tensor_from_values("w2_zp", &[4], &[0i8; 4]).expect("t"),
    );
    let edit = qdq_edge(
        &mut names,
        "w2",
        Consumers::All,
        &QdqSpec::per_channel(scale, zero, 0),
    );
    insert_on_edge(&mut g, edit).expect("inserts");
    let q = producer_of(&g, "w2_quantized");
    assert_eq!(q.attr_i("axis"), Some(0));
    assert_eq!(producer_of(&g, "w2_dequantized").attr_i("axis"), Some(0));
    assert_eq!(
        ElemTypes::infer(&g).expect("types").get("w2_quantized"),
        Some(DataType::Int8)
    );
}

#[test]
fn batches_use_positions_of_the_original_graph() {
    let mut g = small_cnn();
    let mut names = NameGen::new(&g);
    let spec = qparams(&mut g, &mut names, "r1");
    let spec_c1 = qparams(&mut g, &mut names, "c1");
    let edits = vec![
        qdq_edge(
            &mut names,
            "r1",
            Consumers::Only(consumers(&[(4, 0)])),
            &spec,
        ),
        qdq_edge(
            &mut names,
            "r1",
            Consumers::Only(consumers(&[(5, 1), (6, 1)])),
            &spec,
        ),
        qdq_edge(&mut names, "c1", Consumers::All, &spec_c1),
    ];
    let reports = insert_on_edges(&mut g, edits).expect("inserts");
    assert_eq!(reports[0].output, "r1_dequantized");
    assert_eq!(reports[1].output, "r1_dequantized_1");
    assert_eq!(g.node.len(), 7 + 6);
    assert_eq!(g.node[position(&g, "conv2")].input[0], "r1_dequantized");
    assert_eq!(g.node[position(&g, "add")].input[1], "r1_dequantized_1");
    assert_eq!(g.node[position(&g, "concat")].input[1], "r1_dequantized_1");
    assert_eq!(g.node[position(&g, "relu1")].input[0], "c1_dequantized");
    assert_topological(&g);
    GraphIndex::new(&g).expect("still single assignment");
}

#[test]
fn bad_edits_leave_the_graph_unchanged() {
    let base = small_cnn();
    let mut names = NameGen::new(&base);
    let spec = QdqSpec::per_tensor("b1", "b1");
    let bad = |edit: EdgeInsert| {
        let mut g = base.clone();
        let result = insert_on_edges(&mut g, vec![edit]);
        assert_eq!(g, base, "unchanged");
        result.expect_err("refused")
    };
    let q =
        |names: &mut NameGen, tensor: &str, which: Consumers| qdq_edge(names, tensor, which, &spec);

    let e = bad(q(&mut names, "r1", Consumers::Only(consumers(&[(4, 1)]))));
    assert!(
        matches!(
            e,
            GraphError::NotAConsumer {
                node: 4,
                slot: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = bad(q(&mut names, "r1", Consumers::Only(consumers(&[(99, 0)]))));
    assert!(
        matches!(e, GraphError::NotAConsumer { node: 99, .. }),
        "{e}"
    );
    let e = bad(q(&mut names, "y", Consumers::All));
    assert!(
        matches!(e, GraphError::InvalidEdit { ref tensor, .. } if tensor == "y"),
        "{e}"
    );
    let e = bad(q(&mut names, "nope", Consumers::All));
    assert!(matches!(e, GraphError::UnknownTensor { .. }), "{e}");

    let mut taken = q(&mut names, "r1", Consumers::All);
    taken.nodes[1].output[0] = "c2".to_owned();
    taken.output = "c2".to_owned();
    assert!(matches!(bad(taken), GraphError::NameTaken { name } if name == "c2"));

    let mut unproduced = q(&mut names, "r1", Consumers::All);
    unproduced.output = "elsewhere".to_owned();
    assert!(matches!(bad(unproduced), GraphError::InvalidEdit { .. }));

    let mut dangling = q(&mut names, "r1", Consumers::All);
    dangling.nodes[0].input[1] = "no_scale".to_owned();
    assert!(
        matches!(bad(dangling), GraphError::MissingProducer { tensor, .. } if tensor == "no_scale")
    );

    let mut g = base.clone();
    let twice = vec![
        q(&mut names, "r1", Consumers::Only(consumers(&[(5, 1)]))),
        q(&mut names, "r1", Consumers::Only(consumers(&[(5, 1)]))),
    ];
    assert!(matches!(
        insert_on_edges(&mut g, twice),
        Err(GraphError::InvalidEdit { .. })
    ));
    assert_eq!(g, base);

    let mut g = base.clone();
    let empty = EdgeInsert {
        tensor: "r1".to_owned(),
        consumers: Consumers::All,
        nodes: vec![],
        output: "z".to_owned(),
    };
    assert!(matches!(
        insert_on_edge(&mut g, empty),
        Err(GraphError::InvalidEdit { .. })
    ));
}

#[test]
fn graph_outputs_keep_the_original_value() {
    let mut g = small_cnn();
    g.output.push(value("r1", DataType::Float, None));
    let mut names = NameGen::new(&g);
    let spec = qparams(&mut g, &mut names, "r1");
    let edit = qdq_edge(&mut names, "r1", Consumers::All, &spec);
    insert_on_edge(&mut g, edit).expect("inserts");
    assert!(g.output.iter().any(|o| o.name == "r1"));
    assert_eq!(producer_of(&g, "r1").name, "relu1");
    assert_topological(&g);
}

#[test]
fn late_parameters_trigger_a_resort() {
    // The scale comes from a Constant node placed after every reader of r1.
    let mut g = small_cnn();
    g.node
        .push(constant("late_scale", scalar_tensor("", 0.1f32)));
    let mut names = NameGen::new(&g);
    let spec = QdqSpec {
        scale: "late_scale".to_owned(),
        zero_point: None,
        axis: None,
    };
    let edit = qdq_edge(&mut names, "r1", Consumers::All, &spec);
    insert_on_edge(&mut g, edit).expect("inserts and sorts");
    assert_topological(&g);
}

#[test]
fn fresh_names_avoid_everything() {
    fn check(graph: &GraphProto, requests: &[&str], expected: &[&str]) {
        let mut names = NameGen::new(graph);
        let got: Vec<String> = requests.iter().map(|r| names.fresh(r)).collect();
        assert_eq!(got, expected);
    }
    let mut g = small_cnn();
    check(
        &g,
        &["r1", "r1", "new", "new", "conv1", "", "y"],
        &["r1_1", "r1_2", "new", "new_1", "conv1_1", "t", "y_1"],
    );
    g.value_info.push(value("r1_1", DataType::Float, None));
    check(&g, &["r1", "r1"], &["r1_2", "r1_3"]);
    // Names inside subgraphs are taken too.
    check(
        &if_graph(),
        &["then_out", "s", "else_out_node"],
        &["then_out_1", "s_1", "else_out_node_1"],
    );

    let mut names = NameGen::new(&g);
    assert!(names.contains("w1") && !names.contains("zzz"));
    assert!(names.reserve("zzz"));
    assert!(!names.reserve("zzz"));
    assert_eq!(names.fresh("zzz"), "zzz_1");
}

#[test]
fn renaming_reaches_every_reference() {
    let mut g = small_cnn();
    assert_eq!(rename_tensor(&mut g, "r1", "relu_out").expect("renames"), 4);
    assert_eq!(producer_of(&g, "relu_out").name, "relu1");
    assert_eq!(
        GraphIndex::new(&g)
            .expect("index")
            .consumers("relu_out")
            .len(),
        3
    );
    assert_eq!(rename_tensor(&mut g, "y", "y2").expect("output"), 2);
    assert_eq!(g.output[0].name, "y2");
    assert_eq!(rename_tensor(&mut g, "w1", "w1").expect("no-op"), 0);
    assert!(matches!(
        rename_tensor(&mut g, "gone", "g2"),
        Err(GraphError::UnknownTensor { .. })
    ));
    assert!(matches!(
        rename_tensor(&mut g, "c1", "c2"),
        Err(GraphError::NameTaken { .. })
    ));
    assert_topological(&g);

    // Captured tensors are renamed inside the branches too.
    let mut g = if_graph();
    assert_eq!(rename_tensor(&mut g, "s", "sig").expect("renames"), 3);
    assert_eq!(crate::graph::subgraph_captures(&g.node[0]), ["sig"]);
}

#[test]
fn removing_nodes() {
    let mut g = small_cnn();
    let removed = remove_nodes(&mut g, &[6, 2, 6]).expect("removes");
    let names: Vec<&str> = removed.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["w2_const", "concat"]);
    assert_eq!(g.node.len(), 5);
    assert!(matches!(
        remove_nodes(&mut g, &[1, 5]),
        Err(GraphError::NodeOutOfRange { index: 5, len: 5 })
    ));
    assert_eq!(g.node.len(), 5, "unchanged on error");
}

#[test]
fn pruning_dead_branches() {
    let mut g = small_cnn();
    g.node.insert(2, node("Relu", &["x"], &["dead1"]));
    g.node.push(node("Sigmoid", &["dead1"], &["dead2"]));
    g.initializer.push(scalar_tensor("unused", 1.0f32));
    g.value_info.push(value("dead2", DataType::Float, None));
    g.value_info.push(value("c1", DataType::Float, None));
    let report = prune_dead_nodes(&mut g, &PruneOptions::default()).expect("prunes");
    assert_eq!(report.nodes.len(), 2, "{:?}", report.nodes);
    assert_eq!(report.initializers, ["unused"]);
    assert_eq!(report.value_info, 1);
    assert_eq!(g.node.len(), 7);
    assert_eq!(g.initializer.len(), 2);
    assert_topological(&g);

    // Nothing to prune, and captures keep their producers alive.
    let mut g = if_graph();
    let report = prune_dead_nodes(&mut g, &PruneOptions::default()).expect("prunes");
    assert!(report.nodes.is_empty());
    assert_eq!(g.node.len(), 2);
}
