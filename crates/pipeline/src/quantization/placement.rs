//! Where Q/DQ goes: a graph-aware placement that keeps whole chains in the integer domain where
//! ONNX Runtime has integer kernels, shares scales across data-movement ops, and leaves float what
//! would be slower or wrong in INT8.
//!
//! The rules, on a topologically sorted graph:
//!
//! 1. **Candidates (forward).** A node is a candidate when its operator has an integer path in
//!    ONNX Runtime's CPU provider ([`OpClass`]), the user did not ignore it, a `Conv`/`Gemm` has a
//!    constant weight, and every activation input comes from a graph input or a candidate (or an
//!    ignored node, whose float output may be quantized again for its readers). Everything after
//!    an unsupported operator therefore stays float: that is the post-processing tail.
//! 2. **Mixed-range concatenations (optional).** With
//!    [`PlacementOptions::max_concat_range_ratio`], a `Concat` whose inputs' ranges differ by more
//!    than that factor stays float. Off by default: rule 3 already keeps YOLO's head (box
//!    coordinates in pixels joined with class scores in `[0, 1]`) in float.
//! 3. **Usefulness (backward).** A non-compute candidate stays quantized only if it feeds a
//!    quantized node: quantizing the float tail after the last matrix op buys nothing.
//! 4. **Tensors.** Every activation input of a quantized node gets Q/DQ, and so does every output
//!    read by a quantized node, so ONNX Runtime fuses `DQ -> op -> Q` into one integer kernel.
//!    A `Conv`'s output that nothing quantized reads is not quantized and the `Conv` keeps float
//!    weights (an unfused `DQ -> Conv` would only be slower).
//! 5. **Shared scales.** Data-movement ops (`MaxPool`, `Reshape`, `Resize`, `Split`, ...) use their
//!    input's scale for their output, and a `Concat` uses one scale for all inputs and its output
//!    (what `QLinearConcat` needs): such tensors form one [`Plan::groups`] entry.
//! 6. **ReLU fusion.** A `Relu`/`Clip` right after a quantized compute op that nothing else reads
//!    does not get Q/DQ on its input: ONNX Runtime folds it into the producer's requantization.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_onnx::graph::{Consumer, GraphIndex, NodeExt, Producer};
use kiln_onnx::proto::GraphProto;

use crate::config::IgnoredScope;

/// How an operator takes part in quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpClass {
    /// Matrix ops with weights: `Conv`, `Gemm`, `MatMul`.
    Compute,
    /// Element-wise `Add`, `Mul` (`QLinearAdd`, `QLinearMul`).
    Binary,
    /// Unary ops with integer kernels: `Sigmoid`, `GlobalAveragePool`, `AveragePool`, `LeakyRelu`.
    Unary,
    /// Data movement that keeps values: the output shares the input's scale.
    PassThrough,
    /// `Relu`, `Clip`: fused into the producer's requantization.
    Relu,
    /// `Concat`: one scale for inputs and output.
    Concat,
    /// Activations without an integer kernel (`HardSwish`, `HardSigmoid`): run in float between
    /// `DequantizeLinear` and `QuantizeLinear`, so their neighbours stay integer.
    FloatActivation,
}

impl OpClass {
    /// The class of a default-domain operator, `None` when it stays float.
    pub fn of(op_type: &str) -> Option<OpClass> {
        Some(match op_type {
            "Conv" | "Gemm" | "MatMul" => OpClass::Compute,
            "Add" | "Mul" => OpClass::Binary,
            "Sigmoid" | "GlobalAveragePool" | "AveragePool" | "LeakyRelu" => OpClass::Unary,
            "MaxPool" | "Reshape" | "Transpose" | "Flatten" | "Squeeze" | "Unsqueeze" | "Slice"
            | "Split" | "Resize" | "Identity" => OpClass::PassThrough,
            "Relu" | "Clip" => OpClass::Relu,
            "Concat" => OpClass::Concat,
            "HardSwish" | "HardSigmoid" => OpClass::FloatActivation,
            _ => return None,
        })
    }
}

/// Options of [`plan`].
#[derive(Debug, Clone)]
pub struct PlacementOptions {
    /// Nodes the user keeps in float.
    pub ignored: IgnoredScope,
    /// Keep a `Concat` in float when the largest input range exceeds the smallest by more than
    /// this factor (`None`: never).
    pub max_concat_range_ratio: Option<f32>,
    /// Quantize around float-only activations (`HardSwish`) so their neighbours stay integer.
    pub float_activations: bool,
}

