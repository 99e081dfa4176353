//! The live view (feature `serve`) against strangers, over loopback: credentials, the `Host`
//! check and the security headers; and a load of idle, trickling and never-reading clients
//! while a lossless stream runs, which must neither stop nor slow the stream, and whose
//! connections are refused above the cap or closed within the timeouts. Every wait is bounded.
#![cfg(feature = "serve")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{clip_frames, tiny_package};
use gss::engine::cpu::CpuBackend;
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::sink::serve::{Credentials, LiveView, ServeOptions, View};

const USER: &str = "robot";
const PASSWORD: &str = "correct horse";

fn basic() -> String {
    // RFC 7617: base64 of USER:PASSWORD; written out so the test does not share the server's encoder.
    let raw = format!("{USER}:{PASSWORD}");
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in raw.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(table[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One request over HTTP/1.0; the whole response (head, body).
fn request(addr: SocketAddr, path: &str, headers: &str) -> (String, Vec<u8>) {
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.0\r\n{headers}\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    (
        String::from_utf8_lossy(&response[..end]).to_ascii_lowercase(),
        response[end + 4..].to_vec(),
    )
}

/// A stream of the clip, looping at `fps`, with a live view on loopback.
fn start(
    options: impl FnOnce(&mut ServeOptions),
    lossless: bool,
    fps: f64,
) -> (Pipeline, LiveView) {
    let package = tiny_package();
    let policy = if lossless {
        Policy::Lossless
    } else {
        Policy::RealTime
    };
    let pipeline_options = PipelineOptions {
        keep_frames: true,
        mode: Mode::Sequential,
        policy,
        ..PipelineOptions::default()
    };
    let one_thread = BackendOptions {
        threads: 1,
        ..BackendOptions::default()
    };
    let mut pipeline = Pipeline::new(package, pipeline_options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(p, &one_thread, graphs)?))
    })
    .unwrap();
    let mut serve = ServeOptions::for_package(pipeline.package());
    options(&mut serve);
    let live = LiveView::start(
        "127.0.0.1:0",
        serve,
        pipeline.subscribe(2, Policy::RealTime),
    )
    .unwrap();
    pipeline
        .run(
            clip_frames(6, "limits")
                .looping(true)
                .with_fps(fps)
                .unwrap(),
        )
        .unwrap();
    (pipeline, live)
}

/// Waits until `s` is closed by the server (EOF or reset), at most `within`: how long it took,
/// and whether the server said 503 first.
fn closed_within(s: &mut TcpStream, within: Duration) -> Option<(Duration, bool)> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 65536];
    let mut busy = false;
    while started.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), busy)),
            Ok(n) => busy |= String::from_utf8_lossy(&buf[..n]).contains(" 503 "),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some((started.elapsed(), busy)),
        }
    }
    None
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn credentials_host_names_and_headers() {
    let (pipeline, live) = start(
        |o| {
            o.access.credentials = Some(Credentials::parse(&format!("{USER}:{PASSWORD}")).unwrap());
            o.access.hosts = vec!["robot.local".into()];
        },
        false,
        30.0,
    );
    let addr = live.local_addr();
    let auth = format!("Authorization: {}\r\n", basic());

    let (head, _) = request(addr, "/", "Host: localhost\r\n");
    assert!(
        head.starts_with("http/1.0 401") || head.starts_with("http/1.1 401"),
        "{head}"
    );
    assert!(head.contains("www-authenticate: basic realm="), "{head}");
    let (head, _) = request(
        addr,
        "/stats.json",
        "Host: localhost\r\nAuthorization: Basic cm9ib3Q6d3Jvbmc=\r\n",
    );
    assert!(head.contains(" 401 "), "a wrong password: {head}");

    let (head, page) = request(
        addr,
        "/",
        &format!("Host: robot.local:{}\r\n{auth}", addr.port()),
    );
    assert!(head.contains(" 200 "), "{head}");
    assert!(String::from_utf8_lossy(&page).contains("/stream.mjpg"));
    for header in [
        "x-content-type-options: nosniff",
        "cross-origin-resource-policy: same-origin",
        "frame-ancestors 'none'",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "{header} missing: {head}");
    }
    // A page that rebound its own name to this address: refused, credentials or not.
    let (head, _) = request(
        addr,
        "/stats.json",
        &format!("Host: evil.example:{}\r\n{auth}", addr.port()),
    );
    assert!(head.contains(" 421 "), "{head}");
    // Refusals carry the headers too.
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    // Without credentials, only loopback is served.
    let package = tiny_package();
    let options = PipelineOptions {
        mode: Mode::Sequential,
        ..PipelineOptions::default()
    };
    let mut other = Pipeline::new(package, options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(
            p,
            &BackendOptions::default(),
            graphs,
        )?))
    })
    .unwrap();
    let err = LiveView::start(
        "0.0.0.0:0",
        ServeOptions::for_package(other.package()),
        other.subscribe(1, Policy::RealTime),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("--serve-auth"), "{err}");

    pipeline.stop();
    pipeline.join().unwrap();
    live.join().unwrap();
}

