//! Registry throughput: `put_model` writes/s, `query_models` queries/s and `add_events` scalar
//! events/s (batches of 10 000), on SQLite (a temporary file) and on PostgreSQL when reachable
//! (`KILN_TEST_POSTGRES_URL`, default: the local cluster's Unix socket).
//!
//! `cargo bench -p kiln-storage --bench registry`

use std::hint::black_box;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use kiln_entities::{
    BlobRef, MetadataType, ModelConfiguration, ModelEntity, ModelPrecision, ModelRecord,
    Sha256Digest,
};
use kiln_storage::{
    Event, EventKind, ModelQuery, Registry, SqlRegistry, SqlRegistryOptions, StoredModel,
};
use tokio::runtime::Runtime;

#[path = "../tests/support/postgres.rs"]
mod postgres;

/// Events per `add_events` call.
const BATCH: usize = 10_000;
/// Models in the catalogue the queries run over.
const CATALOGUE: usize = 2_000;

fn a_model(i: usize, project: &str) -> StoredModel {
    let mut record = ModelRecord::new(format!("model-{i}"));
    record.project = Some(project.to_owned());
    record.tags = vec![
        if i.is_multiple_of(2) {
            "detector"
        } else {
            "classifier"
        }
        .to_owned(),
        format!("batch-{}", i % 10),
    ];
    record.set_metadata("epochs", (i % 50).to_string(), MetadataType::Int);
    record.set_metadata("dataset", "coco", MetadataType::Str);
    let mut entity = ModelEntity::new(ModelConfiguration::default());
    entity.id = record.id;
    entity.precision = if i.is_multiple_of(3) {
        vec![ModelPrecision::Int8, ModelPrecision::Fp32]
    } else {
        vec![ModelPrecision::Fp32]
    };
    let mut model = StoredModel::new(record);
    model.entity = Some(entity);
    for (role, byte) in [("weights", 1_u8), ("labels", 2)] {
        let digest = Sha256Digest::from_bytes([byte.wrapping_add(i as u8); 32]);
        model.set_blob(
            role,
            BlobRef {
                uri: format!("file:///blobs/sha256/{digest}"),
                digest,
                size: 1 << 20,
            },
        );
    }
    model
}

fn scalars(model: &StoredModel, start: usize) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            let step = (start + i) as i64;
            Event {
                model: Some(model.id()),
                task: None,
                timestamp: Utc
                    .timestamp_millis_opt(1_700_000_000_000 + step)
                    .single()
                    .unwrap_or_default(),
                kind: EventKind::Scalar {
                    title: "loss".to_owned(),
                    series: "train".to_owned(),
                    iteration: step,
                    value: 1.0 / (1.0 + step as f64),
                },
            }
        })
        .collect()
}

fn bench_registry(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    backend: &str,
    registry: &SqlRegistry,
) {
    let project = rt
        .block_on(registry.ensure_project("bench"))
        .expect("a project");

    let mut n = 0;
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{backend}/put_model"), |b| {
        b.iter(|| {
            n += 1;
            let model = a_model(n, &project.id);
            black_box(
                rt.block_on(registry.put_model(&model, Some(0)))
                    .expect("put"),
            )
        });
    });

    rt.block_on(async {
        for i in 0..CATALOGUE {
            registry
                .put_model(&a_model(1_000_000 + i, &project.id), None)
                .await
                .expect("catalogue");
        }
        registry.analyze().await.expect("analyze");
    });
    let query = ModelQuery {
        project: Some("bench".to_owned()),
        tags: vec!["detector".to_owned(), "-batch-4".to_owned()],
        precision: vec![ModelPrecision::Int8],
        metadata: vec![("dataset".to_owned(), "coco".to_owned())],
        max_results: Some(50),
        ..ModelQuery::default()
    };
    group.bench_function(format!("{backend}/query_models"), |b| {
        b.iter(|| black_box(rt.block_on(registry.query_models(&query)).expect("query")));
    });

    let target = a_model(0, &project.id);
    rt.block_on(registry.put_model(&target, None))
        .expect("events model");
    let mut start = 0;
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("{backend}/add_events_10k_scalars"), |b| {
        b.iter_batched(
            || {
                start += BATCH;
                scalars(&target, start)
            },
            |events| rt.block_on(registry.add_events(&events)).expect("events"),
            criterion::BatchSize::LargeInput,
        );
    });
}

fn registry(c: &mut Criterion) {
    let rt = Runtime::new().expect("a tokio runtime");
    let mut group = c.benchmark_group("registry");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, full_sync) in [("sqlite", true), ("sqlite-normal-sync", false)] {
        let options = SqlRegistryOptions {
            sqlite_full_sync: full_sync,
            ..SqlRegistryOptions::default()
        };
        let url = format!("sqlite://{}/{name}.db", dir.path().display());
        let registry = rt
            .block_on(SqlRegistry::open(&url, &options))
            .expect("a SQLite registry");
        bench_registry(&mut group, &rt, name, &registry);
        rt.block_on(registry.close());
    }

    if let Some(database) = rt.block_on(postgres::TestDatabase::create("the registry bench")) {
        let registry = rt
            .block_on(SqlRegistry::open(
                database.url(),
                &SqlRegistryOptions::default(),
            ))
            .expect("a PostgreSQL registry");
        bench_registry(&mut group, &rt, "postgres", &registry);
        rt.block_on(registry.close());
    }
    group.finish();
}

criterion_group!(benches, registry);
criterion_main!(benches);
