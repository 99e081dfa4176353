//! gss's CPU executor of a lowered graph ([`crate::engine::lowering`], the same steps the wgpu
//! backend runs): each step becomes one of our kernels ([`super::kernels`]), activations stay in
//! the blocked channels-last layout between the kernels that take it, and a reorder is inserted
//! only where a step needs the plain layout (a transpose, the graph's output). Buffers are
//! allocated once, at plan time, and recycled between values whose lifetimes do not overlap, so a
//! run allocates nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::kernels::block::BlockPlan;
use super::kernels::conv::{ConvPlan, ConvShape, MAX_DEPTHWISE_SIDE};
use super::kernels::resize::{Coord, ResizePlan};
use super::kernels::{layout, padded, AlignedVec, PostOp, Threads, LANES};
use crate::engine::lowering::{ConvGeo, DType, Graph, Kernel, Post, ResizeCoord, Step, ValueId};
use crate::error::{Error, Result};

/// Residual tensors one kernel may add in its post chain; a step with more runs on tract.
const MAX_RESIDUALS: usize = 4;

/// The backend name lowering errors carry when gss's kernels cannot take a graph.
pub const BACKEND: &str = "cpu (gss kernels)";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// Row-major in the graph's own axis order.
    Plain,
    /// `[h·w][cs]`: channels-last, `cs ≥ c` elements a pixel, the rest zero or don't-care.
    Blocked {
        c: usize,
        h: usize,
        w: usize,
        cs: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Value {
    len: usize,
    layout: Layout,
}

enum Op {
    ToBlocked {
        c: usize,
        pixels: usize,
        cs: usize,
    },
    ToPlain {
        c: usize,
        pixels: usize,
        cs: usize,
    },
    Conv(Box<ConvPlan>),
    Block(Box<BlockPlan>),
    Resize(Box<ResizePlan>),
    ArgMaxBlocked {
        c: usize,
        pixels: usize,
        cs: usize,
    },
    ArgMax {
        outer: usize,
        n: usize,
        inner: usize,
        take_last: bool,
    },
    Gather {
        table: Arc<Vec<f32>>,
        rows: usize,
        cols: usize,
    },
    Permute {
        in_shape: Vec<usize>,
        perm: Vec<usize>,
        posts: Vec<PostOp>,
    },
    Apply {
        posts: Vec<PostOp>,
    },
    DepthToSpace {
        plan: Box<layout::DepthToSpace>,
        posts: Vec<PostOp>,
    },
}

struct Exec {
    /// The graph nodes this exec covers, for profiles and errors.
    nodes: String,
    op: Op,
    input: usize,
    output: usize,
    residuals: Vec<usize>,
}

impl Exec {
    fn reads(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::once(self.input).chain(self.residuals.iter().copied())
    }
}

fn op_name(op: &Op) -> String {
    match op {
        Op::ToBlocked { .. } => "gss reorder → blocked".into(),
        Op::ToPlain { .. } => "gss reorder → plain".into(),
        Op::Conv(c) if c.shape.depthwise => format!(
            "gss depthwise {}×{}/{}",
            c.shape.kh, c.shape.kw, c.shape.stride[0]
        ),
        Op::Conv(c) if c.shape.kh == 1 && c.shape.kw == 1 && c.shape.stride == [1, 1] => {
            "gss pointwise".into()
        }
        Op::Conv(c) => format!(
            "gss conv {}×{}/{}",
            c.shape.kh, c.shape.kw, c.shape.stride[0]
        ),
        Op::Block(b) => format!(
            "gss block ({}dw {}×{}/{} → project)",
            if b.has_expand() { "expand → " } else { "" },
            b.depthwise().kh,
            b.depthwise().kw,
            b.depthwise().stride[0]
        ),
        Op::Resize(_) => "gss resize".into(),
        Op::ArgMaxBlocked { .. } => "gss argmax (blocked)".into(),
        Op::ArgMax { .. } => "gss argmax".into(),
        Op::Gather { .. } => "gss gather".into(),
        Op::Permute { .. } => "gss transpose".into(),
        Op::Apply { .. } => "gss elementwise".into(),
        Op::DepthToSpace { plan, .. } if plan.cs_out.is_some() => {
            "gss depth-to-space (blocked)".into()
        }
        Op::DepthToSpace { .. } => "gss depth-to-space (to plain)".into(),
    }
}

/// What a step wants of a value.
#[derive(Clone, Copy)]
enum Want {
    Plain,
    Blocked {
        c: usize,
        h: usize,
        w: usize,
        cs: Option<usize>,
        aligned: bool,
    },
}

struct Planner<'g> {
    graph: &'g Graph,
    /// Readers of each graph value (steps, and the graph's output).
    uses: Vec<usize>,
    /// Whether inverted-residual blocks run as one kernel.
    fuse: bool,
    values: Vec<Value>,
    /// Every exec value that holds each graph value, in some layout; the first is its producer's.
    forms: Vec<Vec<usize>>,
    execs: Vec<Exec>,
}

