//! The GPU backend on wgpu (Vulkan, Metal, DX12; lavapipe in CI).
//!
//! This module owns everything between the ONNX files and the GPU: lowering tract's typed graph
//! to a list of kernels with constants folded and elementwise tails fused ([`graph`]), the WGSL
//! for each kernel ([`kernels`]), and the GPU objects built once at load ([`program`]). Per frame
//! it records the prior's and the decoder's dispatches into one command buffer and submits once:
//! the token grid stays on the device (the decoder binds the prior's output buffer directly) and
//! only the maskige comes back. [`Backend::run_prior`] and [`Backend::run_decoder`] also work on
//! their own (one submission each, reading back tokens) so benchmarks can time each stage.
//!
//! Fusion: a convolution carries its bias and every single-use elementwise tail after it
//! (Clip/Relu6/Relu as max/min, residual Add, e.g. conv+bias+add+relu in one dispatch); tract's
//! DepthToSpace (reshape, two axis moves, reshape) becomes one transpose dispatch that also
//! carries the Relu/Clip after it. The bundled model runs as 60 + 12 dispatches.
//!
//! Kernels are written for a real GPU: dense and grouped convolutions are an implicit GEMM with
//! 16×16 workgroups, shared-memory tiles and a register block per thread; depthwise convolutions
//! stage their input patch in shared memory. On lavapipe (software Vulkan) this is far slower
//! than tract on the same cores, which is why `auto` ignores software adapters.
//!
//! Coverage: fp32 graphs made of Conv (any kernel/stride/padding/dilation/groups; depthwise has
//! its own kernel), Clip/Relu/Max/Min/Add/Sub/Mul by scalars, same-shape Add, bilinear Resize,
//! ArgMax, Gather from a constant table, Transpose/DepthToSpace (as tract's axis moves) and
//! reshapes. Quantised (int8 QDQ/QOperator) graphs are not supported: their Dequantize/Quantize
//! ops are reported as [`Error::UnsupportedOp`] and `auto` falls back to the CPU backend.
//!
//! The `wgpu` cargo feature is off by default: the Raspberry Pi build has no useful GPU compute
//! path and should not carry the wgpu/naga/Vulkan loader stack; `cargo test --all-features`
//! builds and tests it. The backend is `backend.rs` (with `kernels.rs` and `program.rs`) with the
//! feature, and `disabled.rs` without it, where building one is an error that says how to get a
//! build that can and no adapter is listed.

/// Whether this build has the GPU backend (the `wgpu` feature).
pub const AVAILABLE: bool = cfg!(feature = "wgpu");

/// One adapter as `gss devices` lists it.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Software rasteriser (lavapipe, WARP, llvmpipe): slower than the CPU backend.
    pub is_software: bool,
}

#[cfg(feature = "wgpu")]
mod backend;
#[cfg(feature = "wgpu")]
mod kernels;
#[cfg(feature = "wgpu")]
mod program;
#[cfg(feature = "wgpu")]
pub use backend::*;
#[cfg(all(test, feature = "wgpu"))]
mod tests;

#[cfg(not(feature = "wgpu"))]
mod disabled;
#[cfg(not(feature = "wgpu"))]
pub use disabled::*;