#[test]
fn the_mask_view_shows_class_colours_only() {
    let (pipeline, live) = start(|o| o.view = View::Mask, false, 30.0);
    let mut s = connect(live.local_addr());
    s.write_all(b"GET /stream.mjpg HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(s);
    let jpeg = next_part(&mut reader);
    let picture = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    // The class colours alone: a handful of colours (plus JPEG's ringing at their edges), where
    // an overlay of the camera image has thousands.
    let palette: Vec<[u8; 3]> = tiny_package()
        .manifest
        .classes
        .iter()
        .map(|c| c.color)
        .collect();
    let near_palette = picture
        .pixels()
        .filter(|p| {
            palette
                .iter()
                .any(|c| c.iter().zip(p.0).all(|(a, b)| a.abs_diff(b) <= 24))
        })
        .count();
    let share = near_palette as f64 / f64::from(picture.width() * picture.height());
    assert!(
        share > 0.9,
        "{:.1} % of the mask view's pixels are class colours",
        100.0 * share
    );
    pipeline.stop();
    pipeline.join().unwrap();
    drop(reader);
    live.join().unwrap();
}

/// Reads the response head, then one multipart part; its JPEG bytes.
fn next_part(reader: &mut BufReader<TcpStream>) -> Vec<u8> {
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.trim().parse::<usize>().ok();
        }
        if line == "\r\n" && length.is_some() {
            break;
        }
    }
    let mut jpeg = vec![0; length.unwrap_or(0)];
    reader.read_exact(&mut jpeg).unwrap();
    jpeg
}

