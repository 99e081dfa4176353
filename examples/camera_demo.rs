//! A Raspberry Pi camera demo: a V4L2 camera through the pipeline, an overlay written every
//! second (`out/latest.png`, which an image viewer can keep open) and live statistics.
//! `cargo run --release --features v4l --example camera_demo -- [DEVICE] [WIDTHxHEIGHT]`
//! (CSI camera modules: run it under `libcamerify` from the libcamera-v4l2 package.)

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gss::pipeline::{Pipeline, PipelineOptions, Policy};
use gss::source::{Camera, CameraOptions};
use gss::ModelPackage;

fn main() -> Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    // Optional: the allocator thresholds and the tract kernel family `gss tune` measured, as the
    // gss binary applies them (the library changes no process-wide state on its own).
    gss::process::configure();
    let device = std::env::args().nth(1).unwrap_or_else(|| "0".into());
    let (width, height) = match std::env::args().nth(2) {
        Some(size) => {
            let (w, h) = size
                .split_once('x')
                .context("size must look like 640x480")?;
            (w.parse()?, h.parse()?)
        }
        None => (640, 480),
    };
    let model_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8");
    let package = ModelPackage::open(&model_dir)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    let colors: Vec<[u8; 3]> = package.manifest.classes.iter().map(|c| c.color).collect();

    let mut options = CameraOptions::default();
    options.request.width = width;
    options.request.height = height;
    let camera =
        Camera::open(&device, options).with_context(|| format!("opening camera {device}"))?;
    println!("camera: {}", gss::source::FrameSource::name(&camera));

    let pipeline_options = PipelineOptions {
        keep_frames: true,
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(package, pipeline_options, |p, graphs| {
        Ok(Box::new(gss::engine::cpu::CpuBackend::with_graphs(
            p, None, graphs,
        )?))
    })?;
    let masks = pipeline.subscribe(2, Policy::RealTime);
    let stop = pipeline.stop_handle();
    ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    pipeline.run(camera)?;

    std::fs::create_dir_all("out").context("creating out/")?;
    let mut overlay = image::RgbImage::new(0, 0);
    let (mut last, mut frames) = (Instant::now(), 0u32);
    for mask in masks.iter() {
        frames += 1;
        if last.elapsed() >= Duration::from_secs(1) {
            if let Some(frame) = &mask.frame {
                gss::sink::blend_into(frame, &mask.classes, &colors, &mut overlay);
                overlay
                    .save("out/latest.png")
                    .context("writing out/latest.png")?;
            }
            let s = pipeline.stats();
            println!(
                "{:.1} fps, latency {:.0} ms, dropped {}, camera dropouts {}",
                frames as f64 / last.elapsed().as_secs_f64(),
                mask.latency.as_secs_f64() * 1e3,
                s.dropped(),
                s.source_errors
            );
            (last, frames) = (Instant::now(), 0);
        }
    }
    let stats = pipeline.join()?;
    println!(
        "captured {}, published {}, dropped {}",
        stats.captured,
        stats.published,
        stats.dropped()
    );
    Ok(())
}
