//! The live view in a browser (feature `serve`): a small HTTP server that shows a stream's
//! overlays as MJPEG, its live figures and the model's legend.
//!
//! ```text
//! Subscription ─► gss-serve-encode: blend + JPEG once per frame ─► latest-part slot (watch) ─► each viewer's connection
//!                                    └─► live figures (Mutex) ◄─ /stats.json, /health
//! ```
//! Endpoints: `/` (the page), `/stream.mjpg` (`multipart/x-mixed-replace` of JPEG overlays, or
//! of the class colours alone with [`View::Mask`](super::View)), `/stats.json`, `/health`.
//!
//! Every request passes the gate first (`gate.rs`: the `Host` it names, its credentials), and
//! every response carries headers that keep other sites from embedding it. Connections are
//! capped, and timed out when they trickle headers, idle, or stop reading (`conn.rs`). A
//! server on an address other than loopback is refused without credentials unless the caller
//! asked for an open one ([`Access::open`](super::Access)). Frames are JPEG-encoded only while
//! someone watches.
//!
//! Each overlay is encoded once, as a whole multipart part, and shared by every viewer (the
//! same bytes, reference-counted). Viewers read a latest-frame slot, so one that reads slowly
//! (or not at all) skips frames of its own and holds up neither the others nor the stream; the
//! stream side subscribes with [`Policy::RealTime`](crate::pipeline::Policy) for the same
//! reason. The server runs on its own thread with a current-thread tokio runtime, so the
//! stream's threads and core budget are untouched. When the subscription ends (the stream has
//! stopped) the server shuts down: open MJPEG responses end, and a connection that does not
//! drain within [`ServeOptions::shutdown_grace`] is dropped.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use hyper::body::Incoming;
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, RgbImage};
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::pipeline::{MaskFrame, Subscription};

use super::conn;
use super::gate::Gate;
use super::{check_exposure, listen_address, ServeOptions, View};
use crate::pool::BufferPool;
use crate::sink::overlay::blend_into;
use crate::sink::stats::percentile;

/// The multipart boundary between JPEG parts.
const BOUNDARY: &str = "gssframe";
/// Frames the fps and latency figures are taken over.
const RECENT: usize = 30;

/// The figures `/stats.json` reports, as of the latest frame.
#[derive(Debug, Default)]
struct Live {
    frames: u64,
    seq: Option<u64>,
    source_index: Option<u64>,
    size: (u32, u32),
    dropped: u64,
    /// (arrival, latency ms) of the latest frames, oldest first.
    recent: VecDeque<(Instant, f64)>,
    /// Share of the latest frame's pixels per class id (the last entry: ids with no class).
    shares: Vec<f64>,
}

/// What the encoder thread and the HTTP handlers share.
struct Shared {
    page: Bytes,
    names: Vec<String>,
    live: Mutex<Live>,
    /// The latest multipart part (boundary, headers, JPEG), None before the first frame.
    latest: watch::Receiver<Option<Bytes>>,
    stop: Arc<watch::Sender<bool>>,
    viewers: AtomicUsize,
    started: Instant,
}

/// A running live view. It stops by itself when its subscription ends; [`LiveView::join`]
/// waits for that, dropping it stops the server at once.
pub struct LiveView {
    addr: SocketAddr,
    stop: Arc<watch::Sender<bool>>,
    encode: Option<JoinHandle<()>>,
    http: Option<JoinHandle<std::io::Result<()>>>,
}

