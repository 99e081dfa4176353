//! Every kernel against a plain reference on odd shapes, through the program (so the planner's
//! reorders are exercised too), in every copy this CPU can run.

use std::sync::Arc;

use super::*;
use crate::engine::lowering::{ConvGeo, ValueInfo};

/// Plain NCHW convolution (groups 1 or depthwise), the reference every copy is held to.
#[allow(clippy::too_many_arguments)]
fn reference(s: &ConvShape, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; s.c_out * s.oh * s.ow];
    for co in 0..s.c_out {
        for oy in 0..s.oh {
            for ox in 0..s.ow {
                let mut acc = b[co] as f64;
                let cis: Vec<usize> = if s.depthwise {
                    vec![co]
                } else {
                    (0..s.c_in).collect()
                };
                for (k, &ci) in cis.iter().enumerate() {
                    for ky in 0..s.kh {
                        for kx in 0..s.kw {
                            let iy = (oy * s.stride[0] + ky * s.dilation[0]) as isize
                                - s.pad[0] as isize;
                            let ix = (ox * s.stride[1] + kx * s.dilation[1]) as isize
                                - s.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= s.h as isize || ix >= s.w as isize {
                                continue;
                            }
                            let wi = if s.depthwise {
                                (co * s.kh + ky) * s.kw + kx
                            } else {
                                ((co * s.c_in + k) * s.kh + ky) * s.kw + kx
                            };
                            acc += x[(ci * s.h + iy as usize) * s.w + ix as usize] as f64
                                * w[wi] as f64;
                        }
                    }
                }
                y[(co * s.oh + oy) * s.ow + ox] = acc as f32;
            }
        }
    }
    y
}

fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn value(len: usize) -> ValueInfo {
    ValueInfo {
        len,
        dtype: DType::F32,
    }
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what}: element {i}: {g} vs {w}");
    }
}

fn run(graph: &Graph, input: &[f32], pool: Option<&rayon::ThreadPool>) -> Vec<f32> {
    let mut p = Program::new(graph, Path::new("test")).unwrap();
    p.input_mut().copy_from_slice(input);
    let threads = pool.map_or(Threads::One, Threads::Pool);
    p.run(threads, false).unwrap();
    // Twice: buffers recycled from the first run must not leak into the second.
    p.input_mut().copy_from_slice(input);
    p.run(threads, false).unwrap();
    p.output().to_vec()
}

fn conv_graph(g: &ConvGeo, w: &[f32], b: &[f32], post: Vec<Post>) -> Graph {
    Graph {
        values: vec![value(g.c_in * g.h * g.w), value(g.c_out * g.oh * g.ow)],
        steps: vec![Step {
            nodes: vec!["conv".into()],
            kernel: Kernel::Conv {
                geo: g.clone(),
                weights: Arc::new(w.to_vec()),
                bias: Arc::new(b.to_vec()),
            },
            input: 0,
            output: 1,
            post,
        }],
        input: 0,
        output: 1,
    }
}

#[allow(clippy::too_many_arguments)]
fn geo(
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    depthwise: bool,
) -> ConvGeo {
    let oh = (h + 2 * pad - k) / stride + 1;
    let ow = (w + 2 * pad - k) / stride + 1;
    ConvGeo {
        c_in,
        h,
        w,
        c_out,
        oh,
        ow,
        kh: k,
        kw: k,
        stride: [stride; 2],
        dilation: [1, 1],
        pad: [pad; 2],
        groups: if depthwise { c_in } else { 1 },
    }
}

fn shape_of(g: &ConvGeo) -> ConvShape {
    ConvShape {
        c_in: g.c_in,
        h: g.h,
        w: g.w,
        cs_in: g.c_in,
        c_out: g.c_out,
        oh: g.oh,
        ow: g.ow,
        kh: g.kh,
        kw: g.kw,
        stride: g.stride,
        dilation: g.dilation,
        pad: g.pad,
        depthwise: g.is_depthwise(),
    }
}

