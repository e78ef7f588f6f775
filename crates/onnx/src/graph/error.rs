//! Errors of the graph-editing boundary: [`GraphError`] for graph edits, [`TensorError`] for tensor
//! data, [`OpsetError`] for operator-set requirements and conversions.

use crate::error::ExternalDataError;
use crate::proto::tensor_proto::DataType;

/// The ONNX name of an element type for messages (`FLOAT`, `INT64`), or its number when unknown.
pub fn dtype_name(data_type: i32) -> String {
    DataType::try_from(data_type).map_or_else(
        |_| format!("data type {data_type}"),
        |d| d.as_str_name().to_owned(),
    )
}

fn version_text(version: &Option<i64>) -> String {
    version.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// What can go wrong reading or editing a graph. Every variant names the tensors or nodes involved;
/// nodes are described as `Op "name" (#index)`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The `ModelProto` has no `graph`.
    #[error("the model has no graph")]
    NoGraph,
    /// Two producers (nodes, graph inputs or initializers) define the same tensor name.
    #[error("tensor {tensor:?} is produced twice: by {first} and by {second}")]
    DuplicateProducer {
        /// The tensor defined twice.
        tensor: String,
        /// The first producer.
        first: String,
        /// The second producer.
        second: String,
    },
    /// A node reads a tensor that nothing in its scope produces.
    #[error("{node} reads tensor {tensor:?}, which no node, graph input or initializer produces")]
    MissingProducer {
        /// The tensor nothing produces.
        tensor: String,
        /// The node reading it.
        node: String,
    },
    /// The nodes cannot be ordered: the listed tensors form a cycle.
    #[error("the graph has a cycle through tensors {tensors:?} (nodes {nodes:?})")]
    Cycle {
        /// The tensors along the cycle, in data-flow order.
        tensors: Vec<String>,
        /// The nodes along the cycle, in data-flow order.
        nodes: Vec<String>,
    },
    /// No tensor of that name exists in the graph.
    #[error("no tensor named {tensor:?} in the graph")]
    UnknownTensor {
        /// The name looked for.
        tensor: String,
    },
    /// A new name collides with a name the graph already uses.
    #[error("the name {name:?} is already used in the graph")]
    NameTaken {
        /// The colliding name.
        name: String,
    },
    /// The element type of a tensor is neither declared nor inferable from its producer.
    #[error("the element type of tensor {tensor:?} cannot be determined: {reason}")]
    UnknownElemType {
        /// The tensor.
        tensor: String,
        /// Why: the op has no inference rule, an input's type is unknown, ...
        reason: String,
    },
    /// A consumer given to an edge edit does not read that tensor at that slot.
    #[error("node #{node} does not read tensor {tensor:?} at input slot {slot}")]
    NotAConsumer {
        /// The tensor of the edge.
        tensor: String,
        /// The node index given.
        node: usize,
        /// The input slot given.
        slot: usize,
    },
    /// A node index past the end of the node list.
    #[error("node index {index} is out of range (the graph has {len} nodes)")]
    NodeOutOfRange {
        /// The index given.
        index: usize,
        /// The number of nodes.
        len: usize,
    },
    /// An edge edit is malformed (no nodes, output not produced, consumer claimed twice, ...).
    #[error("cannot insert on the edge {tensor:?}: {reason}")]
    InvalidEdit {
        /// The tensor of the edge.
        tensor: String,
        /// What is wrong.
        reason: String,
    },
    /// The name is neither an initializer nor the output of a `Constant` node.
    #[error("no weight named {name:?}: neither an initializer nor the output of a Constant node")]
    UnknownWeight {
        /// The name looked for.
        name: String,
    },
    /// Reading or writing tensor data failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// An opset requirement or conversion failed.
    #[error(transparent)]
    Opset(#[from] OpsetError),
}

/// What can go wrong decoding or encoding the data of a `TensorProto`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The data lives in an external file and no resolver was given.
    #[error(
        "tensor {tensor:?} keeps its data in the external file {location:?}; read it with a resolver (Model::resolver())"
    )]
    External {
        /// The tensor name.
        tensor: String,
        /// The `location` entry of its `external_data`.
        location: String,
    },
    /// The external data reference is malformed, or the resolver could not read it.
    #[error("tensor {tensor:?}: its external data cannot be read")]
    ExternalData {
        /// The tensor name.
        tensor: String,
        /// The resolver's error.
        #[source]
        source: ExternalDataError,
    },
    /// The element type is not supported by this operation.
    #[error("tensor {tensor:?} has element type {}, which {operation} does not support", dtype_name(*.data_type))]
    UnsupportedType {
        /// The tensor name.
        tensor: String,
        /// Its `data_type`.
        data_type: i32,
        /// The operation refusing it.
        operation: &'static str,
    },
    /// A typed read asked for another element type than the tensor has.
    #[error("tensor {tensor:?} has element type {}, not {}", dtype_name(*.found), dtype_name(*.expected))]
    TypeMismatch {
        /// The tensor name.
        tensor: String,
        /// The element type asked for.
        expected: i32,
        /// The element type the tensor has.
        found: i32,
    },
    /// The amount of data does not match the dims.
    #[error("tensor {tensor:?} holds {found} values, its dims {dims:?} need {expected}")]
    Length {
        /// The tensor name.
        tensor: String,
        /// Its dims.
        dims: Vec<i64>,
        /// Elements the dims need.
        expected: usize,
        /// Elements present.
        found: usize,
    },
    /// The raw (or external) bytes do not match the dims.
    #[error("tensor {tensor:?} has {found} bytes of data, its dims {dims:?} need {expected}")]
    RawLength {
        /// The tensor name.
        tensor: String,
        /// Its dims.
        dims: Vec<i64>,
        /// Bytes the dims need.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Negative dims, or a product that overflows.
    #[error("tensor {tensor:?} has invalid dims {dims:?}")]
    BadDims {
        /// The tensor name.
        tensor: String,
        /// Its dims.
        dims: Vec<i64>,
    },
    /// The tensor is a `segment` of a larger one, which is not supported.
    #[error("tensor {tensor:?} is a segment of a larger tensor, which is not supported")]
    Segmented {
        /// The tensor name.
        tensor: String,
    },
}

/// An operator-set requirement that the model does not meet, or a conversion that cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsetError {
    /// An edit needs a newer opset than the model imports.
    #[error(
        "{feature} needs opset {required} of domain {domain:?}; the model imports {}",
        version_text(.found)
    )]
    TooOld {
        /// What needs it, e.g. "per-channel QuantizeLinear/DequantizeLinear (axis)".
        feature: String,
        /// The domain ("" is the default ONNX domain).
        domain: String,
        /// The minimum version.
        required: i64,
        /// The version imported, if any.
        found: Option<i64>,
    },
    /// The model's default-domain opset cannot be upgraded by this crate.
    #[error("upgrading the default-domain opset from {} to 13 is not supported (only 11 and 12 are)", version_text(.from))]
    UnsupportedSource {
        /// The version imported, if any.
        from: Option<i64>,
    },
    /// One node cannot be converted to opset 13.
    #[error("cannot convert {node} to opset 13: {reason}")]
    Unconvertible {
        /// The node, described as `Op "name" (#index)`.
        node: String,
        /// Its op type.
        op_type: String,
        /// Why.
        reason: String,
    },
}
