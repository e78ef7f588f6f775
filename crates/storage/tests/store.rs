//! [`Store`]: registration writes the weights URI from the stored blob, and `gc` collects
//! unreferenced blobs (sparing young ones) and, when asked, superseded weights — never a blob a
//! model still uses.

use std::path::Path;

use kiln_entities::ModelRecord;
use kiln_storage::{GcOptions, Store, StoreOptions, StoredModel, WEIGHTS_ROLE};

fn write(dir: &Path, name: &str, fill: u8) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, vec![fill; 10_000 + usize::from(fill)]).expect("write a file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_collects_unreferenced_and_superseded_blobs_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&StoreOptions::at(dir.path().join("home")))
        .await
        .expect("open the store");
    let (a, b, c) = (
        write(dir.path(), "a.bin", 1),
        write(dir.path(), "b.bin", 2),
        write(dir.path(), "c.bin", 3),
    );

    let first = store
        .register(
            StoredModel::new(ModelRecord::new("m")),
            &[(WEIGHTS_ROLE.to_owned(), a.clone())],
            Some(0),
            None,
        )
        .await
        .expect("register");
    let old = first.blob(WEIGHTS_ROLE).expect("weights").clone();
    assert_eq!(first.record.uri.as_deref(), Some(old.uri.as_str()));
    // New weights: the old blob is only superseded now.
    let version = first.version;
    let second = store
        .register(
            first,
            &[(WEIGHTS_ROLE.to_owned(), b.clone())],
            Some(version),
            None,
        )
        .await
        .expect("re-register");
    let new = second.blob(WEIGHTS_ROLE).expect("weights").clone();
    assert_ne!(old.digest, new.digest);
    assert_eq!(second.record.uri.as_deref(), Some(new.uri.as_str()));
    // A blob no model refers to (a registration that died before its commit).
    let orphan = store.blobs().put_file(&c, None).await.expect("orphan");

    // Within the grace period nothing goes.
    let report = store.gc(&GcOptions::default()).await.expect("gc");
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!((report.scanned, report.kept_young), (3, 1));

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let now = GcOptions {
        grace: chrono::Duration::zero(),
        ..GcOptions::default()
    };
    let report = store.gc(&now).await.expect("gc");
    assert_eq!(report.deleted, std::slice::from_ref(&orphan.digest));
    assert_eq!(report.bytes_freed, orphan.size);
    assert!(
        store
            .blobs()
            .head(&old.digest)
            .await
            .expect("head")
            .is_some()
    );

    // A dry run names the superseded weights and deletes nothing.
    let dry = GcOptions {
        superseded: true,
        dry_run: true,
        ..now.clone()
    };
    let report = store.gc(&dry).await.expect("dry run");
    assert_eq!(report.deleted, std::slice::from_ref(&old.digest));
    assert!(
        store
            .blobs()
            .head(&old.digest)
            .await
            .expect("head")
            .is_some()
    );

    let superseded = GcOptions {
        superseded: true,
        ..now
    };
    let report = store.gc(&superseded).await.expect("gc --superseded");
    assert_eq!(report.deleted, std::slice::from_ref(&old.digest));
    assert_eq!(report.superseded_dropped, 1);
    assert!(
        store
            .blobs()
            .head(&old.digest)
            .await
            .expect("head")
            .is_none()
    );
    // The model is intact.
    let model = store.registry().model(second.id()).await.expect("get");
    store
        .verify(&model)
        .await
        .expect("the current weights verify");
    let fetched = store.fetch(&new, false).await.expect("fetch");
    assert_eq!(
        std::fs::read(fetched).expect("read"),
        std::fs::read(&b).expect("read")
    );
}
