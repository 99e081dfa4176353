//! Where a frame's pixels land in the model's input and back: the fit policies and their
//! sampling tables. This is the one definition of resizing in gss; `gss_convert.resize` is the
//! same formulas in Python (training, evaluation, parity references), computed in f64 in the
//! same order so both halves pick the same source pixels.
//!
//! Per axis a fit is a scale `s` and an offset `o` in model pixels: a frame coordinate `u`
//! (pixel edges, 0..W) lands at `o + u·s`.
//! - image → model input (bilinear, PyTorch `align_corners=False`, no antialiasing): model pixel
//!   `i` reads frame coordinate `u = (i + 0.5 − o)/s`; outside `0..W` it is padding (the mean
//!   colour, 0 after normalisation), else it samples `f = max(u − 0.5, 0)` between `⌊f⌋` and
//!   `⌊f⌋+1` (both clamped to the frame).
//! - class map → frame: frame pixel `X` reads model column `⌊o + (X + 0.5)·s⌋`; outside the
//!   model's width it is [`UNSEEN`] (crop: the model never saw it).

use crate::model::Fit;

/// Class id written where the model did not see the frame (the dataset's "unlabeled").
pub const UNSEEN: u8 = 255;

/// One axis of a fit: model coordinate = `offset + frame coordinate · scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AxisFit {
    pub scale: f64,
    pub offset: f64,
}

/// The two axes of `fit` for a `frame` (width, height) shown to a `model` (width, height) input.
/// [`Fit::Native`] is a stretch: the caller has already chosen the input size.
pub fn fit_axes(fit: Fit, frame: (u32, u32), model: (u32, u32)) -> (AxisFit, AxisFit) {
    let (fw, fh) = (frame.0.max(1) as f64, frame.1.max(1) as f64);
    let (mw, mh) = (model.0 as f64, model.1 as f64);
    let (sx, sy) = match fit {
        Fit::Stretch | Fit::Native => (mw / fw, mh / fh),
        Fit::Crop => {
            let s = (mw / fw).max(mh / fh);
            (s, s)
        }
        Fit::Letterbox => {
            let s = (mw / fw).min(mh / fh);
            (s, s)
        }
    };
    (
        AxisFit {
            scale: sx,
            offset: (mw - fw * sx) / 2.0,
        },
        AxisFit {
            scale: sy,
            offset: (mh - fh * sy) / 2.0,
        },
    )
}

/// Where each model-input index samples one axis of the frame: two neighbours and the weight of
/// the second. Indices outside `inside` are padding.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisMap {
    pub(crate) first: Vec<u32>,
    pub(crate) second: Vec<u32>,
    pub(crate) weight: Vec<f32>,
    pub(crate) inside: std::ops::Range<usize>,
}

impl AxisMap {
    pub fn new(frame_len: usize, model_len: usize, axis: AxisFit) -> Self {
        let (mut first, mut second, mut weight) = (
            Vec::with_capacity(model_len),
            Vec::with_capacity(model_len),
            Vec::with_capacity(model_len),
        );
        let (mut lo, mut hi) = (model_len, 0);
        let last = frame_len.saturating_sub(1);
        for i in 0..model_len {
            let u = (i as f64 + 0.5 - axis.offset) / axis.scale;
            if u >= 0.0 && u < frame_len as f64 {
                lo = lo.min(i);
                hi = hi.max(i + 1);
            }
            let f = (u - 0.5).max(0.0);
            let i0 = (f.floor() as usize).min(last);
            first.push(i0 as u32);
            second.push((i0 + 1).min(last) as u32);
            weight.push((f - i0 as f64).clamp(0.0, 1.0) as f32);
        }
        Self {
            first,
            second,
            weight,
            inside: lo.min(hi)..hi,
        }
    }

    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

/// For each frame index on one axis, the model index its class comes from, or `u32::MAX` where
/// the model did not see it.
pub fn class_axis(frame_len: usize, model_len: usize, axis: AxisFit, out: &mut Vec<u32>) {
    out.clear();
    out.extend((0..frame_len).map(|x| {
        let m = axis.offset + (x as f64 + 0.5) * axis.scale;
        if m < 0.0 || m >= model_len as f64 {
            u32::MAX
        } else {
            (m.floor() as usize).min(model_len - 1) as u32
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_matches_pixel_centre_sampling_both_ways() {
        let (x, _) = fit_axes(Fit::Stretch, (640, 480), (512, 256));
        assert_eq!((x.scale, x.offset), (0.8, 0.0));
        let mut cols = Vec::new();
        class_axis(640, 512, x, &mut cols);
        // Integer form of ⌊(X + 0.5)·w/W⌋, the old nearest-neighbour rule.
        for (frame_x, &m) in cols.iter().enumerate() {
            assert_eq!(m as usize, ((2 * frame_x + 1) * 512 / (2 * 640)).min(511));
        }
    }

    #[test]
    fn crop_covers_and_letterbox_fits() {
        // 4:3 frame into a 2:1 input.
        let (cx, cy) = fit_axes(Fit::Crop, (640, 480), (512, 256));
        assert_eq!((cx.scale, cy.scale), (0.8, 0.8));
        assert_eq!((cx.offset, cy.offset), (0.0, -64.0));
        let mut rows = Vec::new();
        class_axis(480, 256, cy, &mut rows);
        // 480·0.8 = 384 rows of which the middle 256 are seen: 80 frame rows cut at each end.
        assert_eq!(rows.iter().filter(|&&r| r == u32::MAX).count(), 160);
        assert_eq!(
            (rows[79], rows[80], rows[399], rows[400]),
            (u32::MAX, 0, 255, u32::MAX)
        );

        let (lx, ly) = fit_axes(Fit::Letterbox, (640, 480), (512, 256));
        let s = 256.0 / 480.0;
        assert_eq!((lx.scale, ly.scale, ly.offset), (s, s, 0.0));
        let map = AxisMap::new(640, 512, lx);
        // 640·s = 341.3 columns of picture, centred; the rest is padding.
        assert_eq!(map.inside, 85..427);
        let mut cols = Vec::new();
        class_axis(640, 512, lx, &mut cols);
        assert!(cols.iter().all(|&c| (85..427).contains(&c)));
    }

    #[test]
    fn the_same_size_is_the_identity_for_every_fit() {
        for fit in Fit::ALL {
            let (x, y) = fit_axes(fit, (64, 32), (64, 32));
            let map = AxisMap::new(64, 64, x);
            assert_eq!(map.first, (0..64).collect::<Vec<u32>>(), "{fit}");
            assert!(map.weight.iter().all(|&w| w == 0.0));
            let mut rows = Vec::new();
            class_axis(32, 32, y, &mut rows);
            assert_eq!(rows, (0..32).collect::<Vec<u32>>());
        }
    }

    #[test]
    fn fits_parse_by_name() {
        for fit in Fit::ALL {
            assert_eq!(fit.name().parse::<Fit>().unwrap(), fit);
        }
        assert!("squash".parse::<Fit>().unwrap_err().contains("letterbox"));
    }
}
