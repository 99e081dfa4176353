//! Scoring: an accumulating confusion matrix with per-class IoU / accuracy, mIoU, mAcc and pixel
//! accuracy, defined exactly as `gss-convert eval` defines them so the two report the same
//! numbers. Which label belongs to which image, and reading labels, is [`crate::dataset`]'s.

use crate::dataset::IGNORE;
use crate::error::{Error, Result};

/// Accumulates a K×K ground-truth × prediction pixel count over many images.
#[derive(Debug, Clone)]
pub struct ConfusionMatrix {
    classes: usize,
    /// Row-major, `counts[gt * K + pred]`.
    counts: Vec<u64>,
    /// Predictions outside 0..K have no column, but they are still pixels of their gt class
    /// that were got wrong, so they count against that class.
    pred_out_of_range: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
            pred_out_of_range: vec![0; classes],
        }
    }

    pub fn num_classes(&self) -> usize {
        self.classes
    }

    pub fn count(&self, gt: usize, pred: usize) -> u64 {
        self.counts[gt * self.classes + pred]
    }

    /// Adds one image's prediction against its label (same length, class ids; 255 in the label
    /// is ignored). A label id outside the class list is an error: skipping it would hide a wrong
    /// class list or label mapping.
    pub fn update(&mut self, pred: &[u8], gt: &[u8]) -> Result<()> {
        if pred.len() != gt.len() {
            return Err(Error::LabelMismatch {
                msg: format!("the prediction has {} pixels, the label {}; score labels of the frame's own size", pred.len(), gt.len()),
            });
        }
        for (&p, &g) in pred.iter().zip(gt) {
            self.add(p, g)?;
        }
        Ok(())
    }

    /// One pixel: predicted `p`, labelled `g` (ignored when unlabeled).
    fn add(&mut self, p: u8, g: u8) -> Result<()> {
        if g == IGNORE {
            return Ok(());
        }
        let (k, g) = (self.classes, g as usize);
        if g >= k {
            return Err(Error::LabelMismatch {
                msg: format!(
                    "class id {g} in the label, the model has ids 0..{} ({IGNORE} = unlabeled); use labels made for this model's classes",
                    k - 1
                ),
            });
        }
        if (p as usize) < k {
            self.counts[g * k + p as usize] += 1;
        } else {
            self.pred_out_of_range[g] += 1;
        }
        Ok(())
    }

    /// Adds another matrix's counts (same classes).
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        debug_assert_eq!(self.classes, other.classes);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self
            .pred_out_of_range
            .iter_mut()
            .zip(&other.pred_out_of_range)
        {
            *a += b;
        }
    }

    /// Labelled pixels counted.
    pub fn pixels(&self) -> u64 {
        (0..self.classes).map(|c| self.gt_total(c)).sum()
    }

    fn gt_total(&self, class: usize) -> u64 {
        self.counts[class * self.classes..(class + 1) * self.classes]
            .iter()
            .sum::<u64>()
            + self.pred_out_of_range[class]
    }

    fn pred_total(&self, class: usize) -> u64 {
        (0..self.classes).map(|g| self.count(g, class)).sum()
    }

    /// Per-class IoU as a fraction; NaN where the class is in neither label nor prediction.
    pub fn iou(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|c| {
                let tp = self.count(c, c);
                let union = self.gt_total(c) + self.pred_total(c) - tp;
                if union > 0 {
                    tp as f64 / union as f64
                } else {
                    f64::NAN
                }
            })
            .collect()
    }

    /// Per-class recall as a fraction; NaN where the class is absent from the labels.
    pub fn acc(&self) -> Vec<f64> {
        (0..self.classes)
            .map(|c| {
                let total = self.gt_total(c);
                if total > 0 {
                    self.count(c, c) as f64 / total as f64
                } else {
                    f64::NAN
                }
            })
            .collect()
    }

    /// Mean IoU in percent over classes where it is defined.
    pub fn miou(&self) -> f64 {
        100.0 * nan_mean(&self.iou())
    }

    /// Mean per-class accuracy in percent over classes present in the labels.
    pub fn macc(&self) -> f64 {
        100.0 * nan_mean(&self.acc())
    }

    /// Share of labelled pixels predicted right, in percent.
    pub fn pixel_acc(&self) -> f64 {
        let total: u64 = (0..self.classes).map(|c| self.gt_total(c)).sum();
        let hit: u64 = (0..self.classes).map(|c| self.count(c, c)).sum();
        if total > 0 {
            100.0 * hit as f64 / total as f64
        } else {
            f64::NAN
        }
    }
}

fn nan_mean(values: &[f64]) -> f64 {
    let valid: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if valid.is_empty() {
        f64::NAN
    } else {
        valid.iter().sum::<f64>() / valid.len() as f64
    }
}

/// How well the prior's confidence predicts errors: pixels are binned by the confidence of their
/// token cell, and [`halves`](ConfidenceSplit::halves) scores the most and the least confident
/// halves of the labelled pixels apart.
#[derive(Debug, Clone)]
pub struct ConfidenceSplit {
    bins: Vec<ConfusionMatrix>,
}

impl ConfidenceSplit {
    const BINS: usize = 1000;

    pub fn new(classes: usize) -> Self {
        Self {
            bins: vec![ConfusionMatrix::new(classes); Self::BINS],
        }
    }

