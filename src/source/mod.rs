//! Frame sources: where the images a stream segments come from.
//!
//! This module owns everything between "a place frames live" and an [`image::RgbImage`] with an
//! index and a capture time: image files in a directory or matching a glob ([`ImageFiles`],
//! including the bundled sample clip) and their decoding ([`decode`]), V4L2 cameras
//! ([`Camera`], behind the `v4l` cargo feature) with what they need that does not depend on a
//! device: pixel-format conversions ([`pixfmt`]), JPEG checks and MJPG repair ([`jpeg`]),
//! format negotiation ([`negotiate`]), and the reopen policy for cameras that drop out
//! ([`Backoff`]); and frames the application pushes in itself ([`PushSource`]).
//! It does not own pacing of the pipeline, frame dropping or segmentation: a source only
//! produces frames in order, as fast as it may (or at the rate it was asked to replay at).

pub mod backoff;
pub mod decode;
pub mod device;
pub mod files;
pub mod frame_decoder;
pub mod jpeg;
pub mod negotiate;
pub mod pixfmt;
pub mod push;

pub mod camera;

pub use crate::pixel_format::{FourCc, FrameLayout, PixelFormat};
pub use backoff::Backoff;
pub use camera::{list_devices, Camera};
pub use decode::load_rgb;
pub use device::{CameraOptions, DeviceFormat, DeviceInfo, DeviceSpec};
pub use files::ImageFiles;
pub use frame_decoder::{FrameDecoder, FRAME_POOL_CAPACITY};
pub use negotiate::{
    choose_format, describe_offers, ChosenFormat, FormatOffer, FormatRequest, Interval, SizeOffer,
};
pub use push::{push_source, PushSource, Pusher};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One decoded frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Position in the source (0, 1, 2, ...), not the pipeline's sequence number. Files count
    /// every file they try, corrupt ones included, so a replayed clip keeps its numbering; a
    /// [`PushSource`]'s frames carry the label the application pushed them with.
    pub index: u64,
    pub captured_at: Instant,
    /// Shared so that the pipeline, an overlay subscriber and the source's own [`BufferPool`]
    /// can hold the same pixels: the source writes the next frame into a buffer whose last
    /// clone has been dropped, so a steady stream allocates no image per frame.
    ///
    /// [`BufferPool`]: crate::pool::BufferPool
    pub image: Arc<image::RgbImage>,
    /// The file the frame came from (directory and glob sources); `None` for cameras.
    pub origin: Option<std::path::PathBuf>,
}

/// Something that produces frames in order.
pub trait FrameSource: Send {
    /// Human name for logs and errors: the directory, the glob, "/dev/video0 (Logitech C920)".
    fn name(&self) -> &str;

    /// Blocks until the next frame. `Ok(None)`: the source has ended (never for a camera,
    /// unless its [`StopSignal`] was raised).
    ///
    /// `Err(e)` with `e.is_recoverable()`: a bad frame (`CorruptFrame`) or a lost camera
    /// (`SourceLost`, one error per failed reopen attempt, with the backoff between attempts
    /// slept inside the source in slices of at most [`STOP_POLL`], so a raised stop signal is
    /// seen within ~100 ms); the caller logs, counts and calls `next_frame` again.
    /// Other errors are fatal.
    fn next_frame(&mut self) -> crate::Result<Option<Frame>>;

    /// A flag that makes a blocked or sleeping `next_frame` return `Ok(None)` within ~100 ms.
    /// Sources that never block for long return `None`.
    fn stop_signal(&self) -> Option<StopSignal> {
        None
    }

    /// Told by a pipeline how many of this source's frames it may hold at once (queues,
    /// stages, subscribers), so a source that recycles its image buffers can keep that many
    /// and allocate none per frame. The default ignores it.
    fn reserve_frames(&mut self, _frames: usize) {}
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn next_frame(&mut self) -> crate::Result<Option<Frame>> {
        (**self).next_frame()
    }
    fn stop_signal(&self) -> Option<StopSignal> {
        (**self).stop_signal()
    }
    fn reserve_frames(&mut self, frames: usize) {
        (**self).reserve_frames(frames)
    }
}

/// The longest a source sleeps (pacing, reopen backoff) before looking at its stop signal.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// A shared "please stop" flag: a pipeline keeps a clone and raises it on shutdown (Ctrl-C),
/// because a camera waiting seconds for a reopen attempt should not hold the shutdown up.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps until `deadline` in slices of at most [`STOP_POLL`]; false if stopped meanwhile.
    pub fn sleep_until(&self, deadline: Instant) -> bool {
        loop {
            if self.is_stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(STOP_POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signal_cuts_a_long_sleep_short() {
        let stop = StopSignal::new();
        let other = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            other.stop();
        });
        let start = Instant::now();
        assert!(!stop.sleep_until(start + Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(1));
        t.join().unwrap();
    }

    #[test]
    fn sleep_until_a_past_deadline_returns_at_once() {
        let stop = StopSignal::new();
        assert!(stop.sleep_until(Instant::now()));
    }

    #[test]
    fn boxed_sources_are_sources() {
        fn takes_source<S: FrameSource>(_: &S) {}
        let files: Box<dyn FrameSource> = Box::new(ImageFiles::sample_clip().unwrap());
        takes_source(&files);
    }
}
