//! Integration tests of kiln-entities: one binary, one module per area.

mod catalogue;
mod entity;
mod enums;
mod metadata;
mod params;
mod record;
mod roundtrip;
mod strategies;
