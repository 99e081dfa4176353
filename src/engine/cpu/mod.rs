//! The CPU backend: tract loads every graph and checks it against model.json; each graph then
//! runs on gss's own kernels (`kernels/`, planned by `program.rs` from the shared lowering) where
//! they cover it and the choice (`--kernels`, `gss tune`) says so, else on tract's optimised
//! plan. Plans are built once, buffers and states reused, each backend has its own thread pool,
//! and the process-wide tract settings (kernel family, allocator) are applied once before the
//! first plan. Nothing outside this folder knows tract's plans.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;

use crate::engine::lowering::{self, DType};
use crate::engine::reuse::{Reuse, TileLayout};
use crate::engine::{Backend, BackendOptions, Graphs, Kernels};
use crate::error::{Error, Result};
use crate::maskige::MaskigeInverse;
use crate::model::{ModelPackage, PriorOutput};

pub mod isa;
pub use gss_kernels as kernels;
mod profile;
pub mod program;
pub use profile::{from_program as profile_of_program, GraphProfile, NodeTime, OpTotal};
use program::Program;

type Plan = Arc<TypedRunnableModel>;
type State = SimpleState<TypedFact, Box<dyn TypedOp>>;

/// Cores the OS lets this process use; the default thread count.
pub fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The settings tract reads once per process, applied before the first plan: the kernel family
/// `gss tune` measured on this CPU (an explicit `TRACT_CPU_ISA` wins), and the allocator
/// thresholds. Every entry point that plans a graph calls it; later calls do nothing.
pub fn init_process() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        match isa::apply_cached_choice() {
            isa::IsaSource::Environment(v) => log::info!("tract kernels: TRACT_CPU_ISA={v:?} from the environment"),
            isa::IsaSource::Measured(c) => {
                log::info!("tract kernels: {} (measured by `gss tune` on this CPU)", if c.isa.is_empty() { "tract's default" } else { c.isa.as_str() })
            }
            isa::IsaSource::Default => log::debug!("tract kernels: tract's default (run `gss tune` to measure the alternatives on this CPU)"),
        }
        tune_allocator();
    });
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

/// Keeps glibc from returning large buffers to the OS between frames. tract's intermediate
/// tensors are megabytes; above the default mmap threshold each one is a fresh mmap that
/// page-faults on every run, which made timings bimodal across processes (up to 2.5x apart).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// Tile side in token cells for token reuse. Measured on a parked camera with the stabiliser
/// (Zen 5, dense package, halo 4): decoder 2.1 ms at 8 against 4.2 ms at 4 and 2.6 ms at 16,
/// full decode 5.0 ms; smaller tiles pay their halo too often, larger ones refresh too much.
const REUSE_TILE: usize = 8;
/// Above this share of a full decode's cells the frame is decoded in full: windows cost about
/// 1.1-1.3× their share of cells in time (each call has a fixed cost of its own, measured on
/// the clip and the parked camera), so beyond 0.7 tiles would save little or lose.
const FULL_DECODE_ABOVE: f32 = 0.7;

/// One graph, ready to run: tract's optimised plan, or gss's own kernels.
enum Runner {
    Tract {
        state: Box<State>,
        input: InputSlot,
    },
    Gss {
        program: Box<Program>,
        ints: Vec<i64>,
    },
}

impl Runner {
    fn name(&self) -> &'static str {
        match self {
            Runner::Tract { .. } => "tract",
            Runner::Gss { .. } => "gss",
        }
    }
}

/// What token reuse keeps between frames: a plan per window shape and the last maskige.
struct TileReuse {
    layout: TileLayout,
    /// Re-decode tiles whatever they cost ([`Reuse::Always`]).
    always: bool,
    plans: HashMap<[usize; 2], Runner>,
    /// The tokens `maskige` was decoded from; empty before the first frame.
    previous: Vec<i64>,
    maskige: Vec<f32>,
    window_tokens: Vec<i64>,
    marks: Vec<bool>,
    dirty: Vec<usize>,
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
    /// The last frame's per-cell confidence, when asked for and the prior ends with logits.
    confidence: Option<Vec<f32>>,
    /// (margin, the last frame's tokens) when a stream asked for the stabiliser.
    stabiliser: Option<(f32, Vec<i64>)>,
    /// The tile plans and the last maskige, when a stream asked for token reuse.
    reuse: Option<TileReuse>,
    /// Share of a full decode the last decoder run did (1 for a full decode).
    decoded_share: f32,
    upsample: usize,
    /// This backend's thread pool, installed around every run (tract's matmuls read it).
    executor: Executor,
    threads: usize,
}

