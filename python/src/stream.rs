//! `gss.stream(...)`: image files (a folder, a glob, one file) through the library's
//! [`Pipeline`], as a Python iterator of results. Lossless by default: the pipeline waits for
//! the loop, so every frame comes out; `lossless=False` keeps real-time drops (a replay at
//! `fps`, as a camera would deliver it).

use std::path::Path;
use std::sync::Mutex;

use gss::pipeline::{Policy, Subscription};
use gss::source::ImageFiles;
use gss::Pipeline;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClassInitializer;

use crate::errors::{to_py, IntoPy};
use crate::options::{start_pipeline, ModelInfo, Settings};
use crate::result::{from_mask, SegmentResult};

struct Running {
    pipeline: Option<Pipeline>,
    subscription: Option<Subscription>,
}

/// Results of `gss.stream(...)`, in source order; also a context manager.
#[pyclass(module = "gss", frozen, extends = ModelInfo)]
pub struct Stream {
    running: Mutex<Running>,
    grid: [usize; 2],
    /// The last counters of a finished stream.
    last: Mutex<gss::pipeline::Stats>,
}

/// Segments image files as a stream: `for result in gss.stream("frames/*.jpg"): ...`.
///
/// `source` is a folder (its .png/.jpg/.jpeg files, in name order), a glob pattern or one
/// file. `lossless=True` (the default) delivers every frame; `lossless=False` drops frames the
/// stages cannot keep up with, as for a camera (with `fps`, the files are replayed at that
/// rate). `frames=True` attaches each frame (`result.frame`) for overlays. `mode` and the model
/// keywords are `LiveSegmenter`'s.
#[pyfunction]
#[pyo3(signature = (source, model = None, *, lossless = true, fps = None, frames = false, threads = None, backend = "auto", variant = None, fit = None, kernels = "auto", confidence = None, mode = "auto"))]
#[allow(clippy::too_many_arguments)]
pub fn stream(
    py: Python<'_>,
    source: &str,
    model: Option<std::path::PathBuf>,
    lossless: bool,
    fps: Option<f64>,
    frames: bool,
    threads: Option<usize>,
    backend: &str,
    variant: Option<String>,
    fit: Option<&str>,
    kernels: &str,
    confidence: Option<bool>,
    mode: &str,
) -> PyResult<Py<Stream>> {
    let settings = Settings::parse(model, threads, backend, variant, fit, kernels, confidence)?;
    let files = if Path::new(source).is_dir() {
        ImageFiles::from_dir(source)
    } else {
        ImageFiles::from_glob(source)
    }
    .map_err(to_py)?;
    let files = match fps {
        Some(fps) => files
            .with_fps(fps)
            .map_err(|e| PyValueError::new_err(e.chain()))?,
        None => files,
    };
    // `fit="native"` plans the graphs for the first file's shape, as `gss stream` does.
    let frame_size = files
        .paths()
        .first()
        .and_then(|p| image::image_dimensions(p).ok());
    let policy = if lossless {
        Policy::Lossless
    } else {
        Policy::RealTime
    };
    let (pipeline, subscription, info, grid) =
        py.detach(|| start_pipeline(&settings, mode, frame_size, policy, frames, files))?;
    let stream = Stream {
        running: Mutex::new(Running {
            pipeline: Some(pipeline),
            subscription: Some(subscription),
        }),
        grid,
        last: Mutex::default(),
    };
    Py::new(py, PyClassInitializer::from(info).add_subclass(stream))
}

impl Stream {
    /// Ends the pipeline (stopping it first unless it ended by itself) and keeps its counters.
    fn finish(&self, py: Python<'_>, stop: bool) -> PyResult<()> {
        let pipeline = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.subscription = None;
            running.pipeline.take()
        };
        let Some(pipeline) = pipeline else {
            return Ok(());
        };
        if stop {
            pipeline.stop();
        }
        let stats = py.detach(move || pipeline.join()).py_err()?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = stats;
        Ok(())
    }
}

#[pymethods]
impl Stream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<SegmentResult>> {
        let next = py.detach(|| {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.subscription.as_ref().map(|s| s.recv().ok())
        });
        match next {
            Some(Some(mask)) => Ok(Some(from_mask(py, &mask, self.grid, false)?)),
            // The source has ended (or a stage failed, which join reports).
            Some(None) => {
                self.finish(py, false)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// Counters of the stream so far: captured, dropped, failed (unreadable files), published.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = {
            let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running.pipeline.as_ref().map(Pipeline::stats)
        }
        .unwrap_or_else(|| self.last.lock().unwrap_or_else(|p| p.into_inner()).clone());
        let dict = PyDict::new(py);
        dict.set_item("captured", stats.captured)?;
        dict.set_item("corrupt", stats.corrupt)?;
        dict.set_item("dropped", stats.dropped())?;
        dict.set_item("failed", stats.failed)?;
        dict.set_item("published", stats.published)?;
        Ok(dict)
    }

    /// Stops the stream early and ends its threads; raises the error that stopped it, if one
    /// did.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.finish(py, true)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.close(py)
    }
}
