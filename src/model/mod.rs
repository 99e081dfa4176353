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

/// X⁻¹: how a maskige becomes class ids.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Inverse {
    /// The nearest palette colour (the paper's GSS-FF).
    Nearest,
    /// A trained per-pixel linear classifier (GSS-FT with no hidden layer): class k scores
    /// `weight[k] · rgb + bias[k]` on the maskige in the decoder's output range, and the highest
    /// score wins (the lowest id on a tie). Run by the same vectorised loop as `Nearest`, so it
    /// costs what nearest colour costs.
    Linear { weight: Vec<[f32; 3]>, bias: Vec<f32> },
    /// A graph in the package: maskige 1×3×H×W in, int64 class ids H×W out.
    Onnx { file: String, input: String, output: String },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Maskige {
    pub palette: Vec<[u8; 3]>,
    pub ignore_color: [u8; 3],
    pub inverse: Inverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ChannelOrder {
    #[serde(rename = "RGB")]
    Rgb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Layout {
    #[serde(rename = "NCHW")]
    Nchw,
}

/// How the frame is sampled to the model's size (see [`crate::frame_path::geometry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Resample {
    /// Bilinear without antialiasing, PyTorch's `align_corners=False` convention: what
    /// `gss_convert.resize` trains and evaluates with. Packages before `fit` existed said
    /// "stretch-bilinear", which is this with [`Fit::Stretch`].
    #[serde(rename = "bilinear", alias = "stretch-bilinear")]
    Bilinear,
}

pub use crate::frame_path::geometry::Fit;

#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    pub height: usize,
    pub width: usize,
    pub channel_order: ChannelOrder,
    pub layout: Layout,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub resize: Resample,
    /// How a frame of another aspect ratio is fitted; the package's recommendation, which
    /// `--fit` overrides.
    #[serde(default)]
    pub fit: Fit,
    /// Present when both graphs are fully convolutional: they then run at any input size that is
    /// a multiple of this (see [`ModelPackage::at_input_size`]).
    #[serde(default)]
    pub size_multiple: Option<usize>,
}

/// What the prior graph ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorOutput {
    /// int64 token ids (h×w): the ArgMax is inside the graph.
    TokenIds,
    /// float32 logits (codebook×h×w): the runtime takes the argmax (`engine::tokens`).
    TokenLogits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "PriorJson")]
pub struct Prior {
    pub file: String,
    pub input: String,
    pub output: String,
    pub emits: PriorOutput,
    pub grid: [usize; 2],
    pub codebook_size: usize,
}

/// `prior` as written in model.json: the dtype and the argmax flag are two fields there, of
/// which only two of the four combinations mean something.
#[derive(Deserialize)]
struct PriorJson {
    file: String,
    input: String,
    output: String,
    output_dtype: String,
    grid: [usize; 2],
    codebook_size: usize,
    argmax_in_graph: bool,
}

impl TryFrom<PriorJson> for Prior {
    type Error = String;
    fn try_from(p: PriorJson) -> std::result::Result<Self, String> {
        let emits = match (p.argmax_in_graph, p.output_dtype.as_str()) {
            (true, "int64") => PriorOutput::TokenIds,
            (false, "float32") => PriorOutput::TokenLogits,
            (true, other) => return Err(format!("prior.output_dtype {other:?} with the argmax in the graph; expected \"int64\" token ids")),
            (false, other) => return Err(format!("prior.output_dtype {other:?} without the argmax in the graph; expected \"float32\" token logits")),
        };
        Ok(Prior { file: p.file, input: p.input, output: p.output, emits, grid: p.grid, codebook_size: p.codebook_size })
    }
}

