//! Streaming: a frame source, the [`FramePath`]'s stages and subscribers on their own threads,
//! joined by bounded crossbeam channels.
//!
//! ```text
//! capture ──q──► encode (preprocess + prior) ──q──► decode (decoder + X⁻¹ + fit back) ──q──► publish ──► subscribers
//!            (Mode::Sequential: one stage runs FramePath::segment_into, one Backend::run call)
//! ```
//! With [`Mode::Pipelined`] frame N+1's prior overlaps frame N's decoder; [`Mode::Sequential`]
//! runs both graphs on one thread (a GPU backend keeps the tokens on the device that way).
//!
//! Drop policy: with [`Policy::RealTime`] a full queue loses its *oldest* frame, so a slow stage
//! never blocks the camera and what comes out is as fresh as possible; [`Policy::Lossless`]
//! blocks instead (offline runs, evaluation). Every captured frame ends exactly one way, so
//! `captured == published + dropped + failed` once the pipeline has stopped. Each subscriber has
//! its own queue and policy: a slow subscriber loses its own frames, nobody else's, and dropping
//! its [`Subscription`] unsubscribes it under either policy.
//!
//! Memory: images, token grids and class maps travel as `Arc`s that the stage which fills them
//! recycles ([`crate::pool`]), so a steady stream allocates no buffer per frame.
//!
//! Shutdown: the source ending or [`Pipeline::stop`] (Ctrl-C) ends capture; each stage drains
//! its queue and closes the next one, and [`Pipeline::join`] waits for every thread. A stage that
//! fails (an error that is not about one frame) or panics stops the whole pipeline, and its
//! error is what `join` returns.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{
    bounded, Receiver, RecvError, RecvTimeoutError, Sender, TryRecvError, TrySendError,
};
use image::{GrayImage, RgbImage};

use crate::engine::{Backend, Graphs};
use crate::error::{Error, Result};
use crate::frame_path::{Fit, FramePath, StageTimings};
use crate::model::ModelPackage;
use crate::pool::BufferPool;
use crate::source::{Frame, FrameSource, StopSignal};

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Drop the oldest queued frame and count it: never block the producer (cameras).
    RealTime,
    /// Block the producer until there is room: every frame arrives (files, evaluation).
    Lossless,
}

/// How the two graphs are spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Prior and decoder on their own threads, overlapping consecutive frames.
    Pipelined,
    /// Both graphs on one thread, frame after frame.
    Sequential,
}

impl Mode {
    /// The layout for a stream on `threads` threads (None: every core): pipelined from 4
    /// threads up, where each graph still gets two; below that the two graphs would only take
    /// cores from each other.
    pub fn auto(threads: Option<usize>) -> Mode {
        if threads.unwrap_or_else(crate::engine::cpu::available_threads) >= 4 {
            Mode::Pipelined
        } else {
            Mode::Sequential
        }
    }

