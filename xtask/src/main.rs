//! xtask: everything that is not `cargo build` — setup, ci, codegen, demo.

mod codegen;

use std::path::PathBuf;

use anyhow::{Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("codegen") => codegen::run(&root, codegen::Mode::Write),
        _ => bail!("usage: cargo xtask <setup|ci|codegen|demo>"),
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}
