//! The live view over HTTPS (feature `serve-tls`) with a certificate the test makes: a client
//! that trusts it gets the page with credentials and 401 without, a plain-HTTP request gets no
//! answer, and files that are not PEM are refused with their names.
#![cfg(feature = "serve-tls")]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use common::{clip_frames, tiny_package};
use gss::engine::cpu::CpuBackend;
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::sink::serve::{Credentials, LiveView, ServeOptions, TlsFiles};
use tokio_rustls::rustls;

/// GET `path` over TLS, trusting `ca` for the name localhost: (status line, whole response).
fn get_tls(
    addr: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    path: &str,
    auth: Option<&str>,
) -> (String, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let auth = auth.map_or(String::new(), |a| format!("Authorization: Basic {a}\r\n"));
    write!(tls, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n").unwrap();
    let mut response = Vec::new();
    // A server that closes without close_notify ends the read with an error after the data.
    let _ = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).to_string();
    (text.lines().next().unwrap_or("").to_string(), text)
}

#[test]
fn the_live_view_serves_https_with_credentials() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("gss-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, certified.cert.pem()).unwrap();
    std::fs::write(&files.key, certified.signing_key.serialize_pem()).unwrap();
    let ca = certified.cert.der().clone();

    let package = tiny_package();
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
    let mut serve = ServeOptions::for_package(pipeline.package());
    serve.tls = Some(files.clone());
    serve.access.credentials = Some(Credentials::parse("robot:pw").unwrap());
    // Files that are not PEM: refused before anything listens, naming the file.
    let mut broken = serve.clone();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    broken.tls = Some(TlsFiles {
        cert: junk.clone(),
        key: files.key.clone(),
    });
    let err = LiveView::start(
        "127.0.0.1:0",
        broken,
        pipeline.subscribe(1, Policy::RealTime),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("junk.pem"), "{err}");

    let live = LiveView::start(
        "127.0.0.1:0",
        serve,
        pipeline.subscribe(2, Policy::RealTime),
    )
    .unwrap();
    pipeline
        .run(clip_frames(3, "tls").looping(true).with_fps(20.0).unwrap())
        .unwrap();
    let addr = live.local_addr();

    // "robot:pw" in base64.
    let (status, page) = get_tls(addr, &ca, "/", Some("cm9ib3Q6cHc="));
    assert!(status.contains(" 200 "), "{status}");
    assert!(page.contains("/stream.mjpg"), "{page}");
    let (status, _) = get_tls(addr, &ca, "/stats.json", None);
    assert!(status.contains(" 401 "), "{status}");

    // Plain HTTP on the TLS port: no HTTP answer (the handshake fails and the server closes).
    let mut plain = TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1."),
        "plain HTTP was answered"
    );

    pipeline.stop();
    pipeline.join().unwrap();
    live.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
