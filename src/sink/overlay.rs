//! Colour overlays: the frame blended half-and-half with each pixel's class display colour.

use image::{GrayImage, RgbImage};

use crate::error::{Error, Result};
use crate::frame_path::{ChannelOrder, ImageView};

/// Writes `image` blended 50/50 with `colors[class]` into `out` (resized only when the frame size
/// changes). Pixels whose id has no colour (255 = unlabeled) keep the frame's colour.
pub fn blend_into(image: &RgbImage, classes: &GrayImage, colors: &[[u8; 3]], out: &mut RgbImage) {
    if let Err(e) = blend_view_into(image.into(), classes.as_raw(), colors, out) {
        log::warn!("overlay: {e}");
    }
}

/// [`blend_into`] for a frame in the caller's memory; `out` keeps the frame's channel order (a
/// BGR frame gets a BGR overlay). `classes` holds one id per pixel, row-major.
pub fn blend_view_into(
    image: ImageView,
    classes: &[u8],
    colors: &[[u8; 3]],
    out: &mut RgbImage,
) -> Result<()> {
    let (w, h) = image.dimensions();
    let pixels = w as usize * h as usize;
    if classes.len() != pixels {
        return Err(Error::BadFrame {
            msg: format!(
                "{} class ids for a {w}×{h} frame; the class map must have the frame's size",
                classes.len()
            ),
        });
    }
    if out.dimensions() != (w, h) {
        *out = RgbImage::new(w, h);
    }
    let bgr = image.order() == ChannelOrder::Bgr;
    let rows = out
        .chunks_exact_mut(3 * w as usize)
        .zip(classes.chunks_exact(w as usize));
    for (y, (dst, ids)) in rows.enumerate() {
        for ((d, s), id) in dst
            .chunks_exact_mut(3)
            .zip(image.row(y).chunks_exact(3))
            .zip(ids)
        {
            match colors.get(*id as usize) {
                Some(c) => {
                    for ch in 0..3 {
                        let c = if bgr { c[2 - ch] } else { c[ch] };
                        d[ch] = ((s[ch] as u16 + c as u16) / 2) as u8;
                    }
                }
                None => d.copy_from_slice(s),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blends_known_classes_and_keeps_unknown_ones() {
        let image = RgbImage::from_raw(2, 1, vec![100, 100, 100, 10, 20, 30]).unwrap();
        let classes = GrayImage::from_raw(2, 1, vec![0, 255]).unwrap();
        let mut out = RgbImage::new(0, 0);
        blend_into(&image, &classes, &[[200, 0, 50]], &mut out);
        assert_eq!(out.as_raw(), &[150, 50, 75, 10, 20, 30]);
    }

    #[test]
    fn a_bgr_frame_gets_a_bgr_overlay_and_a_wrong_class_map_is_refused() {
        let bgr = [100, 100, 100, 30, 20, 10];
        let view = ImageView::new(&bgr, 2, 1, 6, ChannelOrder::Bgr).unwrap();
        let mut out = RgbImage::new(0, 0);
        blend_view_into(view, &[0, 255], &[[200, 0, 50]], &mut out).unwrap();
        assert_eq!(out.as_raw(), &[75, 50, 150, 30, 20, 10]);
        let err = blend_view_into(view, &[0], &[[200, 0, 50]], &mut out).unwrap_err();
        assert!(err.to_string().contains("the frame's size"), "{err}");
    }
}
