//! `kiln models …`, `kiln gc` and `kiln quantize --register` on the embedded registry (SQLite +
//! a blob folder in a temporary `--home`), including the durability test: registering processes
//! killed with SIGKILL at random moments lose nothing that was committed and expose no partial
//! blob.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{kiln, run, stdout_json};

/// `kiln ARGS --home HOME` (and `--json` first, so every subcommand prints JSON).
fn models(home: &Path, args: &[&str]) -> Command {
    let mut command = kiln(&["--json"]);
    // The command (`models`, `gc`), then `--home` (a flag of it), then the rest.
    command
        .args(&args[..1])
        .arg("--home")
        .arg(home)
        .args(&args[1..]);
    command.env_remove("KILN_HOME");
    command.env_remove("KILN_DATABASE_URL");
    command.env_remove("KILN_BLOB_URL");
    command
}

fn ok(output: Output) -> Value {
    assert!(
        output.status.success(),
        "kiln failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout_json(&output)
}

fn failed(output: &Output, needles: &[&str]) {
    assert!(!output.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }
}

/// Pseudo-random bytes (xorshift), so files differ and do not compress.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn write_file(dir: &Path, name: &str, len: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, random_bytes(len, seed)).expect("write a weights file");
    path
}

fn sha256(path: &Path) -> String {
    let mut file = std::fs::File::open(path).expect("open");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    format!("{:x}", hasher.finalize())
}

fn id(model: &Value) -> String {
    model["id"].as_str().expect("an id").to_owned()
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array().expect("a list").iter().map(id).collect()
}

