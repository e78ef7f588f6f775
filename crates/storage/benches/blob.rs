//! Blob store throughput: `put_file` of a 64 MiB file to `file://` against plain copies of the
//! same file (with and without fsync), and SHA-256 alone. The upload should stay within ~0.8x of
//! a plain copy: reading, hashing and writing overlap on separate threads.
//!
//! `KILN_BENCH_BLOB_MIB` changes the file size. Memory stays flat in the file size: compare the
//! peak RSS of `KILN_BENCH_BLOB_MIB=100` and `=1024` runs of
//! `/usr/bin/time -v target/release/deps/blob-<hash> --bench put_file`.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_storage::{BlobStore, BlobStoreOptions};
use sha2::{Digest, Sha256};

/// The file size: `KILN_BENCH_BLOB_MIB` MiB, default 64.
fn size() -> usize {
    let mib = std::env::var("KILN_BENCH_BLOB_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64);
    mib * 1024 * 1024
}

/// `len` pseudo-random bytes (incompressible, no runs), continuing from `state`.
fn data(len: usize, state: &mut u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `len` pseudo-random bytes to `path`, 8 MiB at a time.
fn write_source(path: &Path, len: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create source"));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = len;
    while left > 0 {
        let n = left.min(8 * 1024 * 1024);
        file.write_all(&data(n, &mut state)).expect("write source");
        left -= n;
    }
    file.flush().expect("flush source");
}

/// A plain sequential copy through an 8 MiB buffer.
fn read_write_copy(from: &Path, to: &Path, fsync: bool) {
    let mut input = std::fs::File::open(from).expect("open source");
    let mut output = std::fs::File::create(to).expect("create copy");
    let mut buffer = vec![0u8; 8 * 1024 * 1024];
    loop {
        let n = input.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        output.write_all(&buffer[..n]).expect("write");
    }
    if fsync {
        output.sync_all().expect("fsync");
    }
}

fn blob(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("weights.bin");
    let size = size();
    write_source(&source, size);
    let copy = dir.path().join("copy.bin");

    let mut group = c.benchmark_group(format!("blob_{}MiB", size >> 20));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(size as u64));

    group.bench_function("std_fs_copy", |b| {
        b.iter(|| std::fs::copy(&source, &copy).expect("copy"));
    });
    group.bench_function("read_write_copy", |b| {
        b.iter(|| read_write_copy(&source, &copy, false));
    });
    group.bench_function("read_write_copy_fsync", |b| {
        b.iter(|| read_write_copy(&source, &copy, true));
    });
    for fsync in [false, true] {
        let options = BlobStoreOptions {
            fsync,
            ..BlobStoreOptions::default()
        };
        let root = dir.path().join(format!("blobs-fsync-{fsync}"));
        let store = BlobStore::open(&root.display().to_string(), options).expect("open store");
        let name = if fsync { "put_file_fsync" } else { "put_file" };
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let blob = store.put_file(&source, None).await.expect("put_file");
                    // Delete it so every iteration stores the blob anew (no dedupe).
                    store.delete(&blob.digest).await.expect("delete");
                });
            });
        });
    }
    group.bench_function("sha256", |b| {
        let bytes = data(size, &mut 0x9E37_79B9_7F4A_7C15);
        b.iter(|| Sha256::digest(&bytes));
    });
    group.finish();
}

criterion_group!(benches, blob);
criterion_main!(benches);
