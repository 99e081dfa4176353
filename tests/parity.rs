//! Parity with onnxruntime's reference outputs for the fixture model (written by
//! `scripts/make-fixtures.sh`), and the model package's failure modes.

use std::path::{Path, PathBuf};

use gss::{load_rgb, Error, ModelPackage, Segmenter};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[derive(serde::Deserialize)]
struct Case {
    image: String,
    tokens: String,
    classes: String,
}

#[derive(serde::Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[test]
fn tokens_and_class_maps_match_onnxruntime() {
    agreement_with_onnxruntime("gss-tiny");
}

/// Both CPU kernel sets (gss's own, and tract's), forced, whatever `auto` picks on this CPU.
#[test]
fn both_cpu_kernel_sets_match_onnxruntime() {
    for kernels in [gss::engine::Kernels::Gss, gss::engine::Kernels::Tract] {
        for package in ["gss-tiny", "gss-tiny-logits"] {
            let options = gss::engine::BackendOptions {
                kind: gss::engine::BackendKind::Cpu,
                kernels,
                ..Default::default()
            };
            agreement_with(package, &options);
        }
    }
}

/// The same weights exported with token logits (`--argmax runtime`): gss's own argmax must give
/// the tokens onnxruntime's ArgMax node gave.
#[test]
fn runtime_argmax_over_logits_matches_onnxruntime() {
    let package = ModelPackage::open(fixtures().join("gss-tiny-logits")).unwrap();
    assert!(!package.manifest.prior.argmax_in_graph());
    agreement_with_onnxruntime("gss-tiny-logits");
}

fn agreement_with_onnxruntime(package: &str) {
    agreement_with(package, &gss::engine::BackendOptions::default());
}

fn agreement_with(package: &str, options: &gss::engine::BackendOptions) {
    let dir = fixtures().join("reference");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    assert!(!reference.cases.is_empty());
    let package = ModelPackage::open(fixtures().join(package)).expect("fixture package loads");
    let mut seg =
        Segmenter::with_options(package, options).expect("the backend plans the fixture graphs");
    if options.kernels == gss::engine::Kernels::Gss {
        // Both graphs on gss's kernels, not a silent fallback to tract.
        assert_eq!(seg.backend_name(), "cpu (gss kernels)");
    }
    let (mut same_tok, mut all_tok, mut same_cls, mut all_cls) = (0usize, 0usize, 0usize, 0usize);
    for case in &reference.cases {
        let image = load_rgb(&dir.join(&case.image)).unwrap();
        let classes = seg.segment(&image).unwrap();
        let bytes = std::fs::read(dir.join(&case.tokens)).unwrap();
        let expected: Vec<i64> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as i64)
            .collect();
        assert_eq!(seg.tokens().len(), expected.len(), "{}", case.tokens);
        same_tok += seg
            .tokens()
            .iter()
            .zip(&expected)
            .filter(|(a, b)| a == b)
            .count();
        all_tok += expected.len();
        let expected_cls = image::open(dir.join(&case.classes)).unwrap().to_luma8();
        assert_eq!(classes.dimensions(), expected_cls.dimensions());
        same_cls += classes
            .as_raw()
            .iter()
            .zip(expected_cls.as_raw())
            .filter(|(a, b)| a == b)
            .count();
        all_cls += expected_cls.as_raw().len();
    }
    let tok = 100.0 * same_tok as f64 / all_tok as f64;
    let cls = 100.0 * same_cls as f64 / all_cls as f64;
    assert!(
        tok >= 99.9,
        "{:?} kernels: token agreement {tok:.3} %",
        options.kernels
    );
    assert!(
        cls >= 99.9,
        "{:?} kernels: class-map agreement {cls:.3} %",
        options.kernels
    );
}

