//! `tidy`: cheap checks over the whole tree, run as tests of xtask (`cargo test -p xtask`).
//!
//! Every Rust module starts with a `//!` line saying what it is; no trailing whitespace; no
//! ignore-marked tests (a test that never runs cannot fail); no `dbg!`.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    rust_files(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }

    fn sources() -> Vec<(PathBuf, String)> {
        let root = crate::project_root();
        let mut files = Vec::new();
        for dir in ["crates", "xtask", "src", "tests", "benches"] {
            rust_files(&root.join(dir), &mut files);
        }
        files.sort();
        files
            .into_iter()
            .filter(|p| !p.components().any(|c| c.as_os_str() == "generated"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("readable source");
                (
                    p.strip_prefix(&root).expect("under root").to_path_buf(),
                    text,
                )
            })
            .collect()
    }

    #[test]
    fn every_module_starts_with_a_doc_line() {
        let missing: Vec<_> = sources()
            .into_iter()
            .filter(|(_, text)| !text.trim_start().starts_with("//!"))
            .map(|(p, _)| p)
            .collect();
        assert!(
            missing.is_empty(),
            "modules without a leading `//!` line: {missing:?}"
        );
    }

    #[test]
    fn no_trailing_whitespace_ignored_tests_or_dbg() {
        let mut problems = Vec::new();
        // Split so this file does not match itself.
        let ignore = concat!("#[", "ignore");
        let dbg = concat!("dbg", "!(");
        for (path, text) in sources() {
            for (i, line) in text.lines().enumerate() {
                let at = format!("{}:{}", path.display(), i + 1);
                if line.ends_with(' ') || line.ends_with('\t') {
                    problems.push(format!("{at}: trailing whitespace"));
                }
                if line.contains(ignore) {
                    problems.push(format!("{at}: ignored test"));
                }
                if line.contains(dbg) {
                    problems.push(format!("{at}: dbg!"));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