#[test]
fn models_commands_cover_the_catalogue_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let parent_file = write_file(dir.path(), "parent.onnx", 300_000, 1);
    let child_file = write_file(dir.path(), "child.onnx", 100_000, 2);

    let parent = ok(run(models(&home, &["models", "upload", "--tag", "base"])
        .arg(&parent_file)
        .args(["--project", "vision", "--framework", "ONNX"])));
    let parent_id = id(&parent);
    assert_eq!(parent["record"]["name"], "parent");
    assert_eq!(parent["record"]["framework"], "ONNX");
    let weights = &parent["blobs"][0]["blob"];
    assert_eq!(weights["digest"], sha256(&parent_file));
    assert_eq!(weights["size"], 300_000);
    assert_eq!(parent["record"]["uri"], weights["uri"]);

    let child = ok(run(models(&home, &["models", "upload"])
        .arg(&child_file)
        .args(["--project", "vision", "--name", "child-int8"])
        .args(["--parent", &parent_id, "--tag", "int8"])));
    let child_id = id(&child);
    assert_eq!(child["record"]["parent"], parent_id.as_str());

    // list: newest first, filters.
    let all = ok(run(&mut models(&home, &["models", "list"])));
    let listed: Vec<String> = all.as_array().expect("list").iter().map(id).collect();
    assert_eq!(listed, [child_id.clone(), parent_id.clone()]);
    let tagged = ok(run(&mut models(
        &home,
        &["models", "list", "--tag", "int8"],
    )));
    assert_eq!(ids(&tagged), BTreeSet::from([child_id.clone()]));
    let excluded = ok(run(&mut models(
        &home,
        &["models", "list", "--tag", "-int8"],
    )));
    assert_eq!(ids(&excluded), BTreeSet::from([parent_id.clone()]));
    let named = ok(run(&mut models(
        &home,
        &["models", "list", "--name", "CHILD*"],
    )));
    assert_eq!(ids(&named), BTreeSet::from([child_id.clone()]));
    let other = ok(run(&mut models(
        &home,
        &["models", "list", "--project", "nope"],
    )));
    assert_eq!(ids(&other), BTreeSet::new());

    // lineage, both ways.
    let lineage = ok(run(&mut models(&home, &["models", "lineage", &parent_id])));
    assert_eq!(
        ids(&lineage["descendants"]),
        BTreeSet::from([child_id.clone()])
    );
    let lineage = ok(run(&mut models(&home, &["models", "lineage", &child_id])));
    assert_eq!(
        ids(&lineage["ancestors"]),
        BTreeSet::from([parent_id.clone()])
    );
    let text = run(kiln(&["models", "lineage", &child_id, "--home"]).arg(&home));
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("this model") && text.contains("parent"),
        "{text}"
    );

    // tags, metadata (typed, with the cast fallback), publish, archive.
    let tagged = ok(run(&mut models(
        &home,
        &[
            "models", "tag", &child_id, "--add", "prod", "--remove", "int8",
        ],
    )));
    assert_eq!(tagged["record"]["tags"], serde_json::json!(["prod"]));
    let metadata = ok(run(&mut models(
        &home,
        &[
            "models",
            "metadata",
            &child_id,
            "--set",
            "epochs=12:int",
            "--set",
            "lr=0.01:float",
            "--set",
            "note=hello",
        ],
    )));
    assert_eq!(metadata["epochs"]["value"], "12");
    assert_eq!(metadata["epochs"]["type"], "int");
    assert_eq!(metadata["note"]["type"], "str");
    let metadata = ok(run(&mut models(
        &home,
        &["models", "metadata", &child_id, "--unset", "note"],
    )));
    assert!(metadata.get("note").is_none(), "{metadata}");
    let filtered = ok(run(&mut models(
        &home,
        &["models", "list", "--meta", "epochs=12"],
    )));
    assert_eq!(ids(&filtered), BTreeSet::from([child_id.clone()]));

    let published = ok(run(&mut models(&home, &["models", "publish", &parent_id])));
    assert_eq!(published["record"]["published"], true);
    let only = ok(run(&mut models(&home, &["models", "list", "--published"])));
    assert_eq!(ids(&only), BTreeSet::from([parent_id.clone()]));
    let archived = ok(run(&mut models(&home, &["models", "archive", &child_id])));
    assert_eq!(archived["archived"], true);
    let visible = ok(run(&mut models(&home, &["models", "list"])));
    assert_eq!(ids(&visible), BTreeSet::from([parent_id.clone()]));
    let with_archived = ok(run(&mut models(&home, &["models", "list", "--archived"])));
    assert_eq!(with_archived.as_array().map(Vec::len), Some(2));
    let unarchived = ok(run(&mut models(&home, &["models", "unarchive", &child_id])));
    assert_eq!(unarchived["archived"], false);

    // show and download (verified, atomic).
    let shown = ok(run(&mut models(&home, &["models", "show", &child_id])));
    let entries = shown["record"]["metadata"]
        .as_array()
        .expect("metadata entries");
    assert!(
        entries
            .iter()
            .any(|e| e["key"] == "epochs" && e["value"] == "12" && e["type"] == "int"),
        "{entries:?}"
    );
    let out = dir.path().join("downloaded.onnx");
    let downloaded = ok(run(models(
        &home,
        &["models", "download", &parent_id, "--out"],
    )
    .arg(&out)));
    assert_eq!(downloaded["sha256"], sha256(&parent_file));
    assert_eq!(
        std::fs::read(&out).expect("read"),
        std::fs::read(&parent_file).expect("read")
    );

    // Human output works too.
    let text = run(kiln(&["models", "list", "--home"]).arg(&home));
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("parent") && text.contains("child-int8"),
        "{text}"
    );

    // gc keeps referenced blobs.
    let report = ok(run(&mut models(&home, &["gc", "--grace", "0"])));
    assert_eq!(report["deleted"], serde_json::json!([]), "{report}");
}

#[test]
fn bad_registry_input_is_a_typed_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let missing = dir.path().join("missing.onnx");
    failed(
        &run(models(&home, &["models", "upload"]).arg(&missing)),
        &["missing.onnx"],
    );
    failed(
        &run(&mut models(&home, &["models", "show", "not-a-uuid"])),
        &["model id", "not-a-uuid"],
    );
    failed(
        &run(&mut models(
            &home,
            &["models", "show", "0190d0f0-0000-7000-8000-000000000000"],
        )),
        &["0190d0f0-0000-7000-8000-000000000000"],
    );
    let file = write_file(dir.path(), "w.onnx", 1000, 3);
    failed(
        &run(models(&home, &["models", "upload", "--blob-url", "ftp://host/x"]).arg(&file)),
        &["ftp", "file", "s3"],
    );
    failed(
        &run(models(
            &home,
            &[
                "models",
                "upload",
                "--parent",
                "0190d0f0-0000-7000-8000-000000000001",
            ],
        )
        .arg(&file)),
        &["0190d0f0-0000-7000-8000-000000000001"],
    );
    failed(
        &run(&mut models(
            &home,
            &["models", "list", "--precision", "int7"],
        )),
        &["int7"],
    );
}