    /// One image: `pred` and `gt` (width × height, row-major) and the confidence of its
    /// `grid` (rows, columns) of token cells, each pixel taking its cell's value.
    pub fn update(
        &mut self,
        pred: &[u8],
        gt: &[u8],
        width: usize,
        confidence: &[f32],
        grid: [usize; 2],
    ) -> Result<()> {
        let [gh, gw] = grid;
        if pred.len() != gt.len()
            || width == 0
            || !pred.len().is_multiple_of(width)
            || confidence.len() != gh * gw
        {
            return Err(Error::LabelMismatch {
                msg: format!(
                    "{} predicted, {} labelled pixels, {} confidence cells for a {gh}x{gw} grid",
                    pred.len(),
                    gt.len(),
                    confidence.len()
                ),
            });
        }
        let height = pred.len() / width;
        for y in 0..height {
            let row = (y * gh / height).min(gh - 1);
            for x in 0..width {
                let p = confidence[row * gw + (x * gw / width).min(gw - 1)];
                let bin = ((p.clamp(0.0, 1.0) * Self::BINS as f32) as usize).min(Self::BINS - 1);
                let i = y * width + x;
                self.bins[bin].add(pred[i], gt[i])?;
            }
        }
        Ok(())
    }

    /// (most confident half, least confident half, the confidence between them): the bins from
    /// the top down until half of the labelled pixels are in.
    pub fn halves(&self) -> (ConfusionMatrix, ConfusionMatrix, f32) {
        let classes = self.bins[0].num_classes();
        let total: u64 = self.bins.iter().map(ConfusionMatrix::pixels).sum();
        let (mut high, mut low) = (ConfusionMatrix::new(classes), ConfusionMatrix::new(classes));
        let mut threshold = 0.0;
        for (i, bin) in self.bins.iter().enumerate().rev() {
            if 2 * high.pixels() < total {
                high.merge(bin);
                threshold = i as f32 / Self::BINS as f32;
            } else {
                low.merge(bin);
            }
        }
        (high, low, threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_prediction_is_100() {
        let mut cm = ConfusionMatrix::new(3);
        cm.update(&[0, 1, 2, 2], &[0, 1, 2, 2]).unwrap();
        assert!(close(cm.miou(), 100.0) && close(cm.macc(), 100.0) && close(cm.pixel_acc(), 100.0));
    }

    #[test]
    fn hand_computed_case() {
        // gt:   0 0 0 1 1 255
        // pred: 0 0 1 1 2 0
        let mut cm = ConfusionMatrix::new(3);
        cm.update(&[0, 0, 1, 1, 2, 0], &[0, 0, 0, 1, 1, 255])
            .unwrap();
        let iou = cm.iou();
        // class 0: tp 2, gt 3, pred 2 -> 2/3; class 1: tp 1, gt 2, pred 2 -> 1/3; class 2: tp 0, pred 1 -> 0
        assert!(
            close(iou[0], 2.0 / 3.0) && close(iou[1], 1.0 / 3.0) && close(iou[2], 0.0),
            "{iou:?}"
        );
        let acc = cm.acc();
        assert!(
            close(acc[0], 2.0 / 3.0) && close(acc[1], 0.5) && acc[2].is_nan(),
            "{acc:?}"
        );
        assert!(close(cm.miou(), 100.0 / 3.0));
        assert!(close(cm.macc(), 100.0 * (2.0 / 3.0 + 0.5) / 2.0));
        assert!(close(cm.pixel_acc(), 60.0));
    }

    #[test]
    fn absent_classes_are_left_out_of_the_mean_and_out_of_range_predictions_count_as_misses() {
        let mut cm = ConfusionMatrix::new(4);
        cm.update(&[0, 9], &[0, 0]).unwrap();
        let iou = cm.iou();
        assert!(close(iou[0], 0.5) && iou[1].is_nan() && iou[3].is_nan());
        assert!(close(cm.miou(), 50.0));
    }

    #[test]
    fn confident_and_unsure_halves_are_scored_apart() {
        let mut split = ConfidenceSplit::new(2);
        // 4×2 image, 2×2 grid: the left cells are sure and right, the right ones unsure and wrong.
        let gt = [0, 0, 1, 1, 0, 0, 1, 1];
        let pred = [0, 0, 0, 0, 0, 0, 0, 0];
        split
            .update(&pred, &gt, 4, &[0.9, 0.3, 0.95, 0.2], [2, 2])
            .unwrap();
        let (high, low, threshold) = split.halves();
        assert_eq!((high.pixels(), low.pixels()), (4, 4));
        assert_eq!(high.pixel_acc(), 100.0);
        assert_eq!(low.pixel_acc(), 0.0);
        assert!((0.3..=0.9).contains(&threshold), "{threshold}");
        assert!(split.update(&pred, &gt, 4, &[0.5; 3], [2, 2]).is_err());
    }

    #[test]
    fn bad_labels_are_errors() {
        let mut cm = ConfusionMatrix::new(2);
        let err = cm.update(&[0], &[7]).unwrap_err();
        assert!(
            matches!(err, Error::LabelMismatch { .. }) && err.to_string().contains("class id 7"),
            "{err}"
        );
        let err = cm.update(&[0, 1], &[0]).unwrap_err();
        assert!(
            matches!(err, Error::LabelMismatch { .. }) && err.to_string().contains("2 pixels"),
            "{err}"
        );
        assert!(!err.is_recoverable());
        assert!(ConfusionMatrix::new(2).miou().is_nan());
        // Unlabeled pixels are skipped whatever was predicted.
        cm.update(&[1], &[IGNORE]).unwrap();
        assert_eq!((cm.count(0, 0), cm.count(1, 1)), (0, 0));
    }
}
