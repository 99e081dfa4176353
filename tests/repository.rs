//! The repository stands alone: nothing in it points a user or contributor at notes outside it
//! (the developers' `shared/` folder is not part of the project; what matters from it lives in
//! `docs/`, e.g. docs/tract.md).

use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build outputs, virtual environments and git's own files are not the project's text.
            if !matches!(name.as_ref(), "target" | ".git" | ".venv" | "node_modules" | "__pycache__" | "data" | "out") {
                files_under(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_file_points_outside_the_repository_for_notes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    files_under(root, &mut files);
    let needle = ["shared", "/"].concat();
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "repository.rs"))
        .filter_map(|p| {
            let text = std::fs::read(p).ok()?;
            let text = String::from_utf8(text).ok()?;
            text.lines()
                .position(|l| l.contains(&needle))
                .map(|i| format!("{}:{}", p.strip_prefix(root).unwrap_or(p).display(), i + 1))
        })
        .collect();
    assert!(offenders.is_empty(), "files that point at a shared/ folder outside the project: {offenders:?}");
}
