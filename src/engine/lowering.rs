//! Lowering: a tract typed model (ONNX parsed, shapes inferred by tract) → a flat list of kernel
//! steps over numbered values, with constants folded at load and elementwise tails fused into
//! the step that produces their input. One lowering feeds two executors: the wgpu backend's GPU
//! program (`engine::wgpu`) and gss's own CPU kernels (`engine::cpu::program`). Nothing here
//! runs a kernel, so coverage checks (`auto` backend selection) cost nothing.
//!
//! We take the graph after `into_typed()` but *before* decluttering: decluttering rewrites 1×1
//! convolutions into EinSums with dropped batch axes, which is harder to map onto kernels than
//! the plain ONNX-level Conv it starts from.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::Gather;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::konst::Const;
use tract_onnx::tract_core::ops::nn::resize::{CoordTransformer, Interpolator};
use tract_onnx::tract_core::ops::nn::{DataFormat, Reduce, Reducer};
use tract_onnx::tract_core::ops::source::TypedSource;
use tract_onnx_opl::resize::{CoordTransform, Resize};

use crate::error::{Error, Result};

/// Index of a value (one buffer's worth of elements) in [`Graph::values`].
pub type ValueId = usize;

/// Element type of a value. WGSL has no 64-bit integers, so ONNX int64 token ids live as u32
/// (codebooks are far below 2³²); both executors convert at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    U32,
}

#[derive(Debug, Clone, Copy)]
pub struct ValueInfo {
    pub len: usize,
    pub dtype: DType,
}

/// An elementwise operation applied to a kernel's result before it is stored. Chains of these
/// replace separate Add/Max/Min (Clip, Relu, Relu6, residual add) dispatches.
#[derive(Debug, Clone, PartialEq)]
pub enum Post {
    /// `v = max(v, c)`
    Max(f32),
    /// `v = min(v, c)`
    Min(f32),
    /// `v = v + c`
    AddScalar(f32),
    /// `v = v * c`
    MulScalar(f32),
    /// `v = v + other[i]`, same element count and layout as the output.
    AddValue(ValueId),
}

/// Convolution geometry for one NCHW image (batch 1), weights OIHW.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConvGeo {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Top, left padding (bottom/right follow from the output size).
    pub pad: [usize; 2],
    pub groups: usize,
}