#[test]
fn strangers_neither_stop_the_stream_nor_hold_its_connections() {
    const CAP: usize = 16;
    let timeout = Duration::from_secs(1);
    // What a closed connection may take beyond its timeout on a loaded 2-core machine.
    let slack = Duration::from_secs(4);
    let (pipeline, live) = start(
        |o| {
            o.access.credentials = Some(Credentials::parse(&format!("{USER}:{PASSWORD}")).unwrap());
            o.limits.max_clients = CAP;
            o.limits.header_timeout = timeout;
            o.limits.write_timeout = timeout;
        },
        true,
        30.0,
    );
    let addr = live.local_addr();
    let (fds_before, rss_before) = (open_descriptors(), rss_mb());
    let mut rss_peak = rss_before;

    // 300 idle connections: the first CAP are served (and closed for idling), the rest get 503 at once.
    let mut idle: Vec<TcpStream> = (0..300).map(|_| connect(addr)).collect();
    let mut idle_lived = Duration::ZERO;
    let mut idle_busy = 0;
    let idle_started = Instant::now();
    for s in idle.iter_mut() {
        let (_, busy) = closed_within(s, timeout + slack)
            .expect("an idle connection outlived the header timeout");
        idle_busy += usize::from(busy);
        idle_lived = idle_started.elapsed();
    }
    // Those still in the listen backlog when the first CAP idled out get slots of their own.
    assert!(
        idle_busy >= 300 - 4 * CAP,
        "{idle_busy} of 300 idle connections were told 503 (cap {CAP})"
    );
    drop(idle);
    let mut busy = 0;
    rss_peak = rss_peak.max(rss_mb());

    // 100 clients that trickle their headers, a byte every 200 ms: closed within the header
    // timeout; those over the cap are answered 503.
    let mut tricklers: Vec<TcpStream> = (0..100).map(|_| connect(addr)).collect();
    let started = Instant::now();
    let mut open: Vec<bool> = vec![true; tricklers.len()];
    let slow = b"GET /stream.mjpg HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut sent = 0;
    while open.iter().any(|o| *o) && started.elapsed() < timeout + slack {
        for (s, o) in tricklers
            .iter_mut()
            .zip(open.iter_mut())
            .filter(|(_, o)| **o)
        {
            if s.write_all(&slow[sent % slow.len()..][..1]).is_err() {
                *o = false;
                continue;
            }
            s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => *o = false,
                Ok(n) => {
                    if String::from_utf8_lossy(&buf[..n]).contains(" 503 ") {
                        busy += 1;
                    }
                    *o = false;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => *o = false,
            }
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let trickle_lived = started.elapsed();
    assert!(
        open.iter().all(|o| !o),
        "{} trickling clients still open after {trickle_lived:?}",
        open.iter().filter(|o| **o).count()
    );
    assert!(
        busy >= 100 - 4 * CAP,
        "{busy} of 100 trickling clients were told 503 (cap {CAP})"
    );
    drop(tricklers);
    rss_peak = rss_peak.max(rss_mb());

    // 20 authorised viewers that never read: the server gives up on them within the write
    // timeout once their windows are full.
    let auth = basic();
    let stalled: Vec<TcpStream> = (0..20)
        .map(|_| {
            let s = connect(addr);
            let tiny: libc::c_int = 2048;
            // SAFETY: a valid socket and an int-sized option value.
            unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&tiny as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            (&s).write_all(
                format!(
                    "GET /stream.mjpg HTTP/1.0\r\nHost: localhost\r\nAuthorization: {auth}\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(timeout + slack);
    rss_peak = rss_peak.max(rss_mb());
    // A viewer that reads gets frames again as soon as the stalled ones are gone.
    let viewer_started = Instant::now();
    let mut viewer = loop {
        let mut s = connect(addr);
        // Refused (503, closed) while the slots are still held: the write may fail.
        let written = write!(
            s,
            "GET /stream.mjpg HTTP/1.0\r\nHost: localhost\r\nAuthorization: {auth}\r\n\r\n"
        );
        let mut reader = BufReader::new(s);
        let mut status = String::new();
        if written.is_ok() && reader.read_line(&mut status).is_ok() && status.contains(" 200 ") {
            break reader;
        }
        assert!(
            viewer_started.elapsed() < timeout + slack,
            "no slot freed for a reading viewer: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for _ in 0..3 {
        let jpeg = next_part(&mut viewer);
        assert!(image::load_from_memory(&jpeg).is_ok());
    }
    // The server's own count: the stalled viewers' responses are gone (their sockets may still
    // hold the bytes the kernel had buffered, which is what a client that never reads can keep).
    let (_, body) = request(
        addr,
        "/stats.json",
        &format!("Host: localhost\r\nAuthorization: {auth}\r\n"),
    );
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        stats["viewers"], 1,
        "viewers that never read still hold connections: {stats}"
    );
    drop(stalled);
    drop(viewer);

    pipeline.stop();
    let stats = pipeline.join().unwrap();
    live.join().unwrap();
    // Lossless: every frame captured was published, load or not.
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(stats.published, stats.captured, "{stats:?}");
    assert!(stats.published > 30, "{stats:?}");
    let fds_after = open_descriptors();
    eprintln!(
        "load: published {} frames; idle connections all closed within {idle_lived:?} ({idle_busy} of 300 told 503), \
         trickling ones within {trickle_lived:?} ({busy} of 100 told 503); RSS {rss_before:.0} -> peak {rss_peak:.0} MB, \
         descriptors {fds_before} -> {fds_after}",
        stats.published
    );
    assert!(
        fds_after <= fds_before + 4,
        "descriptors {fds_before} -> {fds_after}"
    );
    assert!(
        rss_peak < rss_before + 200.0,
        "RSS {rss_before:.0} -> {rss_peak:.0} MB"
    );
}
