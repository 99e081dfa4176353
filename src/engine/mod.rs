//! Inference backends: one trait for running the prior and the decoder, one folder per backend.

pub mod cpu;
pub mod lowering;
pub mod reuse;
pub mod stream;
pub mod tokens;
pub mod wgpu;

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::ModelPackage;

/// Time each graph took in one [`Backend::run`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GraphTimes {
    pub prior: Duration,
    /// Zero when the backend ran both graphs as one submission (`prior` then holds both).
    pub decoder: Duration,
}

/// Runs a package's two graphs. Implementations plan once at construction and reuse their
/// buffers across frames; callers own the input and output buffers. Thread counts and other
/// engine settings are the backend's own ([`BackendOptions`]), applied around each call.
pub trait Backend: Send {
    /// Backend name for logs and benchmarks.
    fn name(&self) -> &str;
    /// Normalised NCHW image (1×3×H×W) → token ids (h×w, row-major) written into `tokens`.
    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()>;
    /// Token ids (h×w) → maskige (1×3×H×W, the manifest's output range) written into `maskige`.
    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()>;
    /// Runs the prior and hands its token logits (codes × h × w, channel-major) to `read`, for
    /// the stream features that weigh them ([`stream`]). A backend offers it when it was built
    /// with [`BackendOptions::wants_logits`] for a prior that ends with logits.
    fn run_prior_logits(&mut self, image: &[f32], read: &mut dyn FnMut(&[f32])) -> Result<()> {
        let _ = (image, read);
        Err(Error::Usage {
            stage: "prior",
            msg: format!("{} was built without the prior's token logits", self.name()),
        })
    }
    /// Plans the decoder for windows of the token grid of these shapes (cells, height × width),
    /// for token reuse ([`stream`]). A backend that cannot decode windows says why.
    fn plan_decoder_windows(&mut self, shapes: &[[usize; 2]]) -> Result<()> {
        let _ = shapes;
        Err(Error::Usage {
            stage: "decoder",
            msg: format!("{} cannot decode windows of the token grid", self.name()),
        })
    }
    /// Decodes a window of `shape` token cells (one of the shapes planned by
    /// [`plan_decoder_windows`](Backend::plan_decoder_windows)) into its maskige
    /// (1×3×(h·s)×(w·s)), with the zero padding a graph of that size gives at its edges.
    fn run_decoder_window(
        &mut self,
        tokens: &[i64],
        shape: [usize; 2],
        maskige: &mut Vec<f32>,
    ) -> Result<()> {
        let _ = (tokens, maskige);
        Err(Error::Usage {
            stage: "decoder",
            msg: format!(
                "{} has no plan for a {}×{} window",
                self.name(),
                shape[0],
                shape[1]
            ),
        })
    }
    /// The last prior run's confidence per grid cell (the chosen token's softmax probability,
    /// h×w), when the stream asked for it ([`BackendOptions::confidence`]).
    fn confidence(&self) -> Option<&[f32]> {
        None
    }
    /// Share of a full decode the last decoder run did: 1 for a full decode, less when token
    /// reuse ([`BackendOptions::reuse`]) re-decoded only the tiles near changed tokens.
    fn decoded_share(&self) -> f32 {
        1.0
    }
    /// Image → maskige in one call, the path every whole-frame caller takes. A GPU backend
    /// overrides it to keep the token grid on the device between the two graphs; `tokens` then
    /// holds the grid only if the backend reads it back (it may leave it empty).
    fn run(
        &mut self,
        image: &[f32],
        tokens: &mut Vec<i64>,
        maskige: &mut Vec<f32>,
    ) -> Result<GraphTimes> {
        let t0 = Instant::now();
        self.run_prior(image, tokens)?;
        let t1 = Instant::now();
        self.run_decoder(tokens, maskige)?;
        Ok(GraphTimes {
            prior: t1 - t0,
            decoder: t1.elapsed(),
        })
    }
}

/// Which of the package's graphs a backend must be able to run: a pipelined stream gives each
/// inference stage a backend with its own graph only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Graphs {
    Both,
    Prior,
    Decoder,
}

/// Which backend to run a package on (`--backend auto|cpu|wgpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// wgpu when compiled in, a hardware adapter exists and it covers every op; else the CPU.
    #[default]
    Auto,
    Cpu,
    Wgpu,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [BackendKind::Auto, BackendKind::Cpu, BackendKind::Wgpu]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown backend {s:?}; expected auto, cpu or wgpu"))
    }
}

