//! Projects and tasks: created on first use (`INSERT … ON CONFLICT DO NOTHING`, then read back),
//! so concurrent `ensure_*` calls agree on one row.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::SqlRegistry;
use super::sqlbuf::{now_ms, time_from_ms};
use crate::registry::{Project, RegistryError, TaskRecord};

/// Rejects an empty (or blank) name.
fn check_name(field: &'static str, name: &str) -> Result<(), RegistryError> {
    if name.trim().is_empty() {
        return Err(RegistryError::InvalidArgument {
            field,
            reason: format!("{name:?} is empty"),
        });
    }
    Ok(())
}

fn decode_project(row: &AnyRow) -> Result<Project, RegistryError> {
    let id: String = row.try_get("id")?;
    let created_ms: i64 = row.try_get("created_ms")?;
    Ok(Project {
        created_at: time_from_ms(created_ms, || format!("projects.created_ms of {id}"))?,
        name: row.try_get("name")?,
        id,
    })
}

fn decode_task(row: &AnyRow) -> Result<TaskRecord, RegistryError> {
    let id: String = row.try_get("id")?;
    let created_ms: i64 = row.try_get("created_ms")?;
    Ok(TaskRecord {
        created_at: time_from_ms(created_ms, || format!("tasks.created_ms of {id}"))?,
        project: row.try_get("project_id")?,
        name: row.try_get("name")?,
        id,
    })
}

pub(super) async fn ensure_project(
    registry: &SqlRegistry,
    name: &str,
) -> Result<Project, RegistryError> {
    check_name("project name", name)?;
    sqlx::query(
        "INSERT INTO projects (id, name, created_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(name)
    .bind(now_ms())
    .execute(&registry.pool)
    .await?;
    let row = sqlx::query("SELECT id, name, created_ms FROM projects WHERE name = $1")
        .bind(name)
        .fetch_optional(&registry.pool)
        .await?
        .ok_or_else(|| RegistryError::ProjectNotFound(name.to_owned()))?;
    decode_project(&row)
}

pub(super) async fn project(
    registry: &SqlRegistry,
    id_or_name: &str,
) -> Result<Project, RegistryError> {
    let rows = sqlx::query("SELECT id, name, created_ms FROM projects WHERE id = $1 OR name = $2")
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_all(&registry.pool)
        .await?;
    // An id match wins over a name match (a project may be named like another's id).
    let row = rows
        .iter()
        .find(|row| {
            row.try_get::<String, _>("id")
                .is_ok_and(|id| id == id_or_name)
        })
        .or_else(|| rows.first())
        .ok_or_else(|| RegistryError::ProjectNotFound(id_or_name.to_owned()))?;
    decode_project(row)
}

pub(super) async fn ensure_task(
    registry: &SqlRegistry,
    project_id_or_name: &str,
    name: &str,
) -> Result<TaskRecord, RegistryError> {
    check_name("task name", name)?;
    let project = project(registry, project_id_or_name).await?;
    sqlx::query(
        "INSERT INTO tasks (id, project_id, name, created_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (project_id, name) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(project.id.as_str())
    .bind(name)
    .bind(now_ms())
    .execute(&registry.pool)
    .await?;
    let row = sqlx::query(
        "SELECT id, project_id, name, created_ms FROM tasks WHERE project_id = $1 AND name = $2",
    )
    .bind(project.id.as_str())
    .bind(name)
    .fetch_optional(&registry.pool)
    .await?
    // Only when the project was deleted between the two statements.
    .ok_or_else(|| RegistryError::ProjectNotFound(project_id_or_name.to_owned()))?;
    decode_task(&row)
}

pub(super) async fn task(registry: &SqlRegistry, id: &str) -> Result<TaskRecord, RegistryError> {
    let row = sqlx::query("SELECT id, project_id, name, created_ms FROM tasks WHERE id = $1")
        .bind(id)
        .fetch_optional(&registry.pool)
        .await?
        .ok_or_else(|| RegistryError::TaskNotFound(id.to_owned()))?;
    decode_task(&row)
}
