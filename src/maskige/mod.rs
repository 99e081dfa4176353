//! Maskige inverse X⁻¹: the decoder's RGB maskige back to class ids. [`MaskigeInverse`] is the
//! one interface; [`Palette`] (nearest palette colour, the paper's GSS-FF) and [`LinearInverse`]
//! (a trained per-pixel linear classifier, GSS-FT without hidden layers) implement it here with
//! vectorised loops, an ONNX graph in the package ([`OnnxInverse`]) implements it on tract.
//! [`for_package`] builds the one a package names.

use crate::error::{Error, Result};
use crate::model::{Inverse, ModelPackage};

mod onnx;
pub use onnx::OnnxInverse;

/// Planar maskige (3×H×W, the decoder's output range) → class ids (H×W).
pub trait MaskigeInverse: Send {
    /// For logs: "nearest colour", "onnx (inverse.onnx)".
    fn name(&self) -> &str;
    /// Writes the class ids of `maskige` into `classes`, which is already H×W.
    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()>;
}

/// A planar maskige holds three values per pixel of the class map it becomes.
/// The package's X⁻¹: the nearest palette colour, a trained linear classifier (both the
/// runtime's own loop), or its ONNX graph.
pub fn for_package(package: &ModelPackage) -> Result<Box<dyn MaskigeInverse>> {
    let m = &package.manifest;
    Ok(match &m.maskige.inverse {
        Inverse::Nearest => Box::new(Palette::new(&m.maskige.palette, m.decoder.output_range)),
        Inverse::Linear { weight, bias } => {
            Box::new(LinearInverse::new(weight.clone(), bias.clone())?)
        }
        Inverse::Onnx {
            file,
            input,
            output,
        } => Box::new(OnnxInverse::new(package, file, input, output)?),
    })
}

fn check_sizes(maskige: &[f32], classes: &image::GrayImage) -> Result<()> {
    if maskige.len() == 3 * classes.len() {
        return Ok(());
    }
    Err(Error::Usage {
        stage: "inverse",
        msg: format!(
            "maskige has {} values for a {}x{} class map",
            maskige.len(),
            classes.width(),
            classes.height()
        ),
    })
}

impl MaskigeInverse for Palette {
    fn name(&self) -> &str {
        "nearest colour"
    }

    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()> {
        check_sizes(maskige, classes)?;
        self.nearest_into(maskige, classes);
        Ok(())
    }
}

/// Palette in the decoder's output range (the manifest's colours × range / 255).
#[derive(Debug, Clone)]
pub struct Palette {
    colors: Vec<[f32; 3]>,
}

impl Palette {
    pub fn new(colors: &[[u8; 3]], output_range: [f32; 2]) -> Self {
        let [lo, hi] = output_range;
        let scale = (hi - lo) / 255.0;
        let colors = colors
            .iter()
            .map(|c| [0, 1, 2].map(|i| lo + c[i] as f32 * scale))
            .collect();
        Self { colors }
    }

    pub fn len(&self) -> usize {
        self.colors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.colors.is_empty()
    }

    /// Planar maskige (3×H×W) → class ids (H×W) written into the caller's buffer.
    pub fn nearest_into(&self, maskige: &[f32], classes: &mut [u8]) {
        // The default x86-64 target has SSE2 only; the same loop compiled for AVX2 or AVX-512,
        // picked at run time, is what makes it cheap on the CPUs we run on.
        gss_kernels::dispatch!(self.nearest_portable(maskige, classes))
    }

    #[inline(always)]
    fn nearest_portable(&self, maskige: &[f32], classes: &mut [u8]) {
        // Pixels go in blocks, colour by colour, so the inner loop is a straight run over
        // contiguous lanes the compiler vectorises; this runs on every pixel of every frame.
        const BLOCK: usize = 64;
        let plane = classes.len();
        debug_assert_eq!(maskige.len(), 3 * plane);
        let (r, rest) = maskige.split_at(plane);
        let (g, b) = rest.split_at(plane);
        let mut best_d = [0f32; BLOCK];
        // f32 lanes beside the f32 distances: a u8 lane kept the loop from vectorising fully
        let mut best = [0f32; BLOCK];
        for (start, out) in (0..plane).step_by(BLOCK).zip(classes.chunks_mut(BLOCK)) {
            let n = out.len();
            let (r, g, b) = (
                &r[start..start + n],
                &g[start..start + n],
                &b[start..start + n],
            );
            best_d[..n].fill(f32::INFINITY);
            best[..n].fill(0.0);
            for (k, c) in self.colors.iter().enumerate() {
                let id = k as f32;
                for i in 0..n {
                    let (dr, dg, db) = (r[i] - c[0], g[i] - c[1], b[i] - c[2]);
                    let d = dr * dr + dg * dg + db * db;
                    // strict `<` keeps the lowest class id on a tie, as before
                    let closer = d < best_d[i];
                    best_d[i] = if closer { d } else { best_d[i] };
                    best[i] = if closer { id } else { best[i] };
                }
            }
            for (o, &id) in out.iter_mut().zip(&best[..n]) {
                *o = id as u8;
            }
        }
    }
}

