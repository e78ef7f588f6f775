//! Building dialect-neutral SQL with `$n` placeholders, multi-row inserts, and the conversions
//! between Rust values and the columns (milliseconds, ids, JSON).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use kiln_entities::ModelId;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe};

use super::SqlBackend;
use crate::registry::RegistryError;

/// SQLite accepts at most 32 766 bound parameters a statement, PostgreSQL 65 535: stay under
/// both.
pub(super) const MAX_PARAMS: usize = 30_000;

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(super) enum Param<'a> {
    /// `TEXT`.
    Text(&'a str),
    /// `TEXT` or `NULL`.
    OptText(Option<&'a str>),
    /// `BIGINT`.
    Int(i64),
    /// `DOUBLE PRECISION` or `NULL`.
    OptFloat(Option<f64>),
}

/// Appends placeholder number `n` (1-based) in the engine's style: `$n` for PostgreSQL, `?` for
/// SQLite.
///
/// Static statements use `$n` on both engines. Generated ones, where every placeholder appears
/// once and in binding order, use SQLite's anonymous `?`: sqlx-sqlite looks up each *named*
/// parameter's name when binding, and SQLite finds a name by a linear scan, so a 30 000-parameter
/// insert with `$n` costs O(n²) per execution (3 000 events/s instead of 400 000).
fn push_placeholder(sql: &mut String, backend: SqlBackend, n: usize) {
    match backend {
        SqlBackend::Sqlite => sql.push('?'),
        // Writing to a String cannot fail.
        SqlBackend::Postgres => {
            let _ = write!(sql, "${n}");
        }
    }
}

/// A generated statement: its text and the values of its placeholders, each placeholder once
/// and in order (see [`push_placeholder`]).
#[derive(Debug)]
pub(super) struct SqlBuf<'a> {
    backend: SqlBackend,
    text: String,
    params: Vec<Param<'a>>,
}

impl<'a> SqlBuf<'a> {
    /// A statement for `backend` starting with `text` (which holds no placeholder).
    pub(super) fn new(backend: SqlBackend, text: &str) -> Self {
        Self {
            backend,
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    /// Appends SQL text (which holds no placeholder).
    pub(super) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `param`.
    pub(super) fn bind(&mut self, param: Param<'a>) -> &mut Self {
        self.params.push(param);
        push_placeholder(&mut self.text, self.backend, self.params.len());
        self
    }

    /// Appends `text`, then a placeholder bound to `param`.
    pub(super) fn push_bind(&mut self, text: &str, param: Param<'a>) -> &mut Self {
        self.push(text).bind(param)
    }

    /// The statement, ready to execute. It is not kept prepared: generated statements vary, and
    /// PostgreSQL plans an unnamed statement for the values bound (a cached generic plan of a
    /// catalogue query can be far slower).
    pub(super) fn query(&self) -> Query<'a, Any, AnyArguments> {
        bind_all(sqlx::query(AssertSqlSafe(self.text.clone())), &self.params).persistent(false)
    }
}

/// Binds `params` to `query` in order.
fn bind_all<'a>(
    mut query: Query<'a, Any, AnyArguments>,
    params: &[Param<'a>],
) -> Query<'a, Any, AnyArguments> {
    for param in params {
        query = match *param {
            Param::Text(text) => query.bind(text),
            Param::OptText(text) => query.bind(text),
            Param::Int(value) => query.bind(value),
            Param::OptFloat(value) => query.bind(value),
        };
    }
    query
}

/// `INSERT INTO table (columns) VALUES (…), (…), …` for `rows` rows.
fn insert_sql(backend: SqlBackend, table: &str, columns: &[&str], rows: usize) -> String {
    let width = columns.len();
    let mut sql = String::with_capacity(32 + rows * width * 7);
    let _ = write!(sql, "INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            push_placeholder(&mut sql, backend, row * width + column + 1);
        }
        sql.push(')');
    }
    sql
}

/// Inserts `values` (row after row, `columns.len()` values each) into `table` with as few
/// multi-row `INSERT`s as the parameter limit allows.
pub(super) async fn insert_rows(
    conn: &mut AnyConnection,
    backend: SqlBackend,
    table: &str,
    columns: &[&str],
    values: &[Param<'_>],
) -> Result<(), sqlx::Error> {
    let width = columns.len();
    if width == 0 || values.is_empty() {
        return Ok(());
    }
    let rows_per_chunk = (MAX_PARAMS / width).max(1);
    // Full chunks share one statement text, prepared once and kept by the connection.
    let mut full_chunk_sql: Option<String> = None;
    for chunk in values.chunks(rows_per_chunk * width) {
        let rows = chunk.len() / width;
        let query = if rows == rows_per_chunk {
            let sql = full_chunk_sql
                .get_or_insert_with(|| insert_sql(backend, table, columns, rows))
                .clone();
            bind_all(sqlx::query(AssertSqlSafe(sql)), chunk)
        } else {
            bind_all(
                sqlx::query(AssertSqlSafe(insert_sql(backend, table, columns, rows))),
                chunk,
            )
            .persistent(false)
        };
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Now, in milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A time read from a `*_ms` column.
pub(super) fn time_from_ms(
    ms: i64,
    what: impl FnOnce() -> String,
) -> Result<DateTime<Utc>, RegistryError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| RegistryError::Corrupt {
        what: what(),
        reason: format!("{ms} ms is not a representable time"),
    })
}

/// A model id read from a `TEXT` column.
pub(super) fn model_id(
    text: &str,
    what: impl FnOnce() -> String,
) -> Result<ModelId, RegistryError> {
    text.parse()
        .map_err(|e: uuid::Error| RegistryError::Corrupt {
            what: what(),
            reason: format!("{text:?} is not a model id: {e}"),
        })
}
