//! The `gss` command line: stream (the default), segment, eval, bench, tune, info, devices. Library
//! errors become one-line messages and a non-zero exit code.

mod bench;
mod eval;
mod segment;
mod stream;
mod tune;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use gss::engine::{cpu, create_backend, BackendKind, BackendOptions, Graphs, Kernels};
use gss::{Fit, ModelPackage, Segmenter};

#[derive(Parser)]
#[command(
    name = "gss",
    version,
    about = "Generative Semantic Segmentation on small machines"
)]
struct Cli {
    /// Model package directory (default: models/gss-edge-street8, looked for in the current
    /// directory, beside the executable, in the user data directory and in the build checkout)
    #[arg(long, global = true, env = "GSS_MODEL")]
    model: Option<PathBuf>,
    /// fp32 (default) or a variant listed in model.json, e.g. int8
    #[arg(long, global = true)]
    variant: Option<String>,
    /// Inference threads (default: all cores; a stream splits them between its two stages)
    #[arg(long, global = true, env = "GSS_THREADS")]
    threads: Option<usize>,
    /// auto|cpu|wgpu. auto: wgpu when built in, a hardware GPU is there and it covers every op;
    /// else the CPU
    #[arg(long, global = true, default_value_t = BackendKind::Auto, env = "GSS_BACKEND")]
    backend: BackendKind,
    /// The CPU backend's kernels: auto|gss|tract. auto: what `gss tune` measured faster on this
    /// CPU; without a measurement, gss's own where the CPU has AVX2+FMA or AVX-512 (x86-64),
    /// else tract's. A graph gss's kernels do not cover runs on tract either
    /// way (logged)
    #[arg(long, global = true, default_value_t = Kernels::Auto, env = "GSS_KERNELS")]
    kernels: Kernels,
    /// How frames of another aspect ratio than the model's are fitted: stretch, crop (centre,
    /// the cut-off part is unlabeled), letterbox (pad), or native (run the graphs at the frame's
    /// aspect ratio; packages with input.size_multiple). Default: the package's choice
    #[arg(long, global = true, env = "GSS_FIT")]
    fit: Option<Fit>,
    /// Without a command: `stream` with its defaults (the bundled clip through the bundled model)
    #[command(subcommand)]
    command: Option<Command>,
}

/// `stream`'s defaults, for `gss` run without a command.
#[derive(Parser)]
struct DefaultStream {
    #[command(flatten)]
    args: stream::Args,
}

// Parsed once per process: the size of `stream`'s options costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Show a model package: classes, input size, grid, codebook, variants, metrics, files
    Info,
    /// Segment images; writes class-id PNGs (and colour overlays with --overlay)
    Segment(segment::Args),
    /// Per-class IoU, mIoU and mAcc on a dataset split (images/<split>, labels/<split>)
    Eval(eval::Args),
    /// Per-stage latency (p50/p95), fps, peak RSS and cold start of the model on this machine
    Bench(bench::Args),
    /// Stream a camera, an image directory or the bundled clip through the model (the main job)
    Stream(stream::Args),
    /// Cameras (V4L2) and GPU adapters this machine offers
    Devices,
    /// Measure which kernels run the model faster on this CPU (gss's own or tract's, and tract's
    /// AVX-512 or AVX2 family) and record it; later runs on this CPU apply it
    Tune(tune::Args),
}

fn main() {
    quiet_headless_vulkan();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    gss::process::configure();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("gss: error: {}", one_line(&e));
        std::process::exit(1);
    }
}

