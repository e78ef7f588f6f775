//! Weights in initializers and Constant nodes: find, read, replace, add; prost round trips.

use prost::Message;

use super::fixtures::{model, small_cnn, value};
use crate::graph::{
    GraphError, NameGen, NodeBuilder, NodeExt, TensorType, WeightLocation, add_initializer,
    find_weight, replace_weight, tensor_from_values, tensor_values, weights,
};
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, ModelProto};

fn check(graph: &GraphProto, name: &str, expected: Option<(WeightLocation, &[i64], &[f32])>) {
    let found = find_weight(graph, name);
    match (found, expected) {
        (None, None) => {}
        (Some(w), Some((location, dims, head))) => {
            assert_eq!(w.name, name);
            assert_eq!(w.location, location, "{name}");
            assert_eq!(w.dims(), dims, "{name}");
            assert_eq!(w.data_type(), Some(DataType::Float));
            let values = w.to_f32().expect("decodes");
            assert_eq!(values.len() as i64, dims.iter().product::<i64>(), "{name}");
            assert_eq!(&values[..head.len()], head, "{name}");
        }
        (found, expected) => panic!("{name}: found {found:?}, expected {expected:?}"),
    }
}

#[test]
fn weights_in_both_storage_forms() {
    let mut g = small_cnn();
    g.node.push(
        NodeBuilder::new("Constant")
            .output("fs")
            .attr_floats("value_floats", [1.5, 2.5])
            .build(),
    );
    check(
        &g,
        "w1",
        Some((
            WeightLocation::Initializer { index: 0 },
            &[4, 3, 3, 3],
            &[-0.5, -0.49],
        )),
    );
    check(
        &g,
        "b1",
        Some((
            WeightLocation::Initializer { index: 1 },
            &[4],
            &[0.5, -0.5, 1.0, -1.0],
        )),
    );
    check(
        &g,
        "w2",
        Some((
            WeightLocation::Constant { node: 2 },
            &[4, 4, 1, 1],
            &[0.0, 0.125, 0.25],
        )),
    );
    check(
        &g,
        "b2",
        Some((
            WeightLocation::Constant { node: 3 },
            &[4],
            &[0.1, 0.2, 0.3, 0.4],
        )),
    );
    check(
        &g,
        "fs",
        Some((WeightLocation::Constant { node: 7 }, &[2], &[1.5, 2.5])),
    );
    check(&g, "c1", None);
    check(&g, "x", None);
    let names: Vec<&str> = weights(&g).map(|w| w.name).collect();
    assert_eq!(names, ["w1", "b1", "w2", "b2", "fs"]);
}

/// Replaces `name` with an INT8 tensor and checks where it lives before and after a prost round
/// trip of the whole model.
fn check_replace(name: &str, location: WeightLocation) {
    let mut m = model(small_cnn(), 13);
    let g = m.graph.as_mut().expect("graph");
    g.value_info.push(value(name, DataType::Float, None));
    let dims = find_weight(g, name).expect("exists").dims().to_vec();
    let n: i64 = dims.iter().product();
    let data: Vec<i8> = (0..n).map(|i| (i % 100) as i8 - 50).collect();
    let new = tensor_from_values("ignored_name", &dims, &data).expect("tensor");
    assert_eq!(replace_weight(g, name, new).expect("replaced"), location);

    let decoded = ModelProto::decode(m.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!(decoded, m);
    let g = decoded.graph.as_ref().expect("graph");
    let w = find_weight(g, name).expect("still there");
    assert_eq!(w.location, location);
    assert_eq!(w.data_type(), Some(DataType::Int8));
    assert_eq!(tensor_values::<i8>(&w.tensor).expect("int8"), data);
    assert_eq!(g.node.len(), 7, "no node added or removed");
    match location {
        WeightLocation::Initializer { index } => assert_eq!(g.initializer[index].name, name),
        WeightLocation::Constant { node } => {
            let n = &g.node[node];
            assert!(n.is_op("Constant"));
            assert_eq!(n.output, [name]);
            assert_eq!(n.attribute.len(), 1);
            assert!(n.attr_tensor("value").is_some());
        }
    }
    // The declaration follows the new type.
    let declared = g
        .value_info
        .iter()
        .find(|v| v.name == name)
        .and_then(|v| v.r#type.as_ref());
    assert_eq!(
        declared
            .and_then(TensorType::from_proto)
            .map(|t| t.elem_type),
        Some(DataType::Int8)
    );
}

#[test]
fn replacing_keeps_the_storage_form() {
    check_replace("w1", WeightLocation::Initializer { index: 0 });
    check_replace("b1", WeightLocation::Initializer { index: 1 });
    check_replace("w2", WeightLocation::Constant { node: 2 });
    check_replace("b2", WeightLocation::Constant { node: 3 });
}

#[test]
fn replacing_a_value_floats_constant_drops_the_old_attribute() {
    let mut g = small_cnn();
    g.node.push(
        NodeBuilder::new("Constant")
            .output("fs")
            .attr_floats("value_floats", [1.5])
            .build(),
    );
    let new = tensor_from_values("", &[2], &[3.0f32, 4.0]).expect("tensor");
    replace_weight(&mut g, "fs", new).expect("replaced");
    let n = g.node.last().expect("node");
    assert!(n.attr_floats("value_floats").is_none());
    assert_eq!(
        find_weight(&g, "fs").expect("w").to_f32().expect("f32"),
        [3.0, 4.0]
    );
}

#[test]
fn unknown_weights_and_new_initializers() {
    let mut g = small_cnn();
    let t = tensor_from_values("w", &[1], &[1.0f32]).expect("tensor");
    assert!(matches!(
        replace_weight(&mut g, "c1", t.clone()),
        Err(GraphError::UnknownWeight { name }) if name == "c1"
    ));
    let mut names = NameGen::new(&g);
    let mut named = t.clone();
    named.name = "w1".to_owned();
    assert_eq!(add_initializer(&mut g, &mut names, named.clone()), "w1_1");
    assert_eq!(add_initializer(&mut g, &mut names, named), "w1_2");
    let mut anonymous = t;
    anonymous.name.clear();
    assert_eq!(
        add_initializer(&mut g, &mut names, anonymous),
        "initializer"
    );
    let w = find_weight(&g, "w1_2").expect("added");
    assert_eq!(w.location, WeightLocation::Initializer { index: 3 });
    crate::graph::GraphIndex::new(&g).expect("no duplicate names");
}