    /// Threads each inference stage's backend gets (0: every core): `threads` when asked for,
    /// else every core for the one stage of a sequential stream and half of them for each stage
    /// of a pipelined one.
    pub fn stage_threads(self, threads: Option<usize>) -> usize {
        match (threads, self) {
            (Some(n), _) => n,
            (None, Mode::Sequential) => 0,
            (None, Mode::Pipelined) => (crate::engine::cpu::available_threads() / 2).max(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub policy: Policy,
    pub mode: Mode,
    /// Frames each inter-stage queue holds.
    pub queue_depth: usize,
    /// Attach the source image to every [`MaskFrame`] (for overlays).
    pub keep_frames: bool,
    /// How frames of another shape than the model's are fitted; None: the package's choice.
    pub fit: Option<Fit>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            policy: Policy::RealTime,
            mode: Mode::Pipelined,
            queue_depth: 1,
            keep_frames: false,
            fit: None,
        }
    }
}

/// One segmented frame as subscribers receive it. Clones are cheap: images are shared.
#[derive(Debug, Clone)]
pub struct MaskFrame {
    /// Order of capture in this pipeline (0, 1, ...); gaps are frames dropped on the way.
    pub seq: u64,
    /// The frame's index in its source.
    pub source_index: u64,
    pub captured_at: Instant,
    /// Capture → handed to subscribers.
    pub latency: Duration,
    /// u8 class ids at the frame's size ([`crate::frame_path::UNSEEN`] where the fit cut the
    /// frame). Shared with the pipeline's pool: holding it keeps its buffer out of reuse.
    pub classes: Arc<GrayImage>,
    /// The source image, when the pipeline was asked to keep frames.
    pub frame: Option<Arc<RgbImage>>,
    /// The file the frame came from, for file sources.
    pub origin: Option<PathBuf>,
    /// The token grid the prior chose (h×w, row-major; the package's `prior.grid`). Empty when
    /// the backend kept it on its device (wgpu in `Mode::Sequential`).
    pub tokens: Arc<Vec<i64>>,
    /// The prior's confidence per grid cell (h×w, the chosen token's probability), when the
    /// backend was built with `BackendOptions::confidence` and the prior ends with token logits.
    pub confidence: Option<Arc<Vec<f32>>>,
    /// Share of a full decode this frame's decoder run did: 1 for a full decode, less when token
    /// reuse ([`crate::engine::BackendOptions::reuse`]) re-decoded only the tiles near changed
    /// tokens, 0 when no token changed.
    pub decoded_share: f32,
    /// Per-stage times. In [`Mode::Sequential`] both graphs run as one backend call, so
    /// `prior` holds prior and decoder together and `decoder` is zero.
    pub timings: StageTimings,
    /// Frames dropped by the pipeline's stages so far (not by subscribers).
    pub dropped_so_far: u64,
}

/// A point-in-time copy of the pipeline's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames the source delivered intact.
    pub captured: u64,
    /// Frames the source reported corrupt (never captured).
    pub corrupt: u64,
    /// Failed attempts to get a lost source back.
    pub source_errors: u64,
    /// Frames dropped from a full queue before the prior, before the decoder, before publishing.
    pub dropped_before_prior: u64,
    pub dropped_before_decoder: u64,
    pub dropped_before_publish: u64,
    /// Frames whose inference failed (logged, skipped).
    pub failed: u64,
    /// Frames through both graphs and X⁻¹ (published, or dropped before publishing).
    pub processed: u64,
    /// Frames handed to subscribers.
    pub published: u64,
    pub subscribers: Vec<SubscriberStats>,
}

impl Stats {
    pub fn dropped(&self) -> u64 {
        self.dropped_before_prior + self.dropped_before_decoder + self.dropped_before_publish
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    /// Frames queued for this subscriber and not evicted.
    pub delivered: u64,
    /// Frames this subscriber lost to its own full queue.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    captured: AtomicU64,
    corrupt: AtomicU64,
    source_errors: AtomicU64,
    dropped_before_prior: AtomicU64,
    dropped_before_decoder: AtomicU64,
    dropped_before_publish: AtomicU64,
    failed: AtomicU64,
    processed: AtomicU64,
    published: AtomicU64,
}

impl Counters {
    /// A frame whose inference failed: logged, counted, skipped.
    fn fail(&self, frame_index: u64, e: &Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        log::error!("frame {frame_index}: {}", e.chain());
    }
}

struct Subscriber {
    tx: Sender<MaskFrame>,
    /// Real-time subscribers only: a clone of their receiver, so their oldest frame can be
    /// evicted from their own queue. It keeps the channel connected, so whether the subscriber
    /// is still there is read from `alive` instead.
    evict: Option<Receiver<MaskFrame>>,
    alive: Weak<()>,
    policy: Policy,
    stats: Arc<SubscriberCounters>,
}

#[derive(Default)]
struct SubscriberCounters {
    delivered: AtomicU64,
    dropped: AtomicU64,
}

/// A subscriber's end of the stream: segmented frames in order, until the pipeline stops.
/// Dropping it unsubscribes (the pipeline stops queueing for it at the next frame).
pub struct Subscription {
    rx: Receiver<MaskFrame>,
    _alive: Arc<()>,
}

impl Subscription {
    /// Blocks for the next frame; `Err` once the pipeline has stopped and the queue is empty.
    pub fn recv(&self) -> std::result::Result<MaskFrame, RecvError> {
        self.rx.recv()
    }