/// A frame whose size differs from the model's goes through the fused bilinear resize, and the
/// class map comes back at the frame's size.
#[test]
fn frames_of_another_size_are_resized_both_ways() {
    let dir = fixtures().join("reference");
    let image = load_rgb(&dir.join("street8_test_000000.png")).unwrap();
    let (w, h) = image.dimensions();
    let big = image::imageops::resize(
        &image,
        w * 5 / 2,
        h * 5 / 2,
        image::imageops::FilterType::Nearest,
    );
    let mut seg = Segmenter::new(
        ModelPackage::open(fixtures().join("gss-tiny")).unwrap(),
        None,
    )
    .unwrap();
    let at_size = seg.segment(&image).unwrap();
    let classes = seg.segment(&big).unwrap();
    assert_eq!(classes.dimensions(), big.dimensions());
    // downscaling a nearest 2.5x upscale by bilinear sampling nearly restores the frame, so
    // the classes must mostly agree with the model-size frame's, sampled at pixel centres
    let mut same = 0usize;
    for (x, y, p) in classes.enumerate_pixels() {
        same += (p[0] == at_size.get_pixel(x * 2 / 5, y * 2 / 5)[0]) as usize;
    }
    let share = same as f64 / (classes.width() * classes.height()) as f64;
    assert!(share > 0.9, "only {:.1} % of pixels agree", 100.0 * share);
}

#[test]
fn int8_variant_agrees_with_fp32() {
    let dir = fixtures().join("reference");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let package = ModelPackage::open(fixtures().join("gss-tiny")).unwrap();
    let mut int8 =
        Segmenter::new(package.clone(), Some("int8")).expect("tract loads the QDQ variant");
    let mut fp32 = Segmenter::new(package, None).unwrap();
    let (mut same, mut all) = (0usize, 0usize);
    for case in &reference.cases {
        let image = load_rgb(&dir.join(&case.image)).unwrap();
        let (a, b) = (fp32.segment(&image).unwrap(), int8.segment(&image).unwrap());
        assert_eq!(a.dimensions(), b.dimensions());
        same += a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .filter(|(x, y)| x == y)
            .count();
        all += a.len();
    }
    // onnxruntime measures 99.7 % on these images (convert/tests/test_export.py); a broken
    // quantization (scales off by 10 %) falls to about 50 %.
    let share = 100.0 * same as f64 / all as f64;
    assert!(
        share >= 90.0,
        "int8 and fp32 class maps agree on only {share:.2} % of pixels"
    );
}

#[derive(serde::Deserialize)]
struct FitCase {
    fit: gss::Fit,
    classes: String,
    tokens: String,
}

#[derive(serde::Deserialize)]
struct FitReference {
    image: String,
    size: (u32, u32),
    cases: Vec<FitCase>,
}

/// A camera-sized frame (640×480, 4:3) into the 2:1 fixture model, under every fit policy,
/// against `gss-convert reference` (onnxruntime and `gss_convert.resize`, the same definition of
/// resizing in Python).
#[test]
fn a_640x480_frame_matches_the_python_reference_under_every_fit() {
    let dir = fixtures().join("frame-640x480");
    let reference: FitReference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let image = load_rgb(&dir.join(&reference.image)).unwrap();
    assert_eq!(image.dimensions(), reference.size);
    let fits: Vec<gss::Fit> = reference.cases.iter().map(|c| c.fit).collect();
    assert_eq!(
        fits,
        [gss::Fit::Stretch, gss::Fit::Crop, gss::Fit::Letterbox]
    );
    for case in &reference.cases {
        let package = ModelPackage::open(fixtures().join("gss-tiny")).unwrap();
        let mut seg = Segmenter::new(package, None).unwrap().with_fit(case.fit);
        let classes = seg.segment(&image).unwrap();
        let want = image::open(dir.join(&case.classes)).unwrap().to_luma8();
        assert_eq!(classes.dimensions(), want.dimensions(), "{}", case.fit);
        let bytes = std::fs::read(dir.join(&case.tokens)).unwrap();
        let tokens: Vec<i64> = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as i64)
            .collect();
        let same_tokens = seg
            .tokens()
            .iter()
            .zip(&tokens)
            .filter(|(a, b)| a == b)
            .count();
        let same_pixels = classes
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .filter(|(a, b)| a == b)
            .count();
        let unseen = |m: &image::GrayImage| {
            m.as_raw()
                .iter()
                .filter(|&&c| c == gss::frame_path::UNSEEN)
                .count()
        };
        assert_eq!(
            unseen(&classes),
            unseen(&want),
            "{}: the same pixels are outside what the model saw",
            case.fit
        );
        let (tok, cls) = (
            100.0 * same_tokens as f64 / tokens.len() as f64,
            100.0 * same_pixels as f64 / want.len() as f64,
        );
        assert!(
            tok >= 99.0 && cls >= 99.5,
            "{}: tokens {tok:.2} %, class map {cls:.2} % agree",
            case.fit
        );
    }
}