/// Mesa's Vulkan loader, probed whenever wgpu lists adapters, prints "XDG_RUNTIME_DIR is invalid
/// or not set" on a headless machine (a robot, CI) for every command. A private runtime
/// directory, set before any thread starts, keeps it quiet; a set variable is left alone.
fn quiet_headless_vulkan() {
    #[cfg(all(feature = "wgpu", unix))]
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("gss-xdg-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // /tmp is shared: a directory another user made first (or a link to one) is not ours to
        // hand to the loader. Checked without following links.
        let ours = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.file_type().is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
        if ours {
            // Edition 2021: set_var is safe; no other thread exists yet.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// An error and its causes on one line. A cause whose text is already in the line is left out:
/// gss's errors (and some of the image crate's) print their cause themselves as well as
/// returning it as `source()`, and `{:#}` would print it twice.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Settings every command that runs a model shares.
pub struct RunConfig {
    pub model_dir: PathBuf,
    pub variant: Option<String>,
    /// Threads asked for (None: all cores, split between the stages of a pipelined stream).
    pub threads: Option<usize>,
    pub backend: BackendKind,
    pub kernels: Kernels,
    pub fit: Option<Fit>,
}

impl RunConfig {
    pub fn open_package(&self) -> Result<ModelPackage> {
        ModelPackage::open(&self.model_dir)
            .with_context(|| format!("loading model {}", self.model_dir.display()))
    }

    /// The package and the fit to run `frame_size` frames with: `--fit native` reopens the
    /// package at the frame's aspect ratio (when its graphs allow it).
    pub fn fitted(
        &self,
        package: ModelPackage,
        frame_size: Option<(u32, u32)>,
    ) -> Result<(ModelPackage, Fit)> {
        package.fitted(self.fit, frame_size).context("--fit native")
    }

    /// Total threads in effect, for reports.
    pub fn threads_in_effect(&self) -> usize {
        self.threads.unwrap_or_else(cpu::available_threads)
    }

    pub fn backend_options(&self, threads: usize) -> BackendOptions {
        BackendOptions {
            kind: self.backend,
            variant: self.variant.clone(),
            threads,
            kernels: self.kernels,
            // Token reuse pays for itself only between consecutive frames of a stream (and a
            // benchmark of one repeated frame would time no decode at all): `gss stream` asks
            // for it with --reuse; segment, eval and bench decode every frame in full.
            reuse: gss::engine::reuse::Reuse::Off,
            ..BackendOptions::default()
        }
    }

    /// A segmenter for `frame_size` frames (the package's own size when None); with
    /// `confidence`, one whose backend also gives the prior's confidence (refused for a prior
    /// without token logits).
    pub fn segmenter(
        &self,
        package: ModelPackage,
        frame_size: Option<(u32, u32)>,
        confidence: bool,
    ) -> Result<Segmenter> {
        let (package, fit) = self.fitted(package, frame_size)?;
        let options = BackendOptions {
            confidence,
            ..self.backend_options(self.threads.unwrap_or(0))
        };
        let backend = create_backend(&package, &options, Graphs::Both)
            .with_context(|| format!("preparing model {}", self.model_dir.display()))?;
        Ok(Segmenter::with_backend(package, backend)
            .with_context(|| format!("preparing model {}", self.model_dir.display()))?
            .with_fit(fit))
    }
}

fn run(cli: Cli) -> Result<()> {
    let config = RunConfig {
        model_dir: match cli.model {
            Some(dir) => dir,
            None => gss::locate::first_existing(
                "the bundled model",
                &gss::locate::bundled(None, std::path::Path::new("models/gss-edge-street8")),
                "pass --model DIR or set GSS_MODEL to a model package directory",
            )?,
        },
        variant: cli.variant,
        threads: cli.threads,
        backend: cli.backend,
        kernels: cli.kernels,
        fit: cli.fit,
    };
    let command = cli
        .command
        .unwrap_or_else(|| Command::Stream(DefaultStream::parse_from(["gss"]).args));
    match command {
        Command::Info => info(&config.open_package()?),
        Command::Segment(args) => segment::run(&config, args),
        Command::Eval(args) => eval::run(&config, args),
        Command::Bench(args) => bench::run(&config, args),
        Command::Stream(args) => stream::run(&config, args),
        Command::Devices => devices(),
        Command::Tune(args) => tune::run(&config, args),
    }
}

fn devices() -> Result<()> {
    match gss::source::list_devices() {
        Ok(cams) if cams.is_empty() => println!("cameras: none found (no /dev/video* node)"),
        Ok(cams) => {
            println!("cameras:");
            for cam in cams {
                println!("{cam}");
            }
        }
        // The error names the cameras itself.
        Err(e) => println!("{e}"),
    }
    if !gss::engine::wgpu::AVAILABLE {
        println!("GPU adapters: this gss was built without the `wgpu` feature (rebuild with --features wgpu)");
    } else {
        let adapters = gss::engine::wgpu::adapters();
        if adapters.is_empty() {
            println!("GPU adapters: none (install a Vulkan driver, e.g. mesa-vulkan-drivers)");
        } else {
            println!("GPU adapters:");
            for a in adapters {
                println!(
                    "  {} ({}, {}{})",
                    a.name,
                    a.backend,
                    a.device_type,
                    if a.is_software { ", software" } else { "" }
                );
            }
        }
    }
    Ok(())
}

fn info(p: &ModelPackage) -> Result<()> {
    let m = &p.manifest;
    println!("{} ({}) at {}", m.name, m.format, p.dir.display());
    println!(
        "input      {}x{} RGB NCHW, bilinear, fit {}{}",
        m.input.height,
        m.input.width,
        m.input.fit,
        m.input
            .size_multiple
            .map_or(String::new(), |k| format!(", any size in multiples of {k}"))
    );
    println!(
        "tokens     grid {}x{}, codebook {}, decoder upsample x{}",
        m.prior.grid[0], m.prior.grid[1], m.prior.codebook_size, m.decoder.upsample
    );
    println!(
        "argmax     {}",
        if m.prior.argmax_in_graph() {
            "in the prior graph"
        } else {
            "in the runtime (the prior ends with token logits)"
        }
    );
    if let Some(c) = m.cost {
        println!(
            "cost       prior {:.3} + decoder {:.3} = {:.3} GMAC per frame",
            c.prior_gmac,
            c.decoder_gmac,
            c.prior_gmac + c.decoder_gmac
        );
    }
    println!(
        "inverse    {}",
        match &m.maskige.inverse {
            gss::model::Inverse::Nearest => "nearest palette colour".to_string(),
            gss::model::Inverse::Linear { weight, .. } => format!(
                "trained linear classifier ({} classes, per pixel)",
                weight.len()
            ),
            gss::model::Inverse::Onnx { file, .. } => format!("onnx graph {file}"),
        }
    );
    println!(
        "classes    {}",
        m.classes
            .iter()
            .map(|c| format!("{} {}", c.id, c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "variants   fp32{}",
        m.variants
            .keys()
            .map(|k| format!(", {k}"))
            .collect::<String>()
    );
    for (name, f) in &m.files {
        println!("file       {name}: {:.2} MB", f.bytes as f64 / 1e6);
    }
    if let Some(obj) = m.metrics.as_object() {
        for key in [
            "mIoU",
            "reconstruction_mIoU",
            "discriminative_mIoU",
            "split",
        ] {
            if let Some(v) = obj.get(key) {
                println!("metric     {key}: {v}");
            }
        }
    }
    Ok(())
}