impl ConvGeo {
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in && self.groups == self.c_out
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResizeCoord {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

#[derive(Debug, Clone)]
pub enum Kernel {
    Conv {
        geo: ConvGeo,
        weights: Arc<Vec<f32>>,
        bias: Arc<Vec<f32>>,
    },
    /// Bilinear resize of the last two axes of `planes` planes.
    ResizeLinear {
        planes: usize,
        ih: usize,
        iw: usize,
        oh: usize,
        ow: usize,
        scale: [f32; 2],
        coord: ResizeCoord,
    },
    /// Index of the first (or last) maximum along the middle axis of (outer, n, inner).
    ArgMax {
        outer: usize,
        n: usize,
        inner: usize,
        take_last: bool,
    },
    /// Rows of a constant table picked by u32 indices: out[i, :] = table[idx[i], :].
    Gather {
        table: Arc<Vec<f32>>,
        rows: usize,
        cols: usize,
        count: usize,
    },
    /// out = input transposed: output axis i is input axis perm[i].
    Permute {
        in_shape: Vec<usize>,
        perm: Vec<usize>,
    },
    /// out = input, only for carrying a [`Post`] chain when nothing else can.
    Copy { len: usize },
}

#[derive(Debug, Clone)]
pub struct Step {
    /// The tract node names this step covers (first is the main one), for errors and logs.
    pub nodes: Vec<String>,
    pub kernel: Kernel,
    pub input: ValueId,
    pub output: ValueId,
    pub post: Vec<Post>,
}

impl Step {
    /// Values this step reads.
    pub fn reads(&self) -> Vec<ValueId> {
        let mut r = vec![self.input];
        r.extend(self.post.iter().filter_map(|p| {
            if let Post::AddValue(v) = p {
                Some(*v)
            } else {
                None
            }
        }));
        r
    }

    /// Whether a [`Post`] chain can be appended (the kernel's output is f32, indexed like its
    /// result).
    fn takes_post(&self) -> bool {
        !matches!(self.kernel, Kernel::ArgMax { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub values: Vec<ValueInfo>,
    pub steps: Vec<Step>,
    pub input: ValueId,
    pub output: ValueId,
}

impl Graph {
    /// Ends the graph with an ArgMax over the channel axis of its output (`codes` planes, batch
    /// 1), for priors exported without their ArgMax (`"argmax_in_graph": false`), so the token
    /// grid still stays on the device.
    pub fn append_channel_argmax(&mut self, codes: usize) -> std::result::Result<(), String> {
        let out = self.values[self.output];
        if out.dtype != DType::F32 || codes == 0 || !out.len.is_multiple_of(codes) {
            return Err(format!(
                "output of {} {:?} values is not {codes} planes of logits",
                out.len, out.dtype
            ));
        }
        let cells = out.len / codes;
        self.values.push(ValueInfo {
            len: cells,
            dtype: DType::U32,
        });
        let tokens = self.values.len() - 1;
        self.steps.push(Step {
            nodes: vec!["argmax (runtime)".into()],
            kernel: Kernel::ArgMax {
                outer: 1,
                n: codes,
                inner: cells,
                take_last: false,
            },
            input: self.output,
            output: tokens,
            post: vec![],
        });
        self.output = tokens;
        Ok(())
    }
}

fn unsupported(backend: &'static str, op: impl Into<String>, node: &str) -> Error {
    Error::UnsupportedOp {
        backend,
        op: op.into(),
        node: node.to_string(),
    }
}

fn graph_err(path: &Path, e: impl Into<crate::error::Cause>) -> Error {
    Error::Graph {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Loads an ONNX file with a concrete input fact and lowers it for `backend` (the name errors give).
pub fn load(path: &Path, input: TypedFact, backend: &'static str) -> Result<Graph> {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, input.into()))
        .and_then(|m| m.into_typed())
        .map_err(|e| graph_err(path, e))?;
    lower(&model, path, backend)
}

/// Where a tract outlet lives once lowered.
#[derive(Clone)]
enum Slot {
    Const(Arc<Tensor>),
    Value(ValueId),
}

struct Lowering<'a> {
    backend: &'static str,
    model: &'a TypedModel,
    path: &'a Path,
    slots: HashMap<OutletId, Slot>,
    values: Vec<ValueInfo>,
    steps: Vec<Step>,
}

fn to_f32(t: &Tensor, path: &Path) -> Result<Vec<f32>> {
    let t = t.cast_to::<f32>().map_err(|e| graph_err(path, e))?;
    let view = t
        .to_plain_array_view::<f32>()
        .map_err(|e| graph_err(path, e))?;
    Ok(view.iter().copied().collect())
}

impl<'a> Lowering<'a> {
    fn fact(&self, o: OutletId) -> Result<(Vec<usize>, DatumType)> {
        let f = self
            .model
            .outlet_fact(o)
            .map_err(|e| graph_err(self.path, e))?;
        let shape = f.shape.as_concrete().ok_or_else(|| {
            graph_err(
                self.path,
                format!("outlet {o:?} has a symbolic shape {:?}", f.shape),
            )
        })?;
        Ok((shape.to_vec(), f.datum_type))
    }

    fn new_value(&mut self, o: OutletId, node: &str) -> Result<ValueId> {
        let (shape, dt) = self.fact(o)?;
        let dtype = match dt {
            DatumType::F32 => DType::F32,
            DatumType::I64 | DatumType::I32 | DatumType::U32 => DType::U32,
            other => {
                return Err(unsupported(
                    self.backend,
                    format!("output type {other:?}"),
                    node,
                ))
            }
        };
        self.values.push(ValueInfo {
            len: shape.iter().product(),
            dtype,
        });
        Ok(self.values.len() - 1)
    }

    fn slot(&self, o: OutletId) -> Result<Slot> {
        self.slots
            .get(&o)
            .cloned()
            .ok_or_else(|| graph_err(self.path, format!("outlet {o:?} used before it is defined")))
    }

    fn value(&self, o: OutletId, node: &str, what: &str) -> Result<ValueId> {
        match self.slot(o)? {
            Slot::Value(v) => Ok(v),
            Slot::Const(_) => Err(unsupported(self.backend, format!("constant {what}"), node)),
        }
    }

    fn konst(&self, o: OutletId, node: &str, what: &str) -> Result<Arc<Tensor>> {
        match self.slot(o)? {
            Slot::Const(t) => Ok(t),
            Slot::Value(_) => Err(unsupported(
                self.backend,
                format!("non-constant {what}"),
                node,
            )),
        }
    }

    fn push(&mut self, name: &str, kernel: Kernel, input: ValueId, out: OutletId) -> Result<()> {
        let output = self.new_value(out, name)?;
        self.steps.push(Step {
            nodes: vec![name.to_string()],
            kernel,
            input,
            output,
            post: vec![],
        });
        self.slots.insert(out, Slot::Value(output));
        Ok(())
    }

    fn node(&mut self, id: usize) -> Result<()> {
        let model = self.model;
        let node = &model.nodes[id];
        let name = node.name.as_str();
        let out = OutletId::new(id, 0);
        if let Some(k) = node.op_as::<Const>() {
            self.slots.insert(out, Slot::Const(k.val().clone()));
            return Ok(());
        }
        if node.op_as::<TypedSource>().is_some() {
            let v = self.new_value(out, name)?;
            self.slots.insert(out, Slot::Value(v));
            return Ok(());
        }
        let inputs: Vec<Slot> = node
            .inputs
            .iter()
            .map(|i| self.slot(*i))
            .collect::<Result<_>>()?;
        // Constant folding: tract evaluates any node fed only by constants (casts of weights,
        // shape arithmetic) once, here.
        if !inputs.is_empty() && inputs.iter().all(|s| matches!(s, Slot::Const(_))) {
            let tv: TVec<TValue> = inputs
                .iter()
                .filter_map(|s| {
                    if let Slot::Const(t) = s {
                        Some(t.clone().into_tvalue())
                    } else {
                        None
                    }
                })
                .collect();
            if let Ok(Some(outs)) = node.op.eval_out_of_plan(tv) {
                for (slot, t) in outs.into_iter().enumerate() {
                    self.slots
                        .insert(OutletId::new(id, slot), Slot::Const(t.into_arc_tensor()));
                }
                return Ok(());
            }
        }
        if node.outputs.len() != 1 {
            return Err(unsupported(
                self.backend,
                format!("{} with {} outputs", node.op.name(), node.outputs.len()),
                name,
            ));
        }
        if let Some(conv) = node.op_as::<Conv>() {
            return self.conv(conv, node);
        }
        if let Some(bin) = node.op_as::<TypedBinOp>() {
            return self.binary(bin, node);
        }
        if let Some(op) = node.op_as::<AxisOp>() {
            let input = self.value(node.inputs[0], name, "tensor")?;
            return match op {
                // Row-major data does not move under these: the output aliases the input.
                AxisOp::Add(_) | AxisOp::Rm(_) | AxisOp::Reshape(..) => {
                    self.slots.insert(out, Slot::Value(input));
                    Ok(())
                }
                AxisOp::Move(from, to) => {
                    let (in_shape, _) = self.fact(node.inputs[0])?;
                    let mut perm: Vec<usize> = (0..in_shape.len()).collect();
                    let a = perm.remove(*from);
                    perm.insert(*to, a);
                    self.push(name, Kernel::Permute { in_shape, perm }, input, out)
                }
            };
        }
        if let Some(cast) = node.op_as::<Cast>() {
            let input = self.value(node.inputs[0], name, "tensor")?;
            let (_, from) = self.fact(node.inputs[0])?;
            let int = |d: DatumType| matches!(d, DatumType::I64 | DatumType::I32 | DatumType::U32);
            if from == cast.to || (int(from) && int(cast.to)) {
                self.slots.insert(out, Slot::Value(input));
                return Ok(());
            }
            return Err(unsupported(
                self.backend,
                format!("Cast {from:?} -> {:?}", cast.to),
                name,
            ));
        }
        if let Some(g) = node.op_as::<Gather>() {
            let table = self.konst(node.inputs[0], name, "Gather data")?;
            let idx = self.value(node.inputs[1], name, "Gather indices")?;
            if g.axis != 0 || table.rank() < 1 {
                return Err(unsupported(
                    self.backend,
                    format!("Gather on axis {}", g.axis),
                    name,
                ));
            }
            let rows = table.shape()[0];
            let cols = table.shape()[1..].iter().product();
            let (ishape, _) = self.fact(node.inputs[1])?;
            let kernel = Kernel::Gather {
                table: Arc::new(to_f32(&table, self.path)?),
                rows,
                cols,
                count: ishape.iter().product(),
            };
            return self.push(name, kernel, idx, out);
        }
        if let Some(r) = node.op_as::<Reduce>() {
            let take_last = match r.reducer {
                Reducer::ArgMax(last) => last,
                ref other => {
                    return Err(unsupported(
                        self.backend,
                        format!("Reduce<{other:?}>"),
                        name,
                    ))
                }
            };
            if r.axes.len() != 1 {
                return Err(unsupported(self.backend, "ArgMax over several axes", name));
            }
            let input = self.value(node.inputs[0], name, "tensor")?;
            let (shape, _) = self.fact(node.inputs[0])?;
            let a = r.axes[0];
            let kernel = Kernel::ArgMax {
                outer: shape[..a].iter().product(),
                n: shape[a],
                inner: shape[a + 1..].iter().product(),
                take_last,
            };
            return self.push(name, kernel, input, out);
        }
        if let Some(r) = node.op_as::<Resize>() {
            return self.resize(r, node);
        }
        Err(unsupported(self.backend, node.op.name().to_string(), name))
    }

    fn conv(&mut self, conv: &Conv, node: &TypedNode) -> Result<()> {
        let name = node.name.as_str();
        if conv.q_params.is_some() {
            return Err(unsupported(
                self.backend,
                "quantized Conv (int8 graphs run on tract)",
                name,
            ));
        }
        if conv.kernel_fmt != KernelFormat::OIHW {
            return Err(unsupported(
                self.backend,
                format!("Conv with kernel format {:?}", conv.kernel_fmt),
                name,
            ));
        }
        let spec = &conv.pool_spec;
        if !matches!(spec.data_format, DataFormat::NCHW | DataFormat::CHW)
            || spec.kernel_shape.len() != 2
        {
            return Err(unsupported(
                self.backend,
                format!("Conv {:?} {}-D", spec.data_format, spec.kernel_shape.len()),
                name,
            ));
        }
        if node.inputs.len() != 3 {
            return Err(unsupported(
                self.backend,
                format!("Conv with {} inputs", node.inputs.len()),
                name,
            ));
        }
        let input = self.value(node.inputs[0], name, "Conv input")?;
        let kernel = self.konst(node.inputs[1], name, "Conv weights")?;
        let bias = self.konst(node.inputs[2], name, "Conv bias")?;
        let (ishape, _) = self.fact(node.inputs[0])?;
        let (oshape, _) = self.fact(OutletId::new(node.id, 0))?;
        let (ishape, oshape) = match (ishape.len(), spec.data_format) {
            (4, DataFormat::NCHW) if ishape[0] == 1 => (&ishape[1..], &oshape[1..]),
            (3, DataFormat::CHW) => (&ishape[..], &oshape[..]),
            _ => {
                return Err(unsupported(
                    self.backend,
                    format!("Conv on input shape {ishape:?}"),
                    name,
                ))
            }
        };
        let pads = spec.computed_padding(&ishape[1..]);
        let dil = spec.dilations();
        let strides = spec.strides();
        let geo = ConvGeo {
            c_in: ishape[0],
            h: ishape[1],
            w: ishape[2],
            c_out: oshape[0],
            oh: oshape[1],
            ow: oshape[2],
            kh: spec.kernel_shape[0],
            kw: spec.kernel_shape[1],
            stride: [strides[0], strides[1]],
            dilation: [dil[0], dil[1]],
            pad: [pads[0].pad_before, pads[1].pad_before],
            groups: conv.group,
        };
        let expect = geo.c_out * (geo.c_in / geo.groups.max(1)) * geo.kh * geo.kw;
        if geo.groups == 0
            || !geo.c_in.is_multiple_of(geo.groups)
            || !geo.c_out.is_multiple_of(geo.groups)
            || kernel.len() != expect
        {
            return Err(graph_err(
                self.path,
                format!(
                    "{name}: Conv weights {:?} do not fit {geo:?}",
                    kernel.shape()
                ),
            ));
        }
        let mut b = to_f32(&bias, self.path)?;
        if b.len() == 1 {
            b = vec![b[0]; geo.c_out];
        }
        if b.len() != geo.c_out {
            return Err(unsupported(
                self.backend,
                format!("Conv bias of {} values for {} channels", b.len(), geo.c_out),
                name,
            ));
        }
        let kernel = Kernel::Conv {
            geo,
            weights: Arc::new(to_f32(&kernel, self.path)?),
            bias: Arc::new(b),
        };
        self.push(name, kernel, input, OutletId::new(node.id, 0))
    }

    fn binary(&mut self, bin: &TypedBinOp, node: &TypedNode) -> Result<()> {
        let name = node.name.as_str();
        let op = bin.0.name();
        let out = OutletId::new(node.id, 0);
        let (oshape, _) = self.fact(out)?;
        let a = self.slot(node.inputs[0])?;
        let b = self.slot(node.inputs[1])?;
        let scalar = |t: &Arc<Tensor>| -> Result<Option<f32>> {
            if t.len() == 1 {
                Ok(Some(to_f32(t, self.path)?[0]))
            } else {
                Ok(None)
            }
        };
        let commutes = matches!(op, "Add" | "Mul" | "Max" | "Min");
        let (value, post) = match (&a, &b) {
            (Slot::Value(v), Slot::Const(t)) | (Slot::Const(t), Slot::Value(v))
                if commutes || matches!(a, Slot::Value(_)) =>
            {
                let c = scalar(t)?.ok_or_else(|| {
                    unsupported(
                        self.backend,
                        format!("{op} with a non-scalar constant"),
                        name,
                    )
                })?;
                let post = match op {
                    "Add" => Post::AddScalar(c),
                    "Sub" => Post::AddScalar(-c),
                    "Mul" => Post::MulScalar(c),
                    "Max" => Post::Max(c),
                    "Min" => Post::Min(c),
                    _ => return Err(unsupported(self.backend, op.to_string(), name)),
                };
                (*v, post)
            }
            (Slot::Value(x), Slot::Value(y)) if op == "Add" => {
                let (xs, _) = self.fact(node.inputs[0])?;
                let (ys, _) = self.fact(node.inputs[1])?;
                if xs != oshape || ys != oshape {
                    return Err(unsupported(
                        self.backend,
                        format!("broadcasting Add {xs:?} + {ys:?}"),
                        name,
                    ));
                }
                (*x, Post::AddValue(*y))
            }
            _ => return Err(unsupported(self.backend, op.to_string(), name)),
        };
        let len = oshape.iter().product();
        if self.values[value].len != len || self.values[value].dtype != DType::F32 {
            return Err(unsupported(
                self.backend,
                format!("{op} on non-f32 or broadcast tensors"),
                name,
            ));
        }
        let output = self.new_value(out, name)?;
        self.steps.push(Step {
            nodes: vec![name.to_string()],
            kernel: Kernel::Copy { len },
            input: value,
            output,
            post: vec![post],
        });
        self.slots.insert(out, Slot::Value(output));
        Ok(())
    }

    fn resize(&mut self, r: &Resize, node: &TypedNode) -> Result<()> {
        let name = node.name.as_str();
        let coord = match &r.coord_transformer {
            CoordTransform::Plain(CoordTransformer::HalfPixel) => ResizeCoord::HalfPixel,
            CoordTransform::Plain(CoordTransformer::PytorchHalfPixel) => {
                ResizeCoord::PytorchHalfPixel
            }
            CoordTransform::Plain(CoordTransformer::AlignCorners) => ResizeCoord::AlignCorners,
            CoordTransform::Plain(CoordTransformer::Asymmetric) => ResizeCoord::Asymmetric,
            other => {
                return Err(unsupported(
                    self.backend,
                    format!("Resize coordinate mode {}", other.as_str()),
                    name,
                ))
            }
        };
        if !matches!(r.interpolator, Interpolator::Linear) || r.antialias {
            return Err(unsupported(
                self.backend,
                format!(
                    "Resize {} (antialias {})",
                    r.interpolator.as_str(),
                    r.antialias
                ),
                name,
            ));
        }
        let input = self.value(node.inputs[0], name, "Resize input")?;
        let (ishape, _) = self.fact(node.inputs[0])?;
        let (oshape, _) = self.fact(OutletId::new(node.id, 0))?;
        let rank = ishape.len();
        if rank < 2 || ishape[..rank - 2] != oshape[..rank - 2] {
            return Err(unsupported(
                self.backend,
                format!("Resize {ishape:?} -> {oshape:?} (only the last two axes)"),
                name,
            ));
        }
        let (ih, iw, oh, ow) = (
            ishape[rank - 2],
            ishape[rank - 1],
            oshape[rank - 2],
            oshape[rank - 1],
        );
        // ONNX: explicit scales drive the coordinate transform; sizes imply out/in.
        let mut scale = [oh as f32 / ih as f32, ow as f32 / iw as f32];
        if let Some(i) = r.optional_scales_input {
            if let Some(Slot::Const(t)) = node.inputs.get(i).map(|o| self.slot(*o)).transpose()? {
                let s = to_f32(&t, self.path)?;
                if s.len() == rank {
                    scale = [s[rank - 2], s[rank - 1]];
                }
            }
        }
        let kernel = Kernel::ResizeLinear {
            planes: ishape[..rank - 2].iter().product(),
            ih,
            iw,
            oh,
            ow,
            scale,
            coord,
        };
        self.push(name, kernel, input, OutletId::new(node.id, 0))
    }
}

/// Lowers every node of `model`, then fuses.
pub fn lower(model: &TypedModel, path: &Path, backend: &'static str) -> Result<Graph> {
    let mut l = Lowering {
        backend,
        model,
        path,
        slots: HashMap::new(),
        values: vec![],
        steps: vec![],
    };
    let order = model.eval_order().map_err(|e| graph_err(path, e))?;
    for id in order {
        l.node(id)?;
    }
    let inputs = model.input_outlets().map_err(|e| graph_err(path, e))?;
    let outputs = model.output_outlets().map_err(|e| graph_err(path, e))?;
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(graph_err(
            path,
            format!(
                "{} inputs and {} outputs; expected one of each",
                inputs.len(),
                outputs.len()
            ),
        ));
    }
    let input = match l.slot(inputs[0])? {
        Slot::Value(v) => v,
        Slot::Const(_) => return Err(graph_err(path, "the input is a constant")),
    };
    let output = match l.slot(outputs[0])? {
        Slot::Value(v) => v,
        Slot::Const(_) => return Err(graph_err(path, "the output does not depend on the input")),
    };
    if output == input {
        return Err(graph_err(path, "the output is the input"));
    }
    let mut g = Graph {
        values: l.values,
        steps: l.steps,
        input,
        output,
    };
    fuse(&mut g);
    Ok(g)
}

/// What one fusion round decided.
enum Merge {
    /// Fold step `j` (a Copy carrying posts, or a Permute) into its producer `p`.
    Into { p: usize, j: usize },
    /// Step `j` is `x + other` where only `other` can fuse: make `other` the main input.
    Swap { j: usize },
}

/// Folds single-use `Copy`+post steps into their producer, and merges back-to-back transposes.
/// A step is folded only when nothing else reads the intermediate value and any residual it
/// adds is ready before the producer runs (the fused kernel reads it then).
pub fn fuse(g: &mut Graph) {
    loop {
        let mut uses = vec![0usize; g.values.len()];
        for s in &g.steps {
            for v in s.reads() {
                uses[v] += 1;
            }
        }
        uses[g.output] += 1;
        let mut producer: Vec<Option<usize>> = vec![None; g.values.len()];
        for (i, s) in g.steps.iter().enumerate() {
            producer[s.output] = Some(i);
        }
        let ready_before = |v: ValueId, step: usize| producer[v].is_none_or(|p| p < step);
        let fusable = |p: usize, v: ValueId| {
            let prev: &Step = &g.steps[p];
            uses[v] == 1 && prev.takes_post() && g.values[prev.output].dtype == DType::F32
        };
        let mut decision = None;
        for (j, s) in g.steps.iter().enumerate() {
            let Some(p) = producer[s.input] else { continue };
            let prev = &g.steps[p];
            match (&prev.kernel, &s.kernel) {
                (_, Kernel::Copy { .. }) if fusable(p, s.input) => {
                    let ok = s.post.iter().all(|q| match q {
                        Post::AddValue(v) => *v != s.input && ready_before(*v, p),
                        _ => true,
                    });
                    if ok {
                        decision = Some(Merge::Into { p, j });
                        break;
                    }
                }
                (Kernel::Permute { in_shape, perm }, Kernel::Permute { in_shape: mid, .. })
                    if uses[s.input] == 1 && prev.post.is_empty() =>
                {
                    // Only when no reshape sits between the two transposes.
                    let out1: Vec<usize> = perm.iter().map(|&a| in_shape[a]).collect();
                    if &out1 == mid {
                        decision = Some(Merge::Into { p, j });
                        break;
                    }
                }
                _ => {}
            }
            if let (Kernel::Copy { .. }, [Post::AddValue(other)]) = (&s.kernel, s.post.as_slice()) {
                if let Some(q) = producer[*other] {
                    if fusable(q, *other) && ready_before(s.input, q) {
                        decision = Some(Merge::Swap { j });
                        break;
                    }
                }
            }
        }
        match decision {
            None => break,
            Some(Merge::Swap { j }) => {
                let st = &mut g.steps[j];
                if let [Post::AddValue(other)] = st.post.as_mut_slice() {
                    std::mem::swap(other, &mut st.input);
                }
            }
            Some(Merge::Into { p, j }) => {
                let s = g.steps.remove(j);
                let prev = &mut g.steps[p];
                prev.nodes.extend(s.nodes);
                prev.output = s.output;
                if let (Kernel::Permute { perm, .. }, Kernel::Permute { perm: p2, .. }) =
                    (&mut prev.kernel, &s.kernel)
                {
                    *perm = p2.iter().map(|&a| perm[a]).collect();
                }
                prev.post.extend(s.post);
            }
        }
    }
}
