//! 2-D convolution on the blocked channels-last layout: dense (any kernel, stride, dilation and
//! padding; pointwise 1×1 and the stem are its common cases) and depthwise, with the bias and a
//! post chain applied in the same pass as the store. Weights are packed once, when the plan is
//! built, so no run packs anything.
//!
//! Dense: a tile of `MR` output pixels × `NR` channel blocks lives in registers; for each tap and
//! input channel, one input value per pixel is broadcast against `NR` filter vectors.
//! Depthwise: a tile of `MR` pixels × one channel block; each tap is one filter vector against
//! the same block of `MR` input pixels. Taps that fall into the padding read a zero row, so the
//! border needs no code path of its own.

use super::vector::apply_posts;
#[cfg(target_arch = "x86_64")]
use super::vector::{Avx2, Avx512};
use super::vector::{Portable, Vector};
#[cfg(target_arch = "aarch64")]
use super::Fused;
use super::{AlignedVec, PostOp, Separate, Threads, LANES};

/// Depthwise kernels taller or wider than this fall back to tract.
pub const MAX_DEPTHWISE_SIDE: usize = 7;

/// The input rows one output row of a depthwise conv reads, one per kernel row: a row of
/// `w` pixels `cs_in` apart, or None where the kernel row falls into the padding.
pub type DepthwiseRows<'a> = [Option<&'a [f32]>; MAX_DEPTHWISE_SIDE];

/// One convolution, planned: geometry in the blocked layout and packed weights.
#[derive(Debug, Clone)]
pub struct ConvPlan {
    /// The geometry; for a pointwise conv over whole planes, one row of `h·w` pixels.
    pub shape: ConvShape,
    /// Elements between two output pixels: `c_out` rounded up to whole blocks.
    pub cs_out: usize,
    /// Dense: `[block][tap][c_in][LANES]`; depthwise: `[block][tap][LANES]`; zero past `c_out`.
    weights: AlignedVec,
    /// `cs_out` values, zero past `c_out`.
    bias: AlignedVec,
    pub posts: Vec<PostOp>,
}

/// The geometry a plan is built from (batch 1; weights OIHW, `groups` 1 or depthwise).
#[derive(Debug, Clone, Copy)]
pub struct ConvShape {
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    /// Elements between two input pixels (≥ `c_in`; a multiple of [`LANES`] for depthwise).
    pub cs_in: usize,
    pub c_out: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub pad: [usize; 2],
    pub depthwise: bool,
}

impl ConvPlan {
    /// Packs OIHW `weights` (`[c_out, c_in, kh, kw]`, or `[c, 1, kh, kw]` for depthwise) and
    /// `bias` (`c_out`). The caller has checked the lengths against the shape.
    pub fn new(s: ConvShape, weights: &[f32], bias: &[f32], posts: Vec<PostOp>) -> Self {
        let cs_out = super::padded(s.c_out);
        let taps = s.kh * s.kw;
        let blocks = cs_out / LANES;
        let packed = if s.depthwise {
            let mut p = AlignedVec::zeros(blocks * taps * LANES);
            for c in 0..s.c_out {
                for t in 0..taps {
                    p[((c / LANES) * taps + t) * LANES + c % LANES] = weights[c * taps + t];
                }
            }
            p
        } else {
            let mut p = AlignedVec::zeros(blocks * taps * s.c_in * LANES);
            for co in 0..s.c_out {
                for ci in 0..s.c_in {
                    for t in 0..taps {
                        p[(((co / LANES) * taps + t) * s.c_in + ci) * LANES + co % LANES] =
                            weights[(co * s.c_in + ci) * taps + t];
                    }
                }
            }
            p
        };
        let mut b = AlignedVec::zeros(cs_out);
        b[..s.c_out].copy_from_slice(bias);
        let mut shape = s;
        // A 1×1 stride-1 conv without padding is a matrix product over all pixels: one long row
        // lets tiles run across row ends.
        if s.kh == 1
            && s.kw == 1
            && s.stride == [1, 1]
            && s.pad == [0, 0]
            && s.h == s.oh
            && s.w == s.ow
        {
            (shape.h, shape.w, shape.oh, shape.ow) = (1, s.h * s.w, 1, s.oh * s.ow);
        }
        ConvPlan {
            shape,
            cs_out,
            weights: packed,
            bias: b,
            posts,
        }
    }

