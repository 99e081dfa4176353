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

    /// An image file gss cannot use. `source` is the decoder's own error when the decoder refused
    /// the file; our checks before decoding (an empty file, a JPEG cut short) have none.
    #[error("{path}: {problem}{}; replace or remove the file", with_cause(.source))]
    Image { path: PathBuf, problem: &'static str, source: Option<image::ImageError> },

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

    /// One frame of a source could not be used; a stream logs it, counts it and goes on.
    /// `reason` is why: the file's [`Error::Image`] or [`Error::Io`], a camera's [`Error::FrameData`]
    /// (also `source()`, as the box: match the field to get at the variant).
    #[error("{source_name}: frame {frame} skipped: {reason}")]
    CorruptFrame { source_name: String, frame: u64, #[source] reason: Box<Error> },

    /// A camera buffer that does not hold a whole picture in its pixel format (a truncated
    /// transfer, rows longer than the buffer, malformed MJPG). `source` is the JPEG decoder's
    /// error when it was the decoder that refused the buffer.
    #[error("{format} buffer: {problem}{}", with_cause(.source))]
    FrameData { format: crate::source::PixelFormat, problem: String, source: Option<image::ImageError> },

    #[error("{source_name}: lost ({msg}); retrying")]
    SourceLost { source_name: String, msg: String },

    /// A dataset label file that cannot be scored against: missing, or not a class-id PNG.
    #[error("{path}: {msg}")]
    Label { path: PathBuf, msg: String },

    /// A label and a prediction that cannot be compared pixel by pixel.
    #[error("label does not fit the prediction: {msg}")]
    LabelMismatch { msg: String },

    /// Something gss looks for in several places ([`crate::locate`]) is in none of them.
    #[error("{what}: not found; looked at {looked}; {hint}")]
    NotFound { what: String, looked: String, hint: String },

    #[error("pipeline: {msg}")]
    Pipeline { msg: String },
}

impl Error {
    /// A frame-level failure a stream logs, counts and moves past (the next frame may be fine).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            Error::CorruptFrame { .. } | Error::SourceLost { .. } | Error::Image { .. } | Error::FrameData { .. }
        )
    }
}

/// ": the decoder's message" after a problem the decoder reported, nothing after our own checks.
fn with_cause(cause: &Option<image::ImageError>) -> String {
    cause.as_ref().map_or_else(String::new, |e| format!(": {e}"))
}
