//! Maskige inverse X⁻¹: the decoder's RGB maskige back to class ids. [`MaskigeInverse`] is the
//! one interface; [`Palette`] (nearest palette colour, the paper's GSS-FF) implements it here, an
//! ONNX graph in the package (`engine::cpu::OnnxInverse`) implements it on tract.

use crate::error::{Error, Result};

/// Planar maskige (3×H×W, the decoder's output range) → class ids (H×W).
pub trait MaskigeInverse: Send {
    /// For logs: "nearest colour", "onnx (inverse.onnx)".
    fn name(&self) -> &str;
    /// Writes the class ids of `maskige` into `classes`, which is already H×W.
    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()>;
}

impl MaskigeInverse for Palette {
    fn name(&self) -> &str {
        "nearest colour"
    }

    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()> {
        if maskige.len() != 3 * classes.len() {
            return Err(Error::Usage {
                stage: "inverse",
                msg: format!("maskige has {} values for a {}x{} class map", maskige.len(), classes.width(), classes.height()),
            });
        }
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
        let colors = colors.iter().map(|c| [0, 1, 2].map(|i| lo + c[i] as f32 * scale)).collect();
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
        crate::simd::dispatch!(self.nearest_portable(maskige, classes))
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
            let (r, g, b) = (&r[start..start + n], &g[start..start + n], &b[start..start + n]);
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
                maskige[ch * n + i] = (colors[k as usize][ch] as f32 / 255.0 + noise).clamp(0.0, 1.0);
            }
        }
        let mut out = vec![0u8; n];
        p.nearest_into(&maskige, &mut out);
        assert_eq!(out, ids);
    }

    #[test]
    fn blocked_search_matches_a_pixel_by_pixel_search_across_block_edges_and_ties() {
        let colors = [[255, 255, 0], [200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 250]];
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
        for (ch, v) in [105.0 / 255.0, 105.0 / 255.0, 10.0 / 255.0].iter().enumerate() {
            maskige[ch * n + 70] = *v;
        }
        let mut out = vec![0u8; n];
        p.nearest_into(&maskige, &mut out);
        for (i, &got) in out.iter().enumerate() {
            let px = [maskige[i], maskige[n + i], maskige[2 * n + i]];
            let d = |c: &[f32; 3]| (0..3).map(|k| (px[k] - c[k]) * (px[k] - c[k])).sum::<f32>();
            let want = (0..p.colors.len()).fold(0, |best, k| if d(&p.colors[k]) < d(&p.colors[best]) { k } else { best });
            assert_eq!(got as usize, want, "pixel {i}");
        }
        assert_eq!(out[70], 1);
    }
}
