//! `gss stream`: a source (camera, files, the bundled clip) through the pipeline, with overlays
//! or masks saved, live statistics, and at the end a summary (and the mIoU when the frames have
//! labels, as the sample clip does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use gss::dataset::{label_path_for, load_label};
use gss::eval::{ConfusionMatrix, FlickerMeter};
use gss::sink::png::{SaveKind, Saver};
use gss::sink::serve::{Credentials, LiveView, ServeOptions, TlsFiles, View};
use gss::sink::rerun::{RerunSink, Target as RerunTarget};
use gss::sink::wire::{Ros2Options, SessionOptions, ZenohSinkOptions};
use gss::sink::zenoh::ZenohSink;
use gss::sink::stats::{peak_rss_mb, percentile, LiveWindow, TokenChangeMeter};
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::source::{Camera, CameraOptions, FrameSource, ImageFiles};

use gss::engine::reuse::Reuse;
use gss::engine::{create_backend, BackendOptions, BackendKind};

use crate::RunConfig;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Save {
    None,
    Masks,
    Overlays,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    Auto,
    Pipelined,
    Sequential,
}

#[derive(clap::Args)]
pub struct Args {
    /// V4L2 camera: /dev/videoN or an index (needs the `v4l` feature)
    #[arg(long, conflicts_with = "dir")]
    camera: Option<String>,
    /// Image directory or glob pattern ("frames/*.jpg"), played in name order
    #[arg(long)]
    dir: Option<String>,
    /// Replay rate for file sources, frames per second (0: as fast as they decode)
    #[arg(long, default_value_t = 15.0)]
    fps: f64,
    /// Play file sources again from the start when they end
    #[arg(long = "loop")]
    looping: bool,
    /// Camera capture size
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    size: (u32, u32),
    /// Never drop a frame (stages wait for each other); default: drop the oldest, never block
    #[arg(long)]
    lossless: bool,
    /// pipelined: prior and decoder on their own threads, overlapping consecutive frames;
    /// sequential: both on one thread with all the cores; auto: pipelined from 4 cores up
    /// (on 2 cores sequential measured faster, see README)
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    mode: ModeArg,
    /// What to write to --out per frame. Default: overlays for files and the bundled clip,
    /// none for a camera (a camera left running would fill the disk; see --save-keep)
    #[arg(long, value_enum)]
    save: Option<Save>,
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Keep only the files of the last N frames saved (older ones are deleted), for long runs
    #[arg(long = "save-keep", value_name = "N")]
    save_keep: Option<usize>,
    /// Stop after this many published frames
    #[arg(long)]
    max_frames: Option<u64>,
    /// Keep each token cell's previous token unless the new one wins by this margin in logits
    /// (less flicker; priors that end with token logits, CPU backend). 0: off
    #[arg(long, default_value_t = 0.0)]
    stabilise: f32,
    /// auto: re-decode only the decoder tiles near tokens that changed since the last frame
    /// (exact: the same masks as a full decode), when that is cheaper; CPU backend, packages
    /// whose model.json states decoder.halo. always: the same, even where a full decode costs
    /// less (for measurements). off: decode every frame in full
    #[arg(long, default_value = "auto")]
    reuse: Reuse,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
    /// Serve a live view on PORT (on 127.0.0.1) or ADDR:PORT (port 0: any free one; the address
    /// is printed): the overlay as MJPEG, live figures and the legend (needs the `serve`
    /// feature). An address other than loopback needs --serve-auth (or --serve-insecure)
    #[arg(long, value_name = "[ADDR:]PORT")]
    serve: Option<String>,
    /// USER:PASSWORD every live-view request must carry (HTTP Basic); @FILE reads them from
    /// the file's first line. Without TLS they cross the network in clear
    #[arg(long = "serve-auth", env = "GSS_SERVE_AUTH", hide_env_values = true, value_name = "USER:PASSWORD")]
    serve_auth: Option<String>,
    /// Serve the live view over HTTPS with this PEM certificate chain (with --serve-tls-key;
    /// needs the `serve-tls` feature)
    #[arg(long = "serve-tls-cert", value_name = "CERT.pem", requires = "serve_tls_key")]
    serve_tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key
    #[arg(long = "serve-tls-key", value_name = "KEY.pem", requires = "serve_tls_cert")]
    serve_tls_key: Option<PathBuf>,
    /// Serve an address other than loopback without credentials: anyone who can reach it sees
    /// the camera
    #[arg(long = "serve-insecure")]
    serve_insecure: bool,
    /// A host name the live view answers to besides IP addresses and localhost, e.g. the
    /// machine's DNS name (repeatable; other names are refused against DNS rebinding)
    #[arg(long = "serve-host", value_name = "NAME")]
    serve_host: Vec<String>,
    /// Live-view connections served at once; the next gets 503
    #[arg(long = "serve-max-clients", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    serve_max_clients: u32,
    /// overlay: the camera image under the class colours; mask: the class colours alone (no
    /// camera pixel leaves the machine)
    #[arg(long = "serve-view", default_value = "overlay", value_name = "overlay|mask")]
    serve_view: View,
    /// Also log the stream to a Rerun recording (frames, class maps, stage timings); open it
    /// with `rerun FILE.rrd` (needs the `rerun` feature)
    #[arg(long, value_name = "FILE.rrd")]
    rerun: Option<PathBuf>,
    /// Also stream to a running Rerun viewer, e.g. rerun+http://127.0.0.1:9876/proxy (start
    /// `rerun` first; frames are skipped while none is connected; needs the `rerun` feature)
    #[arg(long, value_name = "URL", conflicts_with = "rerun")]
    rerun_connect: Option<String>,
    /// Publish every class map over zenoh on this key (format gss-mask/1, see README "Masks over
    /// zenoh"; classes and palette on KEY/meta). Needs the `zenoh` feature
    #[arg(long, value_name = "KEY")]
    zenoh: Option<String>,
    /// Zenoh locator to connect to, e.g. tcp/127.0.0.1:7447 (a router or a listening peer; repeatable)
    #[arg(long = "zenoh-connect", value_name = "LOCATOR")]
    zenoh_connect: Vec<String>,
    /// Zenoh locator to listen on, e.g. tcp/127.0.0.1:7447 (repeatable)
    #[arg(long = "zenoh-listen", value_name = "LOCATOR")]
    zenoh_listen: Vec<String>,
    /// Zenoh JSON5 configuration file (the options above still apply on top of it)
    #[arg(long = "zenoh-config", value_name = "FILE")]
    zenoh_config: Option<PathBuf>,
    /// Zenoh client mode: everything through the router given with --zenoh-connect
    #[arg(long = "zenoh-client")]
    zenoh_client: bool,
    /// Publish the class map as a ROS 2 sensor_msgs/msg/Image (mono8) on this topic, the way
    /// rmw_zenoh does, e.g. /gss/classes. Without --zenoh-connect/--zenoh-listen/--zenoh-config
    /// it joins a local rmw_zenoh router (tcp/localhost:7447). Needs the `zenoh` feature
    #[arg(long, value_name = "TOPIC")]
    ros2: Option<String>,
    /// Also publish the overlay (rgb8) on TOPIC/overlay
    #[arg(long = "ros2-overlay", requires = "ros2")]
    ros2_overlay: bool,
    /// ROS 2 domain id
    #[arg(long = "ros2-domain", env = "ROS_DOMAIN_ID", default_value_t = 0)]
    ros2_domain: u32,
    /// header.frame_id of the ROS 2 images
    #[arg(long = "ros2-frame-id", default_value = "camera")]
    ros2_frame_id: String,
}

