//! The frame path's promise that a steady stream allocates nothing per frame, checked with a
//! counting global allocator: frames at the model's size and at a camera's 640×480, whole-frame
//! and pipelined, on a backend that itself does not allocate (so what is counted is gss's own
//! frame path: the source's pool, preprocess, queues, postprocess, class-map pool, publishing).
//! With tract the graphs allocate inside tract (its tensors per node): `cargo test --test alloc
//! -- --ignored --nocapture` prints that count.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use common::{PatternSource, Script, ScriptedBackend};
use gss::pipeline::{Mode, Pipeline, PipelineOptions, Policy};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counter is process-wide: tests that count must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Allocations over frames 200..450 of a lossless stream of `size` frames.
fn allocations_in_window(
    mode: Mode,
    size: (u32, u32),
    make: impl Fn(&gss::ModelPackage, gss::engine::Graphs) -> gss::Result<Box<dyn gss::engine::Backend>>,
) -> u64 {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let options = PipelineOptions {
        policy: Policy::Lossless,
        mode,
        keep_frames: true,
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(common::tiny_package(), options, make).unwrap();
    let masks = pipeline.subscribe(2, Policy::Lossless);
    pipeline
        .run(PatternSource::new(size.0, size.1, Some(460)))
        .unwrap();
    let (mut start, mut end) = (0, 0);
    for (i, mask) in masks.iter().enumerate() {
        assert_eq!(mask.classes.dimensions(), size);
        if i == 200 {
            start = ALLOCATIONS.load(Ordering::SeqCst);
        }
        if i == 450 {
            end = ALLOCATIONS.load(Ordering::SeqCst);
        }
    }
    pipeline.join().unwrap();
    end - start
}

/// The pools (source frames, token grids, class maps) grow lazily, one buffer and its `Arc` at a
/// time, to the most frames the stream ever has in flight, and never past their capacity (about
/// 25 buffers together here). So a window may still see a few late slots created at a rare peak,
/// but a stream that allocated anything per frame would show at least one per frame: 250.
const POOL_GROWTH_BOUND: u64 = 50;

#[test]
fn a_steady_stream_allocates_nothing_per_frame() {
    for mode in [Mode::Sequential, Mode::Pipelined] {
        for size in [(128, 64), (640, 480)] {
            let n = allocations_in_window(mode, size, |p, _| {
                Ok(Box::new(ScriptedBackend::new(
                    p,
                    Script::Works {
                        delay: std::time::Duration::ZERO,
                    },
                )))
            });
            eprintln!("{mode:?} {size:?}: {n} allocations in 250 frames");
            assert!(
                n < POOL_GROWTH_BOUND,
                "{mode:?} {size:?}: {n} allocations in 250 frames"
            );
        }
    }
}

#[test]
#[ignore = "a report of tract's own allocations, not a promise of ours"]
fn tract_allocations_per_frame() {
    for mode in [Mode::Sequential, Mode::Pipelined] {
        let n = allocations_in_window(mode, (640, 480), |p, graphs| {
            let one = gss::engine::BackendOptions {
                threads: 1,
                ..Default::default()
            };
            Ok(Box::new(gss::engine::cpu::CpuBackend::with_options(
                p, &one, graphs,
            )?))
        });
        eprintln!(
            "tract backend, {mode:?}, 640x480 frames: {:.1} allocations per frame",
            n as f64 / 250.0
        );
    }
}

/// gss's own kernels keep their promise too (`engine::cpu::program`: buffers allocated when the
/// graph is planned, recycled by liveness, fused blocks' scratch kept between runs): after a first
/// run, running both bundled graphs again allocates nothing.
#[test]
fn gss_kernel_programs_allocate_nothing_per_run() {
    use gss::engine::cpu::kernels::Threads;
    use gss::engine::cpu::program::{Program, BACKEND};
    use tract_onnx::prelude::*;
    // The whole test, planning included: the other tests count allocations in windows of their own.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gss-edge-street8");
    for (file, fact) in [
        ("prior.onnx", f32::fact([1, 3, 256, 512])),
        ("decoder.onnx", i64::fact([1, 32, 64])),
    ] {
        let path = dir.join(file);
        let graph = gss::engine::lowering::load(&path, fact, BACKEND).unwrap();
        let mut program = Program::new(&graph, &path).unwrap();
        // Small values: token ids for the decoder (u32 bits), pixels for the prior.
        program
            .input_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = f32::from_bits((i % 500) as u32));
        program.run(Threads::One, false).unwrap();
        let start = ALLOCATIONS.load(Ordering::SeqCst);
        for _ in 0..3 {
            program.run(Threads::One, false).unwrap();
        }
        let n = ALLOCATIONS.load(Ordering::SeqCst) - start;
        assert_eq!(n, 0, "{file}: {n} allocations in 3 runs");
    }
}