impl LiveView {
    /// Listens on `addr` (`ADDR:PORT`; port 0 picks a free one, see [`local_addr`]) and serves
    /// the frames of `frames` until that subscription ends. Subscribe with
    /// [`Policy::RealTime`](crate::pipeline::Policy) and keep frames
    /// ([`PipelineOptions::keep_frames`](crate::pipeline::PipelineOptions)) for overlays; without
    /// frames the view shows the class colours alone.
    ///
    /// [`local_addr`]: LiveView::local_addr
    pub fn start(addr: &str, options: ServeOptions, frames: Subscription) -> Result<LiveView> {
        let socket = listen_address(addr)?;
        check_exposure(socket, &options.access)?;
        let tls = match &options.tls {
            None => None,
            #[cfg(feature = "serve-tls")]
            Some(files) => Some(super::tls::acceptor(files)?),
            #[cfg(not(feature = "serve-tls"))]
            Some(_) => {
                return Err(Error::Serve {
                    msg: "HTTPS needs a gss built with the serve-tls feature; rebuild with --features serve-tls".into(),
                    source: None,
                })
            }
        };
        let bind_error = |source| Error::ServeBind {
            addr: addr.to_string(),
            source,
        };
        let listener = std::net::TcpListener::bind(socket).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Serve {
                msg: "cannot start its runtime".into(),
                source: Some(e),
            })?;

        let (latest_tx, latest) = watch::channel(None);
        let stop = Arc::new(watch::channel(false).0);
        let shared = Arc::new(Shared {
            page: Bytes::from(page(&options)),
            names: options.classes.iter().map(|c| c.name.clone()).collect(),
            live: Mutex::new(Live {
                shares: vec![0.0; options.classes.len() + 1],
                ..Live::default()
            }),
            latest,
            stop: stop.clone(),
            viewers: AtomicUsize::new(0),
            started: Instant::now(),
        });
        let spawn_error = |e| Error::Serve {
            msg: "cannot start its thread".into(),
            source: Some(e),
        };

        let app = Router::new()
            .route("/", get(index))
            .route("/stream.mjpg", get(mjpeg))
            .route("/stats.json", get(stats))
            .route("/health", get(health))
            .with_state(shared.clone());
        let gate = Arc::new(Gate::new(&options.access, SCRIPT));
        let handle = move |request: hyper::Request<Incoming>| {
            let (mut app, gate) = (app.clone(), gate.clone());
            async move {
                let mut response = match gate.refusal(request.headers()) {
                    None => match tower_service::Service::call(&mut app, request).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    },
                    Some(refused) => refused,
                };
                gate.secure(response.headers_mut());
                Ok::<_, Infallible>(response)
            }
        };
        let (grace, limits) = (options.shutdown_grace, options.limits);
        let http_stop = stop.subscribe();
        let http = std::thread::Builder::new()
            .name("gss-serve-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    conn::serve(listener, tls, handle, limits, http_stop, grace).await;
                    Ok(())
                })
            })
            .map_err(spawn_error)?;

        let colors: Vec<[u8; 3]> = options.classes.iter().map(|c| c.color).collect();
        let quality = options.jpeg_quality.clamp(1, 100);
        let view = options.view;
        let encode_shared = shared;
        let encode = std::thread::Builder::new()
            .name("gss-serve-encode".into())
            .spawn(move || {
                let mut encoder = PartEncoder::new(colors, quality, view);
                for mask in frames.iter() {
                    encoder.count(&mask);
                    encode_shared.record(&mask, encoder.counts());
                    if encode_shared.viewers.load(Ordering::Relaxed) == 0 {
                        // No one watches: no JPEG, and no stale picture for the next viewer.
                        if latest_tx.borrow().is_some() {
                            latest_tx.send_replace(None);
                        }
                        continue;
                    }
                    match encoder.encode(&mask) {
                        Ok(part) => {
                            latest_tx.send_replace(Some(part));
                        }
                        Err(e) => log::warn!("live view: frame {}: {}", mask.seq, e.chain()),
                    }
                }
                // The stream has ended: so does every viewer's response, then the server.
                drop(latest_tx);
                encode_shared.stop.send_replace(true);
            });
        let encode = match encode {
            Ok(handle) => handle,
            Err(e) => {
                stop.send_replace(true);
                return Err(spawn_error(e));
            }
        };
        Ok(LiveView {
            addr: local,
            stop,
            encode: Some(encode),
            http: Some(http),
        })
    }

    /// The address the server listens on (the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the subscription has ended (the stream stopped) and the server has shut down.
    pub fn join(mut self) -> Result<()> {
        if let Some(encode) = self.encode.take() {
            if encode.join().is_err() {
                self.stop.send_replace(true);
                return Err(Error::Serve {
                    msg: "its encoder thread panicked".into(),
                    source: None,
                });
            }
        }
        self.join_http()
    }

    fn join_http(&mut self) -> Result<()> {
        match self.http.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(Error::Serve {
                msg: "the server failed".into(),
                source: Some(e),
            }),
            Some(Err(_)) => Err(Error::Serve {
                msg: "its server thread panicked".into(),
                source: None,
            }),
        }
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        // The encoder thread ends with its subscription; only the server is waited for (at
        // most the grace period).
        self.stop.send_replace(true);
        if let Err(e) = self.join_http() {
            log::warn!("{}", e.chain());
        }
    }
}

