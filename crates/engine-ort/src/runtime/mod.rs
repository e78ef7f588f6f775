//! Finding, checking, installing and starting the ONNX Runtime shared library.
//!
//! kiln loads ONNX Runtime at run time (ort's `load-dynamic`), so a build never needs the library
//! and a machine can swap it. Discovery looks in four places, in this order, and uses the first
//! library that passes every check:
//!
//! | # | place | [`RuntimeSource`] |
//! |---|---|---|
//! | 1 | [`RuntimeOptions::library_path`] (e.g. `kiln --ort-lib PATH`) | `Explicit` |
//! | 2 | the `ORT_DYLIB_PATH` environment variable | `EnvVar` |
//! | 3 | kiln's runtime directory, where `kiln runtime install` / `cargo xtask setup` put the library from the `onnxruntime` PyPI wheel | `KilnRuntimeDir` |
//! | 4 | the system loader (`libonnxruntime.so` by name: `LD_LIBRARY_PATH`, `ld.so.cache`, `/usr/lib`) | `SystemLoader` |
//!
//! Each candidate is checked before use: the file exists, looks like a shared library (magic
//! number), loads, exports `OrtGetApiBase`, reports a version `1.x` with `x >=`
//! [`REQUIRED_MINOR_VERSION`], and serves that API version. A failing candidate is recorded and the
//! next place is tried — except an explicit path, which is a request, not a hint: when it fails,
//! discovery stops there. When nothing works, [`EngineError::RuntimeNotFound`] lists every place with
//! what happened at it, and the fix.
//!
//! Discovery is split in two so that its order is testable without loading anything:
//! [`SearchPlan`] (plain data: which places are configured) and [`discover_with`] (a pure function
//! over a [`Probe`]). [`DylibProbe`] is the thin real probe; [`discover`] and [`init`] wire them.
//!
//! A process holds one ONNX Runtime: [`init`] starts it once (later calls return the same
//! [`Runtime`]) and refuses, with [`EngineError::RuntimeAlreadyInitialized`], an explicit path that
//! differs from the library already loaded.

mod discovery;
mod install;
mod probe;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

pub use self::discovery::{SearchPlan, check_version, discover_with};
pub use self::install::{InstalledRuntime, install};
pub use self::probe::DylibProbe;
use crate::error::{EngineError, Result};

/// The oldest ONNX Runtime minor version kiln accepts (`1.31`): the API version `ort` is built for.
pub const REQUIRED_MINOR_VERSION: u32 = ort::MINOR_VERSION;

/// The environment variable naming an ONNX Runtime library (the same one `ort` reads).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// How to find the runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Use exactly this library (checked; discovery stops here if it fails).
    pub library_path: Option<PathBuf>,
    /// The kiln-assets cache holding kiln's runtime directory; `None` means
    /// [`kiln_assets::Cache::from_env`].
    pub cache: Option<kiln_assets::Cache>,
}

impl RuntimeOptions {
    /// Options that use exactly `path`.
    pub fn with_library(path: impl Into<PathBuf>) -> RuntimeOptions {
        RuntimeOptions {
            library_path: Some(path.into()),
            ..RuntimeOptions::default()
        }
    }

    pub(crate) fn cache(&self) -> kiln_assets::Cache {
        self.cache
            .clone()
            .unwrap_or_else(kiln_assets::Cache::from_env)
    }
}

/// Where a runtime library candidate comes from, in discovery order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeSource {
    /// [`RuntimeOptions::library_path`].
    Explicit,
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// kiln's runtime directory (the kiln-assets cache).
    KilnRuntimeDir,
    /// The system's dynamic loader, by library name.
    SystemLoader,
}

impl RuntimeSource {
    /// A stable machine name (`explicit`, `env-var`, `kiln-runtime-dir`, `system-loader`).
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeSource::Explicit => "explicit",
            RuntimeSource::EnvVar => "env-var",
            RuntimeSource::KilnRuntimeDir => "kiln-runtime-dir",
            RuntimeSource::SystemLoader => "system-loader",
        }
    }

    /// A short human description of the place.
    pub fn describe(self) -> &'static str {
        match self {
            RuntimeSource::Explicit => "explicit library path",
            RuntimeSource::EnvVar => "ORT_DYLIB_PATH",
            RuntimeSource::KilnRuntimeDir => "kiln runtime directory",
            RuntimeSource::SystemLoader => "system loader",
        }
    }
}

