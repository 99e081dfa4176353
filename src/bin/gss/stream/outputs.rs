//! The stream's outputs, each started from its flags and held by name: the PNG saver, the live
//! view, the Rerun log and the zenoh / ROS 2 publisher; at the end each is joined and what it did
//! (or why it stopped) goes to the summary.

use std::path::PathBuf;

use anyhow::{Context, Result};

use gss::pipeline::{Pipeline, Policy, Stats, Subscription};
use gss::sink::png::{SaveKind, Saver};
use gss::sink::rerun::{RerunSink, RerunThread, Target as RerunTarget};
use gss::sink::serve::{Credentials, LiveView, ServeOptions, TlsFiles, View};
use gss::sink::wire::{Ros2Options, SessionOptions, SinkStats, ZenohSinkOptions};
use gss::sink::zenoh::ZenohSink;
use gss::{MaskFrame, ModelPackage};

use super::args::{Args, Save};
use super::report::{RerunSummary, SavedFiles};

/// A subscription and its entry in `Stats::subscribers`. The pipeline numbers its subscribers
/// in the order they joined, so the entry is noted as each joins rather than assumed from the
/// order the outputs happen to start in.
pub(super) struct Tap {
    pub frames: Subscription,
    slot: usize,
}

/// The `Stats::subscribers` entry the next subscriber to `pipeline` gets.
fn next_slot(pipeline: &Pipeline) -> usize {
    pipeline.stats().subscribers.len()
}

impl Tap {
    pub fn subscribe(pipeline: &mut Pipeline, capacity: usize, policy: Policy) -> Tap {
        let slot = next_slot(pipeline);
        Tap {
            frames: pipeline.subscribe(capacity, policy),
            slot,
        }
    }

    /// Frames this subscriber lost to its own full queue.
    pub fn dropped(&self, stats: &Stats) -> u64 {
        dropped_at(self.slot, stats)
    }
}

fn dropped_at(slot: usize, stats: &Stats) -> u64 {
    stats.subscribers.get(slot).map_or(0, |s| s.dropped)
}

/// The Rerun log, opened before the model loads so that a bad file or URL fails first.
pub(super) fn open_rerun(args: &Args, package: &ModelPackage) -> Result<Option<RerunSink>> {
    let target = match (&args.rerun, &args.rerun_connect) {
        (Some(path), _) => Some(RerunTarget::File(path.clone())),
        (None, Some(url)) => Some(RerunTarget::Viewer(url.clone())),
        (None, None) => None,
    };
    Ok(target
        .map(|t| RerunSink::open(t, &package.manifest.classes))
        .transpose()?)
}

/// Whether any output draws the camera image, so the pipeline must keep each frame's pixels.
pub(super) fn need_frames(args: &Args, save: Save, rerun: bool) -> bool {
    save == Save::Overlays
        || (args.serve.is_some() && args.serve_view == View::Overlay)
        || rerun
        || args.ros2_overlay
}

/// The zenoh sink's options from the command line; None when neither --zenoh nor --ros2 is given.
pub(super) fn zenoh_options(args: &Args) -> Option<ZenohSinkOptions> {
    if args.zenoh.is_none() && args.ros2.is_none() {
        return None;
    }
    let mut session = SessionOptions {
        config_file: args.zenoh_config.clone(),
        connect: args.zenoh_connect.clone(),
        listen: args.zenoh_listen.clone(),
        client: args.zenoh_client,
    };
    if args.ros2.is_some() && session == SessionOptions::default() {
        // rmw_zenoh's session default: the local router (the sink listens on loopback
        // whenever nothing says otherwise).
        session.connect = vec!["tcp/localhost:7447".into()];
    }
    Some(ZenohSinkOptions {
        session,
        key: args.zenoh.clone(),
        ros2: args.ros2.as_ref().map(|topic| Ros2Options {
            topic: topic.clone(),
            domain_id: args.ros2_domain,
            frame_id: args.ros2_frame_id.clone(),
            node_name: "gss".into(),
            overlay: args.ros2_overlay,
        }),
    })
}

/// The live view's options from the command line (credentials read from a file for @FILE).
fn serve_options(args: &Args, mut options: ServeOptions) -> Result<ServeOptions> {
    if let Some(auth) = &args.serve_auth {
        let text = match auth.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("--serve-auth: reading {file}"))?;
                text.lines().next().unwrap_or("").trim_end().to_string()
            }
            None => auth.clone(),
        };
        options.access.credentials = Some(Credentials::parse(&text)?);
    }
    options.access.open = args.serve_insecure;
    options.access.hosts = args.serve_host.clone();
    options.limits.max_clients = args.serve_max_clients as usize;
    options.view = args.serve_view;
    options.tls = match (&args.serve_tls_cert, &args.serve_tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    Ok(options)
}

/// The saver and what the summary says about its files.
struct Saving {
    saver: Saver,
    what: &'static str,
    keep: Option<usize>,
}

/// The outputs that run beside the stream's own consumer. The saver is fed by that consumer;
/// every other output has a subscription and a thread of its own.
#[derive(Default)]
pub(super) struct Outputs {
    saving: Option<Saving>,
    live: Option<LiveView>,
    /// With its `Stats::subscribers` entry: frames its queue lost are part of its summary.
    rerun: Option<(RerunThread, usize)>,
    zenoh: Option<ZenohSink>,
}

