//! Design probe, "road b": gss's conv kernels plugged into tract as a custom op, measured against
//! tract alone and against gss's own executor ("road a", `Program`), in one process, interleaved
//! round by round on the same threads (tract's pool from `with_threads`, which the op and road
//! (a) also run on).
//!
//! Road b: the op (`GssConv`, an `Op + EvalOp + TypedOp`) holds a `ConvPlan` and two reorder
//! buffers behind a mutex: it takes tract's NCHW f32 tensor, reorders it to gss's blocked layout
//! (`layout::to_blocked`), runs the kernel, and reorders back into a fresh NCHW tensor
//! (`layout::to_plain`). Every ONNX `Conv` the kernels cover (dense with one group, any kernel,
//! stride and padding; depthwise up to 7×7) is replaced by it in tract's typed model right after
//! `into_typed()` (the stage gss's lowering reads: tract's declutter would turn 1×1 convs into
//! EinSums), then `into_optimized()` plans the rest as usual. A chain of scalar `Max`/`Min` nodes
//! that is the conv's only reader (ONNX Clip / ReLU6 / ReLU) is fused into the op's post chain;
//! residual `Add`s stay tract's. Other convs stay tract's.
//!
//! Variant b′ (the same op, layout kept): the reorders become `GssReorder` nodes around a
//! blocked-in, blocked-out `GssConv`; tract's binary ops between two of them (residual Adds,
//! ReLUs) run on the blocked `[1, h, w, cs]` tensors, and a reorder to plain feeding a reorder
//! back cancels, so reorders remain only where a tract op needs NCHW.
//!
//! Prints the coverage, each way's output against tract's plan (max abs diff on the
//! deterministic input), a markdown table (p50 and min ms of the four ways and the ratios of
//! their p50), then per-op profiles at each thread count: road b per tract node, `GssConv`'s own
//! split in road b (reorder in / kernel / reorder out / the rest of the op), b′ per tract node,
//! road a per kernel and tract per node.
//!
//! `cargo bench --bench custom_op -- FILE.onnx... [--threads 1,2] [--rounds 40] [--max-token 512]
//!  [--no-profile]`
//! Inputs get the values `cargo bench --bench graph` gives them: floats in 0..255, integers in
//! 0..N.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gss::engine::cpu::kernels::conv::{ConvPlan, ConvShape, MAX_DEPTHWISE_SIDE};
use gss::engine::cpu::kernels::{layout, padded, AlignedVec, PostOp, Threads, LANES};
use gss::engine::cpu::program::{Program, BACKEND};
use gss::engine::cpu::{
    plan_onnx_file, profile_of_program, profile_plan, with_threads, GraphProfile,
};
use gss::sink::stats::percentile;
use tract_linalg::multithread::{current_tract_executor, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cnn::conv::KernelFormat;
use tract_onnx::tract_core::ops::cnn::Conv;
use tract_onnx::tract_core::ops::nn::DataFormat;
use tract_onnx::tract_core::{as_op, op_as_typed_op, op_out_of_plan};

/// Whether `GssConv` times its parts (only in the profile phase, never in the timed rounds).
static PROFILING: AtomicBool = AtomicBool::new(false);

/// Nanoseconds one op spent in each part, summed over the profiled runs.
#[derive(Debug, Default)]
struct Split {
    calls: AtomicU64,
    total: AtomicU64,
    to_blocked: AtomicU64,
    kernel: AtomicU64,
    to_plain: AtomicU64,
}

/// The reorder buffers and the padding row, allocated once when the op is built.
#[derive(Debug)]
struct Scratch {
    input: AlignedVec,
    output: AlignedVec,
    zeros: AlignedVec,
}

/// One convolution (with its fused Clip) on gss's kernels, as a tract op over NCHW tensors.
#[derive(Debug, Clone)]
struct GssConv {
    kind: String,
    plan: Arc<ConvPlan>,
    c_in: usize,
    in_hw: [usize; 2],
    pixels_in: usize,
    cs_in: usize,
    c_out: usize,
    pixels_out: usize,
    out_shape: [usize; 4],
    /// Variant b′: the input already blocked (`[1, h, w, cs_in]`), the output left blocked
    /// (`[1, oh, ow, cs_out]`); reorders are then separate `GssReorder` nodes.
    in_blocked: bool,
    out_blocked: bool,
    scratch: Arc<Mutex<Scratch>>,
    split: Arc<Split>,
}

impl GssConv {
    fn input_shape(&self) -> [usize; 4] {
        let [h, w] = self.in_hw;
        if self.in_blocked {
            [1, h, w, self.cs_in]
        } else {
            [1, self.c_in, h, w]
        }
    }

    fn output_shape(&self) -> [usize; 4] {
        let [_, c, oh, ow] = self.out_shape;
        if self.out_blocked {
            [1, oh, ow, self.plan.cs_out]
        } else {
            [1, c, oh, ow]
        }
    }
}

impl PartialEq for GssConv {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.plan, &other.plan)
    }
}