    pub fn recv_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<MaskFrame, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    pub fn try_recv(&self) -> std::result::Result<MaskFrame, TryRecvError> {
        self.rx.try_recv()
    }

    /// Every frame until the pipeline stops.
    pub fn iter(&self) -> crossbeam_channel::Iter<'_, MaskFrame> {
        self.rx.iter()
    }

    /// The frames queued now, without waiting.
    pub fn try_iter(&self) -> crossbeam_channel::TryIter<'_, MaskFrame> {
        self.rx.try_iter()
    }

    /// The channel itself, for `crossbeam_channel::select!`. A clone of it does not keep the
    /// subscription alive.
    pub fn receiver(&self) -> &Receiver<MaskFrame> {
        &self.rx
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = MaskFrame;
    type IntoIter = crossbeam_channel::Iter<'a, MaskFrame>;
    fn into_iter(self) -> Self::IntoIter {
        self.rx.iter()
    }
}

/// Queues `item`; in real time a full queue loses its oldest item (taken through `evict`, a
/// clone of the queue's receiver) instead. Returns how many items were evicted, or None when the
/// receiving side has gone.
fn push<T>(tx: &Sender<T>, evict: Option<&Receiver<T>>, item: T, policy: Policy) -> Option<u64> {
    match (policy, evict) {
        (Policy::Lossless, _) | (Policy::RealTime, None) => tx.send(item).ok().map(|_| 0),
        (Policy::RealTime, Some(rx)) => {
            let mut item = item;
            let mut evicted = 0;
            loop {
                match tx.try_send(item) {
                    Ok(()) => return Some(evicted),
                    Err(TrySendError::Full(back)) => {
                        // The consumer may have taken it meanwhile; only a real eviction counts.
                        if rx.try_recv().is_ok() {
                            evicted += 1;
                        }
                        item = back;
                    }
                    Err(TrySendError::Disconnected(_)) => return None,
                }
            }
        }
    }
}

/// A frame between the prior and the decoder.
struct Tokenized {
    seq: u64,
    frame: Frame,
    tokens: Arc<Vec<i64>>,
    confidence: Option<Arc<Vec<f32>>>,
    timings: StageTimings,
}

/// The frame path(s) for the stages; made by [`Pipeline::new`] before any thread starts, so
/// that a bad model fails there and not in a thread.
enum Stages {
    /// Encode and decode on their own threads, each with a backend for its own graph.
    Split {
        encode: Box<FramePath>,
        decode: Box<FramePath>,
    },
    /// The whole path on one thread.
    Whole(Box<FramePath>),
}

/// A running (or ready) stream. See the module docs.
pub struct Pipeline {
    package: ModelPackage,
    options: PipelineOptions,
    stages: Option<Stages>,
    counters: Arc<Counters>,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    subscriber_stats: Vec<Arc<SubscriberCounters>>,
    /// Frames subscribers may hold queued, for sizing the class-map pool.
    subscriber_capacity: usize,
    stop: StopSignal,
    /// The source's own stop signal, once `run` has the source: shared with every StopHandle,
    /// including those made before `run` (a Ctrl-C handler is installed first).
    source_stop: Arc<OnceLock<StopSignal>>,
    threads: Vec<JoinHandle<()>>,
    fatal: Arc<Mutex<Option<Error>>>,
}

