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

pub mod dataset;
pub mod engine;
pub mod error;
pub mod eval;
pub mod frame_path;
pub mod locate;
pub mod maskige;
pub mod model;
pub mod pipeline;
pub mod pixel_format;
pub mod pool;
pub mod process;
pub mod segmenter;
pub use gss_kernels::simd;
pub mod sink;
pub mod source;
pub mod temporal;

pub use error::{Error, Result};
pub use frame_path::{Fit, FramePath, StageTimings};
pub use model::ModelPackage;
pub use pipeline::{MaskFrame, Pipeline};
pub use segmenter::Segmenter;
pub use source::{load_rgb, Frame, FrameSource};
