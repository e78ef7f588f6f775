//! Weights: synchronous and background uploads, round trips through the verified cache,
//! packages, registered URIs, the lazy design, destinations, auto-deletion.

use kiln_entities::{Design, PACKAGE_TAG};
use kiln_tracking_client::{
    GetWeightsOptions, GetWeightsPackageOptions, InputModel, ModelProperties, OutputModel,
    OutputModelOptions, TrackingBackend, TrackingError, UpdateWeightsOptions,
    UpdateWeightsPackageOptions, WEIGHTS_ROLE, WaitOptions, WeightsPackage,
};
use serde_json::json;

use crate::common::Fixture;

fn raising() -> GetWeightsOptions {
    GetWeightsOptions {
        raise_on_error: true,
        ..GetWeightsOptions::default()
    }
}

#[tokio::test]
async fn synchronous_upload_round_trips() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let file = fx.file("model.onnx", &bytes);

    let upload = model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            auto_delete_file: false,
            iteration: Some(7),
            ..UpdateWeightsOptions::file(&file)
        })
        .await
        .expect("upload");
    assert!(!upload.is_pending());
    let uri = upload
        .uri()
        .expect("a synchronous upload has its URI")
        .to_owned();
    assert!(
        uri.starts_with(fx.local.default_store().url()),
        "{uri} is in the default store"
    );
    assert_eq!(model.url().as_deref(), Some(uri.as_str()));
    assert!(file.exists(), "auto_delete_file: false keeps the file");
    assert!(
        model
            .comment()
            .ends_with("weights: model.onnx (iteration 7)")
    );

    let stored = fx.stored(model.id()).await;
    assert_eq!(stored.record.uri.as_deref(), Some(uri.as_str()));
    let blob = stored
        .blob(WEIGHTS_ROLE)
        .expect("the weights blob is referenced");
    assert_eq!(blob.uri, uri);
    assert_eq!(blob.size, bytes.len() as u64);

    let local = model
        .get_weights(raising())
        .await
        .expect("get weights")
        .expect("a path");
    assert!(
        local.starts_with(fx.local.cache_dir()),
        "{} is in the cache",
        local.display()
    );
    assert_eq!(std::fs::read(&local).expect("read"), bytes);

    // A cached copy that no longer matches its digest is fetched again.
    std::fs::write(&local, b"corrupted").expect("corrupt the cache");
    let again = model
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(std::fs::read(&again).expect("read"), bytes);
    let forced = model
        .get_weights(GetWeightsOptions {
            force_download: true,
            ..raising()
        })
        .await
        .expect("force")
        .expect("path");
    assert_eq!(std::fs::read(&forced).expect("read"), bytes);

    let input = InputModel::load(fx.backend(), model.id())
        .await
        .expect("load");
    let path = input
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(std::fs::read(path).expect("read"), bytes);
}

#[tokio::test]
async fn background_uploads_and_wait_for_uploads() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let other = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let a = fx.file("a.bin", b"first weights");
    let b = fx.file("b.bin", b"second weights");
    let c = fx.file("c.bin", b"other model");

    let first = model
        .update_weights(UpdateWeightsOptions::file(&a))
        .await
        .expect("start a");
    let second = model
        .update_weights(UpdateWeightsOptions::file(&b))
        .await
        .expect("start b");
    other
        .update_weights(UpdateWeightsOptions::file(&c))
        .await
        .expect("start c");
    assert_ne!(first.id(), second.id());
    assert_eq!(task.pending_uploads(), 3);
    assert_eq!(model.pending_uploads(), 2);

    let uris = model
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect("this model's uploads");
    assert_eq!(uris.len(), 2);
    assert_eq!(
        task.pending_uploads(),
        1,
        "the other model's upload is still tracked"
    );
    assert_eq!(
        model.url().as_deref(),
        Some(uris[1].as_str()),
        "the later update wins"
    );
    assert!(
        !a.exists() && !b.exists(),
        "auto_delete_file (default) removed the files"
    );

    let uris = task
        .wait_for_uploads(WaitOptions::default())
        .await
        .expect("the rest");
    assert_eq!(uris.len(), 1);
    assert_eq!(other.url().as_deref(), Some(uris[0].as_str()));
    assert!(
        task.wait_for_uploads(WaitOptions::default())
            .await
            .expect("nothing pending")
            .is_empty()
    );

    let stored = fx.stored(model.id()).await;
    assert_eq!(
        stored.record.uri,
        stored.blob(WEIGHTS_ROLE).map(|b| b.uri.clone()),
        "the row's URI is its weights blob's"
    );
    let path = model
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(std::fs::read(path).expect("read"), b"second weights");

    // `wait` on a handle gives its URI and takes it off the tracker.
    let d = fx.file("d.bin", b"fourth");
    let upload = model
        .update_weights(UpdateWeightsOptions::file(&d))
        .await
        .expect("start d");
    let uri = upload.wait().await.expect("upload d");
    assert_eq!(task.pending_uploads(), 0);
    assert_eq!(model.url(), Some(uri));
}

