//! `gss stream --serve`: with the `serve` feature, a live view while the stream runs that stops
//! with it (Ctrl-C); without it, an error that says how to rebuild.

use std::path::Path;
use std::process::Command;

fn gss() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gss"));
    c.env(
        "GSS_MODEL",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny"),
    );
    c
}

fn three_frames() -> String {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip/images/seq");
    format!("{}/frame_00000[0-2].jpg", clip.display())
}

#[cfg(feature = "serve")]
#[test]
fn stream_serves_a_live_view_until_it_is_stopped() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let mut child = gss()
        .args([
            "stream",
            "--serve",
            "127.0.0.1:0",
            "--loop",
            "--fps",
            "20",
            "--save",
            "none",
            "--json",
            "--threads",
            "1",
            "--dir",
        ])
        .arg(three_frames())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let addr = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no live view address in: {seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.split("live view at http://").nth(1) {
            break rest.split('/').next().unwrap().to_string();
        }
    };
    let get = |path: &str| {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    };
    let health = get("/health");
    assert!(
        health.starts_with("HTTP/1.")
            && health.contains(" 200 ")
            && health.contains("\"streaming\""),
        "{health}"
    );
    let page = get("/");
    assert!(
        page.contains(">road<") && page.contains("gss-tiny"),
        "{page}"
    );

    // Ctrl-C ends the stream, then the server; the summary is still printed.
    // SAFETY: signals our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let Some(status) = status else {
        let _ = child.kill();
        panic!("gss stream --serve did not stop within a minute of Ctrl-C");
    };
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "{status}: {stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["published"].as_u64().unwrap() > 0, "{report}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the server outlived the stream"
    );
}

#[cfg(not(feature = "serve"))]
#[test]
fn serve_without_the_feature_says_how_to_rebuild() {
    let out = gss()
        .args([
            "stream",
            "--serve",
            "127.0.0.1:0",
            "--save",
            "none",
            "--dir",
        ])
        .arg(three_frames())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features serve"), "{err}");
}
