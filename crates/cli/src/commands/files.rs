//! Output files: checked before any work (their folder exists, they would not overwrite the
//! input) and written atomically (a temporary file in the same folder, renamed over the target),
//! so a failure never leaves a half-written file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::errors::InputError;

/// Checks that `path` can be written as `option`'s output: its folder exists, it is not a folder,
/// and it is not one of `inputs`.
pub fn check_output(option: &'static str, path: &Path, inputs: &[&Path]) -> Result<(), InputError> {
    let error = |reason: String| InputError::OutputPath {
        option,
        path: path.to_owned(),
        reason,
    };
    if path.is_dir() {
        return Err(error("is a folder; give a file name".into()));
    }
    let parent = parent_dir(path);
    if !parent.is_dir() {
        return Err(error(format!(
            "its folder {} does not exist",
            parent.display()
        )));
    }
    for input in inputs {
        if same_file(path, input) {
            return Err(error(format!(
                "would overwrite the input {}; give another path",
                input.display()
            )));
        }
    }
    Ok(())
}

/// The folder a file goes to (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Whether two paths name the same file (by canonical path when both exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed, then renamed
/// over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), InputError> {
    let error = |source| InputError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = tempfile::NamedTempFile::new_in(parent_dir(path)).map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    // Temporary files are created private (0600); a report is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(error)?;
    }
    file.as_file().sync_all().map_err(error)?;
    file.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_and_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("m.onnx");
        std::fs::write(&model, b"x").expect("write");
        let err = check_output("--out", &model, &[&model]).expect_err("overwrites the model");
        assert!(err.to_string().contains("--out"), "{err}");
        let missing = dir.path().join("no/such/dir/out.onnx");
        assert!(check_output("--out", &missing, &[&model]).is_err());
        assert!(check_output("--report", dir.path(), &[]).is_err());

        let out = dir.path().join("r.json");
        check_output("--report", &out, &[&model]).expect("fine");
        write_atomically(&out, b"{}").expect("write");
        write_atomically(&out, b"{\"a\":1}").expect("replace");
        assert_eq!(std::fs::read(&out).expect("read"), b"{\"a\":1}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }
}
