//! Opening a registry: URL parsing, the connection pool (SQLite pragmas), embedded migrations and
//! the refusal of a database written by a newer kiln.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Executor, Row};

use super::{SqlBackend, SqlRegistry, SqlRegistryOptions};
use crate::registry::RegistryError;

/// The embedded migrations (`crates/storage/migrations/`).
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The table sqlx keeps applied migrations in.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// How many times opening retries migrating when another process migrated at the same time.
const MIGRATE_ATTEMPTS: usize = 3;

/// The newest schema version this kiln knows.
pub(super) fn supported_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Where a URL points.
#[derive(Debug, PartialEq)]
enum Target {
    /// A SQLite file: its path and the URL to hand to sqlx.
    SqliteFile { path: PathBuf, connect_url: String },
    /// A private in-memory SQLite database.
    SqliteMemory,
    /// A PostgreSQL database.
    Postgres,
}

/// `sqlite://` followed by `path` made absolute, with the characters sqlx would read as URL
/// syntax percent-encoded.
pub(super) fn sqlite_url(path: &Path) -> Result<String, RegistryError> {
    let absolute = std::path::absolute(path).map_err(|e| RegistryError::InvalidArgument {
        field: "path",
        reason: format!("cannot make {} absolute: {e}", path.display()),
    })?;
    let text = absolute
        .to_str()
        .ok_or_else(|| RegistryError::InvalidArgument {
            field: "path",
            reason: format!("{} is not valid UTF-8", absolute.display()),
        })?;
    let mut url = String::from("sqlite://");
    for c in text.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            ' ' => url.push_str("%20"),
            _ => url.push(c),
        }
    }
    Ok(url)
}

/// Decodes `%XX` escapes (a malformed escape is kept as it is).
fn percent_decode(text: &str) -> Result<String, RegistryError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| RegistryError::InvalidArgument {
        field: "url",
        reason: format!("{text:?} decodes to invalid UTF-8: {e}"),
    })
}

/// Reads `url` (see [`SqlRegistry::open`]).
fn parse_url(url: &str) -> Result<Target, RegistryError> {
    let unsupported = || RegistryError::UnsupportedUrl { url: redact(url) };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres);
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(unsupported)?;
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let pairs: Vec<(&str, &str)> = params
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    if database == ":memory:" || pairs.contains(&("mode", "memory")) {
        return Ok(Target::SqliteMemory);
    }
    if database.is_empty() {
        return Err(unsupported());
    }
    let path = PathBuf::from(percent_decode(database)?);
    let mut connect_url = sqlite_url(&path)?;
    let mut params: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !pairs.iter().any(|(k, _)| *k == "mode") {
        params.push("mode=rwc".to_owned());
    }
    connect_url.push('?');
    connect_url.push_str(&params.join("&"));
    Ok(Target::SqliteFile {
        path: std::path::absolute(&path).unwrap_or(path),
        connect_url,
    })
}

/// `url` with its password, if any, replaced by `***`.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only fails for URLs that cannot have a password, and this one has one.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Opens, migrates and checks the registry at `url`.
pub(super) async fn open(
    url: &str,
    options: &SqlRegistryOptions,
) -> Result<SqlRegistry, RegistryError> {
    sqlx::any::install_default_drivers();
    let target = parse_url(url)?;
    let redacted = redact(url);
    let open_error = |source: sqlx::Error| RegistryError::Open {
        url: redacted.clone(),
        source,
    };
    let acquire = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout);
    let (pool, backend) = match &target {
        Target::Postgres => {
            let connect = AnyConnectOptions::from_str(url).map_err(open_error)?;
            let pool = acquire
                .max_connections(options.max_connections.max(1))
                .connect_with(connect)
                .await
                .map_err(open_error)?;
            (pool, SqlBackend::Postgres)
        }
        Target::SqliteMemory => {
            // Every connection to `sqlite::memory:` is a database of its own: keep exactly one,
            // forever.
            let connect = AnyConnectOptions::from_str("sqlite::memory:").map_err(open_error)?;
            let pool = sqlite_pragmas(acquire, options, false)
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect)
                .await
                .map_err(open_error)?;
            (pool, SqlBackend::Sqlite)
        }
        Target::SqliteFile { path, connect_url } => {
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| {
                    open_error(sqlx::Error::Configuration(
                        format!("cannot create directory {}: {e}", parent.display()).into(),
                    ))
                })?;
            }
            let connect = AnyConnectOptions::from_str(connect_url).map_err(open_error)?;
            let pool = sqlite_pragmas(acquire, options, true)
                .max_connections(options.max_connections.max(1))
                .connect_with(connect)
                .await
                .map_err(open_error)?;
            (pool, SqlBackend::Sqlite)
        }
    };
    let registry = SqlRegistry {
        pool,
        backend,
        url: redacted,
    };
    if let Err(error) = migrate(&registry).await {
        registry.pool.close().await;
        return Err(error);
    }
    Ok(registry)
}

