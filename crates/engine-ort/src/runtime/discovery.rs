//! The discovery order as a pure function: a [`SearchPlan`] (which places are configured) and a
//! [`Probe`] in, a [`RuntimeStatus`] or [`EngineError::RuntimeNotFound`] out.

use std::path::PathBuf;

use super::{
    Candidate, Location, ORT_DYLIB_PATH, Outcome, Probe, ProbeFailure, Probed,
    REQUIRED_MINOR_VERSION, RuntimeOptions, RuntimeSource, RuntimeStatus,
};
use crate::error::{EngineError, Result};

/// The places discovery looks at, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    /// [`RuntimeOptions::library_path`].
    pub explicit: Option<PathBuf>,
    /// `ORT_DYLIB_PATH`, when set and not empty.
    pub env_var: Option<PathBuf>,
    /// Where kiln's runtime directory keeps the library (whether or not it is there).
    pub kiln_runtime_library: PathBuf,
    /// Library names for the system loader, in order.
    pub system_names: Vec<String>,
}

impl SearchPlan {
    /// The plan for `options` and this process's environment.
    pub fn from_options(options: &RuntimeOptions) -> SearchPlan {
        SearchPlan {
            explicit: options.library_path.clone(),
            env_var: std::env::var_os(ORT_DYLIB_PATH)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            kiln_runtime_library: options
                .cache()
                .path_of(&kiln_assets::catalog::ONNXRUNTIME_LIB),
            system_names: system_library_names(),
        }
    }
}

/// The names the system loader is asked for: the development name `ort` itself uses, then (on
/// Linux) the soname ONNX Runtime packages ship.
fn system_library_names() -> Vec<String> {
    let plain = format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let mut names = vec![plain.clone()];
    if cfg!(target_os = "linux") {
        names.push(format!("{plain}.1"));
    }
    names
}

/// Runs discovery over `plan`, checking candidates with `probe` in order, and returns the first
/// library that passes — or every place with what happened at it.
pub fn discover_with(plan: &SearchPlan, probe: &dyn Probe) -> Result<RuntimeStatus> {
    let mut places: Vec<(RuntimeSource, Option<Location>)> = vec![
        (
            RuntimeSource::Explicit,
            plan.explicit.clone().map(Location::File),
        ),
        (
            RuntimeSource::EnvVar,
            plan.env_var.clone().map(Location::File),
        ),
        (
            RuntimeSource::KilnRuntimeDir,
            Some(Location::File(plan.kiln_runtime_library.clone())),
        ),
    ];
    places.extend(plan.system_names.iter().map(|name| {
        (
            RuntimeSource::SystemLoader,
            Some(Location::LoaderName(name.clone())),
        )
    }));

    let mut candidates = Vec::with_capacity(places.len());
    let mut used: Option<(RuntimeSource, Probed)> = None;
    let mut explicit_failed = false;
    for (place, location) in places {
        let Some(location) = location else {
            candidates.push(Candidate {
                place,
                path: None,
                outcome: Outcome::NotConfigured,
            });
            continue;
        };
        let path = location.to_path_buf();
        let outcome = if used.is_some() {
            Outcome::Skipped {
                reason: "an earlier candidate is used".to_owned(),
            }
        } else if explicit_failed {
            Outcome::Skipped {
                reason: "an explicit library path was given, so no other place is used".to_owned(),
            }
        } else {
            match probe.probe(&location) {
                Ok(probed) => {
                    let outcome = Outcome::Used {
                        version: probed.version.clone(),
                    };
                    candidates.push(Candidate {
                        place,
                        // The resolved path: for the system loader, the file it found.
                        path: Some(probed.path.clone()),
                        outcome,
                    });
                    used = Some((place, probed));
                    continue;
                }
                Err(failure) => {
                    tracing::debug!(place = place.as_str(), path = %path.display(), %failure, "runtime candidate rejected");
                    explicit_failed = place == RuntimeSource::Explicit;
                    Outcome::Failed(failure)
                }
            }
        };
        candidates.push(Candidate {
            place,
            path: Some(path),
            outcome,
        });
    }

    match used {
        Some((source, probed)) => {
            let why = explain(source, &probed, &candidates);
            Ok(RuntimeStatus {
                library: probed.path,
                source,
                version: probed.version,
                why,
                candidates,
            })
        }
        None => Err(EngineError::RuntimeNotFound { candidates }),
    }
}