fn check_conv(g: ConvGeo, seed: u32) {
    let per = if g.is_depthwise() { 1 } else { g.c_in };
    let x = noise(g.c_in * g.h * g.w, seed);
    let w = noise(g.c_out * per * g.kh * g.kw, seed + 1);
    let b = noise(g.c_out, seed + 2);
    let mut want = reference(&shape_of(&g), &x, &w, &b);
    // ReLU6 fused into the store, as MobileNetV2 has it.
    want.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0));
    let graph = conv_graph(&g, &w, &b, vec![Post::Max(0.0), Post::Min(6.0)]);
    let what = format!("{g:?}");
    assert_close(&run(&graph, &x, None), &want, &what);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    assert_close(
        &run(&graph, &x, Some(&pool)),
        &want,
        &format!("{what}, 2 threads"),
    );
}

#[test]
fn pointwise_any_channel_count() {
    for (c_in, c_out) in [(16, 96), (3, 5), (24, 144), (17, 33), (1, 1), (320, 16)] {
        check_conv(geo(c_in, 7, 13, c_out, 1, 1, 0, false), c_in as u32);
    }
}

#[test]
fn depthwise_stride_1_and_2_every_padding() {
    for (c, h, w, k, s, p) in [
        (32, 9, 17, 3, 1, 1),
        (96, 8, 16, 3, 2, 1),
        (17, 5, 7, 3, 2, 0),
        (16, 1, 1, 3, 1, 1),
        (40, 6, 5, 5, 2, 2),
        (144, 3, 33, 3, 1, 1),
        // Wide enough for whole tiles away from both ends (the strided path) at stride 2.
        (24, 6, 41, 3, 2, 1),
        (48, 4, 40, 5, 2, 2),
    ] {
        check_conv(geo(c, h, w, c, k, s, p, true), (c + h) as u32);
    }
}

#[test]
fn dense_3x3_and_the_stem() {
    for (c_in, h, w, c_out, k, s, p) in [
        (3, 16, 20, 32, 3, 2, 1),
        (3, 9, 11, 12, 4, 2, 1),
        (20, 5, 9, 12, 3, 1, 1),
        (64, 4, 8, 48, 3, 1, 1),
        (8, 1, 1, 4, 3, 1, 1),
        (5, 6, 6, 7, 1, 2, 0),
        // Rows wide enough for whole tiles away from both ends (the constant-step path), for
        // the two-block tile and the one-block tile, at stride 1 and 2.
        (16, 5, 40, 12, 3, 1, 1),
        (3, 6, 70, 32, 3, 2, 1),
        (24, 4, 37, 40, 3, 1, 1),
        (8, 3, 45, 16, 5, 2, 2),
    ] {
        check_conv(
            geo(c_in, h, w, c_out, k, s, p, false),
            (c_in * h + w) as u32,
        );
    }
}

#[test]
fn dilation_and_uneven_padding() {
    let mut g = geo(10, 9, 11, 18, 3, 1, 2, false);
    g.dilation = [2, 2];
    check_conv(g, 7);
    for w in [11, 37] {
        let mut g = geo(32, 9, w, 32, 3, 1, 2, true);
        g.dilation = [2, 2];
        check_conv(g, 8);
    }
    // Top/left pad 0 with an output one short of "same": the bottom/right pad is implied.
    let mut g = geo(16, 8, 8, 16, 3, 2, 0, true);
    (g.oh, g.ow, g.pad) = (4, 4, [0, 0]);
    check_conv(g, 9);
}

/// The copies this CPU can run agree with the portable twin (and so with each other).
#[test]
fn dispatched_copies_agree_with_the_portable_twin() {
    for (g, seed) in [
        (geo(24, 9, 19, 40, 1, 1, 0, false), 1),
        (geo(48, 9, 19, 48, 3, 2, 1, true), 2),
        (geo(5, 11, 7, 36, 3, 1, 1, false), 3),
    ] {
        let per = if g.is_depthwise() { 1 } else { g.c_in };
        let mut s = shape_of(&g);
        s.cs_in = if g.is_depthwise() {
            padded(g.c_in)
        } else {
            g.c_in
        };
        let plan = ConvPlan::new(
            s,
            &noise(g.c_out * per * 9, seed),
            &noise(g.c_out, seed + 1),
            vec![],
        );
        let x = noise(plan.input_len(), seed + 2);
        let zeros = vec![0.0; s.cs_in];
        let mut fast = vec![0.0; plan.pixels() * plan.cs_out];
        let mut slow = fast.clone();
        plan.run(&x, &[], &zeros, &mut fast, Threads::One);
        plan.run_portable(&x, &zeros, &mut slow);
        assert_close(&fast, &slow, &format!("{g:?}"));
    }
}

