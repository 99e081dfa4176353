//! Model packages: `model.json` parsing and validation, and the file checks (presence, size, sha256).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const FORMAT_MAJOR: &str = "1";

#[derive(Debug, Clone, Deserialize)]
pub struct ClassInfo {
    pub id: u32,
    pub name: String,
    pub color: [u8; 3],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Inverse {
    /// "nearest" (palette colour, GSS-FF) or "onnx" (a graph: maskige in, class ids out).
    pub kind: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default)]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Maskige {
    pub palette: Vec<[u8; 3]>,
    pub ignore_color: [u8; 3],
    pub inverse: Inverse,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    pub height: usize,
    pub width: usize,
    pub channel_order: String,
    pub layout: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Prior {
    pub file: String,
    pub input: String,
    pub output: String,
    pub output_dtype: String,
    pub grid: [usize; 2],
    pub codebook_size: usize,
    pub argmax_in_graph: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Decoder {
    pub file: String,
    pub input: String,
    pub output: String,
    pub upsample: usize,
    pub output_range: [f32; 2],
}

#[derive(Debug, Clone, Deserialize)]
pub struct Variant {
    pub prior: String,
    pub decoder: String,
    #[serde(default)]
    pub format: Option<String>,
}

/// What the graphs cost per frame, as `gss_convert` counted them at export (convolutions only).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Cost {
    pub prior_gmac: f64,
    pub decoder_gmac: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub classes: Vec<ClassInfo>,
    pub maskige: Maskige,
    pub input: Input,
    pub prior: Prior,
    pub decoder: Decoder,
    /// Absent in packages exported before it was recorded.
    #[serde(default)]
    pub cost: Option<Cost>,
    #[serde(default)]
    pub variants: BTreeMap<String, Variant>,
    pub files: BTreeMap<String, FileEntry>,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// A validated model package on disk.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl ModelPackage {
    /// Reads `dir/model.json`, validates it and checks every listed file's size and sha256.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join("model.json");
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::ManifestParse { path: path.clone(), msg: e.to_string() })?;
        validate(&manifest, &path)?;
        for (name, entry) in &manifest.files {
            verify_file(&dir.join(name), entry)?;
        }
        Ok(Self { dir, manifest })
    }

    /// (prior, decoder) file paths of the fp32 graphs or of a named variant.
    pub fn graph_files(&self, variant: Option<&str>) -> Result<(PathBuf, PathBuf)> {
        match variant {
            None | Some("fp32") => Ok((self.dir.join(&self.manifest.prior.file), self.dir.join(&self.manifest.decoder.file))),
            Some(name) => {
                let v = self.manifest.variants.get(name).ok_or_else(|| Error::UnknownVariant {
                    name: name.to_string(),
                    available: std::iter::once("fp32".to_string())
                        .chain(self.manifest.variants.keys().cloned())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                Ok((self.dir.join(&v.prior), self.dir.join(&v.decoder)))
            }
        }
    }
}

fn validate(m: &Manifest, path: &Path) -> Result<()> {
    let invalid = |msg: String| Error::ManifestInvalid { path: path.to_path_buf(), msg };
    let (kind, version) = m.format.split_once('/').unwrap_or(("", ""));
    if kind != "gss-model" || version.split('.').next() != Some(FORMAT_MAJOR) {
        return Err(Error::UnsupportedFormat { path: path.to_path_buf(), found: m.format.clone() });
    }
    if m.classes.is_empty() || m.classes.len() > 255 {
        return Err(invalid(format!("{} classes; expected 1..=255", m.classes.len())));
    }
    if m.classes.iter().enumerate().any(|(i, c)| c.id as usize != i) {
        return Err(invalid("classes must have ids 0..K-1 in order".into()));
    }
    if m.maskige.palette.len() != m.classes.len() {
        return Err(invalid(format!("maskige.palette has {} colours for {} classes", m.maskige.palette.len(), m.classes.len())));
    }
    let inverse = &m.maskige.inverse;
    match inverse.kind.as_str() {
        "nearest" => {}
        "onnx" if inverse.file.is_some() && inverse.input.is_some() && inverse.output.is_some() => {}
        "onnx" => return Err(invalid("maskige.inverse of kind onnx needs file, input and output".into())),
        other => return Err(invalid(format!("maskige.inverse.kind {other:?} is not supported by this runtime (nearest, onnx)"))),
    }
    if m.input.layout != "NCHW" || m.input.channel_order != "RGB" {
        return Err(invalid(format!("input {} {} is not supported (NCHW RGB)", m.input.layout, m.input.channel_order)));
    }
    if m.input.resize != "stretch-bilinear" {
        return Err(invalid(format!("input.resize {:?} is not supported (stretch-bilinear)", m.input.resize)));
    }
    if m.input.std.iter().any(|s| *s <= 0.0) {
        return Err(invalid("input.std must be positive".into()));
    }
    let [gh, gw] = m.prior.grid;
    if gh * m.decoder.upsample != m.input.height || gw * m.decoder.upsample != m.input.width {
        return Err(invalid(format!(
            "prior.grid {gh}x{gw} × decoder.upsample {} != input {}x{}",
            m.decoder.upsample, m.input.height, m.input.width
        )));
    }
    match (m.prior.argmax_in_graph, m.prior.output_dtype.as_str()) {
        (true, "int64") | (false, "float32") => {}
        (true, other) => return Err(invalid(format!("prior.output_dtype {other:?} with the argmax in the graph; expected \"int64\" token ids"))),
        (false, other) => return Err(invalid(format!("prior.output_dtype {other:?} without the argmax in the graph; expected \"float32\" token logits"))),
    }
    if m.prior.codebook_size == 0 {
        return Err(invalid("prior.codebook_size must be at least 1".into()));
    }
    let mut referenced = vec![&m.prior.file, &m.decoder.file];
    referenced.extend(inverse.file.as_ref().filter(|_| inverse.kind == "onnx"));
    for v in m.variants.values() {
        referenced.push(&v.prior);
        referenced.push(&v.decoder);
    }
    for f in referenced {
        if !m.files.contains_key(f) {
            return Err(invalid(format!("{f} is referenced but has no entry under files (no sha256)")));
        }
    }
    Ok(())
}

fn verify_file(path: &Path, entry: &FileEntry) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|_| Error::MissingFile { path: path.to_path_buf() })?;
    if meta.len() != entry.bytes {
        return Err(Error::SizeMismatch { path: path.to_path_buf(), expected: entry.bytes, actual: meta.len() });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(&entry.sha256) {
        return Err(Error::HashMismatch { path: path.to_path_buf(), expected: entry.sha256.clone(), actual });
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
