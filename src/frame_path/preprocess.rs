//! Frame → the prior's input: the fit's bilinear sampling and `(x − mean)/std` in one pass into
//! NCHW f32, in a buffer reused from frame to frame. Frames are read through an [`ImageView`], in
//! the caller's memory and channel order.

use super::geometry::{fit_axes, AxisMap};
use super::view::{ChannelOrder, ImageView};
use crate::model::Fit;
use crate::model::Manifest;

pub struct Preprocess {
    /// Model input (width, height).
    size: (u32, u32),
    mean: [f32; 3],
    std: [f32; 3],
    fit: Fit,
    input: Vec<f32>,
    /// Sampling tables for the last frame size seen; rebuilt only when it changes.
    maps: Option<((u32, u32), AxisMap, AxisMap)>,
}

impl Preprocess {
    pub fn new(manifest: &Manifest, fit: Fit) -> Self {
        let (h, w) = (manifest.input.height, manifest.input.width);
        Self {
            size: (w as u32, h as u32),
            mean: manifest.input.mean,
            std: manifest.input.std,
            fit,
            input: vec![0.0; 3 * h * w],
            maps: None,
        }
    }

    pub fn fit(&self) -> Fit {
        self.fit
    }

    pub fn set_fit(&mut self, fit: Fit) {
        self.fit = fit;
        self.maps = None;
    }

    /// The normalised input for `image`, valid until the next call.
    pub fn run<'a>(&mut self, image: impl Into<ImageView<'a>>) -> &[f32] {
        let image = &image.into();
        if image.dimensions() == self.size {
            normalize_into(image, self.mean, self.std, &mut self.input);
            return &self.input;
        }
        let dims = image.dimensions();
        if self.maps.as_ref().is_none_or(|(d, _, _)| *d != dims) {
            let (ax, ay) = fit_axes(self.fit, dims, self.size);
            let xs = AxisMap::new(dims.0 as usize, self.size.0 as usize, ax);
            let ys = AxisMap::new(dims.1 as usize, self.size.1 as usize, ay);
            self.maps = Some((dims, xs, ys));
        }
        if let Some((_, xs, ys)) = &self.maps {
            resize_normalize_into(image, xs, ys, self.mean, self.std, &mut self.input);
        }
        &self.input
    }
}

/// Bilinear sampling of an HWC u8 image through `xs`/`ys` fused with `(x − mean)/std` into NCHW
/// f32, into the caller's buffer (3 × `ys.len()` × `xs.len()`): no intermediate image. Padding
/// (outside the maps' `inside` ranges) is written as 0, the mean colour.
pub fn resize_normalize_into(
    image: &ImageView,
    xs: &AxisMap,
    ys: &AxisMap,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    // The channel order is a constant in each copy, so BGR frames cost no more than RGB ones.
    match image.order() {
        ChannelOrder::Rgb => gss_kernels::dispatch!(resize_normalize_portable::<false>(
            image, xs, ys, mean, std, out
        )),
        ChannelOrder::Bgr => gss_kernels::dispatch!(resize_normalize_portable::<true>(
            image, xs, ys, mean, std, out
        )),
    }
}

/// Input channel of output channel `c`.
#[inline(always)]
fn channel<const BGR: bool>(c: usize) -> usize {
    if BGR {
        2 - c
    } else {
        c
    }
}