fn graph_err(path: &Path, e: impl Into<crate::error::Cause>) -> Error {
    Error::Graph {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

fn mismatch(path: &Path, msg: String) -> Error {
    Error::GraphMismatch {
        path: path.to_path_buf(),
        msg,
    }
}

/// What model.json promises about one graph, checked against the ONNX file.
struct GraphContract<'a> {
    input_name: &'a str,
    output_name: &'a str,
    input: TypedFact,
    /// Trailing dimensions the single output must end with.
    output_tail: Vec<usize>,
    output_type: DatumType,
    /// tract knobs scoped to this graph's optimisation (measured per graph, see `new`).
    knobs: &'a [(&'a str, &'a str)],
    /// On gss's kernels, end the graph with the argmax over this many channels of logits (the
    /// tokens then leave the program, taken from its blocked layout, instead of every logit).
    argmax: Option<usize>,
}

fn load(path: &Path) -> Result<InferenceModel> {
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| graph_err(path, e))
}

fn plan(path: &Path, contract: GraphContract) -> Result<Plan> {
    plan_model(load(path)?, path, contract)
}

fn check_io(model: &InferenceModel, path: &Path, contract: &GraphContract) -> Result<()> {
    let inputs = model.input_outlets().map_err(|e| graph_err(path, e))?;
    let outputs = model.output_outlets().map_err(|e| graph_err(path, e))?;
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(mismatch(
            path,
            format!(
                "expected 1 input and 1 output, the graph has {} and {}",
                inputs.len(),
                outputs.len()
            ),
        ));
    }
    let input_name = &model.node(inputs[0].node).name;
    if input_name != contract.input_name {
        return Err(mismatch(
            path,
            format!(
                "input is named {input_name:?}, model.json says {:?}",
                contract.input_name
            ),
        ));
    }
    let output_name = model
        .outlet_label(outputs[0])
        .unwrap_or(&model.node(outputs[0].node).name);
    if output_name != contract.output_name {
        return Err(mismatch(
            path,
            format!(
                "output is named {output_name:?}, model.json says {:?}",
                contract.output_name
            ),
        ));
    }
    Ok(())
}

fn check_output(typed: &TypedModel, path: &Path, contract: &GraphContract) -> Result<()> {
    let out = typed.output_fact(0).map_err(|e| graph_err(path, e))?;
    let shape: Option<Vec<usize>> = out.shape.as_concrete().map(|s| s.to_vec());
    let tail_ok = shape.as_ref().is_some_and(|s| {
        s.ends_with(&contract.output_tail)
            && s.iter().product::<usize>() == contract.output_tail.iter().product::<usize>()
    });
    if !tail_ok || out.datum_type != contract.output_type {
        return Err(mismatch(
            path,
            format!(
                "output is {:?} {:?}, model.json implies {:?} {:?}",
                out.datum_type, shape, contract.output_type, contract.output_tail
            ),
        ));
    }
    Ok(())
}

fn plan_model(model: InferenceModel, path: &Path, contract: GraphContract) -> Result<Plan> {
    let scope = tract_onnx::tract_core::knobs::KnobScope::new(contract.knobs.iter().copied())
        .map_err(|e| graph_err(path, e))?;
    let typed = scope.enter(|| typed_for(model, path, &contract, |m| m.into_optimized()))?;
    typed.into_runnable().map_err(|e| graph_err(path, e))
}

/// `model` checked against the contract's names, given the contract's input, typed by `finish`
/// (tract's optimiser for its plan, plain typing for gss's lowering) and its output checked.
fn typed_for(
    model: InferenceModel,
    path: &Path,
    contract: &GraphContract,
    finish: impl FnOnce(InferenceModel) -> TractResult<TypedModel>,
) -> Result<TypedModel> {
    check_io(&model, path, contract)?;
    let typed = model
        .with_input_fact(0, contract.input.clone().into())
        .and_then(finish)
        .map_err(|e| {
            mismatch(
                path,
                format!("does not accept the input model.json describes ({:?}): {e:#}", contract.input),
            )
        })?;
    check_output(&typed, path, contract)?;
    Ok(typed)
}