impl Default for PlacementOptions {
    fn default() -> Self {
        PlacementOptions {
            ignored: IgnoredScope::default(),
            // Off by default: measured on YOLOv8n, the usefulness rule already keeps the head's
            // mixed-range Concat float, and splitting scales elsewhere costs accuracy.
            max_concat_range_ratio: None,
            float_activations: true,
        }
    }
}

/// A weight to quantize to S8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSite {
    /// The node reading it.
    pub node: usize,
    /// The weight tensor.
    pub tensor: String,
    /// The channel axis for per-channel scales (`None`: one scale).
    pub axis: Option<usize>,
    /// The activation input whose scale the bias uses.
    pub input: String,
    /// The bias tensor, quantized to INT32 with `input_scale * weight_scale`.
    pub bias: Option<String>,
}

/// Where Q/DQ goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Nodes running in the integer domain (positions in the graph).
    pub nodes: BTreeSet<usize>,
    /// Activation tensors that get `QuantizeLinear -> DequantizeLinear`.
    pub tensors: BTreeSet<String>,
    /// Tensors sharing one scale; every tensor of [`Plan::tensors`] is in exactly one group. A group
    /// may also hold tensors that are not quantized but whose range matters (pass-through outputs).
    pub groups: Vec<Vec<String>>,
    /// Weights (and biases) of quantized compute nodes.
    pub weights: Vec<WeightSite>,
    /// Constant float inputs of quantized `Add`/`Mul`/`Concat` nodes, quantized to U8.
    pub constants: BTreeSet<String>,
    /// Group members whose values are always within another member's range: a data-movement
    /// op's output (within its input's) and a `Concat`'s inputs (within its output's). Their
    /// statistics add nothing to the group's range, so calibration skips them:
    /// tensor -> the member covering it.
    pub covered: BTreeMap<String, String>,
}

impl Plan {
    /// The group holding `tensor`.
    pub fn group_of(&self, tensor: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.iter().any(|t| t == tensor))
    }

    /// Every tensor whose statistics the plan needs: the group members no other member covers.
    pub fn stat_tensors(&self) -> BTreeSet<&str> {
        self.groups
            .iter()
            .flatten()
            .filter(|t| !self.covered.contains_key(*t))
            .map(String::as_str)
            .collect()
    }

    /// Completes `ranges` for covered tensors with the range of the member covering them (a
    /// superset), so a later plan that needs one of them on its own still finds a range.
    pub fn fill_covered(&self, ranges: &mut std::collections::HashMap<String, (f32, f32)>) {
        for t in self.covered.keys() {
            let mut cover = t;
            let mut hops = 0;
            while let Some(next) = self.covered.get(cover) {
                cover = next;
                hops += 1;
                if hops > self.covered.len() {
                    break;
                }
            }
            if let Some(&range) = ranges.get(cover) {
                ranges.entry(t.clone()).or_insert(range);
            }
        }
    }
}

/// Indices of a node's data inputs among its inputs (others are shapes, indices, scales).
fn data_slots(op_type: &str, inputs: usize) -> Vec<usize> {
    match op_type {
        "Conv" | "Gemm" | "Reshape" | "Slice" | "Resize" | "Squeeze" | "Unsqueeze" | "Split" => {
            vec![0]
        }
        "MatMul" => vec![0, 1],
        "Clip" => vec![0],
        _ => (0..inputs).collect(),
    }
}

/// The activation inputs of a node: data inputs that are not constants.
fn activation_inputs(graph: &GraphProto, index: &GraphIndex, node: usize) -> Vec<String> {
    let n = &graph.node[node];
    data_slots(&n.op_type, n.input.len())
        .into_iter()
        .filter_map(|slot| n.input.get(slot))
        .filter(|name| !name.is_empty())
        .filter(|name| !index.producer(name).is_some_and(Producer::is_constant))
        .cloned()
        .collect()
}

/// Union-find over tensor names.
#[derive(Debug, Default)]
struct Groups {
    parent: HashMap<String, String>,
}

