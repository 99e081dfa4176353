//! Everything that moves values rather than computes them: reorders between plain row-major
//! (NCHW) and the blocked channels-last layout, transposes, the channel argmax, the embedding
//! gather, and elementwise post chains on their own.

use super::{apply_posts_scalar, PostOp, Threads};

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
    crate::simd::dispatch!(argmax_blocked_rows(x, c, pixels, cs, out))
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
        if !posts.is_empty() {
            for (k, o) in row.iter_mut().enumerate() {
                *o = apply_posts_scalar(*o, posts, residuals, r * inner + k);
            }
        }
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
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = apply_posts_scalar(v, posts, residuals, i);
    }
}
