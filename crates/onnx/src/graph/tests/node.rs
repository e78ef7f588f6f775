//! NodeBuilder and the typed attribute getters.

use prost::Message;

use super::fixtures::if_graph;
use crate::graph::{NodeBuilder, NodeExt, attr, scalar_tensor};
use crate::proto::NodeProto;
use crate::proto::attribute_proto::AttributeType;

fn sample() -> NodeProto {
    NodeBuilder::new("Resize")
        .name("up")
        .inputs(["x", "", "scales"])
        .output("y")
        .attr_s("mode", "nearest")
        .attr_i("exclude_outside", 0)
        .attr_f("cubic_coeff_a", -0.75)
        .attr_ints("pads", [1, 2])
        .attr_floats("scales_attr", [2.0, 2.0])
        .attr_tensor("value", scalar_tensor("v", 1.0f32))
        .attr(attr::strings("names", ["a", "b"]))
        .build()
}

#[test]
fn builder_sets_fields_and_type_discriminators() {
    let n = sample();
    assert_eq!(n.op_type, "Resize");
    assert_eq!(n.name, "up");
    assert_eq!(n.input, ["x", "", "scales"]);
    assert_eq!(n.output, ["y"]);
    let types: Vec<(String, i32)> = n
        .attribute
        .iter()
        .map(|a| (a.name.clone(), a.r#type))
        .collect();
    let expected = [
        ("mode", AttributeType::String),
        ("exclude_outside", AttributeType::Int),
        ("cubic_coeff_a", AttributeType::Float),
        ("pads", AttributeType::Ints),
        ("scales_attr", AttributeType::Floats),
        ("value", AttributeType::Tensor),
        ("names", AttributeType::Strings),
    ];
    assert_eq!(types, expected.map(|(n, t)| (n.to_owned(), t as i32)));
    // Survives a prost round trip.
    assert_eq!(
        NodeProto::decode(n.encode_to_vec().as_slice()).expect("decodes"),
        n
    );
}

#[test]
fn getters_check_the_declared_type() {
    let n = sample();
    assert_eq!(n.attr_s("mode"), Some("nearest"));
    assert_eq!(n.attr_i("exclude_outside"), Some(0));
    assert_eq!(n.attr_f("cubic_coeff_a"), Some(-0.75));
    assert_eq!(n.attr_ints("pads"), Some([1, 2].as_slice()));
    assert_eq!(n.attr_floats("scales_attr"), Some([2.0, 2.0].as_slice()));
    assert_eq!(n.attr_tensor("value").map(|t| t.name.as_str()), Some("v"));
    // Wrong type or absent: None.
    assert_eq!(n.attr_i("mode"), None);
    assert_eq!(n.attr_f("exclude_outside"), None);
    assert_eq!(n.attr_ints("missing"), None);
    assert!(n.attr_graph("value").is_none());
    // IR < 2 attributes carry no type: read as any.
    let mut legacy = n.clone();
    legacy.attribute[1].r#type = AttributeType::Undefined as i32;
    assert_eq!(legacy.attr_i("exclude_outside"), Some(0));
}

#[test]
fn set_and_remove_attributes() {
    let mut n = sample();
    n.set_attr(attr::string("mode", "linear"));
    assert_eq!(n.attribute[0].name, "mode", "replaced in place");
    assert_eq!(n.attr_s("mode"), Some("linear"));
    assert_eq!(n.attribute.len(), 7);
    assert_eq!(n.remove_attr("pads").map(|a| a.ints), Some(vec![1, 2]));
    assert!(n.remove_attr("pads").is_none());
    assert_eq!(n.attribute.len(), 6);
}

#[test]
fn domains_and_subgraphs() {
    let mut n = sample();
    assert!(n.is_op("Resize") && !n.is_op("Relu"));
    n.domain = "ai.onnx".to_owned();
    assert!(n.is_op("Resize"));
    n.domain = "com.microsoft".to_owned();
    assert!(!n.is_op("Resize"));
    assert_eq!(n.subgraphs().count(), 0);
    let g = if_graph();
    let names: Vec<&str> = g.node[0].subgraphs().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["then_out_branch", "else_out_branch"]);
}