#[tokio::test]
async fn max_num_uploads_waits_for_the_oldest() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    for i in 0..3 {
        let file = fx.file(&format!("w{i}.bin"), format!("weights {i}").as_bytes());
        model
            .update_weights(UpdateWeightsOptions::file(file))
            .await
            .expect("start");
    }
    let uris = task
        .wait_for_uploads(WaitOptions {
            max_num_uploads: Some(2),
            ..WaitOptions::default()
        })
        .await
        .expect("two");
    assert_eq!(uris.len(), 2);
    assert_eq!(task.pending_uploads(), 1);
    assert_eq!(
        task.wait_for_uploads(WaitOptions::default())
            .await
            .expect("last")
            .len(),
        1
    );
}

#[tokio::test]
async fn the_design_is_applied_lazily_with_the_next_weights() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(
        &task,
        OutputModelOptions {
            config_text: Some("a = 1".into()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("create");
    let dict: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(json!({"b": 2})).expect("dict");
    model
        .update_design(None, Some(dict.clone()))
        .expect("update design");

    assert_eq!(
        model.config_text().as_deref(),
        Some("a = 1"),
        "not applied yet"
    );
    assert_eq!(model.pending_design(), Some(Design::Dict(dict.clone())));
    assert_eq!(
        fx.stored(model.id()).await.record.design,
        Some(Design::Text("a = 1".into()))
    );

    let file = fx.file("w.bin", b"weights");
    model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            ..UpdateWeightsOptions::file(file)
        })
        .await
        .expect("upload");
    assert_eq!(model.pending_design(), None);
    assert_eq!(
        fx.stored(model.id()).await.record.design,
        Some(Design::Dict(dict.clone()))
    );
    assert_eq!(model.config_dict().expect("dict"), Some(dict));
}

#[tokio::test]
async fn packages_round_trip_with_extraction() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let dir = fx.dir.path().join("export");
    fx.file("export/model.xml", b"<net/>");
    fx.file("export/model.bin", &[7u8; 5000]);
    fx.file("export/extra/labels.txt", b"background\nperson\n");

    let upload = model
        .update_weights_package(UpdateWeightsPackageOptions {
            weights_path: Some(dir.clone()),
            auto_delete_file: false,
            ..UpdateWeightsPackageOptions::default()
        })
        .await
        .expect("start package");
    let uri = upload.wait().await.expect("package uploaded");
    assert_eq!(model.url(), Some(uri));
    assert!(model.is_package());
    assert!(
        fx.stored(model.id())
            .await
            .record
            .system_tags
            .contains(&PACKAGE_TAG.to_owned())
    );
    assert!(
        dir.join("model.xml").exists(),
        "auto_delete_file: false keeps the files"
    );
    assert!(
        std::fs::read_dir(fx.local.cache_dir().join("packages"))
            .expect("packages dir")
            .next()
            .is_none(),
        "the zip is removed after the upload"
    );

    let Some(WeightsPackage::Files(files)) = model
        .get_weights_package(GetWeightsPackageOptions {
            raise_on_error: true,
            ..GetWeightsPackageOptions::default()
        })
        .await
        .expect("get package")
    else {
        panic!("expected the list of files");
    };
    let mut names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["labels.txt", "model.bin", "model.xml"]);

    let Some(WeightsPackage::Directory(root)) = model
        .get_weights_package(GetWeightsPackageOptions {
            return_path: true,
            raise_on_error: true,
            ..GetWeightsPackageOptions::default()
        })
        .await
        .expect("get package dir")
    else {
        panic!("expected the directory");
    };
    assert_eq!(
        std::fs::read(root.join("model.bin")).expect("bin"),
        vec![7u8; 5000]
    );
    assert_eq!(
        std::fs::read(root.join("extra").join("labels.txt")).expect("labels"),
        b"background\nperson\n"
    );
    let extracted = model
        .get_weights(GetWeightsOptions {
            extract_archive: true,
            ..raising()
        })
        .await
        .expect("get weights")
        .expect("path");
    assert_eq!(
        extracted, root,
        "get_weights(extract_archive) gives the same directory"
    );

    let Some(WeightsPackage::Archive(zip)) = model
        .get_weights_package(GetWeightsPackageOptions {
            extract_archive: false,
            raise_on_error: true,
            ..GetWeightsPackageOptions::default()
        })
        .await
        .expect("get zip")
    else {
        panic!("expected the zip");
    };
    assert_eq!(&std::fs::read(zip).expect("zip")[..2], b"PK");

    // Named files, deleted after the upload; then a plain file replaces the package.
    let x = fx.file("x.onnx", b"x");
    let y = fx.file("sub/y.json", b"{}");
    model
        .update_weights_package(UpdateWeightsPackageOptions {
            weights_filenames: Some(vec![x.clone(), y.clone()]),
            async_enable: false,
            ..UpdateWeightsPackageOptions::default()
        })
        .await
        .expect("package of files");
    assert!(
        !x.exists() && !y.exists(),
        "auto_delete_file removes the packaged files"
    );
    let Some(WeightsPackage::Files(files)) = model
        .get_weights_package(GetWeightsPackageOptions::default())
        .await
        .expect("files")
    else {
        panic!("expected files");
    };
    assert_eq!(files.len(), 2);

    let plain = fx.file("plain.bin", b"plain");
    model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            ..UpdateWeightsOptions::file(plain)
        })
        .await
        .expect("plain weights");
    assert!(!model.is_package(), "plain weights drop the package tag");
    let err = model
        .get_weights_package(GetWeightsPackageOptions::default())
        .await
        .expect_err("not a package");
    assert!(matches!(err, TrackingError::NotAPackage { .. }), "{err}");
}

