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
//! [`scalar_affine_to_batch_norm`] turns a learned scalar scale and shift after a convolution
//! (`Add(Mul(Conv(x), s), t)`, as MobileOne-style blocks export) into an inference
//! `BatchNormalization`, so [`fold_batch_norm`](super::fold_batch_norm) folds it into the weights.
//!
//! `HardSwish(x)` written as `x * HardSigmoid(x)` then reads as such a product, which quantizers
//! handle as one activation. [`fuse_hard_swishes`] brings the other common spelling,
//! `Mul(x, Clip(Add(x, a), 0, d)) / d` (or `* (1/d)`), to that form.

use std::collections::HashSet;

use super::{GraphIndex, NameGen, NodeBuilder, NodeExt, Producer};
use crate::proto::{GraphProto, NodeProto};

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

/// A binary node with one scalar constant operand: `(the other operand, the scalar)`.
fn scalar_operand(
    graph: &GraphProto,
    index: &GraphIndex,
    node: &NodeProto,
) -> Option<(String, f32)> {
    let [l, r] = node.input.as_slice() else {
        return None;
    };
    match (index.scalar_f32(graph, l), index.scalar_f32(graph, r)) {
        (None, Some(a)) => Some((l.clone(), a)),
        (Some(a), None) => Some((r.clone(), a)),
        _ => None,
    }
}

