//! One frame in, one class map out: preprocess → prior → decoder → X⁻¹ → resize to the frame.

use std::time::{Duration, Instant};

use image::{GrayImage, RgbImage};

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

/// Image → the prior's input: a bilinear resize to the model's size (when the frame differs) and
/// `(x - mean) / std`, in one pass into NCHW f32, in a buffer reused from frame to frame.
pub struct Preprocess {
    size: (u32, u32),
    mean: [f32; 3],
    std: [f32; 3],
    input: Vec<f32>,
    /// Sampling tables for the last frame size seen; rebuilt only when it changes.
    maps: Option<((u32, u32), AxisMap, AxisMap)>,
}

impl Preprocess {
    pub fn new(manifest: &Manifest) -> Self {
        let (h, w) = (manifest.input.height, manifest.input.width);
        Self { size: (w as u32, h as u32), mean: manifest.input.mean, std: manifest.input.std, input: vec![0.0; 3 * h * w], maps: None }
    }

    pub fn run(&mut self, image: &RgbImage) -> &[f32] {
        let (w, h) = self.size;
        if image.dimensions() == self.size {
            normalize_into(image, self.mean, self.std, &mut self.input);
        } else {
            if self.maps.as_ref().is_none_or(|(dims, _, _)| *dims != image.dimensions()) {
                let (iw, ih) = image.dimensions();
                self.maps = Some(((iw, ih), AxisMap::new(iw as usize, w as usize), AxisMap::new(ih as usize, h as usize)));
            }
            if let Some((_, xs, ys)) = &self.maps {
                resize_normalize_into(image, xs, ys, self.mean, self.std, &mut self.input);
            }
        }
        &self.input
    }
}

/// Where each output index samples one axis of the source: two neighbours and the weight of the
/// second, as PyTorch's bilinear `interpolate(align_corners=False)` (no antialiasing), which is
/// what `gss_convert` trains and evaluates with.
#[derive(Debug, Clone)]
pub struct AxisMap {
    first: Vec<u32>,
    second: Vec<u32>,
    weight: Vec<f32>,
}

impl AxisMap {
    pub fn new(src_len: usize, dst_len: usize) -> Self {
        let scale = src_len as f64 / dst_len as f64;
        let (mut first, mut second, mut weight) = (Vec::with_capacity(dst_len), Vec::with_capacity(dst_len), Vec::with_capacity(dst_len));
        for i in 0..dst_len {
            let src = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(src_len - 1);
            let i1 = (i0 + 1).min(src_len - 1);
            first.push(i0 as u32);
            second.push(i1 as u32);
            weight.push((src - i0 as f64) as f32);
        }
        Self { first, second, weight }
    }
}

/// Bilinear resize of an HWC u8 image (`xs`, `ys` map the output's columns and rows) fused with
/// `(x - mean) / std` into NCHW f32, into the caller's buffer: no intermediate image.
pub fn resize_normalize_into(image: &RgbImage, xs: &AxisMap, ys: &AxisMap, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    crate::simd::dispatch!(resize_normalize_portable(image, xs, ys, mean, std, out))
}

