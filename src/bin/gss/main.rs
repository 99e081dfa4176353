//! The `gss` command line: info, segment, eval, bench. Library errors become one-line messages and
//! a non-zero exit code.

mod bench;
mod eval;
mod segment;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use gss::engine::cpu;
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
    /// Inference threads (0 = all cores)
    #[arg(long, global = true, default_value_t = 0, env = "GSS_THREADS")]
    threads: usize,
    #[command(subcommand)]
    command: Command,
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
}

pub fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8")
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("gss: error: {e:#}");
        std::process::exit(1);
    }
}

/// Settings every command that runs a model shares.
pub struct RunConfig {
    pub model_dir: PathBuf,
    pub variant: Option<String>,
    pub threads: usize,
}

impl RunConfig {
    pub fn open_package(&self) -> Result<ModelPackage> {
        ModelPackage::open(&self.model_dir).with_context(|| format!("loading model {}", self.model_dir.display()))
    }

    pub fn segmenter(&self, package: ModelPackage) -> Result<Segmenter> {
        Segmenter::new(package, self.variant.as_deref())
            .with_context(|| format!("preparing model {} for the CPU", self.model_dir.display()))
    }
}

fn run(cli: Cli) -> Result<()> {
    cpu::tune_allocator();
    let threads = cpu::set_threads(cli.threads);
    let config = RunConfig { model_dir: cli.model.unwrap_or_else(default_model), variant: cli.variant, threads };
    match cli.command {
        Command::Info => info(&config.open_package()?),
        Command::Segment(args) => segment::run(&config, args),
        Command::Eval(args) => eval::run(&config, args),
        Command::Bench(args) => bench::run(&config, args),
    }
}

fn info(p: &ModelPackage) -> Result<()> {
    let m = &p.manifest;
    println!("{} ({}) at {}", m.name, m.format, p.dir.display());
    println!("input      {}x{} {} {}, resize {}", m.input.height, m.input.width, m.input.channel_order, m.input.layout, m.input.resize);
    println!("tokens     grid {}x{}, codebook {}, decoder upsample x{}", m.prior.grid[0], m.prior.grid[1], m.prior.codebook_size, m.decoder.upsample);
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