impl Prior {
    pub fn argmax_in_graph(&self) -> bool {
        self.emits == PriorOutput::TokenIds
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Decoder {
    pub file: String,
    pub input: String,
    pub output: String,
    pub upsample: usize,
    /// Token cells each side that bound the decoder's receptive field (read from the graph at
    /// export); what token reuse needs. Older packages lack it and are decoded in full.
    #[serde(default)]
    pub halo: Option<usize>,
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
        let manifest: Manifest = serde_json::from_str(&text).map_err(|source| Error::ManifestParse { path: path.clone(), source })?;
        validate(&manifest, &path)?;
        for (name, entry) in &manifest.files {
            verify_file(&dir.join(name), entry)?;
        }
        Ok(Self { dir, manifest })
    }

    /// The same package with its graphs run at `height`×`width` instead of the exported size:
    /// every backend, the preprocess and the postprocess then plan for that size. Only packages
    /// whose manifest has `input.size_multiple` (fully convolutional graphs) allow it, at
    /// multiples of it.
    pub fn at_input_size(&self, height: usize, width: usize) -> Result<Self> {
        let m = &self.manifest;
        let invalid = |msg: String| Error::InvalidOption { option: "input size", msg };
        let Some(multiple) = m.input.size_multiple else {
            return Err(invalid(format!(
                "{} was exported for {}x{} only (model.json has no input.size_multiple); use --fit stretch, crop or letterbox",
                m.name, m.input.height, m.input.width
            )));
        };
        if height == 0 || width == 0 || !height.is_multiple_of(multiple) || !width.is_multiple_of(multiple) {
            return Err(invalid(format!("{height}x{width} is not a multiple of {multiple} in both directions, which {} needs", m.name)));
        }
        let mut package = self.clone();
        let up = m.decoder.upsample;
        package.manifest.input.height = height;
        package.manifest.input.width = width;
        package.manifest.prior.grid = [height / up, width / up];
        Ok(package)
    }

    /// The input size [`Fit::Native`] runs a `frame_width`×`frame_height` frame at: the frame's
    /// aspect ratio at about the exported pixel count, rounded to `input.size_multiple`, so the
    /// cost per frame stays about what the package was measured at. None when the package
    /// allows only its own size.
    pub fn native_size_for(&self, frame_width: u32, frame_height: u32) -> Option<(usize, usize)> {
        let m = &self.manifest;
        let multiple = m.input.size_multiple? as f64;
        let aspect = frame_width.max(1) as f64 / frame_height.max(1) as f64;
        let pixels = (m.input.height * m.input.width) as f64;
        let round = |v: f64| ((v / multiple).round().max(1.0) * multiple) as usize;
        let height = round((pixels / aspect).sqrt());
        Some((height, round(height as f64 * aspect)))
    }

    /// The package planned for `frame_width`×`frame_height` frames under [`Fit::Native`]: at
    /// [`native_size_for`](ModelPackage::native_size_for), or the error of
    /// [`at_input_size`](ModelPackage::at_input_size) for a package fixed at its exported size.
    pub fn at_native_size(&self, frame_width: u32, frame_height: u32) -> Result<Self> {
        let (height, width) = self.native_size_for(frame_width, frame_height).unwrap_or((self.manifest.input.height, self.manifest.input.width));
        self.at_input_size(height, width)
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
    if let Some(multiple) = m.input.size_multiple {
        if multiple == 0 || !m.input.height.is_multiple_of(multiple) || !m.input.width.is_multiple_of(multiple) || !multiple.is_multiple_of(m.decoder.upsample) {
            return Err(invalid(format!(
                "input.size_multiple {multiple} must divide the input size {}x{} and be a multiple of decoder.upsample {}",
                m.input.height, m.input.width, m.decoder.upsample
            )));
        }
    }
    if m.prior.codebook_size == 0 {
        return Err(invalid("prior.codebook_size must be at least 1".into()));
    }
    if let Inverse::Linear { weight, bias } = &m.maskige.inverse {
        let k = m.classes.len();
        if weight.len() != k || bias.len() != k {
            return Err(invalid(format!(
                "maskige.inverse (linear) has {} weight rows and {} biases for {k} classes",
                weight.len(),
                bias.len()
            )));
        }
        if weight.iter().flatten().chain(bias).any(|v| !v.is_finite()) {
            return Err(invalid("maskige.inverse (linear) holds a weight or bias that is not a finite number".into()));
        }
    }
    let mut referenced = vec![&m.prior.file, &m.decoder.file];
    if let Inverse::Onnx { file, .. } = &m.maskige.inverse {
        referenced.push(file);
    }
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
