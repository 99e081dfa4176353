//! Rerun logging (feature `rerun`): a stream as a Rerun recording, written to an `.rrd` file or
//! sent to a running viewer over gRPC. This module owns how a [`MaskFrame`] maps to Rerun's
//! entities and timelines, and the subscriber thread that logs them.
//!
//! Per frame, on the `frame` timeline (the pipeline's sequence number) and the `capture_time`
//! timeline (wall clock at capture): the source image at [`paths::IMAGE`] (when the pipeline
//! keeps frames), the class map as a `SegmentationImage` at [`paths::CLASSES`], and each stage's
//! milliseconds as `Scalars` under [`paths::TIMINGS`]. Once, static: an `AnnotationContext` at
//! [`paths::CAMERA`] with the manifest's class ids, names and colours, so the viewer names and
//! colours the class map (and anything else logged under `camera/`).

use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rerun::external::re_uri::ProxyUri;
use rerun::sink::{GrpcSink, GrpcSinkConnectionState, LogSink, SinkFlushError};
use rerun::{EntityPath, RecordingStream, RecordingStreamBuilder};

use crate::error::{Error, Result};
use crate::frame_path::UNSEEN;
use crate::model::ClassInfo;
use crate::pipeline::{MaskFrame, Subscription};

use super::{RerunReport, Target};

/// The application id recordings are filed under in the viewer.
pub const APPLICATION_ID: &str = "gss";

/// Where each thing is logged, for readers of the recording.
pub mod paths {
    /// The static `AnnotationContext` (classes), parent of the image and the class map.
    pub const CAMERA: &str = "camera";
    /// The source frame, RGB (only when the pipeline keeps frames).
    pub const IMAGE: &str = "camera/image";
    /// The class map, a `SegmentationImage` of u8 class ids.
    pub const CLASSES: &str = "camera/classes";
    /// Parent of one `Scalars` entity per stage (milliseconds).
    pub const TIMINGS: &str = "timings";
    /// The stages under [`TIMINGS`], in logging order.
    pub const STAGES: [&str; 6] = [
        "preprocess",
        "prior",
        "decoder",
        "inverse",
        "resize",
        "latency",
    ];
}

/// The timeline of the pipeline's sequence numbers.
pub const FRAME_TIMELINE: &str = "frame";
/// The timeline of capture times (wall clock).
pub const CAPTURE_TIMELINE: &str = "capture_time";

/// How long a finished stream waits for a viewer to take what is still queued.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The viewer's side of a gRPC sink, shared so the sink's connection state can be read while
/// the recording owns the sink.
struct SharedGrpc(Arc<GrpcSink>);

impl LogSink for SharedGrpc {
    fn send(&self, msg: rerun::log::LogMsg) {
        self.0.send(msg);
    }

    fn flush_blocking(&self, timeout: Duration) -> std::result::Result<(), SinkFlushError> {
        self.0.flush_blocking(timeout)
    }

    fn default_batcher_config(&self) -> rerun::log::ChunkBatcherConfig {
        self.0.default_batcher_config()
    }
}

/// The state of the link to a viewer, as the logger acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// A file, or a connected viewer: log.
    Open,
    /// No viewer yet: skip the frame rather than queue it (the gRPC client would queue without
    /// bound in time, and block for good once its queue is full).
    Waiting,
    /// The viewer went away or refused us: stop logging, the stream goes on.
    Lost(String),
}

/// A recording a stream logs into. Build it with [`RerunSink::open`], then either call
/// [`RerunSink::log`] per frame or hand it a subscription with [`RerunSink::spawn`].
pub struct RerunSink {
    rec: RecordingStream,
    target: Target,
    grpc: Option<Arc<GrpcSink>>,
    /// The same moment on both clocks: capture `Instant`s become wall-clock times from it.
    epoch: (Instant, SystemTime),
    image_path: EntityPath,
    classes_path: EntityPath,
    timing_paths: Vec<EntityPath>,
    connected_once: bool,
    warned_waiting: bool,
    report: RerunReport,
}

fn rerun_error(target: &Target, msg: impl std::fmt::Display) -> Error {
    Error::Rerun {
        target: target.to_string(),
        msg: msg.to_string(),
    }
}

