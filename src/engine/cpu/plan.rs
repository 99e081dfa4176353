//! Loading and planning one graph for the CPU backend: tract loads the ONNX file, its inputs and
//! output are checked against the contract model.json gives ([`GraphContract`]), and the graph
//! becomes either gss's own program (where the kernels cover it and the choice says so) or
//! tract's optimised plan ([`runner`](super::runner::runner) picks).

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;

use crate::engine::lowering::{self, DType};
use crate::engine::Kernels;
use crate::error::{Error, Result};

use super::isa;
use super::program::Program;

pub type Plan = Arc<TypedRunnableModel>;
pub(crate) type State = SimpleState<TypedFact, Box<dyn TypedOp>>;

pub(crate) fn graph_err(path: &Path, e: impl Into<crate::error::Cause>) -> Error {
    Error::Graph {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

pub(crate) fn mismatch(path: &Path, msg: String) -> Error {
    Error::GraphMismatch {
        path: path.to_path_buf(),
        msg,
    }
}

/// What model.json promises about one graph, checked against the ONNX file.
pub(crate) struct GraphContract<'a> {
    pub(crate) input_name: &'a str,
    pub(crate) output_name: &'a str,
    pub(crate) input: TypedFact,
    /// Trailing dimensions the single output must end with.
    pub(crate) output_tail: Vec<usize>,
    pub(crate) output_type: DatumType,
    /// tract knobs scoped to this graph's optimisation (measured per graph, see `new`).
    pub(crate) knobs: &'a [(&'a str, &'a str)],
    /// On gss's kernels, end the graph with the argmax over this many channels of logits (the
    /// tokens then leave the program, taken from its blocked layout, instead of every logit).
    pub(crate) argmax: Option<usize>,
}

pub(crate) fn load(path: &Path) -> Result<InferenceModel> {
    tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| graph_err(path, e))
}

pub(crate) fn plan(path: &Path, contract: GraphContract) -> Result<Plan> {
    plan_model(load(path)?, path, contract)
}

pub(crate) fn check_io(
    model: &InferenceModel,
    path: &Path,
    contract: &GraphContract,
) -> Result<()> {
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

pub(crate) fn check_output(
    typed: &TypedModel,
    path: &Path,
    contract: &GraphContract,
) -> Result<()> {
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

pub(crate) fn plan_model(
    model: InferenceModel,
    path: &Path,
    contract: GraphContract,
) -> Result<Plan> {
    let scope = tract_onnx::tract_core::knobs::KnobScope::new(contract.knobs.iter().copied())
        .map_err(|e| graph_err(path, e))?;
    let typed = scope.enter(|| typed_for(model, path, &contract, |m| m.into_optimized()))?;
    typed.into_runnable().map_err(|e| graph_err(path, e))
}

/// `model` checked against the contract's names, given the contract's input, typed by `finish`
/// (tract's optimiser for its plan, plain typing for gss's lowering) and its output checked.
pub(crate) fn typed_for(
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
                format!(
                    "does not accept the input model.json describes ({:?}): {e:#}",
                    contract.input
                ),
            )
        })?;
    check_output(&typed, path, contract)?;
    Ok(typed)
}

/// The graph on gss's kernels: checked against the contract as tract's plan is, lowered, and
/// planned onto the kernels. An op they do not cover is an `UnsupportedOp` naming the node.
pub(crate) fn plan_gss(
    model: &InferenceModel,
    path: &Path,
    contract: &GraphContract,
) -> Result<Program> {
    let typed = typed_for(model.clone(), path, contract, |m| m.into_typed())?;
    let mut graph = lowering::lower(&typed, path, super::program::BACKEND)?;
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
    let out_len =
        contract.output_tail.iter().product::<usize>() / contract.argmax.unwrap_or(1).max(1);
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
/// The decoder's contract for a grid (or a window of it) of `cells`.
pub(crate) fn decoder_contract(
    io: &(String, String),
    cells: [usize; 2],
    upsample: usize,
) -> GraphContract<'_> {
    GraphContract {
        input_name: &io.0,
        output_name: &io.1,
        input: i64::fact([1, cells[0], cells[1]]),
        output_tail: vec![3, cells[0] * upsample, cells[1] * upsample],
        output_type: f32::datum_type(),
        // Measured with `gss bench` on the bundled model (Zen 4, 1 and 2 threads): tract's
        // direct spatial conv costs the decoder (full-resolution convs with many channels)
        // about 20 % over im2col + matmul, as it costs the priors: off for every graph.
        knobs: &[("TRACT_DISABLE_DIRECT_SPATIAL", "true")],
        argmax: None,
    }
}

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

/// Any ONNX file with static input shapes, optimised as gss plans its graphs (with `knobs` scoped
/// to it, and tract's named `transforms`, e.g. "conv_nhwc", applied before optimisation), for
/// design probes (`cargo bench --bench graph`): the plan and its input facts.
pub fn plan_onnx_file(
    path: &Path,
    knobs: &[(&str, &str)],
    transforms: &[&str],
) -> Result<(Plan, Vec<TypedFact>)> {
    use tract_onnx::tract_core::transform::get_transform;
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
