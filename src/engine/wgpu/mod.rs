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
//! builds and tests it.

mod kernels;
mod program;

use std::sync::mpsc;

use tract_onnx::prelude::*;

use crate::engine::{Backend, GraphTimes};
use crate::error::{Error, Result};
use crate::model::ModelPackage;

use crate::engine::lowering as graph;
pub use graph::{Graph, Kernel};
use graph::DType;

/// The backend name lowering errors carry.
const BACKEND: &str = "wgpu";
use program::{PipelineCache, Program};

/// One adapter as `gss devices` lists it.
#[derive(Debug, Clone)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Software rasteriser (lavapipe, WARP, llvmpipe): slower than the CPU backend.
    pub is_software: bool,
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    wgpu::Instance::new(desc)
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: info.backend.to_string(),
        device_type: format!("{:?}", info.device_type),
        is_software: info.device_type == wgpu::DeviceType::Cpu,
    }
}

/// Every adapter wgpu can see (empty when there is no GPU driver at all).
pub fn adapters() -> Vec<AdapterSummary> {
    let instance = instance();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all())).iter().map(|a| summary(&a.get_info())).collect()
}

/// The adapter `WgpuBackend::new` would use, if any.
pub fn default_adapter() -> Option<AdapterSummary> {
    let instance = instance();
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .ok()?;
    Some(summary(&adapter.get_info()))
}

/// Both graphs of a package, lowered (no GPU involved).
struct Lowered {
    prior: Graph,
    decoder: Graph,
}

fn lower_package(package: &ModelPackage, variant: Option<&str>) -> Result<Lowered> {
    let m = &package.manifest;
    let (prior_path, decoder_path) = package.graph_files(variant)?;
    let [gh, gw] = m.prior.grid;
    let mut prior = graph::load(&prior_path, f32::fact([1, 3, m.input.height, m.input.width]), BACKEND)?;
    let decoder = graph::load(&decoder_path, i64::fact([1, gh, gw]), BACKEND)?;
    let mismatch = |path: &std::path::Path, msg: String| Error::GraphMismatch { path: path.to_path_buf(), msg };
    if !m.prior.argmax_in_graph() {
        prior.append_channel_argmax(m.prior.codebook_size).map_err(|why| mismatch(&prior_path, why))?;
    }
    let tokens = gh * gw;
    let (pi, po) = (prior.values[prior.input], prior.values[prior.output]);
    if pi.len != 3 * m.input.height * m.input.width || po.len != tokens || po.dtype != DType::U32 {
        return Err(mismatch(&prior_path, format!("prior input {} / output {} {:?} values", pi.len, po.len, po.dtype)));
    }
    let (di, dout) = (decoder.values[decoder.input], decoder.values[decoder.output]);
    if di.len != tokens || dout.len != 3 * m.input.height * m.input.width || dout.dtype != DType::F32 {
        return Err(mismatch(&decoder_path, format!("decoder input {} / output {} {:?} values", di.len, dout.len, dout.dtype)));
    }
    for g in [&prior, &decoder] {
        for step in &g.steps {
            kernels::check_limits(step).map_err(|why| Error::UnsupportedOp {
                backend: BACKEND,
                op: format!("{:?}", kernel_name(&step.kernel)),
                node: format!("{} ({why})", step.nodes.first().cloned().unwrap_or_default()),
            })?;
        }
    }
    Ok(Lowered { prior, decoder })
}

fn kernel_name(k: &Kernel) -> &'static str {
    match k {
        Kernel::Conv { .. } => "Conv",
        Kernel::ResizeLinear { .. } => "Resize",
        Kernel::ArgMax { .. } => "ArgMax",
        Kernel::Gather { .. } => "Gather",
        Kernel::Permute { .. } => "Transpose",
        Kernel::Copy { .. } => "Elementwise",
    }
}

/// Ok when every op of both graphs has a kernel; otherwise the first uncovered op
/// ([`Error::UnsupportedOp`]) or a load error.
pub fn check_coverage(package: &ModelPackage, variant: Option<&str>) -> Result<()> {
    lower_package(package, variant).map(|_| ())
}