/// Kills `kiln models upload` with SIGKILL at random moments, many times, then checks that every
/// model the registry lists opens and verifies, that every upload that reported success is
/// there, and that every blob under `sha256/` matches its name (no partial blob is visible).
#[test]
fn registrations_killed_at_random_moments_lose_nothing() {
    const TRIALS: u64 = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    // 6 to 24 MiB: on file:// each is copied by the kernel into uploads/ while hashed, then renamed.
    let files: Vec<PathBuf> = (0..4u64)
        .map(|i| {
            write_file(
                dir.path(),
                &format!("w{i}.bin"),
                (6 * (i as usize + 1)) << 20,
                100 + i,
            )
        })
        .collect();
    let upload = |i: u64, name: String| {
        let mut command = models(&home, &["models", "upload", "--name"]);
        command
            .arg(name)
            .arg(&files[(i % 4) as usize])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    // How long one registration of each file takes here, to spread the kills over it.
    let typical: Vec<_> = (0..4)
        .map(|i| {
            let started = Instant::now();
            let status = upload(i, format!("warm-up-{i}")).status().expect("run");
            assert!(status.success(), "warm-up {i}: {status}");
            started.elapsed()
        })
        .collect();

    let mut completed = BTreeSet::new();
    let mut killed = 0;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for trial in 0..TRIALS {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = typical[(trial % 4) as usize].mul_f64((state % 1000) as f64 / 1000.0 * 1.3);
        let mut child = upload(trial, format!("trial-{trial}"))
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        match child.try_wait().expect("poll") {
            Some(status) => {
                assert!(
                    status.success(),
                    "trial {trial} failed on its own: {status}"
                );
                completed.insert(format!("trial-{trial}"));
            }
            None => {
                child.kill().expect("SIGKILL");
                let status = child.wait().expect("wait");
                if status.success() {
                    completed.insert(format!("trial-{trial}"));
                } else {
                    killed += 1;
                }
            }
        }
    }
    assert!(
        killed >= TRIALS / 4,
        "only {killed} of {TRIALS} trials were killed mid-way"
    );

    let listed = ok(run(&mut models(
        &home,
        &["models", "list", "--limit", "1000"],
    )));
    let listed = listed.as_array().expect("list");
    let names: BTreeSet<String> = listed
        .iter()
        .map(|m| m["record"]["name"].as_str().expect("name").to_owned())
        .collect();
    for name in &completed {
        assert!(
            names.contains(name),
            "{name} reported success but is not registered"
        );
    }
    // Every committed model opens and verifies (download checks the digest).
    for model in listed {
        let out = dir.path().join("check.bin");
        let downloaded = ok(run(models(
            &home,
            &["models", "download", &id(model), "--out"],
        )
        .arg(&out)));
        assert_eq!(downloaded["sha256"], model["blobs"][0]["blob"]["digest"]);
        assert_eq!(sha256(&out), downloaded["sha256"].as_str().expect("digest"));
    }
    // No partial blob is visible: every blob is named by its content's digest.
    let blobs = home.join("blobs").join("sha256");
    let mut count = 0;
    for prefix in std::fs::read_dir(&blobs).expect("blobs") {
        let prefix = prefix.expect("entry").path();
        for blob in std::fs::read_dir(&prefix).expect("blob dir") {
            let blob = blob.expect("entry").path();
            let name = format!(
                "{}{}",
                prefix.file_name().expect("name").to_string_lossy(),
                blob.file_name().expect("name").to_string_lossy()
            );
            assert_eq!(
                sha256(&blob),
                name,
                "{} is not what its name says",
                blob.display()
            );
            count += 1;
        }
    }
    assert!(count <= 4, "{count} blobs for 4 distinct files");
    // gc removes stale staging uploads and keeps every committed model intact.
    ok(run(&mut models(&home, &["gc", "--grace", "0"])));
    for model in listed {
        let out = dir.path().join("check.bin");
        ok(run(models(
            &home,
            &["models", "download", &id(model), "--out"],
        )
        .arg(&out)));
    }
    eprintln!(
        "{TRIALS} trials: {killed} killed mid-way, {} completed, {} models registered (one \
         registration took {typical:?} by size)",
        completed.len(),
        listed.len()
    );
}

/// `kiln quantize --register`, twice on the MNIST CNN: one FP32 parent (found again by its
/// digest), two INT8 children with their measurements, metric, report and calibration
/// statistics, and "all INT8 models derived from X" is one lineage query.
#[test]
fn quantize_register_records_lineage_measurements_and_statistics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let model = dir.path().join("selfcnn_mnist5k.onnx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/selfcnn_mnist5k.onnx"),
        &model,
    )
    .expect("copy the MNIST model");
    let mnist = kiln_assets::fetch(&kiln_assets::catalog::MNIST_5K).expect("MNIST CSV");
    let quantize = |out: &str| {
        let output = run(kiln(&["--json", "quantize", "--preprocess", "mnist"])
            .args(["--subset", "100", "--batch", "32", "--stat-batch", "16"])
            .arg(&model)
            .arg("--data")
            .arg(&mnist)
            .arg("--out")
            .arg(dir.path().join(out))
            .args(["--register", "--project", "mnist", "--home"])
            .arg(&home));
        ok(output)
    };
    let first = quantize("a.int8.onnx");
    let second = quantize("b.int8.onnx");
    let (r1, r2) = (&first["registered"], &second["registered"]);
    assert_eq!(r1["fp32_new"], true, "{r1}");
    assert_eq!(r2["fp32_new"], false, "{r2}");
    assert_eq!(r1["fp32"], r2["fp32"]);
    assert_ne!(r1["int8"], r2["int8"]);
    let fp32_id = r1["fp32"].as_str().expect("fp32 id");

    // The INT8 child: parent link, entity, blobs, measured metadata.
    let int8_id = r1["int8"].as_str().expect("int8 id");
    let child = ok(run(&mut models(&home, &["models", "show", int8_id])));
    assert_eq!(child["record"]["parent"], fp32_id);
    assert_eq!(child["entity"]["precision"], serde_json::json!(["int8"]));
    assert_eq!(child["entity"]["previous_revision"], fp32_id);
    assert!(child["entity"]["latency"].as_u64() > Some(0), "{child}");
    let roles: BTreeSet<&str> = child["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .map(|b| b["role"].as_str().expect("role"))
        .collect();
    assert_eq!(
        roles,
        BTreeSet::from(["weights", "quantize_report", "calibration_statistics"])
    );
    let metadata: BTreeSet<&str> = child["record"]["metadata"]
        .as_array()
        .expect("metadata")
        .iter()
        .map(|e| e["key"].as_str().expect("key"))
        .collect();
    for key in [
        "metric",
        "fp32_metric",
        "metric_name",
        "latency_ms",
        "throughput_fps",
        "size_bytes",
    ] {
        assert!(metadata.contains(key), "{key} missing: {metadata:?}");
    }
    // The registered weights are the INT8 file written.
    let out = dir.path().join("downloaded.int8.onnx");
    let downloaded = ok(run(models(
        &home,
        &["models", "download", int8_id, "--out"],
    )
    .arg(&out)));
    assert_eq!(
        downloaded["sha256"],
        sha256(&dir.path().join("a.int8.onnx"))
    );

    // All INT8 models derived from the FP32 model.
    let lineage = ok(run(&mut models(
        &home,
        &["models", "lineage", fp32_id, "--precision", "int8"],
    )));
    assert_eq!(
        ids(&lineage["descendants"]),
        BTreeSet::from([
            int8_id.to_owned(),
            r2["int8"].as_str().expect("id").to_owned()
        ])
    );
    let int8_models = ok(run(&mut models(
        &home,
        &[
            "models",
            "list",
            "--project",
            "mnist",
            "--precision",
            "int8",
        ],
    )));
    assert_eq!(int8_models.as_array().map(Vec::len), Some(2));
}
