//! WGSL for each [`Kernel`]: every shape, stride and the fused epilogue are baked into the source
//! as constants (the graph's shapes are fixed at load), so the shader compiler can fold index
//! arithmetic and unroll small loops. Identical sources share one pipeline.
//!
//! Each kernel's WGSL is a template in `shaders/*.wgsl` with `{{NAME}}` placeholders, filled by
//! [`fill`]; the parts that vary in shape from step to step (the epilogue, the unrolled GEMM
//! register block, the resize coordinate expression, the permute walk) are small snippets built
//! here and spliced into placeholders of their own.
//!
//! Bindings are always: 0 = main input, 1.. = constant parameters (weights, bias, tables), then
//! the output, then one binding per residual the epilogue adds.

use std::fmt::{Display, Write};

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

/// The epilogue: the residuals' binding declarations (`RESIDUALS` in the templates) and WGSL
/// statements on `v`, the value about to be stored at flat index `idx` (`EPILOGUE`), one per
/// line, unindented.
fn epilogue(post: &[Post], first_residual_binding: usize) -> (String, String) {
    let mut decls = String::new();
    let mut code = String::new();
    let mut r = 0;
    for p in post {
        match p {
            Post::Max(c) => writeln!(code, "v = max(v, {});", f(*c)),
            Post::Min(c) => writeln!(code, "v = min(v, {});", f(*c)),
            Post::AddScalar(c) => writeln!(code, "v = v + {};", f(*c)),
            Post::MulScalar(c) => writeln!(code, "v = v * {};", f(*c)),
            Post::AddValue(_) => {
                let _ = writeln!(
                    decls,
                    "@group(0) @binding({}) var<storage, read> res{r}: array<f32>;",
                    first_residual_binding + r
                );
                let res = writeln!(code, "v = v + res{r}[idx];");
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

/// Fills a shader template: every `{{NAME}}` becomes the value given for `NAME`. A placeholder
/// alone on its line (after indentation) stands for a block of lines: each line of the value is
/// indented like the placeholder, and an empty value drops the line. Values are spliced as they
/// are, never scanned for placeholders themselves.
///
/// Panics if the template names a placeholder with no value, a value is never used, or a `{{`
/// does not open a placeholder: templates are fixed at build time, so each of these is a bug,
/// and the unit tests compile every template.
fn fill(template: &str, vars: &[(&str, &dyn Display)]) -> String {
    let mut used = vec![false; vars.len()];
    let mut value = |name: &str| -> String {
        let k = vars
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("shader template: no value for {{{{{name}}}}}"));
        used[k] = true;
        vars[k].1.to_string()
    };
    let is_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    };
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        let indent = &body[..body.len() - trimmed.len()];
        if let Some(name) = trimmed
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .filter(|n| is_name(n))
        {
            for l in value(name).lines() {
                if !l.is_empty() {
                    out.push_str(indent);
                    out.push_str(l);
                }
                out.push('\n');
            }
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("{{") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let name = after
                .find("}}")
                .map(|end| &after[..end])
                .filter(|n| is_name(n));
            let Some(name) = name else {
                panic!("shader template: stray `{{{{` in {line:?}")
            };
            out.push_str(&value(name));
            rest = &after[name.len() + 2..];
        }
        out.push_str(rest);
    }
    if let Some(k) = used.iter().position(|u| !u) {
        panic!(
            "shader template: value for {{{{{}}}}} is never used",
            vars[k].0
        );
    }
    out
}

/// A one-thread-per-element kernel: its template with the shared head's placeholders (`WG`
/// threads per workgroup, `GX` workgroups along x, `TOTAL` elements) filled besides `vars`.
fn linear(template: &str, total: usize, vars: &[(&str, &dyn Display)]) -> (String, [u32; 3]) {
    let groups = spread(div_ceil(total, LINEAR_WG as usize));
    let mut all: Vec<(&str, &dyn Display)> =
        vec![("WG", &LINEAR_WG), ("GX", &groups[0]), ("TOTAL", &total)];
    all.extend_from_slice(vars);
    (fill(template, &all), groups)
}

pub fn compile(step: &Step) -> Compiled {
    match &step.kernel {
        Kernel::Conv { geo, weights, bias } => {
            let params = vec![weights.clone(), bias.clone()];
            if geo.is_depthwise() {
                Compiled {
                    source: depthwise(geo, &step.post),
                    params,
                    groups: depthwise_groups(geo),
                }
            } else {
                let (source, groups) = gemm(geo, &step.post);
                Compiled {
                    source,
                    params,
                    groups,
                }
            }
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
            let (decls, post) = epilogue(&step.post, 2);
            let src_coord = |o: &str, len_in: usize, len_out: usize, s: f32| -> String {
                let s = f(s);
                match coord {
                    ResizeCoord::HalfPixel => format!("(f32({o}) + 0.5) / {s} - 0.5"),
                    ResizeCoord::PytorchHalfPixel if len_out > 1 => {
                        format!("(f32({o}) + 0.5) / {s} - 0.5")
                    }
                    ResizeCoord::PytorchHalfPixel => "0.0".into(),
                    ResizeCoord::AlignCorners if len_out > 1 => {
                        format!(
                            "f32({o}) * {}",
                            f((len_in as f32 - 1.0) / (len_out as f32 - 1.0))
                        )
                    }
                    ResizeCoord::AlignCorners => "0.0".into(),
                    ResizeCoord::Asymmetric => format!("f32({o}) / {s}"),
                }
            };
            let (source, groups) = linear(
                include_str!("shaders/resize_linear.wgsl"),
                planes * oh * ow,
                &[
                    ("IH", ih),
                    ("IW", iw),
                    ("OH", oh),
                    ("OW", ow),
                    ("IHW", &(ih * iw)),
                    ("OHW", &(oh * ow)),
                    ("IH_MAX", &f(*ih as f32 - 1.0)),
                    ("IW_MAX", &f(*iw as f32 - 1.0)),
                    ("SRC_Y", &src_coord("oy", *ih, *oh, scale[0])),
                    ("SRC_X", &src_coord("ox", *iw, *ow, scale[1])),
                    ("RESIDUALS", &decls),
                    ("EPILOGUE", &post),
                ],
            );
            Compiled {
                source,
                params: vec![],
                groups,
            }
        }
        Kernel::ArgMax {
            outer,
            n,
            inner,
            take_last,
        } => {
            let cmp = if *take_last { ">=" } else { ">" };
            let (source, groups) = linear(
                include_str!("shaders/argmax.wgsl"),
                outer * inner,
                &[("N", n), ("INNER", inner), ("CMP", &cmp)],
            );
            Compiled {
                source,
                params: vec![],
                groups,
            }
        }
        Kernel::Gather {
            table,
            rows,
            cols,
            count,
        } => {
            let (decls, post) = epilogue(&step.post, 3);
            let (source, groups) = linear(
                include_str!("shaders/gather.wgsl"),
                count * cols,
                &[
                    ("ROWS", rows),
                    ("COLS", cols),
                    ("RESIDUALS", &decls),
                    ("EPILOGUE", &post),
                ],
            );
            Compiled {
                source,
                params: vec![table.clone()],
                groups,
            }
        }
        Kernel::Permute { in_shape, perm } => {
            let (decls, post) = epilogue(&step.post, 2);
            let mut strides = vec![1usize; in_shape.len()];
            for a in (0..in_shape.len().saturating_sub(1)).rev() {
                strides[a] = strides[a + 1] * in_shape[a + 1];
            }
            let mut walk = String::new();
            for &a in perm.iter().rev() {
                let _ = writeln!(
                    walk,
                    "src += (r % {d}u) * {s}u; r = r / {d}u;",
                    d = in_shape[a],
                    s = strides[a]
                );
            }
            let (source, groups) = linear(
                include_str!("shaders/permute.wgsl"),
                in_shape.iter().product(),
                &[("WALK", &walk), ("RESIDUALS", &decls), ("EPILOGUE", &post)],
            );
            Compiled {
                source,
                params: vec![],
                groups,
            }
        }
        Kernel::Copy { len } => {
            let (decls, post) = epilogue(&step.post, 2);
            let (source, groups) = linear(
                include_str!("shaders/copy.wgsl"),
                *len,
                &[("RESIDUALS", &decls), ("EPILOGUE", &post)],
            );
            Compiled {
                source,
                params: vec![],
                groups,
            }
        }
    }
}

// ---- Dense and grouped convolution: implicit GEMM (shaders/conv_gemm.wgsl) ------------------
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
    [64, 32, 16]
        .into_iter()
        .find(|&bm| padded(bm) * 8 <= m * 9)
        .unwrap_or_else(|| {
            [64, 32, 16]
                .into_iter()
                .min_by_key(|&bm| padded(bm))
                .unwrap_or(16)
        })
}

