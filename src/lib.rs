//! kiln: describe, shrink, keep and serve deep-learning models.
//!
//! This facade re-exports kiln's crates behind cargo features, so a user picks what they need:
//!
//! | feature | re-export | what it is |
//! |---|---|---|
//! | `entities` (default) | [`entities`] | the typed model entity, its enums, registry records, inference/training parameters |
//! | `onnx` (default) | [`onnx`] | ONNX models as data: zero-copy decoding, external data, graph editing, summaries |
//! | `pipeline` (default) | [`pipeline`] | post-training INT8 quantization: the POT contracts, statistics, algorithms, loaders, metrics |
//! | `engine-ort` (default) | [`engine_ort`] | ONNX Runtime: discovery, installation from PyPI, sessions |
//! | `assets` (default) | [`assets`] | pinned files from PyPI wheels (runtime, real models, photos) |
//! | `storage` (default) | [`storage`] | the registry (SQLite or PostgreSQL) and content-addressed blobs (object_store) |
//! | `tracking-client` (default) | [`tracking_client`] | ClearML's `OutputModel` / `InputModel` API over the embedded registry |

#[cfg(feature = "assets")]
#[doc(inline)]
pub use kiln_assets as assets;
#[cfg(feature = "engine-ort")]
#[doc(inline)]
pub use kiln_engine_ort as engine_ort;
#[cfg(feature = "entities")]
#[doc(inline)]
pub use kiln_entities as entities;
#[cfg(feature = "onnx")]
#[doc(inline)]
pub use kiln_onnx as onnx;
#[cfg(feature = "pipeline")]
#[doc(inline)]
pub use kiln_pipeline as pipeline;
#[cfg(feature = "storage")]
#[doc(inline)]
pub use kiln_storage as storage;
#[cfg(feature = "tracking-client")]
#[doc(inline)]
pub use kiln_tracking_client as tracking_client;