    pub fn pixels(&self) -> usize {
        self.shape.oh * self.shape.ow
    }

    /// Multiply-accumulates one run does (for the share of peak).
    pub fn macs(&self) -> usize {
        let per_out = if self.shape.depthwise {
            self.shape.kh * self.shape.kw
        } else {
            self.shape.kh * self.shape.kw * self.shape.c_in
        };
        self.pixels() * self.shape.c_out * per_out
    }

    /// Input elements the kernel reads (`x` must hold at least this many).
    pub fn input_len(&self) -> usize {
        self.shape.h * self.shape.w * self.shape.cs_in
    }

    /// Runs the convolution: `x` in the blocked layout, `out` gets `pixels() * cs_out` values.
    /// `zeros` is at least `cs_in` zeros (the padding row); `residuals` are the tensors the post
    /// chain adds, in the output's layout.
    pub fn run(
        &self,
        x: &[f32],
        residuals: &[&[f32]],
        zeros: &[f32],
        out: &mut [f32],
        threads: Threads,
    ) {
        assert!(
            x.len() >= self.input_len() && zeros.len() >= self.shape.cs_in.max(self.shape.c_in),
            "conv input shorter than its plan"
        );
        assert!(
            residuals
                .iter()
                .all(|r| r.len() >= self.pixels() * self.cs_out),
            "residual shorter than the output"
        );
        if self.shape.depthwise {
            let row_len = self.shape.ow * self.cs_out;
            threads.for_ranges(out, self.shape.oh, row_len, 2, |r0, r1, chunk| {
                for oy in r0..r1 {
                    let rows = self.input_rows(x, oy);
                    let out_row = &mut chunk[(oy - r0) * row_len..][..row_len];
                    self.depthwise_row(&rows, zeros, residuals, out_row, oy);
                }
            });
            return;
        }
        // Rows of a few dozen pixels are the smallest unit worth a thread.
        threads.for_ranges(out, self.pixels(), self.cs_out, 64, |first, end, chunk| {
            self.dense_range(x, 0, residuals, zeros, chunk, first, end)
        });
    }