#[inline(always)]
fn resize_normalize_portable(image: &RgbImage, xs: &AxisMap, ys: &AxisMap, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    let (ow, oh) = (xs.first.len(), ys.first.len());
    let plane = ow * oh;
    debug_assert_eq!(out.len(), 3 * plane);
    let src = image.as_raw();
    let stride = image.width() as usize * 3;
    let inv = std.map(|s| 1.0 / s);
    for (y, ((&y0, &y1), &wy)) in ys.first.iter().zip(&ys.second).zip(&ys.weight).enumerate() {
        let top = &src[y0 as usize * stride..][..stride];
        let bottom = &src[y1 as usize * stride..][..stride];
        for (x, ((&x0, &x1), &wx)) in xs.first.iter().zip(&xs.second).zip(&xs.weight).enumerate() {
            let (a, b) = (x0 as usize * 3, x1 as usize * 3);
            for c in 0..3 {
                let t = top[a + c] as f32 + (top[b + c] as f32 - top[a + c] as f32) * wx;
                let u = bottom[a + c] as f32 + (bottom[b + c] as f32 - bottom[a + c] as f32) * wx;
                out[c * plane + y * ow + x] = (t + (u - t) * wy - mean[c]) * inv[c];
            }
        }
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
    crate::simd::dispatch!(normalize_portable(image, mean, std, out))
}

#[inline(always)]
fn normalize_portable(image: &RgbImage, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
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

    /// PyTorch's bilinear (align_corners=False) for one output value, in f64, pixel by pixel.
    fn reference(image: &RgbImage, ow: usize, oh: usize, x: usize, y: usize, c: usize) -> f64 {
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let src = |i: usize, n: usize, m: usize| ((i as f64 + 0.5) * n as f64 / m as f64 - 0.5).max(0.0);
        let (sx, sy) = (src(x, iw, ow), src(y, ih, oh));
        let (x0, y0) = ((sx.floor() as usize).min(iw - 1), (sy.floor() as usize).min(ih - 1));
        let (x1, y1) = ((x0 + 1).min(iw - 1), (y0 + 1).min(ih - 1));
        let (wx, wy) = (sx - x0 as f64, sy - y0 as f64);
        let p = |x: usize, y: usize| image.get_pixel(x as u32, y as u32)[c] as f64;
        let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
        let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
        top * (1.0 - wy) + bottom * wy
    }

    fn noise_image(w: u32, h: u32) -> RgbImage {
        let mut state = 99u32;
        RgbImage::from_fn(w, h, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            image::Rgb([(state >> 24) as u8, (state >> 16) as u8, (state >> 8) as u8])
        })
    }

    #[test]
    fn fused_resize_matches_the_pytorch_formula_up_and_down() {
        let (mean, std) = ([120.0, 110.0, 100.0], [60.0, 55.0, 50.0]);
        for (iw, ih, ow, oh) in [(37, 23, 16, 8), (10, 7, 31, 19), (640, 480, 64, 32), (5, 5, 5, 3)] {
            let image = noise_image(iw, ih);
            let (xs, ys) = (AxisMap::new(iw as usize, ow), AxisMap::new(ih as usize, oh));
            let mut out = vec![0f32; 3 * ow * oh];
            resize_normalize_into(&image, &xs, &ys, mean, std, &mut out);
            for c in 0..3 {
                for y in 0..oh {
                    for x in 0..ow {
                        let want = (reference(&image, ow, oh, x, y, c) - mean[c] as f64) / std[c] as f64;
                        let got = out[c * ow * oh + y * ow + x] as f64;
                        assert!((got - want).abs() < 1e-4, "{iw}x{ih} -> {ow}x{oh} c{c} ({x},{y}): {got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn halving_averages_each_two_by_two_block() {
        let image = noise_image(8, 4);
        let (xs, ys) = (AxisMap::new(8, 4), AxisMap::new(4, 2));
        let mut out = vec![0f32; 3 * 4 * 2];
        resize_normalize_into(&image, &xs, &ys, [0.0; 3], [1.0; 3], &mut out);
        let p = |x: u32, y: u32, c: usize| image.get_pixel(x, y)[c] as f32;
        for (x, y) in [(0u32, 0u32), (3, 1)] {
            let want = (p(2 * x, 2 * y, 1) + p(2 * x + 1, 2 * y, 1) + p(2 * x, 2 * y + 1, 1) + p(2 * x + 1, 2 * y + 1, 1)) / 4.0;
            assert!((out[8 + (y * 4 + x) as usize] - want).abs() < 1e-4);
        }
    }

    #[test]
    fn preprocess_reuses_its_buffer_across_frame_sizes() {
        let manifest_size = (16u32, 8u32);
        let mut pre = Preprocess { size: manifest_size, mean: [0.0; 3], std: [1.0; 3], input: vec![0.0; 3 * 16 * 8], maps: None };
        let ptr = pre.input.as_ptr();
        for (w, h) in [(16, 8), (33, 20), (33, 20), (7, 3)] {
            let out = pre.run(&noise_image(w, h));
            assert_eq!(out.len(), 3 * 16 * 8);
            assert_eq!(out.as_ptr(), ptr, "the input buffer must not be reallocated");
        }
    }

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
