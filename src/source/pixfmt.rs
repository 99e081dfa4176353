//! The packed camera formats (YUYV, RGB3, GREY) converted to RGB, and the buffer checks the
//! MJPG path shares.
//!
//! Conversions write into a caller-owned [`RgbImage`] that is only reallocated when the frame
//! size changes ([`super::frame_decoder::FrameDecoder::decode_pooled`] takes that image from a
//! pool), so a steady stream allocates no output image per frame. A truncated or malformed
//! buffer is [`Error::FrameData`], never a panic: buffers come from hardware.
//!
//! Which format to ask a device for is [`super::negotiate`]'s business, not this module's.

use crate::pixel_format::{FrameLayout, PixelFormat};
use crate::{Error, Result};
use image::RgbImage;

/// Reuses `out` when it already has the right size.
pub(crate) fn ensure_size(out: &mut RgbImage, width: u32, height: u32) {
    if out.dimensions() != (width, height) {
        *out = RgbImage::new(width, height);
    }
}

/// A buffer problem found by our own checks (no decoder error behind it).
pub(crate) fn bad_buffer(format: PixelFormat, problem: impl Into<String>) -> Error {
    Error::FrameData {
        format,
        problem: problem.into(),
        source: None,
    }
}

/// Checks a packed buffer against its layout and returns (row bytes used, stride).
fn check_packed(format: PixelFormat, layout: FrameLayout, len: usize) -> Result<(usize, usize)> {
    let bpp = format.packed_bytes_per_pixel().unwrap_or(1);
    if layout.width == 0 || layout.height == 0 {
        return Err(bad_buffer(
            format,
            format!("frame size {}x{}", layout.width, layout.height),
        ));
    }
    let (w, h) = (layout.width as usize, layout.height as usize);
    // YUYV carries pixels in pairs; an odd width still needs the whole last pair.
    let row = if format == PixelFormat::Yuyv {
        w.div_ceil(2) * 4
    } else {
        w * bpp
    };
    let stride = if layout.stride == 0 {
        row
    } else {
        layout.stride as usize
    };
    if stride < row {
        return Err(bad_buffer(
            format,
            format!("row stride {stride} is shorter than a {w}-pixel row ({row} bytes)"),
        ));
    }
    let needed = stride.checked_mul(h - 1).and_then(|v| v.checked_add(row));
    match needed {
        Some(needed) if len >= needed => Ok((row, stride)),
        Some(needed) => Err(bad_buffer(
            format,
            format!("a {w}x{h} frame needs {needed} bytes, got {len} (truncated transfer?)"),
        )),
        None => Err(bad_buffer(format, format!("frame size {w}x{h} overflows"))),
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// BT.601 limited range (Y 16..235, Cb/Cr 16..240) to RGB in 8.8 fixed point: the
/// coefficients are 255/219 and the Kr/Kb-derived chroma factors, times 256.
#[inline]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    [
        clamp_u8((c + 409 * e + 128) >> 8),
        clamp_u8((c - 100 * d - 208 * e + 128) >> 8),
        clamp_u8((c + 516 * d + 128) >> 8),
    ]
}

/// YUYV (Y0 U Y1 V per pixel pair) into `out`.
pub fn yuyv_into(data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (_, stride) = check_packed(PixelFormat::Yuyv, layout, data.len())?;
    let width = layout.width as usize;
    ensure_size(out, layout.width, layout.height);
    for (src_row, dst_row) in data.chunks(stride).zip(out.chunks_exact_mut(width * 3)) {
        for (quad, dst) in src_row.chunks_exact(4).zip(dst_row.chunks_mut(6)) {
            let (u, v) = (quad[1], quad[3]);
            let first = yuv_to_rgb(quad[0], u, v);
            dst[..3].copy_from_slice(&first);
            // The last pair of an odd-width row has only one pixel in the image.
            if dst.len() == 6 {
                dst[3..].copy_from_slice(&yuv_to_rgb(quad[2], u, v));
            }
        }
    }
    Ok(())
}

/// RGB3 (packed R, G, B) into `out`.
pub fn rgb3_into(data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (row, stride) = check_packed(PixelFormat::Rgb3, layout, data.len())?;
    ensure_size(out, layout.width, layout.height);
    for (src_row, dst_row) in data.chunks(stride).zip(out.chunks_exact_mut(row)) {
        dst_row.copy_from_slice(&src_row[..row]);
    }
    Ok(())
}

