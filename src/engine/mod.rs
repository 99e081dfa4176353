//! Inference backends: one trait for running the prior and the decoder, one folder per backend.

pub mod cpu;
pub mod tokens;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::error::Result;
use crate::model::ModelPackage;

/// Runs a package's two graphs. Implementations plan once at construction and reuse their
/// buffers across frames; callers own the input and output buffers.
pub trait Backend: Send {
    /// Backend name for logs and benchmarks.
    fn name(&self) -> &str;
    /// Normalised NCHW image (1×3×H×W) → token ids (h×w, row-major) written into `tokens`.
    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()>;
    /// Token ids (h×w) → maskige (1×3×H×W, the manifest's output range) written into `maskige`.
    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()>;
    /// Image → maskige in one call. A GPU backend overrides it to keep the token grid on the
    /// device between the two graphs; `tokens` then holds the grid only if the backend reads it
    /// back (it may leave it empty).
    fn run(&mut self, image: &[f32], tokens: &mut Vec<i64>, maskige: &mut Vec<f32>) -> Result<()> {
        self.run_prior(image, tokens)?;
        self.run_decoder(tokens, maskige)
    }
}

/// Which backend to run a package on (`--backend auto|cpu|wgpu`).
/// Which of the package's graphs a backend must be able to run: a pipelined stream gives each
/// inference stage a backend with its own graph only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphs {
    Both,
    Prior,
    Decoder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendKind {
    /// wgpu when compiled in, a hardware adapter exists and it covers every op; else the CPU.
    #[default]
    Auto,
    Cpu,
    Wgpu,
}

/// Builds the backend `kind` names. `Auto` logs (info) which backend it picked and why.
pub fn create_backend(kind: BackendKind, package: &ModelPackage, variant: Option<&str>) -> Result<Box<dyn Backend>> {
    create_backend_for(kind, package, variant, Graphs::Both)
}

/// [`create_backend`] for one pipeline stage: the CPU backend plans only `graphs` (the GPU
/// backend keeps both; its plans live in GPU memory).
pub fn create_backend_for(kind: BackendKind, package: &ModelPackage, variant: Option<&str>, graphs: Graphs) -> Result<Box<dyn Backend>> {
    let cpu = || -> Result<Box<dyn Backend>> { Ok(Box::new(cpu::CpuBackend::with_graphs(package, variant, graphs)?)) };
    match kind {
        BackendKind::Cpu => cpu(),
        BackendKind::Wgpu => wgpu_backend(package, variant),
        BackendKind::Auto => {
            if let Some(why) = auto_rejects_gpu(package, variant) {
                log::info!("backend auto: cpu ({why})");
                return cpu();
            }
            match wgpu_backend(package, variant) {
                Ok(b) => {
                    log::info!("backend auto: {} (hardware adapter, every op covered)", b.name());
                    Ok(b)
                }
                Err(e) => {
                    log::info!("backend auto: cpu (wgpu failed to start: {e})");
                    cpu()
                }
            }
        }
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_backend(package: &ModelPackage, variant: Option<&str>) -> Result<Box<dyn Backend>> {
    Ok(Box::new(wgpu::WgpuBackend::new(package, variant)?))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_backend(_: &ModelPackage, _: Option<&str>) -> Result<Box<dyn Backend>> {
    Err(crate::error::Error::Gpu { msg: "this gss was built without the `wgpu` feature; rebuild with --features wgpu or use --backend cpu".into() })
}

/// Why `auto` should not try the GPU, if it should not. A software adapter (lavapipe, WARP)
/// runs these graphs slower than tract on the same cores, so it does not count.
#[cfg(feature = "wgpu")]
fn auto_rejects_gpu(package: &ModelPackage, variant: Option<&str>) -> Option<String> {
    match wgpu::default_adapter() {
        None => return Some("no GPU adapter".into()),
        Some(a) if a.is_software => return Some(format!("only a software adapter ({}, {})", a.name, a.backend)),
        Some(_) => {}
    }
    wgpu::check_coverage(package, variant).err().map(|e| format!("wgpu cannot run this model: {e}"))
}

#[cfg(not(feature = "wgpu"))]
fn auto_rejects_gpu(_: &ModelPackage, _: Option<&str>) -> Option<String> {
    Some("built without the `wgpu` feature".into())
}