/// Whether the wgpu backend can run this package (for `auto` selection).
pub fn is_covered(package: &ModelPackage, variant: Option<&str>) -> bool {
    check_coverage(package, variant).is_ok()
}

/// Dispatch and fusion counts of a package's lowered graphs, for logs and tests:
/// (prior steps, decoder steps, tract nodes folded into fused steps).
pub fn plan_summary(package: &ModelPackage, variant: Option<&str>) -> Result<(usize, usize, usize)> {
    let l = lower_package(package, variant)?;
    let fused = |g: &Graph| g.steps.iter().map(|s| s.nodes.len() - 1).sum::<usize>();
    Ok((l.prior.steps.len(), l.decoder.steps.len(), fused(&l.prior) + fused(&l.decoder)))
}

/// The default adapter's device, with storage limits raised to what the adapter allows.
fn open_device() -> Result<(wgpu::AdapterInfo, wgpu::Device, wgpu::Queue)> {
    let instance = instance();
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| gpu_err(format!("no GPU adapter ({e}); install a Vulkan driver (Mesa's lavapipe for a software one) or use --backend cpu")))?;
    let info = adapter.get_info();
    let limits = adapter.limits();
    let required_limits = wgpu::Limits {
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        ..wgpu::Limits::default()
    };
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("gss"),
        required_limits,
        ..Default::default()
    }))
    .map_err(|e| gpu_err(format!("{}: cannot open the device: {e}", info.name)))?;
    Ok((info, device, queue))
}

pub struct WgpuBackend {
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    prior: Program,
    decoder: Program,
    tokens_staging: wgpu::Buffer,
    maskige_staging: wgpu::Buffer,
    image_len: usize,
    token_count: usize,
    maskige_len: usize,
    codebook: usize,
    upload: Vec<u32>,
}

fn gpu_err(msg: impl std::fmt::Display) -> Error {
    Error::Gpu { msg: msg.to_string() }
}

impl WgpuBackend {
    /// Lowers the package's graphs, opens the default adapter and builds every pipeline, buffer
    /// and bind group. Fails with [`Error::UnsupportedOp`] when an op has no kernel and with
    /// [`Error::Gpu`] when there is no adapter or the device rejects something.
    pub fn new(package: &ModelPackage, variant: Option<&str>) -> Result<Self> {
        let lowered = lower_package(package, variant)?;
        let (info, device, queue) = open_device()?;

        let biggest = [&lowered.prior, &lowered.decoder]
            .iter()
            .flat_map(|g| g.values.iter().map(|v| (v.len * 4) as u64))
            .max()
            .unwrap_or(0);
        if biggest > device.limits().max_storage_buffer_binding_size {
            return Err(gpu_err(format!("{}: a {biggest}-byte tensor exceeds the device's storage binding limit", info.name)));
        }

        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut cache = PipelineCache::new();
        let prior = Program::new(&device, &lowered.prior, "prior", None, &mut cache);
        // The decoder reads the prior's token buffer in place.
        let decoder = Program::new(&device, &lowered.decoder, "decoder", Some(prior.output_buffer()), &mut cache);
        let staging = |label: &str, len: usize| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (len * 4).max(4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let m = &package.manifest;
        let token_count = m.prior.grid[0] * m.prior.grid[1];
        let maskige_len = 3 * m.input.height * m.input.width;
        let tokens_staging = staging("tokens.readback", token_count);
        let maskige_staging = staging("maskige.readback", maskige_len);
        if let Some(e) = pollster::block_on(validation.pop()) {
            return Err(gpu_err(format!("{}: building the pipelines failed: {e}", info.name)));
        }
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(gpu_err(format!("{}: out of memory while building: {e}", info.name)));
        }
        let codebook = lowered
            .decoder
            .steps
            .iter()
            .find_map(|s| if let Kernel::Gather { rows, .. } = s.kernel { Some(rows) } else { None })
            .unwrap_or(m.prior.codebook_size);
        log::info!(
            "wgpu: {} ({}, {:?}); prior {} dispatches, decoder {}, {} pipelines",
            info.name,
            info.backend,
            info.device_type,
            prior.len(),
            decoder.len(),
            cache.len()
        );
        Ok(Self {
            name: format!("wgpu ({})", info.name),
            device,
            queue,
            prior,
            decoder,
            tokens_staging,
            maskige_staging,
            image_len: 3 * m.input.height * m.input.width,
            token_count,
            maskige_len,
            codebook,
            upload: Vec::with_capacity(token_count),
        })
    }