#[test]
fn residual_add_and_resize_in_the_blocked_layout() {
    // conv → resize (x2, half-pixel) + residual from a second conv at the output size.
    let a = geo(8, 4, 6, 20, 1, 1, 0, false);
    let b = geo(8, 4, 6, 20, 3, 1, 1, false);
    let (wa, ba) = (noise(20 * 8, 1), noise(20, 2));
    let (wb, bb) = (noise(20 * 8 * 9, 3), noise(20, 4));
    let x = noise(8 * 4 * 6, 5);
    let graph = Graph {
        values: vec![
            value(8 * 24),
            value(20 * 24),
            value(20 * 96),
            value(20 * 24),
            value(20 * 24),
        ],
        steps: vec![
            Step {
                nodes: vec!["a".into()],
                kernel: Kernel::Conv {
                    geo: a.clone(),
                    weights: Arc::new(wa.clone()),
                    bias: Arc::new(ba.clone()),
                },
                input: 0,
                output: 1,
                post: vec![],
            },
            Step {
                nodes: vec!["b".into()],
                kernel: Kernel::Conv {
                    geo: b.clone(),
                    weights: Arc::new(wb.clone()),
                    bias: Arc::new(bb.clone()),
                },
                input: 0,
                output: 3,
                post: vec![Post::AddValue(1)],
            },
            Step {
                nodes: vec!["up".into()],
                kernel: Kernel::ResizeLinear {
                    planes: 20,
                    ih: 4,
                    iw: 6,
                    oh: 8,
                    ow: 12,
                    scale: [2.0, 2.0],
                    coord: ResizeCoord::HalfPixel,
                },
                input: 3,
                output: 2,
                post: vec![Post::MulScalar(0.5)],
            },
        ],
        input: 0,
        output: 2,
    };
    let ya = reference(&shape_of(&a), &x, &wa, &ba);
    let yb = reference(&shape_of(&b), &x, &wb, &bb);
    let sum: Vec<f32> = ya.iter().zip(&yb).map(|(p, q)| p + q).collect();
    // Half-pixel bilinear ×2 by hand.
    let src = |o: usize, n: usize| ((o as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, n as f32 - 1.0);
    let mut want = vec![0.0; 20 * 96];
    for c in 0..20 {
        for oy in 0..8 {
            for ox in 0..12 {
                let (fy, fx) = (src(oy, 4), src(ox, 6));
                let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
                let (y1, x1) = ((y0 + 1).min(3), (x0 + 1).min(5));
                let at = |y: usize, x: usize| sum[(c * 4 + y) * 6 + x];
                let top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * (fx - x0 as f32);
                let bot = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * (fx - x0 as f32);
                want[(c * 8 + oy) * 12 + ox] = 0.5 * (top + (bot - top) * (fy - y0 as f32));
            }
        }
    }
    assert_close(&run(&graph, &x, None), &want, "conv + residual → resize");
}

#[test]
fn blocked_argmax_gather_and_transpose() {
    // conv (5 → 19 channels) → argmax over channels, taken straight from the blocked layout.
    let g = geo(5, 3, 7, 19, 1, 1, 0, false);
    let (w, b) = (noise(19 * 5, 1), noise(19, 2));
    let x = noise(5 * 21, 3);
    let mut graph = conv_graph(&g, &w, &b, vec![]);
    graph.values.push(ValueInfo {
        len: 21,
        dtype: DType::U32,
    });
    graph.steps.push(Step {
        nodes: vec!["argmax".into()],
        kernel: Kernel::ArgMax {
            outer: 1,
            n: 19,
            inner: 21,
            take_last: false,
        },
        input: 1,
        output: 2,
        post: vec![],
    });
    graph.output = 2;
    let y = reference(&shape_of(&g), &x, &w, &b);
    let want: Vec<u32> = (0..21)
        .map(|p| {
            (0..19).fold(0, |best, c| {
                if y[c * 21 + p] > y[best * 21 + p] {
                    c
                } else {
                    best
                }
            }) as u32
        })
        .collect();
    let p = Program::new(&graph, Path::new("t")).unwrap();
    assert_eq!(
        p.kernels()
            .iter()
            .filter(|(_, k)| k.contains("reorder"))
            .count(),
        1,
        "only the input is reordered: {:?}",
        p.kernels()
    );
    let got: Vec<u32> = run(&graph, &x, None).iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, want);

    // tokens → embedding rows → NCHW by a transpose (as a 2-D one, and as the NHWC → NCHW
    // the decoders export, which is the blocked layout already) → 3×3 conv.
    for (in_shape, perm) in [
        (vec![6, 4], vec![1, 0]),
        (vec![1, 2, 3, 4], vec![0, 3, 1, 2]),
    ] {
        let table = noise(6 * 4, 4);
        let tokens: Vec<f32> = [0u32, 5, 2, 2, 1, 3]
            .iter()
            .map(|&t| f32::from_bits(t))
            .collect();
        let c = geo(4, 2, 3, 3, 3, 1, 1, false);
        let (wc, bc) = (noise(3 * 4 * 9, 5), noise(3, 6));
        let graph = Graph {
            values: vec![
                ValueInfo {
                    len: 6,
                    dtype: DType::U32,
                },
                value(24),
                value(24),
                value(18),
            ],
            steps: vec![
                Step {
                    nodes: vec!["gather".into()],
                    kernel: Kernel::Gather {
                        table: Arc::new(table.clone()),
                        rows: 6,
                        cols: 4,
                        count: 6,
                    },
                    input: 0,
                    output: 1,
                    post: vec![],
                },
                Step {
                    nodes: vec!["t".into()],
                    kernel: Kernel::Permute {
                        in_shape: in_shape.clone(),
                        perm: perm.clone(),
                    },
                    input: 1,
                    output: 2,
                    post: vec![],
                },
                Step {
                    nodes: vec!["conv".into()],
                    kernel: Kernel::Conv {
                        geo: c.clone(),
                        weights: Arc::new(wc.clone()),
                        bias: Arc::new(bc.clone()),
                    },
                    input: 2,
                    output: 3,
                    post: vec![],
                },
            ],
            input: 0,
            output: 3,
        };
        let mut nchw = vec![0.0; 24];
        for (i, t) in [0usize, 5, 2, 2, 1, 3].iter().enumerate() {
            for d in 0..4 {
                nchw[d * 6 + i] = table[t * 4 + d];
            }
        }
        assert_close(
            &run(&graph, &tokens, None),
            &reference(&shape_of(&c), &nchw, &wc, &bc),
            "gather → transpose → conv",
        );

        // A token past the table is an error naming the node, not a panic.
        let mut p = Program::new(&graph, Path::new("t")).unwrap();
        p.input_mut().copy_from_slice(&[f32::from_bits(6); 6]);
        let err = p.run(Threads::One, false).unwrap_err();
        assert!(err.contains("gather") && err.contains("outside"), "{err}");
    }
}