/// X⁻¹ as a trained linear classifier per pixel: class k scores `weight[k] · rgb + bias[k]`, the
/// highest score wins. Nearest colour is the special case `weight[k] = 2 p_k`, `bias[k] = -|p_k|²`;
/// training moves those planes to where the decoder's colours really fall. An ONNX graph of the
/// same classifier costs ten times more on tract than this loop (docs/crossdomain.md).
#[derive(Debug, Clone)]
pub struct LinearInverse {
    weight: Vec<[f32; 3]>,
    bias: Vec<f32>,
}

impl LinearInverse {
    pub fn new(weight: Vec<[f32; 3]>, bias: Vec<f32>) -> Result<Self> {
        if weight.is_empty() || weight.len() != bias.len() || weight.len() > 256 {
            return Err(Error::Usage {
                stage: "inverse",
                msg: format!("a linear inverse needs one bias per weight row and 1 to 256 classes; got {} rows and {} biases", weight.len(), bias.len()),
            });
        }
        Ok(Self { weight, bias })
    }

    /// Planar maskige (3×H×W) → class ids (H×W) written into the caller's buffer.
    pub fn classes_into_slice(&self, maskige: &[f32], classes: &mut [u8]) {
        gss_kernels::dispatch!(self.argmax_portable(maskige, classes))
    }

    #[inline(always)]
    fn argmax_portable(&self, maskige: &[f32], classes: &mut [u8]) {
        // The same blocked shape as `Palette::nearest_portable`: class by class over a block of
        // contiguous lanes, so the inner loop vectorises.
        const BLOCK: usize = 64;
        let plane = classes.len();
        debug_assert_eq!(maskige.len(), 3 * plane);
        let (r, rest) = maskige.split_at(plane);
        let (g, b) = rest.split_at(plane);
        let mut best_score = [0f32; BLOCK];
        let mut best = [0f32; BLOCK];
        for (start, out) in (0..plane).step_by(BLOCK).zip(classes.chunks_mut(BLOCK)) {
            let n = out.len();
            let (r, g, b) = (
                &r[start..start + n],
                &g[start..start + n],
                &b[start..start + n],
            );
            best_score[..n].fill(f32::NEG_INFINITY);
            best[..n].fill(0.0);
            for (k, (w, &bias)) in self.weight.iter().zip(&self.bias).enumerate() {
                let id = k as f32;
                for i in 0..n {
                    let score = r[i] * w[0] + g[i] * w[1] + b[i] * w[2] + bias;
                    // strict `>` keeps the lowest class id on a tie, as ONNX ArgMax does
                    let higher = score > best_score[i];
                    best_score[i] = if higher { score } else { best_score[i] };
                    best[i] = if higher { id } else { best[i] };
                }
            }
            for (o, &id) in out.iter_mut().zip(&best[..n]) {
                *o = id as u8;
            }
        }
    }
}