impl fmt::Display for RuntimeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What a candidate points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file path.
    File(PathBuf),
    /// A library name for the system loader to search (`libonnxruntime.so`).
    LoaderName(String),
}

impl Location {
    /// The location as a path (a loader name becomes a bare file name).
    pub fn to_path_buf(&self) -> PathBuf {
        match self {
            Location::File(path) => path.clone(),
            Location::LoaderName(name) => PathBuf::from(name),
        }
    }
}

/// A library that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// The library's path (canonical when it could be resolved).
    pub path: PathBuf,
    /// The version it reports (`1.31.1`).
    pub version: String,
}

/// Why a candidate library cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeFailure {
    /// There is no file there (or the loader found nothing by that name).
    Missing,
    /// The file is not a shared library (a directory, too short, wrong magic number).
    NotALibrary {
        /// What is wrong with it.
        reason: String,
    },
    /// The loader refused the library.
    LoadFailed {
        /// The loader's message.
        message: String,
    },
    /// The library loaded but is not ONNX Runtime (no `OrtGetApiBase`).
    NotOnnxRuntime {
        /// What is missing.
        message: String,
    },
    /// ONNX Runtime, but a version kiln cannot use.
    WrongVersion {
        /// The version it reports.
        found: String,
        /// What kiln needs.
        required: String,
    },
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Missing => f.write_str("missing"),
            ProbeFailure::NotALibrary { reason } => write!(f, "not a shared library: {reason}"),
            ProbeFailure::LoadFailed { message } => write!(f, "failed to load: {message}"),
            ProbeFailure::NotOnnxRuntime { message } => write!(f, "not ONNX Runtime: {message}"),
            ProbeFailure::WrongVersion { found, required } => {
                write!(f, "wrong version: it is {found}, kiln needs {required}")
            }
        }
    }
}

impl ProbeFailure {
    /// A stable machine name (`missing`, `not-a-library`, `load-failed`, `not-onnxruntime`,
    /// `wrong-version`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ProbeFailure::Missing => "missing",
            ProbeFailure::NotALibrary { .. } => "not-a-library",
            ProbeFailure::LoadFailed { .. } => "load-failed",
            ProbeFailure::NotOnnxRuntime { .. } => "not-onnxruntime",
            ProbeFailure::WrongVersion { .. } => "wrong-version",
        }
    }
}

/// What happened at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This library is the one used.
    Used {
        /// Its version.
        version: String,
    },
    /// The place is not configured (no explicit path given, `ORT_DYLIB_PATH` unset).
    NotConfigured,
    /// The place was not tried.
    Skipped {
        /// Why (an earlier candidate is used; an explicit path failed).
        reason: String,
    },
    /// The place was tried and its library cannot be used.
    Failed(ProbeFailure),
}

impl Outcome {
    /// A stable machine name: `used`, `not-configured`, `skipped`, or the failure's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Used { .. } => "used",
            Outcome::NotConfigured => "not-configured",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed(failure) => failure.as_str(),
        }
    }

    /// Whether this is the library in use.
    pub fn is_used(&self) -> bool {
        matches!(self, Outcome::Used { .. })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Used { version } => write!(f, "used (ONNX Runtime {version})"),
            Outcome::NotConfigured => f.write_str("not set"),
            Outcome::Skipped { reason } => write!(f, "not tried: {reason}"),
            Outcome::Failed(failure) => failure.fmt(f),
        }
    }
}

/// One place discovery considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Which place.
    pub place: RuntimeSource,
    /// The path (or loader name) there; `None` when the place is not configured.
    pub path: Option<PathBuf>,
    /// What happened.
    pub outcome: Outcome,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} {}: {}", self.place, path.display(), self.outcome),
            None => write!(f, "{}: {}", self.place, self.outcome),
        }
    }
}

