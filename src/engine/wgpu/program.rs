//! A lowered [`Graph`] turned into GPU objects, all created once at load: parameter buffers,
//! activation buffers (recycled between values whose lifetimes do not overlap), one pipeline per
//! distinct shader source, one bind group per step. Running is then only recording dispatches.

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use super::kernels;
use crate::engine::lowering::{Graph, Post};

struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

pub struct Program {
    dispatches: Vec<Dispatch>,
    input: wgpu::Buffer,
    output: wgpu::Buffer,
}

/// Pipelines keyed by shader source, shared by both graphs of a backend.
pub type PipelineCache = HashMap<String, wgpu::ComputePipeline>;

fn storage(
    device: &wgpu::Device,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        // Bind sizes must be non-zero and a multiple of 4.
        size: bytes.max(4).next_multiple_of(4),
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

impl Program {
    /// Creates everything `graph` needs. `input` optionally supplies the buffer for the graph's
    /// input value (the decoder reads the prior's token buffer in place).
    pub fn new(
        device: &wgpu::Device,
        graph: &Graph,
        label: &str,
        input: Option<&wgpu::Buffer>,
        cache: &mut PipelineCache,
    ) -> Self {
        let io = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        // Liveness: a value's buffer returns to the pool after its last reader has been recorded.
        let mut last_use = vec![None; graph.values.len()];
        for (i, s) in graph.steps.iter().enumerate() {
            for v in s.reads() {
                last_use[v] = Some(i);
            }
        }
        let mut slot_of: Vec<Option<usize>> = vec![None; graph.values.len()];
        let mut buffers: Vec<wgpu::Buffer> = Vec::new();
        let mut sizes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let bytes = |v: usize| (graph.values[v].len * 4) as u64;

        let input_slot = match input {
            Some(b) => b.clone(),
            None => storage(device, &format!("{label}.input"), bytes(graph.input), io),
        };
        buffers.push(input_slot);
        sizes.push(bytes(graph.input));
        slot_of[graph.input] = Some(0);

        let mut dispatches = Vec::with_capacity(graph.steps.len());
        for (i, step) in graph.steps.iter().enumerate() {
            // Output buffer first, so it can never be one of this step's inputs.
            let out = step.output;
            let slot = if out == graph.output {
                buffers.push(storage(device, &format!("{label}.output"), bytes(out), io));
                sizes.push(bytes(out));
                buffers.len() - 1
            } else {
                let need = bytes(out);
                let best = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &s)| sizes[s] >= need)
                    .min_by_key(|(_, &s)| sizes[s])
                    .map(|(k, _)| k);
                match best {
                    Some(k) => free.swap_remove(k),
                    None => {
                        buffers.push(storage(
                            device,
                            &format!("{label}.act{}", buffers.len()),
                            need,
                            wgpu::BufferUsages::empty(),
                        ));
                        sizes.push(need);
                        buffers.len() - 1
                    }
                }
            };
            slot_of[out] = Some(slot);

            let compiled = kernels::compile(step);
            let pipeline = cache
                .entry(compiled.source.clone())
                .or_insert_with(|| {
                    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: step.nodes.first().map(String::as_str),
                        source: wgpu::ShaderSource::Wgsl(compiled.source.as_str().into()),
                    });
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: step.nodes.first().map(String::as_str),
                        layout: None,
                        module: &module,
                        entry_point: Some("main"),
                        compilation_options: Default::default(),
                        cache: None,
                    })
                })
                .clone();
            let params: Vec<wgpu::Buffer> = compiled
                .params
                .iter()
                .map(|p| {
                    let data: &[f32] = if p.is_empty() { &[0.0] } else { p };
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("param"),
                        contents: bytemuck::cast_slice(data),
                        usage: wgpu::BufferUsages::STORAGE,
                    })
                })
                .collect();
            let buf = |v: usize| slot_of[v].map(|s| &buffers[s]);
            let mut bound: Vec<&wgpu::Buffer> = Vec::new();
            bound.extend(buf(step.input));
            bound.extend(params.iter());
            bound.extend(buf(out));
            for p in &step.post {
                if let Post::AddValue(v) = p {
                    bound.extend(buf(*v));
                }
            }
            let entries: Vec<wgpu::BindGroupEntry> = bound
                .iter()
                .enumerate()
                .map(|(b, buffer)| wgpu::BindGroupEntry {
                    binding: b as u32,
                    resource: buffer.as_entire_binding(),
                })
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: step.nodes.first().map(String::as_str),
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            dispatches.push(Dispatch {
                pipeline,
                bind_group,
                groups: compiled.groups,
            });

            for v in step.reads() {
                if last_use[v] == Some(i) && v != graph.input && v != graph.output {
                    if let Some(s) = slot_of[v] {
                        if !free.contains(&s) {
                            free.push(s);
                        }
                    }
                }
            }
        }
        let input = buffers[0].clone();
        let output = match slot_of[graph.output] {
            Some(s) => buffers[s].clone(),
            // Unreachable for a lowered graph (its output is always some step's product).
            None => storage(device, &format!("{label}.output"), bytes(graph.output), io),
        };
        Self {
            dispatches,
            input,
            output,
        }
    }

    pub fn input_buffer(&self) -> &wgpu::Buffer {
        &self.input
    }

    pub fn output_buffer(&self) -> &wgpu::Buffer {
        &self.output
    }

    /// Records every dispatch into one compute pass.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, label: &str) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        for d in &self.dispatches {
            pass.set_pipeline(&d.pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.groups[0], d.groups[1], d.groups[2]);
        }
    }

    pub fn len(&self) -> usize {
        self.dispatches.len()
    }
}
