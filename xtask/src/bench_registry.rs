//! `cargo xtask bench registry`: registering a large weights file with `kiln models upload`
//! against a plain sequential copy of the same file on the same disk (throughput, and peak RSS
//! of the uploading process at two sizes), then the criterion benches of kiln-storage (registry
//! writes, catalogue queries and batched events on SQLite and PostgreSQL; blob puts).
//!
//! Rounds alternate (copy, `std::fs::copy`, kiln) so the machine's noise hits every method alike;
//! the medians and their ratios are printed and written to
//! `target/kiln-bench/registry/results.json`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::services;

const USAGE: &str = "\
usage: cargo xtask bench registry [--sizes MIB,MIB] [--rounds N] [--release] [--no-criterion]

  --sizes MIB,...   file sizes to register (default 100,1024)
  --rounds N        alternating rounds per size (default 3)
  --release         build kiln with --release (minutes on 2 cores; default: dev profile)
  --no-criterion    skip the criterion benches of kiln-storage";

struct Options {
    sizes: Vec<u64>,
    rounds: usize,
    release: bool,
    criterion: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            sizes: vec![100, 1024],
            rounds: 3,
            release: false,
            criterion: true,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--sizes" => {
                    let value = args.next().context("--sizes needs a value")?;
                    options.sizes = value
                        .split(',')
                        .map(|s| s.trim().parse::<u64>().context("--sizes: MiB numbers"))
                        .collect::<Result<_>>()?;
                }
                "--rounds" => {
                    let value = args.next().context("--rounds needs a value")?;
                    options.rounds = value.parse().context("--rounds: a number")?;
                }
                "--release" => options.release = true,
                "--no-criterion" => options.criterion = false,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown option {other:?}\n{USAGE}"),
            }
        }
        if options.rounds == 0 || options.sizes.is_empty() {
            bail!("--rounds and --sizes must not be empty\n{USAGE}");
        }
        Ok(options)
    }
}

/// One measurement: seconds, and the peak RSS of the process that did the work.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    peak_rss: u64,
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    let out = root.join("target").join("kiln-bench").join("registry");
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let kiln = build_kiln(root, options.release)?;

    let mut rows = Vec::new();
    for &mib in &options.sizes {
        let file = out.join(format!("weights-{mib}MiB.bin"));
        write_random(&file, mib << 20)?;
        let mut copy = Vec::new();
        let mut fs_copy = Vec::new();
        let mut upload = Vec::new();
        for round in 0..options.rounds {
            copy.push(plain_copy(&file, &out.join("copy.bin"))?);
            fs_copy.push(std_copy(&file, &out.join("copy.bin"))?);
            upload.push(kiln_upload(
                &kiln,
                &file,
                &out.join(format!("home-{round}")),
            )?);
        }
        let row = json!({
            "mib": mib,
            "copy_s": median(&copy, |s| s.seconds),
            "std_fs_copy_s": median(&fs_copy, |s| s.seconds),
            "kiln_upload_s": median(&upload, |s| s.seconds),
            "kiln_peak_rss_bytes": upload.iter().map(|s| s.peak_rss).max().unwrap_or(0),
            "rounds": options.rounds,
        });
        eprintln!("{row}");
        rows.push(row);
        fs::remove_file(&file).ok();
    }
    fs::remove_file(out.join("copy.bin")).ok();

    println!();
    println!(
        "{:>8}  {:>10}  {:>12}  {:>10}  {:>8}  {:>8}  {:>12}",
        "MiB", "copy s", "fs::copy s", "kiln s", "vs copy", "vs fs::c", "kiln RSS MiB"
    );
    for row in &rows {
        let f = |k: &str| row[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>8}  {:>10.3}  {:>12.3}  {:>10.3}  {:>7.2}x  {:>7.2}x  {:>12.1}",
            row["mib"],
            f("copy_s"),
            f("std_fs_copy_s"),
            f("kiln_upload_s"),
            f("copy_s") / f("kiln_upload_s"),
            f("std_fs_copy_s") / f("kiln_upload_s"),
            f("kiln_peak_rss_bytes") / (1024.0 * 1024.0),
        );
    }
    println!(
        "(throughput ratios: above 1 means kiln registered faster than the copy; \
         the copy reads and writes 8 MiB pieces and fsyncs, as kiln does)"
    );
    let results = json!({ "upload": rows, "binary": kiln.display().to_string() });
    let path = out.join("results.json");
    fs::write(&path, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("results: {}", path.display());

    if options.criterion {
        let mut env = Vec::new();
        if let Some(url) = services::ensure_postgres()? {
            env.push((services::POSTGRES_ENV, url));
        }
        for bench in ["registry", "blob"] {
            crate::run_env(
                root,
                "cargo",
                &["bench", "--package", "kiln-storage", "--bench", bench],
                &env,
            )?;
        }
    }
    Ok(())
}

