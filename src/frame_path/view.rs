//! [`ImageView`]: a frame in the caller's own memory (a numpy array, a camera library's buffer)
//! as the frame path reads it. The preprocess samples the view in place, so a caller whose
//! pixels are not in an [`RgbImage`] hands them over without copying them into one first; rows
//! may be padded and the channels may come as BGR (OpenCV's order).

use image::RgbImage;

use crate::error::{Error, Result};

/// Order of the three 8-bit channels of each pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelOrder {
    #[default]
    Rgb,
    /// OpenCV's order.
    Bgr,
}

impl ChannelOrder {
    pub fn name(self) -> &'static str {
        match self {
            ChannelOrder::Rgb => "RGB",
            ChannelOrder::Bgr => "BGR",
        }
    }
}

impl std::fmt::Display for ChannelOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ChannelOrder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [ChannelOrder::Rgb, ChannelOrder::Bgr]
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown channel order {s:?}; expected \"RGB\" or \"BGR\""))
    }
}

/// A borrowed H×W three-channel 8-bit frame: pixels packed within a row, rows `row_stride`
/// bytes apart.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    row_stride: usize,
    order: ChannelOrder,
}

impl<'a> ImageView<'a> {
    /// Checks that `data` holds `height` rows of `width` packed pixels, `row_stride` bytes apart
    /// (at least `3 × width`; the last row needs no padding after it).
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        row_stride: usize,
        order: ChannelOrder,
    ) -> Result<Self> {
        let bad = |msg: String| Err(Error::BadFrame { msg });
        if width == 0 || height == 0 {
            return bad(format!("{width}×{height} has no pixels"));
        }
        let row_len = (width as usize).checked_mul(3);
        let Some(row_len) = row_len.filter(|&n| n <= row_stride) else {
            return bad(format!(
                "rows {row_stride} bytes apart cannot hold {width} pixels of 3 bytes"
            ));
        };
        let needed = (height as usize - 1)
            .checked_mul(row_stride)
            .and_then(|n| n.checked_add(row_len));
        match needed {
            Some(n) if n <= data.len() => Ok(Self {
                data,
                width,
                height,
                row_stride,
                order,
            }),
            _ => bad(format!(
                "{width}×{height} with rows {row_stride} bytes apart does not fit in {} bytes",
                data.len()
            )),
        }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn order(&self) -> ChannelOrder {
        self.order
    }

    /// Row `y`'s `3 × width` bytes.
    #[inline(always)]
    pub fn row(&self, y: usize) -> &'a [u8] {
        &self.data[y * self.row_stride..][..self.width as usize * 3]
    }

    /// The frame as a packed RGB image: the one copy a caller makes when the frame must outlive
    /// its buffer (a frame queued in a [`crate::Pipeline`]), into `out` (reallocated only when
    /// the size changes).
    pub fn copy_rgb_into(&self, out: &mut RgbImage) {
        if out.dimensions() != self.dimensions() {
            *out = RgbImage::new(self.width, self.height);
        }
        let row_len = self.width as usize * 3;
        for (y, dst) in out.chunks_exact_mut(row_len).enumerate() {
            let src = self.row(y);
            match self.order {
                ChannelOrder::Rgb => dst.copy_from_slice(src),
                ChannelOrder::Bgr => {
                    for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3)) {
                        d.copy_from_slice(&[s[2], s[1], s[0]]);
                    }
                }
            }
        }
    }
}

impl<'a> From<&'a RgbImage> for ImageView<'a> {
    fn from(image: &'a RgbImage) -> Self {
        Self {
            data: image.as_raw(),
            width: image.width(),
            height: image.height(),
            row_stride: image.width() as usize * 3,
            order: ChannelOrder::Rgb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_check_their_geometry() {
        let data = vec![0u8; 2 * 10 + 9];
        assert!(ImageView::new(&data, 3, 3, 10, ChannelOrder::Rgb).is_ok());
        for (w, h, stride) in [(3, 4, 10), (4, 3, 10), (0, 3, 10), (3, 0, 10), (3, 3, 8)] {
            let err = ImageView::new(&data, w, h, stride, ChannelOrder::Rgb).unwrap_err();
            assert!(
                matches!(err, Error::BadFrame { .. }),
                "{w}x{h}/{stride}: {err}"
            );
        }
        let huge = ImageView::new(&data, u32::MAX, u32::MAX, usize::MAX, ChannelOrder::Rgb);
        assert!(
            huge.is_err(),
            "sizes that overflow are refused, not wrapped"
        );
    }

    #[test]
    fn a_padded_bgr_view_copies_to_the_packed_rgb_image() {
        // 2×2 pixels, rows 8 bytes apart (2 bytes of padding), BGR.
        let data = [3, 2, 1, 6, 5, 4, 99, 99, 9, 8, 7, 12, 11, 10];
        let view = ImageView::new(&data, 2, 2, 8, ChannelOrder::Bgr).unwrap();
        let mut out = RgbImage::new(0, 0);
        view.copy_rgb_into(&mut out);
        assert_eq!(out.as_raw(), &(1..=12).collect::<Vec<u8>>());
        assert_eq!("bgr".parse::<ChannelOrder>(), Ok(ChannelOrder::Bgr));
        assert!("rgba".parse::<ChannelOrder>().is_err());
    }
}