/// Sets the SQLite pragmas on every new connection.
fn sqlite_pragmas(pool: AnyPoolOptions, options: &SqlRegistryOptions, wal: bool) -> AnyPoolOptions {
    let busy_ms = options.busy_timeout.as_millis();
    let synchronous = if options.sqlite_full_sync {
        "FULL"
    } else {
        "NORMAL"
    };
    pool.after_connect(move |conn, _meta| {
        Box::pin(async move {
            conn.execute(AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}")))
                .await?;
            if wal {
                conn.execute("PRAGMA journal_mode = WAL").await?;
            }
            conn.execute(AssertSqlSafe(format!("PRAGMA synchronous = {synchronous}")))
                .await?;
            conn.execute("PRAGMA foreign_keys = ON").await?;
            Ok(())
        })
    })
}

/// Applies the embedded migrations, refusing a database written by a newer kiln.
async fn migrate(registry: &SqlRegistry) -> Result<(), RegistryError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match MIGRATOR.run(&registry.pool).await {
            Ok(()) => return Ok(()),
            Err(MigrateError::VersionMissing(_)) => {
                return Err(newer_schema(registry).await);
            }
            // Another process created the schema between our look and our write: look again.
            Err(_) if attempt < MIGRATE_ATTEMPTS => {}
            Err(error) => return Err(RegistryError::Migrate(error)),
        }
    }
}

/// The [`RegistryError::NewerSchema`] of a database whose migrations table holds a version this
/// kiln does not know.
async fn newer_schema(registry: &SqlRegistry) -> RegistryError {
    let supported = supported_version();
    let found = highest_applied(&registry.pool)
        .await
        .unwrap_or(supported + 1);
    RegistryError::NewerSchema {
        url: registry.url.clone(),
        found,
        supported,
    }
}

/// The highest migration version recorded in the database.
async fn highest_applied(pool: &AnyPool) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT MAX(version) AS version FROM {MIGRATIONS_TABLE}"
    )))
    .fetch_one(pool)
    .await?;
    row.try_get::<i64, _>("version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("sqlite::memory:").ok(),
            Some(Target::SqliteMemory)
        );
        assert_eq!(
            parse_url("sqlite://:memory:").ok(),
            Some(Target::SqliteMemory)
        );
        assert_eq!(
            parse_url("postgresql://u:p@h/db").ok(),
            Some(Target::Postgres)
        );
        match parse_url("sqlite:///tmp/a%20b/k%25iln.db") {
            Ok(Target::SqliteFile { path, connect_url }) => {
                assert_eq!(path, PathBuf::from("/tmp/a b/k%iln.db"));
                assert_eq!(connect_url, "sqlite:///tmp/a%20b/k%25iln.db?mode=rwc");
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse_url("sqlite:///tmp/x.db?mode=ro") {
            Ok(Target::SqliteFile { connect_url, .. }) => {
                assert_eq!(connect_url, "sqlite:///tmp/x.db?mode=ro");
            }
            other => panic!("unexpected {other:?}"),
        }
        for bad in ["mysql://h/db", "kiln.db", "sqlite://", "http://x"] {
            assert!(
                matches!(parse_url(bad), Err(RegistryError::UnsupportedUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://kiln:secret@db:5432/kiln"),
            "postgres://kiln:***@db:5432/kiln"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
