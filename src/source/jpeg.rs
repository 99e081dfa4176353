//! JPEG at the byte level: whether a JPEG stream is whole ([`jpeg_is_complete`]), and MJPG
//! camera frames to RGB ([`MjpgDecoder`]), including the repair many UVC webcams need: their
//! frames carry no Huffman tables (DHT) and assume the standard ones, which we insert.
//!
//! The standard tables are one segment built at compile time, and a frame that needs them is
//! reassembled in a buffer the decoder keeps, so repairing allocates nothing per frame.

use super::pixfmt::{bad_buffer, ensure_size};
use crate::pixel_format::{FrameLayout, PixelFormat};
use crate::{Error, Result};
use image::codecs::jpeg::JpegDecoder;
use image::{ColorType, ImageDecoder, RgbImage};
use std::io::Cursor;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;

/// The most pixels a compressed frame may declare; a corrupt header must not make us
/// allocate gigabytes.
const MAX_PIXELS: u64 = 8192 * 8192;

/// Whether the bytes start like a JPEG (the start-of-image marker).
pub fn starts_like_jpeg(data: &[u8]) -> bool {
    data.starts_with(&[0xFF, SOI])
}

/// Whether a JPEG stream still has its end-of-image marker. The decoder pads a cut-off scan with
/// grey and reports success, which would reach the model as a real picture. Drivers pad frames
/// with zeros and some writers append a few bytes after the marker, so it is looked for in the
/// last KiB before any zero padding (inside the entropy-coded data 0xFF is always stuffed, so
/// FF D9 there is the marker).
pub fn jpeg_is_complete(data: &[u8]) -> bool {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    data[end.saturating_sub(1024)..end]
        .windows(2)
        .any(|w| w == [0xFF, EOI])
}

/// Walks the marker segments before the first scan. Ok(None): the JPEG has its own Huffman
/// tables; Ok(Some(offset)): it has none and they belong before the SOS marker at `offset`.
fn find_dht_insertion_point(data: &[u8]) -> std::result::Result<Option<usize>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != SOI {
        return Err(format!(
            "not a JPEG ({} bytes, no start-of-image marker)",
            data.len()
        ));
    }
    let mut pos = 2;
    loop {
        if pos >= data.len() {
            return Err("ends before the first scan (truncated frame)".into());
        }
        if data[pos] != 0xFF {
            return Err(format!("expected a marker at byte {pos}"));
        }
        // Any number of 0xFF fill bytes may precede a marker code.
        while pos + 1 < data.len() && data[pos + 1] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = data.get(pos + 1) else {
            return Err("ends inside a marker (truncated frame)".into());
        };
        match marker {
            SOS => return Ok(Some(pos)),
            EOI => return Err("ends before the first scan".into()),
            // Markers without a length field.
            0x01 | 0xD0..=0xD7 => pos += 2,
            DHT => return Ok(None),
            _ => {
                let Some(len_bytes) = data.get(pos + 2..pos + 4) else {
                    return Err("ends inside a segment header (truncated frame)".into());
                };
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                if len < 2 || pos + 2 + len > data.len() {
                    return Err(format!(
                        "segment 0xFF{marker:02X} at byte {pos} has bad length {len}"
                    ));
                }
                pos += 2 + len;
            }
        }
    }
}

// The typical Huffman tables of ITU-T T.81 Annex K.3 (tables K.3 to K.6), which UVC MJPG
// streams assume when they omit DHT. Each table is 16 code-length counts then the symbols.
const LUMA_DC_BITS: [u8; 16] = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const CHROMA_DC_BITS: [u8; 16] = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const LUMA_AC_BITS: [u8; 16] = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D];
#[rustfmt::skip]
const LUMA_AC_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
    0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
    0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
    0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
    0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
    0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
    0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
    0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
    0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];
const CHROMA_AC_BITS: [u8; 16] = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
#[rustfmt::skip]
const CHROMA_AC_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
    0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
    0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
    0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
    0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
    0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
    0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
    0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
    0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
    0xF9, 0xFA,
];