    /// Depthwise: the input rows output row `oy` reads from `x` (the whole input plane).
    pub fn input_rows<'a>(&self, x: &'a [f32], oy: usize) -> DepthwiseRows<'a> {
        let s = &self.shape;
        let row_len = s.w * s.cs_in;
        let mut rows: DepthwiseRows = [None; MAX_DEPTHWISE_SIDE];
        for (ky, r) in rows.iter_mut().enumerate().take(s.kh) {
            if let Some(iy) = self.input_row(oy, ky) {
                *r = Some(&x[iy * row_len..][..row_len]);
            }
        }
        rows
    }

    /// Depthwise: the input row kernel row `ky` of output row `oy` reads, or None in the padding.
    #[inline]
    pub fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.shape.stride[0] + ky * self.shape.dilation[0])
            .checked_sub(self.shape.pad[0])?;
        (iy < self.shape.h).then_some(iy)
    }

    /// Depthwise: output row `oy` into `out_row` (`ow · cs_out` values) from `rows`, each `w`
    /// pixels of `cs_in`; `residuals` are whole output tensors.
    pub fn depthwise_row(
        &self,
        rows: &DepthwiseRows,
        zeros: &[f32],
        residuals: &[&[f32]],
        out_row: &mut [f32],
        oy: usize,
    ) {
        let s = &self.shape;
        assert!(
            s.depthwise
                && s.kh <= MAX_DEPTHWISE_SIDE
                && s.kw <= MAX_DEPTHWISE_SIDE
                && out_row.len() >= s.ow * self.cs_out
                && zeros.len() >= s.cs_in
                && rows.iter().flatten().all(|r| r.len() >= s.w * s.cs_in)
                && residuals
                    .iter()
                    .all(|r| r.len() >= (oy + 1) * s.ow * self.cs_out),
            "depthwise row shorter than its plan"
        );
        let level = crate::simd::level();
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn avx512(
                p: &ConvPlan,
                rows: &DepthwiseRows,
                z: &[f32],
                r: &[&[f32]],
                o: &mut [f32],
                oy: usize,
            ) {
                depthwise_row::<Avx512, 8>(p, rows, z, r, o, oy)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(
                p: &ConvPlan,
                rows: &DepthwiseRows,
                z: &[f32],
                r: &[&[f32]],
                o: &mut [f32],
                oy: usize,
            ) {
                depthwise_row::<Avx2, 4>(p, rows, z, r, o, oy)
            }
            match level {
                // SAFETY: the CPU reported these features (`simd::level`).
                crate::simd::Level::Avx512 => {
                    return unsafe { avx512(self, rows, zeros, residuals, out_row, oy) }
                }
                crate::simd::Level::Avx2 => {
                    return unsafe { avx2(self, rows, zeros, residuals, out_row, oy) }
                }
                crate::simd::Level::Baseline => {}
            }
        }
        let _ = level;
        #[cfg(target_arch = "aarch64")]
        depthwise_row::<Portable<Fused>, 6>(self, rows, zeros, residuals, out_row, oy);
        #[cfg(not(target_arch = "aarch64"))]
        depthwise_row::<Portable<Separate>, 4>(self, rows, zeros, residuals, out_row, oy);
    }

    /// Dense: output pixels `first..end` into `out` (which starts at pixel `first`). `x` starts
    /// at input pixel `x_origin`, which only a pointwise conv over one long row may set (a
    /// fused block hands it a few rows); every other conv reads the whole input plane.
    #[allow(clippy::too_many_arguments)]
    pub fn dense_range(
        &self,
        x: &[f32],
        x_origin: usize,
        residuals: &[&[f32]],
        zeros: &[f32],
        out: &mut [f32],
        first: usize,
        end: usize,
    ) {
        let s = &self.shape;
        assert!(
            !s.depthwise
                && end <= self.pixels()
                && out.len() >= (end - first) * self.cs_out
                && zeros.len() >= s.c_in
                && residuals.iter().all(|r| r.len() >= end * self.cs_out),
            "conv output range outside its plan"
        );
        if x_origin > 0 {
            assert!(
                self.is_flat_pointwise()
                    && first >= x_origin
                    && x.len() >= (end - x_origin) * s.cs_in,
                "conv input range outside its plan"
            );
        } else {
            assert!(
                x.len() >= self.input_len()
                    || (self.is_flat_pointwise() && x.len() >= end * s.cs_in),
                "conv input shorter than its plan"
            );
        }
        let level = crate::simd::level();
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn avx512(
                p: &ConvPlan,
                x: &[f32],
                xo: usize,
                r: &[&[f32]],
                z: &[f32],
                o: &mut [f32],
                a: usize,
                b: usize,
            ) {
                dense::<Avx512, 8, 2, 16>(p, x, xo, r, z, o, a, b)
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2(
                p: &ConvPlan,
                x: &[f32],
                xo: usize,
                r: &[&[f32]],
                z: &[f32],
                o: &mut [f32],
                a: usize,
                b: usize,
            ) {
                dense::<Avx2, 4, 1, 6>(p, x, xo, r, z, o, a, b)
            }
            match level {
                // SAFETY: the CPU reported these features (`simd::level`).
                crate::simd::Level::Avx512 => {
                    return unsafe { avx512(self, x, x_origin, residuals, zeros, out, first, end) }
                }
                crate::simd::Level::Avx2 => {
                    return unsafe { avx2(self, x, x_origin, residuals, zeros, out, first, end) }
                }
                crate::simd::Level::Baseline => {}
            }
        }
        let _ = level;
        #[cfg(target_arch = "aarch64")]
        dense::<Portable<Fused>, 6, 1, 6>(self, x, x_origin, residuals, zeros, out, first, end);
        #[cfg(not(target_arch = "aarch64"))]
        dense::<Portable<Separate>, 4, 1, 4>(self, x, x_origin, residuals, zeros, out, first, end);
    }

    /// A 1×1 stride-1 conv without padding, planned as one long row of pixels.
    pub fn is_flat_pointwise(&self) -> bool {
        let s = &self.shape;
        s.h == 1 && s.kh == 1 && s.kw == 1 && s.stride == [1, 1] && s.pad == [0, 0]
    }

    /// The whole output through the portable copy, for the tests that hold the dispatched
    /// copies against it.
    #[doc(hidden)]
    pub fn run_portable(&self, x: &[f32], zeros: &[f32], out: &mut [f32]) {
        if self.shape.depthwise {
            let row_len = self.shape.ow * self.cs_out;
            for oy in 0..self.shape.oh {
                let rows = self.input_rows(x, oy);
                depthwise_row::<Portable<Separate>, 4>(
                    self,
                    &rows,
                    zeros,
                    &[],
                    &mut out[oy * row_len..][..row_len],
                    oy,
                );
            }
        } else {
            dense::<Portable<Separate>, 4, 1, 4>(self, x, 0, &[], zeros, out, 0, self.pixels());
        }
    }

    /// Index of the input pixel that tap (`ky`, `kx`) of output pixel (`oy`, `ox`) reads, or
    /// None in the padding.
    #[inline(always)]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<usize> {
        let iy = (oy * self.shape.stride[0] + ky * self.shape.dilation[0])
            .checked_sub(self.shape.pad[0])?;
        let ix = (ox * self.shape.stride[1] + kx * self.shape.dilation[1])
            .checked_sub(self.shape.pad[1])?;
        (iy < self.shape.h && ix < self.shape.w).then_some(iy * self.shape.w + ix)
    }
}

