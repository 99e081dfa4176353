//! MobileNetV2's inverted-residual block as one kernel: expand 1×1 → depthwise → project 1×1
//! (each with its fused post chain, the residual Add in the projection's), computed a row at a
//! time so that the expanded tensor (six times the block's input) never leaves the cache. Run as
//! three kernels, the expansion is written out in full and read back by the depthwise conv: at
//! the early, high-resolution blocks that traffic, not the arithmetic, is the cost.
//!
//! Each task owns a ring of the expanded input rows the depthwise conv reaches (its kernel
//! height) and one depthwise output row; an output row expands only the input rows it is the
//! first to need, so no row is expanded twice except at the edges between tasks.

use std::sync::Mutex;

use super::conv::{ConvPlan, DepthwiseRows, MAX_DEPTHWISE_SIDE};
use super::{AlignedVec, PostOp, Threads};

/// The three convolutions of one block, planned.
#[derive(Debug)]
pub struct BlockPlan {
    /// A pointwise conv over the whole input plane (`is_flat_pointwise`), or None for a block
    /// without expansion (MobileNetV2's first).
    expand: Option<ConvPlan>,
    dw: ConvPlan,
    /// A pointwise conv over the whole output plane; its posts may add residuals.
    project: ConvPlan,
    /// Expanded rows the depthwise conv reaches from one output row.
    span: usize,
    /// Per-task scratch (the ring and the depthwise row), kept between runs.
    scratch: Mutex<Vec<(AlignedVec, AlignedVec)>>,
}

impl BlockPlan {
    /// Fails (with what does not fit) unless the three plans chain: `expand` (when present) a
    /// flat pointwise conv whose output is `dw`'s input plane, `dw` depthwise, `project` a flat
    /// pointwise conv over `dw`'s output; only `project`'s posts may add residuals.
    pub fn new(expand: Option<ConvPlan>, dw: ConvPlan, project: ConvPlan) -> Result<Self, String> {
        let d = dw.shape;
        if !d.depthwise || d.kh > MAX_DEPTHWISE_SIDE || d.kw > MAX_DEPTHWISE_SIDE {
            return Err("the middle conv is not a depthwise conv the kernels take".into());
        }
        if let Some(e) = &expand {
            if !e.is_flat_pointwise()
                || e.pixels() != d.h * d.w
                || e.cs_out != d.cs_in
                || e.shape.c_out != d.c_in
            {
                return Err("the expansion does not produce the depthwise conv's input".into());
            }
            if e.posts.iter().any(|p| matches!(p, PostOp::Residual(_))) {
                return Err("the expansion adds a residual".into());
            }
        }
        if dw.posts.iter().any(|p| matches!(p, PostOp::Residual(_))) {
            return Err("the depthwise conv adds a residual".into());
        }
        if !project.is_flat_pointwise()
            || project.pixels() != d.oh * d.ow
            || project.shape.cs_in != dw.cs_out
            || project.shape.c_in != d.c_out
        {
            return Err("the projection does not read the depthwise conv's output".into());
        }
        let span = (d.kh - 1) * d.dilation[0] + 1;
        Ok(BlockPlan {
            expand,
            dw,
            project,
            span,
            scratch: Mutex::new(Vec::new()),
        })
    }

    pub fn input_len(&self) -> usize {
        match &self.expand {
            Some(e) => e.input_len(),
            None => self.dw.input_len(),
        }
    }

    pub fn output_len(&self) -> usize {
        self.project.pixels() * self.project.cs_out
    }

    /// Elements of the widest pixel the block reads (the zero row must be this long).
    pub fn widest_pixel(&self) -> usize {
        let e = self
            .expand
            .as_ref()
            .map_or(0, |e| e.shape.cs_in.max(e.shape.c_in));
        e.max(self.dw.shape.cs_in).max(self.project.shape.cs_in)
    }

    /// Multiply-accumulates one run does.
    pub fn macs(&self) -> usize {
        self.expand.as_ref().map_or(0, |e| e.macs()) + self.dw.macs() + self.project.macs()
    }

    /// The depthwise conv's geometry.
    pub fn depthwise(&self) -> &super::conv::ConvShape {
        &self.dw.shape
    }

