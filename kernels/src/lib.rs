//! gss's own CPU kernels for the layers our packages are made of: convolutions (pointwise,
//! depthwise, dense and the stem, with bias, ReLU6 / Clip and residual Add fused into the
//! store), bilinear resize, the channel argmax and the layout changes at a graph's edges.
//!
//! Activations between these kernels stay channels-last with the channel axis padded to whole
//! blocks of [`LANES`] (the layout onnxruntime's MLAS calls NCHWc, with one block spanning every
//! channel of a pixel): a depthwise tap is one lane-vector FMA per pixel, a pointwise conv
//! broadcasts one input value against whole blocks of filters, and the stride only changes a
//! pointer step. Reorders happen only where a graph leaves this layout.
//!
//! The kernels are plain Rust over lane blocks with register-blocked accumulators; the block is
//! a fixed-size array the compiler vectorises (aarch64 gets NEON from it), or on x86-64 an
//! intrinsic register where the array form spilled ([`vector`]). Each entry point is compiled
//! again for AVX-512 and for AVX2+FMA and picks its copy at run time ([`simd::level`]). The
//! runtime's tests (`gss`, `engine::cpu::program`) hold every kernel against a plain reference.
//!
//! A crate of its own so that it is optimised in every build: the runtime's debug builds (its
//! test suite) would otherwise run these loops unoptimised, about thirty times slower than
//! tract.

pub mod block;
pub mod conv;
pub mod layout;
pub mod resize;
pub mod simd;
pub(crate) mod vector;

use rayon::prelude::*;

/// Channels per block: one AVX-512 register, two AVX2 registers, four NEON registers.
pub const LANES: usize = 16;
pub type Lane = [f32; LANES];

/// One lane block on a cache-line boundary.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; LANES]);

/// Floats starting on a 64-byte boundary, so that no lane block of a blocked tensor or of packed
/// weights straddles two cache lines (measured: the depthwise kernel ran at about half speed
/// from a plain `Vec<f32>`, whose allocations start 16 bytes past a line).
#[derive(Clone, Default)]
pub struct AlignedVec {
    blocks: Vec<Block>,
    len: usize,
}

impl AlignedVec {
    pub fn zeros(len: usize) -> Self {
        AlignedVec {
            blocks: vec![Block([0.0; LANES]); len.div_ceil(LANES)],
            len,
        }
    }

    pub fn from_slice(v: &[f32]) -> Self {
        let mut a = Self::zeros(v.len());
        a.copy_from_slice(v);
        a
    }
}

impl std::ops::Deref for AlignedVec {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        // SAFETY: `Block` is `repr(C)` over `[f32; LANES]` with no padding (64 bytes, align
        // 64), so the blocks are `len.div_ceil(LANES) · LANES ≥ len` contiguous floats.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr() as *const f32, self.len) }
    }
}

impl std::ops::DerefMut for AlignedVec {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, with the unique borrow of the blocks.
        unsafe { std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr() as *mut f32, self.len) }
    }
}

impl std::fmt::Debug for AlignedVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedVec({} floats)", self.len)
    }
}

/// Rounds a channel count up to whole blocks.
pub fn padded(c: usize) -> usize {
    c.div_ceil(LANES) * LANES
}

/// Multiply-accumulate as the target does it best. `f32::mul_add` is one instruction where the
/// copy is compiled with FMA, but a libm call on the SSE2 baseline, which must multiply and add.
pub trait Mac {
    fn mac(a: f32, b: f32, acc: f32) -> f32;
}

/// Fused multiply-add (FMA3, AVX-512, NEON).
#[derive(Clone, Copy)]
pub struct Fused;
/// Multiply, then add (the SSE2 baseline).
#[derive(Clone, Copy)]
pub struct Separate;

impl Mac for Fused {
    #[inline(always)]
    fn mac(a: f32, b: f32, acc: f32) -> f32 {
        a.mul_add(b, acc)
    }
}

impl Mac for Separate {
    #[inline(always)]
    fn mac(a: f32, b: f32, acc: f32) -> f32 {
        a * b + acc
    }
}

/// An elementwise operation applied to a kernel's result before it is stored (the lowering's
/// `Post`, with a residual named by its position in the kernel's residual inputs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PostOp {
    Max(f32),
    Min(f32),
    Add(f32),
    Mul(f32),
    /// `v + residuals[i][same index]`
    Residual(usize),
}

/// Applies `posts` to one lane vector that will be stored at element `at` of the output.
#[inline(always)]
pub(crate) fn apply_posts(v: &mut Lane, posts: &[PostOp], residuals: &[&[f32]], at: usize) {
    apply_posts_slice(v, posts, residuals, at)
}

/// Applies `posts` to consecutive values that start at element `at` of the output, one post at
/// a time over the whole slice (vectorised, no branch per value).
#[inline(always)]
pub(crate) fn apply_posts_slice(v: &mut [f32], posts: &[PostOp], residuals: &[&[f32]], at: usize) {
    for p in posts {
        match *p {
            PostOp::Max(c) => v.iter_mut().for_each(|x| *x = x.max(c)),
            PostOp::Min(c) => v.iter_mut().for_each(|x| *x = x.min(c)),
            PostOp::Add(c) => v.iter_mut().for_each(|x| *x += c),
            PostOp::Mul(c) => v.iter_mut().for_each(|x| *x *= c),
            PostOp::Residual(i) => {
                let r = &residuals[i][at..at + v.len()];
                v.iter_mut().zip(r).for_each(|(x, r)| *x += r);
            }
        }
    }
}

/// Where a kernel runs: on the calling thread, or split over the backend's pool.
#[derive(Clone, Copy)]
pub enum Threads<'a> {
    One,
    Pool(&'a rayon::ThreadPool),
}

impl Threads<'_> {
    pub fn count(&self) -> usize {
        match self {
            Threads::One => 1,
            Threads::Pool(p) => p.current_num_threads(),
        }
    }

    /// Calls `f(first, end, chunk)` over `units` units of `unit_len` elements of `out`, split
    /// into contiguous ranges of at least `grain` units, one or a few per thread. Each call gets
    /// the part of `out` its units own.
    pub fn for_ranges<F>(&self, out: &mut [f32], units: usize, unit_len: usize, grain: usize, f: F)
    where
        F: Fn(usize, usize, &mut [f32]) + Sync,
    {
        let out = &mut out[..units * unit_len];
        let threads = self.count();
        // A few ranges per thread even out rows of unequal cost (padding at the edges).
        let tasks = if threads == 1 {
            1
        } else {
            (units / grain.max(1)).clamp(1, threads * 4)
        };
        if tasks == 1 || unit_len == 0 {
            f(0, units, out);
            return;
        }
        let per = units.div_ceil(tasks);
        let Threads::Pool(pool) = self else {
            unreachable!("one thread takes the branch above")
        };
        pool.install(|| {
            out.par_chunks_mut(per * unit_len)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let first = i * per;
                    f(first, first + chunk.len() / unit_len, chunk);
                })
        });
    }
}