/// What the outputs did, once joined.
pub(super) struct Finished {
    pub rerun: Option<RerunSummary>,
    pub zenoh: Option<SinkStats>,
    pub saved: Option<SavedFiles>,
    /// "what: why" for each output that stopped early, in a fixed order.
    pub errors: Vec<String>,
}

impl Outputs {
    /// Rerun and zenoh, subscribed before the stream starts so they see every frame.
    pub fn subscribe(
        pipeline: &mut Pipeline,
        rerun: Option<RerunSink>,
        zenoh: Option<&ZenohSinkOptions>,
    ) -> Result<Outputs> {
        let mut outputs = Outputs::default();
        if let Some(sink) = rerun {
            // Always real-time: a slow disk or viewer loses frames of its own and never holds
            // up the stages or the saver, even in a lossless stream.
            let tap = Tap::subscribe(pipeline, 8, Policy::RealTime);
            outputs.rerun = Some((sink.spawn(tap.frames)?, tap.slot));
        }
        if let Some(options) = zenoh {
            let sink = ZenohSink::start(pipeline, options).context("starting the zenoh sink")?;
            let what = [
                options
                    .key
                    .as_ref()
                    .map(|k| format!("masks on {k:?} (meta on {k}/meta)")),
                options
                    .ros2
                    .as_ref()
                    .map(|r| format!("ROS 2 images on {} (domain {})", r.topic, r.domain_id)),
            ];
            log::info!(
                "zenoh session {}: {}",
                sink.zid(),
                what.into_iter().flatten().collect::<Vec<_>>().join(", ")
            );
            outputs.zenoh = Some(sink);
        }
        Ok(outputs)
    }

    /// The live view, if asked for. Start it once Ctrl-C is handled, so that whoever reads its
    /// address can stop the stream. Real-time whatever the stream's policy: a browser that falls
    /// behind skips frames and never holds up the saver or the stages.
    pub fn start_live(
        &mut self,
        pipeline: &mut Pipeline,
        args: &Args,
        source_name: &str,
    ) -> Result<()> {
        let Some(addr) = &args.serve else {
            return Ok(());
        };
        let mut options = serve_options(args, ServeOptions::for_package(pipeline.package()))?;
        options.title = format!("gss: {} on {source_name}", pipeline.package().manifest.name);
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let live = LiveView::start(addr, options, pipeline.subscribe(2, Policy::RealTime))?;
        eprintln!(
            "gss: live view at {scheme}://{}/ (/stream.mjpg, /stats.json, /health)",
            live.local_addr()
        );
        self.live = Some(live);
        Ok(())
    }

    pub fn start_saver(&mut self, args: &Args, save: Save, package: &ModelPackage) -> Result<()> {
        let (kind, what) = match save {
            Save::None => return Ok(()),
            Save::Masks => (SaveKind::Masks, "masks"),
            Save::Overlays => (SaveKind::Overlays, "overlays"),
        };
        let colors = package.manifest.classes.iter().map(|c| c.color).collect();
        let saver = Saver::new(&args.out, kind, colors, args.save_keep)?;
        self.saving = Some(Saving {
            saver,
            what,
            keep: args.save_keep,
        });
        Ok(())
    }

    /// Saves a frame the consumer received, when saving is on.
    pub fn save(&mut self, mask: &MaskFrame) {
        if let Some(saving) = &mut self.saving {
            // An output failing (a full disk, no descriptors left) stops that output only.
            if let Err(e) = saving.saver.save(mask) {
                eprintln!("gss: error: saving stopped, the stream goes on: {e}");
            }
        }
    }

    /// Waits for every output to finish (the pipeline has stopped); `stats` are its final counters.
    pub fn finish(self, stats: &Stats) -> Finished {
        let live_problem = self
            .live
            .and_then(|live| live.join().err())
            .map(|e| e.to_string());
        if let Some(p) = &live_problem {
            eprintln!("gss: error: {p}");
        }
        let rerun = self
            .rerun
            .map(|(thread, slot)| RerunSummary::new(thread.join(), dropped_at(slot, stats)));
        let (zenoh, zenoh_problem) = match self.zenoh.map(ZenohSink::join) {
            Some(Ok(stats)) => (Some(stats), None),
            Some(Err(e)) => {
                eprintln!("gss: error: zenoh: {e}");
                (None, Some(e.to_string()))
            }
            None => (None, None),
        };
        let save_problem = self
            .saving
            .as_ref()
            .and_then(|s| s.saver.failure())
            .map(str::to_string);
        let errors = [
            ("saving", save_problem),
            ("live view", live_problem),
            ("zenoh", zenoh_problem),
        ]
        .into_iter()
        .filter_map(|(what, p)| p.map(|p| format!("{what}: {p}")))
        .collect();
        let saved = self.saving.map(|s| SavedFiles {
            count: s.saver.saved(),
            what: s.what,
            dir: PathBuf::from(s.saver.dir()),
            keep: s.keep,
        });
        Finished {
            rerun,
            zenoh,
            saved,
            errors,
        }
    }
}
