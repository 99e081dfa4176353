//! The `gss` command line: `info` and `segment` (more subcommands follow the runtime issues).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use image::{GrayImage, RgbImage};

use gss::{load_rgb, ModelPackage, Segmenter};

#[derive(Parser)]
#[command(name = "gss", version, about = "Generative Semantic Segmentation on small machines")]
struct Cli {
    /// Model package directory (default: the bundled models/gss-edge-street8)
    #[arg(long, global = true, env = "GSS_MODEL")]
    model: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model package: classes, input size, grid, codebook, variants, metrics, files
    Info,
    /// Segment images; writes class-id PNGs (and colour overlays with --overlay)
    Segment {
        /// Image files or directories
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, default_value = "out")]
        out: PathBuf,
        #[arg(long)]
        overlay: bool,
        /// fp32 (default) or a variant listed in model.json, e.g. int8
        #[arg(long)]
        variant: Option<String>,
    },
}

fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8")
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("gss: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let model_dir = cli.model.unwrap_or_else(default_model);
    let package = ModelPackage::open(&model_dir).with_context(|| format!("loading model {}", model_dir.display()))?;
    match cli.command {
        Command::Info => info(&package),
        Command::Segment { paths, out, overlay, variant } => segment(package, &paths, &out, overlay, variant.as_deref()),
    }
}

fn info(p: &ModelPackage) -> Result<()> {
    let m = &p.manifest;
    println!("{} ({}) at {}", m.name, m.format, p.dir.display());
    println!("input      {}x{} {} {}, resize {}", m.input.height, m.input.width, m.input.channel_order, m.input.layout, m.input.resize);
    println!("tokens     grid {}x{}, codebook {}, decoder upsample x{}", m.prior.grid[0], m.prior.grid[1], m.prior.codebook_size, m.decoder.upsample);
    println!("classes    {}", m.classes.iter().map(|c| format!("{} {}", c.id, c.name)).collect::<Vec<_>>().join(", "));
    println!("variants   fp32{}", m.variants.keys().map(|k| format!(", {k}")).collect::<String>());
    for (name, f) in &m.files {
        println!("file       {name}: {:.2} MB", f.bytes as f64 / 1e6);
    }
    if let Some(obj) = m.metrics.as_object() {
        for key in ["mIoU", "reconstruction_mIoU", "discriminative_mIoU", "split"] {
            if let Some(v) = obj.get(key) {
                println!("metric     {key}: {v}");
            }
        }
    }
    Ok(())
}

fn collect_images(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading directory {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| matches!(e.extension().and_then(|x| x.to_str()).map(|x| x.to_ascii_lowercase()).as_deref(), Some("png" | "jpg" | "jpeg")))
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn segment(package: ModelPackage, paths: &[PathBuf], out: &Path, overlay: bool, variant: Option<&str>) -> Result<()> {
    let colors: Vec<[u8; 3]> = package.manifest.classes.iter().map(|c| c.color).collect();
    let mut seg = Segmenter::new(package, variant)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let images = collect_images(paths)?;
    let mut failures = 0;
    for path in &images {
        let result = load_rgb(path).map_err(anyhow::Error::from).and_then(|img| {
            let classes = seg.segment(&img)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            let dst = out.join(format!("{stem}.png"));
            classes.save(&dst).with_context(|| format!("writing {}", dst.display()))?;
            if overlay {
                let dst = out.join(format!("{stem}.overlay.png"));
                blend(&img, &classes, &colors).save(&dst).with_context(|| format!("writing {}", dst.display()))?;
            }
            let t = seg.timings;
            log::info!("{}: prior {:.1} ms, decoder {:.1} ms, inverse {:.1} ms", path.display(),
                t.prior.as_secs_f64() * 1e3, t.decoder.as_secs_f64() * 1e3, t.inverse.as_secs_f64() * 1e3);
            Ok(())
        });
        if let Err(e) = result {
            failures += 1;
            eprintln!("gss: skipped {}: {e:#}", path.display());
        }
    }
    println!("segmented {} of {} images into {}", images.len() - failures, images.len(), out.display());
    anyhow::ensure!(failures == 0 || failures < images.len(), "no image could be segmented");
    Ok(())
}

fn blend(image: &RgbImage, classes: &GrayImage, colors: &[[u8; 3]]) -> RgbImage {
    let mut out = image.clone();
    for (px, id) in out.pixels_mut().zip(classes.pixels()) {
        if let Some(c) = colors.get(id.0[0] as usize) {
            for ch in 0..3 {
                px.0[ch] = ((px.0[ch] as u16 + c[ch] as u16) / 2) as u8;
            }
        }
    }
    out
}