/// `GATHER` of a 1×1, stride-1, unpadded convolution: X̂ is the image itself.
const GEMM_GATHER_POINTWISE: &str = "v = x[xbase + kk_g * {{N}}u + nn_g];\n";

/// `GATHER` of any other convolution: the image pixel under kernel tap `rr` of input channel
/// `ci` for output pixel `nn_g`, left at 0.0 in the padding.
const GEMM_GATHER_IM2COL: &str = "\
let ci = kk_g / {{KHW}}u; let rr = kk_g % {{KHW}}u;
let iy = i32((nn_g / {{OW}}u) * {{SY}}u + (rr / {{KW}}u) * {{DY}}u) - {{PT}};
let ix = i32((nn_g % {{OW}}u) * {{SX}}u + (rr % {{KW}}u) * {{DX}}u) - {{PL}};
if (iy >= 0 && iy < {{H}} && ix >= 0 && ix < {{W}}) {
    v = x[xbase + ci * {{HW}}u + u32(iy) * {{W}}u + u32(ix)];
}
";

/// `STORE` for row `R` of the register block (output channel `m0 + lid.y + ROW`); `COLUMNS` is
/// one [`GEMM_STORE_CELL`] per column.
const GEMM_STORE_ROW: &str = "\
{
    let mm_g = m0 + lid.y + {{ROW}}u;
    if (mm_g < {{M}}u) {
        let co = grp * {{M}}u + mm_g;
        {{COLUMNS}}
    }
}
";