/// The zenoh sink's options from the command line; None when neither --zenoh nor --ros2 is given.
fn zenoh_options(args: &Args) -> Option<ZenohSinkOptions> {
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

fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = s.split_once('x').ok_or("expected WIDTHxHEIGHT, e.g. 640x480")?;
    Ok((w.parse().map_err(|_| "bad width")?, h.parse().map_err(|_| "bad height")?))
}

/// (width, height) in pixels.
type FrameSize = (u32, u32);

/// The source, and the size its frames will have when that is known before the first frame
/// (for `--fit native`): the camera's requested size, or the first file's.
fn open_source(args: &Args) -> Result<(Box<dyn FrameSource>, Option<FrameSize>)> {
    if let Some(cam) = &args.camera {
        let mut options = CameraOptions::default();
        options.request.width = args.size.0;
        options.request.height = args.size.1;
        return Ok((Box::new(Camera::open(cam, options)?), Some(args.size)));
    }
    let files = match &args.dir {
        Some(d) if Path::new(d).is_dir() => ImageFiles::from_dir(d)?,
        Some(pattern) => ImageFiles::from_glob(pattern)?,
        None => ImageFiles::sample_clip()?,
    };
    let first_size = files.paths().iter().find_map(|p| image::image_dimensions(p).ok());
    let files = files.looping(args.looping);
    Ok((Box::new(if args.fps > 0.0 { files.with_fps(args.fps)? } else { files }), first_size))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The live view's options from the command line (credentials read from a file for @FILE).
fn serve_options(args: &Args, mut options: ServeOptions) -> Result<ServeOptions> {
    if let Some(auth) = &args.serve_auth {
        let text = match auth.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file).with_context(|| format!("--serve-auth: reading {file}"))?;
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
        (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
        _ => None,
    };
    Ok(options)
}

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    let zenoh = zenoh_options(&args);
    if zenoh.is_some() && !cfg!(feature = "zenoh") {
        // Before the model loads: the flag cannot work in this build whatever else happens.
        anyhow::bail!("--zenoh/--ros2: this gss was built without the zenoh feature; rebuild with --features zenoh");
    }
    // A camera saves nothing unless asked: left running, it would fill the disk.
    let save = args.save.unwrap_or(if args.camera.is_some() { Save::None } else { Save::Overlays });
    let (source, frame_size) = open_source(&args)?;
    let (package, fit) = config.fitted(config.open_package()?, frame_size)?;
    let rerun_target = match (&args.rerun, &args.rerun_connect) {
        (Some(path), _) => Some(RerunTarget::File(path.clone())),
        (None, Some(url)) => Some(RerunTarget::Viewer(url.clone())),
        (None, None) => None,
    };
    let rerun = rerun_target.map(|t| RerunSink::open(t, &package.manifest.classes)).transpose()?;
    if args.stabilise > 0.0 && package.manifest.prior.argmax_in_graph() {
        log::warn!("--stabilise: {}'s prior ends with its ArgMax, so there are no logits to weigh; the stream runs without it",
            package.manifest.name);
    }
    let reuse_name = match args.reuse {
        Reuse::Off => "off",
        Reuse::Auto | Reuse::Always if config.backend == BackendKind::Wgpu => {
            log::info!("--reuse auto: the wgpu backend decodes every frame in full");
            "off (wgpu decodes in full)"
        }
        Reuse::Auto | Reuse::Always if package.manifest.decoder.halo.is_none() => "off (the package states no decoder.halo)",
        Reuse::Auto => "auto",
        Reuse::Always => "always",
    };
    let (grid, halo) = (package.manifest.prior.grid, package.manifest.decoder.halo);
    let colors: Vec<[u8; 3]> = package.manifest.classes.iter().map(|c| c.color).collect();
    let num_classes = colors.len();
    let source_name = source.name().to_string();
    let policy = if args.lossless { Policy::Lossless } else { Policy::RealTime };
    let mode = match args.mode {
        ModeArg::Pipelined => Mode::Pipelined,
        ModeArg::Sequential => Mode::Sequential,
        ModeArg::Auto if config.threads_in_effect() >= 4 => Mode::Pipelined,
        ModeArg::Auto => Mode::Sequential,
    };
    let mode_name = if mode == Mode::Pipelined { "pipelined" } else { "sequential" };
    let options = PipelineOptions {
        policy,
        mode,
        queue_depth: 1,
        keep_frames: save == Save::Overlays
            || (args.serve.is_some() && args.serve_view == View::Overlay)
            || rerun.is_some()
            || args.ros2_overlay,
        fit: Some(fit),
    };
    // Each stage of a pipelined stream gets half the cores unless told otherwise.
    let stage_threads = match (config.threads, mode) {
        (Some(n), _) => n,
        (None, Mode::Sequential) => 0,
        (None, Mode::Pipelined) => (config.threads_in_effect() / 2).max(1),
    };
    let started = Instant::now();
    let mut pipeline = Pipeline::new(package, options, |p, graphs| {
        let options = BackendOptions {
            stabilise: (args.stabilise > 0.0).then_some(args.stabilise),
            reuse: args.reuse,
            ..config.backend_options(stage_threads)
        };
        create_backend(p, &options, graphs)
    })?;
    let cold_start = started.elapsed();
    // The saver/scorer below is this stream's consumer: in real time it may fall behind and lose
    // frames of its own (counted), without slowing the stages.
    let masks = pipeline.subscribe(4, policy);
    // Rerun has a consumer of its own, always real-time: a slow disk or viewer loses frames of
    // its own and never holds up the stages or the saver above, even in a lossless stream.
    let rerun = rerun.map(|sink| sink.spawn(pipeline.subscribe(8, Policy::RealTime))).transpose()?;
    let sink = match &zenoh {
        Some(options) => Some(ZenohSink::start(&mut pipeline, options).context("starting the zenoh sink")?),
        None => None,
    };
    if let (Some(sink), Some(options)) = (&sink, &zenoh) {
        let what = [options.key.as_ref().map(|k| format!("masks on {k:?} (meta on {k}/meta)")),
            options.ros2.as_ref().map(|r| format!("ROS 2 images on {} (domain {})", r.topic, r.domain_id))];
        log::info!("zenoh session {}: {}", sink.zid(), what.into_iter().flatten().collect::<Vec<_>>().join(", "));
    }
    let stop = pipeline.stop_handle();
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    }
    // Started once Ctrl-C is handled, so whoever reads its address can stop the stream. A
    // real-time subscriber whatever the stream's policy: a browser that falls behind skips
    // frames and never holds up the saver or the stages.
    let live = match &args.serve {
        Some(addr) => {
            let mut options = serve_options(&args, ServeOptions::for_package(pipeline.package()))?;
            options.title = format!("gss: {} on {source_name}", pipeline.package().manifest.name);
            let scheme = if options.tls.is_some() { "https" } else { "http" };
            let live = LiveView::start(addr, options, pipeline.subscribe(2, Policy::RealTime))?;
            eprintln!("gss: live view at {scheme}://{}/ (/stream.mjpg, /stats.json, /health)", live.local_addr());
            Some(live)
        }
        None => None,
    };
    let mut saver = match save {
        Save::None => None,
        Save::Masks => Some(Saver::new(&args.out, SaveKind::Masks, colors.clone(), args.save_keep)?),
        Save::Overlays => Some(Saver::new(&args.out, SaveKind::Overlays, colors.clone(), args.save_keep)?),
    };
    log::info!("streaming {source_name} ({}, {mode_name}); Ctrl-C stops", if args.lossless { "lossless" } else { "real-time" });
    pipeline.run(source)?;

    let mut cm = ConfusionMatrix::new(num_classes);
    let mut labelled = 0u64;
    // Temporal figures compare neighbouring frames of the source only: a dropped frame is a gap.
    let mut flicker = FlickerMeter::new();
    let mut token_change = match halo {
        Some(halo) => TokenChangeMeter::with_reach(grid, halo),
        None => TokenChangeMeter::new(),
    };
    let mut last_index: Option<u64> = None;
    let (mut decoded_share, mut decoder_ms) = (0.0f64, 0.0f64);
    // FNV-1a over every published (source index, class map): two runs that published the same
    // frames agree on it exactly when their masks are byte-identical (`--reuse` off vs auto).
    let mut digest = 0xcbf2_9ce4_8422_2325u64;
    let mut latencies: Vec<f64> = Vec::new();
    let mut window = LiveWindow::new(Duration::from_secs(1));
    let mut received = 0u64;
    let mut first_frame_at = None;
    for mask in masks.iter() {
        received += 1;
        first_frame_at.get_or_insert_with(Instant::now);
        decoded_share += f64::from(mask.decoded_share);
        for &byte in mask.source_index.to_le_bytes().iter().chain(mask.classes.as_raw()) {
            digest = (digest ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        decoder_ms += ms(mask.timings.decoder);
        latencies.push(ms(mask.latency));
        if let Some(saver) = &mut saver {
            // An output failing (a full disk, no descriptors left) stops that output only.
            if let Err(e) = saver.save(&mask) {
                eprintln!("gss: error: saving stopped, the stream goes on: {e}");
            }
        }
        if last_index.is_none_or(|i| i + 1 != mask.source_index) {
            flicker.reset();
            token_change.reset();
        }
        last_index = Some(mask.source_index);
        token_change.update(&mask.tokens);
        if let Some(label_path) = mask.origin.as_deref().and_then(label_path_for) {
            match load_label(&label_path) {
                Ok(label) if label.dimensions() == mask.classes.dimensions() => {
                    cm.update(mask.classes.as_raw(), label.as_raw())?;
                    flicker.update(mask.classes.as_raw(), label.as_raw())?;
                    labelled += 1;
                }
                Ok(_) => log::warn!("{}: label size differs from its frame; not scored", label_path.display()),
                Err(e) => log::warn!("{e}; not scored"),
            }
        }
        if let Some(w) = window.record(mask.latency).filter(|_| !args.json) {
            let s = pipeline.stats();
            eprintln!("fps {:5.1} | latency p50 {:6.1} ms p95 {:6.1} ms | published {} dropped {} corrupt {}",
                w.fps, w.latency_p50_ms, w.latency_p95_ms,
                s.published, s.dropped() + s.subscribers.first().map_or(0, |x| x.dropped), s.corrupt);
        }
        if args.max_frames.is_some_and(|n| received >= n) {
            stop.stop();
        }
    }
    let stats = pipeline.join()?;
    let live_problem = live.and_then(|live| live.join().err()).map(|e| e.to_string());
    if let Some(p) = &live_problem {
        eprintln!("gss: error: {p}");
    }
    let rerun = rerun.map(|thread| thread.join());
    let rerun_dropped = stats.subscribers.get(1).map_or(0, |s| s.dropped);
    let (sink_stats, zenoh_problem) = match sink.map(|sink| sink.join()) {
        Some(Ok(stats)) => (Some(stats), None),
        Some(Err(e)) => {
            eprintln!("gss: error: zenoh: {e}");
            (None, Some(e.to_string()))
        }
        None => (None, None),
    };
    let save_problem = saver.as_ref().and_then(|s| s.failure()).map(str::to_string);
    let output_errors: Vec<String> = [("saving", &save_problem), ("live view", &live_problem), ("zenoh", &zenoh_problem)]
        .into_iter()
        .filter_map(|(what, p)| p.as_ref().map(|p| format!("{what}: {p}")))
        .collect();
    let elapsed = first_frame_at.map_or(Duration::ZERO, |t| t.elapsed());
    latencies.sort_by(f64::total_cmp);
    let fps = if elapsed > Duration::ZERO && received > 1 { (received - 1) as f64 / elapsed.as_secs_f64() } else { f64::NAN };
    let rss = peak_rss_mb();
    let consumer_dropped = stats.subscribers.first().map_or(0, |s| s.dropped);
    let miou = (labelled > 0).then(|| cm.miou());
    let flicker_pct = (flicker.stable_pixels() > 0).then(|| flicker.flicker());
    let token_change_pct = (token_change.pairs() > 0).then(|| 100.0 * token_change.mean_share());
    let reach_pct = token_change.mean_reach().map(|r| 100.0 * r);
    let decoded_pct = (received > 0).then(|| 100.0 * decoded_share / received as f64);
    // Sequential wgpu runs both graphs as one submission: no decoder time of its own.
    let decoder_ms = (received > 0 && decoder_ms > 0.0).then(|| decoder_ms / received as f64);
    if args.json {
        let report = serde_json::json!({
            "source": source_name, "policy": if args.lossless { "lossless" } else { "real-time" },
            "mode": mode_name,
            "captured": stats.captured, "processed": stats.processed, "published": stats.published, "dropped": stats.dropped(),
            "dropped_before_prior": stats.dropped_before_prior, "dropped_before_decoder": stats.dropped_before_decoder,
            "dropped_before_publish": stats.dropped_before_publish, "failed": stats.failed, "corrupt": stats.corrupt,
            "consumer_received": received, "consumer_dropped": consumer_dropped,
            "fps": fps, "latency_p50_ms": percentile(&latencies, 50.0), "latency_p95_ms": percentile(&latencies, 95.0),
            "cold_start_ms": ms(cold_start), "peak_rss_mb": rss, "labelled_frames": labelled, "mIoU": miou,
            "flicker_pct": flicker_pct, "token_change_pct": token_change_pct, "token_pairs": token_change.pairs(),
            "reuse": reuse_name, "decoded_pct": decoded_pct, "halo_reach_pct": reach_pct, "decoder_ms": decoder_ms,
            "masks_digest": format!("{digest:016x}"),
            "rerun": rerun.as_ref().map(|r| serde_json::json!({
                "target": r.target, "logged": r.logged, "skipped": r.skipped, "dropped": rerun_dropped, "problem": r.problem,
            })),
            "zenoh_published": sink_stats.map(|s| s.published), "zenoh_failed": sink_stats.map(|s| s.failed),
            "saved": saver.as_ref().map(|s| s.saved()),
            "output_errors": output_errors,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{source_name}: captured {}, published {}, dropped {} (before prior {}, decoder {}, publish {}), failed {}, corrupt {}",
            stats.captured, stats.published, stats.dropped(), stats.dropped_before_prior, stats.dropped_before_decoder,
            stats.dropped_before_publish, stats.failed, stats.corrupt);
        println!("fps {fps:.1}, latency p50 {:.1} ms p95 {:.1} ms, model load {:.0} ms, peak RSS {}",
            percentile(&latencies, 50.0), percentile(&latencies, 95.0), ms(cold_start), rss.map_or("n/a".into(), |r| format!("{r:.0} MB")));
        if consumer_dropped > 0 {
            println!("the saver fell behind and skipped {consumer_dropped} frames");
        }
        if let Some(m) = miou {
            println!("mIoU {m:.2} over {labelled} labelled frames (mAcc {:.2})", cm.macc());
        }
        if let Some(t) = token_change_pct {
            println!("tokens changed between neighbouring frames: {t:.1} % of the grid ({} pairs)", token_change.pairs());
        }
        if let (Some(r), Some(h)) = (reach_pct, halo) {
            println!("cells within the decoder's halo ({h}) of a change: {r:.1} % of the grid (the least exact reuse re-decodes)");
        }
        if let (Some(d), Some(t)) = (decoded_pct, decoder_ms) {
            println!("decoder {t:.2} ms per frame, {d:.1} % of a full decode per frame (reuse {reuse_name})");
        }
        if let Some(f) = flicker_pct {
            println!("flicker {f:.2} % (pixels whose class changed where the label did not, neighbouring frames)");
        }
        if let Some(r) = &rerun {
            println!("rerun: {} frames logged to {} ({} skipped without a viewer, {} lost to a slow sink){}",
                r.logged, r.target, r.skipped, rerun_dropped, r.problem.as_ref().map_or(String::new(), |p| format!("; stopped: {p}")));
        }
        if let Some(s) = sink_stats {
            println!("zenoh: published {} frames ({} failed)", s.published, s.failed);
        }
        if let Some(saver) = saver.as_ref().filter(|s| s.saved() > 0) {
            let kept = args.save_keep.map_or(String::new(), |n| format!(" (the last {n} kept)"));
            println!("{} {} written to {}{kept}", saver.saved(), if save == Save::Masks { "masks" } else { "overlays" }, saver.dir().display());
        }
        for e in &output_errors {
            println!("output stopped: {e}");
        }
    }
    Ok(())
}
