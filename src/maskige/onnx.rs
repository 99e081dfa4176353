//! X⁻¹ as an ONNX graph in the package (`"inverse": {"kind": "onnx"}`), planned and run on
//! tract whichever backend runs the prior and the decoder.

use std::path::PathBuf;

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;

use super::MaskigeInverse;
use crate::engine::cpu::{graph_err, plan, GraphContract, InputSlot, State};
use crate::error::{Error, Result};
use crate::model::ModelPackage;

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
