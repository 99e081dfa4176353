//! `gss.LiveSegmenter`: live mode for camera callbacks (MediaPipe's LIVE_STREAM mode is the
//! model). `push` hands a frame to the library's [`Pipeline`] through a
//! [`gss::source::PushSource`] and returns at once: while the stages are busy the oldest
//! waiting frame is dropped and counted. Results reach the Python callback from gss's own
//! thread (`gss-callback`), with the timestamp their frame was pushed with.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use gss::pipeline::{Policy, Stats};
use gss::source::{push_source, Pusher};
use gss::Pipeline;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClassInitializer;

use crate::errors::{GssError, IntoPy};
use crate::frame::{borrow_frame, parse_order};
use crate::options::{start_pipeline, ModelInfo, Settings};
use crate::result::from_mask;

#[derive(Default)]
struct CallbackCounts {
    delivered: AtomicU64,
    errors: AtomicU64,
}

/// What `close` (or the interpreter's exit) takes down.
struct Running {
    pipeline: Option<Pipeline>,
    callback: Option<JoinHandle<()>>,
    closed: bool,
    /// The pipeline's last counters, once it has been joined.
    last: Stats,
}

struct Shared {
    pusher: Pusher,
    running: Mutex<Running>,
    counts: Arc<CallbackCounts>,
}

impl Shared {
    /// Ends the stream: no more frames, those in flight are segmented and delivered, every
    /// thread is joined (without the GIL, which the callback thread needs). Returns the error
    /// that stopped the stream, if one did.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.pusher.close();
        let (pipeline, callback) = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running
                .callback
                .as_ref()
                .is_some_and(|t| t.thread().id() == std::thread::current().id())
            {
                return Err(PyRuntimeError::new_err(
                    "close() called from the callback would wait for the callback itself; \
                     close the LiveSegmenter from another thread",
                ));
            }
            running.closed = true;
            (running.pipeline.take(), running.callback.take())
        };
        let joined = py.detach(move || {
            let joined = pipeline.map(Pipeline::join).transpose();
            if let Some(thread) = callback {
                let _ = thread.join();
            }
            joined
        });
        if let Ok(Some(stats)) = &joined {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.last = stats.clone();
        }
        joined.map(|_| ()).py_err()
    }
}

impl Shared {
    /// The pipeline's counters: as they stand while it runs, its last ones once joined.
    fn stats(&self) -> Stats {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match &running.pipeline {
            Some(pipeline) => pipeline.stats(),
            None => running.last.clone(),
        }
    }

    /// Frames dropped waiting to enter the stream, inside it, and waiting for the callback.
    fn drops(&self) -> (u64, u64, u64) {
        let stats = self.stats();
        let at_callback = stats.subscribers.iter().map(|s| s.dropped).sum();
        (self.pusher.dropped(), stats.dropped(), at_callback)
    }
}

/// Open live segmenters, so that the interpreter's exit closes them before their callback
/// thread could ask a finalising interpreter for the GIL.
static OPEN: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// Closes every open live segmenter (registered with `atexit` by the package).
#[pyfunction]
pub fn _close_all(py: Python<'_>) {
    let open: Vec<Arc<Shared>> = {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *open)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    };
    for shared in open {
        let _ = shared.close(py);
    }
}

/// Live mode: frames pushed from a camera callback, results handed to `callback`.
///
/// `LiveSegmenter(callback, model=None, *, threads=None, backend="auto", variant=None,
/// fit=None, kernels="auto", confidence=None, mode="auto", frame_size=None)`: `callback(result)`
/// is called from gss's own thread for each segmented frame, `result.timestamp_ns` being the
/// timestamp its frame was pushed with; a slow callback loses frames (counted), it never holds
/// the camera up. `mode` "pipelined" overlaps the prior of one frame with the decoder of the
/// one before (4 cores or more, the default there) or "sequential"; `frame_size` (width,
/// height) plans `fit="native"` for the camera's frames. The other keywords are
/// `Segmenter`'s. Use it as a context manager, or call `close()`.
#[pyclass(module = "gss", frozen, extends = ModelInfo)]
pub struct LiveSegmenter {
    shared: Arc<Shared>,
}

