//! A robot's side of the mask channel: subscribe to the stream and turn every class map into a
//! driving decision: how much of the band just ahead is drivable road, and whether a person,
//! vehicle or pole stands in the corridor the robot would drive through.
//! `cargo run --release --example robot_consumer -- [IMAGE_DIR]` (default: the bundled clip)

use anyhow::{Context, Result};
use gss::pipeline::{Pipeline, PipelineOptions, Policy};
use gss::source::ImageFiles;
use gss::{MaskFrame, ModelPackage};

/// Class ids the decision needs, looked up by name so another model's numbering works too.
struct Classes {
    road: u8,
    obstacles: Vec<(u8, String)>,
}

enum Decision {
    Go,
    Slow(String),
    Stop(String),
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Go => write!(f, "GO"),
            Decision::Slow(why) => write!(f, "SLOW: {why}"),
            Decision::Stop(why) => write!(f, "STOP: {why}"),
        }
    }
}

fn decide(mask: &MaskFrame, classes: &Classes) -> (f64, Decision) {
    let map = &mask.classes;
    let (w, h) = map.dimensions();
    // The lower third of the image is the ground the robot reaches next; its middle half is the
    // corridor it drives through.
    let band = (h * 2 / 3)..h;
    let corridor = (w / 4)..(w * 3 / 4);
    let (mut road, mut total) = (0u32, 0u32);
    let mut blocked = vec![0u32; classes.obstacles.len()];
    for y in band {
        for x in corridor.clone() {
            let id = map.get_pixel(x, y).0[0];
            total += 1;
            road += (id == classes.road) as u32;
            if let Some(i) = classes.obstacles.iter().position(|(o, _)| *o == id) {
                blocked[i] += 1;
            }
        }
    }
    let drivable = road as f64 / total.max(1) as f64;
    let worst = blocked
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .map(|(i, n)| {
            (
                classes.obstacles[i].1.clone(),
                *n as f64 / total.max(1) as f64,
            )
        });
    let decision = match worst {
        Some((name, share)) if share > 0.05 => Decision::Stop(format!(
            "{name} ahead ({:.0} % of the corridor)",
            100.0 * share
        )),
        _ if drivable < 0.5 => Decision::Slow(format!("only {:.0} % drivable", 100.0 * drivable)),
        Some((name, share)) if share > 0.01 => Decision::Slow(format!("{name} near the corridor")),
        _ => Decision::Go,
    };
    (drivable, decision)
}

fn main() -> Result<()> {
    let model_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8");
    let package = ModelPackage::open(&model_dir)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    let id = |name: &str| {
        package
            .manifest
            .classes
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.id as u8)
    };
    let classes = Classes {
        road: id("road").context("the model has no road class")?,
        obstacles: ["person", "vehicle", "pole"]
            .iter()
            .filter_map(|n| Some((id(n)?, n.to_string())))
            .collect(),
    };
    let source = match std::env::args().nth(1) {
        Some(dir) => ImageFiles::from_dir(dir)?,
        None => ImageFiles::sample_clip()?,
    }
    .with_fps(15.0)?;

    let mut pipeline = Pipeline::new(package, PipelineOptions::default(), |p, graphs| {
        Ok(Box::new(gss::engine::cpu::CpuBackend::with_graphs(
            p, None, graphs,
        )?))
    })?;
    // A robot wants the newest mask, not a backlog: one slot, oldest dropped.
    let masks = pipeline.subscribe(1, Policy::RealTime);
    pipeline.run(source)?;
    for mask in masks.iter() {
        let (drivable, decision) = decide(&mask, &classes);
        println!(
            "frame {:4}  latency {:5.1} ms  drivable {:3.0} %  {}",
            mask.source_index,
            mask.latency.as_secs_f64() * 1e3,
            100.0 * drivable,
            decision
        );
    }
    let stats = pipeline.join()?;
    println!(
        "published {} of {} frames ({} dropped to stay real-time)",
        stats.published,
        stats.captured,
        stats.dropped()
    );
    Ok(())
}
