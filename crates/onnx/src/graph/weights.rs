//! Weights wherever they live: graph initializers or `Constant` nodes (the PP-OCR detector has no
//! initializers at all). Read them ([`find_weight`], [`weights`]), replace them in place
//! ([`replace_weight`]) and add new initializers under unique names ([`add_initializer`]).

use std::borrow::Cow;

use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, NodeProto, TensorProto};

use super::attr;
use super::edit::NameGen;
use super::error::{GraphError, TensorError};
use super::index::Producer;
use super::node::NodeExt;
use super::types::tensor_type_proto;
use super::values::{tensor_to_f32, tensor_to_f32_with};
use crate::external::ExternalDataResolver;

/// Where a weight is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WeightLocation {
    /// `GraphProto::initializer[index]`.
    Initializer {
        /// Position in `GraphProto::initializer`.
        index: usize,
    },
    /// The output of the `Constant` node `GraphProto::node[node]`.
    Constant {
        /// Position in `GraphProto::node`.
        node: usize,
    },
}

/// A weight found in a graph: its name, where it is stored and its tensor.
///
/// For a `Constant` node the tensor is its `value` attribute (borrowed; its own `name` field may
/// differ from the weight name) or one synthesized from `value_float(s)` / `value_int(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightRef<'g> {
    /// The tensor name in the graph (initializer name or Constant output).
    pub name: &'g str,
    /// Where it is stored.
    pub location: WeightLocation,
    /// Its value.
    pub tensor: Cow<'g, TensorProto>,
}

impl WeightRef<'_> {
    /// The dims of the weight.
    pub fn dims(&self) -> &[i64] {
        &self.tensor.dims
    }

    /// The element type of the weight, if it is a known one.
    pub fn data_type(&self) -> Option<DataType> {
        DataType::try_from(self.tensor.data_type).ok()
    }

    /// The values converted to `f32`; external data is an error.
    pub fn to_f32(&self) -> Result<Vec<f32>, TensorError> {
        tensor_to_f32(&self.named())
    }

    /// The values converted to `f32`, reading external data through `resolver`.
    pub fn to_f32_with(
        &self,
        resolver: &dyn ExternalDataResolver,
    ) -> Result<Vec<f32>, TensorError> {
        tensor_to_f32_with(&self.named(), resolver)
    }

    /// The tensor carrying the weight's name, so that errors name it.
    fn named(&self) -> Cow<'_, TensorProto> {
        if self.tensor.name == self.name {
            Cow::Borrowed(self.tensor.as_ref())
        } else {
            let mut tensor = self.tensor.as_ref().clone();
            tensor.name = self.name.to_owned();
            Cow::Owned(tensor)
        }
    }
}

/// The value of a default-domain `Constant` node as a tensor: its `value`, or a tensor built from
/// `value_float`, `value_floats`, `value_int` or `value_ints`. `None` for `sparse_value`,
/// strings and nodes that are not `Constant`.
pub fn constant_tensor(node: &NodeProto) -> Option<Cow<'_, TensorProto>> {
    if !node.is_op("Constant") {
        return None;
    }
    if let Some(t) = node.attr_tensor("value") {
        return Some(Cow::Borrowed(t));
    }
    let name = node.output.first().cloned().unwrap_or_default();
    let len = |n: usize| vec![i64::try_from(n).unwrap_or(i64::MAX)];
    let tensor = if let Some(f) = node.attr_f("value_float") {
        TensorProto {
            name,
            data_type: DataType::Float as i32,
            float_data: vec![f],
            ..Default::default()
        }
    } else if let Some(fs) = node.attr_floats("value_floats") {
        TensorProto {
            name,
            dims: len(fs.len()),
            data_type: DataType::Float as i32,
            float_data: fs.to_vec(),
            ..Default::default()
        }
    } else if let Some(i) = node.attr_i("value_int") {
        TensorProto {
            name,
            data_type: DataType::Int64 as i32,
            int64_data: vec![i],
            ..Default::default()
        }
    } else if let Some(is) = node.attr_ints("value_ints") {
        TensorProto {
            name,
            dims: len(is.len()),
            data_type: DataType::Int64 as i32,
            int64_data: is.to_vec(),
            ..Default::default()
        }
    } else {
        return None;
    };
    Some(Cow::Owned(tensor))
}

