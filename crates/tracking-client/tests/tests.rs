//! Integration tests of kiln-tracking-client on the real `Local` backend (a SQLite registry file
//! and `file://` blob stores in a temporary directory), plus wrappers around it that delay or
//! fail uploads to test the background machinery.

mod common;
mod errors;
mod input;
mod models;
mod reports;
mod uploads;
mod weights;
