//! The library's one error type: every variant names the file, image or stage and says what to do.

use std::path::PathBuf;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{path}: not a valid model manifest: {msg}")]
    ManifestParse { path: PathBuf, msg: String },

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

    #[error("{path}: the ONNX graph cannot be loaded: {msg}")]
    Graph { path: PathBuf, msg: String },

    #[error("model has no variant {name:?}; available: {available}")]
    UnknownVariant { name: String, available: String },

    #[error("{path}: cannot decode image: {msg}")]
    Image { path: PathBuf, msg: String },

    #[error("inference failed in the {stage}: {msg}")]
    Inference { stage: &'static str, msg: String },

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
}

impl Error {
    /// A frame-level failure a stream logs, counts and moves past (the next frame may be fine).
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Error::CorruptFrame { .. } | Error::SourceLost { .. } | Error::Image { .. })
    }
}