/// Which library is used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStatus {
    /// The library.
    pub library: PathBuf,
    /// The place it came from.
    pub source: RuntimeSource,
    /// The version it reports.
    pub version: String,
    /// Why this one, in a sentence.
    pub why: String,
    /// Every place considered, in discovery order (the used one included).
    pub candidates: Vec<Candidate>,
}

/// Checks one candidate library. [`DylibProbe`] is the real one; tests substitute fakes.
pub trait Probe {
    /// Checks the library at `location`.
    fn probe(&self, location: &Location) -> std::result::Result<Probed, ProbeFailure>;
}

impl<F> Probe for F
where
    F: Fn(&Location) -> std::result::Result<Probed, ProbeFailure>,
{
    fn probe(&self, location: &Location) -> std::result::Result<Probed, ProbeFailure> {
        self(location)
    }
}

/// Finds the library `options` and the environment point at, checking each candidate by loading it;
/// does not start ONNX Runtime.
pub fn discover(options: &RuntimeOptions) -> Result<RuntimeStatus> {
    discover_with(&SearchPlan::from_options(options), &DylibProbe)
}

/// The process's ONNX Runtime: the library in use and the `ort` environment.
pub struct Runtime {
    env: ort::environment::Environment,
    status: RuntimeStatus,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Which library is used, and why.
    pub fn status(&self) -> &RuntimeStatus {
        &self.status
    }

    /// The library in use.
    pub fn library(&self) -> &Path {
        &self.status.library
    }

    /// The version of the library in use.
    pub fn version(&self) -> &str {
        &self.status.version
    }

    pub(crate) fn env(&self) -> &ort::environment::Environment {
        &self.env
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// The process's runtime, if [`init`] succeeded.
pub fn get() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// Finds the library and starts ONNX Runtime from it, once per process.
///
/// Later calls return the same runtime. A later call whose `options.library_path` names a different
/// library fails with [`EngineError::RuntimeAlreadyInitialized`]; a later call without one accepts
/// the runtime already loaded.
pub fn init(options: &RuntimeOptions) -> Result<&'static Runtime> {
    if let Some(runtime) = RUNTIME.get() {
        return check_same_library(runtime, options);
    }
    // Serialise first initialisations; the lock guards no data, so a poisoned lock is harmless.
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = RUNTIME.get() {
        return check_same_library(runtime, options);
    }
    let status = discover(options)?;
    let init_error = |message: String| EngineError::RuntimeInit {
        library: status.library.clone(),
        message,
    };
    // The library passed every check, so `ort` loads what was probed. Its loader still has
    // `expect`s (on the executable's path, for relative paths): a panic there becomes an error.
    let start = || -> std::result::Result<ort::environment::Environment, String> {
        ort::init_from(&status.library)
            .map_err(|error| error.to_string())?
            .with_name("kiln")
            .with_telemetry(false)
            .build()
            .map_err(|error| error.message().to_owned())
    };
    let env = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(start)) {
        Ok(Ok(env)) => env,
        Ok(Err(message)) => return Err(init_error(message)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "ort panicked".to_owned());
            return Err(init_error(format!("ort panicked: {message}")));
        }
    };
    tracing::info!(
        library = %status.library.display(),
        version = %status.version,
        source = status.source.as_str(),
        "ONNX Runtime initialised"
    );
    Ok(RUNTIME.get_or_init(|| Runtime { env, status }))
}

/// The process's runtime, initialised with default options (discovery from the environment) if it
/// is not yet.
pub fn global() -> Result<&'static Runtime> {
    init(&RuntimeOptions::default())
}

fn check_same_library(
    runtime: &'static Runtime,
    options: &RuntimeOptions,
) -> Result<&'static Runtime> {
    let Some(requested) = &options.library_path else {
        return Ok(runtime);
    };
    let same = match (requested.canonicalize(), runtime.library().canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => requested == runtime.library(),
    };
    if same {
        Ok(runtime)
    } else {
        Err(EngineError::RuntimeAlreadyInitialized {
            loaded: runtime.library().to_path_buf(),
            requested: requested.clone(),
        })
    }
}
