//! Run-time choice of instruction set for gss's own per-pixel loops (these kernels, and in the
//! runtime the argmax over token logits, X⁻¹, resize + normalise). The crates are built for the
//! baseline x86-64 target (SSE2);
//! `dispatch!` compiles a loop again for AVX2+FMA and for AVX-512 and calls the best copy the
//! CPU has, so one binary is fast on every machine without `-C target-cpu`. The loops do no
//! float contraction, so every copy gives bit-identical results.

/// `dispatch!(f(args...))` or `dispatch!(self.f(args...))` calls the `#[inline(always)]`
/// function `f` through a copy compiled for the widest instruction set detected at run time.
#[macro_export]
macro_rules! dispatch {
    ($($call:tt)+) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
            unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R { f() }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R { f() }
            match $crate::simd::level() {
                // SAFETY: the CPU reported these features (`level`).
                $crate::simd::Level::Avx512 => unsafe { avx512(|| $($call)+) },
                $crate::simd::Level::Avx2 => unsafe { avx2(|| $($call)+) },
                $crate::simd::Level::Baseline => $($call)+,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $($call)+
        }
    }};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Baseline,
    Avx2,
    Avx512,
}

/// The widest instruction set the per-pixel loops use on this CPU (detected once).
pub fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // Every feature a copy is compiled with, not only the ones it was written for: a
            // virtual machine may report AVX-512 while masking AVX2 or FMA, and running a copy
            // compiled with a feature the CPU lacks is undefined behaviour.
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Level::Avx512;
            }
            if avx2 {
                return Level::Avx2;
            }
        }
        Level::Baseline
    })
}