/// The graph on gss's kernels: checked against the contract as tract's plan is, lowered, and
/// planned onto the kernels. An op they do not cover is an `UnsupportedOp` naming the node.
fn plan_gss(model: &InferenceModel, path: &Path, contract: &GraphContract) -> Result<Program> {
    let typed = typed_for(model.clone(), path, contract, |m| m.into_typed())?;
    let mut graph = lowering::lower(&typed, path, program::BACKEND)?;
    if let Some(codes) = contract.argmax {
        graph
            .append_channel_argmax(codes)
            .map_err(|why| mismatch(path, why))?;
    }
    let program = Program::new(&graph, path)?;
    let in_dtype = if contract.input.datum_type == f32::datum_type() {
        DType::F32
    } else {
        DType::U32
    };
    let out_dtype = if contract.output_type == f32::datum_type() && contract.argmax.is_none() {
        DType::F32
    } else {
        DType::U32
    };
    let in_len: usize = contract
        .input
        .shape
        .as_concrete()
        .map(|s| s.iter().product())
        .unwrap_or(0);
    let out_len = contract.output_tail.iter().product::<usize>() / contract.argmax.unwrap_or(1).max(1);
    if program.input_dtype() != in_dtype
        || program.output_dtype() != out_dtype
        || program.input_len() != in_len
        || program.output_len() != out_len
    {
        return Err(mismatch(path, format!(
            "lowered graph takes {} {:?} and gives {} {:?} values, model.json implies {in_len} {in_dtype:?} and {out_len} {out_dtype:?}",
            program.input_len(), program.input_dtype(), program.output_len(), program.output_dtype()
        )));
    }
    Ok(program)
}

/// Whose kernels run the graphs when the options say `auto`: `gss tune`'s measurement for this
/// CPU, else gss's on x86-64 with AVX2+FMA or AVX-512 (where `scripts/bench-compare.sh` measured
/// them faster than tract's on both graphs) and tract's elsewhere (on aarch64 tract has NEON
/// depthwise kernels of its own and gss's are not measured there).
pub fn resolve_kernels(requested: Kernels) -> Kernels {
    let requested = match (requested, std::env::var("GSS_KERNELS")) {
        (Kernels::Auto, Ok(v)) => v.parse().unwrap_or_else(|e| {
            log::warn!("GSS_KERNELS: {e}; using auto");
            Kernels::Auto
        }),
        (k, _) => k,
    };
    match requested {
        Kernels::Auto => match isa::cached_choice()
            .and_then(|c| c.kernels)
            .and_then(|k| k.parse().ok())
        {
            Some(k @ (Kernels::Gss | Kernels::Tract)) => k,
            _ => match crate::simd::level() {
                crate::simd::Level::Baseline => Kernels::Tract,
                _ => Kernels::Gss,
            },
        },
        k => k,
    }
}

/// The runner for one graph: gss's kernels when chosen and they cover it, else tract's plan. A
/// graph gss cannot take is logged with the node that stopped it.
fn runner(
    model: &InferenceModel,
    path: &Path,
    contract: GraphContract,
    kernels: Kernels,
) -> Result<Runner> {
    if kernels == Kernels::Gss {
        match plan_gss(model, path, &contract) {
            Ok(program) => {
                return Ok(Runner::Gss {
                    program: Box::new(program),
                    ints: Vec::new(),
                })
            }
            Err(e @ Error::UnsupportedOp { .. }) => {
                log::info!("{}: runs on tract ({})", path.display(), e)
            }
            Err(e) => return Err(e),
        }
    }
    let plan = plan_model(model.clone(), path, contract)?;
    Ok(Runner::Tract {
        state: Box::new(plan.spawn().map_err(|e| graph_err(path, e))?),
        input: InputSlot::default(),
    })
}