/// `Clip(t, lo, hi)` bounds (opset 11+ inputs, or the older attributes).
fn clip_bounds(graph: &GraphProto, index: &GraphIndex, node: &NodeProto) -> Option<(f32, f32)> {
    let bound = |slot: usize, attr: &str, default: f32| match node.input.get(slot) {
        Some(name) if !name.is_empty() => index.scalar_f32(graph, name),
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

/// Removes the nodes at `positions`, keeping the order of the others.
fn remove_positions(graph: &mut GraphProto, positions: &HashSet<usize>) {
    let mut i = 0;
    graph.node.retain(|_| {
        let keep = !positions.contains(&i);
        i += 1;
        keep
    });
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
    let (x, a) = scalar_operand(graph, index, add_node)?;
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
            let d = index.scalar_f32(graph, den)?;
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
            let (t, c) = scalar_operand(graph, index, node)?;
            let (clip, add, x, a, hi) = shifted_clip(graph, index, &t)?;
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
            let (scaled, b) = scalar_operand(graph, index, add_node)?;
            let (mul, mul_node) = single_use_producer(graph, index, &scaled, "Mul")?;
            let (x, s) = scalar_operand(graph, index, mul_node)?;
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
    remove_positions(graph, &remove);
    Ok(count)
}

/// Rewrites `Mul(x, Clip(Add(x, a), 0, d)) / d` and `Mul(x, Clip(Add(x, a), 0, d)) * (1/d)` (either
/// operand order, scalar constants, every intermediate read only by the next step) as
/// `Mul(x, HardSigmoid(x, alpha = 1/d, beta = a/d))`, keeping the output name. Returns how many
/// were rewritten. The graph stays topologically sorted if it was.
pub fn fuse_hard_swishes(graph: &mut GraphProto) -> Result<usize, super::GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut names = NameGen::new(graph);
    // (add, clip, mul, last, x, alpha, beta)
    let mut found: Vec<(usize, usize, usize, usize, String, f32, f32)> = Vec::new();
    let mut taken: HashSet<usize> = HashSet::new();
    for (at, node) in graph.node.iter().enumerate() {
        if !node.domain.is_empty() || node.input.len() != 2 {
            continue;
        }
        let divisor = match node.op_type.as_str() {
            "Div" => index
                .scalar_f32(graph, &node.input[1])
                .map(|d| (&node.input[0], d)),
            "Mul" => scalar_operand(graph, &index, node)
                .filter(|(_, c)| *c != 0.0)
                .and_then(|(t, c)| {
                    let at = node.input.iter().position(|i| *i == t)?;
                    Some((&node.input[at], 1.0 / c))
                }),
            _ => None,
        };
        let Some((product, d)) = divisor else {
            continue;
        };
        let Some((mul, mul_node)) = single_use_producer(graph, &index, product, "Mul") else {
            continue;
        };
        let [p, q] = mul_node.input.as_slice() else {
            continue;
        };
        let hit = [(p, q), (q, p)].into_iter().find_map(|(x, t)| {
            let (clip, add, shifted, a, hi) = shifted_clip(graph, &index, t)?;
            (shifted == *x && close(hi, d)).then(|| (clip, add, x.clone(), a))
        });
        let Some((clip, add, x, a)) = hit else {
            continue;
        };
        let nodes = [add, clip, mul, at];
        if nodes.iter().any(|n| taken.contains(n)) || !(d.is_finite() && d > 0.0) {
            continue;
        }
        taken.extend(nodes);
        found.push((add, clip, mul, at, x, 1.0 / d, a / d));
    }
    let count = found.len();
    let mut remove: HashSet<usize> = HashSet::new();
    for (add, clip, mul, last, x, alpha, beta) in found {
        let output = graph.node[last].output.first().cloned().unwrap_or_default();
        let name = graph.node[last].name.clone();
        let gate = names.fresh(&format!("{output}_hard_sigmoid"));
        graph.node[add] = NodeBuilder::new("HardSigmoid")
            .name(gate.clone())
            .input(x.clone())
            .output(gate.clone())
            .attr_f("alpha", alpha)
            .attr_f("beta", beta)
            .build();
        graph.node[last] = NodeBuilder::new("Mul")
            .name(if name.is_empty() {
                format!("{output}_Mul")
            } else {
                name
            })
            .inputs([x.as_str(), gate.as_str()])
            .output(output)
            .build();
        remove.extend([clip, mul]);
    }
    remove_positions(graph, &remove);
    Ok(count)
}

/// Replaces `Mul(Conv(x), s)` and `Add(Mul(Conv(x), s), t)` with scalar constants `s`, `t` (either
/// operand order; the convolution's output and the product read only by the next step) by
/// `BatchNormalization(Conv(x), gamma = s, beta = t, mean = 0, var = 1, epsilon = 0)` under the
/// last node's output name, for [`fold_batch_norm`](super::fold_batch_norm). Returns how many.
/// Only 2-D and higher `Conv` nodes whose weight is a constant with a known output-channel count
/// qualify.
pub fn scalar_affine_to_batch_norm(graph: &mut GraphProto) -> Result<usize, super::GraphError> {
    let index = GraphIndex::new(graph)?;
    let mut names = NameGen::new(graph);
    // `node` reads `tensor` and a scalar constant: the scalar.
    let scalar_with = |node: &NodeProto, tensor: &str| -> Option<f32> {
        scalar_operand(graph, &index, node).and_then(|(other, c)| (other == tensor).then_some(c))
    };
    // (mul, add, conv output, channels, s, t)
    let mut found: Vec<(usize, Option<usize>, String, usize, f32, f32)> = Vec::new();
    for conv in graph.node.iter().filter(|n| n.is_op("Conv")) {
        let Some(y) = conv.output.first() else {
            continue;
        };
        let channels = conv
            .input
            .get(1)
            .and_then(|w| index.find_weight(graph, w))
            .filter(|w| w.dims().len() >= 3)
            .and_then(|w| usize::try_from(*w.dims().first()?).ok())
            .filter(|&c| c > 0);
        let Some(channels) = channels else {
            continue;
        };
        let [reader] = index.consumers(y) else {
            continue;
        };
        if index.is_graph_output(y) || !index.capturing_nodes(y).is_empty() {
            continue;
        }
        let mul_node = &graph.node[reader.node];
        if !mul_node.is_op("Mul") {
            continue;
        }
        let Some(s) = scalar_with(mul_node, y) else {
            continue;
        };
        let Some(m) = mul_node.output.first() else {
            continue;
        };
        let add = match index.consumers(m) {
            [next] if !index.is_graph_output(m) && graph.node[next.node].is_op("Add") => {
                scalar_with(&graph.node[next.node], m).map(|t| (next.node, t))
            }
            _ => None,
        };
        let (add_at, t) = match add {
            Some((a, t)) => (Some(a), t),
            None => (None, 0.0),
        };
        if s.is_finite() && t.is_finite() {
            found.push((reader.node, add_at, y.clone(), channels, s, t));
        }
    }
    let count = found.len();
    let mut remove: HashSet<usize> = HashSet::new();
    for (mul, add, y, channels, s, t) in found {
        let last = add.unwrap_or(mul);
        let output = graph.node[last].output.first().cloned().unwrap_or_default();
        let c = i64::try_from(channels).unwrap_or(i64::MAX);
        let mut params = Vec::new();
        for (what, value) in [("scale", s), ("shift", t), ("mean", 0.0), ("var", 1.0)] {
            let name = names.fresh(&format!("{output}_affine_{what}"));
            graph.initializer.push(super::tensor_from_values(
                &name,
                &[c],
                &vec![value; channels],
            )?);
            params.push(name);
        }
        let mut inputs = vec![y];
        inputs.extend(params);
        graph.node[mul] = NodeBuilder::new("BatchNormalization")
            .name(names.fresh(&format!("{output}_affine")))
            .inputs(inputs.iter().map(String::as_str))
            .output(output)
            .attr_f("epsilon", 0.0)
            .build();
        if let Some(a) = add {
            remove.insert(a);
        }
    }
    remove_positions(graph, &remove);
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

    #[test]
    fn hard_swish_divided_after_the_product_fuses() {
        let mut g = graph(
            vec![
                node("Add", &["x", "three"], "a1"),
                node("Clip", &["a1", "zero", "six"], "c1"),
                node("Mul", &["x", "c1"], "m1"),
                node("Div", &["m1", "six"], "y1"),
                node("Add", &["three", "y1"], "a2"),
                node("Clip", &["a2", "zero", "six"], "c2"),
                node("Mul", &["c2", "y1"], "m2"),
                node("Mul", &["sixth", "m2"], "y2"),
                // The product is read twice: not a HardSwish to rewrite.
                node("Add", &["y2", "three"], "a3"),
                node("Clip", &["a3", "zero", "six"], "c3"),
                node("Mul", &["y2", "c3"], "m3"),
                node("Div", &["m3", "six"], "y3"),
                node("Add", &["m3", "y3"], "y4"),
            ],
            &["y4"],
        );
        assert_eq!(fuse_hard_swishes(&mut g).expect("fuse"), 2);
        let sixth = 1.0f32 / 6.0;
        let got = hard_sigmoids(&g);
        assert_eq!(got.len(), 2);
        for ((input, _, alpha, beta), x) in got.iter().zip(["x", "y1"]) {
            assert_eq!(input, x);
            assert!((alpha - sixth).abs() < 1e-6 && (beta - 0.5).abs() < 1e-6);
        }
        let y1 = g.node.iter().find(|n| n.output[0] == "y1").expect("y1");
        assert_eq!(y1.op_type, "Mul");
        assert_eq!(y1.input[0], "x");
        assert_eq!(y1.input[1], got[0].1);
        assert!(
            g.node.iter().any(|n| n.output[0] == "m3"),
            "the shared product stays"
        );
        // Still sorted: every input is a graph input, an initializer or produced earlier.
        let mut seen: HashSet<&str> = ["x"].into();
        seen.extend(g.initializer.iter().map(|t| t.name.as_str()));
        for n in &g.node {
            assert!(n.input.iter().all(|i| seen.contains(i.as_str())), "{n:?}");
            seen.extend(n.output.iter().map(String::as_str));
        }
    }

    #[test]
    fn scalar_scale_and_shift_after_a_conv_become_a_batch_norm_that_folds() {
        let mut g = graph(
            vec![
                node("Conv", &["x", "w"], "c1"),
                node("Mul", &["six", "c1"], "m1"),
                node("Add", &["m1", "three"], "y1"),
                node("Conv", &["y1", "w"], "c2"),
                node("Mul", &["c2", "half"], "y2"),
                // The conv output is read twice: left alone.
                node("Conv", &["y2", "w"], "c3"),
                node("Mul", &["c3", "half"], "m3"),
                node("Add", &["m3", "c3"], "y3"),
            ],
            &["y3"],
        );
        g.initializer
            .push(tensor_from_values("w", &[2, 2, 1, 1], &[1.0f32, 2.0, 3.0, 4.0]).expect("w"));
        assert_eq!(scalar_affine_to_batch_norm(&mut g).expect("affine"), 2);
        let bns: Vec<&NodeProto> = g
            .node
            .iter()
            .filter(|n| n.op_type == "BatchNormalization")
            .collect();
        assert_eq!(bns.len(), 2);
        assert_eq!(
            (bns[0].input[0].as_str(), bns[0].output[0].as_str()),
            ("c1", "y1")
        );
        assert_eq!(
            (bns[1].input[0].as_str(), bns[1].output[0].as_str()),
            ("c2", "y2")
        );
        fn values(g: &GraphProto, name: &str) -> Vec<f32> {
            let t = g
                .initializer
                .iter()
                .find(|t| t.name == name)
                .expect("param");
            crate::graph::tensor_to_f32(t).expect("values")
        }
        let bns: Vec<NodeProto> = bns.into_iter().cloned().collect();
        assert_eq!(values(&g, &bns[0].input[1]), [6.0, 6.0]);
        assert_eq!(values(&g, &bns[0].input[2]), [3.0, 3.0]);
        assert_eq!(values(&g, &bns[1].input[2]), [0.0, 0.0]);
        assert_eq!(values(&g, &bns[1].input[4]), [1.0, 1.0]);
        assert!(g.node.iter().all(|n| n.output[0] != "m1"));

        let report = crate::graph::fold_batch_norm(&mut g, None).expect("fold");
        assert_eq!(report.folded.len(), 2);
        let conv = g
            .node
            .iter()
            .find(|n| n.output[0] == "y1")
            .expect("folded conv");
        assert_eq!(values(&g, &conv.input[1]), [6.0, 12.0, 18.0, 24.0]);
        assert_eq!(values(&g, &conv.input[2]), [3.0, 3.0]);
    }
}
