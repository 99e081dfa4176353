//! The library's one error type: every variant names the file, image or stage and says what to do.
//! Causes from other crates (tract, serde, the OS) are kept as `source()`, not flattened into the
//! message, so a caller can print the chain (the `gss` binary prints `message: cause: cause`).

use std::path::PathBuf;

/// A cause from a crate whose own error type we do not expose (tract's errors are `anyhow`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid model manifest")]
    ManifestParse { path: PathBuf, source: serde_json::Error },

    #[error("{path}: format {found:?} is not supported (this gss reads gss-model/1); re-export the model with a gss-convert of the same major version")]
    UnsupportedFormat { path: PathBuf, found: String },

    #[error("{path}: invalid manifest: {msg}")]
    ManifestInvalid { path: PathBuf, msg: String },

    #[error("{path}: listed in model.json but missing; restore the file or re-export the package")]
    MissingFile { path: PathBuf },

    #[error("{path}: {actual} bytes, model.json says {expected}: the file is truncated or was replaced; restore it or re-export the package")]
    SizeMismatch { path: PathBuf, expected: u64, actual: u64 },

    #[error("{path}: sha256 {actual} does not match model.json ({expected}): the file is corrupt or was replaced; restore it or re-export the package")]
    HashMismatch { path: PathBuf, expected: String, actual: String },

    #[error("{path}: the ONNX graph cannot be loaded")]
    Graph { path: PathBuf, source: Cause },

    #[error("model has no variant {name:?}; available: {available}")]
    UnknownVariant { name: String, available: String },

    #[error("{path}: cannot decode image: {msg}")]
    Image { path: PathBuf, msg: String },

    #[error("inference failed in the {stage}")]
    Inference { stage: &'static str, source: Cause },

    /// A caller handed a stage a buffer of the wrong size, or a stage it was not built for.
    #[error("{stage}: {msg}")]
    Usage { stage: &'static str, msg: String },

    #[error("{path}: the graph disagrees with model.json: {msg}; re-export the package so both match")]
    GraphMismatch { path: PathBuf, msg: String },

    #[error("the {backend} backend cannot run op {op} (node {node:?}); use --backend cpu, or re-export without it")]
    UnsupportedOp { backend: &'static str, op: String, node: String },

    #[error("GPU: {msg}")]
    Gpu { msg: String },

    #[error("{source_name}: cannot open: {msg}")]
    SourceOpen { source_name: String, msg: String },

    #[error("{source_name}: the device offers no format we can use: {msg}")]
    SourceFormat { source_name: String, msg: String },

    #[error("{source_name}: corrupt frame skipped: {msg}")]
    CorruptFrame { source_name: String, msg: String },

    #[error("{source_name}: lost ({msg}); retrying")]
    SourceLost { source_name: String, msg: String },

    #[error("pipeline: {msg}")]
    Pipeline { msg: String },

    #[error("pipeline stage {stage} panicked: {msg}")]
    StagePanicked { stage: String, msg: String },

    #[error("{option}: {msg}")]
    InvalidOption { option: &'static str, msg: String },
}

impl Error {
    /// A frame-level failure a stream logs, counts and moves past (the next frame may be fine).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Error::CorruptFrame { .. } | Error::SourceLost { .. } | Error::Image { .. })
    }
}

/// `message: cause: cause ...`, the whole chain on one line, for logs and tests.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

impl Error {
    /// [`chain`] of this error.
    pub fn chain(&self) -> String {
        chain(self)
    }

    /// A tract (or other `anyhow`) failure while running `stage`.
    pub fn inference(stage: &'static str, cause: impl Into<Cause>) -> Self {
        Error::Inference { stage, source: cause.into() }
    }
}