impl Eq for GssConv {}

impl Op for GssConv {
    fn name(&self) -> StaticName {
        format!("GssConv {}", self.kind).into()
    }

    op_as_typed_op!();
}

impl EvalOp for GssConv {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let profiling = PROFILING.load(Ordering::Relaxed);
        let t0 = Instant::now();
        let input = args_1!(inputs);
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let want = if self.in_blocked {
            self.pixels_in * self.cs_in
        } else {
            self.c_in * self.pixels_in
        };
        ensure!(
            x.len() == want,
            "GssConv: input of {} values, expected {want}",
            x.len()
        );
        // SAFETY: every element is written by the kernel or `to_plain` below before it is read.
        let mut out = unsafe { Tensor::uninitialized_aligned::<f32>(&self.output_shape(), 64)? };
        {
            let mut view = out.try_as_plain_ram_mut()?;
            let o = view.as_slice_mut::<f32>()?;
            let mut guard = self
                .scratch
                .lock()
                .map_err(|_| format_err!("GssConv scratch poisoned"))?;
            let s = &mut *guard;
            let plan = &*self.plan;
            let split = &*self.split;
            let (c_in, pixels_in, cs_in, c_out, pixels_out) = (
                self.c_in,
                self.pixels_in,
                self.cs_in,
                self.c_out,
                self.pixels_out,
            );
            let (in_blocked, out_blocked) = (self.in_blocked, self.out_blocked);
            let run = move |threads: Threads| {
                let t = profiling.then(Instant::now);
                let x = if in_blocked {
                    x
                } else {
                    layout::to_blocked(x, c_in, pixels_in, cs_in, &mut s.input, threads);
                    &s.input[..]
                };
                let t1 = profiling.then(Instant::now);
                if out_blocked {
                    plan.run(x, &[], &s.zeros, o, threads);
                } else {
                    plan.run(x, &[], &s.zeros, &mut s.output, threads);
                }
                let t2 = profiling.then(Instant::now);
                if !out_blocked {
                    layout::to_plain(&s.output, c_out, pixels_out, plan.cs_out, o, threads);
                }
                if let (Some(t), Some(t1), Some(t2)) = (t, t1, t2) {
                    split
                        .to_blocked
                        .fetch_add((t1 - t).as_nanos() as u64, Ordering::Relaxed);
                    split
                        .kernel
                        .fetch_add((t2 - t1).as_nanos() as u64, Ordering::Relaxed);
                    split
                        .to_plain
                        .fetch_add(t2.elapsed().as_nanos() as u64, Ordering::Relaxed);
                }
            };
            on_plan_threads(run);
        }
        if profiling {
            self.split.calls.fetch_add(1, Ordering::Relaxed);
            self.split
                .total
                .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for GssConv {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs.len() == 1 && inputs[0].datum_type == f32::datum_type());
        ensure!(
            inputs[0].shape.as_concrete() == Some(&self.input_shape()[..]),
            "GssConv: input {:?}, expected {:?}",
            inputs[0].shape,
            self.input_shape()
        );
        Ok(tvec!(f32::fact(self.output_shape())))
    }

    as_op!();
}

/// Variant b′'s layout change between tract's NCHW and gss's blocked `[1, h, w, cs]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GssReorder {
    to_blocked: bool,
    c: usize,
    h: usize,
    w: usize,
    cs: usize,
}

impl GssReorder {
    fn plain(&self) -> [usize; 4] {
        [1, self.c, self.h, self.w]
    }

    fn blocked(&self) -> [usize; 4] {
        [1, self.h, self.w, self.cs]
    }
}

impl Op for GssReorder {
    fn name(&self) -> StaticName {
        if self.to_blocked {
            "GssReorder → blocked"
        } else {
            "GssReorder → plain"
        }
        .into()
    }

    op_as_typed_op!();
}

