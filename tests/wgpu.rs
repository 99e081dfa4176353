//! The wgpu backend against the tract CPU backend on the fixture and the bundled model.
//! Without an adapter these tests fail: the test script installs lavapipe (software Vulkan).
#![cfg(feature = "wgpu")]

use std::path::{Path, PathBuf};

use gss::engine::cpu::CpuBackend;
use gss::engine::wgpu::{adapters, check_coverage, plan_summary, WgpuBackend};
use gss::engine::{create_backend, Backend, BackendKind, BackendOptions, Graphs};
use gss::{load_rgb, Error, ModelPackage, Segmenter};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn reference_images() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/reference"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .filter(|p| !p.to_string_lossy().contains(".classes."))
        .collect();
    v.sort();
    v
}

fn gpu(package: &ModelPackage) -> WgpuBackend {
    assert!(
        !adapters().is_empty(),
        "no wgpu adapter: install a Vulkan driver (scripts/setup-system.sh installs Mesa's lavapipe)"
    );
    WgpuBackend::new(package, None).unwrap_or_else(|e| panic!("wgpu backend: {e}"))
}

/// Token and class-map agreement (%) of wgpu vs CPU over `images`.
fn agreement(dir: &str, images: &[PathBuf]) -> (f64, f64) {
    let package = ModelPackage::open(root().join(dir)).unwrap();
    let mut cpu = Segmenter::with_backend(
        package.clone(),
        Box::new(CpuBackend::new(&package, None).unwrap()),
    )
    .unwrap();
    // Segmenting takes the one-submission path, which leaves the tokens on the GPU; a second
    // backend reads them back for the token comparison.
    let mut wgpu = Segmenter::with_backend(package.clone(), Box::new(gpu(&package))).unwrap();
    let mut wgpu_tokens = gpu(&package);
    let mut pre = gss::frame_path::Preprocess::new(&package.manifest, package.manifest.input.fit);
    let (mut st, mut at, mut sc, mut ac) = (0, 0, 0, 0);
    for path in images {
        let image = load_rgb(path).unwrap();
        let a = cpu.segment(&image).unwrap();
        let b = wgpu.segment(&image).unwrap();
        let mut tokens = Vec::new();
        wgpu_tokens.run_prior(pre.run(&image), &mut tokens).unwrap();
        assert_eq!(cpu.tokens().len(), tokens.len());
        st += cpu
            .tokens()
            .iter()
            .zip(&tokens)
            .filter(|(x, y)| x == y)
            .count();
        at += cpu.tokens().len();
        sc += a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .filter(|(x, y)| x == y)
            .count();
        ac += a.as_raw().len();
    }
    let pct = |s: usize, a: usize| 100.0 * s as f64 / a as f64;
    (pct(st, at), pct(sc, ac))
}

#[test]
fn fixture_model_agrees_with_cpu() {
    let (tok, cls) = agreement("tests/fixtures/gss-tiny", &reference_images());
    eprintln!("gss-tiny: tokens {tok:.3} %, class map {cls:.3} %");
    assert!(tok >= 99.5, "token agreement {tok:.3} %");
    assert!(cls >= 99.5, "class-map agreement {cls:.3} %");
}

/// A prior that ends with token logits: the GPU appends its own ArgMax and keeps the grid there.
#[test]
fn fixture_logits_model_agrees_with_cpu() {
    let (tok, cls) = agreement("tests/fixtures/gss-tiny-logits", &reference_images());
    eprintln!("gss-tiny-logits: tokens {tok:.3} %, class map {cls:.3} %");
    assert!(tok >= 99.5, "token agreement {tok:.3} %");
    assert!(cls >= 99.5, "class-map agreement {cls:.3} %");
}

#[test]
fn bundled_models_agree_with_cpu() {
    let images = reference_images();
    for dir in ["models/gss-edge-street8", "models/gss-edge-street8-dense"] {
        let (tok, cls) = agreement(dir, &images[..3.min(images.len())]);
        eprintln!("{dir}: tokens {tok:.3} %, class map {cls:.3} %");
        assert!(tok >= 99.5, "{dir}: token agreement {tok:.3} %");
        assert!(cls >= 99.5, "{dir}: class-map agreement {cls:.3} %");
    }
}

