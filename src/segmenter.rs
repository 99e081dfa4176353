//! One frame in, one class map out: preprocess → prior → decoder → X⁻¹ → resize to the frame.

use std::time::{Duration, Instant};

use image::{imageops, GrayImage, RgbImage};

use crate::engine::cpu::{CpuBackend, OnnxInverse};
use crate::engine::Backend;
use crate::error::Result;
use crate::maskige::Palette;
use crate::model::{Manifest, ModelPackage};

/// Time spent in each stage of the last frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimings {
    pub preprocess: Duration,
    pub prior: Duration,
    pub decoder: Duration,
    pub inverse: Duration,
    pub resize: Duration,
}

impl StageTimings {
    /// Time in the model and its pre/post-processing, queues excluded.
    pub fn total(&self) -> Duration {
        self.preprocess + self.prior + self.decoder + self.inverse + self.resize
    }
}

/// Image → the prior's input: resize to the model's size (when the frame differs), then
/// `(x - mean) / std` into NCHW f32, in a buffer reused from frame to frame.
pub struct Preprocess {
    size: (u32, u32),
    mean: [f32; 3],
    std: [f32; 3],
    input: Vec<f32>,
}

impl Preprocess {
    pub fn new(manifest: &Manifest) -> Self {
        let (h, w) = (manifest.input.height, manifest.input.width);
        Self { size: (w as u32, h as u32), mean: manifest.input.mean, std: manifest.input.std, input: vec![0.0; 3 * h * w] }
    }

    pub fn run(&mut self, image: &RgbImage) -> &[f32] {
        let (w, h) = self.size;
        if image.dimensions() == self.size {
            normalize_into(image, self.mean, self.std, &mut self.input);
        } else {
            let resized = imageops::resize(image, w, h, imageops::FilterType::Triangle);
            normalize_into(&resized, self.mean, self.std, &mut self.input);
        }
        &self.input
    }
}

/// Maskige → class map at the frame's size: X⁻¹ at the model's size (nearest palette colour, or
/// the package's ONNX inverse), then a nearest-neighbour resize when the frame differs. Buffers
/// are reused from frame to frame.
pub struct Postprocess {
    palette: Palette,
    onnx: Option<OnnxInverse>,
    classes: GrayImage,
}

impl Postprocess {
    pub fn new(package: &ModelPackage) -> Result<Self> {
        let m = &package.manifest;
        let palette = Palette::new(&m.maskige.palette, m.decoder.output_range);
        let onnx = OnnxInverse::new(package)?;
        Ok(Self { palette, onnx, classes: GrayImage::new(m.input.width as u32, m.input.height as u32) })
    }

    /// Writes the class map for a `frame_size` (width, height) frame into `out`; returns the time
    /// spent in X⁻¹ and in the resize.
    pub fn run(&mut self, maskige: &[f32], frame_size: (u32, u32), out: &mut GrayImage) -> Result<(Duration, Duration)> {
        let t0 = Instant::now();
        match &mut self.onnx {
            Some(graph) => graph.run(maskige, &mut self.classes)?,
            None => self.palette.nearest_into(maskige, &mut self.classes),
        }
        let t1 = Instant::now();
        if out.dimensions() != frame_size {
            *out = GrayImage::new(frame_size.0, frame_size.1);
        }
        if frame_size == self.classes.dimensions() {
            out.copy_from_slice(&self.classes);
        } else {
            resize_nearest_into(&self.classes, out);
        }
        Ok((t1 - t0, t1.elapsed()))
    }
}

/// Segments frames with one model; every buffer is reused from frame to frame.
pub struct Segmenter {
    package: ModelPackage,
    backend: Box<dyn Backend>,
    pre: Preprocess,
    post: Postprocess,
    tokens: Vec<i64>,
    maskige: Vec<f32>,
    pub timings: StageTimings,
}

impl Segmenter {
    /// The package's fp32 graphs (or `variant`) on the tract CPU backend.
    pub fn new(package: ModelPackage, variant: Option<&str>) -> Result<Self> {
        let backend = Box::new(CpuBackend::new(&package, variant)?);
        Self::with_backend(package, backend)
    }

    pub fn with_backend(package: ModelPackage, backend: Box<dyn Backend>) -> Result<Self> {
        Ok(Self {
            pre: Preprocess::new(&package.manifest),
            post: Postprocess::new(&package)?,
            backend,
            tokens: Vec::new(),
            maskige: Vec::new(),
            timings: StageTimings::default(),
            package,
        })
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

    /// Class map (u8 ids) at the image's own size, in a new image.
    pub fn segment(&mut self, image: &RgbImage) -> Result<GrayImage> {
        let mut out = GrayImage::new(image.width(), image.height());
        self.segment_into(image, &mut out)?;
        Ok(out)
    }

    /// Class map at the image's own size, written into the caller's buffer (reallocated only when
    /// the frame size changes), so a stream allocates no output per frame.
    pub fn segment_into(&mut self, image: &RgbImage, out: &mut GrayImage) -> Result<()> {
        let t0 = Instant::now();
        let input = self.pre.run(image);
        let t1 = Instant::now();
        self.backend.run_prior(input, &mut self.tokens)?;
        let t2 = Instant::now();
        self.backend.run_decoder(&self.tokens, &mut self.maskige)?;
        let t3 = Instant::now();
        let (inverse, resize) = self.post.run(&self.maskige, image.dimensions(), out)?;
        self.timings = StageTimings { preprocess: t1 - t0, prior: t2 - t1, decoder: t3 - t2, inverse, resize };
        Ok(())
    }
}

/// Nearest-neighbour resize of a class map (pixel centres), into the caller's buffer.
pub fn resize_nearest_into(src: &GrayImage, dst: &mut GrayImage) {
    let (sw, sh) = (src.width() as u64, src.height() as u64);
    let (dw, dh) = (dst.width() as u64, dst.height() as u64);
    let src_raw = src.as_raw();
    for y in 0..dh {
        let sy = ((2 * y + 1) * sh / (2 * dh)).min(sh - 1);
        let row = &src_raw[(sy * sw) as usize..((sy + 1) * sw) as usize];
        for x in 0..dw {
            let sx = ((2 * x + 1) * sw / (2 * dw)).min(sw - 1);
            dst.as_mut()[(y * dw + x) as usize] = row[sx as usize];
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_resize_samples_pixel_centres() {
        let src = GrayImage::from_raw(2, 2, vec![0, 1, 2, 3]).unwrap();
        let mut dst = GrayImage::new(4, 2);
        resize_nearest_into(&src, &mut dst);
        assert_eq!(dst.as_raw(), &[0, 0, 1, 1, 2, 2, 3, 3]);
        let mut small = GrayImage::new(1, 1);
        resize_nearest_into(&src, &mut small);
        assert_eq!(small.as_raw(), &[3]);
    }
}