fn unsupported(op: impl Into<String>, step: &Step) -> Error {
    Error::UnsupportedOp {
        backend: BACKEND,
        op: op.into(),
        node: step.nodes.first().cloned().unwrap_or_default(),
    }
}

impl Planner<'_> {
    fn new_value(&mut self, len: usize, layout: Layout) -> usize {
        self.values.push(Value { len, layout });
        self.values.len() - 1
    }

    fn produce(&mut self, v: ValueId, layout: Layout, len: usize) -> usize {
        let e = self.new_value(len, layout);
        self.forms[v].push(e);
        e
    }

    /// An exec value holding graph value `v` as `want` asks, adding reorders where needed.
    fn form(&mut self, v: ValueId, want: Want, step: &Step) -> Result<usize> {
        let matches = |l: Layout| match (want, l) {
            (Want::Plain, Layout::Plain) => true,
            (
                Want::Blocked {
                    c,
                    h,
                    w,
                    cs,
                    aligned,
                },
                Layout::Blocked {
                    c: c2,
                    h: h2,
                    w: w2,
                    cs: cs2,
                },
            ) => {
                (c, h, w) == (c2, h2, w2)
                    && cs.is_none_or(|cs| cs == cs2)
                    && (!aligned || cs2 % LANES == 0)
            }
            _ => false,
        };
        if let Some(&e) = self.forms[v]
            .iter()
            .find(|&&e| matches(self.values[e].layout))
        {
            return Ok(e);
        }
        let plain = match self.forms[v]
            .iter()
            .find(|&&e| self.values[e].layout == Layout::Plain)
        {
            Some(&e) => e,
            None => {
                let &from = self.forms[v]
                    .first()
                    .ok_or_else(|| unsupported("a value used before it is made", step))?;
                let Layout::Blocked { c, h, w, cs } = self.values[from].layout else {
                    unreachable!("no plain form means a blocked one")
                };
                let e = self.produce(v, Layout::Plain, c * h * w);
                self.execs.push(Exec {
                    nodes: format!("(to plain for {})", step.nodes[0]),
                    op: Op::ToPlain {
                        c,
                        pixels: h * w,
                        cs,
                    },
                    input: from,
                    output: e,
                    residuals: vec![],
                });
                e
            }
        };
        match want {
            Want::Plain => Ok(plain),
            Want::Blocked {
                c,
                h,
                w,
                cs,
                aligned,
            } => {
                if c * h * w != self.values[plain].len || self.graph.values[v].dtype != DType::F32 {
                    return Err(unsupported(
                        format!(
                            "a {c}×{h}×{w} view of a value of {} elements",
                            self.values[plain].len
                        ),
                        step,
                    ));
                }
                let cs = cs.unwrap_or(if aligned || c >= LANES { padded(c) } else { c });
                let e = self.produce(v, Layout::Blocked { c, h, w, cs }, h * w * cs);
                self.execs.push(Exec {
                    nodes: format!("(to blocked for {})", step.nodes[0]),
                    op: Op::ToBlocked {
                        c,
                        pixels: h * w,
                        cs,
                    },
                    input: plain,
                    output: e,
                    residuals: vec![],
                });
                Ok(e)
            }
        }
    }

    /// The post chain as kernel ops, with each residual in `layout`'s form.
    fn posts(&mut self, step: &Step, want: Want) -> Result<(Vec<PostOp>, Vec<usize>)> {
        let mut ops = Vec::with_capacity(step.post.len());
        let mut residuals = Vec::new();
        for p in &step.post {
            ops.push(match *p {
                Post::Max(c) => PostOp::Max(c),
                Post::Min(c) => PostOp::Min(c),
                Post::AddScalar(c) => PostOp::Add(c),
                Post::MulScalar(c) => PostOp::Mul(c),
                Post::AddValue(v) => {
                    if residuals.len() == MAX_RESIDUALS {
                        return Err(unsupported(
                            format!("more than {MAX_RESIDUALS} residual Adds on one kernel"),
                            step,
                        ));
                    }
                    residuals.push(self.form(v, want, step)?);
                    PostOp::Residual(residuals.len() - 1)
                }
            });
        }
        Ok((ops, residuals))
    }

    /// An inverted-residual block starting at `steps[0]` ([optional] expand 1×1 → depthwise →
    /// project 1×1, each intermediate read by the next step only) as one kernel: returns the
    /// steps it took, 0 when none starts here.
    fn block(&mut self, steps: &[Step]) -> Result<usize> {
        if !self.fuse {
            return Ok(0);
        }
        fn conv(s: &Step) -> Option<(&ConvGeo, &[f32], &[f32])> {
            match &s.kernel {
                Kernel::Conv { geo, weights, bias } => Some((geo, weights, bias)),
                _ => None,
            }
        }
        let flat_pointwise = |g: &ConvGeo| {
            g.groups == 1
                && (g.kh, g.kw) == (1, 1)
                && g.stride == [1, 1]
                && g.pad == [0, 0]
                && (g.h, g.w) == (g.oh, g.ow)
                && g.c_in > 0
                && g.c_out > 0
                && g.h * g.w > 0
        };
        let no_residual = |s: &Step| !s.post.iter().any(|p| matches!(p, Post::AddValue(_)));
        let only_feeds = |s: &Step, next: &Step| {
            self.uses[s.output] == 1 && next.input == s.output && s.output != self.graph.output
        };
        let expand = match steps {
            [e, d, _, ..]
                if conv(e).is_some_and(|(g, ..)| flat_pointwise(g))
                    && no_residual(e)
                    && only_feeds(e, d) =>
            {
                Some(e)
            }
            _ => None,
        };
        let rest = &steps[usize::from(expand.is_some())..];
        let [d, pj, ..] = rest else { return Ok(0) };
        let (Some((dg, dw_w, dw_b)), Some((pg, pw, pb))) = (conv(d), conv(pj)) else {
            return Ok(0);
        };
        if !dg.is_depthwise()
            || dg.kh > MAX_DEPTHWISE_SIDE
            || dg.kw > MAX_DEPTHWISE_SIDE
            || dg.oh == 0
            || dg.ow == 0
            || !no_residual(d)
            || !only_feeds(d, pj)
            || !flat_pointwise(pg)
            || pg.c_in != dg.c_out
            || (pg.h, pg.w) != (dg.oh, dg.ow)
        {
            return Ok(0);
        }
        let first = expand.unwrap_or(d);
        let (c_in, h, w) = match expand.and_then(conv) {
            Some((eg, ..)) if eg.c_out == dg.c_in && (eg.h, eg.w) == (dg.h, dg.w) => {
                (eg.c_in, eg.h, eg.w)
            }
            Some(_) => return Ok(0),
            None => (dg.c_in, dg.h, dg.w),
        };
        let input = self.form(
            first.input,
            Want::Blocked {
                c: c_in,
                h,
                w,
                cs: None,
                aligned: expand.is_none(),
            },
            first,
        )?;
        let Layout::Blocked { cs: cs_in, .. } = self.values[input].layout else {
            unreachable!("asked for blocked")
        };
        let pointwise = |c_in, cs_in, c_out, h, w| ConvShape {
            c_in,
            h,
            w,
            cs_in,
            c_out,
            oh: h,
            ow: w,
            kh: 1,
            kw: 1,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [0, 0],
            depthwise: false,
        };
        // Neither the expansion nor the depthwise conv adds a residual (checked above), so their
        // post chains form no values.
        let expand_plan = match expand {
            Some(e) => {
                let (eg, ew, eb) = conv(e).expect("matched a conv above");
                let (posts, _) = self.posts(e, Want::Plain)?;
                Some(ConvPlan::new(
                    pointwise(c_in, cs_in, eg.c_out, h, w),
                    ew,
                    eb,
                    posts,
                ))
            }
            None => None,
        };
        let dw_shape = ConvShape {
            c_in: dg.c_in,
            h: dg.h,
            w: dg.w,
            cs_in: if expand.is_some() {
                padded(dg.c_in)
            } else {
                cs_in
            },
            c_out: dg.c_out,
            oh: dg.oh,
            ow: dg.ow,
            kh: dg.kh,
            kw: dg.kw,
            stride: dg.stride,
            dilation: dg.dilation,
            pad: dg.pad,
            depthwise: true,
        };
        let (dw_posts, _) = self.posts(d, Want::Plain)?;
        let dw_plan = ConvPlan::new(dw_shape, dw_w, dw_b, dw_posts);
        let out_layout = Layout::Blocked {
            c: pg.c_out,
            h: pg.oh,
            w: pg.ow,
            cs: padded(pg.c_out),
        };
        let want_out = Want::Blocked {
            c: pg.c_out,
            h: pg.oh,
            w: pg.ow,
            cs: Some(padded(pg.c_out)),
            aligned: true,
        };
        let (posts, residuals) = self.posts(pj, want_out)?;
        let project_plan = ConvPlan::new(
            pointwise(pg.c_in, padded(pg.c_in), pg.c_out, pg.h, pg.w),
            pw,
            pb,
            posts,
        );
        let plan = BlockPlan::new(expand_plan, dw_plan, project_plan)
            .map_err(|why| unsupported(why, first))?;
        let output = self.produce(pj.output, out_layout, plan.output_len());
        let taken = 2 + usize::from(expand.is_some());
        self.execs.push(Exec {
            nodes: steps[..taken]
                .iter()
                .flat_map(|s| s.nodes.iter().cloned())
                .collect::<Vec<_>>()
                .join(" + "),
            op: Op::Block(Box::new(plan)),
            input,
            output,
            residuals,
        });
        Ok(taken)
    }

    fn step(&mut self, step: &Step) -> Result<()> {
        match &step.kernel {
            Kernel::Conv { geo, weights, bias } => {
                let depthwise = geo.is_depthwise();
                if geo.groups != 1 && !depthwise {
                    return Err(unsupported(
                        format!("grouped Conv ({} groups)", geo.groups),
                        step,
                    ));
                }
                if depthwise && (geo.kh > MAX_DEPTHWISE_SIDE || geo.kw > MAX_DEPTHWISE_SIDE) {
                    return Err(unsupported(
                        format!("depthwise {}×{} Conv", geo.kh, geo.kw),
                        step,
                    ));
                }
                if geo.h == 0
                    || geo.w == 0
                    || geo.oh == 0
                    || geo.ow == 0
                    || geo.c_in == 0
                    || geo.c_out == 0
                {
                    return Err(unsupported("an empty Conv", step));
                }
                let input = self.form(
                    step.input,
                    Want::Blocked {
                        c: geo.c_in,
                        h: geo.h,
                        w: geo.w,
                        cs: None,
                        aligned: depthwise,
                    },
                    step,
                )?;
                let Layout::Blocked { cs: cs_in, .. } = self.values[input].layout else {
                    unreachable!("asked for blocked")
                };
                let out_layout = Layout::Blocked {
                    c: geo.c_out,
                    h: geo.oh,
                    w: geo.ow,
                    cs: padded(geo.c_out),
                };
                let want_out = Want::Blocked {
                    c: geo.c_out,
                    h: geo.oh,
                    w: geo.ow,
                    cs: Some(padded(geo.c_out)),
                    aligned: true,
                };
                let (posts, residuals) = self.posts(step, want_out)?;
                let shape = ConvShape {
                    c_in: geo.c_in,
                    h: geo.h,
                    w: geo.w,
                    cs_in,
                    c_out: geo.c_out,
                    oh: geo.oh,
                    ow: geo.ow,
                    kh: geo.kh,
                    kw: geo.kw,
                    stride: geo.stride,
                    dilation: geo.dilation,
                    pad: geo.pad,
                    depthwise,
                };
                let plan = ConvPlan::new(shape, weights, bias, posts);
                let output =
                    self.produce(step.output, out_layout, geo.oh * geo.ow * padded(geo.c_out));
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op: Op::Conv(Box::new(plan)),
                    input,
                    output,
                    residuals,
                });
            }
            Kernel::ResizeLinear {
                planes,
                ih,
                iw,
                oh,
                ow,
                scale,
                coord,
            } => {
                if [*planes, *ih, *iw, *oh, *ow].contains(&0) {
                    return Err(unsupported("an empty Resize", step));
                }
                let cs = padded(*planes);
                let input = self.form(
                    step.input,
                    Want::Blocked {
                        c: *planes,
                        h: *ih,
                        w: *iw,
                        cs: Some(cs),
                        aligned: true,
                    },
                    step,
                )?;
                let want_out = Want::Blocked {
                    c: *planes,
                    h: *oh,
                    w: *ow,
                    cs: Some(cs),
                    aligned: true,
                };
                let (posts, residuals) = self.posts(step, want_out)?;
                let coord = match coord {
                    ResizeCoord::HalfPixel => Coord::HalfPixel,
                    ResizeCoord::PytorchHalfPixel => Coord::PytorchHalfPixel,
                    ResizeCoord::AlignCorners => Coord::AlignCorners,
                    ResizeCoord::Asymmetric => Coord::Asymmetric,
                };
                let plan = ResizePlan::new(*planes, *ih, *iw, *oh, *ow, *scale, coord, posts);
                let output = self.produce(
                    step.output,
                    Layout::Blocked {
                        c: *planes,
                        h: *oh,
                        w: *ow,
                        cs,
                    },
                    oh * ow * cs,
                );
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op: Op::Resize(Box::new(plan)),
                    input,
                    output,
                    residuals,
                });
            }
            Kernel::ArgMax {
                outer,
                n,
                inner,
                take_last,
            } => {
                let blocked = self.forms[step.input].iter().copied().find(|&e| {
                    matches!(self.values[e].layout, Layout::Blocked { c, h, w, .. } if c == *n && h * w == *inner)
                });
                let len = outer * inner;
                let (op, input) = match blocked {
                    Some(e) if *outer == 1 && !take_last => {
                        let Layout::Blocked { c, h, w, cs } = self.values[e].layout else {
                            unreachable!("matched blocked")
                        };
                        (
                            Op::ArgMaxBlocked {
                                c,
                                pixels: h * w,
                                cs,
                            },
                            e,
                        )
                    }
                    _ => (
                        Op::ArgMax {
                            outer: *outer,
                            n: *n,
                            inner: *inner,
                            take_last: *take_last,
                        },
                        self.form(step.input, Want::Plain, step)?,
                    ),
                };
                let output = self.produce(step.output, Layout::Plain, len);
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op,
                    input,
                    output,
                    residuals: vec![],
                });
            }
            Kernel::Gather {
                table,
                rows,
                cols,
                count,
            } => {
                let input = self.form(step.input, Want::Plain, step)?;
                let output = self.produce(step.output, Layout::Plain, count * cols);
                let op = Op::Gather {
                    table: table.clone(),
                    rows: *rows,
                    cols: *cols,
                };
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op,
                    input,
                    output,
                    residuals: vec![],
                });
                self.plain_posts(step)?;
            }
            Kernel::Permute { in_shape, perm } => {
                if self.depth_to_space(step, in_shape, perm)?
                    || self.channels_first(step, in_shape, perm)?
                {
                    return Ok(());
                }
                let input = self.form(step.input, Want::Plain, step)?;
                let (posts, residuals) = self.posts(step, Want::Plain)?;
                let len = in_shape.iter().product();
                let output = self.produce(step.output, Layout::Plain, len);
                let op = Op::Permute {
                    in_shape: in_shape.clone(),
                    perm: perm.clone(),
                    posts,
                };
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op,
                    input,
                    output,
                    residuals,
                });
            }
            Kernel::Copy { len } => {
                // Elementwise: in whatever layout the value already has, its residuals alike.
                let input = self.forms[step.input]
                    .first()
                    .copied()
                    .ok_or_else(|| unsupported("a value used before it is made", step))?;
                let layout = self.values[input].layout;
                let want = match layout {
                    Layout::Plain => Want::Plain,
                    Layout::Blocked { c, h, w, cs } => Want::Blocked {
                        c,
                        h,
                        w,
                        cs: Some(cs),
                        aligned: false,
                    },
                };
                let (posts, residuals) = self.posts(step, want)?;
                let n = if layout == Layout::Plain {
                    *len
                } else {
                    self.values[input].len
                };
                let output = self.produce(step.output, layout, n);
                self.execs.push(Exec {
                    nodes: step.nodes.join(" + "),
                    op: Op::Apply { posts },
                    input,
                    output,
                    residuals,
                });
            }
        }
        Ok(())
    }

    /// A transpose that is a DepthToSpace (the 6-D reshape-transpose-reshape ONNX defines it as,
    /// either order) of a value already in the blocked layout runs from that layout: the
    /// decoder's upsampling then costs one pass instead of a reorder, a transpose and a reorder.
    /// Returns false when the step is some other transpose.
    fn depth_to_space(&mut self, step: &Step, in_shape: &[usize], perm: &[usize]) -> Result<bool> {
        let (crd, c, r, h, w) = match (in_shape, perm) {
            (&[1, c, rh, rw, h, w], [0, 1, 4, 2, 5, 3]) => (true, c, [rh, rw], h, w),
            (&[1, rh, rw, c, h, w], [0, 3, 4, 1, 5, 2]) => (false, c, [rh, rw], h, w),
            _ => return Ok(false),
        };
        if self.graph.values[step.input].dtype != DType::F32 || [c, h, w, r[0], r[1]].contains(&0) {
            return Ok(false);
        }
        let depth = c * r[0] * r[1];
        let Some(input) = self.forms[step.input].iter().copied().find(|&e| {
            matches!(self.values[e].layout, Layout::Blocked { c: c2, h: h2, w: w2, .. } if (c2, h2, w2) == (depth, h, w))
        }) else {
            return Ok(false);
        };
        let Layout::Blocked { cs: cs_in, .. } = self.values[input].layout else {
            unreachable!("matched blocked")
        };
        let (oh, ow) = (h * r[0], w * r[1]);
        // The graph's output leaves in the plain layout anyway: write it so directly.
        let (layout, want, cs_out) = if step.output == self.graph.output {
            (Layout::Plain, Want::Plain, None)
        } else {
            let cs = padded(c);
            let want = Want::Blocked {
                c,
                h: oh,
                w: ow,
                cs: Some(cs),
                aligned: true,
            };
            (
                Layout::Blocked {
                    c,
                    h: oh,
                    w: ow,
                    cs,
                },
                want,
                Some(cs),
            )
        };
        let (posts, residuals) = self.posts(step, want)?;
        let plan = layout::DepthToSpace::new(c, h, w, r, crd, cs_in, cs_out);
        let output = self.produce(step.output, layout, plan.output_len());
        self.execs.push(Exec {
            nodes: step.nodes.join(" + "),
            op: Op::DepthToSpace {
                plan: Box::new(plan),
                posts,
            },
            input,
            output,
            residuals,
        });
        Ok(true)
    }

    /// NHWC → NCHW of a plain value (a decoder's embedding rows turned into channels) is the
    /// blocked layout already, with one pixel every `c` values: a copy, not a transpose and a
    /// reorder. Returns false for any other transpose.
    fn channels_first(&mut self, step: &Step, in_shape: &[usize], perm: &[usize]) -> Result<bool> {
        let (&[1, h, w, c], [0, 3, 1, 2]) = (in_shape, perm) else {
            return Ok(false);
        };
        if self.graph.values[step.input].dtype != DType::F32 || [h, w, c].contains(&0) {
            return Ok(false);
        }
        let input = self.form(step.input, Want::Plain, step)?;
        let layout = Layout::Blocked { c, h, w, cs: c };
        let want = Want::Blocked {
            c,
            h,
            w,
            cs: Some(c),
            aligned: false,
        };
        let (posts, residuals) = self.posts(step, want)?;
        let output = self.produce(step.output, layout, h * w * c);
        self.execs.push(Exec {
            nodes: step.nodes.join(" + "),
            op: Op::Apply { posts },
            input,
            output,
            residuals,
        });
        Ok(true)
    }

    /// Steps whose kernel has no store of its own carry their post chain as a separate pass.
    fn plain_posts(&mut self, step: &Step) -> Result<()> {
        if step.post.is_empty() {
            return Ok(());
        }
        let (posts, residuals) = self.posts(step, Want::Plain)?;
        let input = *self.forms[step.output]
            .last()
            .ok_or_else(|| unsupported("a value used before it is made", step))?;
        // The post chain replaces the value it reads: the last form becomes the only one.
        let len = self.values[input].len;
        self.forms[step.output].clear();
        let output = self.produce(step.output, Layout::Plain, len);
        self.execs.push(Exec {
            nodes: format!("(post of {})", step.nodes[0]),
            op: Op::Apply { posts },
            input,
            output,
            residuals,
        });
        Ok(())
    }
}