/// Token reuse trusts `decoder.halo`, and a halo smaller than the graph's reach would give wrong
/// masks without any error, so it is probed before the first frame: one token changed in the
/// middle of a random grid must change no pixel farther than `halo` cells away.
fn check_halo(
    decoder: &mut Runner,
    threads: &Executor,
    path: &Path,
    grid: [usize; 2],
    s: usize,
    halo: usize,
    codes: usize,
) -> Result<()> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut tokens: Vec<i64> = (0..grid[0] * grid[1])
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % codes.max(1) as u64) as i64
        })
        .collect();
    let (mut before, mut after): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
    let shape = [1, grid[0], grid[1]];
    run_into(
        decoder,
        threads,
        &shape,
        &tokens,
        "decoder",
        path,
        &mut before,
    )?;
    let (cy, cx) = (grid[0] / 2, grid[1] / 2);
    let centre = &mut tokens[cy * grid[1] + cx];
    *centre = (*centre + 1) % codes.max(2) as i64;
    run_into(
        decoder, threads, &shape, &tokens, "decoder", path, &mut after,
    )?;
    let (h, w) = (grid[0] * s, grid[1] * s);
    let reach = before
        .iter()
        .zip(&after)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| {
            let (y, x) = ((i / w) % h, i % w);
            (y / s).abs_diff(cy).max((x / s).abs_diff(cx))
        })
        .max()
        .unwrap_or(0);
    if reach > halo {
        return Err(mismatch(path, format!(
            "model.json says decoder.halo {halo}, but one changed token changed pixels {reach} cells away; token reuse would give wrong masks (re-export the package with gss-convert, which measures the halo from the graph, or run with reuse off)"
        )));
    }
    Ok(())
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
        init_process();
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
            // Only the tokens are wanted: no confidence or stabiliser reads the logits.
            argmax: argmax_codes.filter(|_| !options.confidence && options.stabilise.is_none()),
        };
        let prior = prior_model
            .as_ref()
            .map(|model| runner(model, &prior_path, prior_contract, kernels))
            .transpose()?;
        let prior_gives_tokens = matches!(&prior, Some(Runner::Gss { program, .. }) if program.output_dtype() == DType::U32);
        let argmax_codes = argmax_codes.filter(|_| !prior_gives_tokens);
        let decoder_contract = |cells: [usize; 2]| GraphContract {
            input_name: &m.decoder.input,
            output_name: &m.decoder.output,
            input: i64::fact([1, cells[0], cells[1]]),
            output_tail: vec![
                3,
                cells[0] * m.decoder.upsample,
                cells[1] * m.decoder.upsample,
            ],
            output_type: f32::datum_type(),
            // Measured with `gss bench` on the bundled model (Zen 4, 1 and 2 threads): tract's
            // direct spatial conv costs the decoder (full-resolution convs with many channels)
            // about 20 % over im2col + matmul, as it costs the priors: off for every graph.
            knobs: &[("TRACT_DISABLE_DIRECT_SPATIAL", "true")],
            argmax: None,
        };
        let decoder_model = want_decoder.then(|| load(&decoder_path)).transpose()?;
        let mut decoder = decoder_model
            .as_ref()
            .map(|model| runner(model, &decoder_path, decoder_contract(grid), kernels))
            .transpose()?;
        let reuse = match (&decoder_model, &mut decoder, options.reuse, m.decoder.halo) {
            (Some(model), Some(full), Reuse::Auto | Reuse::Always, Some(halo)) => {
                check_halo(
                    full,
                    &executor,
                    &decoder_path,
                    grid,
                    m.decoder.upsample,
                    halo,
                    m.prior.codebook_size,
                )?;
                let layout = TileLayout::new(grid, REUSE_TILE, halo);
                let plans = layout
                    .window_shapes()
                    .into_iter()
                    .map(|shape| {
                        Ok((
                            shape,
                            runner(model, &decoder_path, decoder_contract(shape), kernels)?,
                        ))
                    })
                    .collect::<Result<HashMap<_, _>>>()?;
                Some(TileReuse {
                    layout,
                    always: options.reuse == Reuse::Always,
                    plans,
                    previous: Vec::new(),
                    maskige: Vec::new(),
                    window_tokens: Vec::new(),
                    marks: Vec::new(),
                    dirty: Vec::new(),
                })
            }
            (Some(_), _, Reuse::Auto | Reuse::Always, None) => {
                log::info!("token reuse: {} states no decoder.halo (re-export it with gss-convert); decoding every frame in full", m.name);
                None
            }
            _ => None,
        };
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
            confidence: (options.confidence && argmax_codes.is_some() && want_prior).then(Vec::new),
            stabiliser: options
                .stabilise
                .filter(|_| argmax_codes.is_some() && want_prior)
                .map(|m| (m, Vec::new())),
            reuse,
            decoded_share: 1.0,
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

