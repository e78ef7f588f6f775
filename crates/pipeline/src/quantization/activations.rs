//! Activation functions as the quantizer sees them: where their input stops mattering (dead
//! zones), the least value they output (floors), and how a bound on their output maps back to
//! their input (inverses).
//!
//! Two things use this:
//!
//! - **Narrower ranges.** A tensor that only an activation reads needs no resolution where the
//!   activation cannot tell values apart: below −3 `HardSwish` is 0, and below
//!   [`SILU_DEAD_ZONE`] SiLU is within [`SILU_DEAD_ZONE_ERROR`] of 0. On YOLOv8n the convolution
//!   outputs reach −175 while SiLU makes everything below −8 look alike, so clipping them there
//!   shrinks the quantization step up to 4× (see docs/benchmarks.md).
//! - **Fewer measured tensors** ([`Derivations`]). The range of a pre-activation tensor follows
//!   from its activation's output range (its upper end through the inverse, its lower end is the
//!   dead zone), and a SiLU's `Sigmoid` output follows from its input. Calibration then measures
//!   only the activation outputs, which the runtime materializes anyway, instead of the
//!   convolution outputs it would otherwise fuse away; and since an activation output has a known
//!   floor, only its maximum is measured ([`produced_by_activation`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_onnx::graph::{GraphIndex, NodeExt, Producer};
use kiln_onnx::proto::{GraphProto, NodeProto};

/// Below this, SiLU (`x * sigmoid(x)`) is within [`SILU_DEAD_ZONE_ERROR`] of 0: the lower end of
/// a SiLU input's range.
pub const SILU_DEAD_ZONE: f32 = -8.0;

/// `|silu(SILU_DEAD_ZONE)|`: the most a value below the dead zone changes the SiLU output when it
/// is clipped there.
pub const SILU_DEAD_ZONE_ERROR: f32 = 0.002_683;

/// The minimum of SiLU, at `x ≈ −1.2785`.
pub const SILU_MIN: f32 = -0.278_464_54;

/// The minimum of `HardSwish`, at `x = −1.5`.
pub const HARD_SWISH_MIN: f32 = -0.375;

