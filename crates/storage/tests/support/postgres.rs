//! PostgreSQL for the registry tests: a throw-away database per test, dropped at the end.
//!
//! The server comes from `KILN_TEST_POSTGRES_URL` (default: the local cluster over its Unix
//! socket, peer authentication as the current user). When it cannot be reached, a test skips
//! with a message — except under CI (`CI` set), where it fails: `.ci/run` starts PostgreSQL.

use sqlx::{Connection, Executor, PgConnection};

/// The server used when `KILN_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_URL: &str = "postgres://root@localhost/postgres?host=/var/run/postgresql";

/// The base URL of the test server.
pub fn base_url() -> String {
    std::env::var("KILN_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Whether the tests run under CI (`CI` set, and not to `""`, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// A database created for one test and dropped (`WITH (FORCE)`) when this guard is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates a fresh database for `test`; `None` when the server is unreachable outside CI.
    ///
    /// # Panics
    ///
    /// Under CI when the server is unreachable, and when it is reachable but refuses to create
    /// the database.
    pub async fn create(test: &str) -> Option<Self> {
        let admin_url = base_url();
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(error) if in_ci() => panic!(
                "PostgreSQL must be running for the registry tests (.ci/run starts it; or set \
                 KILN_TEST_POSTGRES_URL): cannot connect to {admin_url}: {error}"
            ),
            Err(error) => {
                eprintln!(
                    "skipping {test} on PostgreSQL: cannot connect to {admin_url} ({error}); start \
                     it with `pg_ctlcluster 15 main start` or set KILN_TEST_POSTGRES_URL"
                );
                return None;
            }
        };
        let name = format!("kiln_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name} at {admin_url}: {e}"));
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url)
            .unwrap_or_else(|e| panic!("KILN_TEST_POSTGRES_URL {admin_url:?} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        Some(Self {
            name,
            url: url.to_string(),
            admin_url,
        })
    }

    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        // Drop is synchronous and may run inside a runtime: drop the database from a thread of
        // its own, on a runtime of its own. Best effort: a leftover database is only litter.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = admin.close().await;
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("cannot drop test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}
