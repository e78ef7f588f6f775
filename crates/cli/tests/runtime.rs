//! `kiln runtime`: run the binary, read stdout/stderr and the exit code.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{kiln, run, stdout_json};

/// kiln's runtime, installed (fetched when not cached) in the cache these tests' children use.
fn installed_library() -> PathBuf {
    let cache = kiln_assets::Cache::from_env();
    cache
        .fetch_all(kiln_assets::catalog::RUNTIME)
        .expect("installing the ONNX Runtime library");
    cache.path_of(&kiln_assets::catalog::ONNXRUNTIME_LIB)
}

fn places(status: &Value) -> Vec<(&str, &str)> {
    status["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| {
            (
                c["place"].as_str().unwrap_or("?"),
                c["outcome"].as_str().unwrap_or("?"),
            )
        })
        .collect()
}

fn garbage_file(dir: &Path) -> PathBuf {
    let path = dir.join("libonnxruntime.so");
    std::fs::write(&path, "this is not a shared library\n").expect("write");
    path
}

#[test]
fn help_lists_the_commands() {
    let output = run(&mut kiln(&["--help"]));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in ["runtime", "--json", "--verbose", "--ort-lib"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let output = run(&mut kiln(&["runtime", "--help"]));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("install") && text.contains("status"),
        "{text}"
    );
}

#[test]
fn status_json_reports_the_installed_runtime() {
    let library = installed_library();
    let output = run(&mut kiln(&["runtime", "status", "--json"]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = stdout_json(&output);
    assert_eq!(status["version"], "1.31.1");
    assert_eq!(status["source"], "kiln-runtime-dir");
    assert_eq!(
        Path::new(status["library"].as_str().expect("library")),
        library.canonicalize().expect("canonical")
    );
    assert!(
        status["why"]
            .as_str()
            .expect("why")
            .contains("kiln runtime install")
    );
    let places = places(&status);
    assert_eq!(
        places[..3],
        [
            ("explicit", "not-configured"),
            ("env-var", "not-configured"),
            ("kiln-runtime-dir", "used")
        ]
    );
    assert!(
        places[3..]
            .iter()
            .all(|(place, outcome)| *place == "system-loader" && *outcome == "skipped")
    );
    // --json keeps stderr free of log noise.
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_garbage_ort_dylib_path_is_reported_and_skipped() {
    installed_library();
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = garbage_file(dir.path());

    let output = run(kiln(&["runtime", "status", "--json"]).env("ORT_DYLIB_PATH", &garbage));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = stdout_json(&output);
    assert_eq!(status["source"], "kiln-runtime-dir");
    let env_var = &status["candidates"][1];
    assert_eq!(env_var["place"], "env-var");
    assert_eq!(env_var["outcome"], "not-a-library");
    assert_eq!(Path::new(env_var["path"].as_str().expect("path")), garbage);
    assert!(
        status["why"]
            .as_str()
            .expect("why")
            .contains("not a shared library")
    );

    let output = run(kiln(&["runtime", "status"]).env("ORT_DYLIB_PATH", &garbage));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("ORT_DYLIB_PATH") && text.contains("not a shared library"),
        "{text}"
    );
    assert!(text.contains("ONNX Runtime 1.31.1"), "{text}");
}

#[test]
fn with_nothing_usable_every_place_is_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = garbage_file(dir.path());
    let empty_cache = dir.path().join("cache");
    let output = run(kiln(&["runtime", "status", "--json"])
        .env("ORT_DYLIB_PATH", &garbage)
        .env("KILN_CACHE_DIR", &empty_cache)
        .env("KILN_OFFLINE", "1"));
    let document = stdout_json(&output);
    if output.status.success() {
        // This machine's system loader has an ONNX Runtime: it must be the one used.
        assert_eq!(document["source"], "system-loader");
        return;
    }
    assert_eq!(output.status.code(), Some(1));
    let error = document["error"].as_str().expect("error message");
    assert!(
        error.contains("kiln runtime install") && error.contains("ORT_DYLIB_PATH"),
        "{error}"
    );
    let places = places(&document);
    assert_eq!(places[0], ("explicit", "not-configured"));
    assert_eq!(places[1], ("env-var", "not-a-library"));
    assert_eq!(places[2], ("kiln-runtime-dir", "missing"));
    assert!(
        places.len() >= 4
            && places[3..]
                .iter()
                .all(|(place, _)| *place == "system-loader")
    );
    // The readable chain goes to stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: no usable ONNX Runtime library"),
        "{stderr}"
    );
    assert!(stderr.contains(&garbage.display().to_string()), "{stderr}");
}

#[test]
fn an_explicit_missing_library_fails_with_a_readable_chain() {
    let output = run(&mut kiln(&[
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
        "runtime",
        "status",
    ]));
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("explicit library path /nonexistent/libonnxruntime.so: missing"),
        "{stderr}"
    );
}

#[test]
fn install_json_reports_the_files_offline_when_cached() {
    let library = installed_library();
    let output = run(kiln(&["runtime", "install", "--json"]).env("KILN_OFFLINE", "1"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let document = stdout_json(&output);
    assert_eq!(
        Path::new(document["library"].as_str().expect("library")),
        library
    );
    let files = document["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    assert!(
        files
            .iter()
            .all(|f| Path::new(f.as_str().expect("path")).is_file())
    );
    assert_eq!(document["in_use"]["version"], "1.31.1");
}