/// Register `acc_R_C` plus bias through the epilogue to output pixel `n0 + lid.x + COL`.
const GEMM_STORE_CELL: &str = "\
{
    let nn_g = n0 + lid.x + {{COL}}u;
    if (nn_g < {{N}}u) {
        let idx = co * {{N}}u + nn_g;
        var v = acc_{{R}}_{{C}} + bias[co];
        {{EPILOGUE}}
        y[idx] = v;
    }
}
";

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
        fill(GEMM_GATHER_POINTWISE, &[("N", &n)])
    } else {
        fill(
            GEMM_GATHER_IM2COL,
            &[
                ("KHW", &(g.kh * g.kw)),
                ("OW", &g.ow),
                ("KW", &g.kw),
                ("SY", &g.stride[0]),
                ("SX", &g.stride[1]),
                ("DY", &g.dilation[0]),
                ("DX", &g.dilation[1]),
                ("PT", &g.pad[0]),
                ("PL", &g.pad[1]),
                ("H", &g.h),
                ("W", &g.w),
                ("HW", &(g.h * g.w)),
            ],
        )
    };
    // The register block is unrolled into scalars (acc_r_c): a private array indexed in a loop
    // may live in memory on some drivers (and does on lavapipe), scalars stay in registers.
    let mut acc_decl = String::new();
    let mut fma = String::new();
    let mut store = String::new();
    for r in 0..tm {
        for c in 0..tn {
            let _ = writeln!(acc_decl, "var acc_{r}_{c} = 0.0;");
        }
    }
    for r in 0..tm {
        let _ = writeln!(fma, "let a{r} = As[kk * {bm}u + lid.y + {}u];", r * 16);
    }
    for c in 0..tn {
        let _ = writeln!(fma, "let b{c} = Bs[kk * {bn}u + lid.x + {}u];", c * 16);
        for r in 0..tm {
            let _ = writeln!(fma, "acc_{r}_{c} = fma(a{r}, b{c}, acc_{r}_{c});");
        }
    }
    for r in 0..tm {
        let mut columns = String::new();
        for c in 0..tn {
            columns += &fill(
                GEMM_STORE_CELL,
                &[
                    ("COL", &(c * 16)),
                    ("N", &n),
                    ("R", &r),
                    ("C", &c),
                    ("EPILOGUE", &epi),
                ],
            );
        }
        store += &fill(
            GEMM_STORE_ROW,
            &[("ROW", &(r * 16)), ("M", &m), ("COLUMNS", &columns)],
        );
    }
    let source = fill(
        include_str!("shaders/conv_gemm.wgsl"),
        &[
            ("BM", &bm),
            ("BN", &bn),
            ("BK", &bk),
            ("A_SIZE", &(bk * bm)),
            ("B_SIZE", &(bk * bn)),
            ("M", &m),
            ("N", &n),
            ("K", &k),
            ("MK", &(m * k)),
            ("CGHW", &(cg * g.h * g.w)),
            ("ACC_DECL", &acc_decl),
            ("GATHER", &gather),
            ("FMA", &fma),
            ("STORE", &store),
            ("RESIDUALS", &decls),
        ],
    );
    (source, groups)
}