impl EvalOp for GssReorder {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let x = input.try_as_plain_ram()?.as_slice::<f32>()?;
        let shape = if self.to_blocked {
            self.blocked()
        } else {
            self.plain()
        };
        // SAFETY: the reorder writes every element.
        let mut out = unsafe { Tensor::uninitialized_aligned::<f32>(&shape, 64)? };
        {
            let mut view = out.try_as_plain_ram_mut()?;
            let o = view.as_slice_mut::<f32>()?;
            let pixels = self.h * self.w;
            on_plan_threads(|threads| {
                if self.to_blocked {
                    layout::to_blocked(x, self.c, pixels, self.cs, o, threads)
                } else {
                    layout::to_plain(x, self.c, pixels, self.cs, o, threads)
                }
            });
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for GssReorder {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let (from, to) = if self.to_blocked {
            (self.plain(), self.blocked())
        } else {
            (self.blocked(), self.plain())
        };
        ensure!(inputs.len() == 1 && inputs[0].shape.as_concrete() == Some(&from[..]));
        Ok(tvec!(f32::fact(to)))
    }

    as_op!();
}

/// What the patch did to one graph.
#[derive(Default)]
struct Coverage {
    convs: usize,
    replaced: Vec<String>,
    clips_fused: usize,
    left: Vec<String>,
    ops: Vec<GssConv>,
    /// Variant b′: elementwise ops moved onto blocked values, reorder pairs cancelled.
    moved: usize,
    cancelled: usize,
}

/// The value of `o` when only constants feed it (a Const, or e.g. the cast or reshape of one,
/// evaluated here as gss's lowering folds them).
fn konst(model: &TypedModel, o: OutletId) -> TractResult<Option<Arc<Tensor>>> {
    if let Some(t) = &model.outlet_fact(o)?.konst {
        return Ok(Some(t.clone()));
    }
    let node = model.node(o.node);
    if node.inputs.is_empty() {
        return Ok(None);
    }
    let mut inputs = TVec::new();
    for &i in &node.inputs {
        let Some(t) = konst(model, i)? else {
            return Ok(None);
        };
        inputs.push(t.into_tvalue());
    }
    Ok(node
        .op
        .eval_out_of_plan(inputs)?
        .map(|mut outs| outs.swap_remove(o.slot).into_arc_tensor()))
}

fn konst_f32(model: &TypedModel, o: OutletId) -> TractResult<Option<Vec<f32>>> {
    let Some(t) = konst(model, o)? else {
        return Ok(None);
    };
    let t = t.cast_to::<f32>()?;
    Ok(Some(
        t.to_plain_array_view::<f32>()?.iter().copied().collect(),
    ))
}

/// A `GssConv` for `node` and the nodes whose output it replaces (the conv, then a fused
/// Max/Min chain), or why not.
fn gss_conv(
    model: &TypedModel,
    node: &TypedNode,
    conv: &Conv,
) -> TractResult<Result<(GssConv, OutletId, usize), String>> {
    if conv.q_params.is_some() || conv.kernel_fmt != KernelFormat::OIHW {
        return Ok(Err(format!("quantized or {:?} Conv", conv.kernel_fmt)));
    }
    let spec = &conv.pool_spec;
    if spec.data_format != DataFormat::NCHW || spec.kernel_shape.len() != 2 {
        return Ok(Err(format!(
            "{:?} {}-D Conv",
            spec.data_format,
            spec.kernel_shape.len()
        )));
    }
    let ishape = model
        .outlet_fact(node.inputs[0])?
        .shape
        .as_concrete()
        .map(|s| s.to_vec());
    let oshape = model
        .outlet_fact(node.id.into())?
        .shape
        .as_concrete()
        .map(|s| s.to_vec());
    let (Some(ishape), Some(oshape)) = (ishape, oshape) else {
        return Ok(Err("symbolic shape".into()));
    };
    if ishape.len() != 4
        || ishape[0] != 1
        || model.outlet_fact(node.inputs[0])?.datum_type != f32::datum_type()
    {
        return Ok(Err(format!("input {ishape:?}")));
    }
    let Some(weights) = konst_f32(model, node.inputs[1])? else {
        return Ok(Err("weights not constant".into()));
    };
    let (c_in, h, w, c_out, oh, ow) = (
        ishape[1], ishape[2], ishape[3], oshape[1], oshape[2], oshape[3],
    );
    let bias = match node.inputs.get(2) {
        Some(&b) => match konst_f32(model, b)? {
            Some(b) if b.len() == c_out => b,
            Some(b) if b.len() == 1 => vec![b[0]; c_out],
            _ => return Ok(Err("bias not a constant of c_out values".into())),
        },
        None => vec![0.0; c_out],
    };
    let depthwise = conv.group > 1 && conv.group == c_in && conv.group == c_out;
    if conv.group != 1 && !depthwise {
        return Ok(Err(format!("grouped Conv ({} groups)", conv.group)));
    }
    let (kh, kw) = (spec.kernel_shape[0], spec.kernel_shape[1]);
    if depthwise && (kh > MAX_DEPTHWISE_SIDE || kw > MAX_DEPTHWISE_SIDE) {
        return Ok(Err(format!("depthwise {kh}×{kw}")));
    }
    if weights.len() != c_out * (c_in / conv.group) * kh * kw
        || [c_in, h, w, c_out, oh, ow].contains(&0)
    {
        return Ok(Err("weights do not fit the shape".into()));
    }
    let pads = spec.computed_padding(&ishape[2..]);
    let (strides, dil) = (spec.strides(), spec.dilations());
    // As gss's planner lays out a conv's input: depthwise on whole blocks, a dense conv over
    // fewer channels than a block (the stem) on exactly its channels.
    let cs_in = if depthwise || c_in >= LANES {
        padded(c_in)
    } else {
        c_in
    };
    let shape = ConvShape {
        c_in,
        h,
        w,
        cs_in,
        c_out,
        oh,
        ow,
        kh,
        kw,
        stride: [strides[0], strides[1]],
        dilation: [dil[0], dil[1]],
        pad: [pads[0].pad_before, pads[1].pad_before],
        depthwise,
    };
    // Fuse the scalar Max/Min chain (Clip, ReLU6, ReLU) that is the conv's only reader.
    let mut posts = Vec::new();
    let mut last = node.id;
    loop {
        let outlet = OutletId::new(last, 0);
        let succs = &model.node(last).outputs[0].successors;
        if model.outputs.contains(&outlet) || succs.len() != 1 {
            break;
        }
        let succ = model.node(succs[0].node);
        let Some(bin) = succ.op_as::<TypedBinOp>() else {
            break;
        };
        let post: fn(f32) -> PostOp = match bin.0.name() {
            "Max" => PostOp::Max,
            "Min" => PostOp::Min,
            _ => break,
        };
        let other = succ.inputs[1 - succs[0].slot];
        let same_shape =
            model.outlet_fact(succ.id.into())?.shape.as_concrete() == Some(&oshape[..]);
        match konst_f32(model, other)? {
            Some(c) if c.len() == 1 && same_shape => posts.push(post(c[0])),
            _ => break,
        }
        last = succ.id;
    }
    let fused = posts.len();
    let kind = if depthwise {
        format!("depthwise {kh}×{kw}/{}", strides[0])
    } else if (kh, kw) == (1, 1) && strides[0] == 1 && strides[1] == 1 {
        "pointwise".to_string()
    } else {
        format!("dense {kh}×{kw}/{}", strides[0])
    };
    let plan = ConvPlan::new(shape, &weights, &bias, posts);
    let scratch = Scratch {
        input: AlignedVec::zeros(plan.input_len()),
        output: AlignedVec::zeros(plan.pixels() * plan.cs_out),
        zeros: AlignedVec::zeros(cs_in.max(c_in).max(LANES)),
    };
    let op = GssConv {
        kind,
        plan: Arc::new(plan),
        c_in,
        in_hw: [h, w],
        pixels_in: h * w,
        cs_in,
        c_out,
        pixels_out: oh * ow,
        out_shape: [1, c_out, oh, ow],
        in_blocked: false,
        out_blocked: false,
        scratch: Arc::new(Mutex::new(scratch)),
        split: Arc::default(),
    };
    Ok(Ok((op, OutletId::new(last, 0), fused)))
}

/// Replaces every covered Conv of a typed (not yet decluttered) model by a `GssConv`. With
/// `keep_layout` (variant b′), each becomes reorder → GssConv (blocked in and out) → reorder,
/// elementwise ops between two such convs move onto the blocked values, and every reorder to
/// plain that only feeds a reorder back to the same blocked layout cancels.
fn patch_convs(model: &mut TypedModel, keep_layout: bool) -> TractResult<Coverage> {
    let mut cov = Coverage::default();
    let convs: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<Conv>())
        .map(|n| n.id)
        .collect();
    cov.convs = convs.len();
    for id in convs {
        let node = model.node(id).clone();
        let conv = node.op_as::<Conv>().expect("filtered above");
        match gss_conv(model, &node, conv)? {
            Ok((op, replaced, fused)) => {
                let mut patch = TypedModelPatch::new(format!("gss conv {}", node.name));
                let tap = patch.tap_model(model, node.inputs[0])?;
                cov.replaced.push(op.kind.clone());
                cov.clips_fused += usize::from(fused > 0);
                cov.ops.push(op.clone());
                let wire = if keep_layout {
                    let [_, c, h, w] = op.input_shape();
                    let [_, c_out, oh, ow] = op.out_shape;
                    let to_blocked = GssReorder {
                        to_blocked: true,
                        c,
                        h,
                        w,
                        cs: op.cs_in,
                    };
                    let to_plain = GssReorder {
                        to_blocked: false,
                        c: c_out,
                        h: oh,
                        w: ow,
                        cs: op.plan.cs_out,
                    };
                    let op = GssConv {
                        in_blocked: true,
                        out_blocked: true,
                        ..op
                    };
                    let x =
                        patch.wire_node(format!("{}.to_blocked", node.name), to_blocked, &[tap])?;
                    let y = patch.wire_node(format!("{}.gss", node.name), op, &x)?;
                    patch.wire_node(format!("{}.to_plain", node.name), to_plain, &y)?[0]
                } else {
                    patch.wire_node(format!("{}.gss", node.name), op, &[tap])?[0]
                };
                patch.shunt_outside(model, replaced, wire)?;
                patch.apply(model)?;
            }
            Err(why) => cov.left.push(format!("{} ({why})", node.name)),
        }
    }
    if keep_layout {
        cov.moved = blocked_elementwise(model)?;
        cov.cancelled = cancel_reorders(model)?;
    }
    Ok(cov)
}

