//! Maskige → class map at the frame's size: X⁻¹ at the model's size (any [`MaskigeInverse`]: the
//! nearest palette colour or the package's ONNX graph), then the fit's mapping back to the
//! frame (pixel centres; [`UNSEEN`] where the model did not look). Buffers are reused from frame
//! to frame.

use std::time::{Duration, Instant};

use image::GrayImage;

use super::geometry::{class_axis, fit_axes, UNSEEN};
use crate::error::Result;
use crate::maskige::MaskigeInverse;
use crate::model::Fit;
use crate::model::Manifest;

pub struct Postprocess {
    inverse: Box<dyn MaskigeInverse>,
    fit: Fit,
    /// Class ids at the model's size.
    classes: GrayImage,
    /// Per frame column / row, the model column / row its class comes from (for the last frame
    /// size seen).
    tables: Option<ClassTables>,
}

/// For one frame size (width, height): per frame column and per frame row, the model column /
/// row its class comes from.
type ClassTables = ((u32, u32), Vec<u32>, Vec<u32>);

impl Postprocess {
    pub fn new(manifest: &Manifest, inverse: Box<dyn MaskigeInverse>, fit: Fit) -> Self {
        let classes = GrayImage::new(manifest.input.width as u32, manifest.input.height as u32);
        Self {
            inverse,
            fit,
            classes,
            tables: None,
        }
    }

    pub fn set_fit(&mut self, fit: Fit) {
        self.fit = fit;
        self.tables = None;
    }

    /// The X⁻¹ in use, for logs.
    pub fn inverse_name(&self) -> &str {
        self.inverse.name()
    }

    /// Writes the class map for a `frame_size` (width, height) frame into `out` (reallocated only
    /// when the size changes); returns the time spent in X⁻¹ and in the mapping back.
    pub fn run(
        &mut self,
        maskige: &[f32],
        frame_size: (u32, u32),
        out: &mut GrayImage,
    ) -> Result<(Duration, Duration)> {
        let t0 = Instant::now();
        self.inverse.classes_into(maskige, &mut self.classes)?;
        let t1 = Instant::now();
        if out.dimensions() != frame_size {
            *out = GrayImage::new(frame_size.0, frame_size.1);
        }
        if frame_size == self.classes.dimensions() {
            out.copy_from_slice(&self.classes);
        } else {
            if self
                .tables
                .as_ref()
                .is_none_or(|(d, _, _)| *d != frame_size)
            {
                let model = self.classes.dimensions();
                let (ax, ay) = fit_axes(self.fit, frame_size, model);
                let (mut cols, mut rows) = (Vec::new(), Vec::new());
                class_axis(frame_size.0 as usize, model.0 as usize, ax, &mut cols);
                class_axis(frame_size.1 as usize, model.1 as usize, ay, &mut rows);
                self.tables = Some((frame_size, cols, rows));
            }
            if let Some((_, cols, rows)) = &self.tables {
                map_classes_into(&self.classes, cols, rows, out);
            }
        }
        Ok((t1 - t0, t1.elapsed()))
    }
}

/// `out[y][x] = classes[rows[y]][cols[x]]`, [`UNSEEN`] where either index is `u32::MAX`.
pub fn map_classes_into(classes: &GrayImage, cols: &[u32], rows: &[u32], out: &mut GrayImage) {
    let width = classes.width() as usize;
    let src = classes.as_raw();
    let out_width = out.width() as usize;
    for (dst_row, &r) in out.chunks_exact_mut(out_width).zip(rows) {
        if r == u32::MAX {
            dst_row.fill(UNSEEN);
            continue;
        }
        let src_row = &src[r as usize * width..][..width];
        for (d, &c) in dst_row.iter_mut().zip(cols) {
            *d = if c == u32::MAX {
                UNSEEN
            } else {
                src_row[c as usize]
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_map_back_by_pixel_centres_and_unseen_rows_are_marked() {
        let src = GrayImage::from_raw(2, 2, vec![0, 1, 2, 3]).unwrap();
        let mut dst = GrayImage::new(4, 2);
        let (ax, ay) = fit_axes(Fit::Stretch, (4, 2), (2, 2));
        let (mut cols, mut rows) = (Vec::new(), Vec::new());
        class_axis(4, 2, ax, &mut cols);
        class_axis(2, 2, ay, &mut rows);
        map_classes_into(&src, &cols, &rows, &mut dst);
        assert_eq!(dst.as_raw(), &[0, 0, 1, 1, 2, 2, 3, 3]);

        // A 2×4 frame cropped into the 2×2 input: the top and bottom rows are not seen.
        let mut tall = GrayImage::new(2, 4);
        let (ax, ay) = fit_axes(Fit::Crop, (2, 4), (2, 2));
        class_axis(2, 2, ax, &mut cols);
        class_axis(4, 2, ay, &mut rows);
        map_classes_into(&src, &cols, &rows, &mut tall);
        assert_eq!(tall.as_raw(), &[UNSEEN, UNSEEN, 0, 1, 2, 3, UNSEEN, UNSEEN]);
    }
}
