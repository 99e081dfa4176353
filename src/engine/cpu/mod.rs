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

fn first_output<T: Datum + Copy>(out: TVec<TValue>, path: &Path, into: &mut Vec<T>) -> Result<()> {
    let value = out.into_iter().next().ok_or_else(|| graph_err(path, "graph produced no output"))?;
    let view = value.to_plain_array_view::<T>().map_err(|e| graph_err(path, e))?;
    into.clear();
    into.extend(view.iter().copied());
    Ok(())
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu (tract)"
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        let input = Tensor::from_shape(&self.image_shape, image)
            .map_err(|e| Error::Inference { stage: "prior", msg: e.to_string() })?;
        let out = self
            .prior
            .run(tvec!(input.into()))
            .map_err(|e| Error::Inference { stage: "prior", msg: format!("{e:#}") })?;
        first_output(out, &self.prior_path, tokens)
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        let input = Tensor::from_shape(&[1, self.grid[0], self.grid[1]], tokens)
            .map_err(|e| Error::Inference { stage: "decoder", msg: e.to_string() })?;
        let out = self
            .decoder
            .run(tvec!(input.into()))
            .map_err(|e| Error::Inference { stage: "decoder", msg: format!("{e:#}") })?;
        first_output(out, &self.decoder_path, maskige)
    }
}