// ---- Depthwise convolution (shaders/conv_depthwise.wgsl) ------------------------------------
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
    fill(
        include_str!("shaders/conv_depthwise.wgsl"),
        &[
            ("TX", &DW_TX),
            ("TY", &DW_TY),
            ("NTHREADS", &(DW_TX * DW_TY)),
            ("TW", &tw),
            ("TILE_SIZE", &(th * tw)),
            ("H", &g.h),
            ("W", &g.w),
            ("HW", &(g.h * g.w)),
            ("OH", &g.oh),
            ("OW", &g.ow),
            ("OHW", &(g.oh * g.ow)),
            ("KH", &g.kh),
            ("KW", &g.kw),
            ("KHW", &(g.kh * g.kw)),
            ("SY", &g.stride[0]),
            ("SX", &g.stride[1]),
            ("DY", &g.dilation[0]),
            ("DX", &g.dilation[1]),
            ("PT", &g.pad[0]),
            ("PL", &g.pad[1]),
            ("RESIDUALS", &decls),
            ("EPILOGUE", &epi),
        ],
    )
}

/// Whether a step fits the per-dispatch limits every adapter guarantees.
pub fn check_limits(step: &Step) -> Result<(), String> {
    let c = compile(step);
    if c.groups.iter().any(|&n| n > MAX_GROUPS) {
        return Err(format!(
            "needs {:?} workgroups (limit {MAX_GROUPS} per axis)",
            c.groups
        ));
    }
    if let Kernel::Conv { geo, .. } = &step.kernel {
        if geo.is_depthwise() {
            let (th, tw) = depthwise_tile(geo);
            if th * tw * 4 > 16384 {
                return Err(format!(
                    "depthwise tile {th}×{tw} exceeds 16 KiB of shared memory"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wgpu::naga;

    use super::*;

    fn step(kernel: Kernel, post: Vec<Post>) -> Step {
        Step {
            nodes: vec!["k".into()],
            kernel,
            input: 0,
            output: 1,
            post,
        }
    }

    /// `[c_in, c_out, groups]`, then (y, x) pairs: input size, kernel size, stride, dilation, padding.
    fn conv(
        [c_in, c_out, groups]: [usize; 3],
        hw: [usize; 2],
        k: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        pad: [usize; 2],
    ) -> Kernel {
        let out = |a: usize| (hw[a] + 2 * pad[a] - dilation[a] * (k[a] - 1) - 1) / stride[a] + 1;
        let geo = ConvGeo {
            c_in,
            h: hw[0],
            w: hw[1],
            c_out,
            oh: out(0),
            ow: out(1),
            kh: k[0],
            kw: k[1],
            stride,
            dilation,
            pad,
            groups,
        };
        Kernel::Conv {
            geo,
            weights: Arc::new(vec![0.0; 4]),
            bias: Arc::new(vec![0.0; 4]),
        }
    }

    fn resize(coord: ResizeCoord, oh: usize) -> Kernel {
        Kernel::ResizeLinear {
            planes: 3,
            ih: 5,
            iw: 7,
            oh,
            ow: 14,
            scale: [oh as f32 / 5.0, 2.0],
            coord,
        }
    }

    /// One step of every kernel kind and of every variant a template has (pointwise and im2col
    /// gathers, each GEMM tile height, each resize coordinate rule, both ArgMax ties, a dispatch
    /// spread over y), with and without epilogues and residuals.
    fn representative() -> Vec<(&'static str, Step)> {
        let all_posts = vec![
            Post::Max(0.0),
            Post::Min(6.0),
            Post::AddScalar(-0.5),
            Post::MulScalar(1.0 / 3.0),
            Post::AddValue(2),
        ];
        let two_residuals = vec![Post::AddValue(2), Post::Max(0.0), Post::AddValue(3)];
        vec![
            (
                "gemm pointwise bm64",
                step(
                    conv([8, 64, 1], [9, 11], [1, 1], [1, 1], [1, 1], [0, 0]),
                    vec![],
                ),
            ),
            (
                "gemm pointwise bm32",
                step(
                    conv([8, 24, 1], [9, 11], [1, 1], [1, 1], [1, 1], [0, 0]),
                    all_posts.clone(),
                ),
            ),
            (
                "gemm 3x3 s2 bm16",
                step(
                    conv([5, 16, 1], [17, 13], [3, 3], [2, 2], [1, 1], [1, 1]),
                    two_residuals.clone(),
                ),
            ),
            (
                "gemm grouped dilated",
                step(
                    conv([6, 4, 2], [10, 10], [3, 2], [1, 2], [2, 1], [2, 0]),
                    all_posts.clone(),
                ),
            ),
            (
                "depthwise 3x3",
                step(
                    conv([8, 8, 8], [15, 20], [3, 3], [1, 1], [1, 1], [1, 1]),
                    vec![],
                ),
            ),
            (
                "depthwise 5x5 s2",
                step(
                    conv([4, 4, 4], [33, 18], [5, 5], [2, 2], [1, 1], [2, 2]),
                    two_residuals.clone(),
                ),
            ),
            (
                "resize half-pixel",
                step(resize(ResizeCoord::HalfPixel, 10), all_posts.clone()),
            ),
            (
                "resize pytorch",
                step(resize(ResizeCoord::PytorchHalfPixel, 10), vec![]),
            ),
            (
                "resize pytorch to 1",
                step(resize(ResizeCoord::PytorchHalfPixel, 1), vec![]),
            ),
            (
                "resize align-corners",
                step(resize(ResizeCoord::AlignCorners, 10), vec![Post::Max(0.0)]),
            ),
            (
                "resize align-corners to 1",
                step(resize(ResizeCoord::AlignCorners, 1), vec![]),
            ),
            (
                "resize asymmetric",
                step(resize(ResizeCoord::Asymmetric, 10), two_residuals.clone()),
            ),
            (
                "argmax first",
                step(
                    Kernel::ArgMax {
                        outer: 2,
                        n: 7,
                        inner: 33,
                        take_last: false,
                    },
                    vec![],
                ),
            ),
            (
                "argmax last",
                step(
                    Kernel::ArgMax {
                        outer: 1,
                        n: 4096,
                        inner: 1,
                        take_last: true,
                    },
                    vec![],
                ),
            ),
            (
                "gather",
                step(
                    Kernel::Gather {
                        table: Arc::new(vec![0.0; 12]),
                        rows: 4,
                        cols: 3,
                        count: 5,
                    },
                    all_posts.clone(),
                ),
            ),
            (
                "permute",
                step(
                    Kernel::Permute {
                        in_shape: vec![2, 2, 3, 5, 7],
                        perm: vec![2, 3, 0, 4, 1],
                    },
                    vec![Post::Min(6.0)],
                ),
            ),
            (
                "permute rank 1",
                step(
                    Kernel::Permute {
                        in_shape: vec![9],
                        perm: vec![0],
                    },
                    vec![],
                ),
            ),
            ("copy", step(Kernel::Copy { len: 1000 }, vec![])),
            (
                "copy spread over y",
                step(Kernel::Copy { len: 40_000_000 }, two_residuals),
            ),
        ]
    }

    /// Every template fills completely, and naga's WGSL front end parses and validates the result
    /// with the bindings and workgroup size the backend relies on.
    #[test]
    fn every_kernel_compiles_to_valid_wgsl() {
        for (name, step) in representative() {
            let c = compile(&step);
            assert!(
                !c.source.contains("{{") && !c.source.contains("}}"),
                "{name}: placeholder left in\n{}",
                c.source
            );
            let module = naga::front::wgsl::parse_str(&c.source).unwrap_or_else(|e| {
                panic!("{name}: {}\n{}", e.emit_to_string(&c.source), c.source)
            });
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", c.source));

            let residuals = step
                .post
                .iter()
                .filter(|p| matches!(p, Post::AddValue(_)))
                .count();
            let mut bindings: Vec<(u32, u32)> = module
                .global_variables
                .iter()
                .filter_map(|(_, v)| v.binding.as_ref().map(|b| (b.group, b.binding)))
                .collect();
            bindings.sort_unstable();
            let expected: Vec<(u32, u32)> = (0..(2 + c.params.len() + residuals) as u32)
                .map(|b| (0, b))
                .collect();
            assert_eq!(bindings, expected, "{name}: bindings");

            assert_eq!(module.entry_points.len(), 1, "{name}");
            let entry = &module.entry_points[0];
            assert_eq!(entry.name, "main", "{name}");
            let size = match &step.kernel {
                Kernel::Conv { geo, .. } if geo.is_depthwise() => [DW_TX as u32, DW_TY as u32, 1],
                Kernel::Conv { .. } => [16, 16, 1],
                _ => [LINEAR_WG, 1, 1],
            };
            assert_eq!(entry.workgroup_size, size, "{name}: workgroup size");
        }
        let spread = compile(&step(Kernel::Copy { len: 40_000_000 }, vec![]));
        assert!(
            spread.groups[1] > 1
                && spread
                    .source
                    .contains(&format!("wid.y * {}u", spread.groups[0]))
        );
    }

    #[test]
    fn fill_splices_inline_and_block_placeholders() {
        let t = "a = {{X}}u + {{X}}u;\n    {{BLOCK}}\n  {{EMPTY}}\nend {{Y}}\n";
        let out = fill(
            t,
            &[
                ("X", &3),
                ("BLOCK", &"p;\n\nq;\n"),
                ("EMPTY", &""),
                ("Y", &"z"),
            ],
        );
        assert_eq!(out, "a = 3u + 3u;\n    p;\n\n    q;\nend z\n");
        // Values are not scanned again.
        assert_eq!(fill("{{A}}\n", &[("A", &"{{B}}")]), "{{B}}\n");
    }

    #[test]
    #[should_panic(expected = "no value for {{Y}}")]
    fn fill_rejects_a_missing_value() {
        fill("{{X}} {{Y}}", &[("X", &1)]);
    }

    #[test]
    #[should_panic(expected = "value for {{Z}} is never used")]
    fn fill_rejects_an_unused_value() {
        fill("{{X}}", &[("X", &1), ("Z", &2)]);
    }

    #[test]
    #[should_panic(expected = "stray")]
    fn fill_rejects_a_malformed_placeholder() {
        fill("if (a) {{ b }}", &[]);
    }
}
