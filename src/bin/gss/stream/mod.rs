//! `gss stream`: a source (camera, files, the bundled clip) through the pipeline, with overlays
//! or masks saved, live statistics, and at the end a summary (and the mIoU when the frames have
//! labels, as the sample clip does). This module runs the steps in order; the flags, the setup,
//! the outputs, the consumer's figures and the summary each have a module of their own.

mod args;
mod outputs;
mod report;
mod setup;
mod tally;

use std::time::Duration;

use anyhow::{Context, Result};

use gss::pipeline::Pipeline;
use gss::sink::stats::LiveWindow;

use crate::RunConfig;
pub use args::Args;
use args::Save;
use outputs::{Outputs, Tap};
use report::{Header, Report};
use setup::Plan;
use tally::Tally;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn run(config: &RunConfig, args: Args) -> Result<()> {
    let zenoh = outputs::zenoh_options(&args);
    if zenoh.is_some() && !cfg!(feature = "zenoh") {
        // Before the model loads: the flag cannot work in this build whatever else happens.
        anyhow::bail!("--zenoh/--ros2: this gss was built without the zenoh feature; rebuild with --features zenoh");
    }
    // A camera saves nothing unless asked: left running, it would fill the disk.
    let save = args.save.unwrap_or(if args.camera.is_some() {
        Save::None
    } else {
        Save::Overlays
    });
    let (source, frame_size) = setup::open_source(&args)?;
    let source_name = source.name().to_string();
    let (package, fit) = config.fitted(config.open_package()?, frame_size)?;
    let rerun = outputs::open_rerun(&args, &package)?;
    let plan = Plan::new(config, &args, &package);
    let mut tally = Tally::new(&package);
    let keep_frames = outputs::need_frames(&args, save, rerun.is_some());
    let (mut pipeline, cold_start) =
        setup::build_pipeline(config, &args, &plan, package, fit, keep_frames)?;
    // The saver and scorer: in real time it may fall behind and lose frames of its own
    // (counted), without slowing the stages.
    let consumer = Tap::subscribe(&mut pipeline, 4, plan.policy);
    let mut outputs = Outputs::subscribe(&mut pipeline, rerun, zenoh.as_ref())?;
    let stop = pipeline.stop_handle();
    ctrlc::set_handler(move || stop.stop()).context("installing the Ctrl-C handler")?;
    outputs.start_live(&mut pipeline, &args, &source_name)?;
    outputs.start_saver(&args, save, pipeline.package())?;
    log::info!(
        "streaming {source_name} ({}, {}); Ctrl-C stops",
        plan.policy_name(),
        plan.mode_name()
    );
    pipeline.run(source)?;

    consume(&pipeline, &consumer, &mut outputs, &mut tally, &args)?;
    let stats = pipeline.join()?;
    let finished = outputs.finish(&stats);
    let header = Header {
        plan: &plan,
        source: source_name,
        cold_start,
    };
    let report = Report::new(header, &stats, consumer.dropped(&stats), tally, finished);
    if args.json {
        report.print_json()
    } else {
        report.print_text();
        Ok(())
    }
}

/// The consumer's loop until the stream ends: each frame is counted, saved and scored, a line
/// of live figures goes to stderr once a second, and `--max-frames` stops the stream.
fn consume(
    pipeline: &Pipeline,
    consumer: &Tap,
    outputs: &mut Outputs,
    tally: &mut Tally,
    args: &Args,
) -> Result<()> {
    let stop = pipeline.stop_handle();
    let mut window = LiveWindow::new(Duration::from_secs(1));
    for mask in consumer.frames.iter() {
        tally.count(&mask);
        outputs.save(&mask);
        tally.score(&mask)?;
        if let Some(w) = window.record(mask.latency).filter(|_| !args.json) {
            let s = pipeline.stats();
            eprintln!("fps {:5.1} | latency p50 {:6.1} ms p95 {:6.1} ms | published {} dropped {} corrupt {}",
                w.fps, w.latency_p50_ms, w.latency_p95_ms, s.published, s.dropped() + consumer.dropped(&s), s.corrupt);
        }
        if args.max_frames.is_some_and(|n| tally.received >= n) {
            stop.stop();
        }
    }
    Ok(())
}
