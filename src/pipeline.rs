//! Streaming: a frame source, inference stages and subscribers on their own threads, joined by
//! bounded crossbeam channels.
//!
//! ```text
//! capture ──q──► prior (preprocess + prior) ──q──► decoder (decoder + X⁻¹ + resize) ──q──► publish ──► subscribers
//! ```
//! With [`Mode::Pipelined`] frame N+1's prior overlaps frame N's decoder; [`Mode::Sequential`]
//! runs both graphs on one thread (a GPU backend keeps the tokens on the device that way).
//!
//! Drop policy: with [`Policy::RealTime`] a full queue loses its *oldest* frame, so a slow stage
//! never blocks the camera and what comes out is as fresh as possible; [`Policy::Lossless`]
//! blocks instead (offline runs, evaluation). Every captured frame ends exactly one way, so
//! `captured == published + dropped + failed` once the pipeline has stopped. Each subscriber has
//! its own queue and policy: a slow subscriber loses its own frames, nobody else's.
//!
//! Shutdown: the source ending or [`Pipeline::stop`] (Ctrl-C) ends capture; each stage drains
//! its queue and closes the next one, and [`Pipeline::join`] waits for every thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use image::{GrayImage, RgbImage};
use tract_linalg::multithread::{multithread_tract_scope, Executor};

use crate::engine::{Backend, Graphs};
use crate::error::{Error, Result};
use crate::model::ModelPackage;
use crate::segmenter::{Postprocess, Preprocess, StageTimings};
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

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub policy: Policy,
    pub mode: Mode,
    /// Frames each inter-stage queue holds.
    pub queue_depth: usize,
    /// tract threads for each inference stage (0: all cores in sequential mode, and the cores
    /// shared out between the two stages when pipelined).
    pub threads: usize,
    /// Attach the source image to every [`MaskFrame`] (for overlays).
    pub keep_frames: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self { policy: Policy::RealTime, mode: Mode::Pipelined, queue_depth: 1, threads: 0, keep_frames: false }
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
    /// u8 class ids at the frame's size.
    pub classes: Arc<GrayImage>,
    /// The source image, when the pipeline was asked to keep frames.
    pub frame: Option<Arc<RgbImage>>,
    /// The file the frame came from, for file sources.
    pub origin: Option<PathBuf>,
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
        log::error!("frame {frame_index}: {e}");
    }
}

struct Subscriber {
    tx: Sender<MaskFrame>,
    /// Real-time subscribers only: kept so their oldest frame can be evicted from their own
    /// queue. (A lossless subscriber keeps no clone, so dropping its receiver unsubscribes it
    /// instead of blocking the pipeline forever.)
    evict: Option<Receiver<MaskFrame>>,
    policy: Policy,
    stats: Arc<SubscriberCounters>,
}

#[derive(Default)]
struct SubscriberCounters {
    delivered: AtomicU64,
    dropped: AtomicU64,
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
    tokens: Vec<i64>,
    timings: StageTimings,
}

/// Inference backends for the stages; made by [`Pipeline::new`] before any thread starts, so
/// that a bad model fails there and not in a thread.
enum Engines {
    Split { prior: Box<dyn Backend>, decoder: Box<dyn Backend> },
    Fused(Box<dyn Backend>),
}

/// A running (or ready) stream. See the module docs.
pub struct Pipeline {
    package: ModelPackage,
    options: PipelineOptions,
    engines: Option<Engines>,
    counters: Arc<Counters>,
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
    subscriber_stats: Vec<Arc<SubscriberCounters>>,
    stop: StopSignal,
    source_stop: Option<StopSignal>,
    threads: Vec<JoinHandle<()>>,
    fatal: Arc<Mutex<Option<Error>>>,
}

