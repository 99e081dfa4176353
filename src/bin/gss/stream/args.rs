//! `gss stream`'s command line: the source, how frames flow, and which outputs run. Parsing only;
//! what the flags mean at run time lives in the sibling modules.

use std::path::PathBuf;

use gss::engine::reuse::Reuse;
use gss::sink::serve::View;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Save {
    None,
    Masks,
    Overlays,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ModeArg {
    Auto,
    Pipelined,
    Sequential,
}

#[derive(clap::Args)]
pub struct Args {
    /// V4L2 camera: /dev/videoN or an index (needs the `v4l` feature)
    #[arg(long, conflicts_with = "dir")]
    pub(super) camera: Option<String>,
    /// Image directory or glob pattern ("frames/*.jpg"), played in name order
    #[arg(long)]
    pub(super) dir: Option<String>,
    /// Replay rate for file sources, frames per second (0: as fast as they decode)
    #[arg(long, default_value_t = 15.0)]
    pub(super) fps: f64,
    /// Play file sources again from the start when they end
    #[arg(long = "loop")]
    pub(super) looping: bool,
    /// Camera capture size
    #[arg(long, default_value = "640x480", value_parser = parse_size)]
    pub(super) size: (u32, u32),
    /// Never drop a frame (stages wait for each other); default: drop the oldest, never block
    #[arg(long)]
    pub(super) lossless: bool,
    /// pipelined: prior and decoder on their own threads, overlapping consecutive frames;
    /// sequential: both on one thread with all the cores; auto: pipelined from 4 cores up
    /// (on 2 cores sequential measured faster: `cargo bench --bench stream` compares them)
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub(super) mode: ModeArg,
    /// What to write to --out per frame. Default: overlays for files and the bundled clip,
    /// none for a camera (a camera left running would fill the disk; see --save-keep)
    #[arg(long, value_enum)]
    pub(super) save: Option<Save>,
    #[arg(long, default_value = "out")]
    pub(super) out: PathBuf,
    /// Keep only the files of the last N frames saved (older ones are deleted), for long runs
    #[arg(long = "save-keep", value_name = "N")]
    pub(super) save_keep: Option<usize>,
    /// Stop after this many published frames
    #[arg(long)]
    pub(super) max_frames: Option<u64>,
    /// Keep each token cell's previous token unless the new one wins by this margin in logits
    /// (less flicker; priors that end with token logits). 0: off
    #[arg(long, default_value_t = 0.0)]
    pub(super) stabilise: f32,
    /// auto: re-decode only the decoder tiles near tokens that changed since the last frame
    /// (exact: the same masks as a full decode), when that is cheaper; packages whose
    /// model.json states decoder.halo. always: the same, even where a full decode costs less
    /// (for measurements). off: decode every frame in full
    #[arg(long, default_value = "auto")]
    pub(super) reuse: Reuse,
    /// Print the summary as JSON
    #[arg(long)]
    pub(super) json: bool,
    /// Serve a live view on PORT (on 127.0.0.1) or ADDR:PORT (port 0: any free one; the address
    /// is printed): the overlay as MJPEG, live figures and the legend (needs the `serve`
    /// feature). An address other than loopback needs --serve-auth (or --serve-insecure)
    #[arg(long, value_name = "[ADDR:]PORT")]
    pub(super) serve: Option<String>,
    /// USER:PASSWORD every live-view request must carry (HTTP Basic); @FILE reads them from
    /// the file's first line. Without TLS they cross the network in clear
    #[arg(
        long = "serve-auth",
        env = "GSS_SERVE_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub(super) serve_auth: Option<String>,
    /// Serve the live view over HTTPS with this PEM certificate chain (with --serve-tls-key;
    /// needs the `serve-tls` feature)
    #[arg(
        long = "serve-tls-cert",
        value_name = "CERT.pem",
        requires = "serve_tls_key"
    )]
    pub(super) serve_tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key
    #[arg(
        long = "serve-tls-key",
        value_name = "KEY.pem",
        requires = "serve_tls_cert"
    )]
    pub(super) serve_tls_key: Option<PathBuf>,
    /// Serve an address other than loopback without credentials: anyone who can reach it sees
    /// the camera
    #[arg(long = "serve-insecure")]
    pub(super) serve_insecure: bool,
    /// A host name the live view answers to besides IP addresses and localhost, e.g. the
    /// machine's DNS name (repeatable; other names are refused against DNS rebinding)
    #[arg(long = "serve-host", value_name = "NAME")]
    pub(super) serve_host: Vec<String>,
    /// Live-view connections served at once; the next gets 503
    #[arg(long = "serve-max-clients", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(super) serve_max_clients: u32,
    /// overlay: the camera image under the class colours; mask: the class colours alone (no
    /// camera pixel leaves the machine)
    #[arg(
        long = "serve-view",
        default_value = "overlay",
        value_name = "overlay|mask"
    )]
    pub(super) serve_view: View,
    /// Also log the stream to a Rerun recording (frames, class maps, stage timings); open it
    /// with `rerun FILE.rrd` (needs the `rerun` feature)
    #[arg(long, value_name = "FILE.rrd")]
    pub(super) rerun: Option<PathBuf>,
    /// Also stream to a running Rerun viewer, e.g. rerun+http://127.0.0.1:9876/proxy (start
    /// `rerun` first; frames are skipped while none is connected; needs the `rerun` feature)
    #[arg(long, value_name = "URL", conflicts_with = "rerun")]
    pub(super) rerun_connect: Option<String>,
    /// Publish every class map over zenoh on this key (format gss-mask/1, see README "Masks over
    /// zenoh"; classes and palette on KEY/meta). Needs the `zenoh` feature
    #[arg(long, value_name = "KEY")]
    pub(super) zenoh: Option<String>,
    /// Zenoh locator to connect to, e.g. tcp/127.0.0.1:7447 (a router or a listening peer; repeatable)
    #[arg(long = "zenoh-connect", value_name = "LOCATOR")]
    pub(super) zenoh_connect: Vec<String>,
    /// Zenoh locator to listen on, e.g. tcp/127.0.0.1:7447 (repeatable)
    #[arg(long = "zenoh-listen", value_name = "LOCATOR")]
    pub(super) zenoh_listen: Vec<String>,
    /// Zenoh JSON5 configuration file (the options above still apply on top of it)
    #[arg(long = "zenoh-config", value_name = "FILE")]
    pub(super) zenoh_config: Option<PathBuf>,
    /// Zenoh client mode: everything through the router given with --zenoh-connect
    #[arg(long = "zenoh-client")]
    pub(super) zenoh_client: bool,
    /// Publish the class map as a ROS 2 sensor_msgs/msg/Image (mono8) on this topic, the way
    /// rmw_zenoh does, e.g. /gss/classes. Without --zenoh-connect/--zenoh-listen/--zenoh-config
    /// it joins a local rmw_zenoh router (tcp/localhost:7447). Needs the `zenoh` feature
    #[arg(long, value_name = "TOPIC")]
    pub(super) ros2: Option<String>,
    /// Also publish the overlay (rgb8) on TOPIC/overlay
    #[arg(long = "ros2-overlay", requires = "ros2")]
    pub(super) ros2_overlay: bool,
    /// ROS 2 domain id
    #[arg(long = "ros2-domain", env = "ROS_DOMAIN_ID", default_value_t = 0)]
    pub(super) ros2_domain: u32,
    /// header.frame_id of the ROS 2 images
    #[arg(long = "ros2-frame-id", default_value = "camera")]
    pub(super) ros2_frame_id: String,
}

fn parse_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or("expected WIDTHxHEIGHT, e.g. 640x480")?;
    Ok((
        w.parse().map_err(|_| "bad width")?,
        h.parse().map_err(|_| "bad height")?,
    ))
}
