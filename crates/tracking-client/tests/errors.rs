//! Bad input: every typed error of the surface, checked before anything is stored.

use kiln_entities::DesignError;
use kiln_tracking_client::{
    ModelProperties, OutputModel, OutputModelOptions, Task, TrackingError, UpdateWeightsOptions,
    UpdateWeightsPackageOptions,
};

use crate::common::Fixture;

#[tokio::test]
async fn config_text_and_config_dict_together() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let err = OutputModel::new(
        &task,
        OutputModelOptions {
            config_text: Some("a = 1".into()),
            config_dict: Some(serde_json::Map::new()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect_err("both");
    assert!(
        matches!(err, TrackingError::Design(DesignError::TextAndDict { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains("config_text or config_dict"),
        "{err}"
    );

    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let err = model
        .update_design(Some("a = 1".into()), Some(serde_json::Map::new()))
        .expect_err("both");
    assert!(matches!(err, TrackingError::Design(_)), "{err}");
    let err = model.update_design(None, None).expect_err("neither");
    assert!(
        matches!(err, TrackingError::MissingArgument { .. }),
        "{err}"
    );
    assert_eq!(model.pending_design(), None);
}

#[tokio::test]
async fn weights_source_arguments() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    let file = fx.file("w.bin", b"w");

    let err = model
        .update_weights(UpdateWeightsOptions {
            register_uri: Some("s3://bucket/w.bin".into()),
            ..UpdateWeightsOptions::file(&file)
        })
        .await
        .expect_err("both");
    assert!(
        matches!(
            err,
            TrackingError::ConflictingArguments {
                first: "weights_filename",
                second: "register_uri"
            }
        ),
        "{err}"
    );
    let err = model
        .update_weights(UpdateWeightsOptions::default())
        .await
        .expect_err("neither");
    assert!(
        matches!(err, TrackingError::MissingArgument { .. }),
        "{err}"
    );

    let missing = fx.dir.path().join("no-such-weights.onnx");
    let err = model
        .update_weights(UpdateWeightsOptions::file(&missing))
        .await
        .expect_err("missing file");
    assert!(
        matches!(&err, TrackingError::FileNotFound { path, .. } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-weights.onnx"), "{err}");

    let err = model
        .update_weights(UpdateWeightsOptions::register("not a uri"))
        .await
        .expect_err("bad uri");
    assert!(matches!(err, TrackingError::InvalidUri { .. }), "{err}");

    let err = model
        .update_weights_package(UpdateWeightsPackageOptions {
            weights_filenames: Some(vec![file.clone()]),
            weights_path: Some(fx.dir.path().to_owned()),
            ..UpdateWeightsPackageOptions::default()
        })
        .await
        .expect_err("both package sources");
    assert!(
        matches!(err, TrackingError::ConflictingArguments { .. }),
        "{err}"
    );
    let err = model
        .update_weights_package(UpdateWeightsPackageOptions {
            weights_filenames: Some(vec![file.clone(), missing.clone()]),
            ..UpdateWeightsPackageOptions::default()
        })
        .await
        .expect_err("a missing package file");
    assert!(matches!(err, TrackingError::FileNotFound { .. }), "{err}");

    assert!(file.exists(), "nothing was uploaded or deleted");
    assert_eq!(task.pending_uploads(), 0);
    assert_eq!(fx.stored(model.id()).await.record.uri, None);
    assert_eq!(model.version(), fx.stored(model.id()).await.version);
}

#[tokio::test]
async fn unsupported_destination_schemes_list_the_supported_ones() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");

    let err = model
        .set_upload_destination("ftp://example.com/models")
        .await
        .expect_err("ftp");
    assert!(
        matches!(
            err,
            TrackingError::Blob(kiln_storage::BlobError::UnsupportedScheme { .. })
        ),
        "{err}"
    );
    let message = err.to_string();
    for scheme in ["file://", "s3://", "gs://", "azure://"] {
        assert!(message.contains(scheme), "{message} lists {scheme}");
    }

    let file = fx.file("w.bin", b"w");
    let err = model
        .update_weights(UpdateWeightsOptions {
            upload_uri: Some("ftp://example.com/models".into()),
            ..UpdateWeightsOptions::file(&file)
        })
        .await
        .expect_err("ftp upload");
    assert!(matches!(err, TrackingError::Blob(_)), "{err}");
    assert_eq!(task.pending_uploads(), 0, "refused before starting");

    let err = task
        .set_default_upload_uri(Some("ftp://example.com/models"))
        .await
        .expect_err("ftp default");
    assert!(matches!(err, TrackingError::Blob(_)), "{err}");
    assert_eq!(task.default_upload_uri(), None);
}

#[tokio::test]
async fn empty_names_are_refused() {
    let fx = Fixture::new().await;
    let err = Task::init(fx.backend(), "", "t")
        .await
        .expect_err("empty project");
    assert!(
        matches!(
            err,
            TrackingError::InvalidArgument {
                field: "project",
                ..
            }
        ),
        "{err}"
    );
    let err = Task::init(fx.backend(), "p", " ")
        .await
        .expect_err("empty task");
    assert!(
        matches!(err, TrackingError::InvalidArgument { field: "name", .. }),
        "{err}"
    );
}
