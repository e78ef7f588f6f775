//! The registry conformance suite: every check runs on SQLite (a temporary file) and on
//! PostgreSQL (a throw-away database; skipped outside CI when no server is reachable).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use kiln_entities::{
    BlobRef, Design, MetadataType, MetadataValue, ModelConfiguration, ModelData, ModelEntity,
    ModelId, ModelPrecision, ModelRecord, OptimizationMethod, Performance, Sha256Digest,
};
use kiln_storage::registry::BlobUse;
use kiln_storage::{
    Event, EventKind, EventQuery, LineageDirection, LineageQuery, ModelQuery, Registry,
    RegistryError, RegistryExt, SqlRegistry, SqlRegistryOptions, StoredModel,
};
use serde_json::json;
use tempfile::TempDir;

use crate::support::postgres::TestDatabase;

// ---------------------------------------------------------------------------------------------
// Harness

/// A database to test against, and what keeps it alive.
struct Target {
    url: String,
    _dir: Option<TempDir>,
    _database: Option<TestDatabase>,
}

/// A fresh SQLite file in a temporary directory (under a directory that does not exist yet, so
/// that opening must create it).
fn sqlite_target() -> Target {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("nested dir").join("registry.db");
    Target {
        url: format!("sqlite://{}", path.display()).replace(' ', "%20"),
        _dir: Some(dir),
        _database: None,
    }
}

/// A fresh PostgreSQL database, or `None` (after saying why) when none can be had.
async fn postgres_target(test: &str) -> Option<Target> {
    let database = TestDatabase::create(test).await?;
    Some(Target {
        url: database.url().to_owned(),
        _dir: None,
        _database: Some(database),
    })
}

async fn open(url: &str) -> SqlRegistry {
    SqlRegistry::open(url, &SqlRegistryOptions::default())
        .await
        .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
}

/// Runs each named `async fn(&dyn Registry)` on SQLite and on PostgreSQL.
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let target = super::sqlite_target();
                    let registry = super::open(&target.url).await;
                    super::$name(&registry).await;
                    registry.close().await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(target) = super::postgres_target(stringify!($name)).await else {
                        return;
                    };
                    let registry = super::open(&target.url).await;
                    super::$name(&registry).await;
                    registry.close().await;
                }
            )+
        }
    };
}

/// Runs each named `async fn(&str)` (a database URL) on SQLite and on PostgreSQL.
macro_rules! on_every_url {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_url {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let target = super::sqlite_target();
                    super::$name(&target.url).await;
                }
            )+
        }

        mod postgres_url {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(target) = super::postgres_target(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&target.url).await;
                }
            )+
        }
    };
}

on_every_backend!(
    projects_and_tasks,
    full_model_round_trip,
    optimistic_concurrency,
    superseded_blobs,
    entity_data_are_blob_references,
    query_filters,
    paging_is_complete_and_stable,
    lineage_walks,
    lineage_survives_cycles,
    events_round_trip_in_report_order,
    delete_cascades,
);

on_every_url!(
    reopening_keeps_data,
    refuses_a_newer_schema,
    concurrent_writers_from_two_pools,
);

// ---------------------------------------------------------------------------------------------
// SQLite only

#[tokio::test]
async fn in_memory_registries_are_private() {
    let first = SqlRegistry::open_in_memory().await.expect("in memory");
    let second = SqlRegistry::open_in_memory().await.expect("in memory");
    let stored = put(&first, &full_model("p", "t")).await;
    // A clone shares the database; another in-memory registry does not.
    let clone = first.clone();
    assert_same_model(&clone.model(stored.id()).await.expect("clone"), &stored);
    assert!(matches!(
        second.model(stored.id()).await,
        Err(RegistryError::ModelNotFound { .. })
    ));
    // Concurrent calls share its single connection.
    let events = [scalar(stored.id(), "loss", 1, 0.5, 1)];
    let query = ModelQuery::default();
    let (a, b) = tokio::join!(first.add_events(&events), clone.query_models(&query));
    a.expect("events");
    assert_eq!(b.expect("query").items.len(), 1);
    assert!(!first.is_postgres());
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://localhost/kiln",
        "kiln.db",
        "sqlite://",
        "s3://bucket/kiln.db",
    ] {
        assert!(
            matches!(
                SqlRegistry::open(url, &SqlRegistryOptions::default()).await,
                Err(RegistryError::UnsupportedUrl { .. })
            ),
            "{url}"
        );
    }
}

/// The environment variable that makes [`sigkill_child`] act (and names its database).
const SIGKILL_CHILD_DB: &str = "KILN_TEST_SIGKILL_CHILD_DB";

/// A registration committed by a process that is then killed with SIGKILL is in the file.
#[test]
fn commits_survive_sigkill() {
    use std::io::BufRead as _;

    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("killed.db");
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "registry::sigkill_child", "--nocapture"])
        .env(SIGKILL_CHILD_DB, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(id) = line.strip_prefix("committed ") {
                let _ = tx.send(id.to_owned());
                return;
            }
        }
    });
    let id = rx.recv_timeout(std::time::Duration::from_secs(120));
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    let id: ModelId = id
        .expect("the child committed a model")
        .parse()
        .expect("a model id");

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let registry = SqlRegistry::open_sqlite(&path).await.expect("reopen");
        let model = registry.model(id).await.expect("the committed model");
        assert_eq!(model.record.name, "YOLOv8n-int8");
        assert_eq!(model.blobs.len(), 2);
        let events = registry
            .events(&EventQuery {
                model: Some(id),
                ..EventQuery::default()
            })
            .await
            .expect("events");
        assert_eq!(events.len(), 1_000);
        registry.close().await;
    });
}

