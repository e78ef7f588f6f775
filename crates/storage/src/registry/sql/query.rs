//! The catalogue query (ClearML `query_models`): filters translated to SQL, keyset paging newest
//! first by `(created_ms, id)` with an opaque cursor.

use kiln_entities::{ModelId, ModelPrecision};

use super::models::{MODEL_COLUMNS, attach_blobs, decode_model};
use super::sqlbuf::{Param, SqlBuf};
use super::{SqlRegistry, projects};
use crate::registry::{ModelQuery, Page, RegistryError, StoredModel};

/// The default and largest page.
pub(super) const MAX_PAGE: u32 = 500;

/// Where a page starts: after the model created at `created_ms` with id `id` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    created_ms: i64,
    id: ModelId,
}

impl Cursor {
    /// The opaque text of the cursor (hex, so nobody is tempted to edit it).
    fn encode(&self) -> String {
        hex::encode(format!("v1:{}:{}", self.created_ms, self.id))
    }

    fn decode(text: &str) -> Result<Self, RegistryError> {
        let bad = |why: &str| RegistryError::InvalidArgument {
            field: "cursor",
            reason: format!("{text:?} is not a cursor from a previous page ({why})"),
        };
        let bytes = hex::decode(text).map_err(|_| bad("not hex"))?;
        let plain = String::from_utf8(bytes).map_err(|_| bad("not text"))?;
        let rest = plain
            .strip_prefix("v1:")
            .ok_or_else(|| bad("unknown version"))?;
        let (created_ms, id) = rest.split_once(':').ok_or_else(|| bad("no id"))?;
        Ok(Self {
            created_ms: created_ms.parse().map_err(|_| bad("bad time"))?,
            id: id.parse().map_err(|_| bad("bad id"))?,
        })
    }
}

/// `name_pattern` as a `LIKE` pattern over the lower-cased name (escape character `\`): `*` and
/// `?` become `%` and `_`, the rest is literal; without a wildcard, a substring match.
fn like_pattern(pattern: &str) -> String {
    let lower = pattern.to_lowercase();
    let wildcards = lower.contains(['*', '?']);
    let mut out = String::with_capacity(lower.len() + 2);
    if !wildcards {
        out.push('%');
    }
    for c in lower.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if !wildcards {
        out.push('%');
    }
    out
}

/// The `LIKE` pattern matching models with `precision` in their `precisions` column.
pub(super) fn precision_pattern(precision: ModelPrecision) -> String {
    format!("%,{},%", precision.as_str())
}

/// Appends ` AND (m.precisions LIKE … OR …)` for `patterns` (nothing when empty).
pub(super) fn push_precision_filter<'a>(sql: &mut SqlBuf<'a>, patterns: &'a [String]) {
    if patterns.is_empty() {
        return;
    }
    sql.push(" AND (");
    for (i, pattern) in patterns.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push_bind("m.precisions LIKE ", Param::Text(pattern));
    }
    sql.push(")");
}