/// Per-node (tract) or per-kernel (gss) times of one graph on one input.
fn profile_runner<I: Element>(
    runner: &mut Runner,
    executor: &Executor,
    shape: &[usize],
    input: &[I],
    runs: usize,
    stage: &'static str,
    path: &Path,
) -> Result<GraphProfile> {
    match runner {
        Runner::Tract { state, .. } => {
            let input = Tensor::from_shape(shape, input).map_err(|e| graph_err(path, e))?;
            profile::profile_state(state, &input, runs).map_err(|e| graph_err(path, e))
        }
        Runner::Gss { .. } => {
            with_output::<I, f32>(runner, executor, shape, input, stage, path, |_| {})?;
            let Runner::Gss { program, .. } = runner else {
                unreachable!("matched above")
            };
            program
                .times
                .iter_mut()
                .for_each(|t| *t = std::time::Duration::ZERO);
            for _ in 0..runs.max(1) {
                program
                    .run(threads(executor), true)
                    .map_err(|msg| Error::inference(stage, msg))?;
            }
            Ok(profile::from_program(program, runs.max(1)))
        }
    }
}

/// Any ONNX file with static input shapes, optimised as gss plans its graphs (with `knobs` scoped
/// to it, and tract's named `transforms`, e.g. "conv_nhwc", applied before optimisation), for
/// design probes (`cargo bench --bench graph`): the plan and its input facts.
pub fn plan_onnx_file(
    path: &Path,
    knobs: &[(&str, &str)],
    transforms: &[&str],
) -> Result<(Plan, Vec<TypedFact>)> {
    use tract_onnx::tract_core::transform::get_transform;
    init_process();
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| graph_err(path, e))?;
    let scope = tract_onnx::tract_core::knobs::KnobScope::new(knobs.iter().copied())
        .map_err(|e| graph_err(path, e))?;
    let typed = scope
        .enter(|| {
            let mut typed = model.into_typed()?;
            for name in transforms {
                let t = get_transform(name)?.ok_or_else(|| {
                    tract_onnx::tract_core::internal::format_err!(
                        "tract has no transform named {name:?}"
                    )
                })?;
                t.transform(&mut typed)?;
            }
            typed.into_optimized()
        })
        .map_err(|e| graph_err(path, e))?;
    let facts = (0..typed.inputs.len())
        .map(|i| typed.input_fact(i).cloned())
        .collect::<TractResult<Vec<_>>>()
        .map_err(|e| graph_err(path, e))?;
    let plan = typed.into_runnable().map_err(|e| graph_err(path, e))?;
    Ok((plan, facts))
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

fn not_planned(stage: &'static str) -> Error {
    Error::Usage {
        stage,
        msg: format!("this backend was built without the {stage} graph (CpuBackend::with_graphs)"),
    }
}

/// Runs one planned graph on one input and hands its first output, as a contiguous slice, to `f`.
/// A graph's input tensor, kept between runs: tract holds its inputs as `Arc<Tensor>` and lets
/// go of them when a run ends, so the next frame is copied into the same tensor instead of a new
/// one being allocated per frame.
#[derive(Default)]
struct InputSlot(Option<Arc<Tensor>>);

impl InputSlot {
    fn value<I: Datum + Copy>(&mut self, shape: &[usize], input: &[I]) -> TractResult<TValue> {
        if let Some(tensor) = self.0.as_mut().and_then(Arc::get_mut) {
            if tensor.shape() == shape && tensor.datum_type() == I::datum_type() {
                let mut plain = tensor.try_as_plain_ram_mut()?;
                let dst = plain.as_slice_mut::<I>()?;
                if dst.len() == input.len() {
                    dst.copy_from_slice(input);
                    return Ok(TValue::from_const(self.0.clone().expect("checked above")));
                }
            }
        }
        let tensor = Arc::new(Tensor::from_shape(shape, input)?);
        self.0 = Some(tensor.clone());
        Ok(TValue::from_const(tensor))
    }
}

