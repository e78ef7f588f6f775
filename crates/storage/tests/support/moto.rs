//! A moto S3 server on loopback for the blob store tests: started per test on a free port, with
//! one bucket created, and killed on drop.
//!
//! The binary is `$KILN_MOTO_SERVER`, else `<workspace>/target/kiln-tools/moto/bin/moto_server`
//! (installed by `cargo xtask ci`). When it is missing the test is skipped with a message, except
//! under `CI`, where it fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_storage::BlobStoreOptions;

/// The environment variable naming the `moto_server` binary.
pub const MOTO_ENV: &str = "KILN_MOTO_SERVER";

/// How long moto may take to answer after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto server with one bucket.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    bucket: String,
}

impl Moto {
    /// Starts moto and creates `bucket`; `None` (after printing why) when moto is not installed
    /// and `CI` is not set.
    pub fn start(bucket: &str) -> Option<Self> {
        let binary = match std::env::var_os(MOTO_ENV) {
            Some(path) => PathBuf::from(path),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/kiln-tools/moto/bin/moto_server"),
        };
        if !binary.is_file() {
            let message = format!(
                "moto_server not found at {} (set {MOTO_ENV}, or run `cargo xtask ci`, which \
                 installs it)",
                binary.display()
            );
            assert!(std::env::var_os("CI").is_none(), "{message}");
            eprintln!("SKIPPED: {message}");
            return None;
        }
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Self::try_start(&binary, bucket) {
                Ok(moto) => return Some(moto),
                Err(e) => last_error = e,
            }
        }
        panic!("could not start {}: {last_error}", binary.display());
    }

    fn try_start(binary: &PathBuf, bucket: &str) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // Let the tests force several small multipart parts.
            .env("S3_UPLOAD_PART_MIN_SIZE", "256")
            .env("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", "1048576")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run: {e}"))?;
        let mut moto = Self {
            child,
            port,
            bucket: bucket.to_owned(),
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto_server exited with {status} (port {port} taken?)"
                ));
            }
            match moto.request("PUT", &format!("/{bucket}")) {
                Ok(200) => return Ok(moto),
                Ok(status) => return Err(format!("creating bucket {bucket}: HTTP {status}")),
                Err(e) if started.elapsed() > START_TIMEOUT => {
                    return Err(format!(
                        "no answer on port {port} after {START_TIMEOUT:?}: {e}"
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// One HTTP/1.1 request with an empty body; returns the status code.
    fn request(&self, method: &str, path: &str) -> Result<u16, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| e.to_string())?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .map_err(|e| e.to_string())?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {response:?}"))
    }

    /// The endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Options that reach this server with test credentials, ignoring the environment.
    pub fn options(&self) -> BlobStoreOptions {
        let mut options = BlobStoreOptions {
            from_env: false,
            ..BlobStoreOptions::default()
        };
        for (key, value) in [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_access_key_id", "kiln-test".to_owned()),
            ("aws_secret_access_key", "kiln-test-secret".to_owned()),
            ("aws_region", "us-east-1".to_owned()),
        ] {
            options.config.insert(key.to_owned(), value);
        }
        options
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