#[inline(always)]
fn resize_normalize_portable<const BGR: bool>(
    image: &ImageView,
    xs: &AxisMap,
    ys: &AxisMap,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    let (ow, oh) = (xs.len(), ys.len());
    let plane = ow * oh;
    debug_assert_eq!(out.len(), 3 * plane);
    let inv = std.map(|s| 1.0 / s);
    for y in 0..oh {
        if !ys.inside.contains(&y) {
            for c in 0..3 {
                out[c * plane + y * ow..][..ow].fill(0.0);
            }
            continue;
        }
        let top = image.row(ys.first[y] as usize);
        let bottom = image.row(ys.second[y] as usize);
        let wy = ys.weight[y];
        for c in 0..3 {
            let row = &mut out[c * plane + y * ow..][..ow];
            row[..xs.inside.start].fill(0.0);
            row[xs.inside.end..].fill(0.0);
        }
        for x in xs.inside.clone() {
            let (a, b, wx) = (
                xs.first[x] as usize * 3,
                xs.second[x] as usize * 3,
                xs.weight[x],
            );
            for c in 0..3 {
                let (a, b) = (a + channel::<BGR>(c), b + channel::<BGR>(c));
                let t = top[a] as f32 + (top[b] as f32 - top[a] as f32) * wx;
                let u = bottom[a] as f32 + (bottom[b] as f32 - bottom[a] as f32) * wx;
                out[c * plane + y * ow + x] = (t + (u - t) * wy - mean[c]) * inv[c];
            }
        }
    }
}

/// HWC u8 → NCHW f32 RGB, `(x − mean)/std` per channel, into the caller's buffer.
pub fn normalize_into(image: &ImageView, mean: [f32; 3], std: [f32; 3], out: &mut [f32]) {
    match image.order() {
        ChannelOrder::Rgb => {
            gss_kernels::dispatch!(normalize_portable::<false>(image, mean, std, out))
        }
        ChannelOrder::Bgr => {
            gss_kernels::dispatch!(normalize_portable::<true>(image, mean, std, out))
        }
    }
}

