//! The library in twenty lines: one image in, a class map out, and the share of each class.
//! `cargo run --release --example segment_image -- [IMAGE] [MODEL_DIR]`

use std::path::PathBuf;

use anyhow::{Context, Result};
use gss::{load_rgb, ModelPackage, Segmenter};

fn main() -> Result<()> {
    // Optional: the allocator thresholds and the tract kernel family `gss tune` measured, as the
    // gss binary applies them (the library changes no process-wide state on its own).
    gss::process::configure();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let image_path = args
        .next()
        .unwrap_or_else(|| root.join("assets/street8-clip/images/seq/frame_000000.jpg"));
    let model_dir = args
        .next()
        .unwrap_or_else(|| root.join("models/gss-edge-street8"));

    let package = ModelPackage::open(&model_dir)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    let names: Vec<String> = package
        .manifest
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let mut segmenter = Segmenter::new(package, None)?;
    let image = load_rgb(&image_path)?;
    let classes = segmenter.segment(&image)?;

    let mut counts = vec![0usize; names.len()];
    classes.pixels().for_each(|p| counts[p.0[0] as usize] += 1);
    for (name, n) in names.iter().zip(&counts) {
        println!(
            "{name:>12}: {:5.1} %",
            100.0 * *n as f64 / classes.len() as f64
        );
    }
    classes.save("classes.png").context("writing classes.png")?;
    Ok(())
}
