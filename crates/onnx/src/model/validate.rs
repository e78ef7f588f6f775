//! Structural checks run after decoding: arbitrary bytes often decode as protobuf, so a decoded
//! `ModelProto` is accepted only if it looks like a model (IR version in range, a graph, opset
//! imports, named values, known tensor types).
//!
//! This is not the ONNX checker: it does not check operator schemas, types or topological order.

use crate::error::{OnnxError, Origin, Result};
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, ModelProto, TensorProto};
use crate::walk;

/// The highest IR version accepted. IR 14 is the newest this crate's proto knows; the headroom
/// admits files from newer exporters while still rejecting random varints.
pub const MAX_IR_VERSION: i64 = 32;

/// Checks `proto` and names the first problem found.
pub(crate) fn validate(proto: &ModelProto, origin: &Origin) -> Result<()> {
    problem(proto).map_or(Ok(()), |reason| {
        Err(OnnxError::Invalid {
            origin: origin.clone(),
            reason,
        })
    })
}

fn problem(proto: &ModelProto) -> Option<String> {
    let ir = proto.ir_version;
    if !(1..=MAX_IR_VERSION).contains(&ir) {
        return Some(format!(
            "ir_version {ir} is outside the supported range 1..={MAX_IR_VERSION}"
        ));
    }
    let Some(graph) = &proto.graph else {
        return Some("it has no graph".into());
    };
    if ir >= 3 && proto.opset_import.is_empty() {
        return Some(format!(
            "it imports no operator set (opset_import is empty, required from IR version 3; this \
             file has IR version {ir})"
        ));
    }
    if let Some(o) = proto.opset_import.iter().find(|o| o.version < 1) {
        return Some(format!(
            "operator set {:?} has version {}",
            o.domain, o.version
        ));
    }
    if graph.output.is_empty() {
        return Some("its graph has no outputs".into());
    }
    let mut found = None;
    walk::graphs(graph, &mut |g, depth| {
        if found.is_none() {
            found = graph_problem(g).map(|p| {
                if depth == 0 {
                    p
                } else {
                    format!("in subgraph {:?}: {p}", g.name)
                }
            });
        }
    });
    found
}

fn graph_problem(graph: &GraphProto) -> Option<String> {
    let unnamed = |kind: &str, values: &[crate::proto::ValueInfoProto]| {
        values
            .iter()
            .position(|v| v.name.is_empty())
            .map(|i| format!("graph {kind} #{i} has no name"))
    };
    unnamed("input", &graph.input)
        .or_else(|| unnamed("output", &graph.output))
        .or_else(|| {
            graph.node.iter().enumerate().find_map(|(i, node)| {
                if node.op_type.is_empty() {
                    Some(format!("node #{i} ({:?}) has no op_type", node.name))
                } else if node.attribute.iter().any(|a| a.name.is_empty()) {
                    Some(format!(
                        "node #{i} ({:?}) has an unnamed attribute",
                        node.name
                    ))
                } else {
                    None
                }
            })
        })
        .or_else(|| {
            graph
                .initializer
                .iter()
                .enumerate()
                .find_map(|(i, t)| tensor_problem(t).map(|p| format!("initializer #{i} {p}")))
        })
}

fn tensor_problem(t: &TensorProto) -> Option<String> {
    if t.name.is_empty() {
        Some("has no name".into())
    } else if DataType::try_from(t.data_type).is_err() || t.data_type == DataType::Undefined as i32
    {
        Some(format!(
            "({:?}) has unknown data type {}",
            t.name, t.data_type
        ))
    } else if t.dims.iter().any(|&d| d < 0) {
        Some(format!("({:?}) has negative dims {:?}", t.name, t.dims))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{NodeProto, OperatorSetIdProto, ValueInfoProto};

    fn minimal() -> ModelProto {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    op_type: "Relu".into(),
                    input: vec!["x".into()],
                    output: vec!["y".into()],
                    ..Default::default()
                }],
                input: vec![ValueInfoProto {
                    name: "x".into(),
                    ..Default::default()
                }],
                output: vec![ValueInfoProto {
                    name: "y".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn graph(m: &mut ModelProto) -> &mut GraphProto {
        m.graph.as_mut().expect("a graph")
    }

    fn check(edit: impl FnOnce(&mut ModelProto), expect: Option<&str>) {
        let mut proto = minimal();
        edit(&mut proto);
        let got = problem(&proto);
        match expect {
            None => assert_eq!(got, None),
            Some(needle) => {
                let got = got.expect("a problem");
                assert!(got.contains(needle), "{got:?} should mention {needle:?}");
            }
        }
    }

    #[test]
    fn structural_problems_are_named() {
        check(|_| {}, None);
        check(|m| m.ir_version = 0, Some("ir_version 0"));
        check(|m| m.ir_version = 1000, Some("ir_version 1000"));
        check(|m| m.graph = None, Some("no graph"));
        check(|m| m.opset_import.clear(), Some("opset_import is empty"));
        check(
            |m| {
                m.ir_version = 2;
                m.opset_import.clear();
            },
            None,
        );
        check(|m| m.opset_import[0].version = 0, Some("version 0"));
        check(|m| graph(m).output.clear(), Some("no outputs"));
        check(|m| graph(m).node[0].op_type.clear(), Some("no op_type"));
        let weight = |data_type, dims: &[i64]| TensorProto {
            name: "w".into(),
            data_type,
            dims: dims.to_vec(),
            ..Default::default()
        };
        check(
            |m| graph(m).initializer.push(weight(99, &[])),
            Some("unknown data type 99"),
        );
        check(
            |m| graph(m).initializer.push(weight(1, &[2, -3])),
            Some("negative dims"),
        );
    }
}
