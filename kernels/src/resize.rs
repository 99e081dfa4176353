//! Bilinear resize on the blocked channels-last layout: per output pixel, four input pixels'
//! channel blocks blended with weights computed once per row and column when the plan is built.

use super::{apply_posts, Lane, PostOp, Threads, LANES};

// The resize's blend is four loads and a few adds per block, far from the FMA units: the array
// form vectorises it well enough, and it keeps one rounding order on every CPU.

/// How an output coordinate maps onto the input (ONNX `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coord {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
}

/// One axis: for each output index, the two input indices and the weight of the second.
fn axis(len_in: usize, len_out: usize, scale: f32, coord: Coord) -> Vec<(usize, usize, f32)> {
    (0..len_out)
        .map(|o| {
            let src = match coord {
                Coord::HalfPixel => (o as f32 + 0.5) / scale - 0.5,
                Coord::PytorchHalfPixel if len_out > 1 => (o as f32 + 0.5) / scale - 0.5,
                Coord::AlignCorners if len_out > 1 => {
                    o as f32 * ((len_in as f32 - 1.0) / (len_out as f32 - 1.0))
                }
                Coord::PytorchHalfPixel | Coord::AlignCorners => 0.0,
                Coord::Asymmetric => o as f32 / scale,
            };
            let f = src.clamp(0.0, len_in as f32 - 1.0);
            let i0 = f.floor() as usize;
            let i1 = (i0 + 1).min(len_in - 1);
            (i0, i1, f - i0 as f32)
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct ResizePlan {
    pub c: usize,
    /// Elements between two pixels, input and output (whole blocks).
    pub cs: usize,
    pub ih: usize,
    pub iw: usize,
    pub oh: usize,
    pub ow: usize,
    rows: Vec<(usize, usize, f32)>,
    cols: Vec<(usize, usize, f32)>,
    pub posts: Vec<PostOp>,
}

impl ResizePlan {
    /// `scale` is output / input per axis as the graph states it; sizes are non-zero.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c: usize,
        ih: usize,
        iw: usize,
        oh: usize,
        ow: usize,
        scale: [f32; 2],
        coord: Coord,
        posts: Vec<PostOp>,
    ) -> Self {
        let cs = super::padded(c);
        ResizePlan {
            c,
            cs,
            ih,
            iw,
            oh,
            ow,
            rows: axis(ih, oh, scale[0], coord),
            cols: axis(iw, ow, scale[1], coord),
            posts,
        }
    }

    pub fn run(&self, x: &[f32], residuals: &[&[f32]], out: &mut [f32], threads: Threads) {
        assert!(
            x.len() >= self.ih * self.iw * self.cs,
            "resize input shorter than its plan"
        );
        threads.for_ranges(out, self.oh * self.ow, self.cs, 256, |first, end, chunk| {
            crate::dispatch!(self.range(x, residuals, chunk, first, end))
        });
    }

    #[inline(always)]
    fn range(&self, x: &[f32], residuals: &[&[f32]], out: &mut [f32], first: usize, end: usize) {
        let load = |i: usize| -> Lane { x[i..i + LANES].try_into().unwrap_or([0.0; LANES]) };
        for px in first..end {
            let (y0, y1, dy) = self.rows[px / self.ow];
            let (x0, x1, dx) = self.cols[px % self.ow];
            let (a, b) = ((y0 * self.iw + x0) * self.cs, (y0 * self.iw + x1) * self.cs);
            let (c, d) = ((y1 * self.iw + x0) * self.cs, (y1 * self.iw + x1) * self.cs);
            for k in (0..self.cs).step_by(LANES) {
                let (va, vb, vc, vd) = (load(a + k), load(b + k), load(c + k), load(d + k));
                let mut v = [0.0f32; LANES];
                for l in 0..LANES {
                    let top = va[l] + (vb[l] - va[l]) * dx;
                    let bot = vc[l] + (vd[l] - vc[l]) * dx;
                    v[l] = top + (bot - top) * dy;
                }
                let at = px * self.cs + k;
                apply_posts(&mut v, &self.posts, residuals, at);
                let o = at - first * self.cs;
                out[o..o + LANES].copy_from_slice(&v);
            }
        }
    }
}
