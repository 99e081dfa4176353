//! gss: run Generative Semantic Segmentation (GSS) models on small machines.
//!
//! A model package (`model.json` + `prior.onnx` + `decoder.onnx`) is validated by
//! [`model::ModelPackage::open`], then [`Segmenter`] turns an RGB image into a class map:
//! preprocess → prior (tokens) → decoder (maskige) → nearest palette colour → resize.

pub mod dataset;
pub mod engine;
pub mod error;
pub mod eval;
pub mod locate;
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
pub use source::{load_rgb, Frame, FrameSource};