#[test]
fn one_submission_run_matches_the_two_stages() {
    let package = ModelPackage::open(root().join("tests/fixtures/gss-tiny")).unwrap();
    let mut b = gpu(&package);
    let m = &package.manifest;
    let image: Vec<f32> = (0..3 * m.input.height * m.input.width)
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect();
    let (mut tokens, mut staged, mut fused) = (Vec::new(), Vec::new(), Vec::new());
    b.run_prior(&image, &mut tokens).unwrap();
    b.run_decoder(&tokens, &mut staged).unwrap();
    let mut untouched = Vec::new();
    b.run(&image, &mut untouched, &mut fused).unwrap();
    assert_eq!(
        staged, fused,
        "run keeps tokens on the device and must give the same maskige"
    );
    // Frames reuse every buffer: a second run gives the same result.
    let mut again = Vec::new();
    b.run(&image, &mut untouched, &mut again).unwrap();
    assert_eq!(fused, again);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let package = ModelPackage::open(root().join("tests/fixtures/gss-tiny")).unwrap();
    let mut b = gpu(&package);
    let mut tokens = Vec::new();
    assert!(matches!(
        b.run_prior(&[0.0; 5], &mut tokens),
        Err(Error::Usage { .. })
    ));
    let grid = package.manifest.prior.grid;
    let mut bad = vec![0i64; grid[0] * grid[1]];
    bad[3] = package.manifest.prior.codebook_size as i64;
    let mut maskige = Vec::new();
    let err = b.run_decoder(&bad, &mut maskige).unwrap_err();
    assert!(err.chain().contains("codebook"), "{}", err.chain());
    bad[3] = -1;
    assert!(b.run_decoder(&bad, &mut maskige).is_err());
}

#[test]
fn int8_variant_is_reported_unsupported_and_auto_falls_back() {
    let package = ModelPackage::open(root().join("tests/fixtures/gss-tiny")).unwrap();
    let err = check_coverage(&package, Some("int8")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedOp {
                backend: "wgpu",
                ..
            }
        ),
        "{err}"
    );
    let err = WgpuBackend::new(&package, Some("int8")).err().unwrap();
    assert!(matches!(err, Error::UnsupportedOp { .. }), "{err}");
    assert!(check_coverage(&package, None).is_ok());
    let auto = create_backend(
        &package,
        &BackendOptions {
            kind: BackendKind::Auto,
            variant: Some("int8".into()),
            ..BackendOptions::default()
        },
        Graphs::Both,
    )
    .unwrap();
    assert!(auto.name().starts_with("cpu"), "{}", auto.name());
    let forced = create_backend(
        &package,
        &BackendOptions {
            kind: BackendKind::Wgpu,
            ..BackendOptions::default()
        },
        Graphs::Both,
    )
    .unwrap();
    assert!(forced.name().starts_with("wgpu"), "{}", forced.name());
}

/// Dispatches a graph needs at most once every elementwise op (Relu, Clip, Add) is folded into its
/// producer: one per other ONNX node, plus one per DepthToSpace (tract lowers it to a reshape and
/// an axis move that may not merge into one permute).
fn dispatch_bound(path: &Path) -> usize {
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx().model_for_path(path).unwrap();
    let names: Vec<String> = model
        .nodes()
        .iter()
        .map(|n| n.op.name().to_string())
        .collect();
    let kept = names
        .iter()
        .filter(|n| {
            !matches!(
                n.as_str(),
                "Relu" | "Clip" | "Add" | "Const" | "Source" | "Constant"
            )
        })
        .count();
    kept + names.iter().filter(|n| n.contains("DepthToSpace")).count()
}

#[test]
fn bundled_graphs_are_fused() {
    for dir in ["models/gss-edge-street8", "models/gss-edge-street8-dense"] {
        let package = ModelPackage::open(root().join(dir)).unwrap();
        let (prior, decoder, fused) = plan_summary(&package, None).unwrap();
        let (prior_path, decoder_path) = package.graph_files(None).unwrap();
        // a logits prior gets the runtime's ArgMax appended
        let want_prior =
            dispatch_bound(&prior_path) + usize::from(!package.manifest.prior.argmax_in_graph());
        let want_decoder = dispatch_bound(&decoder_path);
        eprintln!("{dir}: prior {prior} dispatches (at most {want_prior}), decoder {decoder} (at most {want_decoder}), {fused} nodes fused away");
        // every Clip/Relu/Add must have been folded into a producer
        assert!(prior <= want_prior, "{dir}: prior has {prior} dispatches");
        assert!(
            decoder <= want_decoder,
            "{dir}: decoder has {decoder} dispatches"
        );
        assert!(fused > 0);
    }
}
