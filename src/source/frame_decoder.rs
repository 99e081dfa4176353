//! [`FrameDecoder`]: a raw buffer of any supported [`PixelFormat`] into an RGB image from a pool,
//! the packed formats through [`super::pixfmt`] and MJPG through [`super::jpeg`].

use std::sync::Arc;

use image::RgbImage;

use super::jpeg::MjpgDecoder;
use super::pixfmt::{grey_into, rgb3_into, yuyv_into};
use crate::pixel_format::{FrameLayout, PixelFormat};
use crate::pool::BufferPool;
use crate::Result;

/// Frames alive at once in a stream: one being filled, one per pipeline queue slot and stage,
/// and one a subscriber holds. More only costs an allocation per extra frame (the pool counts
/// them), so this need not cover a subscriber that hoards frames.
pub const FRAME_POOL_CAPACITY: usize = 6;

/// Turns raw buffers of any [`PixelFormat`] into RGB, keeping between frames the scratch
/// buffers MJPG needs and the pool of output images.
#[derive(Debug)]
pub struct FrameDecoder {
    mjpg: MjpgDecoder,
    images: BufferPool<RgbImage>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self {
            mjpg: MjpgDecoder::new(),
            images: BufferPool::new(FRAME_POOL_CAPACITY),
        }
    }

    /// Decodes one buffer into `out`. For MJPG, a frame whose size differs from a non-zero
    /// `layout` is corrupt, because the rest of the stream assumes the negotiated size.
    pub fn decode(
        &mut self,
        format: PixelFormat,
        data: &[u8],
        layout: FrameLayout,
        out: &mut RgbImage,
    ) -> Result<()> {
        decode_with(&mut self.mjpg, format, data, layout, out)
    }

    /// Decodes one buffer into an image from the decoder's pool: once every clone of an image
    /// handed out earlier has been dropped, its memory holds a later frame.
    pub fn decode_pooled(
        &mut self,
        format: PixelFormat,
        data: &[u8],
        layout: FrameLayout,
    ) -> Result<Arc<RgbImage>> {
        let Self { mjpg, images } = self;
        images.fill(|out| decode_with(mjpg, format, data, layout, out))
    }

    /// Keeps enough images for a consumer that holds `frames` at once.
    pub fn reserve_frames(&mut self, frames: usize) {
        self.images.reserve(frames);
    }

    /// Images made outside the pool because every pooled one was still held downstream.
    pub fn pool_overflow(&self) -> u64 {
        self.images.overflow()
    }
}

fn decode_with(
    mjpg: &mut MjpgDecoder,
    format: PixelFormat,
    data: &[u8],
    layout: FrameLayout,
    out: &mut RgbImage,
) -> Result<()> {
    match format {
        PixelFormat::Yuyv => yuyv_into(data, layout, out),
        PixelFormat::Rgb3 => rgb3_into(data, layout, out),
        PixelFormat::Grey => grey_into(data, layout, out),
        PixelFormat::Mjpg => mjpg.decode_into(data, layout, out),
    }
}
