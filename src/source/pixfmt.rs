//! Device-independent pixel formats: converting raw camera buffers into RGB, and choosing
//! which of a device's formats to ask for.
//!
//! Conversions write into a caller-owned [`RgbImage`] that is only reallocated when the frame
//! size changes, so a steady stream does not allocate an output image per frame. Truncated or
//! malformed buffers are [`Error::CorruptFrame`], never a panic: they come from hardware.

use crate::{Error, Result};
use image::codecs::jpeg::JpegDecoder;
use image::{ColorType, ImageDecoder, RgbImage};
use std::fmt;
use std::io::Cursor;

/// A V4L2 four-character pixel format code (`YUYV`, `MJPG`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// From a string such as "MJPG"; anything but four ASCII characters is None.
    pub fn parse(s: &str) -> Option<FourCc> {
        let bytes: [u8; 4] = s.as_bytes().try_into().ok()?;
        bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ').then_some(FourCc(bytes))
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The raw formats gss can turn into RGB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// YUV 4:2:2 packed as Y0 U Y1 V, BT.601 limited range: most webcams' uncompressed format.
    Yuyv,
    /// Motion-JPEG: each buffer is one JPEG, often without Huffman tables.
    Mjpg,
    /// Packed 8-bit R, G, B.
    Rgb3,
    /// 8-bit luminance.
    Grey,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 4] = [PixelFormat::Yuyv, PixelFormat::Mjpg, PixelFormat::Rgb3, PixelFormat::Grey];

    pub fn fourcc(self) -> FourCc {
        FourCc(match self {
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpg => *b"MJPG",
            PixelFormat::Rgb3 => *b"RGB3",
            PixelFormat::Grey => *b"GREY",
        })
    }

    pub fn from_fourcc(fourcc: FourCc) -> Option<PixelFormat> {
        PixelFormat::ALL.into_iter().find(|f| f.fourcc() == fourcc)
    }

    /// Bytes per pixel of the packed formats; None for compressed ones.
    fn packed_bytes_per_pixel(self) -> Option<usize> {
        match self {
            PixelFormat::Yuyv => Some(2),
            PixelFormat::Rgb3 => Some(3),
            PixelFormat::Grey => Some(1),
            PixelFormat::Mjpg => None,
        }
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fourcc().fmt(f)
    }
}

/// Geometry of a raw buffer as negotiated with the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLayout {
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the next; 0 means tightly packed. Drivers pad rows,
    /// so the negotiated value must be used rather than width × bytes per pixel.
    pub stride: u32,
}

impl FrameLayout {
    pub fn packed(width: u32, height: u32) -> Self {
        FrameLayout { width, height, stride: 0 }
    }
}

/// The most pixels a compressed frame may declare; a corrupt header must not make us
/// allocate gigabytes.
const MAX_PIXELS: u64 = 8192 * 8192;

/// Reuses `out` when it already has the right size.
fn ensure_size(out: &mut RgbImage, width: u32, height: u32) {
    if out.dimensions() != (width, height) {
        *out = RgbImage::new(width, height);
    }
}

fn corrupt(source_name: &str, msg: impl Into<String>) -> Error {
    Error::CorruptFrame { source_name: source_name.to_string(), msg: msg.into() }
}

