//! `gss.Segmenter`: image mode, in the manner of MediaPipe's ImageSegmenter. One frame per call
//! on the caller's thread, read in place from the numpy array, with the GIL released while the
//! model runs, so threads with segmenters of their own run in parallel.

use std::path::PathBuf;
use std::sync::Mutex;

use gss::engine::{create_backend, Graphs};
use gss::{Fit, ModelPackage, StageTimings};
use image::GrayImage;
use pyo3::prelude::*;
use pyo3::PyClassInitializer;

use crate::errors::{to_py, IntoPy};
use crate::frame::{borrow_frame, classes_to_py, parse_order};
use crate::options::{ModelInfo, Settings};
use crate::result::{confidence_to_py, SegmentResult};

enum State {
    Ready(Box<gss::Segmenter>),
    /// `fit="native"`: the graphs are planned for the first frame's shape, so they wait for it.
    Waiting(Box<ModelPackage>),
}

/// Segments frames one call at a time.
///
/// `Segmenter(model=None, *, threads=None, backend="auto", variant=None, fit=None,
/// kernels="auto", confidence=None)`: `model` is a package directory (None: the bundled
/// model); `threads` the CPU threads (None: every core); `backend` "auto", "cpu" or "wgpu";
/// `variant` a variant the manifest lists ("int8"); `fit` "stretch", "crop", "letterbox" or
/// "native" (None: the package's choice); `confidence` whether results carry the prior's
/// confidence grid (None: when the package's prior gives token logits).
#[pyclass(module = "gss", frozen, extends = ModelInfo)]
pub struct Segmenter {
    settings: Settings,
    input_size: (usize, usize),
    state: Mutex<State>,
}

/// One frame's outcome, carried out of the GIL-free part of `segment`.
struct Segmented {
    classes: GrayImage,
    confidence: Option<Vec<f32>>,
    /// The confidence grid's shape.
    grid: [usize; 2],
    timings: StageTimings,
}

/// A segmenter for `package`, planned for `frame_size` frames when the fit is native.
fn build(
    settings: &Settings,
    package: ModelPackage,
    frame_size: Option<(u32, u32)>,
) -> gss::Result<gss::Segmenter> {
    let (package, fit) = package.fitted(settings.fit, frame_size)?;
    let options = settings.backend_options(&package, settings.threads.unwrap_or(0));
    let backend = create_backend(&package, &options, Graphs::Both)?;
    Ok(gss::Segmenter::with_backend(package, backend)?.with_fit(fit))
}

#[pymethods]
impl Segmenter {
    #[new]
    #[pyo3(signature = (model = None, *, threads = None, backend = "auto", variant = None, fit = None, kernels = "auto", confidence = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        threads: Option<usize>,
        backend: &str,
        variant: Option<String>,
        fit: Option<&str>,
        kernels: &str,
        confidence: Option<bool>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let settings = Settings::parse(model, threads, backend, variant, fit, kernels, confidence)?;
        let state = py
            .detach(|| -> gss::Result<State> {
                let package = settings.open()?;
                if settings.fit.unwrap_or(package.manifest.input.fit) == Fit::Native {
                    return Ok(State::Waiting(Box::new(package)));
                }
                Ok(State::Ready(Box::new(build(&settings, package, None)?)))
            })
            .map_err(to_py)?;
        let package = match &state {
            State::Ready(seg) => seg.package(),
            State::Waiting(package) => package,
        };
        let info = ModelInfo::new(package);
        let segmenter = Self {
            input_size: (package.manifest.input.width, package.manifest.input.height),
            settings,
            state: Mutex::new(state),
        };
        Ok(PyClassInitializer::from(info).add_subclass(segmenter))
    }

    /// Segments `frame` (H×W×3 uint8, any size; `channel_order="BGR"` for OpenCV's frames).
    /// The array is read in place, not copied; rows may be padded (a crop of a larger array).
    #[pyo3(signature = (frame, channel_order = "RGB"))]
    fn segment(
        &self,
        py: Python<'_>,
        frame: &Bound<'_, PyAny>,
        channel_order: &str,
    ) -> PyResult<SegmentResult> {
        let order = parse_order(channel_order)?;
        let (_guard, raw) = borrow_frame(frame)?;
        let settings = &self.settings;
        let state = &self.state;
        let out = py
            .detach(move || -> gss::Result<Segmented> {
                let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
                if let State::Waiting(package) = &*state {
                    let size = Some((raw.width, raw.height));
                    *state = State::Ready(Box::new(build(settings, (**package).clone(), size)?));
                }
                let State::Ready(seg) = &mut *state else {
                    return Err(gss::Error::Usage {
                        stage: "segmenter",
                        msg: "the model was not planned for the frame".into(),
                    });
                };
                // SAFETY: `_guard` keeps the array borrowed until this call returns.
                let view = unsafe { raw.view(order) }?;
                let mut classes = GrayImage::new(0, 0);
                seg.segment_view_into(view, &mut classes)?;
                // A native fit plans the graphs, and so the grid, for the frame's shape.
                Ok(Segmented {
                    classes,
                    confidence: seg.confidence().map(<[f32]>::to_vec),
                    grid: seg.package().manifest.prior.grid,
                    timings: seg.timings,
                })
            })
            .py_err()?;
        Ok(SegmentResult {
            classes: classes_to_py(py, out.classes)?,
            confidence: out
                .confidence
                .map(|c| confidence_to_py(py, c, out.grid))
                .transpose()?,
            timings: out.timings.into(),
            timestamp_ns: None,
            index: None,
            path: None,
            latency_ms: None,
            dropped: None,
            frame: None,
        })
    }

    /// The package directory.
    #[getter]
    fn model(&self) -> String {
        self.settings.model_dir().display().to_string()
    }

    /// The prior's token grid, (rows, columns): the confidence grid's shape (with
    /// `fit="native"`, the first frame's).
    #[getter]
    fn grid(&self) -> (usize, usize) {
        let grid = match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Ready(seg) => seg.package().manifest.prior.grid,
            State::Waiting(package) => package.manifest.prior.grid,
        };
        (grid[0], grid[1])
    }

    /// The model's input size, (width, height), as exported.
    #[getter]
    fn input_size(&self) -> (usize, usize) {
        self.input_size
    }

    /// The backend running the model ("cpu (gss kernels)", "wgpu (...)"); None until the
    /// first frame with `fit="native"`.
    #[getter]
    fn backend(&self) -> Option<String> {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Ready(seg) => Some(seg.backend_name().to_string()),
            State::Waiting(_) => None,
        }
    }

    fn __repr__(slf: PyRef<'_, Self>) -> String {
        format!(
            "Segmenter(model={:?}, backend={:?}, classes={})",
            slf.model(),
            slf.backend().unwrap_or_else(|| "(first frame)".into()),
            slf.as_super().len()
        )
    }
}
