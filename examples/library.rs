//! The README's library example, built by the test command so the README cannot drift from the
//! API: one image with `Segmenter`, then the sample clip through a `Pipeline`.
//! `cargo run --release --example library -- photo.jpg`

use anyhow::Result;
use gss::engine::{create_backend, BackendOptions};
use gss::pipeline::{PipelineOptions, Policy};
use gss::{load_rgb, source::ImageFiles, ModelPackage, Pipeline, Segmenter};

fn main() -> Result<()> {
    let photo = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "assets/street8-clip/images/seq/frame_000000.jpg".into());
    gss::process::configure(); // optional, once at start-up: the process-wide settings gss applies
                               // One image (model.json and every file's sha256 checked, the graphs planned once):
    let mut segmenter = Segmenter::new(ModelPackage::open("models/gss-edge-street8")?, None)?;
    let classes = segmenter.segment(&load_rgb(photo.as_ref())?)?; // u8 class ids, photo's size
    println!("{photo}: {:?} class map", classes.dimensions());
    // A stream: the same frame path on the pipeline's threads, class maps to each subscriber.
    let package = ModelPackage::open("models/gss-edge-street8")?;
    let mut pipeline = Pipeline::new(package, PipelineOptions::default(), |p, graphs| {
        create_backend(p, &BackendOptions::default(), graphs)
    })?;
    let masks = pipeline.subscribe(1, Policy::RealTime); // the newest frame; dropping it unsubscribes
    pipeline.run(ImageFiles::sample_clip()?.with_fps(15.0)?)?;
    for frame in masks.iter() {
        println!(
            "frame {} after {:?}: {:?}",
            frame.seq,
            frame.latency,
            frame.classes.dimensions()
        );
    }
    let stats = pipeline.join()?; // captured == published + dropped + failed
    println!("{stats:?}");
    Ok(())
}
