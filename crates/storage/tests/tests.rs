//! Integration tests of kiln-storage against real services (one test binary; modules inside):
//! the blob conformance suite on fs, memory and S3 (moto), the registry conformance suite on
//! SQLite and PostgreSQL.

mod blob;
mod registry;
mod store;
mod support;
