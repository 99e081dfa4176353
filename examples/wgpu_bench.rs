//! Per-stage timings and agreement of the wgpu backend against the CPU backend on one package:
//! `cargo run --release --features wgpu --example wgpu_bench -- models/gss-edge-street8 [frames]`.

use std::time::Instant;

use gss::engine::cpu::CpuBackend;
use gss::engine::wgpu::WgpuBackend;
use gss::engine::Backend;
use gss::ModelPackage;

fn main() -> anyhow::Result<()> {
    env_logger::init();
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .unwrap_or_else(|| "models/gss-edge-street8".into());
    let frames: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let package = ModelPackage::open(&dir)?;
    let m = &package.manifest;
    let n = 3 * m.input.height * m.input.width;
    // A smooth synthetic image in the normalised range (deterministic, no files needed).
    let image: Vec<f32> = (0..n)
        .map(|i| ((i % 97) as f32 / 48.0 - 1.0) * 1.5)
        .collect();
    let t = Instant::now();
    let mut gpu = WgpuBackend::new(&package, None)?;
    println!(
        "{}: loaded in {:.0} ms",
        gpu.name(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut cpu = CpuBackend::new(&package, None)?;
    let (mut tok, mut mask) = (Vec::new(), Vec::new());
    for (name, b) in [
        ("cpu", &mut cpu as &mut dyn Backend),
        ("wgpu", &mut gpu as &mut dyn Backend),
    ] {
        b.run_prior(&image, &mut tok)?;
        b.run_decoder(&tok, &mut mask)?; // warm-up
        let (mut p, mut d, mut fused) = (0.0, 0.0, 0.0);
        for _ in 0..frames {
            let t0 = Instant::now();
            b.run_prior(&image, &mut tok)?;
            let t1 = Instant::now();
            b.run_decoder(&tok, &mut mask)?;
            let t2 = Instant::now();
            b.run(&image, &mut tok, &mut mask)?;
            p += (t1 - t0).as_secs_f64();
            d += (t2 - t1).as_secs_f64();
            fused += t2.elapsed().as_secs_f64();
        }
        let ms = |s: f64| s * 1e3 / frames as f64;
        println!(
            "{name:5} prior {:8.1} ms  decoder {:8.1} ms  run (one submission) {:8.1} ms",
            ms(p),
            ms(d),
            ms(fused)
        );
    }
    Ok(())
}
