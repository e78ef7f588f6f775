//! `kiln runtime install`: fetches the ONNX Runtime library from the pinned `onnxruntime` PyPI
//! wheel into kiln's runtime directory (the kiln-assets cache), sha256-verified by kiln-assets.

use std::path::PathBuf;

use super::RuntimeOptions;
use crate::error::{EngineError, Result};

/// What [`install`] put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRuntime {
    /// The ONNX Runtime library (what discovery's `KilnRuntimeDir` place points at).
    pub library: PathBuf,
    /// Every file installed, the library first (the provider bridge library sits next to it).
    pub files: Vec<PathBuf>,
    /// The wheel the files came from.
    pub wheel: &'static str,
}

/// Fetches the runtime files into the cache of `options` (downloading only what is not cached) and
/// returns their paths. Every file is verified against its pinned sha256 before it is visible.
pub fn install(options: &RuntimeOptions) -> Result<InstalledRuntime> {
    let cache = options.cache();
    let files = cache
        .fetch_all(kiln_assets::catalog::RUNTIME)
        .map_err(EngineError::Install)?;
    let library = cache.path_of(&kiln_assets::catalog::ONNXRUNTIME_LIB);
    tracing::info!(library = %library.display(), "ONNX Runtime installed");
    Ok(InstalledRuntime {
        library,
        files,
        wheel: kiln_assets::catalog::ONNXRUNTIME_WHEEL.filename,
    })
}