fn build_kiln(root: &Path, release: bool) -> Result<PathBuf> {
    let (args, dir): (&[&str], _) = if release {
        (&["build", "--release", "--package", "kiln-cli"], "release")
    } else {
        (&["build", "--package", "kiln-cli"], "debug")
    };
    crate::run(root, "cargo", args)?;
    Ok(root.join("target").join(dir).join("kiln"))
}

/// `len` pseudo-random bytes (they neither compress nor deduplicate).
fn write_random(path: &Path, len: u64) -> Result<()> {
    let mut file =
        fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut state = len | 1;
    let mut buffer = vec![0u8; 8 << 20];
    let mut left = len;
    while left > 0 {
        for word in buffer.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(buffer.len() as u64) as usize;
        file.write_all(&buffer[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(())
}

/// Reads and writes 8 MiB pieces, then fsyncs: the sequential copy kiln's upload is held to.
fn plain_copy(from: &Path, to: &Path) -> Result<Sample> {
    let started = Instant::now();
    let mut source = fs::File::open(from)?;
    let mut dest = fs::File::create(to)?;
    let mut buffer = vec![0u8; 8 << 20];
    loop {
        let n = source.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        dest.write_all(&buffer[..n])?;
    }
    dest.sync_all()?;
    let seconds = started.elapsed().as_secs_f64();
    fs::remove_file(to)?;
    Ok(Sample {
        seconds,
        peak_rss: 0,
    })
}

/// `std::fs::copy` (in-kernel `copy_file_range`), then fsync.
fn std_copy(from: &Path, to: &Path) -> Result<Sample> {
    let started = Instant::now();
    fs::copy(from, to)?;
    fs::File::open(to)?.sync_all()?;
    let seconds = started.elapsed().as_secs_f64();
    fs::remove_file(to)?;
    Ok(Sample {
        seconds,
        peak_rss: 0,
    })
}

/// `kiln models upload FILE` into a fresh home: the whole registration (open, store the blob
/// streamed and fsynced, commit the row), timed, with the process's peak RSS from `wait4`.
fn kiln_upload(kiln: &Path, file: &Path, home: &Path) -> Result<Sample> {
    if home.exists() {
        fs::remove_dir_all(home)?;
    }
    let started = Instant::now();
    let child = Command::new(kiln)
        .args(["models", "--home"])
        .arg(home)
        .arg("upload")
        .arg(file)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", kiln.display()))?;
    let (status, peak_rss) = wait_with_rusage(child.id())?;
    let seconds = started.elapsed().as_secs_f64();
    if !status {
        bail!("kiln models upload {} failed", file.display());
    }
    fs::remove_dir_all(home)?;
    Ok(Sample { seconds, peak_rss })
}

/// Waits for the child `pid`; whether it succeeded, and its peak RSS in bytes.
fn wait_with_rusage(pid: u32) -> Result<(bool, u64)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain old data, valid when zeroed; wait4 writes into both locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: waiting on our own child with valid pointers to locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // ru_maxrss is in KiB on Linux.
    Ok((ok, u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024))
}

fn median(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(f).collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
