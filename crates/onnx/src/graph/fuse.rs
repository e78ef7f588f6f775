//! Fusing decomposed activations back into single operators: exporters (Paddle's among them)
//! write `HardSigmoid` as `Clip(x + 3, 0, 6) / 6` and friends, which a quantizer would otherwise
//! have to leave in float.
//!
//! [`fuse_hard_sigmoids`] recognizes, for scalar constants and with every intermediate read only by
//! the next step:
//!
//! - `Div(Clip(Add(x, a), 0, d), d)` → `HardSigmoid(x, alpha = 1/d, beta = a/d)`;
//! - `Mul(Clip(Add(x, a), 0, h), c)` with `c * h = 1` → `HardSigmoid(x, alpha = c, beta = a*c)`;
//! - `Clip(Add(Mul(x, s), b), 0, 1)` → `HardSigmoid(x, alpha = s, beta = b)`.
//!
//! `HardSwish(x)` written as `x * HardSigmoid(x)` then reads as such a product, which quantizers
//! handle as one activation.

use std::collections::HashSet;

use super::{GraphIndex, NodeBuilder, NodeExt, Producer, tensor_to_f32};
use crate::proto::{GraphProto, NodeProto};

/// A scalar float constant (initializer or `Constant` output), if `name` is one.
fn scalar(graph: &GraphProto, index: &GraphIndex, name: &str) -> Option<f32> {
    let weight = index.find_weight(graph, name)?;
    match tensor_to_f32(&weight.tensor).ok()?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// The node producing `tensor` when it is a default-domain `op` node whose output only `reader`
/// reads (and is no graph output).
fn single_use_producer<'g>(
    graph: &'g GraphProto,
    index: &GraphIndex,
    tensor: &str,
    op: &str,
) -> Option<(usize, &'g NodeProto)> {
    let Some(Producer::Node { node, .. }) = index.producer(tensor) else {
        return None;
    };
    let n = &graph.node[node];
    let single = index.consumers(tensor).len() == 1 && !index.is_graph_output(tensor);
    (n.is_op(op) && single).then_some((node, n))
}

/// `Add(x, a)` with a scalar `a`: `(x, a)`.
fn add_scalar(graph: &GraphProto, index: &GraphIndex, node: &NodeProto) -> Option<(String, f32)> {
    let [l, r] = node.input.as_slice() else {
        return None;
    };
    match (scalar(graph, index, l), scalar(graph, index, r)) {
        (None, Some(a)) => Some((l.clone(), a)),
        (Some(a), None) => Some((r.clone(), a)),
        _ => None,
    }
}