/// Resolves once the stop flag is set (or its sender has gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Turns mask frames into multipart parts, reusing its images and buffers.
struct PartEncoder {
    colors: Vec<[u8; 3]>,
    quality: u8,
    view: View,
    overlay: RgbImage,
    jpeg: Vec<u8>,
    parts: BufferPool<Vec<u8>>,
    /// Pixels per class id of the latest frame.
    counts: Box<[u64; 256]>,
}

/// A part shared by every viewer without copying.
struct Part(Arc<Vec<u8>>);

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl PartEncoder {
    fn new(colors: Vec<[u8; 3]>, quality: u8, view: View) -> Self {
        // Parts alive at once: the slot's, and one or two per viewer still being written.
        Self {
            colors,
            quality,
            view,
            overlay: RgbImage::new(0, 0),
            jpeg: Vec::new(),
            parts: BufferPool::new(8),
            counts: Box::new([0; 256]),
        }
    }

    fn counts(&self) -> &[u64; 256] {
        &self.counts
    }

    /// Pixels per class id of `mask`, for the live figures (every frame, watched or not).
    fn count(&mut self, mask: &MaskFrame) {
        self.counts.fill(0);
        for &id in mask.classes.as_raw() {
            self.counts[id as usize] += 1;
        }
    }

    fn encode(&mut self, mask: &MaskFrame) -> Result<Bytes> {
        let classes = &mask.classes;
        match &mask.frame {
            Some(frame)
                if self.view == View::Overlay && frame.dimensions() == classes.dimensions() =>
            {
                blend_into(frame, classes, &self.colors, &mut self.overlay)
            }
            _ => paint(
                classes.as_raw(),
                classes.dimensions(),
                &self.colors,
                &mut self.overlay,
            ),
        }
        self.jpeg.clear();
        let (w, h) = self.overlay.dimensions();
        JpegEncoder::new_with_quality(&mut self.jpeg, self.quality)
            .encode(self.overlay.as_raw(), w, h, ExtendedColorType::Rgb8)
            .map_err(|e| Error::Serve {
                msg: format!("cannot encode a {w}x{h} overlay as JPEG: {e}"),
                source: None,
            })?;
        let jpeg = &self.jpeg;
        let part = self.parts.fill(|buf| {
            buf.clear();
            write!(
                buf,
                "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
                jpeg.len()
            )?;
            buf.extend_from_slice(jpeg);
            buf.extend_from_slice(b"\r\n");
            Ok::<_, std::io::Error>(())
        });
        let part = part.map_err(|e| Error::Serve {
            msg: "cannot frame a part".into(),
            source: Some(e),
        })?;
        Ok(Bytes::from_owner(Part(part)))
    }
}

/// The class colours alone, for frames that came without their image.
fn paint(classes: &[u8], (w, h): (u32, u32), colors: &[[u8; 3]], out: &mut RgbImage) {
    if out.dimensions() != (w, h) {
        *out = RgbImage::new(w, h);
    }
    for (d, &id) in out.as_mut().chunks_exact_mut(3).zip(classes) {
        d.copy_from_slice(colors.get(id as usize).unwrap_or(&[0, 0, 0]));
    }
}

