//! Everything that moves values rather than computes them: reorders between plain row-major
//! (NCHW) and the blocked channels-last layout, transposes, the channel argmax, the embedding
//! gather, and elementwise post chains on their own.

use super::{apply_posts_slice, PostOp, Threads};

/// Plain `[c][h·w]` → blocked `[h·w][cs]` (channels past `c` set to zero).
pub fn to_blocked(
    x: &[f32],
    c: usize,
    pixels: usize,
    cs: usize,
    out: &mut [f32],
    threads: Threads,
) {
    assert!(
        x.len() >= c * pixels && cs >= c,
        "reorder input shorter than its shape"
    );
    threads.for_ranges(out, pixels, cs, 1024, |first, end, chunk| {
        // Pixels in runs of 64 keep the strided reads of each channel in a few cache lines.
        for p0 in (first..end).step_by(64) {
            let p1 = (p0 + 64).min(end);
            for ch in 0..cs {
                for p in p0..p1 {
                    chunk[(p - first) * cs + ch] = if ch < c { x[ch * pixels + p] } else { 0.0 };
                }
            }
        }
    });
}

/// Blocked `[h·w][cs]` → plain `[c][h·w]`.
pub fn to_plain(x: &[f32], c: usize, pixels: usize, cs: usize, out: &mut [f32], threads: Threads) {
    assert!(
        x.len() >= cs * pixels && cs >= c,
        "reorder input shorter than its shape"
    );
    threads.for_ranges(out, c, pixels, 1, |first, end, chunk| {
        for p0 in (0..pixels).step_by(64) {
            let p1 = (p0 + 64).min(pixels);
            for ch in first..end {
                let row = &mut chunk[(ch - first) * pixels..];
                for p in p0..p1 {
                    row[p] = x[p * cs + ch];
                }
            }
        }
    });
}

/// Index of the first maximum of each pixel's `c` channels (blocked layout), as u32 bits.
pub fn argmax_blocked(x: &[f32], c: usize, pixels: usize, cs: usize, out: &mut [f32]) {
    crate::dispatch!(argmax_blocked_rows(x, c, pixels, cs, out))
}

#[inline(always)]
fn argmax_blocked_rows(x: &[f32], c: usize, pixels: usize, cs: usize, out: &mut [f32]) {
    for (p, o) in out.iter_mut().enumerate().take(pixels) {
        let row = &x[p * cs..p * cs + c];
        // The maximum first, lane-wise (vectorised), then where it first occurs: the same
        // answer as one strict `>` scan, several times faster over hundreds of codes.
        let mut lanes = [f32::NEG_INFINITY; super::LANES];
        let mut chunks = row.chunks_exact(super::LANES);
        for ch in &mut chunks {
            for (m, &v) in lanes.iter_mut().zip(ch) {
                *m = if v > *m { v } else { *m };
            }
        }
        let tail = chunks
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        let max = lanes.iter().fold(tail, |m, &v| if v > m { v } else { m });
        // NaN everywhere (or an empty row) leaves no maximum: index 0, as the scan gives.
        let best = row.iter().position(|&v| v == max).unwrap_or(0);
        *o = f32::from_bits(best as u32);
    }
}

/// Index of the first (or last) maximum along the middle axis of plain (outer, n, inner), as
/// u32 bits.
pub fn argmax_plain(
    x: &[f32],
    outer: usize,
    n: usize,
    inner: usize,
    take_last: bool,
    out: &mut [f32],
) {
    for o in 0..outer {
        for r in 0..inner {
            let base = o * n * inner + r;
            let (mut best, mut arg) = (x[base], 0u32);
            for k in 1..n {
                let v = x[base + k * inner];
                if v > best || (take_last && v == best) {
                    (best, arg) = (v, k as u32);
                }
            }
            out[o * inner + r] = f32::from_bits(arg);
        }
    }
}

/// `out[i, :] = table[idx[i], :]` for indices stored as u32 bits; an index past the table is an
/// error naming it.
pub fn gather(
    table: &[f32],
    rows: usize,
    cols: usize,
    idx: &[f32],
    out: &mut [f32],
) -> Result<(), String> {
    for (i, (&id, dst)) in idx.iter().zip(out.chunks_exact_mut(cols)).enumerate() {
        let r = id.to_bits() as usize;
        if r >= rows {
            return Err(format!(
                "index {r} at position {i} is outside the table's {rows} rows"
            ));
        }
        dst.copy_from_slice(&table[r * cols..(r + 1) * cols]);
    }
    Ok(())
}