/// `Clip(t, lo, hi)` bounds (opset 11+ inputs, or the older attributes).
fn clip_bounds(graph: &GraphProto, index: &GraphIndex, node: &NodeProto) -> Option<(f32, f32)> {
    let bound = |slot: usize, attr: &str, default: f32| match node.input.get(slot) {
        Some(name) if !name.is_empty() => scalar(graph, index, name),
        _ => Some(node.attr_f(attr).unwrap_or(default)),
    };
    Some((
        bound(1, "min", f32::NEG_INFINITY)?,
        bound(2, "max", f32::INFINITY)?,
    ))
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// One match: the nodes it replaces, the input and the `HardSigmoid` parameters.
struct Match {
    nodes: Vec<usize>,
    input: String,
    alpha: f32,
    beta: f32,
}

/// `Clip(Add(x, a), 0, h)` feeding `tensor`: `(clip node, add node, x, a, h)`.
fn shifted_clip(
    graph: &GraphProto,
    index: &GraphIndex,
    tensor: &str,
) -> Option<(usize, usize, String, f32, f32)> {
    let (clip, clip_node) = single_use_producer(graph, index, tensor, "Clip")?;
    let (lo, hi) = clip_bounds(graph, index, clip_node)?;
    if lo != 0.0 || !(hi.is_finite() && hi > 0.0) {
        return None;
    }
    let (add, add_node) = single_use_producer(graph, index, clip_node.input.first()?, "Add")?;
    let (x, a) = add_scalar(graph, index, add_node)?;
    Some((clip, add, x, a, hi))
}

fn match_at(graph: &GraphProto, index: &GraphIndex, at: usize) -> Option<Match> {
    let node = &graph.node[at];
    if !node.domain.is_empty() {
        return None;
    }
    match node.op_type.as_str() {
        // Clip(Add(x, a), 0, d) / d
        "Div" => {
            let [num, den] = node.input.as_slice() else {
                return None;
            };
            let d = scalar(graph, index, den)?;
            let (clip, add, x, a, hi) = shifted_clip(graph, index, num)?;
            close(hi, d).then(|| Match {
                nodes: vec![add, clip, at],
                input: x,
                alpha: 1.0 / d,
                beta: a / d,
            })
        }
        // Clip(Add(x, a), 0, h) * c with c * h = 1
        "Mul" => {
            let [l, r] = node.input.as_slice() else {
                return None;
            };
            let (t, c) = match (scalar(graph, index, l), scalar(graph, index, r)) {
                (None, Some(c)) => (l, c),
                (Some(c), None) => (r, c),
                _ => return None,
            };
            let (clip, add, x, a, hi) = shifted_clip(graph, index, t)?;
            close(c * hi, 1.0).then(|| Match {
                nodes: vec![add, clip, at],
                input: x,
                alpha: c,
                beta: a * c,
            })
        }
        // Clip(Add(Mul(x, s), b), 0, 1)
        "Clip" => {
            let (lo, hi) = clip_bounds(graph, index, node)?;
            if lo != 0.0 || hi != 1.0 {
                return None;
            }
            let (add, add_node) = single_use_producer(graph, index, node.input.first()?, "Add")?;
            let (scaled, b) = add_scalar(graph, index, add_node)?;
            let (mul, mul_node) = single_use_producer(graph, index, &scaled, "Mul")?;
            let [l, r] = mul_node.input.as_slice() else {
                return None;
            };
            let (x, s) = match (scalar(graph, index, l), scalar(graph, index, r)) {
                (None, Some(s)) => (l.clone(), s),
                (Some(s), None) => (r.clone(), s),
                _ => return None,
            };
            Some(Match {
                nodes: vec![mul, add, at],
                input: x,
                alpha: s,
                beta: b,
            })
        }
        _ => None,
    }
}

/// Replaces decomposed `HardSigmoid`s (module docs) by `HardSigmoid` nodes, keeping the output
/// names. Returns how many were fused. The graph stays topologically sorted if it was.
pub fn fuse_hard_sigmoids(graph: &mut GraphProto) -> Result<usize, super::GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut matches = Vec::new();
    let mut taken: HashSet<usize> = HashSet::new();
    for at in 0..graph.node.len() {
        if let Some(m) = match_at(graph, &index, at)
            && m.nodes.iter().all(|n| !taken.contains(n))
            && m.alpha.is_finite()
            && m.beta.is_finite()
            && m.alpha > 0.0
        {
            taken.extend(m.nodes.iter().copied());
            matches.push(m);
        }
    }
    let count = matches.len();
    // The last node of each match becomes the HardSigmoid; the others go.
    let mut replace: Vec<(usize, NodeProto)> = Vec::new();
    let mut remove: HashSet<usize> = HashSet::new();
    for m in matches {
        let last = *m.nodes.last().unwrap_or(&0);
        let old = &graph.node[last];
        let output = old.output.first().cloned().unwrap_or_default();
        let name = if old.name.is_empty() {
            format!("{output}_HardSigmoid")
        } else {
            old.name.clone()
        };
        let fused = NodeBuilder::new("HardSigmoid")
            .name(name)
            .input(m.input)
            .output(output)
            .attr_f("alpha", m.alpha)
            .attr_f("beta", m.beta)
            .build();
        replace.push((last, fused));
        remove.extend(m.nodes[..m.nodes.len() - 1].iter().copied());
    }
    for (at, node) in replace {
        graph.node[at] = node;
    }
    let mut i = 0;
    graph.node.retain(|_| {
        let keep = !remove.contains(&i);
        i += 1;
        keep
    });
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{scalar_tensor, tensor_from_values};
    use crate::proto::ValueInfoProto;

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeBuilder::new(op)
            .name(output)
            .inputs(inputs.iter().copied())
            .output(output)
            .build()
    }

    fn graph(nodes: Vec<NodeProto>, outputs: &[&str]) -> GraphProto {
        let mut g = GraphProto {
            node: nodes,
            output: outputs
                .iter()
                .map(|o| ValueInfoProto {
                    name: (*o).to_owned(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        for (name, v) in [
            ("three", 3.0f32),
            ("zero", 0.0),
            ("six", 6.0),
            ("one", 1.0),
            ("sixth", 1.0 / 6.0),
            ("half", 0.5),
            ("fifth", 0.2),
        ] {
            g.initializer.push(scalar_tensor(name, v));
        }
        g.initializer
            .push(tensor_from_values("vec", &[2], &[3.0f32, 3.0]).expect("vec"));
        g
    }

    fn hard_sigmoids(g: &GraphProto) -> Vec<(String, String, f32, f32)> {
        g.node
            .iter()
            .filter(|n| n.op_type == "HardSigmoid")
            .map(|n| {
                (
                    n.input[0].clone(),
                    n.output[0].clone(),
                    n.attr_f("alpha").unwrap_or(0.0),
                    n.attr_f("beta").unwrap_or(0.0),
                )
            })
            .collect()
    }

    #[test]
    fn paddle_style_hard_swish_and_sigmoids_fuse() {
        let mut g = graph(
            vec![
                // x * (Clip(x + 3, 0, 6) / 6): HardSwish
                node("Add", &["x", "three"], "a1"),
                node("Clip", &["a1", "zero", "six"], "c1"),
                node("Div", &["c1", "six"], "h1"),
                node("Mul", &["x", "h1"], "y1"),
                // Clip(3 + y1, 0, 6) * (1/6)
                node("Add", &["three", "y1"], "a2"),
                node("Clip", &["a2", "zero", "six"], "c2"),
                node("Mul", &["c2", "sixth"], "h2"),
                // Clip(0.2 * h2 + 0.5, 0, 1)
                node("Mul", &["h2", "fifth"], "m3"),
                node("Add", &["m3", "half"], "a3"),
                node("Clip", &["a3", "zero", "one"], "h3"),
            ],
            &["y1", "h3"],
        );
        assert_eq!(fuse_hard_sigmoids(&mut g).expect("fuse"), 3);
        let sixth = 1.0f32 / 6.0;
        let got = hard_sigmoids(&g);
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("x", "h1"));
        assert!((got[0].2 - sixth).abs() < 1e-7 && (got[0].3 - 0.5).abs() < 1e-7);
        assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("y1", "h2"));
        assert!((got[1].2 - sixth).abs() < 1e-7 && (got[1].3 - 0.5).abs() < 1e-6);
        assert_eq!((got[2].0.as_str(), got[2].1.as_str()), ("h2", "h3"));
        assert!((got[2].2 - 0.2).abs() < 1e-7 && (got[2].3 - 0.5).abs() < 1e-7);
        assert_eq!(
            g.node.len(),
            4,
            "3 HardSigmoids and the Mul of the HardSwish"
        );
        assert!(
            g.node
                .iter()
                .any(|n| n.op_type == "Mul" && n.output[0] == "y1")
        );
    }

    #[test]
    fn lookalikes_stay() {
        let mut g = graph(
            vec![
                // The shifted value is read elsewhere too.
                node("Add", &["x", "three"], "a1"),
                node("Clip", &["a1", "zero", "six"], "c1"),
                node("Div", &["c1", "six"], "h1"),
                node("Add", &["a1", "h1"], "y1"),
                // Divides by something other than the clip's top.
                node("Add", &["x", "three"], "a2"),
                node("Clip", &["a2", "zero", "six"], "c2"),
                node("Div", &["c2", "three"], "y2"),
                // A non-scalar shift.
                node("Add", &["x", "vec"], "a3"),
                node("Clip", &["a3", "zero", "six"], "c3"),
                node("Div", &["c3", "six"], "y3"),
            ],
            &["y1", "y2", "y3"],
        );
        let before = g.clone();
        assert_eq!(fuse_hard_sigmoids(&mut g).expect("fuse"), 0);
        assert_eq!(g, before);
    }
}
