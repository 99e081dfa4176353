//! One frame in, one class map out: preprocess → prior → decoder → X⁻¹ → resize to the frame.

use std::time::{Duration, Instant};

use image::{imageops, GrayImage, RgbImage};

use crate::engine::{cpu::CpuBackend, Backend};
use crate::error::Result;
use crate::maskige::Palette;
use crate::model::ModelPackage;

/// Time spent in each stage of the last frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub preprocess: Duration,
    pub prior: Duration,
    pub decoder: Duration,
    pub inverse: Duration,
    pub resize: Duration,
}

/// Segments frames with one model; every buffer is reused from frame to frame.
pub struct Segmenter {
    package: ModelPackage,
    backend: Box<dyn Backend>,
    palette: Palette,
    input: Vec<f32>,
    tokens: Vec<i64>,
    maskige: Vec<f32>,
    classes: GrayImage,
    pub timings: StageTimings,
}

impl Segmenter {
    /// The package's fp32 graphs (or `variant`) on the tract CPU backend.
    pub fn new(package: ModelPackage, variant: Option<&str>) -> Result<Self> {
        let backend = Box::new(CpuBackend::new(&package, variant)?);
        Ok(Self::with_backend(package, backend))
    }

    pub fn with_backend(package: ModelPackage, backend: Box<dyn Backend>) -> Self {
        let m = &package.manifest;
        let palette = Palette::new(&m.maskige.palette, m.decoder.output_range);
        let (h, w) = (m.input.height, m.input.width);
        Self {
            palette,
            backend,
            input: vec![0.0; 3 * h * w],
            tokens: Vec::new(),
            maskige: Vec::new(),
            classes: GrayImage::new(w as u32, h as u32),
            timings: StageTimings::default(),
            package,
        }
    }

    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    /// Token grid of the last frame (h×w, row-major).
    pub fn tokens(&self) -> &[i64] {
        &self.tokens
    }

    /// Class map (u8 ids) at the image's own size.
    pub fn segment(&mut self, image: &RgbImage) -> Result<GrayImage> {
        let m = &self.package.manifest;
        let (h, w) = (m.input.height, m.input.width);
        let t0 = Instant::now();
        let resized;
        let src = if image.dimensions() == (w as u32, h as u32) {
            image
        } else {
            resized = imageops::resize(image, w as u32, h as u32, imageops::FilterType::Triangle);
            &resized
        };
        normalize_into(src, m.input.mean, m.input.std, &mut self.input);
        let t1 = Instant::now();
        self.backend.run_prior(&self.input, &mut self.tokens)?;
        let t2 = Instant::now();
        self.backend.run_decoder(&self.tokens, &mut self.maskige)?;
        let t3 = Instant::now();
        self.palette.nearest_into(&self.maskige, &mut self.classes);
        let t4 = Instant::now();
        let out = if image.dimensions() == self.classes.dimensions() {
            self.classes.clone()
        } else {
            imageops::resize(&self.classes, image.width(), image.height(), imageops::FilterType::Nearest)
        };
        self.timings = StageTimings {
            preprocess: t1 - t0,
            prior: t2 - t1,
            decoder: t3 - t2,
            inverse: t4 - t3,
            resize: t4.elapsed(),
        };
        Ok(out)
    }
}

/// HWC u8 RGB → NCHW f32, `(x - mean) / std` per channel, into the caller's buffer.
pub fn normalize_into(image: &RgbImage, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    let plane = (image.width() * image.height()) as usize;
    let inv = std.map(|s| 1.0 / s);
    for (i, px) in image.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 - mean[c]) * inv[c];
        }
    }
}
