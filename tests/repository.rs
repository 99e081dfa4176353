//! The repository stands alone: nothing in it points a user or contributor at notes outside it
//! (the developers' `shared/` folder is not part of the project; what matters from it lives in
//! `docs/`, e.g. docs/tract.md).

use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            // Build outputs, virtual environments and git's own files are not the project's text.
            let skipped = matches!(
                name.as_ref(),
                "target" | ".git" | "node_modules" | "__pycache__" | "data" | "out"
            );
            if !skipped && !name.starts_with(".venv") {
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
    assert!(
        offenders.is_empty(),
        "files that point at a shared/ folder outside the project: {offenders:?}"
    );
}

/// The library names none of the command line's crates and has no code of its own behind the
/// `cli` feature, so the library `scripts/test.sh` builds and tests with default features is the
/// library a `default-features = false` user gets (whose dependencies `cargo tree` checks there).
#[test]
fn the_library_does_not_use_the_command_lines_crates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    files_under(&root, &mut files);
    let cli_only = [
        "clap::",
        "indicatif::",
        "ctrlc::",
        "env_logger::",
        "anyhow::",
        "feature = \"cli\"",
    ];
    let offenders: Vec<String> = files
        .iter()
        .filter(|p| !p.starts_with(root.join("bin")) && p.extension().is_some_and(|e| e == "rs"))
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let hits: Vec<&str> = cli_only
                .iter()
                .copied()
                .filter(|n| text.contains(n))
                .collect();
            (!hits.is_empty()).then(|| format!("{}: {}", p.display(), hits.join(", ")))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "the library uses the CLI's crates: {offenders:#?}"
    );
}

/// The Python wheel carries the bundled model through links in python/gss/models/ (maturin packs
/// what they point at): one per file of the package, so a file added to the package cannot be
/// left out of the wheel.
#[test]
fn the_python_package_links_every_file_of_the_bundled_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/gss-edge-street8");
    let links = root.join("python/gss/models/gss-edge-street8");
    let names = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&links), names(&model));
    for name in names(&links) {
        let link = links.join(&name);
        let target = std::fs::read_link(&link)
            .unwrap_or_else(|e| panic!("{}: not a link ({e})", link.display()));
        assert_eq!(
            std::fs::canonicalize(links.join(&target)).unwrap(),
            std::fs::canonicalize(model.join(&name)).unwrap(),
            "{}",
            link.display()
        );
    }
}
