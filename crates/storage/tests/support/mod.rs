//! Helpers shared by the integration tests (servers, throw-away databases).

pub mod moto;
pub mod postgres;