impl Shared {
    fn record(&self, mask: &MaskFrame, counts: &[u64; 256]) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.frames += 1;
        live.seq = Some(mask.seq);
        live.source_index = Some(mask.source_index);
        live.size = mask.classes.dimensions();
        live.dropped = mask.dropped_so_far;
        if live.recent.len() == RECENT {
            live.recent.pop_front();
        }
        live.recent
            .push_back((Instant::now(), mask.latency.as_secs_f64() * 1e3));
        let pixels = (mask.classes.as_raw().len() as f64).max(1.0);
        let known = live.shares.len() - 1;
        for (share, &n) in live.shares.iter_mut().zip(counts.iter()) {
            *share = n as f64 / pixels;
        }
        live.shares[known] =
            counts.get(known..).map_or(0, |c| c.iter().sum::<u64>()) as f64 / pixels;
    }

    fn stats_json(&self) -> serde_json::Value {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let n = live.recent.len();
        let fps = match (live.recent.front(), live.recent.back()) {
            (Some(first), Some(last)) if n > 1 && last.0 > first.0 => {
                Some((n - 1) as f64 / (last.0 - first.0).as_secs_f64())
            }
            _ => None,
        };
        let mut latencies: Vec<f64> = live.recent.iter().map(|r| r.1).collect();
        latencies.sort_by(f64::total_cmp);
        let p = |q| (!latencies.is_empty()).then(|| percentile(&latencies, q));
        let known = live.shares.len() - 1;
        let classes: Vec<_> = self
            .names
            .iter()
            .zip(&live.shares)
            .enumerate()
            .map(
                |(id, (name, share))| serde_json::json!({ "id": id, "name": name, "share": share }),
            )
            .collect();
        serde_json::json!({
            "frames": live.frames,
            "seq": live.seq,
            "source_index": live.source_index,
            "width": live.size.0,
            "height": live.size.1,
            "fps": fps,
            "latency_p50_ms": p(50.0),
            "latency_p95_ms": p(95.0),
            "dropped": live.dropped,
            "viewers": self.viewers.load(Ordering::Relaxed),
            "classes": classes,
            "unlabeled_share": live.shares[known],
        })
    }
}

fn json_response(value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        shared.page.clone(),
    )
        .into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    json_response(&shared.stats_json())
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let frames = shared.live.lock().unwrap_or_else(|p| p.into_inner()).frames;
    let status = if *shared.stop.borrow() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "streaming" } else { "stopping" },
        "frames": frames,
        "uptime_s": shared.started.elapsed().as_secs_f64(),
    });
    (status, json_response(&body)).into_response()
}

/// Counts a viewer for as long as its response lives.
struct Viewer(Arc<Shared>);

