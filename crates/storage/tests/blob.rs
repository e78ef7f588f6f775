//! The blob store: one conformance suite run on the local filesystem, in memory and on S3 (moto on
//! loopback), plus URL, URI and credential errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use kiln_entities::{BlobRef, Sha256Digest};
use kiln_storage::blob::{ProgressFn, SUPPORTED_SCHEMES};
use kiln_storage::{BlobError, BlobStore, BlobStoreOptions};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::support::moto::Moto;

/// A small part size, so that a few KiB take the multipart path with several parts.
const PART: usize = 1024;

fn sha(bytes: &[u8]) -> Sha256Digest {
    Sha256Digest::from_bytes(Sha256::digest(bytes).into())
}

/// `len` deterministic pseudo-random bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn options(scratch: &Path) -> BlobStoreOptions {
    BlobStoreOptions {
        cache_dir: Some(scratch.join("cache")),
        part_size: PART,
        max_concurrent_parts: 2,
        ..BlobStoreOptions::default()
    }
}

/// The key prefix of `store` (`""` or `"a/b/"`), read off a key.
fn raw_prefix(store: &BlobStore) -> String {
    let key = store.key(&sha(b"")).to_string();
    let at = key.find("sha256/").expect("keys contain sha256/");
    key[..at].to_owned()
}

/// Every object key in the store, blobs and staging alike.
async fn raw_keys(store: &BlobStore) -> Vec<String> {
    let metas: Vec<_> = store
        .object_store()
        .list(None)
        .try_collect()
        .await
        .expect("raw list");
    metas.into_iter().map(|m| m.location.to_string()).collect()
}

async fn digests(store: &BlobStore) -> BTreeSet<Sha256Digest> {
    store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|info| info.digest)
        .collect()
}

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let progress: ProgressFn = Arc::new(move |done| sink.lock().expect("progress lock").push(done));
    (progress, seen)
}

