//! The `gss` command line: stream (the default), segment, eval, bench, info, devices. Library
//! errors become one-line messages and a non-zero exit code.

mod bench;
mod eval;
mod segment;
mod stream;
mod tune;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use gss::engine::{cpu, create_backend, create_backend_for, Backend, BackendKind, Graphs};
use gss::{ModelPackage, Segmenter};

#[derive(Parser)]
#[command(name = "gss", version, about = "Generative Semantic Segmentation on small machines")]
struct Cli {
    /// Model package directory (default: the bundled models/gss-edge-street8)
    #[arg(long, global = true, env = "GSS_MODEL")]
    model: Option<PathBuf>,
    /// fp32 (default) or a variant listed in model.json, e.g. int8
    #[arg(long, global = true)]
    variant: Option<String>,
    /// Inference threads (default: all cores; a stream splits them between its two stages)
    #[arg(long, global = true, env = "GSS_THREADS")]
    threads: Option<usize>,
    /// auto: wgpu when built in, a hardware GPU is there and it covers every op; else the CPU
    #[arg(long, global = true, value_enum, default_value_t = BackendKind::Auto, env = "GSS_BACKEND")]
    backend: BackendKind,
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
    /// Measure which of tract's kernel families (AVX-512 or AVX2) runs the model faster on this
    /// CPU and record it; later runs on this CPU apply it
    Tune(tune::Args),
}

pub fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8")
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("gss: error: {}", one_line(&e));
        std::process::exit(1);
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
    /// Threads in effect (all cores unless given).
    pub threads: usize,
    pub threads_given: bool,
    pub backend: BackendKind,
}

impl RunConfig {
    pub fn open_package(&self) -> Result<ModelPackage> {
        ModelPackage::open(&self.model_dir).with_context(|| format!("loading model {}", self.model_dir.display()))
    }

    pub fn backend(&self, package: &ModelPackage) -> gss::Result<Box<dyn Backend>> {
        create_backend(self.backend, package, self.variant.as_deref())
    }

    pub fn backend_for(&self, package: &ModelPackage, graphs: Graphs) -> gss::Result<Box<dyn Backend>> {
        create_backend_for(self.backend, package, self.variant.as_deref(), graphs)
    }

    pub fn segmenter(&self, package: ModelPackage) -> Result<Segmenter> {
        let backend = self.backend(&package).with_context(|| format!("preparing model {}", self.model_dir.display()))?;
        Segmenter::with_backend(package, backend).with_context(|| format!("preparing model {}", self.model_dir.display()))
    }
}

fn run(cli: Cli) -> Result<()> {
    // Before anything touches tract: it reads its instruction-set setting once per process.
    match cpu::isa::apply_cached_choice() {
        cpu::isa::IsaSource::Environment(v) => log::info!("tract kernels: TRACT_CPU_ISA={v:?} from the environment"),
        cpu::isa::IsaSource::Measured(c) => log::info!("tract kernels: {} (measured by `gss tune` on this CPU)",
            if c.isa.is_empty() { "tract's default" } else { c.isa.as_str() }),
        cpu::isa::IsaSource::Default => log::debug!("tract kernels: tract's default (run `gss tune` to measure the alternatives on this CPU)"),
    }
    cpu::tune_allocator();
    let threads = cpu::set_threads(cli.threads.unwrap_or(0));
    let config = RunConfig {
        model_dir: cli.model.unwrap_or_else(default_model),
        variant: cli.variant,
        threads,
        threads_given: cli.threads.is_some(),
        backend: cli.backend,
    };
    let command = cli.command.unwrap_or_else(|| Command::Stream(DefaultStream::parse_from(["gss"]).args));
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
        Err(e) => println!("cameras: {e}"),
    }
    #[cfg(feature = "wgpu")]
    {
        let adapters = gss::engine::wgpu::adapters();
        if adapters.is_empty() {
            println!("GPU adapters: none (install a Vulkan driver, e.g. mesa-vulkan-drivers)");
        } else {
            println!("GPU adapters:");
            for a in adapters {
                println!("  {} ({}, {}{})", a.name, a.backend, a.device_type, if a.is_software { ", software" } else { "" });
            }
        }
    }
    #[cfg(not(feature = "wgpu"))]
    println!("GPU adapters: this gss was built without the `wgpu` feature (rebuild with --features wgpu)");
    Ok(())
}

fn info(p: &ModelPackage) -> Result<()> {
    let m = &p.manifest;
    println!("{} ({}) at {}", m.name, m.format, p.dir.display());
    println!("input      {}x{} {} {}, resize {}", m.input.height, m.input.width, m.input.channel_order, m.input.layout, m.input.resize);
    println!("tokens     grid {}x{}, codebook {}, decoder upsample x{}", m.prior.grid[0], m.prior.grid[1], m.prior.codebook_size, m.decoder.upsample);
    println!("argmax     {}", if m.prior.argmax_in_graph { "in the prior graph" } else { "in the runtime (the prior ends with token logits)" });
    if let Some(c) = m.cost {
        println!("cost       prior {:.3} + decoder {:.3} = {:.3} GMAC per frame", c.prior_gmac, c.decoder_gmac, c.prior_gmac + c.decoder_gmac);
    }
    println!("inverse    {}", m.maskige.inverse.kind);
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
