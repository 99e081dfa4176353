//! Kernel tests: small hand-built graphs with awkward shapes (odd sizes, stride 2, padding at the
//! borders, groups, depthwise, dilation, several GEMM tiles) against plain CPU references.

use std::sync::Arc;

use super::backend::*;
use super::program::{PipelineCache, Program};
use crate::engine::lowering::{
    fuse, ConvGeo, DType, Graph, Kernel, Post, ResizeCoord, Step, ValueInfo,
};

/// Runs `graph` once on the default adapter. The test fails (never skips) without an adapter:
/// the test script installs lavapipe.
fn run_graph(graph: &Graph, input: &[u32]) -> Vec<u32> {
    let (info, device, queue) = open_device().unwrap_or_else(|e| {
        panic!("wgpu tests need an adapter (lavapipe: apt install mesa-vulkan-drivers): {e}")
    });
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let mut cache = PipelineCache::new();
    let program = Program::new(&device, graph, "test", None, &mut cache);
    let out_len = graph.values[graph.output].len;
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (out_len * 4) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    queue.write_buffer(program.input_buffer(), 0, bytemuck::cast_slice(input));
    let mut enc = device.create_command_encoder(&Default::default());
    program.record(&mut enc, "test");
    enc.copy_buffer_to_buffer(
        program.output_buffer(),
        0,
        &staging,
        0,
        (out_len * 4) as u64,
    );
    queue.submit([enc.finish()]);
    staging.map_async(wgpu::MapMode::Read, .., |r| r.expect("map"));
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .expect("poll");
    if let Some(e) = pollster::block_on(scope.pop()) {
        panic!("{}: {e}", info.name);
    }
    let view = staging.get_mapped_range(..).expect("mapped");
    bytemuck::cast_slice::<u8, u32>(&view).to_vec()
}

fn run_f32(graph: &Graph, input: &[f32]) -> Vec<f32> {
    let bits: Vec<u32> = input.iter().map(|v| v.to_bits()).collect();
    run_graph(graph, &bits)
        .into_iter()
        .map(f32::from_bits)
        .collect()
}

/// Deterministic pseudo-random values in [-1, 1).
fn noise(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20000) as f32 / 10000.0 - 1.0
        })
        .collect()
}

fn value(len: usize) -> ValueInfo {
    ValueInfo {
        len,
        dtype: DType::F32,
    }
}

/// input → one step → output, plus extra inputs appended to the input buffer are not needed:
/// residuals come from a second Copy step reading the same input.
fn single(kernel: Kernel, in_len: usize, out_len: usize, post: Vec<Post>) -> Graph {
    Graph {
        values: vec![value(in_len), value(out_len)],
        steps: vec![Step {
            nodes: vec!["k".into()],
            kernel,
            input: 0,
            output: 1,
            post,
        }],
        input: 0,
        output: 1,
    }
}

fn conv_ref(g: &ConvGeo, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let cg = g.c_in / g.groups;
    let mg = g.c_out / g.groups;
    let mut y = vec![0.0; g.c_out * g.oh * g.ow];
    for co in 0..g.c_out {
        let grp = co / mg;
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let mut acc = b[co];
                for ci in 0..cg {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize
                                - g.pad[0] as isize;
                            let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize
                                - g.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                continue;
                            }
                            let xv =
                                x[(grp * cg + ci) * g.h * g.w + iy as usize * g.w + ix as usize];
                            acc += w[((co * cg + ci) * g.kh + ky) * g.kw + kx] * xv;
                        }
                    }
                }
                y[(co * g.oh + oy) * g.ow + ox] = acc;
            }
        }
    }
    y
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}: element {i}: gpu {a} vs cpu {b}"
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn geo(
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    pad: [usize; 2],
    groups: usize,
) -> ConvGeo {
    // Output size with symmetric padding (pad on both sides), as ONNX explicit pads give.
    let oh = (h + 2 * pad[0] - dilation[0] * (k[0] - 1) - 1) / stride[0] + 1;
    let ow = (w + 2 * pad[1] - dilation[1] * (k[1] - 1) - 1) / stride[1] + 1;
    ConvGeo {
        c_in,
        h,
        w,
        c_out,
        oh,
        ow,
        kh: k[0],
        kw: k[1],
        stride,
        dilation,
        pad,
        groups,
    }
}

fn check_conv(g: ConvGeo, post: Vec<Post>, seed: u32) {
    let x = noise(g.c_in * g.h * g.w, seed);
    let w = noise(g.c_out * (g.c_in / g.groups) * g.kh * g.kw, seed + 1);
    let b = noise(g.c_out, seed + 2);
    let mut want = conv_ref(&g, &x, &w, &b);
    for v in &mut want {
        for p in &post {
            match p {
                Post::Max(c) => *v = v.max(*c),
                Post::Min(c) => *v = v.min(*c),
                _ => unreachable!(),
            }
        }
    }
    let out = g.c_out * g.oh * g.ow;
    let kernel = Kernel::Conv {
        geo: g.clone(),
        weights: Arc::new(w),
        bias: Arc::new(b),
    };
    let got = run_f32(&single(kernel, x.len(), out, post), &x);
    assert_close(&got, &want, 1e-4, &format!("{g:?}"));
}