/// The child of [`commits_survive_sigkill`]: commits a model and events, says so, and waits to be
/// killed. Without its environment variable (a normal test run) it does nothing.
#[tokio::test]
async fn sigkill_child() {
    let Some(path) = std::env::var_os(SIGKILL_CHILD_DB) else {
        return;
    };
    let registry = SqlRegistry::open_sqlite(&path).await.expect("open");
    let stored = put(&registry, &full_model("p", "t")).await;
    let events: Vec<Event> = (0..1_000)
        .map(|i| scalar(stored.id(), "loss", i, 0.5, i))
        .collect();
    registry.add_events(&events).await.expect("events");
    println!("committed {}", stored.id());
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn digest(n: u8) -> Sha256Digest {
    Sha256Digest::from_bytes([n; 32])
}

fn blob(n: u8) -> BlobRef {
    let digest = digest(n);
    BlobRef {
        size: 1000 + u64::from(n),
        uri: format!("file:///var/kiln/blobs/sha256/{digest}"),
        digest,
    }
}

/// A model called `name` with an entity of `precision` and, optionally, a parent.
fn model_of(name: &str, precision: &[ModelPrecision], parent: Option<ModelId>) -> StoredModel {
    let mut record = ModelRecord::new(name);
    record.parent = parent;
    let mut entity = ModelEntity::new(ModelConfiguration::default());
    entity.id = record.id;
    entity.precision = precision.to_vec();
    let mut model = StoredModel::new(record);
    model.entity = Some(entity);
    model
}

/// A model with every field set: labels, a text design, tags, system tags, typed metadata, an
/// entity with stored data, and two blobs.
fn full_model(project: &str, task: &str) -> StoredModel {
    let mut record = ModelRecord::new("YOLOv8n-int8");
    record.comment = "quantized with kiln \u{2713}".to_owned();
    record.framework = Some("ONNX".to_owned());
    record.project = Some(project.to_owned());
    record.task = Some(task.to_owned());
    record.parent = Some(ModelId::new());
    record.labels = BTreeMap::from([("background".to_owned(), 0), ("person".to_owned(), 1)]);
    record.design = Some(Design::Text(
        "[model]\ndepth = 0.33\nwidth: 0.25\n".to_owned(),
    ));
    record.tags = vec!["detector".to_owned(), "coco".to_owned()];
    record.system_tags = vec!["package".to_owned()];
    record.published = true;
    record.uri = Some("file:///var/kiln/blobs/weights.onnx".to_owned());
    record.set_metadata("epochs", "30", MetadataType::Int);
    record.set_metadata("lr", "0.001", MetadataType::Float);
    record.set_metadata("pretrained", "True", MetadataType::Bool);
    record.set_metadata("dataset", "coco-2017", MetadataType::Str);
    record.metadata.set_value(
        "input_shape",
        &MetadataValue::List(vec![json!(1), json!(3)]),
    );
    record.metadata.set_value(
        "thresholds",
        &MetadataValue::Dict(serde_json::Map::from_iter([(
            "conf".to_owned(),
            json!(0.25),
        )])),
    );

    let mut entity = ModelEntity::new(ModelConfiguration::default());
    entity.id = record.id;
    entity.precision = vec![ModelPrecision::Int8, ModelPrecision::Fp32];
    entity.performance = Some(Performance::new("mAP50", 0.52));
    entity.training_duration = 3600.5;
    entity.latency = 12;
    entity.fps_throughput = 83;
    entity.target_device_type = Some("Intel(R) Xeon(R) Gold 6338".to_owned());
    entity.optimization_methods = vec![OptimizationMethod::Quantization];
    entity.optimization_objectives = BTreeMap::from([("preset".to_owned(), "mixed".to_owned())]);
    entity.performance_improvement = BTreeMap::from([("latency".to_owned(), 2.7)]);
    entity.tags = vec!["int8".to_owned()];
    entity.set_data("weights.onnx", ModelData::Stored(blob(1)), false);

    let mut model = StoredModel::new(record);
    model.entity = Some(entity);
    model.set_blob("weights", blob(1));
    model.set_blob("labels", blob(2));
    model
}

/// Checks that `stored` is `expected` as the registry returns it.
#[track_caller]
fn assert_same_model(stored: &StoredModel, expected: &StoredModel) {
    assert_eq!(stored.record, expected.record);
    assert_eq!(stored.blobs, expected.blobs);
    assert_eq!(stored.version, expected.version);
    assert_eq!(stored.created_at, expected.created_at);
    assert_eq!(stored.updated_at, expected.updated_at);
    match (&stored.entity, &expected.entity) {
        (Some(a), Some(b)) => assert!(a.same_as(b), "entities differ:\n{a:#?}\n{b:#?}"),
        (None, None) => {}
        (a, b) => panic!("entities differ: {a:?} vs {b:?}"),
    }
}

async fn put(registry: &dyn Registry, model: &StoredModel) -> StoredModel {
    registry
        .put_model(model, None)
        .await
        .unwrap_or_else(|e| panic!("cannot put {}: {e}", model.record.name))
}

fn names(models: &[StoredModel]) -> Vec<&str> {
    models.iter().map(|m| m.record.name.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The suite

async fn projects_and_tasks(registry: &dyn Registry) {
    let project = registry.ensure_project("detection").await.expect("project");
    let again = registry
        .ensure_project("detection")
        .await
        .expect("project again");
    assert_eq!(project, again, "ensure_project is idempotent");
    assert_eq!(registry.project(&project.id).await.expect("by id"), project);
    assert_eq!(
        registry.project("detection").await.expect("by name"),
        project
    );
    let other = registry
        .ensure_project("segmentation")
        .await
        .expect("other");
    assert_ne!(other.id, project.id);
    assert!(matches!(
        registry.project("nope").await,
        Err(RegistryError::ProjectNotFound(name)) if name == "nope"
    ));
    assert!(matches!(
        registry.ensure_project("  ").await,
        Err(RegistryError::InvalidArgument { .. })
    ));

    let task = registry
        .ensure_task(&project.id, "train")
        .await
        .expect("task");
    assert_eq!(task.project, project.id);
    assert_eq!(task.name, "train");
    assert_eq!(
        registry
            .ensure_task(&project.id, "train")
            .await
            .expect("again"),
        task,
        "ensure_task is idempotent"
    );
    let same_name = registry
        .ensure_task(&other.id, "train")
        .await
        .expect("other");
    assert_ne!(same_name.id, task.id, "task names are per project");
    assert_eq!(registry.task(&task.id).await.expect("task by id"), task);
    assert!(matches!(
        registry.task("missing").await,
        Err(RegistryError::TaskNotFound(_))
    ));
    assert!(matches!(
        registry.ensure_task("no such project", "train").await,
        Err(RegistryError::ProjectNotFound(_))
    ));
}

async fn full_model_round_trip(registry: &dyn Registry) {
    let project = registry
        .ensure_project("round trip")
        .await
        .expect("project");
    let task = registry
        .ensure_task(&project.id, "quantize")
        .await
        .expect("task");
    let model = full_model(&project.id, &task.id);

    let stored = registry.put_model(&model, Some(0)).await.expect("put");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.created_at, stored.updated_at);
    let read = registry.model(model.id()).await.expect("get");
    assert_same_model(&read, &stored);
    assert_eq!(
        read.record.config_text().as_deref(),
        model.record.config_text().as_deref()
    );
    assert_eq!(
        read.record.get_metadata_casted("epochs"),
        Some(MetadataValue::Int(30))
    );
    assert_eq!(
        read.record.get_metadata_casted("pretrained"),
        Some(MetadataValue::Bool(true))
    );

    // A dict design, an archive and an update keep created_at and bump the version.
    let mut changed = read.clone();
    changed
        .record
        .update_design(
            None,
            Some(serde_json::Map::from_iter([(
                "depth".to_owned(),
                json!(0.33),
            )])),
        )
        .expect("design");
    changed.record.archive();
    changed.record.tags.push("coco".to_owned()); // a duplicate tag is kept in the record
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let updated = registry.put_model(&changed, Some(1)).await.expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, stored.created_at);
    assert!(updated.updated_at > stored.updated_at);
    let read = registry.model(model.id()).await.expect("get again");
    assert_same_model(&read, &updated);
    assert!(read.record.archived());
    assert!(matches!(read.record.design, Some(Design::Dict(_))));

    // A model without an entity or blobs.
    let bare = put(registry, &StoredModel::new(ModelRecord::new("bare"))).await;
    assert_same_model(&registry.model(bare.id()).await.expect("bare"), &bare);

    assert!(matches!(
        registry.model(ModelId::new()).await,
        Err(RegistryError::ModelNotFound { .. })
    ));

    // Inline data and a mismatched entity id are refused.
    let mut inline = model_of("inline", &[ModelPrecision::Fp32], None);
    if let Some(entity) = inline.entity.as_mut() {
        entity.set_data("weights.onnx", ModelData::Inline(vec![1, 2, 3]), false);
    }
    assert!(matches!(
        registry.put_model(&inline, None).await,
        Err(RegistryError::InvalidArgument {
            field: "entity",
            ..
        })
    ));
    let mut mismatched = model_of("mismatched", &[ModelPrecision::Fp32], None);
    if let Some(entity) = mismatched.entity.as_mut() {
        entity.id = ModelId::new();
    }
    assert!(matches!(
        registry.put_model(&mismatched, None).await,
        Err(RegistryError::InvalidArgument {
            field: "entity",
            ..
        })
    ));
}

async fn optimistic_concurrency(registry: &dyn Registry) {
    let model = model_of("contended", &[ModelPrecision::Fp32], None);
    let v1 = registry.put_model(&model, Some(0)).await.expect("create");
    assert!(matches!(
        registry.put_model(&model, Some(0)).await,
        Err(RegistryError::Conflict {
            expected: 0,
            found: 1,
            ..
        })
    ));
    let v2 = registry
        .put_model(&v1, Some(1))
        .await
        .expect("update from v1");
    assert_eq!(v2.version, 2);
    // A second writer that read v1 loses.
    let error = registry.put_model(&v1, Some(1)).await;
    assert!(
        matches!(
            error,
            Err(RegistryError::Conflict {
                expected: 1,
                found: 2,
                ..
            })
        ),
        "{error:?}"
    );
    assert!(matches!(
        registry
            .put_model(&StoredModel::new(ModelRecord::new("new")), Some(3))
            .await,
        Err(RegistryError::Conflict {
            expected: 3,
            found: 0,
            ..
        })
    ));
    // Unconditional writes always win.
    let v3 = registry.put_model(&v1, None).await.expect("unconditional");
    assert_eq!(v3.version, 3);
    assert_eq!(registry.model(model.id()).await.expect("get").version, 3);
}

async fn superseded_blobs(registry: &dyn Registry) {
    let uses = |uses: Vec<(Sha256Digest, BlobUse)>| uses.into_iter().collect::<BTreeMap<_, _>>();
    let mut first = model_of("first", &[ModelPrecision::Fp32], None);
    first.set_blob("weights", blob(10));
    first.set_blob("labels", blob(11));
    first.set_blob("extra", blob(12));
    let first = put(registry, &first).await;
    assert_eq!(
        uses(registry.blob_uses().await.expect("uses")),
        BTreeMap::from([
            (digest(10), BlobUse::Current),
            (digest(11), BlobUse::Current),
            (digest(12), BlobUse::Current),
        ])
    );

    // New weights, labels kept, extra removed.
    let mut second = first.clone();
    second.set_blob("weights", blob(13));
    second.blobs.retain(|b| b.role != "extra");
    let second = put(registry, &second).await;
    assert_eq!(
        registry.model(first.id()).await.expect("get").blobs,
        second.blobs,
        "only the current blobs are the model's"
    );
    assert_eq!(
        uses(registry.blob_uses().await.expect("uses")),
        BTreeMap::from([
            (digest(10), BlobUse::Superseded),
            (digest(11), BlobUse::Current),
            (digest(12), BlobUse::Superseded),
            (digest(13), BlobUse::Current),
        ])
    );

    // Another model still using blob 12 keeps it current.
    let mut other = model_of("other", &[ModelPrecision::Fp32], None);
    other.set_blob("weights", blob(12));
    put(registry, &other).await;
    let now = uses(registry.blob_uses().await.expect("uses"));
    assert_eq!(now.get(&digest(12)), Some(&BlobUse::Current));

    // Going back to the old weights makes them current again.
    let mut third = second.clone();
    third.set_blob("weights", blob(10));
    put(registry, &third).await;
    let now = uses(registry.blob_uses().await.expect("uses"));
    assert_eq!(now.get(&digest(10)), Some(&BlobUse::Current));
    assert_eq!(now.get(&digest(13)), Some(&BlobUse::Superseded));

    // Forgetting superseded references: 12 (first model's extra) and 13.
    assert_eq!(registry.drop_superseded().await.expect("drop"), 2);
    assert_eq!(registry.drop_superseded().await.expect("drop again"), 0);
    assert_eq!(
        uses(registry.blob_uses().await.expect("uses")),
        BTreeMap::from([
            (digest(10), BlobUse::Current),
            (digest(11), BlobUse::Current),
            (digest(12), BlobUse::Current),
        ])
    );
}

/// The entity's stored data are blob references the registry keeps itself (`entity:<key>`), so
/// `gc` never collects them; user roles with that prefix are ignored.
async fn entity_data_are_blob_references(registry: &dyn Registry) {
    let mut model = model_of("with-data", &[ModelPrecision::Fp32], None);
    model.set_blob("weights", blob(20));
    let entity = model.entity.as_mut().expect("model_of gives an entity");
    entity.set_data("graph.xml", ModelData::Stored(blob(21)), false);
    entity.set_exportable_code(Some(ModelData::Stored(blob(22))));
    model.set_blob("entity:forged", blob(23));
    let stored = put(registry, &model).await;
    let roles: Vec<&str> = stored.blobs.iter().map(|b| b.role.as_str()).collect();
    assert_eq!(roles, ["weights"], "the entity's blobs stay in the entity");
    let read = registry.model(stored.id()).await.expect("get");
    assert_eq!(read.blobs, stored.blobs);
    let uses: BTreeMap<_, _> = registry
        .blob_uses()
        .await
        .expect("uses")
        .into_iter()
        .collect();
    for n in [20, 21, 22] {
        assert_eq!(uses.get(&digest(n)), Some(&BlobUse::Current), "blob {n}");
    }
    assert_eq!(uses.get(&digest(23)), None);

    // Writing back what was read keeps the same references; new entity data supersede old.
    let mut again = registry.model(stored.id()).await.expect("get");
    let version = again.version;
    again.entity.as_mut().expect("entity").set_data(
        "graph.xml",
        ModelData::Stored(blob(24)),
        false,
    );
    let again = registry
        .put_model(&again, Some(version))
        .await
        .expect("put again");
    assert_eq!(
        again
            .entity
            .as_ref()
            .and_then(|e| e.get_data("graph.xml").ok()),
        Some(&ModelData::Stored(blob(24)))
    );
    let uses: BTreeMap<_, _> = registry
        .blob_uses()
        .await
        .expect("uses")
        .into_iter()
        .collect();
    assert_eq!(uses.get(&digest(21)), Some(&BlobUse::Superseded));
    assert_eq!(uses.get(&digest(24)), Some(&BlobUse::Current));
}

async fn query_filters(registry: &dyn Registry) {
    let vision = registry.ensure_project("vision").await.expect("project");
    let audio = registry.ensure_project("audio").await.expect("project");
    let mut specs: Vec<StoredModel> = Vec::new();
    let mut add = |name: &str, project: &str, precision: &[ModelPrecision]| {
        let mut m = model_of(name, precision, None);
        m.record.project = Some(project.to_owned());
        specs.push(m);
    };
    add("YOLOv8n", &vision.id, &[ModelPrecision::Fp32]);
    add(
        "yolov8n-int8",
        &vision.id,
        &[ModelPrecision::Int8, ModelPrecision::Fp32],
    );
    add("ResNet_50", &vision.id, &[ModelPrecision::Fp16]);
    add("resnet-50-archived", &vision.id, &[ModelPrecision::Fp32]);
    add("whisper-tiny", &audio.id, &[ModelPrecision::Int8]);
    add("100% pure", &audio.id, &[ModelPrecision::Int4]);
    specs[0].record.tags = vec!["detector".into(), "coco".into()];
    specs[0].record.published = true;
    specs[1].record.tags = vec!["detector".into(), "coco".into(), "quantized".into()];
    specs[1]
        .record
        .set_metadata("calibration", "coco-val", MetadataType::Str);
    specs[1]
        .record
        .set_metadata("batch", "8", MetadataType::Int);
    specs[2].record.tags = vec!["classifier".into()];
    specs[2]
        .record
        .set_metadata("calibration", "imagenet", MetadataType::Str);
    specs[2]
        .record
        .set_metadata("batch", "8", MetadataType::Int);
    specs[2].record.published = true;
    specs[3].record.tags = vec!["classifier".into()];
    specs[3].record.archive();
    specs[4].record.tags = vec!["speech".into(), "quantized".into()];
    // A system tag is not a tag.
    specs[5].record.system_tags = vec!["detector".into()];
    for spec in &specs {
        put(registry, spec).await;
    }

    let check = |query: ModelQuery, expected: &'static [&'static str]| async move {
        let found = registry
            .query_all_models(&query)
            .await
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        let found: BTreeSet<String> = found.into_iter().map(|m| m.record.name).collect();
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(found, expected, "{query:?}");
    };
    let q = ModelQuery::default;
    check(
        q(),
        &[
            "YOLOv8n",
            "yolov8n-int8",
            "ResNet_50",
            "whisper-tiny",
            "100% pure",
        ],
    )
    .await;
    check(
        ModelQuery {
            include_archived: true,
            ..q()
        },
        &[
            "YOLOv8n",
            "yolov8n-int8",
            "ResNet_50",
            "resnet-50-archived",
            "whisper-tiny",
            "100% pure",
        ],
    )
    .await;
    // Project by name and by id.
    check(
        ModelQuery {
            project: Some("vision".into()),
            ..q()
        },
        &["YOLOv8n", "yolov8n-int8", "ResNet_50"],
    )
    .await;
    check(
        ModelQuery {
            project: Some(audio.id.clone()),
            ..q()
        },
        &["whisper-tiny", "100% pure"],
    )
    .await;
    check(
        ModelQuery {
            project: Some("no such project".into()),
            ..q()
        },
        &[],
    )
    .await;
    // Names: substring without wildcards, case-insensitive; `*` and `?` anchored; `_` and `%`
    // literal.
    check(
        ModelQuery {
            name_pattern: Some("YOLO".into()),
            ..q()
        },
        &["YOLOv8n", "yolov8n-int8"],
    )
    .await;
    check(
        ModelQuery {
            name_pattern: Some("yolo*n".into()),
            ..q()
        },
        &["YOLOv8n"],
    )
    .await;
    check(
        ModelQuery {
            name_pattern: Some("res?et*".into()),
            include_archived: true,
            ..q()
        },
        &["ResNet_50", "resnet-50-archived"],
    )
    .await;
    check(
        ModelQuery {
            name_pattern: Some("t_5".into()),
            include_archived: true,
            ..q()
        },
        &["ResNet_50"],
    )
    .await;
    check(
        ModelQuery {
            name_pattern: Some("100%".into()),
            ..q()
        },
        &["100% pure"],
    )
    .await;
    // Tags: all of them; `-tag` excludes; system tags are not tags.
    check(
        ModelQuery {
            tags: vec!["detector".into(), "coco".into()],
            ..q()
        },
        &["YOLOv8n", "yolov8n-int8"],
    )
    .await;
    check(
        ModelQuery {
            tags: vec!["detector".into(), "-quantized".into()],
            ..q()
        },
        &["YOLOv8n"],
    )
    .await;
    check(
        ModelQuery {
            tags: vec!["-classifier".into(), "-detector".into()],
            ..q()
        },
        &["whisper-tiny", "100% pure"],
    )
    .await;
    check(
        ModelQuery {
            tags: vec!["quantized".into()],
            project: Some("vision".into()),
            ..q()
        },
        &["yolov8n-int8"],
    )
    .await;
    // Published.
    check(
        ModelQuery {
            only_published: true,
            ..q()
        },
        &["YOLOv8n", "ResNet_50"],
    )
    .await;
    // Metadata: every pair.
    check(
        ModelQuery {
            metadata: vec![("batch".into(), "8".into())],
            ..q()
        },
        &["yolov8n-int8", "ResNet_50"],
    )
    .await;
    check(
        ModelQuery {
            metadata: vec![
                ("batch".into(), "8".into()),
                ("calibration".into(), "imagenet".into()),
            ],
            ..q()
        },
        &["ResNet_50"],
    )
    .await;
    check(
        ModelQuery {
            metadata: vec![("batch".into(), "16".into())],
            ..q()
        },
        &[],
    )
    .await;
    // Precision: any of them.
    check(
        ModelQuery {
            precision: vec![ModelPrecision::Int8],
            ..q()
        },
        &["yolov8n-int8", "whisper-tiny"],
    )
    .await;
    check(
        ModelQuery {
            precision: vec![ModelPrecision::Int4, ModelPrecision::Fp16],
            ..q()
        },
        &["ResNet_50", "100% pure"],
    )
    .await;
    // Newest first.
    let all = registry.query_models(&q()).await.expect("query").items;
    assert_eq!(
        names(&all),
        [
            "100% pure",
            "whisper-tiny",
            "ResNet_50",
            "yolov8n-int8",
            "YOLOv8n"
        ]
    );
    // Bad arguments.
    for bad in [
        ModelQuery {
            tags: vec!["-".into()],
            ..q()
        },
        ModelQuery {
            max_results: Some(0),
            ..q()
        },
        ModelQuery {
            cursor: Some("not a cursor".into()),
            ..q()
        },
    ] {
        assert!(
            matches!(
                registry.query_models(&bad).await,
                Err(RegistryError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
}

async fn paging_is_complete_and_stable(registry: &dyn Registry) {
    let mut ids = BTreeSet::new();
    for i in 0..23 {
        let mut m = model_of(&format!("paged-{i:02}"), &[ModelPrecision::Fp32], None);
        m.set_blob("weights", blob(i));
        ids.insert(put(registry, &m).await.id());
    }
    let mut query = ModelQuery {
        max_results: Some(5),
        ..ModelQuery::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = registry.query_models(&query).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 5);
        for item in &page.items {
            assert_eq!(item.blobs.len(), 1, "blobs come with each model");
        }
        seen.extend(page.items.iter().map(|m| (m.created_at, m.id())));
        match page.next {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let unique: BTreeSet<ModelId> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), seen.len(), "no model twice");
    assert_eq!(unique, ids, "no model missed");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    let created: Vec<DateTime<Utc>> = seen.iter().map(|(t, _)| *t).collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );

    // A page of exactly the rest ends without a cursor; the default page takes everything.
    let all = registry
        .query_models(&ModelQuery::default())
        .await
        .expect("all");
    assert_eq!(all.items.len(), 23);
    assert_eq!(all.next, None);
    let exact = registry
        .query_models(&ModelQuery {
            max_results: Some(23),
            ..ModelQuery::default()
        })
        .await
        .expect("exact");
    assert_eq!(exact.items.len(), 23);
    assert_eq!(exact.next, None);
    // Over the maximum is clamped, not refused.
    let clamped = registry
        .query_models(&ModelQuery {
            max_results: Some(100_000),
            ..ModelQuery::default()
        })
        .await
        .expect("clamped");
    assert_eq!(clamped.items.len(), 23);
}

async fn lineage_walks(registry: &dyn Registry) {
    use ModelPrecision::{Fp16, Fp32, Int8};
    // root ─┬─ a ─┬─ a_int8
    //       │     └─ a_fp16 ── a_fp16_int8
    //       └─ b (int8 + fp32)
    // unrelated (int8)
    let root = put(registry, &model_of("root", &[Fp32], None)).await;
    let a = put(registry, &model_of("a", &[Fp32], Some(root.id()))).await;
    let b = put(registry, &model_of("b", &[Int8, Fp32], Some(root.id()))).await;
    let a_int8 = put(registry, &model_of("a_int8", &[Int8], Some(a.id()))).await;
    let a_fp16 = put(registry, &model_of("a_fp16", &[Fp16], Some(a.id()))).await;
    let a_fp16_int8 = put(
        registry,
        &model_of("a_fp16_int8", &[Int8], Some(a_fp16.id())),
    )
    .await;
    put(registry, &model_of("unrelated", &[Int8], None)).await;

    let descendants = registry.descendants(root.id()).await.expect("descendants");
    assert_eq!(
        names(&descendants),
        ["a", "b", "a_int8", "a_fp16", "a_fp16_int8"],
        "nearest first, then oldest first"
    );
    let ancestors = registry
        .ancestors(a_fp16_int8.id())
        .await
        .expect("ancestors");
    assert_eq!(names(&ancestors), ["a_fp16", "a", "root"]);
    assert_eq!(ancestors[0].blobs, a_fp16.blobs);
    assert!(
        registry
            .ancestors(root.id())
            .await
            .expect("none")
            .is_empty()
    );
    assert!(
        registry
            .descendants(a_int8.id())
            .await
            .expect("none")
            .is_empty()
    );

    // All INT8 models derived from root: the walk passes through a and a_fp16.
    let int8 = registry
        .lineage(&LineageQuery::new(root.id(), LineageDirection::Descendants).with_precision(Int8))
        .await
        .expect("int8");
    assert_eq!(names(&int8), ["b", "a_int8", "a_fp16_int8"]);
    let fp16_or_int8_of_a = registry
        .lineage(
            &LineageQuery::new(a.id(), LineageDirection::Descendants)
                .with_precision(Fp16)
                .with_precision(Int8),
        )
        .await
        .expect("fp16 or int8");
    assert_eq!(
        names(&fp16_or_int8_of_a),
        ["a_int8", "a_fp16", "a_fp16_int8"]
    );
    let fp32_ancestors = registry
        .lineage(
            &LineageQuery::new(a_fp16_int8.id(), LineageDirection::Ancestors).with_precision(Fp32),
        )
        .await
        .expect("fp32 ancestors");
    assert_eq!(names(&fp32_ancestors), ["a", "root"]);

    // Depth limits.
    let children = registry
        .lineage(&LineageQuery {
            max_depth: Some(1),
            ..LineageQuery::new(root.id(), LineageDirection::Descendants)
        })
        .await
        .expect("children");
    assert_eq!(names(&children), ["a", "b"]);
    let two = registry
        .lineage(&LineageQuery {
            max_depth: Some(2),
            ..LineageQuery::new(a_fp16_int8.id(), LineageDirection::Ancestors)
        })
        .await
        .expect("two generations");
    assert_eq!(names(&two), ["a_fp16", "a"]);
    let none = registry
        .lineage(&LineageQuery {
            max_depth: Some(0),
            ..LineageQuery::new(root.id(), LineageDirection::Descendants)
        })
        .await
        .expect("zero generations");
    assert!(none.is_empty());
    assert!(matches!(
        registry.descendants(ModelId::new()).await,
        Err(RegistryError::ModelNotFound { .. })
    ));

    // A deleted parent ends the walk up; its children stay.
    registry.delete_model(a.id()).await.expect("delete a");
    assert_eq!(
        names(
            &registry
                .ancestors(a_fp16_int8.id())
                .await
                .expect("ancestors")
        ),
        ["a_fp16"]
    );
    assert_eq!(
        names(&registry.descendants(root.id()).await.expect("descendants")),
        ["b"]
    );
    assert_eq!(
        names(&registry.ancestors(b.id()).await.expect("b")),
        ["root"]
    );
}

async fn lineage_survives_cycles(registry: &dyn Registry) {
    // x -> y -> z -> x (corrupt data): every walk ends.
    let x_id = ModelId::new();
    let mut z = model_of("z", &[ModelPrecision::Fp32], Some(x_id));
    let z_id = z.id();
    let y = put(
        registry,
        &model_of("y", &[ModelPrecision::Fp32], Some(z_id)),
    )
    .await;
    let mut x = model_of("x", &[ModelPrecision::Fp32], Some(y.id()));
    x.record.id = x_id;
    if let Some(entity) = x.entity.as_mut() {
        entity.id = x_id;
    }
    put(registry, &x).await;
    z.record.parent = Some(x_id);
    put(registry, &z).await;
    assert_eq!(
        names(&registry.ancestors(x_id).await.expect("ancestors")),
        ["y", "z"]
    );
    assert_eq!(
        names(&registry.descendants(x_id).await.expect("descendants")),
        ["z", "y"]
    );
    // A model that is its own parent.
    let mut own = model_of("own", &[ModelPrecision::Fp32], None);
    own.record.parent = Some(own.id());
    let own = put(registry, &own).await;
    assert!(registry.ancestors(own.id()).await.expect("own").is_empty());
    assert!(
        registry
            .descendants(own.id())
            .await
            .expect("own")
            .is_empty()
    );
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + ms)
        .single()
        .expect("a valid time")
}

fn scalar(model: ModelId, title: &str, iteration: i64, value: f64, ms: i64) -> Event {
    Event {
        model: Some(model),
        task: None,
        timestamp: at(ms),
        kind: EventKind::Scalar {
            title: title.to_owned(),
            series: "train".to_owned(),
            iteration,
            value,
        },
    }
}

async fn events_round_trip_in_report_order(registry: &dyn Registry) {
    let project = registry.ensure_project("events").await.expect("project");
    let task = registry
        .ensure_task(&project.id, "train")
        .await
        .expect("task");
    let m = put(registry, &model_of("events", &[ModelPrecision::Fp32], None)).await;
    let other = put(registry, &model_of("other", &[ModelPrecision::Fp32], None)).await;

    let figure = json!({"data": [{"x": [1, 2], "y": [0.5, 0.25], "type": "scatter"}],
                        "layout": {"title": "PR curve"}});
    let first = vec![
        scalar(m.id(), "loss", 1, 0.9, 10),
        scalar(m.id(), "loss", 2, 0.7, 20),
        // Same time as the previous one: report order decides.
        scalar(m.id(), "accuracy", 2, 0.6, 20),
        Event {
            model: Some(m.id()),
            task: Some(task.id.clone()),
            timestamp: at(30),
            kind: EventKind::SingleValue {
                name: "mAP50".to_owned(),
                value: 0.52,
            },
        },
        Event {
            model: Some(m.id()),
            task: None,
            timestamp: at(25),
            kind: EventKind::Plot {
                title: "PR curve".to_owned(),
                series: "person".to_owned(),
                iteration: 2,
                figure: figure.clone(),
            },
        },
        scalar(other.id(), "loss", 1, 1.5, 5),
    ];
    registry.add_events(&first).await.expect("add");
    let second = vec![
        // Reported later, at an earlier time: sorted by time.
        scalar(m.id(), "loss", 0, 1.2, 0),
        // Reported later at the same time as earlier events: after them.
        scalar(m.id(), "loss", 3, f64::NAN, 20),
        scalar(m.id(), "loss", 4, f64::INFINITY, 40),
        scalar(m.id(), "loss", 5, f64::NEG_INFINITY, 50),
        Event {
            model: None,
            task: Some(task.id.clone()),
            timestamp: at(1),
            kind: EventKind::SingleValue {
                name: "epochs".to_owned(),
                value: 30.0,
            },
        },
    ];
    registry.add_events(&second).await.expect("add more");
    registry.add_events(&[]).await.expect("nothing");

    let of_model = registry
        .events(&EventQuery {
            model: Some(m.id()),
            ..EventQuery::default()
        })
        .await
        .expect("events");
    let expected_order = [
        &second[0], &first[0], &first[1], &first[2], &second[1], &first[4], &first[3], &second[2],
        &second[3],
    ];
    assert_eq!(of_model.len(), expected_order.len());
    for (got, want) in of_model.iter().zip(expected_order) {
        match (&got.kind, &want.kind) {
            (EventKind::Scalar { value: a, .. }, EventKind::Scalar { value: b, .. })
                if b.is_nan() =>
            {
                assert!(a.is_nan(), "NaN survives");
                assert_eq!(got.timestamp, want.timestamp);
            }
            _ => assert_eq!(got, want),
        }
    }

    let of_task = registry
        .events(&EventQuery {
            task: Some(task.id.clone()),
            ..EventQuery::default()
        })
        .await
        .expect("task events");
    assert_eq!(of_task, vec![second[4].clone(), first[3].clone()]);

    let loss = registry
        .events(&EventQuery {
            model: Some(m.id()),
            title: Some("loss".to_owned()),
            limit: Some(3),
            ..EventQuery::default()
        })
        .await
        .expect("loss");
    assert_eq!(
        loss,
        vec![second[0].clone(), first[0].clone(), first[1].clone()]
    );

    let everything = registry.events(&EventQuery::default()).await.expect("all");
    assert_eq!(everything.len(), first.len() + second.len());

    // A big batch (several INSERT chunks) in one call keeps its order.
    let big: Vec<Event> = (0..7_000)
        .map(|i| scalar(other.id(), "big", i, i as f64 * 0.5, 1_000))
        .collect();
    registry.add_events(&big).await.expect("big batch");
    let read = registry
        .events(&EventQuery {
            model: Some(other.id()),
            title: Some("big".to_owned()),
            ..EventQuery::default()
        })
        .await
        .expect("big read");
    assert_eq!(read, big);
}

async fn delete_cascades(registry: &dyn Registry) {
    let mut doomed = full_model("p", "t");
    doomed.set_blob("weights", blob(40));
    let doomed = put(registry, &doomed).await;
    let mut kept = model_of("kept", &[ModelPrecision::Fp32], None);
    kept.record.tags = vec!["detector".into()];
    kept.set_blob("weights", blob(41));
    let kept = put(registry, &kept).await;
    // A superseded reference too.
    let mut replaced = doomed.clone();
    replaced.set_blob("weights", blob(42));
    let doomed = put(registry, &replaced).await;
    registry
        .add_events(&[
            scalar(doomed.id(), "loss", 1, 0.5, 1),
            scalar(kept.id(), "loss", 1, 0.4, 1),
        ])
        .await
        .expect("events");

    registry.delete_model(doomed.id()).await.expect("delete");
    assert!(matches!(
        registry.model(doomed.id()).await,
        Err(RegistryError::ModelNotFound { .. })
    ));
    assert!(matches!(
        registry.delete_model(doomed.id()).await,
        Err(RegistryError::ModelNotFound { .. })
    ));
    let events = registry
        .events(&EventQuery::default())
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].model, Some(kept.id()));
    let uses: Vec<Sha256Digest> = registry
        .blob_uses()
        .await
        .expect("uses")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(
        uses,
        vec![digest(41)],
        "its blob references are gone, current or not"
    );
    let remaining = registry
        .query_all_models(&ModelQuery {
            include_archived: true,
            ..ModelQuery::default()
        })
        .await
        .expect("query");
    assert_eq!(names(&remaining), ["kept"]);
    let tagged = registry
        .query_all_models(&ModelQuery {
            tags: vec!["detector".into()],
            ..ModelQuery::default()
        })
        .await
        .expect("tagged");
    assert_eq!(
        names(&tagged),
        ["kept"],
        "the deleted model's tags are gone"
    );
    let with_metadata = registry
        .query_all_models(&ModelQuery {
            metadata: vec![("epochs".into(), "30".into())],
            ..ModelQuery::default()
        })
        .await
        .expect("metadata");
    assert!(
        with_metadata.is_empty(),
        "the deleted model's metadata is gone"
    );
    // The id can be used again.
    let reborn = registry
        .put_model(&StoredModel::new(doomed.record.clone()), Some(0))
        .await
        .expect("reborn");
    assert_eq!(reborn.version, 1);
}