impl Pipeline {
    /// Prepares the stages with backends from `make_backend`, called once per inference stage
    /// with the graphs that stage runs (prior, decoder, or both when sequential), so each thread
    /// owns its plans and none is held twice. Frames flow after [`run`].
    ///
    /// [`run`]: Pipeline::run
    pub fn new(
        package: ModelPackage,
        options: PipelineOptions,
        make_backend: impl Fn(&ModelPackage, Graphs) -> Result<Box<dyn Backend>>,
    ) -> Result<Self> {
        if options.queue_depth == 0 {
            return Err(Error::InvalidOption {
                option: "queue depth",
                msg: "must be at least 1".into(),
            });
        }
        let fit = options.fit.unwrap_or(package.manifest.input.fit);
        let path = |graphs| {
            FramePath::new(&package, make_backend(&package, graphs)?, graphs, fit).map(Box::new)
        };
        let stages = match options.mode {
            Mode::Pipelined => Stages::Split {
                encode: path(Graphs::Prior)?,
                decode: path(Graphs::Decoder)?,
            },
            Mode::Sequential => Stages::Whole(path(Graphs::Both)?),
        };
        Ok(Self {
            package,
            options,
            stages: Some(stages),
            counters: Arc::default(),
            subscribers: Arc::default(),
            subscriber_stats: Vec::new(),
            subscriber_capacity: 0,
            stop: StopSignal::new(),
            source_stop: Arc::default(),
            threads: Vec::new(),
            fatal: Arc::default(),
        })
    }

    /// A new channel of segmented frames holding at most `capacity` frames. With
    /// [`Policy::RealTime`] a full channel loses its oldest frame (counted in this subscriber's
    /// stats); with [`Policy::Lossless`] the pipeline waits for this subscriber. Dropping the
    /// [`Subscription`] unsubscribes. Subscribe before [`run`](Pipeline::run) to see every frame.
    pub fn subscribe(&mut self, capacity: usize, policy: Policy) -> Subscription {
        let capacity = capacity.max(1);
        let (tx, rx) = bounded(capacity);
        let stats = Arc::new(SubscriberCounters::default());
        self.subscriber_stats.push(stats.clone());
        self.subscriber_capacity += capacity;
        let alive = Arc::new(());
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let evict = (policy == Policy::RealTime).then(|| rx.clone());
        subs.push(Subscriber {
            tx,
            evict,
            alive: Arc::downgrade(&alive),
            policy,
            stats,
        });
        Subscription { rx, _alive: alive }
    }

