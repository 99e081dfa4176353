//! What the stream runs on and how: the frame source, the plan the flags settle (policy, mode,
//! threads per stage, token reuse) and the pipeline built from the package with those backend
//! options.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use gss::engine::reuse::Reuse;
use gss::engine::{create_backend, BackendOptions};
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};
use gss::source::{Camera, CameraOptions, FrameSource, ImageFiles};
use gss::{Fit, ModelPackage};

use super::args::{Args, ModeArg};
use crate::RunConfig;

/// (width, height) in pixels.
type FrameSize = (u32, u32);

/// The source, and the size its frames will have when that is known before the first frame
/// (for `--fit native`): the camera's requested size, or the first file's.
pub(super) fn open_source(args: &Args) -> Result<(Box<dyn FrameSource>, Option<FrameSize>)> {
    if let Some(cam) = &args.camera {
        let mut options = CameraOptions::default();
        options.request.width = args.size.0;
        options.request.height = args.size.1;
        return Ok((Box::new(Camera::open(cam, options)?), Some(args.size)));
    }
    let files = match &args.dir {
        Some(d) if Path::new(d).is_dir() => ImageFiles::from_dir(d)?,
        Some(pattern) => ImageFiles::from_glob(pattern)?,
        None => ImageFiles::sample_clip()?,
    };
    let first_size = files
        .paths()
        .iter()
        .find_map(|p| image::image_dimensions(p).ok());
    let files = files.looping(args.looping);
    Ok((
        Box::new(if args.fps > 0.0 {
            files.with_fps(args.fps)?
        } else {
            files
        }),
        first_size,
    ))
}

/// How the stream runs, settled from the flags and the package before the pipeline exists, so
/// that the summary reports what was in effect rather than what was asked for.
pub(super) struct Plan {
    pub policy: Policy,
    pub mode: Mode,
    /// Threads for each inference stage (0: the backend's own choice).
    pub stage_threads: usize,
    pub reuse_name: &'static str,
}

impl Plan {
    pub fn new(config: &RunConfig, args: &Args, package: &ModelPackage) -> Plan {
        let policy = if args.lossless {
            Policy::Lossless
        } else {
            Policy::RealTime
        };
        let mode = match args.mode {
            ModeArg::Pipelined => Mode::Pipelined,
            ModeArg::Sequential => Mode::Sequential,
            ModeArg::Auto => Mode::auto(config.threads),
        };
        let stage_threads = mode.stage_threads(config.threads);
        Plan {
            policy,
            mode,
            stage_threads,
            reuse_name: reuse_name(args.reuse, package),
        }
    }

    pub fn policy_name(&self) -> &'static str {
        if self.policy == Policy::Lossless {
            "lossless"
        } else {
            "real-time"
        }
    }

    pub fn mode_name(&self) -> &'static str {
        if self.mode == Mode::Pipelined {
            "pipelined"
        } else {
            "sequential"
        }
    }
}

/// `--reuse` as the summary names it: a package without a stated halo cannot reuse tokens,
/// whatever was asked.
fn reuse_name(reuse: Reuse, package: &ModelPackage) -> &'static str {
    match reuse {
        Reuse::Off => "off",
        Reuse::Auto | Reuse::Always if package.manifest.decoder.halo.is_none() => {
            "off (the package states no decoder.halo)"
        }
        Reuse::Auto => "auto",
        Reuse::Always => "always",
    }
}

/// The pipeline with a backend per stage, and how long building it took (the model load the
/// summary reports as cold start).
pub(super) fn build_pipeline(
    config: &RunConfig,
    args: &Args,
    plan: &Plan,
    package: ModelPackage,
    fit: Fit,
    keep_frames: bool,
) -> Result<(Pipeline, Duration)> {
    let options = PipelineOptions {
        policy: plan.policy,
        mode: plan.mode,
        queue_depth: 1,
        keep_frames,
        fit: Some(fit),
    };
    let started = Instant::now();
    let pipeline = Pipeline::new(package, options, |p, graphs| {
        let options = BackendOptions {
            stabilise: (args.stabilise > 0.0).then_some(args.stabilise),
            reuse: args.reuse,
            ..config.backend_options(plan.stage_threads)
        };
        create_backend(p, &options, graphs)
    })?;
    Ok((pipeline, started.elapsed()))
}