/// An element type at a graph's edge, as gss's kernels hold it: f32 as is, integers as u32 bits.
trait Element: Datum + Copy {
    /// None for a value the kernels cannot hold (a negative or huge token id).
    fn to_lane(self) -> Option<f32>;
    /// Hands `src` (the kernels' output) to `f` as this type, converting into `ints` if needed.
    fn with_slice<R>(src: &[f32], ints: &mut Vec<i64>, f: impl FnOnce(&[Self]) -> R) -> R;
}

impl Element for f32 {
    fn to_lane(self) -> Option<f32> {
        Some(self)
    }
    fn with_slice<R>(src: &[f32], _: &mut Vec<i64>, f: impl FnOnce(&[f32]) -> R) -> R {
        f(src)
    }
}

impl Element for i64 {
    fn to_lane(self) -> Option<f32> {
        u32::try_from(self).ok().map(f32::from_bits)
    }
    fn with_slice<R>(src: &[f32], ints: &mut Vec<i64>, f: impl FnOnce(&[i64]) -> R) -> R {
        ints.clear();
        ints.extend(src.iter().map(|v| v.to_bits() as i64));
        // SAFETY-free cast: this impl is for i64, so Self is i64.
        f(ints)
    }
}

/// gss's kernels split their work over the backend's own pool.
fn threads(executor: &Executor) -> kernels::Threads<'_> {
    match executor {
        Executor::MultiThread(pool) => kernels::Threads::Pool(pool),
        _ => kernels::Threads::One,
    }
}

/// Runs one graph on one input and hands its output, as a contiguous slice, to `f`.
fn with_output<I: Element, O: Element>(
    runner: &mut Runner,
    executor: &Executor,
    shape: &[usize],
    input: &[I],
    stage: &'static str,
    path: &Path,
    f: impl FnOnce(&[O]),
) -> Result<()> {
    match runner {
        Runner::Tract { state, input: slot } => {
            let inference = |e: TractError| Error::inference(stage, e);
            let value = slot.value(shape, input).map_err(inference)?;
            let outputs = state.run(tvec!(value)).map_err(inference)?;
            let value = outputs
                .into_iter()
                .next()
                .ok_or_else(|| graph_err(path, "graph produced no output"))?;
            let view = value
                .to_plain_array_view::<O>()
                .map_err(|e| graph_err(path, e))?;
            match view.as_slice() {
                Some(slice) => f(slice),
                None => f(&view.iter().copied().collect::<Vec<O>>()),
            }
        }
        Runner::Gss { program, ints } => {
            let dst = program.input_mut();
            if dst.len() != input.len() {
                return Err(Error::inference(
                    stage,
                    format!(
                        "{} input values for a graph that takes {}",
                        input.len(),
                        dst.len()
                    ),
                ));
            }
            for (i, (d, &v)) in dst.iter_mut().zip(input).enumerate() {
                *d = v.to_lane().ok_or_else(|| {
                    Error::inference(
                        stage,
                        format!("input value {i} does not fit a token id (0..2³²)"),
                    )
                })?;
            }
            program
                .run(threads(executor), false)
                .map_err(|msg| Error::inference(stage, msg))?;
            O::with_slice(program.output(), ints, f);
        }
    }
    Ok(())
}