impl RerunSink {
    /// Opens the file or starts connecting to the viewer (in the background: a viewer that is
    /// not there yet is no error), and logs the class annotations once.
    pub fn open(target: Target, classes: &[ClassInfo]) -> Result<Self> {
        let builder = RecordingStreamBuilder::new(APPLICATION_ID);
        let (rec, grpc) = match &target {
            Target::File(path) => {
                let rec = builder.save(path).map_err(|e| {
                    rerun_error(&target, format!("cannot create the recording: {e}"))
                })?;
                (rec, None)
            }
            Target::Viewer(url) => {
                let uri = ProxyUri::from_str(url).map_err(|e| {
                    rerun_error(&target, format!("not a viewer URL ({e}); expected e.g. rerun+http://127.0.0.1:9876/proxy"))
                })?;
                let grpc = Arc::new(GrpcSink::new(uri));
                // The sink is swapped in after the fact, so the batching a live viewer wants is
                // asked for here rather than taken from the sink.
                let rec = builder
                    .batcher_config(rerun::log::ChunkBatcherConfig::LOW_LATENCY)
                    .buffered()
                    .map_err(|e| rerun_error(&target, e))?;
                rec.set_sink(Box::new(SharedGrpc(Arc::clone(&grpc))));
                (rec, Some(grpc))
            }
        };
        let mut descriptions: Vec<(u16, &str, rerun::Rgba32)> =
            Vec::with_capacity(classes.len() + 1);
        for c in classes {
            let id = u16::try_from(c.id).map_err(|_| {
                rerun_error(
                    &target,
                    format!(
                        "class {} has id {}, beyond what a class map holds",
                        c.name, c.id
                    ),
                )
            })?;
            let [r, g, b] = c.color;
            descriptions.push((id, c.name.as_str(), rerun::Rgba32::from_rgb(r, g, b)));
        }
        if !classes.iter().any(|c| c.id == u32::from(UNSEEN)) {
            descriptions.push((
                u16::from(UNSEEN),
                "unseen",
                rerun::Rgba32::from_rgb(0, 0, 0),
            ));
        }
        rec.log_static(paths::CAMERA, &rerun::AnnotationContext::new(descriptions))
            .map_err(|e| rerun_error(&target, e))?;
        let timing_paths = paths::STAGES
            .iter()
            .map(|s| EntityPath::from(format!("{}/{s}", paths::TIMINGS)))
            .collect();
        Ok(Self {
            rec,
            report: RerunReport {
                target: target.to_string(),
                ..RerunReport::default()
            },
            target,
            grpc,
            epoch: (Instant::now(), SystemTime::now()),
            image_path: EntityPath::from(paths::IMAGE),
            classes_path: EntityPath::from(paths::CLASSES),
            timing_paths,
            connected_once: false,
            warned_waiting: false,
        })
    }

    fn link(&self) -> Link {
        let Some(grpc) = &self.grpc else {
            return Link::Open;
        };
        match grpc.status() {
            GrpcSinkConnectionState::Connected => Link::Open,
            GrpcSinkConnectionState::Connecting { .. } => Link::Waiting,
            GrpcSinkConnectionState::Disconnected(Ok(())) => {
                Link::Lost("the viewer closed the connection".into())
            }
            GrpcSinkConnectionState::Disconnected(Err(e)) => Link::Lost(e.to_string()),
        }
    }

    fn wall_clock(&self, at: Instant) -> SystemTime {
        let (instant, wall) = self.epoch;
        match at.checked_duration_since(instant) {
            Some(after) => wall + after,
            None => wall - instant.duration_since(at),
        }
    }

