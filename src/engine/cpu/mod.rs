//! The CPU backend on tract: concrete input shapes, optimised plans built once, states reused.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::SimpleState;

use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::model::ModelPackage;

type Plan = Arc<TypedRunnableModel>;
type State = SimpleState<TypedFact, Box<dyn TypedOp>>;

pub struct CpuBackend {
    prior_path: PathBuf,
    decoder_path: PathBuf,
    prior: State,
    decoder: State,
    image_shape: [usize; 4],
    grid: [usize; 2],
}

fn graph_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Graph { path: path.to_path_buf(), msg: format!("{e:#}") }
}

fn plan(path: &Path, fact: TypedFact) -> Result<Plan> {
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, fact.into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| graph_err(path, e))
}

impl CpuBackend {
    /// Loads and optimises the package's graphs (fp32, or the named variant).
    pub fn new(package: &ModelPackage, variant: Option<&str>) -> Result<Self> {
        let m = &package.manifest;
        let (prior_path, decoder_path) = package.graph_files(variant)?;
        let image_shape = [1, 3, m.input.height, m.input.width];
        let grid = m.prior.grid;
        let prior = plan(&prior_path, f32::fact(image_shape))?;
        let decoder = plan(&decoder_path, i64::fact([1, grid[0], grid[1]]))?;
        let prior = prior.spawn().map_err(|e| graph_err(&prior_path, e))?;
        let decoder = decoder.spawn().map_err(|e| graph_err(&decoder_path, e))?;
        Ok(Self { prior_path, decoder_path, prior, decoder, image_shape, grid })
    }
}

/// Runs one planned graph on one input and copies its first output into the caller's buffer.
fn run_into<I: Datum + Copy, O: Datum + Copy>(
    state: &mut State,
    shape: &[usize],
    input: &[I],
    stage: &'static str,
    path: &Path,
    out: &mut Vec<O>,
) -> Result<()> {
    let inference = |e: TractError| Error::Inference { stage, msg: format!("{e:#}") };
    let tensor = Tensor::from_shape(shape, input).map_err(inference)?;
    let outputs = state.run(tvec!(tensor.into())).map_err(inference)?;
    let value = outputs.into_iter().next().ok_or_else(|| graph_err(path, "graph produced no output"))?;
    let view = value.to_plain_array_view::<O>().map_err(|e| graph_err(path, e))?;
    out.clear();
    out.extend(view.iter().copied());
    Ok(())
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu (tract)"
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        run_into(&mut self.prior, &self.image_shape, image, "prior", &self.prior_path, tokens)
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        let shape = [1, self.grid[0], self.grid[1]];
        run_into(&mut self.decoder, &shape, tokens, "decoder", &self.decoder_path, maskige)
    }
}
