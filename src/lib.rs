//! gss: run Generative Semantic Segmentation (GSS) models on small machines.
//!
//! A model package (`model.json` + `prior.onnx` + `decoder.onnx`) is validated by
//! [`model::ModelPackage::open`], then [`Segmenter`] turns an RGB image into a class map:
//! preprocess → prior (tokens) → decoder (maskige) → nearest palette colour → resize.

pub mod engine;
pub mod error;
pub mod eval;
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
pub use segmenter::{Segmenter, StageTimings};
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
