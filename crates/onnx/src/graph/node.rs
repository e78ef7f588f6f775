//! Building nodes ([`NodeBuilder`]) and reading their attributes with typed getters ([`NodeExt`]).

use crate::proto::attribute_proto::AttributeType;
use crate::proto::{AttributeProto, GraphProto, NodeProto, TensorProto};

use super::attr;

/// Whether `domain` names the default ONNX operator set (`""` or `"ai.onnx"`).
pub fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Builds a `NodeProto` step by step:
///
/// ```
/// use kiln_onnx::graph::{NodeBuilder, NodeExt};
/// let q = NodeBuilder::new("QuantizeLinear")
///     .name("x_QuantizeLinear")
///     .inputs(["x", "x_scale", "x_zero_point"])
///     .output("x_quantized")
///     .attr_i("axis", 0)
///     .build();
/// assert_eq!(q.attr_i("axis"), Some(0));
/// ```
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    node: NodeProto,
}

impl NodeBuilder {
    /// A node of `op_type` in the default domain, without inputs, outputs or attributes.
    pub fn new(op_type: &str) -> Self {
        Self {
            node: NodeProto {
                op_type: op_type.to_owned(),
                ..Default::default()
            },
        }
    }

    /// Sets the node name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.node.name = name.into();
        self
    }

    /// Sets the operator domain (`""` is the default ONNX domain).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.node.domain = domain.into();
        self
    }

    /// Appends one input (`""` marks an omitted optional input).
    pub fn input(mut self, name: impl Into<String>) -> Self {
        self.node.input.push(name.into());
        self
    }

    /// Appends inputs.
    pub fn inputs<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.node.input.extend(names.into_iter().map(Into::into));
        self
    }

    /// Appends one output.
    pub fn output(mut self, name: impl Into<String>) -> Self {
        self.node.output.push(name.into());
        self
    }

    /// Appends outputs.
    pub fn outputs<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.node.output.extend(names.into_iter().map(Into::into));
        self
    }

    /// Sets an attribute, replacing one of the same name.
    pub fn attr(mut self, attribute: AttributeProto) -> Self {
        self.node.set_attr(attribute);
        self
    }

    /// Sets an `INT` attribute.
    pub fn attr_i(self, name: &str, value: i64) -> Self {
        self.attr(attr::int(name, value))
    }

    /// Sets a `FLOAT` attribute.
    pub fn attr_f(self, name: &str, value: f32) -> Self {
        self.attr(attr::float(name, value))
    }

    /// Sets a `STRING` attribute.
    pub fn attr_s(self, name: &str, value: &str) -> Self {
        self.attr(attr::string(name, value))
    }

    /// Sets an `INTS` attribute.
    pub fn attr_ints(self, name: &str, values: impl IntoIterator<Item = i64>) -> Self {
        self.attr(attr::ints(name, values))
    }

    /// Sets a `FLOATS` attribute.
    pub fn attr_floats(self, name: &str, values: impl IntoIterator<Item = f32>) -> Self {
        self.attr(attr::floats(name, values))
    }

    /// Sets a `TENSOR` attribute.
    pub fn attr_tensor(self, name: &str, value: TensorProto) -> Self {
        self.attr(attr::tensor(name, value))
    }

    /// Sets a `GRAPH` attribute.
    pub fn attr_graph(self, name: &str, value: GraphProto) -> Self {
        self.attr(attr::graph(name, value))
    }

    /// The finished node.
    pub fn build(self) -> NodeProto {
        self.node
    }
}

