//! Image files (PNG, JPEG) to RGB: reading the bytes, the checks the decoders do not make (an
//! empty file, a JPEG cut short), and decoding into a caller's image so that a stream of files
//! reuses one output buffer. [`load_rgb`] (re-exported as `gss::load_rgb`) is the allocating
//! convenience for one-off images.

use super::jpeg::{jpeg_is_complete, starts_like_jpeg};
use super::pixfmt::ensure_size;
use crate::{Error, Result};
use image::{ColorType, ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::{Cursor, Read};
use std::path::Path;

/// The largest image file read: an uncompressed 8K PNG is about 100 MB.
pub const MAX_FILE_BYTES: u64 = 128 << 20;
/// The largest decoded frame: 8K UHD (7680×4320) is 33 Mpx; a frame of more pixels, or wider
/// or taller than [`MAX_SIDE`], is refused before anything is allocated for it.
pub const MAX_PIXELS: u64 = 40_000_000;
pub const MAX_SIDE: u32 = 16384;

/// Decodes an image file to RGB; a missing, corrupt or empty file is an error naming it.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let mut out = RgbImage::new(0, 0);
    load_rgb_into(path, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// Reads `path` into `bytes` (cleared first, its allocation kept) and decodes it into `out`,
/// which is only reallocated when the size changes or the file is not 8-bit RGB.
pub fn load_rgb_into(path: &Path, bytes: &mut Vec<u8>, out: &mut RgbImage) -> Result<()> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    bytes.clear();
    let mut file = std::fs::File::open(path).map_err(io_err)?;
    // One byte past the bound tells a file at the bound from a larger one, whatever its
    // metadata says (a FIFO, a file still growing).
    file.by_ref()
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Image {
            path: path.to_path_buf(),
            problem: "larger than the 128 MiB an image file may have (is it an image?)",
            source: None,
        });
    }
    decode_rgb_into(path, bytes, out)
}

/// Decodes the bytes of an image file into `out`; `path` only names the file in errors.
pub fn decode_rgb_into(path: &Path, bytes: &[u8], out: &mut RgbImage) -> Result<()> {
    let unusable = |problem| Error::Image {
        path: path.to_path_buf(),
        problem,
        source: None,
    };
    let refused = |e| Error::Image {
        path: path.to_path_buf(),
        problem: "cannot decode image",
        source: Some(e),
    };
    if bytes.is_empty() {
        return Err(unusable("the file is empty"));
    }
    if starts_like_jpeg(bytes) && !jpeg_is_complete(bytes) {
        return Err(unusable("truncated JPEG (no end-of-image marker)"));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let decoder = reader.into_decoder().map_err(refused)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::Image {
            path: path.to_path_buf(),
            problem:
                "declares a frame larger than gss takes (at most 16384 pixels a side and 40 Mpx)",
            source: None,
        });
    }
    // The reader checks the declared size against the limits only when it allocates the image
    // itself; we allocate, so we check.
    Limits::default()
        .reserve(decoder.total_bytes())
        .map_err(refused)?;
    if decoder.color_type() == ColorType::Rgb8 {
        ensure_size(out, width, height);
        decoder.read_image(out.as_mut()).map_err(refused)
    } else {
        // Grey, RGBA, 16-bit: converting allocates, which files in those formats pay per frame.
        *out = image::DynamicImage::from_decoder(decoder)
            .map_err(refused)?
            .into_rgb8();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn png_of(img: &image::DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    }

    #[test]
    fn rgb_files_decode_into_the_callers_image() {
        let picture = RgbImage::from_fn(12, 5, |x, y| image::Rgb([x as u8 * 20, y as u8 * 40, 7]));
        let bytes = png_of(&picture.clone().into());
        let mut out = RgbImage::new(12, 5);
        let memory = out.as_ptr();
        decode_rgb_into(Path::new("a.png"), &bytes, &mut out).unwrap();
        assert_eq!(out, picture);
        assert_eq!(out.as_ptr(), memory, "same size: no new image");
        // A new size replaces the buffer.
        let bigger = png_of(&RgbImage::new(20, 5).into());
        decode_rgb_into(Path::new("b.png"), &bigger, &mut out).unwrap();
        assert_eq!(out.dimensions(), (20, 5));
    }

    #[test]
    fn other_colour_types_are_converted() {
        let grey = image::GrayImage::from_fn(4, 3, |x, _| image::Luma([x as u8 * 50]));
        let mut out = RgbImage::new(0, 0);
        decode_rgb_into(Path::new("g.png"), &png_of(&grey.into()), &mut out).unwrap();
        assert_eq!(out.get_pixel(3, 1).0, [150, 150, 150]);
        let rgba = image::RgbaImage::from_pixel(2, 2, image::Rgba([1, 2, 3, 4]));
        decode_rgb_into(Path::new("c.png"), &png_of(&rgba.into()), &mut out).unwrap();
        assert_eq!(
            (out.dimensions(), out.get_pixel(1, 1).0),
            ((2, 2), [1, 2, 3])
        );
    }

    #[test]
    fn unusable_files_say_why_once_and_name_the_file() {
        let path = Path::new("shots/x.jpg");
        let mut out = RgbImage::new(0, 0);
        let err = decode_rgb_into(path, b"", &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shots/x.jpg: the file is empty; replace or remove the file"
        );
        assert!(err.source().is_none() && err.is_recoverable());

        let err = decode_rgb_into(path, b"\xff\xd8\xff\xe0 cut", &mut out).unwrap_err();
        assert!(err.to_string().contains("truncated JPEG"), "{err}");

        let err = decode_rgb_into(path, b"garbage", &mut out).unwrap_err();
        let Error::Image {
            source: Some(cause),
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        let text = err.to_string();
        assert!(
            text.starts_with("shots/x.jpg: cannot decode image: ")
                && text.contains(&cause.to_string()),
            "{text}"
        );
        assert_eq!(text.matches("shots/x.jpg").count(), 1, "{text}");
        assert!(err.source().is_some_and(|s| s.is::<image::ImageError>()));
    }

    #[test]
    fn missing_files_are_io_errors_naming_them() {
        let err = load_rgb(Path::new("/nonexistent/gss/frame.png")).unwrap_err();
        assert!(
            matches!(err, Error::Io { .. })
                && err.to_string().contains("/nonexistent/gss/frame.png"),
            "{err}"
        );
    }

    #[test]
    fn frames_beyond_the_bound_are_refused_before_allocation() {
        // A valid 1×1 PNG whose header is patched to declare 20000×20000 (400 Mpx); its CRC is
        // not the decoder's concern before the size check.
        let mut bytes = png_of(&RgbImage::new(1, 1).into());
        bytes[16..20].copy_from_slice(&20000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&20000u32.to_be_bytes());
        let mut out = RgbImage::new(0, 0);
        let err = decode_rgb_into(Path::new("huge.png"), &bytes, &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("huge.png") && (err.contains("40 Mpx") || err.contains("cannot decode")),
            "{err}"
        );
        assert_eq!(out.dimensions(), (0, 0), "nothing allocated for it");
    }
}