/// DepthToSpace as ONNX defines it (a 6-D reshape and transpose) on NCHW data: the reference.
fn depth_to_space_ref(x: &[f32], c: usize, r: usize, h: usize, w: usize, crd: bool) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for k in 0..c {
        for oy in 0..h * r {
            for ox in 0..w * r {
                let (dy, dx) = (oy % r, ox % r);
                let ch = if crd {
                    (k * r + dy) * r + dx
                } else {
                    (dy * r + dx) * c + k
                };
                y[(k * h * r + oy) * w * r + ox] = x[(ch * h + oy / r) * w + ox / r];
            }
        }
    }
    y
}

#[test]
fn depth_to_space_from_the_blocked_layout() {
    // conv (3 → c·r² channels) → DepthToSpace + ReLU + residual → conv 3×3, and DepthToSpace as
    // the graph's output; both orders, block sizes 2 and 3, channel counts off the lane count.
    for (c, r, crd) in [(5, 2, true), (16, 2, true), (3, 3, false), (7, 2, false)] {
        let (h, w) = (3, 5);
        let (oh, ow) = (h * r, w * r);
        let a = geo(3, h, w, c * r * r, 1, 1, 0, false);
        let (wa, ba) = (noise(a.c_out * 3, 1), noise(a.c_out, 2));
        let b = geo(c, oh, ow, 4, 3, 1, 1, false);
        let (wb, bb) = (noise(4 * c * 9, 3), noise(4, 4));
        let x = noise(3 * h * w, 5);
        let (in_shape, perm) = if crd {
            (vec![1, c, r, r, h, w], vec![0, 1, 4, 2, 5, 3])
        } else {
            (vec![1, r, r, c, h, w], vec![0, 3, 4, 1, 5, 2])
        };
        let ya = reference(&shape_of(&a), &x, &wa, &ba);
        let mut d2s = depth_to_space_ref(&ya, c, r, h, w, crd);
        d2s.iter_mut().for_each(|v| *v = v.max(0.0));
        // The residual: DepthToSpace of the same conv, without the ReLU (a second value).
        let mut with_res = d2s.clone();
        with_res
            .iter_mut()
            .zip(&depth_to_space_ref(&ya, c, r, h, w, crd))
            .for_each(|(v, e)| *v += e);
        let permute = |input: usize, output: usize, post: Vec<Post>| Step {
            nodes: vec!["d2s".into()],
            kernel: Kernel::Permute {
                in_shape: in_shape.clone(),
                perm: perm.clone(),
            },
            input,
            output,
            post,
        };
        let conv_a = Step {
            nodes: vec!["a".into()],
            kernel: Kernel::Conv {
                geo: a.clone(),
                weights: Arc::new(wa.clone()),
                bias: Arc::new(ba.clone()),
            },
            input: 0,
            output: 1,
            post: vec![],
        };
        let graph = Graph {
            values: vec![
                value(3 * h * w),
                value(a.c_out * h * w),
                value(c * oh * ow),
                value(c * oh * ow),
                value(4 * oh * ow),
            ],
            steps: vec![
                conv_a.clone(),
                permute(1, 2, vec![]),
                permute(1, 3, vec![Post::Max(0.0), Post::AddValue(2)]),
                Step {
                    nodes: vec!["b".into()],
                    kernel: Kernel::Conv {
                        geo: b.clone(),
                        weights: Arc::new(wb.clone()),
                        bias: Arc::new(bb.clone()),
                    },
                    input: 3,
                    output: 4,
                    post: vec![],
                },
            ],
            input: 0,
            output: 4,
        };
        let kernels = Program::new(&graph, Path::new("t")).unwrap().kernels();
        assert!(
            kernels
                .iter()
                .all(|(_, k)| !k.contains("transpose") && !k.contains("to plain")),
            "DepthToSpace stays blocked: {kernels:?}"
        );
        let want = reference(&shape_of(&b), &with_res, &wb, &bb);
        let what = format!("c {c}, r {r}, crd {crd}");
        assert_close(&run(&graph, &x, None), &want, &what);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        assert_close(
            &run(&graph, &x, Some(&pool)),
            &want,
            &format!("{what}, 2 threads"),
        );

        // As the graph's output: written plain, with its post chain.
        let graph = Graph {
            values: vec![value(3 * h * w), value(a.c_out * h * w), value(c * oh * ow)],
            steps: vec![conv_a, permute(1, 2, vec![Post::Max(0.0)])],
            input: 0,
            output: 2,
        };
        let kernels = Program::new(&graph, Path::new("t")).unwrap().kernels();
        assert!(
            kernels
                .iter()
                .any(|(_, k)| k.contains("depth-to-space (to plain)")),
            "{kernels:?}"
        );
        assert_close(
            &run(&graph, &x, Some(&pool)),
            &d2s,
            &format!("{what}, as the output"),
        );
    }
}

