//! Colour overlays: the frame blended half-and-half with each pixel's class display colour.

use image::{GrayImage, RgbImage};

/// Writes `image` blended 50/50 with `colors[class]` into `out` (resized only when the frame size
/// changes). Pixels whose id has no colour (255 = unlabeled) keep the frame's colour.
pub fn blend_into(image: &RgbImage, classes: &GrayImage, colors: &[[u8; 3]], out: &mut RgbImage) {
    if out.dimensions() != image.dimensions() {
        *out = RgbImage::new(image.width(), image.height());
    }
    let dst = out.as_mut();
    for ((d, s), id) in dst
        .chunks_exact_mut(3)
        .zip(image.as_raw().chunks_exact(3))
        .zip(classes.as_raw())
    {
        match colors.get(*id as usize) {
            Some(c) => {
                for ch in 0..3 {
                    d[ch] = ((s[ch] as u16 + c[ch] as u16) / 2) as u8;
                }
            }
            None => d.copy_from_slice(s),
        }
    }
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
}