/// GREY (8-bit luminance) into `out`, replicated to R, G and B.
pub fn grey_into(data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (row, stride) = check_packed(PixelFormat::Grey, layout, data.len())?;
    ensure_size(out, layout.width, layout.height);
    for (src_row, dst_row) in data.chunks(stride).zip(out.chunks_exact_mut(row * 3)) {
        for (&l, dst) in src_row[..row].iter().zip(dst_row.chunks_exact_mut(3)) {
            dst.fill(l);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pixel_format::FourCc;
    use crate::source::frame_decoder::{FrameDecoder, FRAME_POOL_CAPACITY};

    /// BT.601 limited-range forward transform in floating point, the reference the integer
    /// decoder is checked against.
    fn rgb_to_yuv(rgb: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = rgb.map(f64::from);
        let y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0;
        let cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0;
        let cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0;
        [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
    }

    /// A YUYV frame whose pixel pairs each carry one colour.
    fn yuyv_of(colours: &[[u8; 3]], width: u32, height: u32) -> Vec<u8> {
        let mut data = Vec::new();
        for i in 0..(width / 2 * height) as usize {
            let [y, u, v] = rgb_to_yuv(colours[i % colours.len()]);
            data.extend_from_slice(&[y, u, y, v]);
        }
        data
    }

    const TOLERANCE: i32 = 2;

    fn assert_close(got: &[u8], want: [u8; 3], what: &str) {
        for c in 0..3 {
            let d = (i32::from(got[c]) - i32::from(want[c])).abs();
            assert!(
                d <= TOLERANCE,
                "{what}: got {got:?}, want {want:?} (±{TOLERANCE})"
            );
        }
    }

    #[test]
    fn yuyv_known_colours_round_trip_within_tolerance() {
        let colours = [
            [0, 0, 0],
            [255, 255, 255],
            [128, 128, 128],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [200, 120, 40],
            [17, 90, 230],
        ];
        let (w, h) = (16, 3);
        let data = yuyv_of(&colours, w, h);
        assert_eq!(data.len(), (w * h * 2) as usize);
        let mut out = RgbImage::new(1, 1);
        yuyv_into(&data, FrameLayout::packed(w, h), &mut out).unwrap();
        assert_eq!(out.dimensions(), (w, h));
        for (i, px) in out.pixels().enumerate() {
            assert_close(
                &px.0,
                colours[(i / 2) % colours.len()],
                &format!("pixel {i}"),
            );
        }
    }

    #[test]
    fn yuyv_limited_range_extremes_are_exact() {
        // Y=16 is black and Y=235 white in limited range; neutral chroma is 128.
        let data = [16, 128, 235, 128];
        let mut out = RgbImage::new(2, 1);
        yuyv_into(&data, FrameLayout::packed(2, 1), &mut out).unwrap();
        assert_eq!(out.as_raw(), &vec![0, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn yuyv_honours_row_padding_and_odd_widths() {
        // 3 pixels wide: two pairs per row (8 bytes) plus 4 bytes of driver padding.
        let grey = rgb_to_yuv([128, 128, 128]);
        let white = rgb_to_yuv([255, 255, 255]);
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend_from_slice(&[grey[0], grey[1], white[0], grey[2]]);
            data.extend_from_slice(&[grey[0], grey[1], 0, grey[2]]);
            data.extend_from_slice(&[9, 9, 9, 9]);
        }
        let mut out = RgbImage::new(3, 2);
        yuyv_into(
            &data,
            FrameLayout {
                width: 3,
                height: 2,
                stride: 12,
            },
            &mut out,
        )
        .unwrap();
        for y in 0..2 {
            assert_close(&out.get_pixel(0, y).0, [128, 128, 128], "x0");
            assert_close(&out.get_pixel(1, y).0, [255, 255, 255], "x1");
            assert_close(&out.get_pixel(2, y).0, [128, 128, 128], "x2");
        }
    }

    #[test]
    fn output_buffer_is_reused_when_the_size_holds() {
        let data = vec![128u8; 8 * 4 * 2];
        let mut out = RgbImage::new(8, 4);
        let before = out.as_ptr();
        yuyv_into(&data, FrameLayout::packed(8, 4), &mut out).unwrap();
        assert_eq!(out.as_ptr(), before);
    }

    #[test]
    fn truncated_packed_frames_are_corrupt_not_panics() {
        let mut out = RgbImage::new(1, 1);
        let layout = FrameLayout::packed(4, 2);
        for len in [0, 1, 3, 7] {
            let data = vec![0u8; len];
            for format in [PixelFormat::Yuyv, PixelFormat::Rgb3, PixelFormat::Grey] {
                let err = FrameDecoder::new()
                    .decode(format, &data, layout, &mut out)
                    .unwrap_err();
                assert!(
                    matches!(err, Error::FrameData { format: f, .. } if f == format),
                    "{format} len {len}: {err}"
                );
                assert!(err.is_recoverable());
                assert!(
                    err.to_string().starts_with(&format!("{format} buffer: ")),
                    "{err}"
                );
            }
        }
        let err = yuyv_into(
            &[0; 64],
            FrameLayout {
                width: 4,
                height: 2,
                stride: 4,
            },
            &mut out,
        )
        .unwrap_err();
        assert!(err.to_string().contains("stride"), "{err}");
        let err = grey_into(&[0; 64], FrameLayout::packed(0, 2), &mut out).unwrap_err();
        assert!(matches!(err, Error::FrameData { .. }));
        let huge = FrameLayout {
            width: u32::MAX,
            height: u32::MAX,
            stride: u32::MAX,
        };
        assert!(rgb3_into(&[0; 64], huge, &mut out).is_err());
    }

    #[test]
    fn rgb3_copies_and_grey_replicates() {
        let rgb: Vec<u8> = (0..2 * 2 * 3).map(|v| v as u8 * 10).collect();
        let mut out = RgbImage::new(2, 2);
        rgb3_into(&rgb, FrameLayout::packed(2, 2), &mut out).unwrap();
        assert_eq!(out.as_raw(), &rgb);

        let grey = [0u8, 100, 7, 7, 200, 255, 7, 7];
        grey_into(
            &grey,
            FrameLayout {
                width: 2,
                height: 2,
                stride: 4,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.as_raw(),
            &vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]
        );
    }

    #[test]
    fn pooled_decoding_reuses_an_image_once_it_is_dropped() {
        let mut decoder = FrameDecoder::new();
        let data = vec![90u8; 8 * 4];
        let layout = FrameLayout::packed(8, 4);
        let first = decoder
            .decode_pooled(PixelFormat::Grey, &data, layout)
            .unwrap();
        let memory = first.as_ptr();
        drop(first);
        for _ in 0..10 {
            let frame = decoder
                .decode_pooled(PixelFormat::Grey, &data, layout)
                .unwrap();
            assert_eq!(
                frame.as_ptr(),
                memory,
                "a steady stream writes into the same image"
            );
            assert_eq!(frame.get_pixel(3, 2).0, [90, 90, 90]);
        }
        // Frames still held downstream are never written over; past the pool's capacity the
        // decoder allocates and counts it.
        let held: Vec<_> = (0..FRAME_POOL_CAPACITY + 2)
            .map(|_| {
                decoder
                    .decode_pooled(PixelFormat::Grey, &data, layout)
                    .unwrap()
            })
            .collect();
        assert_eq!(decoder.pool_overflow(), 2);
        let distinct: std::collections::HashSet<_> = held.iter().map(|f| f.as_ptr()).collect();
        assert_eq!(distinct.len(), held.len());
        // A bad buffer is an error and leaves no half-written frame behind.
        drop(held);
        assert!(decoder
            .decode_pooled(PixelFormat::Grey, &data[..3], layout)
            .is_err());
        assert_eq!(
            decoder
                .decode_pooled(PixelFormat::Grey, &data, layout)
                .unwrap()
                .as_ptr(),
            memory
        );
    }

    #[test]
    fn fourcc_parse_and_display() {
        assert_eq!(FourCc::parse("YUYV"), Some(FourCc(*b"YUYV")));
        assert_eq!(FourCc::parse("YUY"), None);
        assert_eq!(FourCc::parse("YUYVV"), None);
        assert_eq!(FourCc([b'A', 0, b'B', 0xFF]).to_string(), "A\\x00B\\xff");
        assert_eq!(
            PixelFormat::from_fourcc(FourCc(*b"MJPG")),
            Some(PixelFormat::Mjpg)
        );
        assert_eq!(PixelFormat::from_fourcc(FourCc(*b"H264")), None);
    }
}
