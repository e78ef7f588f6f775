//! [`DylibProbe`]: checks a candidate library by loading it (dlopen) and asking its version, without
//! handing it to `ort` (which keeps the first library it loads for the life of the process).
//!
//! The checks run from cheap to dangerous: the file exists and is a regular file; its first bytes
//! are a shared-library magic number (so a text file or an archive is rejected before the loader
//! sees it); the loader accepts it; it exports `OrtGetApiBase`; the version it reports is
//! acceptable; and it serves the API version `ort` was built for. Loading runs the library's
//! initialisers, as any use of the library would: only point kiln at libraries you trust.

use std::ffi::{CStr, c_char};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{Location, Probe, ProbeFailure, Probed, REQUIRED_MINOR_VERSION, check_version};

/// The real [`Probe`]: loads the candidate with the system loader.
#[derive(Debug, Clone, Copy, Default)]
pub struct DylibProbe;

impl Probe for DylibProbe {
    fn probe(&self, location: &Location) -> Result<Probed, ProbeFailure> {
        match location {
            Location::File(path) => probe_file(path),
            Location::LoaderName(name) => probe_name(name),
        }
    }
}

fn probe_file(path: &Path) -> Result<Probed, ProbeFailure> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(ProbeFailure::Missing),
        Err(error) => {
            return Err(ProbeFailure::LoadFailed {
                message: error.to_string(),
            });
        }
    };
    if !metadata.is_file() {
        return Err(ProbeFailure::NotALibrary {
            reason: if metadata.is_dir() {
                "it is a directory".to_owned()
            } else {
                "it is not a regular file".to_owned()
            },
        });
    }
    check_magic(path)?;
    // Absolute, so the loader does not search for it (`ort` would resolve a relative path against
    // the executable's directory).
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // SAFETY: loading a library runs its initialisers. The file is one the user pointed kiln at
    // (explicitly, through ORT_DYLIB_PATH, or by installing it) to be loaded as ONNX Runtime.
    let library = unsafe { libloading::Library::new(&absolute) }.map_err(|error| {
        ProbeFailure::LoadFailed {
            message: loader_message(&error),
        }
    })?;
    let version = read_version(&library)?;
    keep_loaded(library);
    Ok(Probed {
        path: absolute,
        version,
    })
}

fn probe_name(name: &str) -> Result<Probed, ProbeFailure> {
    // SAFETY: as in `probe_file`; the system loader picks the file by its usual rules.
    let library = match unsafe { libloading::Library::new(name) } {
        Ok(library) => library,
        Err(error) => {
            let message = loader_message(&error);
            return Err(if message.contains("No such file") {
                ProbeFailure::Missing
            } else {
                ProbeFailure::LoadFailed { message }
            });
        }
    };
    let version = read_version(&library)?;
    let path = loaded_path(&library).unwrap_or_else(|| PathBuf::from(name));
    keep_loaded(library);
    Ok(Probed { path, version })
}

/// libloading's message with its source: `dlopen failed: <what the loader said>`.
fn loader_message(error: &libloading::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// A library that passed is about to be loaded again by `ort`: keep this handle open rather than
/// unload and reload ONNX Runtime (its static state is not built to be unloaded). Only the one
/// library discovery picks passes, so at most one handle per discovery is kept.
fn keep_loaded(library: libloading::Library) {
    std::mem::forget(library);
}

/// The magic numbers of this platform's shared libraries.
fn check_magic(path: &Path) -> Result<(), ProbeFailure> {
    let mut head = [0u8; 4];
    let mut file = fs::File::open(path).map_err(|error| ProbeFailure::LoadFailed {
        message: error.to_string(),
    })?;
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(ProbeFailure::LoadFailed {
                    message: error.to_string(),
                });
            }
        }
    }
    if read < head.len() {
        return Err(ProbeFailure::NotALibrary {
            reason: format!("the file is only {read} bytes long"),
        });
    }
    let (ok, expected) = if cfg!(target_os = "windows") {
        (head.starts_with(b"MZ"), "a PE (MZ) header")
    } else if cfg!(target_vendor = "apple") {
        let magic = u32::from_le_bytes(head);
        let be = u32::from_be_bytes(head);
        (
            matches!(magic, 0xfeed_face | 0xfeed_facf) || be == 0xcafe_babe,
            "a Mach-O header",
        )
    } else {
        (head == *b"\x7fELF", "the ELF magic number")
    };
    if ok {
        Ok(())
    } else {
        Err(ProbeFailure::NotALibrary {
            reason: format!(
                "it does not start with {expected} (first bytes: {:02x} {:02x} {:02x} {:02x})",
                head[0], head[1], head[2], head[3]
            ),
        })
    }
}