#[test]
fn dense_conv_stride2_odd_sizes_and_padding() {
    check_conv(
        geo(3, 7, 9, 5, [3, 3], [2, 2], [1, 1], [1, 1], 1),
        vec![Post::Max(0.0), Post::Min(6.0)],
        1,
    );
}

#[test]
fn pointwise_conv_spans_several_tiles() {
    // 70 output channels (two 64-row tiles), 5×27 = 135 pixels (three 64-column tiles), K = 20.
    check_conv(
        geo(20, 5, 27, 70, [1, 1], [1, 1], [1, 1], [0, 0], 1),
        vec![],
        2,
    );
}

#[test]
fn dense_conv_with_long_reduction() {
    // K = 40·9 = 360: 23 shared-memory chunks, the last one partial.
    check_conv(
        geo(40, 6, 5, 24, [3, 3], [1, 1], [1, 1], [1, 1], 1),
        vec![Post::Max(0.0)],
        3,
    );
}

#[test]
fn grouped_conv() {
    check_conv(
        geo(4, 6, 7, 6, [3, 3], [1, 1], [1, 1], [1, 1], 2),
        vec![],
        4,
    );
}

#[test]
fn depthwise_stride2_odd_sizes() {
    check_conv(
        geo(6, 11, 13, 6, [3, 3], [2, 2], [1, 1], [1, 1], 6),
        vec![Post::Max(0.0), Post::Min(6.0)],
        5,
    );
}

#[test]
fn depthwise_dilated_tiles_across_edges() {
    // 19×37 output: partial 16×8 tiles on both edges; dilation 2 with padding 2.
    check_conv(
        geo(3, 19, 37, 3, [3, 3], [1, 1], [2, 2], [2, 2], 3),
        vec![],
        6,
    );
}

#[test]
fn fused_residual_add_reads_the_right_buffer() {
    // y = relu(conv(x) + x): the lowering's Copy(Add) step fused into the conv by `fuse`.
    let g = geo(8, 5, 7, 8, [1, 1], [1, 1], [1, 1], [0, 0], 1);
    let n = 8 * 5 * 7;
    let x = noise(n, 7);
    let w = noise(64, 8);
    let b = noise(8, 9);
    let mut graph = Graph {
        values: vec![value(n), value(n), value(n), value(n)],
        steps: vec![
            Step {
                nodes: vec!["conv".into()],
                kernel: Kernel::Conv {
                    geo: g.clone(),
                    weights: Arc::new(w.clone()),
                    bias: Arc::new(b.clone()),
                },
                input: 0,
                output: 1,
                post: vec![],
            },
            Step {
                nodes: vec!["add".into()],
                kernel: Kernel::Copy { len: n },
                input: 1,
                output: 2,
                post: vec![Post::AddValue(0)],
            },
            Step {
                nodes: vec!["relu".into()],
                kernel: Kernel::Copy { len: n },
                input: 2,
                output: 3,
                post: vec![Post::Max(0.0)],
            },
        ],
        input: 0,
        output: 3,
    };
    fuse(&mut graph);
    assert_eq!(graph.steps.len(), 1, "conv + add + relu fuse into one step");
    assert_eq!(graph.steps[0].post, vec![Post::AddValue(0), Post::Max(0.0)]);
    let want: Vec<f32> = conv_ref(&g, &x, &w, &b)
        .iter()
        .zip(&x)
        .map(|(c, x)| (c + x).max(0.0))
        .collect();
    assert_close(&run_f32(&graph, &x), &want, 1e-4, "conv+add+relu");
}

fn resize_ref(
    x: &[f32],
    planes: usize,
    ih: usize,
    iw: usize,
    oh: usize,
    ow: usize,
    align: bool,
) -> Vec<f32> {
    let src = |o: usize, i: usize, n: usize| -> f32 {
        let v = if align {
            if n > 1 {
                o as f32 * (i as f32 - 1.0) / (n as f32 - 1.0)
            } else {
                0.0
            }
        } else {
            (o as f32 + 0.5) * i as f32 / n as f32 - 0.5
        };
        v.clamp(0.0, i as f32 - 1.0)
    };
    let mut y = Vec::new();
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let (fy, fx) = (src(oy, ih, oh), src(ox, iw, ow));
                let (y0, x0) = (fy.floor() as usize, fx.floor() as usize);
                let (y1, x1) = ((y0 + 1).min(ih - 1), (x0 + 1).min(iw - 1));
                let (dy, dx) = (fy - y0 as f32, fx - x0 as f32);
                let at = |yy: usize, xx: usize| x[p * ih * iw + yy * iw + xx];
                let top = at(y0, x0) * (1.0 - dx) + at(y0, x1) * dx;
                let bot = at(y1, x0) * (1.0 - dx) + at(y1, x1) * dx;
                y.push(top * (1.0 - dy) + bot * dy);
            }
        }
    }
    y
}

