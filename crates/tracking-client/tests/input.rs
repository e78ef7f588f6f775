//! `InputModel`: by id, by name (newest match, exact name, project, archived), not found.

use kiln_tracking_client::{
    InputModel, InputModelQuery, ModelProperties, OutputModel, OutputModelOptions, TrackingError,
};

use crate::common::Fixture;

async fn named(task: &kiln_tracking_client::Task, name: &str) -> OutputModel {
    OutputModel::new(
        task,
        OutputModelOptions {
            name: Some(name.into()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("create")
}

fn query(name: &str, project: Option<&str>) -> InputModelQuery {
    InputModelQuery {
        name: name.into(),
        project: project.map(str::to_owned),
        ..InputModelQuery::default()
    }
}

#[tokio::test]
async fn load_by_id() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(
        &task,
        OutputModelOptions {
            name: Some("m".into()),
            tags: vec!["t".into()],
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("create");
    let mut input = InputModel::load(fx.backend(), model.id())
        .await
        .expect("load");
    assert_eq!(input.record(), model.record());
    model.publish().await.expect("publish");
    assert!(!input.published(), "a loaded model is a snapshot");
    input.reload().await.expect("reload");
    assert!(input.published());

    let err = InputModel::load(fx.backend(), kiln_entities::ModelId::new())
        .await
        .expect_err("no such model");
    assert!(matches!(err, TrackingError::ModelNotFound { .. }), "{err}");
}

#[tokio::test]
async fn find_by_name_takes_the_newest_exact_match() {
    let fx = Fixture::new().await;
    let vision = fx.task("vision", "train").await;
    let audio = fx.task("audio", "train").await;
    let _old = named(&vision, "resnet").await;
    let _longer = named(&vision, "resnet50").await;
    let new = named(&vision, "resnet").await;
    let elsewhere = named(&audio, "resnet").await;

    let found = InputModel::find(fx.backend(), &query("resnet", Some("vision")))
        .await
        .expect("find");
    assert_eq!(
        found.id(),
        new.id(),
        "the newest exact match in the project"
    );
    let found = InputModel::find(fx.backend(), &query("resnet", Some(audio.project_id())))
        .await
        .expect("find by project id");
    assert_eq!(found.id(), elsewhere.id());
    let found = InputModel::find(fx.backend(), &query("resnet", None))
        .await
        .expect("any project");
    assert_eq!(found.id(), elsewhere.id(), "the newest of all");
    let found = InputModel::find(fx.backend(), &query("resnet5*", Some("vision")))
        .await
        .expect("pattern");
    assert_eq!(found.name(), "resnet50");

    let err = InputModel::find(fx.backend(), &query("resne", Some("vision")))
        .await
        .expect_err("a substring is not the name");
    assert!(
        matches!(&err, TrackingError::NoModelNamed { name, project } if name == "resne" && project.as_deref() == Some("vision")),
        "{err}"
    );
    assert!(err.to_string().contains("\"resne\""), "{err}");
}

#[tokio::test]
async fn archived_and_published_filters() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = named(&task, "old").await;
    model.archive().await.expect("archive");
    let err = InputModel::find(fx.backend(), &query("old", None))
        .await
        .expect_err("archived models are skipped");
    assert!(matches!(err, TrackingError::NoModelNamed { .. }), "{err}");
    let found = InputModel::find(
        fx.backend(),
        &InputModelQuery {
            include_archived: true,
            ..query("old", None)
        },
    )
    .await
    .expect("include archived");
    assert_eq!(found.id(), model.id());

    let draft = named(&task, "candidate").await;
    let published = named(&task, "candidate").await;
    published.publish().await.expect("publish");
    let newest_draft = named(&task, "candidate").await;
    let found = InputModel::find(
        fx.backend(),
        &InputModelQuery {
            only_published: true,
            ..query("candidate", None)
        },
    )
    .await
    .expect("only published");
    assert_eq!(found.id(), published.id());
    let found = InputModel::find(fx.backend(), &query("candidate", None))
        .await
        .expect("any");
    assert_eq!(found.id(), newest_draft.id());
    assert_ne!(found.id(), draft.id());
}
