//! kiln's end-to-end tests through the facade: one test binary, one module per area.

mod common;
mod graph_edits;
mod quantize;
mod roundtrip;
mod simplify;