pub(super) async fn query_models(
    registry: &SqlRegistry,
    query: &ModelQuery,
) -> Result<Page<StoredModel>, RegistryError> {
    let limit = match query.max_results {
        None => MAX_PAGE,
        Some(0) => {
            return Err(RegistryError::InvalidArgument {
                field: "max_results",
                reason: "0: a page holds at least one model".to_owned(),
            });
        }
        Some(n) => n.min(MAX_PAGE),
    };
    let cursor = query.cursor.as_deref().map(Cursor::decode).transpose()?;
    let cursor_id = cursor.as_ref().map(|c| c.id.to_string());
    let name_pattern = query.name_pattern.as_deref().map(like_pattern);
    let precisions: Vec<String> = query
        .precision
        .iter()
        .map(|&p| precision_pattern(p))
        .collect();
    let mut tags = Vec::with_capacity(query.tags.len());
    for tag in &query.tags {
        let (exclude, name) = match tag.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, tag.as_str()),
        };
        if name.is_empty() {
            return Err(RegistryError::InvalidArgument {
                field: "tags",
                reason: format!("{tag:?} names no tag"),
            });
        }
        tags.push((exclude, name));
    }

    // A project by id or name; a string naming no project is taken as an id (a model may point
    // at a project kept elsewhere), which then matches nothing here or those models.
    let project = match query.project.as_deref() {
        None => None,
        Some(id_or_name) => match projects::project(registry, id_or_name).await {
            Ok(project) => Some(project.id),
            Err(RegistryError::ProjectNotFound(_)) => Some(id_or_name.to_owned()),
            Err(error) => return Err(error),
        },
    };

    let mut sql = SqlBuf::new(
        registry.backend,
        &format!("SELECT {MODEL_COLUMNS} FROM models m WHERE 1 = 1"),
    );
    if let Some(project) = project.as_deref() {
        sql.push_bind(" AND m.project_id = ", Param::Text(project));
    }
    if let Some(pattern) = name_pattern.as_deref() {
        sql.push_bind(" AND m.name_lower LIKE ", Param::Text(pattern))
            .push(" ESCAPE '\\'");
    }
    for (exclude, tag) in tags {
        sql.push(if exclude {
            " AND NOT EXISTS"
        } else {
            " AND EXISTS"
        })
        .push(" (SELECT 1 FROM model_tags t WHERE t.model_id = m.id AND t.is_system = 0")
        .push_bind(" AND t.tag = ", Param::Text(tag))
        .push(")");
    }
    if query.only_published {
        sql.push(" AND m.published = 1");
    }
    if !query.include_archived {
        sql.push(" AND m.archived = 0");
    }
    for (key, value) in &query.metadata {
        sql.push(" AND EXISTS (SELECT 1 FROM model_metadata d WHERE d.model_id = m.id")
            .push_bind(" AND d.meta_key = ", Param::Text(key))
            .push_bind(" AND d.meta_value = ", Param::Text(value))
            .push(")");
    }
    push_precision_filter(&mut sql, &precisions);
    if let (Some(cursor), Some(id)) = (&cursor, cursor_id.as_deref()) {
        // A row-value comparison: both engines walk the (created_ms, id) index from there.
        sql.push_bind(
            " AND (m.created_ms, m.id) < (",
            Param::Int(cursor.created_ms),
        )
        .push_bind(", ", Param::Text(id))
        .push(")");
    }
    sql.push(" ORDER BY m.created_ms DESC, m.id DESC")
        .push_bind(" LIMIT ", Param::Int(i64::from(limit) + 1));

    let mut conn = registry.pool.acquire().await?;
    let rows = sql.query().fetch_all(&mut *conn).await?;
    let mut items = rows
        .iter()
        .take(limit as usize)
        .map(decode_model)
        .collect::<Result<Vec<_>, _>>()?;
    attach_blobs(&mut conn, registry.backend, &mut items).await?;
    let next = match items.last() {
        Some(last) if rows.len() > items.len() => Some(
            Cursor {
                created_ms: last.created_at.timestamp_millis(),
                id: last.id(),
            }
            .encode(),
        ),
        _ => None,
    };
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert_eq!(like_pattern("YOLO*v?"), "yolo%v_");
        assert_eq!(like_pattern("res_net"), "%res\\_net%");
        assert_eq!(like_pattern("100%"), "%100\\%%");
        assert_eq!(like_pattern("a\\b*"), "a\\\\b%");
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            created_ms: 1_700_000_000_123,
            id: ModelId::new(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        for bad in [
            "",
            "zz",
            "00",
            &hex::encode("v2:1:x"),
            &hex::encode("v1:x:y"),
        ] {
            assert!(
                matches!(
                    Cursor::decode(bad),
                    Err(RegistryError::InvalidArgument {
                        field: "cursor",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }
}
