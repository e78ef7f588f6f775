//! Graph editing on owned `proto::ModelProto` / `proto::GraphProto`: the index of producers and
//! consumers, topological order, element types and typed graph outputs, edge insertion (Q/DQ),
//! weights in initializers or `Constant` nodes, opset checks and the 11/12 -> 13 upgrade.
//!
//! # Map
//!
//! | need | items |
//! |---|---|
//! | who produces / reads a tensor, declared types | [`GraphIndex`], [`Producer`], [`Consumer`] |
//! | execution order | [`toposort`], [`toposort_in_place`] |
//! | element types; exposing intermediate tensors to ONNX Runtime | [`ElemTypes`], [`add_output`], [`add_outputs`] |
//! | inserting nodes on an edge (Q/DQ) | [`insert_on_edge`], [`insert_on_edges`], [`qdq_edge`], [`NameGen`] |
//! | weights | [`find_weight`], [`weights`], [`replace_weight`], [`add_initializer`] |
//! | tensor data | [`tensor_to_f32`], [`tensor_values`], [`tensor_from_values`]; external data via [`ExternalDataResolver`](crate::external::ExternalDataResolver) |
//! | opsets | [`opset_version`], [`supports_per_channel_qdq`], [`require_opset`], [`upgrade_opset_to_13`] |
//! | nodes and attributes | [`NodeBuilder`], [`NodeExt`], [`attr`] |
//! | cleanup | [`remove_nodes`], [`rename_tensor`], [`prune_dead_nodes`] |
//! | simplification before quantization (batch norms folded into convolutions, identities and unused weights removed) | [`simplify_for_quantization`], [`fold_batch_norm`], [`remove_identities`], [`remove_unused_initializers`] |
//!
//! # Invariants
//!
//! - Functions that edit take `&mut GraphProto` (or `&mut ModelProto` for opset changes) and
//!   leave it unchanged when they return an error.
//! - Node indices ([`Consumer`], [`Producer`]) are positions in `GraphProto::node` at the time an
//!   index was built; an edit invalidates them, so batch edits ([`insert_on_edges`]) take
//!   positions in the graph as passed.
//! - Nothing here panics on user data, reads files, or knows about ONNX Runtime: external tensor
//!   data comes through the caller's [`ExternalDataResolver`](crate::external::ExternalDataResolver)
//!   (`Model::resolver()` for a loaded model); without one it is a typed error.

#![warn(missing_docs)]

pub mod attr;
mod edit;
mod error;
mod fold;
mod fuse;
mod index;
mod node;
mod opset;
mod topo;
mod types;
mod values;
mod weights;

#[cfg(test)]
mod tests;

pub use edit::{
    Consumers, EdgeInsert, EdgeReport, NameGen, PruneOptions, PruneReport, QdqSpec, insert_on_edge,
    insert_on_edges, prune_dead_nodes, qdq_edge, remove_nodes, rename_tensor,
};
pub use error::{GraphError, OpsetError, TensorError, dtype_name};
pub use fold::{
    BATCH_NORM_EPSILON, FoldReport, FoldedPair, SimplifyReport, SkipReason, SkippedPair,
    fold_batch_norm, remove_identities, remove_unused_initializers, simplify_for_quantization,
};
pub use fuse::{fuse_hard_sigmoids, fuse_hard_swishes, scalar_affine_to_batch_norm};
pub use index::{Consumer, GraphIndex, Producer, subgraph_captures};
pub use node::{NodeBuilder, NodeExt, is_default_domain};
pub use opset::{
    Change, Converted, PER_CHANNEL_QDQ_MIN_OPSET, QDQ_MIN_OPSET, UpgradeOptions, UpgradeReport,
    opset_version, require_opset, require_qdq_opset, supports_per_channel_qdq, upgrade_opset_to_13,
};
pub use topo::{toposort, toposort_in_place};
pub use types::{
    AddOutputsOptions, AddedOutputs, Dim, ElemTypes, OnUnknownType, TensorType, add_output,
    add_outputs, tensor_type_proto,
};
pub use values::{
    Element, element_count, f16_to_f32, scalar_tensor, tensor_from_values, tensor_to_f32,
    tensor_to_f32_with, tensor_to_i64, tensor_values, tensor_values_with,
};
pub use weights::{
    WeightLocation, WeightRef, add_initializer, constant_tensor, find_weight, replace_weight,
    weights,
};

use crate::proto::{GraphProto, ModelProto};

/// The graph of `model`.
pub fn model_graph(model: &ModelProto) -> Result<&GraphProto, GraphError> {
    model.graph.as_ref().ok_or(GraphError::NoGraph)
}

/// The graph of `model`, mutably.
pub fn model_graph_mut(model: &mut ModelProto) -> Result<&mut GraphProto, GraphError> {
    model.graph.as_mut().ok_or(GraphError::NoGraph)
}