#[inline(always)]
fn normalize_portable<const BGR: bool>(
    image: &ImageView,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let plane = w * h;
    let inv = std.map(|s| 1.0 / s);
    for y in 0..h {
        for (x, px) in image.row(y).chunks_exact(3).enumerate() {
            let i = y * w + x;
            for c in 0..3 {
                out[c * plane + i] = (px[channel::<BGR>(c)] as f32 - mean[c]) * inv[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::geometry::fit_axes;
    use super::*;
    use image::RgbImage;

    /// The module-doc formula for one output value, in f64, pixel by pixel; None for padding.
    fn reference(
        image: &RgbImage,
        fit: Fit,
        ow: usize,
        oh: usize,
        x: usize,
        y: usize,
        c: usize,
    ) -> Option<f64> {
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let (ax, ay) = fit_axes(fit, image.dimensions(), (ow as u32, oh as u32));
        let sample = |i: usize, n: usize, a: super::super::geometry::AxisFit| {
            let u = (i as f64 + 0.5 - a.offset) / a.scale;
            if u < 0.0 || u >= n as f64 {
                return None;
            }
            let f = (u - 0.5).max(0.0);
            let i0 = (f.floor() as usize).min(n - 1);
            Some((i0, (i0 + 1).min(n - 1), f - i0 as f64))
        };
        let ((x0, x1, wx), (y0, y1, wy)) = (sample(x, iw, ax)?, sample(y, ih, ay)?);
        let p = |x: usize, y: usize| image.get_pixel(x as u32, y as u32)[c] as f64;
        let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
        let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
        Some(top * (1.0 - wy) + bottom * wy)
    }

    fn noise_image(w: u32, h: u32) -> RgbImage {
        let mut state = 99u32;
        RgbImage::from_fn(w, h, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            image::Rgb([(state >> 24) as u8, (state >> 16) as u8, (state >> 8) as u8])
        })
    }

    #[test]
    fn fused_sampling_matches_the_formula_for_every_fit() {
        let (mean, std) = ([120.0, 110.0, 100.0], [60.0, 55.0, 50.0]);
        for fit in [Fit::Stretch, Fit::Crop, Fit::Letterbox] {
            for (iw, ih, ow, oh) in [
                (37, 23, 16, 8),
                (10, 7, 31, 19),
                (640, 480, 64, 32),
                (5, 5, 5, 3),
            ] {
                let image = noise_image(iw, ih);
                let (ax, ay) = fit_axes(fit, (iw, ih), (ow as u32, oh as u32));
                let (xs, ys) = (
                    AxisMap::new(iw as usize, ow, ax),
                    AxisMap::new(ih as usize, oh, ay),
                );
                let mut out = vec![f32::NAN; 3 * ow * oh];
                resize_normalize_into(&(&image).into(), &xs, &ys, mean, std, &mut out);
                for c in 0..3 {
                    for y in 0..oh {
                        for x in 0..ow {
                            let want = reference(&image, fit, ow, oh, x, y, c)
                                .map_or(0.0, |v| (v - mean[c] as f64) / std[c] as f64);
                            let got = out[c * ow * oh + y * ow + x] as f64;
                            assert!(
                                (got - want).abs() < 1e-4,
                                "{fit} {iw}x{ih} -> {ow}x{oh} c{c} ({x},{y}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_padded_bgr_view_gives_the_input_of_its_rgb_image() {
        let image = noise_image(37, 23);
        // The same pixels as BGR, each row followed by 5 bytes of padding.
        let stride = 37 * 3 + 5;
        let mut bgr = vec![0xAAu8; stride * 23];
        for (y, row) in image.as_raw().chunks_exact(37 * 3).enumerate() {
            for (x, px) in row.chunks_exact(3).enumerate() {
                bgr[y * stride + 3 * x..][..3].copy_from_slice(&[px[2], px[1], px[0]]);
            }
        }
        let view = ImageView::new(&bgr, 37, 23, stride, ChannelOrder::Bgr).unwrap();
        let (mean, std) = ([120.0, 110.0, 100.0], [60.0, 55.0, 50.0]);
        // The model's own size (plain normalisation) and another (sampling).
        for (ow, oh) in [(37, 23), (16, 8)] {
            let mut pre = Preprocess {
                size: (ow, oh),
                mean,
                std,
                fit: Fit::Letterbox,
                input: vec![0.0; 3 * (ow * oh) as usize],
                maps: None,
            };
            let want = pre.run(&image).to_vec();
            assert_eq!(pre.run(view), &want[..], "{ow}x{oh}");
        }
    }

    #[test]
    fn halving_averages_each_two_by_two_block() {
        let image = noise_image(8, 4);
        let (ax, ay) = fit_axes(Fit::Stretch, (8, 4), (4, 2));
        let (xs, ys) = (AxisMap::new(8, 4, ax), AxisMap::new(4, 2, ay));
        let mut out = vec![0f32; 3 * 4 * 2];
        resize_normalize_into(&(&image).into(), &xs, &ys, [0.0; 3], [1.0; 3], &mut out);
        let p = |x: u32, y: u32, c: usize| image.get_pixel(x, y)[c] as f32;
        for (x, y) in [(0u32, 0u32), (3, 1)] {
            let want = (p(2 * x, 2 * y, 1)
                + p(2 * x + 1, 2 * y, 1)
                + p(2 * x, 2 * y + 1, 1)
                + p(2 * x + 1, 2 * y + 1, 1))
                / 4.0;
            assert!((out[8 + (y * 4 + x) as usize] - want).abs() < 1e-4);
        }
    }

    #[test]
    fn preprocess_reuses_its_buffer_across_frame_sizes_and_fits() {
        let mut pre = Preprocess {
            size: (16, 8),
            mean: [0.0; 3],
            std: [1.0; 3],
            fit: Fit::Stretch,
            input: vec![0.0; 3 * 16 * 8],
            maps: None,
        };
        let ptr = pre.input.as_ptr();
        for (i, (w, h)) in [(16, 8), (33, 20), (33, 20), (7, 3)]
            .into_iter()
            .enumerate()
        {
            pre.set_fit(if i % 2 == 0 {
                Fit::Letterbox
            } else {
                Fit::Crop
            });
            let out = pre.run(&noise_image(w, h));
            assert_eq!(out.len(), 3 * 16 * 8);
            assert_eq!(
                out.as_ptr(),
                ptr,
                "the input buffer must not be reallocated"
            );
        }
    }
}
