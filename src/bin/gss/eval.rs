//! `gss eval`: segments a labelled dataset split and reports per-class IoU, mIoU and mAcc, defined
//! as `gss-convert eval` defines them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use image::GrayImage;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use gss::dataset::{load_label, samples};
use gss::eval::{ConfidenceSplit, ConfusionMatrix};
use gss::load_rgb;

use crate::RunConfig;

#[derive(clap::Args)]
pub struct Args {
    /// Dataset root: images/<split>/*.png|jpg, labels/<split>/*.png (class ids, 255 = unlabeled)
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value = "test")]
    split: String,
    /// Evaluate only the first N images (sorted by name)
    #[arg(long)]
    limit: Option<usize>,
    /// Print the report as JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Also score the most and the least confident halves of the pixels apart (the prior's
    /// confidence per token cell; priors that end with token logits)
    #[arg(long)]
    confidence_split: bool,
}

fn pct(x: f64) -> serde_json::Value {
    if x.is_nan() {
        serde_json::Value::Null
    } else {
        json!((x * 1e4).round() / 1e4)
    }
}

fn cell(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.2}")
    }
}

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    let package = config.open_package()?;
    let names: Vec<String> = package
        .manifest
        .classes
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let model_name = package.manifest.name.clone();
    let mut samples = samples(&args.data, &args.split)
        .with_context(|| format!("reading split {:?} of {}", args.split, args.data.display()))?;
    if let Some(n) = args.limit {
        samples.truncate(n);
    }
    let first_size = match samples.first() {
        Some(s) => Some(
            image::image_dimensions(&s.image)
                .with_context(|| format!("reading {}", s.image.display()))?,
        ),
        None => None,
    };
    let mut seg = config.segmenter(package, first_size, args.confidence_split)?;
    let grid = seg.package().manifest.prior.grid;
    let mut split = args
        .confidence_split
        .then(|| ConfidenceSplit::new(names.len()));
    let mut cm = ConfusionMatrix::new(names.len());
    let mut pred = GrayImage::new(0, 0);
    let mut model_time = Duration::ZERO;
    let bar = ProgressBar::new(samples.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "eval {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for sample in &samples {
        let image = load_rgb(&sample.image)?;
        let label = load_label(&sample.label)?;
        anyhow::ensure!(
            label.dimensions() == image.dimensions(),
            "{}: label is {:?} but its image is {:?}",
            sample.label.display(),
            label.dimensions(),
            image.dimensions()
        );
        seg.segment_into(&image, &mut pred)?;
        let t = seg.timings;
        model_time += t.total();
        cm.update(pred.as_raw(), label.as_raw())
            .with_context(|| format!("scoring {}", sample.label.display()))?;
        if let Some(split) = &mut split {
            let confidence = seg.confidence().context(
                "--confidence-split needs the prior's confidence: a package whose prior ends with token logits",
            )?;
            split.update(
                pred.as_raw(),
                label.as_raw(),
                pred.width() as usize,
                confidence,
                grid,
            )?;
        }
        bar.inc(1);
        bar.set_message(format!("mIoU {:.2}", cm.miou()));
    }
    bar.finish_and_clear();
    let (iou, acc) = (cm.iou(), cm.acc());
    let ms_per_image = model_time.as_secs_f64() * 1e3 / samples.len() as f64;
    let halves = split.as_ref().map(ConfidenceSplit::halves);
    let halves_json = halves.as_ref().map(|(high, low, threshold)| json!({
        "threshold": threshold,
        "confident": {"pixels": high.pixels(), "mIoU": pct(high.miou()), "aAcc": pct(high.pixel_acc())},
        "unsure": {"pixels": low.pixels(), "mIoU": pct(low.miou()), "aAcc": pct(low.pixel_acc())},
    }));
    if args.json {
        let per_class: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    n.clone(),
                    json!({"IoU": pct(100.0 * iou[i]), "Acc": pct(100.0 * acc[i])}),
                )
            })
            .collect();
        let confusion: Vec<Vec<u64>> = (0..names.len())
            .map(|g| (0..names.len()).map(|p| cm.count(g, p)).collect())
            .collect();
        let report = json!({
            "model": model_name, "variant": config.variant.as_deref().unwrap_or("fp32"),
            "data": args.data, "split": args.split, "images": samples.len(),
            "mIoU": pct(cm.miou()), "mAcc": pct(cm.macc()), "aAcc": pct(cm.pixel_acc()),
            "per_class": per_class, "confusion": confusion, "class_names": names,
            "fit": seg.fit().name(), "threads": config.threads_in_effect(), "ms_per_image": ms_per_image,
            "confidence_split": halves_json,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{model_name} ({}) on {} split {:?}: {} images, fit {}, {:.1} ms per image, {} threads",
            config.variant.as_deref().unwrap_or("fp32"),
            args.data.display(),
            args.split,
            samples.len(),
            seg.fit(),
            ms_per_image,
            config.threads_in_effect()
        );
        println!("| class | IoU | Acc |\n|---|---:|---:|");
        for (i, n) in names.iter().enumerate() {
            println!(
                "| {n} | {} | {} |",
                cell(100.0 * iou[i]),
                cell(100.0 * acc[i])
            );
        }
        println!(
            "| **mIoU** | {} | |\n| **mAcc** | | {} |\n| **aAcc** | | {} |",
            cell(cm.miou()),
            cell(cm.macc()),
            cell(cm.pixel_acc())
        );
        if let Some((high, low, threshold)) = &halves {
            println!("\nby the prior's confidence (split at {threshold:.3}):\n| pixels | mIoU | aAcc |\n|---|---:|---:|");
            println!(
                "| most confident half ({}) | {} | {} |",
                high.pixels(),
                cell(high.miou()),
                cell(high.pixel_acc())
            );
            println!(
                "| least confident half ({}) | {} | {} |",
                low.pixels(),
                cell(low.miou()),
                cell(low.pixel_acc())
            );
        }
    }
    Ok(())
}