#[tokio::test]
async fn register_uri_records_without_uploading() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let existing = fx.file("elsewhere/weights.pt", b"already stored");
    let uri = url::Url::from_file_path(&existing)
        .expect("file url")
        .to_string();

    let upload = model
        .update_weights(UpdateWeightsOptions::register(uri.clone()))
        .await
        .expect("register");
    assert_eq!(upload.uri(), Some(uri.as_str()));
    assert_eq!(task.pending_uploads(), 0, "nothing is uploaded");
    assert!(existing.exists(), "a registered file is never deleted");
    let stored = fx.stored(model.id()).await;
    assert_eq!(stored.record.uri.as_deref(), Some(uri.as_str()));
    assert!(stored.blob(WEIGHTS_ROLE).is_none());
    assert!(
        fx.local
            .default_store()
            .list()
            .await
            .expect("list")
            .is_empty(),
        "no blob was stored"
    );
    let path = model
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(path, existing);

    model
        .update_weights(UpdateWeightsOptions::register("s3://bucket/models/w.pt"))
        .await
        .expect("register s3");
    assert_eq!(model.url().as_deref(), Some("s3://bucket/models/w.pt"));
    let err = model
        .get_weights(raising())
        .await
        .expect_err("not downloadable");
    assert!(
        matches!(err, TrackingError::NotDownloadable { .. }),
        "{err}"
    );
    assert_eq!(
        model
            .get_weights(GetWeightsOptions::default())
            .await
            .expect("without raise_on_error"),
        None
    );
}

#[tokio::test]
async fn destinations_model_task_and_default() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    assert_eq!(
        model.upload_storage_uri().as_deref(),
        Some(fx.local.default_store().url())
    );

    let shared = fx.dir.path().join("shared-store");
    let shared_url = url::Url::from_directory_path(&shared)
        .expect("url")
        .to_string();
    OutputModel::set_default_upload_uri(&task, Some(&shared_url))
        .await
        .expect("task default");
    assert_eq!(
        task.default_upload_uri().as_deref(),
        Some(shared_url.as_str())
    );
    assert_eq!(
        model.upload_storage_uri().as_deref(),
        Some(shared_url.as_str())
    );
    let canonical = fx.local.store(&shared_url).expect("store").url().to_owned();

    let file = fx.file("w.bin", b"to the shared store");
    let uri = model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            ..UpdateWeightsOptions::file(file)
        })
        .await
        .expect("upload")
        .uri()
        .expect("uri")
        .to_owned();
    assert!(uri.starts_with(&canonical), "{uri} is in {canonical}");

    let own = fx.dir.path().join("own-store");
    let own_url = url::Url::from_directory_path(&own)
        .expect("url")
        .to_string();
    model.set_upload_destination(&own_url).await.expect("own");
    assert_eq!(
        model.upload_storage_uri().as_deref(),
        Some(own_url.as_str())
    );
    let file = fx.file("w2.bin", b"to the model's store");
    let uri = model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            ..UpdateWeightsOptions::file(file)
        })
        .await
        .expect("upload")
        .uri()
        .expect("uri")
        .to_owned();
    let own_canonical = fx.local.store(&own_url).expect("store").url().to_owned();
    assert!(
        uri.starts_with(&own_canonical),
        "{uri} is in {own_canonical}"
    );
    let path = model
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(std::fs::read(path).expect("read"), b"to the model's store");

    // An explicit upload_uri becomes the model's destination ("the previously used URI").
    let third = fx.dir.path().join("third-store");
    let third_url = url::Url::from_directory_path(&third)
        .expect("url")
        .to_string();
    let file = fx.file("w3.bin", b"third");
    model
        .update_weights(UpdateWeightsOptions {
            async_enable: false,
            upload_uri: Some(third_url.clone()),
            ..UpdateWeightsOptions::file(file)
        })
        .await
        .expect("upload");
    assert_eq!(
        model.upload_storage_uri().as_deref(),
        Some(third_url.as_str())
    );

    // A fresh backend on the same home reads a blob of another store from its URI.
    let reopened = kiln_tracking_client::Local::open(&fx.dir.path().join("home"))
        .await
        .expect("reopen");
    let input = InputModel::load(std::sync::Arc::new(reopened), model.id())
        .await
        .expect("load");
    let path = input
        .get_weights(raising())
        .await
        .expect("get")
        .expect("path");
    assert_eq!(std::fs::read(path).expect("read"), b"third");
}