    /// Logs one frame. `Ok(false)` once the viewer is gone: nothing more will be logged, and a
    /// caller that subscribed for this sink should drop its subscription.
    pub fn log(&mut self, mask: &MaskFrame) -> Result<bool> {
        match self.link() {
            Link::Open => {}
            Link::Waiting => {
                self.report.skipped += 1;
                if !self.warned_waiting {
                    self.warned_waiting = true;
                    log::warn!("rerun: no viewer at {} yet (start one with `rerun`); frames are skipped until it connects", self.target);
                }
                return Ok(true);
            }
            Link::Lost(why) => {
                if self.report.problem.is_none() {
                    log::error!(
                        "rerun: lost the viewer at {}: {why}; the stream goes on without it",
                        self.target
                    );
                    self.report.problem = Some(why);
                }
                self.report.skipped += 1;
                return Ok(false);
            }
        }
        if self.grpc.is_some() && !self.connected_once {
            self.connected_once = true;
            log::info!("rerun: connected to the viewer at {}", self.target);
        }
        self.rec
            .set_time_sequence(FRAME_TIMELINE, i64::try_from(mask.seq).unwrap_or(i64::MAX));
        let nanos = self
            .wall_clock(mask.captured_at)
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.rec.set_timestamp_nanos_since_epoch(
            CAPTURE_TIMELINE,
            i64::try_from(nanos).unwrap_or(i64::MAX),
        );
        // The recording owns what it is given until its batcher has written it (a fraction of a
        // second), so the pool's buffers are copied rather than lent: lending them would keep
        // them out of reuse and make the pipeline allocate instead.
        if let Some(frame) = &mask.frame {
            let image =
                rerun::Image::from_rgb24(frame.as_raw().clone(), [frame.width(), frame.height()]);
            self.rec
                .log(self.image_path.clone(), &image)
                .map_err(|e| rerun_error(&self.target, e))?;
        }
        let (w, h) = mask.classes.dimensions();
        let classes = rerun::SegmentationImage::new(
            mask.classes.as_raw().clone(),
            rerun::datatypes::ImageFormat::segmentation([w, h], rerun::ChannelDatatype::U8),
        );
        self.rec
            .log(self.classes_path.clone(), &classes)
            .map_err(|e| rerun_error(&self.target, e))?;
        let t = &mask.timings;
        let values = [
            t.preprocess,
            t.prior,
            t.decoder,
            t.inverse,
            t.resize,
            mask.latency,
        ];
        for (path, d) in self.timing_paths.iter().zip(values) {
            self.rec
                .log(path.clone(), &rerun::Scalars::single(d.as_secs_f64() * 1e3))
                .map_err(|e| rerun_error(&self.target, e))?;
        }
        self.report.logged += 1;
        Ok(true)
    }

    /// Logs every frame of `frames` on a thread of its own until the stream ends or the viewer
    /// is gone. Subscribe with [`crate::pipeline::Policy::RealTime`]: a slow file or viewer then
    /// loses frames of its own and never slows the stream.
    pub fn spawn(mut self, frames: Subscription) -> Result<RerunThread> {
        let handle = std::thread::Builder::new()
            .name("gss-rerun".into())
            .spawn(move || {
                for mask in frames.iter() {
                    match self.log(&mask) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            log::error!("{}; the stream goes on without it", e.chain());
                            self.report.problem = Some(e.to_string());
                            break;
                        }
                    }
                }
                // Dropping the subscription here unsubscribes, whichever way the loop ended.
                drop(frames);
                self.finish()
            })
            .map_err(|e| Error::Pipeline {
                msg: format!("cannot start the rerun logger thread: {e}"),
            })?;
        Ok(RerunThread { handle })
    }

    /// Flushes what is queued (waiting at most a few seconds for a viewer) and closes the
    /// recording.
    pub fn finish(self) -> RerunReport {
        let Self {
            rec,
            target,
            grpc,
            connected_once,
            mut report,
            ..
        } = self;
        if grpc.is_some() && !connected_once {
            log::warn!("rerun: no viewer connected at {target}; nothing was sent");
        } else if let Err(e) = rec.flush_with_timeout(FLUSH_TIMEOUT) {
            log::warn!("rerun: {target}: not everything was written: {e}");
            report.problem.get_or_insert_with(|| e.to_string());
        }
        drop(rec);
        report
    }
}

/// The thread [`RerunSink::spawn`] started.
pub struct RerunThread {
    handle: JoinHandle<RerunReport>,
}

impl RerunThread {
    /// Waits for the logger to finish (after the pipeline has stopped) and says what it did.
    pub fn join(self) -> RerunReport {
        self.handle.join().unwrap_or_else(|_| RerunReport {
            problem: Some("the rerun logger thread panicked".into()),
            ..RerunReport::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_url_that_is_not_a_proxy_url_is_refused_with_an_example() {
        let err = RerunSink::open(Target::Viewer("127.0.0.1:9876".into()), &[])
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("rerun+http://127.0.0.1:9876/proxy"),
            "{err}"
        );
    }

    #[test]
    fn a_file_in_a_missing_directory_is_an_error_naming_it() {
        let path = std::env::temp_dir()
            .join(format!("gss-no-such-dir-{}", std::process::id()))
            .join("x.rrd");
        let err = RerunSink::open(Target::File(path.clone()), &[])
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