/// (row, column) of the `n` output pixels from `px` on: one division per tile, not per pixel and
/// tap.
#[inline(always)]
fn tile_coords<const MR: usize>(p: &ConvPlan, px: usize, n: usize) -> [(usize, usize); MR] {
    let mut coords = [(0usize, 0usize); MR];
    let (mut oy, mut ox) = (px / p.shape.ow, px % p.shape.ow);
    for c in coords.iter_mut().take(n) {
        *c = (oy, ox);
        ox += 1;
        if ox == p.shape.ow {
            (oy, ox) = (oy + 1, 0);
        }
    }
    coords
}

#[inline(always)]
fn load<V: Vector>(p: *const f32) -> V {
    // SAFETY: every caller passes a pointer with LANES readable floats (checked by the plan's
    // lengths: blocked rows are whole blocks, the zero row is at least one pixel long).
    unsafe { V::load(p) }
}

#[inline(always)]
fn store<V: Vector>(v: V, posts: &[PostOp], residuals: &[&[f32]], at: usize, dst: &mut [f32]) {
    let v = apply_posts(v, posts, residuals, at);
    let dst = &mut dst[..LANES];
    // SAFETY: `dst` holds LANES floats (bounds-checked above).
    unsafe { v.store(dst.as_mut_ptr()) }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dense<V: Vector, const MR: usize, const NR: usize, const MR1: usize>(
    p: &ConvPlan,
    x: &[f32],
    x_origin: usize,
    residuals: &[&[f32]],
    zeros: &[f32],
    out: &mut [f32],
    first: usize,
    end: usize,
) {
    let blocks = p.cs_out / LANES;
    if blocks == 1 {
        // One block of outputs (a decoder's last convs, narrow projections): more pixels per
        // tile instead, so each filter vector loaded serves MR1 multiply-adds.
        let mut px = first;
        while px < end {
            let n = MR1.min(end - px);
            dense_tile::<V, MR1, 1>(p, x, x_origin, residuals, zeros, out, first, px, n, 0);
            px += n;
        }
        return;
    }
    let mut px = first;
    while px < end {
        let n = MR.min(end - px);
        let mut cob = 0;
        while cob + NR <= blocks {
            dense_tile::<V, MR, NR>(p, x, x_origin, residuals, zeros, out, first, px, n, cob);
            cob += NR;
        }
        while cob < blocks {
            dense_tile::<V, MR, 1>(p, x, x_origin, residuals, zeros, out, first, px, n, cob);
            cob += 1;
        }
        px += n;
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dense_tile<V: Vector, const MR: usize, const NR: usize>(
    p: &ConvPlan,
    x: &[f32],
    x_origin: usize,
    residuals: &[&[f32]],
    zeros: &[f32],
    out: &mut [f32],
    first: usize,
    px: usize,
    n: usize,
    cob: usize,
) {
    let taps = p.shape.kh * p.shape.kw;
    let c_in = p.shape.c_in;
    let block_len = taps * c_in * LANES;
    let mut acc = [[V::splat(0.0); NR]; MR];
    for b in 0..NR {
        let bias: V = load(p.bias[(cob + b) * LANES..].as_ptr());
        for a in acc.iter_mut() {
            a[b] = bias;
        }
    }
    let coords = tile_coords::<MR>(p, px, n);
    // A pointwise conv over one long row reads its pixels in order, no padding.
    let plain_rows = p.is_flat_pointwise();
    let s = &p.shape;
    // A whole tile inside one output row whose taps all fall inside the input row: its pixels
    // are a constant step apart, and a kernel row in the vertical padding is skipped.
    let (oy0, ox0) = coords[0];
    let interior = !plain_rows
        && n == MR
        && ox0 + MR <= s.ow
        && ox0 * s.stride[1] >= s.pad[1]
        && (ox0 + MR - 1) * s.stride[1] + (s.kw - 1) * s.dilation[1] < s.w + s.pad[1];
    // Unpadded pixels (a stem's 3 channels, a narrow decoder conv's 16): a kernel row's pixels
    // are one run of kw·c_in floats, as its packed weights are, so one reduction covers the row.
    let merge_row = interior && s.cs_in == c_in && s.dilation[1] == 1;
    for ky in 0..s.kh {
        let iy = (oy0 * s.stride[0] + ky * s.dilation[0])
            .checked_sub(s.pad[0])
            .filter(|&iy| iy < s.h);
        if interior && iy.is_none() {
            continue;
        }
        if let (true, Some(iy)) = (merge_row, iy) {
            let first = iy * s.w + ox0 * s.stride[1] - s.pad[1];
            let base = x[first * c_in..].as_ptr();
            let step = s.stride[1] * c_in;
            let rows: [*const f32; MR] = std::array::from_fn(|q| base.wrapping_add(q * step));
            let wp = p.weights[(cob * taps + ky * s.kw) * c_in * LANES..].as_ptr();
            // SAFETY: each row holds kw·c_in readable floats (the tile is interior: its last
            // pixel's last tap is inside the input row); the packed weights hold the kw taps of
            // this kernel row as kw·c_in consecutive vectors per block.
            acc = unsafe { reduce::<V, MR, NR>(acc, rows, wp, block_len, s.kw * c_in) };
            continue;
        }
        for kx in 0..s.kw {
            let tap = ky * s.kw + kx;
            let mut rows = [zeros.as_ptr(); MR];
            if let (true, Some(iy)) = (interior, iy) {
                let first = iy * s.w + ox0 * s.stride[1] + kx * s.dilation[1] - s.pad[1];
                let base = x[first * s.cs_in..].as_ptr();
                let step = s.stride[1] * s.cs_in;
                for (q, r) in rows.iter_mut().enumerate() {
                    // In bounds: the tile's last tap reads column
                    // (ox0 + MR - 1)·stride + (kw - 1)·dil - pad < w (the `interior` test).
                    *r = base.wrapping_add(q * step);
                }
            } else {
                for q in 0..MR {
                    if q < n {
                        if plain_rows {
                            rows[q] = x[(px + q - x_origin) * s.cs_in..].as_ptr();
                        } else if let Some(i) = p.source(coords[q].0, coords[q].1, ky, kx) {
                            rows[q] = x[i * s.cs_in..].as_ptr();
                        }
                    }
                }
            }
            let wp = p.weights[(cob * taps + tap) * c_in * LANES..].as_ptr();
            // SAFETY: rows hold c_in readable floats each; the packed weights hold c_in vectors
            // for each of the NR blocks.
            acc = unsafe { reduce::<V, MR, NR>(acc, rows, wp, block_len, c_in) };
        }
    }
    // Constant indices only (a guard, not a loop bound of `n`): indexing the accumulators by a
    // run-time count would pin them to the stack for the whole reduction.
    for (q, row) in acc.iter().enumerate() {
        if q < n {
            for (b, a) in row.iter().enumerate() {
                let at = (px + q) * p.cs_out + (cob + b) * LANES;
                store(
                    *a,
                    &p.posts,
                    residuals,
                    at,
                    &mut out[at - first * p.cs_out..],
                );
            }
        }
    }
}

/// The reduction over input channels of one tap: the accumulators go in and come out by value,
/// so that they stay in registers (kept in an array across the tap loop, the compiler stored
/// every one of them after each multiply-add).
///
/// # Safety
/// Each of `rows` points at `c_in` readable floats; `wp` at `NR` blocks of `c_in` vectors,
/// `block_len` floats apart.
#[inline(always)]
unsafe fn reduce<V: Vector, const MR: usize, const NR: usize>(
    acc: [[V; NR]; MR],
    rows: [*const f32; MR],
    wp: *const f32,
    block_len: usize,
    c_in: usize,
) -> [[V; NR]; MR] {
    let mut acc = acc;
    for ci in 0..c_in {
        let mut wv = [V::splat(0.0); NR];
        for (b, w) in wv.iter_mut().enumerate() {
            *w = load(unsafe { wp.add(b * block_len + ci * LANES) });
        }
        for q in 0..MR {
            let a = unsafe { *rows[q].add(ci) };
            for b in 0..NR {
                acc[q][b] = acc[q][b].mac_scalar(a, wv[b]);
            }
        }
    }
    acc
}

/// One output row of a depthwise conv. Tiles whose taps all fall inside the row read `MR`
/// pixels a constant step apart; tiles at the row's ends take each pixel's own pointer, the
/// zero row where a tap falls into the padding. Kernel rows in the padding are skipped.
#[inline(always)]
fn depthwise_row<V: Vector, const MR: usize>(
    p: &ConvPlan,
    rows: &DepthwiseRows,
    zeros: &[f32],
    residuals: &[&[f32]],
    out: &mut [f32],
    oy: usize,
) {
    let s = &p.shape;
    let (stride, dil, pad, cs) = (s.stride[1], s.dilation[1], s.pad[1], s.cs_in);
    let taps = s.kh * s.kw;
    let blocks = p.cs_out / LANES;
    let step = stride * cs;
    let mut ox = 0;
    while ox < s.ow {
        let n = MR.min(s.ow - ox);
        let interior =
            n == MR && ox * stride >= pad && (ox + MR - 1) * stride + (s.kw - 1) * dil < s.w + pad;
        // At the row's ends: each pixel's offset in the row per kernel column, or None in the
        // padding (once per tile, not per block and kernel row).
        let mut cols = [[None; MR]; MAX_DEPTHWISE_SIDE];
        if !interior {
            for (kx, col) in cols.iter_mut().enumerate().take(s.kw) {
                for (q, c) in col.iter_mut().enumerate().take(n) {
                    let ix = (ox + q) * stride + kx * dil;
                    if ix >= pad && ix - pad < s.w {
                        *c = Some((ix - pad) * cs);
                    }
                }
            }
        }
        for cb in 0..blocks {
            let bias: V = load(p.bias[cb * LANES..].as_ptr());
            let mut acc = [bias; MR];
            let wp = p.weights[cb * taps * LANES..].as_ptr();
            for (ky, row) in rows.iter().enumerate().take(s.kh) {
                let Some(row) = row else { continue };
                if interior && s.kw == 3 && dil == 1 && (stride == 1 || stride == 2) {
                    // SAFETY: the packed weights hold `taps` vectors per block.
                    let w: [V; 3] =
                        std::array::from_fn(|kx| load(unsafe { wp.add((ky * 3 + kx) * LANES) }));
                    // In bounds as in the strided path below, for the tile's whole input span.
                    let base = row[(ox * stride - pad) * cs + cb * LANES..].as_ptr();
                    // SAFETY: the span's last pixel is (ox + MR - 1)·stride + 2 - pad < w.
                    acc = unsafe {
                        if stride == 1 {
                            row3::<V, MR, 1>(acc, base, cs, w)
                        } else {
                            row3::<V, MR, 2>(acc, base, cs, w)
                        }
                    };
                    continue;
                }
                for kx in 0..s.kw {
                    // SAFETY: the packed weights hold `taps` vectors per block.
                    let w: V = load(unsafe { wp.add((ky * s.kw + kx) * LANES) });
                    if interior {
                        // In bounds: the tile's last tap reads pixel
                        // (ox + MR - 1)·stride + (kw - 1)·dil - pad < w (the `interior` test).
                        let base = row[(ox * stride + kx * dil - pad) * cs + cb * LANES..].as_ptr();
                        // SAFETY: as above, every `base + q·step` is a whole block of the row.
                        acc = unsafe { taps_strided::<V, MR>(acc, base, step, w) };
                    } else {
                        let mut src = [zeros.as_ptr(); MR];
                        for (sp, c) in src.iter_mut().zip(&cols[kx]) {
                            if let Some(off) = c {
                                *sp = row[off + cb * LANES..].as_ptr();
                            }
                        }
                        // SAFETY: each pointer is a whole block of the row, or the zero row
                        // (`cs_in` ≥ one block long, read at its start).
                        acc = unsafe { taps_gathered::<V, MR>(acc, src, w) };
                    }
                }
            }
            for (q, a) in acc.iter().enumerate() {
                if q < n {
                    let at = ((ox + q) * p.cs_out) + cb * LANES;
                    store(
                        *a,
                        &p.posts,
                        residuals,
                        oy * s.ow * p.cs_out + at,
                        &mut out[at..],
                    );
                }
            }
        }
        ox += n;
    }
}

/// One depthwise tap for `MR` pixels `step` floats apart. Accumulators by value, as in
/// [`reduce`].
///
/// # Safety
/// `base + q·step` points at [`LANES`] readable floats for every `q < MR`.
#[inline(always)]
unsafe fn taps_strided<V: Vector, const MR: usize>(
    acc: [V; MR],
    base: *const f32,
    step: usize,
    w: V,
) -> [V; MR] {
    let mut acc = acc;
    for (q, a) in acc.iter_mut().enumerate() {
        *a = a.mac(load(unsafe { base.add(q * step) }), w);
    }
    acc
}

/// One kernel row of a 3-wide depthwise conv at stride `S` (1 or 2) for `MR` (≤ 8) pixels:
/// the span's input pixels are loaded once into registers and each feeds every output pixel
/// its taps reach (the per-tap form loads most pixels three times, each with its own address).
///
/// # Safety
/// `base + j·cs` points at [`LANES`] readable floats for every `j < (MR - 1)·S + 3`.
#[inline(always)]
unsafe fn row3<V: Vector, const MR: usize, const S: usize>(
    acc: [V; MR],
    base: *const f32,
    cs: usize,
    w: [V; 3],
) -> [V; MR] {
    let mut acc = acc;
    let mut v = [V::splat(0.0); 17];
    let mut p = base;
    for x in v.iter_mut().take((MR - 1) * S + 3) {
        *x = load(p);
        p = p.wrapping_add(cs);
    }
    for (q, a) in acc.iter_mut().enumerate() {
        *a = a
            .mac(v[q * S], w[0])
            .mac(v[q * S + 1], w[1])
            .mac(v[q * S + 2], w[2]);
    }
    acc
}

/// One depthwise tap for `MR` pixels at their own pointers.
///
/// # Safety
/// Every pointer in `src` points at [`LANES`] readable floats.
#[inline(always)]
unsafe fn taps_gathered<V: Vector, const MR: usize>(
    acc: [V; MR],
    src: [*const f32; MR],
    w: V,
) -> [V; MR] {
    let mut acc = acc;
    for (a, &sp) in acc.iter_mut().zip(&src) {
        *a = a.mac(load(sp), w);
    }
    acc
}
