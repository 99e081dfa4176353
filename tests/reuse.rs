//! Token reuse is exact: over the whole sample clip, a stream that re-decodes only the tiles
//! near changed tokens publishes the same class maps, byte for byte, as one that decodes every
//! frame in full, and each MaskFrame says how much it decoded.

use std::path::{Path, PathBuf};

use gss::engine::reuse::Reuse;
use gss::engine::{create_backend, BackendKind, BackendOptions};
use gss::pipeline::{MaskFrame, Mode, Pipeline, PipelineOptions, Policy};
use gss::source::ImageFiles;
use gss::ModelPackage;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn stream(package: &str, mode: Mode, reuse: Reuse) -> Vec<MaskFrame> {
    let package = ModelPackage::open(root().join("models").join(package)).unwrap();
    let options = PipelineOptions {
        policy: Policy::Lossless,
        mode,
        ..PipelineOptions::default()
    };
    let backend = BackendOptions {
        kind: BackendKind::Cpu,
        threads: 1,
        reuse,
        ..BackendOptions::default()
    };
    let mut pipeline = Pipeline::new(package, options, |p, graphs| {
        create_backend(p, &backend, graphs)
    })
    .unwrap();
    let rx = pipeline.subscribe(4, Policy::Lossless);
    pipeline.run(ImageFiles::sample_clip().unwrap()).unwrap();
    let frames: Vec<MaskFrame> = rx.iter().collect();
    pipeline.join().unwrap();
    frames
}

fn assert_same_masks(package: &str, mode: Mode) {
    let full = stream(package, Mode::Sequential, Reuse::Off);
    let reused = stream(package, mode, Reuse::Always);
    assert_eq!(full.len(), 120, "every frame of the clip");
    assert_eq!(full.len(), reused.len());
    for (a, b) in full.iter().zip(&reused) {
        assert_eq!(a.source_index, b.source_index);
        assert!(
            a.classes.as_raw() == b.classes.as_raw(),
            "{package}: frame {} differs with reuse",
            a.source_index
        );
        assert_eq!(a.decoded_share, 1.0);
    }
    assert_eq!(
        reused[0].decoded_share, 1.0,
        "the first frame is decoded in full"
    );
    assert!(
        reused[1..].iter().all(|m| m.decoded_share != 1.0),
        "{package}: every later frame went through the tiles"
    );
}

#[test]
fn the_bundled_package_gives_identical_masks_over_the_clip_with_reuse() {
    assert_same_masks("gss-edge-street8", Mode::Pipelined);
}

#[test]
fn the_dense_package_gives_identical_masks_over_the_clip_with_reuse() {
    assert_same_masks("gss-edge-street8-dense", Mode::Sequential);
}