fn executor(threads: usize) -> Executor {
    if threads > 1 {
        Executor::multithread(threads)
    } else {
        Executor::SingleThread
    }
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
            return Err(Error::Pipeline { msg: "queue depth must be at least 1".into() });
        }
        let engines = match options.mode {
            Mode::Pipelined => Engines::Split {
                prior: make_backend(&package, Graphs::Prior)?,
                decoder: make_backend(&package, Graphs::Decoder)?,
            },
            Mode::Sequential => Engines::Fused(make_backend(&package, Graphs::Both)?),
        };
        Ok(Self {
            package,
            options,
            engines: Some(engines),
            counters: Arc::default(),
            subscribers: Arc::default(),
            subscriber_stats: Vec::new(),
            stop: StopSignal::new(),
            source_stop: None,
            threads: Vec::new(),
            fatal: Arc::default(),
        })
    }

    /// A new channel of segmented frames holding at most `capacity` frames. With
    /// [`Policy::RealTime`] a full channel loses its oldest frame (counted in this subscriber's
    /// stats); with [`Policy::Lossless`] the pipeline waits for this subscriber. Dropping the
    /// receiver unsubscribes. Subscribe before [`run`](Pipeline::run) to see every frame.
    pub fn subscribe(&mut self, capacity: usize, policy: Policy) -> Receiver<MaskFrame> {
        let (tx, rx) = bounded(capacity.max(1));
        let stats = Arc::new(SubscriberCounters::default());
        self.subscriber_stats.push(stats.clone());
        let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
        let evict = (policy == Policy::RealTime).then(|| rx.clone());
        subs.push(Subscriber { tx, evict, policy, stats });
        rx
    }

    /// The model the pipeline runs.
    pub fn package(&self) -> &ModelPackage {
        &self.package
    }

    /// A handle that stops the pipeline from anywhere (a Ctrl-C handler, another thread).
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle { pipeline: self.stop.clone(), source: self.source_stop.clone() }
    }

    /// Starts the threads; frames flow from `source` to the subscribers until it ends or
    /// [`stop`](Pipeline::stop) is called.
    pub fn run(&mut self, mut source: impl FrameSource + 'static) -> Result<()> {
        let engines = self.engines.take().ok_or_else(|| Error::Pipeline { msg: "run() called twice".into() })?;
        self.source_stop = source.stop_signal();
        let depth = self.options.queue_depth;
        let policy = self.options.policy;
        let (tx_frames, rx_frames) = bounded::<(u64, Frame)>(depth);
        let (tx_masks, rx_masks) = bounded::<MaskFrame>(depth);

        // capture
        {
            let (tx, rx_evict) = (tx_frames, rx_frames.clone());
            let (counters, stop, fatal) = (self.counters.clone(), self.stop.clone(), self.fatal.clone());
            self.spawn("gss-capture", move || {
                let name = source.name().to_string();
                let mut seq = 0u64;
                while !stop.is_stopped() {
                    match source.next_frame() {
                        Ok(Some(frame)) => {
                            counters.captured.fetch_add(1, Ordering::Relaxed);
                            match push(&tx, Some(&rx_evict), (seq, frame), policy) {
                                Some(n) => counters.dropped_before_prior.fetch_add(n, Ordering::Relaxed),
                                None => break,
                            };
                            seq += 1;
                        }
                        Ok(None) => break,
                        Err(e @ Error::SourceLost { .. }) => {
                            counters.source_errors.fetch_add(1, Ordering::Relaxed);
                            log::warn!("{e}");
                        }
                        Err(e) if e.is_recoverable() => {
                            counters.corrupt.fetch_add(1, Ordering::Relaxed);
                            log::warn!("{name}: {e}");
                        }
                        Err(e) => {
                            log::error!("{name}: {e}; stopping the stream");
                            *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            break;
                        }
                    }
                }
            })?;
        }

        let threads = self.stage_threads();
        let mut emit = Emitter::new(&self.package, self.options.keep_frames, tx_masks, rx_masks.clone(), policy, self.counters.clone())?;
        match engines {
            Engines::Split { prior, decoder } => {
                let (tx_tok, rx_tok) = bounded::<Tokenized>(depth);
                let (mut prior, mut decoder) = (prior, decoder);
                let mut pre = Preprocess::new(&self.package.manifest);
                let counters = self.counters.clone();
                let rx_evict = rx_tok.clone();
                self.spawn("gss-prior", move || {
                    multithread_tract_scope(executor(threads), || {
                        for (seq, frame) in rx_frames.iter() {
                            let t0 = Instant::now();
                            let input = pre.run(&frame.image);
                            let t1 = Instant::now();
                            let mut tokens = Vec::new();
                            if let Err(e) = prior.run_prior(input, &mut tokens) {
                                counters.fail(frame.index, &e);
                                continue;
                            }
                            let timings = StageTimings { preprocess: t1 - t0, prior: t1.elapsed(), ..Default::default() };
                            match push(&tx_tok, Some(&rx_evict), Tokenized { seq, frame, tokens, timings }, policy) {
                                Some(n) => counters.dropped_before_decoder.fetch_add(n, Ordering::Relaxed),
                                None => break,
                            };
                        }
                    })
                })?;
                self.spawn("gss-decoder", move || {
                    let mut maskige = Vec::new();
                    multithread_tract_scope(executor(threads), || {
                        for mut item in rx_tok.iter() {
                            let t0 = Instant::now();
                            if let Err(e) = decoder.run_decoder(&item.tokens, &mut maskige) {
                                emit.counters.fail(item.frame.index, &e);
                                continue;
                            }
                            item.timings.decoder = t0.elapsed();
                            if !emit.emit(item.seq, item.frame, &maskige, item.timings) {
                                break;
                            }
                        }
                    })
                })?;
            }
            Engines::Fused(mut backend) => {
                let mut pre = Preprocess::new(&self.package.manifest);
                self.spawn("gss-infer", move || {
                    let (mut tokens, mut maskige) = (Vec::new(), Vec::new());
                    multithread_tract_scope(executor(threads), || {
                        for (seq, frame) in rx_frames.iter() {
                            let t0 = Instant::now();
                            let input = pre.run(&frame.image);
                            let t1 = Instant::now();
                            // One call, so that a GPU backend keeps the tokens on the device.
                            if let Err(e) = backend.run(input, &mut tokens, &mut maskige) {
                                emit.counters.fail(frame.index, &e);
                                continue;
                            }
                            let timings = StageTimings { preprocess: t1 - t0, prior: t1.elapsed(), ..Default::default() };
                            if !emit.emit(seq, frame, &maskige, timings) {
                                break;
                            }
                        }
                    })
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
                // A subscriber whose receiver is gone has unsubscribed.
                subs.retain(|s| match push(&s.tx, s.evict.as_ref(), mask.clone(), s.policy) {
                    Some(evicted) => {
                        s.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        s.stats.delivered.fetch_sub(evicted, Ordering::Relaxed);
                        s.stats.dropped.fetch_add(evicted, Ordering::Relaxed);
                        true
                    }
                    None => false,
                });
            }
            // Closing the subscriber channels tells every subscriber the stream has ended.
            subscribers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        })?;
        Ok(())
    }

    fn stage_threads(&self) -> usize {
        let cores = crate::engine::cpu::available_threads();
        match (self.options.threads, self.options.mode) {
            (0, Mode::Sequential) => cores,
            (0, Mode::Pipelined) => (cores / 2).max(1),
            (n, _) => n,
        }
    }

    fn spawn(&mut self, name: &str, body: impl FnOnce() + Send + 'static) -> Result<()> {
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(|e| Error::Pipeline { msg: format!("cannot start thread {name}: {e}") })?;
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
                .map(|s| SubscriberStats { delivered: load(&s.delivered), dropped: load(&s.dropped) })
                .collect(),
        }
    }

    /// Waits for every thread to finish (the source ended or [`stop`](Pipeline::stop) was
    /// called) and returns the final counters, or the error that ended the source.
    pub fn join(mut self) -> Result<Stats> {
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                return Err(Error::Pipeline { msg: "a pipeline thread panicked".into() });
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
    source: Option<StopSignal>,
}