fn copy_package(tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("gss-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join("gss-tiny")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

#[test]
fn damaged_files_are_named() {
    let dir = copy_package("truncate");
    let f = dir.join("decoder.onnx");
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();
    let err = ModelPackage::open(&dir).unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(err.to_string().contains("decoder.onnx"));

    let dir = copy_package("flip");
    let f = dir.join("prior.onnx");
    let mut data = std::fs::read(&f).unwrap();
    data[100] ^= 0xff;
    std::fs::write(&f, &data).unwrap();
    let err = ModelPackage::open(&dir).unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");

    let dir = copy_package("missing");
    std::fs::remove_file(dir.join("prior.onnx")).unwrap();
    assert!(matches!(
        ModelPackage::open(&dir).unwrap_err(),
        Error::MissingFile { .. }
    ));
}

#[test]
fn manifest_failures_are_distinct_errors() {
    let dir = copy_package("manifest");
    let path = dir.join("model.json");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, original.replace("gss-model/1", "gss-model/2")).unwrap();
    assert!(matches!(
        ModelPackage::open(&dir).unwrap_err(),
        Error::UnsupportedFormat { .. }
    ));
    std::fs::write(&path, "{ not json").unwrap();
    assert!(matches!(
        ModelPackage::open(&dir).unwrap_err(),
        Error::ManifestParse { .. }
    ));
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["prior"]["grid"] = serde_json::json!([3, 3]);
    std::fs::write(&path, v.to_string()).unwrap();
    assert!(matches!(
        ModelPackage::open(&dir).unwrap_err(),
        Error::ManifestInvalid { .. }
    ));
    let err = ModelPackage::open(std::env::temp_dir().join("gss-no-such-model")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("model.json"));
}

#[test]
fn graphs_that_disagree_with_the_manifest_are_refused() {
    let dir = copy_package("contract");
    let path = dir.join("model.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases: [(&str, &str, serde_json::Value, &str); 3] = [
        (
            "prior",
            "input",
            serde_json::json!("pixels"),
            "input is named",
        ),
        (
            "decoder",
            "output",
            serde_json::json!("rgb"),
            "output is named",
        ),
        ("prior", "grid", serde_json::json!([4, 4]), "prior.onnx"),
    ];
    for (graph, key, value, expect) in cases {
        let mut v = original.clone();
        v[graph][key] = value.clone();
        if key == "grid" {
            // keep the manifest self-consistent so only the graph check can catch it
            v["decoder"]["upsample"] =
                serde_json::json!(v["input"]["height"].as_u64().unwrap() / 4);
            v["input"]["width"] = v["input"]["height"].clone();
        }
        std::fs::write(&path, v.to_string()).unwrap();
        let package = ModelPackage::open(&dir).unwrap();
        let err = Segmenter::new(package, None).err().unwrap();
        assert!(
            matches!(err, Error::GraphMismatch { .. }),
            "{graph}.{key}: {err}"
        );
        assert!(err.to_string().contains(expect), "{err}");
    }
}

#[test]
fn token_reuse_refuses_a_halo_smaller_than_the_decoders_reach_and_a_package_without_one() {
    use gss::engine::reuse::Reuse;
    use gss::engine::{create_backend, BackendKind, BackendOptions, Graphs};
    let dir = copy_package("halo");
    let path = dir.join("model.json");
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let options = BackendOptions {
        kind: BackendKind::Cpu,
        threads: 1,
        reuse: Reuse::Always,
        ..BackendOptions::default()
    };

    let mut v = original.clone();
    v["decoder"]["halo"] = serde_json::json!(1);
    std::fs::write(&path, v.to_string()).unwrap();
    let err = create_backend(
        &ModelPackage::open(&dir).unwrap(),
        &options,
        Graphs::Decoder,
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::GraphMismatch { .. }) && err.to_string().contains("decoder.halo 1"),
        "{err}"
    );

    let mut v = original.clone();
    v["decoder"].as_object_mut().unwrap().remove("halo");
    std::fs::write(&path, v.to_string()).unwrap();
    let package = ModelPackage::open(&dir).unwrap();
    assert_eq!(
        package.manifest.decoder.halo, None,
        "an older package without the field still loads"
    );
    // Asked for outright, reuse without a halo is refused; auto decodes every frame in full.
    let err = create_backend(&package, &options, Graphs::Decoder)
        .err()
        .unwrap();
    assert!(err.to_string().contains("decoder.halo"), "{err}");
    let auto = BackendOptions {
        reuse: Reuse::Auto,
        ..options
    };
    let mut backend = create_backend(&package, &auto, Graphs::Decoder).unwrap();
    let [h, w] = package.manifest.prior.grid;
    let mut maskige = Vec::new();
    for _ in 0..2 {
        backend.run_decoder(&vec![0; h * w], &mut maskige).unwrap();
        assert_eq!(
            backend.decoded_share(),
            1.0,
            "no halo: every frame decoded in full"
        );
    }
}

