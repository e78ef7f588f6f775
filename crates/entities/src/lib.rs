//! kiln-entities: plain data for models (see the crate docs).
