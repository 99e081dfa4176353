//! The live view (feature `serve`) on the fixture model over loopback: the page and its legend,
//! MJPEG parts that decode to overlays, the stats and health endpoints, several viewers at once
//! (one of which reads nothing), and the shutdown when the stream ends.
#![cfg(feature = "serve")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use common::{clip_frames, tiny_package};
use gss::engine::cpu::CpuBackend;
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::sink::serve::{LiveView, ServeOptions};

/// Every socket read gives up after this, so a server that hangs fails the test instead.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// GET over HTTP/1.0 (no chunking, the server closes at the end): status line and body.
fn get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut s = connect(addr);
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = Vec::new();
    s.read_to_end(&mut response).unwrap();
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&response[..end]).to_string();
    (head, response[end + 4..].to_vec())
}

/// A viewer of /stream.mjpg that reads one multipart part at a time.
struct Viewer {
    reader: BufReader<TcpStream>,
}

impl Viewer {
    fn open(addr: SocketAddr) -> Viewer {
        let mut s = connect(addr);
        write!(s, "GET /stream.mjpg HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut reader = BufReader::new(s);
        let head = read_head(&mut reader);
        assert!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: multipart/x-mixed-replace; boundary=gssframe"),
            "{head}"
        );
        Viewer { reader }
    }

    /// The next part's JPEG bytes.
    fn next_jpeg(&mut self) -> Vec<u8> {
        let head = read_head(&mut self.reader);
        let mut lines = head.lines().filter(|l| !l.is_empty());
        assert_eq!(lines.next(), Some("--gssframe"), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        assert!(head.contains("Content-Type: image/jpeg"), "{head}");
        let mut jpeg = vec![0; length];
        self.reader.read_exact(&mut jpeg).unwrap();
        jpeg
    }
}

/// Lines up to an empty one.
fn read_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    for _ in 0..64 {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the connection closed in a header: {head:?}"
        );
        if line == "\r\n" && !head.trim().is_empty() {
            return head;
        }
        head.push_str(&line);
    }
    panic!("no end of headers: {head:?}");
}

/// Distinct colours in an image.
fn colours(image: &image::RgbImage) -> usize {
    let mut seen: Vec<[u8; 3]> = image.pixels().map(|p| p.0).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

#[test]
fn viewers_get_overlays_stats_and_the_legend_and_the_server_stops_with_the_stream() {
    let package = tiny_package();
    let names: Vec<String> = package
        .manifest
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let options = PipelineOptions {
        keep_frames: true,
        mode: Mode::Sequential,
        ..PipelineOptions::default()
    };
    let one_thread = BackendOptions {
        threads: 1,
        ..BackendOptions::default()
    };
    let mut pipeline = Pipeline::new(package, options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(p, &one_thread, graphs)?))
    })
    .unwrap();
    let live = LiveView::start(
        "127.0.0.1:0",
        ServeOptions::for_package(pipeline.package()),
        pipeline.subscribe(2, Policy::RealTime),
    )
    .unwrap();
    let addr = live.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let frames = clip_frames(6, "serve");
    let size = image::image_dimensions(&frames.paths()[0]).unwrap();
    pipeline
        .run(frames.looping(true).with_fps(30.0).unwrap())
        .unwrap();

    let (head, page) = get(addr, "/");
    let page = String::from_utf8(page).unwrap();
    assert!(
        head.contains(" 200 ") && head.contains("text/html"),
        "{head}"
    );
    for name in &names {
        assert!(
            page.contains(&format!(">{name}<")),
            "{name} is not in the legend: {page}"
        );
    }
    assert!(page.contains("/stream.mjpg") && page.contains("/stats.json"));

    // A viewer that never reads, with a small receive window so that its connection fills.
    let stalled = connect(addr);
    let tiny: libc::c_int = 2048;
    // SAFETY: a valid socket and an int-sized option value.
    let set = unsafe {
        libc::setsockopt(
            stalled.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&tiny as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    (&stalled)
        .write_all(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")
        .unwrap();

    let mut a = Viewer::open(addr);
    let mut b = Viewer::open(addr);
    let mut last = None;
    // Many frames' worth after the stalled viewer has had time to fill its window: both readers
    // keep getting overlays.
    for _ in 0..12 {
        for viewer in [&mut a, &mut b] {
            let overlay = image::load_from_memory(&viewer.next_jpeg())
                .unwrap()
                .to_rgb8();
            assert_eq!(overlay.dimensions(), size);
            assert!(
                colours(&overlay) > 50,
                "an overlay of {} colours",
                colours(&overlay)
            );
            last = Some(overlay);
        }
    }
    assert!(last.is_some());

    let (head, body) = get(addr, "/stats.json");
    assert!(
        head.contains(" 200 ") && head.contains("application/json"),
        "{head}"
    );
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(stats["frames"].as_u64().unwrap() >= 12, "{stats}");
    assert_eq!(
        (stats["width"].as_u64(), stats["height"].as_u64()),
        (Some(size.0 as u64), Some(size.1 as u64))
    );
    assert!(stats["fps"].as_f64().unwrap() > 0.0, "{stats}");
    let (p50, p95) = (
        stats["latency_p50_ms"].as_f64().unwrap(),
        stats["latency_p95_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p95 >= p50, "{stats}");
    assert!(stats["dropped"].as_u64().is_some());
    assert!(stats["viewers"].as_u64().unwrap() >= 3, "{stats}");
    let classes = stats["classes"].as_array().unwrap();
    let listed: Vec<&str> = classes
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names.iter().map(String::as_str).collect::<Vec<_>>());
    let total: f64 = classes
        .iter()
        .map(|c| c["share"].as_f64().unwrap())
        .sum::<f64>()
        + stats["unlabeled_share"].as_f64().unwrap();
    assert!((total - 1.0).abs() < 1e-9, "shares add up to {total}");

    let (head, body) = get(addr, "/health");
    assert!(head.contains(" 200 "), "{head}");
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "streaming");

    // The stream ends: the viewers' responses end and the server stops, the stalled viewer
    // notwithstanding.
    pipeline.stop();
    let stats = pipeline.join().unwrap();
    assert!(stats.published >= 12);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || done_tx.send(live.join()));
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the live view stopped")
        .unwrap();
    for viewer in [&mut a, &mut b] {
        let mut rest = Vec::new();
        viewer
            .reader
            .read_to_end(&mut rest)
            .expect("the response ends");
    }
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server still listens"
    );
    drop(stalled);
}

#[test]
fn a_taken_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let package = tiny_package();
    let options = PipelineOptions {
        mode: Mode::Sequential,
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(package, options, |p, graphs| {
        Ok(Box::new(CpuBackend::with_options(
            p,
            &BackendOptions::default(),
            graphs,
        )?))
    })
    .unwrap();
    let err = LiveView::start(
        &addr,
        ServeOptions::for_package(pipeline.package()),
        pipeline.subscribe(1, Policy::RealTime),
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(text.contains(&addr) && text.contains("port 0"), "{text}");
}
