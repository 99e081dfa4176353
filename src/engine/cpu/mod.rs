//! The CPU backend: tract loads every graph and checks it against model.json; each graph then
//! runs on gss's own kernels (`kernels/`, planned by `program.rs` from the shared lowering) where
//! they cover it and the choice (`--kernels`, `gss tune`) says so, else on tract's optimised
//! plan. Plans are built once, buffers and states reused, and each backend has its own thread
//! pool. The process-wide tract settings are the application's call ([`crate::process`]).
//! Nothing outside this folder knows tract's plans.

use std::collections::HashMap;
use std::path::PathBuf;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;

use crate::engine::lowering::DType;
use crate::engine::{Backend, BackendOptions, Graphs, Kernels};
use crate::error::{Error, Result};
use crate::model::{ModelPackage, PriorOutput};

pub use gss_kernels as kernels;
pub mod isa;
mod plan;
mod profile;
pub mod program;
mod runner;

use plan::{decoder_contract, load};
pub(crate) use plan::{graph_err, plan, GraphContract, State};
pub use plan::{plan_onnx_file, resolve_kernels, Plan};
pub use profile::{from_program as profile_of_program, GraphProfile, NodeTime, OpTotal};
pub(crate) use runner::InputSlot;
use runner::{not_planned, profile_runner, run_into, runner, with_output, Runner};

/// Cores the OS lets this process use; the default thread count.
pub fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A tract executor for `threads` (0: every available core).
fn executor(threads: usize) -> (Executor, usize) {
    let n = if threads == 0 {
        available_threads()
    } else {
        threads
    };
    (
        if n > 1 {
            Executor::multithread_with_name(n, "gss-tract")
        } else {
            Executor::SingleThread
        },
        n,
    )
}

pub struct CpuBackend {
    prior_path: PathBuf,
    decoder_path: PathBuf,
    /// None when this backend was built for the decoder stage alone (and vice versa), so a
    /// pipelined stream holds each plan once.
    prior: Option<Runner>,
    decoder: Option<Runner>,
    image_shape: [usize; 4],
    grid: [usize; 2],
    /// Some(codebook size) when the prior ends with token logits and the argmax runs here
    /// (`engine::tokens`), which is much faster than tract's ArgMax node; None when the prior
    /// gives tokens (its ArgMax in the graph, or appended to a gss program when nothing else
    /// reads the logits).
    argmax_codes: Option<usize>,
    /// Decoder plans for windows of the grid (token reuse), by shape in cells.
    windows: HashMap<[usize; 2], Runner>,
    /// The decoder's input and output names, for planning windows.
    decoder_io: (String, String),
    kernels: Kernels,
    upsample: usize,
    /// This backend's thread pool, installed around every run (tract's matmuls read it).
    executor: Executor,
    threads: usize,
}

impl CpuBackend {
    /// Loads and optimises the package's graphs (fp32, or the named variant) to run on every
    /// core, checking that their inputs and outputs are the ones model.json describes.
    pub fn new(package: &ModelPackage, variant: Option<&str>) -> Result<Self> {
        Self::with_graphs(package, variant, Graphs::Both)
    }

    /// Like [`new`](CpuBackend::new), planning only the graphs one pipeline stage runs.
    pub fn with_graphs(
        package: &ModelPackage,
        variant: Option<&str>,
        graphs: Graphs,
    ) -> Result<Self> {
        let options = BackendOptions {
            variant: variant.map(str::to_string),
            ..BackendOptions::default()
        };
        Self::with_options(package, &options, graphs)
    }