impl Viewer {
    fn new(shared: Arc<Shared>) -> Self {
        shared.viewers.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn mjpeg(State(shared): State<Arc<Shared>>) -> Response {
    let mut latest = shared.latest.clone();
    // A new viewer starts with the frame already there.
    latest.mark_changed();
    let stop = shared.stop.subscribe();
    let viewer = Viewer::new(shared);
    let parts = futures_util::stream::unfold(
        (latest, stop, viewer),
        |(mut latest, mut stop, viewer)| async move {
            loop {
                tokio::select! {
                    changed = latest.changed() => changed.ok()?,
                    () = stopped(stop.clone()) => return None,
                }
                let part = latest.borrow_and_update().clone();
                if let Some(part) = part {
                    return Some((Ok::<_, Infallible>(part), (latest, stop, viewer)));
                }
                // Not stopped yet; wait for the first frame.
                if *stop.borrow_and_update() {
                    return None;
                }
            }
        },
    );
    let content_type = format!("multipart/x-mixed-replace; boundary={BOUNDARY}");
    let mut response = axum::body::Body::from_stream(parts).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's one script (allowed by its hash in the Content-Security-Policy, see `gate.rs`).
const SCRIPT: &str = r#"const f = (v, d) => v == null ? "-" : v.toFixed(d);
async function tick() {
  try {
    const s = await (await fetch("/stats.json", {cache: "no-store"})).json();
    document.getElementById("stats").textContent =
      `fps ${f(s.fps, 1)} | latency p50 ${f(s.latency_p50_ms, 1)} ms p95 ${f(s.latency_p95_ms, 1)} ms | dropped ${s.dropped} | frames ${s.frames} | viewers ${s.viewers}`;
    for (const c of s.classes) {
      const e = document.getElementById("share-" + c.id);
      if (e) e.textContent = (100 * c.share).toFixed(1) + " %";
    }
  } catch (e) {
    document.getElementById("stats").textContent = "the stream has ended";
    return;
  }
  setTimeout(tick, 500);
}
tick();
"#;

/// The page: the MJPEG image, the legend (with each class's share, filled in from /stats.json)
/// and the live figures.
fn page(options: &ServeOptions) -> String {
    let mut legend = String::new();
    for c in &options.classes {
        let [r, g, b] = c.color;
        legend.push_str(&format!(
            "<li><span class=\"sw\" style=\"background:rgb({r},{g},{b})\"></span>{}<span class=\"share\" id=\"share-{}\"></span></li>\n",
            escape(&c.name),
            c.id
        ));
    }
    let title = escape(&options.title);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px sans-serif; margin: 12px; background: #111; color: #ddd; }}
main {{ display: flex; gap: 16px; align-items: flex-start; }}
img {{ max-width: 100%; background: #222; }}
ul {{ list-style: none; padding: 0; margin: 0; }}
li {{ margin: 3px 0; white-space: nowrap; }}
.sw {{ display: inline-block; width: 14px; height: 14px; margin-right: 6px; vertical-align: middle; }}
.share {{ color: #999; margin-left: 6px; }}
#stats {{ margin-top: 8px; font-family: monospace; }}
</style></head>
<body><h3>{title}</h3>
<main><div><img id="view" src="/stream.mjpg" alt="live overlay"><div id="stats">waiting for frames</div></div>
<ul id="legend">
{legend}</ul></main>
<script>{SCRIPT}</script></body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::ClassInfo;

    #[test]
    fn the_page_escapes_class_names_and_lists_every_class() {
        let classes = vec![
            ClassInfo {
                id: 0,
                name: "road".into(),
                color: [1, 2, 3],
            },
            ClassInfo {
                id: 1,
                name: "<b>&".into(),
                color: [4, 5, 6],
            },
        ];
        let options = ServeOptions {
            title: "t".into(),
            classes,
            jpeg_quality: 80,
            shutdown_grace: Duration::from_secs(1),
            view: View::Overlay,
            access: Default::default(),
            limits: Default::default(),
            tls: None,
        };
        let html = page(&options);
        assert!(
            html.contains(">road<") && html.contains("rgb(1,2,3)") && html.contains("rgb(4,5,6)")
        );
        assert!(
            html.contains("&lt;b&gt;&amp;") && !html.contains("<b>&"),
            "{html}"
        );
        // The Content-Security-Policy allows the script by the hash of exactly this text.
        assert!(
            html.contains(&format!("<script>{SCRIPT}</script>")),
            "{html}"
        );
        assert_eq!(
            html.matches("<script").count(),
            1,
            "one script, the hashed one"
        );
    }

    #[test]
    fn paints_class_colours_and_black_for_unknown_ids() {
        let mut out = RgbImage::new(0, 0);
        paint(&[0, 255], (2, 1), &[[9, 8, 7]], &mut out);
        assert_eq!(out.as_raw(), &[9, 8, 7, 0, 0, 0]);
    }
}
