//! `gss segment`: images (files, directories, globs) → class-id PNGs and colour overlays.

use std::path::PathBuf;

use anyhow::{Context, Result};
use image::{GrayImage, RgbImage};

use gss::load_rgb;
use gss::sink::png;
use gss::source::ImageFiles;

use crate::RunConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Image files, directories or glob patterns ("frames/*.jpg")
    #[arg(required = true)]
    paths: Vec<String>,
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Also write <stem>.overlay.png: the image blended with the class colours
    #[arg(long)]
    overlay: bool,
    /// Also write <stem>.confidence.png: the prior's confidence per token cell (grey 0-255 =
    /// probability 0-1 of the chosen token; priors that end with token logits)
    #[arg(long)]
    confidence: bool,
}

/// Expands directories (their images) and glob patterns through the same listing the stream's
/// file source uses; plain paths pass through so a missing file is reported by name when read.
fn collect_images(args: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for arg in args {
        let p = PathBuf::from(arg);
        if p.is_dir() {
            out.extend_from_slice(ImageFiles::from_dir(&p)?.paths());
        } else if !p.exists() && arg.contains(['*', '?', '[']) {
            let files = ImageFiles::from_glob(arg)
                .with_context(|| format!("{arg:?}: the pattern matches no file"))?;
            out.extend_from_slice(files.paths());
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    let package = config.open_package()?;
    let colors: Vec<[u8; 3]> = package.manifest.classes.iter().map(|c| c.color).collect();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let images = collect_images(&args.paths)?;
    // With --fit native the graphs are planned for the first image's shape; later images of
    // another shape are fitted to it (a stretch of a few percent).
    let first_size = images.iter().find_map(|p| image::image_dimensions(p).ok());
    let mut seg = config.segmenter(package, first_size, args.confidence)?;
    let grid = seg.package().manifest.prior.grid;
    let mut classes = GrayImage::new(0, 0);
    let mut blended = RgbImage::new(0, 0);
    let mut failures = 0;
    for path in &images {
        let result = load_rgb(path).map_err(anyhow::Error::from).and_then(|img| {
            seg.segment_into(&img, &mut classes)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
            png::write_classes(&args.out, stem, &classes)?;
            if args.overlay {
                gss::sink::blend_into(&img, &classes, &colors, &mut blended);
                png::write_overlay(&args.out, stem, &blended)?;
            }
            // Asked for on a prior without logits, the segmenter was refused at the start.
            if let Some(confidence) = seg.confidence() {
                png::write_confidence(&args.out, stem, confidence, grid)?;
            }
            let t = seg.timings;
            log::info!(
                "{}: prior {:.1} ms, decoder {:.1} ms, inverse {:.1} ms",
                path.display(),
                t.prior.as_secs_f64() * 1e3,
                t.decoder.as_secs_f64() * 1e3,
                t.inverse.as_secs_f64() * 1e3
            );
            Ok(())
        });
        if let Err(e) = result {
            failures += 1;
            // Reading and decoding errors start with the file already.
            let (shown, line) = (path.display().to_string(), crate::one_line(&e));
            match line.strip_prefix(&shown) {
                Some(rest) => eprintln!("gss: skipped {shown}{rest}"),
                None => eprintln!("gss: skipped {shown}: {line}"),
            }
        }
    }
    println!(
        "segmented {} of {} images into {}",
        images.len() - failures,
        images.len(),
        args.out.display()
    );
    anyhow::ensure!(failures < images.len(), "no image could be segmented");
    Ok(())
}
