//! The wgpu backend itself (feature `wgpu`): adapters, the device, and [`WgpuBackend`].

use super::kernels;
use super::AdapterSummary;

use std::sync::mpsc;

use tract_onnx::prelude::*;

use crate::engine::{Backend, BackendOptions, GraphTimes, Graphs};
use crate::error::{Error, Result};
use crate::model::ModelPackage;

use crate::engine::lowering as graph;
use graph::DType;
pub use graph::{Graph, Kernel};

/// The backend name lowering errors carry.
const BACKEND: &str = "wgpu";
use super::program::{PipelineCache, Program};

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
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| summary(&a.get_info()))
        .collect()
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
    prior: Option<Graph>,
    decoder: Option<Graph>,
}

/// The graphs `graphs` names, lowered and checked. `logits`: leave the prior's token logits as
/// its output (a prior that ends with them) instead of appending an ArgMax, for the stream
/// features that weigh them.
fn lower_package(
    package: &ModelPackage,
    variant: Option<&str>,
    logits: bool,
    graphs: Graphs,
) -> Result<Lowered> {
    let m = &package.manifest;
    let (prior_path, decoder_path) = package.graph_files(variant)?;
    let [gh, gw] = m.prior.grid;
    let tokens = gh * gw;
    let mismatch = |path: &std::path::Path, msg: String| Error::GraphMismatch {
        path: path.to_path_buf(),
        msg,
    };
    let prior = if graphs == Graphs::Decoder {
        None
    } else {
        let mut prior = graph::load(
            &prior_path,
            f32::fact([1, 3, m.input.height, m.input.width]),
            BACKEND,
        )?;
        let logits = logits && !m.prior.argmax_in_graph();
        if !m.prior.argmax_in_graph() && !logits {
            prior
                .append_channel_argmax(m.prior.codebook_size)
                .map_err(|why| mismatch(&prior_path, why))?;
        }
        let (pi, po) = (prior.values[prior.input], prior.values[prior.output]);
        let (out_len, out_type) = if logits {
            (tokens * m.prior.codebook_size, DType::F32)
        } else {
            (tokens, DType::U32)
        };
        if pi.len != 3 * m.input.height * m.input.width || po.len != out_len || po.dtype != out_type
        {
            return Err(mismatch(
                &prior_path,
                format!(
                    "prior input {} / output {} {:?} values",
                    pi.len, po.len, po.dtype
                ),
            ));
        }
        Some(prior)
    };
    let decoder = if graphs == Graphs::Prior {
        None
    } else {
        let decoder = graph::load(&decoder_path, i64::fact([1, gh, gw]), BACKEND)?;
        let (di, dout) = (
            decoder.values[decoder.input],
            decoder.values[decoder.output],
        );
        if di.len != tokens
            || dout.len != 3 * m.input.height * m.input.width
            || dout.dtype != DType::F32
        {
            return Err(mismatch(
                &decoder_path,
                format!(
                    "decoder input {} / output {} {:?} values",
                    di.len, dout.len, dout.dtype
                ),
            ));
        }
        Some(decoder)
    };
    for g in prior.iter().chain(&decoder) {
        for step in &g.steps {
            kernels::check_limits(step).map_err(|why| Error::UnsupportedOp {
                backend: BACKEND,
                op: format!("{:?}", kernel_name(&step.kernel)),
                node: format!(
                    "{} ({why})",
                    step.nodes.first().cloned().unwrap_or_default()
                ),
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
    lower_package(package, variant, false, Graphs::Both).map(|_| ())
}

/// Whether the wgpu backend can run this package (for `auto` selection).
pub fn is_covered(package: &ModelPackage, variant: Option<&str>) -> bool {
    check_coverage(package, variant).is_ok()
}

/// Dispatch and fusion counts of a package's lowered graphs, for logs and tests:
/// (prior steps, decoder steps, tract nodes folded into fused steps).
pub fn plan_summary(
    package: &ModelPackage,
    variant: Option<&str>,
) -> Result<(usize, usize, usize)> {
    let l = lower_package(package, variant, false, Graphs::Both)?;
    let fused = |g: &Graph| g.steps.iter().map(|s| s.nodes.len() - 1).sum::<usize>();
    let (prior, decoder) = (
        l.prior.iter().map(fused).sum::<usize>(),
        l.decoder.iter().map(fused).sum::<usize>(),
    );
    let steps = |g: &Option<Graph>| g.as_ref().map_or(0, |g| g.steps.len());
    Ok((steps(&l.prior), steps(&l.decoder), prior + decoder))
}

/// The default adapter's device, with storage limits raised to what the adapter allows.
pub(super) fn open_device() -> Result<(wgpu::AdapterInfo, wgpu::Device, wgpu::Queue)> {
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

/// A decoder planned for a window of the token grid (token reuse).
struct Window {
    program: Program,
    /// Sized to the window's maskige, which is what is read back.
    staging: wgpu::Buffer,
}

pub struct WgpuBackend {
    name: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    /// None when this backend was built for the other stage of a pipelined stream alone.
    prior: Option<Program>,
    decoder: Option<Program>,
    tokens_staging: wgpu::Buffer,
    maskige_staging: wgpu::Buffer,
    image_len: usize,
    token_count: usize,
    codebook: usize,
    upload: Vec<u32>,
    /// Some(codes) when the prior was built to end with its token logits (a stream feature
    /// weighs them): the argmax then runs on the CPU after the readback.
    logits: Option<usize>,
    logits_staging: Option<wgpu::Buffer>,
    logits_host: Vec<f32>,
    decoder_path: std::path::PathBuf,
    upsample: usize,
    cache: PipelineCache,
    windows: std::collections::HashMap<[usize; 2], Window>,
}

/// Little-endian f32s read back from the device, into a caller's buffer.
fn f32s_into(bytes: &[u8], out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|w| f32::from_le_bytes([w[0], w[1], w[2], w[3]])),
    );
}

fn not_built(stage: &'static str) -> Error {
    Error::Usage {
        stage,
        msg: format!("this backend was built without the {stage} graph (Graphs)"),
    }
}

fn gpu_err(msg: impl std::fmt::Display) -> Error {
    Error::Gpu {
        msg: msg.to_string(),
    }
}

impl WgpuBackend {
    /// Lowers the package's graphs, opens the default adapter and builds every pipeline, buffer
    /// and bind group. Fails with [`Error::UnsupportedOp`] when an op has no kernel and with
    /// [`Error::Gpu`] when there is no adapter or the device rejects something.
    pub fn new(package: &ModelPackage, variant: Option<&str>) -> Result<Self> {
        let options = BackendOptions {
            variant: variant.map(str::to_string),
            ..BackendOptions::default()
        };
        Self::with_options(package, &options, Graphs::Both)
    }

    /// The backend for `options` (the variant; the prior keeps its logits when
    /// [`BackendOptions::wants_logits`]) for `graphs` (a pipelined stream gives each stage its
    /// own). Thread counts and CPU kernels do not apply.
    pub fn with_options(
        package: &ModelPackage,
        options: &BackendOptions,
        graphs: Graphs,
    ) -> Result<Self> {
        let variant = options.variant.as_deref();
        let m = &package.manifest;
        let logits =
            (options.wants_logits() && !m.prior.argmax_in_graph()).then_some(m.prior.codebook_size);
        let lowered = lower_package(package, variant, logits.is_some(), graphs)?;
        let (info, device, queue) = open_device()?;

        let biggest = lowered
            .prior
            .iter()
            .chain(&lowered.decoder)
            .flat_map(|g| g.values.iter().map(|v| (v.len * 4) as u64))
            .max()
            .unwrap_or(0);
        if biggest > device.limits().max_storage_buffer_binding_size {
            return Err(gpu_err(format!(
                "{}: a {biggest}-byte tensor exceeds the device's storage binding limit",
                info.name
            )));
        }

        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut cache = PipelineCache::new();
        let prior = lowered
            .prior
            .as_ref()
            .map(|g| Program::new(&device, g, "prior", None, &mut cache));
        // The decoder reads the prior's token buffer in place, unless the prior ends with logits.
        let shared = prior
            .as_ref()
            .filter(|_| logits.is_none())
            .map(|p| p.output_buffer());
        let decoder = lowered
            .decoder
            .as_ref()
            .map(|g| Program::new(&device, g, "decoder", shared, &mut cache));
        let staging = |label: &str, len: usize| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (len * 4).max(4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let token_count = m.prior.grid[0] * m.prior.grid[1];
        let logits_staging = logits.map(|codes| staging("logits.readback", codes * token_count));
        let maskige_len = 3 * m.input.height * m.input.width;
        let tokens_staging = staging("tokens.readback", token_count);
        let maskige_staging = staging("maskige.readback", maskige_len);
        if let Some(e) = pollster::block_on(validation.pop()) {
            return Err(gpu_err(format!(
                "{}: building the pipelines failed: {e}",
                info.name
            )));
        }
        if let Some(e) = pollster::block_on(oom.pop()) {
            return Err(gpu_err(format!(
                "{}: out of memory while building: {e}",
                info.name
            )));
        }
        let codebook = lowered
            .decoder
            .iter()
            .flat_map(|g| &g.steps)
            .find_map(|s| {
                if let Kernel::Gather { rows, .. } = s.kernel {
                    Some(rows)
                } else {
                    None
                }
            })
            .unwrap_or(m.prior.codebook_size);
        log::info!(
            "wgpu: {} ({}, {:?}); prior {} dispatches, decoder {}, {} pipelines",
            info.name,
            info.backend,
            info.device_type,
            prior.as_ref().map_or(0, Program::len),
            decoder.as_ref().map_or(0, Program::len),
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
            codebook,
            upload: Vec::with_capacity(token_count),
            logits,
            logits_staging,
            logits_host: Vec::new(),
            decoder_path: package.graph_files(variant)?.1,
            upsample: m.decoder.upsample,
            cache,
            windows: std::collections::HashMap::new(),
        })
    }

    fn prior(&self) -> Result<&Program> {
        self.prior.as_ref().ok_or_else(|| not_built("prior"))
    }

    fn decoder(&self) -> Result<&Program> {
        self.decoder.as_ref().ok_or_else(|| not_built("decoder"))
    }

    /// Checks and uploads a token grid (or window) into `input`.
    fn upload_tokens(&mut self, tokens: &[i64], input: &wgpu::Buffer) -> Result<()> {
        self.upload.clear();
        for &t in tokens {
            if t < 0 || t as u64 >= self.codebook as u64 {
                return Err(Error::inference(
                    "decoder",
                    format!("token {t} is outside the codebook (0..{})", self.codebook),
                ));
            }
            self.upload.push(t as u32);
        }
        self.queue
            .write_buffer(input, 0, bytemuck::cast_slice(&self.upload));
        Ok(())
    }

    /// Runs the prior and reads its logits back into `logits_host`.
    fn prior_logits_to_host(&mut self, image: &[f32]) -> Result<()> {
        let staging = self.logits_staging.clone().ok_or_else(|| Error::Usage {
            stage: "prior",
            msg: format!("{} was built without the prior's token logits", self.name),
        })?;
        Self::check_len("prior", "the image", image.len(), self.image_len)?;
        self.queue
            .write_buffer(self.prior()?.input_buffer(), 0, bytemuck::cast_slice(image));
        let mut host = std::mem::take(&mut self.logits_host);
        let read = self.run_programs("prior", &[self.prior()?], &staging, |b| {
            f32s_into(b, &mut host)
        });
        self.logits_host = host;
        read
    }

    fn check_len(stage: &'static str, what: &str, got: usize, want: usize) -> Result<()> {
        if got != want {
            return Err(Error::Usage {
                stage,
                msg: format!("{what} has {got} values; the model takes {want}"),
            });
        }
        Ok(())
    }

    /// Records `programs` in order into one command buffer that ends by copying the last one's
    /// output into `staging` (sized to what is read back), submits it, waits, and hands the
    /// mapped bytes to `read`.
    fn run_programs(
        &self,
        stage: &'static str,
        programs: &[&Program],
        staging: &wgpu::Buffer,
        read: impl FnOnce(&[u8]),
    ) -> Result<()> {
        let mut encoder = self.encoder();
        for program in programs {
            program.record(&mut encoder, stage);
        }
        if let Some(last) = programs.last() {
            encoder.copy_buffer_to_buffer(last.output_buffer(), 0, staging, 0, staging.size());
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::inference(stage, format!("GPU wait: {e}")))?;
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::inference(stage, format!("GPU validation: {e}")));
        }
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::inference(stage, format!("reading back: {e}"))),
            Err(_) => return Err(Error::inference(stage, "the readback never completed")),
        }
        {
            let view = staging
                .get_mapped_range(..)
                .map_err(|e| Error::inference(stage, format!("reading back: {e}")))?;
            read(&view);
        }
        staging.unmap();
        Ok(())
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("gss frame"),
            })
    }
}