    /// The backend for `graphs` with `options` (variant, threads).
    pub fn with_options(
        package: &ModelPackage,
        options: &BackendOptions,
        graphs: Graphs,
    ) -> Result<Self> {
        let m = &package.manifest;
        let (prior_path, decoder_path) = package.graph_files(options.variant.as_deref())?;
        let (executor, threads) = executor(options.threads);
        let image_shape = [1, 3, m.input.height, m.input.width];
        let grid = m.prior.grid;
        let want_prior = graphs != Graphs::Decoder;
        let want_decoder = graphs != Graphs::Prior;
        let argmax_codes =
            (m.prior.emits == PriorOutput::TokenLogits).then_some(m.prior.codebook_size);
        let (output_tail, output_type) = match argmax_codes {
            None => (grid.to_vec(), i64::datum_type()),
            Some(codes) => (vec![codes, grid[0], grid[1]], f32::datum_type()),
        };
        let kernels = resolve_kernels(options.kernels);
        let prior_model = want_prior.then(|| load(&prior_path)).transpose()?;
        let prior_contract = GraphContract {
            input_name: &m.prior.input,
            output_name: &m.prior.output,
            input: f32::fact(image_shape),
            output_tail,
            output_type,
            // Measured with `cargo bench --bench graph` (Zen 5, 1 thread): tract picks its
            // direct spatial conv for the dense prior's 4×4/4 patch stem, prior 10.1 ms
            // against 6.7 ms without it; the MobileNetV2 prior gains 3 % from it at one
            // thread (38.8 vs 40.2 ms) and nothing at two, so it is off for every prior.
            knobs: &[("TRACT_DISABLE_DIRECT_SPATIAL", "true")],
            // Only the tokens are wanted: no stream feature reads the logits.
            argmax: argmax_codes.filter(|_| !options.wants_logits()),
        };
        let prior = prior_model
            .as_ref()
            .map(|model| runner(model, &prior_path, prior_contract, kernels))
            .transpose()?;
        let prior_gives_tokens = matches!(&prior, Some(Runner::Gss { program, .. }) if program.output_dtype() == DType::U32);
        let argmax_codes = argmax_codes.filter(|_| !prior_gives_tokens);
        let decoder_io = (m.decoder.input.clone(), m.decoder.output.clone());
        let decoder = want_decoder
            .then(|| {
                let model = load(&decoder_path)?;
                let contract = decoder_contract(&decoder_io, grid, m.decoder.upsample);
                runner(&model, &decoder_path, contract, kernels)
            })
            .transpose()?;
        for (graph, r) in [("prior", &prior), ("decoder", &decoder)] {
            if let Some(r) = r {
                log::debug!("{graph}: {} kernels", r.name());
            }
        }
        Ok(Self {
            prior_path,
            decoder_path,
            prior,
            decoder,
            image_shape,
            grid,
            argmax_codes,
            windows: HashMap::new(),
            decoder_io,
            kernels,
            upsample: m.decoder.upsample,
            executor,
            threads,
        })
    }

    /// Threads this backend runs its graphs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Per-node profiles of the prior (on `image`) and of the decoder (on the tokens the prior
    /// gives), `runs` runs each, with the plans, knobs and threads this backend runs with.
    pub fn profile(&mut self, image: &[f32], runs: usize) -> Result<(GraphProfile, GraphProfile)> {
        let executor = self.executor.clone();
        multithread_tract_scope(executor, || self.profile_here(image, runs))
    }

    fn profile_here(&mut self, image: &[f32], runs: usize) -> Result<(GraphProfile, GraphProfile)> {
        let prior = self.prior.as_mut().ok_or_else(|| not_planned("prior"))?;
        let p = profile_runner(
            prior,
            &self.executor,
            &self.image_shape,
            image,
            runs,
            "prior",
            &self.prior_path,
        )?;
        let mut tokens: Vec<i64> = Vec::new();
        self.run_prior_here(image, &mut tokens)?;
        let decoder = self
            .decoder
            .as_mut()
            .ok_or_else(|| not_planned("decoder"))?;
        let shape = [1, self.grid[0], self.grid[1]];
        let d = profile_runner(
            decoder,
            &self.executor,
            &shape,
            &tokens,
            runs,
            "decoder",
            &self.decoder_path,
        )?;
        Ok((p, d))
    }

    /// Whose kernels run the prior and the decoder ("gss" or "tract"; "-" for a graph this
    /// backend does not hold).
    pub fn kernels(&self) -> [&'static str; 2] {
        [
            self.prior.as_ref().map_or("-", Runner::name),
            self.decoder.as_ref().map_or("-", Runner::name),
        ]
    }
}