    pub fn has_expand(&self) -> bool {
        self.expand.is_some()
    }

    /// Runs the block: `x` the block's input (blocked), `residuals` the tensors the
    /// projection's posts add (in the output's layout), `zeros` at least
    /// [`widest_pixel`](Self::widest_pixel) zeros.
    pub fn run(
        &self,
        x: &[f32],
        residuals: &[&[f32]],
        zeros: &[f32],
        out: &mut [f32],
        threads: Threads,
    ) {
        let d = self.dw.shape;
        assert!(
            x.len() >= self.input_len()
                && zeros.len() >= self.widest_pixel()
                && out.len() >= self.output_len(),
            "block input or output shorter than its plan"
        );
        let row_len = d.ow * self.project.cs_out;
        let ring_len = if self.expand.is_some() {
            self.span * d.w * d.cs_in
        } else {
            0
        };
        let dw_len = d.ow * self.dw.cs_out;
        // One contiguous run of rows per thread: each task's first rows expand input rows its
        // neighbour also expands, so fewer, longer tasks waste less.
        let grain = d.oh.div_ceil(threads.count()).max(1);
        threads.for_ranges(out, d.oh, row_len, grain, |r0, r1, chunk| {
            let taken = self.scratch.lock().ok().and_then(|mut s| s.pop());
            let (mut ring, mut dw_row) = match taken {
                Some((r, w)) if r.len() == ring_len && w.len() == dw_len => (r, w),
                _ => (AlignedVec::zeros(ring_len), AlignedVec::zeros(dw_len)),
            };
            self.rows(x, residuals, zeros, &mut ring, &mut dw_row, chunk, r0, r1);
            if let Ok(mut s) = self.scratch.lock() {
                s.push((ring, dw_row));
            }
        });
    }

    /// Output rows `r0..r1` into `out` (which starts at row `r0`).
    #[allow(clippy::too_many_arguments)]
    fn rows(
        &self,
        x: &[f32],
        residuals: &[&[f32]],
        zeros: &[f32],
        ring: &mut [f32],
        dw_row: &mut [f32],
        out: &mut [f32],
        r0: usize,
        r1: usize,
    ) {
        let d = self.dw.shape;
        let in_row = d.w * d.cs_in;
        let row_len = d.ow * self.project.cs_out;
        // Input rows up to `hi` are expanded, row iy at slot iy % span: the last `span` of them
        // are in the ring, which covers every output row's reach as rows only move forward.
        let mut hi = 0usize;
        for oy in r0..r1 {
            let rows: DepthwiseRows = match &self.expand {
                None => self.dw.input_rows(x, oy),
                Some(e) => {
                    let first = (oy * d.stride[0]).saturating_sub(d.pad[0]);
                    let last = (oy * d.stride[0] + (d.kh - 1) * d.dilation[0])
                        .saturating_sub(d.pad[0])
                        .min(d.h - 1);
                    if first >= hi {
                        hi = first;
                    }
                    while hi <= last {
                        let slot = &mut ring[(hi % self.span) * in_row..][..in_row];
                        e.dense_range(x, 0, &[], zeros, slot, hi * d.w, (hi + 1) * d.w);
                        hi += 1;
                    }
                    let mut rows: DepthwiseRows = [None; MAX_DEPTHWISE_SIDE];
                    for (ky, r) in rows.iter_mut().enumerate().take(d.kh) {
                        if let Some(iy) = self.dw.input_row(oy, ky) {
                            debug_assert!(
                                iy < hi && iy + self.span >= hi,
                                "input row {iy} not in the ring (rows up to {hi})"
                            );
                            *r = Some(&ring[(iy % self.span) * in_row..][..in_row]);
                        }
                    }
                    rows
                }
            };
            self.dw.depthwise_row(&rows, zeros, &[], dw_row, oy);
            let out_row = &mut out[(oy - r0) * row_len..][..row_len];
            self.project.dense_range(
                dw_row,
                oy * d.ow,
                residuals,
                zeros,
                out_row,
                oy * d.ow,
                (oy + 1) * d.ow,
            );
        }
    }
}
