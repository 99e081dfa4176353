//! Pixel formats of raw camera buffers: the V4L2 format codes ([`FourCc`]), the formats gss can
//! turn into RGB ([`PixelFormat`]) and a buffer's geometry ([`FrameLayout`]). A leaf: the error
//! type, the conversions ([`crate::source::pixfmt`]) and format negotiation
//! ([`crate::source::negotiate`]) all name formats, and none of them is needed to do so.

use std::fmt;

/// A V4L2 four-character pixel format code (`YUYV`, `MJPG`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// From a string such as "MJPG"; anything but four ASCII characters is None.
    pub fn parse(s: &str) -> Option<FourCc> {
        let bytes: [u8; 4] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || *b == b' ')
            .then_some(FourCc(bytes))
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
    pub const ALL: [PixelFormat; 4] = [
        PixelFormat::Yuyv,
        PixelFormat::Mjpg,
        PixelFormat::Rgb3,
        PixelFormat::Grey,
    ];

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
    pub(crate) fn packed_bytes_per_pixel(self) -> Option<usize> {
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
        FrameLayout {
            width,
            height,
            stride: 0,
        }
    }
}
