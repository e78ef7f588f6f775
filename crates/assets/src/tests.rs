//! Tests of the fetch path against a Simple API served on loopback by the test itself.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::*;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// A wheel built in memory with the given members.
fn make_wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, bytes) in members {
        zip.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("start file");
        zip.write_all(bytes).expect("write member");
    }
    zip.finish().expect("finish zip");
    out.into_inner()
}

/// Serves `/{project}/` (PEP 691 JSON listing `filename`) and `/files/{filename}` on loopback.
/// Returns the index URL and a counter of wheel downloads.
fn serve(
    project: &str,
    filename: &str,
    wheel: Vec<u8>,
    listed_sha: String,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    let downloads = Arc::new(AtomicUsize::new(0));
    let counter = downloads.clone();
    let page = serde_json::json!({
        "meta": {"api-version": "1.1"},
        "name": project,
        "files": [
            {"filename": "other-0.1.tar.gz", "url": "/files/other", "hashes": {}},
            {"filename": filename, "url": format!("/files/{filename}"), "hashes": {"sha256": listed_sha}},
        ],
    })
    .to_string();
    let project_path = format!("/{project}/");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header == "\r\n" || header.is_empty() {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_owned();
            let (status, body): (&str, &[u8]) = if path == project_path {
                ("200 OK", page.as_bytes())
            } else if path.starts_with("/files/") {
                counter.fetch_add(1, Ordering::SeqCst);
                ("200 OK", &wheel)
            } else {
                ("404 Not Found", b"no")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    (format!("http://127.0.0.1:{port}"), downloads)
}

struct Fixture {
    cache: Cache,
    model: &'static Asset,
    photo: &'static Asset,
    downloads: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// A wheel with two members, an index serving it, and an empty cache. `tamper` edits the wheel
/// after its digest was pinned.
fn fixture(tamper: impl FnOnce(&mut Vec<u8>), member_sha_override: Option<&str>) -> Fixture {
    let model_bytes: &[u8] = b"not really an onnx model";
    let photo_bytes: &[u8] = b"\x89PNG\r\n\x1a\nfake";
    let mut wheel = make_wheel(&[
        ("pkg/models/m.onnx", model_bytes),
        ("pkg/data/p.png", photo_bytes),
    ]);
    let wheel_sha = sha(&wheel);
    tamper(&mut wheel);
    let (index, downloads) = serve("pkg", "pkg-1.0-py3-none-any.whl", wheel, wheel_sha.clone());
    let whl: &'static Wheel = leak(Wheel {
        project: "pkg",
        filename: "pkg-1.0-py3-none-any.whl",
        sha256: leak(wheel_sha),
    });
    let model = leak(Asset {
        name: "m",
        wheel: whl,
        member: "pkg/models/m.onnx",
        sha256: leak(member_sha_override.map_or_else(|| sha(model_bytes), str::to_owned)),
        size: model_bytes.len() as u64,
    });
    let photo = leak(Asset {
        name: "p",
        wheel: whl,
        member: "pkg/data/p.png",
        sha256: leak(sha(photo_bytes)),
        size: photo_bytes.len() as u64,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    Fixture {
        cache: Cache::new(dir.path()).with_index(index),
        model,
        photo,
        downloads,
        _dir: dir,
    }
}

#[test]
fn fetches_verifies_and_caches_each_wheel_once() {
    let f = fixture(|_| {}, None);
    let paths = f.cache.fetch_all(&[f.model, f.photo]).expect("fetch both");
    assert_eq!(
        f.downloads.load(Ordering::SeqCst),
        1,
        "one download for two members"
    );
    assert_eq!(
        std::fs::read(&paths[0]).expect("read"),
        b"not really an onnx model"
    );
    assert!(paths[1].ends_with("pkg-1.0-py3-none-any/pkg/data/p.png"));
    // Cached now: no further download, and offline mode is fine.
    let again = f
        .cache
        .clone()
        .offline(true)
        .fetch(f.model)
        .expect("cached");
    assert_eq!(again, paths[0]);
    assert_eq!(f.downloads.load(Ordering::SeqCst), 1);
    f.cache.verify(f.model).expect("verifies");
    // No temporary files are left next to the members.
    let leftovers: Vec<_> = std::fs::read_dir(paths[0].parent().expect("parent"))
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_corrupted_cached_file_is_detected_and_refetched() {
    let f = fixture(|_| {}, None);
    let path = f.cache.fetch(f.model).expect("fetch");
    std::fs::write(&path, b"not really an onnx modeX").expect("corrupt");
    let err = f.cache.verify(f.model).expect_err("corruption is detected");
    assert!(matches!(err, AssetError::DigestMismatch { .. }), "{err}");
    assert!(f.cache.cached(f.model).is_none());
    f.cache.fetch(f.model).expect("refetched");
    assert_eq!(f.downloads.load(Ordering::SeqCst), 2);
}

#[test]
fn a_tampered_wheel_is_refused_and_nothing_is_cached() {
    let f = fixture(|w| w.push(0), None);
    let err = f.cache.fetch(f.model).expect_err("tampered wheel");
    assert!(matches!(err, AssetError::DigestMismatch { .. }), "{err}");
    assert!(!f.cache.path_of(f.model).exists());
}

#[test]
fn a_member_with_the_wrong_digest_is_not_made_visible() {
    let f = fixture(|_| {}, Some(&"0".repeat(64)));
    let err = f.cache.fetch(f.model).expect_err("wrong member digest");
    assert!(err.to_string().contains("pkg/models/m.onnx"), "{err}");
    assert!(!f.cache.path_of(f.model).exists());
}

#[test]
fn offline_cache_miss_names_the_file_and_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = Cache::new(dir.path()).offline(true);
    let err = cache.fetch(&catalog::YOLOV8N).expect_err("offline miss");
    let text = err.to_string();
    assert!(
        text.contains("320n.onnx") && text.contains("cargo xtask setup"),
        "{text}"
    );
}

#[test]
fn an_unreachable_index_is_a_network_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 9 on loopback: nothing listens there.
    let cache = Cache::new(dir.path()).with_index("http://127.0.0.1:9");
    let err = cache.fetch(&catalog::MNIST_5K).expect_err("no index");
    assert!(matches!(err, AssetError::Network { .. }), "{err}");
}

#[test]
fn catalogue_names_are_unique_and_pins_are_well_formed() {
    let all = catalog::everything();
    for (i, a) in all.iter().enumerate() {
        assert_eq!(a.sha256.len(), 64, "{}", a.name);
        assert!(
            a.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "{}",
            a.name
        );
        assert_eq!(a.wheel.sha256.len(), 64, "{}", a.wheel.filename);
        assert!(
            all[..i].iter().all(|b| b.name != a.name),
            "duplicate {}",
            a.name
        );
        assert_eq!(catalog::by_name(a.name), Some(*a));
    }
}
