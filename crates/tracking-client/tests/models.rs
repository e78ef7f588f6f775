//! Creating models and everything stored at once: labels, design, tags, publish/archive,
//! metadata (typed, with the cast fallback), connect, reuse by `base_model_id`.

use std::collections::BTreeMap;

use kiln_entities::{Design, MetadataEntry, MetadataType, MetadataValue};
use kiln_tracking_client::{ModelProperties, OutputModel, OutputModelOptions};
use serde_json::json;

use crate::common::Fixture;

fn labels() -> BTreeMap<String, i64> {
    [("background".to_owned(), 0), ("person".to_owned(), 1)].into()
}

#[tokio::test]
async fn a_new_model_is_stored_with_its_options() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(
        &task,
        OutputModelOptions {
            config_text: Some("[net]\nlayers = 18\nlr: 0.01".into()),
            label_enumeration: Some(labels()),
            name: Some("resnet18".into()),
            tags: vec!["baseline".into(), "fp32".into()],
            comment: Some("first try".into()),
            framework: Some("PyTorch".into()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("create model");

    assert_eq!(model.name(), "resnet18");
    assert_eq!(model.comment(), "first try");
    assert_eq!(model.tags(), vec!["baseline", "fp32"]);
    assert!(model.system_tags().is_empty());
    assert_eq!(model.framework().as_deref(), Some("PyTorch"));
    assert_eq!(model.labels(), labels());
    assert_eq!(model.task().as_deref(), Some(task.id()));
    assert_eq!(model.project().as_deref(), Some(task.project_id()));
    assert!(!model.published() && !model.archived() && !model.is_package());
    assert_eq!(model.url(), None);
    assert_eq!(
        model.config_dict().expect("parse config"),
        serde_json::from_value(json!({"net": {"layers": 18, "lr": 0.01}})).ok()
    );

    let stored = fx.stored(model.id()).await;
    assert_eq!(
        stored.record,
        model.record(),
        "the registry holds what the handle shows"
    );
    assert_eq!(stored.version, model.version());
    assert_eq!(
        stored.record.design,
        Some(Design::Text("[net]\nlayers = 18\nlr: 0.01".into()))
    );
}

#[tokio::test]
async fn the_default_name_is_the_tasks() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "nightly run").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    assert_eq!(model.name(), "nightly run");
    assert_eq!(model.config_text(), None);
    assert_eq!(model.config_dict().expect("no design"), None);
}

#[tokio::test]
async fn setters_write_through() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    model.update_labels(labels()).await.expect("labels");
    model.set_name("renamed").await.expect("name");
    model.set_comment("described").await.expect("comment");
    model.set_tags(vec!["a".into()]).await.expect("tags");
    model.set_framework(Some("ONNX")).await.expect("framework");
    let stored = fx.stored(model.id()).await.record;
    assert_eq!(stored.labels, labels());
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.comment, "described");
    assert_eq!(stored.tags, vec!["a"]);
    assert_eq!(stored.framework.as_deref(), Some("ONNX"));
}

#[tokio::test]
async fn publish_and_archive() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");

    model.publish().await.expect("publish");
    model.publish().await.expect("publish again is a no-op");
    assert!(model.published());
    assert!(fx.stored(model.id()).await.record.published);

    model.archive().await.expect("archive");
    model.archive().await.expect("archive again is a no-op");
    assert!(model.archived());
    assert_eq!(model.system_tags(), vec!["archived"]);
    assert!(fx.stored(model.id()).await.record.archived());

    model.unarchive().await.expect("unarchive");
    model.unarchive().await.expect("unarchive again is a no-op");
    assert!(!model.archived());
    assert!(!fx.stored(model.id()).await.record.archived());
}

#[tokio::test]
async fn metadata_is_typed_with_the_cast_fallback() {
    let fx = Fixture::new().await;
    let task = fx.task("vision", "train").await;
    let model = OutputModel::new(&task, OutputModelOptions::default())
        .await
        .expect("create");
    model
        .set_metadata("epochs", "12", MetadataType::Int)
        .await
        .expect("int");
    model
        .set_metadata("lr", "not a number", MetadataType::Float)
        .await
        .expect("bad float is stored as given");
    model
        .set_metadata_value("sizes", &MetadataValue::List(vec![json!(1), json!(2)]))
        .await
        .expect("list");

    assert_eq!(model.get_metadata("epochs").as_deref(), Some("12"));
    assert_eq!(
        model.get_metadata_casted("epochs"),
        Some(MetadataValue::Int(12))
    );
    assert_eq!(
        model.get_metadata_casted("lr"),
        Some(MetadataValue::Str("not a number".into())),
        "a failed cast falls back to the text"
    );
    assert_eq!(
        model.get_metadata_casted("sizes"),
        Some(MetadataValue::List(vec![json!(1), json!(2)]))
    );
    assert_eq!(model.get_metadata("missing"), None);
    assert_eq!(model.get_all_metadata().len(), 3);
    assert_eq!(
        model.get_all_metadata()["epochs"],
        MetadataEntry::new("epochs", "12", MetadataType::Int)
    );
    assert_eq!(
        model.get_all_metadata_casted()["lr"],
        MetadataValue::Str("not a number".into())
    );

    let stored = fx.stored(model.id()).await.record;
    assert_eq!(
        stored.get_metadata_casted("epochs"),
        Some(MetadataValue::Int(12))
    );

    model
        .set_all_metadata(
            vec![MetadataEntry::new("acc", "0.9", MetadataType::Float)],
            false,
        )
        .await
        .expect("update");
    assert_eq!(model.get_all_metadata().len(), 4);
    model
        .set_all_metadata(
            vec![MetadataEntry::new("only", "true", MetadataType::Bool)],
            true,
        )
        .await
        .expect("replace");
    assert_eq!(model.get_all_metadata_casted().len(), 1);
    assert_eq!(
        fx.stored(model.id())
            .await
            .record
            .get_metadata_casted("only"),
        Some(MetadataValue::Bool(true))
    );
}

#[tokio::test]
async fn connect_and_reuse_by_base_model_id() {
    let fx = Fixture::new().await;
    let first = fx.task("vision", "train").await;
    let second = fx.task("vision", "finetune").await;
    let model = OutputModel::new(
        &first,
        OutputModelOptions {
            name: Some("backbone".into()),
            label_enumeration: Some(labels()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("create");

    model
        .connect(&second, Some("encoder"))
        .await
        .expect("connect");
    assert_eq!(model.task().as_deref(), Some(second.id()));
    assert_eq!(second.connected_models().get("encoder"), Some(&model.id()));
    assert_eq!(
        fx.stored(model.id()).await.record.task.as_deref(),
        Some(second.id())
    );

    let reused = OutputModel::new(
        &first,
        OutputModelOptions {
            base_model_id: Some(model.id()),
            comment: Some("reused".into()),
            ..OutputModelOptions::default()
        },
    )
    .await
    .expect("reuse");
    assert_eq!(reused.id(), model.id());
    assert_eq!(reused.name(), "backbone", "fields not given are kept");
    assert_eq!(reused.labels(), labels());
    assert_eq!(reused.comment(), "reused");
    assert_eq!(reused.task().as_deref(), Some(first.id()));

    // The first handle now holds an old version: its next write re-reads and re-applies.
    model
        .set_tags(vec!["x".into()])
        .await
        .expect("write after a concurrent change");
    let stored = fx.stored(model.id()).await.record;
    assert_eq!(stored.tags, vec!["x"]);
    assert_eq!(
        stored.comment, "reused",
        "the other writer's change is kept"
    );
}
