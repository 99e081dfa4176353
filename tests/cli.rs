//! Smoke tests of the `gss` binary on the fixture model.

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

#[test]
fn info_describes_the_model() {
    let out = gss().arg("info").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gss-tiny") && text.contains("pole") && text.contains("int8"),
        "{text}"
    );
}

#[test]
fn segment_writes_class_maps_and_overlays_and_skips_bad_files() {
    let out_dir = std::env::temp_dir().join(format!("gss-cli-{}", std::process::id()));
    let in_dir = out_dir.join("in");
    std::fs::create_dir_all(&in_dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reference/street8_test_000000.png");
    std::fs::copy(&fixture, in_dir.join("a.png")).unwrap();
    std::fs::write(in_dir.join("b.jpg"), b"garbage").unwrap();
    std::fs::write(in_dir.join("c.png"), b"").unwrap();
    let out = gss()
        .args(["segment", in_dir.to_str().unwrap(), "--overlay", "--out"])
        .arg(out_dir.join("o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line per bad file, naming it once, with the decoder's reason once, and what to do.
    for (file, why) in [
        ("b.jpg", "cannot decode image: "),
        ("c.png", "the file is empty"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("no line for {file}: {stderr}"));
        assert!(
            line.starts_with("gss: skipped ")
                && line.contains(why)
                && line.ends_with("replace or remove the file"),
            "{line}"
        );
        assert_eq!(line.matches(file).count(), 1, "{line}");
        if let Some(detail) = line
            .split(why)
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .filter(|d| !d.is_empty())
        {
            assert_eq!(
                line.matches(detail).count(),
                1,
                "the cause is printed once: {line}"
            );
        }
    }
    let classes = image::open(out_dir.join("o/a.png")).unwrap().to_luma8();
    assert_eq!(classes.dimensions(), (128, 64));
    assert!(classes.pixels().all(|p| p.0[0] < 8));
    assert!(out_dir.join("o/a.overlay.png").is_file());
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let out = gss()
        .env("GSS_MODEL", "/nonexistent/model")
        .arg("info")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/model") && err.contains("model.json"),
        "{err}"
    );
}

#[test]
fn segment_accepts_globs_and_reports_unmatched_ones() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip/images/seq");
    let out_dir = std::env::temp_dir().join(format!("gss-cli-glob-{}", std::process::id()));
    let pattern = format!("{}/frame_00000[0-2].jpg", clip.display());
    let out = gss()
        .args(["segment", &pattern, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("segmented 3 of 3"));
    let out = gss()
        .args(["segment", "/nonexistent/*.jpg", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches no file"));
}

#[test]
fn eval_reports_metrics_as_json() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip");
    let out = gss()
        .args([
            "eval",
            "--split",
            "seq",
            "--limit",
            "3",
            "--json",
            "--threads",
            "1",
            "--data",
        ])
        .arg(&clip)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"], 3);
    let miou = report["mIoU"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&miou), "{report}");
    assert_eq!(report["per_class"].as_object().unwrap().len(), 8);
    // the confusion matrix counts every labelled pixel once
    let total: u64 = report["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(total > 0 && total <= 3 * 256 * 512);
}

#[test]
fn eval_on_a_missing_split_names_the_folder() {
    let out = gss()
        .args(["eval", "--data", "/nonexistent/ds", "--split", "test"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ds/images/test"));
}

#[test]
fn bench_reports_every_stage_as_json() {
    let out = gss()
        .args([
            "bench",
            "--frames",
            "3",
            "--warmup",
            "1",
            "--json",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut stage_means = 0.0;
    for stage in ["preprocess", "prior", "decoder", "inverse", "resize"] {
        let p50 = report["stages"][stage]["p50_ms"].as_f64().unwrap();
        let p95 = report["stages"][stage]["p95_ms"].as_f64().unwrap();
        assert!(p95 >= p50, "{stage}: {report}");
        stage_means += report["stages"][stage]["mean_ms"].as_f64().unwrap();
    }
    // Both graphs really ran (the CPU backend times them apart), and a frame is its stages.
    for graph in ["prior", "decoder"] {
        assert!(
            report["stages"][graph]["p50_ms"].as_f64().unwrap() > 0.05,
            "{graph}: {report}"
        );
    }
    let frame_mean = report["stages"]["frame"]["mean_ms"].as_f64().unwrap();
    assert!(
        (frame_mean - stage_means).abs() <= 1e-6 * frame_mean.max(1.0),
        "{frame_mean} vs {stage_means}"
    );
    assert_eq!(report["frames"], 3);
    assert_eq!(report["threads"], 1);
    assert!(report["fps"].as_f64().unwrap() > 0.0);
}

#[test]
fn stream_over_a_glob_saves_masks_and_scores_the_labels() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip/images/seq");
    let out_dir = std::env::temp_dir().join(format!("gss-cli-stream-{}", std::process::id()));
    let pattern = format!("{}/frame_00000[0-5].jpg", clip.display());
    let out = gss()
        .args([
            "stream",
            "--dir",
            &pattern,
            "--lossless",
            "--fps",
            "0",
            "--save",
            "masks",
            "--json",
            "--threads",
            "1",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["captured"], 6);
    assert_eq!(report["published"], 6);
    assert_eq!(report["dropped"], 0);
    assert_eq!(report["labelled_frames"], 6);
    assert!(
        report["mIoU"]
            .as_f64()
            .is_some_and(|m| (0.0..=100.0).contains(&m)),
        "{report}"
    );
    assert!(out_dir.join("frame_000005.png").is_file());
}

#[test]
fn stream_from_a_missing_camera_is_a_clear_error() {
    let out = gss()
        .args(["stream", "--camera", "/dev/video-none", "--save", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/dev/video-none"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn devices_lists_cameras_and_adapters_without_failing() {
    let out = gss().arg("devices").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cameras") && text.contains("GPU adapters"),
        "{text}"
    );
}

#[test]
fn the_sample_clip_is_found_through_gss_sample_clip() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip/images/seq");
    let frames = std::env::temp_dir().join(format!("gss-cli-clip-{}", std::process::id()));
    std::fs::create_dir_all(&frames).unwrap();
    for name in ["frame_000000.jpg", "frame_000001.jpg"] {
        std::fs::copy(clip.join(name), frames.join(name)).unwrap();
    }
    let out = gss()
        .env("GSS_SAMPLE_CLIP", &frames)
        .args([
            "stream",
            "--lossless",
            "--fps",
            "0",
            "--save",
            "none",
            "--json",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["captured"], 2, "{report}");
    let _ = std::fs::remove_dir_all(&frames);

    // A setting that points nowhere is an error naming it, not a quiet fallback.
    let out = gss()
        .env("GSS_SAMPLE_CLIP", "/nonexistent/clip")
        .args(["stream", "--save", "none"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sample clip: not found; looked at /nonexistent/clip ($GSS_SAMPLE_CLIP)"),
        "{err}"
    );
}

/// A clip of one repeated frame has no token change and no flicker; a different frame after it
/// changes tokens. Frames in the dataset layout, so the stream finds their labels.
#[test]
fn stream_reports_token_change_and_flicker_between_neighbouring_frames() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip");
    let report_for = |tag: &str, frames: &[&str], extra: &[&str]| -> serde_json::Value {
        let root =
            std::env::temp_dir().join(format!("gss-cli-temporal-{tag}-{}", std::process::id()));
        for dir in ["images/seq", "labels/seq"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for (i, f) in frames.iter().enumerate() {
            std::fs::copy(
                clip.join(format!("images/seq/{f}.jpg")),
                root.join(format!("images/seq/frame_{i:06}.jpg")),
            )
            .unwrap();
            std::fs::copy(
                clip.join(format!("labels/seq/{f}.png")),
                root.join(format!("labels/seq/frame_{i:06}.png")),
            )
            .unwrap();
        }
        // Global options come before the command, the stream's own after it.
        let streams = |a: &&&str| **a == "--stabilise" || **a == "--reuse";
        let out = gss()
            .args(extra.iter().take_while(|a| !streams(a)))
            .args([
                "stream",
                "--lossless",
                "--fps",
                "0",
                "--save",
                "none",
                "--json",
                "--threads",
                "1",
                "--dir",
            ])
            .arg(root.join("images/seq"))
            .args(extra.iter().skip_while(|a| !streams(a)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let still = report_for("still", &["frame_000000"; 3], &[]);
    assert_eq!(
        (
            still["token_pairs"].as_u64(),
            still["token_change_pct"].as_f64()
        ),
        (Some(2), Some(0.0)),
        "{still}"
    );
    assert_eq!(still["flicker_pct"].as_f64(), Some(0.0), "{still}");
    let cut = report_for(
        "cut",
        &["frame_000000", "frame_000000", "frame_000060"],
        &[],
    );
    let change = cut["token_change_pct"].as_f64().unwrap();
    assert!(change > 0.0 && change < 100.0, "{cut}");
    // The stabiliser with a margin no new token can beat keeps the first frame's grid.
    let logits = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gss-tiny-logits");
    let model = logits.to_str().unwrap();
    let frozen = report_for(
        "frozen",
        &["frame_000000", "frame_000060", "frame_000100"],
        &["--model", model, "--stabilise", "1000"],
    );
    assert_eq!(frozen["token_change_pct"].as_f64(), Some(0.0), "{frozen}");
    let free = report_for(
        "free",
        &["frame_000000", "frame_000060", "frame_000100"],
        &["--model", model],
    );
    assert!(free["token_change_pct"].as_f64().unwrap() > 0.0, "{free}");

    // Token reuse: a still clip is decoded once (then nothing: 100, 0, 0 % of a full decode);
    // tiles decoded whatever they cost give the masks of full decodes.
    assert_eq!(
        still["decoded_pct"].as_f64().map(|d| d.round()),
        Some(33.0),
        "{still}"
    );
    let off = report_for(
        "cut-off",
        &["frame_000000", "frame_000060", "frame_000100"],
        &["--reuse", "off"],
    );
    let tiles = report_for(
        "cut-tiles",
        &["frame_000000", "frame_000060", "frame_000100"],
        &["--reuse", "always"],
    );
    assert_eq!(off["decoded_pct"].as_f64(), Some(100.0), "{off}");
    assert!(tiles["decoded_pct"].as_f64().unwrap() != 100.0, "{tiles}");
    assert_eq!(
        off["masks_digest"], tiles["masks_digest"],
        "reuse changed the masks"
    );
}

#[test]
fn segment_writes_the_confidence_grid_for_a_logits_prior() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::temp_dir().join(format!("gss-cli-confidence-{}", std::process::id()));
    let out = gss()
        .arg("--model")
        .arg(root.join("tests/fixtures/gss-tiny-logits"))
        .args(["--backend", "cpu", "segment", "--confidence", "--out"])
        .arg(&out_dir)
        .arg(root.join("tests/fixtures/reference/street8_test_000000.png"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let grid = image::open(out_dir.join("street8_test_000000.confidence.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(grid.dimensions(), (16, 8), "one pixel per token cell");
    assert!(grid.as_raw().iter().any(|&v| v < 255));
}

#[test]
fn eval_splits_the_pixels_by_the_priors_confidence() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |model: &str| {
        gss()
            .arg("--model")
            .arg(root.join(model))
            .args([
                "--backend",
                "cpu",
                "eval",
                "--confidence-split",
                "--json",
                "--split",
                "test",
                "--data",
            ])
            .arg(root.join("tests/fixtures/street8-tiny"))
            .output()
            .unwrap()
    };
    let out = run("tests/fixtures/gss-tiny-logits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let split = &report["confidence_split"];
    let (high, low) = (
        split["confident"]["pixels"].as_u64().unwrap(),
        split["unsure"]["pixels"].as_u64().unwrap(),
    );
    let labelled: u64 = report["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        high + low,
        labelled,
        "every labelled pixel is in one half: {split}"
    );
    assert!(
        high * 10 >= labelled * 3 && low * 10 >= labelled * 3,
        "two halves: {split}"
    );
    // A prior with its ArgMax inside has no confidence to split by: a clear error.
    let out = run("tests/fixtures/gss-tiny");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("token logits"));
}

#[test]
fn stream_logs_to_a_rerun_recording_or_says_which_feature_it_needs() {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/street8-clip/images/seq");
    let pattern = format!("{}/frame_00000[0-2].jpg", clip.display());
    let rrd = std::env::temp_dir().join(format!("gss-cli-rerun-{}.rrd", std::process::id()));
    let out = gss()
        .args([
            "stream",
            "--dir",
            &pattern,
            "--lossless",
            "--fps",
            "0",
            "--save",
            "none",
            "--json",
            "--threads",
            "1",
            "--rerun",
        ])
        .arg(&rrd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if cfg!(feature = "rerun") {
        assert!(out.status.success(), "{stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["published"], 3);
        // The logger is real-time, so a slow disk could cost it frames: they are counted.
        assert_eq!(
            report["rerun"]["logged"].as_u64().unwrap()
                + report["rerun"]["dropped"].as_u64().unwrap(),
            3,
            "{report}"
        );
        assert!(rrd.metadata().is_ok_and(|m| m.len() > 0));
        std::fs::remove_file(&rrd).ok();
    } else {
        assert!(!out.status.success());
        assert!(stderr.contains("--features rerun"), "{stderr}");
    }
}