/// An inverted-residual block (expand 1×1 + ReLU6 → depthwise + ReLU6 → project 1×1
/// [+ the block's input]) as a graph, and its reference output. The arguments are the block's
/// own hyper-parameters, named at every call site as in the paper's tables.
#[allow(clippy::too_many_arguments)]
fn block_graph(
    c: usize,
    h: usize,
    w: usize,
    mid: usize,
    out: usize,
    stride: usize,
    expand: bool,
    seed: u32,
) -> (Graph, Vec<f32>, Vec<f32>) {
    let clip = || vec![Post::Max(0.0), Post::Min(6.0)];
    let x = noise(c * h * w, seed);
    let dw_in = if expand { mid } else { c };
    let e = geo(c, h, w, dw_in, 1, 1, 0, false);
    let d = geo(dw_in, h, w, dw_in, 3, stride, 1, true);
    let p = geo(dw_in, d.oh, d.ow, out, 1, 1, 0, false);
    let (we, be) = (noise(dw_in * c, seed + 1), noise(dw_in, seed + 2));
    let (wd, bd) = (noise(dw_in * 9, seed + 3), noise(dw_in, seed + 4));
    let (wp, bp) = (noise(out * dw_in, seed + 5), noise(out, seed + 6));
    let conv = |g: &ConvGeo, wt: &[f32], b: &[f32], input, output, post| Step {
        nodes: vec![format!("conv{output}")],
        kernel: Kernel::Conv {
            geo: g.clone(),
            weights: Arc::new(wt.to_vec()),
            bias: Arc::new(b.to_vec()),
        },
        input,
        output,
        post,
    };
    let residual = stride == 1 && c == out;
    let mut steps = vec![];
    let mut values = vec![value(c * h * w)];
    let mut t = x.clone();
    if expand {
        steps.push(conv(&e, &we, &be, 0, 1, clip()));
        values.push(value(dw_in * h * w));
        t = reference(&shape_of(&e), &t, &we, &be)
            .iter()
            .map(|v| v.clamp(0.0, 6.0))
            .collect();
    }
    let a = values.len() - 1;
    steps.push(conv(&d, &wd, &bd, a, a + 1, clip()));
    values.push(value(dw_in * d.oh * d.ow));
    t = reference(&shape_of(&d), &t, &wd, &bd)
        .iter()
        .map(|v| v.clamp(0.0, 6.0))
        .collect();
    steps.push(conv(
        &p,
        &wp,
        &bp,
        a + 1,
        a + 2,
        if residual {
            vec![Post::AddValue(0)]
        } else {
            vec![]
        },
    ));
    values.push(value(out * d.oh * d.ow));
    let mut want = reference(&shape_of(&p), &t, &wp, &bp);
    if residual {
        want.iter_mut().zip(&x).for_each(|(v, r)| *v += r);
    }
    let output = values.len() - 1;
    (
        Graph {
            values,
            steps,
            input: 0,
            output,
        },
        x,
        want,
    )
}