#[test]
fn bilinear_resize_half_pixel_and_align_corners() {
    for (coord, align) in [
        (ResizeCoord::HalfPixel, false),
        (ResizeCoord::AlignCorners, true),
    ] {
        let (planes, ih, iw, oh, ow) = (3, 3, 5, 12, 9);
        let x = noise(planes * ih * iw, 11);
        let scale = [oh as f32 / ih as f32, ow as f32 / iw as f32];
        let k = Kernel::ResizeLinear {
            planes,
            ih,
            iw,
            oh,
            ow,
            scale,
            coord,
        };
        let got = run_f32(&single(k, x.len(), planes * oh * ow, vec![]), &x);
        assert_close(
            &got,
            &resize_ref(&x, planes, ih, iw, oh, ow, align),
            1e-5,
            &format!("{coord:?}"),
        );
    }
}

#[test]
fn argmax_takes_the_first_maximum() {
    // (outer 1, n 5 channels, inner 7 pixels); pixel 3 has a tie between channels 1 and 4.
    let mut x = noise(35, 12);
    x[7 + 3] = 5.0;
    x[4 * 7 + 3] = 5.0;
    let graph = Graph {
        values: vec![
            value(35),
            ValueInfo {
                len: 7,
                dtype: DType::U32,
            },
        ],
        steps: vec![Step {
            nodes: vec!["argmax".into()],
            kernel: Kernel::ArgMax {
                outer: 1,
                n: 5,
                inner: 7,
                take_last: false,
            },
            input: 0,
            output: 1,
            post: vec![],
        }],
        input: 0,
        output: 1,
    };
    let bits: Vec<u32> = x.iter().map(|v| v.to_bits()).collect();
    let got = run_graph(&graph, &bits);
    let want: Vec<u32> = (0..7)
        .map(|p| {
            let mut best = 0;
            for c in 1..5 {
                if x[c * 7 + p] > x[best * 7 + p] {
                    best = c;
                }
            }
            best as u32
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[3], 1);
}

#[test]
fn gather_then_depth_to_space() {
    // ids (2×3) → table rows of 8 → (2,3,8) → NCHW (8,2,3) → DepthToSpace(2): (2,4,6).
    let table: Vec<f32> = (0..5 * 8).map(|i| i as f32).collect();
    let ids = [4u32, 0, 3, 1, 2, 4];
    let nchw_perm = vec![2, 0, 1];
    // DepthToSpace (DCR) as tract lowers it: reshape (2,2,2,2,3) then move axes → perm.
    let d2s_shape = vec![2, 2, 2, 2, 3];
    let d2s_perm = vec![2, 3, 0, 4, 1];
    let mut graph = Graph {
        values: vec![
            ValueInfo {
                len: 6,
                dtype: DType::U32,
            },
            value(48),
            value(48),
            value(48),
        ],
        steps: vec![
            Step {
                nodes: vec!["gather".into()],
                kernel: Kernel::Gather {
                    table: Arc::new(table.clone()),
                    rows: 5,
                    cols: 8,
                    count: 6,
                },
                input: 0,
                output: 1,
                post: vec![],
            },
            Step {
                nodes: vec!["nchw".into()],
                kernel: Kernel::Permute {
                    in_shape: vec![2, 3, 8],
                    perm: nchw_perm,
                },
                input: 1,
                output: 2,
                post: vec![],
            },
            Step {
                nodes: vec!["d2s".into()],
                kernel: Kernel::Permute {
                    in_shape: d2s_shape,
                    perm: d2s_perm,
                },
                input: 2,
                output: 3,
                post: vec![Post::Max(3.0)],
            },
        ],
        input: 0,
        output: 3,
    };
    fuse(&mut graph);
    let got: Vec<f32> = run_graph(&graph, &ids)
        .into_iter()
        .map(f32::from_bits)
        .collect();
    // CPU reference: emb[c][y][x] = table[ids[y*3+x]][c]; d2s: out[c][2y+by][2x+bx] = emb[(by*2+bx)*2+c][y][x].
    let mut want = vec![0.0; 48];
    for c in 0..2 {
        for y in 0..2 {
            for x in 0..3 {
                for by in 0..2 {
                    for bx in 0..2 {
                        let ch = (by * 2 + bx) * 2 + c;
                        let v: f32 = table[ids[y * 3 + x] as usize * 8 + ch];
                        want[c * 24 + (2 * y + by) * 6 + 2 * x + bx] = v.max(3.0);
                    }
                }
            }
        }
    }
    assert_eq!(got, want);
}

/// The stream features run above the backend, so the GPU gets them: token reuse gives the full
/// decode bit for bit, and confidence and the stabiliser read the prior's logits.
#[test]
fn stream_features_on_the_gpu() {
    use crate::engine::stream::tests::{logits_features_work, reused_tiles_match};
    use crate::engine::{BackendKind, Kernels};
    reused_tiles_match(BackendKind::Wgpu, Kernels::Auto);
    logits_features_work(BackendKind::Wgpu);
}