/// A lowered graph planned onto gss's CPU kernels, with its buffers.
pub struct Program {
    execs: Vec<Exec>,
    values: Vec<Value>,
    slot_of: Vec<usize>,
    buffers: Vec<AlignedVec>,
    input: usize,
    output: usize,
    input_dtype: DType,
    output_dtype: DType,
    /// The padding row: zeros at least as long as any pixel.
    zeros: AlignedVec,
    pub(crate) times: Vec<Duration>,
}

impl Program {
    /// Plans `graph` onto the kernels; an op they do not cover is an [`Error::UnsupportedOp`]
    /// naming the node (the backend then runs the whole graph on tract).
    pub fn new(graph: &Graph, path: &Path) -> Result<Self> {
        Self::with_blocks(graph, path, true)
    }

    /// As [`new`](Self::new); with `fuse` false, inverted-residual blocks run as three kernels
    /// (to measure what the fused block buys).
    pub fn with_blocks(graph: &Graph, path: &Path, fuse: bool) -> Result<Self> {
        let mut uses = vec![0usize; graph.values.len()];
        for s in &graph.steps {
            for v in s.reads() {
                if let Some(u) = uses.get_mut(v) {
                    *u += 1;
                }
            }
        }
        if let Some(u) = uses.get_mut(graph.output) {
            *u += 1;
        }
        let mut p = Planner {
            graph,
            uses,
            fuse,
            values: vec![],
            forms: vec![Vec::new(); graph.values.len()],
            execs: vec![],
        };
        let input = p.produce(graph.input, Layout::Plain, graph.values[graph.input].len);
        let mut i = 0;
        while i < graph.steps.len() {
            let taken = p.block(&graph.steps[i..])?;
            if taken > 0 {
                i += taken;
                continue;
            }
            p.step(&graph.steps[i])?;
            i += 1;
        }
        let last = Step {
            nodes: vec!["(graph output)".into()],
            kernel: Kernel::Copy { len: 0 },
            input: graph.output,
            output: graph.output,
            post: vec![],
        };
        let output = p.form(graph.output, Want::Plain, &last)?;
        if output == input {
            return Err(Error::Graph {
                path: path.to_path_buf(),
                source: "the output is the input".into(),
            });
        }
        let Planner { values, execs, .. } = p;

        // Liveness: a buffer returns to the pool after its last reader has run.
        let mut last_use = vec![None; values.len()];
        for (i, e) in execs.iter().enumerate() {
            for v in e.reads() {
                last_use[v] = Some(i);
            }
        }
        let mut slot_of = vec![usize::MAX; values.len()];
        let mut sizes: Vec<usize> = vec![values[input].len];
        slot_of[input] = 0;
        let mut free: Vec<usize> = Vec::new();
        for (i, e) in execs.iter().enumerate() {
            let need = values[e.output].len;
            let slot = if e.output == output {
                sizes.push(need);
                sizes.len() - 1
            } else {
                let best = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &s)| sizes[s] >= need)
                    .min_by_key(|(_, &s)| sizes[s])
                    .map(|(k, _)| k);
                match best {
                    Some(k) => free.swap_remove(k),
                    None => match free
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, &s)| sizes[s])
                        .map(|(k, _)| k)
                    {
                        // No free buffer is large enough: grow the largest rather than add one.
                        Some(k) => {
                            let s = free.swap_remove(k);
                            sizes[s] = need;
                            s
                        }
                        None => {
                            sizes.push(need);
                            sizes.len() - 1
                        }
                    },
                }
            };
            slot_of[e.output] = slot;
            for v in e.reads() {
                if last_use[v] == Some(i)
                    && v != input
                    && v != output
                    && !free.contains(&slot_of[v])
                {
                    free.push(slot_of[v]);
                }
            }
        }
        let max_pixel = values
            .iter()
            .map(|v| {
                if let Layout::Blocked { cs, c, .. } = v.layout {
                    cs.max(c)
                } else {
                    0
                }
            })
            .chain(execs.iter().map(|e| match &e.op {
                Op::Block(b) => b.widest_pixel(),
                _ => 0,
            }))
            .max()
            .unwrap_or(0);
        let times = vec![Duration::ZERO; execs.len()];
        Ok(Program {
            buffers: sizes.iter().map(|&n| AlignedVec::zeros(n)).collect(),
            execs,
            values,
            slot_of,
            input,
            output,
            input_dtype: graph.values[graph.input].dtype,
            output_dtype: graph.values[graph.output].dtype,
            zeros: AlignedVec::zeros(max_pixel.max(LANES)),
            times,
        })
    }

    /// Elements the input takes.
    pub fn input_len(&self) -> usize {
        self.values[self.input].len
    }

    pub fn output_len(&self) -> usize {
        self.values[self.output].len
    }

    pub fn output_dtype(&self) -> DType {
        self.output_dtype
    }

    pub fn input_dtype(&self) -> DType {
        self.input_dtype
    }

    /// The input buffer, to fill before [`run`](Program::run) (u32 bits for integer inputs).
    pub fn input_mut(&mut self) -> &mut [f32] {
        let n = self.values[self.input].len;
        &mut self.buffers[self.slot_of[self.input]][..n]
    }

    /// The output of the last run (u32 bits for integer outputs).
    pub fn output(&self) -> &[f32] {
        &self.buffers[self.slot_of[self.output]][..self.values[self.output].len]
    }

    /// Kernels in run order: (the graph nodes, the kernel that runs them).
    pub fn kernels(&self) -> Vec<(String, String)> {
        self.execs
            .iter()
            .map(|e| (e.nodes.clone(), op_name(&e.op)))
            .collect()
    }

    /// Zeroes the per-kernel times timed runs add to.
    pub fn reset_times(&mut self) {
        self.times.iter_mut().for_each(|t| *t = Duration::ZERO);
    }

    /// Multiply-accumulates one run does in convolutions.
    pub fn conv_macs(&self) -> usize {
        self.execs
            .iter()
            .map(|e| match &e.op {
                Op::Conv(c) => c.macs(),
                Op::Block(b) => b.macs(),
                _ => 0,
            })
            .sum()
    }

    /// Runs every kernel; with `timed`, adds each one's time to [`times`](Self::times). The
    /// error is a message naming the node (an input the graph cannot take, such as a token id
    /// past its codebook), for the caller to wrap with its stage.
    pub fn run(&mut self, threads: Threads, timed: bool) -> std::result::Result<(), String> {
        match threads {
            // The whole run on the pool: each kernel then splits its work from a pool thread,
            // which starts on its own share at once, instead of the caller handing every kernel
            // to a sleeping worker and sleeping until it is done (two wake-ups a kernel).
            Threads::Pool(pool) => pool.install(|| self.run_all(threads, timed)),
            Threads::One => self.run_all(threads, timed),
        }
    }

    fn run_all(&mut self, threads: Threads, timed: bool) -> std::result::Result<(), String> {
        for i in 0..self.execs.len() {
            let t0 = timed.then(Instant::now);
            self.run_one(i, threads)?;
            if let Some(t0) = t0 {
                self.times[i] += t0.elapsed();
            }
        }
        Ok(())
    }

    fn run_one(&mut self, i: usize, threads: Threads) -> std::result::Result<(), String> {
        let e = &self.execs[i];
        let out_slot = self.slot_of[e.output];
        let out_len = self.values[e.output].len;
        // The output buffer is never one of the step's inputs (allocated before they are freed).
        let mut out = std::mem::take(&mut self.buffers[out_slot]);
        {
            let buf = |v: usize| &self.buffers[self.slot_of[v]][..self.values[v].len];
            let x = buf(e.input);
            // At most MAX_RESIDUALS (checked when planned): slices on the stack, no Vec a run.
            let mut slots: [&[f32]; MAX_RESIDUALS] = [&[]; MAX_RESIDUALS];
            for (s, &r) in slots.iter_mut().zip(&e.residuals) {
                *s = buf(r);
            }
            let residuals = &slots[..e.residuals.len()];
            let o = &mut out[..out_len];
            match &e.op {
                Op::ToBlocked { c, pixels, cs } => {
                    layout::to_blocked(x, *c, *pixels, *cs, o, threads)
                }
                Op::ToPlain { c, pixels, cs } => layout::to_plain(x, *c, *pixels, *cs, o, threads),
                Op::Conv(plan) => plan.run(x, residuals, &self.zeros, o, threads),
                Op::Block(plan) => plan.run(x, residuals, &self.zeros, o, threads),
                Op::Resize(plan) => plan.run(x, residuals, o, threads),
                Op::ArgMaxBlocked { c, pixels, cs } => {
                    layout::argmax_blocked(x, *c, *pixels, *cs, o)
                }
                Op::ArgMax {
                    outer,
                    n,
                    inner,
                    take_last,
                } => layout::argmax_plain(x, *outer, *n, *inner, *take_last, o),
                Op::Gather { table, rows, cols } => {
                    if let Err(msg) = layout::gather(table, *rows, *cols, x, o) {
                        self.buffers[out_slot] = out;
                        return Err(format!("{}: {msg}", e.nodes));
                    }
                }
                Op::Permute {
                    in_shape,
                    perm,
                    posts,
                } => layout::permute(x, in_shape, perm, posts, residuals, o),
                Op::Apply { posts } => layout::apply(x, posts, residuals, o),
                Op::DepthToSpace { plan, posts } => plan.run(x, posts, residuals, o, threads),
            }
        }
        self.buffers[out_slot] = out;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