type GetApiBase = unsafe extern "system" fn() -> *const ort::sys::OrtApiBase;

/// Asks a loaded library for its version and checks it serves the API `ort` needs.
fn read_version(library: &libloading::Library) -> Result<String, ProbeFailure> {
    // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime since 1.0.
    let get_base = unsafe { library.get::<GetApiBase>("OrtGetApiBase") }.map_err(|error| {
        ProbeFailure::NotOnnxRuntime {
            message: format!(
                "it does not export `OrtGetApiBase` ({})",
                loader_message(&error)
            ),
        }
    })?;
    // SAFETY: a plain C call without arguments.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(ProbeFailure::NotOnnxRuntime {
            message: "`OrtGetApiBase` returned null".to_owned(),
        });
    }
    // SAFETY: `base` is non-null and points at the library's static `OrtApiBase`.
    let version_ptr: *const c_char = unsafe { ((*base).GetVersionString)() };
    if version_ptr.is_null() {
        return Err(ProbeFailure::NotOnnxRuntime {
            message: "`GetVersionString` returned null".to_owned(),
        });
    }
    // SAFETY: ONNX Runtime returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(version_ptr) }
        .to_string_lossy()
        .into_owned();
    check_version(&version)?;
    // SAFETY: `GetApi` returns null (never fails otherwise) for an unsupported API version.
    let api = unsafe { ((*base).GetApi)(REQUIRED_MINOR_VERSION) };
    if api.is_null() {
        return Err(ProbeFailure::WrongVersion {
            found: version,
            required: format!(
                "a library serving ONNX Runtime API version {REQUIRED_MINOR_VERSION}"
            ),
        });
    }
    Ok(version)
}

/// The file the loader picked for `library`, found through one of its symbols.
#[cfg(unix)]
fn loaded_path(library: &libloading::Library) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;

    // SAFETY: only the symbol's address is used.
    let symbol = unsafe { library.get::<GetApiBase>("OrtGetApiBase") }.ok()?;
    let address = *symbol as *const libc::c_void;
    // SAFETY: `Dl_info` is plain data that `dladdr` fills in.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `address` lies inside a loaded library; `info` is a valid out-pointer.
    let found = unsafe { libc::dladdr(address, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: `dli_fname` is the loader's NUL-terminated path of the library.
    let name = unsafe { CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    Some(fs::canonicalize(&path).unwrap_or(path))
}

#[cfg(not(unix))]
fn loaded_path(_library: &libloading::Library) -> Option<PathBuf> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_missing_and_directories_are_typed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let garbage = dir.path().join("libonnxruntime.so");
        fs::write(&garbage, b"<!DOCTYPE html> this is not a library").expect("write");
        let short = dir.path().join("short.so");
        fs::write(&short, b"\x7fE").expect("write");
        let fake_elf = dir.path().join("fake-elf.so");
        fs::write(
            &fake_elf,
            b"\x7fELF and then nonsense, not a real object file",
        )
        .expect("write");

        let probe = |path: &Path| DylibProbe.probe(&Location::File(path.to_path_buf()));
        assert_eq!(
            probe(&dir.path().join("absent.so")),
            Err(ProbeFailure::Missing)
        );
        assert!(
            matches!(probe(dir.path()), Err(ProbeFailure::NotALibrary { reason }) if reason.contains("directory"))
        );
        assert!(
            matches!(probe(&garbage), Err(ProbeFailure::NotALibrary { reason }) if reason.contains("3c 21 44 4f"))
        );
        assert!(
            matches!(probe(&short), Err(ProbeFailure::NotALibrary { reason }) if reason.contains("2 bytes"))
        );
        // Passes the magic check, so the loader itself rejects it, with its message.
        let Err(ProbeFailure::LoadFailed { message }) = probe(&fake_elf) else {
            panic!("a broken ELF file must fail to load");
        };
        assert!(message.starts_with("dlopen failed: "), "{message}");
        assert!(message.len() > "dlopen failed: ".len(), "{message}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_library_that_is_not_onnxruntime() {
        // libc is loaded in every process and has no `OrtGetApiBase`.
        let result = DylibProbe.probe(&Location::LoaderName("libc.so.6".to_owned()));
        assert!(
            matches!(result, Err(ProbeFailure::NotOnnxRuntime { .. })),
            "{result:?}"
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn an_unknown_name_is_missing() {
        let result = DylibProbe.probe(&Location::LoaderName(
            "libkiln-no-such-library.so".to_owned(),
        ));
        assert_eq!(result, Err(ProbeFailure::Missing));
    }
}