#[test]
fn unknown_variant_lists_the_available_ones() {
    let package = ModelPackage::open(fixtures().join("gss-tiny")).unwrap();
    let err = Segmenter::new(package, Some("fp16")).err().unwrap();
    assert!(err.to_string().contains("int8"), "{err}");
}

#[test]
fn corrupt_truncated_and_empty_images_are_errors() {
    let dir = std::env::temp_dir().join(format!("gss-img-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(load_rgb(&empty), Err(Error::Image { .. })));
    let garbage = dir.join("garbage.jpg");
    std::fs::write(&garbage, b"\xff\xd8\xff\xe0 not really a jpeg").unwrap();
    assert!(matches!(load_rgb(&garbage), Err(Error::Image { .. })));
    let good = std::fs::read(fixtures().join("reference").join("street8_test_000000.png")).unwrap();
    let truncated = dir.join("truncated.png");
    std::fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let err = load_rgb(&truncated).unwrap_err();
    assert!(err.to_string().contains("truncated.png"), "{err}");
    assert!(matches!(
        load_rgb(&dir.join("missing.png")),
        Err(Error::Io { .. })
    ));
}

/// Installs the fixture's ONNX inverse (written by `gss-convert inverse`) into a copy of the
/// package, with `output` as the graph output name model.json promises.
fn package_with_onnx_inverse(tag: &str, output: &str) -> PathBuf {
    let dir = copy_package(tag);
    let file = dir.join("inverse.onnx");
    std::fs::copy(fixtures().join("inverse/inverse.onnx"), &file).unwrap();
    let path = dir.join("model.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["maskige"]["inverse"] = serde_json::json!({"kind": "onnx", "file": "inverse.onnx", "input": "maskige", "output": output});
    v["files"]["inverse.onnx"] = serde_json::json!({
        "sha256": gss::model::sha256_file(&file).unwrap(),
        "bytes": std::fs::metadata(&file).unwrap().len(),
    });
    std::fs::write(&path, v.to_string()).unwrap();
    dir
}

/// Pixels on which two segmenters give the same class over the reference images, and of how many.
fn class_map_agreement(
    dir: &Path,
    reference: &Reference,
    a: &mut Segmenter,
    b: &mut Segmenter,
) -> (usize, usize) {
    let (mut same, mut all) = (0usize, 0usize);
    for case in &reference.cases {
        let image = load_rgb(&dir.join(&case.image)).unwrap();
        let x = a.segment(&image).unwrap();
        let y = b.segment(&image).unwrap();
        same += x
            .as_raw()
            .iter()
            .zip(y.as_raw())
            .filter(|(p, q)| p == q)
            .count();
        all += x.len();
    }
    (same, all)
}

#[test]
fn onnx_inverse_gives_the_nearest_colour_classes() {
    let dir = fixtures().join("reference");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let mut nearest = Segmenter::new(
        ModelPackage::open(fixtures().join("gss-tiny")).unwrap(),
        None,
    )
    .unwrap();
    let mut graph = Segmenter::new(
        ModelPackage::open(package_with_onnx_inverse("inverse", "classes")).unwrap(),
        None,
    )
    .unwrap();
    let (same, all) = class_map_agreement(&dir, &reference, &mut nearest, &mut graph);
    assert!(
        same as f64 / all as f64 >= 0.999,
        "{same} of {all} pixels agree"
    );
}

/// A linear inverse whose planes are the nearest-colour ones (`2p`, `-|p|²`, in the decoder's
/// output range) read from model.json and run by the runtime's loop gives the nearest-colour
/// classes; one with a row missing is refused before anything runs.
#[test]
fn linear_inverse_from_the_manifest_gives_the_nearest_colour_classes_and_a_short_one_is_refused() {
    let dir = fixtures().join("reference");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let linear_dir = copy_package("inverse-linear");
    let path = linear_dir.join("model.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let [lo, hi] = [0, 1].map(|i| v["decoder"]["output_range"][i].as_f64().unwrap());
    let planes: Vec<([f64; 3], f64)> = v["maskige"]["palette"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let p = [0, 1, 2].map(|i| lo + c[i].as_f64().unwrap() * (hi - lo) / 255.0);
            (p.map(|x| 2.0 * x), -p.iter().map(|x| x * x).sum::<f64>())
        })
        .collect();
    let weight: Vec<[f64; 3]> = planes.iter().map(|p| p.0).collect();
    let bias: Vec<f64> = planes.iter().map(|p| p.1).collect();
    v["maskige"]["inverse"] = serde_json::json!({"kind": "linear", "weight": weight, "bias": bias});
    std::fs::write(&path, v.to_string()).unwrap();
    let mut nearest = Segmenter::new(
        ModelPackage::open(fixtures().join("gss-tiny")).unwrap(),
        None,
    )
    .unwrap();
    let mut linear = Segmenter::new(ModelPackage::open(&linear_dir).unwrap(), None).unwrap();
    let (same, all) = class_map_agreement(&dir, &reference, &mut nearest, &mut linear);
    assert!(
        same as f64 / all as f64 >= 0.999,
        "{same} of {all} pixels agree"
    );

    v["maskige"]["inverse"] =
        serde_json::json!({"kind": "linear", "weight": &weight[1..], "bias": bias});
    std::fs::write(&path, v.to_string()).unwrap();
    let err = ModelPackage::open(&linear_dir).unwrap_err();
    assert!(
        matches!(err, Error::ManifestInvalid { .. }) && err.to_string().contains("weight rows"),
        "{err}"
    );
}

#[test]
fn onnx_inverse_that_disagrees_with_the_manifest_is_refused() {
    let package = ModelPackage::open(package_with_onnx_inverse("inverse-bad", "ids")).unwrap();
    let err = Segmenter::new(package, None).err().unwrap();
    assert!(
        matches!(err, Error::GraphMismatch { .. }) && err.to_string().contains("inverse.onnx"),
        "{err}"
    );
    let dir = copy_package("inverse-incomplete");
    let path = dir.join("model.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["maskige"]["inverse"] = serde_json::json!({"kind": "onnx", "file": "inverse.onnx"});
    std::fs::write(&path, v.to_string()).unwrap();
    // The typed manifest cannot hold an ONNX inverse without its input and output names.
    let err = ModelPackage::open(&dir).unwrap_err();
    assert!(
        matches!(err, Error::ManifestParse { .. }) && err.chain().contains("missing field `input`"),
        "{}",
        err.chain()
    );
}

#[test]
fn a_backend_planned_for_one_stage_refuses_the_other() {
    use gss::engine::{cpu::CpuBackend, Backend, Graphs};
    let package = ModelPackage::open(fixtures().join("gss-tiny")).unwrap();
    let mut prior_only = CpuBackend::with_graphs(&package, None, Graphs::Prior).unwrap();
    let err = prior_only.run_decoder(&[0], &mut Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("without the decoder graph"),
        "{err}"
    );
    let mut decoder_only = CpuBackend::with_graphs(&package, None, Graphs::Decoder).unwrap();
    assert!(decoder_only
        .run_prior(&[0.0], &mut Vec::new())
        .unwrap_err()
        .to_string()
        .contains("without the prior graph"));
}

/// `--fit native` on a package whose graphs are fully convolutional (the bundled dense one):
/// planned at the frame's aspect ratio, it segments a 640×480 frame everywhere, and agrees with
/// the stretched run at the exported size on most pixels (a wrong geometry would not).
#[test]
fn native_fit_runs_a_fully_convolutional_package_at_the_frames_aspect_ratio() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dense = ModelPackage::open(root.join("models/gss-edge-street8-dense")).unwrap();
    let image = load_rgb(&fixtures().join("frame-640x480/frame.png")).unwrap();
    assert_eq!(dense.native_size_for(640, 480), Some((320, 416)));
    let native = dense.at_input_size(320, 416).unwrap();
    assert_eq!(native.manifest.prior.grid, [40, 52]);
    let mut at_native = Segmenter::new(native, None)
        .unwrap()
        .with_fit(gss::Fit::Native);
    let mut stretched = Segmenter::new(dense.clone(), None)
        .unwrap()
        .with_fit(gss::Fit::Stretch);
    let (a, b) = (
        at_native.segment(&image).unwrap(),
        stretched.segment(&image).unwrap(),
    );
    assert_eq!(a.dimensions(), (640, 480));
    assert!(!a.as_raw().contains(&gss::frame_path::UNSEEN));
    let same = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| x == y)
        .count();
    let share = same as f64 / a.len() as f64;
    assert!(
        share > 0.85,
        "native and stretch agree on only {:.1} % of pixels",
        100.0 * share
    );
    // Not a multiple of 32, and a package exported for one size only, are refused by name.
    assert!(matches!(
        dense.at_input_size(330, 416),
        Err(Error::InvalidOption { .. })
    ));
    let bundled = ModelPackage::open(root.join("models/gss-edge-street8")).unwrap();
    let err = bundled.at_input_size(320, 416).unwrap_err();
    assert!(err.to_string().contains("--fit stretch"), "{err}");
    assert_eq!(bundled.native_size_for(640, 480), None);
}

/// The prior's confidence: the chosen token's probability per grid cell, for a prior that ends
/// with its logits; refused for one with the ArgMax inside; carried by the pipeline's frames.
#[test]
fn confidence_comes_with_logits_priors_only() {
    use gss::engine::{create_backend, BackendKind, BackendOptions};
    let image = load_rgb(&fixtures().join("reference/street8_test_000000.png")).unwrap();
    let asked = BackendOptions {
        kind: BackendKind::Cpu,
        confidence: true,
        threads: 1,
        ..BackendOptions::default()
    };
    let logits = ModelPackage::open(fixtures().join("gss-tiny-logits")).unwrap();
    let [gh, gw] = logits.manifest.prior.grid;
    let codes = logits.manifest.prior.codebook_size as f32;
    let mut seg = Segmenter::with_options(logits.clone(), &asked).unwrap();
    seg.segment(&image).unwrap();
    let confidence = seg
        .confidence()
        .expect("a logits prior gives confidence")
        .to_vec();
    assert_eq!(confidence.len(), gh * gw);
    // A probability of the most likely of `codes` tokens lies in [1/codes, 1].
    assert!(
        confidence
            .iter()
            .all(|&p| p >= 1.0 / codes - 1e-6 && p <= 1.0 + 1e-6),
        "{confidence:?}"
    );
    assert!(
        confidence.iter().any(|&p| p < 0.999),
        "not every cell is certain"
    );
    // Not asked for, or an ArgMax inside the graph: none.
    assert!(Segmenter::new(logits.clone(), None)
        .unwrap()
        .confidence()
        .is_none());
    // A prior with its ArgMax inside cannot give it: refused, naming what is missing.
    let argmax = ModelPackage::open(fixtures().join("gss-tiny")).unwrap();
    let err = Segmenter::with_options(argmax, &asked).err().unwrap();
    assert!(err.to_string().contains("token logits"), "{err}");
    // The pipeline's frames carry the same grid, in both modes.
    for mode in [
        gss::pipeline::Mode::Sequential,
        gss::pipeline::Mode::Pipelined,
    ] {
        let options = gss::pipeline::PipelineOptions {
            policy: gss::pipeline::Policy::Lossless,
            mode,
            ..Default::default()
        };
        let mut p = gss::Pipeline::new(logits.clone(), options, |pkg, graphs| {
            create_backend(pkg, &asked, graphs)
        })
        .unwrap();
        let rx = p.subscribe(2, gss::pipeline::Policy::Lossless);
        p.run(
            gss::source::ImageFiles::from_glob(&format!(
                "{}/reference/street8_test_000000.png",
                fixtures().display()
            ))
            .unwrap(),
        )
        .unwrap();
        let frames: Vec<_> = rx.iter().collect();
        p.join().unwrap();
        assert_eq!(frames.len(), 1);
        let got = frames[0]
            .confidence
            .as_ref()
            .expect("the frame carries the confidence");
        assert_eq!(got.as_slice(), confidence.as_slice(), "{mode:?}");
    }
}
