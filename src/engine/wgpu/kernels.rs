//! WGSL for each [`Kernel`]: every shape, stride and the fused epilogue are baked into the source
//! as constants (the graph's shapes are fixed at load), so the shader compiler can fold index
//! arithmetic and unroll small loops. Identical sources share one pipeline.
//!
//! Bindings are always: 0 = main input, 1.. = constant parameters (weights, bias, tables), then
//! the output, then one binding per residual the epilogue adds.

use std::fmt::Write;

use crate::engine::lowering::{ConvGeo, Kernel, Post, ResizeCoord, Step};

/// Threads per workgroup of the one-thread-per-element kernels.
const LINEAR_WG: u32 = 256;
/// Largest workgroup count per dispatch axis that every adapter accepts.
const MAX_GROUPS: u32 = 65535;

/// A step ready for pipeline creation: the source, how many parameter buffers it binds after the
/// input, and its dispatch size.
pub struct Compiled {
    pub source: String,
    pub params: Vec<std::sync::Arc<Vec<f32>>>,
    pub groups: [u32; 3],
}

fn f(v: f32) -> String {
    // WGSL needs a decimal point or exponent on float literals; `{:?}` keeps full precision.
    let s = format!("{v:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// The epilogue as WGSL statements on `v`, the value about to be stored at flat index `idx`.
fn epilogue(post: &[Post], first_residual_binding: usize) -> (String, String) {
    let mut decls = String::new();
    let mut code = String::new();
    let mut r = 0;
    for p in post {
        match p {
            Post::Max(c) => writeln!(code, "    v = max(v, {});", f(*c)),
            Post::Min(c) => writeln!(code, "    v = min(v, {});", f(*c)),
            Post::AddScalar(c) => writeln!(code, "    v = v + {};", f(*c)),
            Post::MulScalar(c) => writeln!(code, "    v = v * {};", f(*c)),
            Post::AddValue(_) => {
                let _ = writeln!(
                    decls,
                    "@group(0) @binding({}) var<storage, read> res{r}: array<f32>;",
                    first_residual_binding + r
                );
                let res = writeln!(code, "    v = v + res{r}[idx];");
                r += 1;
                res
            }
        }
        .ok();
    }
    (decls, code)
}

/// Spreads `n` workgroups over x and y so no axis exceeds the per-dimension limit.
fn spread(n: u32) -> [u32; 3] {
    if n <= MAX_GROUPS {
        [n.max(1), 1, 1]
    } else {
        [MAX_GROUPS, n.div_ceil(MAX_GROUPS), 1]
    }
}

fn div_ceil(a: usize, b: usize) -> u32 {
    a.div_ceil(b) as u32
}

/// Header of the one-thread-per-element kernels: `i` is the flat element index; threads past
/// `total` return.
fn linear_head(total: usize, groups: [u32; 3]) -> String {
    format!(
        "@compute @workgroup_size({LINEAR_WG})\n\
         fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {{\n\
         \x20   let i = (wid.y * {gx}u + wid.x) * {LINEAR_WG}u + lid;\n\
         \x20   if (i >= {total}u) {{ return; }}\n",
        gx = groups[0]
    )
}

pub fn compile(step: &Step) -> Compiled {
    match &step.kernel {
        Kernel::Conv { geo, weights, bias } => {
            let params = vec![weights.clone(), bias.clone()];
            if geo.is_depthwise() {
                Compiled { source: depthwise(geo, &step.post), params, groups: depthwise_groups(geo) }
            } else {
                let (source, groups) = gemm(geo, &step.post);
                Compiled { source, params, groups }
            }
        }
        Kernel::ResizeLinear { planes, ih, iw, oh, ow, scale, coord } => {
            let total = planes * oh * ow;
            let groups = spread(div_ceil(total, LINEAR_WG as usize));
            let (decls, post) = epilogue(&step.post, 2);
            let src_coord = |o: &str, len_in: usize, len_out: usize, s: f32| -> String {
                let s = f(s);
                match coord {
                    ResizeCoord::HalfPixel => format!("(f32({o}) + 0.5) / {s} - 0.5"),
                    ResizeCoord::PytorchHalfPixel if len_out > 1 => format!("(f32({o}) + 0.5) / {s} - 0.5"),
                    ResizeCoord::PytorchHalfPixel => "0.0".into(),
                    ResizeCoord::AlignCorners if len_out > 1 => {
                        format!("f32({o}) * {}", f((len_in as f32 - 1.0) / (len_out as f32 - 1.0)))
                    }
                    ResizeCoord::AlignCorners => "0.0".into(),
                    ResizeCoord::Asymmetric => format!("f32({o}) / {s}"),
                }
            };
            let source = format!(
                "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
                 @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n{decls}\n{head}\
                 \x20   let idx = i;\n\
                 \x20   let ox = i % {ow}u; let oy = (i / {ow}u) % {oh}u; let plane = i / {ohw}u;\n\
                 \x20   let fy = clamp({sy}, 0.0, {ihm});\n\
                 \x20   let fx = clamp({sx}, 0.0, {iwm});\n\
                 \x20   let y0 = u32(floor(fy)); let x0 = u32(floor(fx));\n\
                 \x20   let y1 = min(y0 + 1u, {ih}u - 1u); let x1 = min(x0 + 1u, {iw}u - 1u);\n\
                 \x20   let dy = fy - f32(y0); let dx = fx - f32(x0);\n\
                 \x20   let base = plane * {ihw}u;\n\
                 \x20   let top = mix(x[base + y0 * {iw}u + x0], x[base + y0 * {iw}u + x1], dx);\n\
                 \x20   let bot = mix(x[base + y1 * {iw}u + x0], x[base + y1 * {iw}u + x1], dx);\n\
                 \x20   var v = mix(top, bot, dy);\n{post}\
                 \x20   y[i] = v;\n}}\n",
                head = linear_head(total, groups),
                ohw = oh * ow,
                ihw = ih * iw,
                sy = src_coord("oy", *ih, *oh, scale[0]),
                sx = src_coord("ox", *iw, *ow, scale[1]),
                ihm = f(*ih as f32 - 1.0),
                iwm = f(*iw as f32 - 1.0),
            );
            Compiled { source, params: vec![], groups }
        }
        Kernel::ArgMax { outer, n, inner, take_last } => {
            let total = outer * inner;
            let groups = spread(div_ceil(total, LINEAR_WG as usize));
            let cmp = if *take_last { ">=" } else { ">" };
            let source = format!(
                "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
                 @group(0) @binding(1) var<storage, read_write> y: array<u32>;\n{head}\
                 \x20   let o = i / {inner}u; let r = i % {inner}u;\n\
                 \x20   let base = o * {n}u * {inner}u + r;\n\
                 \x20   var best = x[base]; var arg = 0u;\n\
                 \x20   for (var c = 1u; c < {n}u; c++) {{\n\
                 \x20       let v = x[base + c * {inner}u];\n\
                 \x20       if (v {cmp} best) {{ best = v; arg = c; }}\n\
                 \x20   }}\n\
                 \x20   y[i] = arg;\n}}\n",
                head = linear_head(total, groups),
            );
            Compiled { source, params: vec![], groups }
        }
        Kernel::Gather { table, rows, cols, count } => {
            let total = count * cols;
            let groups = spread(div_ceil(total, LINEAR_WG as usize));
            let (decls, post) = epilogue(&step.post, 3);
            // Out-of-range ids cannot come from the prior's ArgMax; host-supplied ids are checked
            // before upload. The clamp only keeps a stray id from reading outside the table.
            let source = format!(
                "@group(0) @binding(0) var<storage, read> ids: array<u32>;\n\
                 @group(0) @binding(1) var<storage, read> table: array<f32>;\n\
                 @group(0) @binding(2) var<storage, read_write> y: array<f32>;\n{decls}\n{head}\
                 \x20   let idx = i;\n\
                 \x20   let row = min(ids[i / {cols}u], {rows}u - 1u);\n\
                 \x20   var v = table[row * {cols}u + i % {cols}u];\n{post}\
                 \x20   y[i] = v;\n}}\n",
                head = linear_head(total, groups),
            );
            Compiled { source, params: vec![table.clone()], groups }
        }
        Kernel::Permute { in_shape, perm } => {
            let total: usize = in_shape.iter().product();
            let groups = spread(div_ceil(total, LINEAR_WG as usize));
            let (decls, post) = epilogue(&step.post, 2);
            let mut strides = vec![1usize; in_shape.len()];
            for a in (0..in_shape.len().saturating_sub(1)).rev() {
                strides[a] = strides[a + 1] * in_shape[a + 1];
            }
            let mut walk = String::new();
            for &a in perm.iter().rev() {
                let _ = writeln!(walk, "    src += (r % {d}u) * {s}u; r = r / {d}u;", d = in_shape[a], s = strides[a]);
            }
            let source = format!(
                "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
                 @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n{decls}\n{head}\
                 \x20   let idx = i;\n\
                 \x20   var r = i; var src = 0u;\n{walk}\
                 \x20   var v = x[src];\n{post}\
                 \x20   y[i] = v;\n}}\n",
                head = linear_head(total, groups),
            );
            Compiled { source, params: vec![], groups }
        }
        Kernel::Copy { len } => {
            let groups = spread(div_ceil(*len, LINEAR_WG as usize));
            let (decls, post) = epilogue(&step.post, 2);
            let source = format!(
                "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
                 @group(0) @binding(1) var<storage, read_write> y: array<f32>;\n{decls}\n{head}\
                 \x20   let idx = i;\n\
                 \x20   var v = x[i];\n{post}\
                 \x20   y[i] = v;\n}}\n",
                head = linear_head(*len, groups),
            );
            Compiled { source, params: vec![], groups }
        }
    }
}