/// The weight for `name` given its producer, if that is an initializer or a Constant node.
pub(crate) fn weight_at<'g>(
    graph: &'g GraphProto,
    name: &str,
    producer: Producer,
) -> Option<WeightRef<'g>> {
    match producer {
        Producer::Initializer { index } => {
            let tensor = graph.initializer.get(index)?;
            (tensor.name == name).then(|| WeightRef {
                name: tensor.name.as_str(),
                location: WeightLocation::Initializer { index },
                tensor: Cow::Borrowed(tensor),
            })
        }
        Producer::Constant { node } => {
            let n = graph.node.get(node)?;
            let output = n.output.first().filter(|o| *o == name)?;
            Some(WeightRef {
                name: output.as_str(),
                location: WeightLocation::Constant { node },
                tensor: constant_tensor(n)?,
            })
        }
        Producer::GraphInput | Producer::SparseInitializer { .. } | Producer::Node { .. } => None,
    }
}

/// The weight named `name`: an initializer, else the output of a `Constant` node. A linear
/// scan; use [`GraphIndex::find_weight`](super::GraphIndex::find_weight) for many look-ups.
pub fn find_weight<'g>(graph: &'g GraphProto, name: &str) -> Option<WeightRef<'g>> {
    if let Some(index) = graph.initializer.iter().position(|t| t.name == name) {
        return weight_at(graph, name, Producer::Initializer { index });
    }
    let node = graph
        .node
        .iter()
        .position(|n| n.is_op("Constant") && n.output.first().is_some_and(|o| o == name))?;
    weight_at(graph, name, Producer::Constant { node })
}

/// Every weight of the graph: the initializers in order, then the Constant nodes in node order.
pub fn weights(graph: &GraphProto) -> impl Iterator<Item = WeightRef<'_>> {
    let initializers = (0..graph.initializer.len()).filter_map(move |index| {
        let name = graph.initializer.get(index)?.name.as_str();
        weight_at(graph, name, Producer::Initializer { index })
    });
    let constants = (0..graph.node.len()).filter_map(move |node| {
        let n = graph.node.get(node)?;
        if !n.is_op("Constant") {
            return None;
        }
        weight_at(graph, n.output.first()?, Producer::Constant { node })
    });
    initializers.chain(constants)
}

/// Replaces the value of weight `name` where it lives: an initializer stays an initializer (same
/// position), a `Constant` node keeps its position and gets a `value` attribute (other `value*`
/// attributes are dropped). The tensor is renamed to `name`. Declarations of `name` in the graph
/// inputs, outputs and `value_info` get the new element type and dims.
pub fn replace_weight(
    graph: &mut GraphProto,
    name: &str,
    mut tensor: TensorProto,
) -> Result<WeightLocation, GraphError> {
    tensor.name = name.to_owned();
    let new_type = tensor_type_proto(tensor.data_type, &tensor.dims);
    let location = if let Some(index) = graph.initializer.iter().position(|t| t.name == name) {
        if let Some(slot) = graph.initializer.get_mut(index) {
            *slot = tensor;
        }
        WeightLocation::Initializer { index }
    } else if let Some(node) = graph
        .node
        .iter()
        .position(|n| n.is_op("Constant") && n.output.first().is_some_and(|o| o == name))
    {
        if let Some(n) = graph.node.get_mut(node) {
            n.attribute
                .retain(|a| !(a.name.starts_with("value") || a.name == "sparse_value"));
            n.attribute.push(attr::tensor("value", tensor));
        }
        WeightLocation::Constant { node }
    } else {
        return Err(GraphError::UnknownWeight {
            name: name.to_owned(),
        });
    };
    for value in graph
        .input
        .iter_mut()
        .chain(graph.output.iter_mut())
        .chain(graph.value_info.iter_mut())
        .filter(|v| v.name == name)
    {
        value.r#type = Some(new_type.clone());
    }
    Ok(location)
}

/// Appends `tensor` as an initializer under a fresh name derived from its own name (or
/// `"initializer"`), and returns that name.
pub fn add_initializer(
    graph: &mut GraphProto,
    names: &mut NameGen,
    mut tensor: TensorProto,
) -> String {
    let base = if tensor.name.is_empty() {
        "initializer".to_owned()
    } else {
        tensor.name.clone()
    };
    let name = names.fresh(&base);
    tensor.name.clone_from(&name);
    graph.initializer.push(tensor);
    name
}
