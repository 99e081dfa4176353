//! [`PushSource`]: frames the application hands in (its own camera callback, a camera library
//! of another language) instead of frames gss reads itself. The application's end, a
//! [`Pusher`], never blocks: while the stream has not taken the frame waiting for it, a newer
//! frame replaces it and the replaced one is counted as dropped, the real-time policy of the
//! pipeline's own queues.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use image::RgbImage;

use super::{Frame, FrameSource, StopSignal, STOP_POLL};
use crate::frame_path::ImageView;
use crate::pool::BufferPool;

/// The stream's end of a push source; see the module docs.
pub struct PushSource {
    name: String,
    rx: Receiver<Frame>,
    shared: Arc<Shared>,
    stop: StopSignal,
}

/// The application's end: cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Pusher {
    tx: Sender<Frame>,
    /// A clone of the source's receiver, to take the oldest waiting frame out when full.
    evict: Receiver<Frame>,
    shared: Arc<Shared>,
    /// Buffers for [`Pusher::push_view`]'s copies, reused once the stream is done with them.
    pool: Arc<Mutex<BufferPool<RgbImage>>>,
}

#[derive(Default)]
struct Shared {
    pushed: AtomicU64,
    dropped: AtomicU64,
    /// Set by [`Pusher::close`]: the source ends once the waiting frames are taken.
    closed: AtomicBool,
    /// Set when the source is dropped (its stream has ended): pushes are refused.
    gone: AtomicBool,
}

/// A push source named `name` (for logs) holding at most `capacity` waiting frames (at least
/// one; one keeps what the stream gets as fresh as possible).
pub fn push_source(name: impl Into<String>, capacity: usize) -> (Pusher, PushSource) {
    let capacity = capacity.max(1);
    let (tx, rx) = bounded(capacity);
    let shared = Arc::new(Shared::default());
    let pusher = Pusher {
        tx,
        evict: rx.clone(),
        shared: shared.clone(),
        pool: Arc::new(Mutex::new(BufferPool::new(capacity + 1))),
    };
    let source = PushSource {
        name: name.into(),
        rx,
        shared,
        stop: StopSignal::new(),
    };
    (pusher, source)
}

impl Pusher {
    /// Queues `image` as the frame labelled `index` (its [`Frame::index`], which comes back as
    /// the segmented frame's `source_index`: a capture timestamp, a counter), captured now.
    /// Returns at once; false when the stream has ended or the source was closed (the frame is
    /// not queued).
    pub fn push(&self, index: u64, image: Arc<RgbImage>) -> bool {
        let shared = &self.shared;
        if shared.closed.load(Ordering::SeqCst) || shared.gone.load(Ordering::SeqCst) {
            return false;
        }
        let mut frame = Frame {
            index,
            captured_at: Instant::now(),
            image,
            origin: None,
        };
        loop {
            match self.tx.try_send(frame) {
                Ok(()) => {
                    shared.pushed.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(TrySendError::Full(back)) => {
                    // The stream may have taken it meanwhile; only a real eviction counts.
                    if self.evict.try_recv().is_ok() {
                        shared.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    frame = back;
                }
                Err(TrySendError::Disconnected(_)) => return false,
            }
        }
    }

    /// [`push`](Pusher::push) for a frame in the caller's memory: the one copy a queued frame
    /// needs (it must outlive the caller's buffer), into a buffer the stream has finished with.
    pub fn push_view(&self, index: u64, image: ImageView) -> bool {
        if self.shared.closed.load(Ordering::SeqCst) || self.shared.gone.load(Ordering::SeqCst) {
            return false;
        }
        let copied = {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            pool.fill(|buf| {
                image.copy_rgb_into(buf);
                Ok::<_, std::convert::Infallible>(())
            })
        };
        match copied {
            Ok(image) => self.push(index, image),
            Err(never) => match never {},
        }
    }

    /// Frames queued so far (dropped ones included).
    pub fn pushed(&self) -> u64 {
        self.shared.pushed.load(Ordering::Relaxed)
    }

    /// Frames replaced by a newer one before the stream took them.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// No more frames: the source ends once the stream has taken the waiting ones.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }
}

impl FrameSource for PushSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self) -> crate::Result<Option<Frame>> {
        loop {
            if self.stop.is_stopped() {
                return Ok(None);
            }
            if self.shared.closed.load(Ordering::SeqCst) {
                return Ok(self.rx.try_recv().ok());
            }
            match self.rx.recv_timeout(STOP_POLL) {
                Ok(frame) => return Ok(Some(frame)),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    fn stop_signal(&self) -> Option<StopSignal> {
        Some(self.stop.clone())
    }
}

impl Drop for PushSource {
    fn drop(&mut self) {
        self.shared.gone.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame_path::ChannelOrder;

    fn image(value: u8) -> Arc<RgbImage> {
        Arc::new(RgbImage::from_pixel(4, 2, image::Rgb([value; 3])))
    }

    #[test]
    fn a_full_source_replaces_the_waiting_frame_and_counts_it() {
        let (pusher, mut source) = push_source("test", 1);
        for i in 0..5 {
            assert!(pusher.push(i, image(i as u8)));
        }
        assert_eq!((pusher.pushed(), pusher.dropped()), (5, 4));
        let frame = source.next_frame().unwrap().unwrap();
        assert_eq!(frame.index, 4, "the newest frame waits");
        assert_eq!(frame.image.get_pixel(0, 0)[0], 4);
        pusher.close();
        assert!(source.next_frame().unwrap().is_none(), "closed and drained");
        assert!(!pusher.push(5, image(5)), "a closed source takes no frame");
    }

    #[test]
    fn closing_lets_the_waiting_frames_through_first() {
        let (pusher, mut source) = push_source("test", 3);
        for i in 10..13 {
            pusher.push(i, image(0));
        }
        pusher.close();
        let got: Vec<u64> = std::iter::from_fn(|| source.next_frame().unwrap())
            .map(|f| f.index)
            .collect();
        assert_eq!(got, [10, 11, 12]);
    }

    #[test]
    fn a_stopped_or_dropped_source_ends_the_exchange() {
        let (pusher, mut source) = push_source("test", 1);
        source.stop_signal().unwrap().stop();
        assert!(source.next_frame().unwrap().is_none());
        drop(source);
        assert!(!pusher.push(0, image(0)), "nobody is left to take it");
    }

    #[test]
    fn pushed_views_are_copied_as_rgb_into_recycled_buffers() {
        let (pusher, mut source) = push_source("test", 1);
        let bgr = [3u8, 2, 1, 6, 5, 4];
        let view = ImageView::new(&bgr, 2, 1, 6, ChannelOrder::Bgr).unwrap();
        let mut seen = Vec::new();
        for i in 0..4 {
            assert!(pusher.push_view(i, view));
            let frame = source.next_frame().unwrap().unwrap();
            assert_eq!(frame.image.as_raw(), &[1, 2, 3, 4, 5, 6]);
            seen.push(Arc::as_ptr(&frame.image));
        }
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "a frame the stream dropped frees its buffer for the next push"
        );
    }
}