/// Plain transpose: output axis `i` is input axis `perm[i]`; then the post chain, row by row
/// while the row is in cache.
pub fn permute(
    x: &[f32],
    in_shape: &[usize],
    perm: &[usize],
    posts: &[PostOp],
    residuals: &[&[f32]],
    out: &mut [f32],
) {
    let rank = in_shape.len();
    let mut in_strides = vec![1usize; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * in_shape[a + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&a| in_shape[a]).collect();
    let strides: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    let total: usize = out_shape.iter().product();
    if total == 0 {
        return;
    }
    // The last output axis runs innermost; the others advance like an odometer.
    let inner = out_shape[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut index = vec![0usize; rank];
    let mut base = 0usize;
    for (r, row) in out[..total].chunks_exact_mut(inner).enumerate() {
        for (k, o) in row.iter_mut().enumerate() {
            *o = x[base + k * inner_stride];
        }
        apply_posts_slice(row, posts, residuals, r * inner);
        for a in (0..rank - 1).rev() {
            index[a] += 1;
            base += strides[a];
            if index[a] < out_shape[a] {
                break;
            }
            base -= strides[a] * out_shape[a];
            index[a] = 0;
        }
    }
}

/// `out = posts(x)` elementwise.
pub fn apply(x: &[f32], posts: &[PostOp], residuals: &[&[f32]], out: &mut [f32]) {
    let n = out.len().min(x.len());
    out[..n].copy_from_slice(&x[..n]);
    apply_posts_slice(&mut out[..n], posts, residuals, 0);
}

/// DepthToSpace read straight from the blocked layout, so that a decoder's upsampling needs no
/// reorder to plain and back: each output pixel takes `c` of its input pixel's channels.
#[derive(Debug, Clone)]
pub struct DepthToSpace {
    /// Output channels.
    pub c: usize,
    /// Input plane.
    pub h: usize,
    pub w: usize,
    /// Block size along rows and columns.
    pub r: [usize; 2],
    /// Elements between two input pixels.
    pub cs_in: usize,
    /// Elements between two output pixels (blocked output), or None for plain `[c][h·w]`.
    pub cs_out: Option<usize>,
    /// `[dy][dx][k]`: the input channel output channel `k` takes at offset (`dy`, `dx`).
    source: Vec<usize>,
}

impl DepthToSpace {
    /// `crd`: ONNX's column-row-depth order (channel `(k·rh + dy)·rw + dx`, PyTorch's
    /// PixelShuffle); otherwise depth-column-row (`(dy·rw + dx)·c + k`).
    pub fn new(
        c: usize,
        h: usize,
        w: usize,
        r: [usize; 2],
        crd: bool,
        cs_in: usize,
        cs_out: Option<usize>,
    ) -> Self {
        let mut source = Vec::with_capacity(r[0] * r[1] * c);
        for dy in 0..r[0] {
            for dx in 0..r[1] {
                for k in 0..c {
                    source.push(if crd {
                        (k * r[0] + dy) * r[1] + dx
                    } else {
                        (dy * r[1] + dx) * c + k
                    });
                }
            }
        }
        DepthToSpace {
            c,
            h,
            w,
            r,
            cs_in,
            cs_out,
            source,
        }
    }

    fn out_w(&self) -> usize {
        self.w * self.r[1]
    }

    /// Elements the output takes.
    pub fn output_len(&self) -> usize {
        let pixels = self.h * self.r[0] * self.out_w();
        pixels * self.cs_out.unwrap_or(self.c)
    }

    pub fn run(
        &self,
        x: &[f32],
        posts: &[PostOp],
        residuals: &[&[f32]],
        out: &mut [f32],
        threads: Threads,
    ) {
        assert!(
            x.len() >= self.h * self.w * self.cs_in && self.source.iter().all(|&s| s < self.cs_in),
            "DepthToSpace input shorter than its shape"
        );
        let (oh, ow, c, r) = (self.h * self.r[0], self.out_w(), self.c, self.r);
        match self.cs_out {
            Some(cs) => threads.for_ranges(out, oh, ow * cs, 4, |first, end, chunk| {
                for oy in first..end {
                    let (y, dy) = (oy / r[0], oy % r[0]);
                    let row = &mut chunk[(oy - first) * ow * cs..][..ow * cs];
                    for xx in 0..self.w {
                        let src = &x[(y * self.w + xx) * self.cs_in..][..self.cs_in];
                        for dx in 0..r[1] {
                            let idx = &self.source[(dy * r[1] + dx) * c..][..c];
                            let dst = &mut row[(xx * r[1] + dx) * cs..][..cs];
                            for (d, &i) in dst.iter_mut().zip(idx) {
                                *d = src[i];
                            }
                            dst[c..].fill(0.0);
                        }
                    }
                    apply_posts_slice(row, posts, residuals, oy * ow * cs);
                }
            }),
            None => threads.for_ranges(out, c * oh, ow, 4, |first, end, chunk| {
                for row in first..end {
                    let (k, oy) = (row / oh, row % oh);
                    let (y, dy) = (oy / r[0], oy % r[0]);
                    let dst = &mut chunk[(row - first) * ow..][..ow];
                    let src = &x[y * self.w * self.cs_in..][..self.w * self.cs_in];
                    for dx in 0..r[1] {
                        let i = self.source[(dy * r[1] + dx) * c + k];
                        for xx in 0..self.w {
                            dst[xx * r[1] + dx] = src[xx * self.cs_in + i];
                        }
                    }
                    apply_posts_slice(dst, posts, residuals, row * ow);
                }
            }),
        }
    }
}