/// Whose kernels the CPU backend runs a graph with (`--kernels auto|gss|tract`, `GSS_KERNELS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// What `gss tune` measured faster on this CPU; without a measurement, gss's kernels where
    /// the CPU has a SIMD level they are written for ([`crate::simd::level`] above baseline),
    /// else tract's.
    #[default]
    Auto,
    /// gss's own kernels ([`cpu::kernels`]) wherever they cover the graph; tract runs a graph
    /// they do not cover, with a log line naming the node.
    Gss,
    /// tract's optimised plan for every graph.
    Tract,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Auto => "auto",
            Kernels::Gss => "gss",
            Kernels::Tract => "tract",
        }
    }
}

impl std::fmt::Display for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kernels {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [Kernels::Auto, Kernels::Gss, Kernels::Tract]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown kernels {s:?}; expected auto, gss or tract"))
    }
}

/// How to build a backend.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    pub kind: BackendKind,
    /// fp32 when None, else a variant listed in model.json ("int8").
    pub variant: Option<String>,
    /// CPU threads for this backend's graphs; 0: every core the process may use.
    pub threads: usize,
    /// Also give the prior's confidence per grid cell ([`Backend::confidence`]); needs a prior
    /// that ends with token logits ([`create_backend`] refuses it otherwise).
    pub confidence: bool,
    /// For a stream: keep each cell's previous token unless the new one wins by this margin in
    /// logits ([`tokens::stabilise`]); needs a prior that ends with token logits. None: off.
    /// The backend then remembers the last frame, so give it one stream only.
    pub stabilise: Option<f32>,
    /// For a stream: re-decode only the tiles near tokens that changed since the last frame
    /// ([`reuse`]), for packages that state `decoder.halo`; the masks are those of a full
    /// decode. The backend then remembers the last frame, so give it one stream only.
    pub reuse: reuse::Reuse,
    /// The CPU backend's kernels (the GPU backend has its own).
    pub kernels: Kernels,
}

impl BackendOptions {
    /// Whether a stream feature reads the prior's token logits, so a backend keeps them rather
    /// than fusing the ArgMax into the prior.
    pub fn wants_logits(&self) -> bool {
        self.confidence || self.stabilise.is_some()
    }
}

/// Builds the backend `options.kind` names for `graphs` (each backend plans only those), with the stream features `options`
/// asks for ([`stream::wrap`]): an option the package or the backend cannot honour is refused
/// with an error that says why. `Auto` logs (info) which backend it picked and why.
pub fn create_backend(
    package: &ModelPackage,
    options: &BackendOptions,
    graphs: Graphs,
) -> Result<Box<dyn Backend>> {
    stream::wrap(
        create_engine(package, options, graphs)?,
        package,
        options,
        graphs,
    )
}

/// The backend itself, before any stream feature.
fn create_engine(
    package: &ModelPackage,
    options: &BackendOptions,
    graphs: Graphs,
) -> Result<Box<dyn Backend>> {
    let cpu = || -> Result<Box<dyn Backend>> {
        Ok(Box::new(cpu::CpuBackend::with_options(
            package, options, graphs,
        )?))
    };
    match options.kind {
        BackendKind::Cpu => cpu(),
        BackendKind::Wgpu => wgpu_backend(package, options, graphs),
        BackendKind::Auto => {
            if let Some(why) = auto_rejects_gpu(package, options.variant.as_deref()) {
                log::info!("backend auto: cpu ({why})");
                return cpu();
            }
            match wgpu_backend(package, options, graphs) {
                Ok(b) => {
                    log::info!(
                        "backend auto: {} (hardware adapter, every op covered)",
                        b.name()
                    );
                    Ok(b)
                }
                Err(e) => {
                    log::info!("backend auto: cpu (wgpu failed to start: {})", e.chain());
                    cpu()
                }
            }
        }
    }
}

fn wgpu_backend(
    package: &ModelPackage,
    options: &BackendOptions,
    graphs: Graphs,
) -> Result<Box<dyn Backend>> {
    Ok(Box::new(wgpu::WgpuBackend::with_options(
        package, options, graphs,
    )?))
}

/// Why `auto` should not try the GPU, if it should not. A software adapter (lavapipe, WARP)
/// runs these graphs slower than the CPU backend on the same cores, so it does not count.
fn auto_rejects_gpu(package: &ModelPackage, variant: Option<&str>) -> Option<String> {
    if !wgpu::AVAILABLE {
        return Some("built without the `wgpu` feature".into());
    }
    match wgpu::default_adapter() {
        None => return Some("no GPU adapter".into()),
        Some(a) if a.is_software => {
            return Some(format!(
                "only a software adapter ({}, {})",
                a.name, a.backend
            ))
        }
        Some(_) => {}
    }
    wgpu::check_coverage(package, variant)
        .err()
        .map(|e| format!("wgpu cannot run this model: {}", e.chain()))
}
