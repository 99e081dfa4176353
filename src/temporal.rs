//! Frame-to-frame measures of a stream: how much the masks flicker where the scene held still
//! ([`FlickerMeter`], against labels) and how much of the token grid changes between frames
//! ([`TokenChangeMeter`], which also bounds what token reuse must decode). Both compare
//! neighbouring frames only and are reset at a gap.

use crate::dataset::IGNORE;
use crate::error::{Error, Result};

/// Flicker between consecutive frames: the share of pixels whose predicted class changed where the
/// ground truth did not (both frames labelled there, the same class). A stream that drops frames
/// should [`reset`](FlickerMeter::reset) at the gap: only neighbouring frames are compared.
#[derive(Debug, Clone, Default)]
pub struct FlickerMeter {
    previous: Option<(Vec<u8>, Vec<u8>)>,
    stable: u64,
    flickered: u64,
}

impl FlickerMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the frame after the last one (`pred` and `gt` of the same length).
    pub fn update(&mut self, pred: &[u8], gt: &[u8]) -> Result<()> {
        if pred.len() != gt.len() {
            return Err(Error::LabelMismatch {
                msg: format!(
                    "prediction has {} pixels, label has {}",
                    pred.len(),
                    gt.len()
                ),
            });
        }
        if let Some((prev_pred, prev_gt)) = self
            .previous
            .as_mut()
            .filter(|(p, _)| p.len() == pred.len())
        {
            for ((&p, &g), (&pp, &pg)) in pred
                .iter()
                .zip(gt)
                .zip(prev_pred.iter().zip(prev_gt.iter()))
            {
                if g != IGNORE && g == pg {
                    self.stable += 1;
                    self.flickered += u64::from(p != pp);
                }
            }
            prev_pred.copy_from_slice(pred);
            prev_gt.copy_from_slice(gt);
        } else {
            self.previous = Some((pred.to_vec(), gt.to_vec()));
        }
        Ok(())
    }

    /// Forgets the last frame (the next one does not follow it).
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// Flicker in percent; NaN before two neighbouring frames.
    pub fn flicker(&self) -> f64 {
        if self.stable == 0 {
            f64::NAN
        } else {
            100.0 * self.flickered as f64 / self.stable as f64
        }
    }

    /// Pixels compared (labelled the same in two neighbouring frames).
    pub fn stable_pixels(&self) -> u64 {
        self.stable
    }
}

/// How much of the token grid changes from one frame to the next: the share of grid cells whose
/// token differs from the previous frame's (reset at a gap, so only neighbouring frames count).
///
/// Given the grid's shape and the decoder's halo ([`TokenChangeMeter::with_reach`]), it also
/// counts the cells within `halo` cells of a changed token: the cells whose pixels a change can
/// alter, so the least that any exact token reuse has to decode again.
#[derive(Debug, Clone, Default)]
pub struct TokenChangeMeter {
    previous: Vec<i64>,
    changed: u64,
    cells: u64,
    pairs: u64,
    /// (grid, halo, reached cells so far, this pair's marks)
    reach: Option<([usize; 2], usize, u64, Vec<bool>)>,
}

