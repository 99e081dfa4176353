//! `gss bench`: how fast the model runs here. Per-stage latency percentiles over many frames,
//! frames per second, peak resident memory, cold start (package open → first class map).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use image::{GrayImage, RgbImage};
use serde_json::json;

use gss::engine::cpu::{CpuBackend, GraphProfile};
use gss::frame_path::Preprocess;
use gss::sink::stats::{peak_rss_mb, percentile};
use gss::{load_rgb, StageTimings};

use crate::RunConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Timed frames
    #[arg(long, default_value_t = 100)]
    frames: usize,
    /// Untimed frames first (caches, allocator, thread pool)
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Image to run on (default: the first frame of the bundled sample clip, else random pixels)
    #[arg(long)]
    image: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Also time every node of both graphs (the CPU backend as it runs them: gss's kernels or
    /// tract's, same knobs and threads) and print where the time goes, per op and for the most
    /// expensive nodes
    #[arg(long)]
    profile: bool,
}

fn sample_image(path: Option<&PathBuf>, width: u32, height: u32) -> Result<RgbImage> {
    if let Some(p) = path {
        return Ok(load_rgb(p)?);
    }
    let clip = gss::source::files::sample_clip_dir().map(|d| d.join("frame_000000.jpg"));
    if let Some(clip) = clip.ok().filter(|c| c.is_file()) {
        return Ok(load_rgb(&clip)?);
    }
    // Deterministic noise: the model's speed does not depend on content.
    let mut state = 0x2545_f491_u32;
    Ok(RgbImage::from_fn(width, height, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    }))
}

/// p-th percentile (0..=100) by nearest rank, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let ms: Vec<f64> = sorted.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    percentile(&ms, p)
}

struct Stage {
    name: &'static str,
    pick: fn(&StageTimings) -> Duration,
}

const STAGES: [Stage; 6] = [
    Stage {
        name: "preprocess",
        pick: |t| t.preprocess,
    },
    Stage {
        name: "prior",
        pick: |t| t.prior,
    },
    Stage {
        name: "decoder",
        pick: |t| t.decoder,
    },
    Stage {
        name: "inverse",
        pick: |t| t.inverse,
    },
    Stage {
        name: "resize",
        pick: |t| t.resize,
    },
    Stage {
        name: "frame",
        pick: |t| t.preprocess + t.prior + t.decoder + t.inverse + t.resize,
    },
];

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    anyhow::ensure!(args.frames > 0, "--frames must be at least 1");
    let start = Instant::now();
    let package = config.open_package()?;
    let (w, h) = (
        package.manifest.input.width as u32,
        package.manifest.input.height as u32,
    );
    let model_name = package.manifest.name.clone();
    let image = sample_image(args.image.as_ref(), w, h).context("loading the benchmark image")?;
    let mut seg = config.segmenter(package, Some(image.dimensions()), false)?;
    let mut classes = GrayImage::new(0, 0);
    seg.segment_into(&image, &mut classes)?;
    let cold_start = start.elapsed();
    for _ in 0..args.warmup {
        seg.segment_into(&image, &mut classes)?;
    }
    let mut timings = Vec::with_capacity(args.frames);
    let wall = Instant::now();
    for _ in 0..args.frames {
        seg.segment_into(&image, &mut classes)?;
        timings.push(seg.timings);
    }
    let wall = wall.elapsed();
    let fps = args.frames as f64 / wall.as_secs_f64();
    let rss = peak_rss_mb();
    let rows: Vec<(&str, f64, f64, f64)> = STAGES
        .iter()
        .map(|s| {
            let mut d: Vec<Duration> = timings.iter().map(s.pick).collect();
            d.sort();
            let mean = d.iter().sum::<Duration>().as_secs_f64() * 1e3 / d.len() as f64;
            (
                s.name,
                percentile_ms(&d, 50.0),
                percentile_ms(&d, 95.0),
                mean,
            )
        })
        .collect();
    let variant = config.variant.as_deref().unwrap_or("fp32");
    let backend = seg.backend_name().to_string();
    let profiles = if args.profile {
        let mut cpu = CpuBackend::with_options(
            seg.package(),
            &config.backend_options(config.threads.unwrap_or(0)),
            gss::engine::Graphs::Both,
        )?;
        let mut pre = Preprocess::new(&seg.package().manifest, seg.fit());
        Some(cpu.profile(pre.run(&image), args.frames.min(20))?)
    } else {
        None
    };
    if args.json {
        let stages: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(n, p50, p95, mean)| {
                (
                    n.to_string(),
                    json!({"p50_ms": p50, "p95_ms": p95, "mean_ms": mean}),
                )
            })
            .collect();
        let report = json!({
            "model": model_name, "variant": variant, "backend": backend, "threads": config.threads_in_effect(),
            "input": [h, w], "image": [image.height(), image.width()], "frames": args.frames,
            "stages": stages, "fps": fps, "cold_start_ms": cold_start.as_secs_f64() * 1e3, "peak_rss_mb": rss,
            "profile": profiles.as_ref().map(|(p, d)| json!({"prior": profile_json(p), "decoder": profile_json(d)})),
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{model_name} ({variant}) on {backend}, {} threads, {} frames of {}x{} (model input {}x{})",
            config.threads_in_effect(), args.frames, image.width(), image.height(), w, h);
        println!("| stage | p50 ms | p95 ms | mean ms |\n|---|---:|---:|---:|");
        for (n, p50, p95, mean) in &rows {
            println!("| {n} | {p50:.2} | {p95:.2} | {mean:.2} |");
        }
        println!(
            "fps {fps:.1}, cold start {:.0} ms, peak RSS {}",
            cold_start.as_secs_f64() * 1e3,
            rss.map_or("n/a".to_string(), |r| format!("{r:.0} MB"))
        );
        if let Some((p, d)) = &profiles {
            print_profile("prior", p);
            print_profile("decoder", d);
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn profile_json(p: &GraphProfile) -> serde_json::Value {
    json!({
        "runs": p.runs,
        "total_ms": ms(p.total()),
        "ops": p.by_op().iter().map(|(op, n, t)| json!({"op": op, "nodes": n, "ms": ms(*t)})).collect::<Vec<_>>(),
        "nodes": p.nodes.iter().map(|n| json!({"name": n.name, "op": n.op, "ms": ms(n.mean)})).collect::<Vec<_>>(),
    })
}

fn print_profile(graph: &str, p: &GraphProfile) {
    let total = ms(p.total());
    println!(
        "\n{graph}: {total:.2} ms in nodes (mean of {} runs)",
        p.runs
    );
    println!("| op | nodes | ms | share |\n|---|---:|---:|---:|");
    for (op, n, t) in p.by_op() {
        println!(
            "| {op} | {n} | {:.2} | {:.0} % |",
            ms(t),
            100.0 * ms(t) / total
        );
    }
    println!("most expensive nodes:");
    for n in p.top_nodes(6) {
        println!(
            "  {:>6.2} ms  {:>3.0} %  {} ({})",
            ms(n.mean),
            100.0 * ms(n.mean) / total,
            n.name,
            n.op
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&d, 50.0), 5.0);
        assert_eq!(percentile_ms(&d, 95.0), 10.0);
        assert_eq!(percentile_ms(&d[..1], 95.0), 1.0);
        assert!(percentile_ms(&[], 50.0).is_nan());
    }
}
