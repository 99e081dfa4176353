//! One planned graph, ready to run ([`Runner`]: tract's plan or gss's program) and the calls
//! that run it into caller-owned buffers, reusing the input tensor from run to run.

use std::path::Path;
use std::sync::Arc;

use tract_linalg::multithread::Executor;
use tract_onnx::prelude::*;

use crate::engine::Kernels;
use crate::error::{Error, Result};

use super::kernels;
use super::plan::{graph_err, plan_gss, plan_model, GraphContract, State};
use super::profile::{self, GraphProfile};
use super::program::Program;

/// One graph, ready to run: tract's optimised plan, or gss's own kernels.
pub(crate) enum Runner {
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
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Runner::Tract { .. } => "tract",
            Runner::Gss { .. } => "gss",
        }
    }
}

/// The runner for one graph: gss's kernels when chosen and they cover it, else tract's plan. A
/// graph gss cannot take is logged with the node that stopped it.
pub(crate) fn runner(
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

/// Per-node (tract) or per-kernel (gss) times of one graph on one input.
pub(crate) fn profile_runner<I: Element>(
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

pub(crate) fn not_planned(stage: &'static str) -> Error {
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
pub(crate) struct InputSlot(pub(crate) Option<Arc<Tensor>>);

impl InputSlot {
    pub(crate) fn value<I: Datum + Copy>(
        &mut self,
        shape: &[usize],
        input: &[I],
    ) -> TractResult<TValue> {
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
pub(crate) trait Element: Datum + Copy {
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
pub(crate) fn threads(executor: &Executor) -> kernels::Threads<'_> {
    match executor {
        Executor::MultiThread(pool) => kernels::Threads::Pool(pool),
        _ => kernels::Threads::One,
    }
}

/// Runs one graph on one input and hands its output, as a contiguous slice, to `f`.
pub(crate) fn with_output<I: Element, O: Element>(
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
pub(crate) fn run_into<I: Element, O: Element>(
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