/// Checks a packed buffer against its layout and returns (row bytes used, stride).
fn check_packed(source_name: &str, format: PixelFormat, layout: FrameLayout, len: usize) -> Result<(usize, usize)> {
    let bpp = format.packed_bytes_per_pixel().unwrap_or(1);
    if layout.width == 0 || layout.height == 0 {
        return Err(corrupt(source_name, format!("{format} frame of size {}x{}", layout.width, layout.height)));
    }
    let (w, h) = (layout.width as usize, layout.height as usize);
    // YUYV carries pixels in pairs; an odd width still needs the whole last pair.
    let row = if format == PixelFormat::Yuyv { w.div_ceil(2) * 4 } else { w * bpp };
    let stride = if layout.stride == 0 { row } else { layout.stride as usize };
    if stride < row {
        return Err(corrupt(
            source_name,
            format!("{format} row stride {stride} is shorter than a {w}-pixel row ({row} bytes)"),
        ));
    }
    let needed = stride.checked_mul(h - 1).and_then(|v| v.checked_add(row));
    match needed {
        Some(needed) if len >= needed => Ok((row, stride)),
        Some(needed) => Err(corrupt(
            source_name,
            format!("{format} {w}x{h} frame needs {needed} bytes, got {len} (truncated transfer?)"),
        )),
        None => Err(corrupt(source_name, format!("{format} frame size {w}x{h} overflows"))),
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
pub fn yuyv_into(source_name: &str, data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (_, stride) = check_packed(source_name, PixelFormat::Yuyv, layout, data.len())?;
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
pub fn rgb3_into(source_name: &str, data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (row, stride) = check_packed(source_name, PixelFormat::Rgb3, layout, data.len())?;
    ensure_size(out, layout.width, layout.height);
    for (src_row, dst_row) in data.chunks(stride).zip(out.chunks_exact_mut(row)) {
        dst_row.copy_from_slice(&src_row[..row]);
    }
    Ok(())
}

/// GREY (8-bit luminance) into `out`, replicated to R, G and B.
pub fn grey_into(source_name: &str, data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
    let (row, stride) = check_packed(source_name, PixelFormat::Grey, layout, data.len())?;
    ensure_size(out, layout.width, layout.height);
    for (src_row, dst_row) in data.chunks(stride).zip(out.chunks_exact_mut(row * 3)) {
        for (&l, dst) in src_row[..row].iter().zip(dst_row.chunks_exact_mut(3)) {
            dst.fill(l);
        }
    }
    Ok(())
}

/// Turns raw frames of any [`PixelFormat`] into RGB, keeping the scratch buffers MJPG needs
/// between frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    jpeg: Vec<u8>,
    grey: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one buffer into `out`. For MJPG, a frame whose size differs from a non-zero
    /// `layout` is corrupt, because the rest of the stream assumes the negotiated size.
    pub fn decode(
        &mut self,
        source_name: &str,
        format: PixelFormat,
        data: &[u8],
        layout: FrameLayout,
        out: &mut RgbImage,
    ) -> Result<()> {
        match format {
            PixelFormat::Yuyv => yuyv_into(source_name, data, layout, out),
            PixelFormat::Rgb3 => rgb3_into(source_name, data, layout, out),
            PixelFormat::Grey => grey_into(source_name, data, layout, out),
            PixelFormat::Mjpg => self.mjpg_into(source_name, data, layout, out),
        }
    }

    /// MJPG into `out`, adding the standard Huffman tables when the frame has none.
    pub fn mjpg_into(&mut self, source_name: &str, data: &[u8], layout: FrameLayout, out: &mut RgbImage) -> Result<()> {
        if !jpeg_is_complete(data) {
            return Err(corrupt(
                source_name,
                format!("MJPG: no end-of-image marker in {} bytes (truncated frame)", data.len()),
            ));
        }
        let bytes: &[u8] = match find_dht_insertion_point(data) {
            Ok(None) => data,
            Ok(Some(at)) => {
                self.jpeg.clear();
                self.jpeg.extend_from_slice(&data[..at]);
                self.jpeg.extend_from_slice(&default_dht_segment());
                self.jpeg.extend_from_slice(&data[at..]);
                &self.jpeg
            }
            Err(msg) => return Err(corrupt(source_name, format!("MJPG: {msg}"))),
        };
        let bad = |e: image::ImageError| corrupt(source_name, format!("MJPG: {e}"));
        let decoder = JpegDecoder::new(Cursor::new(bytes)).map_err(bad)?;
        let (w, h) = decoder.dimensions();
        if layout.width != 0 && layout.height != 0 && (w, h) != (layout.width, layout.height) {
            return Err(corrupt(
                source_name,
                format!("MJPG frame is {w}x{h}, the device negotiated {}x{}", layout.width, layout.height),
            ));
        }
        if w == 0 || h == 0 || u64::from(w) * u64::from(h) > MAX_PIXELS {
            return Err(corrupt(source_name, format!("MJPG frame declares an unusable size {w}x{h}")));
        }
        match decoder.color_type() {
            ColorType::Rgb8 => {
                ensure_size(out, w, h);
                decoder.read_image(out.as_mut()).map_err(bad)
            }
            ColorType::L8 => {
                self.grey.resize(w as usize * h as usize, 0);
                decoder.read_image(&mut self.grey).map_err(bad)?;
                ensure_size(out, w, h);
                for (&l, dst) in self.grey.iter().zip(out.chunks_exact_mut(3)) {
                    dst.fill(l);
                }
                Ok(())
            }
            // Rare for cameras (e.g. 16-bit or CMYK JPEG): take the allocating path.
            _ => {
                let img = image::DynamicImage::from_decoder(decoder).map_err(bad)?;
                *out = img.to_rgb8();
                Ok(())
            }
        }
    }
}

const SOI: u8 = 0xD8;
/// Whether a JPEG stream still has its end-of-image marker. The decoder pads a cut-off scan with
/// grey and reports success, which would reach the model as a real picture. Drivers pad frames
/// with zeros and some writers append a few bytes after the marker, so it is looked for in the
/// last KiB before any zero padding (inside the entropy-coded data 0xFF is always stuffed, so
/// FF D9 there is the marker).
pub fn jpeg_is_complete(data: &[u8]) -> bool {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    data[end.saturating_sub(1024)..end].windows(2).any(|w| w == [0xFF, EOI])
}

const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DHT: u8 = 0xC4;

/// Walks the marker segments before the first scan. Ok(None): the JPEG has its own Huffman
/// tables; Ok(Some(offset)): it has none and they belong before the SOS marker at `offset`.
fn find_dht_insertion_point(data: &[u8]) -> std::result::Result<Option<usize>, String> {
    if data.len() < 4 || data[0] != 0xFF || data[1] != SOI {
        return Err(format!("not a JPEG ({} bytes, no start-of-image marker)", data.len()));
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
                    return Err(format!("segment 0xFF{marker:02X} at byte {pos} has bad length {len}"));
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

/// One DHT segment holding all four default tables.
fn default_dht_segment() -> Vec<u8> {
    // (table class << 4 | destination id, code-length counts, symbols)
    let tables: [(u8, &[u8; 16], &[u8]); 4] = [
        (0x00, &LUMA_DC_BITS, &DC_VALUES),
        (0x10, &LUMA_AC_BITS, &LUMA_AC_VALUES),
        (0x01, &CHROMA_DC_BITS, &DC_VALUES),
        (0x11, &CHROMA_AC_BITS, &CHROMA_AC_VALUES),
    ];
    let body: usize = tables.iter().map(|(_, bits, vals)| 1 + bits.len() + vals.len()).sum();
    let mut seg = Vec::with_capacity(4 + body);
    seg.extend_from_slice(&[0xFF, DHT]);
    seg.extend_from_slice(&((body + 2) as u16).to_be_bytes());
    for (class_id, bits, vals) in tables {
        seg.push(class_id);
        seg.extend_from_slice(bits);
        seg.extend_from_slice(vals);
    }
    seg
}

/// What a caller wants from a camera; every field is a preference, not a demand.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatRequest {
    pub fourcc: Option<FourCc>,
    pub width: u32,
    pub height: u32,
    /// Frames per second; None asks for the fastest rate at the chosen size.
    pub fps: Option<f64>,
}

impl Default for FormatRequest {
    fn default() -> Self {
        FormatRequest { fourcc: None, width: 640, height: 480, fps: None }
    }
}

/// A frame interval in seconds, as V4L2 states it (numerator / denominator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub numerator: u32,
    pub denominator: u32,
}

impl Interval {
    pub fn fps(self) -> f64 {
        if self.numerator == 0 {
            0.0
        } else {
            f64::from(self.denominator) / f64::from(self.numerator)
        }
    }
}

/// One frame size a device offers for a format, with its frame intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeOffer {
    pub width: u32,
    pub height: u32,
    /// Empty when the device does not list rates (it then picks one itself).
    pub intervals: Vec<Interval>,
}

/// One pixel format a device offers.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOffer {
    pub fourcc: FourCc,
    /// The driver's description ("Motion-JPEG").
    pub description: String,
    /// Empty when the device does not list sizes (it then adjusts the requested one).
    pub sizes: Vec<SizeOffer>,
}

