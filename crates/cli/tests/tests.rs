//! End-to-end tests of the `kiln` binary: one test binary, one module per command.

mod bench;
mod common;
mod inspect;
mod quantize;
mod registry;
mod runtime;