impl Backend for WgpuBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn run_prior(&mut self, image: &[f32], tokens: &mut Vec<i64>) -> Result<()> {
        if let Some(codes) = self.logits {
            self.prior_logits_to_host(image)?;
            crate::engine::tokens::argmax_channels_into(
                &self.logits_host,
                codes,
                self.token_count,
                tokens,
            );
            return Ok(());
        }
        Self::check_len("prior", "the image", image.len(), self.image_len)?;
        self.queue
            .write_buffer(self.prior()?.input_buffer(), 0, bytemuck::cast_slice(image));
        self.run_programs("prior", &[self.prior()?], &self.tokens_staging, |b| {
            tokens.clear();
            tokens.extend(
                b.chunks_exact(4)
                    .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) as i64),
            );
        })
    }

    fn run_decoder(&mut self, tokens: &[i64], maskige: &mut Vec<f32>) -> Result<()> {
        Self::check_len("decoder", "the token grid", tokens.len(), self.token_count)?;
        let input = self.decoder()?.input_buffer().clone();
        self.upload_tokens(tokens, &input)?;
        self.run_programs("decoder", &[self.decoder()?], &self.maskige_staging, |b| {
            f32s_into(b, maskige)
        })
    }

    fn run_prior_logits(&mut self, image: &[f32], read: &mut dyn FnMut(&[f32])) -> Result<()> {
        self.prior_logits_to_host(image)?;
        read(&self.logits_host);
        Ok(())
    }

    fn plan_decoder_windows(&mut self, shapes: &[[usize; 2]]) -> Result<()> {
        for &[h, w] in shapes {
            if self.windows.contains_key(&[h, w]) {
                continue;
            }
            let graph = graph::load(&self.decoder_path, i64::fact([1, h, w]), BACKEND)?;
            let maskige_len = 3 * h * self.upsample * w * self.upsample;
            let out = graph.values[graph.output];
            if out.len != maskige_len || out.dtype != DType::F32 {
                return Err(Error::GraphMismatch {
                    path: self.decoder_path.clone(),
                    msg: format!(
                        "a {h}×{w} window decodes to {} {:?} values, not {maskige_len}",
                        out.len, out.dtype
                    ),
                });
            }
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let program = Program::new(
                &self.device,
                &graph,
                "decoder window",
                None,
                &mut self.cache,
            );
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("window.readback"),
                size: (maskige_len * 4) as u64,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(gpu_err(format!(
                    "building a {h}×{w} decoder window failed: {e}"
                )));
            }
            self.windows.insert([h, w], Window { program, staging });
        }
        Ok(())
    }

    fn run_decoder_window(
        &mut self,
        tokens: &[i64],
        shape: [usize; 2],
        maskige: &mut Vec<f32>,
    ) -> Result<()> {
        let input = match self.windows.get(&shape) {
            Some(w) => w.program.input_buffer().clone(),
            None => {
                return Err(Error::Usage {
                    stage: "decoder",
                    msg: format!("no plan for a {}×{} window", shape[0], shape[1]),
                })
            }
        };
        Self::check_len("decoder", "the window", tokens.len(), shape[0] * shape[1])?;
        self.upload_tokens(tokens, &input)?;
        let window = &self.windows[&shape];
        self.run_programs("decoder", &[&window.program], &window.staging, |b| {
            f32s_into(b, maskige)
        })
    }

    /// Both graphs in one submission; the token grid never leaves the device and `tokens` is
    /// left empty. A prior built to keep its logits runs as two (the argmax on the CPU).
    fn run(
        &mut self,
        image: &[f32],
        tokens: &mut Vec<i64>,
        maskige: &mut Vec<f32>,
    ) -> Result<GraphTimes> {
        if self.logits.is_some() {
            let start = std::time::Instant::now();
            self.run_prior(image, tokens)?;
            let prior = start.elapsed();
            self.run_decoder(tokens, maskige)?;
            return Ok(GraphTimes {
                prior,
                decoder: start.elapsed() - prior,
            });
        }
        let start = std::time::Instant::now();
        Self::check_len("prior", "the image", image.len(), self.image_len)?;
        self.queue
            .write_buffer(self.prior()?.input_buffer(), 0, bytemuck::cast_slice(image));
        tokens.clear();
        let programs = [self.prior()?, self.decoder()?];
        self.run_programs("decoder", &programs, &self.maskige_staging, |b| {
            f32s_into(b, maskige)
        })?;
        Ok(GraphTimes {
            prior: start.elapsed(),
            decoder: std::time::Duration::ZERO,
        })
    }
}