    fn check_len(stage: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(Error::Usage { stage, msg: format!("{what} has {got} values; the model takes {want}") });
        }
        Ok(())
    }

    /// Submits one command buffer that ends by copying `src` into `staging`, waits, and hands
    /// the mapped bytes to `read`.
    fn submit_and_read(
        &self,
        stage: &'static str,
        encoder: wgpu::CommandEncoder,
        staging: &wgpu::Buffer,
        read: impl FnOnce(&[u8]),
    ) -> Result<()> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::inference(stage, format!("GPU wait: {e}")))?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::inference(stage, format!("GPU validation: {e}")));
        }
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::inference(stage, format!("reading back: {e}"))),
            Err(_) => return Err(Error::inference(stage, "the readback never completed")),
        }
        {
            let view = staging.get_mapped_range(..).map_err(|e| Error::inference(stage, format!("reading back: {e}")))?;
            read(&view);
        }
        staging.unmap();
        Ok(())
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("gss frame") })
    }
}

impl Backend for WgpuBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        Self::check_len("prior", "the image", image.len(), self.image_len)?;
        self.queue.write_buffer(self.prior.input_buffer(), 0, bytemuck::cast_slice(image));
        let mut enc = self.encoder();
        self.prior.record(&mut enc, "prior");
        let bytes = (self.token_count * 4) as u64;
        enc.copy_buffer_to_buffer(self.prior.output_buffer(), 0, &self.tokens_staging, 0, bytes);
        self.submit_and_read("prior", enc, &self.tokens_staging, |b| {
            tokens.clear();
            tokens.extend(b.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as i64));
        })
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        Self::check_len("decoder", "the token grid", tokens.len(), self.token_count)?;
        self.upload.clear();
        for &t in tokens {
            if t < 0 || t as u64 >= self.codebook as u64 {
                return Err(Error::inference("decoder", format!("token {t} is outside the codebook (0..{})", self.codebook)));
            }
            self.upload.push(t as u32);
        }
        self.queue.write_buffer(self.decoder.input_buffer(), 0, bytemuck::cast_slice(&self.upload));
        let mut enc = self.encoder();
        self.decoder.record(&mut enc, "decoder");
        let bytes = (self.maskige_len * 4) as u64;
        enc.copy_buffer_to_buffer(self.decoder.output_buffer(), 0, &self.maskige_staging, 0, bytes);
        self.submit_and_read("decoder", enc, &self.maskige_staging, |b| {
            maskige.clear();
            maskige.extend(b.chunks_exact(4).map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]])));
        })
    }

    /// Both graphs in one submission; the token grid never leaves the device and `tokens` is
    /// left empty.
    fn run(&mut self, image: &[f32], tokens: &mut Vec<i64>, maskige: &mut Vec<f32>) -> Result<GraphTimes> {
        let start = std::time::Instant::now();
        Self::check_len("prior", "the image", image.len(), self.image_len)?;
        self.queue.write_buffer(self.prior.input_buffer(), 0, bytemuck::cast_slice(image));
        let mut enc = self.encoder();
        self.prior.record(&mut enc, "prior");
        self.decoder.record(&mut enc, "decoder");
        let bytes = (self.maskige_len * 4) as u64;
        enc.copy_buffer_to_buffer(self.decoder.output_buffer(), 0, &self.maskige_staging, 0, bytes);
        tokens.clear();
        self.submit_and_read("decoder", enc, &self.maskige_staging, |b| {
            maskige.clear();
            maskige.extend(b.chunks_exact(4).map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]])));
        })?;
        Ok(GraphTimes { prior: start.elapsed(), decoder: std::time::Duration::ZERO })
    }
}

#[cfg(test)]
mod tests;
