//! Long-run streaming benchmark: the bundled model over the sample clip, looped, for thousands of
//! frames, pipelined and sequential. Reports fps, latency percentiles and resident memory early
//! and at the end (it must stay flat: buffers are reused, channels are bounded).
//! `cargo bench --bench stream -- [FRAMES]` (default 2000 per mode).

use std::time::Instant;

use gss::engine::cpu::{self, CpuBackend};
use gss::engine::BackendOptions;
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::sink::stats::{percentile, process_memory_mb};
use gss::source::ImageFiles;
use gss::ModelPackage;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The settings the gss binary runs with, so figures match `gss bench`.
    gss::process::configure();
    let frames: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(Ok(2000), |a| a.parse())?;
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8");
    println!("| mode | threads/stage | frames | fps | latency p50 ms | p95 ms | RSS after 100 frames MB | RSS at end MB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in [Mode::Sequential, Mode::Pipelined] {
        let package = ModelPackage::open(&model)?;
        let options = PipelineOptions {
            policy: Policy::Lossless,
            mode,
            ..PipelineOptions::default()
        };
        let threads = if mode == Mode::Sequential {
            cpu::available_threads()
        } else {
            (cpu::available_threads() / 2).max(1)
        };
        let mut pipeline = Pipeline::new(package, options, |p, graphs| {
            let options = BackendOptions {
                threads,
                ..BackendOptions::default()
            };
            Ok(Box::new(CpuBackend::with_options(p, &options, graphs)?))
        })?;
        let masks = pipeline.subscribe(2, Policy::Lossless);
        let stop = pipeline.stop_handle();
        pipeline.run(ImageFiles::sample_clip()?.looping(true))?;
        let (mut latencies, mut received) = (Vec::new(), 0u64);
        let (mut rss_early, mut start) = (f64::NAN, Instant::now());
        for mask in masks.iter() {
            received += 1;
            if received == 100 {
                rss_early = process_memory_mb("VmRSS").unwrap_or(f64::NAN);
                start = Instant::now();
                latencies.clear();
            }
            latencies.push(mask.latency.as_secs_f64() * 1e3);
            if received == frames {
                stop.stop();
            }
        }
        let timed = received.saturating_sub(100) as f64;
        let fps = timed / start.elapsed().as_secs_f64();
        let rss_end = process_memory_mb("VmRSS").unwrap_or(f64::NAN);
        pipeline.join()?;
        latencies.sort_by(f64::total_cmp);
        println!("| {mode:?} | {threads} | {received} | {fps:.1} | {:.1} | {:.1} | {rss_early:.0} | {rss_end:.0} |",
            percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    }
    Ok(())
}