/// (table class << 4 | destination id, code-length counts, symbols), in the order they are
/// written into the segment.
const DEFAULT_TABLES: [(u8, &[u8; 16], &[u8]); 4] = [
    (0x00, &LUMA_DC_BITS, &DC_VALUES),
    (0x10, &LUMA_AC_BITS, &LUMA_AC_VALUES),
    (0x01, &CHROMA_DC_BITS, &DC_VALUES),
    (0x11, &CHROMA_AC_BITS, &CHROMA_AC_VALUES),
];

/// Marker, length field, then per table its id byte, 16 counts and its symbols.
const DEFAULT_DHT_LEN: usize = 4
    + DEFAULT_TABLES.len() * (1 + 16)
    + 2 * DC_VALUES.len()
    + LUMA_AC_VALUES.len()
    + CHROMA_AC_VALUES.len();

/// One DHT segment holding all four default tables.
static DEFAULT_DHT: [u8; DEFAULT_DHT_LEN] = default_dht_segment();

const fn default_dht_segment() -> [u8; DEFAULT_DHT_LEN] {
    const fn put(seg: &mut [u8; DEFAULT_DHT_LEN], mut at: usize, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            seg[at] = bytes[i];
            at += 1;
            i += 1;
        }
        at
    }
    let mut seg = [0u8; DEFAULT_DHT_LEN];
    // The length field counts itself but not the marker.
    let length = ((DEFAULT_DHT_LEN - 2) as u16).to_be_bytes();
    let mut at = put(&mut seg, 0, &[0xFF, DHT, length[0], length[1]]);
    let mut t = 0;
    while t < DEFAULT_TABLES.len() {
        let (id, counts, symbols) = DEFAULT_TABLES[t];
        at = put(&mut seg, at, &[id]);
        at = put(&mut seg, at, counts);
        at = put(&mut seg, at, symbols);
        t += 1;
    }
    // Evaluated at compile time: a miscounted length fails the build.
    assert!(at == DEFAULT_DHT_LEN);
    seg
}

/// MJPG frames to RGB, keeping between frames the buffer a frame without Huffman tables is
/// reassembled in and the luminance scratch of grey JPEGs.
#[derive(Debug, Default)]
pub struct MjpgDecoder {
    repaired: Vec<u8>,
    grey: Vec<u8>,
}