// ---------------------------------------------------------------------------------------------
// By URL

async fn reopening_keeps_data(url: &str) {
    let registry = open(url).await;
    let project = registry.ensure_project("kept").await.expect("project");
    let stored = registry
        .put_model(&full_model(&project.id, "t"), None)
        .await
        .expect("put");
    registry
        .add_events(&[scalar(stored.id(), "loss", 1, 0.25, 1)])
        .await
        .expect("event");
    registry.close().await;

    let reopened = open(url).await;
    reopened.analyze().await.expect("analyze");
    assert_eq!(reopened.project("kept").await.expect("project"), project);
    assert_same_model(&reopened.model(stored.id()).await.expect("model"), &stored);
    let events = reopened
        .events(&EventQuery::default())
        .await
        .expect("events");
    assert_eq!(events, vec![scalar(stored.id(), "loss", 1, 0.25, 1)]);
    // Sequence numbers go on from where they were.
    reopened
        .add_events(&[scalar(stored.id(), "loss", 2, 0.2, 1)])
        .await
        .expect("event");
    let events = reopened
        .events(&EventQuery::default())
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1], scalar(stored.id(), "loss", 2, 0.2, 1));
    reopened.close().await;
}

async fn refuses_a_newer_schema(url: &str) {
    let registry = open(url).await;
    let supported = SqlRegistry::supported_schema_version();
    assert!(supported >= 1);
    let stored = put(&registry, &model_of("old", &[ModelPrecision::Fp32], None)).await;
    // What a newer kiln would have left: a migration this one does not know.
    let future = 20_991_231_000_000_i64;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(future)
    .bind("from the future")
    .bind(true)
    .bind(vec![0_u8; 48])
    .bind(0_i64)
    .execute(registry.pool())
    .await
    .expect("insert a future migration");
    registry.close().await;

    match SqlRegistry::open(url, &SqlRegistryOptions::default()).await {
        Err(RegistryError::NewerSchema {
            found,
            supported: s,
            url: shown,
        }) => {
            assert_eq!(found, future);
            assert_eq!(s, supported);
            assert!(!shown.is_empty());
            let message = RegistryError::NewerSchema {
                url: shown,
                found,
                supported: s,
            }
            .to_string();
            assert!(message.contains("upgrade kiln"), "{message}");
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }

    // Nothing was touched: without the future row, this kiln opens it again.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&plain_url(url))
        .await
        .expect("raw connection");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(future)
        .execute(&pool)
        .await
        .expect("remove the future migration");
    pool.close().await;
    let again = open(url).await;
    assert_eq!(again.model(stored.id()).await.expect("model").version, 1);
    again.close().await;
}

/// `url` as sqlx itself takes it.
fn plain_url(url: &str) -> String {
    if url.starts_with("sqlite:") {
        format!("{url}?mode=rw")
    } else {
        url.to_owned()
    }
}

async fn concurrent_writers_from_two_pools(url: &str) {
    // Opened at the same time: both migrate the fresh database.
    let (first, second) = tokio::join!(open(url), open(url));
    let shared = put(&first, &model_of("shared", &[ModelPrecision::Fp32], None)).await;
    const EACH: usize = 15;

    async fn writer(registry: SqlRegistry, shared: ModelId, who: &'static str) -> Vec<ModelId> {
        let mut mine = Vec::new();
        for i in 0..EACH {
            let m = put(
                &registry,
                &model_of(&format!("{who}-{i}"), &[ModelPrecision::Fp32], None),
            )
            .await;
            mine.push(m.id());
            // Everyone also rewrites the shared model, unconditionally …
            let mut current = registry.model(shared).await.expect("shared");
            current.record.tags = vec![format!("{who}-{i}")];
            registry
                .put_model(&current, None)
                .await
                .expect("unconditional");
            // … and appends events.
            let events: Vec<Event> = (0..50)
                .map(|n| scalar(shared, who, n, 0.1, i64::try_from(i).unwrap_or(0)))
                .collect();
            registry.add_events(&events).await.expect("events");
        }
        mine
    }

    let (a, b) = tokio::join!(
        tokio::spawn(writer(first.clone(), shared.id(), "first")),
        tokio::spawn(writer(second.clone(), shared.id(), "second")),
    );
    let mut written = a.expect("first writer");
    written.extend(b.expect("second writer"));

    let all = first
        .query_all_models(&ModelQuery::default())
        .await
        .expect("query");
    assert_eq!(all.len(), 2 * EACH + 1);
    for id in written {
        assert!(all.iter().any(|m| m.id() == id), "{id} is there");
    }
    let shared_now = second.model(shared.id()).await.expect("shared");
    assert_eq!(shared_now.version, 1 + 2 * EACH as i64, "no update lost");
    let events = second
        .events(&EventQuery {
            model: Some(shared.id()),
            ..EventQuery::default()
        })
        .await
        .expect("events");
    assert_eq!(events.len(), 2 * EACH * 50);

    // Conditional writers racing on one version: exactly one wins.
    let base = first.model(shared.id()).await.expect("shared");
    let (x, y) = tokio::join!(
        first.put_model(&base, Some(base.version)),
        second.put_model(&base, Some(base.version)),
    );
    let wins = [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count();
    assert_eq!(wins, 1, "{x:?} / {y:?}");
    for result in [x, y] {
        if let Err(error) = result {
            assert!(matches!(error, RegistryError::Conflict { .. }), "{error}");
        }
    }
    first.close().await;
    second.close().await;
}