impl Groups {
    fn find(&mut self, x: &str) -> String {
        let mut root = x.to_owned();
        while let Some(p) = self.parent.get(&root) {
            if *p == root {
                break;
            }
            root = p.clone();
        }
        // Path compression.
        let mut cur = x.to_owned();
        while let Some(p) = self.parent.get(&cur).cloned() {
            if p == cur {
                break;
            }
            self.parent.insert(cur, root.clone());
            cur = p;
        }
        self.parent
            .entry(root.clone())
            .or_insert_with(|| root.clone());
        root
    }

    fn union(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent.insert(ra, rb);
        }
    }
}

/// Computes the placement on `graph` (topologically sorted). `range` gives a tensor's calibrated
/// range `(lo, hi)` when known (for rule 2); without it, no `Concat` is kept float for its ranges.
pub fn plan(
    graph: &GraphProto,
    options: &PlacementOptions,
    range: &dyn Fn(&str) -> Option<(f32, f32)>,
) -> Result<Plan, kiln_onnx::graph::GraphError> {
    let index = GraphIndex::new(graph)?;
    let nodes = &graph.node;
    let is_constant = |name: &str| index.producer(name).is_some_and(Producer::is_constant);

    // 1-2. Candidates, forward.
    let mut candidate = vec![false; nodes.len()];
    let mut sources: BTreeSet<String> = graph
        .input
        .iter()
        .filter(|i| !is_constant(&i.name))
        .map(|i| i.name.clone())
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        let class =
            OpClass::of(&n.op_type).filter(|_| n.domain.is_empty() || n.domain == "ai.onnx");
        let ignored = options.ignored.matches(&n.name, &n.op_type);
        let mut ok = match class {
            None => false,
            Some(OpClass::FloatActivation) => options.float_activations,
            Some(_) => true,
        } && !ignored;
        if ok && matches!(n.op_type.as_str(), "Conv" | "Gemm") {
            ok = n.input.get(1).is_some_and(|w| is_constant(w));
        }
        if ok
            && n.op_type == "Concat"
            && let Some(limit) = options.max_concat_range_ratio
        {
            let spans: Vec<f32> = n
                .input
                .iter()
                .filter_map(|x| range(x))
                .map(|(lo, hi)| lo.abs().max(hi.abs()))
                .filter(|s| *s > 0.0 && s.is_finite())
                .collect();
            let (lo, hi) = spans
                .iter()
                .fold((f32::MAX, 0f32), |(a, b), s| (a.min(*s), b.max(*s)));
            if !spans.is_empty() && hi / lo > limit {
                ok = false;
            }
        }
        let inputs = activation_inputs(graph, &index, i);
        if ok && (inputs.is_empty() || !inputs.iter().all(|x| sources.contains(x))) {
            ok = false;
        }
        if ok || ignored {
            // An ignored node's float output may be quantized again for its readers.
            sources.extend(n.output.iter().filter(|o| !o.is_empty()).cloned());
        }
        candidate[i] = ok;
    }

    // 3. Usefulness, backward: keep compute ops and what feeds a kept node.
    let mut kept = vec![false; nodes.len()];
    for i in (0..nodes.len()).rev() {
        if !candidate[i] {
            continue;
        }
        let n = &nodes[i];
        kept[i] = OpClass::of(&n.op_type) == Some(OpClass::Compute)
            || n.output
                .iter()
                .flat_map(|o| index.consumers(o))
                .any(|c| kept[c.node]);
    }

    // 4. Tensors; 5. shared scales.
    let mut plan = Plan::default();
    let mut groups = Groups::default();
    let read_by_kept = |tensor: &str, kept: &[bool]| {
        index
            .consumers(tensor)
            .iter()
            .any(|c: &Consumer| kept[c.node])
    };
    for (i, n) in nodes.iter().enumerate() {
        if !kept[i] {
            continue;
        }
        let class = OpClass::of(&n.op_type);
        let inputs = activation_inputs(graph, &index, i);
        let out_quantized = n.output.iter().any(|o| read_by_kept(o, &kept));
        if class == Some(OpClass::Compute) && n.op_type == "Conv" && !out_quantized {
            // Rule 4: a Conv whose output stays float keeps float weights and is not quantized.
            continue;
        }
        plan.nodes.insert(i);
        plan.tensors.extend(inputs.iter().cloned());
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if read_by_kept(o, &kept) {
                plan.tensors.insert(o.clone());
            }
        }
        match class {
            Some(OpClass::PassThrough) => {
                // Cubic resizing can overshoot its input's range; every other data-movement op
                // only moves or selects values.
                let keeps_values = !(n.op_type == "Resize" && n.attr_s("mode") == Some("cubic"));
                if let Some(x) = inputs.first() {
                    for o in n.output.iter().filter(|o| !o.is_empty()) {
                        groups.union(o, x);
                        if keeps_values && o != x {
                            plan.covered.insert(o.clone(), x.clone());
                        }
                    }
                }
            }
            Some(OpClass::Concat) => {
                if let Some(o) = n.output.first() {
                    for x in &inputs {
                        groups.union(o, x);
                        if x != o && !plan.covered.contains_key(o) {
                            plan.covered.insert(x.clone(), o.clone());
                        }
                    }
                }
            }
            Some(OpClass::Compute) => {
                if let Some(w) = n.input.get(1).filter(|w| is_constant(w)) {
                    let axis = match n.op_type.as_str() {
                        "Conv" => Some(0),
                        // Gemm/MatMul weights: one scale (ONNX Runtime's QGemm/MatMulInteger
                        // paths are per-tensor friendly).
                        _ => None,
                    };
                    let bias = n
                        .input
                        .get(2)
                        .filter(|b| !b.is_empty() && is_constant(b))
                        .cloned();
                    if let Some(x) = inputs.first() {
                        plan.weights.push(WeightSite {
                            node: i,
                            tensor: w.clone(),
                            axis,
                            input: x.clone(),
                            bias,
                        });
                    }
                }
            }
            _ => {}
        }
        if matches!(class, Some(OpClass::Binary | OpClass::Concat)) {
            for x in n.input.iter().filter(|x| !x.is_empty() && is_constant(x)) {
                plan.constants.insert(x.clone());
            }
        }
    }
    // 6. ReLU fusion.
    for &i in &plan.nodes.clone() {
        let n = &nodes[i];
        if OpClass::of(&n.op_type) != Some(OpClass::Relu) {
            continue;
        }
        let Some(x) = n.input.first() else { continue };
        let fused = matches!(index.producer(x), Some(Producer::Node { node, .. })
            if plan.nodes.contains(&node)
                && matches!(OpClass::of(&nodes[node].op_type), Some(OpClass::Compute | OpClass::Binary)))
            && index.consumers(x).len() == 1
            && !index.is_graph_output(x);
        if fused {
            plan.tensors.remove(x);
        }
    }

    // Groups: every quantized tensor, plus unioned members with a known range.
    let mut by_root: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in &plan.tensors {
        let root = groups.find(t);
        by_root.entry(root).or_default().insert(t.clone());
    }
    let members: Vec<String> = groups.parent.keys().cloned().collect();
    for t in members {
        let root = groups.find(&t);
        if let Some(group) = by_root.get_mut(&root) {
            group.insert(t);
        }
    }
    plan.groups = by_root
        .into_values()
        .map(|g| g.into_iter().collect())
        .collect();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use kiln_onnx::graph::{NodeBuilder, tensor_from_values};
    use kiln_onnx::proto::{GraphProto, ValueInfoProto};

    use super::*;

    fn node(
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
    ) -> kiln_onnx::proto::NodeProto {
        NodeBuilder::new(op)
            .name(name)
            .inputs(inputs.iter().copied())
            .outputs(outputs.iter().copied())
            .build()
    }

    /// x -> Conv(w1,b1) -> Relu -> MaxPool ----------\
    ///   \-> Conv(w2) -> HardSwish -------------------> Concat -> Conv(w3) -> Softmax -> y
    fn graph() -> GraphProto {
        let w = |name: &str| {
            tensor_from_values(name, &[2, 2, 1, 1], &[1f32, 0.5, -0.5, 1.0]).expect("w")
        };
        GraphProto {
            node: vec![
                node("Conv", "conv1", &["x", "w1", "b1"], &["c1"]),
                node("Relu", "relu", &["c1"], &["r1"]),
                node("MaxPool", "pool", &["r1"], &["p1"]),
                node("Conv", "conv2", &["x", "w2"], &["c2"]),
                node("HardSwish", "hswish", &["c2"], &["h2"]),
                node("Concat", "concat", &["p1", "h2"], &["cat"]),
                node("Conv", "conv3", &["cat", "w3"], &["c3"]),
                node("Softmax", "softmax", &["c3"], &["y"]),
            ],
            initializer: vec![
                w("w1"),
                tensor_from_values("b1", &[2], &[0.1f32, 0.2]).expect("b1"),
                w("w2"),
                tensor_from_values("w3", &[2, 4, 1, 1], &[0.1f32; 8]).expect("w3"),
            ],
            input: vec![ValueInfoProto {
                name: "x".into(),
                ..Default::default()
            }],
            output: vec![ValueInfoProto {
                name: "y".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn names<'a>(g: &GraphProto, nodes: impl IntoIterator<Item = &'a usize>) -> Vec<String> {
        nodes.into_iter().map(|&i| g.node[i].name.clone()).collect()
    }

    #[test]
    fn placement_follows_the_rules() {
        let g = graph();
        let placed = super::plan(&g, &PlacementOptions::default(), &|_| None).expect("plan");
        // conv3's output feeds only the float Softmax: conv3 keeps float weights (rule 4).
        assert_eq!(
            names(&g, &placed.nodes),
            ["conv1", "relu", "pool", "conv2", "hswish", "concat"]
        );
        // c1 feeds only the Relu after a quantized Conv: fused, no Q/DQ (rule 6). The Concat
        // output is read by conv3 (kept, compute) so it is quantized for it.
        let tensors: Vec<&str> = placed.tensors.iter().map(String::as_str).collect();
        assert_eq!(tensors, ["c2", "cat", "h2", "p1", "r1", "x"]);
        // Weights and biases of the two quantized convolutions, per channel on axis 0.
        let weights: Vec<(&str, Option<usize>, Option<&str>)> = placed
            .weights
            .iter()
            .map(|w| (w.tensor.as_str(), w.axis, w.bias.as_deref()))
            .collect();
        assert_eq!(
            weights,
            [("w1", Some(0), Some("b1")), ("w2", Some(0), None)]
        );
        // MaxPool shares its input's scale; Concat shares one scale for inputs and output.
        let group = placed.group_of("cat").expect("cat has a group");
        for t in ["p1", "h2", "r1"] {
            assert_eq!(placed.group_of(t), Some(group), "{t}");
        }
        // Covered members are not calibrated: p1 within r1, p1 and h2 within cat.
        let stats: Vec<&str> = placed.stat_tensors().into_iter().collect();
        assert_eq!(stats, ["c2", "cat", "r1", "x"]);
        let mut ranges = std::collections::HashMap::from([
            ("cat".to_owned(), (-1.0, 4.0)),
            ("r1".to_owned(), (0.0, 3.0)),
        ]);
        placed.fill_covered(&mut ranges);
        assert_eq!(
            ranges["p1"],
            (-1.0, 4.0),
            "p1 is covered by the Concat output"
        );
        assert_eq!(ranges["h2"], (-1.0, 4.0));
    }

    #[test]
    fn ignored_and_unsupported_nodes_stay_float() {
        let g = graph();
        let ignored = IgnoredScope::new(vec!["conv2".into()], vec![], &[]).expect("scope");
        let options = PlacementOptions {
            ignored,
            ..PlacementOptions::default()
        };
        let placed = super::plan(&g, &options, &|_| None).expect("plan");
        let kept = names(&g, &placed.nodes);
        assert!(!kept.contains(&"conv2".to_owned()), "{kept:?}");
        // The ignored conv's float output is quantized again for its (quantized) reader.
        assert!(kept.contains(&"hswish".to_owned()), "{kept:?}");
        assert!(placed.weights.iter().all(|w| w.tensor != "w2"));
        // With the Concat ignored, nothing after it is quantized and conv3 stays float.
        let ignored = IgnoredScope::new(vec![], vec!["Concat".into()], &[]).expect("scope");
        let options = PlacementOptions {
            ignored,
            ..PlacementOptions::default()
        };
        let placed = super::plan(&g, &options, &|_| None).expect("plan");
        assert!(!names(&g, &placed.nodes).contains(&"conv3".to_owned()));
        assert!(!placed.tensors.contains("cat"));
    }

    #[test]
    fn mixed_range_concats_can_be_kept_float() {
        let g = graph();
        let options = PlacementOptions {
            max_concat_range_ratio: Some(16.0),
            ..PlacementOptions::default()
        };
        let ranges = |t: &str| match t {
            "p1" => Some((0.0, 320.0)),
            "h2" => Some((0.0, 1.0)),
            _ => None,
        };
        let placed = super::plan(&g, &options, &ranges).expect("plan");
        assert!(!names(&g, &placed.nodes).contains(&"concat".to_owned()));
    }
}