    /// The model the pipeline runs.
    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    /// A handle that stops the pipeline from anywhere (a Ctrl-C handler, another thread).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            pipeline: self.stop.clone(),
            source: self.source_stop.clone(),
        }
    }

    /// Starts the threads; frames flow from `source` to the subscribers until it ends, a stage
    /// fails or [`stop`](Pipeline::stop) is called.
    pub fn run(&mut self, mut source: impl FrameSource + 'static) -> Result<()> {
        let stages = self.stages.take().ok_or_else(|| Error::Pipeline {
            msg: "run() called twice".into(),
        })?;
        if let Some(signal) = source.stop_signal() {
            // Only the first run() gets here (a second one fails above), so this cannot be set.
            let _ = self.source_stop.set(signal);
        }
        let depth = self.options.queue_depth;
        let policy = self.options.policy;
        // Frames alive at once: one per queue slot and stage, what subscribers keep queued, and
        // one being evicted.
        let in_flight = 4 * depth + 4 + self.subscriber_capacity;
        source.reserve_frames(in_flight);
        // Internal queues keep an eviction handle in real time only: in lossless mode a stage
        // that has died must disconnect its queue, or the stage before it would block forever.
        let (tx_frames, rx_frames) = bounded::<(u64, Frame)>(depth);
        let (tx_masks, rx_masks) = bounded::<MaskFrame>(depth);

        // capture
        {
            let (tx, rx_evict) = (tx_frames, evict_handle(policy, &rx_frames));
            let (counters, stop) = (self.counters.clone(), self.stop.clone());
            self.spawn("gss-capture", move || {
                let mut seq = 0u64;
                while !stop.is_stopped() {
                    match source.next_frame() {
                        Ok(Some(frame)) => {
                            counters.captured.fetch_add(1, Ordering::Relaxed);
                            match push(&tx, rx_evict.as_ref(), (seq, frame), policy) {
                                Some(n) => counters
                                    .dropped_before_prior
                                    .fetch_add(n, Ordering::Relaxed),
                                None => break,
                            };
                            seq += 1;
                        }
                        Ok(None) => break,
                        Err(e @ Error::SourceLost { .. }) => {
                            counters.source_errors.fetch_add(1, Ordering::Relaxed);
                            log::warn!("{}", e.chain());
                        }
                        Err(e) if e.is_recoverable() => {
                            counters.corrupt.fetch_add(1, Ordering::Relaxed);
                            log::warn!("{}", e.chain());
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })?;
        }

        let emit = Emitter {
            keep_frames: self.options.keep_frames,
            classes: BufferPool::new(in_flight),
            evict: evict_handle(policy, &rx_masks),
            tx: tx_masks,
            policy,
            counters: self.counters.clone(),
        };
        match stages {
            Stages::Split {
                mut encode,
                mut decode,
            } => {
                let (tx_tok, rx_tok) = bounded::<Tokenized>(depth);
                let counters = self.counters.clone();
                let rx_evict = evict_handle(policy, &rx_tok);
                // Token grids travel with their MaskFrame, so as many are alive as frames.
                let mut tokens_pool: BufferPool<Vec<i64>> = BufferPool::new(in_flight);
                let mut confidence_pool: BufferPool<Vec<f32>> = BufferPool::new(in_flight);
                self.spawn("gss-encode", move || {
                    for (seq, frame) in rx_frames.iter() {
                        let mut timings = StageTimings::default();
                        let encoded = tokens_pool.fill(|tokens| {
                            timings = encode.encode(&frame.image, tokens)?;
                            Ok::<_, Error>(())
                        });
                        let tokens = match encoded {
                            Ok(tokens) => tokens,
                            Err(e) if is_frame_failure(&e) => {
                                counters.fail(frame.index, &e);
                                continue;
                            }
                            Err(e) => return Err(e),
                        };
                        let confidence =
                            shared_confidence(&mut confidence_pool, encode.confidence());
                        match push(
                            &tx_tok,
                            rx_evict.as_ref(),
                            Tokenized {
                                seq,
                                frame,
                                tokens,
                                confidence,
                                timings,
                            },
                            policy,
                        ) {
                            Some(n) => counters
                                .dropped_before_decoder
                                .fetch_add(n, Ordering::Relaxed),
                            None => break,
                        };
                    }
                    Ok(())
                })?;
                let mut emit = emit;
                self.spawn("gss-decode", move || {
                    for item in rx_tok.iter() {
                        let Tokenized {
                            seq,
                            frame,
                            tokens,
                            confidence,
                            timings: encoded,
                        } = item;
                        let size = frame.image.dimensions();
                        let mut timings = encoded;
                        let result = emit.classes.fill(|classes| {
                            let decoded = decode.decode(&tokens, size, classes)?;
                            timings = StageTimings {
                                preprocess: encoded.preprocess,
                                prior: encoded.prior,
                                ..decoded
                            };
                            Ok::<_, Error>(())
                        });
                        let decoded_share = decode.decoded_share();
                        if !emit.emit(
                            seq,
                            frame,
                            result.map(|classes| Segmented {
                                classes,
                                tokens,
                                confidence,
                                decoded_share,
                                timings,
                            }),
                        )? {
                            break;
                        }
                    }
                    Ok(())
                })?;
            }
            Stages::Whole(mut path) => {
                let mut emit = emit;
                let mut tokens_pool: BufferPool<Vec<i64>> = BufferPool::new(in_flight);
                let mut confidence_pool: BufferPool<Vec<f32>> = BufferPool::new(in_flight);
                self.spawn("gss-segment", move || {
                    for (seq, frame) in rx_frames.iter() {
                        let mut timings = StageTimings::default();
                        let result = emit.classes.fill(|classes| {
                            timings = path.segment_into(&frame.image, classes)?;
                            Ok::<_, Error>(())
                        });
                        let result = result.and_then(|classes| {
                            let tokens = tokens_pool.fill(|t: &mut Vec<i64>| {
                                t.clear();
                                t.extend_from_slice(path.tokens());
                                Ok::<_, Error>(())
                            })?;
                            let confidence =
                                shared_confidence(&mut confidence_pool, path.confidence());
                            Ok(Segmented {
                                classes,
                                tokens,
                                confidence,
                                decoded_share: path.decoded_share(),
                                timings,
                            })
                        });
                        if !emit.emit(seq, frame, result)? {
                            break;
                        }
                    }
                    Ok(())
                })?;
            }
        }

        // publish
        let (counters, subscribers) = (self.counters.clone(), self.subscribers.clone());
        self.spawn("gss-publish", move || {
            for mut mask in rx_masks.iter() {
                mask.latency = mask.captured_at.elapsed();
                mask.dropped_so_far = counters.dropped_before_prior.load(Ordering::Relaxed)
                    + counters.dropped_before_decoder.load(Ordering::Relaxed)
                    + counters.dropped_before_publish.load(Ordering::Relaxed);
                counters.published.fetch_add(1, Ordering::Relaxed);
                let mut subs = subscribers.lock().unwrap_or_else(|p| p.into_inner());
                // A subscriber whose Subscription is gone, or whose channel closed, has
                // unsubscribed: dropping its entry drops the eviction clone and the sender.
                subs.retain(|s| {
                    if s.alive.strong_count() == 0 {
                        return false;
                    }
                    match push(&s.tx, s.evict.as_ref(), mask.clone(), s.policy) {
                        Some(evicted) => {
                            s.stats.delivered.fetch_add(1, Ordering::Relaxed);
                            s.stats.delivered.fetch_sub(evicted, Ordering::Relaxed);
                            s.stats.dropped.fetch_add(evicted, Ordering::Relaxed);
                            true
                        }
                        None => false,
                    }
                });
            }
            // Closing the subscriber channels tells every subscriber the stream has ended.
            subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            Ok(())
        })?;
        Ok(())
    }

    /// Starts a stage thread. A stage that returns an error or panics records it (the first one
    /// wins) and stops the pipeline and the source, so every other stage drains and ends.
    fn spawn(
        &mut self,
        name: &'static str,
        body: impl FnOnce() -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let fatal = self.fatal.clone();
        let stop = StopHandle {
            pipeline: self.stop.clone(),
            source: self.source_stop.clone(),
        };
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let error = match catch_unwind(AssertUnwindSafe(body)) {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e,
                    Err(panic) => {
                        let msg = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "(no message)".into());
                        Error::StagePanicked {
                            stage: name.into(),
                            msg,
                        }
                    }
                };
                log::error!("{name}: {}; stopping the stream", error.chain());
                fatal
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(error);
                stop.stop();
            })
            .map_err(|e| Error::Pipeline {
                msg: format!("cannot start thread {name}: {e}"),
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// Asks the stream to end: capture stops, the stages drain, subscribers see the end.
    pub fn stop(&self) {
        self.stop_handle().stop();
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            captured: load(&c.captured),
            corrupt: load(&c.corrupt),
            source_errors: load(&c.source_errors),
            dropped_before_prior: load(&c.dropped_before_prior),
            dropped_before_decoder: load(&c.dropped_before_decoder),
            dropped_before_publish: load(&c.dropped_before_publish),
            failed: load(&c.failed),
            processed: load(&c.processed),
            published: load(&c.published),
            subscribers: self
                .subscriber_stats
                .iter()
                .map(|s| SubscriberStats {
                    delivered: load(&s.delivered),
                    dropped: load(&s.dropped),
                })
                .collect(),
        }
    }

    /// Waits for every thread to finish (the source ended, a stage failed or
    /// [`stop`](Pipeline::stop) was called) and returns the final counters, or the error that
    /// stopped the stream.
    pub fn join(mut self) -> Result<Stats> {
        for handle in self.threads.drain(..) {
            // Stage bodies catch their own panics; a join error would be a panic in the wrapper.
            if handle.join().is_err() {
                return Err(Error::Pipeline {
                    msg: "a pipeline thread panicked".into(),
                });
            }
        }
        if let Some(e) = self.fatal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return Err(e);
        }
        Ok(self.stats())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop();
            for handle in self.threads.drain(..) {
                let _ = handle.join();
            }
        }
    }
}

