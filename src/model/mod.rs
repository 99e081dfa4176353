//! Model packages: `model.json` parsing and validation, and the file checks (presence, size, sha256).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod fit;
pub use fit::Fit;

pub const FORMAT_MAJOR: &str = "1";

/// The largest model input side (pixels) a package may state: far beyond any edge model, and
/// small enough that no size derived from it overflows.
pub const MAX_INPUT_SIDE: usize = 8192;
/// The largest decoder upsampling factor and codebook a package may state.
pub const MAX_UPSAMPLE: usize = 256;
pub const MAX_CODEBOOK: usize = 1 << 20;
/// model.json is a few kilobytes; a larger file is not one.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

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
    Linear {
        weight: Vec<[f32; 3]>,
        bias: Vec<f32>,
    },
    /// A graph in the package: maskige 1×3×H×W in, int64 class ids H×W out.
    Onnx {
        file: String,
        input: String,
        output: String,
    },
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
        Ok(Prior {
            file: p.file,
            input: p.input,
            output: p.output,
            emits,
            grid: p.grid,
            codebook_size: p.codebook_size,
        })
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

impl Manifest {
    /// Parses and validates the text of a model.json (`path` names it in errors); the files it
    /// lists are not looked at ([`ModelPackage::open`] checks them).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|source| Error::ManifestParse {
                path: path.to_path_buf(),
                source,
            })?;
        validate(&manifest, path)?;
        Ok(manifest)
    }
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
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let len = std::fs::metadata(&path).map_err(io)?.len();
        if len > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestInvalid {
                path: path.clone(),
                msg: format!("{len} bytes; a model.json is at most {MAX_MANIFEST_BYTES} (is this the package's manifest?)"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let manifest = Manifest::parse(&text, &path)?;
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
        let invalid = |msg: String| Error::InvalidOption {
            option: "input size",
            msg,
        };
        let Some(multiple) = m.input.size_multiple else {
            return Err(invalid(format!(
                "{} was exported for {}x{} only (model.json has no input.size_multiple); use --fit stretch, crop or letterbox",
                m.name, m.input.height, m.input.width
            )));
        };
        if height > MAX_INPUT_SIDE || width > MAX_INPUT_SIDE {
            return Err(invalid(format!(
                "{height}x{width}: the model input is at most {MAX_INPUT_SIDE} pixels a side"
            )));
        }
        if height == 0
            || width == 0
            || !height.is_multiple_of(multiple)
            || !width.is_multiple_of(multiple)
        {
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
        let (height, width) = self
            .native_size_for(frame_width, frame_height)
            .unwrap_or((self.manifest.input.height, self.manifest.input.width));
        self.at_input_size(height, width)
    }

    /// The package and the fit to run `frame_size` frames with under `fit` (the package's own
    /// choice when None): [`Fit::Native`] reopens the package at the frame's aspect ratio
    /// ([`at_native_size`](ModelPackage::at_native_size)), or stretches when the frame size is
    /// not known yet.
    pub fn fitted(self, fit: Option<Fit>, frame_size: Option<(u32, u32)>) -> Result<(Self, Fit)> {
        let fit = fit.unwrap_or(self.manifest.input.fit);
        if fit != Fit::Native {
            return Ok((self, fit));
        }
        let Some((w, h)) = frame_size else {
            return Ok((self, Fit::Stretch));
        };
        let native = self.at_native_size(w, h)?;
        let input = &native.manifest.input;
        log::info!(
            "fit native: {w}x{h} frames run at {}x{} (exported at {}x{})",
            input.width,
            input.height,
            self.manifest.input.width,
            self.manifest.input.height
        );
        Ok((native, Fit::Native))
    }

    /// (prior, decoder) file paths of the fp32 graphs or of a named variant.
    pub fn graph_files(&self, variant: Option<&str>) -> Result<(PathBuf, PathBuf)> {
        match variant {
            None | Some("fp32") => Ok((
                self.dir.join(&self.manifest.prior.file),
                self.dir.join(&self.manifest.decoder.file),
            )),
            Some(name) => {
                let v = self
                    .manifest
                    .variants
                    .get(name)
                    .ok_or_else(|| Error::UnknownVariant {
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
    let invalid = |msg: String| Error::ManifestInvalid {
        path: path.to_path_buf(),
        msg,
    };
    let (kind, version) = m.format.split_once('/').unwrap_or(("", ""));
    if kind != "gss-model" || version.split('.').next() != Some(FORMAT_MAJOR) {
        return Err(Error::UnsupportedFormat {
            path: path.to_path_buf(),
            found: m.format.clone(),
        });
    }
    if m.classes.is_empty() || m.classes.len() > 255 {
        return Err(invalid(format!(
            "{} classes; expected 1..=255",
            m.classes.len()
        )));
    }
    if m.classes
        .iter()
        .enumerate()
        .any(|(i, c)| c.id as usize != i)
    {
        return Err(invalid("classes must have ids 0..K-1 in order".into()));
    }
    if m.maskige.palette.len() != m.classes.len() {
        return Err(invalid(format!(
            "maskige.palette has {} colours for {} classes",
            m.maskige.palette.len(),
            m.classes.len()
        )));
    }
    // `!(s > 0)` and not `s <= 0`: a NaN fails it too.
    if m.input.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(invalid(format!(
            "input.std {:?} must be finite and positive",
            m.input.std
        )));
    }
    if m.input.mean.iter().any(|s| !s.is_finite()) {
        return Err(invalid(format!(
            "input.mean {:?} must be finite",
            m.input.mean
        )));
    }
    let [lo, hi] = m.decoder.output_range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(invalid(format!(
            "decoder.output_range [{lo}, {hi}] must be finite, low before high"
        )));
    }
    for (field, value, max) in [
        ("input.height", m.input.height, MAX_INPUT_SIDE),
        ("input.width", m.input.width, MAX_INPUT_SIDE),
        ("decoder.upsample", m.decoder.upsample, MAX_UPSAMPLE),
        ("prior.codebook_size", m.prior.codebook_size, MAX_CODEBOOK),
        ("prior.grid[0]", m.prior.grid[0], MAX_INPUT_SIDE),
        ("prior.grid[1]", m.prior.grid[1], MAX_INPUT_SIDE),
        (
            "input.size_multiple",
            m.input.size_multiple.unwrap_or(1),
            MAX_INPUT_SIDE,
        ),
    ] {
        if value == 0 || value > max {
            return Err(invalid(format!("{field} is {value}; expected 1..={max}")));
        }
    }
    let [gh, gw] = m.prior.grid;
    // A reach wider than the grid is legitimate (reuse then re-decodes everything); a reach
    // beyond any grid is not a number the reuse arithmetic should see.
    if let Some(halo) = m.decoder.halo.filter(|h| *h > MAX_INPUT_SIDE) {
        return Err(invalid(format!(
            "decoder.halo is {halo}; expected at most {MAX_INPUT_SIDE}"
        )));
    }
    // Checked: the bounds above keep these products small, and a crafted grid must not wrap.
    let up = m.decoder.upsample;
    if gh.checked_mul(up) != Some(m.input.height) || gw.checked_mul(up) != Some(m.input.width) {
        return Err(invalid(format!(
            "prior.grid {gh}x{gw} × decoder.upsample {} != input {}x{}",
            m.decoder.upsample, m.input.height, m.input.width
        )));
    }
    if let Some(multiple) = m.input.size_multiple {
        if multiple == 0
            || !m.input.height.is_multiple_of(multiple)
            || !m.input.width.is_multiple_of(multiple)
            || !multiple.is_multiple_of(m.decoder.upsample)
        {
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
            return Err(invalid(
                "maskige.inverse (linear) holds a weight or bias that is not a finite number"
                    .into(),
            ));
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
            return Err(invalid(format!(
                "{f} is referenced but has no entry under files (no sha256)"
            )));
        }
    }
    for name in m.files.keys() {
        if !inside_package(name) {
            return Err(invalid(format!(
                "file {name:?} is not a plain path inside the package folder (no absolute path, no ..)"
            )));
        }
    }
    Ok(())
}

/// A relative path of plain names: joined to the package folder, it stays inside it.
fn inside_package(name: &str) -> bool {
    use std::path::Component;
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn verify_file(path: &Path, entry: &FileEntry) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|_| Error::MissingFile {
        path: path.to_path_buf(),
    })?;
    if meta.len() != entry.bytes {
        return Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            expected: entry.bytes,
            actual: meta.len(),
        });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(&entry.sha256) {
        return Err(Error::HashMismatch {
            path: path.to_path_buf(),
            expected: entry.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture package's manifest with one field replaced (a JSON pointer), validated.
    fn validate_with(pointer: &str, value: serde_json::Value) -> std::result::Result<(), String> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny/model.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        *json
            .pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer} in the fixture")) = value;
        let manifest: Manifest = serde_json::from_value(json).map_err(|e| e.to_string())?;
        validate(&manifest, &path).map_err(|e| e.to_string())
    }

    #[test]
    fn the_fixture_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny");
        ModelPackage::open(&path).unwrap();
        validate_with("/name", "x".into()).unwrap();
    }

    #[test]
    fn sizes_that_would_wrap_or_exhaust_memory_are_refused_by_field() {
        // 2^62 × 4 wraps to 0 in 64 bits: it must not pass as a match.
        let err = validate_with(
            "/prior/grid",
            serde_json::json!([4611686018427387904u64, 1]),
        )
        .unwrap_err();
        assert!(err.contains("prior.grid[0]"), "{err}");
        for (pointer, field) in [
            ("/input/height", "input.height"),
            ("/decoder/upsample", "decoder.upsample"),
            ("/prior/codebook_size", "prior.codebook_size"),
        ] {
            let err = validate_with(pointer, serde_json::json!(1u64 << 40)).unwrap_err();
            assert!(err.contains(field), "{pointer}: {err}");
            let err = validate_with(pointer, serde_json::json!(0)).unwrap_err();
            assert!(err.contains(field), "{pointer}: {err}");
        }
    }

    #[test]
    fn std_and_output_range_must_be_finite_and_sensible() {
        // JSON has no NaN literal; a number too large for f32 parses as infinity.
        let err = validate_with("/input/std", serde_json::json!([1.0, 1e300, 1.0])).unwrap_err();
        assert!(err.contains("input.std"), "{err}");
        let err = validate_with("/input/std", serde_json::json!([1.0, 0.0, 1.0])).unwrap_err();
        assert!(err.contains("input.std"), "{err}");
        let err =
            validate_with("/decoder/output_range", serde_json::json!([1.0, -1.0])).unwrap_err();
        assert!(err.contains("decoder.output_range"), "{err}");
    }

    #[test]
    fn file_names_stay_inside_the_package() {
        for name in ["../secret.onnx", "/etc/passwd", "a/../../b", ""] {
            assert!(!inside_package(name), "{name}");
        }
        assert!(inside_package("prior.onnx") && inside_package("int8/prior.onnx"));
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny/model.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let entry = json["files"][json["prior"]["file"].as_str().unwrap()].clone();
        json["files"]["../../outside.onnx"] = entry;
        json["prior"]["file"] = "../../outside.onnx".into();
        let manifest: Manifest = serde_json::from_value(json).unwrap();
        let err = validate(&manifest, &path).unwrap_err().to_string();
        assert!(
            err.contains("../../outside.onnx") && err.contains("inside the package"),
            "{err}"
        );
    }
}
