//! Events (scalars, single values, plots): appended in one transaction with multi-row `INSERT`s,
//! read back in report order (time, then the sequence number handed out at append).
//!
//! A value that is not finite is kept in `payload` (`"nan"`, `"inf"`, `"-inf"`) with a `NULL`
//! `value`: SQLite stores NaN as `NULL`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::SqlRegistry;
use super::sqlbuf::{Param, SqlBuf, insert_rows, model_id, time_from_ms};
use crate::registry::{Event, EventKind, EventQuery, RegistryError};

const COLUMNS: [&str; 10] = [
    "model_id",
    "task_id",
    "kind",
    "title",
    "series",
    "iteration",
    "value",
    "payload",
    "ts_ms",
    "seq",
];

const SCALAR: &str = "scalar";
const SINGLE_VALUE: &str = "single_value";
const PLOT: &str = "plot";

/// `value` as the `value` and `payload` columns.
fn split_value(value: f64) -> (Option<f64>, Option<String>) {
    if value.is_finite() {
        (Some(value), None)
    } else if value.is_nan() {
        (None, Some("nan".to_owned()))
    } else if value > 0.0 {
        (None, Some("inf".to_owned()))
    } else {
        (None, Some("-inf".to_owned()))
    }
}

/// The value kept in the `value` and `payload` columns.
fn join_value(
    value: Option<f64>,
    payload: Option<&str>,
    what: impl FnOnce() -> String,
) -> Result<f64, RegistryError> {
    match (value, payload) {
        (Some(value), _) => Ok(value),
        (None, Some("nan")) => Ok(f64::NAN),
        (None, Some("inf")) => Ok(f64::INFINITY),
        (None, Some("-inf")) => Ok(f64::NEG_INFINITY),
        (None, payload) => Err(RegistryError::Corrupt {
            what: what(),
            reason: format!("no value (payload {payload:?})"),
        }),
    }
}

/// One event's columns, owned.
struct EventColumns {
    model: Option<String>,
    kind: &'static str,
    value: Option<f64>,
    payload: Option<String>,
}

pub(super) async fn add_events(
    registry: &SqlRegistry,
    events: &[Event],
) -> Result<(), RegistryError> {
    if events.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(events.len()).map_err(|_| RegistryError::InvalidArgument {
        field: "events",
        reason: format!("{} events in one call", events.len()),
    })?;
    let mut owned = Vec::with_capacity(events.len());
    for event in events {
        let (kind, value, payload) = match &event.kind {
            EventKind::Scalar { value, .. } => {
                let (value, payload) = split_value(*value);
                (SCALAR, value, payload)
            }
            EventKind::SingleValue { value, .. } => {
                let (value, payload) = split_value(*value);
                (SINGLE_VALUE, value, payload)
            }
            EventKind::Plot { figure, .. } => {
                let figure =
                    serde_json::to_string(figure).map_err(|e| RegistryError::InvalidArgument {
                        field: "events",
                        reason: format!("cannot render a plot figure as JSON: {e}"),
                    })?;
                (PLOT, None, Some(figure))
            }
        };
        owned.push(EventColumns {
            model: event.model.map(|m| m.to_string()),
            kind,
            value,
            payload,
        });
    }

    let mut tx = registry.begin_write().await?;
    // Hand out `count` sequence numbers; the UPDATE serializes concurrent appenders.
    sqlx::query("UPDATE kiln_counters SET value = value + $1 WHERE name = 'event_seq'")
        .bind(count)
        .execute(&mut *tx)
        .await?;
    let last: i64 = sqlx::query("SELECT value FROM kiln_counters WHERE name = 'event_seq'")
        .fetch_one(&mut *tx)
        .await?
        .try_get("value")?;
    let first = last - count + 1;

    let mut values = Vec::with_capacity(events.len() * COLUMNS.len());
    for ((event, row), seq) in events.iter().zip(&owned).zip(first..) {
        let (title, series, iteration) = match &event.kind {
            EventKind::Scalar {
                title,
                series,
                iteration,
                ..
            }
            | EventKind::Plot {
                title,
                series,
                iteration,
                ..
            } => (title.as_str(), series.as_str(), *iteration),
            EventKind::SingleValue { name, .. } => (name.as_str(), "", 0),
        };
        values.extend([
            Param::OptText(row.model.as_deref()),
            Param::OptText(event.task.as_deref()),
            Param::Text(row.kind),
            Param::Text(title),
            Param::Text(series),
            Param::Int(iteration),
            Param::OptFloat(row.value),
            Param::OptText(row.payload.as_deref()),
            Param::Int(event.timestamp.timestamp_millis()),
            Param::Int(seq),
        ]);
    }
    insert_rows(&mut tx, registry.backend, "events", &COLUMNS, &values).await?;
    tx.commit().await?;
    Ok(())
}

fn decode_event(row: &AnyRow) -> Result<Event, RegistryError> {
    let seq: i64 = row.try_get("seq")?;
    let what = || format!("events row {seq}");
    let model: Option<String> = row.try_get("model_id")?;
    let kind: String = row.try_get("kind")?;
    let title: String = row.try_get("title")?;
    let series: String = row.try_get("series")?;
    let iteration: i64 = row.try_get("iteration")?;
    let value: Option<f64> = row.try_get("value")?;
    let payload: Option<String> = row.try_get("payload")?;
    let ts_ms: i64 = row.try_get("ts_ms")?;
    let kind = match kind.as_str() {
        SCALAR => EventKind::Scalar {
            title,
            series,
            iteration,
            value: join_value(value, payload.as_deref(), what)?,
        },
        SINGLE_VALUE => EventKind::SingleValue {
            name: title,
            value: join_value(value, payload.as_deref(), what)?,
        },
        PLOT => EventKind::Plot {
            title,
            series,
            iteration,
            figure: serde_json::from_str(payload.as_deref().unwrap_or_default()).map_err(|e| {
                RegistryError::Corrupt {
                    what: what(),
                    reason: format!("plot figure: {e}"),
                }
            })?,
        },
        other => {
            return Err(RegistryError::Corrupt {
                what: what(),
                reason: format!("unknown kind {other:?}"),
            });
        }
    };
    Ok(Event {
        model: model.map(|m| model_id(&m, what)).transpose()?,
        task: row.try_get("task_id")?,
        timestamp: time_from_ms(ts_ms, what)?,
        kind,
    })
}

pub(super) async fn events(
    registry: &SqlRegistry,
    query: &EventQuery,
) -> Result<Vec<Event>, RegistryError> {
    let model = query.model.map(|m| m.to_string());
    let mut sql = SqlBuf::new(
        registry.backend,
        "SELECT model_id, task_id, kind, title, series, iteration, value, payload, ts_ms, seq \
         FROM events WHERE 1 = 1",
    );
    if let Some(model) = model.as_deref() {
        sql.push_bind(" AND model_id = ", Param::Text(model));
    }
    if let Some(task) = query.task.as_deref() {
        sql.push_bind(" AND task_id = ", Param::Text(task));
    }
    if let Some(title) = query.title.as_deref() {
        sql.push_bind(" AND title = ", Param::Text(title));
    }
    sql.push(" ORDER BY ts_ms, seq");
    if let Some(limit) = query.limit {
        sql.push_bind(" LIMIT ", Param::Int(i64::from(limit)));
    }
    let rows = sql.query().fetch_all(&registry.pool).await?;
    rows.iter().map(decode_event).collect()
}
