//! Lineage: a recursive walk over `parent_id`, either way, nearest first. The walk carries the
//! path it took (`,id,id,`) and never enters a model twice, so a cycle in corrupt data ends.

use super::SqlRegistry;
use super::models::{MODEL_COLUMNS, attach_blobs, decode_model};
use super::query::{precision_pattern, push_precision_filter};
use super::sqlbuf::{Param, SqlBuf};
use crate::registry::{LineageDirection, LineageQuery, RegistryError, StoredModel};

/// Appends `WITH RECURSIVE walk (id, depth, path) AS (…)`: the models `direction` from `start`,
/// at most `max_depth` generations away.
fn push_walk<'a>(
    sql: &mut SqlBuf<'a>,
    direction: LineageDirection,
    start: &'a str,
    max_depth: i64,
) {
    sql.push("WITH RECURSIVE walk (id, depth, path) AS (");
    match direction {
        LineageDirection::Ancestors => {
            sql.push(
                " SELECT m.parent_id, CAST(1 AS BIGINT), ',' || m.id || ',' || m.parent_id || ',' \
                  FROM models m WHERE m.parent_id IS NOT NULL AND m.id = ",
            )
            .bind(Param::Text(start))
            .push(
                " UNION ALL \
                 SELECT p.parent_id, w.depth + 1, w.path || p.parent_id || ',' \
                  FROM walk w JOIN models p ON p.id = w.id \
                  WHERE p.parent_id IS NOT NULL \
                    AND w.path NOT LIKE ('%,' || p.parent_id || ',%') AND w.depth < ",
            );
        }
        LineageDirection::Descendants => {
            sql.push(
                " SELECT c.id, CAST(1 AS BIGINT), ',' || c.parent_id || ',' || c.id || ',' \
                  FROM models c WHERE c.parent_id = ",
            )
            .bind(Param::Text(start))
            .push(
                " UNION ALL \
                 SELECT c.id, w.depth + 1, w.path || c.id || ',' \
                  FROM walk w JOIN models c ON c.parent_id = w.id \
                  WHERE w.path NOT LIKE ('%,' || c.id || ',%') AND w.depth < ",
            );
        }
    }
    sql.bind(Param::Int(max_depth)).push(") ");
}

pub(super) async fn lineage(
    registry: &SqlRegistry,
    query: &LineageQuery,
) -> Result<Vec<StoredModel>, RegistryError> {
    let start = query.model.to_string();
    let mut conn = registry.pool.acquire().await?;
    let exists = sqlx::query("SELECT 1 AS one FROM models WHERE id = $1")
        .bind(start.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(RegistryError::ModelNotFound { id: query.model });
    }
    let max_depth = query.max_depth.map_or(i64::MAX, i64::from);
    if max_depth == 0 {
        return Ok(Vec::new());
    }
    let precisions: Vec<String> = query
        .precision
        .iter()
        .map(|&p| precision_pattern(p))
        .collect();
    let mut sql = SqlBuf::new(registry.backend, "");
    push_walk(&mut sql, query.direction, &start, max_depth);
    sql.push(&format!(
        "SELECT {MODEL_COLUMNS} FROM walk w JOIN models m ON m.id = w.id WHERE m.id <> "
    ))
    .bind(Param::Text(&start));
    push_precision_filter(&mut sql, &precisions);
    sql.push(" ORDER BY w.depth, m.created_ms, m.id");
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut models = rows
        .iter()
        .map(decode_model)
        .collect::<Result<Vec<_>, _>>()?;
    attach_blobs(&mut conn, registry.backend, &mut models).await?;
    Ok(models)
}