/// Stops a pipeline from another thread or a signal handler.
#[derive(Clone)]
pub struct StopHandle {
    pipeline: StopSignal,
    source: Arc<OnceLock<StopSignal>>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.pipeline.stop();
        if let Some(s) = self.source.get() {
            s.stop();
        }
    }
}

/// What the inference stages made of one frame, on its way into a [`MaskFrame`].
struct Segmented {
    classes: Arc<GrayImage>,
    tokens: Arc<Vec<i64>>,
    confidence: Option<Arc<Vec<f32>>>,
    decoded_share: f32,
    timings: StageTimings,
}

/// The backend's confidence grid in a pooled buffer that can travel with the frame.
fn shared_confidence(
    pool: &mut BufferPool<Vec<f32>>,
    confidence: Option<&[f32]>,
) -> Option<Arc<Vec<f32>>> {
    let values = confidence?;
    pool.fill(|buf: &mut Vec<f32>| {
        buf.clear();
        buf.extend_from_slice(values);
        Ok::<_, Error>(())
    })
    .ok()
}

fn evict_handle<T>(policy: Policy, rx: &Receiver<T>) -> Option<Receiver<T>> {
    (policy == Policy::RealTime).then(|| rx.clone())
}

/// A failure that concerns one frame (the stream counts it and goes on), as opposed to one that
/// means the stage cannot go on.
fn is_frame_failure(e: &Error) -> bool {
    matches!(e, Error::Inference { .. }) || e.is_recoverable()
}