/// Profiles one planned graph (see [`plan_onnx_file`]) on `input` with `threads` (0: all cores).
pub fn profile_plan(
    plan: &Plan,
    input: &Tensor,
    runs: usize,
    threads: usize,
) -> Result<GraphProfile> {
    let mut state = plan.spawn().map_err(|e| Error::inference("probe", e))?;
    multithread_tract_scope(executor(threads).0, || {
        profile::profile_state(&mut state, input, runs)
    })
    .map_err(|e| Error::inference("probe", e))
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        match self.kernels() {
            ["gss" | "-", "gss" | "-"] => "cpu (gss kernels)",
            ["tract" | "-", "tract" | "-"] => "cpu (tract)",
            _ => "cpu (gss + tract)",
        }
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        let executor = self.executor.clone();
        multithread_tract_scope(executor, || self.run_prior_here(image, tokens))
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        let executor = self.executor.clone();
        multithread_tract_scope(executor, || self.run_decoder_here(tokens, maskige))
    }

    fn run_prior_logits(&mut self, image: &[f32], read: &mut dyn FnMut(&[f32])) -> Result<()> {
        let executor = self.executor.clone();
        multithread_tract_scope(executor, || {
            let runner = self.prior.as_mut().ok_or_else(|| not_planned("prior"))?;
            if self.argmax_codes.is_none() {
                return Err(Error::Usage {
                    stage: "prior",
                    msg: "this backend's prior gives token ids, not logits (build it with \
                          confidence or the stabiliser asked for, on a prior that ends with \
                          token logits)"
                        .into(),
                });
            }
            with_output::<f32, _>(
                runner,
                &self.executor,
                &self.image_shape,
                image,
                "prior",
                &self.prior_path,
                |logits| read(logits),
            )
        })
    }

    fn plan_decoder_windows(&mut self, shapes: &[[usize; 2]]) -> Result<()> {
        if self.decoder.is_none() {
            return Err(not_planned("decoder"));
        }
        let model = load(&self.decoder_path)?;
        for &shape in shapes {
            if !self.windows.contains_key(&shape) {
                let contract = decoder_contract(&self.decoder_io, shape, self.upsample);
                let plan = runner(&model, &self.decoder_path, contract, self.kernels)?;
                self.windows.insert(shape, plan);
            }
        }
        Ok(())
    }

    fn run_decoder_window(
        &mut self,
        tokens: &[i64],
        shape: [usize; 2],
        maskige: &mut Vec<f32>,
    ) -> Result<()> {
        let executor = self.executor.clone();
        multithread_tract_scope(executor, || {
            let runner = self
                .windows
                .get_mut(&shape)
                .ok_or_else(|| not_planned("decoder window"))?;
            run_into(
                runner,
                &self.executor,
                &[1, shape[0], shape[1]],
                tokens,
                "decoder",
                &self.decoder_path,
                maskige,
            )
        })
    }
}

impl CpuBackend {
    fn run_prior_here(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        let runner = self.prior.as_mut().ok_or_else(|| not_planned("prior"))?;
        let executor = &self.executor;
        match self.argmax_codes {
            None => run_into(
                runner,
                executor,
                &self.image_shape,
                image,
                "prior",
                &self.prior_path,
                tokens,
            ),
            Some(codes) => {
                let cells = self.grid[0] * self.grid[1];
                with_output::<f32, _>(
                    runner,
                    executor,
                    &self.image_shape,
                    image,
                    "prior",
                    &self.prior_path,
                    |logits| {
                        crate::engine::tokens::argmax_channels_into(logits, codes, cells, tokens)
                    },
                )
            }
        }
    }

    fn run_decoder_here(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        let shape = [1, self.grid[0], self.grid[1]];
        let runner = self
            .decoder
            .as_mut()
            .ok_or_else(|| not_planned("decoder"))?;
        run_into(
            runner,
            &self.executor,
            &shape,
            tokens,
            "decoder",
            &self.decoder_path,
            maskige,
        )
    }
}

/// Runs `f` with tract's matrix products on `threads` threads (0: every core), for tools that
/// run tract plans themselves (`cargo bench --bench graph`).
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    multithread_tract_scope(executor(threads).0, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_tensor_is_reused_from_run_to_run() {
        let package = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny"
        ))
        .unwrap();
        let one = BackendOptions {
            threads: 1,
            kernels: Kernels::Tract,
            ..BackendOptions::default()
        };
        let mut backend = CpuBackend::with_options(&package, &one, Graphs::Both).unwrap();
        let image = vec![0.5f32; backend.image_shape.iter().product()];
        let (mut tokens, mut maskige) = (Vec::new(), Vec::new());
        let inputs = |b: &CpuBackend| {
            let ptr = |r: &Option<Runner>| match r {
                Some(Runner::Tract { input, .. }) => input.0.as_ref().map(Arc::as_ptr),
                _ => None,
            };
            (ptr(&b.prior), ptr(&b.decoder))
        };
        backend.run(&image, &mut tokens, &mut maskige).unwrap();
        let first = inputs(&backend);
        backend.run(&image, &mut tokens, &mut maskige).unwrap();
        let second = inputs(&backend);
        assert!(first.0.is_some() && first.1.is_some());
        assert_eq!(
            first, second,
            "tract let go of the inputs, so the same tensors take the next frame"
        );
    }
}