/// The outcome of [`choose_format`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenFormat {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// None: leave the rate to the device.
    pub interval: Option<Interval>,
}

/// Above this many pixels, uncompressed formats usually cannot keep a useful frame rate over
/// USB 2.0 (YUYV 1280×720 tops out near 10 fps), so MJPG is preferred.
const LARGE_FRAME_PIXELS: u64 = 640 * 480;

fn format_rank(format: PixelFormat, large: bool) -> u8 {
    match (format, large) {
        (PixelFormat::Mjpg, true) | (PixelFormat::Yuyv, false) => 0,
        (PixelFormat::Yuyv, true) | (PixelFormat::Mjpg, false) => 1,
        (PixelFormat::Rgb3, _) => 2,
        (PixelFormat::Grey, _) => 3,
    }
}

/// Picks a format, size and rate from what a device offers.
///
/// The requested fourcc wins if the device offers it (a warning is logged if it does not and
/// another is used); otherwise the size closest to the request decides, then the format
/// preference (MJPG first for frames above 640×480, YUYV first below, then RGB3, GREY); then
/// the rate closest to the request, or the fastest. Nothing decodable is
/// [`Error::SourceFormat`] listing what the device offers.
pub fn choose_format(source_name: &str, offers: &[FormatOffer], request: &FormatRequest) -> Result<ChosenFormat> {
    let format_err = |msg: String| Error::SourceFormat { source_name: source_name.to_string(), msg };
    let decodable: Vec<(PixelFormat, &FormatOffer)> =
        offers.iter().filter_map(|o| PixelFormat::from_fourcc(o.fourcc).map(|f| (f, o))).collect();
    let supported = PixelFormat::ALL.map(|f| f.to_string()).join(", ");
    let mut candidates = decodable.clone();
    if let Some(wanted) = request.fourcc {
        if PixelFormat::from_fourcc(wanted).is_none() {
            return Err(format_err(format!(
                "{wanted} was asked for but gss decodes only {supported}; the device offers {}",
                describe_offers(offers)
            )));
        }
        if decodable.iter().any(|(f, _)| f.fourcc() == wanted) {
            candidates.retain(|(f, _)| f.fourcc() == wanted);
        } else if !decodable.is_empty() {
            log::warn!("{source_name}: does not offer {wanted}; choosing another format");
        }
    }
    if candidates.is_empty() {
        return Err(format_err(format!("gss decodes {supported}; the device offers {}", describe_offers(offers))));
    }

    let (rw, rh) = (i64::from(request.width), i64::from(request.height));
    let large = u64::from(request.width) * u64::from(request.height) > LARGE_FRAME_PIXELS;
    let mut best: Option<((i64, u8), PixelFormat, Option<&SizeOffer>)> = None;
    for (format, offer) in candidates {
        let rank = format_rank(format, large);
        let sizes: Vec<Option<&SizeOffer>> = if offer.sizes.is_empty() {
            vec![None]
        } else {
            offer.sizes.iter().filter(|s| s.width > 0 && s.height > 0).map(Some).collect()
        };
        for size in sizes {
            // A format that lists no sizes lets the driver adjust the request: nearly exact,
            // but a listed exact match is the safer bet.
            let distance = match size {
                Some(s) => (i64::from(s.width) - rw).abs() + (i64::from(s.height) - rh).abs(),
                None => 1,
            };
            let key = (distance, rank);
            if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                best = Some((key, format, size));
            }
        }
    }
    let Some((_, format, size)) = best else {
        return Err(format_err(format!("no usable frame size; the device offers {}", describe_offers(offers))));
    };
    let (width, height, intervals) = match size {
        Some(s) => (s.width, s.height, s.intervals.as_slice()),
        None => (request.width, request.height, &[][..]),
    };
    let usable = intervals.iter().copied().filter(|i| i.numerator > 0 && i.denominator > 0);
    let interval = match request.fps {
        Some(fps) => usable.min_by(|a, b| (a.fps() - fps).abs().total_cmp(&(b.fps() - fps).abs())),
        None => usable.max_by(|a, b| a.fps().total_cmp(&b.fps())),
    };
    Ok(ChosenFormat { format, width, height, interval })
}

