//! Smoke tests of the `gss` binary on the fixture model.

use std::path::Path;
use std::process::Command;

fn gss() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gss"));
    c.env("GSS_MODEL", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny"));
    c
}

#[test]
fn info_describes_the_model() {
    let out = gss().arg("info").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gss-tiny") && text.contains("pole") && text.contains("int8"), "{text}");
}

#[test]
fn segment_writes_class_maps_and_overlays_and_skips_bad_files() {
    let out_dir = std::env::temp_dir().join(format!("gss-cli-{}", std::process::id()));
    let in_dir = out_dir.join("in");
    std::fs::create_dir_all(&in_dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference/street8_test_000000.png");
    std::fs::copy(&fixture, in_dir.join("a.png")).unwrap();
    std::fs::write(in_dir.join("b.jpg"), b"garbage").unwrap();
    let out = gss().args(["segment", in_dir.to_str().unwrap(), "--overlay", "--out"]).arg(out_dir.join("o")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.jpg"));
    let classes = image::open(out_dir.join("o/a.png")).unwrap().to_luma8();
    assert_eq!(classes.dimensions(), (128, 64));
    assert!(classes.pixels().all(|p| p.0[0] < 8));
    assert!(out_dir.join("o/a.overlay.png").is_file());
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let out = gss().env("GSS_MODEL", "/nonexistent/model").arg("info").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model") && err.contains("model.json"), "{err}");
}