#[pymethods]
impl LiveSegmenter {
    #[new]
    #[pyo3(signature = (callback, model = None, *, threads = None, backend = "auto", variant = None, fit = None, kernels = "auto", confidence = None, mode = "auto", frame_size = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        callback: Py<PyAny>,
        model: Option<PathBuf>,
        threads: Option<usize>,
        backend: &str,
        variant: Option<String>,
        fit: Option<&str>,
        kernels: &str,
        confidence: Option<bool>,
        mode: &str,
        frame_size: Option<(u32, u32)>,
    ) -> PyResult<PyClassInitializer<Self>> {
        if !callback.bind(py).is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callback: expected a callable taking one result; got {}",
                callback.bind(py).get_type().name()?
            )));
        }
        let settings = Settings::parse(model, threads, backend, variant, fit, kernels, confidence)?;
        let (pusher, source) = push_source("Python frames", 1);
        let (pipeline, subscription, info, grid) = py.detach(|| {
            start_pipeline(&settings, mode, frame_size, Policy::RealTime, false, source)
        })?;
        let counts = Arc::new(CallbackCounts::default());
        let thread_counts = counts.clone();
        let callback = std::thread::Builder::new()
            .name("gss-callback".into())
            .spawn(move || {
                // Blocks without the GIL; ends when the pipeline closes the subscription.
                for mask in subscription.iter() {
                    Python::attach(|py| {
                        let outcome = from_mask(py, &mask, grid, true)
                            .and_then(|result| callback.call1(py, (result,)));
                        match outcome {
                            Ok(_) => thread_counts.delivered.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                // As Python does for errors nobody can catch: printed with the
                                // traceback (sys.unraisablehook), the stream goes on.
                                e.write_unraisable(py, Some(callback.bind(py)));
                                thread_counts.errors.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    });
                }
            })
            .map_err(|e| GssError::new_err(format!("cannot start the callback thread: {e}")))?;
        let shared = Arc::new(Shared {
            pusher,
            running: Mutex::new(Running {
                pipeline: Some(pipeline),
                callback: Some(callback),
                closed: false,
                last: Stats::default(),
            }),
            counts,
        });
        {
            let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
            open.retain(|w| w.strong_count() > 0);
            open.push(Arc::downgrade(&shared));
        }
        Ok(PyClassInitializer::from(info).add_subclass(Self { shared }))
    }

    /// Hands `frame` (H×W×3 uint8) to the stream under `timestamp_ns` (any integer label ≥ 0:
    /// a capture time, a counter) and returns at once; a frame still waiting for the stream is
    /// replaced and counted as dropped. The frame is copied once (it must outlive the caller's
    /// buffer), into a buffer the stream has finished with. Raises RuntimeError once closed.
    #[pyo3(signature = (frame, timestamp_ns, channel_order = "RGB"))]
    fn push(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        timestamp_ns: u64,
        channel_order: &str,
    ) -> PyResult<()> {
        let order = parse_order(channel_order)?;
        let (_guard, raw) = borrow_frame(frame)?;
        let pusher = &self.shared.pusher;
        let queued = py
            .detach(move || -> gss::Result<bool> {
                // SAFETY: `_guard` keeps the array borrowed until this call returns.
                let view = unsafe { raw.view(order) }?;
                Ok(pusher.push_view(timestamp_ns, view))
            })
            .py_err()?;
        if queued {
            return Ok(());
        }
        let running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Err(if running.closed {
            PyRuntimeError::new_err("push: this LiveSegmenter is closed")
        } else {
            GssError::new_err("push: the stream has stopped (a stage failed); close() says why")
        })
    }

    /// Frames dropped so far, wherever they were dropped (see `stats`).
    #[getter]
    fn dropped(&self) -> u64 {
        let (at_push, in_stream, at_callback) = self.shared.drops();
        at_push + in_stream + at_callback
    }

    /// Counters: `pushed`; frames dropped waiting to enter the stream (`dropped_at_push`),
    /// inside it (`dropped_in_stream`) and waiting for the callback (`dropped_at_callback`);
    /// their sum `dropped`; `delivered` to the callback; `failed` frames; `callback_errors`.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let shared = &self.shared;
        let stats = shared.stats();
        let (at_push, in_stream, at_callback) = shared.drops();
        let dict = PyDict::new(py);
        dict.set_item("pushed", shared.pusher.pushed())?;
        dict.set_item("dropped", at_push + in_stream + at_callback)?;
        dict.set_item("dropped_at_push", at_push)?;
        dict.set_item("dropped_in_stream", in_stream)?;
        dict.set_item("dropped_at_callback", at_callback)?;
        dict.set_item("delivered", shared.counts.delivered.load(Ordering::Relaxed))?;
        dict.set_item("failed", stats.failed)?;
        dict.set_item(
            "callback_errors",
            shared.counts.errors.load(Ordering::Relaxed),
        )?;
        Ok(dict)
    }

    /// Whether the gss threads are still running.
    #[getter]
    fn running(&self) -> bool {
        let running = self
            .shared
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        running.callback.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops taking frames, lets those in flight through to the callback, and ends gss's
    /// threads. Raises the error that stopped the stream, if one did. Calling it again does
    /// nothing.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.shared.close(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close(py)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Not closed: stop rather than drain (dropping the pipeline stops and joins its
        // stages, which never need the GIL); the callback thread ends on its own once the
        // subscription closes.
        self.pusher.close();
    }
}