impl StopHandle {
    pub fn stop(&self) {
        self.pipeline.stop();
        if let Some(s) = &self.source {
            s.stop();
        }
    }
}

/// The end of the inference stages: X⁻¹ and resize into a fresh [`MaskFrame`], then the queue
/// to the publisher.
struct Emitter {
    post: Postprocess,
    keep_frames: bool,
    tx: Sender<MaskFrame>,
    evict: Receiver<MaskFrame>,
    policy: Policy,
    counters: Arc<Counters>,
}

impl Emitter {
    fn new(
        package: &ModelPackage,
        keep_frames: bool,
        tx: Sender<MaskFrame>,
        evict: Receiver<MaskFrame>,
        policy: Policy,
        counters: Arc<Counters>,
    ) -> Result<Self> {
        Ok(Self { post: Postprocess::new(package)?, keep_frames, tx, evict, policy, counters })
    }

    /// False once the publisher has gone (the stage should stop).
    fn emit(&mut self, seq: u64, frame: Frame, maskige: &[f32], mut timings: StageTimings) -> bool {
        // A fresh map per frame: subscribers hold on to it for as long as they like.
        let mut classes = GrayImage::new(0, 0);
        match self.post.run(maskige, frame.image.dimensions(), &mut classes) {
            Ok((inverse, resize)) => (timings.inverse, timings.resize) = (inverse, resize),
            Err(e) => {
                self.counters.fail(frame.index, &e);
                return true;
            }
        }
        self.counters.processed.fetch_add(1, Ordering::Relaxed);
        let mask = MaskFrame {
            seq,
            source_index: frame.index,
            captured_at: frame.captured_at,
            latency: Duration::ZERO,
            classes: Arc::new(classes),
            frame: self.keep_frames.then_some(frame.image),
            origin: frame.origin,
            timings,
            dropped_so_far: 0,
        };
        match push(&self.tx, Some(&self.evict), mask, self.policy) {
            Some(n) => {
                self.counters.dropped_before_publish.fetch_add(n, Ordering::Relaxed);
                true
            }
            None => false,
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
