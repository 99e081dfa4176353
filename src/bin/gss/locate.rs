//! Where an installed `gss` finds its bundled model when `--model` and `GSS_MODEL` are not given.

use std::path::PathBuf;

use anyhow::Result;

/// The bundled package's directory name.
const BUNDLED: &str = "gss-edge-street8";

/// The places looked at, in order, with why each is a candidate.
fn candidates() -> Vec<(PathBuf, &'static str)> {
    let mut out = vec![(PathBuf::from("models").join(BUNDLED), "the current directory")];
    if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.to_path_buf())) {
        out.push((dir.join("models").join(BUNDLED), "beside the executable"));
        out.push((dir.join("../share/gss/models").join(BUNDLED), "the install prefix (share/gss)"));
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"))) {
        out.push((data.join("gss/models").join(BUNDLED), "the user data directory"));
    }
    out.push((PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models").join(BUNDLED), "the checkout gss was built from"));
    out
}

/// The first candidate that holds a model.json, or an error listing every place looked at.
pub fn default_model() -> Result<PathBuf> {
    let candidates = candidates();
    if let Some((dir, _)) = candidates.iter().find(|(dir, _)| dir.join("model.json").is_file()) {
        return Ok(dir.clone());
    }
    let looked = candidates.iter().map(|(d, why)| format!("  {} ({why})", d.display())).collect::<Vec<_>>().join("\n");
    anyhow::bail!("no model given and the bundled {BUNDLED} was not found; looked in:\n{looked}\npass --model DIR or set GSS_MODEL to a model package directory")
}