// ---- Dense and grouped convolution: implicit GEMM -------------------------------------------
//
// Per group, out[m, n] = Σ_k W[m, k] · X̂[k, n] with m an output channel, n an output pixel and
// k = (input channel, ky, kx); X̂ is the im2col matrix, never materialised: each workgroup
// gathers its BK×BN slice of it straight from the image into shared memory (zeros for padding).
// A 16×16 workgroup computes a BM×64 output tile, each thread a (BM/16)×4 register block, so
// every weight and input value loaded to shared memory is reused 4–16 times from registers.

const GEMM_BN: usize = 64;
const GEMM_BK: usize = 16;

/// Rows of output channels per workgroup: the largest tile (most reuse per shared-memory load)
/// that wastes at most an eighth of its rows on padding, else the least wasteful one.
fn gemm_bm(m: usize) -> usize {
    let padded = |bm: usize| m.div_ceil(bm) * bm;
    [64, 32, 16].into_iter().find(|&bm| padded(bm) * 8 <= m * 9).unwrap_or_else(|| {
        [64, 32, 16].into_iter().min_by_key(|&bm| padded(bm)).unwrap_or(16)
    })
}

fn gemm(g: &ConvGeo, post: &[Post]) -> (String, [u32; 3]) {
    let cg = g.c_in / g.groups;
    let m = g.c_out / g.groups;
    let k = cg * g.kh * g.kw;
    let n = g.oh * g.ow;
    let bm = gemm_bm(m);
    let (bn, bk) = (GEMM_BN, GEMM_BK);
    let (tm, tn) = (bm / 16, bn / 16);
    let groups = [div_ceil(n, bn), div_ceil(m, bm), g.groups as u32];
    let (decls, epi) = epilogue(post, 4);
    let pointwise = g.kh == 1 && g.kw == 1 && g.stride == [1, 1] && g.pad == [0, 0];
    let gather = if pointwise {
        format!("v = x[xbase + kk_g * {n}u + nn_g];")
    } else {
        format!(
            "let ci = kk_g / {khw}u; let rr = kk_g % {khw}u;\n\
             \x20               let iy = i32((nn_g / {ow}u) * {sy}u + (rr / {kw}u) * {dy}u) - {pt};\n\
             \x20               let ix = i32((nn_g % {ow}u) * {sx}u + (rr % {kw}u) * {dx}u) - {pl};\n\
             \x20               if (iy >= 0 && iy < {h} && ix >= 0 && ix < {w}) {{\n\
             \x20                   v = x[xbase + ci * {hw}u + u32(iy) * {w}u + u32(ix)];\n\
             \x20               }}",
            khw = g.kh * g.kw,
            ow = g.ow,
            kw = g.kw,
            sy = g.stride[0],
            sx = g.stride[1],
            dy = g.dilation[0],
            dx = g.dilation[1],
            pt = g.pad[0],
            pl = g.pad[1],
            h = g.h,
            w = g.w,
            hw = g.h * g.w,
        )
    };
    // The register block is unrolled into scalars (acc_r_c): a private array indexed in a loop
    // may live in memory on some drivers (and does on lavapipe), scalars stay in registers.
    let mut acc_decl = String::new();
    let mut inner = String::new();
    let mut store = String::new();
    for r in 0..tm {
        for c in 0..tn {
            let _ = writeln!(acc_decl, "    var acc_{r}_{c} = 0.0;");
        }
    }
    for r in 0..tm {
        let _ = writeln!(inner, "            let a{r} = As[kk * {bm}u + lid.y + {}u];", r * 16);
    }
    for c in 0..tn {
        let _ = writeln!(inner, "            let b{c} = Bs[kk * {bn}u + lid.x + {}u];", c * 16);
        for r in 0..tm {
            let _ = writeln!(inner, "            acc_{r}_{c} = fma(a{r}, b{c}, acc_{r}_{c});");
        }
    }
    for r in 0..tm {
        let _ = writeln!(store, "    {{\n        let mm_g = m0 + lid.y + {}u;\n        if (mm_g < {m}u) {{\n            let co = grp * {m}u + mm_g;", r * 16);
        for c in 0..tn {
            let _ = writeln!(
                store,
                "            {{\n            let nn_g = n0 + lid.x + {}u;\n            if (nn_g < {n}u) {{\n            let idx = co * {n}u + nn_g;\n            var v = acc_{r}_{c} + bias[co];\n{epi}            y[idx] = v;\n            }}\n            }}",
                c * 16
            );
        }
        let _ = writeln!(store, "        }}\n    }}");
    }
    store.push_str("}\n");
    let source = format!(
        "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
         @group(0) @binding(1) var<storage, read> wt: array<f32>;\n\
         @group(0) @binding(2) var<storage, read> bias: array<f32>;\n\
         @group(0) @binding(3) var<storage, read_write> y: array<f32>;\n{decls}\n\
         var<workgroup> As: array<f32, {asz}>;\n\
         var<workgroup> Bs: array<f32, {bsz}>;\n\
         @compute @workgroup_size(16, 16)\n\
         fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{\n\
         \x20   let grp = wid.z;\n\
         \x20   let m0 = wid.y * {bm}u; let n0 = wid.x * {bn}u;\n\
         \x20   let tid = lid.y * 16u + lid.x;\n\
         \x20   let wbase = grp * {mk}u; let xbase = grp * {cghw}u;\n\
{acc_decl}\
         \x20   for (var k0 = 0u; k0 < {k}u; k0 += {bk}u) {{\n\
         \x20       for (var t = tid; t < {asz}u; t += 256u) {{\n\
         \x20           let kk = t % {bk}u; let mm = t / {bk}u;\n\
         \x20           let mm_g = m0 + mm; let kk_g = k0 + kk;\n\
         \x20           var v = 0.0;\n\
         \x20           if (mm_g < {m}u && kk_g < {k}u) {{ v = wt[wbase + mm_g * {k}u + kk_g]; }}\n\
         \x20           As[kk * {bm}u + mm] = v;\n\
         \x20       }}\n\
         \x20       for (var t = tid; t < {bsz}u; t += 256u) {{\n\
         \x20           let nn = t % {bn}u; let kk = t / {bn}u;\n\
         \x20           let nn_g = n0 + nn; let kk_g = k0 + kk;\n\
         \x20           var v = 0.0;\n\
         \x20           if (nn_g < {n}u && kk_g < {k}u) {{\n\
         \x20               {gather}\n\
         \x20           }}\n\
         \x20           Bs[kk * {bn}u + nn] = v;\n\
         \x20       }}\n\
         \x20       workgroupBarrier();\n\
         \x20       for (var kk = 0u; kk < {bk}u; kk++) {{\n\
{inner}\
         \x20       }}\n\
         \x20       workgroupBarrier();\n\
         \x20   }}\n\
{store}",
        asz = bk * bm,
        bsz = bk * bn,
        mk = m * k,
        cghw = cg * g.h * g.w,
    );
    (source, groups)
}

// ---- Depthwise convolution ------------------------------------------------------------------
//
// One channel per workgroup layer, a 16×8 output tile per workgroup: the input patch the tile
// needs (with its halo, strided) is staged once in shared memory, so each input value is read
// from memory once instead of kh·kw times; the channel's kh·kw weights are the same for the
// whole workgroup and stay in registers.

const DW_TX: usize = 16;
const DW_TY: usize = 8;

fn depthwise_tile(g: &ConvGeo) -> (usize, usize) {
    let th = (DW_TY - 1) * g.stride[0] + (g.kh - 1) * g.dilation[0] + 1;
    let tw = (DW_TX - 1) * g.stride[1] + (g.kw - 1) * g.dilation[1] + 1;
    (th, tw)
}

fn depthwise_groups(g: &ConvGeo) -> [u32; 3] {
    [div_ceil(g.ow, DW_TX), div_ceil(g.oh, DW_TY), g.c_out as u32]
}

fn depthwise(g: &ConvGeo, post: &[Post]) -> String {
    let (th, tw) = depthwise_tile(g);
    let (decls, epi) = epilogue(post, 4);
    format!(
        "@group(0) @binding(0) var<storage, read> x: array<f32>;\n\
         @group(0) @binding(1) var<storage, read> wt: array<f32>;\n\
         @group(0) @binding(2) var<storage, read> bias: array<f32>;\n\
         @group(0) @binding(3) var<storage, read_write> y: array<f32>;\n{decls}\n\
         var<workgroup> tile: array<f32, {tsz}>;\n\
         @compute @workgroup_size({tx}, {ty})\n\
         fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {{\n\
         \x20   let c = wid.z;\n\
         \x20   let oy0 = wid.y * {ty}u; let ox0 = wid.x * {tx}u;\n\
         \x20   let iy0 = i32(oy0 * {sy}u) - {pt}; let ix0 = i32(ox0 * {sx}u) - {pl};\n\
         \x20   let xbase = c * {hw}u;\n\
         \x20   for (var t = lid.y * {tx}u + lid.x; t < {tsz}u; t += {nthreads}u) {{\n\
         \x20       let iy = iy0 + i32(t / {tw}u); let ix = ix0 + i32(t % {tw}u);\n\
         \x20       var v = 0.0;\n\
         \x20       if (iy >= 0 && iy < {h} && ix >= 0 && ix < {w}) {{ v = x[xbase + u32(iy) * {w}u + u32(ix)]; }}\n\
         \x20       tile[t] = v;\n\
         \x20   }}\n\
         \x20   workgroupBarrier();\n\
         \x20   let oy = oy0 + lid.y; let ox = ox0 + lid.x;\n\
         \x20   if (oy >= {oh}u || ox >= {ow}u) {{ return; }}\n\
         \x20   var v = bias[c];\n\
         \x20   let wb = c * {khw}u;\n\
         \x20   for (var ky = 0u; ky < {kh}u; ky++) {{\n\
         \x20       for (var kx = 0u; kx < {kw}u; kx++) {{\n\
         \x20           let t = (lid.y * {sy}u + ky * {dy}u) * {tw}u + lid.x * {sx}u + kx * {dx}u;\n\
         \x20           v = fma(wt[wb + ky * {kw}u + kx], tile[t], v);\n\
         \x20       }}\n\
         \x20   }}\n\
         \x20   let idx = c * {ohw}u + oy * {ow}u + ox;\n{epi}\
         \x20   y[idx] = v;\n\
         }}\n",
        tsz = th * tw,
        tx = DW_TX,
        ty = DW_TY,
        nthreads = DW_TX * DW_TY,
        sy = g.stride[0],
        sx = g.stride[1],
        dy = g.dilation[0],
        dx = g.dilation[1],
        pt = g.pad[0],
        pl = g.pad[1],
        hw = g.h * g.w,
        h = g.h,
        w = g.w,
        oh = g.oh,
        ow = g.ow,
        ohw = g.oh * g.ow,
        kh = g.kh,
        kw = g.kw,
        khw = g.kh * g.kw,
    )
}

/// Whether a step fits the per-dispatch limits every adapter guarantees.
pub fn check_limits(step: &Step) -> Result<(), String> {
    let c = compile(step);
    if c.groups.iter().any(|&n| n > MAX_GROUPS) {
        return Err(format!("needs {:?} workgroups (limit {MAX_GROUPS} per axis)", c.groups));
    }
    if let Kernel::Conv { geo, .. } = &step.kernel {
        if geo.is_depthwise() {
            let (th, tw) = depthwise_tile(geo);
            if th * tw * 4 > 16384 {
                return Err(format!("depthwise tile {th}×{tw} exceeds 16 KiB of shared memory"));
            }
        }
    }
    Ok(())
}