impl TokenChangeMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Also measures the reach of each change on an h×w grid for a decoder with this halo.
    pub fn with_reach(grid: [usize; 2], halo: usize) -> Self {
        Self {
            reach: Some((grid, halo, 0, Vec::new())),
            ..Self::default()
        }
    }

    /// Mean share of the grid within the halo of a change, per pair (None without a reach, or
    /// before the first pair).
    pub fn mean_reach(&self) -> Option<f64> {
        let (_, _, reached, _) = self.reach.as_ref()?;
        (self.cells > 0).then(|| *reached as f64 / self.cells as f64)
    }

    /// The next frame's grid; returns its changed share (0..1) when there is a previous grid of
    /// the same size. An empty grid (a backend that keeps it on its device) is not counted.
    pub fn update(&mut self, tokens: &[i64]) -> Option<f64> {
        if tokens.is_empty() {
            return None;
        }
        let share = (self.previous.len() == tokens.len()).then(|| {
            let changed = tokens
                .iter()
                .zip(&self.previous)
                .filter(|(a, b)| a != b)
                .count();
            if let Some(([h, w], halo, reached, marks)) = self
                .reach
                .as_mut()
                .filter(|r| r.0[0] * r.0[1] == tokens.len())
            {
                marks.clear();
                marks.resize(tokens.len(), false);
                for (i, _) in tokens
                    .iter()
                    .zip(&self.previous)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                {
                    let (y, x) = (i / *w, i % *w);
                    for yy in y.saturating_sub(*halo)..=(y + *halo).min(*h - 1) {
                        marks
                            [yy * *w + x.saturating_sub(*halo)..=yy * *w + (x + *halo).min(*w - 1)]
                            .fill(true);
                    }
                }
                *reached += marks.iter().filter(|&&m| m).count() as u64;
            }
            self.changed += changed as u64;
            self.cells += tokens.len() as u64;
            self.pairs += 1;
            changed as f64 / tokens.len() as f64
        });
        self.previous.clear();
        self.previous.extend_from_slice(tokens);
        share
    }

    pub fn reset(&mut self) {
        self.previous.clear();
    }

    /// Mean changed share over every pair so far (NaN before the first pair).
    pub fn mean_share(&self) -> f64 {
        if self.cells == 0 {
            f64::NAN
        } else {
            self.changed as f64 / self.cells as f64
        }
    }

    /// Neighbouring frame pairs compared.
    pub fn pairs(&self) -> u64 {
        self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flicker_counts_class_changes_where_the_label_held() {
        let mut f = FlickerMeter::new();
        assert!(f.flicker().is_nan());
        f.update(&[0, 1, 2, 3], &[0, 1, 2, 255]).unwrap();
        // pixel 0: label held, prediction changed (flicker); 1: held and kept; 2: label changed
        // (not compared); 3: unlabelled (not compared)
        f.update(&[5, 1, 0, 0], &[0, 1, 4, 255]).unwrap();
        assert_eq!((f.stable_pixels(), f.flicker()), (2, 50.0));
        // After a gap the next frame starts a new pair.
        f.reset();
        f.update(&[9, 9, 9, 9], &[0, 1, 4, 255]).unwrap();
        assert_eq!(f.stable_pixels(), 2);
        assert!(f.update(&[0], &[0, 1]).is_err());
    }

    #[test]
    fn token_change_is_the_share_of_cells_that_differ_from_the_last_frame() {
        let mut m = TokenChangeMeter::new();
        assert_eq!(m.update(&[1, 2, 3, 4]), None);
        assert_eq!(m.update(&[1, 2, 3, 5]), Some(0.25));
        assert_eq!(m.update(&[]), None);
        assert_eq!(m.update(&[0, 0, 3, 5]), Some(0.5));
        assert_eq!((m.pairs(), m.mean_share()), (2, 0.375));
        m.reset();
        assert_eq!(m.update(&[9, 9, 9, 9]), None);
    }

    #[test]
    fn reach_counts_the_cells_within_the_halo_of_a_change() {
        // 4×5 grid, halo 1: a change at a corner reaches 2×2 cells, one in the middle 3×3.
        let mut m = TokenChangeMeter::with_reach([4, 5], 1);
        let base = vec![0i64; 20];
        m.update(&base);
        let mut corner = base.clone();
        corner[0] = 1;
        m.update(&corner);
        let mut middle = corner.clone();
        middle[2 * 5 + 2] = 1;
        m.update(&middle);
        assert_eq!(m.mean_reach(), Some((4 + 9) as f64 / 40.0));
        assert_eq!(TokenChangeMeter::new().mean_reach(), None);
    }
}