#[test]
fn inverted_residual_blocks_run_as_one_kernel() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // (channels, h, w, expanded, out, stride, expand): MobileNetV2's shapes shrunk, odd planes,
    // channel counts off the lane count, one-row and one-pixel planes.
    for (i, &(c, h, w, mid, out, stride, expand)) in [
        (16, 9, 17, 96, 24, 2, true),
        (24, 8, 11, 144, 24, 1, true),
        (32, 13, 9, 32, 16, 1, false),
        (17, 5, 7, 40, 17, 1, true),
        (20, 1, 19, 60, 20, 1, true),
        (8, 1, 1, 48, 8, 1, true),
        (24, 6, 41, 144, 32, 2, true),
    ]
    .iter()
    .enumerate()
    {
        let (graph, x, want) = block_graph(c, h, w, mid, out, stride, expand, 10 * i as u32);
        let kernels = Program::new(&graph, Path::new("t")).unwrap().kernels();
        assert_eq!(
            kernels
                .iter()
                .filter(|(_, k)| k.starts_with("gss block"))
                .count(),
            1,
            "one fused block: {kernels:?}"
        );
        let what = format!("block {c}→{mid}→{out} on {h}×{w}, stride {stride}, expand {expand}");
        assert_close(&run(&graph, &x, None), &want, &what);
        assert_close(
            &run(&graph, &x, Some(&pool)),
            &want,
            &format!("{what}, 2 threads"),
        );
    }
    // An expansion read elsewhere too is kept as a kernel of its own (the depthwise conv and
    // the projection still fuse).
    let (mut graph, x, want) = block_graph(16, 4, 6, 32, 16, 1, true, 99);
    graph.values.push(value(32 * 24));
    graph.steps.push(Step {
        nodes: vec!["relu".into()],
        kernel: Kernel::Copy { len: 32 * 24 },
        input: 1,
        output: graph.values.len() - 1,
        post: vec![Post::Max(0.0)],
    });
    graph.output = graph.values.len() - 2;
    let p = Program::new(&graph, Path::new("t")).unwrap();
    assert!(
        !p.kernels().iter().any(|(_, k)| k.contains("expand")),
        "{:?}",
        p.kernels()
    );
    assert_close(
        &run(&graph, &x, None),
        &want,
        "block with its expansion read twice",
    );
}