/// The reorder to plain `o` comes from, if any.
fn to_plain_of(model: &TypedModel, o: OutletId) -> Option<GssReorder> {
    model
        .node(o.node)
        .op_as::<GssReorder>()
        .filter(|r| !r.to_blocked)
        .cloned()
}

/// Binary ops whose inputs are reorders to plain of the same blocked layout (a residual Add), or
/// one such reorder and a scalar constant (a ReLU after it), run on the blocked values, then one
/// reorder to plain. Returns how many moved.
fn blocked_elementwise(model: &mut TypedModel) -> TractResult<usize> {
    let mut moved = 0;
    for id in model.eval_order()? {
        let node = model.node(id).clone();
        let Some(bin) = node.op_as::<TypedBinOp>() else {
            continue;
        };
        let layouts: Vec<Option<GssReorder>> =
            node.inputs.iter().map(|&i| to_plain_of(model, i)).collect();
        let Some(layout) = layouts.iter().flatten().next().cloned() else {
            continue;
        };
        let mut ok = model.outlet_fact(id.into())?.shape.as_concrete() == Some(&layout.plain()[..]);
        let mut taps = TVec::new();
        let mut patch = TypedModelPatch::new(format!("gss blocked {}", node.name));
        for (&i, l) in node.inputs.iter().zip(&layouts) {
            match l {
                Some(l) if *l == layout => {
                    taps.push(patch.tap_model(model, model.node(i.node).inputs[0])?)
                }
                None if konst(model, i)?.is_some_and(|t| t.len() == 1) => {
                    let t = konst(model, i)?.expect("checked");
                    let scalar = t.cast_to::<f32>()?.into_owned().into_shape(&[1, 1, 1, 1])?;
                    taps.push(patch.add_const(format!("{}.scalar", node.name), scalar)?);
                }
                _ => ok = false,
            }
        }
        if !ok {
            continue;
        }
        let y = patch.wire_node(format!("{}.blocked", node.name), bin.clone(), &taps)?;
        let plain = patch.wire_node(format!("{}.to_plain", node.name), layout, &y)?[0];
        patch.shunt_outside(model, id.into(), plain)?;
        patch.apply(model)?;
        moved += 1;
    }
    Ok(moved)
}

