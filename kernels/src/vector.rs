//! One block of [`LANES`] channels as the kernels compute on it. The portable form is a plain
//! array the compiler vectorises per operation; on x86-64 the AVX-512 and AVX2 forms are
//! registers, because an accumulator tile kept as arrays is spilled to the stack on every
//! multiply-add (measured: each FMA of the pointwise tile followed by a store, about half the
//! speed). The forms are interchangeable; the tests hold each against the portable one.

use super::{Lane, Mac, LANES};

/// A block of [`LANES`] floats in whatever form the instruction set keeps best.
pub trait Vector: Copy {
    fn splat(v: f32) -> Self;
    /// # Safety
    /// `p` points at [`LANES`] readable floats.
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` points at [`LANES`] writable floats.
    unsafe fn store(self, p: *mut f32);
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn add(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    /// `a * b + self`
    fn mac(self, a: Self, b: Self) -> Self;
    /// `self + a * b` with `a` one float.
    #[inline(always)]
    fn mac_scalar(self, a: f32, b: Self) -> Self {
        self.mac(Self::splat(a), b)
    }
}

/// The portable form: an array, multiply-add as `M` does it.
#[derive(Clone, Copy)]
pub struct Portable<M>(pub Lane, std::marker::PhantomData<M>);

impl<M: Mac + Copy> Vector for Portable<M> {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        Portable([v; LANES], std::marker::PhantomData)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller's promise.
        Portable(
            unsafe { std::ptr::read_unaligned(p as *const Lane) },
            std::marker::PhantomData,
        )
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller's promise.
        unsafe { std::ptr::write_unaligned(p as *mut Lane, self.0) }
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, f32::max)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, f32::min)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.zip(o, |a, b| a + b)
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self.zip(o, |a, b| a * b)
    }
    #[inline(always)]
    fn mac(self, a: Self, b: Self) -> Self {
        let mut r = self.0;
        for (r, (a, b)) in r.iter_mut().zip(a.0.iter().zip(&b.0)) {
            *r = M::mac(*a, *b, *r);
        }
        Portable(r, std::marker::PhantomData)
    }
}

impl<M> Portable<M> {
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut r = self.0;
        for (r, o) in r.iter_mut().zip(&o.0) {
            *r = f(*r, *o);
        }
        Portable(r, std::marker::PhantomData)
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Vector;

    /// One AVX-512 register. Only built inside functions compiled with AVX-512F (the kernels'
    /// dispatch checks the CPU first).
    #[derive(Clone, Copy)]
    pub struct Avx512(__m512);

    impl Vector for Avx512 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: only reached from copies compiled for AVX-512 on a CPU that has it.
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's promise; AVX-512 as above.
            Avx512(unsafe { _mm512_loadu_ps(p) })
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller's promise; AVX-512 as above.
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            // SAFETY: AVX-512 as above.
            Avx512(unsafe { _mm512_max_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            // SAFETY: AVX-512 as above.
            Avx512(unsafe { _mm512_min_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: AVX-512 as above.
            Avx512(unsafe { _mm512_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            // SAFETY: AVX-512 as above.
            Avx512(unsafe { _mm512_mul_ps(self.0, o.0) })
        }
        #[inline(always)]
        fn mac(self, a: Self, b: Self) -> Self {
            // SAFETY: AVX-512 as above.
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
    }

    /// Two AVX2 registers. Only built inside functions compiled with AVX2 and FMA.
    #[derive(Clone, Copy)]
    pub struct Avx2(__m256, __m256);

    impl Vector for Avx2 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: only reached from copies compiled for AVX2+FMA on a CPU that has them.
            unsafe { Avx2(_mm256_set1_ps(v), _mm256_set1_ps(v)) }
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller's promise (16 floats); AVX2 as above.
            unsafe { Avx2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller's promise (16 floats); AVX2 as above.
            unsafe {
                _mm256_storeu_ps(p, self.0);
                _mm256_storeu_ps(p.add(8), self.1);
            }
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            // SAFETY: AVX2 as above.
            unsafe { Avx2(_mm256_max_ps(self.0, o.0), _mm256_max_ps(self.1, o.1)) }
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            // SAFETY: AVX2 as above.
            unsafe { Avx2(_mm256_min_ps(self.0, o.0), _mm256_min_ps(self.1, o.1)) }
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: AVX2 as above.
            unsafe { Avx2(_mm256_add_ps(self.0, o.0), _mm256_add_ps(self.1, o.1)) }
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            // SAFETY: AVX2 as above.
            unsafe { Avx2(_mm256_mul_ps(self.0, o.0), _mm256_mul_ps(self.1, o.1)) }
        }
        #[inline(always)]
        fn mac(self, a: Self, b: Self) -> Self {
            // SAFETY: AVX2+FMA as above.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(a.0, b.0, self.0),
                    _mm256_fmadd_ps(a.1, b.1, self.1),
                )
            }
        }
    }
}

/// Applies a post chain to one vector about to be stored at element `at` of the output.
#[inline(always)]
pub(crate) fn apply_posts<V: Vector>(
    v: V,
    posts: &[super::PostOp],
    residuals: &[&[f32]],
    at: usize,
) -> V {
    let mut v = v;
    for p in posts {
        v = match *p {
            super::PostOp::Max(c) => v.max(V::splat(c)),
            super::PostOp::Min(c) => v.min(V::splat(c)),
            super::PostOp::Add(c) => v.add(V::splat(c)),
            super::PostOp::Mul(c) => v.mul(V::splat(c)),
            super::PostOp::Residual(i) => {
                let r = &residuals[i][at..at + LANES];
                // SAFETY: `r` holds LANES floats (the slice above is bounds-checked).
                v.add(unsafe { V::load(r.as_ptr()) })
            }
        };
    }
    v
}
