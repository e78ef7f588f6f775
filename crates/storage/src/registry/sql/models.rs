//! Models: `put_model` (one transaction, optimistic concurrency, superseded blob references),
//! reading one back, deleting one, and the blob references `gc` asks about.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use kiln_entities::{BlobRef, ModelData, ModelEntity, ModelId, ModelRecord, Sha256Digest};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::sqlbuf::{MAX_PARAMS, Param, SqlBuf, insert_rows, now_ms, time_from_ms};
use super::{SqlBackend, SqlRegistry};
use crate::registry::{BlobUse, ENTITY_ROLE_PREFIX, ModelBlob, RegistryError, StoredModel};

/// How many times an unconditional `put_model` retries when a concurrent writer changed the model
/// between its read and its write.
const PUT_ATTEMPTS: usize = 8;

/// How many models' blobs one query reads.
const BLOBS_PER_QUERY: usize = 500;

/// The columns [`decode_model`] reads, from `models m`.
pub(super) const MODEL_COLUMNS: &str =
    "m.id, m.record_json, m.entity_json, m.created_ms, m.updated_ms, m.version";

/// The model in a row selected with [`MODEL_COLUMNS`], without its blobs (see [`attach_blobs`]).
pub(super) fn decode_model(row: &AnyRow) -> Result<StoredModel, RegistryError> {
    let id: String = row.try_get("id")?;
    let record_json: String = row.try_get("record_json")?;
    let entity_json: Option<String> = row.try_get("entity_json")?;
    let created_ms: i64 = row.try_get("created_ms")?;
    let updated_ms: i64 = row.try_get("updated_ms")?;
    let record: ModelRecord =
        serde_json::from_str(&record_json).map_err(|e| RegistryError::Corrupt {
            what: format!("models.record_json of {id}"),
            reason: e.to_string(),
        })?;
    let entity = entity_json
        .map(|json| {
            serde_json::from_str::<ModelEntity>(&json).map_err(|e| RegistryError::Corrupt {
                what: format!("models.entity_json of {id}"),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    Ok(StoredModel {
        record,
        entity,
        blobs: Vec::new(),
        created_at: time_from_ms(created_ms, || format!("models.created_ms of {id}"))?,
        updated_at: time_from_ms(updated_ms, || format!("models.updated_ms of {id}"))?,
        version: row.try_get("version")?,
    })
}

/// Fills in the current blobs of `models` (not the entity's: those are in the entity).
pub(super) async fn attach_blobs(
    conn: &mut AnyConnection,
    backend: SqlBackend,
    models: &mut [StoredModel],
) -> Result<(), RegistryError> {
    let ids: Vec<String> = models.iter().map(|m| m.id().to_string()).collect();
    let mut blobs: HashMap<String, Vec<ModelBlob>> = HashMap::new();
    for chunk in ids.chunks(BLOBS_PER_QUERY) {
        let mut sql = SqlBuf::new(
            backend,
            "SELECT model_id, role, digest, size, uri FROM model_blobs \
             WHERE is_current = 1 AND role NOT LIKE 'entity:%' AND model_id IN (",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Param::Text(id));
        }
        sql.push(") ORDER BY model_id, position");
        for row in sql.query().fetch_all(&mut *conn).await? {
            let id: String = row.try_get("model_id")?;
            let blob = decode_blob(&row, &id)?;
            blobs.entry(id).or_default().push(blob);
        }
    }
    for (model, id) in models.iter_mut().zip(&ids) {
        model.blobs = blobs.remove(id).unwrap_or_default();
    }
    Ok(())
}

fn decode_blob(row: &AnyRow, model: &str) -> Result<ModelBlob, RegistryError> {
    let role: String = row.try_get("role")?;
    let digest: String = row.try_get("digest")?;
    let size: i64 = row.try_get("size")?;
    let what = || format!("model_blobs of model {model}, role {role:?}");
    Ok(ModelBlob {
        blob: BlobRef {
            digest: Sha256Digest::parse(&digest).map_err(|e| RegistryError::Corrupt {
                what: what(),
                reason: e.to_string(),
            })?,
            size: u64::try_from(size).map_err(|_| RegistryError::Corrupt {
                what: what(),
                reason: format!("negative size {size}"),
            })?,
            uri: row.try_get("uri")?,
        },
        role,
    })
}

/// What `put_model` writes besides the row's bookkeeping, checked and rendered once.
struct Prepared<'a> {
    id: String,
    record_json: String,
    entity_json: Option<String>,
    name_lower: String,
    precisions: String,
    /// Each tag once: (tag, 1 for a system tag).
    tags: BTreeSet<(&'a str, i64)>,
    /// (role, digest, size, uri), in the model's order, then the entity's stored data.
    blobs: Vec<(Cow<'a, str>, &'a str, i64, &'a str)>,
}

fn invalid(field: &'static str, reason: String) -> RegistryError {
    RegistryError::InvalidArgument { field, reason }
}

impl<'a> Prepared<'a> {
    fn new(model: &'a StoredModel) -> Result<Self, RegistryError> {
        let record = &model.record;
        let id = record.id;
        if let Some(entity) = &model.entity {
            if entity.id != id {
                return Err(invalid(
                    "entity",
                    format!("entity id {} is not the record's id {id}", entity.id),
                ));
            }
            let inline: Vec<&str> = entity
                .model_data()
                .iter()
                .filter(|(_, data)| matches!(data, ModelData::Inline(_)))
                .map(|(key, _)| key.as_str())
                .collect();
            if !inline.is_empty() {
                return Err(invalid(
                    "entity",
                    format!(
                        "model {id}: data {} is still inline; store it as a blob first",
                        inline.join(", ")
                    ),
                ));
            }
            if matches!(entity.exportable_code(), Some(ModelData::Inline(_))) {
                return Err(invalid(
                    "entity",
                    format!("model {id}: the exportable code is still inline; store it first"),
                ));
            }
        }
        let mut roles = BTreeSet::new();
        let mut blobs = Vec::with_capacity(model.blobs.len());
        // The entity's stored data are references too (so `gc` keeps them): the registry
        // manages them under `entity:<key>`, re-derived from the entity on every put.
        let entity_blobs = model.entity.iter().flat_map(|entity| {
            entity
                .model_data()
                .iter()
                .filter_map(|(key, data)| {
                    Some((
                        Cow::Owned(format!("{ENTITY_ROLE_PREFIX}{key}")),
                        data.blob()?,
                    ))
                })
                .chain(
                    entity
                        .exportable_code()
                        .and_then(ModelData::blob)
                        .map(|blob| {
                            (
                                Cow::Owned(format!("{ENTITY_ROLE_PREFIX}exportable_code")),
                                blob,
                            )
                        }),
                )
        });
        let own_blobs = model
            .blobs
            .iter()
            .filter(|b| !b.role.starts_with(ENTITY_ROLE_PREFIX))
            .map(|ModelBlob { role, blob }| (Cow::Borrowed(role.as_str()), blob));
        for (role, blob) in own_blobs.chain(entity_blobs) {
            if !roles.insert(role.clone()) {
                return Err(invalid(
                    "blobs",
                    format!("model {id}: role {role:?} appears twice"),
                ));
            }
            let size = i64::try_from(blob.size).map_err(|_| {
                invalid(
                    "blobs",
                    format!(
                        "model {id}: blob {role:?} is {} bytes, too large",
                        blob.size
                    ),
                )
            })?;
            blobs.push((role, blob.digest.as_str(), size, blob.uri.as_str()));
        }
        let render = |what: &str, e: serde_json::Error| {
            invalid(
                "model",
                format!("model {id}: cannot render the {what} as JSON: {e}"),
            )
        };
        let precisions = match &model.entity {
            Some(entity) if !entity.precision.is_empty() => {
                let names: Vec<&str> = entity.precision.iter().map(|p| p.as_str()).collect();
                format!(",{},", names.join(","))
            }
            _ => String::new(),
        };
        let tags = record
            .tags
            .iter()
            .map(|t| (t.as_str(), 0))
            .chain(record.system_tags.iter().map(|t| (t.as_str(), 1)))
            .collect();
        Ok(Self {
            id: id.to_string(),
            record_json: serde_json::to_string(record).map_err(|e| render("record", e))?,
            entity_json: model
                .entity
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| render("entity", e))?,
            name_lower: record.name.to_lowercase(),
            precisions,
            tags,
            blobs,
        })
    }
}

/// How one attempt at `put_model` ended.
enum Attempt {
    /// Stored: (created_ms, updated_ms, version).
    Stored(i64, i64, i64),
    /// Another writer changed the model between our read and our write.
    Raced,
}

pub(super) async fn put_model(
    registry: &SqlRegistry,
    model: &StoredModel,
    expected: Option<i64>,
) -> Result<StoredModel, RegistryError> {
    let prepared = Prepared::new(model)?;
    for _ in 0..PUT_ATTEMPTS {
        match try_put(registry, model, &prepared, expected).await? {
            Attempt::Stored(created_ms, updated_ms, version) => {
                let id = &prepared.id;
                let mut stored = model.clone();
                stored.created_at = time_from_ms(created_ms, || format!("model {id}"))?;
                stored.updated_at = time_from_ms(updated_ms, || format!("model {id}"))?;
                stored.version = version;
                stored
                    .blobs
                    .retain(|b| !b.role.starts_with(ENTITY_ROLE_PREFIX));
                return Ok(stored);
            }
            Attempt::Raced => {
                if let Some(expected) = expected {
                    let found = stored_version(registry, &prepared.id).await?;
                    return Err(RegistryError::Conflict {
                        id: model.id(),
                        expected,
                        found,
                    });
                }
            }
        }
    }
    let found = stored_version(registry, &prepared.id).await?;
    Err(RegistryError::Conflict {
        id: model.id(),
        expected: found,
        found,
    })
}

/// The stored version of model `id` (0: none).
async fn stored_version(registry: &SqlRegistry, id: &str) -> Result<i64, RegistryError> {
    let row = sqlx::query("SELECT version FROM models WHERE id = $1")
        .bind(id)
        .fetch_optional(&registry.pool)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("version")?,
        None => 0,
    })
}

async fn try_put(
    registry: &SqlRegistry,
    model: &StoredModel,
    prepared: &Prepared<'_>,
    expected: Option<i64>,
) -> Result<Attempt, RegistryError> {
    let record = &model.record;
    let id = prepared.id.as_str();
    let mut tx = registry.begin_write().await?;
    let current = sqlx::query("SELECT version, created_ms FROM models WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let (found, created_ms) = match &current {
        Some(row) => (
            row.try_get::<i64, _>("version")?,
            Some(row.try_get::<i64, _>("created_ms")?),
        ),
        None => (0, None),
    };
    if let Some(expected) = expected
        && expected != found
    {
        return Err(RegistryError::Conflict {
            id: model.id(),
            expected,
            found,
        });
    }
    let now = now_ms();
    let created_ms = created_ms.unwrap_or(now);
    let updated_ms = now.max(created_ms);
    let version = found + 1;
    let project = record.project.as_deref();
    let task = record.task.as_deref();
    let parent = record.parent.map(|p| p.to_string());
    let published = i64::from(record.published);
    let archived = i64::from(record.archived());
    let written = if current.is_none() {
        sqlx::query(
            "INSERT INTO models (id, name, name_lower, project_id, task_id, parent_id, comment, \
             framework, published, archived, uri, precisions, record_json, entity_json, \
             created_ms, updated_ms, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(record.name.as_str())
        .bind(prepared.name_lower.as_str())
        .bind(project)
        .bind(task)
        .bind(parent.as_deref())
        .bind(record.comment.as_str())
        .bind(record.framework.as_deref())
        .bind(published)
        .bind(archived)
        .bind(record.uri.as_deref())
        .bind(prepared.precisions.as_str())
        .bind(prepared.record_json.as_str())
        .bind(prepared.entity_json.as_deref())
        .bind(created_ms)
        .bind(updated_ms)
        .bind(version)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query(
            "UPDATE models SET name = $1, name_lower = $2, project_id = $3, task_id = $4, \
             parent_id = $5, comment = $6, framework = $7, published = $8, archived = $9, \
             uri = $10, precisions = $11, record_json = $12, entity_json = $13, \
             updated_ms = $14, version = $15 \
             WHERE id = $16 AND version = $17",
        )
        .bind(record.name.as_str())
        .bind(prepared.name_lower.as_str())
        .bind(project)
        .bind(task)
        .bind(parent.as_deref())
        .bind(record.comment.as_str())
        .bind(record.framework.as_deref())
        .bind(published)
        .bind(archived)
        .bind(record.uri.as_deref())
        .bind(prepared.precisions.as_str())
        .bind(prepared.record_json.as_str())
        .bind(prepared.entity_json.as_deref())
        .bind(updated_ms)
        .bind(version)
        .bind(id)
        .bind(found)
        .execute(&mut *tx)
        .await?
    };
    if written.rows_affected() == 0 {
        return Ok(Attempt::Raced);
    }
    if current.is_some() {
        for table in ["model_tags", "model_metadata"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE model_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
    }
    let tag_values: Vec<Param<'_>> = prepared
        .tags
        .iter()
        .flat_map(|&(tag, system)| [Param::Text(id), Param::Text(tag), Param::Int(system)])
        .collect();
    insert_rows(
        &mut tx,
        registry.backend,
        "model_tags",
        &["model_id", "tag", "is_system"],
        &tag_values,
    )
    .await?;
    let metadata_values: Vec<Param<'_>> = record
        .metadata
        .iter()
        .flat_map(|entry| {
            [
                Param::Text(id),
                Param::Text(&entry.key),
                Param::Text(&entry.value),
                Param::Text(entry.ty.as_str()),
            ]
        })
        .collect();
    insert_rows(
        &mut tx,
        registry.backend,
        "model_metadata",
        &["model_id", "meta_key", "meta_value", "meta_type"],
        &metadata_values,
    )
    .await?;
    write_blobs(
        &mut tx,
        registry.backend,
        id,
        prepared,
        now,
        current.is_some(),
    )
    .await?;
    tx.commit().await?;
    Ok(Attempt::Stored(created_ms, updated_ms, version))
}

/// Makes the model's blobs its current references; the ones it had before and no longer has
/// (same role, another digest; or a role gone) stay as superseded.
async fn write_blobs(
    conn: &mut AnyConnection,
    backend: SqlBackend,
    id: &str,
    prepared: &Prepared<'_>,
    now: i64,
    existed: bool,
) -> Result<(), RegistryError> {
    if existed {
        // Everything current becomes superseded …
        sqlx::query("UPDATE model_blobs SET is_current = 0 WHERE model_id = $1 AND is_current = 1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        // … except what the model still refers to, which is written again as current below.
        for chunk in prepared.blobs.chunks(MAX_PARAMS / 2 - 1) {
            let mut sql = SqlBuf::new(backend, "DELETE FROM model_blobs WHERE model_id = ");
            sql.bind(Param::Text(id)).push(" AND is_current = 0 AND (");
            for (i, (role, digest, _, _)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push_bind("(role = ", Param::Text(role.as_ref()))
                    .push_bind(" AND digest = ", Param::Text(digest))
                    .push(")");
            }
            sql.push(")");
            sql.query().execute(&mut *conn).await?;
        }
    }
    let mut values = Vec::with_capacity(prepared.blobs.len() * 8);
    for (position, (role, digest, size, uri)) in prepared.blobs.iter().enumerate() {
        let (digest, size, uri) = (*digest, *size, *uri);
        values.extend([
            Param::Text(id),
            Param::Text(role.as_ref()),
            Param::Text(digest),
            Param::Int(size),
            Param::Text(uri),
            Param::Int(1),
            Param::Int(i64::try_from(position).unwrap_or(i64::MAX)),
            Param::Int(now),
        ]);
    }
    insert_rows(
        conn,
        backend,
        "model_blobs",
        &[
            "model_id",
            "role",
            "digest",
            "size",
            "uri",
            "is_current",
            "position",
            "created_ms",
        ],
        &values,
    )
    .await?;
    Ok(())
}

pub(super) async fn model(
    registry: &SqlRegistry,
    id: ModelId,
) -> Result<StoredModel, RegistryError> {
    let mut conn = registry.pool.acquire().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLUMNS} FROM models m WHERE m.id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(RegistryError::ModelNotFound { id })?;
    let mut models = [decode_model(&row)?];
    attach_blobs(&mut conn, registry.backend, &mut models).await?;
    let [model] = models;
    Ok(model)
}

pub(super) async fn delete_model(registry: &SqlRegistry, id: ModelId) -> Result<(), RegistryError> {
    let text = id.to_string();
    let mut tx = registry.begin_write().await?;
    for table in ["events", "model_blobs", "model_metadata", "model_tags"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE model_id = $1"
        )))
        .bind(text.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let deleted = sqlx::query("DELETE FROM models WHERE id = $1")
        .bind(text.as_str())
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(RegistryError::ModelNotFound { id });
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn blob_uses(
    registry: &SqlRegistry,
) -> Result<Vec<(Sha256Digest, BlobUse)>, RegistryError> {
    let rows = sqlx::query(
        "SELECT digest, MAX(is_current) AS is_current FROM model_blobs \
         GROUP BY digest ORDER BY digest",
    )
    .fetch_all(&registry.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let digest: String = row.try_get("digest")?;
            let current: i64 = row.try_get("is_current")?;
            let digest = Sha256Digest::parse(&digest).map_err(|e| RegistryError::Corrupt {
                what: "model_blobs.digest".to_owned(),
                reason: e.to_string(),
            })?;
            let used = if current == 1 {
                BlobUse::Current
            } else {
                BlobUse::Superseded
            };
            Ok((digest, used))
        })
        .collect()
}

pub(super) async fn drop_superseded(registry: &SqlRegistry) -> Result<u64, RegistryError> {
    let mut tx = registry.begin_write().await?;
    let dropped = sqlx::query("DELETE FROM model_blobs WHERE is_current = 0")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(dropped.rows_affected())
}