/// Why the library at `source` is the one used: the place's own reason, then what happened at the
/// places before it.
fn explain(source: RuntimeSource, probed: &Probed, candidates: &[Candidate]) -> String {
    let reason = match source {
        RuntimeSource::Explicit => "an explicit library path was given".to_owned(),
        RuntimeSource::EnvVar => "ORT_DYLIB_PATH names it".to_owned(),
        RuntimeSource::KilnRuntimeDir => {
            "it is kiln's installed runtime (`kiln runtime install` / `cargo xtask setup`)"
                .to_owned()
        }
        RuntimeSource::SystemLoader => {
            format!("the system loader found it ({})", probed.path.display())
        }
    };
    let earlier: Vec<String> = candidates
        .iter()
        .take_while(|candidate| !candidate.outcome.is_used())
        .map(|candidate| format!("{}: {}", candidate.place, candidate.outcome))
        .collect();
    if earlier.is_empty() {
        reason
    } else {
        format!("{reason}; before it, {}", earlier.join("; "))
    }
}

/// Checks a version string reported by a library: `1.x[.y]` with `x >=` [`REQUIRED_MINOR_VERSION`].
pub fn check_version(version: &str) -> std::result::Result<(), ProbeFailure> {
    let wrong = || ProbeFailure::WrongVersion {
        found: version.to_owned(),
        required: format!("1.{REQUIRED_MINOR_VERSION}.x or newer"),
    };
    let mut parts = version.trim().split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(1), Some(minor)) if minor >= REQUIRED_MINOR_VERSION => Ok(()),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    /// A fake probe: each location's answer, `Missing` for the rest; records what it was asked.
    struct Fake {
        answers: HashMap<PathBuf, std::result::Result<Probed, ProbeFailure>>,
        asked: std::cell::RefCell<Vec<PathBuf>>,
    }

    impl Fake {
        fn new(answers: &[(&str, std::result::Result<&str, ProbeFailure>)]) -> Fake {
            Fake {
                answers: answers
                    .iter()
                    .map(|(path, answer)| {
                        let answer = answer.clone().map(|version| Probed {
                            path: PathBuf::from(path),
                            version: version.to_owned(),
                        });
                        (PathBuf::from(path), answer)
                    })
                    .collect(),
                asked: std::cell::RefCell::new(Vec::new()),
            }
        }
    }

    impl Probe for Fake {
        fn probe(&self, location: &Location) -> std::result::Result<Probed, ProbeFailure> {
            let path = location.to_path_buf();
            self.asked.borrow_mut().push(path.clone());
            self.answers
                .get(&path)
                .cloned()
                .unwrap_or(Err(ProbeFailure::Missing))
        }
    }

    fn plan(explicit: Option<&str>, env_var: Option<&str>) -> SearchPlan {
        SearchPlan {
            explicit: explicit.map(PathBuf::from),
            env_var: env_var.map(PathBuf::from),
            kiln_runtime_library: PathBuf::from("/cache/kiln/libonnxruntime.so.1.31.1"),
            system_names: vec!["libonnxruntime.so".to_owned()],
        }
    }

    const KILN: &str = "/cache/kiln/libonnxruntime.so.1.31.1";

    /// The outcome names of every candidate, in order.
    fn outcomes(candidates: &[Candidate]) -> Vec<(&'static str, &'static str)> {
        candidates
            .iter()
            .map(|c| (c.place.as_str(), c.outcome.as_str()))
            .collect()
    }

    #[test]
    fn explicit_beats_env_var_beats_runtime_dir() {
        let fake = Fake::new(&[
            ("/explicit.so", Ok("1.31.1")),
            ("/env.so", Ok("1.31.0")),
            (KILN, Ok("1.31.1")),
        ]);
        let status =
            discover_with(&plan(Some("/explicit.so"), Some("/env.so")), &fake).expect("found");
        assert_eq!(status.source, RuntimeSource::Explicit);
        assert_eq!(status.library, Path::new("/explicit.so"));
        assert_eq!(
            outcomes(&status.candidates),
            [
                ("explicit", "used"),
                ("env-var", "skipped"),
                ("kiln-runtime-dir", "skipped"),
                ("system-loader", "skipped")
            ]
        );
        // Nothing after the used candidate was loaded.
        assert_eq!(*fake.asked.borrow(), [PathBuf::from("/explicit.so")]);

        let status = discover_with(&plan(None, Some("/env.so")), &fake).expect("found");
        assert_eq!(status.source, RuntimeSource::EnvVar);
        assert_eq!(status.version, "1.31.0");
        assert!(status.why.contains("ORT_DYLIB_PATH"), "{}", status.why);
        assert_eq!(status.candidates[0].outcome, Outcome::NotConfigured);

        let status = discover_with(&plan(None, None), &fake).expect("found");
        assert_eq!(status.source, RuntimeSource::KilnRuntimeDir);
        assert!(
            status.why.contains("ORT_DYLIB_PATH: not set"),
            "{}",
            status.why
        );
    }

    #[test]
    fn a_failing_env_var_falls_through_and_is_recorded() {
        let garbage = ProbeFailure::NotALibrary {
            reason: "no ELF magic".to_owned(),
        };
        let fake = Fake::new(&[("/garbage", Err(garbage.clone())), (KILN, Ok("1.31.1"))]);
        let status = discover_with(&plan(None, Some("/garbage")), &fake).expect("found");
        assert_eq!(status.source, RuntimeSource::KilnRuntimeDir);
        assert_eq!(status.candidates[1].outcome, Outcome::Failed(garbage));
        assert!(
            status.why.contains("not a shared library"),
            "{}",
            status.why
        );
    }

    #[test]
    fn a_failing_explicit_path_stops_discovery() {
        let fake = Fake::new(&[(KILN, Ok("1.31.1"))]);
        let err =
            discover_with(&plan(Some("/nope.so"), None), &fake).expect_err("explicit is strict");
        let EngineError::RuntimeNotFound { candidates } = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(
            outcomes(candidates),
            [
                ("explicit", "missing"),
                ("env-var", "not-configured"),
                ("kiln-runtime-dir", "skipped"),
                ("system-loader", "skipped")
            ]
        );
        assert_eq!(*fake.asked.borrow(), [PathBuf::from("/nope.so")]);
        let message = err.to_string();
        assert!(message.contains("/nope.so: missing"), "{message}");
    }

    #[test]
    fn the_error_names_every_place_and_the_fix() {
        let fake = Fake::new(&[
            (
                "/env.so",
                Err(ProbeFailure::WrongVersion {
                    found: "1.20.0".into(),
                    required: "1.31.x or newer".into(),
                }),
            ),
            (
                KILN,
                Err(ProbeFailure::LoadFailed {
                    message: "invalid ELF header".into(),
                }),
            ),
        ]);
        let err = discover_with(&plan(None, Some("/env.so")), &fake).expect_err("nothing works");
        let message = err.to_string();
        for needle in [
            "explicit library path: not set",
            "ORT_DYLIB_PATH /env.so: wrong version: it is 1.20.0",
            "kiln runtime directory /cache/kiln/libonnxruntime.so.1.31.1: failed to load: invalid ELF header",
            "system loader libonnxruntime.so: missing",
            "kiln runtime install",
            "cargo xtask setup",
            "ORT_DYLIB_PATH to a libonnxruntime",
        ] {
            assert!(
                message.contains(needle),
                "missing {needle:?} in:\n{message}"
            );
        }
        let EngineError::RuntimeNotFound { candidates } = err else {
            panic!("wrong variant");
        };
        assert_eq!(candidates.len(), 4);
    }

    #[test]
    fn the_system_loader_reports_the_resolved_path() {
        let probe = |location: &Location| match location {
            Location::LoaderName(name) if name == "libonnxruntime.so" => Ok(Probed {
                path: PathBuf::from("/usr/lib/libonnxruntime.so.1.31.2"),
                version: "1.31.2".to_owned(),
            }),
            _ => Err(ProbeFailure::Missing),
        };
        let status = discover_with(&plan(None, None), &probe).expect("found");
        assert_eq!(status.source, RuntimeSource::SystemLoader);
        assert_eq!(
            status.library,
            Path::new("/usr/lib/libonnxruntime.so.1.31.2")
        );
        assert_eq!(
            status.candidates[3].path.as_deref(),
            Some(Path::new("/usr/lib/libonnxruntime.so.1.31.2"))
        );
        assert!(
            status.why.contains("kiln runtime directory: missing"),
            "{}",
            status.why
        );
    }

    #[test]
    fn versions() {
        for ok in ["1.31.1", "1.31.0", "1.32.0", "1.40", " 1.31.1\n"] {
            assert_eq!(check_version(ok), Ok(()), "{ok}");
        }
        for bad in ["1.30.9", "1.8.1", "2.0.0", "", "garbage", "1"] {
            assert!(
                matches!(check_version(bad), Err(ProbeFailure::WrongVersion { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn plan_reads_options() {
        let options = RuntimeOptions {
            library_path: Some(PathBuf::from("/x.so")),
            cache: Some(kiln_assets::Cache::new("/tmp/kiln-cache")),
        };
        let plan = SearchPlan::from_options(&options);
        assert_eq!(plan.explicit.as_deref(), Some(Path::new("/x.so")));
        assert!(plan.kiln_runtime_library.starts_with("/tmp/kiln-cache"));
        assert!(
            plan.kiln_runtime_library
                .ends_with("libonnxruntime.so.1.31.1")
        );
        assert!(!plan.system_names.is_empty());
    }
}
