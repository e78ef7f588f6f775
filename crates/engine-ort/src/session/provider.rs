//! Execution providers: registering them on a session, with an error — never a silent CPU fallback —
//! when the one asked for cannot be used.

use ort::session::builder::SessionBuilder;

use super::ExecutionProvider;
use crate::error::Result;
use crate::runtime::Runtime;

/// The provider name used in [`EngineError::ExecutionProviderUnavailable`] for CUDA.
const CUDA: &str = "CUDA";

/// Checks that `provider` can be used with `runtime`'s library, without building a session.
pub fn check_execution_provider(runtime: &Runtime, provider: ExecutionProvider) -> Result<()> {
    match provider {
        ExecutionProvider::Cpu => Ok(()),
        ExecutionProvider::Cuda { .. } => cuda::check(runtime),
    }
}

/// Registers `provider` on `builder`.
pub(super) fn apply(
    runtime: &Runtime,
    builder: SessionBuilder,
    provider: ExecutionProvider,
) -> Result<SessionBuilder> {
    match provider {
        ExecutionProvider::Cpu => Ok(builder),
        ExecutionProvider::Cuda { device_id } => cuda::register(runtime, builder, device_id),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use ort::ep::ExecutionProvider as _;
    use ort::session::builder::SessionBuilder;

    use super::CUDA;
    use crate::error::{EngineError, Result};
    use crate::runtime::Runtime;

    pub(super) fn check(runtime: &Runtime) -> Result<()> {
        match ort::ep::CUDA::is_available() {
            Ok(true) => Ok(()),
            Ok(false) => Err(EngineError::ExecutionProviderUnavailable {
                provider: CUDA,
                reason: format!(
                    "the ONNX Runtime library in use ({}, version {}) was built without the CUDA \
                     execution provider; the `onnxruntime` PyPI wheel is CPU-only, use the library \
                     from `onnxruntime-gpu` (set ORT_DYLIB_PATH to it)",
                    runtime.library().display(),
                    runtime.version()
                ),
            }),
            Err(error) => Err(EngineError::ExecutionProviderUnavailable {
                provider: CUDA,
                reason: format!(
                    "listing the available providers failed: {}",
                    error.message()
                ),
            }),
        }
    }

    pub(super) fn register(
        runtime: &Runtime,
        builder: SessionBuilder,
        device_id: u32,
    ) -> Result<SessionBuilder> {
        check(runtime)?;
        let device_id =
            i32::try_from(device_id).map_err(|_| EngineError::ExecutionProviderUnavailable {
                provider: CUDA,
                reason: format!("device id {device_id} is out of range"),
            })?;
        let cuda = ort::ep::CUDA::default()
            .with_device_id(device_id)
            .build()
            .error_on_failure();
        builder.with_execution_providers([cuda]).map_err(|error| {
            EngineError::ExecutionProviderUnavailable {
                provider: CUDA,
                reason: error.message().to_owned(),
            }
        })
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use ort::session::builder::SessionBuilder;

    use super::CUDA;
    use crate::error::{EngineError, Result};
    use crate::runtime::Runtime;

    fn unavailable() -> EngineError {
        EngineError::ExecutionProviderUnavailable {
            provider: CUDA,
            reason: "kiln was built without CUDA support (enable the `cuda` feature of \
                     kiln-engine-ort)"
                .to_owned(),
        }
    }

    pub(super) fn check(_runtime: &Runtime) -> Result<()> {
        Err(unavailable())
    }

    pub(super) fn register(
        _runtime: &Runtime,
        _builder: SessionBuilder,
        _device_id: u32,
    ) -> Result<SessionBuilder> {
        Err(unavailable())
    }
}
