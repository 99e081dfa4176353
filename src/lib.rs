//! gss: run Generative Semantic Segmentation (GSS) models on small machines.
//!
//! A frame's way through the crate, in the order of the modules that own each step:
//!
//! ```text
//! source (camera, files) ─Frame─► frame_path: Preprocess ─► engine::Backend (prior ─tokens─► decoder) ─► Postprocess (X⁻¹) ─MaskFrame─► subscribers / sink
//! ```
//!
//! [`model::ModelPackage::open`] validates a package (`model.json` + `prior.onnx` +
//! `decoder.onnx`) before anything runs. [`Segmenter`] drives the [`FramePath`] on the caller's
//! thread; [`Pipeline`] runs the same path on its own threads between a [`FrameSource`] and
//! channels of [`MaskFrame`]s.

pub mod engine;
pub mod error;
pub mod eval;
pub mod frame_path;
pub mod maskige;
pub mod model;
pub mod pipeline;
pub mod pool;
pub mod segmenter;
pub mod simd;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
pub use model::ModelPackage;
pub use pipeline::{MaskFrame, Pipeline};
pub use frame_path::{Fit, FramePath, StageTimings};
pub use segmenter::Segmenter;
pub use source::{Frame, FrameSource};

use std::path::Path;

/// Decodes an image file to RGB; a missing, corrupt or empty file is an error naming it.
pub fn load_rgb(path: &Path) -> Result<image::RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    if bytes.is_empty() {
        return Err(Error::Image { path: path.to_path_buf(), msg: "the file is empty".into() });
    }
    if bytes.starts_with(&[0xFF, 0xD8]) && !source::pixfmt::jpeg_is_complete(&bytes) {
        return Err(Error::Image { path: path.to_path_buf(), msg: "truncated JPEG (no end-of-image marker)".into() });
    }
    image::load_from_memory(&bytes)
        .map(|img| img.to_rgb8())
        .map_err(|e| Error::Image { path: path.to_path_buf(), msg: e.to_string() })
}