impl MaskigeInverse for LinearInverse {
    fn name(&self) -> &str {
        "trained linear"
    }

    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()> {
        check_sizes(maskige, classes)?;
        self.classes_into_slice(maskige, classes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_maskige_round_trips_and_noise_below_half_distance_is_tolerated() {
        let colors = [[0, 0, 255], [0, 255, 0], [255, 255, 255], [128, 128, 128]];
        let p = Palette::new(&colors, [0.0, 1.0]);
        let ids = [0u8, 1, 2, 3, 3, 1];
        let n = ids.len();
        let mut maskige = vec![0f32; 3 * n];
        for (i, &k) in ids.iter().enumerate() {
            for ch in 0..3 {
                let noise = if i % 2 == 0 { 0.15 } else { -0.15 };
                maskige[ch * n + i] =
                    (colors[k as usize][ch] as f32 / 255.0 + noise).clamp(0.0, 1.0);
            }
        }
        let mut out = vec![0u8; n];
        p.nearest_into(&maskige, &mut out);
        assert_eq!(out, ids);
    }

    #[test]
    fn blocked_search_matches_a_pixel_by_pixel_search_across_block_edges_and_ties() {
        let colors = [
            [255, 255, 0],
            [200, 10, 10],
            [10, 200, 10],
            [10, 10, 200],
            [250, 250, 250],
        ];
        let p = Palette::new(&colors, [0.0, 1.0]);
        let n = 64 * 3 + 7;
        let mut state = 12345u32;
        let mut maskige: Vec<f32> = (0..3 * n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32
            })
            .collect();
        // an exact tie between colours 1 and 2 must go to the lower id
        for (ch, v) in [105.0 / 255.0, 105.0 / 255.0, 10.0 / 255.0]
            .iter()
            .enumerate()
        {
            maskige[ch * n + 70] = *v;
        }
        let mut out = vec![0u8; n];
        p.nearest_into(&maskige, &mut out);
        for (i, &got) in out.iter().enumerate() {
            let px = [maskige[i], maskige[n + i], maskige[2 * n + i]];
            let d = |c: &[f32; 3]| (0..3).map(|k| (px[k] - c[k]) * (px[k] - c[k])).sum::<f32>();
            let want = (0..p.colors.len()).fold(0, |best, k| {
                if d(&p.colors[k]) < d(&p.colors[best]) {
                    k
                } else {
                    best
                }
            });
            assert_eq!(got as usize, want, "pixel {i}");
        }
        assert_eq!(out[70], 1);
    }

    fn pseudo_random_maskige(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed;
        (0..3 * n)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 24) as f32
            })
            .collect()
    }

    #[test]
    fn linear_inverse_matches_a_pixel_by_pixel_argmax_across_block_edges_and_ties() {
        let weight = vec![
            [1.5, -0.25, 0.5],
            [-0.75, 2.0, 0.125],
            [0.25, 0.25, -1.0],
            [0.0, 0.0, 0.0],
        ];
        let bias = vec![0.0, -0.25, 0.5, 0.375];
        let inv = LinearInverse::new(weight.clone(), bias.clone()).expect("valid classifier");
        let n = 64 * 3 + 5;
        let mut maskige = pseudo_random_maskige(n, 777);
        // a pixel where classes 1 and 3 both score exactly 0.375 (binary fractions, so the sums
        // are exact) must go to the lower id
        for (ch, v) in [0.0f32, 0.28125, 0.5].iter().enumerate() {
            maskige[ch * n + 65] = *v;
        }
        let mut out = vec![0u8; n];
        inv.classes_into_slice(&maskige, &mut out);
        for (i, &got) in out.iter().enumerate() {
            let px = [maskige[i], maskige[n + i], maskige[2 * n + i]];
            let score = |k: usize| {
                px[0] * weight[k][0] + px[1] * weight[k][1] + px[2] * weight[k][2] + bias[k]
            };
            let want =
                (1..weight.len()).fold(0, |best, k| if score(k) > score(best) { k } else { best });
            assert_eq!(got as usize, want, "pixel {i}");
        }
        assert_eq!(out[65], 1);
    }

    #[test]
    fn linear_inverse_with_nearest_colour_planes_agrees_with_the_palette() {
        let colors = [
            [0, 0, 255],
            [0, 255, 0],
            [0, 255, 255],
            [128, 128, 128],
            [255, 0, 0],
            [255, 0, 255],
            [255, 255, 0],
            [255, 255, 255],
        ];
        let palette = Palette::new(&colors, [0.0, 1.0]);
        let weight: Vec<[f32; 3]> = palette.colors.iter().map(|c| c.map(|v| 2.0 * v)).collect();
        let bias: Vec<f32> = palette
            .colors
            .iter()
            .map(|c| -c.iter().map(|v| v * v).sum::<f32>())
            .collect();
        let inv = LinearInverse::new(weight, bias).expect("valid classifier");
        let n = 4096;
        let maskige = pseudo_random_maskige(n, 4242);
        let (mut linear, mut nearest) = (vec![0u8; n], vec![0u8; n]);
        inv.classes_into_slice(&maskige, &mut linear);
        palette.nearest_into(&maskige, &mut nearest);
        // The two forms differ only by rounding, so only pixels almost equidistant from two
        // colours may disagree.
        let disagree = linear.iter().zip(&nearest).filter(|(a, b)| a != b).count();
        assert!(disagree <= n / 500, "{disagree} of {n} pixels disagree");
    }

    #[test]
    fn linear_inverse_refuses_a_malformed_classifier() {
        assert!(LinearInverse::new(vec![[1.0, 0.0, 0.0]; 3], vec![0.0; 2]).is_err());
        assert!(LinearInverse::new(Vec::new(), Vec::new()).is_err());
    }
}