/// Runs one graph on one input and copies its output into the caller's buffer.
fn run_into<I: Element, O: Element>(
    runner: &mut Runner,
    executor: &Executor,
    shape: &[usize],
    input: &[I],
    stage: &'static str,
    path: &Path,
    out: &mut Vec<O>,
) -> Result<()> {
    with_output(runner, executor, shape, input, stage, path, |o: &[O]| {
        out.clear();
        out.extend_from_slice(o);
    })
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

    fn confidence(&self) -> Option<&[f32]> {
        self.confidence.as_deref()
    }

    fn decoded_share(&self) -> f32 {
        self.decoded_share
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
                let confidence = &mut self.confidence;
                let stabiliser = &mut self.stabiliser;
                with_output::<f32, _>(
                    runner,
                    executor,
                    &self.image_shape,
                    image,
                    "prior",
                    &self.prior_path,
                    |logits| {
                        crate::engine::tokens::argmax_channels_into(logits, codes, cells, tokens);
                        if let Some((margin, previous)) = stabiliser {
                            crate::engine::tokens::stabilise(
                                logits, cells, *margin, previous, tokens,
                            );
                        }
                        if let Some(confidence) = confidence {
                            crate::engine::tokens::max_probability_into(
                                logits, codes, cells, tokens, confidence,
                            );
                        }
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
        let executor = &self.executor;
        let Some(reuse) = self.reuse.as_mut() else {
            self.decoded_share = 1.0;
            return run_into(
                runner,
                executor,
                &shape,
                tokens,
                "decoder",
                &self.decoder_path,
                maskige,
            );
        };
        let full = reuse.previous.len() != tokens.len() || {
            reuse.layout.dirty_tiles_into(
                &reuse.previous,
                tokens,
                &mut reuse.marks,
                &mut reuse.dirty,
            );
            !reuse.always && reuse.layout.decoded_share(&reuse.dirty) > FULL_DECODE_ABOVE
        };
        if full {
            run_into(
                runner,
                executor,
                &shape,
                tokens,
                "decoder",
                &self.decoder_path,
                &mut reuse.maskige,
            )?;
            self.decoded_share = 1.0;
        } else {
            let grid = self.grid;
            for &i in &reuse.dirty {
                let tile = reuse.layout.tiles()[i];
                let window = tile.window;
                crate::engine::reuse::window_tokens_into(
                    tokens,
                    grid[1],
                    window,
                    &mut reuse.window_tokens,
                );
                let runner = reuse
                    .plans
                    .get_mut(&[window.height(), window.width()])
                    .ok_or_else(|| not_planned("decoder window"))?;
                let frame = &mut reuse.maskige;
                let s = self.upsample;
                with_output::<i64, f32>(
                    runner,
                    executor,
                    &[1, window.height(), window.width()],
                    &reuse.window_tokens,
                    "decoder",
                    &self.decoder_path,
                    |out| crate::engine::reuse::paste_core(out, window, tile.core, grid, s, frame),
                )?;
            }
            self.decoded_share = reuse.layout.decoded_share(&reuse.dirty);
        }
        reuse.previous.clear();
        reuse.previous.extend_from_slice(tokens);
        maskige.clear();
        maskige.extend_from_slice(&reuse.maskige);
        Ok(())
    }
}

/// X⁻¹ as an ONNX graph on tract (`"inverse": {"kind": "onnx"}`): maskige 1×3×H×W in, int64
/// class ids (H×W) out. It runs on one thread: it is a single 1×1 convolution and an ArgMax.
pub struct OnnxInverse {
    path: PathBuf,
    name: String,
    state: State,
    input: InputSlot,
    shape: [usize; 4],
    ids: Vec<i64>,
    classes: usize,
}

impl OnnxInverse {
    /// Plans `file` of the package, whose input and output are named `input` and `output`.
    pub fn new(package: &ModelPackage, file: &str, input: &str, output: &str) -> Result<Self> {
        init_process();
        let m = &package.manifest;
        let path = package.dir.join(file);
        let shape = [1, 3, m.input.height, m.input.width];
        let contract = GraphContract {
            input_name: input,
            output_name: output,
            input: f32::fact(shape),
            output_tail: vec![m.input.height, m.input.width],
            output_type: i64::datum_type(),
            knobs: &[],
            argmax: None,
        };
        let state = plan(&path, contract)?
            .spawn()
            .map_err(|e| graph_err(&path, e))?;
        Ok(Self {
            name: format!("onnx ({file})"),
            path,
            state,
            input: InputSlot::default(),
            shape,
            ids: Vec::new(),
            classes: m.classes.len(),
        })
    }
}

impl MaskigeInverse for OnnxInverse {
    fn name(&self) -> &str {
        &self.name
    }

    fn classes_into(&mut self, maskige: &[f32], classes: &mut image::GrayImage) -> Result<()> {
        let inference = |e: TractError| Error::inference("inverse", e);
        let value = self.input.value(&self.shape, maskige).map_err(inference)?;
        let outputs =
            multithread_tract_scope(Executor::SingleThread, || self.state.run(tvec!(value)))
                .map_err(inference)?;
        let value = outputs
            .into_iter()
            .next()
            .ok_or_else(|| graph_err(&self.path, "graph produced no output"))?;
        let view = value
            .to_plain_array_view::<i64>()
            .map_err(|e| graph_err(&self.path, e))?;
        self.ids.clear();
        self.ids.extend(view.iter().copied());
        for (dst, &id) in classes.iter_mut().zip(&self.ids) {
            if id < 0 || id as usize >= self.classes {
                return Err(Error::GraphMismatch {
                    path: self.path.clone(),
                    msg: format!("class id {id} outside 0..{}", self.classes),
                });
            }
            *dst = id as u8;
        }
        Ok(())
    }
}

/// Runs `f` with tract's matrix products on `threads` threads (0: every core), for tools that
/// run tract plans themselves (`cargo bench --bench graph`).
pub fn with_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    init_process();
    multithread_tract_scope(executor(threads).0, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::reuse::Reuse;

    /// The tiny fixture's decoder on a 24×40 grid (its graph is fully convolutional; the fixture's
    /// own 8×16 grid is within one halo of every cell).
    fn tiny_backend(reuse: Reuse, kernels: Kernels) -> CpuBackend {
        let mut package = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny"
        ))
        .unwrap();
        let m = &mut package.manifest;
        m.prior.grid = [24, 40];
        (m.input.height, m.input.width) = (24 * m.decoder.upsample, 40 * m.decoder.upsample);
        let options = BackendOptions {
            threads: 1,
            reuse,
            kernels,
            ..BackendOptions::default()
        };
        CpuBackend::with_options(&package, &options, Graphs::Decoder).unwrap()
    }

    /// Grids that drift a few cells at a time (with a jump to many cells now and then), the
    /// codebook of the tiny fixture (32 codes).
    fn drifting_grids(cells: usize, frames: usize) -> Vec<Vec<i64>> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut grid: Vec<i64> = (0..cells).map(|_| (next() % 32) as i64).collect();
        let mut grids = vec![grid.clone()];
        for f in 1..frames {
            let changes = if f % 5 == 0 { cells / 2 } else { f % 3 };
            for _ in 0..changes {
                let i = (next() % cells as u64) as usize;
                grid[i] = (next() % 32) as i64;
            }
            grids.push(grid.clone());
        }
        grids
    }

    #[test]
    fn reused_tiles_give_the_full_decode_bit_for_bit() {
        for kernels in [Kernels::Tract, Kernels::Gss] {
            reused_tiles_match(kernels);
        }
    }

    fn reused_tiles_match(kernels: Kernels) {
        let mut full = tiny_backend(Reuse::Off, kernels);
        let mut always = tiny_backend(Reuse::Always, kernels);
        let mut auto = tiny_backend(Reuse::Auto, kernels);
        assert_eq!(
            full.kernels()[1],
            kernels.name(),
            "the tiny decoder is covered by both"
        );
        let cells = full.grid[0] * full.grid[1];
        let (mut want, mut got, mut got_auto) = (Vec::new(), Vec::new(), Vec::new());
        let mut shares = Vec::new();
        for tokens in drifting_grids(cells, 12) {
            full.run_decoder(&tokens, &mut want).unwrap();
            always.run_decoder(&tokens, &mut got).unwrap();
            auto.run_decoder(&tokens, &mut got_auto).unwrap();
            assert!(
                want == got && want == got_auto,
                "a reused maskige differs from the full decode"
            );
            shares.push((always.decoded_share(), auto.decoded_share()));
        }
        assert_eq!(
            shares[0],
            (1.0, 1.0),
            "the first frame has nothing to reuse"
        );
        assert!(
            shares[1..].iter().all(|&(a, _)| a != 1.0),
            "always re-decodes tiles: {shares:?}"
        );
        // A frame with half the cells changed costs more in tiles than in full: auto decodes it whole.
        assert_eq!(shares[5].1, 1.0);
        assert!(
            shares[1].1 < FULL_DECODE_ABOVE,
            "a couple of changed cells: {shares:?}"
        );
        let same = drifting_grids(cells, 1).remove(0);
        auto.run_decoder(&same, &mut got_auto).unwrap();
        auto.run_decoder(&same, &mut got_auto).unwrap();
        assert_eq!(
            auto.decoded_share(),
            0.0,
            "nothing changed, nothing decoded"
        );
    }

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