/// A reorder to blocked reading a reorder to plain of the same layout reads its blocked input
/// instead. Returns how many cancelled.
fn cancel_reorders(model: &mut TypedModel) -> TractResult<usize> {
    let mut cancelled = 0;
    for id in model.eval_order()? {
        let node = model.node(id).clone();
        let Some(r) = node.op_as::<GssReorder>().filter(|r| r.to_blocked) else {
            continue;
        };
        let Some(p) = to_plain_of(model, node.inputs[0]) else {
            continue;
        };
        if (p.c, p.h, p.w, p.cs) != (r.c, r.h, r.w, r.cs) {
            continue;
        }
        let blocked = model.node(node.inputs[0].node).inputs[0];
        let mut patch = TypedModelPatch::new(format!("gss cancel {}", node.name));
        let tap = patch.tap_model(model, blocked)?;
        patch.shunt_outside(model, id.into(), tap)?;
        patch.apply(model)?;
        cancelled += 1;
    }
    Ok(cancelled)
}

struct Args {
    files: Vec<String>,
    threads: Vec<usize>,
    rounds: usize,
    max_token: i64,
    profile: bool,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        files: vec![],
        threads: vec![1],
        rounds: 40,
        max_token: 512,
        profile: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--threads" => {
                a.threads = value("--threads")?
                    .split(',')
                    .map(|t| t.parse().map_err(|e| format!("--threads: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--rounds" => {
                a.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?
            }
            "--max-token" => {
                a.max_token = value("--max-token")?
                    .parse()
                    .map_err(|e| format!("--max-token: {e}"))?
            }
            "--no-profile" => a.profile = false,
            f if !f.starts_with('-') => a.files.push(f.to_string()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.files.is_empty() || a.rounds == 0 {
        return Err(
            "usage: cargo bench --bench custom_op -- FILE.onnx... [--threads 1,2] [--rounds 40]"
                .into(),
        );
    }
    Ok(a)
}

/// The deterministic input `cargo bench --bench graph` gives a graph.
fn input_for(fact: &TypedFact, max_token: i64) -> Result<Tensor, String> {
    let shape: Vec<usize> = fact
        .shape
        .as_concrete()
        .ok_or("input shape not concrete")?
        .to_vec();
    let n: usize = shape.iter().product();
    let t = match fact.datum_type {
        DatumType::F32 => Tensor::from_shape(
            &shape,
            &(0..n)
                .map(|i| ((i * 7919) % 256) as f32)
                .collect::<Vec<_>>(),
        ),
        DatumType::I64 => Tensor::from_shape(
            &shape,
            &(0..n)
                .map(|i| (i as i64 * 7919) % max_token)
                .collect::<Vec<_>>(),
        ),
        other => return Err(format!("inputs of type {other:?} are not generated")),
    };
    t.map_err(|e| e.to_string())
}

/// One graph four ways.
struct Ways {
    file: String,
    tract: Arc<TypedRunnableModel>,
    /// Road (b): every covered Conv a GssConv with its reorders inside.
    patched: Arc<TypedRunnableModel>,
    /// Variant b′: reorders as nodes, cancelled between GssConvs.
    kept: Arc<TypedRunnableModel>,
    graph: gss::engine::lowering::Graph,
    input: Tensor,
    /// The input as road (a) takes it (token ids as u32 bits).
    values: Vec<f32>,
    cov: Coverage,
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn patched_plan(
    file: &str,
    keep_layout: bool,
) -> Result<(Arc<TypedRunnableModel>, Coverage, usize), String> {
    let mut typed = tract_onnx::onnx()
        .model_for_path(file)
        .and_then(|m| m.into_typed())
        .map_err(|e| format!("{e:#}"))?;
    let cov = patch_convs(&mut typed, keep_layout).map_err(|e| format!("{e:#}"))?;
    let optimized = typed.into_optimized().map_err(|e| format!("{e:#}"))?;
    let reorders = optimized
        .nodes()
        .iter()
        .filter(|n| n.op_is::<GssReorder>())
        .count();
    Ok((
        optimized.into_runnable().map_err(|e| format!("{e:#}"))?,
        cov,
        reorders,
    ))
}

fn build(file: &str, max_token: i64) -> Result<Ways, String> {
    let (tract, facts) = plan_onnx_file(file.as_ref(), &[], &[]).map_err(e2s)?;
    let [fact] = facts.as_slice() else {
        return Err(format!("{file}: one input expected"));
    };
    let (patched, cov, _) = patched_plan(file, false)?;
    let (kept, kept_cov, reorders) = patched_plan(file, true)?;
    let graph = gss::engine::lowering::load(file.as_ref(), fact.clone(), BACKEND).map_err(e2s)?;
    let input = input_for(fact, max_token)?;
    let values: Vec<f32> = match input.datum_type() {
        DatumType::F32 => input
            .to_plain_array_view::<f32>()
            .map_err(e2s)?
            .iter()
            .copied()
            .collect(),
        _ => input
            .to_plain_array_view::<i64>()
            .map_err(e2s)?
            .iter()
            .map(|&t| f32::from_bits(t as u32))
            .collect(),
    };
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for k in &cov.replaced {
        match kinds.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 += 1,
            None => kinds.push((k.clone(), 1)),
        }
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "{file}: {} Conv nodes, {} replaced by GssConv ({}), {} with a Clip (Max/Min) fused, left to tract: {}",
        cov.convs,
        cov.replaced.len(),
        kinds.join(", "),
        cov.clips_fused,
        if cov.left.is_empty() { "none".to_string() } else { cov.left.join(", ") }
    );
    println!(
        "{file}: variant b′: {} binary ops moved onto blocked values, {} reorder pairs cancelled, {} GssReorder nodes left in the plan (road b: {} reorders inside its GssConvs)",
        kept_cov.moved,
        kept_cov.cancelled,
        reorders,
        2 * cov.replaced.len()
    );
    Ok(Ways {
        file: file.to_string(),
        tract,
        patched,
        kept,
        graph,
        input,
        values,
        cov,
    })
}

fn output_f32(t: &TValue) -> Result<Vec<f32>, String> {
    let t = t.cast_to::<f32>().map_err(e2s)?;
    Ok(t.to_plain_array_view::<f32>()
        .map_err(e2s)?
        .iter()
        .copied()
        .collect())
}

/// (max abs diff, max |reference|).
fn diff(a: &[f32], reference: &[f32]) -> (f32, f32) {
    let d = a
        .iter()
        .zip(reference)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    (d, reference.iter().map(|y| y.abs()).fold(0.0, f32::max))
}

fn main() {
    // The settings the gss binary runs with, so figures match `gss bench`.
    gss::process::configure();
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The ways, in the order they are timed and reported.
const WAYS: [&str; 4] = ["tract", "road b", "b′", "road a"];

struct Row {
    file: String,
    threads: usize,
    ms: [Vec<f64>; 4],
}

struct Profiles {
    file: String,
    threads: usize,
    patched: GraphProfile,
    split: Vec<String>,
    kept: GraphProfile,
    gss: GraphProfile,
    tract: GraphProfile,
}

fn check(file: &str, way: &str, ours: &[f32], reference: &[f32]) {
    let (d, scale) = diff(ours, reference);
    let verdict = if d <= 1e-3 * scale.max(1.0) {
        "ok"
    } else {
        "MISMATCH"
    };
    println!(
        "{file}: {way} vs tract: max abs diff {d:.3e} (max |output| {scale:.3e}, relative {:.3e}) {verdict}",
        d / scale.max(f32::MIN_POSITIVE)
    );
}

fn reset_splits(ops: &[GssConv]) {
    for o in ops {
        let s = &o.split;
        for a in [&s.calls, &s.total, &s.to_blocked, &s.kernel, &s.to_plain] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse()?;
    let ways: Vec<Ways> = args
        .files
        .iter()
        .map(|f| build(f, args.max_token))
        .collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for &threads in &args.threads {
        with_threads(threads, || -> Result<(), String> {
            let executor = current_tract_executor();
            let pool = match &executor {
                Executor::MultiThread(pool) => Some(pool.clone()),
                _ => None,
            };
            let t = match &pool {
                Some(p) => Threads::Pool(p),
                None => Threads::One,
            };
            for w in &ways {
                let mut program =
                    Program::with_blocks(&w.graph, w.file.as_ref(), true).map_err(e2s)?;
                let mut tract = w.tract.spawn().map_err(e2s)?;
                let mut patched = w.patched.spawn().map_err(e2s)?;
                let mut kept = w.kept.spawn().map_err(e2s)?;
                let inputs: TVec<TValue> = tvec!(w.input.clone().into());
                // Correctness against tract's plan, on the first thread count.
                let reference = tract.run(inputs.clone()).map_err(e2s)?;
                let ours = patched.run(inputs.clone()).map_err(e2s)?;
                let ours_kept = kept.run(inputs.clone()).map_err(e2s)?;
                program.input_mut().copy_from_slice(&w.values);
                program.run(t, false)?;
                if threads == args.threads[0] {
                    let r = output_f32(&reference[0])?;
                    check(&w.file, "road b", &output_f32(&ours[0])?, &r);
                    check(&w.file, "b′", &output_f32(&ours_kept[0])?, &r);
                    if reference[0].datum_type() == f32::datum_type() {
                        check(&w.file, "road a", program.output(), &r);
                    }
                }
                for _ in 0..3 {
                    tract.run(inputs.clone()).map_err(e2s)?;
                    patched.run(inputs.clone()).map_err(e2s)?;
                    kept.run(inputs.clone()).map_err(e2s)?;
                    program.run(t, false)?;
                }
                let mut ms: [Vec<f64>; 4] = Default::default();
                for round in 0..args.rounds {
                    // Each way goes first in a quarter of the rounds.
                    for k in 0..WAYS.len() {
                        let way = (round + k) % WAYS.len();
                        let t0 = Instant::now();
                        match way {
                            0 => drop(tract.run(inputs.clone()).map_err(e2s)?),
                            1 => drop(patched.run(inputs.clone()).map_err(e2s)?),
                            2 => drop(kept.run(inputs.clone()).map_err(e2s)?),
                            _ => program.run(t, false)?,
                        }
                        ms[way].push(t0.elapsed().as_secs_f64() * 1e3);
                    }
                }
                ms.iter_mut().for_each(|m| m.sort_by(f64::total_cmp));
                rows.push(Row {
                    file: w.file.clone(),
                    threads,
                    ms,
                });
                if args.profile {
                    let runs = args.rounds.clamp(1, 10);
                    let input = w.input.clone();
                    reset_splits(&w.cov.ops);
                    PROFILING.store(true, Ordering::Relaxed);
                    let patched = profile_plan(&w.patched, &input, runs, threads).map_err(e2s);
                    PROFILING.store(false, Ordering::Relaxed);
                    let patched = patched?;
                    // profile_plan runs once untimed before its timed runs: runs + 1 calls.
                    let split = split_table(&w.cov.ops, runs + 1);
                    let kept = profile_plan(&w.kept, &input, runs, threads).map_err(e2s)?;
                    let tract = profile_plan(&w.tract, &input, runs, threads).map_err(e2s)?;
                    program.reset_times();
                    for _ in 0..runs {
                        program.run(t, true)?;
                    }
                    let gss = profile_of_program(&program, runs);
                    profiles.push(Profiles {
                        file: w.file.clone(),
                        threads,
                        patched,
                        split,
                        kept,
                        gss,
                        tract,
                    });
                }
            }
            Ok(())
        })?;
    }
    println!(
        "\n| graph | threads | tract p50 / min | road b (tract + GssConv) p50 / min | b′ (b, layout kept) p50 / min | road a (gss Program) p50 / min | b / a | b / tract | b′ / a | b′ / tract |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &rows {
        let p = |m: &Vec<f64>| percentile(m, 50.0);
        let [t, b, k, a] = &r.ms;
        println!(
            "| {} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.file,
            r.threads,
            p(t),
            t[0],
            p(b),
            b[0],
            p(k),
            k[0],
            p(a),
            a[0],
            p(b) / p(a),
            p(b) / p(t),
            p(k) / p(a),
            p(k) / p(t),
        );
    }
    println!(
        "(ms; {} interleaved rounds, the {} ways in rotating order; ratios of p50)",
        args.rounds,
        WAYS.len()
    );
    for p in profiles {
        let (file, threads) = (&p.file, p.threads);
        print_profile(
            &format!("{file}, {threads} thread(s), road b: tract's plan with GssConv, per op"),
            &p.patched,
        );
        println!(
            "\n{file}, {threads} thread(s), road b, GssConv's own split (ms per run; `rest`: output tensor, lock, hand-off to the pool)\n| kind | nodes | total | reorder → blocked | kernel | reorder → plain | rest |\n|---|---:|---:|---:|---:|---:|---:|"
        );
        for l in &p.split {
            println!("{l}");
        }
        print_profile(&format!("{file}, {threads} thread(s), b′: reorders as nodes, cancelled between GssConvs, per op"), &p.kept);
        print_profile(
            &format!("{file}, {threads} thread(s), road a: gss Program, per kernel"),
            &p.gss,
        );
        print_profile(
            &format!("{file}, {threads} thread(s), tract alone, per op"),
            &p.tract,
        );
    }
    Ok(())
}

/// GssConv's times per kind of conv, and all together, as table rows (ms per run).
fn split_table(ops: &[GssConv], calls_per_op: usize) -> Vec<String> {
    let mut kinds: Vec<(String, usize, [u64; 4])> = Vec::new();
    for o in ops {
        let s = &o.split;
        let v =
            [&s.total, &s.to_blocked, &s.kernel, &s.to_plain].map(|a| a.load(Ordering::Relaxed));
        for key in [o.kind.clone(), "**all**".to_string()] {
            let e = match kinds.iter().position(|k| k.0 == key) {
                Some(i) => &mut kinds[i],
                None => {
                    kinds.push((key, 0, [0; 4]));
                    kinds.last_mut().expect("pushed")
                }
            };
            e.1 += 1;
            e.2.iter_mut().zip(v).for_each(|(a, b)| *a += b);
        }
    }
    let ms = |ns: u64| ns as f64 / 1e6 / calls_per_op as f64;
    kinds
        .iter()
        .map(|(k, n, [total, tb, kernel, tp])| {
            let rest = total.saturating_sub(tb + kernel + tp);
            format!(
                "| {k} | {n} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
                ms(*total),
                ms(*tb),
                ms(*kernel),
                ms(*tp),
                ms(rest)
            )
        })
        .collect()
}

fn print_profile(title: &str, p: &GraphProfile) {
    let total = p.total().as_secs_f64() * 1e3;
    println!(
        "\n{title}: {total:.2} ms in nodes\n| op | nodes | ms | share |\n|---|---:|---:|---:|"
    );
    for (op, n, t) in p.by_op() {
        let t = t.as_secs_f64() * 1e3;
        println!("| {op} | {n} | {t:.3} | {:.0} % |", 100.0 * t / total);
    }
}

/// Runs `f` on the pool tract's own ops run on now (gss's `with_threads` scope), from one pool
/// thread as `Program::run` does: one hand-off to the pool per op instead of one per kernel.
fn on_plan_threads<R: Send>(f: impl FnOnce(Threads) -> R + Send) -> R {
    let executor = current_tract_executor();
    match &executor {
        Executor::MultiThread(pool) => pool.install(|| f(Threads::Pool(pool))),
        _ => f(Threads::One),
    }
}
