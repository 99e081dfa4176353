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
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}: not a valid model manifest")]
    ManifestParse {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error("{path}: format {found:?} is not supported (this gss reads gss-model/1); re-export the model with a gss-convert of the same major version")]
    UnsupportedFormat { path: PathBuf, found: String },

    #[error("{path}: invalid manifest: {msg}")]
    ManifestInvalid { path: PathBuf, msg: String },

    #[error("{path}: listed in model.json but missing; restore the file or re-export the package")]
    MissingFile { path: PathBuf },

    #[error("{path}: {actual} bytes, model.json says {expected}: the file is truncated or was replaced; restore it or re-export the package")]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    #[error("{path}: sha256 {actual} does not match model.json ({expected}): the file is corrupt or was replaced; restore it or re-export the package")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("{path}: the ONNX graph cannot be loaded")]
    Graph { path: PathBuf, source: Cause },

    #[error("model has no variant {name:?}; available: {available}")]
    UnknownVariant { name: String, available: String },

    /// An image file gss cannot use. `source` is the decoder's own error when the decoder refused
    /// the file; our checks before decoding (an empty file, a JPEG cut short) have none.
    #[error("{path}: {problem}{}; replace or remove the file", with_cause(.source))]
    Image {
        path: PathBuf,
        problem: &'static str,
        source: Option<image::ImageError>,
    },

    #[error("inference failed in the {stage}")]
    Inference { stage: &'static str, source: Cause },

    /// A caller handed a stage a buffer of the wrong size, or a stage it was not built for.
    #[error("{stage}: {msg}")]
    Usage { stage: &'static str, msg: String },

    #[error(
        "{path}: the graph disagrees with model.json: {msg}; re-export the package so both match"
    )]
    GraphMismatch { path: PathBuf, msg: String },

    #[error("the {backend} backend cannot run op {op} (node {node:?}); use --backend cpu, or re-export without it")]
    UnsupportedOp {
        backend: &'static str,
        op: String,
        node: String,
    },

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
    CorruptFrame {
        source_name: String,
        frame: u64,
        #[source]
        reason: Box<Error>,
    },

    /// A camera buffer that does not hold a whole picture in its pixel format (a truncated
    /// transfer, rows longer than the buffer, malformed MJPG). `source` is the JPEG decoder's
    /// error when it was the decoder that refused the buffer.
    #[error("{format} buffer: {problem}{}", with_cause(.source))]
    FrameData {
        format: crate::pixel_format::PixelFormat,
        problem: String,
        source: Option<image::ImageError>,
    },

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
    NotFound {
        what: String,
        looked: String,
        hint: String,
    },

    #[error("pipeline: {msg}")]
    Pipeline { msg: String },

    #[error("pipeline stage {stage} panicked: {msg}")]
    StagePanicked { stage: String, msg: String },

    /// A Rerun recording that cannot be opened or logged to (feature `rerun`), or a build
    /// without that feature.
    #[error("rerun {target}: {msg}")]
    Rerun { target: String, msg: String },

    /// The zenoh sink: a session, publisher or queryable zenoh would not give us.
    #[error("zenoh: {what}: {msg}")]
    Zenoh { what: String, msg: String },

    #[error("{option}: {msg}")]
    InvalidOption { option: &'static str, msg: String },

    /// A frame handed over in the caller's memory ([`crate::frame_path::ImageView`]) whose
    /// buffer does not hold the size it claims.
    #[error("frame: {msg}")]
    BadFrame { msg: String },

    #[error("{addr}: cannot listen for the live view: {source}; choose another ADDR:PORT (port 0 picks a free one)")]
    ServeBind {
        addr: String,
        source: std::io::Error,
    },

    /// The live view ([`crate::sink::serve`]) could not start or failed, or this build has none.
    #[error("live view: {msg}")]
    Serve {
        msg: String,
        source: Option<std::io::Error>,
    },
}

impl Error {
    /// A frame-level failure a stream logs, counts and moves past (the next frame may be fine).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            Error::CorruptFrame { .. }
                | Error::SourceLost { .. }
                | Error::Image { .. }
                | Error::FrameData { .. }
        )
    }
}

/// `message: cause: cause ...`, the whole chain on one line, for logs and tests.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        // Some messages (ours for sources and images, the image crate's) already say their
        // cause; print each text once.
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
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
        Error::Inference {
            stage,
            source: cause.into(),
        }
    }
}

/// ": the decoder's message" after a problem the decoder reported, nothing after our own checks.
fn with_cause(cause: &Option<image::ImageError>) -> String {
    cause
        .as_ref()
        .map_or_else(String::new, |e| format!(": {e}"))
}