/// The end of the inference stages: the class map (from the pool) into a [`MaskFrame`], then
/// the queue to the publisher.
struct Emitter {
    keep_frames: bool,
    classes: BufferPool<GrayImage>,
    tx: Sender<MaskFrame>,
    evict: Option<Receiver<MaskFrame>>,
    policy: Policy,
    counters: Arc<Counters>,
}

impl Emitter {
    /// Ok(false) once the publisher has gone (the stage should stop); Err for a failure that
    /// is not about this frame.
    fn emit(&mut self, seq: u64, frame: Frame, result: Result<Segmented>) -> Result<bool> {
        let Segmented {
            classes,
            tokens,
            confidence,
            decoded_share,
            timings,
        } = match result {
            Ok(done) => done,
            Err(e) if is_frame_failure(&e) => {
                self.counters.fail(frame.index, &e);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        self.counters.processed.fetch_add(1, Ordering::Relaxed);
        let mask = MaskFrame {
            seq,
            source_index: frame.index,
            captured_at: frame.captured_at,
            latency: Duration::ZERO,
            classes,
            frame: self.keep_frames.then_some(frame.image),
            origin: frame.origin,
            tokens,
            confidence,
            decoded_share,
            timings,
            dropped_so_far: 0,
        };
        match push(&self.tx, self.evict.as_ref(), mask, self.policy) {
            Some(n) => {
                self.counters
                    .dropped_before_publish
                    .fetch_add(n, Ordering::Relaxed);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_push_evicts_the_oldest() {
        let (tx, rx) = bounded(2);
        for i in 0..5 {
            push(&tx, Some(&rx), i, Policy::RealTime).unwrap();
        }
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), vec![3, 4]);
        drop(rx);
    }

    #[test]
    fn push_reports_a_closed_channel() {
        let (tx, rx) = bounded::<u8>(1);
        drop(rx);
        assert_eq!(push(&tx, None, 1, Policy::Lossless), None);
    }
}