impl MjpgDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// One MJPG frame into `out`, adding the standard Huffman tables when the frame has none.
    /// A frame whose size differs from a non-zero `layout` is corrupt, because the rest of the
    /// stream assumes the negotiated size.
    pub fn decode_into(
        &mut self,
        data: &[u8],
        layout: FrameLayout,
        out: &mut RgbImage,
    ) -> Result<()> {
        let bad = |problem: String| bad_buffer(PixelFormat::Mjpg, problem);
        if !jpeg_is_complete(data) {
            return Err(bad(format!(
                "no end-of-image marker in {} bytes (truncated frame)",
                data.len()
            )));
        }
        let Self { repaired, grey } = self;
        let bytes: &[u8] = match find_dht_insertion_point(data).map_err(bad)? {
            None => data,
            Some(at) => {
                repaired.clear();
                repaired.extend_from_slice(&data[..at]);
                repaired.extend_from_slice(&DEFAULT_DHT);
                repaired.extend_from_slice(&data[at..]);
                repaired
            }
        };
        let refused = |e: image::ImageError| Error::FrameData {
            format: PixelFormat::Mjpg,
            problem: "the JPEG decoder refused it".into(),
            source: Some(e),
        };
        let decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(refused)?;
        let (w, h) = decoder.dimensions();
        if layout.width != 0 && layout.height != 0 && (w, h) != (layout.width, layout.height) {
            return Err(bad(format!(
                "a {w}x{h} frame, the device negotiated {}x{}",
                layout.width, layout.height
            )));
        }
        if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(bad(format!("the frame declares an unusable size {w}x{h}")));
        }
        match decoder.color_type() {
            ColorType::Rgb8 => {
                ensure_size(out, w, h);
                decoder.read_image(out.as_mut()).map_err(refused)
            }
            ColorType::L8 => {
                grey.resize(w as usize * h as usize, 0);
                decoder.read_image(grey).map_err(refused)?;
                ensure_size(out, w, h);
                for (&l, dst) in grey.iter().zip(out.chunks_exact_mut(3)) {
                    dst.fill(l);
                }
                Ok(())
            }
            // Rare for cameras (e.g. 16-bit or CMYK JPEG): take the allocating path.
            _ => {
                let img = image::DynamicImage::from_decoder(decoder).map_err(refused)?;
                *out = img.into_rgb8();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8])
        })
    }

    fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(img)
            .unwrap();
        bytes
    }

    /// Cuts every DHT segment out of a JPEG, as many UVC cameras send it.
    fn strip_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut pos = 2;
        while jpeg[pos + 1] != SOS {
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if jpeg[pos + 1] != DHT {
                out.extend_from_slice(&jpeg[pos..pos + 2 + len]);
            }
            pos += 2 + len;
        }
        out.extend_from_slice(&jpeg[pos..]);
        out
    }

    #[test]
    fn default_tables_are_well_formed() {
        for (_, counts, symbols) in DEFAULT_TABLES {
            assert_eq!(
                counts.iter().map(|&b| usize::from(b)).sum::<usize>(),
                symbols.len()
            );
        }
        assert_eq!(DEFAULT_DHT.len(), 2 + 418);
        assert_eq!(
            DEFAULT_DHT[..4],
            [0xFF, DHT, 418u16.to_be_bytes()[0], 418u16.to_be_bytes()[1]]
        );
        // The segment walks like any other: a JPEG made of it alone has tables.
        let mut jpeg = vec![0xFF, SOI];
        jpeg.extend_from_slice(&DEFAULT_DHT);
        jpeg.extend_from_slice(&[0xFF, SOS]);
        assert_eq!(find_dht_insertion_point(&jpeg), Ok(None));
    }

    #[test]
    fn completeness_ignores_zero_padding_and_trailing_bytes() {
        let jpeg = encode_jpeg(&test_picture(16, 16));
        assert!(starts_like_jpeg(&jpeg) && jpeg_is_complete(&jpeg));
        let mut padded = jpeg.clone();
        padded.resize(jpeg.len() + 4096, 0);
        assert!(jpeg_is_complete(&padded), "drivers pad frames with zeros");
        let mut trailing = jpeg.clone();
        trailing.extend_from_slice(b"trailer");
        assert!(jpeg_is_complete(&trailing), "writers append a few bytes");
        assert!(!jpeg_is_complete(&jpeg[..jpeg.len() - 2]));
        assert!(!jpeg_is_complete(&[]) && !starts_like_jpeg(b"\x89PNG"));
    }

    #[test]
    fn mjpg_without_huffman_tables_decodes_like_the_original() {
        let picture = test_picture(48, 32);
        let jpeg = encode_jpeg(&picture);
        let stripped = strip_dht(&jpeg);
        assert!(stripped.len() < jpeg.len());
        assert_eq!(find_dht_insertion_point(&jpeg), Ok(None));
        assert!(matches!(find_dht_insertion_point(&stripped), Ok(Some(_))));

        let mut decoder = MjpgDecoder::new();
        let mut original = RgbImage::new(1, 1);
        decoder
            .decode_into(&jpeg, FrameLayout::packed(48, 32), &mut original)
            .unwrap();
        let mut repaired = RgbImage::new(1, 1);
        decoder
            .decode_into(&stripped, FrameLayout::packed(48, 32), &mut repaired)
            .unwrap();
        assert_eq!(original.as_raw(), repaired.as_raw());
        // And it is the picture: JPEG is lossy, but on average within a few levels.
        let total: u64 = original
            .as_raw()
            .iter()
            .zip(picture.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = total as f64 / picture.as_raw().len() as f64;
        assert!(mean <= 4.0, "mean difference {mean}");
    }

    #[test]
    fn repairing_reuses_the_decoders_buffers() {
        let stripped = strip_dht(&encode_jpeg(&test_picture(48, 32)));
        let mut decoder = MjpgDecoder::new();
        let mut out = RgbImage::new(48, 32);
        let image_memory = out.as_ptr();
        decoder
            .decode_into(&stripped, FrameLayout::packed(48, 32), &mut out)
            .unwrap();
        let repaired_memory = decoder.repaired.as_ptr();
        for _ in 0..5 {
            decoder
                .decode_into(&stripped, FrameLayout::packed(48, 32), &mut out)
                .unwrap();
            assert_eq!(decoder.repaired.as_ptr(), repaired_memory);
        }
        assert_eq!(out.as_ptr(), image_memory);
    }

    #[test]
    fn mjpg_grey_jpeg_is_replicated() {
        let luma = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95)
            .encode_image(&luma)
            .unwrap();
        let mut out = RgbImage::new(1, 1);
        MjpgDecoder::new()
            .decode_into(&strip_dht(&bytes), FrameLayout::packed(0, 0), &mut out)
            .unwrap();
        assert_eq!(out.dimensions(), (16, 16));
        for px in out.pixels() {
            assert!(px[0] == px[1] && px[1] == px[2]);
        }
    }

    #[test]
    fn bad_mjpg_frames_are_corrupt_not_panics() {
        let jpeg = encode_jpeg(&test_picture(32, 16));
        let stripped = strip_dht(&jpeg);
        let mut decoder = MjpgDecoder::new();
        let mut out = RgbImage::new(1, 1);
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xFF],
            vec![0xFF, 0xD8],
            b"not a jpeg at all".to_vec(),
        ];
        for whole in [&jpeg, &stripped] {
            for cut in [3, 4, 5, 20, 100, whole.len() / 2, whole.len() - 2] {
                cases.push(whole[..cut].to_vec());
            }
        }
        // A segment length pointing past the end.
        let mut bad_len = jpeg.clone();
        bad_len[4] = 0xFF;
        cases.push(bad_len);
        for (i, data) in cases.iter().enumerate() {
            match decoder.decode_into(data, FrameLayout::packed(32, 16), &mut out) {
                Err(
                    e @ Error::FrameData {
                        format: PixelFormat::Mjpg,
                        ..
                    },
                ) => assert!(e.is_recoverable()),
                other => panic!("case {i} ({} bytes): {other:?}", data.len()),
            }
        }
        // Right JPEG, wrong negotiated size.
        let err = decoder
            .decode_into(&jpeg, FrameLayout::packed(640, 480), &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("negotiated"), "{err}");
    }

    #[test]
    fn a_decoder_refusal_keeps_the_decoders_error_as_its_source() {
        // Every marker in place, but the frame header declares a sample precision of 3 bits,
        // which only the decoder itself can object to.
        let mut jpeg = encode_jpeg(&test_picture(32, 16));
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("a baseline JPEG");
        jpeg[sof + 4] = 3;
        let err = MjpgDecoder::new()
            .decode_into(&jpeg, FrameLayout::packed(32, 16), &mut RgbImage::new(1, 1))
            .unwrap_err();
        let Error::FrameData {
            source: Some(cause),
            ..
        } = &err
        else {
            panic!("not the decoder's refusal: {err:?}")
        };
        let chained = std::error::Error::source(&err).expect("the decoder's error is the source");
        assert_eq!(chained.to_string(), cause.to_string());
        assert!(
            err.to_string()
                .starts_with("MJPG buffer: the JPEG decoder refused it: "),
            "{err}"
        );
    }
}
