//! The real services the storage tests run against: PostgreSQL (the machine's, started here when
//! it is installed) and a moto S3 server (a pinned PyPI package in a venv under `target/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The moto release the S3 tests run against (installed from PyPI with its server extra).
pub(crate) const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// The environment variable the storage tests read for the moto server binary.
pub(crate) const MOTO_ENV: &str = "KILN_MOTO_SERVER";

/// The environment variable the storage tests read for the PostgreSQL server to use.
pub(crate) const POSTGRES_ENV: &str = "KILN_TEST_POSTGRES_URL";

/// The URL of the machine's PostgreSQL over its Unix socket, as the current user (peer auth).
const LOCAL_POSTGRES_URL: &str = "postgres://root@localhost/postgres?host=/var/run/postgresql";

/// Makes (once) a venv with moto in `target/kiln-tools/moto` and returns its `moto_server`.
pub(crate) fn ensure_moto(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target").join("kiln-tools").join("moto");
    let server = venv.join("bin").join("moto_server");
    let stamp = venv.join("kiln-requirement.txt");
    if server.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(MOTO_REQUIREMENT)
    {
        return Ok(server);
    }
    eprintln!("installing {MOTO_REQUIREMENT} into {}", venv.display());
    let venv_str = venv.to_str().context("non-UTF-8 target path")?;
    run("python3", &["-m", "venv", "--clear", venv_str])?;
    let pip = venv.join("bin").join("pip");
    let pip = pip.to_str().context("non-UTF-8 target path")?;
    run(
        pip,
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MOTO_REQUIREMENT,
        ],
    )?;
    if !server.is_file() {
        bail!("{MOTO_REQUIREMENT} installed no {}", server.display());
    }
    std::fs::write(&stamp, MOTO_REQUIREMENT)
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(server)
}

/// The PostgreSQL server for the tests: `KILN_TEST_POSTGRES_URL` when set; otherwise the
/// machine's PostgreSQL 15 cluster, started (and given a superuser role for root) when it is
/// installed. `None` when there is none: the PostgreSQL tests then skip, or fail under `CI`.
pub(crate) fn ensure_postgres() -> Result<Option<String>> {
    if let Ok(url) = std::env::var(POSTGRES_ENV) {
        return Ok(Some(url));
    }
    if !Path::new("/usr/bin/pg_ctlcluster").exists() {
        eprintln!("PostgreSQL is not installed: its tests will skip (or fail under CI)");
        return Ok(None);
    }
    // Starting a running cluster fails with "already running": check the state instead.
    let status = Command::new("pg_ctlcluster")
        .args(["15", "main", "status"])
        .output()
        .context("running pg_ctlcluster")?;
    if !status.status.success() {
        run("pg_ctlcluster", &["15", "main", "start"])?;
    }
    if is_root() {
        // Peer authentication over the socket: root needs a role of its own (idempotent).
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\" | grep -q 1 || createuser -s root",
            ])
            .status();
    }
    Ok(Some(LOCAL_POSTGRES_URL.to_owned()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed ({status})", args.join(" "));
    }
    Ok(())
}