/// An activation function applied to one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `x * relu6(x + 3) / 6`.
    HardSwish,
    /// `x * sigmoid(x)`, written as `Mul(x, Sigmoid(x))`.
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `clip(alpha * x + beta, 0, 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
}

impl Activation {
    /// The function itself.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::HardSwish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Activation::Silu => x * sigmoid(x),
            Activation::Relu => x.max(0.0),
            Activation::Sigmoid => sigmoid(x),
            Activation::HardSigmoid { alpha, beta } => (alpha * x + beta).clamp(0.0, 1.0),
        }
    }

    /// The input interval outside which the output does not change (or, for SiLU, changes by at
    /// most [`SILU_DEAD_ZONE_ERROR`]): clipping the input to it keeps the output.
    pub fn dead_zone(self) -> (f32, f32) {
        match self {
            Activation::HardSwish => (-3.0, f32::INFINITY),
            Activation::Silu => (SILU_DEAD_ZONE, f32::INFINITY),
            Activation::Relu => (0.0, f32::INFINITY),
            Activation::Sigmoid => (f32::NEG_INFINITY, f32::INFINITY),
            Activation::HardSigmoid { alpha, beta } if alpha > 0.0 => {
                (-beta / alpha, (1.0 - beta) / alpha)
            }
            Activation::HardSigmoid { .. } => (f32::NEG_INFINITY, f32::INFINITY),
        }
    }

    /// The least value the function outputs.
    pub fn floor(self) -> f32 {
        match self {
            Activation::HardSwish => HARD_SWISH_MIN,
            Activation::Silu => SILU_MIN,
            Activation::Relu | Activation::Sigmoid | Activation::HardSigmoid { .. } => 0.0,
        }
    }

    /// The largest input whose output is at most `y`, for the activations that are increasing
    /// above their minimum (`HardSwish`, SiLU): the upper end of an input range whose output
    /// range ends at `y`. `None` for the others.
    pub fn inverse_upper(self, y: f32) -> Option<f32> {
        if !y.is_finite() {
            return None;
        }
        match self {
            Activation::HardSwish => Some(if y >= 3.0 {
                y
            } else {
                // x (x + 3) / 6 = y on [-1.5, 3].
                let y = y.max(HARD_SWISH_MIN);
                (-3.0 + (9.0 + 24.0 * y).max(0.0).sqrt()) / 2.0
            }),
            Activation::Silu => {
                // Increasing on [-1.2785, inf), and silu(x) <= x there for x >= 0: bisect.
                let y = y.max(SILU_MIN);
                let (mut lo, mut hi) = (-1.278_5f32, y.max(0.0) + 1.0);
                while Activation::Silu.apply(hi) < y {
                    hi *= 2.0;
                }
                for _ in 0..60 {
                    let mid = 0.5 * (lo + hi);
                    if Activation::Silu.apply(mid) < y {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                Some(hi)
            }
            _ => None,
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// An activation that is the only reader of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivationUse {
    /// The function.
    pub activation: Activation,
    /// Its output tensor.
    pub output: String,
    /// For an activation written as `x * gate(x)` (SiLU: `Sigmoid`; `HardSwish`: `HardSigmoid`
    /// with alpha 1/6 and beta 1/2), the gate's output and function.
    pub gate: Option<(String, Activation)>,
}

/// The activation a product `x * gate(x)` computes, for the gate node reading `x`: SiLU for a
/// `Sigmoid`, `HardSwish` for `HardSigmoid(alpha = 1/6, beta = 1/2)`.
fn gated(gate: &NodeProto) -> Option<(Activation, Activation)> {
    if !gate.domain.is_empty() {
        return None;
    }
    match gate.op_type.as_str() {
        "Sigmoid" => Some((Activation::Silu, Activation::Sigmoid)),
        "HardSigmoid" => {
            let alpha = gate.attr_f("alpha").unwrap_or(0.2);
            let beta = gate.attr_f("beta").unwrap_or(0.5);
            let hard_swish = (alpha - 1.0 / 6.0).abs() < 1e-6 && (beta - 0.5).abs() < 1e-6;
            hard_swish.then_some((
                Activation::HardSwish,
                Activation::HardSigmoid { alpha, beta },
            ))
        }
        _ => None,
    }
}

/// The activation reading `tensor`, when it is its only reader: `HardSwish(t)`, `Relu(t)`,
/// `HardSigmoid(t)`, or a gated pair `gate(t)` + `Mul(t, gate(t))` where nothing else reads the
/// gate: SiLU (`Sigmoid`) or `HardSwish` (`HardSigmoid` with alpha 1/6, beta 1/2). `None` for
/// graph outputs and anything else.
pub fn sole_activation(
    graph: &GraphProto,
    index: &GraphIndex,
    tensor: &str,
) -> Option<ActivationUse> {
    if index.is_graph_output(tensor) {
        return None;
    }
    let consumers = index.consumers(tensor);
    let single = |activation: Activation, node: usize| {
        Some(ActivationUse {
            activation,
            output: graph.node[node].output.first()?.clone(),
            gate: None,
        })
    };
    match consumers {
        [c] => {
            let node = &graph.node[c.node];
            if !node.domain.is_empty() {
                return None;
            }
            match node.op_type.as_str() {
                "HardSwish" => single(Activation::HardSwish, c.node),
                "Relu" => single(Activation::Relu, c.node),
                "HardSigmoid" => single(
                    Activation::HardSigmoid {
                        alpha: node.attr_f("alpha").unwrap_or(0.2),
                        beta: node.attr_f("beta").unwrap_or(0.5),
                    },
                    c.node,
                ),
                _ => None,
            }
        }
        [a, b] => {
            let (gate, mul) = match (
                graph.node[a.node].op_type.as_str(),
                graph.node[b.node].op_type.as_str(),
            ) {
                (_, "Mul") => (a.node, b.node),
                ("Mul", _) => (b.node, a.node),
                _ => return None,
            };
            let (gate_node, mul_node) = (&graph.node[gate], &graph.node[mul]);
            let (activation, gate_fn) = gated(gate_node)?;
            if !mul_node.domain.is_empty()
                || gate_node.input.first().map(String::as_str) != Some(tensor)
            {
                return None;
            }
            let g = gate_node.output.first()?;
            let reads = |x: &str| mul_node.input.iter().filter(|i| *i == x).count() == 1;
            let only_mul_reads_gate = matches!(index.consumers(g), [c] if c.node == mul);
            if mul_node.input.len() == 2
                && reads(tensor)
                && reads(g)
                && only_mul_reads_gate
                && !index.is_graph_output(g)
            {
                Some(ActivationUse {
                    activation,
                    output: mul_node.output.first()?.clone(),
                    gate: Some((g.clone(), gate_fn)),
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The activation producing `tensor`, with its input: `HardSwish`, `Relu`, `Sigmoid`,
/// `HardSigmoid` nodes, `Mul(x, Sigmoid(x))` (SiLU) and `Mul(x, HardSigmoid(x; 1/6, 1/2))`
/// (`HardSwish`).
pub fn produced_by_activation(
    graph: &GraphProto,
    index: &GraphIndex,
    tensor: &str,
) -> Option<(Activation, String)> {
    let Some(Producer::Node { node, .. }) = index.producer(tensor) else {
        return None;
    };
    let n = &graph.node[node];
    if !n.domain.is_empty() {
        return None;
    }
    let input = n.input.first()?.clone();
    let activation = match n.op_type.as_str() {
        "HardSwish" => Activation::HardSwish,
        "Relu" => Activation::Relu,
        "Sigmoid" => Activation::Sigmoid,
        "HardSigmoid" => Activation::HardSigmoid {
            alpha: n.attr_f("alpha").unwrap_or(0.2),
            beta: n.attr_f("beta").unwrap_or(0.5),
        },
        "Mul" if n.input.len() == 2 => {
            for (x, g) in [(0, 1), (1, 0)] {
                let Some(Producer::Node { node: gate, .. }) = index.producer(&n.input[g]) else {
                    continue;
                };
                let gate = &graph.node[gate];
                if gate.input.first() == Some(&n.input[x])
                    && let Some((activation, _)) = gated(gate)
                {
                    return Some((activation, n.input[x].clone()));
                }
            }
            return None;
        }
        _ => return None,
    };
    Some((activation, input))
}

/// How deep [`known_floor`] and [`image_batch`] follow a tensor back through the graph.
const MAX_TRACE: usize = 24;

/// Ops whose output values are some of their (first, or for `Concat` any) input's values or
/// convex combinations of them: the output keeps the inputs' floor.
fn keeps_floor(node: &kiln_onnx::proto::NodeProto) -> bool {
    match node.op_type.as_str() {
        "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" | "Split" | "Slice"
        | "Reshape" | "Flatten" | "Transpose" | "Squeeze" | "Unsqueeze" | "Identity" | "Concat" => {
            true
        }
        // Nearest and linear interpolation stay within the inputs; cubic can undershoot.
        "Resize" | "Upsample" => node
            .attr_s("mode")
            .is_none_or(|m| m == "nearest" || m == "linear"),
        _ => false,
    }
}

/// A value every element of `tensor` is known to be at least: an activation's floor, carried
/// through data movement, pooling, nearest/linear resizing, `Concat`, gating by a
/// `Sigmoid`/`HardSigmoid` output and scalar shifts and non-negative scales, and summed over
/// `Add`.
pub fn known_floor(graph: &GraphProto, index: &GraphIndex, tensor: &str) -> Option<f32> {
    floor_at(graph, index, tensor, 0)
}

fn floor_at(graph: &GraphProto, index: &GraphIndex, tensor: &str, depth: usize) -> Option<f32> {
    if depth > MAX_TRACE {
        return None;
    }
    if let Some((activation, _)) = produced_by_activation(graph, index, tensor) {
        return Some(activation.floor());
    }
    let Some(Producer::Node { node, .. }) = index.producer(tensor) else {
        return None;
    };
    let n = &graph.node[node];
    if !n.domain.is_empty() {
        return None;
    }
    if (n.op_type == "Add" || n.op_type == "Mul") && n.input.len() == 2 {
        // A scalar constant operand: shift, or scale by a non-negative factor.
        for (x, c) in [(0, 1), (1, 0)] {
            if let Some(c) = index
                .scalar_f32(graph, &n.input[c])
                .filter(|c| c.is_finite())
            {
                let f = floor_at(graph, index, &n.input[x], depth + 1)?;
                return match n.op_type.as_str() {
                    "Add" => Some(f + c),
                    _ if c >= 0.0 => Some(f * c),
                    _ => None,
                };
            }
        }
    }
    if n.op_type == "Add" && n.input.len() == 2 {
        let a = floor_at(graph, index, &n.input[0], depth + 1)?;
        let b = floor_at(graph, index, &n.input[1], depth + 1)?;
        return Some(a + b);
    }
    // A gate: `x * g` with `g` in [0, 1] (a `Sigmoid` or `HardSigmoid` output) stays above
    // `min(floor(x), 0)`.
    if n.op_type == "Mul" && n.input.len() == 2 {
        for (x, g) in [(0, 1), (1, 0)] {
            let gate = matches!(
                produced_by_activation(graph, index, &n.input[g]),
                Some((Activation::Sigmoid | Activation::HardSigmoid { .. }, _))
            );
            if gate && let Some(f) = floor_at(graph, index, &n.input[x], depth + 1) {
                return Some(f.min(0.0));
            }
        }
        return None;
    }
    if !keeps_floor(n) {
        return None;
    }
    let inputs: &[String] = if n.op_type == "Concat" {
        &n.input
    } else {
        n.input.get(..1)?
    };
    inputs
        .iter()
        .map(|i| floor_at(graph, index, i, depth + 1))
        .try_fold(f32::INFINITY, |m, f| Some(m.min(f?)))
}

/// Whether `tensor` is known to be a rank-4 (image batch) tensor: declared so, or traced back
/// through activations, `Add`, `Concat`, pooling, `Split`, `Slice`, `Resize` and `Transpose` to a
/// 2-D `Conv` (4-D weight).
pub fn image_batch(graph: &GraphProto, index: &GraphIndex, tensor: &str) -> bool {
    rank4_at(graph, index, tensor, 0)
}

fn rank4_at(graph: &GraphProto, index: &GraphIndex, tensor: &str, depth: usize) -> bool {
    if let Some(rank) = index.rank(tensor) {
        return rank == 4;
    }
    if depth > MAX_TRACE {
        return false;
    }
    let Some(Producer::Node { node, .. }) = index.producer(tensor) else {
        return false;
    };
    let n = &graph.node[node];
    if !n.domain.is_empty() {
        return false;
    }
    match n.op_type.as_str() {
        "Conv" => n
            .input
            .get(1)
            .and_then(|w| index.find_weight(graph, w))
            .is_some_and(|w| w.dims().len() == 4),
        "HardSwish" | "Relu" | "Sigmoid" | "HardSigmoid" | "Mul" | "Add" | "Concat" | "MaxPool"
        | "AveragePool" | "Split" | "Slice" | "Resize" | "Upsample" | "Transpose" | "Identity"
        | "Clip" | "LeakyRelu" => n
            .input
            .first()
            .is_some_and(|i| rank4_at(graph, index, i, depth + 1)),
        _ => false,
    }
}

/// How a tensor's range follows from another's.
#[derive(Debug, Clone, PartialEq)]
pub enum Derivation {
    /// The input of `activation`, whose output is `output`: `[dead-zone low, inverse(output hi)]`.
    PreActivation {
        /// The activation reading the tensor.
        activation: Activation,
        /// Its output, which calibration measures.
        output: String,
    },
    /// The gate of a gated activation (the `Sigmoid` of a SiLU, the `HardSigmoid` of a
    /// `HardSwish` product) of `input`: `[gate(lo), gate(hi)]` (gates are non-decreasing).
    GateOf {
        /// The gate's input.
        input: String,
        /// The gate's function.
        gate: Activation,
    },
}

/// Ranges calibration does not measure because they follow from measured ones (module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Derivations {
    /// Derived tensor -> how.
    pub rules: BTreeMap<String, Derivation>,
}

impl Derivations {
    /// The derivations for `tensors` (the tensors whose ranges a plan needs): pre-activation
    /// tensors read only by `HardSwish` or SiLU, and the `Sigmoid` inside each such SiLU.
    pub fn new<'a>(
        graph: &GraphProto,
        index: &GraphIndex,
        tensors: impl IntoIterator<Item = &'a str>,
    ) -> Derivations {
        let tensors: BTreeSet<&str> = tensors.into_iter().collect();
        let mut rules = BTreeMap::new();
        for &t in &tensors {
            let Some(used) = sole_activation(graph, index, t) else {
                continue;
            };
            if !matches!(used.activation, Activation::HardSwish | Activation::Silu) {
                continue;
            }
            rules.insert(
                t.to_owned(),
                Derivation::PreActivation {
                    activation: used.activation,
                    output: used.output.clone(),
                },
            );
            if let Some((g, gate)) = used.gate
                && tensors.contains(g.as_str())
            {
                rules.insert(
                    g,
                    Derivation::GateOf {
                        input: t.to_owned(),
                        gate,
                    },
                );
            }
        }
        // A source must be measured: drop rules whose source is derived itself.
        let derived: BTreeSet<String> = rules.keys().cloned().collect();
        rules.retain(|_, rule| match rule {
            Derivation::PreActivation { output, .. } => !derived.contains(output),
            Derivation::GateOf { .. } => true,
        });
        let kept: BTreeSet<String> = rules.keys().cloned().collect();
        rules.retain(|_, rule| match rule {
            Derivation::GateOf { input, .. } => kept.contains(input),
            Derivation::PreActivation { .. } => true,
        });
        Derivations { rules }
    }

    /// The tensors to measure for `tensors`: those not derived, plus every derivation's source.
    pub fn measured<'a>(&self, tensors: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = tensors
            .into_iter()
            .filter(|t| !self.rules.contains_key(*t))
            .map(str::to_owned)
            .collect();
        for rule in self.rules.values() {
            if let Derivation::PreActivation { output, .. } = rule {
                out.insert(output.clone());
            }
        }
        out
    }

    /// Adds the derived ranges to `ranges` (measured ones are never replaced). Pre-activation
    /// tensors come first, so the `Sigmoid` rules see their inputs.
    pub fn fill(&self, ranges: &mut HashMap<String, (f32, f32)>) {
        for (t, rule) in &self.rules {
            if let Derivation::PreActivation { activation, output } = rule {
                let Some(&(_, hi)) = ranges.get(output) else {
                    continue;
                };
                let Some(hi) = activation.inverse_upper(hi) else {
                    continue;
                };
                let lo = activation.dead_zone().0;
                ranges.entry(t.clone()).or_insert((lo.min(hi), hi));
            }
        }
        for (t, rule) in &self.rules {
            if let Derivation::GateOf { input, gate } = rule
                && let Some(&(lo, hi)) = ranges.get(input)
            {
                ranges
                    .entry(t.clone())
                    .or_insert((gate.apply(lo), gate.apply(hi)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quantization::test_graph::{graph, node};
    use kiln_onnx::graph::NodeBuilder;

    #[test]
    fn inverses_invert_on_the_increasing_part() {
        for act in [Activation::HardSwish, Activation::Silu] {
            for x in [-1.0f32, -0.5, 0.0, 0.3, 1.0, 2.9, 3.0, 7.5, 40.0] {
                let y = act.apply(x);
                let back = act.inverse_upper(y).expect("invertible");
                assert!(
                    (back - x).abs() < 1e-3 * x.abs().max(1.0),
                    "{act:?} {x} -> {y} -> {back}"
                );
            }
            // Below the minimum, the inverse is the argmin (still a valid upper end).
            let at_min = act.inverse_upper(act.floor() - 1.0).expect("clamped");
            assert!((act.apply(at_min) - act.floor()).abs() < 1e-3, "{act:?}");
        }
        assert_eq!(Activation::Relu.inverse_upper(1.0), None);
        assert_eq!(Activation::Silu.inverse_upper(f32::NAN), None);
    }

    #[test]
    fn dead_zones_and_floors_hold() {
        assert!((Activation::Silu.apply(SILU_DEAD_ZONE).abs() - SILU_DEAD_ZONE_ERROR).abs() < 1e-5);
        for x in [-100.0f32, -20.0, -8.0] {
            assert!(Activation::Silu.apply(x).abs() <= SILU_DEAD_ZONE_ERROR + 1e-6);
            assert_eq!(Activation::HardSwish.apply(x), 0.0);
        }
        for act in [Activation::HardSwish, Activation::Silu] {
            let least = (-400..400)
                .map(|i| act.apply(i as f32 / 100.0))
                .fold(f32::INFINITY, f32::min);
            assert!(
                (least - act.floor()).abs() < 1e-3 && least >= act.floor() - 1e-6,
                "{act:?}"
            );
        }
        let hs = Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        };
        assert_eq!(hs.dead_zone(), (-2.5, 2.5));
    }

    #[test]
    fn silu_and_hard_swish_readers_are_recognized_and_derived() {
        // c1 -> SiLU -> a1 ; c2 -> HardSwish -> a2 ; c3 -> Sigmoid (also read elsewhere).
        let g = graph(
            vec![
                node("Conv", &["x", "w"], "c1"),
                node("Sigmoid", &["c1"], "s1"),
                node("Mul", &["c1", "s1"], "a1"),
                node("Conv", &["a1", "w"], "c2"),
                node("HardSwish", &["c2"], "a2"),
                node("Conv", &["a2", "w"], "c3"),
                node("Sigmoid", &["c3"], "s3"),
                node("Mul", &["c3", "s3"], "a3"),
                node("Add", &["s3", "a3"], "y"),
            ],
            &["y"],
        );
        let index = GraphIndex::new(&g).expect("index");
        let used = sole_activation(&g, &index, "c1").expect("silu");
        assert_eq!(used.activation, Activation::Silu);
        assert_eq!(
            (
                used.output.as_str(),
                used.gate.as_ref().map(|(g, _)| g.as_str())
            ),
            ("a1", Some("s1"))
        );
        assert_eq!(
            sole_activation(&g, &index, "c2").map(|u| u.activation),
            Some(Activation::HardSwish)
        );
        // s3 is read by the Add too: not a plain SiLU.
        assert_eq!(sole_activation(&g, &index, "c3"), None);
        assert_eq!(
            produced_by_activation(&g, &index, "a1"),
            Some((Activation::Silu, "c1".to_owned()))
        );
        assert_eq!(
            produced_by_activation(&g, &index, "a2"),
            Some((Activation::HardSwish, "c2".to_owned()))
        );
        assert_eq!(produced_by_activation(&g, &index, "y"), None);

        let tensors = ["c1", "s1", "a1", "c2", "c3", "s3", "a3"];
        let d = Derivations::new(&g, &index, tensors);
        assert_eq!(d.rules.len(), 3, "{d:?}");
        let measured = d.measured(tensors);
        let expect: BTreeSet<String> = ["a1", "a2", "c3", "s3", "a3"].map(String::from).into();
        assert_eq!(measured, expect);

        let mut ranges: HashMap<String, (f32, f32)> = [
            ("a1".to_owned(), (-0.2, 5.0)),
            ("a2".to_owned(), (-0.3, 2.0)),
        ]
        .into();
        d.fill(&mut ranges);
        let (lo, hi) = ranges["c1"];
        assert_eq!(lo, SILU_DEAD_ZONE);
        assert!((Activation::Silu.apply(hi) - 5.0).abs() < 1e-4);
        let (lo, hi) = ranges["c2"];
        assert_eq!(lo, -3.0);
        assert!((Activation::HardSwish.apply(hi) - 2.0).abs() < 1e-4);
        let (lo, hi) = ranges["s1"];
        assert!(
            (lo - sigmoid(SILU_DEAD_ZONE)).abs() < 1e-6
                && (hi - sigmoid(ranges["c1"].1)).abs() < 1e-6
        );
    }

    #[test]
    fn floors_and_ranks_follow_sums_pooling_and_concatenations() {
        let mut g = graph(
            vec![
                node("Conv", &["x", "w"], "c1"),
                node("Sigmoid", &["c1"], "s1"),
                node("Mul", &["c1", "s1"], "a1"),
                node("Conv", &["a1", "w"], "c2"),
                node("HardSwish", &["c2"], "a2"),
                node("Add", &["a1", "a2"], "sum"),
                node("MaxPool", &["sum"], "pooled"),
                node("Concat", &["pooled", "a1"], "cat"),
                node("Concat", &["pooled", "c2"], "mixed"),
                NodeBuilder::new("Resize")
                    .name("cubic")
                    .inputs(["a1", "", "scales"])
                    .output("cubic")
                    .attr_s("mode", "cubic")
                    .build(),
                node("Flatten", &["pooled"], "flat"),
                node("HardSigmoid", &["c2"], "gate"),
                node("Mul", &["a2", "gate"], "gated"),
                node("Mul", &["a2", "a1"], "product"),
                node("Mul", &["a2", "two"], "scaled"),
                node("Add", &["scaled", "two"], "shifted"),
                node("Mul", &["minus", "a2"], "flipped"),
            ],
            &[
                "cat", "mixed", "cubic", "flat", "gated", "product", "shifted", "flipped",
            ],
        );
        g.initializer
            .push(kiln_onnx::graph::tensor_from_values("w", &[1, 1, 1, 1], &[1.0f32]).expect("w"));
        g.initializer
            .push(kiln_onnx::graph::scalar_tensor("two", 2.0f32));
        g.initializer
            .push(kiln_onnx::graph::scalar_tensor("minus", -1.0f32));
        let index = GraphIndex::new(&g).expect("index");
        let floor = |t: &str| known_floor(&g, &index, t);
        assert_eq!(floor("scaled"), Some(2.0 * HARD_SWISH_MIN));
        assert_eq!(floor("shifted"), Some(2.0 * HARD_SWISH_MIN + 2.0));
        assert_eq!(floor("flipped"), None, "a negative scale flips the bound");
        assert_eq!(floor("a1"), Some(SILU_MIN));
        assert_eq!(floor("sum"), Some(SILU_MIN + HARD_SWISH_MIN));
        assert_eq!(floor("pooled"), floor("sum"));
        assert_eq!(floor("cat"), floor("sum"));
        assert_eq!(floor("flat"), floor("sum"));
        assert_eq!(floor("mixed"), None, "a raw conv output has no floor");
        assert_eq!(floor("cubic"), None, "cubic resizing can undershoot");
        assert_eq!(floor("c1"), None);
        assert_eq!(floor("gated"), Some(HARD_SWISH_MIN));
        assert_eq!(
            floor("product"),
            None,
            "a product of two signed tensors has no floor"
        );
        // The gate of `x * HardSigmoid(x; 1/6, 1/2)` is a HardSwish: floor -0.375 (here a2 is
        // gated by a HardSigmoid of c2, not of a2, so it is only a gated product).
        assert_eq!(
            produced_by_activation(&g, &index, "gated").map(|(a, _)| a),
            None
        );
        for t in ["c1", "a1", "sum", "pooled", "cat"] {
            assert!(image_batch(&g, &index, t), "{t}");
        }
        assert!(!image_batch(&g, &index, "flat"));
    }

    #[test]
    fn hard_swish_written_as_a_gated_product_is_a_hard_swish() {
        use crate::quantization::test_graph::hard_sigmoid as hsig;
        let g = graph(
            vec![
                node("Conv", &["x", "w"], "c1"),
                hsig("c1", "g1", 1.0 / 6.0),
                node("Mul", &["g1", "c1"], "a1"),
                node("Conv", &["a1", "w"], "c2"),
                hsig("c2", "g2", 0.2),
                node("Mul", &["c2", "g2"], "a2"),
            ],
            &["a2"],
        );
        let index = GraphIndex::new(&g).expect("index");
        let used = sole_activation(&g, &index, "c1").expect("hard swish");
        assert_eq!(used.activation, Activation::HardSwish);
        assert_eq!(used.output, "a1");
        assert_eq!(used.gate.as_ref().map(|(t, _)| t.as_str()), Some("g1"));
        assert_eq!(
            produced_by_activation(&g, &index, "a1"),
            Some((Activation::HardSwish, "c1".to_owned()))
        );
        // alpha 0.2 is a plain HardSigmoid gate, not a HardSwish.
        assert_eq!(sole_activation(&g, &index, "c2"), None);
        assert_eq!(produced_by_activation(&g, &index, "a2"), None);

        let tensors = ["c1", "g1", "a1"];
        let d = Derivations::new(&g, &index, tensors);
        let mut ranges: HashMap<String, (f32, f32)> = [("a1".to_owned(), (-0.3, 4.0))].into();
        d.fill(&mut ranges);
        assert_eq!(ranges["c1"], (-3.0, 4.0));
        assert_eq!(ranges["g1"], (0.0, 1.0));
    }
}