/// Typed access to a node's attributes and subgraphs.
///
/// A typed getter returns `None` when the attribute is absent or declares another type (an
/// attribute whose `type` is `UNDEFINED`, written by IR versions before 2, is read as any type).
pub trait NodeExt {
    /// The attribute named `name`.
    fn attr(&self, name: &str) -> Option<&AttributeProto>;
    /// An `INT` attribute.
    fn attr_i(&self, name: &str) -> Option<i64>;
    /// A `FLOAT` attribute.
    fn attr_f(&self, name: &str) -> Option<f32>;
    /// A `STRING` attribute; `None` also when it is not UTF-8.
    fn attr_s(&self, name: &str) -> Option<&str>;
    /// An `INTS` attribute.
    fn attr_ints(&self, name: &str) -> Option<&[i64]>;
    /// A `FLOATS` attribute.
    fn attr_floats(&self, name: &str) -> Option<&[f32]>;
    /// A `TENSOR` attribute.
    fn attr_tensor(&self, name: &str) -> Option<&TensorProto>;
    /// A `GRAPH` attribute.
    fn attr_graph(&self, name: &str) -> Option<&GraphProto>;
    /// Sets an attribute, replacing one of the same name in place (order is kept).
    fn set_attr(&mut self, attribute: AttributeProto);
    /// Removes and returns the attribute named `name`.
    fn remove_attr(&mut self, name: &str) -> Option<AttributeProto>;
    /// Whether this is `op_type` of the default ONNX domain.
    fn is_op(&self, op_type: &str) -> bool;
    /// The subgraphs held in `GRAPH` and `GRAPHS` attributes (`If` branches, `Loop`/`Scan` bodies).
    fn subgraphs(&self) -> impl Iterator<Item = &GraphProto>;
    /// Mutable access to the subgraphs held in `GRAPH` and `GRAPHS` attributes.
    fn subgraphs_mut(&mut self) -> impl Iterator<Item = &mut GraphProto>;
}

fn typed<'a>(node: &'a NodeProto, name: &str, ty: AttributeType) -> Option<&'a AttributeProto> {
    node.attr(name)
        .filter(|a| a.r#type == ty as i32 || a.r#type == AttributeType::Undefined as i32)
}

impl NodeExt for NodeProto {
    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.attribute.iter().find(|a| a.name == name)
    }

    fn attr_i(&self, name: &str) -> Option<i64> {
        typed(self, name, AttributeType::Int).map(|a| a.i)
    }

    fn attr_f(&self, name: &str) -> Option<f32> {
        typed(self, name, AttributeType::Float).map(|a| a.f)
    }

    fn attr_s(&self, name: &str) -> Option<&str> {
        typed(self, name, AttributeType::String).and_then(|a| std::str::from_utf8(&a.s).ok())
    }

    fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        typed(self, name, AttributeType::Ints).map(|a| a.ints.as_slice())
    }

    fn attr_floats(&self, name: &str) -> Option<&[f32]> {
        typed(self, name, AttributeType::Floats).map(|a| a.floats.as_slice())
    }

    fn attr_tensor(&self, name: &str) -> Option<&TensorProto> {
        typed(self, name, AttributeType::Tensor).and_then(|a| a.t.as_ref())
    }

    fn attr_graph(&self, name: &str) -> Option<&GraphProto> {
        typed(self, name, AttributeType::Graph).and_then(|a| a.g.as_ref())
    }

    fn set_attr(&mut self, attribute: AttributeProto) {
        match self.attribute.iter_mut().find(|a| a.name == attribute.name) {
            Some(slot) => *slot = attribute,
            None => self.attribute.push(attribute),
        }
    }

    fn remove_attr(&mut self, name: &str) -> Option<AttributeProto> {
        let at = self.attribute.iter().position(|a| a.name == name)?;
        Some(self.attribute.remove(at))
    }

    fn is_op(&self, op_type: &str) -> bool {
        self.op_type == op_type && is_default_domain(&self.domain)
    }

    fn subgraphs(&self) -> impl Iterator<Item = &GraphProto> {
        self.attribute
            .iter()
            .flat_map(|a| a.g.iter().chain(a.graphs.iter()))
    }

    fn subgraphs_mut(&mut self) -> impl Iterator<Item = &mut GraphProto> {
        self.attribute
            .iter_mut()
            .flat_map(|a| a.g.iter_mut().chain(a.graphs.iter_mut()))
    }
}

/// Describes node `index` of `graph` for messages: `Conv "conv1" (#3)`.
pub(crate) fn describe_node(graph: &GraphProto, index: usize) -> String {
    graph
        .node
        .get(index)
        .map_or_else(|| format!("node #{index}"), |n| describe(n, index))
}

/// Describes `node` at `index` for messages: `Conv "conv1" (#3)`.
pub(crate) fn describe(node: &NodeProto, index: usize) -> String {
    format!("{} {:?} (#{index})", node.op_type, node.name)
}
