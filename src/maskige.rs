//! Maskige inverse X⁻¹: the decoder's RGB maskige back to class ids by nearest palette colour.

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
        let plane = classes.len();
        debug_assert_eq!(maskige.len(), 3 * plane);
        let (r, rest) = maskige.split_at(plane);
        let (g, b) = rest.split_at(plane);
        for (i, out) in classes.iter_mut().enumerate() {
            let (pr, pg, pb) = (r[i], g[i], b[i]);
            let mut best = 0u8;
            let mut best_d = f32::INFINITY;
            for (k, c) in self.colors.iter().enumerate() {
                let d = (pr - c[0]) * (pr - c[0]) + (pg - c[1]) * (pg - c[1]) + (pb - c[2]) * (pb - c[2]);
                if d < best_d {
                    best_d = d;
                    best = k as u8;
                }
            }
            *out = best;
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
}
