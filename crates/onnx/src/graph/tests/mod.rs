//! Tests of the graph module on synthetic graphs built in code; one `check` helper per area.

mod edit;
mod fixtures;
mod fold;
mod index;
mod node;
mod opset;
mod topo;
mod types;
mod values;
mod weights;