/// "MJPG (Motion-JPEG) 1280x720@30/15 640x480@30; YUYV (YUYV 4:2:2) 640x480@30", for errors
/// and `gss devices`.
pub fn describe_offers(offers: &[FormatOffer]) -> String {
    if offers.is_empty() {
        return "no formats".into();
    }
    offers
        .iter()
        .map(|o| {
            let mut s = format!("{} ({})", o.fourcc, o.description);
            for size in &o.sizes {
                s.push_str(&format!(" {}x{}", size.width, size.height));
                let rates: Vec<String> =
                    size.intervals.iter().map(|i| format!("{:.4}", i.fps())).map(trim_rate).collect();
                if !rates.is_empty() {
                    s.push('@');
                    s.push_str(&rates.join("/"));
                }
            }
            s
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn trim_rate(s: String) -> String {
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(d <= TOLERANCE, "{what}: got {got:?}, want {want:?} (±{TOLERANCE})");
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
        yuyv_into("test", &data, FrameLayout::packed(w, h), &mut out).unwrap();
        assert_eq!(out.dimensions(), (w, h));
        for (i, px) in out.pixels().enumerate() {
            assert_close(&px.0, colours[(i / 2) % colours.len()], &format!("pixel {i}"));
        }
    }

    #[test]
    fn yuyv_limited_range_extremes_are_exact() {
        // Y=16 is black and Y=235 white in limited range; neutral chroma is 128.
        let data = [16, 128, 235, 128];
        let mut out = RgbImage::new(2, 1);
        yuyv_into("test", &data, FrameLayout::packed(2, 1), &mut out).unwrap();
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
        yuyv_into("test", &data, FrameLayout { width: 3, height: 2, stride: 12 }, &mut out).unwrap();
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
        yuyv_into("test", &data, FrameLayout::packed(8, 4), &mut out).unwrap();
        assert_eq!(out.as_ptr(), before);
    }

    #[test]
    fn truncated_packed_frames_are_corrupt_not_panics() {
        let mut out = RgbImage::new(1, 1);
        let layout = FrameLayout::packed(4, 2);
        for len in [0, 1, 3, 7] {
            let data = vec![0u8; len];
            for format in [PixelFormat::Yuyv, PixelFormat::Rgb3, PixelFormat::Grey] {
                let err = FrameDecoder::new().decode("cam", format, &data, layout, &mut out).unwrap_err();
                assert!(matches!(err, Error::CorruptFrame { .. }), "{format} len {len}: {err}");
                assert!(err.is_recoverable());
            }
        }
        let err = yuyv_into("cam", &[0; 64], FrameLayout { width: 4, height: 2, stride: 4 }, &mut out).unwrap_err();
        assert!(err.to_string().contains("stride"), "{err}");
        let err = grey_into("cam", &[0; 64], FrameLayout::packed(0, 2), &mut out).unwrap_err();
        assert!(matches!(err, Error::CorruptFrame { .. }));
        let huge = FrameLayout { width: u32::MAX, height: u32::MAX, stride: u32::MAX };
        assert!(rgb3_into("cam", &[0; 64], huge, &mut out).is_err());
    }

    #[test]
    fn rgb3_copies_and_grey_replicates() {
        let rgb: Vec<u8> = (0..2 * 2 * 3).map(|v| v as u8 * 10).collect();
        let mut out = RgbImage::new(2, 2);
        rgb3_into("t", &rgb, FrameLayout::packed(2, 2), &mut out).unwrap();
        assert_eq!(out.as_raw(), &rgb);

        let grey = [0u8, 100, 7, 7, 200, 255, 7, 7];
        grey_into("t", &grey, FrameLayout { width: 2, height: 2, stride: 4 }, &mut out).unwrap();
        assert_eq!(out.as_raw(), &vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
    }

    fn test_picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8]))
    }

    fn encode_jpeg(img: &RgbImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(img).unwrap();
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
        for (bits, vals) in [
            (&LUMA_DC_BITS, &DC_VALUES[..]),
            (&CHROMA_DC_BITS, &DC_VALUES[..]),
            (&LUMA_AC_BITS, &LUMA_AC_VALUES[..]),
            (&CHROMA_AC_BITS, &CHROMA_AC_VALUES[..]),
        ] {
            assert_eq!(bits.iter().map(|&b| usize::from(b)).sum::<usize>(), vals.len());
        }
        assert_eq!(default_dht_segment().len(), 2 + 418);
    }

    #[test]
    fn mjpg_without_huffman_tables_decodes_like_the_original() {
        let picture = test_picture(48, 32);
        let jpeg = encode_jpeg(&picture);
        let stripped = strip_dht(&jpeg);
        assert!(stripped.len() < jpeg.len());
        assert_eq!(find_dht_insertion_point(&jpeg), Ok(None));
        assert!(matches!(find_dht_insertion_point(&stripped), Ok(Some(_))));

        let mut decoder = FrameDecoder::new();
        let mut original = RgbImage::new(1, 1);
        decoder.mjpg_into("cam", &jpeg, FrameLayout::packed(48, 32), &mut original).unwrap();
        let mut repaired = RgbImage::new(1, 1);
        decoder.mjpg_into("cam", &stripped, FrameLayout::packed(48, 32), &mut repaired).unwrap();
        assert_eq!(original.as_raw(), repaired.as_raw());
        // And it is the picture: JPEG is lossy, but on average within a few levels.
        let total: u64 = original.as_raw().iter().zip(picture.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        let mean = total as f64 / picture.as_raw().len() as f64;
        assert!(mean <= 4.0, "mean difference {mean}");
    }

    #[test]
    fn mjpg_grey_jpeg_is_replicated() {
        let luma = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95).encode_image(&luma).unwrap();
        let mut out = RgbImage::new(1, 1);
        FrameDecoder::new().mjpg_into("cam", &strip_dht(&bytes), FrameLayout::packed(0, 0), &mut out).unwrap();
        for px in out.pixels() {
            assert!(px[0] == px[1] && px[1] == px[2]);
        }
    }

    #[test]
    fn bad_mjpg_frames_are_corrupt_not_panics() {
        let jpeg = encode_jpeg(&test_picture(32, 16));
        let stripped = strip_dht(&jpeg);
        let mut decoder = FrameDecoder::new();
        let mut out = RgbImage::new(1, 1);
        let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0xFF], vec![0xFF, 0xD8], b"not a jpeg at all".to_vec()];
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
            match decoder.mjpg_into("cam", data, FrameLayout::packed(32, 16), &mut out) {
                Err(Error::CorruptFrame { .. }) => {}
                other => panic!("case {i} ({} bytes): {other:?}", data.len()),
            }
        }
        // Right JPEG, wrong negotiated size.
        let err = decoder.mjpg_into("cam", &jpeg, FrameLayout::packed(640, 480), &mut out).unwrap_err();
        assert!(err.to_string().contains("negotiated"), "{err}");
    }

    fn offer(fourcc: &str, sizes: &[(u32, u32, &[u32])]) -> FormatOffer {
        FormatOffer {
            fourcc: FourCc::parse(fourcc).unwrap(),
            description: fourcc.to_lowercase(),
            sizes: sizes
                .iter()
                .map(|&(width, height, rates)| SizeOffer {
                    width,
                    height,
                    intervals: rates.iter().map(|&r| Interval { numerator: 1, denominator: r }).collect(),
                })
                .collect(),
        }
    }

    fn webcam() -> Vec<FormatOffer> {
        vec![
            offer("YUYV", &[(640, 480, &[30, 15]), (1280, 720, &[10, 5]), (320, 240, &[30])]),
            offer("MJPG", &[(640, 480, &[30]), (1280, 720, &[30, 15]), (1920, 1080, &[30])]),
            offer("H264", &[(1920, 1080, &[30])]),
        ]
    }

    fn request(fourcc: Option<&str>, width: u32, height: u32, fps: Option<f64>) -> FormatRequest {
        FormatRequest { fourcc: fourcc.and_then(FourCc::parse), width, height, fps }
    }

    #[test]
    fn chooser_prefers_yuyv_small_and_mjpg_large() {
        let small = choose_format("cam", &webcam(), &request(None, 640, 480, None)).unwrap();
        assert_eq!((small.format, small.width, small.height), (PixelFormat::Yuyv, 640, 480));
        assert_eq!(small.interval.map(Interval::fps), Some(30.0));
        let large = choose_format("cam", &webcam(), &request(None, 1280, 720, None)).unwrap();
        assert_eq!((large.format, large.width, large.height), (PixelFormat::Mjpg, 1280, 720));
        assert_eq!(large.interval.map(Interval::fps), Some(30.0));
    }

    #[test]
    fn chooser_honours_the_requested_fourcc_size_and_rate() {
        let c = choose_format("cam", &webcam(), &request(Some("MJPG"), 640, 480, Some(20.0))).unwrap();
        assert_eq!((c.format, c.width, c.height), (PixelFormat::Mjpg, 640, 480));
        assert_eq!(c.interval.map(Interval::fps), Some(30.0));
        let c = choose_format("cam", &webcam(), &request(Some("YUYV"), 1280, 720, Some(4.0))).unwrap();
        assert_eq!((c.format, c.width, c.height), (PixelFormat::Yuyv, 1280, 720));
        assert_eq!(c.interval.map(Interval::fps), Some(5.0));
        // Closest size when nothing matches exactly.
        let c = choose_format("cam", &webcam(), &request(None, 300, 200, None)).unwrap();
        assert_eq!((c.width, c.height), (320, 240));
        // A decodable fourcc the device lacks falls back to what it has.
        let c = choose_format("cam", &webcam(), &request(Some("GREY"), 640, 480, None)).unwrap();
        assert_eq!(c.format, PixelFormat::Yuyv);
    }

    #[test]
    fn chooser_handles_devices_that_list_no_sizes() {
        let offers = vec![offer("RGB3", &[])];
        let c = choose_format("cam", &offers, &request(None, 800, 600, None)).unwrap();
        assert_eq!((c.format, c.width, c.height, c.interval), (PixelFormat::Rgb3, 800, 600, None));
    }

    #[test]
    fn chooser_error_lists_what_the_device_offers() {
        let offers = vec![offer("H264", &[(1920, 1080, &[30])]), offer("NV12", &[(640, 480, &[30, 15])])];
        let err = choose_format("/dev/video0", &offers, &FormatRequest::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::SourceFormat { .. }));
        for needle in ["/dev/video0", "H264", "1920x1080@30", "NV12", "640x480@30/15", "YUYV", "MJPG"] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        let err = choose_format("cam", &webcam(), &request(Some("H264"), 640, 480, None)).unwrap_err();
        assert!(err.to_string().contains("H264 was asked for"), "{err}");
        assert!(choose_format("cam", &[], &FormatRequest::default()).is_err());
    }

    #[test]
    fn fourcc_parse_and_display() {
        assert_eq!(FourCc::parse("YUYV"), Some(FourCc(*b"YUYV")));
        assert_eq!(FourCc::parse("YUY"), None);
        assert_eq!(FourCc::parse("YUYVV"), None);
        assert_eq!(FourCc([b'A', 0, b'B', 0xFF]).to_string(), "A\\x00B\\xff");
        assert_eq!(PixelFormat::from_fourcc(FourCc(*b"MJPG")), Some(PixelFormat::Mjpg));
        assert_eq!(Interval { numerator: 1001, denominator: 30000 }.fps().round(), 30.0);
        assert_eq!(Interval { numerator: 0, denominator: 30 }.fps(), 0.0);
    }
}