fn expect_mismatch(error: BlobError, expected: &Sha256Digest, actual: &Sha256Digest) {
    let text = error.to_string();
    match error {
        BlobError::DigestMismatch {
            expected: e,
            actual: a,
            ..
        } => {
            assert_eq!(&e, expected);
            assert_eq!(&a, actual);
            assert!(
                text.contains(expected.as_str()) && text.contains(actual.as_str()),
                "{text}"
            );
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
}

/// The conformance suite: `store` must be empty, opened with [`options`] on `scratch`.
async fn conformance(store: &BlobStore, scratch: &Path) {
    assert!(
        store.list().await.expect("list").is_empty(),
        "the store starts empty"
    );
    let mut expected = BTreeSet::new();

    // put / head / get, and the URI layout.
    let small = Bytes::from_static(b"hello kiln");
    let blob = store.put_bytes(small.clone()).await.expect("put small");
    assert_eq!(blob.digest, sha(&small));
    assert_eq!(blob.size, 10);
    assert_eq!(blob.uri, store.uri(&blob.digest));
    let hex = blob.digest.as_str();
    assert_eq!(
        blob.uri,
        format!("{}/sha256/{}/{}", store.url(), &hex[..2], &hex[2..])
    );
    assert_eq!(
        BlobStore::split_uri(&blob.uri).expect("split"),
        (store.url().to_owned(), blob.digest.clone())
    );
    assert_eq!(
        store.key(&blob.digest).to_string(),
        format!("{}sha256/{}/{}", raw_prefix(store), &hex[..2], &hex[2..])
    );
    let info = store
        .head(&blob.digest)
        .await
        .expect("head")
        .expect("present");
    assert_eq!((info.digest.clone(), info.size), (blob.digest.clone(), 10));
    assert_eq!(store.get_bytes(&blob.digest).await.expect("get"), small);
    expected.insert(blob.digest.clone());

    // Dedupe: the same bytes again are the same blob.
    let again = store.put_bytes(small.clone()).await.expect("put again");
    assert_eq!(again, blob);
    assert_eq!(digests(store).await, expected);

    // The empty blob.
    let empty = store.put_bytes(Bytes::new()).await.expect("put empty");
    assert_eq!(
        empty.digest.as_str(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(empty.size, 0);
    assert!(
        store
            .get_bytes(&empty.digest)
            .await
            .expect("get empty")
            .is_empty()
    );
    expected.insert(empty.digest.clone());

    // Multipart: a file of several parts, with progress.
    let big = data(PART * 5 + 17, 1);
    let big_path = scratch.join("big.bin");
    std::fs::write(&big_path, &big).expect("write input");
    let (progress, seen) = recorder();
    let big_blob = store
        .put_file(&big_path, Some(progress))
        .await
        .expect("put file");
    assert_eq!(big_blob.digest, sha(&big));
    assert_eq!(big_blob.size, big.len() as u64);
    let seen = seen.lock().expect("progress lock").clone();
    assert!(seen.len() > 2, "progress per part: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    assert_eq!(seen.last().copied(), Some(big.len() as u64));
    assert_eq!(
        store.get_bytes(&big_blob.digest).await.expect("get big"),
        big
    );
    expected.insert(big_blob.digest.clone());
    // The same content through put_bytes (multipart too) and put_stream dedupes.
    assert_eq!(
        store
            .put_bytes(Bytes::from(big.clone()))
            .await
            .expect("put big bytes"),
        big_blob
    );
    let pieces: Vec<std::io::Result<Bytes>> = big
        .chunks(700)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let streamed = store
        .put_stream(futures::stream::iter(pieces), None)
        .await
        .expect("put stream");
    assert_eq!(streamed, big_blob);
    // Exactly one part, and a file shorter than one part.
    for (len, seed) in [(PART, 2), (PART - 1, 3)] {
        let bytes = data(len, seed);
        let path = scratch.join(format!("part-{len}.bin"));
        std::fs::write(&path, &bytes).expect("write input");
        let put = store.put_file(&path, None).await.expect("put file");
        assert_eq!((put.digest.clone(), put.size), (sha(&bytes), len as u64));
        assert_eq!(store.get_bytes(&put.digest).await.expect("get"), bytes);
        expected.insert(put.digest);
    }
    assert_eq!(digests(store).await, expected);
    assert!(
        raw_keys(store).await.iter().all(|k| !k.contains("uploads")),
        "no staging object left: {:?}",
        raw_keys(store).await
    );

    // An upload whose source fails midway is aborted: nothing new under sha256/, no staging.
    let failing: Vec<std::io::Result<Bytes>> = vec![
        Ok(Bytes::from(data(PART, 10))),
        Ok(Bytes::from(data(PART, 11))),
        Ok(Bytes::from(data(PART, 12))),
        Err(std::io::Error::other("disk on fire")),
    ];
    let error = store
        .put_stream(futures::stream::iter(failing), None)
        .await
        .expect_err("a failing source fails the upload");
    assert!(
        matches!(error, BlobError::Source { bytes, .. } if bytes == 3 * PART as u64),
        "{error:?}"
    );
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("disk on fire"), "{error}");
    assert_eq!(digests(store).await, expected);
    assert!(raw_keys(store).await.iter().all(|k| !k.contains("uploads")));

    // An upload dropped midway (a killed process) leaves nothing under sha256/; its staging
    // junk, if any, is removed by cleanup_uploads.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    let parts: Vec<std::io::Result<Bytes>> = (0..3)
        .map(|i| Ok(Bytes::from(data(PART, 20 + i))))
        .collect();
    let endless = futures::stream::iter(parts).chain(futures::stream::poll_fn(move |_| {
        if let Some(tx) = started_tx.take() {
            let _ = tx.send(());
        }
        Poll::<Option<std::io::Result<Bytes>>>::Pending
    }));
    tokio::select! {
        result = store.put_stream(endless, None) => panic!("the endless upload ended: {result:?}"),
        _ = started_rx => {}
    }
    assert_eq!(digests(store).await, expected);
    assert!(
        raw_keys(store)
            .await
            .iter()
            .all(|k| k.contains("sha256/") || k.contains("uploads/"))
    );
    store
        .cleanup_uploads(chrono::Duration::seconds(-5))
        .await
        .expect("cleanup");
    assert!(raw_keys(store).await.iter().all(|k| !k.contains("uploads")));

    // Download: atomic, verified, creates the directory.
    let dest = scratch.join("downloads/nested/big.bin");
    let size = store
        .download(&big_blob.digest, &dest)
        .await
        .expect("download");
    assert_eq!(size, big.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("read download"), big);
    let missing = sha(b"never stored");
    let nowhere = scratch.join("downloads/missing.bin");
    let error = store
        .download(&missing, &nowhere)
        .await
        .expect_err("missing");
    assert!(
        matches!(&error, BlobError::NotFound { digest, .. } if *digest == missing),
        "{error:?}"
    );
    assert!(!nowhere.exists());
    assert!(
        store
            .get_bytes(&missing)
            .await
            .expect_err("missing")
            .is_not_found()
    );
    assert!(store.head(&missing).await.expect("head").is_none());
    assert_eq!(
        store.verify(&big_blob.digest).await.expect("verify"),
        big.len() as u64
    );

    // The download cache: a miss downloads, a hit is verified, a corrupted entry is refetched.
    let cached = store.fetch(&big_blob.digest, false).await.expect("fetch");
    let cache_dir = scratch.join("cache");
    assert_eq!(
        cached,
        cache_dir
            .join("sha256")
            .join(&hex_of(&big_blob)[..2])
            .join(&hex_of(&big_blob)[2..])
    );
    assert_eq!(std::fs::read(&cached).expect("read cache"), big);
    assert_eq!(
        store.fetch(&big_blob.digest, false).await.expect("hit"),
        cached
    );
    std::fs::write(&cached, b"bit rot").expect("corrupt the cache");
    assert_eq!(
        store.fetch(&big_blob.digest, false).await.expect("refetch"),
        cached
    );
    assert_eq!(std::fs::read(&cached).expect("read cache"), big);
    assert_eq!(
        store.fetch(&big_blob.digest, true).await.expect("force"),
        cached
    );
    assert_eq!(std::fs::read(&cached).expect("read cache"), big);

    // Corruption in the store is caught on every read path.
    let rot = Bytes::from_static(b"rotten bytes");
    store
        .object_store()
        .put(&store.key(&big_blob.digest), PutPayload::from(rot.clone()))
        .await
        .expect("corrupt the store");
    let error = store
        .get_bytes(&big_blob.digest)
        .await
        .expect_err("corrupt get");
    expect_mismatch(error, &big_blob.digest, &sha(&rot));
    let error = store
        .verify(&big_blob.digest)
        .await
        .expect_err("corrupt verify");
    expect_mismatch(error, &big_blob.digest, &sha(&rot));
    let corrupt_dest = scratch.join("corrupt/big.bin");
    let error = store
        .download(&big_blob.digest, &corrupt_dest)
        .await
        .expect_err("corrupt download");
    expect_mismatch(error, &big_blob.digest, &sha(&rot));
    assert!(!corrupt_dest.exists(), "nothing at dest after a mismatch");
    let leftovers = std::fs::read_dir(scratch.join("corrupt"))
        .expect("dest dir")
        .count();
    assert_eq!(leftovers, 0, "no temp file left next to dest");
    // A valid cache entry is still served; once it rots too, the refetch fails and names both.
    assert_eq!(
        store
            .fetch(&big_blob.digest, false)
            .await
            .expect("cache hit"),
        cached
    );
    std::fs::write(&cached, b"bit rot").expect("corrupt the cache");
    let error = store
        .fetch(&big_blob.digest, false)
        .await
        .expect_err("both corrupt");
    expect_mismatch(error, &big_blob.digest, &sha(&rot));
    store
        .object_store()
        .put(&store.key(&big_blob.digest), PutPayload::from(big.clone()))
        .await
        .expect("repair the store");
    assert_eq!(
        store
            .fetch(&big_blob.digest, false)
            .await
            .expect("repaired"),
        cached
    );
    assert_eq!(std::fs::read(&cached).expect("read cache"), big);

    // list() skips staging and keys that are not digests; cleanup_uploads honours its age.
    let prefix = raw_prefix(store);
    let junk = ObjectPath::from(format!("{prefix}sha256/zz/not-a-digest"));
    let stale = ObjectPath::from(format!("{prefix}uploads/stale-upload"));
    for key in [&junk, &stale] {
        store
            .object_store()
            .put(key, PutPayload::from_static(b"junk"))
            .await
            .expect("raw put");
    }
    assert_eq!(digests(store).await, expected);
    assert_eq!(
        store
            .cleanup_uploads(chrono::Duration::hours(1))
            .await
            .expect("cleanup"),
        0
    );
    assert_eq!(
        store
            .cleanup_uploads(chrono::Duration::seconds(-5))
            .await
            .expect("cleanup"),
        1
    );
    assert!(raw_keys(store).await.iter().all(|k| !k.contains("uploads")));
    store
        .object_store()
        .delete(&junk)
        .await
        .expect("raw delete");

    // Delete (idempotent).
    store.delete(&blob.digest).await.expect("delete");
    assert!(store.head(&blob.digest).await.expect("head").is_none());
    assert!(
        store
            .get_bytes(&blob.digest)
            .await
            .expect_err("deleted")
            .is_not_found()
    );
    store.delete(&blob.digest).await.expect("delete again");
    expected.remove(&blob.digest);
    assert_eq!(digests(store).await, expected);
    let sizes: Vec<u64> = store
        .list()
        .await
        .expect("list")
        .iter()
        .map(|i| i.size)
        .collect();
    assert_eq!(sizes.len(), expected.len());
}

fn hex_of(blob: &BlobRef) -> String {
    blob.digest.as_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_the_local_filesystem() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let root = scratch.path().join("blobs");
    let url = format!("file://{}", root.display());
    let store = BlobStore::open(&url, options(scratch.path())).expect("open file store");
    conformance(&store, scratch.path()).await;

    // The layout on disk, and corruption written straight to the file.
    let bytes = data(3 * PART + 5, 40);
    let blob = store
        .put_bytes(Bytes::from(bytes.clone()))
        .await
        .expect("put");
    let hex = blob.digest.as_str();
    let root = std::fs::canonicalize(&root).expect("root");
    let on_disk = root.join("sha256").join(&hex[..2]).join(&hex[2..]);
    assert_eq!(std::fs::read(&on_disk).expect("blob file"), bytes);
    assert_eq!(store.url(), format!("file://{}", root.display()));
    std::fs::write(&on_disk, b"flipped").expect("corrupt");
    let error = store.get_bytes(&blob.digest).await.expect_err("corrupt");
    expect_mismatch(error, &blob.digest, &sha(b"flipped"));

    // A killed upload leaves nothing under sha256/ on disk.
    let before = files_under(&root.join("sha256"));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let mut started_tx = Some(started_tx);
    let parts: Vec<std::io::Result<Bytes>> = (0..4)
        .map(|i| Ok(Bytes::from(data(PART, 50 + i))))
        .collect();
    let endless = futures::stream::iter(parts).chain(futures::stream::poll_fn(move |_| {
        if let Some(tx) = started_tx.take() {
            let _ = tx.send(());
        }
        Poll::<Option<std::io::Result<Bytes>>>::Pending
    }));
    tokio::select! {
        result = store.put_stream(endless, None) => panic!("the endless upload ended: {result:?}"),
        _ = started_rx => {}
    }
    assert_eq!(files_under(&root.join("sha256")), before);
    store
        .cleanup_uploads(chrono::Duration::seconds(-5))
        .await
        .expect("cleanup");
    assert!(files_under(&root.join("uploads")).is_empty());
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::in_memory(options(scratch.path()));
    assert_eq!(store.url(), "memory://");
    conformance(&store, scratch.path()).await;
    let opened = BlobStore::open("memory://", options(scratch.path())).expect("open memory://");
    assert!(
        opened.list().await.expect("list").is_empty(),
        "each memory store is its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_s3_moto() {
    let Some(moto) = Moto::start("kiln-blobs") else {
        return;
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let options = BlobStoreOptions {
        cache_dir: Some(scratch.path().join("cache")),
        part_size: PART,
        max_concurrent_parts: 2,
        ..moto.options()
    };
    let url = format!("s3://{}/runs/blobs/", moto.bucket());
    let store = BlobStore::open(&url, options.clone()).expect("open s3 store");
    assert_eq!(store.url(), format!("s3://{}/runs/blobs", moto.bucket()));
    conformance(&store, scratch.path()).await;

    // A second store on the same bucket sees the blobs; open_for finds the store from a URI.
    let blob = store
        .put_bytes(Bytes::from_static(b"shared"))
        .await
        .expect("put");
    let other = BlobStore::open_for(&blob, options).expect("open_for");
    assert_eq!(other.url(), store.url());
    assert_eq!(
        other.get_bytes(&blob.digest).await.expect("get"),
        Bytes::from_static(b"shared")
    );
}

#[tokio::test]
async fn fetch_without_a_cache_dir_is_a_typed_error() {
    let store = BlobStore::in_memory(BlobStoreOptions::default());
    let blob = store
        .put_bytes(Bytes::from_static(b"x"))
        .await
        .expect("put");
    let error = store
        .fetch(&blob.digest, false)
        .await
        .expect_err("no cache");
    assert!(matches!(error, BlobError::NoCacheDir { .. }), "{error:?}");
    assert!(error.to_string().contains("cache_dir"), "{error}");
}

#[tokio::test]
async fn plain_paths_and_file_urls_name_the_same_store() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let dir = scratch.path().join("dir with space/blobs");
    let by_path = BlobStore::open(&dir.display().to_string(), BlobStoreOptions::default())
        .expect("open a plain path");
    assert!(dir.is_dir(), "the directory is created");
    assert!(by_path.url().starts_with("file:///"), "{}", by_path.url());
    assert!(
        by_path.url().contains("dir%20with%20space"),
        "{}",
        by_path.url()
    );
    let blob = by_path
        .put_bytes(Bytes::from_static(b"same"))
        .await
        .expect("put");
    let by_url = BlobStore::open(by_path.url(), BlobStoreOptions::default()).expect("open url");
    assert_eq!(by_url.url(), by_path.url());
    let reopened = BlobStore::open_for(&blob, BlobStoreOptions::default()).expect("open_for");
    assert_eq!(reopened.url(), by_path.url());
    assert_eq!(
        reopened.get_bytes(&blob.digest).await.expect("get"),
        Bytes::from_static(b"same")
    );
}

#[test]
fn unsupported_schemes_list_the_supported_ones() {
    let error = BlobStore::open("ftp://example.com/blobs", BlobStoreOptions::default())
        .expect_err("ftp is not a store");
    assert!(
        matches!(&error, BlobError::UnsupportedScheme { scheme, .. } if scheme == "ftp"),
        "{error:?}"
    );
    let text = error.to_string();
    for scheme in [
        "file://",
        "memory://",
        "s3://",
        "gs://",
        "azure://",
        "az://",
    ] {
        assert!(text.contains(scheme), "{text} names {scheme}");
    }
    assert!(text.contains(SUPPORTED_SCHEMES));
}

#[test]
fn missing_credentials_name_the_variables() {
    let hermetic = BlobStoreOptions {
        from_env: false,
        ..BlobStoreOptions::default()
    };
    for (url, scheme, variables) in [
        (
            "s3://bucket/prefix",
            "s3",
            &[
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            ][..],
        ),
        (
            "gs://bucket",
            "gs",
            &["GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS"][..],
        ),
        (
            "azure://container/p",
            "azure",
            &["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY"][..],
        ),
        (
            "az://container",
            "azure",
            &["AZURE_STORAGE_ACCOUNT_NAME"][..],
        ),
    ] {
        let error = BlobStore::open(url, hermetic.clone()).expect_err("no credentials");
        assert!(
            matches!(&error, BlobError::MissingCredentials { scheme: s, .. } if *s == scheme),
            "{url}: {error:?}"
        );
        let text = error.to_string();
        for variable in variables {
            assert!(text.contains(variable), "{url}: {text} names {variable}");
        }
    }
    // A secret without its key id is not enough; both are.
    let mut partial = hermetic.clone();
    partial
        .config
        .insert("aws_secret_access_key".into(), "s".into());
    assert!(matches!(
        BlobStore::open("s3://bucket", partial.clone()),
        Err(BlobError::MissingCredentials { .. })
    ));
    partial
        .config
        .insert("AWS_ACCESS_KEY_ID".into(), "k".into());
    let store = BlobStore::open("s3://bucket", partial).expect("credentials from config");
    assert_eq!(store.url(), "s3://bucket");
}

#[test]
fn invalid_urls_and_options_are_typed_errors() {
    for url in [
        "",
        "s3:///no-bucket",
        "file://remote-host/blobs",
        "memory://named",
        "gs://bucket/p?x=1",
    ] {
        let error = BlobStore::open(url, BlobStoreOptions::default()).expect_err(url);
        assert!(
            matches!(error, BlobError::InvalidUrl { .. }),
            "{url}: {error:?}"
        );
    }
    let error = BlobStore::open(
        "memory://",
        BlobStoreOptions {
            part_size: 0,
            ..BlobStoreOptions::default()
        },
    )
    .expect_err("part_size 0");
    assert!(
        matches!(&error, BlobError::InvalidOptions { field, .. } if field == "part_size"),
        "{error:?}"
    );
    let mut options = BlobStoreOptions {
        from_env: false,
        ..BlobStoreOptions::default()
    };
    options.config.insert("aws_no_such_key".into(), "1".into());
    let error = BlobStore::open("s3://bucket", options).expect_err("unknown key");
    assert!(
        matches!(&error, BlobError::InvalidOptions { field, .. } if field == "config.aws_no_such_key"),
        "{error:?}"
    );
}

#[test]
fn blob_uris_split_into_store_and_digest() {
    let digest = sha(b"uri");
    let hex = digest.as_str();
    let (head, tail) = hex.split_at(2);
    for url in [
        "s3://bucket",
        "s3://bucket/a/b",
        "file:///var/kiln/blobs",
        "memory://",
        "file:///",
    ] {
        let uri = format!("{url}/sha256/{head}/{tail}");
        assert_eq!(
            BlobStore::split_uri(&uri).expect("split"),
            (url.to_owned(), digest.clone()),
            "{uri}"
        );
    }
    let bad = [
        String::new(),
        "not a uri".to_owned(),
        format!("s3://bucket/sha256/{head}"),
        format!("s3://bucket/blobs/{head}/{tail}"),
        format!("s3://bucket/sha256/{hex}/x"),
        format!("s3://bucket/sha256/{}/{}", &hex[..3], &hex[3..]),
        format!("s3://bucket/sha256/zz/{tail}"),
        format!("/sha256/{head}/{tail}"),
        format!("bucket/sha256/{head}/{tail}"),
    ];
    for uri in bad {
        let error = BlobStore::split_uri(&uri).expect_err(&uri);
        assert!(
            matches!(error, BlobError::InvalidUri { .. }),
            "{uri}: {error:?}"
        );
    }
    // open_for refuses a URI that names another digest.
    let blob = BlobRef {
        digest: sha(b"other"),
        size: 1,
        uri: format!("memory:///sha256/{head}/{tail}"),
    };
    let error = BlobStore::open_for(&blob, BlobStoreOptions::default()).expect_err("mismatch");
    assert!(matches!(error, BlobError::InvalidUri { .. }), "{error:?}");
}
